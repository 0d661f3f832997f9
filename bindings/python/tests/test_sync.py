"""The blocking API (wsffi.sync) against servers of the event-emitter API."""

from __future__ import annotations

import threading

import pytest

import wsffi
import wsffi.sync as ws_sync


def test_echo_recv_timeout_close(echo_server):
    url = f"ws://127.0.0.1:{echo_server.port}/"
    with ws_sync.connect(url, timeout=5) as ws:
        assert ws.ready_state == wsffi.OPEN
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00bin")
        assert ws.recv(timeout=5) == b"\x00bin"
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.05)
        ws.ping(b"p", timeout=5)
        assert ws.extensions.startswith("permessage-deflate")
    assert ws.close_code == 1000
    with pytest.raises(ws_sync.ConnectionClosedOK):
        ws.recv(timeout=1)
    with pytest.raises(ws_sync.ConnectionClosed):
        ws.send("after close")


def test_close_with_code_reaches_server(loop):
    got = []
    closed = threading.Event()
    srv = wsffi.WebSocketServer(port=0, loop=loop)

    def on_connection(ws, req):
        def on_close(code, reason):
            got.append((code, reason))
            closed.set()

        ws.on("close", on_close)

    srv.on("connection", on_connection)
    ws = ws_sync.connect(f"ws://127.0.0.1:{srv.port}/")
    ws.close(4321, "done here")
    assert ws.close_code == 4321
    assert closed.wait(5)
    assert got == [(4321, "done here")]
    srv.close()


def test_server_closes_then_recv_raises(loop):
    srv = wsffi.WebSocketServer(port=0, loop=loop)
    srv.on("connection", lambda ws, req: ws.on("message", lambda ev: ws.close(4002, "go")))
    ws = ws_sync.connect(f"ws://127.0.0.1:{srv.port}/")
    ws.send("x")
    with pytest.raises(ws_sync.ConnectionClosedError) as info:
        ws.recv(timeout=5)
    assert (info.value.code, info.value.reason) == (4002, "go")
    srv.close()


def test_connect_errors(loop):
    with pytest.raises(wsffi.WebSocketError) as info:
        ws_sync.connect("ws://127.0.0.1:1/")
    assert info.value.status == 402
    srv = wsffi.WebSocketServer(port=0, loop=loop, verify_client=lambda info: False)
    with pytest.raises(ws_sync.InvalidStatus) as info:
        ws_sync.connect(f"ws://127.0.0.1:{srv.port}/")
    assert info.value.response.status == 401
    srv.close()


def test_two_threads_share_the_driver(echo_server):
    url = f"ws://127.0.0.1:{echo_server.port}/"
    results = {}

    def worker(name):
        with ws_sync.connect(url) as ws:
            for i in range(50):
                ws.send(f"{name}-{i}")
                assert ws.recv(timeout=5) == f"{name}-{i}"
        results[name] = True

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == {"a": True, "b": True, "c": True}


def test_iteration(loop):
    srv = wsffi.WebSocketServer(port=0, loop=loop)

    def on_connection(ws, req):
        ws.on("open", lambda: (ws.send("1"), ws.send("2"), ws.close()))

    srv.on("connection", on_connection)
    with ws_sync.connect(f"ws://127.0.0.1:{srv.port}/") as ws:
        assert list(ws) == ["1", "2"]
    srv.close()
