"""Shared machinery: errors, reactors in dispatch mode, the object registry, the C callback
trampolines, option builders and request/response views. Not a public module."""

from __future__ import annotations

import atexit
import ctypes
import itertools
import sys
import threading
from ctypes import byref, c_char_p, c_size_t, c_void_p
from urllib.parse import parse_qsl

from . import _lib as L

# ---------------------------------------------------------------------------------------------
# Errors


class WebSocketError(Exception):
    """A wsffi call or connection failed. ``status`` is the library's status number
    (``wsffi_status``), ``message`` the sentence that came with it."""

    def __init__(self, status: int, message: str | None = None):
        self.status = status
        self.message = message or L.wsffi_status_str(status).decode()
        super().__init__(f"{self.message} (status {status})")


class InvalidStateError(WebSocketError):
    """The connection is not open: still connecting, or closing/closed."""


class BackpressureError(WebSocketError):
    """More than the high-water mark is buffered; nothing was sent. Wait for 'drain'."""


class DroppedError(WebSocketError):
    """A server with ``backpressure="drop"`` threw the message away (the client is above its
    high-water mark); it is counted, and is not to be sent again."""


class ReconnectingError(WebSocketError):
    """A send while the connection is lost and waits to reconnect: nothing was queued."""


class ShutDownError(WebSocketError):
    """The reactor is shutting down or gone."""


_STATUS_CLASSES = {
    L.STATUS_ERR_NOT_OPEN: InvalidStateError,
    L.STATUS_ERR_CLOSED: InvalidStateError,
    L.STATUS_ERR_BACKPRESSURE: BackpressureError,
    L.STATUS_ERR_SHUT_DOWN: ShutDownError,
    L.STATUS_ERR_RECONNECTING: ReconnectingError,
    L.STATUS_ERR_DROPPED: DroppedError,
}


def error_for(status: int, message: str | None = None) -> WebSocketError:
    return _STATUS_CLASSES.get(status, WebSocketError)(status, message)


def check(status: int, err=None) -> None:
    """Raises for a non-OK status; frees the error detail ``err`` (a c_void_p) if any."""
    message = None
    if err is not None and err.value:
        message = L.wsffi_error_message(err).decode("utf-8", "replace")
        L.wsffi_error_free(err)
        err.value = None
    if status != L.STATUS_OK:
        raise error_for(status, message)


class _UnraisableArgs:
    """What sys.unraisablehook receives (same attributes as sys.UnraisableHookArgs)."""

    def __init__(self, exc_type, exc_value, exc_traceback, err_msg, obj):
        self.exc_type, self.exc_value, self.exc_traceback = exc_type, exc_value, exc_traceback
        self.err_msg, self.object = err_msg, obj


def report_exception(where: str, obj=None) -> None:
    """Hands the exception being handled to sys.unraisablehook (never swallowed silently)."""
    exc_type, exc, tb = sys.exc_info()
    hook = getattr(sys, "unraisablehook", None)
    if hook is None:  # interpreter shutting down
        return
    msg = f"wsffi: exception in {where}"
    if hook is getattr(sys, "__unraisablehook__", None):
        # the default hook accepts only its own argument type: print as it would
        import traceback

        try:
            sys.stderr.write(f"{msg}: {obj!r}\n" if obj is not None else f"{msg}\n")
            traceback.print_exception(exc_type, exc, tb, file=sys.stderr)
        except Exception:
            pass
        return
    hook(_UnraisableArgs(exc_type, exc, tb, msg, obj))


def dec(b) -> str:
    return b.decode("utf-8", "replace") if b is not None else ""


def to_bytes(data, what="data") -> tuple[int, bytes]:
    """(kind, bytes) for a send: str is text, bytes-like is binary."""
    if isinstance(data, str):
        return L.TEXT, data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return L.BINARY, bytes(data)
    raise TypeError(f"{what} must be str or bytes-like, not {type(data).__name__}")


# ---------------------------------------------------------------------------------------------
# Registry: C callbacks carry an integer id as `user`; the id maps to the Python object, which
# stays here from creation until the library's `destroy(user)` (the end of the connection or
# server). The C callback objects themselves are module constants, alive for the process.

_objects: dict[int, object] = {}
_ids = itertools.count(1)
_objects_lock = threading.Lock()


def register(obj) -> int:
    with _objects_lock:
        uid = next(_ids)
        _objects[uid] = obj
    return uid


def lookup(uid):
    return _objects.get(uid) if uid else None


def unregister(uid):
    with _objects_lock:
        return _objects.pop(uid, None)


# ---------------------------------------------------------------------------------------------
# Reactors. Every reactor made here runs in dispatch mode: callbacks run on the Python thread
# that calls `dispatch` (an event thread, an asyncio loop), never on the reactor's own thread.

_reactors: set = set()
_reactors_lock = threading.Lock()


def stats_dict(s) -> dict:
    """A filled stats struct as a dict: its fields by their C names; close code tables as
    {"1000": n, ..., "other": n}; a round trip of -1 (none measured) as None."""
    out = {}
    for name, _ in s._fields_:
        if name == "size":
            continue
        v = getattr(s, name)
        if isinstance(v, L.CloseCounts):
            v = {f[0].removeprefix("code_"): getattr(v, f[0]) for f in v._fields_}
        elif name == "last_ping_rtt_us" and v < 0:
            v = None
        out[name] = v
    return out


def _stats(fn, handle, struct) -> dict:
    s = struct()
    s.size = ctypes.sizeof(s)
    check(fn(handle, byref(s)))
    return stats_dict(s)


def server_stats(server) -> dict:
    """Counters of a server handle (see struct wsffi_server_stats)."""
    if not server:
        raise InvalidStateError(L.STATUS_ERR_CLOSED)
    return _stats(L.wsffi_server_get_stats, server, L.ServerStats)


class Reactor:
    def stats(self) -> dict:
        """Counters of every connection and server of the reactor (struct wsffi_reactor_stats)."""
        return _stats(L.wsffi_reactor_get_stats, self.ptr, L.ReactorStats)

    def prometheus_text(self) -> str:
        """The reactor's and its servers' counters in the Prometheus text format."""
        cap = 8192
        while True:
            buf = ctypes.create_string_buffer(cap)
            n = c_size_t()
            status = L.wsffi_reactor_stats_prometheus(self.ptr, buf, cap, byref(n))
            if status == L.STATUS_OK:
                return buf.raw[: n.value].decode()
            if status != L.STATUS_ERR_TOO_BIG:
                check(status)
            cap = n.value + 1024  # the counters move between calls

    def __init__(self, shutdown_grace_ms: int = 2000):
        opts = L.wsffi_reactor_options_new()
        if not opts:
            raise MemoryError("wsffi_reactor_options_new failed")
        try:
            check(L.wsffi_reactor_options_set_dispatch(opts, True))
            check(L.wsffi_reactor_options_set_shutdown_grace_ms(opts, shutdown_grace_ms))
            ptr, err = c_void_p(), c_void_p()
            check(L.wsffi_reactor_new(opts, byref(ptr), byref(err)), err)
        finally:
            L.wsffi_reactor_options_free(opts)
        self._ptr = ptr
        self.fd = L.wsffi_reactor_fd(ptr)
        self._lock = threading.Lock()
        self._freeing = False
        self.before_free: list = []  # called (once) before the reactor is freed
        with _reactors_lock:
            _reactors.add(self)

    @property
    def ptr(self):
        p = self._ptr
        if p is None:
            raise ShutDownError(L.STATUS_ERR_SHUT_DOWN)
        return p

    @property
    def alive(self) -> bool:
        return self._ptr is not None

    def dispatch(self, max_events: int = 256) -> int:
        p = self._ptr
        if p is None:
            return 0
        ran = c_size_t(0)
        status = L.wsffi_reactor_dispatch(p, max_events, byref(ran))
        if status not in (L.STATUS_OK, L.STATUS_ERR_CALLED_FROM_CALLBACK):
            raise error_for(status)
        return ran.value

    def free(self) -> None:
        """Closes everything (1001 to open connections), runs the remaining callbacks on this
        thread, and frees the reactor. Idempotent."""
        with self._lock:
            if self._freeing or self._ptr is None:
                return
            self._freeing = True
            hooks, self.before_free = self.before_free, []
        for hook in hooks:  # outside the lock: a hook may wait for a thread that frees too
            try:
                hook()
            except Exception:
                report_exception("reactor shutdown hook")
        p, self._ptr = self._ptr, None
        self.fd = -1
        with _reactors_lock:
            _reactors.discard(self)
        L.wsffi_reactor_free(p)


def _free_all_reactors():
    with _reactors_lock:
        todo = list(_reactors)
    for r in todo:
        try:
            r.free()
        except Exception:
            report_exception("atexit reactor shutdown")
    # No library thread is left to log; stop before the interpreter goes away.
    L.wsffi_set_log_callback(L.LOG_OFF, L.LOG_CB(), None, L.DESTROY_CB())


atexit.register(_free_all_reactors)


# ---------------------------------------------------------------------------------------------
# Connection base: owns one reference to the C conn, released when the object goes away.


class CloseDetails:
    __slots__ = ("code", "reason", "was_clean", "origin", "peer_code", "peer_reason", "local_code", "local_reason")

    def __init__(self, info: L.CloseInfo | None = None, code: int = 1006):
        if info is None:
            self.code, self.reason, self.was_clean, self.origin = code, "", False, 0
            self.peer_code = self.local_code = 0
            self.peer_reason = self.local_reason = None
            return

        def s(ptr, n):
            return ctypes.string_at(ptr, n).decode("utf-8", "replace") if ptr else None

        self.code = info.code
        self.reason = s(info.reason, info.reason_len) or ""
        self.was_clean = bool(info.was_clean)
        self.origin = info.origin
        self.peer_code = info.peer_code
        self.peer_reason = s(info.peer_reason, info.peer_reason_len)
        self.local_code = info.local_code
        self.local_reason = s(info.local_reason, info.local_reason_len)

    def __repr__(self):
        return f"<CloseDetails code={self.code} reason={self.reason!r} clean={self.was_clean}>"


class BaseConnection:
    """State shared by every connection flavour: the owned C reference and the calls on it."""

    _handle = None

    def _adopt(self, handle, reactor: Reactor):
        self._handle = handle
        self._reactor = reactor
        self._close_details: CloseDetails | None = None

    def __del__(self):
        h, self._handle = self._handle, None
        if h:
            try:
                L.wsffi_conn_release(h)
            except Exception:  # interpreter shutdown: the library may be gone already
                pass

    # calls ----------------------------------------------------------------------------------

    def _h(self):
        if not self._handle:
            raise InvalidStateError(L.STATUS_ERR_CLOSED, "the connection is closed")
        return self._handle

    def _send(self, data) -> None:
        kind, payload = to_bytes(data)
        check(L.wsffi_send(self._h(), kind, payload, len(payload)))

    def _ping(self, data=b"") -> None:
        payload = data.encode() if isinstance(data, str) else bytes(data)
        check(L.wsffi_ping(self._h(), payload, len(payload)))

    def _pong(self, data=b"") -> None:
        payload = data.encode() if isinstance(data, str) else bytes(data)
        check(L.wsffi_pong(self._h(), payload, len(payload)))

    def _close(self, code: int = 1000, reason: str = "") -> None:
        r = reason.encode("utf-8")
        check(L.wsffi_close(self._h(), code, r, len(r)))

    def _terminate(self) -> None:
        check(L.wsffi_terminate(self._h()))

    @property
    def ready_state(self) -> int:
        return L.wsffi_ready_state(self._handle) if self._handle else L.CLOSED

    @property
    def buffered_amount(self) -> int:
        return L.wsffi_buffered_amount(self._handle) if self._handle else 0

    def stats(self) -> dict:
        """Messages and bytes each way, buffered bytes and the last ping round trip in
        microseconds (struct wsffi_conn_stats); final after the connection closed."""
        return _stats(L.wsffi_conn_get_stats, self._h(), L.ConnStats)

    @property
    def protocol(self) -> str:
        return dec(L.wsffi_protocol(self._handle)) if self._handle else ""

    @property
    def extensions(self) -> str:
        return dec(L.wsffi_extensions(self._handle)) if self._handle else ""

    @property
    def remote_address(self) -> str:
        return dec(L.wsffi_remote_address(self._handle)) if self._handle else ""

    @property
    def tls_alpn(self) -> str:
        """The ALPN protocol agreed in the TLS handshake, "" without TLS."""
        return dec(L.wsffi_tls_alpn(self._handle)) if self._handle else ""

    @property
    def tls_peer_subject(self) -> str:
        """The subject of the peer's certificate (RFC 4514), "" without one."""
        return dec(L.wsffi_tls_peer_subject(self._handle)) if self._handle else ""

    @property
    def handshake_response(self) -> "Response | None":
        """Client side: the server's 101 answer (status, headers) once open, else None."""
        ptr = L.wsffi_conn_handshake_response(self._handle) if self._handle else None
        return Response.from_view(ptr) if ptr else None

    # topics (server-side connections) ----------------------------------------------------

    def subscribe(self, topic: str) -> bool:
        """Subscribes this server-side connection to `topic` (its server's ``publish``
        reaches it until ``unsubscribe`` or close). True when new, False when it already was."""
        status = L.wsffi_conn_subscribe(self._h(), _topic(topic))
        if status == L.STATUS_ERR_ALREADY_DONE:
            return False
        check(status)
        return True

    def unsubscribe(self, topic: str) -> bool:
        """Ends a subscription; False when there was none."""
        status = L.wsffi_conn_unsubscribe(self._h(), _topic(topic))
        if status == L.STATUS_ERR_ALREADY_DONE:
            return False
        check(status)
        return True

    def is_subscribed(self, topic: str) -> bool:
        return bool(self._handle) and L.wsffi_conn_is_subscribed(self._handle, _topic(topic))

    def stop_reconnect(self) -> None:
        """With reconnect on: the current connection is the last (during a wait, it ends now)."""
        check(L.wsffi_conn_stop_reconnect(self._h()))

    def pause(self) -> None:
        check(L.wsffi_conn_pause(self._h()))

    def resume(self) -> None:
        check(L.wsffi_conn_resume(self._h()))

    # events: subclasses override ------------------------------------------------------------

    def _ev_open(self): ...
    def _ev_message(self, kind: int, data: bytes): ...
    def _ev_close(self, details: CloseDetails): ...
    def _ev_error(self, status: int, message: str): ...
    def _ev_ping(self, data: bytes): ...
    def _ev_pong(self, data: bytes): ...
    def _ev_drain(self): ...
    def _ev_unexpected_response(self, response: "Response"): ...
    def _ev_reconnect(self, attempt: int, delay: float, status: int, message: str, lost: "CloseDetails"): ...
    def _ev_message_part(self, kind: int, data: bytes, first: bool, last: bool): ...
    def _ev_destroy(self): ...


# ---------------------------------------------------------------------------------------------
# Trampolines (module constants, so ctypes keeps them alive for the life of the process).


def _deliver(uid, name, *args):
    obj = lookup(uid)
    if obj is None:
        return
    try:
        getattr(obj, name)(*args)
    except BaseException:
        report_exception(name, obj)


@L.OPEN_CB
def _t_open(user, conn):
    _deliver(user, "_ev_open")


@L.MESSAGE_CB
def _t_message(user, conn, kind, data, length):
    _deliver(user, "_ev_message", kind, ctypes.string_at(data, length) if length else b"")


@L.CLOSE_CB
def _t_close(user, conn, info):
    try:
        details = CloseDetails(info.contents)
    except BaseException:
        report_exception("close info")
        details = CloseDetails()
    _deliver(user, "_ev_close", details)


@L.ERROR_CB
def _t_error(user, conn, status, message):
    _deliver(user, "_ev_error", status, dec(message))


@L.CONTROL_CB
def _t_ping(user, conn, data, length):
    _deliver(user, "_ev_ping", ctypes.string_at(data, length) if length else b"")


@L.CONTROL_CB
def _t_pong(user, conn, data, length):
    _deliver(user, "_ev_pong", ctypes.string_at(data, length) if length else b"")


@L.DRAIN_CB
def _t_drain(user, conn):
    _deliver(user, "_ev_drain")


@L.UNEXPECTED_CB
def _t_unexpected(user, conn, response):
    try:
        resp = Response.from_view(response)
    except BaseException:
        report_exception("response view")
        return
    _deliver(user, "_ev_unexpected_response", resp)


@L.MESSAGE_PART_CB
def _t_message_part(user, conn, kind, data, length, first, last):
    _deliver(user, "_ev_message_part", kind, ctypes.string_at(data, length) if length else b"", bool(first), bool(last))


@L.RECONNECT_CB
def _t_reconnect(user, conn, attempt, delay_ms, status, message, info):
    try:
        lost = CloseDetails(info.contents)
    except BaseException:
        report_exception("close info")
        lost = CloseDetails()
    _deliver(user, "_ev_reconnect", attempt, delay_ms / 1000.0, status, dec(message), lost)


@L.DESTROY_CB
def _t_destroy(user):
    obj = unregister(user)
    if obj is not None:
        try:
            obj._ev_destroy()
        except BaseException:
            report_exception("_ev_destroy", obj)


CONN_CALLBACKS = L.ConnCallbacks()
L.wsffi_conn_callbacks_init(byref(CONN_CALLBACKS), ctypes.sizeof(CONN_CALLBACKS))
CONN_CALLBACKS.on_open = _t_open
CONN_CALLBACKS.on_message = _t_message
CONN_CALLBACKS.on_close = _t_close
CONN_CALLBACKS.on_error = _t_error
CONN_CALLBACKS.on_ping = _t_ping
CONN_CALLBACKS.on_pong = _t_pong
CONN_CALLBACKS.on_drain = _t_drain
CONN_CALLBACKS.on_unexpected_response = _t_unexpected
CONN_CALLBACKS.on_reconnect = _t_reconnect
CONN_CALLBACKS.on_message_part = _t_message_part
DESTROY = _t_destroy


class BaseServer:
    """Server events: subclasses override."""

    def _ev_verify(self, handshake) -> int:
        return L.VERDICT_ACCEPT

    def _ev_protocols(self, request_ptr, offered: list[str]) -> int:
        return 0 if offered else -1

    def _ev_connection(self, conn, request_ptr): ...
    def _ev_client_error(self, status: int, message: str): ...
    def _ev_error(self, status: int, message: str): ...
    def _ev_close(self): ...
    def _ev_destroy(self): ...


@L.VERIFY_CB
def _t_verify(user, handshake):
    obj = lookup(user)
    if obj is None:
        return L.VERDICT_REJECT
    try:
        return int(obj._ev_verify(handshake))
    except BaseException:
        report_exception("verify_client", obj)
        return L.VERDICT_REJECT


@L.PROTOCOLS_CB
def _t_protocols(user, request, offered, count):
    obj = lookup(user)
    if obj is None:
        return -1
    try:
        names = [dec(offered[i]) for i in range(count)]
        return int(obj._ev_protocols(request, names))
    except BaseException:
        report_exception("handle_protocols", obj)
        return -1


@L.CONNECTION_CB
def _t_connection(user, server, conn, request):
    _deliver(user, "_ev_connection", conn, request)


@L.SERVER_ERROR_CB
def _t_client_error(user, server, status, message):
    _deliver(user, "_ev_client_error", status, dec(message))


@L.SERVER_ERROR_CB
def _t_server_error(user, server, status, message):
    _deliver(user, "_ev_error", status, dec(message))


@L.SERVER_CLOSE_CB
def _t_server_close(user, server):
    _deliver(user, "_ev_close")


SERVER_CALLBACKS = L.ServerCallbacks()
L.wsffi_server_callbacks_init(byref(SERVER_CALLBACKS), ctypes.sizeof(SERVER_CALLBACKS))
SERVER_CALLBACKS.verify_client = _t_verify
SERVER_CALLBACKS.handle_protocols = _t_protocols
SERVER_CALLBACKS.on_connection = _t_connection
SERVER_CALLBACKS.on_client_error = _t_client_error
SERVER_CALLBACKS.on_error = _t_server_error
SERVER_CALLBACKS.on_close = _t_server_close


# ---------------------------------------------------------------------------------------------
# Plain HTTP requests on a listener (anything that is not an upgrade).


def _answer(response, result) -> None:
    """Writes a handler's result into the borrowed C response: str/bytes (200), or
    (status, body), or (status, headers, body) with headers a dict or (name, value) pairs."""
    status, headers, body = 200, (), b""
    if isinstance(result, (str, bytes, bytearray)):
        body = result
    elif isinstance(result, tuple) and len(result) == 2:
        status, body = result
    elif isinstance(result, tuple) and len(result) == 3:
        status, headers, body = result
    elif result is None:
        status = 204
    else:
        raise TypeError(f"an http_handler returns str, bytes or a (status, [headers,] body) tuple, not {type(result).__name__}")
    pairs = list(headers.items() if hasattr(headers, "items") else headers)
    if isinstance(body, str):
        body = body.encode("utf-8")
        if not any(n.lower() == "content-type" for n, _ in pairs):
            pairs.append(("Content-Type", "text/plain; charset=utf-8"))
    check(L.wsffi_http_response_set_status(response, int(status), None))
    for name, value in pairs:
        check(L.wsffi_http_response_add_header(response, str(name).encode(), str(value).encode()))
    body = bytes(body or b"")
    check(L.wsffi_http_response_set_body(response, body, len(body)))


@L.HTTP_HANDLER_CB
def _t_http(user, request, response):
    handler = lookup(user)
    if handler is None:  # the listener closed while this request waited
        L.wsffi_http_response_set_status(response, 503, None)
        return
    try:
        _answer(response, handler(Request.from_view(request)))
    except BaseException:
        report_exception("http_handler", handler)
        L.wsffi_http_response_set_status(response, 500, None)
        L.wsffi_http_response_set_body(response, None, 0)


def set_http_handler(listener, handler) -> int:
    """Serves plain HTTP requests on `listener` with `handler(request)`; returns the id to
    give to `unregister` once the listener is closed."""
    uid = register(handler)
    status = L.wsffi_listener_set_http_handler(listener, _t_http, uid)
    if status != L.STATUS_OK:
        unregister(uid)
        check(status)
    return uid


# ---------------------------------------------------------------------------------------------
# Reactor timers: callbacks run where the reactor's other callbacks run (the dispatching thread).


class Timer:
    """A pending `call_later` / `call_every`; `cancel()` stops it (idempotent)."""

    def __init__(self, reactor: Reactor, fn, args, on_done):
        self._reactor = reactor
        self._fn, self._args = fn, args
        self._on_done = on_done
        self.id = 0
        self.cancelled = False

    def cancel(self) -> bool:
        """True when this call stopped the timer, False when it had already run its last time
        or was cancelled before."""
        if self.cancelled or not self.id or not self._reactor.alive:
            return False
        self.cancelled = True
        return L.wsffi_reactor_cancel_timer(self._reactor.ptr, self.id) == L.STATUS_OK

    def _ev_fire(self):
        self._fn(*self._args)

    def _ev_destroy(self):
        if self._on_done is not None:
            self._on_done()

    def __repr__(self):
        return f"<Timer {self.id} {self._fn!r}{' cancelled' if self.cancelled else ''}>"


@L.TIMER_CB
def _t_timer(timer, user):
    _deliver(user, "_ev_fire")


def add_timer(reactor: Reactor, delay, repeat, fn, args, on_done=None) -> Timer:
    """Runs fn(*args) after `delay` seconds and then every `repeat` seconds (None: once)."""
    if not callable(fn):
        raise TypeError("the timer's callback must be callable")
    t = Timer(reactor, fn, args, on_done)
    delay_ms = _ms(delay)
    repeat_ms = 0 if repeat is None else _ms(repeat)
    if repeat is not None and repeat_ms == 0:
        raise ValueError("a repeating timer needs an interval of at least 1 ms")
    uid = register(t)
    out = ctypes.c_uint64(0)
    status = L.wsffi_reactor_add_timer(reactor.ptr, delay_ms, repeat_ms, _t_timer, uid, DESTROY, byref(out))
    if status != L.STATUS_OK:
        unregister(uid)
        check(status)
    t.id = out.value
    return t


def connect(reactor: Reactor, conn_obj: BaseConnection, url: str, options) -> None:
    """wsffi_connect with the shared callback table; registers `conn_obj` until destroy."""
    uid = register(conn_obj)
    out, err = c_void_p(), c_void_p()
    status = L.wsffi_connect(reactor.ptr, url.encode(), options, byref(CONN_CALLBACKS), uid, DESTROY, byref(out), byref(err))
    # destroy(user) already ran on failure
    check(status, err)
    conn_obj._adopt(out.value, reactor)


def adopt_server_conn(reactor: Reactor, conn_obj: BaseConnection, conn) -> None:
    """From on_connection: keep a reference and install the shared callback table."""
    conn_obj._adopt(L.wsffi_conn_retain(conn), reactor)
    uid = register(conn_obj)
    check(L.wsffi_conn_set_callbacks(conn, byref(CONN_CALLBACKS), uid, DESTROY))


# ---------------------------------------------------------------------------------------------
# Options


def _ms(seconds) -> int:
    ms = int(round(float(seconds) * 1000))
    if ms < 0:
        raise ValueError("timeouts must not be negative")
    return ms


def _deflate_params(spec) -> L.DeflateParams:
    p = L.DeflateParams()
    check(L.wsffi_deflate_params_init(byref(p), ctypes.sizeof(p)))
    for key, value in dict(spec).items():
        if not hasattr(L.DeflateParams, key) or key == "size":
            raise TypeError(f"unknown per_message_deflate parameter {key!r}")
        setattr(p, key, value)
    return p


# `reconnect=True` uses these; a dict overrides some (seconds; max_attempts 0 = no limit).
RECONNECT_DEFAULTS = {"initial_delay": 1.0, "factor": 2.0, "max_delay": 30.0, "max_attempts": 0}


class ClientOptions:
    """Owns a wsffi_client_options built from keyword arguments."""

    KEYS = {
        "protocols", "headers", "origin", "per_message_deflate", "max_payload", "max_fragments",
        "connect_timeout", "handshake_timeout", "close_timeout", "ping_interval", "idle_timeout",
        "water_marks", "max_header_bytes", "ca_file", "ca_dir", "client_cert", "server_name",
        "insecure", "alpn", "proxy", "proxy_from_env", "follow_redirects", "max_redirects", "reconnect",
        "stream_messages",
    }  # fmt: skip

    def __init__(self, protocols=None, **kw):
        unknown = set(kw) - self.KEYS
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        self.ptr = L.wsffi_client_options_new()
        if not self.ptr:
            raise MemoryError("wsffi_client_options_new failed")
        try:
            self._fill(protocols, kw)
        except BaseException:
            self.free()
            raise

    def _fill(self, protocols, kw):
        p = self.ptr
        if isinstance(protocols, str):
            protocols = [protocols]
        for proto in protocols or ():
            check(L.wsffi_client_options_add_protocol(p, proto.encode()))
        headers = kw.get("headers") or {}
        for name, value in headers.items() if hasattr(headers, "items") else headers:
            check(L.wsffi_client_options_add_header(p, name.encode(), str(value).encode()))
        if kw.get("origin") is not None:
            check(L.wsffi_client_options_set_origin(p, kw["origin"].encode()))
        pmd = kw.get("per_message_deflate", True)
        if isinstance(pmd, dict):
            params = _deflate_params(pmd)
            check(L.wsffi_client_options_set_deflate_params(p, byref(params)))
        else:
            check(L.wsffi_client_options_set_per_message_deflate(p, bool(pmd)))
        for key, fn in (("max_payload", L.wsffi_client_options_set_max_payload),
                        ("max_fragments", L.wsffi_client_options_set_max_fragments),
                        ("max_header_bytes", L.wsffi_client_options_set_max_header_bytes)):  # fmt: skip
            if kw.get(key) is not None:
                check(fn(p, int(kw[key])))
        for key, fn in (("connect_timeout", L.wsffi_client_options_set_connect_timeout_ms),
                        ("handshake_timeout", L.wsffi_client_options_set_handshake_timeout_ms),
                        ("close_timeout", L.wsffi_client_options_set_close_timeout_ms),
                        ("ping_interval", L.wsffi_client_options_set_ping_interval_ms),
                        ("idle_timeout", L.wsffi_client_options_set_idle_timeout_ms)):  # fmt: skip
            if kw.get(key) is not None:
                check(fn(p, _ms(kw[key])))
        if kw.get("water_marks") is not None:
            high, low = kw["water_marks"]
            check(L.wsffi_client_options_set_water_marks(p, high, low))
        err = c_void_p()
        if kw.get("ca_file"):
            check(L.wsffi_client_options_set_tls_ca_file(p, str(kw["ca_file"]).encode(), byref(err)), err)
        if kw.get("ca_dir"):
            check(L.wsffi_client_options_set_tls_ca_dir(p, str(kw["ca_dir"]).encode(), byref(err)), err)
        if kw.get("client_cert"):
            cert, key = kw["client_cert"]
            check(L.wsffi_client_options_set_tls_client_cert(p, str(cert).encode(), str(key).encode(), byref(err)), err)
        if kw.get("server_name"):
            check(L.wsffi_client_options_set_tls_server_name(p, kw["server_name"].encode()))
        if kw.get("insecure"):
            check(L.wsffi_client_options_set_tls_insecure(p, True))
        if kw.get("alpn") is not None:
            names = _string_array(kw["alpn"], "alpn")
            check(L.wsffi_client_options_set_tls_alpn(p, names, len(names), byref(err)), err)
        proxy = kw.get("proxy")
        if proxy is True:  # as websockets: True reads https_proxy / http_proxy / all_proxy
            check(L.wsffi_client_options_set_proxy_from_env(p, True))
        elif proxy:
            check(L.wsffi_client_options_set_proxy(p, str(proxy).encode()))
        if kw.get("proxy_from_env"):
            check(L.wsffi_client_options_set_proxy_from_env(p, True))
        if kw.get("stream_messages"):
            check(L.wsffi_client_options_set_stream_messages(p, True))
        if kw.get("reconnect"):
            spec = dict(RECONNECT_DEFAULTS, **({} if kw["reconnect"] is True else dict(kw["reconnect"])))
            unknown = set(spec) - set(RECONNECT_DEFAULTS)
            if unknown:
                raise TypeError(f"unknown reconnect setting(s): {', '.join(sorted(unknown))}")
            check(L.wsffi_client_options_set_reconnect(p, max(1, _ms(spec["initial_delay"])), float(spec["factor"]),
                                                       _ms(spec["max_delay"]), int(spec["max_attempts"] or 0)))  # fmt: skip
        if kw.get("follow_redirects") is not None:
            check(L.wsffi_client_options_set_follow_redirects(p, bool(kw["follow_redirects"])))
        if kw.get("max_redirects") is not None:
            check(L.wsffi_client_options_set_max_redirects(p, int(kw["max_redirects"])))

    def free(self):
        p, self.ptr = self.ptr, None
        if p:
            L.wsffi_client_options_free(p)


# What a server does with a client whose output is above its high-water mark.
BACKPRESSURE_POLICIES = {"refuse": 0, "drop": 1, "close-1008": 2, "close-1013": 3}


class ServerOptions:
    """Owns a wsffi_server_options plus the wsffi_listener_options for its listener."""

    KEYS = {
        "per_message_deflate", "max_payload", "max_fragments", "max_connections", "allowed_origins",
        "client_tracking", "ping_interval", "idle_timeout", "close_timeout", "water_marks",
        "handshake_timeout", "backlog", "max_header_bytes", "reuse_port", "tls_cert", "tls_client_ca",
        "tls_sni", "alpn", "max_subscriptions", "stream_messages", "backpressure", "backpressure_grace",
    }  # fmt: skip

    def __init__(self, **kw):
        unknown = set(kw) - self.KEYS
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(sorted(unknown))}")
        self.ptr = L.wsffi_server_options_new()
        self.listener_ptr = L.wsffi_listener_options_new()
        if not self.ptr or not self.listener_ptr:
            self.free()
            raise MemoryError("wsffi_*_options_new failed")
        try:
            self._fill(kw)
        except BaseException:
            self.free()
            raise

    def _fill(self, kw):
        p, lp = self.ptr, self.listener_ptr
        pmd = kw.get("per_message_deflate", False)
        if isinstance(pmd, dict):
            params = _deflate_params(pmd)
            check(L.wsffi_server_options_set_deflate_params(p, byref(params)))
        else:
            check(L.wsffi_server_options_set_per_message_deflate(p, bool(pmd)))
        for key, fn in (("max_payload", L.wsffi_server_options_set_max_payload),
                        ("max_fragments", L.wsffi_server_options_set_max_fragments),
                        ("max_connections", L.wsffi_server_options_set_max_connections),
                        ("max_subscriptions", L.wsffi_server_options_set_max_subscriptions)):  # fmt: skip
            if kw.get(key) is not None:
                check(fn(p, int(kw[key])))
        for key, fn in (("ping_interval", L.wsffi_server_options_set_ping_interval_ms),
                        ("idle_timeout", L.wsffi_server_options_set_idle_timeout_ms),
                        ("close_timeout", L.wsffi_server_options_set_close_timeout_ms)):  # fmt: skip
            if kw.get(key) is not None:
                check(fn(p, _ms(kw[key])))
        for origin in kw.get("allowed_origins") or ():
            check(L.wsffi_server_options_add_allowed_origin(p, origin.encode()))
        if kw.get("stream_messages"):
            check(L.wsffi_server_options_set_stream_messages(p, True))
        if kw.get("backpressure") is not None or kw.get("backpressure_grace") is not None:
            name = kw.get("backpressure") or "refuse"
            if name not in BACKPRESSURE_POLICIES:
                raise ValueError(f"backpressure must be one of {', '.join(BACKPRESSURE_POLICIES)}, not {name!r}")
            grace = _ms(kw.get("backpressure_grace") or 0)
            check(L.wsffi_server_options_set_backpressure_policy(p, BACKPRESSURE_POLICIES[name], grace))
        if kw.get("client_tracking") is not None:
            check(L.wsffi_server_options_set_client_tracking(p, bool(kw["client_tracking"])))
        if kw.get("water_marks") is not None:
            high, low = kw["water_marks"]
            check(L.wsffi_server_options_set_water_marks(p, high, low))
        if kw.get("handshake_timeout") is not None:
            check(L.wsffi_listener_options_set_handshake_timeout_ms(lp, _ms(kw["handshake_timeout"])))
        if kw.get("backlog") is not None:
            check(L.wsffi_listener_options_set_backlog(lp, int(kw["backlog"])))
        if kw.get("max_header_bytes") is not None:
            check(L.wsffi_listener_options_set_max_header_bytes(lp, int(kw["max_header_bytes"])))
        if kw.get("reuse_port"):
            check(L.wsffi_listener_options_set_reuse_port(lp, True))
        set_certificates(lp, kw.get("tls_cert"), kw.get("tls_sni"))
        err = c_void_p()
        if kw.get("alpn") is not None:
            names = _string_array(kw["alpn"], "alpn")
            check(L.wsffi_listener_options_set_tls_alpn(lp, names, len(names), byref(err)), err)
        if kw.get("tls_client_ca"):
            spec = kw["tls_client_ca"]
            path, required = (spec, True) if isinstance(spec, (str, bytes)) or hasattr(spec, "__fspath__") else spec
            check(L.wsffi_listener_options_set_tls_client_ca_file(lp, str(path).encode(), bool(required), byref(err)), err)

    def free(self):
        p, self.ptr = self.ptr, None
        lp, self.listener_ptr = self.listener_ptr, None
        if p:
            L.wsffi_server_options_free(p)
        if lp:
            L.wsffi_listener_options_free(lp)


def _topic(name) -> bytes:
    if not isinstance(name, str):
        raise TypeError(f"a topic is a str, not {type(name).__name__}")
    return name.encode("utf-8")


def publish(server, topic, data, except_=None) -> None:
    """`wsffi_server_publish` of str (text) or bytes (binary) to `topic`, not to `except_`."""
    if server is None:
        raise InvalidStateError(L.STATUS_ERR_CLOSED, "the server is closed")
    kind, payload = to_bytes(data)
    skip = except_._handle if except_ is not None else None
    check(L.wsffi_server_publish(server, _topic(topic), kind, payload, len(payload), skip))


def subscriber_count(server, topic) -> int:
    return L.wsffi_server_subscriber_count(server, _topic(topic)) if server is not None else 0


def _string_array(names, what):
    if isinstance(names, (str, bytes)):
        names = [names]
    encoded = [n.encode() if isinstance(n, str) else bytes(n) for n in names]
    return (c_char_p * max(1, len(encoded)))(*encoded)


def _material(chain, key):
    """The setter's arguments for one certificate: PEM text given as bytes is passed as is
    (pem=True); anything else (str, Path) names files."""
    if isinstance(chain, (bytes, bytearray)):
        return True, (bytes(chain), len(chain), bytes(key), len(key))
    return False, (str(chain).encode(), str(key).encode())


def set_certificates(lp, cert, sni) -> None:
    """Puts a default certificate `cert` ((chain, key) as file paths or PEM bytes) and the
    certificates per server name `sni` ({name: (chain, key)}) on listener options `lp`."""
    err = c_void_p()
    if cert:
        pem, args = _material(*cert)
        setter = L.wsffi_listener_options_set_tls_cert_pem if pem else L.wsffi_listener_options_set_tls_cert_files
        check(setter(lp, *args, byref(err)), err)
    for name, (chain, key) in dict(sni or {}).items():
        pem, args = _material(chain, key)
        setter = L.wsffi_listener_options_add_tls_sni_cert_pem if pem else L.wsffi_listener_options_add_tls_sni_cert_files
        check(setter(lp, name.encode(), *args, byref(err)), err)


def replace_certificates(listener, cert, sni) -> None:
    """Swaps the certificates of a running TLS listener (new handshakes only)."""
    lp = L.wsffi_listener_options_new()
    if not lp:
        raise MemoryError("wsffi_listener_options_new failed")
    try:
        set_certificates(lp, cert, sni)
        err = c_void_p()
        check(L.wsffi_listener_set_tls_certificates(listener, lp, byref(err)), err)
    finally:
        L.wsffi_listener_options_free(lp)


def format_address(host: str, port: int) -> str:
    if host.startswith("unix:"):
        return host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{int(port)}"


def listen_and_attach(reactor: Reactor, server_obj: BaseServer, address: str, path: str, opts: ServerOptions):
    """Listens on `address` and attaches a server at `path`; returns (listener, server) handles."""
    listener, err = c_void_p(), c_void_p()
    check(L.wsffi_listen(reactor.ptr, address.encode(), opts.listener_ptr, byref(listener), byref(err)), err)
    uid = register(server_obj)
    server = c_void_p()
    status = L.wsffi_server_attach(reactor.ptr, listener, path.encode(), opts.ptr, byref(SERVER_CALLBACKS), uid, DESTROY, byref(server), byref(err))
    if status != L.STATUS_OK:
        L.wsffi_listener_close(listener)
        check(status, err)
    return listener.value, server.value


# ---------------------------------------------------------------------------------------------
# Views


class Headers(dict):
    """A dict of lower-case header names to values, looked up case-insensitively."""

    def __getitem__(self, key):
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key):
        return isinstance(key, str) and dict.__contains__(self, key.lower())

    def get(self, key, default=None):
        return dict.get(self, key.lower(), default)


class Request:
    """An HTTP upgrade request as received (copied out of the library's view, so it can be kept).

    Fields: ``method``, ``url`` (target as sent, "/chat?room=1"; also ``request_uri``),
    ``path`` ("/chat"), ``query_string`` ("room=1"), ``http_version`` ("1.1"), ``host``,
    ``remote_address`` ("127.0.0.1:53122"), ``tls_subject`` ("" without a client certificate),
    ``tls_server_name`` (the SNI name the client asked for, "" without), ``tls_alpn`` (the
    agreed ALPN protocol, "" without TLS),
    ``headers`` (lower-case name -> value, repeated headers joined with ", "), ``raw_headers``
    ([(name, value)] in received order and spelling), ``origin``.
    Methods: ``get_header(name)``, ``has_header(name)``, ``query(name)``."""

    def __init__(self, method="GET", url="/", path="/", query_string="", http_version="1.1",
                 remote_address="", host=None, tls_subject="", raw_headers=(), tls_server_name="",
                 tls_alpn=""):  # fmt: skip
        self.method = method
        self.url = url
        self.path = path
        self.query_string = query_string
        self.http_version = http_version
        self.remote_address = remote_address
        self.host = host
        self.tls_subject = tls_subject
        self.tls_server_name = tls_server_name
        self.tls_alpn = tls_alpn
        self.raw_headers = list(raw_headers)
        headers = Headers()
        for name, value in self.raw_headers:
            key = name.lower()
            dict.__setitem__(headers, key, f"{headers[key]}, {value}" if key in headers else value)
        self.headers = headers
        self._query = None

    @classmethod
    def from_view(cls, ptr) -> "Request":
        raw = []
        for i in range(L.wsffi_request_header_count(ptr)):
            name, value = c_char_p(), c_char_p()
            if L.wsffi_request_header_at(ptr, i, byref(name), byref(value)) == L.STATUS_OK:
                raw.append((dec(name.value), dec(value.value)))
        host = L.wsffi_request_host(ptr)
        return cls(
            method=dec(L.wsffi_request_method(ptr)),
            url=dec(L.wsffi_request_url(ptr)),
            path=dec(L.wsffi_request_path(ptr)),
            query_string=dec(L.wsffi_request_query_string(ptr)),
            http_version=dec(L.wsffi_request_http_version(ptr)),
            remote_address=dec(L.wsffi_request_remote_address(ptr)),
            host=dec(host) if host is not None else None,
            tls_subject=dec(L.wsffi_request_tls_subject(ptr)),
            tls_server_name=dec(L.wsffi_request_tls_server_name(ptr)),
            tls_alpn=dec(L.wsffi_request_tls_alpn(ptr)),
            raw_headers=raw,
        )

    @property
    def request_uri(self) -> str:
        return self.url

    @property
    def origin(self):
        return self.get_header("origin")

    @property
    def complete(self) -> bool:
        return True

    def get_header(self, name: str, default=None):
        """First value of header `name` (case-insensitive), `default` when absent."""
        key = name.lower()
        for n, v in self.raw_headers:
            if n.lower() == key:
                return v
        return default

    def has_header(self, name: str) -> bool:
        key = name.lower()
        return any(n.lower() == key for n, _ in self.raw_headers)

    def query(self, name: str, default=None):
        """Decoded value of query parameter `name` (first occurrence, '+' is a space); "" for a
        name without '=', `default` when absent."""
        if self._query is None:
            self._query = parse_qsl(self.query_string, keep_blank_values=True)
        for k, v in self._query:
            if k == name:
                return v
        return default

    def __repr__(self):
        return f"<Request {self.method} {self.url} from {self.remote_address}>"


class Response:
    """A non-101 answer to a client's upgrade: ``status``, ``reason``, ``headers`` (lower-case
    dict), ``raw_headers``, ``body`` (bytes)."""

    def __init__(self, status, reason, raw_headers, body):
        self.status = status
        self.reason = reason
        self.raw_headers = raw_headers
        self.headers = Headers((n.lower(), v) for n, v in reversed(raw_headers))
        self.body = body

    @classmethod
    def from_view(cls, ptr) -> "Response":
        raw = []
        for i in range(L.wsffi_response_header_count(ptr)):
            name, value = c_char_p(), c_char_p()
            if L.wsffi_response_header_at(ptr, i, byref(name), byref(value)) == L.STATUS_OK:
                raw.append((dec(name.value), dec(value.value)))
        n = c_size_t(0)
        body_ptr = L.wsffi_response_body(ptr, byref(n))
        body = ctypes.string_at(body_ptr, n.value) if body_ptr and n.value else b""
        return cls(L.wsffi_response_status(ptr), dec(L.wsffi_response_reason(ptr)), raw, body)

    def __repr__(self):
        return f"<Response {self.status} {self.reason}>"
