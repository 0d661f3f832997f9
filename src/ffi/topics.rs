//! Pub/sub topics inside a server: `wsffi_conn_subscribe` and friends, `wsffi_server_publish`.

use std::ffi::c_char;

use super::boundary::{boundary, bytes, status_boundary, text};
use super::handles::counted;
use super::status::{wsffi_status, Status};
use crate::core::protocol::utf8;
use crate::core::session::MessageKind;
use crate::reactor::conn::ConnHandle;
use crate::reactor::pubsub;
use crate::reactor::server::ServerHandle;

/// The longest topic name, in bytes (`wsffi_conn_subscribe`, `wsffi_server_publish`).
pub const WSFFI_MAX_TOPIC_BYTES: usize = 1024;

const _: () = assert!(WSFFI_MAX_TOPIC_BYTES == crate::reactor::topics::MAX_TOPIC_BYTES);

/// OK for a new subscription, ALREADY_DONE for an existing one; errors pass through.
fn new_or_done(r: Result<bool, crate::reactor::error::Error>) -> Result<(), Status> {
    match r? {
        true => Ok(()),
        false => Err(Status::ErrAlreadyDone),
    }
}

/// Subscribes a server-side connection to `topic` (a NUL-terminated UTF-8 name of 1 to
/// `WSFFI_MAX_TOPIC_BYTES` bytes; any name: "chat/room-1", "prices.EUR"), so that
/// `wsffi_server_publish` to that topic reaches it. The subscription ends with
/// `wsffi_conn_unsubscribe` or when the connection closes.
/// WSFFI_STATUS_ERR_ALREADY_DONE when it already was subscribed.
/// NULL `conn` or `topic`: WSFFI_STATUS_ERR_NULL_PARAMETER. Empty `topic`:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER; longer than `WSFFI_MAX_TOPIC_BYTES`, or the
/// connection has `wsffi_server_options_set_max_subscriptions` topics already:
/// WSFFI_STATUS_ERR_TOO_BIG; not UTF-8: WSFFI_STATUS_ERR_INVALID_UTF8. A client connection:
/// WSFFI_STATUS_ERR_UNSUPPORTED. A closing or closed connection: WSFFI_STATUS_ERR_CLOSED.
/// Callable from any thread (outside the reactor thread it waits for the reactor).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_subscribe(conn: *mut ConnHandle, topic: *const c_char) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        let conn = unsafe { counted(conn.cast_const()) }?;
        // SAFETY: NULL or a NUL-terminated string.
        let topic = unsafe { text(topic) }?;
        new_or_done(pubsub::subscribe(&conn, topic))
    })
}

/// Ends a subscription made with `wsffi_conn_subscribe`.
/// WSFFI_STATUS_ERR_ALREADY_DONE when the connection was not subscribed to `topic` (also
/// once it closed: closing ended its subscriptions).
/// NULL `conn` or `topic`: WSFFI_STATUS_ERR_NULL_PARAMETER; not UTF-8:
/// WSFFI_STATUS_ERR_INVALID_UTF8; a client connection: WSFFI_STATUS_ERR_UNSUPPORTED.
/// Callable from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_unsubscribe(conn: *mut ConnHandle, topic: *const c_char) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a conn with a live reference.
        let conn = unsafe { counted(conn.cast_const()) }?;
        // SAFETY: NULL or a NUL-terminated string.
        let topic = unsafe { text(topic) }?;
        match pubsub::unsubscribe(&conn, topic) {
            Err(crate::reactor::error::Error::Closed) => Err(Status::ErrAlreadyDone),
            r => new_or_done(r),
        }
    })
}

/// Is the connection subscribed to `topic`? false for NULL arguments, a name that is not
/// UTF-8, a client connection and a closed one. Callable from any thread.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_conn_is_subscribed(conn: *const ConnHandle, topic: *const c_char) -> bool {
    boundary!(false, {
        // SAFETY: NULL or a conn with a live reference.
        let Ok(conn) = (unsafe { counted(conn) }) else { return false };
        // SAFETY: NULL or a NUL-terminated string.
        let Ok(topic) = (unsafe { text(topic) }) else { return false };
        pubsub::is_subscribed(&conn, topic)
    })
}

/// Sends one message to every connection of `server` subscribed to `topic`, except
/// `except_conn` (NULL: none; the publisher's own connection, typically). The frame is
/// encoded once for all subscribers that do not compress it (each compressing connection
/// has its own context). Subscribers above their high-water mark are skipped for this
/// message, whatever the back-pressure policy, as `wsffi_server_broadcast` skips them. From the reactor thread (a callback)
/// the message is queued to every subscriber before this returns; from another thread it is
/// handed to the reactor and this returns at once. Either way the messages of one
/// publishing thread reach each subscriber in the order they were published. A topic
/// nobody subscribes to: WSFFI_STATUS_OK, nothing is sent. Text must be valid UTF-8.
/// NULL `server` or `topic`: WSFFI_STATUS_ERR_NULL_PARAMETER; `data` may be NULL only when
/// `len` is 0; `kind` not WSFFI_TEXT or WSFFI_BINARY, or an empty `topic`:
/// WSFFI_STATUS_ERR_INVALID_PARAMETER; a `topic` longer than `WSFFI_MAX_TOPIC_BYTES`:
/// WSFFI_STATUS_ERR_TOO_BIG; a closed server: WSFFI_STATUS_ERR_CLOSED; the reactor's command
/// queue full: WSFFI_STATUS_ERR_QUEUE_FULL.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_publish(
    server: *mut ServerHandle,
    topic: *const c_char,
    kind: u32,
    data: *const u8,
    len: usize,
    except_conn: *const ConnHandle,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live server.
        let server = unsafe { counted(server.cast_const()) }?;
        // SAFETY: NULL or a NUL-terminated string.
        let topic = unsafe { text(topic) }?;
        // SAFETY: NULL or `len` readable bytes.
        let data = unsafe { bytes(data, len) }?;
        let kind = match kind {
            1 => MessageKind::Text,
            2 => MessageKind::Binary,
            _ => return Err(Status::ErrInvalidParameter),
        };
        if kind == MessageKind::Text && utf8::validate(data).is_err() {
            return Err(Status::ErrInvalidUtf8);
        }
        // SAFETY: NULL or a conn with a live reference.
        let except = if except_conn.is_null() { None } else { Some(unsafe { counted(except_conn) }?) };
        pubsub::publish(&server, topic, kind, data, except.as_deref())?;
        Ok(())
    })
}

/// How many connections of `server` subscribe to `topic`; 0 for NULL arguments, a name
/// that is not UTF-8, a topic nobody subscribes to and a closed server. Callable from any
/// thread (outside the reactor thread it waits for the reactor).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_server_subscriber_count(server: *const ServerHandle, topic: *const c_char) -> usize {
    boundary!(0, {
        // SAFETY: NULL or a live server.
        let Ok(server) = (unsafe { counted(server) }) else { return 0 };
        // SAFETY: NULL or a NUL-terminated string.
        let Ok(topic) = (unsafe { text(topic) }) else { return 0 };
        pubsub::subscriber_count(&server, topic)
    })
}
