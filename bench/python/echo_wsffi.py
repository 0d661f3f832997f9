"""Echo server on the wsffi Python binding's asyncio API (`wsffi.asyncio.serve`), written
exactly like echo.py for `websockets`: every message goes back with its type.

    python echo_wsffi.py [HOST:PORT] [--deflate]     (prints "listening on ADDR")
"""

import asyncio
import signal
import sys

from wsffi.asyncio import ConnectionClosed, serve


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
        print(f"listening on {server.address if ':' in server.address else host + ':' + str(server.port)}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
