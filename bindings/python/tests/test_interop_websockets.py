"""Interop with the `websockets` package (pinned in tests/interop/requirements.txt): its
clients against our servers, our clients against its server."""

from __future__ import annotations

import asyncio
import threading

import pytest

websockets = pytest.importorskip("websockets")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.asyncio.server import serve as ws_serve  # noqa: E402
from websockets.sync.client import connect as ws_sync_connect  # noqa: E402

import wsffi  # noqa: E402
import wsffi.asyncio as wa  # noqa: E402
import wsffi.sync as ws_sync  # noqa: E402

from conftest import WAIT, Events  # noqa: E402


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT))


# ---- their client, our servers --------------------------------------------------------------


def test_websockets_client_against_emitter_server(loop):
    seen = Events()
    srv = wsffi.WebSocketServer(
        port=0, loop=loop, path="/ws", per_message_deflate=True,
        verify_client=lambda info: info.req.get_header("authorization") == "Bearer t0k",
        handle_protocols=lambda protocols, req: "chat.v2" if "chat.v2" in protocols else None,
    )  # fmt: skip

    def on_connection(ws, req):
        seen.add("conn", req.get_header("user-agent"))
        ws.on("message", lambda ev: ws.send(ev.data))
        ws.on("close", seen.recorder("close"))

    srv.on("connection", on_connection)
    url = f"ws://127.0.0.1:{srv.port}/ws"
    with ws_sync_connect(url, subprotocols=["chat.v1", "chat.v2"], additional_headers={"Authorization": "Bearer t0k"}) as c:
        assert c.subprotocol == "chat.v2"
        assert "permessage-deflate" in c.response.headers["Sec-WebSocket-Extensions"]
        c.send("hello")
        assert c.recv(timeout=5) == "hello"
        big = bytes(range(256)) * 4000
        c.send(big)
        assert c.recv(timeout=5) == big
        c.close(4100, "their close")
    assert seen.wait_name("close") == ("close", 4100, "their close")
    assert "websockets" in seen.wait_name("conn")[1].lower() or seen.items[0][1]

    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        ws_sync_connect(url, open_timeout=5)
    assert info.value.response.status_code == 401
    srv.close()


def test_websockets_client_against_asyncio_server():
    async def main():
        async def handler(ws):
            async for message in ws:
                await ws.send(message)
            # the peer closed: the iteration ended normally

        async with wa.serve(handler, "127.0.0.1", 0, compression="deflate") as server:
            async with ws_connect(f"ws://127.0.0.1:{server.port}/") as c:
                assert "permessage-deflate" in c.response.headers["Sec-WebSocket-Extensions"]
                for msg in ("a", b"b", "c" * 70000):
                    await c.send(msg)
                    assert await c.recv() == msg
                pong = await c.ping()
                await pong
            assert c.close_code == 1000

            # our server closing: 1001 on shutdown, seen by their client
            c = await ws_connect(f"ws://127.0.0.1:{server.port}/")
            server.close()
            with pytest.raises(websockets.exceptions.ConnectionClosedOK) as info:
                await c.recv()
            assert info.value.rcvd.code == 1001

    run(main())


def test_websockets_client_exceeds_our_max_payload(loop):
    srv = wsffi.WebSocketServer(port=0, loop=loop, max_payload=1000)
    srv.on("connection", lambda ws, req: ws.on("message", lambda ev: ws.send(ev.data)))
    with ws_sync_connect(f"ws://127.0.0.1:{srv.port}/") as c:
        c.send("y" * 1001)
        with pytest.raises(websockets.exceptions.ConnectionClosedError) as info:
            c.recv(timeout=5)
        assert info.value.rcvd.code == 1009
    srv.close()


# ---- our clients, their server ---------------------------------------------------------------


class TheirServer:
    """A websockets server on its own thread and loop: echoes, and closes with 4000 on 'bye'."""

    def __init__(self, **kw):
        self.ready = threading.Event()
        self.requests = []
        self.kw = kw
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        assert self.ready.wait(WAIT)

    async def _handler(self, ws):
        self.requests.append((ws.request.path, dict(ws.request.headers), ws.subprotocol))
        async for message in ws:
            if message == "bye":
                await ws.close(4000, "their bye")
                return
            await ws.send(message)

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        self.stop = self.loop.create_future()
        async with ws_serve(self._handler, "127.0.0.1", 0, **self.kw) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            await self.stop

    def close(self):
        self.loop.call_soon_threadsafe(self.stop.set_result, None)
        self.thread.join(WAIT)


@pytest.fixture
def their_server():
    s = TheirServer(subprotocols=["p1", "p2"])
    yield s
    s.close()


def test_asyncio_client_against_websockets_server(their_server):
    async def main():
        url = f"ws://127.0.0.1:{their_server.port}/path?q=1"
        async with wa.connect(url, subprotocols=["p2"], additional_headers={"X-Hello": "there"}) as ws:
            assert ws.subprotocol == "p2"
            assert ws.extensions.startswith("permessage-deflate")
            for msg in ("one", b"two", "three" * 30000):
                await ws.send(msg)
                assert await ws.recv() == msg
            await ws.send("bye")
            with pytest.raises(wa.ConnectionClosedError) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (4000, "their bye")
        path, headers, proto = their_server.requests[-1]
        assert path == "/path?q=1" and headers["x-hello"] == "there" and proto == "p2"

    run(main())


def test_emitter_client_against_websockets_server(loop, their_server):
    ev = Events()
    with loop.lock:
        ws = wsffi.WebSocket(f"ws://127.0.0.1:{their_server.port}/", ["p1"], loop=loop)
        ws.on("open", lambda: (ws.send("ping-me"), ws.ping(b"x")))
        ws.on("message", lambda e: (ev.add("message", e.data), ws.send("bye")))
        ws.on("pong", ev.recorder("pong"))
        ws.on("close", ev.recorder("close"))
    assert ev.wait_name("message") == ("message", "ping-me")
    assert ev.wait_name("pong") == ("pong", b"x")
    assert ev.wait_name("close") == ("close", 4000, "their bye")
    assert ws.protocol == "p1"


def test_sync_client_against_websockets_server(their_server):
    with ws_sync.connect(f"ws://127.0.0.1:{their_server.port}/", subprotocols=["p1"], compression=None) as ws:
        assert ws.extensions == ""
        ws.send(b"\x00" * 200000)
        assert ws.recv(timeout=5) == b"\x00" * 200000
        ws.close(1001, "going")
    assert ws.close_code == 1001


def test_client_max_payload_against_websockets_server(their_server):
    # uncompressed: with permessage-deflate the frame of an incompressible 10-byte message is
    # longer than 10 bytes, and the frame's length counts against max_payload too (as in Node's ws)
    url = f"ws://127.0.0.1:{their_server.port}/"
    with ws_sync.connect(url, subprotocols=["p1"], max_size=10, compression=None) as ws:
        ws.send("0123456789")
        assert ws.recv(timeout=5) == "0123456789"
        ws.send("0123456789A")
        with pytest.raises(ws_sync.ConnectionClosedError) as info:
            ws.recv(timeout=5)
        assert info.value.code == 1009
