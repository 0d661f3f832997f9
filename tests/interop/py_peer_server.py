"""A Python `websockets` server that the wsffi client (build/probe-client) talks to.

    python3 py_peer_server.py [--tls CERT KEY] [HOST:PORT]     (default 127.0.0.1:0)

Prints "listening on HOST:PORT" once ready, then one JSON object per line for every
event ({"event": "open" | "message" | "closed", "target": request target, ...}). Stops on
SIGTERM or SIGINT. Behaviour by request path (anything else echoes):

  /big           sends 1 MiB of binary (byte i = i % 251)
  /fragments     sends "fragmented ✓ text" and b"\\x00\\x01\\x02\\x03\\xff" in fragments
  /ping          pings with "server-ping", then sends "pong received: server-ping"
  /close         closes with ?code= (default 4001) and ?reason= (default "server bye")
  /close-empty   sends a close frame without a status code
  /drop          pings, then drops TCP without a close frame once the pong is back
  /proto         sends "protocol=<chosen>" (v1.probe is chosen, on every path, when offered)
  /headers       sends "origin=<Origin>;x-probe-token=<X-Probe-Token>"
  /reject        answers the upgrade with 403 and the body "forbidden by test server"
  /invalid-utf8  sends a text frame that is not valid UTF-8

With PEER_DEFLATE set (see compression_options) it accepts permessage-deflate.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

BIG = bytes(i % 251 for i in range(1 << 20))
INVALID_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"


def log(**event):
    print(json.dumps(event), flush=True)


def process_request(connection, request):
    if urlsplit(request.path).path == "/reject":
        log(event="rejected", target=request.path)
        return connection.respond(HTTPStatus.FORBIDDEN, "forbidden by test server")
    return None


def select_subprotocol(connection, offered):
    return "v1.probe" if "v1.probe" in offered else None


async def drain(ws, target):
    """Echo until the peer closes."""
    async for message in ws:
        is_text = isinstance(message, str)
        size = len(message.encode()) if is_text else len(message)
        log(event="message", target=target, type="text" if is_text else "binary", length=size)
        await ws.send(message)


async def handler(ws):
    target = ws.request.path
    url = urlsplit(target)
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    headers = ws.request.headers
    log(
        event="open",
        target=target,
        origin=headers.get("Origin"),
        token=headers.get("X-Probe-Token"),
        protocols=headers.get_all("Sec-WebSocket-Protocol"),
        extensions=headers.get_all("Sec-WebSocket-Extensions"),
        answer=ws.response.headers.get("Sec-WebSocket-Extensions"),
        subprotocol=ws.subprotocol,
    )
    try:
        path = url.path
        if path == "/big":
            await ws.send(BIG)
        elif path == "/fragments":
            # The check mark is split across two fragments.
            await ws.send([b"frag", b"mented \xe2\x9c", b"\x93 text"], text=True)
            await ws.send([b"\x00\x01", b"", b"\x02\x03\xff"])
        elif path == "/ping":
            pong = await ws.ping(b"server-ping")
            await asyncio.wait_for(pong, 5)
            log(event="pong", target=target)
            await ws.send("pong received: server-ping")
        elif path == "/close":
            await ws.close(int(query.get("code", 4001)), query.get("reason", "server bye"))
        elif path == "/close-empty":
            # websockets' public close() always sends a code; this is its own empty close.
            async with ws.send_context():
                ws.protocol.send_close()
        elif path == "/drop":
            pong = await ws.ping(b"before-drop")
            await asyncio.wait_for(pong, 5)
            ws.transport.abort()
            log(event="dropped", target=target)
            return
        elif path == "/proto":
            await ws.send(f"protocol={ws.subprotocol or ''}")
        elif path == "/headers":
            await ws.send(f"origin={headers.get('Origin')};x-probe-token={headers.get('X-Probe-Token')}")
        elif path == "/invalid-utf8":
            await ws.send(INVALID_UTF8, text=True)
        await drain(ws, target)
    except ConnectionClosed:
        pass
    finally:
        await ws.wait_closed()
        rcvd = ws.protocol.close_rcvd
        log(
            event="closed",
            target=target,
            code=rcvd.code if rcvd else None,
            reason=rcvd.reason if rcvd else None,
            close_code=ws.close_code,
        )


def compression_options():
    """permessage-deflate from PEER_DEFLATE: a JSON object of ServerPerMessageDeflateFactory
    parameters (e.g. {"server_max_window_bits": 10}); unset means no compression."""
    params = os.environ.get("PEER_DEFLATE")
    if params is None:
        return {"compression": None}
    return {"compression": None, "extensions": [ServerPerMessageDeflateFactory(**json.loads(params))]}


async def main(address, tls=None):
    host, port = address.rsplit(":", 1)
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with serve(
        handler,
        host,
        int(port),
        process_request=process_request,
        select_subprotocol=select_subprotocol,
        **compression_options(),
        max_size=None,
        ping_interval=None,
        close_timeout=3,
        ssl=context,
    ) as server:
        bound = server.sockets[0].getsockname()
        print(f"listening on {bound[0]}:{bound[1]}", flush=True)
        await stop


if __name__ == "__main__":
    args = sys.argv[1:]
    tls = None
    if args[:1] == ["--tls"]:
        tls, args = args[1:3], args[3:]
    asyncio.run(main(args[0] if args else "127.0.0.1:0", tls))
