"""Hand-built frames against build/echo-server: every violation must be answered with the
right close code, then the server must close TCP (without waiting for our reply), and it
must go on serving other clients.
"""

from __future__ import annotations

import socket
import struct

import pytest
from websockets.sync.client import connect

from interop_helpers import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawClient,
    build_frame,
    close_payload,
)

# Valid "κόσμε" and the invalid sequences of the Autobahn UTF-8 cases.
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
INVALID_UTF8 = {
    "lone-continuation": b"abc\x80def",
    "overlong": b"\xc0\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above-max": b"\xf4\x90\x80\x80",
    "bad-lead": b"\xf5\x80\x80\x80",
    "truncated-at-end": b"abc\xe2\x9c",
    "kosme-edited": KOSME + b"\xed\xa0\x80edited",
}


def assert_server_still_echoes(server):
    server.assert_alive()
    with connect(server.url, compression=None, open_timeout=5, close_timeout=3) as ws:
        ws.send("still alive \u2713")
        assert ws.recv(timeout=5) == "still alive \u2713"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"


def expect_failure(client, code, timeout=3.0):
    """The server fails the connection: close frame with `code`, then TCP closed."""
    frame = client.expect_close(code, timeout=timeout)
    client.expect_eof(timeout=2.0)
    return frame


@pytest.fixture
def raw(echo_server):
    client = RawClient(echo_server.address)
    try:
        yield client
    finally:
        client.close()
    assert_server_still_echoes(echo_server)


# --- sanity: the raw client itself speaks correct frames --------------------------------


def test_raw_echo_and_ping(raw):
    raw.send_frame(OP_TEXT, "héllo".encode())
    assert raw.recv_message() == (OP_TEXT, "héllo".encode())
    raw.send_frame(OP_PING, b"x" * 125)
    pong = raw.recv_frame()
    assert (pong.opcode, pong.payload, pong.masked, pong.fin) == (OP_PONG, b"x" * 125, False, True)


def test_control_frames_interleaved_in_fragmented_message(raw):
    raw.send_frame(OP_TEXT, KOSME[:3], fin=False)  # ends inside "ό"
    raw.send_frame(OP_PING, b"mid")
    raw.send_frame(OP_PONG, b"unsolicited")
    raw.send_frame(OP_CONT, KOSME[3:], fin=False)
    raw.send_frame(OP_CONT, b"", fin=True)
    pong = raw.recv_frame()
    assert (pong.opcode, pong.payload) == (OP_PONG, b"mid")
    assert raw.recv_message() == (OP_TEXT, KOSME)


def test_clean_close_handshake(raw):
    raw.send_frame(OP_CLOSE, close_payload(1000, b"bye"))
    raw.expect_close(1000)
    raw.expect_eof()


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1007, 1011, 1014, 3000, 4999])
def test_valid_close_codes_are_echoed(raw, code):
    raw.send_frame(OP_CLOSE, close_payload(code))
    raw.expect_close(code)
    raw.expect_eof()


def test_empty_close_is_answered(raw):
    raw.send_frame(OP_CLOSE, b"")
    f = raw.recv_frame()
    assert f.opcode == OP_CLOSE and not f.masked
    assert f.payload == b"" or f.close_code == 1000, f
    raw.expect_eof()


# --- framing violations: 1002 ----------------------------------------------------------


def test_unmasked_client_frame(raw):
    raw.send_frame(OP_TEXT, b"not masked", mask=False)
    expect_failure(raw, 1002)


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_reserved_bits(raw, rsv):
    raw.send_frame(OP_TEXT, b"reserved bits", rsv=rsv)
    expect_failure(raw, 1002)


@pytest.mark.parametrize("opcode", [3, 7, 0xB, 0xF])
def test_reserved_opcode(raw, opcode):
    raw.send_frame(opcode, b"reserved opcode")
    expect_failure(raw, 1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE], ids=["ping", "pong", "close"])
def test_fragmented_control_frame(raw, opcode):
    payload = close_payload(1000) if opcode == OP_CLOSE else b"frag"
    raw.send_frame(opcode, payload, fin=False)
    expect_failure(raw, 1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG], ids=["ping", "pong"])
def test_control_frame_payload_126(raw, opcode):
    raw.send_frame(opcode, b"p" * 126)
    expect_failure(raw, 1002)


def test_continuation_without_start(raw):
    raw.send_frame(OP_CONT, b"orphan", fin=True)
    expect_failure(raw, 1002)


def test_new_message_inside_fragmented_message(raw):
    raw.send_frame(OP_TEXT, b"first", fin=False)
    raw.send_frame(OP_BINARY, b"second", fin=True)
    expect_failure(raw, 1002)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
def test_invalid_close_code(raw, code):
    raw.send_frame(OP_CLOSE, close_payload(code))
    expect_failure(raw, 1002)


def test_close_with_one_byte_payload(raw):
    raw.send_frame(OP_CLOSE, b"\x03")
    expect_failure(raw, 1002)


def test_length_with_most_significant_bit_set(raw):
    # RFC 6455 5.2: the most significant bit of a 64-bit length MUST be 0.
    raw.send(struct.pack("!BBQ", 0x82, 0xFF, 1 << 63) + b"\x00\x00\x00\x00")
    f = raw.recv_frame(3.0)
    assert f.opcode == OP_CLOSE and f.close_code in (1002, 1009), f
    raw.expect_eof(2.0)


# --- UTF-8: 1007 -----------------------------------------------------------------------


@pytest.mark.parametrize("payload", list(INVALID_UTF8.values()), ids=list(INVALID_UTF8))
def test_invalid_utf8_text(raw, payload):
    raw.send_frame(OP_TEXT, payload)
    expect_failure(raw, 1007)


@pytest.mark.parametrize("payload", list(INVALID_UTF8.values()), ids=list(INVALID_UTF8))
def test_invalid_utf8_fragmented(raw, payload):
    # The whole message in one write: the server sees every fragment at once.
    raw.send(
        build_frame(OP_TEXT, payload[:2], fin=False)
        + build_frame(OP_CONT, payload[2:], fin=False)
        + build_frame(OP_CONT, b"", fin=True)
    )
    expect_failure(raw, 1007)


@pytest.mark.parametrize(
    "fragments",
    [
        [b"\xff", b"valid rest"],
        [KOSME, b"\xf4\x90\x80\x80", b"edited"],  # Autobahn 6.4.1
        [KOSME + b"\xf4", b"\x90", b"\x80\x80edited"],  # Autobahn 6.4.2
        [b"abc\xed\xa0", b"\x80 rest"],
    ],
    ids=["first-fragment", "middle-fragment", "split-code-point", "surrogate-prefix"],
)
def test_invalid_utf8_fails_fast(raw, fragments):
    # Everything up to the fragment that makes the text invalid, not the final fragment:
    # the server must answer without waiting for the end of the message.
    *before_final, final = fragments
    for i, part in enumerate(before_final):
        raw.send_frame(OP_TEXT if i == 0 else OP_CONT, part, fin=False)
    expect_failure(raw, 1007)


def test_valid_utf8_split_across_fragments_is_accepted(raw):
    text = "κόσμε ✓ 🚀".encode()
    parts = [text[:1], text[1:2], text[2:12], text[12:14], text[14:]]
    for i, part in enumerate(parts):
        raw.send_frame(OP_TEXT if i == 0 else OP_CONT, part, fin=i == len(parts) - 1)
    assert raw.recv_message() == (OP_TEXT, text)


def test_invalid_utf8_close_reason(raw):
    raw.send_frame(OP_CLOSE, close_payload(1000, b"\xff\xfe"))
    f = raw.recv_frame(3.0)
    assert f.opcode == OP_CLOSE and f.close_code in (1002, 1007), f
    raw.expect_eof(2.0)


# --- limits: 1009 ----------------------------------------------------------------------


def test_header_claiming_1gib_is_refused_before_the_body(raw):
    # Only the header and the mask key: the answer cannot depend on reading the body.
    raw.send(struct.pack("!BBQ", 0x82, 0xFF, 1 << 30) + b"\x11\x22\x33\x44")
    expect_failure(raw, 1009)


def test_header_one_byte_over_max_payload(raw):
    raw.send(struct.pack("!BBQ", 0x81, 0xFF, (64 << 20) + 1) + b"\x11\x22\x33\x44")
    expect_failure(raw, 1009)


def test_fragments_adding_up_over_max_payload(raw):
    # A small first fragment, then a continuation whose header alone takes the message
    # beyond 64 MiB.
    raw.send_frame(OP_BINARY, b"x" * 1000, fin=False)
    raw.send(struct.pack("!BBQ", 0x80, 0xFF, 64 << 20) + b"\x11\x22\x33\x44")
    expect_failure(raw, 1009)


# --- ordering and the opening handshake -------------------------------------------------


def test_echo_is_sent_before_the_close_reply(raw):
    # A message and a close frame in one write: the echo must go out before the close.
    data = bytes(range(256)) * 1024
    raw.send(build_frame(OP_BINARY, data) + build_frame(OP_CLOSE, close_payload(1000, b"done")))
    assert raw.recv_message(timeout=10) == (OP_BINARY, data)
    raw.expect_close(1000)
    raw.expect_eof()


def _raw_request(address, lines):
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    headers = {h.partition(":")[0].strip().lower(): h.partition(":")[2].strip() for h in header_lines}
    return int(status_line.split()[1]), headers


def test_unsupported_version_gets_426_with_supported_version(echo_server):
    # RFC 6455 4.4: answer with Sec-WebSocket-Version listing the versions we speak.
    status, headers = _raw_request(
        echo_server.address,
        [
            "GET / HTTP/1.1",
            f"Host: {echo_server.address}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 8",
        ],
    )
    assert status == 426
    assert headers.get("sec-websocket-version") == "13"
    assert_server_still_echoes(echo_server)


def test_upgrade_without_key_gets_400(echo_server):
    status, _ = _raw_request(
        echo_server.address,
        [
            "GET / HTTP/1.1",
            f"Host: {echo_server.address}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Version: 13",
        ],
    )
    assert status == 400
    assert_server_still_echoes(echo_server)


MAX_FRAGMENTS = 131072  # the documented default


def _fragments(count, final):
    first = build_frame(OP_TEXT, b"a", fin=False)
    middle = build_frame(OP_CONT, b"", fin=False)
    last = build_frame(OP_CONT, b"z", fin=final)
    return first + middle * (count - 2) + last


def test_max_fragments_is_accepted(raw):
    raw.send(_fragments(MAX_FRAGMENTS, final=True))
    assert raw.recv_message(timeout=10) == (OP_TEXT, b"az")


def test_one_fragment_over_max_fragments(raw):
    raw.send(_fragments(MAX_FRAGMENTS + 1, final=False))
    expect_failure(raw, 1009, timeout=10)


# --- and the server is still there ------------------------------------------------------


def test_server_survived_everything(echo_server):
    assert_server_still_echoes(echo_server)
    for _ in range(3):
        assert_server_still_echoes(echo_server)
