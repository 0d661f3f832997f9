//! How the reactor tells the application what happened: one trait per kind of object.
//!
//! Each connection and server owns one boxed implementation. Calls are never concurrent, but
//! in dispatch mode they come from the dispatching thread (hence `Sync`: the object is shared
//! between the reactor's bookkeeping and the jobs that call it). Every method has an empty
//! default, so an implementation overrides only what it cares about. Dropping the box is the
//! end of the application's state: the reactor drops it exactly once, after the last call
//! into it (a call in progress keeps it alive, even if it is replaced meanwhile).

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use super::conn::{CloseReport, ConnHandle};
use super::error::Error;
use super::server::{HandshakeHandle, HttpResponse, RequestView, ResponseView, ServerHandle};
use crate::core::session::MessageKind;

/// Events of one connection, called one at a time on the reactor thread (on the dispatching
/// thread in dispatch mode).
pub trait ConnEvents: Any + Send + Sync {
    /// The connection is open; messages may follow.
    fn on_open(&self, _conn: &Arc<ConnHandle>) {}
    /// A complete message; `data` points into the read buffer and lives for this call.
    fn on_message(&self, _conn: &Arc<ConnHandle>, _kind: MessageKind, _data: &[u8]) {}
    /// With `stream_messages` on, the next part of a message, instead of `on_message`:
    /// `data` is what arrived (inflated, when compressed), lent for this call; `first`
    /// and `last` mark the message's first and final parts (the final one may be empty).
    fn on_message_part(&self, _conn: &Arc<ConnHandle>, _kind: MessageKind, _data: &[u8], _first: bool, _last: bool) {}
    /// A ping arrived (the pong is already queued).
    fn on_ping(&self, _conn: &Arc<ConnHandle>, _data: &[u8]) {}
    /// A pong arrived.
    fn on_pong(&self, _conn: &Arc<ConnHandle>, _data: &[u8]) {}
    /// The buffered amount fell to the low-water mark after a send was refused.
    fn on_drain(&self, _conn: &Arc<ConnHandle>) {}
    /// Client only: the server answered the upgrade with a non-101 status.
    fn on_unexpected_response(&self, _conn: &Arc<ConnHandle>, _response: &ResponseView) {}
    /// Client with reconnect on: the connection (or an attempt) was lost and another
    /// attempt is scheduled; `on_open` follows when one succeeds.
    fn on_reconnect(&self, _conn: &Arc<ConnHandle>, _event: &ReconnectEvent<'_>) {}
    /// Something failed; `on_close` follows.
    fn on_error(&self, _conn: &Arc<ConnHandle>, _error: Error, _message: &str) {}
    /// The connection ended. Exactly once; nothing follows but the drop of this object.
    fn on_close(&self, _conn: &Arc<ConnHandle>, _close: &CloseReport) {}
}

/// What [`ConnEvents::on_reconnect`] reports: the attempt scheduled and why.
#[derive(Debug)]
pub struct ReconnectEvent<'a> {
    /// 1 for the first attempt after an open connection (or after the first dial) was lost.
    pub attempt: u32,
    /// The wait before the attempt.
    pub delay: Duration,
    /// Why the last connection or attempt ended (`Closed` for a close frame from the peer).
    pub error: Error,
    /// The sentence for it.
    pub message: &'a str,
    /// How the lost connection closed (1006 for a failed attempt).
    pub close: &'a CloseReport,
}

/// No events wanted.
pub struct NoConnEvents;

impl ConnEvents for NoConnEvents {}

/// The answer of [`ServerEvents::verify_client`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the handshake.
    Accept,
    /// Refuse with the status set on the handshake (401 by default).
    Reject,
    /// Decide later with [`HandshakeHandle::decide`].
    Defer,
}

/// Events of one server, called one at a time on the reactor thread (on the dispatching
/// thread in dispatch mode).
pub trait ServerEvents: Any + Send + Sync {
    /// Decide on an upgrade. `None` accepts every client that passed the origin check.
    fn verify_client(&self, _handshake: &Arc<HandshakeHandle>) -> Option<Verdict> {
        None
    }
    /// Pick one of the offered subprotocols: `None` for the default (the first offered),
    /// `Some(None)` for none, `Some(Some(i))` for `offered[i]`.
    fn handle_protocols(&self, _request: &RequestView, _offered: &[String]) -> Option<Option<usize>> {
        None
    }
    /// Add response headers to the handshake before the 101 goes out.
    fn headers(&self, _handshake: &Arc<HandshakeHandle>) {}
    /// Do `verify_client`, `handle_protocols` or `headers` do anything? Dispatch mode makes
    /// each upgrade wait for the dispatching thread only when they do.
    fn hooks_handshake(&self) -> bool {
        true
    }
    /// A new connection; install its events with [`ConnHandle::set_events`] here.
    fn on_connection(&self, _server: &Arc<ServerHandle>, _conn: &Arc<ConnHandle>, _request: &Arc<RequestView>) {}
    /// A handshake failed.
    fn on_client_error(&self, _server: &Arc<ServerHandle>, _error: Error, _message: &str) {}
    /// The server itself failed.
    fn on_error(&self, _server: &Arc<ServerHandle>, _error: Error, _message: &str) {}
    /// The server stopped; nothing follows but the drop of this object.
    fn on_close(&self, _server: &Arc<ServerHandle>) {}
}

/// No server events wanted.
pub struct NoServerEvents;

impl ServerEvents for NoServerEvents {
    fn hooks_handshake(&self) -> bool {
        false
    }
}

/// Answers plain (non-upgrade) HTTP requests on a listener.
pub trait HttpHandler: Send + Sync {
    /// Fill `response`; it is sent when this returns, then the connection closes.
    fn handle(&self, request: &RequestView, response: &mut HttpResponse);
}
