//! Library-wide functions, reactors and error details.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{boundary, report, static_text, status_boundary, write_out, wsffi_error};
use super::handles::{borrowed, free_owned, into_owned, owned, peek};
use super::status::{wsffi_status, Status};
use crate::reactor::config::ReactorConfig;
use crate::reactor::Reactor;

/// Ready state: connecting or handshaking.
pub const WSFFI_CONNECTING: u32 = 0;
/// Ready state: open.
pub const WSFFI_OPEN: u32 = 1;
/// Ready state: close handshake under way.
pub const WSFFI_CLOSING: u32 = 2;
/// Ready state: closed.
pub const WSFFI_CLOSED: u32 = 3;
/// Message type: UTF-8 text.
pub const WSFFI_TEXT: u32 = 1;
/// Message type: binary.
pub const WSFFI_BINARY: u32 = 2;
/// Opcode: continuation frame.
pub const WSFFI_OPCODE_CONTINUE: u32 = 0;
/// Opcode: text frame.
pub const WSFFI_OPCODE_TEXT: u32 = 1;
/// Opcode: binary frame.
pub const WSFFI_OPCODE_BINARY: u32 = 2;
/// Opcode: close frame.
pub const WSFFI_OPCODE_CLOSE: u32 = 8;
/// Opcode: ping frame.
pub const WSFFI_OPCODE_PING: u32 = 9;
/// Opcode: pong frame.
pub const WSFFI_OPCODE_PONG: u32 = 10;
/// Close code: normal closure.
pub const WSFFI_CLOSE_NORMAL: u16 = 1000;
/// Close code: endpoint going away.
pub const WSFFI_CLOSE_GOING_AWAY: u16 = 1001;
/// Close code: protocol error.
pub const WSFFI_CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code: unsupported data type.
pub const WSFFI_CLOSE_UNSUPPORTED_DATA: u16 = 1003;
/// Close code (reported only): no status code in the close frame.
pub const WSFFI_CLOSE_NO_STATUS: u16 = 1005;
/// Close code (reported only): no close frame at all.
pub const WSFFI_CLOSE_ABNORMAL: u16 = 1006;
/// Close code: invalid payload data (bad UTF-8).
pub const WSFFI_CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code: policy violation.
pub const WSFFI_CLOSE_POLICY_VIOLATION: u16 = 1008;
/// Close code: message too big.
pub const WSFFI_CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
/// Close code: a required extension is missing.
pub const WSFFI_CLOSE_MANDATORY_EXTENSION: u16 = 1010;
/// Close code: internal server error.
pub const WSFFI_CLOSE_INTERNAL_ERROR: u16 = 1011;
/// Close code: service restart.
pub const WSFFI_CLOSE_SERVICE_RESTART: u16 = 1012;
/// Close code: try again later.
pub const WSFFI_CLOSE_TRY_AGAIN_LATER: u16 = 1013;
/// Close code: bad gateway.
pub const WSFFI_CLOSE_BAD_GATEWAY: u16 = 1014;
/// Close code (reported only): TLS handshake failure.
pub const WSFFI_CLOSE_TLS_HANDSHAKE: u16 = 1015;

/// The library version, "MAJOR.MINOR.PATCH". Static, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_version() -> *const c_char {
    static_text(concat!(env!("CARGO_PKG_VERSION"), "\0"))
}

/// The library version as `MAJOR << 16 | MINOR << 8 | PATCH` (compare with
/// `WSFFI_VERSION_NUMBER` to detect a header/library mismatch).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_version_number() -> u32 {
    version_number()
}

/// The packed version computed from Cargo's version fields.
pub fn version_number() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    (part(env!("CARGO_PKG_VERSION_MAJOR")) << 16)
        | (part(env!("CARGO_PKG_VERSION_MINOR")) << 8)
        | part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// A static description of a status code; "unknown status" for values not in
/// `wsffi_status`. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_status_str(status: u32) -> *const c_char {
    boundary!(static_text("unknown status\0"), { static_text(status_text(status)) })
}

fn status_text(raw: u32) -> &'static str {
    use super::status::wsffi_status::*;
    const ALL: [Status; 29] = [
        Status::Ok,
        ErrNullParameter,
        ErrInvalidParameter,
        ErrInvalidUtf8,
        ErrInvalidUrl,
        ErrTooBig,
        ErrUnsupported,
        ErrNotOpen,
        ErrClosed,
        ErrBackpressure,
        ErrCalledFromCallback,
        ErrShutDown,
        ErrAlreadyDone,
        ErrQueueFull,
        ErrReconnecting,
        ErrDropped,
        ErrProtocol,
        ErrHandshake,
        ErrHandshakeRejected,
        ErrMessageTooBig,
        ErrIo,
        ErrDns,
        ErrConnectionRefused,
        ErrTimeout,
        ErrAddressInUse,
        ErrConnectionReset,
        ErrTls,
        ErrInternal,
        ErrPanic,
    ];
    ALL.iter().find(|s| **s as u32 == raw).map_or("unknown status\0", |s| s.text())
}

/// The status of an error detail; WSFFI_STATUS_ERR_NULL_PARAMETER for NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_error_status(err: *const wsffi_error) -> wsffi_status {
    // SAFETY: NULL or a live error from this library.
    boundary!(Status::ErrPanic, { unsafe { peek(err) }.map_or(Status::ErrNullParameter, |e| e.status) })
}

/// The message of an error detail: a NUL-terminated sentence owned by `err`, valid until
/// `wsffi_error_free(err)`. "" (static) for NULL; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_error_message(err: *const wsffi_error) -> *const c_char {
    // SAFETY: NULL or a live error from this library.
    boundary!(static_text("\0"), { unsafe { peek(err) }.map_or(static_text("\0"), |e| e.message.as_ptr()) })
}

/// Frees an error detail. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_error_free(err: *mut wsffi_error) {
    // SAFETY: NULL or a detail from `report`; the caller gives it up.
    boundary!((), { unsafe { free_owned(err) } })
}

/// Reactor options. Not safe for concurrent mutation; the reactor copies them.
#[derive(Default)]
pub struct wsffi_reactor_options {
    pub(crate) config: ReactorConfig,
}

/// New reactor options with defaults: at most 1,048,576 queued commands from other threads,
/// 2000 ms shutdown grace. The caller owns the object: free it with
/// `wsffi_reactor_options_free`; NULL only if the library failed internally.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_options_new() -> *mut wsffi_reactor_options {
    boundary!(std::ptr::null_mut(), { into_owned(Box::default()) })
}

/// Frees reactor options. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_options_free(options: *mut wsffi_reactor_options) {
    // SAFETY: NULL or options from wsffi_reactor_options_new; the caller gives them up.
    boundary!((), { unsafe { free_owned(options) } })
}

/// Most commands (sends, closes...) from other threads that may wait for the reactor;
/// beyond it calls return `WSFFI_STATUS_ERR_QUEUE_FULL`. Must be at least 1.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_options_set_max_queued_commands(
    options: *mut wsffi_reactor_options,
    n: usize,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live options object.
        let o = unsafe { owned(options) }?;
        if n == 0 {
            return Err(Status::ErrInvalidParameter);
        }
        o.config.max_queued_commands = n;
        Ok(())
    })
}

/// How long `wsffi_reactor_free` lets open connections finish their close handshake
/// before dropping them (milliseconds).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_options_set_shutdown_grace_ms(
    options: *mut wsffi_reactor_options,
    ms: u32,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live options object.
        let o = unsafe { owned(options) }?;
        o.config.shutdown_grace = Duration::from_millis(ms.into());
        Ok(())
    })
}

/// A reactor: one thread that owns all sockets, timers and callbacks of its connections.
pub struct wsffi_reactor {
    pub(crate) reactor: Reactor,
}

/// Starts a reactor thread. `options` may be NULL for defaults. On success `*out_reactor`
/// receives the reactor, to be freed with `wsffi_reactor_free`.
/// NULL `out_reactor`: WSFFI_STATUS_ERR_NULL_PARAMETER. `out_err` may be NULL; a detail
/// stored there is the caller's, to free with `wsffi_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_new(
    options: *const wsffi_reactor_options,
    out_reactor: *mut *mut wsffi_reactor,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    status_boundary!({
        if out_reactor.is_null() {
            return Err(Status::ErrNullParameter);
        }
        // SAFETY: NULL or a live options object.
        let config = unsafe { peek(options) }.map(|o| o.config.clone()).unwrap_or_default();
        match Reactor::start(config) {
            Ok(reactor) => {
                let r = into_owned(Box::new(wsffi_reactor { reactor }));
                // SAFETY: checked non-NULL above.
                unsafe { write_out(out_reactor, r) }
            }
            // SAFETY: out_err is NULL or writable.
            Err(e) => Err(unsafe { report(out_err, Status::ErrIo, format!("start reactor: {e}")) }),
        }
    })
}

/// Closes every listener and connection of the reactor (connections get a 1001 close frame
/// and up to the shutdown grace to answer), delivers every remaining callback and destroy,
/// joins the thread, then frees the reactor. After it returns no callback of this reactor
/// runs again. In dispatch mode the callbacks still waiting run on the calling thread before
/// it returns; called from a dispatched callback, they run before the
/// `wsffi_reactor_dispatch` in progress returns. Called from a callback on the reactor
/// thread it does nothing and returns `WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK`. Handles still retained stay valid (every call on them
/// returns `WSFFI_STATUS_ERR_CLOSED` or `WSFFI_STATUS_ERR_SHUT_DOWN`) until released. NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_free(reactor: *mut wsffi_reactor) -> wsffi_status {
    status_boundary!({
        if reactor.is_null() {
            return Ok(());
        }
        // SAFETY: a live reactor from wsffi_reactor_new.
        let r = unsafe { borrowed(reactor.cast_const()) }?;
        r.reactor.stop()?;
        // SAFETY: the caller gives the reactor up.
        unsafe { free_owned(reactor) };
        Ok(())
    })
}
