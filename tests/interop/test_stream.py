"""Streaming receive against a real peer: a Python `websockets` client sends one large
compressed message in fragments to `build/echo-server --stream --deflate`, which echoes
each inflated part back as a fragment as it arrives. The client streams the echo back in
(`recv_streaming`) and compares it with what it sent, and the server's peak resident memory
stays far below the message size.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from websockets.asyncio.client import connect

from interop_helpers import ECHO_SERVER, start_listening

MESSAGE = 512 << 20
CHUNK = 1 << 20
# The server may grow by this much while the message passes through.
RSS_GROWTH_LIMIT = 64 << 20


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} missing")


def chunk(k: int) -> bytes:
    # Compressible, and different from chunk to chunk (so reordering would show).
    line = f"chunk {k:06d}: the quick brown fox jumps over the lazy dog\n".encode()
    return (line * (CHUNK // len(line) + 1))[:CHUNK]


@pytest.fixture
def stream_server():
    assert ECHO_SERVER.exists(), f"{ECHO_SERVER} missing: run `make all`"
    proc, address = start_listening([ECHO_SERVER, "--stream", "--deflate", "127.0.0.1:0"], "echo-server --stream")
    try:
        yield proc, address
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def test_large_compressed_message_streams_through_in_constant_memory(stream_server):
    proc, address = stream_server
    pid = proc.proc.pid

    async def run():
        async with connect(f"ws://{address}/", max_size=None, compression="deflate") as ws:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            assert "permessage-deflate" in ext, ext
            baseline = status_kb(pid, "VmRSS:")
            sent = hashlib.sha256()

            async def fragments():
                for k in range(MESSAGE // CHUNK):
                    data = chunk(k)
                    sent.update(data)
                    yield data

            async def receive():
                got, n, frames = hashlib.sha256(), 0, 0
                async for frag in ws.recv_streaming():
                    got.update(frag)
                    n += len(frag)
                    frames += 1
                return got.hexdigest(), n, frames

            reader = asyncio.create_task(receive())
            await ws.send(fragments())
            digest, n, frames = await asyncio.wait_for(reader, 300)
            assert n == MESSAGE
            assert digest == sent.hexdigest()
            # The echo came back as the parts arrived, not as one message.
            assert frames > MESSAGE // (64 << 10)
            peak = status_kb(pid, "VmHWM:")
            print(f"server RSS {baseline >> 20} MiB -> peak {peak >> 20} MiB, {frames} echoed fragments")
            assert peak - baseline < RSS_GROWTH_LIMIT, f"server grew from {baseline >> 20} to {peak >> 20} MiB"
            # The connection is still good for ordinary messages.
            await ws.send("after")
            assert await ws.recv() == "after"

    asyncio.run(run())
