"""Shared helpers for the wsffi Python tests."""

from __future__ import annotations

import signal
import threading

import pytest

import wsffi

TEST_TIME_LIMIT = 30  # safety net; every wait in the tests has its own, shorter timeout
WAIT = 10


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    def on_alarm(signum, frame):
        raise TimeoutError(f"{item.nodeid} exceeded {TEST_TIME_LIMIT}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class Events:
    """Thread-safe event log with waits (events arrive on the loop's thread)."""

    def __init__(self):
        self.items: list = []
        self.cond = threading.Condition()

    def add(self, *item):
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def recorder(self, name):
        return lambda *args: self.add(name, *args)

    def wait_for(self, pred, timeout=WAIT):
        with self.cond:
            ok = self.cond.wait_for(lambda: pred(self.items), timeout)
        assert ok, f"timed out; events so far: {self.items!r}"
        return self.items

    def wait_name(self, name, timeout=WAIT):
        items = self.wait_for(lambda items: any(isinstance(i, tuple) and i[0] == name for i in items), timeout)
        return next(i for i in items if isinstance(i, tuple) and i[0] == name)

    def names(self):
        with self.cond:
            return [i[0] for i in self.items]


@pytest.fixture
def events():
    return Events()


@pytest.fixture
def loop():
    """A private event loop on its own thread, closed (everything freed) after the test."""
    lp = wsffi.EventLoop()
    lp.start()
    yield lp
    lp.close()


@pytest.fixture
def echo_server(loop):
    srv = wsffi.WebSocketServer(port=0, loop=loop, per_message_deflate=True)

    def on_connection(ws, request):
        ws.on("message", lambda ev: ws.send(ev.data))

    srv.on("connection", on_connection)
    yield srv
    srv.close()
