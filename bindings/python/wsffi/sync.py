"""A blocking client API for scripts: no thread of its own, no event loop.

    with wsffi.sync.connect("ws://127.0.0.1:8765/") as ws:
        ws.send("hello")
        print(ws.recv(timeout=5))

The connections of this module share one reactor in dispatch mode. Its events are dispatched
by whichever thread is blocked in a call of this module (connect, recv, close, ...), one thread
at a time, into per-connection queues; other blocked threads wait on a condition.
"""

from __future__ import annotations

import collections
import select
import threading
import time

from . import _core as C
from . import _lib as L
from ._core import WebSocketError
from .asyncio import (
    Close,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    _closed_exception,
)

__all__ = [
    "connect", "ClientConnection", "ConnectionClosed", "ConnectionClosedOK", "ConnectionClosedError",
    "InvalidHandshake", "InvalidStatus", "Close", "WebSocketError",
]  # fmt: skip


class _Driver:
    """Owns the shared reactor; `wait(pred, timeout)` dispatches until pred() holds."""

    def __init__(self):
        self.reactor = C.Reactor()
        self.cond = threading.Condition()
        self.driving = False

    def wait(self, pred, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cond:
            while not pred():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if self.driving:
                    self.cond.wait(remaining)
                    continue
                if not self.reactor.alive:
                    return pred()
                self.driving = True
                self.cond.release()
                try:
                    poller = select.poll()
                    poller.register(self.reactor.fd, select.POLLIN)
                    poller.poll(None if remaining is None else max(1, int(remaining * 1000)))
                    while self.reactor.alive and self.reactor.dispatch(256) == 256:
                        pass
                finally:
                    self.cond.acquire()
                    self.driving = False
                    self.cond.notify_all()
            return True

    def notify(self):
        with self.cond:
            self.cond.notify_all()


_driver: _Driver | None = None
_driver_lock = threading.Lock()


def _get_driver() -> _Driver:
    global _driver
    with _driver_lock:
        if _driver is None or not _driver.reactor.alive:
            _driver = _Driver()
        return _driver


class ClientConnection(C.BaseConnection):
    """A blocking client connection (see `connect`)."""

    def __init__(self, driver: _Driver, url: str):
        self._driver = driver
        self.url = url
        self._messages: collections.deque = collections.deque()
        self._opened = False
        self._details: C.CloseDetails | None = None
        self._error: WebSocketError | None = None
        self._response = None
        self._pongs: collections.deque = collections.deque()

    @property
    def close_code(self):
        return self._details.code if self._details else None

    @property
    def close_reason(self):
        return self._details.reason if self._details else None

    @property
    def subprotocol(self):
        return self.protocol or None

    def send(self, message) -> None:
        """Sends str as text, bytes-like as binary. Raises ConnectionClosed once closed; waits
        while the output buffer is above its high-water mark."""
        while True:
            if self._details is not None:
                raise _closed_exception(self._details)
            try:
                self._send(message)
                return
            except C.BackpressureError:
                self._driver.wait(lambda: self.buffered_amount == 0 or self._details is not None, 1.0)
            except C.InvalidStateError:
                if self._details is None and self.ready_state in (L.CLOSING, L.CLOSED):
                    self._driver.wait(lambda: self._details is not None, None)
                if self._details is not None:
                    raise _closed_exception(self._details) from None
                raise

    def recv(self, timeout: float | None = None):
        """The next message (str or bytes). Raises TimeoutError after `timeout` seconds,
        ConnectionClosedOK / ConnectionClosedError once closed and drained."""
        if not self._driver.wait(lambda: self._messages or self._details is not None, timeout):
            raise TimeoutError(f"no message within {timeout} s")
        if self._messages:
            return self._messages.popleft()
        raise _closed_exception(self._details)

    def __iter__(self):
        while True:
            try:
                yield self.recv()
            except ConnectionClosedOK:
                return

    def ping(self, data=b"", timeout: float | None = 10) -> None:
        """Sends a ping and waits for a pong (TimeoutError after `timeout`)."""
        if self._details is not None:
            raise _closed_exception(self._details)
        payload = data.encode() if isinstance(data, str) else bytes(data)
        self._pongs.clear()
        self._ping(payload)
        if not self._driver.wait(lambda: payload in self._pongs or self._details is not None, timeout):
            raise TimeoutError("no pong")
        if self._details is not None and payload not in self._pongs:
            raise _closed_exception(self._details)

    def close(self, code: int = 1000, reason: str = "", timeout: float | None = None) -> None:
        """Starts the close handshake and waits until the connection closed."""
        if self._details is None:
            try:
                self._close(code, reason)
            except C.InvalidStateError:
                pass
        self._driver.wait(lambda: self._details is not None, timeout)

    def terminate(self) -> None:
        """Drops the connection without a close handshake."""
        try:
            self._terminate()
        except WebSocketError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # events (run inside the driver's dispatch) ------------------------------------------------

    def _ev_open(self):
        self._opened = True

    def _ev_message(self, kind, data):
        self._messages.append(data.decode("utf-8") if kind == L.TEXT else data)

    def _ev_error(self, status, message):
        if self._error is None:
            self._error = C.error_for(status, message)

    def _ev_pong(self, data):
        self._pongs.append(data)

    def _ev_unexpected_response(self, response):
        self._response = response

    def _ev_close(self, details):
        self._details = details

    def __repr__(self):
        return f"<sync.ClientConnection {self.url} state={self.ready_state}>"


def connect(uri: str, *, subprotocols=None, timeout: float | None = None, **kw) -> ClientConnection:
    """Opens a connection and blocks until it is open. Raises InvalidStatus when the server
    refuses the upgrade, WebSocketError (status, message) for other failures. Keywords as for
    wsffi.asyncio.connect (websockets-style names) or any wsffi client option."""
    from .asyncio import _client_options

    driver = _get_driver()
    conn = ClientConnection(driver, uri)
    opts = C.ClientOptions(subprotocols, **_client_options(kw))
    try:
        C.connect(driver.reactor, conn, uri, opts.ptr)
    finally:
        opts.free()
    if not driver.wait(lambda: conn._opened or conn._details is not None, timeout):
        conn.terminate()
        raise TimeoutError(f"connection to {uri} not open within {timeout} s")
    if conn._opened:
        return conn
    if conn._response is not None:
        raise InvalidStatus(conn._response)
    raise conn._error or InvalidHandshake(L.STATUS_ERR_CLOSED, "connection closed during the handshake")

