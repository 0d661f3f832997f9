//! The library's log, for C: `wsffi_set_log_callback`.

use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use super::boundary::status_boundary;
use super::callbacks::{wsffi_destroy_cb, OwnedUserData};
use super::status::{wsffi_status, Status};
use crate::reactor::log::{set_sink, Level, LogFn};

/// Log level: nothing (the default).
pub const WSFFI_LOG_OFF: u32 = 0;
/// Log level: the library cannot do its job (a listener that cannot accept connections).
pub const WSFFI_LOG_ERROR: u32 = 1;
/// Log level: a connection failed (protocol errors with the close code sent, TLS failures,
/// DNS, refused or reset connections, failed client handshakes).
pub const WSFFI_LOG_WARN: u32 = 2;
/// Log level: connections opening (with protocol and extensions), clients refused by a
/// server and why, timeouts.
pub const WSFFI_LOG_INFO: u32 = 3;
/// Log level: every close (code, reason, who closed first, clean or not) and every HTTP
/// answer a listener writes.
pub const WSFFI_LOG_DEBUG: u32 = 4;

/// A log function: `level` is one of `WSFFI_LOG_ERROR` ... `WSFFI_LOG_DEBUG`, `message` a
/// NUL-terminated line without a newline, owned by the library and valid until the
/// function returns; `user` the pointer given to `wsffi_set_log_callback`.
pub type wsffi_log_cb = Option<unsafe extern "C" fn(level: u32, message: *const c_char, user: *mut c_void)>;

/// Sends the library's log records at `level` and more severe ones to `cb`, for every
/// reactor of the process; `WSFFI_LOG_OFF` or a NULL `cb` turns the log off (the default).
/// While it is off, or for records more detailed than `level`, nothing is formatted.
///
/// Records about connections are delivered on their reactor's thread, between events (also
/// in dispatch mode), so `cb` may call any function of the library that a callback may call,
/// including this one; records of other threads arrive on those threads. Several reactors
/// call `cb` concurrently: it must be thread-safe. Text from peers (URLs, close reasons) is
/// quoted with control characters escaped.
///
/// `destroy` (may be NULL) runs once with `user` when the callback is replaced or turned off
/// and no call to it is under way (possibly on a library thread); when this call turns the
/// log off it runs at once; it is not called when this function fails. A level above `WSFFI_LOG_DEBUG`: WSFFI_STATUS_ERR_INVALID_PARAMETER (the
/// current setting stays).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_set_log_callback(
    level: u32,
    cb: wsffi_log_cb,
    user: *mut c_void,
    destroy: wsffi_destroy_cb,
) -> wsffi_status {
    status_boundary!({
        if level > WSFFI_LOG_DEBUG {
            return Err(Status::ErrInvalidParameter);
        }
        let owned = OwnedUserData::new(user, destroy);
        let (Some(cb), Some(level)) = (cb, Level::from_number(level)) else {
            set_sink(None);
            // Turning the log off keeps nothing: this user data ends now.
            drop(owned);
            return Ok(());
        };
        let sink: LogFn = Arc::new(move |level: Level, text: &str| {
            let line =
                CString::new(text).unwrap_or_else(|_| CString::new(text.replace('\0', "\\0")).unwrap_or_default());
            // SAFETY: a C function pointer supplied by the application with this signature;
            // `line` outlives the call.
            unsafe { cb(level as u32, line.as_ptr(), owned.get().0) }
        });
        set_sink(Some((level, sink)));
        Ok(())
    })
}
