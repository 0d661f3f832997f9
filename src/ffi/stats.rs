//! Counters of connections, servers and reactors (`wsffi_*_get_stats`) and their Prometheus
//! text (`wsffi_reactor_stats_prometheus`).

use std::ffi::c_char;
use std::mem::size_of;

use super::boundary::{status_boundary, write_out};
use super::extensible::{field, write_extensible, Extensible};
use super::handles::{borrowed, counted};
use super::reactor::wsffi_reactor;
use super::status::{wsffi_status, Status};
use crate::reactor::conn::ConnHandle;
use crate::reactor::server::ServerHandle;
use crate::reactor::stats::{close_slot, Refusal, TrafficCounts, CLOSE_SLOTS};

/// Close frames by code, in the stats of servers and reactors. Its fields are fixed (it does
/// not grow): codes without a field of their own, the application's 3000-4999 among them,
/// count in `other`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct wsffi_close_counts {
    /// 1000, normal closure.
    pub code_1000: u64,
    /// 1001, going away (a server or reactor closing, the idle timeout).
    pub code_1001: u64,
    /// 1002, protocol error.
    pub code_1002: u64,
    /// 1003, unsupported data.
    pub code_1003: u64,
    /// 1005: a close frame without a code.
    pub code_1005: u64,
    /// 1006: no close frame (received side only: the connection ended without the peer's).
    pub code_1006: u64,
    /// 1007, invalid payload (bad UTF-8).
    pub code_1007: u64,
    /// 1008, policy violation.
    pub code_1008: u64,
    /// 1009, message too big.
    pub code_1009: u64,
    /// 1010, mandatory extension.
    pub code_1010: u64,
    /// 1011, internal error.
    pub code_1011: u64,
    /// Every other code.
    pub other: u64,
}

impl From<[u64; CLOSE_SLOTS]> for wsffi_close_counts {
    fn from(t: [u64; CLOSE_SLOTS]) -> Self {
        let at = |code: u16| t[close_slot(code)];
        wsffi_close_counts {
            code_1000: at(1000),
            code_1001: at(1001),
            code_1002: at(1002),
            code_1003: at(1003),
            code_1005: at(1005),
            code_1006: at(1006),
            code_1007: at(1007),
            code_1008: at(1008),
            code_1009: at(1009),
            code_1010: at(1010),
            code_1011: at(1011),
            other: t[CLOSE_SLOTS - 1],
        }
    }
}

/// One connection's counters, filled by `wsffi_conn_get_stats`. Set `size` to
/// `sizeof(struct wsffi_conn_stats)` first; see the header's introduction for how the struct
/// grows. Messages count whole (a fragmented one once); bytes are those of the WebSocket
/// stream (the HTTP handshake and every frame, headers included; with TLS, before encryption
/// and after decryption). Received messages and bytes count once the read that carried them
/// is processed (just after their `on_message`); sent ones (sends, broadcasts, publishes)
/// when the wake-up that queued them flushes its output.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wsffi_conn_stats {
    /// `sizeof(struct wsffi_conn_stats)` as the caller's header declares it; the library
    /// lowers it to its own `sizeof` when that is smaller.
    pub size: usize,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent (queued: `wsffi_send*`, final fragments, broadcasts, publishes).
    pub messages_out: u64,
    /// Bytes read, in bytes.
    pub bytes_in: u64,
    /// Bytes written, in bytes.
    pub bytes_out: u64,
    /// Bytes accepted by sends and not yet written: `wsffi_buffered_amount`.
    pub buffered_bytes: u64,
    /// Microseconds from the last ping (the automatic one of `ping_interval`, or
    /// `wsffi_ping`) to the pong that carried its payload; -1 until a pong answered one.
    pub last_ping_rtt_us: i64,
    /// Messages dropped for this connection because its output was above the high-water
    /// mark: sends under `WSFFI_BACKPRESSURE_DROP`, broadcasts and publishes that skipped it.
    pub messages_dropped: u64,
}

/// A server's counters, filled by `wsffi_server_get_stats`. Set `size` to
/// `sizeof(struct wsffi_server_stats)` first; see the header's introduction for how the
/// struct grows. Traffic counts its connections from the 101 answer on (the request was read
/// before the server was known) and includes connections that have closed. Refusals made
/// before a request reached a server (unparsable requests, unknown paths, TLS failures, a
/// request that did not arrive in time) count on the reactor only.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wsffi_server_stats {
    /// `sizeof(struct wsffi_server_stats)` as the caller's header declares it; the library
    /// lowers it to its own `sizeof` when that is smaller.
    pub size: usize,
    /// Open connections (`wsffi_server_client_count`).
    pub connections_open: u64,
    /// Handshakes answered with 101.
    pub handshakes_accepted: u64,
    /// Refused: not a valid WebSocket upgrade (400, 426), a malformed extension offer.
    pub refused_bad_request: u64,
    /// Refused: Origin not in the allowed origins (403).
    pub refused_origin: u64,
    /// Refused: max_connections reached (503).
    pub refused_max_connections: u64,
    /// Refused by `verify_client` (its status, redirects included).
    pub refused_verify_client: u64,
    /// Refused: a deferred decision did not come within the handshake timeout.
    pub refused_timeout: u64,
    /// Refused: the server closed while a decision was deferred (503).
    pub refused_server_closing: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Bytes read, in bytes.
    pub bytes_in: u64,
    /// Bytes written, in bytes.
    pub bytes_out: u64,
    /// Codes of the close frames its connections sent (our own closes and echoes).
    pub closes_sent: wsffi_close_counts,
    /// Codes of the close frames its connections received; `code_1006` counts those that
    /// ended without one. Every connection that opened counts once here when it ends.
    pub closes_received: wsffi_close_counts,
    /// Messages dropped for its connections above their high-water mark (see
    /// `wsffi_server_options_set_backpressure_policy`; broadcasts and publishes skip such
    /// connections under every policy).
    pub messages_dropped: u64,
}

/// A reactor's counters, filled by `wsffi_reactor_get_stats`: every connection of the
/// reactor, client and server side, and every server, also those already closed. Set
/// `size` to `sizeof(struct wsffi_reactor_stats)` first; see the header's introduction for
/// how the struct grows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct wsffi_reactor_stats {
    /// `sizeof(struct wsffi_reactor_stats)` as the caller's header declares it; the library
    /// lowers it to its own `sizeof` when that is smaller.
    pub size: usize,
    /// Open connections (state OPEN or CLOSING), both sides.
    pub connections_open: u64,
    /// Connections that reached OPEN, both sides.
    pub connections_opened: u64,
    /// Server handshakes answered with 101.
    pub handshakes_accepted: u64,
    /// Refused: unparsable HTTP, not a valid WebSocket upgrade, a malformed extension offer.
    pub refused_bad_request: u64,
    /// Refused: no server at the request's path (404).
    pub refused_not_found: u64,
    /// Refused: Origin not allowed (403).
    pub refused_origin: u64,
    /// Refused: max_connections reached (503).
    pub refused_max_connections: u64,
    /// Refused by `verify_client`.
    pub refused_verify_client: u64,
    /// Refused: the handshake timeout expired (request incomplete, or decision deferred).
    pub refused_timeout: u64,
    /// Refused: the server closed while a decision was deferred (503).
    pub refused_server_closing: u64,
    /// Plain (non-upgrade) HTTP requests answered (by the listener's HTTP handler, or 404/426).
    pub http_requests: u64,
    /// Accepted sockets whose TLS handshake failed.
    pub tls_failures_server: u64,
    /// `wss://` client connections whose TLS handshake failed.
    pub tls_failures_client: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
    /// Bytes read, in bytes (handshakes included).
    pub bytes_in: u64,
    /// Bytes written, in bytes (handshakes included).
    pub bytes_out: u64,
    /// Codes of the close frames sent.
    pub closes_sent: wsffi_close_counts,
    /// Codes of the close frames received; `code_1006` counts connections that ended
    /// without one.
    pub closes_received: wsffi_close_counts,
}

macro_rules! extensible {
    ($ty:ident, $($name:ident: $fty:ty),+ $(,)?) => {
        // SAFETY: every field after `size` is listed in order; all are plain integers (or
        // structs of them), valid for any bit pattern.
        unsafe impl Extensible for $ty {
            const NAME: &'static str = stringify!($ty);
            const FIELDS: &'static [(&'static str, usize, usize)] = &[$(field!($ty, $name: $fty)),+];
            fn defaults() -> Self {
                $ty { size: size_of::<$ty>(), ..Default::default() }
            }
        }
    };
}

extensible!(wsffi_conn_stats, messages_in: u64, messages_out: u64, bytes_in: u64, bytes_out: u64,
    buffered_bytes: u64, last_ping_rtt_us: i64, messages_dropped: u64);
extensible!(wsffi_server_stats, connections_open: u64, handshakes_accepted: u64, refused_bad_request: u64,
    refused_origin: u64, refused_max_connections: u64, refused_verify_client: u64, refused_timeout: u64,
    refused_server_closing: u64, messages_in: u64, messages_out: u64, bytes_in: u64, bytes_out: u64,
    closes_sent: wsffi_close_counts, closes_received: wsffi_close_counts, messages_dropped: u64);
extensible!(wsffi_reactor_stats, connections_open: u64, connections_opened: u64, handshakes_accepted: u64,
    refused_bad_request: u64, refused_not_found: u64, refused_origin: u64, refused_max_connections: u64,
    refused_verify_client: u64, refused_timeout: u64, refused_server_closing: u64, http_requests: u64,
    tls_failures_server: u64, tls_failures_client: u64, messages_in: u64, messages_out: u64, bytes_in: u64,
    bytes_out: u64, closes_sent: wsffi_close_counts, closes_received: wsffi_close_counts);

/// Writes `value` into the caller's struct by the size it set.
fn fill<T: Extensible>(out: *mut T, value: T) -> Result<(), Status> {
    if out.is_null() {
        return Err(Status::ErrNullParameter);
    }
    // SAFETY: non-NULL; the caller declares `(*out).size` writable bytes.
    unsafe { write_extensible(out, &value) }.map_err(|_| Status::ErrInvalidParameter)
}

fn traffic(t: &TrafficCounts) -> (u64, u64, u64, u64) {
    (t.messages_in, t.messages_out, t.bytes_in, t.bytes_out)
}

/// Fills `*out` with the connection's counters (see `struct wsffi_conn_stats`), from any
/// thread, without waiting for the reactor. Also after the connection closed, as long as the
/// caller holds a reference: then the counters are final (`buffered_bytes` 0) and the status
/// is WSFFI_STATUS_OK; `wsffi_ready_state` tells that it closed.
/// NULL `conn` or `out`: WSFFI_STATUS_ERR_NULL_PARAMETER; an `out->size` smaller than the
/// `size` field (a struct only zeroed) or ending inside a field:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER. Nothing is written on error.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_get_stats(conn: *const ConnHandle, out: *mut wsffi_conn_stats) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        let conn = unsafe { counted(conn) }?;
        let s = conn.stats();
        let (messages_in, messages_out, bytes_in, bytes_out) = traffic(&s.traffic);
        let rtt = s.last_ping_rtt.map_or(-1, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        fill(
            out,
            wsffi_conn_stats {
                size: size_of::<wsffi_conn_stats>(),
                messages_in,
                messages_out,
                bytes_in,
                bytes_out,
                buffered_bytes: s.buffered,
                last_ping_rtt_us: rtt,
                messages_dropped: s.dropped,
            },
        )
    })
}

/// Fills `*out` with the server's counters (see `struct wsffi_server_stats`), from any
/// thread, without waiting for the reactor. The handle is valid until `wsffi_server_close`;
/// the reactor's stats keep what its servers counted after they are gone.
/// NULL `server` or `out`: WSFFI_STATUS_ERR_NULL_PARAMETER; an `out->size` that breaks the
/// size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER. Nothing is written on error.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_get_stats(server: *const ServerHandle, out: *mut wsffi_server_stats) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live server.
        let server = unsafe { borrowed(server) }?;
        let s = server.stats();
        let (messages_in, messages_out, bytes_in, bytes_out) = traffic(&s.traffic);
        fill(
            out,
            wsffi_server_stats {
                size: size_of::<wsffi_server_stats>(),
                connections_open: s.connections_open,
                handshakes_accepted: s.accepted,
                refused_bad_request: s.refused.get(Refusal::BadRequest),
                refused_origin: s.refused.get(Refusal::Origin),
                refused_max_connections: s.refused.get(Refusal::MaxConnections),
                refused_verify_client: s.refused.get(Refusal::VerifyClient),
                refused_timeout: s.refused.get(Refusal::Timeout),
                refused_server_closing: s.refused.get(Refusal::ServerClosing),
                messages_in,
                messages_out,
                bytes_in,
                bytes_out,
                closes_sent: s.closes_sent.into(),
                closes_received: s.closes_received.into(),
                messages_dropped: s.dropped,
            },
        )
    })
}

/// Fills `*out` with the reactor's counters (see `struct wsffi_reactor_stats`), from any
/// thread, without waiting for the reactor (also from callbacks).
/// NULL `reactor` or `out`: WSFFI_STATUS_ERR_NULL_PARAMETER; an `out->size` that breaks the
/// size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER. Nothing is written on error.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_get_stats(
    reactor: *const wsffi_reactor,
    out: *mut wsffi_reactor_stats,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live reactor.
        let reactor = unsafe { borrowed(reactor) }?;
        let r = reactor.reactor.stats();
        let (messages_in, messages_out, bytes_in, bytes_out) = traffic(&r.traffic);
        fill(
            out,
            wsffi_reactor_stats {
                size: size_of::<wsffi_reactor_stats>(),
                connections_open: r.connections_open,
                connections_opened: r.connections_opened,
                handshakes_accepted: r.accepted,
                refused_bad_request: r.refused.get(Refusal::BadRequest),
                refused_not_found: r.refused.get(Refusal::NotFound),
                refused_origin: r.refused.get(Refusal::Origin),
                refused_max_connections: r.refused.get(Refusal::MaxConnections),
                refused_verify_client: r.refused.get(Refusal::VerifyClient),
                refused_timeout: r.refused.get(Refusal::Timeout),
                refused_server_closing: r.refused.get(Refusal::ServerClosing),
                http_requests: r.http_requests,
                tls_failures_server: r.tls_failures_server,
                tls_failures_client: r.tls_failures_client,
                messages_in,
                messages_out,
                bytes_in,
                bytes_out,
                closes_sent: r.closes_sent.into(),
                closes_received: r.closes_received.into(),
            },
        )
    })
}

/// Writes the counters of `reactor` and of its servers that are attached (not yet closed)
/// in the Prometheus text exposition format (version 0.0.4), each metric family with HELP
/// and TYPE lines. The names are those of the stats fields with the library's prefix
/// (`connections_open`, `handshakes_refused_total` labelled by `reason`,
/// `close_codes_received_total` labelled by `code`, ...); the servers' families add `server_`
/// and the labels `server` (the servers of the reactor numbered 1, 2, ... in attach order) and
/// `path`. README.md lists them. Serve the text from a listener's HTTP handler as
/// `text/plain; version=0.0.4`. From any thread, without waiting for the reactor.
///
/// Like `snprintf`: the text and a NUL go to `buf` when they fit in `cap` bytes; `*out_len`
/// (when `out_len` is not NULL) receives the text's length without the NUL either way. When
/// `cap` is too small (0 with a NULL `buf` asks only for the length), the status is
/// WSFFI_STATUS_ERR_TOO_BIG and `buf` is left as it was; counters keep moving, so give the
/// next call some room beyond `*out_len + 1`.
/// NULL `reactor`: WSFFI_STATUS_ERR_NULL_PARAMETER; NULL `buf` with `cap` above 0:
/// WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_stats_prometheus(
    reactor: *const wsffi_reactor,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live reactor.
        let reactor = unsafe { borrowed(reactor) }?;
        if buf.is_null() && cap > 0 {
            return Err(Status::ErrNullParameter);
        }
        let text = reactor.reactor.shared().prometheus_text();
        if !out_len.is_null() {
            // SAFETY: non-NULL and writable per the caller's contract.
            unsafe { write_out(out_len, text.len()) }?;
        }
        if text.len() >= cap {
            return Err(Status::ErrTooBig);
        }
        // SAFETY: `buf` has `cap > text.len()` writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
            buf.add(text.len()).write(0);
        }
        Ok(())
    })
}
