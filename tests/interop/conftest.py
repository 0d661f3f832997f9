"""Fixtures for the interop tests: servers started on free ports and always stopped."""

from __future__ import annotations

import signal

import pytest

from interop_helpers import ECHO_SERVER, ManagedProcess, start_listening

# Safety net: no single test may run longer than this (each test has tighter timeouts).
TEST_TIME_LIMIT = 60


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


class Server:
    def __init__(self, proc: ManagedProcess, address: str):
        self.proc = proc
        self.address = address
        self.url = f"ws://{address}"

    def assert_alive(self):
        assert self.proc.alive(), f"server died (rc={self.proc.proc.returncode})\n{self.proc.describe()}"


def _start_echo_server():
    assert ECHO_SERVER.exists(), f"{ECHO_SERVER} missing: run `make all`"
    proc, address = start_listening([ECHO_SERVER, "127.0.0.1:0"], "echo-server")
    host, port = address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0, f"bad address {address!r}"
    return Server(proc, address)


@pytest.fixture(scope="module")
def echo_server():
    """One echo-server per test module; it must still be alive when the module ends."""
    server = _start_echo_server()
    try:
        yield server
        server.assert_alive()
    finally:
        server.proc.stop()


@pytest.fixture
def own_echo_server():
    """A private echo-server for tests that stop it."""
    server = _start_echo_server()
    try:
        yield server
    finally:
        server.proc.stop()
