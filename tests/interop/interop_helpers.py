"""Shared helpers for the interop tests: managed subprocesses and a raw WebSocket client."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILD = ROOT / "build"
ECHO_SERVER = BUILD / "echo-server"
PROBE_CLIENT = BUILD / "probe-client"
NODE = os.environ.get("NODE", "node")
PYTHON = sys.executable  # the peers run on the interpreter that runs the tests

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# The same 64 KiB of multi-byte UTF-8 in every test: 6553 x (1+2+3+4 bytes) + 6 bytes.
TEXT_64K = "a\u00e9\u2713\U0001F680" * 6553 + "abcdef"
assert len(TEXT_64K.encode()) == 65536


class ManagedProcess:
    """A child process whose stdout and stderr lines are collected by background threads.

    stop() is idempotent and always leaves the process reaped (SIGTERM, then SIGKILL).
    """

    def __init__(self, argv, name=None, cwd=None, env=None):
        self.name = name or Path(argv[0]).name
        self.argv = [str(a) for a in argv]
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
        self.lines: list[str] = []
        self.err_lines: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err_lines, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _pump(self, stream, sink, is_stdout):
        for line in stream:
            with self._cond:
                sink.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            if is_stdout:
                self._eof = True
            self._cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def wait_line(self, predicate, timeout=10.0, start=0):
        """Returns (index, line) of the first stdout line at or after `start` matching."""
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.lines):
                    if predicate(self.lines[i]):
                        return i, self.lines[i]
                    i += 1
                if self._eof:
                    raise AssertionError(
                        f"{self.name} ended (rc={self.proc.poll()}) before the expected line\n{self.describe()}"
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: expected line not seen in {timeout}s\n{self.describe()}")
                self._cond.wait(left)

    def events(self):
        """stdout lines that are JSON objects, parsed."""
        out = []
        with self._cond:
            lines = list(self.lines)
        for line in lines:
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_event(self, predicate, timeout=10.0):
        def match(line):
            if not line.startswith("{"):
                return False
            return predicate(json.loads(line))

        return json.loads(self.wait_line(match, timeout)[1])

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def wait(self, timeout):
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(2)
        return rc

    def stop(self, timeout=5.0):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(2)
        return self.proc.returncode

    def describe(self):
        with self._cond:
            out = "\n".join(self.lines[-40:])
            err = "\n".join(self.err_lines[-40:])
        return f"--- {self.name} stdout ---\n{out}\n--- {self.name} stderr ---\n{err}"


def start_listening(argv, name, timeout=10.0, **kw):
    """Starts a server that prints `listening on HOST:PORT`; returns (process, "HOST:PORT")."""
    proc = ManagedProcess(argv, name=name, **kw)
    try:
        _, line = proc.wait_line(lambda l: l.startswith("listening on "), timeout)
    except BaseException:
        proc.stop()
        raise
    return proc, line[len("listening on "):].strip()


# ---------------------------------------------------------------------------------------
# Raw WebSocket client: hand-built frames over a plain socket.

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def build_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length_override=None, mask_key=b"\x37\xfa\x21\x3d"):
    """One frame. `rsv` is the 3 RSV bits (0-7); `length_override` claims a different length."""
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload) if length_override is None else length_override
    if n < 126:
        head = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return head + payload
    body = bytes(b ^ mask_key[i % 4] for i, b in enumerate(payload))
    return head + mask_key + body


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class Frame:
    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin, self.rsv, self.opcode, self.masked, self.payload = fin, rsv, opcode, masked, payload

    @property
    def close_code(self):
        assert self.opcode == OP_CLOSE
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    def __repr__(self):
        return f"Frame(fin={self.fin}, rsv={self.rsv}, op={self.opcode}, masked={self.masked}, payload={self.payload[:40]!r}{'...' if len(self.payload) > 40 else ''})"


class RawClient:
    """A WebSocket client that speaks frames byte by byte, for protocol-violation tests."""

    def __init__(self, address, path="/", timeout=5.0, extra_headers=()):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.send_failed = False
        key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {address}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key.decode()}",
            "Sec-WebSocket-Version: 13",
            *extra_headers,
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"connection closed during the handshake: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {}
        for h in header_lines:
            name, _, value = h.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        if self.status != 101:
            raise AssertionError(f"upgrade refused: {status_line}")
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        assert self.headers.get("sec-websocket-accept") == accept, self.headers

    def send(self, data):
        """Sends bytes. A peer that already failed the connection may have closed it: that
        is not an error here (the test then checks the close frame it sent)."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            self.send_failed = True

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(build_frame(opcode, payload, **kw))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"wanted {n} bytes, have {len(self.buf)}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise EOFError(f"connection closed with {len(self.buf)} of {n} bytes")
            self.buf += chunk

    def _take(self, n):
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        self._fill(2, deadline)
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            self._fill(2, deadline)
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            self._fill(8, deadline)
            n = struct.unpack("!Q", self._take(8))[0]
        masked = bool(b1 & 0x80)
        key = b""
        if masked:
            self._fill(4, deadline)
            key = self._take(4)
        self._fill(n, deadline)
        payload = self._take(n)
        if masked:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, masked, payload)

    def recv_message(self, timeout=5.0):
        """Reads data frames (answering nothing) until a complete message; returns (opcode, payload)."""
        deadline = time.monotonic() + timeout
        opcode, parts = None, []
        while True:
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            assert not f.masked, f"server frame is masked: {f}"
            assert f.rsv == 0, f
            if f.opcode in (OP_PING, OP_PONG):
                continue
            if f.opcode == OP_CLOSE:
                raise AssertionError(f"close frame instead of a message: code={f.close_code} {f.payload!r}")
            if opcode is None:
                assert f.opcode in (OP_TEXT, OP_BINARY), f
                opcode = f.opcode
            else:
                assert f.opcode == OP_CONT, f
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts)

    def expect_close(self, code, timeout=5.0):
        """Skips data/control frames up to a close frame, checks it, returns the Frame."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if f.opcode == OP_CLOSE:
                break
        assert not f.masked, f"server close frame is masked: {f}"
        assert f.fin and f.rsv == 0, f
        assert len(f.payload) >= 2, f"close frame without a status code: {f}"
        assert f.close_code == code, f"close code {f.close_code}, want {code} ({f.payload!r})"
        f.payload[2:].decode("utf-8")  # the reason must be UTF-8
        assert len(f.payload) <= 125
        return f

    def expect_eof(self, timeout=3.0):
        """The server must close TCP: reads until EOF, failing on any further frame bytes."""
        deadline = time.monotonic() + timeout
        extra = self.buf
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"server did not close TCP within {timeout}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except socket.timeout:
                continue
            if not chunk:
                break
            extra += chunk
        assert extra == b"", f"bytes after the close frame: {extra[:60]!r}"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
