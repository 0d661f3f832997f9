"""Python `websockets` clients against build/echo-server."""

from __future__ import annotations

import asyncio
import random
import signal
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from interop_helpers import TEXT_64K

CLOSE_TIMEOUT = 3.0
# A server that closes TCP right after the close handshake lets the client finish well
# before its close timeout.
PROMPT_CLOSE = 1.5


def run(coro, timeout=20.0):
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


def client(url, **kw):
    options = dict(
        compression=None,
        max_size=None,
        ping_interval=None,
        open_timeout=5,
        close_timeout=CLOSE_TIMEOUT,
    )
    options.update(kw)
    return connect(url, **options)


async def echo(ws, message, timeout=5.0):
    await ws.send(message)
    async with asyncio.timeout(timeout):
        return await ws.recv()


def test_text(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            assert ws.subprotocol is None
            reply = await echo(ws, "hello, echo-server \u2713")
            assert isinstance(reply, str)
            assert reply == "hello, echo-server \u2713"

    run(main())


def test_query_string_does_not_change_the_path(echo_server):
    # The server is attached at "/": "/?room=1" is the same path.
    async def main():
        async with client(echo_server.url + "/?room=1&x=%20y") as ws:
            assert await echo(ws, "query") == "query"

    run(main())


def test_binary(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            data = bytes(range(256)) * 4
            reply = await echo(ws, data)
            assert isinstance(reply, bytes)
            assert reply == data

    run(main())


def test_empty_text(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            reply = await echo(ws, "")
            assert reply == "" and isinstance(reply, str)

    run(main())


def test_empty_binary(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            reply = await echo(ws, b"")
            assert reply == b"" and isinstance(reply, bytes)

    run(main())


def test_binary_1mib(echo_server):
    async def main():
        data = random.Random(1).randbytes(1 << 20)
        async with client(echo_server.url) as ws:
            reply = await echo(ws, data, timeout=10)
            assert isinstance(reply, bytes)
            assert len(reply) == len(data)
            assert reply == data

    run(main())


def test_text_64k_multibyte(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            reply = await echo(ws, TEXT_64K)
            assert isinstance(reply, str)
            assert reply == TEXT_64K

    run(main())


def test_fragmented_text(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            await ws.send(["frag", "mented ", "\u2713"])
            assert await ws.recv() == "fragmented \u2713"
            # Fragment boundaries inside code points ("é" and "✓").
            await ws.send([b"caf\xc3", b"\xa9 \xe2\x9c", b"\x93"], text=True)
            assert await ws.recv() == "caf\u00e9 \u2713"

    run(main())


def test_fragmented_binary(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            await ws.send([b"\x00\x01", b"", b"\x02" * 70000, b"\xff"])
            reply = await ws.recv()
            assert reply == b"\x00\x01" + b"\x02" * 70000 + b"\xff"

    run(main())


def test_ping_pong(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            for payload in (b"ping-1", b"", bytes(range(125))):
                pong = await ws.ping(payload)
                async with asyncio.timeout(5):
                    await pong  # resolves only on a pong carrying the same payload
            # The connection still echoes after the pings.
            assert await echo(ws, "after pings") == "after pings"

    run(main())


def test_pipelined_1000_messages(echo_server):
    async def main():
        messages = [f"msg {i:04d}" if i % 2 == 0 else f"bin {i:04d}".encode() for i in range(1000)]
        async with client(echo_server.url) as ws:
            for m in messages:
                await ws.send(m)
            received = []
            async with asyncio.timeout(10):
                for _ in messages:
                    received.append(await ws.recv())
            assert received == messages

    run(main())


def _closed_promptly(ws, started):
    elapsed = time.monotonic() - started
    assert ws.state is State.CLOSED
    assert elapsed < PROMPT_CLOSE, f"close took {elapsed:.2f}s: the server did not close TCP after the close handshake"


def test_client_close_1000_with_reason(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            assert await echo(ws, "before close") == "before close"
            started = time.monotonic()
            await ws.close(1000, "bye")
            _closed_promptly(ws, started)
            assert ws.protocol.close_sent.code == 1000
            assert ws.protocol.close_rcvd is not None, "no close frame from the server"
            assert ws.protocol.close_rcvd.code == 1000
            assert ws.protocol.close_rcvd_then_sent is False

    run(main())


def test_client_close_4000(echo_server):
    async def main():
        async with client(echo_server.url) as ws:
            started = time.monotonic()
            await ws.close(4000, "application code")
            _closed_promptly(ws, started)
            assert ws.protocol.close_rcvd is not None, "no close frame from the server"
            assert ws.protocol.close_rcvd.code == 4000

    run(main())


def test_abrupt_disconnect_leaves_server_serving(echo_server):
    async def main():
        async with client(echo_server.url) as bystander:
            assert await echo(bystander, "before") == "before"

            # A client that vanishes after a complete exchange...
            async with client(echo_server.url) as ws:
                assert await echo(ws, "then vanish") == "then vanish"
                ws.transport.abort()
            # ...and one that vanishes in the middle of sending a large message.
            async with client(echo_server.url) as ws:
                ws.transport.write(b"\x82\xff" + (1 << 20).to_bytes(8, "big") + b"\x00\x00\x00\x00" + b"x" * 1000)
                ws.transport.abort()

            await asyncio.sleep(0.2)
            assert await echo(bystander, "still here") == "still here"
            async with client(echo_server.url) as fresh:
                assert await echo(fresh, "new client") == "new client"

    run(main())
    echo_server.assert_alive()


def test_sigterm_sends_1001_and_exits(own_echo_server):
    server = own_echo_server

    async def main():
        async with client(server.url) as a, client(server.url) as b:
            assert await echo(a, "a") == "a"
            assert await echo(b, "b") == "b"
            server.proc.send_signal(signal.SIGTERM)
            for ws in (a, b):
                with pytest.raises(ConnectionClosed) as info:
                    async with asyncio.timeout(5):
                        await ws.recv()
                assert info.value.rcvd is not None, "no close frame from the server"
                assert info.value.rcvd.code == 1001
            for ws in (a, b):
                async with asyncio.timeout(5):
                    await ws.wait_closed()

    run(main())
    assert server.proc.wait(10) == 0, server.proc.describe()


def test_compression_offer_is_declined(echo_server):
    async def main():
        async with connect(echo_server.url, ping_interval=None, open_timeout=5, close_timeout=CLOSE_TIMEOUT) as ws:
            offered = ws.request.headers.get("Sec-WebSocket-Extensions", "")
            assert "permessage-deflate" in offered
            assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
            assert ws.protocol.extensions == []
            text = "compressible " * 1000
            assert await echo(ws, text) == text
            data = bytes(5000)
            assert await echo(ws, data) == data

    run(main())


def test_subprotocol_default_choice(echo_server):
    # Without handle_protocols the server picks the first protocol the client offers.
    async def main():
        async with client(echo_server.url, subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert await echo(ws, "proto") == "proto"

    run(main())


def test_large_messages_pipelined_with_flow_control(echo_server):
    # 24 MiB in flight while reading concurrently: the server pauses reading above its
    # high-water mark and resumes on drain; every message must come back, in order.
    async def main():
        messages = [bytes([i]) * (1 << 20) for i in range(24)]
        async with client(echo_server.url, max_queue=4) as ws:

            async def sender():
                for m in messages:
                    await ws.send(m)

            async def receiver():
                got = []
                for _ in messages:
                    got.append(await ws.recv())
                return got

            _, got = await asyncio.gather(sender(), receiver())
            assert [len(g) for g in got] == [1 << 20] * len(messages)
            assert [g[0] for g in got] == list(range(len(messages)))
            assert got == messages

    run(main(), timeout=40)


def test_many_concurrent_clients(echo_server):
    async def one(i):
        async with client(echo_server.url) as ws:
            for j in range(20):
                m = f"client {i} message {j}"
                await ws.send(m)
                assert await ws.recv() == m
            await ws.close(1000)
            assert ws.protocol.close_rcvd.code == 1000

    async def main():
        await asyncio.gather(*(one(i) for i in range(50)))

    run(main(), timeout=30)
