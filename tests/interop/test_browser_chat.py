"""The browser chat demo end to end: build/chat-server serves its chat page over plain HTTP
(and, with --tls, HTTPS) from the library's HTTP handler on the WebSocket port; two headless
Chromium pages load it, join as alice and bob, talk, and bob leaves. Each page must show the
join notices, both messages and the leave notice, in order; a screenshot of alice's page is
saved as build/browser-chat-{plain,tls}.png. Over TLS the browser trusts exactly the test
server certificate (by its public key hash), nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import ssl
from pathlib import Path

import pytest

from interop_helpers import BUILD, HERE, NODE, start_listening

CHAT_SERVER = BUILD / "chat-server"
SCRIPT = HERE / "browser_chat.js"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CERTS_TOOL = BUILD / "tls-test-certs"


def spki_sha256(cert_pem: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's SPKI list wants."""
    der = ssl.PEM_cert_to_DER_cert(cert_pem.read_text())
    out = subprocess.run(
        ["openssl", "x509", "-inform", "DER", "-pubkey", "-noout"], input=der, capture_output=True, check=True
    ).stdout
    key_der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "DER"], input=out, capture_output=True, check=True
    ).stdout
    return base64.b64encode(hashlib.sha256(key_der).digest()).decode()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("chat-certs")
    subprocess.run([CERTS_TOOL, d], check=True)
    return d


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_two_browser_pages_chat_through_the_c_server(tls, certs):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: run `make interop-browser`"
    assert CHAT_SERVER.exists(), f"{CHAT_SERVER} missing: run `make all`"
    argv = [CHAT_SERVER, *(["--tls", certs / "server.pem", certs / "server.key"] if tls else []), "127.0.0.1:0"]
    proc, address = start_listening(argv, "chat-server")
    try:
        scheme = "https" if tls else "http"
        # The server says where to point a browser.
        _, opened = proc.wait_line(lambda l: l.startswith("open "), 5)
        assert opened.strip() == f"open {scheme}://{address}/ in a browser", opened
        # The test certificate names localhost, so the page is loaded by that name.
        port = address.rsplit(":", 1)[1]
        url = f"{scheme}://{'localhost' if tls else '127.0.0.1'}:{port}/"
        shot = BUILD / f"browser-chat-{'tls' if tls else 'plain'}.png"
        shot.unlink(missing_ok=True)
        args = [NODE, str(SCRIPT), url, str(shot), *([spki_sha256(certs / "server.pem")] if tls else [])]
        run = subprocess.run(args, cwd=HERE, capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, CHROMIUM=str(CHROMIUM)))
        lines = [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{")]
        assert run.returncode == 0 and lines and "result" in lines[-1], (
            f"browser run failed (rc={run.returncode})\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}\n{proc.describe()}"
        )
        r = lines[-1]["result"]
        assert r["scheme"] == f"{scheme}:"
        assert r["alice"] == ["connected", "alice joined", "bob joined", "alice: hello bob",
                              "bob: hi alice, bye", "bob left"], r["alice"]
        assert r["bob"] == ["connected", "bob joined", "alice: hello bob", "bob: hi alice, bye"], r["bob"]
        assert r["consoleErrors"] == [], r["consoleErrors"]
        assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot at {shot}"
        # The server's log saw the same room.
        for line in ("alice joined", "bob joined", "alice: hello bob", "bob: hi alice, bye", "bob left"):
            proc.wait_line(lambda l, want=line: l.strip() == want, 5)
        assert proc.alive(), f"chat-server died\n{proc.describe()}"
    finally:
        proc.stop()
