"""Streaming receive from Python: a message larger than max_payload arrives as parts, plain
and compressed, with the 'message-part' event."""

from __future__ import annotations

import hashlib

import pytest

import wsffi
from conftest import Events


@pytest.mark.parametrize("deflate", [False, True])
def test_a_message_larger_than_max_payload_arrives_in_parts(deflate):
    wss = wsffi.WebSocketServer(max_payload=1 << 20, stream_messages=True, per_message_deflate=deflate)
    state = {}

    def on_connection(ws, request):
        def on_part(data, kind, first, last):
            if first:
                state.update(sha=hashlib.sha256(), n=0, parts=0, biggest=0, kind=kind)
            state["sha"].update(data)
            state["n"] += len(data)
            state["parts"] += 1
            state["biggest"] = max(state["biggest"], len(data))
            if last:
                ws.send(f"{state['n']} {state['parts']} {state['biggest']} {state['sha'].hexdigest()}")

        ws.on("message-part", on_part)
        ws.on("message", lambda e: ws.send("whole message: should not happen"))

    wss.on("connection", on_connection)
    ev = Events()
    try:
        with wsffi.default_loop().lock:
            ws = wsffi.WebSocket(f"ws://127.0.0.1:{wss.port}/", per_message_deflate=deflate)
            ws.on("open", ev.recorder("open"))
            ws.on("message", ev.recorder("message"))
        ev.wait_name("open")
        big = bytes((i * 7 + (i >> 12)) & 0xFF for i in range(6 << 20))
        ws.send(big)
        n, parts, biggest, digest = ev.wait_name("message")[1].data.split()
        assert int(n) == len(big)
        assert digest == hashlib.sha256(big).hexdigest()
        assert int(parts) > 1 and int(biggest) <= (32 << 10 if deflate else 64 << 10)
        assert state["kind"] == wsffi.BINARY
        ws.close()
    finally:
        wss.close()
