"""Node `ws` clients (node_client.js) against build/echo-server."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess

import pytest

from interop_helpers import HERE, NODE, TEXT_64K, ManagedProcess

SCRIPT = HERE / "node_client.js"
PROMPT_CLOSE_MS = 1500


@pytest.fixture(scope="module", autouse=True)
def node_ws_installed():
    assert (HERE / "node_modules" / "ws" / "package.json").exists(), "node_modules missing: run `make test-interop`"


def node_client(url, scenario, timeout=30):
    proc = subprocess.run(
        [NODE, str(SCRIPT), url, scenario],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    results = [l["result"] for l in lines if "result" in l]
    assert proc.returncode == 0 and results, (
        f"node client {scenario} failed (rc={proc.returncode})\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    )
    return results[-1]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_text(echo_server):
    r = node_client(echo_server.url, "text")
    assert r["isBinary"] is False
    assert r["text"] == "hello from node \u2713"


def test_binary(echo_server):
    r = node_client(echo_server.url, "binary")
    assert r["isBinary"] is True
    assert r["length"] == 1024
    assert r["sha256"] == sha(bytes(i % 256 for i in range(1024))) == r["sentSha256"]


def test_empty_text(echo_server):
    r = node_client(echo_server.url, "empty-text")
    assert r["isBinary"] is False and r["length"] == 0 and r["text"] == ""


def test_empty_binary(echo_server):
    r = node_client(echo_server.url, "empty-binary")
    assert r["isBinary"] is True and r["length"] == 0


def test_binary_1mib(echo_server):
    r = node_client(echo_server.url, "big")
    assert r["isBinary"] is True
    assert r["length"] == 1 << 20
    assert r["sha256"] == r["sentSha256"]


def test_text_64k_multibyte(echo_server):
    r = node_client(echo_server.url, "text-64k")
    assert r["isBinary"] is False
    assert r["length"] == 65536
    assert r["sha256"] == sha(TEXT_64K.encode())
    assert r["equal"] is True


def test_fragmented(echo_server):
    r = node_client(echo_server.url, "fragmented")
    assert r["text"]["isBinary"] is False
    assert r["text"]["text"] == "fragmented \u2713"
    assert r["binary"]["isBinary"] is True
    assert r["binary"]["sha256"] == sha(b"\x00\x01" + b"\x02" * 70000 + b"\xff")


def test_ping_pong(echo_server):
    r = node_client(echo_server.url, "ping")
    assert r["pongs"] == r["sent"]
    assert r["after"] == "after pings"


def test_pipelined_1000_messages(echo_server):
    r = node_client(echo_server.url, "pipelined")
    assert len(r["received"]) == 1000
    assert [m["text"] for m in r["received"]] == r["sent"]
    assert [m["isBinary"] for m in r["received"]] == [i % 2 == 1 for i in range(1000)]


def test_client_close_1000_with_reason(echo_server):
    r = node_client(echo_server.url, "close-1000")
    assert r["echo"] == "before close"
    assert r["code"] == 1000
    assert r["elapsedMs"] < PROMPT_CLOSE_MS, r


def test_client_close_4000(echo_server):
    r = node_client(echo_server.url, "close-4000")
    assert r["code"] == 4000
    assert r["elapsedMs"] < PROMPT_CLOSE_MS, r


def test_abrupt_disconnect_leaves_server_serving(echo_server):
    r = node_client(echo_server.url, "abort")
    assert r == {
        "before": "before",
        "victimEcho": "then vanish",
        "victimCode": 1006,
        "still": "still here",
        "freshEcho": "new client",
    }
    echo_server.assert_alive()


def test_sigterm_sends_1001_and_exits(own_echo_server):
    server = own_echo_server
    client = ManagedProcess([NODE, SCRIPT, server.url, "sigterm"], name="node-client", cwd=HERE)
    try:
        event = client.wait_event(lambda e: e.get("event") == "open", timeout=10)
        assert event["echo"] == "ready"
        server.proc.send_signal(signal.SIGTERM)
        result = client.wait_event(lambda e: "result" in e, timeout=10)["result"]
        assert result["code"] == 1001
        assert client.wait(10) == 0
    finally:
        client.stop()
    assert server.proc.wait(10) == 0, server.proc.describe()


def test_compression_offer_is_declined(echo_server):
    r = node_client(echo_server.url, "deflate-offer")
    assert r["offered"] and "permessage-deflate" in r["offered"]
    assert r["responseExtensions"] is None
    assert r["extensions"] == ""
    assert r["echoEqual"] is True
    assert r["closeCode"] == 1000
