"""The examples run and answer as their README says."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

import wsffi.sync as ws_sync

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_protocols_example():
    out = subprocess.run([sys.executable, str(EXAMPLES / "protocols.py"), str(free_port())],
                         capture_output=True, text=True, timeout=20)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "protocol: machbase.rpc"


@pytest.fixture
def example():
    procs = []

    def start(name):
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(EXAMPLES / name), str(port)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline()  # the line printed once it listens
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def test_echo_example(example):
    port = example("echo_server.py")
    with ws_sync.connect(f"ws://127.0.0.1:{port}/") as ws:
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"


def test_verify_token_example(example):
    port = example("verify_token.py")
    with ws_sync.connect(f"ws://127.0.0.1:{port}/ws?token=allow") as ws:
        assert ws.recv(timeout=5) == "welcome, token allow"
    with pytest.raises(ws_sync.InvalidStatus) as info:
        ws_sync.connect(f"ws://127.0.0.1:{port}/ws?token=no")
    assert info.value.response.status == 403


def recv_chat(ws):
    """The next chat line, skipping join notices (a client may or may not see its own)."""
    while True:
        line = ws.recv(timeout=5)
        if not line.endswith(" joined"):
            return line


def test_chat_example(example):
    port = example("chat.py")
    a = ws_sync.connect(f"ws://127.0.0.1:{port}/chat?name=ann")
    b = ws_sync.connect(f"ws://127.0.0.1:{port}/chat?name=bob")
    b.send("hello")
    assert recv_chat(a) == "bob: hello"
    assert recv_chat(b) == "bob: hello"
    b.close()
    assert recv_chat(a) == "bob left"
    a.close()
