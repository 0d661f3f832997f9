"""permessage-deflate (RFC 7692) with real peers, in both directions.

- Python `websockets` and Node `ws` clients against `build/echo-server --deflate`, with
  every context-takeover and window-bits combination they can ask for.
- The wsffi client (build/probe-client, PROBE_DEFLATE) against `websockets` and `ws`
  servers that accept compression, with the combinations each server can impose.
- Hand-built compressed frames against `build/echo-server --deflate`: the server's own
  frames really are compressed (RSV1, inflated here with zlib), RSV1 where it is not
  allowed fails with 1002, corrupt data with 1007, a decompression bomb with 1009 without
  the server allocating the bomb's size.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import zlib

import pytest
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from interop_helpers import (
    ECHO_SERVER,
    HERE,
    NODE,
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    PROBE_CLIENT,
    PYTHON,
    TEXT_64K,
    RawClient,
    build_frame,
    start_listening,
)

# Small JSON-like text: the messages compression is for.
JSON_SAMPLE = json.dumps(
    {"type": "tick", "symbol": "WSFI", "price": 123.45, "volume": 1000, "tags": ["a", "b"], "ok": True}
)


def run(coro, timeout=30.0):
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


@pytest.fixture(scope="module")
def deflate_server():
    assert ECHO_SERVER.exists(), f"{ECHO_SERVER} missing: run `make all`"
    proc, address = start_listening([ECHO_SERVER, "--deflate", "127.0.0.1:0"], "echo-server --deflate")
    try:
        yield address
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def random_text(n, seed):
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "δέλτα", "ε✓", "zeta", "🚀", "theta", "iota"]
    out = []
    size = 0
    while size < n:
        w = rng.choice(words)
        out.append(w)
        size += len(w.encode()) + 1
    return " ".join(out)


MESSAGES = [
    JSON_SAMPLE,
    "",
    b"",
    "tiny",
    TEXT_64K,
    random_text(300_000, 1),
    bytes(range(256)) * 400,
    random.Random(7).randbytes(1 << 20),  # incompressible: must survive too
]

# (server_no_context_takeover, client_no_context_takeover, server_max_window_bits, client_max_window_bits)
CLIENT_PARAMS = [
    (False, False, None, None),
    (True, False, None, None),
    (False, True, None, None),
    (True, True, None, None),
    (False, False, 8, None),
    (False, False, 10, 9),
    (False, False, None, 12),
    (True, True, 9, 9),
    (False, False, 15, 15),
]


# ---- Python websockets clients against our server ------------------------------------------


@pytest.mark.parametrize("params", CLIENT_PARAMS, ids=lambda p: "snct={}-cnct={}-smwb={}-cmwb={}".format(*p))
def test_python_client_against_our_server(deflate_server, params):
    snct, cnct, smwb, cmwb = params
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=smwb,
        client_max_window_bits=cmwb if cmwb is not None else True,
    )

    async def main():
        async with connect(
            f"ws://{deflate_server}/",
            compression=None,
            extensions=[factory],
            max_size=None,
            ping_interval=None,
            open_timeout=5,
        ) as ws:
            answer = ws.response.headers.get("Sec-WebSocket-Extensions")
            assert answer is not None and answer.startswith("permessage-deflate"), answer
            assert ("server_no_context_takeover" in answer) == snct, answer
            if smwb is not None:
                assert f"server_max_window_bits={smwb}" in answer, answer
            assert len(ws.protocol.extensions) == 1
            for m in MESSAGES:
                await ws.send(m)
                async with asyncio.timeout(10):
                    reply = await ws.recv()
                assert type(reply) is type(m) and reply == m, f"echo mismatch for a {type(m).__name__} of {len(m)}"
            # Fragmented and compressed: websockets compresses each fragment of an iterable.
            await ws.send(iter(["frag-1 ", "fragment two ✓ ", "three" * 100]))
            assert await ws.recv() == "frag-1 fragment two ✓ " + "three" * 100
            # Many small messages in a row, order preserved across the shared context.
            for i in range(300):
                await ws.send(f'{{"seq": {i}, "payload": "{"x" * (i % 50)}"}}')
            for i in range(300):
                assert await ws.recv() == f'{{"seq": {i}, "payload": "{"x" * (i % 50)}"}}'

    run(main())


# ---- Node ws clients against our server ----------------------------------------------------

NODE_CLIENT = r"""
const WebSocket = require('ws');
const crypto = require('crypto');
const [url, optsJson] = process.argv.slice(1);
const opts = JSON.parse(optsJson);
const ws = new WebSocket(url, { perMessageDeflate: opts });
const text64k = 'a\u00e9\u2713\u{1F680}'.repeat(6553) + 'abcdef';
const msgs = [
  ['text', '{"type":"tick","price":123.45,"tags":["a","b"]}'],
  ['text', ''],
  ['binary', Buffer.alloc(0)],
  ['text', text64k],
  ['binary', Buffer.from(Array.from({ length: 300000 }, (_, i) => i % 97))],
  ['binary', crypto.randomBytes(1 << 20)],
];
for (let i = 0; i < 200; i++) msgs.push(['text', `{"seq":${i},"v":"${'y'.repeat(i % 40)}"}`]);
const timer = setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 20000);
let next = 0;
const result = { mismatches: [], echoed: 0 };
ws.on('open', () => {
  const pmd = ws._extensions['permessage-deflate'];
  result.extensions = ws.extensions;
  result.params = pmd ? pmd.params : null;
  for (const [type, data] of msgs) ws.send(data, { binary: type === 'binary', compress: true });
});
ws.on('message', (data, isBinary) => {
  const [type, want] = msgs[next];
  const same = (type === 'binary') === isBinary && Buffer.compare(Buffer.from(data), Buffer.from(want)) === 0;
  if (!same) result.mismatches.push(next);
  result.echoed++;
  next++;
  if (next === msgs.length) ws.close(1000, 'done');
});
ws.on('close', (code) => {
  clearTimeout(timer);
  result.close = code;
  console.log(JSON.stringify(result));
});
ws.on('error', (e) => { console.log(JSON.stringify({ error: String(e.message) })); process.exit(1); });
"""

NODE_PARAMS = [
    {},
    {"serverNoContextTakeover": True},
    {"clientNoContextTakeover": True},
    {"serverNoContextTakeover": True, "clientNoContextTakeover": True},
    {"serverMaxWindowBits": 9},
    {"clientMaxWindowBits": 10},
    {"serverMaxWindowBits": 8, "clientMaxWindowBits": 8, "clientNoContextTakeover": True},
]


@pytest.mark.parametrize("opts", NODE_PARAMS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_node_client_against_our_server(deflate_server, opts):
    assert (HERE / "node_modules" / "ws").exists(), "node_modules missing: run `make test-interop`"
    # threshold 0: ws compresses every message, even the empty ones.
    opts = {"threshold": 0, **opts}
    proc = subprocess.run(
        [NODE, "-e", NODE_CLIENT, f"ws://{deflate_server}/", json.dumps(opts)],
        capture_output=True, text=True, timeout=40, cwd=HERE,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in result, result
    assert result["extensions"] == "permessage-deflate", result
    assert result["echoed"] == 206 and result["mismatches"] == [], result
    assert result["close"] == 1000, result
    params = result["params"]
    if opts.get("serverNoContextTakeover"):
        assert params.get("server_no_context_takeover") is True, params
    if "serverMaxWindowBits" in opts:
        assert params.get("server_max_window_bits") == opts["serverMaxWindowBits"], params


# ---- our client against Python and Node servers --------------------------------------------

# (server parameters for websockets, the same for ws, our PROBE_DEFLATE, what the answer must hold)
SERVER_SIDE = [
    ({}, {}, "", []),
    ({"server_no_context_takeover": True}, {"serverNoContextTakeover": True}, "", ["server_no_context_takeover"]),
    ({"client_no_context_takeover": True}, {"clientNoContextTakeover": True}, "", ["client_no_context_takeover"]),
    ({"server_max_window_bits": 10}, {"serverMaxWindowBits": 10}, "", ["server_max_window_bits=10"]),
    ({"client_max_window_bits": 9}, {"clientMaxWindowBits": 9}, "", ["client_max_window_bits=9"]),
    ({}, {}, "server_no_context_takeover", ["server_no_context_takeover"]),
    ({}, {}, "client_no_context_takeover,client_max_window_bits=8", []),
    ({}, {}, "server_max_window_bits=9", ["server_max_window_bits=9"]),
    ({}, {}, "server_max_window_bits=12,client_max_window_bits=11,level=1,mem_level=4,threshold=0", []),
]

PEER_SCRIPTS = {
    "python": [PYTHON, HERE / "py_peer_server.py", "127.0.0.1:0"],
    "node": [NODE, HERE / "node_peer_server.js", "127.0.0.1:0"],
}


@pytest.fixture(params=range(len(SERVER_SIDE)), ids=lambda i: f"case{i}")
def case(request):
    return SERVER_SIDE[request.param]


@pytest.mark.parametrize("peer_name", sorted(PEER_SCRIPTS))
def test_our_client_against_compressing_servers(peer_name, case):
    py_params, node_params, probe_env, must_hold = case
    if peer_name == "node":
        assert (HERE / "node_modules" / "ws").exists(), "node_modules missing: run `make test-interop`"
    server_params = py_params if peer_name == "python" else {"threshold": 0, **node_params}
    env = {**os.environ, "PEER_DEFLATE": json.dumps(server_params)}
    proc, address = start_listening(PEER_SCRIPTS[peer_name], f"{peer_name}-peer-server", cwd=HERE, env=env)
    try:
        for path, scenario in [
            ("/echo", "text"),
            ("/echo", "many"),
            ("/echo", "big"),
            ("/echo", "send-fragments"),
            ("/big", "recv-big"),
            ("/fragments", "recv-fragments"),
        ]:
            url = f"ws://{address}{path}?{scenario}"
            probe = subprocess.run(
                [PROBE_CLIENT, url, scenario], capture_output=True, text=True, timeout=30,
                env={**os.environ, "PROBE_DEFLATE": probe_env},
            )
            detail = f"{scenario}: rc={probe.returncode}\n{probe.stdout}\n{probe.stderr}\n{proc.describe()}"
            assert probe.returncode == 0 and probe.stdout.splitlines()[-1] == f"PASS {scenario}", detail
            [opened] = [l for l in probe.stdout.splitlines() if l.startswith("open ")]
            ext = opened.split("extensions=", 1)[1]
            assert ext.startswith("permessage-deflate"), detail
            for p in must_hold:
                assert p in ext, f"{p} missing from {ext!r}"
            event = proc.wait_event(lambda e: e.get("event") == "open" and e.get("target") == f"{path}?{scenario}")
            offer = ", ".join(event["extensions"])
            assert offer.startswith("permessage-deflate"), event
            assert event["answer"] and "permessage-deflate" in event["answer"], event
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def test_our_client_without_deflate_offers_nothing():
    env = {**os.environ, "PEER_DEFLATE": "{}"}
    proc, address = start_listening(PEER_SCRIPTS["python"], "python-peer-server", cwd=HERE, env=env)
    try:
        probe = subprocess.run(
            [PROBE_CLIENT, f"ws://{address}/echo?off", "text"], capture_output=True, text=True, timeout=30,
            env={**os.environ, "PROBE_DEFLATE": "off"},
        )
        assert probe.returncode == 0, probe.stdout + probe.stderr
        assert "open protocol= extensions=" in probe.stdout.splitlines()[0] or any(
            l.rstrip().endswith("extensions=") for l in probe.stdout.splitlines() if l.startswith("open ")
        ), probe.stdout
        event = proc.wait_event(lambda e: e.get("event") == "open" and e.get("target") == "/echo?off")
        assert event["extensions"] == [] and event["answer"] is None, event
    finally:
        proc.stop()


def test_our_client_rejects_an_invalid_answer():
    """A server answering with parameters we did not offer fails the handshake."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        import base64
        import hashlib

        conn, _ = srv.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            key = [l.split(b":", 1)[1].strip() for l in data.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")][0]
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n"
                b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15; x=1\r\n\r\n"
            )
            conn.recv(100)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        probe = subprocess.run(
            [PROBE_CLIENT, f"ws://127.0.0.1:{port}/", "text"], capture_output=True, text=True, timeout=30,
            env={**os.environ, "PROBE_DEFLATE": "server_max_window_bits=10"},
        )
        errors = [l for l in probe.stdout.splitlines() if l.startswith("error ")]
        assert probe.returncode == 1 and errors, probe.stdout
        assert "permessage-deflate" in errors[0] and "status=301" in errors[0], errors
    finally:
        srv.close()


# ---- hand-built compressed frames ----------------------------------------------------------

OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"


def compress(data, wbits=15):
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate_frames(frames):
    d = zlib.decompressobj(-15)
    return d.decompress(b"".join(frames) + b"\x00\x00\xff\xff")


def test_server_frames_are_really_compressed(deflate_server):
    with RawClient(deflate_server, extra_headers=[OFFER]) as c:
        assert c.headers["sec-websocket-extensions"].startswith("permessage-deflate"), c.headers
        text = (JSON_SAMPLE * 20).encode()
        c.send(build_frame(OP_TEXT, compress(text), rsv=4))
        f = c.recv_frame()
        assert f.fin and f.rsv == 4 and f.opcode == OP_TEXT and not f.masked, f
        assert len(f.payload) < len(text) // 4
        assert inflate_frames([f.payload]) == text
        # Uncompressed input is fine too; a small reply stays uncompressed (threshold 64).
        c.send(build_frame(OP_BINARY, b"short"))
        f = c.recv_frame()
        assert f.rsv == 0 and f.payload == b"short", f


def test_compressed_fragments_with_a_ping_between(deflate_server):
    with RawClient(deflate_server, extra_headers=[OFFER]) as c:
        text = ("κόσμε " * 500).encode()
        whole = compress(text)
        a, b = whole[: len(whole) // 2], whole[len(whole) // 2 :]
        c.send(build_frame(OP_TEXT, a, fin=False, rsv=4))
        c.send(build_frame(OP_PING, b"between"))
        c.send(build_frame(OP_CONT, b, fin=True))
        pong = c.recv_frame()
        assert pong.opcode == 0xA and pong.payload == b"between", pong
        f = c.recv_frame()
        assert f.rsv == 4, f
        assert inflate_frames([f.payload]) == text


@pytest.mark.parametrize(
    "frames",
    [
        [build_frame(OP_PING, b"x", rsv=4)],
        [build_frame(OP_TEXT, compress(b"a" * 100), fin=False, rsv=4), build_frame(OP_CONT, compress(b"b"), rsv=4)],
        [build_frame(OP_TEXT, b"plain", fin=False), build_frame(OP_CONT, b"x", rsv=4)],
        [build_frame(OP_TEXT, b"x", rsv=2)],
    ],
    ids=["rsv1-on-ping", "rsv1-on-continuation", "rsv1-on-continuation-of-plain", "rsv2"],
)
def test_misplaced_reserved_bits_fail_with_1002(deflate_server, frames):
    with RawClient(deflate_server, extra_headers=[OFFER]) as c:
        for f in frames:
            c.send(f)
        c.expect_close(1002)
        c.expect_eof()


def test_rsv1_without_negotiation_fails_with_1002(deflate_server):
    with RawClient(deflate_server) as c:
        assert "sec-websocket-extensions" not in c.headers
        c.send(build_frame(OP_TEXT, compress(b"hello" * 30), rsv=4))
        c.expect_close(1002)


def test_corrupt_data_fails_with_1007(deflate_server):
    with RawClient(deflate_server, extra_headers=[OFFER]) as c:
        c.send(build_frame(OP_BINARY, b"\xff\xff\xff\xff", rsv=4))
        c.expect_close(1007)


def test_compressed_invalid_utf8_fails_with_1007(deflate_server):
    with RawClient(deflate_server, extra_headers=[OFFER]) as c:
        c.send(build_frame(OP_TEXT, compress(b"abc\xed\xa0\x80def" * 20), rsv=4))
        c.expect_close(1007)


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_decompression_bomb_fails_with_1009_without_allocating_it():
    """200 MiB of zeros, about 200 KiB compressed, against the default 64 MiB max_payload."""
    proc, address = start_listening([ECHO_SERVER, "--deflate", "127.0.0.1:0"], "echo-server --deflate")
    try:
        bomb = compress(bytes(200 << 20))
        assert len(bomb) < 1 << 20
        with RawClient(address, extra_headers=[OFFER], timeout=20) as c:
            c.send(build_frame(OP_BINARY, bomb, rsv=4))
            c.expect_close(1009, timeout=20)
        # The bound is the 64 MiB limit plus inflate steps, never the 200 MiB claimed.
        assert vm_hwm_kib(proc.pid) < 160 * 1024, vm_hwm_kib(proc.pid)
        with RawClient(address, extra_headers=[OFFER]) as c:
            c.send(build_frame(OP_TEXT, compress(b"still serving" * 10), rsv=4))
            f = c.recv_frame()
            assert inflate_frames([f.payload]) == b"still serving" * 10
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def test_bad_offer_syntax_gets_400(deflate_server):
    import socket

    host, port = deflate_server.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Extensions: permessage-deflate; =broken\r\n\r\n"
        )
        reply = s.recv(4096)
        assert reply.startswith(b"HTTP/1.1 400"), reply


def test_invalid_offers_are_declined_and_the_next_one_taken(deflate_server):
    offer = (
        "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7, "
        "permessage-deflate; unknown_param, permessage-deflate; server_max_window_bits=11"
    )
    with RawClient(deflate_server, extra_headers=[offer]) as c:
        answer = c.headers["sec-websocket-extensions"]
        assert answer == "permessage-deflate; server_max_window_bits=11", answer
        text = b"window eleven " * 100
        c.send(build_frame(OP_TEXT, compress(text), rsv=4))
        f = c.recv_frame()
        assert zlib.decompressobj(-11).decompress(f.payload + b"\x00\x00\xff\xff") == text
