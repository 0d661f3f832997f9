"""The wsffi client (build/probe-client) against raw_peer_server.py, which sends frames that
break the protocol: the client must fail the connection with the right close code (seen
by the server, masked, as a client frame must be), deliver no message, and report
on_error then on_close.
"""

from __future__ import annotations

import itertools
import subprocess

import pytest

from interop_helpers import HERE, PROBE_CLIENT, PYTHON, start_listening

_run_ids = itertools.count(1)


@pytest.fixture(scope="module")
def raw_peer():
    proc, address = start_listening([PYTHON, HERE / "raw_peer_server.py", "127.0.0.1:0"], "raw-peer-server", cwd=HERE)
    try:
        yield proc, address
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


CASES = [
    ("/masked", 1002),
    ("/rsv1", 1002),
    ("/opcode-3", 1002),
    ("/ping-126", 1002),
    ("/fragmented-ping", 1002),
    ("/orphan-continuation", 1002),
    ("/bad-close-code", 1002),
    ("/too-big", 1009),
    ("/invalid-utf8", 1007),
    ("/invalid-utf8-fragment", 1007),  # only the first fragment is ever sent
]
SCENARIO = {1002: "fail-1002", 1007: "invalid-utf8", 1009: "fail-1009"}


@pytest.mark.parametrize("path,code", CASES, ids=[p.strip("/") for p, _ in CASES])
def test_client_fails_the_connection(raw_peer, path, code):
    proc, address = raw_peer
    target = f"{path}?run={next(_run_ids)}"
    scenario = SCENARIO[code]
    run = subprocess.run([PROBE_CLIENT, f"ws://{address}{target}", scenario], capture_output=True, text=True, timeout=30)
    detail = f"rc={run.returncode}\n{run.stdout}\n{run.stderr}\n{proc.describe()}"
    assert run.returncode == 0 and run.stdout.splitlines()[-1] == f"PASS {scenario}", detail
    assert not [l for l in run.stdout.splitlines() if l.startswith("message ")], detail
    closed = proc.wait_event(lambda e: e.get("event") == "closed" and e.get("target") == target, timeout=10)
    assert closed["code"] == code, f"{closed}\n{detail}"
    assert closed["masked"] is True, closed
