"""asyncio API shaped like the `websockets` package, on wsffi's dispatch mode.

Each asyncio event loop gets its own reactor in dispatch mode; the reactor's descriptor is in
``loop.add_reader``, so every callback runs on the loop's thread and resolves futures
directly. The reactor is freed when its last connection or server is gone.

    async with wsffi.asyncio.connect("ws://127.0.0.1:8765/") as ws:
        await ws.send("hello")
        print(await ws.recv())

    async def handler(ws):
        async for message in ws:
            await ws.send(message)

    async with wsffi.asyncio.serve(handler, "127.0.0.1", 8765) as server:
        await server.serve_forever()
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import weakref
from typing import NamedTuple

from . import _core as C
from . import _lib as L
from ._core import Request, Response, WebSocketError

__all__ = [
    "connect", "serve", "ClientConnection", "ServerConnection", "Server", "ConnectionClosed",
    "ConnectionClosedOK", "ConnectionClosedError", "InvalidHandshake", "InvalidStatus", "State",
    "Close", "WebSocketError",
]  # fmt: skip

log = logging.getLogger("wsffi.asyncio")

OK_CLOSE_CODES = {1000, 1001, 1005}


class Close(NamedTuple):
    code: int
    reason: str


class State:
    CONNECTING, OPEN, CLOSING, CLOSED = L.CONNECTING, L.OPEN, L.CLOSING, L.CLOSED


class ConnectionClosed(Exception):
    """Raised by recv/send/ping once the connection is closed. ``rcvd`` / ``sent`` are the
    close frames received and sent (Close(code, reason) or None); ``code`` / ``reason`` are
    those that decided the close (1006 and "" when no close frame went either way)."""

    def __init__(self, details: C.CloseDetails):
        self.details = details
        self.rcvd = Close(details.peer_code, details.peer_reason or "") if details.peer_reason is not None else None
        self.sent = Close(details.local_code, details.local_reason or "") if details.local_reason is not None else None
        self.rcvd_then_sent = details.origin == 1 if self.rcvd and self.sent else None
        self.code = details.code
        self.reason = details.reason
        self.was_clean = details.was_clean
        super().__init__(f"connection closed: {self.code} {self.reason!r}".rstrip())


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally: close frames with 1000, 1001 or no code both ways."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed abnormally or with an error code."""


def _closed_exception(details: C.CloseDetails) -> ConnectionClosed:
    ok = (
        details.peer_reason is not None
        and details.local_reason is not None
        and details.peer_code in OK_CLOSE_CODES
        and details.local_code in OK_CLOSE_CODES
    )
    return (ConnectionClosedOK if ok else ConnectionClosedError)(details)


class InvalidHandshake(WebSocketError):
    """The opening handshake failed."""


class InvalidStatus(InvalidHandshake):
    """The server answered the upgrade with a non-101 status; ``response`` has the details."""

    def __init__(self, response: Response):
        self.response = response
        super().__init__(L.STATUS_OK + 302, f"server rejected WebSocket connection: HTTP {response.status}")


# ---------------------------------------------------------------------------------------------
# One reactor per asyncio loop.

_by_loop: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopReactor]" = weakref.WeakKeyDictionary()


class _LoopReactor:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.reactor = C.Reactor()
        self.fd = self.reactor.fd
        self.live = 0
        loop.add_reader(self.fd, self._readable)
        self.reactor.before_free.append(self._unhook)

    @classmethod
    def get(cls, loop=None) -> "_LoopReactor":
        loop = loop or asyncio.get_running_loop()
        r = _by_loop.get(loop)
        if r is None or not r.reactor.alive:
            r = _by_loop[loop] = cls(loop)
        return r

    def _readable(self):
        try:
            while self.reactor.alive and self.reactor.dispatch(256) == 256:
                pass
        except Exception:
            C.report_exception("wsffi_reactor_dispatch")

    def _unhook(self):
        if _by_loop.get(self.loop) is self:
            del _by_loop[self.loop]
        if not self.loop.is_closed():
            try:
                self.loop.remove_reader(self.fd)
            except Exception:
                pass

    def add(self):
        self.live += 1

    def remove(self):
        self.live -= 1
        if self.live <= 0 and not self.loop.is_closed():
            try:
                self.loop.call_soon(self._maybe_free)
            except RuntimeError:
                pass

    def _maybe_free(self):
        if self.live <= 0 and self.reactor.alive:
            self.reactor.free()


def _resolve(fut, value=None, exc=None):
    if fut is None or fut.done() or fut.get_loop().is_closed():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


# ---------------------------------------------------------------------------------------------


class _Connection(C.BaseConnection):
    def __init__(self, lr: _LoopReactor):
        self._lr = lr
        self._loop = lr.loop
        self._messages: collections.deque = collections.deque()
        self._recv_waiter: asyncio.Future | None = None
        self._opened = self._loop.create_future()
        self._closed = self._loop.create_future()
        self._drain: asyncio.Future | None = None
        self._pings: dict[bytes, asyncio.Future] = {}
        self._error: WebSocketError | None = None
        self._response: Response | None = None
        self._details: C.CloseDetails | None = None
        self.request: Request | None = None
        self.response: Response | None = None

    # properties like websockets' ------------------------------------------------------------

    @property
    def state(self) -> int:
        return self.ready_state

    @property
    def subprotocol(self) -> str | None:
        return self.protocol or None

    @property
    def close_code(self) -> int | None:
        return self._details.code if self._details else None

    @property
    def close_reason(self) -> str | None:
        return self._details.reason if self._details else None

    # calls ----------------------------------------------------------------------------------

    async def recv(self, decode: bool | None = None):
        """The next message: str for text, bytes for binary (``decode`` turns them into the
        other). Raises ConnectionClosedOK / ConnectionClosedError once closed and drained."""
        while not self._messages:
            if self._details is not None:
                raise _closed_exception(self._details)
            if self._recv_waiter is not None:
                raise RuntimeError("cannot call recv while another coroutine is already running recv")
            self._recv_waiter = self._loop.create_future()
            try:
                await self._recv_waiter
            finally:
                self._recv_waiter = None
        msg = self._messages.popleft()
        if decode is True and isinstance(msg, bytes):
            return msg.decode()
        if decode is False and isinstance(msg, str):
            return msg.encode()
        return msg

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        while True:
            try:
                yield await self.recv()
            except ConnectionClosedOK:
                return

    def _raise_if_closed(self):
        if self._details is not None:
            raise _closed_exception(self._details)

    async def send(self, message) -> None:
        """Sends str as text, bytes-like as binary; waits while the output is above its
        high-water mark. Raises ConnectionClosed once closing or closed."""
        while True:
            self._raise_if_closed()
            try:
                self._send(message)
                return
            except C.BackpressureError:
                if self._drain is None or self._drain.done():
                    self._drain = self._loop.create_future()
                await asyncio.shield(self._drain)
            except C.InvalidStateError:
                if self.ready_state in (L.CLOSING, L.CLOSED):
                    await asyncio.shield(self._closed)
                    self._raise_if_closed()
                raise

    async def ping(self, data=None) -> asyncio.Future:
        """Sends a ping; returns a future that resolves (to the latency in seconds) when the
        matching pong arrives."""
        self._raise_if_closed()
        if data is None:
            data = os.urandom(4)
            while data in self._pings:
                data = os.urandom(4)
        payload = data.encode() if isinstance(data, str) else bytes(data)
        fut = self._loop.create_future()
        fut._wsffi_sent = self._loop.time()  # type: ignore[attr-defined]
        self._ping(payload)
        self._pings[payload] = fut
        return fut

    async def pong(self, data=b"") -> None:
        self._raise_if_closed()
        self._pong(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Starts the close handshake (if not already) and waits until the connection closed."""
        if self._details is None:
            try:
                self._close(code, reason)
            except C.InvalidStateError:
                pass
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    def terminate(self) -> None:
        if self._details is None and self._handle:
            try:
                self._terminate()
            except C.InvalidStateError:
                pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    # events ---------------------------------------------------------------------------------

    def _ev_open(self):
        _resolve(self._opened, self)

    def _ev_message(self, kind, data):
        self._messages.append(data.decode("utf-8") if kind == L.TEXT else data)
        _resolve(self._recv_waiter)

    def _ev_error(self, status, message):
        if self._error is None:
            self._error = C.error_for(status, message)

    def _ev_pong(self, data):
        fut = self._pings.pop(data, None)
        if fut is not None:
            # pongs answer every earlier ping too
            for key, earlier in list(self._pings.items()):
                if earlier._wsffi_sent <= fut._wsffi_sent:  # type: ignore[attr-defined]
                    del self._pings[key]
                    _resolve(earlier, self._loop.time() - earlier._wsffi_sent)  # type: ignore[attr-defined]
            _resolve(fut, self._loop.time() - fut._wsffi_sent)  # type: ignore[attr-defined]

    def _ev_drain(self):
        _resolve(self._drain)

    def _ev_unexpected_response(self, response):
        self._response = response

    def _ev_close(self, details):
        self._details = details
        exc = _closed_exception(details)
        if not self._opened.done():
            if self._response is not None:
                err = InvalidStatus(self._response)
            else:
                err = self._error or InvalidHandshake(L.STATUS_ERR_CLOSED, "connection closed during the handshake")
            _resolve(self._opened, exc=err)
        _resolve(self._recv_waiter)
        _resolve(self._drain)
        for fut in self._pings.values():
            _resolve(fut, exc=exc)
        self._pings.clear()
        _resolve(self._closed)

    def _ev_destroy(self):
        self._lr.remove()


class ClientConnection(_Connection):
    """A client connection (what ``await connect(url)`` gives)."""

    def __init__(self, lr, url):
        super().__init__(lr)
        self.url = url

    def _ev_open(self):
        self.response = self.handshake_response  # the 101, like websockets' .response
        super()._ev_open()

    def __repr__(self):
        return f"<ClientConnection {self.url} state={self.state}>"


class ServerConnection(_Connection):
    """The server side of a connection, handed to the handler. ``request`` is the upgrade
    request (path, headers, query(), ...)."""

    def __init__(self, lr, server, request):
        super().__init__(lr)
        self.server = server
        self.request = request
        self.url = request.url
        self._task: asyncio.Task | None = None

    def _ev_open(self):
        super()._ev_open()
        self._task = self._loop.create_task(self.server._run_handler(self))

    def _ev_close(self, details):
        self.server._connections.discard(self)
        super()._ev_close(details)

    def __repr__(self):
        return f"<ServerConnection {self.url} from {self.remote_address}>"


# ---------------------------------------------------------------------------------------------


def _client_options(kw):
    """Maps websockets-style keyword names onto wsffi's; other wsffi options pass through."""
    out = dict(kw)
    if "additional_headers" in out:
        out["headers"] = out.pop("additional_headers")
    if "extra_headers" in out:
        out["headers"] = out.pop("extra_headers")
    if "compression" in out:
        out["per_message_deflate"] = out.pop("compression") is not None
    if "max_size" in out:
        size = out.pop("max_size")
        if size is not None:
            out["max_payload"] = size
    if "open_timeout" in out:
        t = out.pop("open_timeout")
        if t is not None:
            out["handshake_timeout"] = t
    for drop in ("ping_timeout", "user_agent_header"):
        out.pop(drop, None)
    if out.get("ping_interval") is None:
        out.pop("ping_interval", None)
    if out.get("close_timeout") is None:
        out.pop("close_timeout", None)
    return out


class connect:  # noqa: N801 -- named like websockets' connect
    """``await connect(url)`` or ``async with connect(url) as ws``: opens a client connection.

    Keywords: ``subprotocols``, ``additional_headers``, ``origin``, ``compression``
    ("deflate" by default, None for off), ``max_size``, ``open_timeout``, ``ping_interval``,
    ``close_timeout``, plus any wsffi client option (see wsffi.WebSocket). Raises
    InvalidStatus when the server refuses, WebSocketError for other failures."""

    def __init__(self, uri: str, *, subprotocols=None, **kw):
        self.uri = uri
        self.subprotocols = subprotocols
        self.kw = _client_options(kw)
        self.connection: ClientConnection | None = None

    async def _open(self) -> ClientConnection:
        lr = _LoopReactor.get()
        conn = ClientConnection(lr, self.uri)
        opts = C.ClientOptions(self.subprotocols, **self.kw)
        try:
            lr.add()
            try:
                C.connect(lr.reactor, conn, self.uri, opts.ptr)
            except BaseException:
                lr.remove()
                raise
        finally:
            opts.free()
        try:
            await asyncio.shield(conn._opened)
        except asyncio.CancelledError:
            conn.terminate()
            raise
        self.connection = conn
        return conn

    def __await__(self):
        return self._open().__await__()

    async def __aenter__(self) -> ClientConnection:
        return await self._open()

    async def __aexit__(self, *exc):
        if self.connection is not None:
            await self.connection.close()


class Server(C.BaseServer):
    """A running server (what ``await serve(...)`` gives)."""

    def __init__(self, handler, lr, select_subprotocol, process_request):
        self._handler = handler
        self._lr = lr
        self._loop = lr.loop
        self._select_subprotocol = select_subprotocol
        self._process_request = process_request
        self._connections: set = set()
        self._tasks: set = set()
        self._closed_fut = self._loop.create_future()
        self._closing = False
        self._subprotocols = None
        self._listener = self._server = None
        self._http_uid = 0
        self.port = 0
        self.address = ""

    @property
    def connections(self) -> set:
        return set(self._connections)

    def close(self, close_connections: bool = True) -> None:
        """Stops listening and closes every connection with 1001."""
        if self._closing:
            return
        self._closing = True
        listener, self._listener = self._listener, None
        server, self._server = self._server, None
        L.wsffi_listener_close(listener)
        L.wsffi_server_close(server)
        if self._http_uid:
            C.unregister(self._http_uid)

    def set_certificates(self, tls_cert=None, tls_sni=None) -> None:
        """Replaces the TLS certificates for new handshakes (see
        wsffi.WebSocketServer.set_certificates)."""
        if self._listener is None:
            raise C.InvalidStateError(L.STATUS_ERR_CLOSED, "the server is closed")
        C.replace_certificates(self._listener, tls_cert, tls_sni)

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed_fut)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def serve_forever(self) -> None:
        try:
            await asyncio.shield(self._closed_fut)
        finally:
            self.close()

    def stats(self) -> dict:
        """The server's counters: handshakes accepted and refused by reason, messages, bytes,
        close codes (struct wsffi_server_stats)."""
        return C.server_stats(self._server)

    def metrics(self) -> str:
        """The counters of this server's reactor and its servers in the Prometheus text format."""
        return self._lr.reactor.prometheus_text()

    def broadcast(self, message) -> None:
        kind, payload = C.to_bytes(message)
        if self._server is not None:
            C.check(L.wsffi_server_broadcast(self._server, kind, payload, len(payload), None))

    def publish(self, topic: str, message, except_=None) -> None:
        """Sends `message` to every connection subscribed to `topic` (``ws.subscribe``) but
        `except_`."""
        C.publish(self._server, topic, message, except_)

    def subscriber_count(self, topic: str) -> int:
        return C.subscriber_count(self._server, topic)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()
        await self.wait_closed()

    async def _run_handler(self, conn: ServerConnection):
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            await self._handler(conn)
        except ConnectionClosedOK:
            pass
        except Exception:
            log.error("connection handler failed", exc_info=True)
            if conn._details is None:
                try:
                    conn._close(1011, "")
                except WebSocketError:
                    pass
        else:
            try:
                await conn.close()
            except WebSocketError:
                pass
        finally:
            self._tasks.discard(task)

    # events ---------------------------------------------------------------------------------

    def _ev_verify(self, handshake):
        if self._process_request is None:
            return L.VERDICT_ACCEPT
        req = C.Request.from_view(L.wsffi_handshake_request(handshake))
        try:
            result = self._process_request(req)
        except Exception:
            log.error("process_request failed", exc_info=True)
            L.wsffi_handshake_set_reject(handshake, 500, None)
            return L.VERDICT_REJECT
        if result is None:
            return L.VERDICT_ACCEPT
        status, reason = (result, None) if isinstance(result, int) else (result[0], result[1] if len(result) > 1 else None)
        L.wsffi_handshake_set_reject(handshake, int(status), reason.encode() if reason else None)
        return L.VERDICT_REJECT

    def _ev_protocols(self, request_ptr, offered):
        try:
            if self._select_subprotocol is not None:
                chosen = self._select_subprotocol(C.Request.from_view(request_ptr), list(offered))
            elif self._subprotocols is not None:
                chosen = next((p for p in self._subprotocols if p in offered), None)
            else:
                return -1
            return offered.index(chosen) if chosen else -1
        except Exception:
            log.error("select_subprotocol failed", exc_info=True)
            return -1

    def _ev_connection(self, conn, request_ptr):
        request = C.Request.from_view(request_ptr)
        ws = ServerConnection(self._lr, self, request)
        self._lr.add()
        C.adopt_server_conn(self._lr.reactor, ws, conn)
        self._connections.add(ws)

    def _ev_client_error(self, status, message):
        log.debug("handshake failed: %s", message)

    def _ev_error(self, status, message):
        log.error("server failed: %s", message)

    def _ev_close(self):
        _resolve(self._closed_fut)

    def _ev_destroy(self):
        _resolve(self._closed_fut)
        self._lr.remove()


class serve:  # noqa: N801 -- named like websockets' serve
    """``await serve(handler, host, port)`` or ``async with serve(...) as server``.

    ``handler(connection)`` is a coroutine run per connection once it is open; when it returns
    the connection is closed (1000), when it raises, with 1011. Keywords: ``path`` (the one
    request path served, "/" by default), ``subprotocols`` (ours, in order of preference),
    ``select_subprotocol(request, offered)``, ``process_request(request)`` (return None to go
    on, or an HTTP status / (status, reason) to refuse), ``compression`` (None by default,
    "deflate" to accept it), ``max_size``, ``open_timeout``, ``ping_interval``,
    ``close_timeout``, ``http_handler(request)`` for plain HTTP requests (as
    wsffi.WebSocketServer's), plus any wsffi server option (see wsffi.WebSocketServer)."""

    def __init__(self, handler, host: str = "127.0.0.1", port: int = 0, *, path: str = "/", subprotocols=None,
                 select_subprotocol=None, process_request=None, http_handler=None, **kw):  # fmt: skip
        self.handler = handler
        self.host = host or "0.0.0.0"
        self.port = port
        self.path = path
        self.subprotocols = subprotocols
        self.select_subprotocol = select_subprotocol
        self.process_request = process_request
        self.http_handler = http_handler
        kw = dict(kw)
        if "compression" in kw:
            kw["per_message_deflate"] = kw.pop("compression") is not None
        if "max_size" in kw:
            size = kw.pop("max_size")
            if size is not None:
                kw["max_payload"] = size
        if "open_timeout" in kw:
            t = kw.pop("open_timeout")
            if t is not None:
                kw["handshake_timeout"] = t
        for key in ("ping_interval", "close_timeout", "ping_timeout"):
            if key in kw and kw[key] is None:
                kw.pop(key)
        kw.pop("ping_timeout", None)
        self.kw = kw
        self.server: Server | None = None

    async def _start(self) -> Server:
        lr = _LoopReactor.get()
        server = Server(self.handler, lr, self.select_subprotocol, self.process_request)
        server._subprotocols = list(self.subprotocols) if self.subprotocols else None
        opts = C.ServerOptions(**self.kw)
        try:
            lr.add()
            try:
                server._listener, server._server = C.listen_and_attach(
                    lr.reactor, server, C.format_address(self.host, self.port), self.path, opts
                )
            except BaseException:
                lr.remove()
                raise
        finally:
            opts.free()
        server._http_uid = C.set_http_handler(server._listener, self.http_handler) if self.http_handler else 0
        server.address = C.dec(L.wsffi_listener_address(server._listener))
        server.port = L.wsffi_listener_port(server._listener)
        self.server = server
        return server

    def __await__(self):
        return self._start().__await__()

    async def __aenter__(self) -> Server:
        return await self._start()

    async def __aexit__(self, *exc):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
