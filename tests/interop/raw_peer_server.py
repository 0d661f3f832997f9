"""A raw TCP server that answers the WebSocket upgrade, then sends hand-built frames that
break the protocol, to see how the wsffi client (build/probe-client) fails.

    python3 raw_peer_server.py [HOST:PORT]     (default 127.0.0.1:0)

Prints "listening on HOST:PORT", then one JSON object per line: {"event": "open", "target"}
and, once the client has sent its close frame or gone, {"event": "closed", "target",
"code", "reason", "masked", "tcp_closed_by_client"}. A close frame from the client is
echoed, then the server closes TCP. Paths (see FRAMES): /masked, /rsv1, /opcode-3,
/ping-126, /fragmented-ping, /orphan-continuation, /bad-close-code, /too-big,
/invalid-utf8, /invalid-utf8-fragment.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import signal
import struct
import sys
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, length=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if mask:
        payload = mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


FRAMES = {
    "/masked": frame(0x1, b"masked by the server", mask=b"\x01\x02\x03\x04"),
    "/rsv1": frame(0x1, b"rsv1 without an extension", rsv=4),
    "/opcode-3": frame(0x3, b"reserved opcode"),
    "/ping-126": frame(0x9, b"p" * 126),
    "/fragmented-ping": frame(0x9, b"ping", fin=False),
    "/orphan-continuation": frame(0x0, b"no start"),
    "/bad-close-code": frame(0x8, struct.pack("!H", 1005)),
    # Header and nothing else: the client must answer without waiting for 1 GiB.
    "/too-big": frame(0x2, b"", length=1 << 30),
    "/invalid-utf8": frame(0x1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"),
    # First fragment only: the client must fail before the (never sent) final fragment.
    "/invalid-utf8-fragment": frame(0x1, b"valid start, then \xff", fin=False),
}


def log(**event):
    print(json.dumps(event), flush=True)


async def read_frame(reader):
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    key = await reader.readexactly(4) if b1 & 0x80 else b""
    payload = await reader.readexactly(n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, bool(b1 & 0x80), payload


async def handle(reader, writer):
    target = "?"
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        request_line, *lines = head.decode("latin-1").split("\r\n")
        target = request_line.split()[1]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        log(event="open", target=target)
        writer.write(FRAMES.get(urlsplit(target).path, b""))
        await writer.drain()

        code = reason = masked = None
        tcp_closed_by_client = False
        try:
            async with asyncio.timeout(5):
                while True:
                    opcode, masked, payload = await read_frame(reader)
                    if opcode == 0x8:
                        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                        reason = payload[2:].decode("utf-8", "replace")
                        writer.write(frame(0x8, payload))
                        await writer.drain()
                        break
        except asyncio.IncompleteReadError:
            tcp_closed_by_client = True
        except (ConnectionError, TimeoutError):
            pass
        log(event="closed", target=target, code=code, reason=reason, masked=masked,
            tcp_closed_by_client=tcp_closed_by_client)
    except Exception as exc:  # keep serving whatever one client did
        log(event="error", target=target, message=repr(exc))
    finally:
        writer.close()


async def main(address):
    host, port = address.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set_result, None)
    server = await asyncio.start_server(handle, host, int(port))
    bound = server.sockets[0].getsockname()
    print(f"listening on {bound[0]}:{bound[1]}", flush=True)
    async with server:
        await stop


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:0"))
