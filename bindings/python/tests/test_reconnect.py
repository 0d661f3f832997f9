"""Client reconnect from Python: the server goes away and comes back on the same port, the
'reconnect' event per attempt, sends refused meanwhile, attempts that run out, stop_reconnect."""

from __future__ import annotations

import socket
import time

import pytest

import wsffi
from conftest import WAIT, Events

FAST = {"initial_delay": 0.05, "factor": 2.0, "max_delay": 0.2}


def echo_server(port=0):
    wss = wsffi.WebSocketServer(port=port)
    wss.on("connection", lambda ws, req: ws.on("message", lambda e: ws.send(e.data)))
    return wss


def client(url, **options):
    ev = Events()
    with wsffi.default_loop().lock:
        ws = wsffi.WebSocket(url, **options)
        for name in ("open", "message", "reconnect", "error", "close"):
            ws.on(name, ev.recorder(name))
    return ws, ev


def count(ev, name):
    return sum(1 for i in ev.items if i[0] == name)


def test_the_same_socket_reconnects_when_the_server_comes_back():
    wss = echo_server()
    port = wss.port
    ws, ev = client(f"ws://127.0.0.1:{port}/", reconnect=FAST)
    ev.wait_name("open")
    ws.send("before")
    assert ev.wait_name("message")[1].data == "before"
    wss.close()  # clients get 1001, which is retried
    _, attempt, delay, error, lost = ev.wait_name("reconnect")
    assert attempt == 1 and 0 < delay <= 0.2
    assert lost.code == 1001
    assert isinstance(error, wsffi.WebSocketError)
    assert ws.ready_state == wsffi.CONNECTING
    with pytest.raises(wsffi.ReconnectingError):
        ws.send("while away")
    # Refused attempts while nothing listens: more 'reconnect' events, delays capped.
    ev.wait_for(lambda items: count(ev, "reconnect") >= 3)
    delays = [i[2] for i in ev.items if i[0] == "reconnect"]
    assert all(d <= 0.2 for d in delays), delays
    back = echo_server(port)
    try:
        ev.wait_for(lambda items: count(ev, "open") == 2)
        ws.send("after")
        ev.wait_for(lambda items: count(ev, "message") == 2)
        assert [i[1].data for i in ev.items if i[0] == "message"] == ["before", "after"]
        assert count(ev, "close") == 0 and count(ev, "error") == 0
        ws.close()
        ev.wait_name("close")
        time.sleep(0.3)
        assert count(ev, "close") == 1 and count(ev, "reconnect") >= 3
    finally:
        back.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_attempts_run_out_with_a_clear_error():
    ws, ev = client(f"ws://127.0.0.1:{free_port()}/", reconnect=dict(FAST, max_attempts=2))
    _, err = ev.wait_name("error")
    assert "gave up" in str(err), str(err)
    ev.wait_name("close")
    assert count(ev, "reconnect") == 2
    assert count(ev, "open") == 0


def test_stop_reconnect_during_the_wait_ends_the_socket():
    ws, ev = client(f"ws://127.0.0.1:{free_port()}/", reconnect={"initial_delay": 5, "max_delay": 5})
    ev.wait_name("reconnect")
    ws.stop_reconnect()
    _, err = ev.wait_name("error")
    assert "stopped" in str(err), str(err)
    ev.wait_name("close")
    with pytest.raises(TypeError):
        wsffi.WebSocket("ws://127.0.0.1:1/", reconnect={"tries": 3})
    with pytest.raises(wsffi.WebSocketError):
        wsffi.WebSocket("ws://127.0.0.1:1/", reconnect={"factor": 0.5})
