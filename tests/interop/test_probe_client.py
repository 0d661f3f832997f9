"""The wsffi client (build/probe-client) against a Python `websockets` server and a Node `ws` server.

probe-client checks what it receives itself and prints PASS/FAIL; these tests also check
what the peer server saw (its JSON event log) for the same connection.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass

import pytest

from interop_helpers import HERE, NODE, PROBE_CLIENT, PYTHON, start_listening

PEERS = {
    "python": [PYTHON, HERE / "py_peer_server.py", "127.0.0.1:0"],
    "node": [NODE, HERE / "node_peer_server.js", "127.0.0.1:0"],
}

_run_ids = itertools.count(1)


@dataclass
class Peer:
    name: str
    proc: object
    address: str


@pytest.fixture(scope="module", params=sorted(PEERS))
def peer(request):
    assert PROBE_CLIENT.exists(), f"{PROBE_CLIENT} missing: run `make test-interop`"
    if request.param == "node":
        assert (HERE / "node_modules" / "ws").exists(), "node_modules missing: run `make test-interop`"
    proc, address = start_listening(PEERS[request.param], f"{request.param}-peer-server", cwd=HERE)
    try:
        yield Peer(request.param, proc, address)
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


@dataclass
class ProbeRun:
    target: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self):
        return self.stdout.splitlines()

    def has(self, prefix):
        return [l for l in self.lines if l.startswith(prefix)]


def probe(peer, path, scenario, query="", timeout=30):
    """Runs probe-client on ws://peer/path?run=N&query; asserts it passed."""
    target = f"{path}?run={next(_run_ids)}" + (f"&{query}" if query else "")
    url = f"ws://{peer.address}{target}"
    proc = subprocess.run([PROBE_CLIENT, url, scenario], capture_output=True, text=True, timeout=timeout)
    run = ProbeRun(target, proc.returncode, proc.stdout, proc.stderr)
    detail = f"probe-client {url} {scenario}: rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}\n{peer.proc.describe()}"
    assert proc.returncode == 0 and run.lines[-1:] == [f"PASS {scenario}"], detail
    assert len(run.has("close ")) == 1, detail
    return run


def server_event(peer, run, event, timeout=5):
    return peer.proc.wait_event(lambda e: e.get("event") == event and e.get("target") == run.target, timeout)


def server_messages(peer, run):
    """(type, byte length) of the messages the server got on this connection, once it closed."""
    server_event(peer, run, "closed")
    return [(e["type"], e["length"]) for e in peer.proc.events() if e.get("target") == run.target and e["event"] == "message"]


def assert_server_saw_close(peer, run, code, reason):
    closed = server_event(peer, run, "closed")
    assert (closed["code"], closed["reason"]) == (code, reason), closed


def test_text(peer):
    run = probe(peer, "/echo", "text")
    assert_server_saw_close(peer, run, 1000, "done")
    # Only the valid message reached the server (the invalid UTF-8 send was refused).
    sample = "hello from wsffi: \u00fcn\u00efc\u00f6d\u00e9 \u2713 \U0001F680"
    assert server_messages(peer, run) == [("text", len(sample.encode()))]


def test_binary(peer):
    run = probe(peer, "/echo", "binary")
    assert_server_saw_close(peer, run, 1000, "done")


def test_empty_messages(peer):
    run = probe(peer, "/echo", "empty")
    assert_server_saw_close(peer, run, 1000, "done")
    assert server_messages(peer, run) == [("text", 0), ("binary", 0), ("text", 11)]


def test_send_1mib(peer):
    run = probe(peer, "/echo", "big")
    assert server_messages(peer, run) == [("binary", 1 << 20)]


def test_receive_1mib(peer):
    probe(peer, "/big", "recv-big")


def test_many_messages_in_order(peer):
    run = probe(peer, "/echo", "many")
    assert_server_saw_close(peer, run, 1000, "done")


def test_receive_fragmented(peer):
    probe(peer, "/fragments", "recv-fragments")


def test_send_fragment(peer):
    # Text split inside code points with a ping between fragments, then binary in three.
    run = probe(peer, "/echo", "send-fragments")
    assert server_messages(peer, run) == [("text", len("frag \u03ba\u2713 end".encode())), ("binary", 9)]


def test_client_ping(peer):
    run = probe(peer, "/echo", "ping")
    assert run.has("pong len=10 data=probe-ping")
    assert len(run.has("pong ")) == 1  # the refused 126-byte ping never went out


def test_server_ping(peer):
    run = probe(peer, "/ping", "server-ping")
    assert run.has("ping len=11 data=server-ping")
    assert server_event(peer, run, "pong")


def test_we_close_1000(peer):
    run = probe(peer, "/echo", "close")
    assert run.has("close code=1000 clean=1 reason=bye")
    assert_server_saw_close(peer, run, 1000, "bye")


def test_we_close_4000(peer):
    run = probe(peer, "/echo", "close-4000")
    assert run.has("close code=4000 clean=1 reason=custom close")
    assert_server_saw_close(peer, run, 4000, "custom close")


def test_they_close(peer):
    run = probe(peer, "/close", "server-close", query="code=4001&reason=server%20bye")
    assert run.has("close code=4001 clean=1 reason=server bye")
    closed = server_event(peer, run, "closed")
    assert closed["code"] == 4001, f"our reply to the server's close should echo its code: {closed}"


def test_they_close_without_status(peer):
    run = probe(peer, "/close-empty", "server-close-empty")
    assert run.has("close code=1005 clean=1")
    closed = server_event(peer, run, "closed")
    # RFC 6455 5.5.1: the reply echoes the status code; with none to echo, an empty
    # close or 1000 are both fine.
    assert closed["code"] in (1005, 1000), f"unexpected reply to an empty close: {closed}"


def test_they_drop_tcp(peer):
    run = probe(peer, "/drop", "server-drop")
    assert run.has("close code=1006 clean=0")
    assert server_event(peer, run, "dropped")


def test_subprotocol(peer):
    run = probe(peer, "/proto", "subprotocol")
    assert run.has("open protocol=v1.probe")
    opened = server_event(peer, run, "open")
    assert opened["subprotocol"] == "v1.probe"
    offered = [p.strip() for h in opened["protocols"] for p in h.split(",")]
    assert offered == ["v2.probe", "v1.probe"]


def test_extra_header_and_origin(peer):
    run = probe(peer, "/headers", "headers")
    opened = server_event(peer, run, "open")
    assert opened["origin"] == "https://probe.example"
    assert opened["token"] == "token-123"


def test_rejected_upgrade(peer):
    run = probe(peer, "/reject", "reject")
    [line] = run.has("unexpected_response ")
    assert "status=403" in line and "body=forbidden by test server" in line, line
    [err] = run.has("error ")
    assert "status=302" in err, err
    assert run.has("close code=1006 clean=0")
    assert not run.has("open ")
    assert server_event(peer, run, "rejected")


def test_invalid_utf8_from_server(peer):
    run = probe(peer, "/invalid-utf8", "invalid-utf8")
    assert not run.has("message ")
    closed = server_event(peer, run, "closed")
    assert closed["code"] == 1007, f"we must fail the connection with 1007: {closed}"


def test_probe_client_reports_mismatches(peer):
    # The checker itself: an echo scenario on a path that sends something else must fail
    # with a clear message and a non-zero exit, not pass.
    url = f"ws://{peer.address}/fragments?run={next(_run_ids)}"
    proc = subprocess.run(
        [PROBE_CLIENT, url, "text"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PROBE_TIMEOUT_MS": "5000"},
    )
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("FAIL text: message #1"), proc.stdout
    assert "FAIL text" in proc.stderr


def test_probe_client_usage():
    assert subprocess.run([PROBE_CLIENT], capture_output=True, timeout=10).returncode == 2
    bad = subprocess.run([PROBE_CLIENT, "ws://127.0.0.1:1/", "no-such-scenario"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "unknown scenario" in bad.stderr
