"""The slow-consumer policies from Python: a raw client that never reads, a server that
drops (DroppedError), refuses (BackpressureError) or closes it with 1013."""

from __future__ import annotations

import socket
import time

import pytest

import wsffi
from conftest import WAIT, Events

HANDSHAKE = (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip


def stuck_client(port):
    """Upgrades, then never reads (a small receive buffer fills at once)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(HANDSHAKE)
    return s


def server(**options):
    ev = Events()
    wss = wsffi.WebSocketServer(water_marks=(64 * 1024, 16 * 1024), **options)

    def on_connection(ws, request):
        ev.add("connection", ws)
        ws.on("close", ev.recorder("close"))

    wss.on("connection", on_connection)
    return wss, ev


def flood(ws, until):
    payload = b"x" * 4096
    for _ in range(20000):
        try:
            ws.send(payload)
        except until:
            return True
        time.sleep(0)
    return False


@pytest.mark.parametrize("policy, error", [("drop", wsffi.DroppedError), ("refuse", wsffi.BackpressureError)])
def test_sends_past_the_mark_are_dropped_or_refused(policy, error):
    wss, ev = server(backpressure=policy)
    sock = stuck_client(wss.port)
    try:
        ws = ev.wait_name("connection")[1]
        assert flood(ws, error), f"no {error.__name__} after 80 MB"
        assert ws.buffered_amount <= 64 * 1024 + 4096 + 16
    finally:
        sock.close()
        wss.close()


def test_a_stuck_client_is_closed_with_1013_after_the_grace_time():
    wss, ev = server(backpressure="close-1013", backpressure_grace=0.1, close_timeout=0.3)
    sock = stuck_client(wss.port)
    try:
        ws = ev.wait_name("connection")[1]
        start = time.monotonic()
        # Keep it above its mark (the kernel takes megabytes before the library's queue grows).
        payload = b"x" * 4096
        while "close" not in ev.names():
            assert time.monotonic() - start < WAIT, "the stuck client was never closed"
            try:
                ws.send(payload)
            except wsffi.BackpressureError:
                time.sleep(0.001)
            except wsffi.InvalidStateError:
                break  # closing
        _, code, reason = ev.wait_name("close", timeout=WAIT)
        assert code == 1013 and reason == "slow consumer", (code, reason)
        assert time.monotonic() - start >= 0.1
    finally:
        sock.close()
        wss.close()
    with pytest.raises(ValueError):
        wsffi.WebSocketServer(backpressure="sometimes")
