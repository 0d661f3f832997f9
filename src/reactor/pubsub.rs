//! Topics on the loop: subscribing server connections and publishing to them.
//!
//! The registry itself is `topics.rs`; this is where it meets connections: only open
//! server-side connections subscribe, a closing one is dropped from every topic by
//! `detach_from_server`, and a publish encodes its frame once for all subscribers that do not
//! compress it.

use std::io::Write;
use std::rc::Rc;
use std::sync::Arc;

use super::conn::{Conn, ConnHandle, Phase, SendOp};
use super::error::Error;
use super::event_loop::EventLoop;
use super::server::{Server, ServerHandle};
use super::slab::Key;
use super::topics::{check_name, TopicError};
use crate::core::session::{encode_server_message, MessageKind};

impl From<TopicError> for Error {
    fn from(e: TopicError) -> Error {
        match e {
            TopicError::Empty => Error::InvalidParameter,
            TopicError::TooLong | TopicError::TooMany => Error::TooBig,
        }
    }
}

impl EventLoop {
    /// The server of an open server-side connection.
    fn subscriber_server(&self, handle: &ConnHandle) -> Result<(Rc<Conn>, Rc<Server>), Error> {
        let conn = self.conn_of(handle).ok_or(Error::Closed)?;
        if conn.role != crate::core::session::Role::Server {
            return Err(Error::Unsupported);
        }
        if conn.phase.get() != Phase::Open || conn.is_terminating() || conn.output.borrow().writer.close_sent() {
            return Err(Error::Closed);
        }
        let server = conn.server.borrow().clone().ok_or(Error::Closed)?;
        Ok((conn, server))
    }

    /// `wsffi_conn_subscribe`: true when the subscription is new.
    pub fn subscribe(&self, handle: &ConnHandle, topic: &str) -> Result<bool, Error> {
        let (conn, server) = self.subscriber_server(handle)?;
        let max = server.config.max_subscriptions;
        let new = server.topics.borrow_mut().subscribe(conn.key, conn.clone(), topic, max)?;
        Ok(new)
    }

    /// `wsffi_conn_unsubscribe`: true when there was such a subscription.
    pub fn unsubscribe(&self, handle: &ConnHandle, topic: &str) -> Result<bool, Error> {
        let conn = self.conn_of(handle).ok_or(Error::Closed)?;
        if conn.role != crate::core::session::Role::Server {
            return Err(Error::Unsupported);
        }
        let server = conn.server.borrow().clone();
        Ok(server.is_some_and(|s| s.topics.borrow_mut().unsubscribe(conn.key, topic)))
    }

    /// `wsffi_conn_is_subscribed`.
    pub fn is_subscribed(&self, handle: &ConnHandle, topic: &str) -> bool {
        let Some(conn) = self.conn_of(handle) else { return false };
        let server = conn.server.borrow().clone();
        server.is_some_and(|s| s.topics.borrow().is_subscribed(conn.key, topic))
    }

    /// `wsffi_server_subscriber_count`.
    pub fn subscriber_count(&self, handle: &ServerHandle, topic: &str) -> usize {
        self.server_of(handle).map_or(0, |s| s.topics.borrow().subscriber_count(topic))
    }

    /// Queues one message to every subscriber of `topic` but `except`; returns how many took
    /// it. Subscribers above their high-water mark are skipped, and the skip counts as a
    /// message dropped for them (`queue_shared_frame`), as for a broadcast.
    pub fn publish(&self, server: &Server, topic: &str, kind: MessageKind, data: &[u8], except: Option<Key>) -> usize {
        let topics = server.topics.borrow();
        let subscribers = topics.subscribers(topic);
        if subscribers.is_empty() {
            return 0;
        }
        let mut frame = Vec::with_capacity(data.len() + 10);
        encode_server_message(&mut frame, kind, data);
        let mut sent = 0;
        for (key, conn) in subscribers {
            if Some(*key) == except || conn.phase.get() != Phase::Open || conn.is_terminating() {
                continue;
            }
            if self.queue_shared_frame(conn, kind, data, &frame) {
                sent += 1;
            }
        }
        sent
    }

    /// Queues a message encoded once for many connections (or, when this connection
    /// compresses it, encoded with its own context); false when the connection refused it
    /// (above its high-water mark, closing, or inside a fragmented message of its own).
    /// Nothing is ever queued past the mark, whatever the back-pressure policy; a refusal
    /// other than for closing counts as a message dropped for the connection and its server.
    /// A frame of [`SHARED_DIRECT_MIN`] bytes or more for a connection with nothing queued
    /// is written to its socket at once and only the rest is copied, so a fan-out to many
    /// clients that keep up holds no per-client copy.
    pub(super) fn queue_shared_frame(&self, conn: &Rc<Conn>, kind: MessageKind, data: &[u8], frame: &[u8]) -> bool {
        let high_water = conn.cfg().high_water;
        let pending = {
            let mut out = conn.output.borrow_mut();
            if out.writer.close_sent() {
                return false;
            }
            let over = out.pending() > high_water;
            if over || out.writer.is_fragmenting() {
                if over {
                    conn.want_drain.set(true);
                }
                conn.handle.count_drop();
                return false;
            }
            if out.writer.compresses(data.len()) {
                if out.encode(SendOp::Message(kind), data).is_err() {
                    return false;
                }
            } else if out.pending() == 0 && frame.len() >= SHARED_DIRECT_MIN {
                // Write errors show again when the loop flushes the rest.
                let written = conn.stream.borrow_mut().as_mut().map_or(0, |s| loop {
                    match s.write(frame) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break 0,
                    }
                });
                out.buf.extend_from_slice(&frame[written..]);
            } else {
                out.buf.extend_from_slice(frame);
            }
            out.pending()
        };
        conn.handle.set_buffered(pending);
        if pending > high_water {
            conn.want_drain.set(true);
        }
        // Counted as sent with the flush, like any send.
        conn.unflushed_sent.set(conn.unflushed_sent.get() + 1);
        self.mark_dirty(conn);
        true
    }
}

/// A shared (broadcast or published) frame at least this large is written to each client
/// whose output is empty at once instead of being copied into its output buffer; smaller
/// ones are copied and go out with the loop's flush, corked with the client's other output.
const SHARED_DIRECT_MIN: usize = 1024;

/// Runs a topic call on the loop: directly on the reactor thread (no copy of the name),
/// else through the queue, waiting for the answer.
fn on_loop<H: Send + Sync + 'static, R: Send + 'static>(
    shared: &Arc<super::Shared>,
    handle: &Arc<H>,
    topic: &str,
    f: fn(&EventLoop, &H, &str) -> R,
) -> Result<R, Error> {
    if let Some(r) = super::with_loop(shared, |lp| f(lp, handle, topic)) {
        return Ok(r);
    }
    let (handle, topic) = (handle.clone(), topic.to_owned());
    shared.run_sync(move |lp| f(lp, &handle, &topic))
}

/// Subscribes a server-side connection to `topic` from any thread: true when new.
pub fn subscribe(conn: &Arc<ConnHandle>, topic: &str) -> Result<bool, Error> {
    check_name(topic)?;
    on_loop(&conn.shared, conn, topic, EventLoop::subscribe)?
}

/// Ends a subscription from any thread: true when there was one.
pub fn unsubscribe(conn: &Arc<ConnHandle>, topic: &str) -> Result<bool, Error> {
    on_loop(&conn.shared, conn, topic, EventLoop::unsubscribe)?
}

/// Is the connection subscribed to `topic`? (false once it closed)
pub fn is_subscribed(conn: &Arc<ConnHandle>, topic: &str) -> bool {
    on_loop(&conn.shared, conn, topic, EventLoop::is_subscribed).unwrap_or(false)
}

/// Subscribers of `topic` on a server (0 once it closed).
pub fn subscriber_count(server: &Arc<ServerHandle>, topic: &str) -> usize {
    on_loop(&server.shared, server, topic, EventLoop::subscriber_count).unwrap_or(0)
}

/// Publishes from any thread. On the reactor thread it is queued to the subscribers before
/// this returns (`Some(count)`); from other threads it is handed to the reactor (`None`),
/// behind whatever the calling thread asked for before, so one publisher's messages keep
/// their order for every subscriber.
pub fn publish(
    server: &Arc<ServerHandle>,
    topic: &str,
    kind: MessageKind,
    data: &[u8],
    except: Option<&Arc<ConnHandle>>,
) -> Result<Option<usize>, Error> {
    check_name(topic)?;
    if server.is_closed() {
        return Err(Error::Closed);
    }
    let except = except.and_then(|c| c.key());
    let on_loop =
        super::with_loop(&server.shared, |lp| lp.server_of(server).map(|s| lp.publish(&s, topic, kind, data, except)));
    if let Some(sent) = on_loop {
        return sent.map(Some).ok_or(Error::Closed);
    }
    let (handle, topic, data) = (server.clone(), topic.to_owned(), data.to_vec());
    server.shared.run_async(move |lp| {
        if let Some(s) = lp.server_of(&handle) {
            lp.publish(&s, &topic, kind, &data, except);
        }
    })?;
    Ok(None)
}
