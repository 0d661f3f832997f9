"""The asyncio API (wsffi.asyncio), driven by the loop's add_reader on the reactor descriptor."""

from __future__ import annotations

import asyncio
import logging

import pytest

import wsffi.asyncio as wa

from conftest import WAIT


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT))


async def echo(ws):
    async for message in ws:
        await ws.send(message)


def test_echo_and_iteration_ends_on_normal_close():
    async def main():
        received = []

        async def handler(ws):
            assert ws.request.path == "/"
            async for message in ws:
                received.append(message)
                await ws.send(message)

        async with wa.serve(handler, "127.0.0.1", 0) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                assert ws.state == wa.State.OPEN
                await ws.send("text é")
                assert await ws.recv() == "text é"
                await ws.send(b"\x01\x02")
                assert await ws.recv() == b"\x01\x02"
                await ws.send("as bytes")
                assert await ws.recv(decode=False) == b"as bytes"
            assert ws.close_code == 1000
            assert ws.state == wa.State.CLOSED
        assert received == ["text é", b"\x01\x02", "as bytes"]

    run(main())


def test_connection_closed_exceptions():
    async def main():
        async def handler(ws):
            message = await ws.recv()
            if message == "fail":
                raise RuntimeError("handler failed")  # -> 1011
            await ws.close(4000, "custom")

        async with wa.serve(handler, "127.0.0.1", 0) as server:
            ws = await wa.connect(f"ws://127.0.0.1:{server.port}/")
            await ws.send("fail")
            with pytest.raises(wa.ConnectionClosedError) as info:
                await ws.recv()
            assert info.value.code == 1011
            assert info.value.rcvd == wa.Close(1011, "") and info.value.sent == wa.Close(1011, "")
            with pytest.raises(wa.ConnectionClosedError):
                await ws.send("after close")

            ws = await wa.connect(f"ws://127.0.0.1:{server.port}/")
            await ws.send("other")
            with pytest.raises(wa.ConnectionClosedError) as info:
                await ws.recv()
            assert (info.value.code, info.value.reason) == (4000, "custom")

            ws = await wa.connect(f"ws://127.0.0.1:{server.port}/")
            await ws.close()
            with pytest.raises(wa.ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.code == 1000
            with pytest.raises(wa.ConnectionClosed):
                await ws.send("x")
            with pytest.raises(wa.ConnectionClosed):
                await ws.ping()

    logging.getLogger("wsffi.asyncio").disabled = True
    try:
        run(main())
    finally:
        logging.getLogger("wsffi.asyncio").disabled = False


def test_ping_returns_pong_waiter():
    async def main():
        async with wa.serve(echo, "127.0.0.1", 0) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                waiter = await ws.ping(b"abc")
                latency = await waiter
                assert latency >= 0
                waiter2 = await ws.ping()
                await waiter2

    run(main())


def test_subprotocols_and_compression():
    async def main():
        async def handler(ws):
            await ws.send(f"{ws.subprotocol}|{ws.extensions}")
            await ws.wait_closed()

        async with wa.serve(handler, "127.0.0.1", 0, subprotocols=["v2", "v1"], compression="deflate") as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["v1", "v2"]) as ws:
                assert ws.subprotocol == "v2"
                proto, ext = (await ws.recv()).split("|")
                assert proto == "v2" and ext.startswith("permessage-deflate")
                assert ws.extensions.startswith("permessage-deflate")
            async with wa.connect(f"ws://127.0.0.1:{server.port}/", subprotocols=["v3"], compression=None) as ws:
                assert ws.subprotocol is None
                assert await ws.recv() == "None|"

    run(main())


def test_select_subprotocol_and_process_request():
    async def main():
        def process_request(request):
            if request.query("token") != "allow":
                return 403, "Forbidden"
            return None

        def select(request, offered):
            return "b" if "b" in offered else None

        async with wa.serve(echo, "127.0.0.1", 0, process_request=process_request, select_subprotocol=select) as server:
            with pytest.raises(wa.InvalidStatus) as info:
                await wa.connect(f"ws://127.0.0.1:{server.port}/?token=no")
            assert info.value.response.status == 403
            async with wa.connect(f"ws://127.0.0.1:{server.port}/?token=allow", subprotocols=["a", "b"]) as ws:
                assert ws.subprotocol == "b"

    run(main())


def test_max_size_1009():
    async def main():
        async with wa.serve(echo, "127.0.0.1", 0, max_size=100) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("x" * 100)
                assert await ws.recv() == "x" * 100
                await ws.send("x" * 101)
                with pytest.raises(wa.ConnectionClosedError) as info:
                    await ws.recv()
                assert info.value.code == 1009

    run(main())


def test_connect_failures():
    async def main():
        with pytest.raises(wa.WebSocketError) as info:
            await wa.connect("ws://127.0.0.1:1/")
        assert info.value.status == 402
        async with wa.serve(echo, "127.0.0.1", 0, path="/only") as server:
            with pytest.raises(wa.InvalidStatus) as info:
                await wa.connect(f"ws://127.0.0.1:{server.port}/other")
            assert info.value.response.status == 404

    run(main())


def test_server_close_sends_1001_and_waits_for_handlers():
    async def main():
        done = []
        all_in = asyncio.Event()

        async def handler(ws):
            if len(server.connections) == 3:
                all_in.set()
            try:
                await ws.recv()
            except wa.ConnectionClosed as exc:
                done.append(exc.code)

        server = await wa.serve(handler, "127.0.0.1", 0)
        clients = [await wa.connect(f"ws://127.0.0.1:{server.port}/") for _ in range(3)]
        await all_in.wait()
        server.close()
        await server.wait_closed()
        assert done == [1001, 1001, 1001]
        for ws in clients:
            with pytest.raises(wa.ConnectionClosedOK) as info:
                await ws.recv()
            assert info.value.code == 1001

    run(main())


def test_concurrent_recv_refused_and_cancel_is_safe():
    async def main():
        async with wa.serve(echo, "127.0.0.1", 0) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                first = asyncio.ensure_future(ws.recv())
                await asyncio.sleep(0)
                with pytest.raises(RuntimeError):
                    await ws.recv()
                first.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await first
                await ws.send("still works")
                assert await ws.recv() == "still works"

    run(main())


def test_reactor_freed_when_last_connection_is_gone():
    async def main():
        async with wa.serve(echo, "127.0.0.1", 0) as server:
            async with wa.connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.send("x")
                await ws.recv()
            lr = wa._by_loop[asyncio.get_running_loop()]
        # every connection and the server are destroyed: the reactor goes at the next turn
        for _ in range(10):
            if not lr.reactor.alive:
                break
            await asyncio.sleep(0)
        assert not lr.reactor.alive

    run(main())
