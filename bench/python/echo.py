"""Echo server on Python `websockets` (asyncio): every message goes back with its type.

    python echo.py [HOST:PORT] [--deflate]     (prints "listening on ADDR")
"""

import asyncio
import signal
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


async def echo(ws):
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass


async def main():
    args = sys.argv[1:]
    deflate = "--deflate" in args
    addr = next((a for a in args if not a.startswith("--")), "127.0.0.1:0")
    host, port = addr.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with serve(
        echo,
        host,
        int(port),
        compression="deflate" if deflate else None,
        max_size=64 * 1024 * 1024,
        ping_interval=None,
    ) as server:
        bound = server.sockets[0].getsockname()
        print(f"listening on {bound[0]}:{bound[1]}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
