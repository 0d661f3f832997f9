"""build/chat-server's /metrics: after known chat traffic from Python websockets clients, the
Prometheus text served by the library's plain-HTTP handler parses with prometheus_client's
own parser and its numbers match the traffic (handshakes accepted and refused, messages,
open connections, close codes, the HTTP requests themselves).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from interop_helpers import BUILD, start_listening

CHAT_SERVER = BUILD / "chat-server"


def scrape(address: str) -> tuple[dict, str]:
    """GET /metrics: {(sample name, frozenset of labels): value} and the Content-Type."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as resp:
        assert resp.status == 200
        kind = resp.headers["Content-Type"]
        text = resp.read().decode()
    samples = {}
    families = list(text_string_to_metric_families(text))
    assert families, text
    for family in families:
        assert family.documentation, f"{family.name} has no HELP"
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = s.value
    return samples, kind


def value(samples: dict, name: str, **labels) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}; have {sorted(k for k in samples if k[0] == name)}"
    return samples[key]


CHAT = {"server": "1", "path": "/chat"}


async def expect(ws, line: str):
    got = await asyncio.wait_for(ws.recv(), 5)
    assert got == line


async def chat(url: str):
    alice = await connect(f"{url}/chat?name=alice")
    await expect(alice, "alice joined")
    bob = await connect(f"{url}/chat?name=bob")
    await expect(alice, "bob joined")
    await expect(bob, "bob joined")
    for ws, text in ((alice, "hello bob"), (bob, "hi alice"), (alice, "bye")):
        await ws.send(text)
        name = "alice" if ws is alice else "bob"
        await expect(alice, f"{name}: {text}")
        await expect(bob, f"{name}: {text}")
    # A name with a control character is refused by the example's verify_client.
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{url}/chat?name=a%0Ab")
    assert refused.value.response.status_code == 400
    return alice, bob


def test_metrics_follow_the_chat():
    assert CHAT_SERVER.exists(), f"{CHAT_SERVER} missing: run `make all`"
    proc, address = start_listening([CHAT_SERVER, "127.0.0.1:0"], "chat-server")
    loop = asyncio.new_event_loop()
    try:
        before, _ = scrape(address)
        assert value(before, "wsffi_connections_open") == 0
        assert value(before, "wsffi_server_handshakes_accepted_total", **CHAT) == 0
        assert value(before, "wsffi_http_requests_total") == 1, "the scrape itself"

        alice, bob = loop.run_until_complete(chat(f"ws://{address}"))
        m, kind = scrape(address)
        assert kind.startswith("text/plain; version=0.0.4"), kind
        assert value(m, "wsffi_connections_open") == 2
        assert value(m, "wsffi_server_connections_open", **CHAT) == 2
        assert value(m, "wsffi_server_handshakes_accepted_total", **CHAT) == 2
        assert value(m, "wsffi_handshakes_accepted_total") == 2
        assert value(m, "wsffi_server_handshakes_refused_total", reason="verify_client", **CHAT) == 1
        assert value(m, "wsffi_handshakes_refused_total", reason="verify_client") == 1
        assert value(m, "wsffi_handshakes_refused_total", reason="origin") == 0
        # Three chat lines in; out: "alice joined" to one, "bob joined" and each line to two.
        assert value(m, "wsffi_server_messages_received_total", **CHAT) == 3
        assert value(m, "wsffi_server_messages_sent_total", **CHAT) == 1 + 2 + 3 * 2
        assert value(m, "wsffi_messages_received_total") == 3
        assert value(m, "wsffi_server_received_bytes_total", **CHAT) > 0
        assert value(m, "wsffi_sent_bytes_total") > value(m, "wsffi_server_sent_bytes_total", **CHAT)
        assert value(m, "wsffi_http_requests_total") == 2
        assert value(m, "wsffi_tls_handshake_failures_total", side="server") == 0

        # Bob leaves with 1000; alice hears it; the server echoed bob's code.
        loop.run_until_complete(bob.close(1000, "bye"))
        loop.run_until_complete(expect(alice, "bob left"))
        deadline = time.monotonic() + 5
        while True:
            m, _ = scrape(address)
            if value(m, "wsffi_connections_open") == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert value(m, "wsffi_connections_open") == 1
        assert value(m, "wsffi_server_close_codes_received_total", code="1000", **CHAT) == 1
        assert value(m, "wsffi_server_close_codes_sent_total", code="1000", **CHAT) == 1
        assert value(m, "wsffi_close_codes_received_total", code="1006") == 0
        assert value(m, "wsffi_server_messages_sent_total", **CHAT) == 1 + 2 + 3 * 2 + 1
        loop.run_until_complete(alice.close())
        assert proc.alive()
    finally:
        loop.close()
        proc.stop()
