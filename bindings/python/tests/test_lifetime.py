"""Object lifetimes and interpreter shutdown with connections still open."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref

import wsffi
from wsffi import _core

from conftest import WAIT, Events


def barrier(loop):
    """Returns once the loop has run everything dispatched so far plus one call."""
    done = threading.Event()
    loop.call_soon(done.set)
    assert done.wait(WAIT)


def test_connection_object_lives_exactly_as_long_as_the_connection(loop, echo_server):
    ev = Events()

    def start():
        with loop.lock:
            ws = wsffi.WebSocket(f"ws://127.0.0.1:{echo_server.port}/", loop=loop)
            ws.on("open", lambda: ws.send("keep me"))
            ws.on("message", lambda e: (ev.add("message", e.data), ws.close()))
            ws.on("close", ev.recorder("close"))
        return weakref.ref(ws)

    ref = start()  # no strong reference left here
    gc.collect()
    assert ev.wait_name("message") == ("message", "keep me")
    assert ev.wait_name("close")[1] == 1000
    barrier(loop)  # the destroy callback follows the close in the same batch
    gc.collect()
    assert ref() is None
    assert all(not isinstance(o, wsffi.WebSocket) or o.url != f"ws://127.0.0.1:{echo_server.port}/"
               for o in _core._objects.values())  # fmt: skip


def test_server_object_kept_while_listening(loop):
    ev = Events()

    def start():
        srv = wsffi.WebSocketServer(port=0, loop=loop)
        srv.on("connection", lambda ws, req: ev.add("connection"))
        return srv.port, weakref.ref(srv)

    port, ref = start()
    gc.collect()
    assert ref() is not None  # registered until the library destroys it
    with loop.lock:
        ws = wsffi.WebSocket(f"ws://127.0.0.1:{port}/", loop=loop)
        ws.on("open", lambda: ev.add("open"))
    ev.wait_for(lambda items: ("connection",) in items and ("open",) in items)
    ref().close()
    barrier(loop)


def run_script(code: str):
    env = dict(os.environ)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=WAIT * 3, env=env
    )
    assert proc.returncode == 0, f"rc={proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr and "Fatal" not in proc.stderr, proc.stderr
    return proc.stdout


def test_exit_with_open_emitter_connections():
    out = run_script(
        """
        import threading, wsffi
        srv = wsffi.WebSocketServer(port=0)
        opened = threading.Semaphore(0)
        def echo(ws, req):
            def on_message(e):
                try:
                    ws.send(e.data)
                except wsffi.InvalidStateError:  # the reactor is closing everything at exit
                    pass
            ws.on("message", on_message)
        srv.on("connection", echo)
        clients = []
        for i in range(5):
            with wsffi.default_loop().lock:
                ws = wsffi.WebSocket(f"ws://127.0.0.1:{srv.port}/")
                ws.on("open", lambda ws=ws: (ws.send("x" * 100000), opened.release()))
                ws.on("close", (lambda i: lambda code: print("closed", i, code, flush=True))(i))
                clients.append(ws)
        for _ in range(5):
            assert opened.acquire(timeout=10)
        print("exiting", flush=True)
        """
    )
    assert "exiting" in out
    # the atexit handler freed the reactor: every client saw its close
    assert sorted(line.split()[1] for line in out.splitlines() if line.startswith("closed")) == list("01234")


def test_exit_with_open_sync_connection():
    out = run_script(
        """
        import wsffi, wsffi.sync
        srv = wsffi.WebSocketServer(port=0)
        srv.on("connection", lambda ws, req: ws.on("message", lambda e: ws.send(e.data)))
        ws = wsffi.sync.connect(f"ws://127.0.0.1:{srv.port}/")
        ws.send("hi")
        print(ws.recv(timeout=5), flush=True)
        """
    )
    assert out.strip() == "hi"


def test_exit_after_asyncio_run_left_connections_open():
    out = run_script(
        """
        import asyncio, wsffi.asyncio as wa
        keep = []
        async def handler(ws):
            await ws.send("welcome")
            await asyncio.Future()  # never returns; cancelled when asyncio.run ends
        async def main():
            server = await wa.serve(handler, "127.0.0.1", 0)
            ws = await wa.connect(f"ws://127.0.0.1:{server.port}/")
            print(await ws.recv(), flush=True)
            keep.extend([server, ws])  # neither closed
        asyncio.run(main())
        print("loop closed", flush=True)
        """
    )
    assert out.split() == ["welcome", "loop", "closed"]


def test_exit_while_event_thread_is_busy():
    out = run_script(
        """
        import threading, wsffi
        srv = wsffi.WebSocketServer(port=0)
        started = threading.Event()
        def on_connection(ws, req):
            def flood():
                for _ in range(200):
                    try:
                        ws.send(b"z" * 10000)
                    except wsffi.WebSocketError:
                        return
            ws.on("open", lambda: (flood(), started.set()))
        srv.on("connection", on_connection)
        with wsffi.default_loop().lock:
            c = wsffi.WebSocket(f"ws://127.0.0.1:{srv.port}/")
            c.on("message", lambda e: c.send(e.data) if c.ready_state == 1 else None)
        assert started.wait(10)
        print("bye", flush=True)
        """
    )
    assert out.strip() == "bye"
