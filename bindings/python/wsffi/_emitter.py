"""The event-emitter API (modelled on Node's / JSH's `ws` module): WebSocket, WebSocketServer
and the EventLoop that runs their events.

Where events run: every reactor here is in dispatch mode, so callbacks run on the Python thread
that runs the EventLoop -- `wsffi.run()` on your own thread (like Node's loop after the script's
top level), or the background thread started by `loop.start()` (what the default loop does when
you create the first object, unless you called `wsffi.run()` yourself; see `EventLoop`).
"""

from __future__ import annotations

import inspect
import logging
import os
import select
import threading
from ctypes import byref, c_size_t

from . import _core as C
from . import _lib as L

log = logging.getLogger("wsffi")

__all__ = ["EventEmitter", "EventLoop", "WebSocket", "WebSocketServer", "MessageEvent", "default_loop"]


def _arity(fn):
    """How many positional arguments `fn` takes (None: any number)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


class EventEmitter:
    """Minimal Node-style emitter. Listeners get as many of the event's arguments as they accept
    (like JavaScript, where extra arguments are ignored), so `on('close', lambda: ...)` and
    `on('close', lambda code, reason: ...)` both work.

    A listener that raises does not stop the others nor the loop: the exception is emitted as an
    'error' event (with ``exc.event`` naming the event) when the emitter has 'error' listeners,
    and goes to ``sys.unraisablehook`` otherwise (or when an 'error' listener raises)."""

    def __init__(self):
        self._listeners: dict[str, list] = {}

    def on(self, event: str, fn=None):
        if fn is None:  # decorator form: @ws.on('message')
            def deco(f):
                self.on(event, f)
                return f

            return deco
        self._listeners.setdefault(event, []).append([fn, _arity(fn), False])
        return self

    add_listener = on

    def once(self, event: str, fn):
        self._listeners.setdefault(event, []).append([fn, _arity(fn), True])
        return self

    def off(self, event: str, fn):
        entries = self._listeners.get(event, [])
        for i, entry in enumerate(entries):
            if entry[0] == fn:
                del entries[i]
                break
        return self

    remove_listener = off

    def remove_all_listeners(self, event: str | None = None):
        if event is None:
            self._listeners.clear()
        else:
            self._listeners.pop(event, None)
        return self

    def listener_count(self, event: str) -> int:
        return len(self._listeners.get(event, ()))

    def emit(self, event: str, *args) -> bool:
        entries = list(self._listeners.get(event, ()))
        for entry in entries:
            fn, n, once = entry
            if once:
                self.off(event, fn)
            try:
                fn(*(args if n is None else args[:n]))
            except Exception as exc:
                if event != "error" and self.listener_count("error"):
                    exc.event = event  # type: ignore[attr-defined]
                    self.emit("error", exc)
                else:
                    C.report_exception(f"{type(self).__name__} '{event}' listener {fn!r}", self)
            except BaseException:
                C.report_exception(f"{type(self).__name__} '{event}' listener {fn!r}", self)
        return bool(entries)


# ---------------------------------------------------------------------------------------------


class EventLoop:
    """Runs the events of the connections and servers made on it, in dispatch mode.

    - ``run()``: dispatch on the calling thread until ``stop()`` or until no connection or
      server of the loop is left.
    - ``start()``: run the loop in a background thread ("wsffi-events"); the default loop starts
      itself this way when a WebSocket or WebSocketServer is created and no thread runs it.
    - ``call_soon(fn, *args)``: run `fn` on the loop's thread (thread-safe).
    - ``with loop.lock:`` holds events back: nothing is dispatched while another thread holds
      it, so ``with loop.lock: ws = WebSocket(url); ws.on('open', f)`` cannot miss 'open'.
      (Code running on the loop's thread -- listeners, ``call_soon`` -- needs no lock.)
    - ``close()``: closes every connection (1001) and server, runs their last events, frees the
      reactor. Runs at interpreter exit for the loops still open.
    """

    def __init__(self, autostart: bool = False):
        self.reactor = C.Reactor()
        self.lock = threading.RLock()
        self._calls: list = []
        self._calls_lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stop = False
        self._running_thread: threading.Thread | None = None
        self._bg: threading.Thread | None = None
        self._live = 0  # connections and servers not yet destroyed
        self._autostart = autostart
        self.reactor.before_free.append(self._before_free)

    # bookkeeping ----------------------------------------------------------------------------

    def _add(self):
        with self._calls_lock:
            self._live += 1
        if self._autostart and self._running_thread is None:
            self.start()

    def _remove(self):
        with self._calls_lock:
            self._live -= 1
        self._wake()

    def _wake(self):
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    @property
    def in_loop_thread(self) -> bool:
        return self._running_thread is threading.current_thread()

    def call_soon(self, fn, *args):
        with self._calls_lock:
            self._calls.append((fn, args))
        self._wake()

    def call_later(self, delay: float, fn, *args) -> C.Timer:
        """Runs fn(*args) once on the loop's thread after `delay` seconds (a reactor timer;
        the seeds' setTimeout). Like a connection, a pending timer keeps ``run()`` going."""
        return self._timer(delay, None, fn, args)

    def call_every(self, interval: float, fn, *args) -> C.Timer:
        """Runs fn(*args) on the loop's thread every `interval` seconds until
        ``timer.cancel()`` (the seeds' setInterval heartbeat). A run that falls behind is not
        repeated to catch up."""
        return self._timer(interval, interval, fn, args)

    def _timer(self, delay, repeat, fn, args) -> C.Timer:
        self._add()
        try:
            return C.add_timer(self.reactor, delay, repeat, fn, args, on_done=self._remove)
        except BaseException:
            self._remove()
            raise

    # running --------------------------------------------------------------------------------

    def start(self):
        with self._calls_lock:
            if self._running_thread is not None:
                return
            self._bg = threading.Thread(target=self._run_forever, name="wsffi-events", daemon=True)
            self._running_thread = self._bg
        self._bg.start()

    def _run_forever(self):
        self._loop(until_idle=False)

    def run(self, timeout: float | None = None):
        """Dispatches events on this thread until stop(), until nothing is left to run, or
        until `timeout` seconds passed."""
        bg = self._bg
        if bg is not None and bg is not threading.current_thread() and self._autostart:
            # the default loop started its own thread: take it over
            self._autostart = False
            self.stop()
            bg.join(10)
        with self._calls_lock:
            if self._running_thread is not None:
                raise RuntimeError("this loop already runs on another thread")
            self._running_thread = threading.current_thread()
            self._stop = False
        self._loop(until_idle=True, timeout=timeout)

    def _loop(self, until_idle: bool, timeout: float | None = None):
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()
        fd = self.reactor.fd
        poller.register(fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self._stop and self.reactor.alive:
                self._run_calls()
                if until_idle and self._live <= 0 and not self._calls:
                    break
                wait = None
                if deadline is not None:
                    wait = max(0, int((deadline - time.monotonic()) * 1000))
                    if wait == 0:
                        break
                poller.poll(wait)
                try:
                    while os.read(self._wake_r, 512):
                        pass
                except (BlockingIOError, OSError):
                    pass
                while self.reactor.alive:
                    with self.lock:
                        try:
                            ran = self.reactor.dispatch(256)
                        except Exception:
                            C.report_exception("wsffi_reactor_dispatch")
                            ran = 0
                    if ran < 256:
                        break
        finally:
            with self._calls_lock:
                self._running_thread = None
                self._bg = None
                self._stop = False

    def _run_calls(self):
        with self._calls_lock:
            calls, self._calls = self._calls, []
        for fn, args in calls:
            try:
                with self.lock:
                    fn(*args)
            except BaseException:
                C.report_exception(f"call_soon {fn!r}")

    def stop(self):
        self._stop = True
        self._wake()

    def _before_free(self):
        bg = self._bg
        self.stop()
        if bg is not None and bg is not threading.current_thread():
            bg.join(10)

    def close(self):
        self.reactor.free()


_default_loop: EventLoop | None = None
_default_lock = threading.Lock()


def default_loop() -> EventLoop:
    """The process-wide loop used when no `loop=` is given (made on first use; it starts its
    own background thread when the first connection or server is made, unless some thread
    already runs it with `wsffi.run()`)."""
    global _default_loop
    with _default_lock:
        if _default_loop is None or not _default_loop.reactor.alive:
            _default_loop = EventLoop(autostart=True)
        return _default_loop


# ---------------------------------------------------------------------------------------------


class MessageEvent:
    """What 'message' listeners receive: ``data`` (str for text, bytes for binary), ``type``
    (WebSocket.TextMessage = 1 or WebSocket.BinaryMessage = 2) and ``is_binary``."""

    __slots__ = ("data", "type")

    def __init__(self, data, kind):
        self.data = data
        self.type = kind

    @property
    def is_binary(self) -> bool:
        return self.type == L.BINARY

    def __repr__(self):
        return f"<MessageEvent type={self.type} data={self.data!r}>"


class WebSocket(EventEmitter, C.BaseConnection):
    """A WebSocket connection with Node-style events.

    ``WebSocket(url, protocols=None, **options)`` starts connecting at once (the outcome is the
    'open' event, or 'error' then 'close'). Events and their arguments:

    - 'open' ()
    - 'message' (MessageEvent: .data str|bytes, .type, .is_binary)
    - 'close' (code, reason) -- also in .close_code, .close_reason, .was_clean, .close_details
    - 'error' (WebSocketError with .status/.message, or a listener's exception)
    - 'ping' (bytes), 'pong' (bytes) -- pings are answered automatically
    - 'drain' () -- the buffered amount fell to the low-water mark after a BackpressureError
    - 'unexpected-response' (Response) -- the server refused the upgrade
    - 'message-part' (data: bytes, type, is_first, is_last) -- with ``stream_messages=True``
      messages arrive in parts as they are read, instead of 'message' (text parts are bytes
      and may end inside a UTF-8 character; the last part may be empty); no size limit applies
    - 'reconnect' (attempt, delay, error, lost) -- with ``reconnect=``: the connection (or an
      attempt) was lost and attempt number `attempt` starts in `delay` seconds; `error` says
      why, `lost` (CloseDetails) how it closed. 'open' follows each success; 'error' and
      'close' come once, at the very end. Sends meanwhile raise ReconnectingError.

    Client options (keywords): origin, headers (dict), per_message_deflate (bool, default True,
    or a dict of deflate parameters), max_payload, max_fragments, connect_timeout,
    handshake_timeout, close_timeout, ping_interval, idle_timeout (seconds), water_marks
    ((high, low) bytes), max_header_bytes, ca_file, ca_dir, client_cert ((cert, key)),
    server_name, insecure, alpn, proxy (URL, or True for $https_proxy and friends),
    follow_redirects, max_redirects, reconnect (True, or a dict of ``initial_delay``,
    ``factor``, ``max_delay`` seconds and ``max_attempts``, 0 for no limit; jittered
    exponential backoff), and loop (an EventLoop).
    """

    CONNECTING, OPEN, CLOSING, CLOSED = L.CONNECTING, L.OPEN, L.CLOSING, L.CLOSED
    TextMessage, BinaryMessage = L.TEXT, L.BINARY

    def __init__(self, url: str, protocols=None, *, loop: EventLoop | None = None, **options):
        EventEmitter.__init__(self)
        if not isinstance(url, str):
            raise TypeError("url must be a string")
        self.url = url
        self._init_state(loop or default_loop())
        opts = C.ClientOptions(protocols, **options)
        try:
            self._loop._add()
            try:
                C.connect(self._loop.reactor, self, url, opts.ptr)
            except BaseException:
                self._loop._remove()
                raise
        finally:
            opts.free()

    def _init_state(self, loop):
        self._loop = loop
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.was_clean: bool | None = None
        self.close_details: C.CloseDetails | None = None
        self.request: C.Request | None = None

    # public calls ---------------------------------------------------------------------------

    def send(self, data) -> None:
        """Sends str as a text message, bytes-like as binary. Raises InvalidStateError while
        connecting and after close, BackpressureError above the high-water mark."""
        self._send(data)

    def ping(self, data=b"") -> None:
        self._ping(data)

    def pong(self, data=b"") -> None:
        self._pong(data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Starts the close handshake; 'close' follows. A no-op once closed."""
        if self.close_code is not None:
            return
        try:
            self._close(code, reason)
        except C.InvalidStateError:
            pass  # already closing

    def terminate(self) -> None:
        """Drops the connection without a close handshake ('close' with 1006)."""
        if self.close_code is None and self._handle:
            try:
                self._terminate()
            except C.InvalidStateError:
                pass

    @property
    def readyState(self) -> int:  # noqa: N802 -- the JavaScript spelling
        return self.ready_state

    @property
    def bufferedAmount(self) -> int:  # noqa: N802
        return self.buffered_amount

    # events ---------------------------------------------------------------------------------

    def _ev_open(self):
        self.emit("open")

    def _ev_message(self, kind, data):
        self.emit("message", MessageEvent(data.decode("utf-8") if kind == L.TEXT else data, kind))

    def _ev_error(self, status, message):
        err = C.error_for(status, message)
        if not self.emit("error", err):
            log.info("wsffi: %s: %s", self.url, err)

    def _ev_ping(self, data):
        self.emit("ping", data)

    def _ev_pong(self, data):
        self.emit("pong", data)

    def _ev_drain(self):
        self.emit("drain")

    def _ev_unexpected_response(self, response):
        self.emit("unexpected-response", response)

    def _ev_message_part(self, kind, data, first, last):
        self.emit("message-part", data, kind, first, last)

    def _ev_reconnect(self, attempt, delay, status, message, lost):
        self.emit("reconnect", attempt, delay, C.error_for(status, message), lost)

    def _ev_close(self, details):
        self.close_details = details
        self.close_code, self.close_reason, self.was_clean = details.code, details.reason, details.was_clean
        self.emit("close", details.code, details.reason)

    def _ev_destroy(self):
        self._loop._remove()

    def __repr__(self):
        return f"<WebSocket {self.url} state={self.ready_state}>"


class _ServerSocket(WebSocket):
    """The server side of a connection (a WebSocket without its own connect)."""

    def __init__(self, loop, server, conn, request):
        EventEmitter.__init__(self)
        self._init_state(loop)
        self.server = server
        self.request = request
        self.url = request.url
        loop._add()
        try:
            C.adopt_server_conn(loop.reactor, self, conn)
        except BaseException:
            raise

    def _ev_close(self, details):
        self.server._clients.discard(self)
        super()._ev_close(details)

    def __repr__(self):
        return f"<WebSocket (server side) {self.url} from {self.remote_address}>"


class ClientInfo:
    """What `verify_client` receives: ``origin``, ``secure`` (TLS), ``req`` (Request)."""

    def __init__(self, req: C.Request, secure: bool):
        self.req = req
        self.origin = req.get_header("origin")
        self.secure = secure


class WebSocketServer(EventEmitter, C.BaseServer):
    """A WebSocket server listening on ``host:port`` (port 0 picks a free one: see ``.port``).

    Events: 'listening' is not needed (the constructor returns once the socket is bound);
    'connection' (ws, request), 'error' (WebSocketError: the server failed, or a listener's
    exception), 'client-error' (WebSocketError: a handshake failed), 'close' ().

    Options:

    - ``path``: the only request path upgraded ("/" by default).
    - ``verify_client(info)``: ``info.origin``, ``info.req``, ``info.secure``; return True to
      accept, False to refuse with 401, or ``(False, status, reason)``. A two-argument form
      ``verify_client(info, done)`` decides later: call ``done(True)`` or
      ``done(False, status=401, reason=None)`` once, from any thread.
    - ``handle_protocols(protocols, request)``: return the chosen name from `protocols` (a
      list), or False/None for none. Without it the first offered one is chosen.
    - ``per_message_deflate`` (bool, default False, or a dict of deflate parameters),
      ``max_payload``, ``max_fragments``, ``max_connections``, ``allowed_origins``,
      ``client_tracking`` (default True), ``ping_interval``, ``idle_timeout``,
      ``close_timeout``, ``handshake_timeout`` (seconds), ``water_marks``, ``backlog``,
      ``max_header_bytes``, ``reuse_port``, ``tls_cert`` ((chain, key) paths),
      ``tls_client_ca`` (path or (path, required)), ``tls_sni`` ({server name: (chain,
      key)}, "*.example.com" for a wildcard), ``alpn`` (protocols in order of preference),
      ``backpressure`` (what to do with a client above its high-water mark: "refuse" sends,
      the default; "drop" the message for that client, counted; "close-1008" / "close-1013"
      after ``backpressure_grace`` seconds above it), ``loop``. Certificates are file paths
      or PEM bytes.
    - ``http_handler(request)``: answers plain (non-upgrade) HTTP requests on the port; it
      returns str or bytes (200), ``(status, body)`` or ``(status, headers, body)``. Without
      it they get 426 on the WebSocket path and 404 elsewhere.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", path: str = "/", *, verify_client=None,
                 handle_protocols=None, http_handler=None, loop: EventLoop | None = None, **options):  # fmt: skip
        EventEmitter.__init__(self)
        self._loop = loop or default_loop()
        self.path = path
        self.verify_client = verify_client
        self.handle_protocols = handle_protocols
        self._verify_arity = _arity(verify_client) if verify_client else None
        self._tracking = options.get("client_tracking", True) is not False
        self._clients: set = set()
        self._secure = bool(options.get("tls_cert"))
        self._closed = False
        opts = C.ServerOptions(**options)
        try:
            self._loop._add()
            try:
                self._listener, self._server = C.listen_and_attach(
                    self._loop.reactor, self, C.format_address(host, port), path, opts
                )
            except BaseException:
                self._loop._remove()
                raise
        finally:
            opts.free()
        self._http_uid = C.set_http_handler(self._listener, http_handler) if http_handler else 0
        self.address = C.dec(L.wsffi_listener_address(self._listener))
        self.port = L.wsffi_listener_port(self._listener)

    def set_certificates(self, tls_cert=None, tls_sni=None) -> None:
        """Replaces the TLS certificates without a restart: handshakes from now on get the
        new ones, open connections keep theirs. Same forms as the constructor's options."""
        if self._listener is None:
            raise C.InvalidStateError(L.STATUS_ERR_CLOSED, "the server is closed")
        C.replace_certificates(self._listener, tls_cert, tls_sni)

    @property
    def clients(self):
        """The open connections (a new set each time), or None without client tracking."""
        return set(self._clients) if self._tracking else None

    def broadcast(self, data) -> None:
        """Sends one message to every open client (encoded once)."""
        kind, payload = C.to_bytes(data)
        if self._server is None:
            raise C.InvalidStateError(L.STATUS_ERR_CLOSED, "the server is closed")
        C.check(L.wsffi_server_broadcast(self._server, kind, payload, len(payload), None))

    def publish(self, topic: str, data, except_=None) -> None:
        """Sends one message to every client subscribed to `topic` (``ws.subscribe(topic)``),
        except `except_` (typically the sender); the frame is encoded once."""
        C.publish(self._server, topic, data, except_)

    def subscriber_count(self, topic: str) -> int:
        return C.subscriber_count(self._server, topic)

    def stats(self) -> dict:
        """The server's counters: handshakes accepted and refused by reason, messages, bytes,
        close codes (struct wsffi_server_stats)."""
        return C.server_stats(self._server)

    def metrics(self) -> str:
        """The counters of this server's reactor and its servers in the Prometheus text format."""
        return self._loop.reactor.prometheus_text()

    def close(self) -> None:
        """Stops listening, sends 1001 to open clients; 'close' follows when they are gone."""
        if self._closed:
            return
        self._closed = True
        listener, self._listener = self._listener, None
        server, self._server = self._server, None
        L.wsffi_listener_close(listener)
        L.wsffi_server_close(server)
        if self._http_uid:
            C.unregister(self._http_uid)

    # events ---------------------------------------------------------------------------------

    def _ev_verify(self, handshake):
        if self.verify_client is None:
            return L.VERDICT_ACCEPT
        req = C.Request.from_view(L.wsffi_handshake_request(handshake))
        info = ClientInfo(req, self._secure)
        if self._verify_arity is not None and self._verify_arity >= 2:
            decided = threading.Lock()

            def done(result, status=401, reason=None):
                if not decided.acquire(blocking=False):
                    raise RuntimeError("verify_client: done() called twice")
                if result:
                    L.wsffi_handshake_accept(handshake)
                else:
                    L.wsffi_handshake_reject(handshake, status, reason.encode() if reason else None)

            try:
                self.verify_client(info, done)
            except BaseException:
                C.report_exception("verify_client", self)
                if decided.acquire(blocking=False):
                    L.wsffi_handshake_reject(handshake, 500, None)
            return L.VERDICT_DEFER
        try:
            result = self.verify_client(info)
        except Exception as exc:
            self._listener_failed("verify_client", exc)
            L.wsffi_handshake_set_reject(handshake, 500, None)
            return L.VERDICT_REJECT
        if isinstance(result, tuple):
            ok = bool(result[0])
            if not ok:
                status = result[1] if len(result) > 1 else 401
                reason = result[2] if len(result) > 2 else None
                L.wsffi_handshake_set_reject(handshake, status, reason.encode() if reason else None)
        else:
            ok = bool(result)
        return L.VERDICT_ACCEPT if ok else L.VERDICT_REJECT

    def _ev_protocols(self, request_ptr, offered):
        if self.handle_protocols is None:
            return 0 if offered else -1
        try:
            chosen = self.handle_protocols(list(offered), C.Request.from_view(request_ptr))
        except Exception as exc:
            self._listener_failed("handle_protocols", exc)
            return -1
        if not chosen:
            return -1
        try:
            return offered.index(chosen)
        except ValueError:
            self._listener_failed("handle_protocols", ValueError(f"{chosen!r} was not offered: {offered}"))
            return -1

    def _listener_failed(self, where, exc):
        exc.event = where
        if self.listener_count("error"):
            self.emit("error", exc)
        else:
            try:
                raise exc
            except Exception:
                C.report_exception(where, self)

    def _ev_connection(self, conn, request_ptr):
        request = C.Request.from_view(request_ptr)
        ws = _ServerSocket(self._loop, self, conn, request)
        if self._tracking:
            self._clients.add(ws)
        self.emit("connection", ws, request)

    def _ev_client_error(self, status, message):
        self.emit("client-error", C.error_for(status, message))

    def _ev_error(self, status, message):
        err = C.error_for(status, message)
        if not self.emit("error", err):
            log.warning("wsffi server: %s", err)

    def _ev_close(self):
        self.emit("close")

    def _ev_destroy(self):
        self._loop._remove()

    def __repr__(self):
        return f"<WebSocketServer {self.address}{self.path}>"
