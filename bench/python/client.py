"""Client-side echo benchmark: asyncio clients of `wsffi.asyncio` or `websockets`, each
keeping PIPELINE small binary messages in flight, against an echo server at ADDR.

    python client.py --impl wsffi|websockets [--conns N] [--pipeline K] [--size B]
                     [--warmup S] [--duration S] HOST:PORT

Prints one line `RESULT {"ok": true, "per_sec": ..., "client_cpu_us_per_op": ...}`: echoed
messages per second over the measured window and the client's own CPU per message. Every echo
is checked against what was sent (content and order).
"""

import argparse
import asyncio
import json
import os
import sys
import time


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--impl", choices=("wsffi", "websockets"), required=True)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("addr")
    o = ap.parse_args()
    if o.impl == "wsffi":
        from wsffi.asyncio import connect
        kw = {"compression": None, "ping_interval": None}
    else:
        from websockets.asyncio.client import connect
        kw = {"compression": None, "ping_interval": None, "max_size": None}
    url = f"ws://{o.addr}/"
    payloads = [bytes([i]) * o.size for i in range(16)]
    count = [0]
    stop = [False]

    async def one(ws):
        sent = 0
        got = 0
        for _ in range(o.pipeline):
            await ws.send(payloads[sent % 16])
            sent += 1
        while not stop[0]:
            msg = await ws.recv()
            if msg != payloads[got % 16]:
                raise RuntimeError(f"bad echo #{got}: {msg[:16]!r}")
            got += 1
            count[0] += 1
            await ws.send(payloads[sent % 16])
            sent += 1

    conns = [await connect(url, **kw) for _ in range(o.conns)]
    tasks = [asyncio.create_task(one(ws)) for ws in conns]
    try:
        await asyncio.sleep(o.warmup)
        c0, t0, p0 = count[0], time.monotonic(), time.process_time()
        await asyncio.sleep(o.duration)
        c1, t1, p1 = count[0], time.monotonic(), time.process_time()
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
    except Exception as e:  # noqa: BLE001 -- reported as a result
        print("RESULT " + json.dumps({"ok": False, "error": repr(e)[:200]}), flush=True)
        os._exit(0)
    n = c1 - c0
    res = {
        "ok": n > 0,
        "per_sec": n / (t1 - t0),
        "messages": n,
        "client_cpu_us_per_op": (p1 - p0) * 1e6 / n if n else None,
        "client_cpu_frac": (p1 - p0) / (t1 - t0),
    }
    if not n:
        res["error"] = "no echo in the measured window"
    print("RESULT " + json.dumps(res), flush=True)
    sys.stdout.flush()
    # Leave without a close handshake per connection: the server drops them.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
