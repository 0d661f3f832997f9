//! C callback tables and the only place that calls through their function pointers.
//!
//! [`CConnEvents`] and [`CServerEvents`] implement the reactor's event traits over these
//! tables: each method checks for NULL ("not interested") and passes borrowed data for the
//! duration of the call; dropping them runs the application's `destroy`.

use std::any::Any;
use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use crate::core::session::MessageKind;
use crate::reactor::conn::{CloseReport, ConnHandle};
use crate::reactor::dispatch::WakeFn;
use crate::reactor::error::Error;
use crate::reactor::events::{ConnEvents, HttpHandler, ReconnectEvent, ServerEvents, Verdict};
use crate::reactor::server::{HandshakeHandle, HttpResponse, RequestView, ResponseView, ServerHandle};
use crate::reactor::views::cstring;

use super::close_info::{wsffi_close_info, CloseTexts};
use super::extensible::{field, Extensible};
use super::handles::{into_counted, take_counted};
use super::status::wsffi_status;

/// Runs once when user data can no longer be seen by any callback.
pub type wsffi_destroy_cb = Option<unsafe extern "C" fn(user: *mut c_void)>;
/// The connection is open; messages may follow. With reconnect on, again after every
/// successful reconnect (the getters then describe the new connection).
pub type wsffi_open_cb = Option<unsafe extern "C" fn(user: *mut c_void, conn: *mut ConnHandle)>;
/// A complete message. `data` is borrowed until the callback returns (it points into the
/// library's read buffer); text messages are valid UTF-8 and not NUL-terminated.
pub type wsffi_message_cb =
    Option<unsafe extern "C" fn(user: *mut c_void, conn: *mut ConnHandle, kind: u32, data: *const u8, len: usize)>;
/// With `wsffi_client_options_set_stream_messages` / `wsffi_server_options_set_stream_messages`
/// on, the next part of a message as it arrived, instead of one `on_message` call per
/// message. `data` (`len` bytes) is borrowed until the callback returns; for a compressed
/// message it is inflated output (at most 32 KiB per part). `is_first` marks a message's
/// first part, `is_last` its final one, which may be empty (`len` 0); an empty message is
/// one empty part with both set. Parts of text messages are validated as they arrive and
/// may end inside a UTF-8 character that the next part completes; invalid UTF-8 closes
/// the connection with 1007 and the part holding it is not delivered. No part is
/// delivered after `wsffi_close` or `wsffi_terminate` on the connection.
pub type wsffi_message_part_cb = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        conn: *mut ConnHandle,
        kind: u32,
        data: *const u8,
        len: usize,
        is_first: bool,
        is_last: bool,
    ),
>;
/// The connection ended; `info` (never NULL) says how: the code and reason that decided
/// the close, whether the peer or we sent them, both sides' close frames when known, and
/// whether the close was clean (see `struct wsffi_close_info`). `info` and its strings are
/// borrowed until the callback returns. Exactly one per connection; nothing but `destroy`
/// follows it. With reconnect on, one per conn handle: at the very end, not per lost
/// connection (those are reported by `on_reconnect`).
pub type wsffi_close_cb =
    Option<unsafe extern "C" fn(user: *mut c_void, conn: *mut ConnHandle, info: *const wsffi_close_info)>;
/// Something failed; `message` is a borrowed NUL-terminated sentence. A `close` follows.
pub type wsffi_error_cb = Option<
    unsafe extern "C" fn(user: *mut c_void, conn: *mut ConnHandle, status: wsffi_status, message: *const c_char),
>;
/// A ping or pong payload (at most 125 bytes), borrowed. Pings are answered automatically.
pub type wsffi_control_cb =
    Option<unsafe extern "C" fn(user: *mut c_void, conn: *mut ConnHandle, data: *const u8, len: usize)>;
/// The buffered amount fell to the low-water mark after having passed the high-water mark.
pub type wsffi_drain_cb = Option<unsafe extern "C" fn(user: *mut c_void, conn: *mut ConnHandle)>;
/// The server answered the upgrade with a non-101 status. The response view is borrowed.
pub type wsffi_unexpected_response_cb =
    Option<unsafe extern "C" fn(user: *mut c_void, conn: *mut ConnHandle, response: *const ResponseView)>;

/// Reconnect on (`wsffi_client_options_set_reconnect`): the connection or an attempt was
/// lost and attempt number `attempt` (1 for the first after an open connection or the first
/// dial) starts in `delay_ms`. `status` and `message` (borrowed, NUL-terminated) say why
/// the last one ended: WSFFI_STATUS_ERR_CLOSED when the server closed it with a close
/// frame, else the failure's status. `info` (borrowed, never NULL) is how the lost
/// connection closed (1006 for an attempt that never opened). Until the next `on_open`
/// the ready state is WSFFI_CONNECTING and sends return WSFFI_STATUS_ERR_RECONNECTING;
/// `wsffi_close` or `wsffi_conn_stop_reconnect` from here ends the connection instead
/// (`on_error`, then `on_close`).
pub type wsffi_reconnect_cb = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        conn: *mut ConnHandle,
        attempt: u32,
        delay_ms: u32,
        status: wsffi_status,
        message: *const c_char,
        info: *const wsffi_close_info,
    ),
>;

/// Per-connection callbacks; NULL means "not interested". The library copies the table.
/// Set `size` to `sizeof(struct wsffi_conn_callbacks)` and leave the callbacks you do not
/// want NULL: `wsffi_conn_callbacks_init(&cb, sizeof cb)`, or in C99
/// `struct wsffi_conn_callbacks cb = { .size = sizeof cb, .on_message = f };`. The size
/// rule of the header's introduction applies: fields beyond a smaller `size` read as NULL.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct wsffi_conn_callbacks {
    /// `sizeof(struct wsffi_conn_callbacks)` as the caller's header declares it.
    pub size: usize,
    /// See `wsffi_open_cb`.
    pub on_open: wsffi_open_cb,
    /// See `wsffi_message_cb`.
    pub on_message: wsffi_message_cb,
    /// See `wsffi_close_cb`.
    pub on_close: wsffi_close_cb,
    /// See `wsffi_error_cb`.
    pub on_error: wsffi_error_cb,
    /// A ping arrived (the pong is already queued).
    pub on_ping: wsffi_control_cb,
    /// A pong arrived.
    pub on_pong: wsffi_control_cb,
    /// See `wsffi_drain_cb`.
    pub on_drain: wsffi_drain_cb,
    /// Client only: see `wsffi_unexpected_response_cb`.
    pub on_unexpected_response: wsffi_unexpected_response_cb,
    /// See `wsffi_message_part_cb`: called only on connections whose options turned
    /// message streaming on; on those `on_message` is never called.
    pub on_message_part: wsffi_message_part_cb,
    /// Client only: see `wsffi_reconnect_cb`. Appended last: a caller built against a header
    /// without it passes a smaller `size` and gets none.
    pub on_reconnect: wsffi_reconnect_cb,
}

impl Default for wsffi_conn_callbacks {
    fn default() -> Self {
        wsffi_conn_callbacks {
            size: std::mem::size_of::<Self>(),
            on_open: None,
            on_message: None,
            on_close: None,
            on_error: None,
            on_ping: None,
            on_pong: None,
            on_drain: None,
            on_unexpected_response: None,
            on_message_part: None,
            on_reconnect: None,
        }
    }
}

// SAFETY: every field after `size` is listed in order; each is an optional function pointer,
// for which any bit pattern from C is a valid value (NULL is `None`).
unsafe impl Extensible for wsffi_conn_callbacks {
    const NAME: &'static str = "wsffi_conn_callbacks";
    const FIELDS: &'static [(&'static str, usize, usize)] = &[
        field!(wsffi_conn_callbacks, on_open: wsffi_open_cb),
        field!(wsffi_conn_callbacks, on_message: wsffi_message_cb),
        field!(wsffi_conn_callbacks, on_close: wsffi_close_cb),
        field!(wsffi_conn_callbacks, on_error: wsffi_error_cb),
        field!(wsffi_conn_callbacks, on_ping: wsffi_control_cb),
        field!(wsffi_conn_callbacks, on_pong: wsffi_control_cb),
        field!(wsffi_conn_callbacks, on_drain: wsffi_drain_cb),
        field!(wsffi_conn_callbacks, on_unexpected_response: wsffi_unexpected_response_cb),
        field!(wsffi_conn_callbacks, on_message_part: wsffi_message_part_cb),
        field!(wsffi_conn_callbacks, on_reconnect: wsffi_reconnect_cb),
    ];
    fn defaults() -> Self {
        Self::default()
    }
}

/// What `verify_client` returns: one of the `WSFFI_VERDICT_*` values. (A plain integer,
/// so an out-of-range value from C is a rejection, not undefined behaviour.)
pub type wsffi_verdict = u32;
/// Go on with the handshake.
pub const WSFFI_VERDICT_ACCEPT: wsffi_verdict = 0;
/// Refuse: status and reason come from `wsffi_handshake_set_reject` (default 401).
pub const WSFFI_VERDICT_REJECT: wsffi_verdict = 1;
/// Decide later, from any thread, with `wsffi_handshake_accept` or `wsffi_handshake_reject`.
pub const WSFFI_VERDICT_DEFER: wsffi_verdict = 2;

/// Decide whether to accept an upgrade. The handshake is borrowed unless the callback
/// returns `WSFFI_VERDICT_DEFER`, which hands the caller one reference that
/// `wsffi_handshake_accept`/`wsffi_handshake_reject` consume. That reference exists from
/// the moment of the call, so the callback may give the handshake to another thread that
/// decides it before the callback returns DEFER; deciding it and returning anything else
/// is a use after free.
pub type wsffi_verify_client_cb =
    Option<unsafe extern "C" fn(user: *mut c_void, handshake: *mut HandshakeHandle) -> wsffi_verdict>;
/// Pick a subprotocol: return an index into `offered` (borrowed NUL-terminated strings), or -1
/// for none. Without this callback the first offered protocol is chosen.
pub type wsffi_handle_protocols_cb = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        request: *const RequestView,
        offered: *const *const c_char,
        count: usize,
    ) -> c_int,
>;
/// Add response headers with `wsffi_handshake_add_header` before the 101 is sent.
pub type wsffi_headers_cb = Option<unsafe extern "C" fn(user: *mut c_void, handshake: *mut HandshakeHandle)>;
/// A new connection: install its callbacks with `wsffi_conn_set_callbacks` here. The conn is
/// borrowed (valid until its close callback returns); the request is borrowed for this call.
pub type wsffi_connection_cb = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        server: *mut ServerHandle,
        conn: *mut ConnHandle,
        request: *const RequestView,
    ),
>;
/// A handshake failed (bad request, rejected origin, too many connections, timeout).
pub type wsffi_server_error_cb = Option<
    unsafe extern "C" fn(user: *mut c_void, server: *mut ServerHandle, status: wsffi_status, message: *const c_char),
>;
/// The server stopped: it has no more clients and no callback of it follows but `destroy`.
pub type wsffi_server_close_cb = Option<unsafe extern "C" fn(user: *mut c_void, server: *mut ServerHandle)>;
/// A plain (non-upgrade) HTTP request on a listener. Fill the borrowed response with the
/// `wsffi_http_response_*` functions; it is sent when the callback returns, then the
/// connection closes.
pub type wsffi_http_handler_cb =
    Option<unsafe extern "C" fn(user: *mut c_void, request: *const RequestView, response: *mut HttpResponse)>;

/// Server callbacks; NULL means "not interested". The library copies the table. Set `size`
/// to `sizeof(struct wsffi_server_callbacks)` and leave the callbacks you do not want NULL:
/// `wsffi_server_callbacks_init(&cb, sizeof cb)`, or in C99
/// `struct wsffi_server_callbacks cb = { .size = sizeof cb, .on_connection = f };`. The
/// size rule of the header's introduction applies: fields beyond a smaller `size` read as
/// NULL.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct wsffi_server_callbacks {
    /// `sizeof(struct wsffi_server_callbacks)` as the caller's header declares it.
    pub size: usize,
    /// See `wsffi_verify_client_cb`. NULL accepts every client that passes the origin check.
    pub verify_client: wsffi_verify_client_cb,
    /// See `wsffi_handle_protocols_cb`.
    pub handle_protocols: wsffi_handle_protocols_cb,
    /// See `wsffi_headers_cb`.
    pub headers: wsffi_headers_cb,
    /// See `wsffi_connection_cb`.
    pub on_connection: wsffi_connection_cb,
    /// See `wsffi_server_error_cb`: handshakes that failed.
    pub on_client_error: wsffi_server_error_cb,
    /// See `wsffi_server_error_cb`: the server itself failed.
    pub on_error: wsffi_server_error_cb,
    /// See `wsffi_server_close_cb`.
    pub on_close: wsffi_server_close_cb,
}

impl Default for wsffi_server_callbacks {
    fn default() -> Self {
        wsffi_server_callbacks {
            size: std::mem::size_of::<Self>(),
            verify_client: None,
            handle_protocols: None,
            headers: None,
            on_connection: None,
            on_client_error: None,
            on_error: None,
            on_close: None,
        }
    }
}

// SAFETY: as for `wsffi_conn_callbacks`.
unsafe impl Extensible for wsffi_server_callbacks {
    const NAME: &'static str = "wsffi_server_callbacks";
    const FIELDS: &'static [(&'static str, usize, usize)] = &[
        field!(wsffi_server_callbacks, verify_client: wsffi_verify_client_cb),
        field!(wsffi_server_callbacks, handle_protocols: wsffi_handle_protocols_cb),
        field!(wsffi_server_callbacks, headers: wsffi_headers_cb),
        field!(wsffi_server_callbacks, on_connection: wsffi_connection_cb),
        field!(wsffi_server_callbacks, on_client_error: wsffi_server_error_cb),
        field!(wsffi_server_callbacks, on_error: wsffi_server_error_cb),
        field!(wsffi_server_callbacks, on_close: wsffi_server_close_cb),
    ];
    fn defaults() -> Self {
        Self::default()
    }
}

/// A `void *` that the library only carries around and hands back.
#[derive(Clone, Copy, Debug)]
pub struct UserData(pub *mut c_void);

// SAFETY: the library never dereferences user data; it only passes it back to the
// application's callbacks, and the threading contract says on which thread that happens.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

impl UserData {
    /// A NULL user data.
    pub const NONE: UserData = UserData(std::ptr::null_mut());
}

/// User data plus its optional destroy callback; runs destroy exactly once.
#[derive(Debug)]
pub struct OwnedUserData {
    user: UserData,
    destroy: wsffi_destroy_cb,
}

impl OwnedUserData {
    /// Takes ownership of `user`; `destroy` runs when this value is dropped.
    pub fn new(user: *mut c_void, destroy: wsffi_destroy_cb) -> Self {
        OwnedUserData { user: UserData(user), destroy }
    }

    /// No user data, nothing to destroy.
    pub fn none() -> Self {
        OwnedUserData { user: UserData::NONE, destroy: None }
    }

    /// Gives the pointer back to the application without calling destroy (a call that
    /// failed leaves its user data with the caller).
    pub fn release(mut self) -> UserData {
        self.destroy = None;
        self.user
    }

    /// The pointer for callbacks.
    pub fn get(&self) -> UserData {
        self.user
    }
}

impl Drop for OwnedUserData {
    fn drop(&mut self) {
        if let Some(destroy) = self.destroy.take() {
            // SAFETY: the application gave us this pair; destroy runs once, after the last
            // callback that could see the pointer (the owner drops this value only then).
            unsafe { destroy(self.user.0) };
        }
    }
}

/// Dispatch mode: events wait for `wsffi_reactor_dispatch`. Called on the reactor thread;
/// see `wsffi_reactor_options_set_wake`.
pub type wsffi_wake_cb = Option<unsafe extern "C" fn(user: *mut c_void)>;

/// The reactor's wake function over a C one; the user data is destroyed with the last copy.
pub fn wake_fn(f: unsafe extern "C" fn(user: *mut c_void), user: OwnedUserData) -> WakeFn {
    Arc::new(move || {
        // SAFETY: a C function pointer supplied by the application with this signature.
        unsafe { f(user.get().0) }
    })
}

fn conn_ptr(conn: &Arc<ConnHandle>) -> *mut ConnHandle {
    Arc::as_ptr(conn).cast_mut()
}

fn message_kind_value(kind: MessageKind) -> u32 {
    match kind {
        MessageKind::Text => 1,
        MessageKind::Binary => 2,
    }
}

/// A connection's events delivered to a C callback table; dropping it runs `destroy`.
pub struct CConnEvents {
    table: wsffi_conn_callbacks,
    user: OwnedUserData,
}

impl CConnEvents {
    /// Events for `table` (NULL entries are skipped) with `user` handed to each.
    pub fn new(table: wsffi_conn_callbacks, user: OwnedUserData) -> Self {
        CConnEvents { table, user }
    }

    /// The table of an events object made here (the empty table for any other).
    pub fn table_of(events: Option<&dyn ConnEvents>) -> wsffi_conn_callbacks {
        let any: Option<&dyn Any> = events.map(|e| e as &dyn Any);
        any.and_then(|a| a.downcast_ref::<CConnEvents>()).map(|c| c.table).unwrap_or_default()
    }

    fn user(&self) -> *mut c_void {
        self.user.get().0
    }
}

impl ConnEvents for CConnEvents {
    fn on_open(&self, conn: &Arc<ConnHandle>) {
        if let Some(f) = self.table.on_open {
            // SAFETY: a C function pointer supplied by the application with this signature.
            unsafe { f(self.user(), conn_ptr(conn)) }
        }
    }

    fn on_message(&self, conn: &Arc<ConnHandle>, kind: MessageKind, data: &[u8]) {
        if let Some(f) = self.table.on_message {
            // SAFETY: as above; `data` outlives the call.
            unsafe { f(self.user(), conn_ptr(conn), message_kind_value(kind), data.as_ptr(), data.len()) }
        }
    }

    fn on_message_part(&self, conn: &Arc<ConnHandle>, kind: MessageKind, data: &[u8], first: bool, last: bool) {
        if let Some(f) = self.table.on_message_part {
            // SAFETY: as above; `data` outlives the call.
            unsafe { f(self.user(), conn_ptr(conn), message_kind_value(kind), data.as_ptr(), data.len(), first, last) }
        }
    }

    fn on_ping(&self, conn: &Arc<ConnHandle>, data: &[u8]) {
        if let Some(f) = self.table.on_ping {
            // SAFETY: as above.
            unsafe { f(self.user(), conn_ptr(conn), data.as_ptr(), data.len()) }
        }
    }

    fn on_pong(&self, conn: &Arc<ConnHandle>, data: &[u8]) {
        if let Some(f) = self.table.on_pong {
            // SAFETY: as above.
            unsafe { f(self.user(), conn_ptr(conn), data.as_ptr(), data.len()) }
        }
    }

    fn on_drain(&self, conn: &Arc<ConnHandle>) {
        if let Some(f) = self.table.on_drain {
            // SAFETY: as above.
            unsafe { f(self.user(), conn_ptr(conn)) }
        }
    }

    fn on_unexpected_response(&self, conn: &Arc<ConnHandle>, response: &ResponseView) {
        if let Some(f) = self.table.on_unexpected_response {
            // SAFETY: as above; the view outlives the call.
            unsafe { f(self.user(), conn_ptr(conn), response) }
        }
    }

    fn on_reconnect(&self, conn: &Arc<ConnHandle>, event: &ReconnectEvent<'_>) {
        if let Some(f) = self.table.on_reconnect {
            let text = c_text(event.message);
            let texts = CloseTexts::new(event.close);
            let info = texts.info(event.close);
            let delay_ms = u32::try_from(event.delay.as_millis()).unwrap_or(u32::MAX);
            // SAFETY: as above; `text`, `info` and its texts outlive the call.
            unsafe { f(self.user(), conn_ptr(conn), event.attempt, delay_ms, event.error.into(), text.as_ptr(), &info) }
        }
    }

    fn on_error(&self, conn: &Arc<ConnHandle>, error: Error, message: &str) {
        if let Some(f) = self.table.on_error {
            let text = c_text(message);
            // SAFETY: as above; `text` is NUL-terminated and outlives the call.
            unsafe { f(self.user(), conn_ptr(conn), error.into(), text.as_ptr()) }
        }
    }

    fn on_close(&self, conn: &Arc<ConnHandle>, close: &CloseReport) {
        if let Some(f) = self.table.on_close {
            let texts = CloseTexts::new(close);
            let info = texts.info(close);
            // SAFETY: as above; `info` and the texts it points into outlive the call.
            unsafe { f(self.user(), conn_ptr(conn), &info) }
        }
    }
}

fn server_ptr(server: &Arc<ServerHandle>) -> *mut ServerHandle {
    Arc::as_ptr(server).cast_mut()
}

/// A server's events delivered to a C callback table; dropping it runs `destroy`.
pub struct CServerEvents {
    table: wsffi_server_callbacks,
    user: OwnedUserData,
}

impl CServerEvents {
    /// Events for `table` with `user` handed to each.
    pub fn new(table: wsffi_server_callbacks, user: OwnedUserData) -> Self {
        CServerEvents { table, user }
    }

    fn user(&self) -> *mut c_void {
        self.user.get().0
    }
}

impl ServerEvents for CServerEvents {
    fn verify_client(&self, handshake: &Arc<HandshakeHandle>) -> Option<Verdict> {
        let f = self.table.verify_client?;
        // The reference a DEFER verdict hands over exists before the call: the callback may
        // pass the handshake to another thread that decides it before the callback returns.
        let ptr = into_counted(handshake.clone());
        // SAFETY: a C function pointer supplied by the application with this signature.
        let raw = unsafe { f(self.user(), ptr) };
        if raw != WSFFI_VERDICT_DEFER {
            // SAFETY: the reference made above, not handed over.
            drop(unsafe { take_counted(ptr.cast_const()) });
        }
        Some(match raw {
            WSFFI_VERDICT_ACCEPT => Verdict::Accept,
            WSFFI_VERDICT_DEFER => Verdict::Defer,
            _ => Verdict::Reject,
        })
    }

    fn handle_protocols(&self, request: &RequestView, offered: &[String]) -> Option<Option<usize>> {
        let f = self.table.handle_protocols?;
        let strings: Vec<std::ffi::CString> = offered.iter().map(|p| cstring(p)).collect();
        let ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        // SAFETY: as above; the strings outlive the call.
        let chosen = unsafe { f(self.user(), request, ptrs.as_ptr(), ptrs.len()) };
        Some(usize::try_from(chosen).ok().filter(|&i| i < offered.len()))
    }

    fn headers(&self, handshake: &Arc<HandshakeHandle>) {
        if let Some(f) = self.table.headers {
            // SAFETY: as above.
            unsafe { f(self.user(), Arc::as_ptr(handshake).cast_mut()) }
        }
    }

    fn hooks_handshake(&self) -> bool {
        self.table.verify_client.is_some() || self.table.handle_protocols.is_some() || self.table.headers.is_some()
    }

    fn on_connection(&self, server: &Arc<ServerHandle>, conn: &Arc<ConnHandle>, request: &Arc<RequestView>) {
        if let Some(f) = self.table.on_connection {
            // SAFETY: as above.
            unsafe { f(self.user(), server_ptr(server), conn_ptr(conn), Arc::as_ptr(request)) }
        }
    }

    fn on_client_error(&self, server: &Arc<ServerHandle>, error: Error, message: &str) {
        if let Some(f) = self.table.on_client_error {
            let text = c_text(message);
            // SAFETY: as above.
            unsafe { f(self.user(), server_ptr(server), error.into(), text.as_ptr()) }
        }
    }

    fn on_error(&self, server: &Arc<ServerHandle>, error: Error, message: &str) {
        if let Some(f) = self.table.on_error {
            let text = c_text(message);
            // SAFETY: as above.
            unsafe { f(self.user(), server_ptr(server), error.into(), text.as_ptr()) }
        }
    }

    fn on_close(&self, server: &Arc<ServerHandle>) {
        if let Some(f) = self.table.on_close {
            // SAFETY: as above.
            unsafe { f(self.user(), server_ptr(server)) }
        }
    }
}

/// A listener's plain-HTTP handler in C.
pub struct CHttpHandler {
    /// The C function.
    pub f: unsafe extern "C" fn(user: *mut c_void, request: *const RequestView, response: *mut HttpResponse),
    /// Its user data.
    pub user: UserData,
}

impl HttpHandler for CHttpHandler {
    fn handle(&self, request: &RequestView, response: &mut HttpResponse) {
        // SAFETY: a C function pointer supplied by the application with this signature.
        unsafe { (self.f)(self.user.0, request, response) }
    }
}

/// A NUL-terminated copy of `s` (interior NULs become spaces) for C callbacks.
pub fn c_text(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s.replace('\0', " ")).unwrap_or_default()
}
