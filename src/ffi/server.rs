//! Listeners, servers attached to them, server-side handshakes and plain HTTP answers.

use std::ffi::{c_char, c_void};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::boundary::{boundary, bytes, opt_text, report, static_text, status_boundary, text, write_out, wsffi_error};
use super::callbacks::{
    wsffi_destroy_cb, wsffi_http_handler_cb, wsffi_server_callbacks, CHttpHandler, CServerEvents, OwnedUserData,
    UserData,
};
use super::extensible::read_optional;
use super::handles::{counted, into_counted, lent_mut, peek, take_counted};
use super::options::{wsffi_listener_options, wsffi_server_options};
use super::reactor::wsffi_reactor;
use super::status::{wsffi_status, Status};
use crate::core::handshake::redirect::is_redirect_status;
use crate::core::handshake::response::{check_app_response_header, check_header};
use crate::core::session::MessageKind;
use crate::reactor::api;
use crate::reactor::conn::ConnHandle;
use crate::reactor::server::{HandshakeHandle, HttpResponse, ListenerHandle, RequestView, ServerHandle};

/// Hands a new listener to the caller.
fn listener_out(
    result: Result<Arc<ListenerHandle>, api::Failure>,
    out_listener: *mut *mut ListenerHandle,
    out_err: *mut *mut wsffi_error,
) -> Result<(), Status> {
    // SAFETY: out_err is NULL or writable.
    let handle = result.map_err(|(e, m)| unsafe { report(out_err, e.into(), m) })?;
    // SAFETY: checked non-NULL by the callers.
    unsafe { write_out(out_listener, into_counted(handle)) }
}

/// Listens on `address`: "127.0.0.1:8080", "0.0.0.0:0" (port 0 picks a free port, see
/// `wsffi_listener_port`), "[::1]:9000", "localhost:9000" or "unix:/path/to.sock".
/// `options` may be NULL. With a TLS certificate in `options`
/// (`wsffi_listener_options_set_tls_cert_*`) every connection speaks TLS; TLS settings that
/// do not fit together (client CAs without a certificate) fail here with `WSFFI_STATUS_ERR_TLS`. On
/// success `*out_listener` must later go to `wsffi_listener_close`.
/// NULL `reactor`, `address` or `out_listener`: WSFFI_STATUS_ERR_NULL_PARAMETER. `out_err`
/// may be NULL; a detail stored there is the caller's, to free with `wsffi_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listen(
    reactor: *mut wsffi_reactor,
    address: *const c_char,
    options: *const wsffi_listener_options,
    out_listener: *mut *mut ListenerHandle,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live reactor.
        let reactor = unsafe { peek(reactor) }.ok_or(Status::ErrNullParameter)?;
        if out_listener.is_null() {
            return Err(Status::ErrNullParameter);
        }
        // SAFETY: NULL or a NUL-terminated string.
        let address = unsafe { text(address) }?;
        // SAFETY: NULL or a live options object.
        let config = unsafe { peek(options) }.map(|o| o.config.clone()).unwrap_or_default();
        listener_out(api::listen(reactor.reactor.shared(), address, config), out_listener, out_err)
    })
}

/// Serves on a socket that is already bound and listening (systemd socket activation, a
/// socket inherited from a parent). Ownership of `fd` passes to the listener, also on error
/// (then it is closed).
/// NULL `reactor` or `out_listener`: WSFFI_STATUS_ERR_NULL_PARAMETER (`fd` is closed);
/// `options` may be NULL for defaults, `out_err` NULL for no detail.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_adopt_fd(
    reactor: *mut wsffi_reactor,
    fd: i32,
    options: *const wsffi_listener_options,
    out_listener: *mut *mut ListenerHandle,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    status_boundary!({
        if fd < 0 {
            return Err(Status::ErrInvalidParameter);
        }
        // SAFETY: the caller hands over an open socket descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // SAFETY: NULL or a live reactor.
        let reactor = unsafe { peek(reactor) }.ok_or(Status::ErrNullParameter)?;
        if out_listener.is_null() {
            return Err(Status::ErrNullParameter);
        }
        // SAFETY: NULL or a live options object.
        let config = unsafe { peek(options) }.map(|o| o.config.clone()).unwrap_or_default();
        listener_out(api::adopt_listener(reactor.reactor.shared(), fd, config), out_listener, out_err)
    })
}

/// The bound port (0 for Unix sockets and NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_port(listener: *const ListenerHandle) -> u16 {
    // SAFETY: NULL or a live listener.
    boundary!(0, { unsafe { peek(listener) }.map_or(0, |l| l.port) })
}

/// The bound address ("127.0.0.1:43121", "unix:/path"). The string belongs to the listener
/// and stays valid until `wsffi_listener_close(listener)`; "" (static) for NULL; never
/// NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_address(listener: *const ListenerHandle) -> *const c_char {
    // SAFETY: NULL or a live listener.
    boundary!(static_text("\0"), { unsafe { peek(listener) }.map_or(static_text("\0"), |l| l.address.as_ptr()) })
}

/// Handles plain (non-upgrade) HTTP requests on this listener: `handler` fills the response,
/// which is sent when it returns; then the connection closes. Without a handler such
/// requests get 426 on a WebSocket path and 404 elsewhere. NULL `handler` removes it.
/// Once `wsffi_listener_close` returns the handler is not called again, and `user` may be
/// freed: requests still arriving on connections it accepted are answered as without a handler (in dispatch
/// mode, calls already queued still run at the next `wsffi_reactor_dispatch`).
/// NULL `listener`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_set_http_handler(
    listener: *mut ListenerHandle,
    handler: wsffi_http_handler_cb,
    user: *mut c_void,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live listener.
        let listener = unsafe { counted(listener.cast_const()) }?;
        let handler = handler.map(|f| Arc::new(CHttpHandler { f, user: UserData(user) }));
        let l = Arc::clone(&listener);
        listener.shared.run_sync(move |lp| match lp.listener_of(&l) {
            Some(listener) => {
                *listener.http.borrow_mut() = handler.map(|h| h as Arc<dyn crate::reactor::events::HttpHandler>);
                Ok(())
            }
            None => Err(Status::ErrClosed),
        })?
    })
}

/// Stops listening and frees the handle (connections already accepted go on; servers
/// attached stay until `wsffi_server_close`). NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_close(listener: *mut ListenerHandle) -> wsffi_status {
    status_boundary!({
        // SAFETY: the caller gives up its reference.
        let Some(listener) = (unsafe { take_counted(listener.cast_const()) }) else { return Ok(()) };
        if listener.is_closed() {
            return Ok(());
        }
        let l = listener.clone();
        let _ = listener.shared.run_sync(move |lp| {
            if let Some(x) = lp.listener_of(&l) {
                lp.remove_listener(&x);
            }
        });
        Ok(())
    })
}

/// Attaches a WebSocket server at `path` ("/" when NULL; exact match on the request path)
/// to `listener`, or with a NULL listener creates a standalone server fed by
/// `wsffi_server_handle_upgrade`. `options` and `callbacks` may be NULL. `destroy(user)` runs
/// once after the server's last callback (`on_close`), also when this call fails. On
/// success `*out_server` must later go to `wsffi_server_close`.
/// NULL `reactor` or `out_server`: WSFFI_STATUS_ERR_NULL_PARAMETER. A `callbacks` table
/// whose `size` breaks the size rule: WSFFI_STATUS_ERR_INVALID_PARAMETER with the reason in
/// `*out_err`. `out_err` may be NULL; a detail stored there is the caller's, to free with
/// `wsffi_error_free`.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_attach(
    reactor: *mut wsffi_reactor,
    listener: *mut ListenerHandle,
    path: *const c_char,
    options: *const wsffi_server_options,
    callbacks: *const wsffi_server_callbacks,
    user: *mut c_void,
    destroy: wsffi_destroy_cb,
    out_server: *mut *mut ServerHandle,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    status_boundary!({
        let user = OwnedUserData::new(user, destroy);
        // SAFETY: NULL or a live reactor.
        let reactor = unsafe { peek(reactor) }.ok_or(Status::ErrNullParameter)?;
        if out_server.is_null() {
            return Err(Status::ErrNullParameter);
        }
        // SAFETY: NULL or a NUL-terminated string.
        let path = unsafe { opt_text(path) }?.unwrap_or("/").to_string();
        if !path.starts_with('/') {
            // SAFETY: out_err is NULL or writable.
            return Err(unsafe {
                report(out_err, Status::ErrInvalidParameter, format!("path must start with '/': {path}"))
            });
        }
        // SAFETY: NULL or a live options object.
        let config = unsafe { peek(options) }.map(|o| o.config.clone()).unwrap_or_default();
        // SAFETY: NULL or a table of the size it declares.
        let table = unsafe { read_optional(callbacks) }
            // SAFETY: out_err is NULL or writable.
            .map_err(|m| unsafe { report(out_err, Status::ErrInvalidParameter, m) })?
            .unwrap_or_default();
        let listener = if listener.is_null() {
            None
        } else {
            // SAFETY: a live listener.
            Some(Arc::clone(&*unsafe { counted(listener.cast_const()) }?))
        };
        let events = Box::new(CServerEvents::new(table, user));
        let handle = api::attach_server(reactor.reactor.shared(), listener, path, config, events)
            // SAFETY: out_err is NULL or writable.
            .map_err(|(e, m)| unsafe { report(out_err, e.into(), m) })?;
        // SAFETY: checked non-NULL above.
        unsafe { write_out(out_server, into_counted(handle)) }
    })
}

/// Hands an upgrade request that the application's own HTTP server already read to
/// `server`: `fd` is the connected socket (ownership passes to wsffi, also on error) and
/// `head` the bytes read so far (the request head and anything after it). The handshake then
/// runs as for a listener: `verify_client`, `on_connection`, ...
/// NULL `server`: WSFFI_STATUS_ERR_NULL_PARAMETER (`fd` is closed); `head` may be NULL only
/// when `head_len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_handle_upgrade(
    server: *mut ServerHandle,
    fd: i32,
    head: *const u8,
    head_len: usize,
) -> wsffi_status {
    status_boundary!({
        if fd < 0 {
            return Err(Status::ErrInvalidParameter);
        }
        // SAFETY: the caller hands over a connected socket descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // SAFETY: NULL or a live server.
        let server = unsafe { counted(server.cast_const()) }?;
        // SAFETY: NULL or `head_len` readable bytes.
        let head = unsafe { bytes(head, head_len) }?.to_vec();
        Ok(api::adopt_upgrade(&server, fd, head)?)
    })
}

/// The path the server answers. The string belongs to the server and stays valid until
/// `wsffi_server_close(server)`; "" (static) for NULL; never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_path(server: *const ServerHandle) -> *const c_char {
    // SAFETY: NULL or a live server.
    boundary!(static_text("\0"), { unsafe { peek(server) }.map_or(static_text("\0"), |s| s.path.as_ptr()) })
}

/// Number of open connections of the server (0 for NULL).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_client_count(server: *const ServerHandle) -> usize {
    // SAFETY: NULL or a live server.
    boundary!(0, { unsafe { peek(server) }.map_or(0, |s| s.client_count()) })
}

/// Called once per client by `wsffi_server_clients`; the conn is borrowed for the call.
pub type wsffi_client_visit_cb = Option<unsafe extern "C" fn(user: *mut c_void, conn: *mut ConnHandle)>;

/// Calls `visit(user, conn)` for every open client, on the calling thread, from a snapshot
/// (clients that close meanwhile are still safe to use; calls on them return
/// `WSFFI_STATUS_ERR_CLOSED`). Needs client tracking.
/// NULL `server` or `visit`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_clients(
    server: *mut ServerHandle,
    visit: wsffi_client_visit_cb,
    user: *mut c_void,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live server.
        let server = unsafe { counted(server.cast_const()) }?;
        let visit = visit.ok_or(Status::ErrNullParameter)?;
        if !server.tracking {
            return Err(Status::ErrUnsupported);
        }
        let handle = Arc::clone(&server);
        let clients = server.shared.run_sync(move |lp| lp.server_of(&handle).map(|s| lp.server_clients(&s)))?;
        for conn in clients.ok_or(Status::ErrClosed)? {
            // SAFETY: a C function pointer from the application; the conn outlives the call.
            unsafe { visit(user, Arc::as_ptr(&conn).cast_mut()) };
        }
        Ok(())
    })
}

/// Sends one message to every open client (the frame is encoded once). Clients above their
/// high-water mark are skipped, whatever the back-pressure policy (the message counts as
/// dropped for them), as are clients in the middle of a fragmented message; nothing is ever
/// queued past a client's mark. With `out_sent` non-NULL the call waits for the reactor and
/// stores how many clients took the message; with NULL it returns at once (the data is
/// copied into the reactor's command queue, so a sender that never waits should bound its
/// own rate). Needs client tracking. Text must be valid UTF-8.
/// NULL `server`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_broadcast(
    server: *mut ServerHandle,
    kind: u32,
    data: *const u8,
    len: usize,
    out_sent: *mut usize,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live server.
        let server = unsafe { counted(server.cast_const()) }?;
        // SAFETY: NULL or `len` readable bytes.
        let data = unsafe { bytes(data, len) }?;
        let kind = match kind {
            1 => MessageKind::Text,
            2 => MessageKind::Binary,
            _ => return Err(Status::ErrInvalidParameter),
        };
        if kind == MessageKind::Text && crate::core::protocol::utf8::validate(data).is_err() {
            return Err(Status::ErrInvalidUtf8);
        }
        if !server.tracking {
            return Err(Status::ErrUnsupported);
        }
        if server.is_closed() {
            return Err(Status::ErrClosed);
        }
        let handle = Arc::clone(&server);
        let data = data.to_vec();
        let job = move |lp: &std::rc::Rc<crate::reactor::event_loop::EventLoop>| {
            lp.server_of(&handle).map(|s| lp.broadcast(&s, kind, &data))
        };
        if out_sent.is_null() {
            Ok(server.shared.run_async(move |lp| {
                job(lp);
            })?)
        } else {
            let sent = server.shared.run_sync(job)?.ok_or(Status::ErrClosed)?;
            // SAFETY: checked non-NULL.
            unsafe { write_out(out_sent, sent) }
        }
    })
}

/// Stops the server and frees the handle: no new clients, open ones get a 1001 close, and
/// `on_close` runs when the last one is gone (then `destroy`). NULL is a no-op.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_close(server: *mut ServerHandle) -> wsffi_status {
    status_boundary!({
        // SAFETY: the caller gives up its reference.
        let Some(server) = (unsafe { take_counted(server.cast_const()) }) else { return Ok(()) };
        let handle = server.clone();
        let _ = server.shared.run_async(move |lp| {
            if let Some(s) = lp.server_of(&handle) {
                lp.close_server(&s);
            }
        });
        Ok(())
    })
}

// ---- handshakes -------------------------------------------------------------------------

/// The request of a pending handshake, NULL for NULL. The view belongs to the handshake:
/// valid while the handshake is (inside `verify_client` or `headers`, or until
/// `wsffi_handshake_accept`/`wsffi_handshake_reject` consumes a deferred one); keep it
/// longer with `wsffi_request_copy`.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_handshake_request(handshake: *const HandshakeHandle) -> *const RequestView {
    boundary!(std::ptr::null(), {
        // SAFETY: NULL or a live handshake.
        unsafe { peek(handshake) }.map_or(std::ptr::null(), |h| Arc::as_ptr(&h.request))
    })
}

/// Adds a header to the response of this handshake (the 101, or the refusal). Names the
/// library writes are refused with `WSFFI_STATUS_ERR_INVALID_PARAMETER` (any case):
/// Content-Length, Transfer-Encoding, Connection, Upgrade and every Sec-WebSocket-* name
/// (the accept key, subprotocol and extensions come from the negotiation).
/// NULL `handshake`, `name` or `value`: WSFFI_STATUS_ERR_NULL_PARAMETER. The strings are
/// copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_handshake_add_header(
    handshake: *mut HandshakeHandle,
    name: *const c_char,
    value: *const c_char,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live handshake.
        let h = unsafe { peek(handshake) }.ok_or(Status::ErrNullParameter)?;
        // SAFETY: NULL or NUL-terminated strings.
        let (n, v) = unsafe { (text(name)?, text(value)?) };
        check_app_response_header(n, v).map_err(|_| Status::ErrInvalidParameter)?;
        h.add_header(n, v);
        Ok(())
    })
}

fn check_reject(status: u16, reason: *const c_char) -> Result<String, Status> {
    // A redirect (with a Location the application adds) or an error; 2xx would read as an
    // accepted upgrade and 300/304-306 do not send a client elsewhere.
    if !(is_redirect_status(status) || (400..=599).contains(&status)) {
        return Err(Status::ErrInvalidParameter);
    }
    // SAFETY: NULL or a NUL-terminated string.
    let reason = unsafe { opt_text(reason) }?.unwrap_or("");
    if reason.chars().any(|c| c.is_control()) {
        return Err(Status::ErrInvalidParameter);
    }
    Ok(reason.to_string())
}

/// Sets the refusal that a `WSFFI_VERDICT_REJECT` verdict sends: an HTTP status 400-599
/// (default 401), or a redirect 301, 302, 303, 307 or 308 together with a `Location` header
/// added by `wsffi_handshake_add_header` (clients that follow redirects re-dial it), and a
/// reason phrase (NULL or "" for the standard one). Other statuses:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER.
/// NULL `handshake`: WSFFI_STATUS_ERR_NULL_PARAMETER. The reason is copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_handshake_set_reject(
    handshake: *mut HandshakeHandle,
    status: u16,
    reason: *const c_char,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live handshake.
        let h = unsafe { peek(handshake) }.ok_or(Status::ErrNullParameter)?;
        let reason = check_reject(status, reason)?;
        h.set_reject(status, &reason);
        Ok(())
    })
}

/// Accepts a handshake deferred by `verify_client`, from any thread. Consumes the
/// reference the verdict handed out, also on error, so a handshake is decided at most once
/// (using the pointer again afterwards is a use after free). `WSFFI_STATUS_ERR_TIMEOUT` when the
/// handshake timed out or the client left meanwhile.
/// NULL `handshake`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_handshake_accept(handshake: *mut HandshakeHandle) -> wsffi_status {
    status_boundary!({
        // SAFETY: the caller gives up the reference from the DEFER verdict.
        let h = unsafe { take_counted(handshake.cast_const()) }.ok_or(Status::ErrNullParameter)?;
        Ok(h.decide(true)?)
    })
}

/// Rejects a deferred handshake with an HTTP status 400-599 or a redirect 301/302/303/307/308
/// (add its `Location` with `wsffi_handshake_add_header` first) and reason (NULL for the
/// standard phrase), from any thread. Consumes the reference like `wsffi_handshake_accept`.
/// NULL `handshake`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_handshake_reject(
    handshake: *mut HandshakeHandle,
    status: u16,
    reason: *const c_char,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: the caller gives up the reference from the DEFER verdict.
        let h = unsafe { take_counted(handshake.cast_const()) }.ok_or(Status::ErrNullParameter)?;
        match check_reject(status, reason) {
            Ok(reason) => {
                h.set_reject(status, &reason);
                Ok(h.decide(false)?)
            }
            Err(e) => {
                // Still a decision: refuse with the default status rather than leak it.
                let _ = h.decide(false);
                Err(e)
            }
        }
    })
}

// ---- plain HTTP answers -----------------------------------------------------------------

/// Sets the status (200-599) and reason (NULL for the standard phrase) of a plain HTTP
/// answer. The default is 200. A 1xx is refused with `WSFFI_STATUS_ERR_INVALID_PARAMETER`:
/// it is not a final answer, and a 101 would tell a proxy the connection was upgraded.
/// NULL `response`: WSFFI_STATUS_ERR_NULL_PARAMETER. The reason is copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_http_response_set_status(
    response: *mut HttpResponse,
    status: u16,
    reason: *const c_char,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or the response borrowed by the handler.
        let r = unsafe { lent_mut(response) }?;
        if !(200..=599).contains(&status) {
            return Err(Status::ErrInvalidParameter);
        }
        // SAFETY: NULL or a NUL-terminated string.
        let reason = unsafe { opt_text(reason) }?.unwrap_or("");
        if reason.chars().any(|c| c.is_control()) {
            return Err(Status::ErrInvalidParameter);
        }
        r.status = status;
        r.reason = reason.to_string();
        Ok(())
    })
}

/// Adds a header to a plain HTTP answer (Content-Length and Connection are written by the
/// library).
/// NULL `response`, `name` or `value`: WSFFI_STATUS_ERR_NULL_PARAMETER. The strings are
/// copied.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_http_response_add_header(
    response: *mut HttpResponse,
    name: *const c_char,
    value: *const c_char,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or the response borrowed by the handler.
        let r = unsafe { lent_mut(response) }?;
        // SAFETY: NULL or NUL-terminated strings.
        let (n, v) = unsafe { (text(name)?, text(value)?) };
        check_header(n, v).map_err(|_| Status::ErrInvalidParameter)?;
        r.headers.push((n.to_string(), v.to_string()));
        Ok(())
    })
}

/// Sets the body of a plain HTTP answer (copied).
/// NULL `response`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when `len` is
/// 0.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_http_response_set_body(
    response: *mut HttpResponse,
    data: *const u8,
    len: usize,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or the response borrowed by the handler.
        let r = unsafe { lent_mut(response) }?;
        // SAFETY: NULL or `len` readable bytes.
        r.body = unsafe { bytes(data, len) }?.to_vec();
        Ok(())
    })
}
