//! The event objects the reactor holds in dispatch mode. Each call on the reactor thread
//! becomes a job that makes the same call on the application's events when the dispatching
//! thread runs it.
//!
//! Jobs look up a connection's events when they run, not when they are queued: events
//! installed from a dispatched `on_connection` receive every message that arrived behind
//! it. Borrowed data (message payloads, error texts, close reports) is copied into the job;
//! handles travel as counted references, so they are live while the job runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::queue::DispatchQueue;
use crate::core::session::MessageKind;
use crate::reactor::conn::{CloseReport, ConnHandle};
use crate::reactor::error::Error;
use crate::reactor::events::{ConnEvents, ReconnectEvent, ServerEvents, Verdict};
use crate::reactor::server::{HandshakeHandle, RequestView, ResponseView, ServerHandle};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection's application events in dispatch mode, reachable from any thread.
#[derive(Default)]
pub struct ConnTarget {
    current: Mutex<Option<Arc<dyn ConnEvents>>>,
    /// `on_close` has been taken for delivery: nothing may be installed any more.
    closed: AtomicBool,
}

impl ConnTarget {
    fn get(&self) -> Option<Arc<dyn ConnEvents>> {
        lock(&self.current).clone()
    }

    /// Installs the first events (before any job can run).
    pub fn install(&self, events: Box<dyn ConnEvents>) {
        *lock(&self.current) = Some(Arc::from(events));
    }

    /// Replaces the events with what `f` makes of the current ones. The old object is
    /// dropped here, or after the job that is using it returns. Refused once the close was
    /// delivered (`f` is dropped unused).
    pub fn replace(&self, f: impl FnOnce(Option<&dyn ConnEvents>) -> Box<dyn ConnEvents>) -> Result<(), Error> {
        let old = {
            let mut current = lock(&self.current);
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let new: Arc<dyn ConnEvents> = Arc::from(f(current.as_deref()));
            current.replace(new)
        };
        drop(old);
        Ok(())
    }

    /// Takes the events for the last call.
    fn take_for_close(&self) -> Option<Arc<dyn ConnEvents>> {
        let mut current = lock(&self.current);
        self.closed.store(true, Ordering::Release);
        current.take()
    }
}

/// The reactor-side events of a connection in dispatch mode.
pub struct ConnForwarder {
    target: Arc<ConnTarget>,
    queue: Arc<DispatchQueue>,
}

impl ConnForwarder {
    /// Forwards to `target` through `queue`.
    pub fn new(target: Arc<ConnTarget>, queue: Arc<DispatchQueue>) -> Self {
        ConnForwarder { target, queue }
    }

    fn post(&self, conn: &Arc<ConnHandle>, call: impl FnOnce(&dyn ConnEvents, &Arc<ConnHandle>) + Send + 'static) {
        let target = self.target.clone();
        let conn = conn.clone();
        self.queue.push(Box::new(move || {
            if let Some(events) = target.get() {
                call(&*events, &conn);
            }
        }));
    }
}

impl ConnEvents for ConnForwarder {
    fn on_open(&self, conn: &Arc<ConnHandle>) {
        self.post(conn, |e, c| e.on_open(c));
    }

    fn on_message(&self, conn: &Arc<ConnHandle>, kind: MessageKind, data: &[u8]) {
        let data = data.to_vec();
        self.post(conn, move |e, c| e.on_message(c, kind, &data));
    }

    fn on_message_part(&self, conn: &Arc<ConnHandle>, kind: MessageKind, data: &[u8], first: bool, last: bool) {
        let data = data.to_vec();
        self.post(conn, move |e, c| {
            // Parts queued before the application closed the connection are not delivered
            // after it did.
            if !c.closed_by_app() {
                e.on_message_part(c, kind, &data, first, last);
            }
        });
    }

    fn on_ping(&self, conn: &Arc<ConnHandle>, data: &[u8]) {
        let data = data.to_vec();
        self.post(conn, move |e, c| e.on_ping(c, &data));
    }

    fn on_pong(&self, conn: &Arc<ConnHandle>, data: &[u8]) {
        let data = data.to_vec();
        self.post(conn, move |e, c| e.on_pong(c, &data));
    }

    fn on_drain(&self, conn: &Arc<ConnHandle>) {
        self.post(conn, |e, c| e.on_drain(c));
    }

    fn on_unexpected_response(&self, conn: &Arc<ConnHandle>, response: &ResponseView) {
        let response = response.clone();
        self.post(conn, move |e, c| e.on_unexpected_response(c, &response));
    }

    fn on_reconnect(&self, conn: &Arc<ConnHandle>, event: &ReconnectEvent<'_>) {
        let (attempt, delay, error) = (event.attempt, event.delay, event.error);
        let (message, close) = (event.message.to_string(), event.close.clone());
        self.post(conn, move |e, c| {
            e.on_reconnect(c, &ReconnectEvent { attempt, delay, error, message: &message, close: &close })
        });
    }

    fn on_error(&self, conn: &Arc<ConnHandle>, error: Error, message: &str) {
        let message = message.to_string();
        self.post(conn, move |e, c| e.on_error(c, error, &message));
    }

    fn on_close(&self, conn: &Arc<ConnHandle>, close: &CloseReport) {
        let (target, conn, close) = (self.target.clone(), conn.clone(), close.clone());
        self.queue.push(Box::new(move || {
            if let Some(events) = target.take_for_close() {
                events.on_close(&conn, &close);
                // The last reference, unless a replaced object is still in a call: dropping
                // it ends the application's state, on this thread.
                drop(events);
            }
        }));
    }
}

/// The reactor-side events of a server in dispatch mode.
pub struct ServerForwarder {
    target: Arc<Mutex<Option<Arc<dyn ServerEvents>>>>,
    queue: Arc<DispatchQueue>,
    /// The application's events take part in handshakes: each upgrade waits for them.
    hooks_handshake: bool,
}

impl ServerForwarder {
    /// Forwards to `events` through `queue`.
    pub fn new(events: Box<dyn ServerEvents>, queue: Arc<DispatchQueue>) -> Self {
        let hooks_handshake = events.hooks_handshake();
        ServerForwarder { target: Arc::new(Mutex::new(Some(Arc::from(events)))), queue, hooks_handshake }
    }

    fn post(&self, call: impl FnOnce(&dyn ServerEvents) + Send + 'static) {
        let target = self.target.clone();
        self.queue.push(Box::new(move || {
            let events = lock(&target).clone();
            if let Some(events) = events {
                call(&*events);
            }
        }));
    }
}

/// The handshake decision, made on the dispatching thread in the order the reactor thread
/// makes it in direct mode: verdict, then subprotocol and headers for an accepted client.
/// A deferring `verify_client` gets its subprotocol and headers chosen at once, so the
/// later decision needs nothing more from the application; a decision made from another
/// thread meanwhile is held back until they have run.
fn decide_handshake(events: &dyn ServerEvents, hs: &Arc<HandshakeHandle>) {
    struct Held<'a>(&'a Arc<HandshakeHandle>);
    impl Drop for Held<'_> {
        fn drop(&mut self) {
            self.0.release();
        }
    }
    hs.hold();
    let _held = Held(hs);
    let verdict = events.verify_client(hs).unwrap_or(Verdict::Accept);
    if verdict != Verdict::Reject {
        let offered = hs.offered_protocols();
        if !offered.is_empty() {
            if let Some(choice) = events.handle_protocols(&hs.request, offered) {
                hs.choose_protocol(choice);
            }
        }
        events.headers(hs);
    }
    match verdict {
        Verdict::Accept => drop(hs.clone().decide(true)),
        Verdict::Reject => drop(hs.clone().decide(false)),
        Verdict::Defer => {}
    }
}

impl ServerEvents for ServerForwarder {
    fn verify_client(&self, handshake: &Arc<HandshakeHandle>) -> Option<Verdict> {
        if !self.hooks_handshake {
            return None;
        }
        let hs = handshake.clone();
        self.post(move |e| decide_handshake(e, &hs));
        Some(Verdict::Defer)
    }

    fn on_connection(&self, server: &Arc<ServerHandle>, conn: &Arc<ConnHandle>, request: &Arc<RequestView>) {
        let (server, conn, request) = (server.clone(), conn.clone(), request.clone());
        self.post(move |e| e.on_connection(&server, &conn, &request));
    }

    fn on_client_error(&self, server: &Arc<ServerHandle>, error: Error, message: &str) {
        let (server, message) = (server.clone(), message.to_string());
        self.post(move |e| e.on_client_error(&server, error, &message));
    }

    fn on_error(&self, server: &Arc<ServerHandle>, error: Error, message: &str) {
        let (server, message) = (server.clone(), message.to_string());
        self.post(move |e| e.on_error(&server, error, &message));
    }

    fn on_close(&self, server: &Arc<ServerHandle>) {
        let (target, server) = (self.target.clone(), server.clone());
        self.queue.push(Box::new(move || {
            let events = lock(&target).take();
            if let Some(events) = events {
                events.on_close(&server);
                drop(events);
            }
        }));
    }
}
