#!/usr/bin/env python3
"""Writes the seed inputs under fuzz/seeds/<target>/ (run from anywhere; the files are
committed, this script documents and regenerates them). Each target's input layout is
described at the top of its source file."""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


def frame(opcode, payload, fin=True, rsv1=False, mask=None):
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mbit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def deflate(data, flush_each=None):
    """Raw deflate with a sync flush, trailer stripped (RFC 7692 §7.2.1)."""
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def chunks(data):
    """The session targets' chunk layout: a length byte (low 6 bits + 1), then the bytes."""
    out = b""
    for i in range(0, len(data), 64):
        piece = data[i:i + 64]
        out += bytes([len(piece) - 1]) + piece
    return out


def inflate_frames(frames):
    """The inflate target's frame layout: control byte (length << 1 | fin), then the bytes."""
    out = b""
    for data, fin in frames:
        assert len(data) < 127
        out += bytes([len(data) << 1 | int(fin)]) + data
    return out


# frame_header: frames from RFC 6455 §5.7 and the length forms.
write("frame_header", "text", frame(1, b"Hello"))
write("frame_header", "masked_text", frame(1, b"Hello", mask=MASK))
write("frame_header", "len16", frame(2, b"\x00" * 256)[:4])
write("frame_header", "len64_masked", frame(2, b"\x00" * 65536, mask=MASK)[:14])
write("frame_header", "ping", frame(9, b"Hello"))
write("frame_header", "close", frame(8, b"\x03\xe8", mask=MASK))
write("frame_header", "compressed_fragment", frame(1, b"x", fin=False, rsv1=True))

# handshake_request: a size-limit byte (0 = default), then the request.
rfc_request = (b"GET /chat?room=1&x=%20y HTTP/1.1\r\nHost: server.example.com\r\n"
               b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + KEY + b"\r\n"
               b"Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
write("handshake_request", "rfc_upgrade", b"\x00" + rfc_request)
write("handshake_request", "deflate_offer", b"\x00" + rfc_request.replace(
    b"Sec-WebSocket-Version", b"Sec-WebSocket-Extensions: permessage-deflate; "
    b"client_max_window_bits, permessage-deflate; server_max_window_bits=\"10\"\r\nSec-WebSocket-Version"))
write("handshake_request", "small_limit", b"\x10" + rfc_request)
write("handshake_request", "post", b"\x00POST / HTTP/1.0\r\nHost: a\r\nContent-Length: 0\r\n\r\n")

# handshake_response: flags (1 = extensions offered, 2 = protocols offered), split (u16 LE),
# body limit byte (0 = none), then the bytes.
resp101 = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Accept: " + ACCEPT + b"\r\nSec-WebSocket-Protocol: chat\r\n"
           b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n")
write("handshake_response", "switching", b"\x03" + struct.pack("<H", 40) + b"\x00" + resp101)
body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"
write("handshake_response", "chunked_body", b"\x00" + struct.pack("<H", 9) + b"\x00" + body)
write("handshake_response", "chunked_small_limit", b"\x00" + struct.pack("<H", 3) + b"\x02" + body)
write("handshake_response", "403_chunked", b"\x00" + struct.pack("<H", 70) + b"\x00" +
      b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
write("handshake_response", "404_length", b"\x00\x00\x00\x00HTTP/1.0 404 Not Found\r\n"
      b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nnope!")

# inflate: mode (bit 7 = round trip), agreed parameters, two bytes of limit or settings,
# then frames. RFC 7692 §7.2.3 "Hello" with and without context takeover.
hello = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
hello_again = bytes([0xF2, 0x00, 0x11, 0x00, 0x00])
write("inflate", "rfc_hello", b"\x00\x00" + struct.pack("<H", 1000) +
      inflate_frames([(hello, True), (hello_again, True)]))
z = zlib.compressobj(6, zlib.DEFLATED, -15)
part1 = z.compress(b'{"op":"update","v":') + z.flush(zlib.Z_SYNC_FLUSH)
part2 = (z.compress(b'[1,2,3,4,5,6,7,8]}' * 3) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]
write("inflate", "fragmented", b"\x00\x01" + struct.pack("<H", 60) + inflate_frames([(part1, False), (part2, True)]))
bomb = deflate(b"\x00" * 100000)
write("inflate", "bomb", b"\x00\x00" + struct.pack("<H", 100) + bytes([127 << 1 | 1]) + bomb)
write("inflate", "round_trip", b"\x80\x26" + struct.pack("<H", 0x16) + inflate_frames(
    [(b'{"a":1,"b":[true,false,null]}' * 2, True), (b"ab" * 20, False), (b"abcabc", True)]))

# session_server / session_client: flags (bit 0 = permessage-deflate, then one byte of
# agreed parameters; bit 7 = writer round trip).
# Hostile mode: max_payload byte, max_fragments byte, callback answers, then chunks.
def session_seeds(target, mask):
    msgs = (frame(1, b"Hello", mask=mask) +
            frame(1, "hé".encode(), fin=False, mask=mask) + frame(9, b"p", mask=mask) +
            frame(0, "llo ✓".encode(), mask=mask) +
            frame(2, bytes(range(200)), mask=mask) + frame(10, b"", mask=mask) +
            frame(8, b"\x03\xe8bye", mask=mask))
    write(target, "frames", b"\x00\x40\x07\xa5" + chunks(msgs))
    compressed = (frame(1, hello, rsv1=True, mask=mask) + frame(1, hello_again, rsv1=True, mask=mask) +
                  frame(2, part1, fin=False, rsv1=True, mask=mask) + frame(0, part2, mask=mask))
    write(target, "compressed", b"\x01\x00\x40\x07\xff" + chunks(compressed))
    write(target, "violation", b"\x00\x02\x01\xff" + chunks(frame(1, b"\xff\xfe", mask=mask)))
    # Round trip: op byte (bits 0-2 operation, 3 cut here, 4 text, 5 x16 length, 6 fin/ping/code),
    # length byte, bytes.
    ops = (bytes([0x10, 5]) + b"hello" + bytes([0x02, 3]) + b"abc" + bytes([0x44, 1]) + b"p" +
           bytes([0x4B, 2]) + b"de" + bytes([0x05, 4]) + b"data" + bytes([0x18, 100]) + b"x" * 100 +
           bytes([0x56, 10]) + "bye ✓ now!".encode()[:10])
    write(target, "round_trip", b"\x80\x55" + ops)
    write(target, "round_trip_deflate", b"\x81\x00\x06\x05\x55" + ops)


session_seeds("session_server", MASK)
session_seeds("session_client", None)
