//! Dispatch mode in C: the options that turn it on, the descriptor to poll, and the call
//! that runs waiting callbacks on the application's thread.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::sync::Arc;

use super::boundary::{boundary, status_boundary, write_out};
use super::callbacks::{wake_fn, wsffi_destroy_cb, wsffi_wake_cb, OwnedUserData};
use super::handles::{borrowed, owned, peek};
use super::reactor::{wsffi_reactor, wsffi_reactor_options};
use super::status::{wsffi_status, Status};
use crate::reactor::config::DispatchSettings;
use crate::reactor::dispatch::RunError;

/// Dispatch mode on (`true`) or off (the default). In dispatch mode no callback runs on the
/// reactor thread: each event waits in a queue until the application calls
/// `wsffi_reactor_dispatch` on a thread of its own (the dispatching thread), which runs it
/// there. `wsffi_reactor_fd` is readable while events wait; a wake callback
/// (`wsffi_reactor_options_set_wake`) serves loops that cannot poll a descriptor.
///
/// What stays the same: per connection and per server, callbacks run one at a time, in the
/// order the events happened; `on_close` is the last callback of a connection and runs
/// exactly once, then `destroy`; the `conn`, `server` and `handshake` pointers a callback
/// receives are live until it returns. What changes: a message's `data`, a ping or pong
/// payload, an error message, a close reason and a response view are the library's copies,
/// valid until the callback returns; `verify_client`, `handle_protocols` and `headers` run
/// on the dispatching thread while the handshake waits (under its handshake timeout), and a
/// `verify_client` that returns `WSFFI_VERDICT_DEFER` has `handle_protocols` and `headers`
/// called right after it; plain HTTP handlers run there too. Callbacks installed with
/// `wsffi_conn_set_callbacks` from `on_connection` receive every event of that connection
/// that follows, including those that arrived before the call. Functions that block (such
/// as `wsffi_reactor_free`) may be called from dispatched callbacks.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_options_set_dispatch(
    options: *mut wsffi_reactor_options,
    enabled: bool,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live options object.
        let o = unsafe { owned(options) }?;
        o.config.dispatch = enabled.then(|| o.config.dispatch.take().unwrap_or_default());
        Ok(())
    })
}

/// Turns dispatch mode on and sets a function the reactor thread calls when events start
/// waiting, for loops that cannot poll `wsffi_reactor_fd` (it might post a task or signal
/// an async handle). It is called at most once per batch of events, and not again until a
/// `wsffi_reactor_dispatch` call has started: answer each wake with dispatch calls until one
/// runs fewer than its `max`. It runs on the reactor thread, so it must be quick, must not
/// block, and may call only `wsffi_reactor_fd` of this library. `user` is handed to it;
/// `destroy` (may be NULL) runs once, when neither these options nor a reactor made from
/// them can call `wake` any more. NULL `wake` turns the wake function off again (and
/// destroys the previous one's user data, once unused).
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER (and `destroy` is not called).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_options_set_wake(
    options: *mut wsffi_reactor_options,
    wake: wsffi_wake_cb,
    user: *mut c_void,
    destroy: wsffi_destroy_cb,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live options object.
        let o = unsafe { owned(options) }?;
        let user = OwnedUserData::new(user, destroy);
        let wake = wake.map(|f| wake_fn(f, user));
        o.config.dispatch = Some(DispatchSettings { wake });
        Ok(())
    })
}

/// The descriptor that is readable while dispatched events wait: add it to poll, epoll,
/// asyncio's `add_reader` or a GUI loop, and call `wsffi_reactor_dispatch` when it is
/// readable. It belongs to the reactor (never read, write or close it) and is valid until
/// `wsffi_reactor_free` returns; take it out of your poll set before that.
/// Returns -1 for NULL or for a reactor not in dispatch mode.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_fd(reactor: *const wsffi_reactor) -> c_int {
    boundary!(-1, {
        // SAFETY: NULL or a live reactor.
        let fd: Option<RawFd> =
            unsafe { peek(reactor) }.and_then(|r| r.reactor.shared().dispatch_queue().map(|q| q.fd()));
        fd.unwrap_or(-1)
    })
}

/// Runs up to `max` waiting callbacks on the calling thread, in order, and stores how many
/// ran in `*out_ran` (`out_ran` may be NULL). When it ran `max`, more may wait (the
/// descriptor stays readable until none does). Calls from several threads take turns.
/// `max` 0 runs nothing. The reactor may be freed from one of the callbacks it runs: the
/// remaining callbacks then run before this call returns, and it touches the reactor no
/// more. NULL `reactor`: WSFFI_STATUS_ERR_NULL_PARAMETER. A reactor not in dispatch mode:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER. Called from a callback it is running:
/// WSFFI_STATUS_ERR_CALLED_FROM_CALLBACK, and nothing runs.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_reactor_dispatch(reactor: *mut wsffi_reactor, max: usize, out_ran: *mut usize) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live reactor.
        let r = unsafe { borrowed(reactor.cast_const()) }?;
        // Its own reference: a callback may free the reactor while the queue still runs.
        let queue = Arc::clone(r.reactor.shared().dispatch_queue().ok_or(Status::ErrInvalidParameter)?);
        let ran = queue.run(max).map_err(|RunError::Reentrant| Status::ErrCalledFromCallback)?;
        if !out_ran.is_null() {
            // SAFETY: non-NULL, writable per the contract.
            unsafe { write_out(out_ran, ran) }?;
        }
        Ok(())
    })
}
