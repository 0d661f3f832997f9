"""Loads libwsffi with ctypes and declares the C API (include/wsffi.h).

Library lookup order (the first that applies wins):

1. ``WSFFI_LIBRARY=/path/to/libwsffi.so`` in the environment: exactly that file (an error if it
   does not load).
2. ``WSFFI_USE_SYSTEM=1`` in the environment: the system's library, found by the dynamic loader
   (``LD_LIBRARY_PATH``, the ldconfig cache, ...) by its SONAME ``libwsffi.so.0.1``.
3. The choice recorded at install time (``wsffi/_build_config.py``): the path given as
   ``WSFFI_LIBRARY`` to ``pip install``, or the system's library if ``WSFFI_USE_SYSTEM=1`` was set.
4. The copy bundled in this package (``wsffi/libwsffi.so``, copied there at install time).
5. The system's library, as in 2.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_int32,
    c_size_t,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

__all__ = ["lib", "library_path"]

# Major.minor this binding was written against (no ABI stability before 1.0).
ABI_VERSION = (0, 1)


def _candidates():
    explicit = os.environ.get("WSFFI_LIBRARY")
    if explicit:
        return [("WSFFI_LIBRARY", explicit)]
    # The SONAME: what the runtime package installs and the loader looks up (the bare
    # libwsffi.so link comes only with the development files).
    system = "libwsffi.so.%d.%d" % ABI_VERSION
    if os.environ.get("WSFFI_USE_SYSTEM", "") not in ("", "0"):
        return [("WSFFI_USE_SYSTEM", system)]
    try:
        from . import _build_config as cfg
    except ImportError:
        cfg = None
    if cfg is not None and getattr(cfg, "LIBRARY", None):
        return [("WSFFI_LIBRARY at install time", cfg.LIBRARY)]
    if cfg is not None and getattr(cfg, "USE_SYSTEM", False):
        return [("WSFFI_USE_SYSTEM at install time", system)]
    bundled = Path(__file__).with_name("libwsffi.so")
    out = []
    if bundled.exists():
        out.append(("bundled", str(bundled)))
    out.append(("system", system))
    return out


def _load():
    errors = []
    for how, path in _candidates():
        try:
            return ctypes.CDLL(path), path
        except OSError as exc:
            errors.append(f"{how} ({path}): {exc}")
    raise ImportError("wsffi: cannot load libwsffi: " + "; ".join(errors))


lib, library_path = _load()

# ---------------------------------------------------------------------------------------------
# Constants

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3
TEXT, BINARY = 1, 2
VERDICT_ACCEPT, VERDICT_REJECT, VERDICT_DEFER = 0, 1, 2

STATUS_OK = 0
STATUS_ERR_NULL_PARAMETER = 100
STATUS_ERR_INVALID_PARAMETER = 101
STATUS_ERR_INVALID_UTF8 = 102
STATUS_ERR_INVALID_URL = 103
STATUS_ERR_TOO_BIG = 104
STATUS_ERR_UNSUPPORTED = 105
STATUS_ERR_NOT_OPEN = 200
STATUS_ERR_CLOSED = 201
STATUS_ERR_BACKPRESSURE = 202
STATUS_ERR_CALLED_FROM_CALLBACK = 203
STATUS_ERR_SHUT_DOWN = 204
STATUS_ERR_ALREADY_DONE = 205
STATUS_ERR_QUEUE_FULL = 206
STATUS_ERR_RECONNECTING = 207
STATUS_ERR_DROPPED = 208
STATUS_ERR_MESSAGE_TOO_BIG = 303
STATUS_ERR_TIMEOUT = 403

LOG_OFF, LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2, 3, 4

# ---------------------------------------------------------------------------------------------
# Types

conn_p = c_void_p
status_t = c_uint32


class CloseInfo(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("code", c_uint16),
        ("reason", c_void_p),
        ("reason_len", c_size_t),
        ("was_clean", c_bool),
        ("origin", c_uint32),
        ("peer_code", c_uint16),
        ("peer_reason", c_void_p),
        ("peer_reason_len", c_size_t),
        ("local_code", c_uint16),
        ("local_reason", c_void_p),
        ("local_reason_len", c_size_t),
    ]


OPEN_CB = CFUNCTYPE(None, c_void_p, conn_p)
MESSAGE_CB = CFUNCTYPE(None, c_void_p, conn_p, c_uint32, c_void_p, c_size_t)
CLOSE_CB = CFUNCTYPE(None, c_void_p, conn_p, POINTER(CloseInfo))
ERROR_CB = CFUNCTYPE(None, c_void_p, conn_p, status_t, c_char_p)
CONTROL_CB = CFUNCTYPE(None, c_void_p, conn_p, c_void_p, c_size_t)
DRAIN_CB = CFUNCTYPE(None, c_void_p, conn_p)
UNEXPECTED_CB = CFUNCTYPE(None, c_void_p, conn_p, c_void_p)
DESTROY_CB = CFUNCTYPE(None, c_void_p)
WAKE_CB = CFUNCTYPE(None, c_void_p)
VERIFY_CB = CFUNCTYPE(c_uint32, c_void_p, c_void_p)
PROTOCOLS_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, POINTER(c_char_p), c_size_t)
HEADERS_CB = CFUNCTYPE(None, c_void_p, c_void_p)
CONNECTION_CB = CFUNCTYPE(None, c_void_p, c_void_p, conn_p, c_void_p)
SERVER_ERROR_CB = CFUNCTYPE(None, c_void_p, c_void_p, status_t, c_char_p)
SERVER_CLOSE_CB = CFUNCTYPE(None, c_void_p, c_void_p)
CLIENT_VISIT_CB = CFUNCTYPE(None, c_void_p, conn_p)
MESSAGE_PART_CB = CFUNCTYPE(None, c_void_p, conn_p, c_uint32, c_void_p, c_size_t, c_bool, c_bool)
RECONNECT_CB = CFUNCTYPE(None, c_void_p, conn_p, c_uint32, c_uint32, status_t, c_char_p, POINTER(CloseInfo))
LOG_CB = CFUNCTYPE(None, c_uint32, c_char_p, c_void_p)
TIMER_CB = CFUNCTYPE(None, c_uint64, c_void_p)
HTTP_HANDLER_CB = CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)


class ConnCallbacks(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("on_open", OPEN_CB),
        ("on_message", MESSAGE_CB),
        ("on_close", CLOSE_CB),
        ("on_error", ERROR_CB),
        ("on_ping", CONTROL_CB),
        ("on_pong", CONTROL_CB),
        ("on_drain", DRAIN_CB),
        ("on_unexpected_response", UNEXPECTED_CB),
        ("on_message_part", MESSAGE_PART_CB),
        ("on_reconnect", RECONNECT_CB),
    ]


class ServerCallbacks(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("verify_client", VERIFY_CB),
        ("handle_protocols", PROTOCOLS_CB),
        ("headers", HEADERS_CB),
        ("on_connection", CONNECTION_CB),
        ("on_client_error", SERVER_ERROR_CB),
        ("on_error", SERVER_ERROR_CB),
        ("on_close", SERVER_CLOSE_CB),
    ]


class DeflateParams(Structure):
    _fields_ = [
        ("size", c_size_t),
        ("server_no_context_takeover", c_bool),
        ("client_no_context_takeover", c_bool),
        ("server_max_window_bits", c_uint8),
        ("client_max_window_bits", c_uint8),
        ("threshold", c_size_t),
        ("level", c_uint32),
        ("mem_level", c_uint8),
    ]


class CloseCounts(Structure):
    _fields_ = [(f"code_{c}", ctypes.c_uint64) for c in (1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011)] + [
        ("other", ctypes.c_uint64)
    ]


class ConnStats(Structure):
    _fields_ = [("size", c_size_t)] + [
        (n, ctypes.c_uint64) for n in ("messages_in", "messages_out", "bytes_in", "bytes_out", "buffered_bytes")
    ] + [("last_ping_rtt_us", ctypes.c_int64), ("messages_dropped", ctypes.c_uint64)]


_REFUSED = ("bad_request", "origin", "max_connections", "verify_client", "timeout", "server_closing")
_TRAFFIC = ("messages_in", "messages_out", "bytes_in", "bytes_out")


class ServerStats(Structure):
    _fields_ = (
        [("size", c_size_t), ("connections_open", ctypes.c_uint64), ("handshakes_accepted", ctypes.c_uint64)]
        + [("refused_" + r, ctypes.c_uint64) for r in _REFUSED]
        + [(n, ctypes.c_uint64) for n in _TRAFFIC]
        + [("closes_sent", CloseCounts), ("closes_received", CloseCounts)]
        + [("messages_dropped", ctypes.c_uint64)]
    )


class ReactorStats(Structure):
    _fields_ = (
        [(n, ctypes.c_uint64) for n in ("connections_open", "connections_opened", "handshakes_accepted")]
        + [("refused_" + r, ctypes.c_uint64) for r in ("bad_request", "not_found") + _REFUSED[1:]]
        + [(n, ctypes.c_uint64) for n in ("http_requests", "tls_failures_server", "tls_failures_client")]
        + [(n, ctypes.c_uint64) for n in _TRAFFIC]
        + [("closes_sent", CloseCounts), ("closes_received", CloseCounts)]
    )
    _fields_.insert(0, ("size", c_size_t))


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


P = c_void_p
PP = POINTER(c_void_p)
S = status_t

# Version and errors
wsffi_version = _fn("wsffi_version", c_char_p)
wsffi_version_number = _fn("wsffi_version_number", c_uint32)
wsffi_status_str = _fn("wsffi_status_str", c_char_p, c_uint32)
wsffi_error_status = _fn("wsffi_error_status", S, P)
wsffi_error_message = _fn("wsffi_error_message", c_char_p, P)
wsffi_error_free = _fn("wsffi_error_free", None, P)
wsffi_set_log_callback = _fn("wsffi_set_log_callback", S, c_uint32, LOG_CB, P, DESTROY_CB)

# Reactor
wsffi_reactor_options_new = _fn("wsffi_reactor_options_new", P)
wsffi_reactor_options_free = _fn("wsffi_reactor_options_free", None, P)
wsffi_reactor_options_set_dispatch = _fn("wsffi_reactor_options_set_dispatch", S, P, c_bool)
wsffi_reactor_options_set_shutdown_grace_ms = _fn("wsffi_reactor_options_set_shutdown_grace_ms", S, P, c_uint32)
wsffi_reactor_new = _fn("wsffi_reactor_new", S, P, PP, PP)
wsffi_reactor_free = _fn("wsffi_reactor_free", S, P)
wsffi_reactor_fd = _fn("wsffi_reactor_fd", c_int, P)
wsffi_reactor_dispatch = _fn("wsffi_reactor_dispatch", S, P, c_size_t, POINTER(c_size_t))
wsffi_reactor_add_timer = _fn("wsffi_reactor_add_timer", S, P, c_uint64, c_uint64, TIMER_CB, P, DESTROY_CB, POINTER(c_uint64))
wsffi_reactor_cancel_timer = _fn("wsffi_reactor_cancel_timer", S, P, c_uint64)
wsffi_reactor_get_stats = _fn("wsffi_reactor_get_stats", S, P, POINTER(ReactorStats))
wsffi_reactor_stats_prometheus = _fn("wsffi_reactor_stats_prometheus", S, P, c_char_p, c_size_t, POINTER(c_size_t))

# Connections
wsffi_conn_callbacks_init = _fn("wsffi_conn_callbacks_init", S, POINTER(ConnCallbacks), c_size_t)
wsffi_server_callbacks_init = _fn("wsffi_server_callbacks_init", S, POINTER(ServerCallbacks), c_size_t)
wsffi_deflate_params_init = _fn("wsffi_deflate_params_init", S, POINTER(DeflateParams), c_size_t)
wsffi_connect = _fn("wsffi_connect", S, P, c_char_p, P, POINTER(ConnCallbacks), P, DESTROY_CB, PP, PP)
wsffi_send = _fn("wsffi_send", S, P, c_uint32, c_char_p, c_size_t)
wsffi_ping = _fn("wsffi_ping", S, P, c_char_p, c_size_t)
wsffi_pong = _fn("wsffi_pong", S, P, c_char_p, c_size_t)
wsffi_close = _fn("wsffi_close", S, P, c_uint16, c_char_p, c_size_t)
wsffi_terminate = _fn("wsffi_terminate", S, P)
wsffi_conn_pause = _fn("wsffi_conn_pause", S, P)
wsffi_conn_resume = _fn("wsffi_conn_resume", S, P)
wsffi_ready_state = _fn("wsffi_ready_state", c_uint32, P)
wsffi_buffered_amount = _fn("wsffi_buffered_amount", c_size_t, P)
wsffi_conn_get_stats = _fn("wsffi_conn_get_stats", S, P, POINTER(ConnStats))
wsffi_protocol = _fn("wsffi_protocol", c_char_p, P)
wsffi_extensions = _fn("wsffi_extensions", c_char_p, P)
wsffi_remote_address = _fn("wsffi_remote_address", c_char_p, P)
wsffi_url = _fn("wsffi_url", c_char_p, P)
wsffi_tls_alpn = _fn("wsffi_tls_alpn", c_char_p, P)
wsffi_tls_peer_subject = _fn("wsffi_tls_peer_subject", c_char_p, P)
wsffi_conn_handshake_response = _fn("wsffi_conn_handshake_response", P, P)
wsffi_send_fragment = _fn("wsffi_send_fragment", S, P, c_uint32, c_char_p, c_size_t, c_bool)
wsffi_conn_set_callbacks = _fn("wsffi_conn_set_callbacks", S, P, POINTER(ConnCallbacks), P, DESTROY_CB)
wsffi_conn_retain = _fn("wsffi_conn_retain", P, P)
wsffi_conn_release = _fn("wsffi_conn_release", None, P)

# Client options
wsffi_client_options_new = _fn("wsffi_client_options_new", P)
wsffi_client_options_free = _fn("wsffi_client_options_free", None, P)
wsffi_client_options_add_protocol = _fn("wsffi_client_options_add_protocol", S, P, c_char_p)
wsffi_client_options_add_header = _fn("wsffi_client_options_add_header", S, P, c_char_p, c_char_p)
wsffi_client_options_set_origin = _fn("wsffi_client_options_set_origin", S, P, c_char_p)
wsffi_client_options_set_connect_timeout_ms = _fn("wsffi_client_options_set_connect_timeout_ms", S, P, c_uint32)
wsffi_client_options_set_handshake_timeout_ms = _fn("wsffi_client_options_set_handshake_timeout_ms", S, P, c_uint32)
wsffi_client_options_set_max_payload = _fn("wsffi_client_options_set_max_payload", S, P, c_size_t)
wsffi_client_options_set_max_fragments = _fn("wsffi_client_options_set_max_fragments", S, P, c_size_t)
wsffi_client_options_set_ping_interval_ms = _fn("wsffi_client_options_set_ping_interval_ms", S, P, c_uint32)
wsffi_client_options_set_idle_timeout_ms = _fn("wsffi_client_options_set_idle_timeout_ms", S, P, c_uint32)
wsffi_client_options_set_close_timeout_ms = _fn("wsffi_client_options_set_close_timeout_ms", S, P, c_uint32)
wsffi_client_options_set_water_marks = _fn("wsffi_client_options_set_water_marks", S, P, c_size_t, c_size_t)
wsffi_client_options_set_max_header_bytes = _fn("wsffi_client_options_set_max_header_bytes", S, P, c_size_t)
wsffi_client_options_set_per_message_deflate = _fn("wsffi_client_options_set_per_message_deflate", S, P, c_bool)
wsffi_client_options_set_deflate_params = _fn("wsffi_client_options_set_deflate_params", S, P, POINTER(DeflateParams))
wsffi_client_options_set_tls_ca_file = _fn("wsffi_client_options_set_tls_ca_file", S, P, c_char_p, PP)
wsffi_client_options_set_tls_ca_dir = _fn("wsffi_client_options_set_tls_ca_dir", S, P, c_char_p, PP)
wsffi_client_options_set_tls_client_cert = _fn("wsffi_client_options_set_tls_client_cert", S, P, c_char_p, c_char_p, PP)
wsffi_client_options_set_tls_server_name = _fn("wsffi_client_options_set_tls_server_name", S, P, c_char_p)
wsffi_client_options_set_tls_insecure = _fn("wsffi_client_options_set_tls_insecure", S, P, c_bool)
wsffi_client_options_set_tls_alpn = _fn("wsffi_client_options_set_tls_alpn", S, P, POINTER(c_char_p), c_size_t, PP)
wsffi_client_options_set_proxy = _fn("wsffi_client_options_set_proxy", S, P, c_char_p)
wsffi_client_options_set_proxy_from_env = _fn("wsffi_client_options_set_proxy_from_env", S, P, c_bool)
wsffi_client_options_set_stream_messages = _fn("wsffi_client_options_set_stream_messages", S, P, c_bool)
wsffi_server_options_set_stream_messages = _fn("wsffi_server_options_set_stream_messages", S, P, c_bool)
wsffi_client_options_set_reconnect = _fn("wsffi_client_options_set_reconnect", S, P, c_uint32, ctypes.c_double, c_uint32, c_uint32)
wsffi_conn_stop_reconnect = _fn("wsffi_conn_stop_reconnect", S, P)
wsffi_client_options_set_follow_redirects = _fn("wsffi_client_options_set_follow_redirects", S, P, c_bool)
wsffi_client_options_set_max_redirects = _fn("wsffi_client_options_set_max_redirects", S, P, c_uint32)

# Server options
wsffi_server_options_new = _fn("wsffi_server_options_new", P)
wsffi_server_options_free = _fn("wsffi_server_options_free", None, P)
wsffi_server_options_set_client_tracking = _fn("wsffi_server_options_set_client_tracking", S, P, c_bool)
wsffi_server_options_set_max_connections = _fn("wsffi_server_options_set_max_connections", S, P, c_size_t)
wsffi_server_options_set_backpressure_policy = _fn("wsffi_server_options_set_backpressure_policy", S, P, c_uint32, c_uint32)
wsffi_server_options_set_max_subscriptions = _fn("wsffi_server_options_set_max_subscriptions", S, P, c_size_t)
wsffi_server_options_add_allowed_origin = _fn("wsffi_server_options_add_allowed_origin", S, P, c_char_p)
wsffi_server_options_set_max_payload = _fn("wsffi_server_options_set_max_payload", S, P, c_size_t)
wsffi_server_options_set_max_fragments = _fn("wsffi_server_options_set_max_fragments", S, P, c_size_t)
wsffi_server_options_set_ping_interval_ms = _fn("wsffi_server_options_set_ping_interval_ms", S, P, c_uint32)
wsffi_server_options_set_idle_timeout_ms = _fn("wsffi_server_options_set_idle_timeout_ms", S, P, c_uint32)
wsffi_server_options_set_close_timeout_ms = _fn("wsffi_server_options_set_close_timeout_ms", S, P, c_uint32)
wsffi_server_options_set_water_marks = _fn("wsffi_server_options_set_water_marks", S, P, c_size_t, c_size_t)
wsffi_server_options_set_per_message_deflate = _fn("wsffi_server_options_set_per_message_deflate", S, P, c_bool)
wsffi_server_options_set_deflate_params = _fn("wsffi_server_options_set_deflate_params", S, P, POINTER(DeflateParams))

# Listener options and listeners
wsffi_listener_options_new = _fn("wsffi_listener_options_new", P)
wsffi_listener_options_free = _fn("wsffi_listener_options_free", None, P)
wsffi_listener_options_set_backlog = _fn("wsffi_listener_options_set_backlog", S, P, c_int32)
wsffi_listener_options_set_max_header_bytes = _fn("wsffi_listener_options_set_max_header_bytes", S, P, c_size_t)
wsffi_listener_options_set_handshake_timeout_ms = _fn("wsffi_listener_options_set_handshake_timeout_ms", S, P, c_uint32)
wsffi_listener_options_set_reuse_port = _fn("wsffi_listener_options_set_reuse_port", S, P, c_bool)
wsffi_listener_options_set_tls_cert_files = _fn("wsffi_listener_options_set_tls_cert_files", S, P, c_char_p, c_char_p, PP)
wsffi_listener_options_set_tls_client_ca_file = _fn("wsffi_listener_options_set_tls_client_ca_file", S, P, c_char_p, c_bool, PP)
wsffi_listener_options_set_tls_cert_pem = _fn("wsffi_listener_options_set_tls_cert_pem", S, P, c_char_p, c_size_t, c_char_p, c_size_t, PP)
wsffi_listener_options_add_tls_sni_cert_files = _fn("wsffi_listener_options_add_tls_sni_cert_files", S, P, c_char_p, c_char_p, c_char_p, PP)
wsffi_listener_options_add_tls_sni_cert_pem = _fn("wsffi_listener_options_add_tls_sni_cert_pem", S, P, c_char_p, c_char_p, c_size_t, c_char_p, c_size_t, PP)
wsffi_listener_options_set_tls_alpn = _fn("wsffi_listener_options_set_tls_alpn", S, P, POINTER(c_char_p), c_size_t, PP)
wsffi_listener_set_tls_certificates = _fn("wsffi_listener_set_tls_certificates", S, P, P, PP)
wsffi_listener_set_http_handler = _fn("wsffi_listener_set_http_handler", S, P, HTTP_HANDLER_CB, P)
wsffi_http_response_set_status = _fn("wsffi_http_response_set_status", S, P, c_uint16, c_char_p)
wsffi_http_response_add_header = _fn("wsffi_http_response_add_header", S, P, c_char_p, c_char_p)
wsffi_http_response_set_body = _fn("wsffi_http_response_set_body", S, P, c_char_p, c_size_t)
wsffi_listen = _fn("wsffi_listen", S, P, c_char_p, P, PP, PP)
wsffi_listener_port = _fn("wsffi_listener_port", c_uint16, P)
wsffi_listener_address = _fn("wsffi_listener_address", c_char_p, P)
wsffi_listener_close = _fn("wsffi_listener_close", S, P)

# Servers
wsffi_server_attach = _fn("wsffi_server_attach", S, P, P, c_char_p, P, POINTER(ServerCallbacks), P, DESTROY_CB, PP, PP)
wsffi_server_path = _fn("wsffi_server_path", c_char_p, P)
wsffi_server_client_count = _fn("wsffi_server_client_count", c_size_t, P)
wsffi_server_get_stats = _fn("wsffi_server_get_stats", S, P, POINTER(ServerStats))
wsffi_server_broadcast = _fn("wsffi_server_broadcast", S, P, c_uint32, c_char_p, c_size_t, POINTER(c_size_t))
wsffi_server_close = _fn("wsffi_server_close", S, P)
wsffi_server_publish = _fn("wsffi_server_publish", S, P, c_char_p, c_uint32, c_char_p, c_size_t, P)
wsffi_server_subscriber_count = _fn("wsffi_server_subscriber_count", c_size_t, P, c_char_p)
wsffi_conn_subscribe = _fn("wsffi_conn_subscribe", S, P, c_char_p)
wsffi_conn_unsubscribe = _fn("wsffi_conn_unsubscribe", S, P, c_char_p)
wsffi_conn_is_subscribed = _fn("wsffi_conn_is_subscribed", c_bool, P, c_char_p)

# Handshakes
wsffi_handshake_request = _fn("wsffi_handshake_request", P, P)
wsffi_handshake_add_header = _fn("wsffi_handshake_add_header", S, P, c_char_p, c_char_p)
wsffi_handshake_set_reject = _fn("wsffi_handshake_set_reject", S, P, c_uint16, c_char_p)
wsffi_handshake_accept = _fn("wsffi_handshake_accept", S, P)
wsffi_handshake_reject = _fn("wsffi_handshake_reject", S, P, c_uint16, c_char_p)

# Request and response views
wsffi_request_tls_subject = _fn("wsffi_request_tls_subject", c_char_p, P)
wsffi_request_tls_alpn = _fn("wsffi_request_tls_alpn", c_char_p, P)
wsffi_request_tls_server_name = _fn("wsffi_request_tls_server_name", c_char_p, P)
wsffi_request_method = _fn("wsffi_request_method", c_char_p, P)
wsffi_request_url = _fn("wsffi_request_url", c_char_p, P)
wsffi_request_path = _fn("wsffi_request_path", c_char_p, P)
wsffi_request_query_string = _fn("wsffi_request_query_string", c_char_p, P)
wsffi_request_http_version = _fn("wsffi_request_http_version", c_char_p, P)
wsffi_request_remote_address = _fn("wsffi_request_remote_address", c_char_p, P)
wsffi_request_host = _fn("wsffi_request_host", c_char_p, P)
wsffi_request_query = _fn("wsffi_request_query", c_char_p, P, c_char_p)
wsffi_request_header = _fn("wsffi_request_header", c_char_p, P, c_char_p)
wsffi_request_has_header = _fn("wsffi_request_has_header", c_bool, P, c_char_p)
wsffi_request_header_count = _fn("wsffi_request_header_count", c_size_t, P)
wsffi_request_header_at = _fn("wsffi_request_header_at", S, P, c_size_t, POINTER(c_char_p), POINTER(c_char_p))
wsffi_response_status = _fn("wsffi_response_status", c_uint16, P)
wsffi_response_reason = _fn("wsffi_response_reason", c_char_p, P)
wsffi_response_header_count = _fn("wsffi_response_header_count", c_size_t, P)
wsffi_response_header = _fn("wsffi_response_header", c_char_p, P, c_char_p)
wsffi_response_header_at = _fn("wsffi_response_header_at", S, P, c_size_t, POINTER(c_char_p), POINTER(c_char_p))
wsffi_response_body = _fn("wsffi_response_body", c_void_p, P, POINTER(c_size_t))


def check_version():
    n = wsffi_version_number()
    have = (n >> 16, (n >> 8) & 0xFF)
    if have != ABI_VERSION:
        raise ImportError(
            f"wsffi: {library_path} is version {wsffi_version().decode()}, "
            f"this package needs {ABI_VERSION[0]}.{ABI_VERSION[1]}.x"
        )


check_version()
