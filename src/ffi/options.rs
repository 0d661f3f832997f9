//! Option objects for clients, servers and listeners. Each is created with `_new`, changed
//! with setters (not safe for concurrent mutation) and copied by the call that uses it.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{boundary, status_boundary, text};
use super::handles::{free_owned, into_owned, owned, Handle, Owned};
use super::status::{wsffi_status, Status};
use crate::core::handshake::client::check_extra_request_header;
use crate::core::handshake::headers::is_token;
use crate::core::handshake::response::check_header;
use crate::core::protocol::close::codes;
use crate::reactor::config::{
    BackpressurePolicy, ClientConfig, ConnConfig, ListenerConfig, ReconnectPolicy, ServerConfig,
};

/// Client connection options.
#[derive(Default)]
pub struct wsffi_client_options {
    pub(crate) config: ClientConfig,
}

/// Server options.
#[derive(Default)]
pub struct wsffi_server_options {
    pub(crate) config: ServerConfig,
}

/// Listener options.
#[derive(Default)]
pub struct wsffi_listener_options {
    pub(crate) config: ListenerConfig,
}

fn millis(ms: u32) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms.into()))
}

/// Applies `f` to a box-managed options object.
pub(super) fn with<T: Handle<Ownership = Owned>>(
    p: *mut T,
    f: impl FnOnce(&mut T) -> Result<(), Status>,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live options object from its `_new`.
        let o = unsafe { owned(p) }?;
        f(o)
    })
}

fn free<T: Handle<Ownership = Owned>>(p: *mut T) {
    // SAFETY: NULL or an object from its `_new`; the caller gives it up.
    boundary!((), { unsafe { free_owned(p) } })
}

fn set_max_payload(c: &mut ConnConfig, bytes: usize) -> Result<(), Status> {
    if bytes == 0 {
        return Err(Status::ErrInvalidParameter);
    }
    c.limits.max_payload = bytes;
    Ok(())
}

fn set_max_fragments(c: &mut ConnConfig, n: usize) -> Result<(), Status> {
    if n == 0 {
        return Err(Status::ErrInvalidParameter);
    }
    c.limits.max_fragments = n;
    Ok(())
}

fn set_water(c: &mut ConnConfig, high: usize, low: usize) -> Result<(), Status> {
    if low > high || high == 0 {
        return Err(Status::ErrInvalidParameter);
    }
    c.high_water = high;
    c.low_water = low;
    Ok(())
}

fn set_ping_interval(c: &mut ConnConfig, ms: u32) -> Result<(), Status> {
    c.ping_interval = millis(ms);
    Ok(())
}

fn set_idle_timeout(c: &mut ConnConfig, ms: u32) -> Result<(), Status> {
    c.idle_timeout = millis(ms);
    Ok(())
}

fn set_close_timeout(c: &mut ConnConfig, ms: u32) -> Result<(), Status> {
    c.close_timeout = millis(ms).ok_or(Status::ErrInvalidParameter)?;
    Ok(())
}

// ---- client -----------------------------------------------------------------------------

/// New client options with the defaults: no subprotocols, no extra headers, no Origin,
/// connect timeout 10 s, handshake timeout 10 s, max_payload 64 MiB, at most 131072
/// fragments per message, no automatic ping, no idle timeout, close timeout 5 s, high-water
/// mark 16 MiB, low-water mark 4 MiB, max response head 16 KiB, permessage-deflate offered
/// with default parameters, messages delivered whole (not streamed), no automatic
/// reconnect. The caller owns the object: free it with `wsffi_client_options_free`; NULL
/// only if the library failed internally.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_new() -> *mut wsffi_client_options {
    boundary!(std::ptr::null_mut(), { into_owned(Box::default()) })
}

/// Frees client options. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_free(options: *mut wsffi_client_options) {
    free(options)
}

/// Offers a subprotocol (an RFC 7230 token), in order of preference. Duplicates are refused.
/// NULL `options` or `protocol`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_add_protocol(
    options: *mut wsffi_client_options,
    protocol: *const c_char,
) -> wsffi_status {
    with(options, |o| {
        // SAFETY: NULL or a NUL-terminated string.
        let p = unsafe { text(protocol) }?;
        if !is_token(p) || o.config.protocols.iter().any(|q| q == p) {
            return Err(Status::ErrInvalidParameter);
        }
        o.config.protocols.push(p.to_string());
        Ok(())
    })
}

/// Adds a request header. Host, Upgrade, Connection, Content-Length, Transfer-Encoding and
/// every Sec-WebSocket-* name (key, version, subprotocol and extension offers come from the
/// options) are written by the library and refused here with
/// `WSFFI_STATUS_ERR_INVALID_PARAMETER` (any case); names must be tokens, values without
/// control characters.
/// NULL `options`, `name` or `value`: WSFFI_STATUS_ERR_NULL_PARAMETER. The strings are
/// copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_add_header(
    options: *mut wsffi_client_options,
    name: *const c_char,
    value: *const c_char,
) -> wsffi_status {
    with(options, |o| {
        // SAFETY: NULL or NUL-terminated strings.
        let (n, v) = unsafe { (text(name)?, text(value)?) };
        check_extra_request_header(n, v).map_err(|_| Status::ErrInvalidParameter)?;
        o.config.headers.push((n.to_string(), v.to_string()));
        Ok(())
    })
}

/// Sets the Origin header.
/// NULL `options` or `origin`: WSFFI_STATUS_ERR_NULL_PARAMETER. The string is copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_origin(
    options: *mut wsffi_client_options,
    origin: *const c_char,
) -> wsffi_status {
    with(options, |o| {
        // SAFETY: NULL or a NUL-terminated string.
        let v = unsafe { text(origin) }?;
        check_header("Origin", v).map_err(|_| Status::ErrInvalidParameter)?;
        o.config.origin = Some(v.to_string());
        Ok(())
    })
}

/// Sends the connection through a proxy, as curl's `CURLOPT_PROXY`:
/// `http://[user:pass@]host[:port]` (an HTTP `CONNECT` tunnel with Basic authentication;
/// port 80 by default, a URL without scheme is http), `socks5h://[user:pass@]host[:port]`
/// (SOCKS5, the proxy resolves the target's name; port 1080 by default) or `socks5://`
/// (SOCKS5; an IP target is sent as an address, a name is sent for the proxy to resolve).
/// User name and password may be percent-encoded. TLS for `wss://` runs inside the tunnel,
/// with SNI and certificate checks against the target host, never the proxy. The connect
/// timeout covers the tunnel. Failures arrive as `on_error` then `on_close`: 407 (or 401) and
/// refused SOCKS5 credentials, 403 and other non-2xx answers as
/// WSFFI_STATUS_ERR_HANDSHAKE_REJECTED, a target the SOCKS5 proxy cannot reach as
/// WSFFI_STATUS_ERR_CONNECTION_REFUSED, a proxy that closes early or does not speak the
/// protocol as WSFFI_STATUS_ERR_HANDSHAKE, each with a message starting "proxy:".
/// Default: no proxy. NULL or "" `url`: no proxy, also not from the environment.
/// `ws+unix://` URLs never use a proxy.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER; a URL that does not parse:
/// WSFFI_STATUS_ERR_INVALID_URL (options unchanged). The string is copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_proxy(
    options: *mut wsffi_client_options,
    url: *const c_char,
) -> wsffi_status {
    with(options, |o| {
        if url.is_null() {
            o.config.proxy = Some(String::new());
            return Ok(());
        }
        // SAFETY: a NUL-terminated string.
        let v = unsafe { text(url) }?;
        if !v.trim().is_empty() {
            crate::core::proxy::parse_proxy_url(v).map_err(|_| Status::ErrInvalidUrl)?;
        }
        o.config.proxy = Some(v.to_string());
        Ok(())
    })
}

/// Takes the proxy from the environment when `wsffi_client_options_set_proxy` was not
/// called, with curl's rules (default off: the environment is ignored). `wss://` uses
/// `https_proxy` or `HTTPS_PROXY`, `ws://` uses `http_proxy` (lowercase only, as curl),
/// both fall back to `all_proxy` or `ALL_PROXY`. `no_proxy` or `NO_PROXY` lists hosts
/// reached directly: comma separated, `*` for all, a name matches itself and its
/// subdomains (a leading dot is ignored), IP addresses and `addr/bits` networks match the
/// target's literal address. The variables are read at each `wsffi_connect`; a value that
/// does not parse fails that connection with WSFFI_STATUS_ERR_INVALID_URL.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_proxy_from_env(
    options: *mut wsffi_client_options,
    enabled: bool,
) -> wsffi_status {
    with(options, |o| {
        o.config.proxy_from_env = enabled;
        Ok(())
    })
}

/// Time allowed for name resolution plus TCP connect, and the proxy's tunnel when a proxy
/// is used (ms, > 0; default 10000, and never more than the handshake timeout).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_connect_timeout_ms(
    options: *mut wsffi_client_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| {
        o.config.connect_timeout = millis(ms).ok_or(Status::ErrInvalidParameter)?;
        Ok(())
    })
}

/// Time allowed from the start of the connect to the end of the opening handshake (ms, > 0).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_handshake_timeout_ms(
    options: *mut wsffi_client_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| {
        o.config.handshake_timeout = millis(ms).ok_or(Status::ErrInvalidParameter)?;
        Ok(())
    })
}

/// Follows 301, 302, 303, 307 and 308 answers to the upgrade request (default false: such an
/// answer is an unexpected response, `on_unexpected_response` then `on_close` with
/// WSFFI_STATUS_ERR_HANDSHAKE_REJECTED). When on, the `Location` (absolute, or relative to
/// the current URL; `http`/`https` read as `ws`/`wss`) is dialled with a fresh key; URL
/// credentials and the Authorization and Cookie headers added with
/// `wsffi_client_options_add_header` are dropped when the host or port changes or the hop goes
/// from `wss` to `ws`, and a TLS name set with `wsffi_client_options_set_tls_server_name`
/// is dropped when the host name changes (the new host is verified by its own name). A
/// loop, a missing or unusable Location, or more hops than
/// `wsffi_client_options_set_max_redirects` end the connection with
/// WSFFI_STATUS_ERR_HANDSHAKE_REJECTED and a message naming the cause. The connect and
/// handshake timeouts count from the first dial and cover all hops.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_follow_redirects(
    options: *mut wsffi_client_options,
    follow: bool,
) -> wsffi_status {
    with(options, |o| {
        o.config.follow_redirects = follow;
        Ok(())
    })
}

/// Reconnects automatically (off by default). When the connection is lost, or a dial or
/// opening handshake fails (the first one included), the same URL is dialled again on the
/// same conn handle after a wait, the proxy and redirects chosen again: `on_reconnect`
/// reports each attempt, `on_open` fires again on success, and `on_error` then `on_close`
/// come once, at the very end.
///
/// The wait before attempt n is `initial_delay_ms * factor^(n-1)`, at most `max_delay_ms`,
/// with equal jitter (a random point in its upper half, so clients that lost the same
/// server spread out while the delays still grow). `max_attempts` attempts in a row that do
/// not open give up (0: no limit) with `on_error` (the last failure's status, the message
/// saying so) and `on_close`; the count starts again at every open.
///
/// Retried: network errors, DNS, refused connects, timeouts (connect, handshake, ping,
/// idle), resets, a socket closed during the handshake, an upgrade answered 5xx, 408 or
/// 429, and every close frame from the server except 1002, 1003, 1007, 1008, 1009 and 1010
/// (1000 and 1001 included, as Node's reconnecting clients do). Permanent (the connection
/// ends as without reconnect): any other non-101 answer (4xx, a 3xx not followed), TLS
/// failures, invalid URLs or options, proxy refusals, protocol violations of the server,
/// `wsffi_close` and `wsffi_terminate` (which end it during the wait too), reactor shutdown.
///
/// While lost and reconnecting the ready state is WSFFI_CONNECTING and every send returns
/// WSFFI_STATUS_ERR_RECONNECTING (nothing is queued); what was buffered and not written
/// when the connection was lost is lost with it. `initial_delay_ms` 0 turns reconnecting
/// off; otherwise `max_delay_ms >= initial_delay_ms` and `factor` finite, 1.0 to 1000.0,
/// or WSFFI_STATUS_ERR_INVALID_PARAMETER (nothing changes).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_reconnect(
    options: *mut wsffi_client_options,
    initial_delay_ms: u32,
    factor: f64,
    max_delay_ms: u32,
    max_attempts: u32,
) -> wsffi_status {
    with(options, |o| {
        if initial_delay_ms == 0 {
            o.config.reconnect = None;
            return Ok(());
        }
        if max_delay_ms < initial_delay_ms || !factor.is_finite() || !(1.0..=1000.0).contains(&factor) {
            return Err(Status::ErrInvalidParameter);
        }
        o.config.reconnect = Some(ReconnectPolicy {
            initial_delay: Duration::from_millis(initial_delay_ms.into()),
            factor,
            max_delay: Duration::from_millis(max_delay_ms.into()),
            max_attempts,
        });
        Ok(())
    })
}

/// Most redirects followed for one connection when following is on (default 10; 0 refuses
/// the first one). NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_max_redirects(options: *mut wsffi_client_options, max: u32) -> wsffi_status {
    with(options, |o| {
        o.config.max_redirects = max;
        Ok(())
    })
}

/// Largest incoming message in bytes (> 0); larger ones close the connection with 1009.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_max_payload(
    options: *mut wsffi_client_options,
    bytes: usize,
) -> wsffi_status {
    with(options, |o| set_max_payload(&mut o.config.conn, bytes))
}

/// Deliver incoming messages in parts as they arrive, to the `on_message_part` callback
/// (see `wsffi_message_part_cb`), instead of whole to `on_message`; off by default. Parts
/// come straight from the read buffer, so a message may be larger than memory: neither
/// `max_payload` nor `max_fragments` applies to a streamed message (an application that
/// wants a bound counts the bytes and calls `wsffi_close`, e.g. with 1009). Compressed
/// messages are inflated part by part, never whole. A connection without an
/// `on_message_part` callback then drops its messages.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_stream_messages(
    options: *mut wsffi_client_options,
    enabled: bool,
) -> wsffi_status {
    with(options, |o| {
        o.config.conn.stream_messages = enabled;
        Ok(())
    })
}

/// Most frames one incoming fragmented message may use (> 0); more close with 1009.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_max_fragments(options: *mut wsffi_client_options, n: usize) -> wsffi_status {
    with(options, |o| set_max_fragments(&mut o.config.conn, n))
}

/// Sends a ping after `ms` without input and drops the connection (1006, `WSFFI_STATUS_ERR_TIMEOUT`)
/// when another `ms` pass without any input. 0 turns it off (the client default; servers
/// default to 60 s).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_ping_interval_ms(
    options: *mut wsffi_client_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| set_ping_interval(&mut o.config.conn, ms))
}

/// Closes the connection with 1001 after `ms` without input. 0 turns it off (the client
/// default; servers default to 120 s).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_idle_timeout_ms(
    options: *mut wsffi_client_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| set_idle_timeout(&mut o.config.conn, ms))
}

/// How long to wait for the peer's side of the close handshake (ms, > 0).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_close_timeout_ms(
    options: *mut wsffi_client_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| set_close_timeout(&mut o.config.conn, ms))
}

/// Output flow control: sends are refused with `WSFFI_STATUS_ERR_BACKPRESSURE` while more than
/// `high` bytes wait for the socket; `on_drain` fires when it falls to `low` (low <= high).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_water_marks(
    options: *mut wsffi_client_options,
    high: usize,
    low: usize,
) -> wsffi_status {
    with(options, |o| set_water(&mut o.config.conn, high, low))
}

/// Largest response head accepted (bytes, >= 256).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_max_header_bytes(
    options: *mut wsffi_client_options,
    bytes: usize,
) -> wsffi_status {
    with(options, |o| {
        if bytes < 256 {
            return Err(Status::ErrInvalidParameter);
        }
        o.config.max_header_bytes = bytes;
        Ok(())
    })
}

// ---- server -----------------------------------------------------------------------------

/// New server options with the defaults: client tracking on, no connection limit, any
/// Origin, max_payload 64 MiB, at most 131072 fragments per message, a ping after 60 s
/// without input, idle timeout 120 s, close timeout 5 s, high-water mark 16 MiB,
/// low-water mark 4 MiB, back-pressure policy `WSFFI_BACKPRESSURE_REFUSE`,
/// permessage-deflate declined, messages delivered whole (not streamed). The caller owns
/// the object: free it
/// with `wsffi_server_options_free`; NULL only if the library failed internally.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_new() -> *mut wsffi_server_options {
    boundary!(std::ptr::null_mut(), { into_owned(Box::default()) })
}

/// Frees server options. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_free(options: *mut wsffi_server_options) {
    free(options)
}

/// Keep the set of clients for `wsffi_server_clients` and `wsffi_server_broadcast`
/// (default on). Off, those two return `WSFFI_STATUS_ERR_UNSUPPORTED`.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_client_tracking(
    options: *mut wsffi_server_options,
    enabled: bool,
) -> wsffi_status {
    with(options, |o| {
        o.config.client_tracking = enabled;
        Ok(())
    })
}

/// Most simultaneous connections; further upgrades get 503. 0 = no limit (the default).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_max_connections(
    options: *mut wsffi_server_options,
    n: usize,
) -> wsffi_status {
    with(options, |o| {
        o.config.max_connections = n;
        Ok(())
    })
}

/// Most topics one connection may subscribe to (`wsffi_conn_subscribe`); past it a
/// subscription fails with WSFFI_STATUS_ERR_TOO_BIG. Default 10000; at least 1.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER; 0: WSFFI_STATUS_ERR_INVALID_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_max_subscriptions(
    options: *mut wsffi_server_options,
    n: usize,
) -> wsffi_status {
    with(options, |o| {
        if n == 0 {
            return Err(Status::ErrInvalidParameter);
        }
        o.config.max_subscriptions = n;
        Ok(())
    })
}

/// Accept only upgrades whose Origin equals one of the added values (ASCII
/// case-insensitive); others get 403. Without any, every Origin is accepted.
/// NULL `options` or `origin`: WSFFI_STATUS_ERR_NULL_PARAMETER. The string is copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_add_allowed_origin(
    options: *mut wsffi_server_options,
    origin: *const c_char,
) -> wsffi_status {
    with(options, |o| {
        // SAFETY: NULL or a NUL-terminated string.
        let v = unsafe { text(origin) }?;
        o.config.allowed_origins.push(v.to_string());
        Ok(())
    })
}

/// As `wsffi_client_options_set_max_payload`, for the server's connections.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_max_payload(
    options: *mut wsffi_server_options,
    bytes: usize,
) -> wsffi_status {
    with(options, |o| set_max_payload(&mut o.config.conn, bytes))
}

/// As `wsffi_client_options_set_stream_messages`, for the server's connections (off by
/// default). NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_stream_messages(
    options: *mut wsffi_server_options,
    enabled: bool,
) -> wsffi_status {
    with(options, |o| {
        o.config.conn.stream_messages = enabled;
        Ok(())
    })
}

/// As `wsffi_client_options_set_max_fragments`, for the server's connections.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_max_fragments(options: *mut wsffi_server_options, n: usize) -> wsffi_status {
    with(options, |o| set_max_fragments(&mut o.config.conn, n))
}

/// As `wsffi_client_options_set_ping_interval_ms`, for the server's connections: clients
/// that stop answering are dropped, like the heartbeat of Node's ws. The server default is
/// 60 000 (half the default idle timeout, so a client that answers pings is never idle); 0
/// turns it off. NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_ping_interval_ms(
    options: *mut wsffi_server_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| set_ping_interval(&mut o.config.conn, ms))
}

/// As `wsffi_client_options_set_idle_timeout_ms`, for the server's connections. The server
/// default is 120 000 (120 s), so a client that goes silent cannot hold its connection
/// forever; 0 turns it off.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_idle_timeout_ms(
    options: *mut wsffi_server_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| set_idle_timeout(&mut o.config.conn, ms))
}

/// As `wsffi_client_options_set_close_timeout_ms`, for the server's connections.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_close_timeout_ms(
    options: *mut wsffi_server_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| set_close_timeout(&mut o.config.conn, ms))
}

/// As `wsffi_client_options_set_water_marks`, for the server's connections.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_water_marks(
    options: *mut wsffi_server_options,
    high: usize,
    low: usize,
) -> wsffi_status {
    with(options, |o| set_water(&mut o.config.conn, high, low))
}

/// What a server does with a client whose output passed the high-water mark: one of the
/// `WSFFI_BACKPRESSURE_*` values (a plain integer, so an unknown value is an error, not
/// undefined behaviour).
pub type wsffi_backpressure_policy = u32;
/// Refuse sends with `WSFFI_STATUS_ERR_BACKPRESSURE` until the output drains (`on_drain`);
/// `wsffi_server_broadcast` and `wsffi_server_publish` skip the client. The default.
pub const WSFFI_BACKPRESSURE_REFUSE: wsffi_backpressure_policy = 0;
/// Drop messages for the client: `wsffi_send` (text, binary, ping, pong) returns
/// `WSFFI_STATUS_ERR_DROPPED` and nothing is queued; broadcasts and publishes skip it.
/// Fragments are still refused with `WSFFI_STATUS_ERR_BACKPRESSURE` (dropping part of a
/// message would corrupt it).
pub const WSFFI_BACKPRESSURE_DROP: wsffi_backpressure_policy = 1;
/// As REFUSE, and a client that stays above the high-water mark (does not drain to the
/// low-water mark) for the grace time is closed with 1008 (policy violation).
pub const WSFFI_BACKPRESSURE_CLOSE_1008: wsffi_backpressure_policy = 2;
/// As `WSFFI_BACKPRESSURE_CLOSE_1008`, with 1013 (try again later).
pub const WSFFI_BACKPRESSURE_CLOSE_1013: wsffi_backpressure_policy = 3;

/// The slow-consumer policy of the server's connections (what uWebSockets calls
/// `closeOnBackpressureLimit`), applied when a client's unsent output passes the high-water
/// mark (`wsffi_server_options_set_water_marks`). Under every policy nothing is queued for a
/// client above the mark, so its output holds at most the mark plus the one message that
/// crossed it, and a broadcast or publish to many clients of which some do not read grows
/// memory by at most that per slow client. Messages a client misses (dropped sends,
/// broadcasts and publishes that skipped it) are counted by the library.
///
/// `policy` is a `WSFFI_BACKPRESSURE_*` value; default `WSFFI_BACKPRESSURE_REFUSE`.
/// `grace_ms` is used by the CLOSE policies only (ignored otherwise): how long a client may
/// stay above the mark; 0 closes it at once (on the reactor's next turn). The close gets
/// `on_error` (`WSFFI_STATUS_ERR_BACKPRESSURE`) then a close frame with reason "slow
/// consumer", queued behind what the client has not read yet; a client that still does not
/// read is dropped after the close timeout (`wsffi_server_options_set_close_timeout_ms`),
/// which frees its queue, and `on_close` reports the code with `was_clean` false.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER; an unknown `policy`:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER (nothing changes).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_options_set_backpressure_policy(
    options: *mut wsffi_server_options,
    policy: wsffi_backpressure_policy,
    grace_ms: u32,
) -> wsffi_status {
    with(options, |o| {
        let grace = Duration::from_millis(grace_ms.into());
        o.config.conn.backpressure = match policy {
            WSFFI_BACKPRESSURE_REFUSE => BackpressurePolicy::Refuse,
            WSFFI_BACKPRESSURE_DROP => BackpressurePolicy::Drop,
            WSFFI_BACKPRESSURE_CLOSE_1008 => BackpressurePolicy::Close { code: codes::POLICY_VIOLATION, grace },
            WSFFI_BACKPRESSURE_CLOSE_1013 => BackpressurePolicy::Close { code: codes::TRY_AGAIN_LATER, grace },
            _ => return Err(Status::ErrInvalidParameter),
        };
        Ok(())
    })
}

// ---- listener ---------------------------------------------------------------------------

/// New listener options with the defaults: backlog 1024, max request head 16 KiB (431
/// beyond), handshake timeout 10 s, no SO_REUSEPORT. The caller owns the object: free it
/// with `wsffi_listener_options_free`; NULL only if the library failed internally.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_new() -> *mut wsffi_listener_options {
    boundary!(std::ptr::null_mut(), { into_owned(Box::default()) })
}

/// Frees listener options. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_free(options: *mut wsffi_listener_options) {
    free(options)
}

/// listen(2) backlog (> 0).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_backlog(
    options: *mut wsffi_listener_options,
    backlog: i32,
) -> wsffi_status {
    with(options, |o| {
        if backlog <= 0 {
            return Err(Status::ErrInvalidParameter);
        }
        o.config.backlog = backlog;
        Ok(())
    })
}

/// Largest request head accepted (bytes, >= 256); larger requests get 431.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_max_header_bytes(
    options: *mut wsffi_listener_options,
    bytes: usize,
) -> wsffi_status {
    with(options, |o| {
        if bytes < 256 {
            return Err(Status::ErrInvalidParameter);
        }
        o.config.max_header_bytes = bytes;
        Ok(())
    })
}

/// Time a client has from accept to a decided handshake (ms, > 0); slower clients are
/// dropped and reported to `on_client_error` with `WSFFI_STATUS_ERR_TIMEOUT`.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_handshake_timeout_ms(
    options: *mut wsffi_listener_options,
    ms: u32,
) -> wsffi_status {
    with(options, |o| {
        o.config.handshake_timeout = millis(ms).ok_or(Status::ErrInvalidParameter)?;
        Ok(())
    })
}

/// Set SO_REUSEPORT before binding, so several listeners (processes or reactors) share
/// one port and the kernel spreads connections among them.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_reuse_port(
    options: *mut wsffi_listener_options,
    enabled: bool,
) -> wsffi_status {
    with(options, |o| {
        o.config.reuse_port = enabled;
        Ok(())
    })
}
