"""A real browser against build/echo-server: headless Chromium (driven by browser_client.js
through playwright-core) opens `new WebSocket(...)` from a page on 127.0.0.1.

Chromium offers permessage-deflate on every connection: against `echo-server --deflate`
the browser must report the extension as negotiated, against the plain server it must
report none; in both cases every echo (text and binary, empty to 1 MiB, and a burst of
back-to-back messages) must come back identical and in order, and the close is clean.
`make test-interop` installs Debian's chromium when it is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from interop_helpers import ECHO_SERVER, HERE, NODE, TEXT_64K, start_listening

SCRIPT = HERE / "browser_client.js"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
BROWSER_RUN_MS = 30000

EXPECTED_ECHOES = [
    # name, type, UTF-8 / byte length
    ("json", "text", None),
    ("text-64k", "text", 65536),
    ("text-1mib-random", "text", 1 << 20),
    ("binary-small", "binary", 8),
    ("binary-100k-patterned", "binary", 100 * 1024),
    ("binary-1mib-random", "binary", 1 << 20),
    ("text-empty", "text", 0),
    ("binary-empty", "binary", 0),
]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Payloads the page builds deterministically, recomputed here so the check does not rely on
# the page's own comparison alone.
KNOWN_SHA256 = {
    "text-64k": sha(TEXT_64K.encode()),
    "binary-small": sha(bytes([0, 1, 2, 3, 0xFE, 0xFF, 0x80, 0x7F])),
    "binary-100k-patterned": sha(bytes(((i * 7 + (i >> 10)) & 0xFF) for i in range(100 * 1024))),
    "text-empty": sha(b""),
    "binary-empty": sha(b""),
}


def require_browser():
    """A missing browser fails the test (never skips it)."""
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: run `make test-interop` (or `make interop-browser`), "
        "which installs Debian's chromium package"
    )
    assert (HERE / "node_modules" / "playwright-core" / "package.json").exists(), (
        "node_modules/playwright-core missing: run `make test-interop` (npm ci in tests/interop)"
    )


@pytest.fixture(params=[True, False], ids=["deflate", "plain"])
def server(request):
    deflate = request.param
    assert ECHO_SERVER.exists(), f"{ECHO_SERVER} missing: run `make all`"
    argv = [ECHO_SERVER, *(["--deflate"] if deflate else []), "127.0.0.1:0"]
    proc, address = start_listening(argv, "echo-server" + (" --deflate" if deflate else ""))
    host, port = address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0, f"bad address {address!r}"
    try:
        yield deflate, address, proc
    finally:
        proc.stop()


def browser_client(url, server_proc):
    env = dict(os.environ, CHROMIUM=str(CHROMIUM), BROWSER_CLIENT_TIMEOUT_MS=str(BROWSER_RUN_MS))
    proc = subprocess.run(
        [NODE, str(SCRIPT), url],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=BROWSER_RUN_MS / 1000 + 15,
    )
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    results = [l["result"] for l in lines if "result" in l]
    assert proc.returncode == 0 and len(results) == 1, (
        f"browser client failed (rc={proc.returncode})\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-3000:]}\n{server_proc.describe()}"
    )
    return results[0]


def test_browser_echo(server):
    require_browser()
    deflate, address, proc = server
    r = browser_client(f"ws://{address}/", proc)

    # The negotiation the browser saw: Chromium always offers permessage-deflate.
    if deflate:
        assert "permessage-deflate" in r["extensions"], r["extensions"]
        assert r["extensions"].split(";")[0].strip() == "permessage-deflate", r["extensions"]
    else:
        assert r["extensions"] == "", r["extensions"]
    assert r["protocol"] == ""
    assert r["isSecureContext"] is True and r["pageOrigin"].startswith("http://127.0.0.1:")

    echoes = r["echoes"]
    assert [e["name"] for e in echoes] == [name for name, _, _ in EXPECTED_ECHOES]
    for (name, kind, length), e in zip(EXPECTED_ECHOES, echoes):
        assert e["sentType"] == kind, e
        assert e["gotType"] == kind, f"{name}: echoed as {e['gotType']}, sent as {kind}"
        if length is not None:
            assert e["sentLength"] == length, e
        assert e["gotLength"] == e["sentLength"], e
        assert e["gotSha256"] == e["sentSha256"], e
        assert e["equal"] is True, e
        if name in KNOWN_SHA256:
            assert e["gotSha256"] == KNOWN_SHA256[name], e

    burst = r["burst"]
    assert burst == {"sent": 200, "received": 200, "inOrder": True, "firstMismatch": -1}, burst
    assert r["unexpectedBeforeClose"] == 0 and r["unexpectedAfterClose"] == 0, r

    assert r["close"]["code"] == 1000, r["close"]
    assert r["close"]["wasClean"] is True, r["close"]
    assert r["readyState"] == 3  # CLOSED
    assert r["errors"] == 0, r
    assert r["consoleErrors"] == [], r["consoleErrors"]

    assert proc.alive(), f"server died (rc={proc.proc.returncode})\n{proc.describe()}"
