"""Counters through the binding: a connection's, a server's and the Prometheus text of their
reactor, after known traffic, parsed with prometheus_client."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

import wsffi.asyncio as wa

from conftest import WAIT


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT))


async def until(cond):
    while not cond():
        await asyncio.sleep(0.005)


def test_counters_after_echoes():
    async def main():
        async def handler(ws):
            async for message in ws:
                await ws.send(message)

        async with wa.serve(handler, "127.0.0.1", 0) as server:
            ws = await wa.connect(f"ws://127.0.0.1:{server.port}/")
            for text in ("one", "two", "three"):
                await ws.send(text)
                assert await ws.recv() == text
            await until(lambda: ws.stats()["messages_in"] == 3)
            c = ws.stats()
            assert (c["messages_out"], c["buffered_bytes"]) == (3, 0)
            assert c["bytes_in"] > 0 and c["bytes_out"] > 0
            assert c["last_ping_rtt_us"] is None
            s = server.stats()
            assert (s["connections_open"], s["handshakes_accepted"], s["messages_in"]) == (1, 1, 3)
            assert s["closes_received"]["1000"] == 0 and set(s["closes_sent"]) >= {"1000", "1006", "other"}
            samples = {
                (x.name, tuple(sorted(x.labels.items()))): x.value
                for family in text_string_to_metric_families(server.metrics())
                for x in family.samples
            }
            labels = (("path", "/"), ("server", "1"))
            assert samples[("wsffi_server_messages_received_total", labels)] == 3
            assert samples[("wsffi_connections_open", ())] == 2  # the client is on the same reactor
            await ws.close()
            await until(lambda: server.stats()["connections_open"] == 0)
            assert server.stats()["closes_received"]["1000"] == 1
            assert ws.stats()["messages_in"] == 3, "final counters after close"

    run(main())
