"""Abuse against build/echo-server: slow and silent clients, floods, huge claims, clients
that vanish in every state. The server must keep serving everyone else, bound its memory,
and drop the abusers.
"""

from __future__ import annotations

import os
import select
import socket
import time

import pytest
from websockets.sync.client import connect

from interop_helpers import (
    ECHO_SERVER,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    RawClient,
    build_frame,
    close_payload,
    start_listening,
)

HANDSHAKE_TIMEOUT_MS = 1500
PING_INTERVAL_MS = 400


def start_server(*flags):
    assert ECHO_SERVER.exists(), f"{ECHO_SERVER} missing: run `make all`"
    return start_listening(
        [ECHO_SERVER, "--handshake-timeout-ms", str(HANDSHAKE_TIMEOUT_MS), *flags, "127.0.0.1:0"], "echo-server"
    )


@pytest.fixture
def server():
    """An echo-server with a short handshake timeout and no automatic ping."""
    proc, address = start_server()
    try:
        yield proc, address
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


@pytest.fixture
def pinging_server():
    """The same, pinging every PING_INTERVAL_MS: silent peers are dropped."""
    proc, address = start_server("--ping-interval-ms", str(PING_INTERVAL_MS))
    try:
        yield proc, address
        assert proc.alive(), proc.describe()
    finally:
        proc.stop()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def echo_once(address, message="still serving", timeout=5):
    with connect(f"ws://{address}/", compression=None, open_timeout=timeout, close_timeout=2, ping_interval=None) as ws:
        ws.send(message)
        assert ws.recv(timeout=timeout) == message


def wait_closed_by_server(sock, timeout):
    """Reads and discards until EOF or reset; returns True if the server closed in time."""
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            continue
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except BlockingIOError:
            continue
    return False


def test_slowloris_clients_are_dropped_while_others_are_served(server):
    proc, address = server
    host, port = address.rsplit(":", 1)
    request = (
        f"GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    slow = []
    try:
        for _ in range(500):
            s = socket.create_connection((host, int(port)))
            s.sendall(request[:1])
            slow.append(s)
        # Trickle one more byte on each, then a normal client must still get through.
        for s in slow:
            s.sendall(request[1:2])
        started = time.monotonic()
        echo_once(address)
        print(f"echo with 500 slowloris connections open: {time.monotonic() - started:.3f} s")
        # The handshake timeout covers the whole request, however it trickles in.
        for s in slow[:50]:
            s.sendall(request[2:3])
        deadline = HANDSHAKE_TIMEOUT_MS / 1000 + 5
        closed = sum(wait_closed_by_server(s, deadline) for s in slow[:50])
        assert closed == 50, f"only {closed} of 50 slow clients were dropped"
        echo_once(address)
    finally:
        for s in slow:
            s.close()


def test_connections_that_never_send_are_dropped(server):
    proc, address = server
    host, port = address.rsplit(":", 1)
    idle = [socket.create_connection((host, int(port))) for _ in range(20)]
    try:
        assert all(wait_closed_by_server(s, HANDSHAKE_TIMEOUT_MS / 1000 + 5) for s in idle)
    finally:
        for s in idle:
            s.close()


def test_silent_peer_after_the_upgrade_is_dropped_by_the_ping_timeout(pinging_server):
    """A half-open connection: the peer is gone without FIN (it never answers pings)."""
    proc, address = pinging_server
    with RawClient(address) as c:
        assert wait_closed_by_server(c.sock, 10 * PING_INTERVAL_MS / 1000), "silent peer kept open"
    echo_once(address)


def test_client_that_never_reads_cannot_grow_server_memory(server):
    proc, address = server
    with RawClient(address) as c:
        before = rss_kib(proc.pid)
        c.sock.setblocking(False)
        frame = build_frame(OP_BINARY, os.urandom(64 * 1024))
        sent, off, stuck_since = 0, 0, None
        while sent < 512 << 20:
            try:
                n = c.sock.send(frame[off:])
            except BlockingIOError:
                if stuck_since is None:
                    stuck_since = time.monotonic()
                elif time.monotonic() - stuck_since > 1.0:
                    break
                time.sleep(0.005)
                continue
            sent += n
            off = (off + n) % len(frame)
            stuck_since = None
        grown = rss_kib(proc.pid) - before
        print(f"sent {sent >> 20} MiB unread echoes; server RSS grew {grown} KiB")
        assert stuck_since is not None, "the server kept reading 512 MiB it could not echo"
        # Echo output is bounded by the server's high-water mark (1 MiB) plus buffers.
        assert grown < 32 * 1024, f"server RSS grew by {grown} KiB"
        echo_once(address)


def test_frame_claiming_1_gib_is_refused_from_its_header(server):
    proc, address = server
    with RawClient(address) as c:
        c.send(build_frame(OP_BINARY, b"x" * 10, length_override=1 << 30)[:14])
        c.expect_close(1009)
    echo_once(address)


def test_ping_flood_gets_every_pong(server):
    proc, address = server
    with RawClient(address, timeout=20) as c:
        count = 20000
        c.send(b"".join(build_frame(OP_PING, i.to_bytes(4, "big")) for i in range(count)))
        for i in range(count):
            f = c.recv_frame(timeout=20)
            assert f.opcode == 0xA and f.payload == i.to_bytes(4, "big"), (i, f)
        c.send(build_frame(OP_CLOSE, close_payload(1000)))
        c.expect_close(1000)


def test_65536_one_byte_fragments_are_a_legitimate_message(server):
    proc, address = server
    with RawClient(address, timeout=30) as c:
        n = 65536
        frames = [build_frame(OP_TEXT, b"a", fin=False)]
        frames += [build_frame(OP_CONT, b"b", fin=False)] * (n - 2)
        frames.append(build_frame(OP_CONT, b"c", fin=True))
        c.send(b"".join(frames))
        op, payload = c.recv_message(timeout=30)
        assert op == OP_TEXT and payload == b"a" + b"b" * (n - 2) + b"c"


def test_a_million_tiny_fragments_end_with_1009_and_bounded_memory(server):
    proc, address = server
    before = rss_kib(proc.pid)
    with RawClient(address, timeout=30) as c:
        one = build_frame(OP_CONT, b"z", fin=False)
        c.send(build_frame(OP_BINARY, b"z", fin=False))
        batch = one * 50_000
        for _ in range(20):
            c.send(batch)
        c.expect_close(1009, timeout=30)
    grown = rss_kib(proc.pid) - before
    print(f"server RSS grew {grown} KiB over a million one-byte fragments")
    assert grown < 16 * 1024
    echo_once(address)


def test_clients_vanishing_in_every_state(server):
    proc, address = server
    host, port = address.rsplit(":", 1)
    # Mid-request.
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: webs")
    s.close()
    # Right after the upgrade, with a reset instead of FIN.
    c = RawClient(address)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    # Mid-frame: half a header, half a payload.
    for cut in (1, 6, 100):
        c = RawClient(address)
        c.send(build_frame(OP_BINARY, b"q" * 1000)[:cut])
        c.close()
    # Mid-message: first fragment only.
    c = RawClient(address)
    c.send(build_frame(OP_TEXT, b"part one", fin=False))
    c.close()
    # Mid-close: our close frame, then gone before the reply.
    c = RawClient(address)
    c.send(build_frame(OP_CLOSE, close_payload(1000)))
    c.close()
    # While the server is sending a large echo.
    c = RawClient(address)
    c.send(build_frame(OP_BINARY, os.urandom(4 << 20)))
    time.sleep(0.05)
    c.close()
    time.sleep(0.2)
    assert proc.alive(), proc.describe()
    echo_once(address)
