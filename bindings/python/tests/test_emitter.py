"""The Node-style event-emitter API: WebSocket and WebSocketServer."""

from __future__ import annotations

import sys
import threading

import pytest

import wsffi
from wsffi import WebSocket, WebSocketServer

from conftest import WAIT, Events


def client(loop, url, events, protocols=None, **opts):
    """A client whose every event is recorded; registered under the loop's lock so no event
    can come before the listeners."""
    with loop.lock:
        ws = WebSocket(url, protocols, loop=loop, **opts)
        ws.on("open", events.recorder("open"))
        ws.on("message", lambda ev: events.add("message", ev.data, ev.type))
        ws.on("close", events.recorder("close"))
        ws.on("error", events.recorder("error"))
        ws.on("ping", events.recorder("ping"))
        ws.on("pong", events.recorder("pong"))
        ws.on("unexpected-response", events.recorder("unexpected-response"))
    return ws


def test_echo_text_and_binary(loop, echo_server, events):
    ws = client(loop, f"ws://127.0.0.1:{echo_server.port}/", events)
    events.wait_name("open")
    assert ws.ready_state == WebSocket.OPEN == wsffi.OPEN
    assert ws.url == f"ws://127.0.0.1:{echo_server.port}/"
    ws.send("héllo")
    ws.send(b"\x00\xff")
    ws.send(bytearray(b"ba"))
    items = events.wait_for(lambda items: [i[0] for i in items].count("message") == 3)
    msgs = [i[1:] for i in items if i[0] == "message"]
    assert msgs == [("héllo", WebSocket.TextMessage), (b"\x00\xff", WebSocket.BinaryMessage), (b"ba", 2)]
    ws.close()
    assert events.wait_name("close") == ("close", 1000, "")
    assert ws.ready_state == WebSocket.CLOSED
    assert ws.was_clean is True


def test_request_fields(loop, events):
    got = Events()
    srv = WebSocketServer(port=0, path="/chat", loop=loop)
    srv.on("connection", lambda ws, req: got.add("connection", ws, req))
    client(loop, f"ws://127.0.0.1:{srv.port}/chat?room=1&name=a+b&flag", events,
           headers={"X-Token": "abc", "X-Multi": "1"}, origin="http://example.test")  # fmt: skip
    _, ws, req = got.wait_name("connection")
    assert req.method == "GET"
    assert req.url == req.request_uri == "/chat?room=1&name=a+b&flag"
    assert req.path == "/chat"
    assert req.query_string == "room=1&name=a+b&flag"
    assert req.query("room") == "1" and req.query("name") == "a b" and req.query("flag") == ""
    assert req.query("missing") is None
    assert req.http_version == "1.1"
    assert req.host == f"127.0.0.1:{srv.port}"
    assert req.remote_address.startswith("127.0.0.1:")
    assert req.get_header("x-token") == "abc" and req.get_header("X-TOKEN") == "abc"
    assert req.has_header("Sec-WebSocket-Key") and not req.has_header("X-Absent")
    assert req.get_header("X-Absent") is None
    assert req.headers["upgrade"].lower() == "websocket"
    assert req.headers["X-Token"] == "abc"
    assert ("X-Token", "abc") in req.raw_headers
    assert req.origin == "http://example.test"
    assert req.tls_subject == ""
    assert ws.request is req and ws.url == "/chat?room=1&name=a+b&flag"
    events.wait_name("open")
    assert ws.remote_address == req.remote_address
    srv.close()


def test_close_codes(loop, events):
    server_events = Events()
    srv = WebSocketServer(port=0, loop=loop)

    def on_connection(ws, req):
        ws.on("close", lambda code, reason: server_events.add("close", code, reason, ws.close_details.origin))
        ws.on("message", lambda ev: ws.close(int(ev.data), "server says " + ev.data) if ev.data.isdigit() else None)

    srv.on("connection", on_connection)
    url = f"ws://127.0.0.1:{srv.port}/"

    # the client closes with an application code
    ws = client(loop, url, events)
    events.wait_name("open")
    ws.close(4001, "bye now")
    assert events.wait_name("close") == ("close", 4001, "bye now")
    assert server_events.wait_name("close") == ("close", 4001, "bye now", 1)  # origin: peer
    assert ws.close_details.local_code == 4001 and ws.close_details.peer_code == 4001

    # the server closes with 1008
    ev2 = Events()
    ws2 = client(loop, url, ev2)
    ev2.wait_name("open")
    ws2.send("1008")
    assert ev2.wait_name("close") == ("close", 1008, "server says 1008")
    assert ws2.close_details.origin == 1 and ws2.was_clean

    # terminate: no close frame at all
    ev3 = Events()
    ws3 = client(loop, url, ev3)
    ev3.wait_name("open")
    ws3.terminate()
    assert ev3.wait_name("close")[1] == 1006
    assert ws3.was_clean is False

    # server.close(): open clients get 1001
    ev4 = Events()
    client(loop, url, ev4)
    ev4.wait_name("open")
    closed = Events()
    srv.on("close", closed.recorder("server-close"))
    srv.close()
    assert ev4.wait_name("close")[1] == 1001
    closed.wait_name("server-close")


def test_invalid_close_code_raises(loop, echo_server, events):
    ws = client(loop, f"ws://127.0.0.1:{echo_server.port}/", events)
    events.wait_name("open")
    with pytest.raises(wsffi.WebSocketError):
        ws.close(1005)
    ws.close()
    events.wait_name("close")


def test_deflate_negotiated_and_used(loop, events):
    srv = WebSocketServer(port=0, loop=loop, per_message_deflate={"threshold": 0})
    seen = Events()

    def on_connection(ws, req):
        seen.add("ext", req.get_header("sec-websocket-extensions"))
        ws.on("open", lambda: seen.add("server-ext", ws.extensions))
        ws.on("message", lambda ev: ws.send(ev.data))

    srv.on("connection", on_connection)
    ws = client(loop, f"ws://127.0.0.1:{srv.port}/", events)
    events.wait_name("open")
    assert ws.extensions.startswith("permessage-deflate")
    assert seen.wait_name("server-ext")[1].startswith("permessage-deflate")
    assert "permessage-deflate" in seen.wait_name("ext")[1]
    big = "abc" * 100_000
    ws.send(big)
    assert events.wait_name("message")[1] == big
    ws.close()
    events.wait_name("close")

    # a client that does not offer it gets plain frames
    ev2 = Events()
    ws2 = client(loop, f"ws://127.0.0.1:{srv.port}/", ev2, per_message_deflate=False)
    ev2.wait_name("open")
    assert ws2.extensions == ""
    ws2.close()
    ev2.wait_name("close")
    srv.close()


def token_server(loop, **kw):
    return WebSocketServer(port=0, loop=loop, verify_client=lambda info: info.req.query("token") == "allow", **kw)


def test_verify_client_accepts_and_rejects_by_token(loop, events):
    srv = token_server(loop)
    srv.on("connection", lambda ws, req: ws.on("message", lambda ev: ws.send(ev.data)))
    ok = client(loop, f"ws://127.0.0.1:{srv.port}/?token=allow", events)
    events.wait_name("open")
    ok.close()
    events.wait_name("close")

    bad = Events()
    ws = client(loop, f"ws://127.0.0.1:{srv.port}/?token=nope", bad)
    _, response = bad.wait_name("unexpected-response")
    assert response.status == 401
    assert bad.wait_name("error")[1].status == 302  # WSFFI_STATUS_ERR_HANDSHAKE_REJECTED
    assert bad.wait_name("close")[1] == 1006
    assert "open" not in bad.names()
    assert ws.ready_state == WebSocket.CLOSED
    srv.close()


def test_verify_client_custom_status_and_deferred(loop):
    srv = WebSocketServer(port=0, loop=loop, verify_client=lambda info: (False, 403, "Go away"))
    ev = Events()
    client(loop, f"ws://127.0.0.1:{srv.port}/", ev)
    _, response = ev.wait_name("unexpected-response")
    assert (response.status, response.reason) == (403, "Go away")
    srv.close()

    # two-argument form: decided later from another thread
    def verify(info, done):
        token = info.req.query("token")
        threading.Thread(target=lambda: done(token == "allow", 403)).start()

    srv2 = WebSocketServer(port=0, loop=loop, verify_client=verify)
    ok, bad = Events(), Events()
    client(loop, f"ws://127.0.0.1:{srv2.port}/?token=allow", ok)
    client(loop, f"ws://127.0.0.1:{srv2.port}/?token=x", bad)
    ok.wait_name("open")
    assert bad.wait_name("unexpected-response")[1].status == 403
    srv2.close()
    ok.wait_name("close")


def test_handle_protocols(loop):
    calls = Events()

    def choose(protocols, request):
        calls.add("offered", protocols, request.path)
        return "machbase.rpc" if "machbase.rpc" in protocols else False

    srv = WebSocketServer(port=0, loop=loop, handle_protocols=choose)
    server_side = Events()
    srv.on("connection", lambda ws, req: server_side.add("conn", ws))
    ev = Events()
    ws = client(loop, f"ws://127.0.0.1:{srv.port}/", ev, ["chat", "machbase.rpc"])
    ev.wait_name("open")
    assert ws.protocol == "machbase.rpc"
    assert calls.wait_name("offered") == ("offered", ["chat", "machbase.rpc"], "/")
    sws = server_side.wait_name("conn")[1]
    assert sws.protocol == "machbase.rpc"

    ev2 = Events()
    ws2 = client(loop, f"ws://127.0.0.1:{srv.port}/", ev2, "chat")
    ev2.wait_name("open")
    assert ws2.protocol == ""
    srv.close()


def test_max_payload_closes_with_1009(loop):
    srv = WebSocketServer(port=0, loop=loop, max_payload=1024)
    server_side = Events()

    def on_connection(ws, req):
        ws.on("message", lambda ev: server_side.add("message", len(ev.data)))
        ws.on("close", server_side.recorder("close"))

    srv.on("connection", on_connection)
    ev = Events()
    ws = client(loop, f"ws://127.0.0.1:{srv.port}/", ev)
    ev.wait_name("open")
    ws.send(b"x" * 1024)
    assert server_side.wait_name("message") == ("message", 1024)
    ws.send(b"x" * 1025)
    assert ev.wait_name("close")[1] == 1009
    assert server_side.wait_name("close")[1] == 1009
    srv.close()


def test_sends_after_close_raise(loop, echo_server):
    ev = Events()
    ws = client(loop, f"ws://127.0.0.1:{echo_server.port}/", ev)
    ev.wait_name("open")
    ws.close()
    with pytest.raises(wsffi.InvalidStateError):
        ws.send("too late")  # CLOSING
    ev.wait_name("close")
    for call in (lambda: ws.send("x"), lambda: ws.send(b"x"), ws.ping):
        with pytest.raises(wsffi.InvalidStateError):
            call()
    ws.close()  # closing twice is a no-op
    with pytest.raises(TypeError):
        ws.send(123)


def test_send_while_connecting_raises(loop, echo_server):
    with loop.lock:  # nothing is dispatched: the connection cannot be open yet
        ws = WebSocket(f"ws://127.0.0.1:{echo_server.port}/", loop=loop)
        assert ws.ready_state == WebSocket.CONNECTING
        with pytest.raises(wsffi.InvalidStateError) as info:
            ws.send("early")
        assert info.value.status == 200  # WSFFI_STATUS_ERR_NOT_OPEN
        ws.terminate()


def test_connection_refused_is_an_error_event(loop):
    ev = Events()
    client(loop, "ws://127.0.0.1:1/", ev)
    err = ev.wait_name("error")[1]
    assert isinstance(err, wsffi.WebSocketError) and err.status == 402
    assert ev.wait_name("close")[1] == 1006


def test_bad_url_raises():
    with pytest.raises(wsffi.WebSocketError) as info:
        WebSocket("ftp://nope")
    assert info.value.status == 103
    with pytest.raises(TypeError):
        WebSocket(None)  # type: ignore[arg-type]


def test_listener_exception_becomes_error_event(loop, echo_server):
    ev = Events()
    with loop.lock:
        ws = WebSocket(f"ws://127.0.0.1:{echo_server.port}/", loop=loop)
        ws.on("open", lambda: ws.send("first"))

        def on_message(event):
            ev.add("message", event.data)
            if event.data == "first":
                raise ValueError("boom")

        ws.on("message", on_message)
        ws.on("error", ev.recorder("error"))
    err = ev.wait_name("error")[1]
    assert isinstance(err, ValueError) and str(err) == "boom" and err.event == "message"
    # the loop goes on
    ws.send("second")
    ev.wait_for(lambda items: ("message", "second") in items)
    ws.close()


def test_listener_exception_without_error_listener_goes_to_unraisablehook(loop, echo_server, monkeypatch):
    hooked = Events()
    monkeypatch.setattr(sys, "unraisablehook", lambda args: hooked.add("hook", args.exc_value, args.err_msg))
    ev = Events()
    with loop.lock:
        ws = WebSocket(f"ws://127.0.0.1:{echo_server.port}/", loop=loop)
        ws.on("open", lambda: 1 / 0)
        ws.on("open", lambda: ev.add("second listener ran"))
        ws.on("close", ev.recorder("close"))
    _, exc, msg = hooked.wait_name("hook")
    assert isinstance(exc, ZeroDivisionError) and "'open' listener" in msg
    ev.wait_for(lambda items: ("second listener ran",) in items)
    ws.close()
    ev.wait_name("close")


def test_server_callback_exceptions_reported(loop, monkeypatch):
    hooked = Events()
    monkeypatch.setattr(sys, "unraisablehook", lambda args: hooked.add("hook", args.exc_value))

    def verify(info):
        raise RuntimeError("verify failed")

    srv = WebSocketServer(port=0, loop=loop, verify_client=verify)
    ev = Events()
    client(loop, f"ws://127.0.0.1:{srv.port}/", ev)
    assert ev.wait_name("unexpected-response")[1].status == 500
    exc = hooked.wait_name("hook")[1]
    assert isinstance(exc, RuntimeError) and exc.event == "verify_client"

    errors = Events()
    srv2 = WebSocketServer(port=0, loop=loop)
    srv2.on("connection", lambda ws, req: (_ for _ in ()).throw(KeyError("in connection")))
    srv2.on("error", errors.recorder("error"))
    ev2 = Events()
    client(loop, f"ws://127.0.0.1:{srv2.port}/", ev2)
    err = errors.wait_name("error")[1]
    assert isinstance(err, KeyError) and err.event == "connection"
    ev2.wait_name("open")  # the connection itself goes on
    srv.close()
    srv2.close()


def test_ping_pong_events(loop, echo_server):
    ev = Events()
    ws = client(loop, f"ws://127.0.0.1:{echo_server.port}/", ev)
    ev.wait_name("open")
    ws.ping(b"hey")
    assert ev.wait_name("pong") == ("pong", b"hey")
    with pytest.raises(wsffi.WebSocketError) as info:
        ws.ping(b"x" * 126)
    assert info.value.status == 104
    ws.close()
    ev.wait_name("close")


def test_server_ping_reaches_client(loop):
    srv = WebSocketServer(port=0, loop=loop)
    srv.on("connection", lambda ws, req: ws.on("open", lambda: ws.ping(b"srv")))
    ev = Events()
    ws = client(loop, f"ws://127.0.0.1:{srv.port}/", ev)
    assert ev.wait_name("ping") == ("ping", b"srv")
    ws.close()
    srv.close()


def test_clients_and_broadcast(loop):
    srv = WebSocketServer(port=0, loop=loop)
    joined = Events()
    srv.on("connection", lambda ws, req: ws.on("open", joined.recorder("joined")))
    logs = [Events() for _ in range(3)]
    sockets = [client(loop, f"ws://127.0.0.1:{srv.port}/", e) for e in logs]
    joined.wait_for(lambda items: len(items) == 3)
    for e in logs:
        e.wait_name("open")
    assert len(srv.clients) == 3
    assert all(isinstance(c, WebSocket) for c in srv.clients)
    for c in srv.clients:
        c.send("to each")
    srv.broadcast("to all")
    for e in logs:
        e.wait_for(lambda items: ("message", "to each", 1) in items and ("message", "to all", 1) in items)
    sockets[0].close()
    logs[0].wait_name("close")
    left = Events()
    loop.call_soon(lambda: left.add("clients", len(srv.clients)))
    srv.on("close", left.recorder("server-close"))
    srv.close()
    for e in logs[1:]:
        assert e.wait_name("close")[1] == 1001
    left.wait_name("server-close")  # the server's last event: every client's close has run
    assert srv.clients == set()

    untracked = WebSocketServer(port=0, loop=loop, client_tracking=False)
    assert untracked.clients is None
    untracked.close()


def test_decorator_once_and_off(loop, echo_server):
    ev = Events()
    with loop.lock:
        ws = WebSocket(f"ws://127.0.0.1:{echo_server.port}/", loop=loop)

        @ws.on("open")
        def opened():
            ws.send("a")
            ws.send("b")

        ws.once("message", lambda e: ev.add("once", e.data))
        handler = lambda e: ev.add("off", e.data)  # noqa: E731
        ws.on("message", handler)
        ws.off("message", handler)
        ws.on("message", lambda e: ev.add("all", e.data))
    ev.wait_for(lambda items: ("all", "b") in items)
    assert [i for i in ev.items if i[0] == "once"] == [("once", "a")]
    assert not [i for i in ev.items if i[0] == "off"]
    ws.close()


def test_default_loop_runs_by_itself(events):
    srv = WebSocketServer(port=0)
    srv.on("connection", lambda ws, req: ws.on("message", lambda e: ws.send(e.data.upper())))
    with wsffi.default_loop().lock:
        ws = WebSocket(f"ws://127.0.0.1:{srv.port}/")
        ws.on("open", lambda: ws.send("abc"))
        ws.on("message", lambda e: (events.add("message", e.data), ws.close()))
        ws.on("close", events.recorder("close"))
    assert events.wait_name("message") == ("message", "ABC")
    events.wait_name("close")
    srv.close()


def test_run_on_own_thread_until_idle():
    """wsffi.run() style: a private loop run on this thread ends when nothing is left."""
    lp = wsffi.EventLoop()
    srv = WebSocketServer(port=0, loop=lp)
    got = []

    def on_connection(ws, req):
        ws.on("message", lambda e: ws.send("echo:" + e.data))

    srv.on("connection", on_connection)
    ws = WebSocket(f"ws://127.0.0.1:{srv.port}/", loop=lp)
    ws.on("open", lambda: ws.send("x"))

    def on_message(e):
        got.append(e.data)
        ws.close()

    ws.on("message", on_message)
    ws.on("close", lambda: srv.close())
    lp.run(timeout=WAIT)
    assert got == ["echo:x"]
    assert ws.ready_state == WebSocket.CLOSED
    lp.close()
