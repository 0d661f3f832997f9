//! Timers on the reactor: `wsffi_reactor_add_timer` and `wsffi_reactor_cancel_timer`.

use std::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::boundary::{status_boundary, write_out};
use super::callbacks::{wsffi_destroy_cb, OwnedUserData, UserData};
use super::handles::borrowed;
use super::reactor::wsffi_reactor;
use super::status::{wsffi_status, Status};
use crate::reactor::api;

/// A timer's callback: `timer` is the id `wsffi_reactor_add_timer` stored (so a callback can
/// cancel itself), `user` the pointer given there.
pub type wsffi_timer_cb = Option<unsafe extern "C" fn(timer: u64, user: *mut c_void)>;

/// Runs `cb` once after `delay_ms` milliseconds (0: at the reactor's next turn), then, when
/// `repeat_ms` is not 0, every `repeat_ms` milliseconds until cancelled. A repeating timer
/// that falls behind (a slow callback) runs once and goes on one interval later; it never
/// runs twice in a burst to catch up. Callbacks run where the reactor's other callbacks run:
/// on the reactor thread, or in dispatch mode on the dispatching thread (a dispatcher that
/// falls behind gets one run per timer, however many intervals passed). From a callback,
/// they may send, close, add and cancel timers.
///
/// On success `*out_timer` receives the timer's id (never 0, never reused by this reactor),
/// for `wsffi_reactor_cancel_timer`; `out_timer` may be NULL for a timer that is never
/// cancelled. `destroy` (may be NULL) runs exactly once with `user`, after the last run of a
/// one-shot timer, when the timer is cancelled, or when `wsffi_reactor_free` stops the
/// reactor, where callbacks run; it is not called when this function fails.
/// NULL `reactor` or `cb`: WSFFI_STATUS_ERR_NULL_PARAMETER. A reactor that is shutting down:
/// WSFFI_STATUS_ERR_SHUT_DOWN. May block briefly while the reactor thread takes the timer.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_add_timer(
    reactor: *const wsffi_reactor,
    delay_ms: u64,
    repeat_ms: u64,
    cb: wsffi_timer_cb,
    user: *mut c_void,
    destroy: wsffi_destroy_cb,
    out_timer: *mut u64,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live reactor.
        let r = unsafe { borrowed(reactor) }?;
        let cb = cb.ok_or(Status::ErrNullParameter)?;
        // Held by the callback; taken back (and disarmed) when the reactor refuses the timer.
        let owner = Arc::new(Mutex::new(Some(OwnedUserData::new(user, destroy))));
        let held = owner.clone();
        let user = UserData(user);
        let callback = Box::new(move |id: u64| {
            let (_owner, user) = (&held, user);
            // SAFETY: a C function pointer supplied by the application with this signature.
            unsafe { cb(id, user.0) }
        });
        let repeat = (repeat_ms > 0).then(|| Duration::from_millis(repeat_ms));
        match api::add_timer(r.reactor.shared(), Duration::from_millis(delay_ms), repeat, callback) {
            Ok(id) => {
                if !out_timer.is_null() {
                    // SAFETY: checked non-NULL; the caller passes a writable u64.
                    unsafe { write_out(out_timer, id) }?;
                }
                Ok(())
            }
            Err((error, _)) => {
                if let Some(owned) = owner.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    owned.release();
                }
                Err(error.into())
            }
        }
    })
}

/// Cancels a timer. Once it returns, the callback does not start again; called from the
/// timer's own callback, that run completes. `destroy` runs where callbacks run (right away
/// on the reactor thread when no run is under way). In dispatch mode, a cancel from a thread
/// other than the dispatching one can meet a run that already started there.
/// WSFFI_STATUS_ERR_ALREADY_DONE when the timer ran its last time (a one-shot that fired) or
/// was cancelled before, or is not one of this reactor's. NULL `reactor`:
/// WSFFI_STATUS_ERR_NULL_PARAMETER. A reactor that is shutting down:
/// WSFFI_STATUS_ERR_SHUT_DOWN (its timers are cancelled anyway).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_cancel_timer(reactor: *const wsffi_reactor, timer: u64) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live reactor.
        let r = unsafe { borrowed(reactor) }?;
        api::cancel_timer(r.reactor.shared(), timer)?;
        Ok(())
    })
}
