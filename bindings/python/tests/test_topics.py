"""Topics (pub/sub inside a server) from Python: rooms with the event-emitter API and with
asyncio, publishing except the sender, the end of subscriptions at close, bad names."""

from __future__ import annotations

import asyncio

import pytest

import wsffi
import wsffi.asyncio as wsa
from conftest import WAIT, Events


def eventually(pred, timeout=WAIT):
    """Polls `pred` (library state no event announces) until it holds."""
    import time

    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_rooms_with_the_event_emitter_api():
    wss = wsffi.WebSocketServer(max_subscriptions=2)
    joined = Events()

    def on_connection(ws, request):
        room = request.query("room")
        assert ws.subscribe(room) is True
        assert ws.subscribe(room) is False
        joined.add("joined", room, ws.is_subscribed(room))
        ws.on("message", lambda e: wss.publish(room, e.data, except_=ws))

    wss.on("connection", on_connection)
    clients = []
    try:
        for room in ("lobby", "lobby", "attic"):
            ev = Events()
            with wsffi.default_loop().lock:
                ws = wsffi.WebSocket(f"ws://127.0.0.1:{wss.port}/?room={room}")
                ws.on("message", ev.recorder("message"))
                ws.on("open", ev.recorder("open"))
                ws.on("close", ev.recorder("close"))
            ev.wait_name("open")
            clients.append((ws, ev))
        joined.wait_for(lambda items: len(items) == 3)
        assert all(subscribed for _, _, subscribed in joined.items)
        assert wss.subscriber_count("lobby") == 2
        assert wss.subscriber_count("attic") == 1
        assert wss.subscriber_count("nowhere") == 0
        (a, a_ev), (b, b_ev), (c, c_ev) = clients
        a.send("hi lobby")
        c.send(b"\x00attic")
        assert b_ev.wait_name("message")[1].data == "hi lobby"
        wss.publish("lobby", "announcement")
        a_ev.wait_name("message")
        b_ev.wait_for(lambda items: sum(1 for i in items if i[0] == "message") == 2)
        assert a_ev.wait_name("message")[1].data == "announcement"
        assert "message" not in c_ev.names()  # alone in the attic: its own message is not echoed
        with pytest.raises(wsffi.WebSocketError):
            wss.publish("", "x")
        with pytest.raises(TypeError):
            wss.publish(b"lobby", "x")
        a.close()
        a_ev.wait_name("close")
        eventually(lambda: wss.subscriber_count("lobby") == 1)
    finally:
        for ws, _ in clients:
            ws.close()
        wss.close()


def test_subscription_limits_and_closed_connections():
    wss = wsffi.WebSocketServer(max_subscriptions=2)
    results = Events()

    def on_connection(ws, request):
        ws.subscribe("one")
        ws.subscribe("two")
        try:
            ws.subscribe("three")
        except wsffi.WebSocketError as exc:
            results.add("limit", exc.status)
        assert ws.unsubscribe("two") is True
        assert ws.unsubscribe("two") is False
        assert ws.subscribe("three") is True
        ws.on("close", lambda *_: results.add("server-close", ws))

    wss.on("connection", on_connection)
    try:
        ev = Events()
        with wsffi.default_loop().lock:
            client = wsffi.WebSocket(f"ws://127.0.0.1:{wss.port}/")
            client.on("open", ev.recorder("open"))
            client.on("close", ev.recorder("close"))
        ev.wait_name("open")
        assert results.wait_name("limit")[1] == 104  # WSFFI_STATUS_ERR_TOO_BIG
        assert wss.subscriber_count("three") == 1
        # A client connection has no server: topics do not apply.
        with pytest.raises(wsffi.WebSocketError):
            client.subscribe("one")
        client.close()
        server_ws = results.wait_name("server-close")[1]
        eventually(lambda: wss.subscriber_count("three") == 0)
        assert not server_ws.is_subscribed("one")
    finally:
        wss.close()


def test_asyncio_publish_from_handlers():
    async def main():
        async def handler(ws):
            ws.subscribe("chat")
            async for message in ws:
                server.publish("chat", message, except_=ws)

        async with wsa.serve(handler, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with wsa.connect(url) as a, wsa.connect(url) as b, wsa.connect(url) as c:
                for _ in range(100):
                    if server.subscriber_count("chat") == 3:
                        break
                    await asyncio.sleep(0.01)
                assert server.subscriber_count("chat") == 3
                await a.send("from a")
                assert await asyncio.wait_for(b.recv(), WAIT) == "from a"
                assert await asyncio.wait_for(c.recv(), WAIT) == "from a"
                server.publish("chat", b"\x01\x02")
                for ws in (a, b, c):
                    assert await asyncio.wait_for(ws.recv(), WAIT) == b"\x01\x02"

    asyncio.run(main())
