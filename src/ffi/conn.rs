//! `wsffi_connect` and everything done with a `wsffi_conn`.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::boundary::{boundary, bytes, report, static_text, status_boundary, text, write_out, wsffi_error};
use super::callbacks::{wsffi_conn_callbacks, wsffi_destroy_cb, CConnEvents, OwnedUserData};
use super::extensible::read_optional;
use super::handles::{borrowed, counted, into_counted, peek, retain, take_counted};
use super::options::wsffi_client_options;
use super::reactor::wsffi_reactor;
use super::status::{wsffi_status, Status};
use crate::core::protocol::close;
use crate::core::protocol::utf8;
use crate::core::session::MessageKind;
use crate::reactor::api;
use crate::reactor::conn::{ConnHandle, SendOp};
use crate::reactor::events::ConnEvents;
use crate::reactor::views::ResponseView;

/// Opens a client connection to a `ws://` or `wss://` URL (or `ws+unix:///path:/resource`;
/// `http://` and `https://` are taken as `ws://` and `wss://`, as browsers do).
/// `wss://` verifies the server with the TLS settings of `options` (system CAs by default);
/// TLS failures arrive as `on_error` with `WSFFI_STATUS_ERR_TLS`, then `on_close` (1006).
///
/// `options` may be NULL for defaults; `callbacks` may be NULL (no events). `user` is passed
/// to every callback; `destroy(user)` runs exactly once after the last of them, also when
/// this call fails (then before it returns, on the calling thread). On success
/// `*out_conn` receives a reference the caller owns (release it with
/// `wsffi_conn_release`); the outcome arrives as `on_open`, or `on_error` then `on_close`
/// (with `wsffi_client_options_set_reconnect`: `on_reconnect` per attempt in between, and
/// `on_open` once per successful connection).
/// Synchronous failures (bad URL, unusable TLS settings, reactor shut down) return a status and
/// fill `*out_err` when given.
/// NULL `reactor`, `url` or `out_conn`: WSFFI_STATUS_ERR_NULL_PARAMETER (`destroy` still
/// runs). `out_err` may be NULL; a detail stored there is the caller's, to free with
/// `wsffi_error_free`.
/// A `callbacks` table whose `size` breaks the size rule:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER with the reason in `*out_err`.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_connect(
    reactor: *mut wsffi_reactor,
    url: *const c_char,
    options: *const wsffi_client_options,
    callbacks: *const wsffi_conn_callbacks,
    user: *mut c_void,
    destroy: wsffi_destroy_cb,
    out_conn: *mut *mut ConnHandle,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    status_boundary!({
        // Owned from the start, so every early return runs destroy.
        let user = OwnedUserData::new(user, destroy);
        // SAFETY: NULL or a live reactor.
        let reactor = unsafe { borrowed(reactor) }?;
        if out_conn.is_null() {
            return Err(Status::ErrNullParameter);
        }
        // SAFETY: NULL or a NUL-terminated string.
        let url_text = unsafe { text(url) }?;
        // SAFETY: NULL or a live options object.
        let config = unsafe { peek(options) }.map(|o| o.config.clone()).unwrap_or_default();
        // SAFETY: NULL or a callback table of the size it declares.
        let table = unsafe { read_optional(callbacks) }
            // SAFETY: out_err is NULL or writable.
            .map_err(|m| unsafe { report(out_err, Status::ErrInvalidParameter, m) })?
            .unwrap_or_default();
        let events = |handle: &Arc<ConnHandle>| -> Box<dyn ConnEvents> {
            handle.mirror_user_data(user.get().0);
            Box::new(CConnEvents::new(table, user))
        };
        let handle = api::connect(reactor.reactor.shared(), url_text, config, events)
            // SAFETY: out_err is NULL or writable.
            .map_err(|(e, m)| unsafe { report(out_err, e.into(), m) })?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out_conn, into_counted(handle)) }
    })
}

fn message_kind(kind: u32) -> Result<MessageKind, Status> {
    match kind {
        1 => Ok(MessageKind::Text),
        2 => Ok(MessageKind::Binary),
        _ => Err(Status::ErrInvalidParameter),
    }
}

fn send(conn: *mut ConnHandle, op: SendOp, data: *const u8, len: usize) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        let conn = unsafe { counted(conn) }?;
        // SAFETY: NULL or `len` readable bytes.
        let data = unsafe { bytes(data, len) }?;
        if op == SendOp::Message(MessageKind::Text) && utf8::validate(data).is_err() {
            return Err(Status::ErrInvalidUtf8);
        }
        Ok(conn.send(op, data)?)
    })
}

/// Sends one message of `type` (`WSFFI_TEXT` or `WSFFI_BINARY`). The data is copied before
/// the call returns; text must be valid UTF-8 (`WSFFI_STATUS_ERR_INVALID_UTF8` otherwise).
/// `WSFFI_STATUS_ERR_BACKPRESSURE` means more than the high-water mark is already buffered and
/// nothing was queued: wait for `on_drain`. `WSFFI_STATUS_ERR_DROPPED` instead on a server
/// whose back-pressure policy is `WSFFI_BACKPRESSURE_DROP`: the message was thrown away (and
/// counted), not to be sent again. `WSFFI_STATUS_ERR_NOT_OPEN` while connecting,
/// `WSFFI_STATUS_ERR_RECONNECTING` while a lost connection waits to reconnect (nothing is
/// queued for the next connection), `WSFFI_STATUS_ERR_CLOSED` once closing. On the reactor thread (inside callbacks) the frame goes
/// straight into the output buffer, written once per wake-up.
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_send(conn: *mut ConnHandle, kind: u32, data: *const u8, len: usize) -> wsffi_status {
    match message_kind(kind) {
        Ok(k) => send(conn, SendOp::Message(k), data, len),
        Err(s) => s,
    }
}

/// `wsffi_send(conn, WSFFI_TEXT, data, len)`. NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER;
/// `data` may be NULL only when `len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_send_text(conn: *mut ConnHandle, data: *const c_char, len: usize) -> wsffi_status {
    send(conn, SendOp::Message(MessageKind::Text), data.cast(), len)
}

/// `wsffi_send(conn, WSFFI_BINARY, data, len)`. NULL `conn`:
/// WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_send_binary(conn: *mut ConnHandle, data: *const u8, len: usize) -> wsffi_status {
    send(conn, SendOp::Message(MessageKind::Binary), data, len)
}

/// Sends one fragment. The first fragment of a message sets its `type`; later ones are
/// continuation frames (their `type` is ignored) until one with `is_final`. Whole messages
/// sent meanwhile are refused with `WSFFI_STATUS_ERR_INVALID_PARAMETER`; control frames may
/// interleave. Text fragments are not validated one by one (a code point may span two):
/// the whole message must be valid UTF-8 or the peer closes with 1007.
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_send_fragment(
    conn: *mut ConnHandle,
    kind: u32,
    data: *const u8,
    len: usize,
    is_final: bool,
) -> wsffi_status {
    match message_kind(kind) {
        Ok(k) => send(conn, SendOp::Fragment(k, is_final), data, len),
        Err(s) => s,
    }
}

/// Sends a ping with up to 125 bytes of payload (`WSFFI_STATUS_ERR_TOO_BIG` beyond).
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_ping(conn: *mut ConnHandle, data: *const u8, len: usize) -> wsffi_status {
    if len > 125 {
        return Status::ErrTooBig;
    }
    send(conn, SendOp::Ping, data, len)
}

/// Sends an unsolicited pong with up to 125 bytes (pings are answered automatically).
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_pong(conn: *mut ConnHandle, data: *const u8, len: usize) -> wsffi_status {
    if len > 125 {
        return Status::ErrTooBig;
    }
    send(conn, SendOp::Pong, data, len)
}

/// Starts the close handshake: state CLOSING, then `on_close` when the peer answers (or
/// after the close timeout, with 1006). `code` 0 sends no status code (then `reason` must be
/// empty); otherwise 1000-1003, 1007-1014 or 3000-4999. `reason` is UTF-8, at most 123 bytes.
/// On a connection still connecting it aborts: `on_error` then `on_close` with 1006; so it
/// does while a lost connection waits to reconnect (WSFFI_STATUS_ERR_CLOSED, "closed while
/// waiting to reconnect"). With reconnect on, a connection closed this way is not dialled
/// again.
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; `reason` may be NULL only when
/// `reason_len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_close(
    conn: *mut ConnHandle,
    code: u16,
    reason: *const c_char,
    reason_len: usize,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        let conn = unsafe { counted(conn) }?;
        // SAFETY: NULL or `reason_len` readable bytes.
        let reason = unsafe { bytes(reason.cast(), reason_len) }?;
        if reason.len() > close::MAX_REASON_LEN {
            return Err(Status::ErrTooBig);
        }
        if utf8::validate(reason).is_err() {
            return Err(Status::ErrInvalidUtf8);
        }
        let code = match code {
            0 if reason.is_empty() => None,
            0 => return Err(Status::ErrInvalidParameter),
            c if close::is_sendable_code(c) => Some(c),
            _ => return Err(Status::ErrInvalidParameter),
        };
        Ok(conn.close(code, reason.to_vec())?)
    })
}

/// Drops the connection without a close handshake; `on_close` reports 1006 with
/// WSFFI_CLOSE_ORIGIN_NONE unless a close frame was already sent or received, and no error.
/// With reconnect on, no attempt follows (also when called during the wait).
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_terminate(conn: *mut ConnHandle) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        Ok(unsafe { counted(conn) }?.terminate()?)
    })
}

/// Reconnect on: makes the current connection the last. During the wait before an attempt
/// the connection ends now (`on_error` with the failure that started the wait, "reconnecting
/// stopped: ...", then `on_close`); an open connection or an attempt under way goes on, and
/// when it ends it ends as without reconnect. No effect on a conn without reconnect.
/// WSFFI_STATUS_ERR_CLOSED once closed; NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_stop_reconnect(conn: *mut ConnHandle) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        Ok(unsafe { counted(conn) }?.stop_reconnect()?)
    })
}

/// Stops reading from the peer (flow control). Messages already read may still be
/// delivered by the current callback batch; nothing more is read until `wsffi_conn_resume`.
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_pause(conn: *mut ConnHandle) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        Ok(unsafe { counted(conn) }?.set_paused(true)?)
    })
}

/// Restarts reading after `wsffi_conn_pause`.
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_resume(conn: *mut ConnHandle) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        Ok(unsafe { counted(conn) }?.set_paused(false)?)
    })
}

/// `WSFFI_CONNECTING`, `WSFFI_OPEN`, `WSFFI_CLOSING` or `WSFFI_CLOSED` (also for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_ready_state(conn: *const ConnHandle) -> u32 {
    // SAFETY: NULL or a conn with a live reference.
    boundary!(3, { unsafe { peek(conn) }.map_or(3, |c| u32::from(c.ready_state())) })
}

/// Bytes accepted by sends and not yet handed to the kernel (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_buffered_amount(conn: *const ConnHandle) -> usize {
    // SAFETY: NULL or a conn with a live reference.
    boundary!(0, { unsafe { peek(conn) }.map_or(0, |c| c.buffered_amount()) })
}

/// The server's 101 answer to a client connection's upgrade (the `upgrade` event of Node's
/// `ws`): read it with `wsffi_response_status`, `wsffi_response_header`,
/// `wsffi_response_header_at` and the other `wsffi_response_*` getters (its body is empty).
/// It belongs to the conn and is valid as long as `wsffi_protocol`'s string: while the
/// caller holds a reference to the conn or, inside a callback, until the callback returns;
/// also in dispatch mode. NULL for NULL, for a server-side connection, and before the
/// connection opened (from `on_open` on, it is there).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_handshake_response(conn: *const ConnHandle) -> *const ResponseView {
    boundary!(std::ptr::null(), {
        // SAFETY: NULL or a conn with a live reference.
        unsafe { peek(conn) }
            .and_then(|c| c.info())
            .and_then(|i| i.handshake_response.as_ref())
            .map_or(std::ptr::null(), |r| r as *const ResponseView)
    })
}

fn info_text(conn: *const ConnHandle, pick: fn(&crate::reactor::conn::ConnInfo) -> *const c_char) -> *const c_char {
    boundary!(static_text("\0"), {
        // SAFETY: NULL or a conn with a live reference.
        match unsafe { peek(conn) }.and_then(|c| c.info()) {
            Some(info) => pick(info),
            None => static_text("\0"),
        }
    })
}

/// The negotiated subprotocol, "" when none, before open or for NULL. The string belongs to
/// the conn: valid while the caller holds a reference to it (or, inside a callback, until
/// the callback returns); never NULL. With reconnect on, this and the other getters of the
/// negotiated details describe the connection that opened last; strings returned for an
/// earlier one stay valid as long as the conn.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_protocol(conn: *const ConnHandle) -> *const c_char {
    info_text(conn, |i| i.protocol.as_deref().unwrap_or(c"").as_ptr())
}

/// The negotiated extensions ("permessage-deflate; ..."), "" when none, before open or for
/// NULL. Owned by the conn and valid as long as `wsffi_protocol`; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_extensions(conn: *const ConnHandle) -> *const c_char {
    info_text(conn, |i| i.extensions.as_deref().unwrap_or(c"").as_ptr())
}

/// The peer's address ("127.0.0.1:9000", "[::1]:9000", "unix"), "" before open or for NULL.
/// Owned by the conn and valid as long as `wsffi_protocol`; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_remote_address(conn: *const ConnHandle) -> *const c_char {
    info_text(conn, |i| i.remote.as_ptr())
}

/// The ALPN protocol agreed on in the TLS handshake ("http/1.1" by default; see
/// `wsffi_client_options_set_tls_alpn` and `wsffi_listener_options_set_tls_alpn`), ""
/// without TLS or when none was agreed, before open or for NULL. Owned by the conn and
/// valid as long as `wsffi_protocol`; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_tls_alpn(conn: *const ConnHandle) -> *const c_char {
    info_text(conn, |i| i.tls_alpn.as_deref().unwrap_or(c"").as_ptr())
}

/// Subject of the TLS peer's certificate as an RFC 4514 string ("CN=localhost,O=Example"):
/// on a client the server's certificate (the one it chose by SNI at the handshake), on the
/// server side the client's (as `wsffi_request_tls_subject`). "" without TLS or a peer
/// certificate, before open or for NULL. Owned by the conn and valid as long as
/// `wsffi_protocol`; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_tls_peer_subject(conn: *const ConnHandle) -> *const c_char {
    info_text(conn, |i| i.tls_peer_subject.as_deref().unwrap_or(c"").as_ptr())
}

/// The URL (client side, normalized) or the request target (server side); "" for NULL.
/// Owned by the conn and valid as long as `wsffi_protocol`; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_url(conn: *const ConnHandle) -> *const c_char {
    boundary!(static_text("\0"), {
        // SAFETY: NULL or a conn with a live reference.
        unsafe { peek(conn) }.map_or(static_text("\0"), |c| c.url().as_ptr())
    })
}

/// Replaces the connection's callbacks (when `callbacks` is non-NULL) and its user data.
/// The previous user data's destroy runs on the reactor thread. Server applications call
/// this from `on_connection`; `on_open` then follows.
/// NULL `conn`: WSFFI_STATUS_ERR_NULL_PARAMETER; a table whose `size` breaks the size rule:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER (nothing changes, `destroy(user)` runs).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_set_callbacks(
    conn: *mut ConnHandle,
    callbacks: *const wsffi_conn_callbacks,
    user: *mut c_void,
    destroy: wsffi_destroy_cb,
) -> wsffi_status {
    status_boundary!({
        let user = OwnedUserData::new(user, destroy);
        // SAFETY: NULL or a conn with a live reference.
        let conn = unsafe { counted(conn) }?;
        // SAFETY: NULL or a table of the size it declares.
        let table = unsafe { read_optional(callbacks) }.map_err(|_| Status::ErrInvalidParameter)?;
        conn.mirror_user_data(user.get().0);
        conn.replace_events(move |old| {
            // A NULL table keeps the callbacks and replaces only the user data.
            let table = table.unwrap_or_else(|| CConnEvents::table_of(old));
            Box::new(CConnEvents::new(table, user))
        })?;
        Ok(())
    })
}

/// The user data last set for the connection (NULL for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_user_data(conn: *const ConnHandle) -> *mut c_void {
    // SAFETY: NULL or a conn with a live reference.
    boundary!(std::ptr::null_mut(), { unsafe { peek(conn) }.map_or(std::ptr::null_mut(), |c| c.user_data()) })
}

/// Takes another reference to a connection (to keep it past `on_close` or hand it to
/// another thread); returns `conn`. Give it back with `wsffi_conn_release`.
/// NULL gives NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_retain(conn: *mut ConnHandle) -> *mut ConnHandle {
    boundary!(std::ptr::null_mut(), {
        // SAFETY: NULL or a conn with a live reference.
        unsafe { retain(conn.cast_const()) };
        conn
    })
}

/// Gives back one reference (from `wsffi_connect` or `wsffi_conn_retain`). Releasing does
/// not close the connection. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_release(conn: *mut ConnHandle) {
    boundary!((), {
        // SAFETY: the caller gives up a reference it owns.
        drop(unsafe { take_counted(conn.cast_const()) });
    })
}
