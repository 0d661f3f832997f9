//! The reactor loop: polls sockets, reads frames into callbacks, flushes output once per
//! wake-up, runs timers and commands, and ends connections exactly once.

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::{Event, Source};
use mio::{Events, Interest, Poll, Registry, Token};

use super::app_timers::{AppTimers, TimerFn, TimerId};
use super::bufpool;
use super::config::{BackpressurePolicy, ConnConfig};
use super::conn::{ready_state, Conn, ConnHandle, OutBuf, Phase, SendOp};
use super::ending::{CloseFrame, CloseReport, Teardown, DRAIN_LIMIT};
use super::events::ConnEvents;
use super::log::{self, Level};
use super::server::{Listener, Server};
use super::slab::{Key, Slab};
use super::stats::{payload_tag, CloseCodes, Traffic};
use super::timers::Timers;
use super::{Command, Shared};
use crate::core::protocol::close::codes;
use crate::core::protocol::frame::{OpCode, MAX_HEADER_LEN};
use crate::core::session::{close_reason_on_wire, Incoming, MessageKind, SendError, Violation};
use crate::reactor::error::Error;

/// Token of the cross-thread waker.
pub const WAKER_TOKEN: Token = Token(0);
/// Size of the read buffer shared by all connections of a loop.
const READ_BUF_SIZE: usize = 64 * 1024;
/// An output buffer with more capacity than this is released once empty: a broadcast of a
/// few KiB to thousands of clients must not leave each of them holding a buffer of that
/// size (small ones are kept, so echoing small messages allocates nothing per message).
const OUTPUT_KEEP: usize = 1024;
/// Messages at least this large are written straight from the caller's buffer when nothing
/// is queued before them.
const DIRECT_WRITE_MIN: usize = 64 * 1024;

/// Token for a connection: odd numbers.
pub fn conn_token(key: Key) -> Token {
    Token(1 + 2 * key.index as usize)
}

/// Token for a listener: even numbers above 0.
pub fn listener_token(key: Key) -> Token {
    Token(2 + 2 * key.index as usize)
}

/// The loop state, owned by the reactor thread. Fields use interior mutability because
/// callbacks re-enter the loop (a send from `on_message` appends to an output buffer while
/// the read path is still on the stack).
pub struct EventLoop {
    /// The part other threads see.
    pub shared: Arc<Shared>,
    me: RefCell<Weak<EventLoop>>,
    poll: RefCell<Poll>,
    registry: Registry,
    /// Live connections.
    pub conns: RefCell<Slab<Rc<Conn>>>,
    /// Live listeners.
    pub listeners: RefCell<Slab<Rc<Listener>>>,
    /// Attached servers.
    pub servers: RefCell<Slab<Rc<Server>>>,
    timers: RefCell<Timers>,
    app_timers: RefCell<AppTimers>,
    dirty: RefCell<Vec<Rc<Conn>>>,
    resumed: RefCell<Vec<Rc<Conn>>>,
    read_buf: RefCell<Vec<u8>>,
    stopping: Cell<Option<Instant>>,
    /// Settings of server connections not yet routed to a server.
    default_conn_config: Rc<ConnConfig>,
    /// The id of the last server attached.
    last_server_id: Cell<u64>,
}

impl EventLoop {
    /// A loop for `shared` polling with `poll`.
    pub fn new(shared: Arc<Shared>, poll: Poll) -> Self {
        let registry = poll.registry().try_clone().expect("clone mio registry");
        EventLoop {
            shared,
            me: RefCell::new(Weak::new()),
            poll: RefCell::new(poll),
            registry,
            conns: RefCell::new(Slab::default()),
            listeners: RefCell::new(Slab::default()),
            servers: RefCell::new(Slab::default()),
            timers: RefCell::new(Timers::default()),
            app_timers: RefCell::new(AppTimers::default()),
            dirty: RefCell::new(Vec::new()),
            resumed: RefCell::new(Vec::new()),
            read_buf: RefCell::new(vec![0; READ_BUF_SIZE]),
            stopping: Cell::new(None),
            default_conn_config: Rc::new(ConnConfig::default()),
            last_server_id: Cell::new(0),
        }
    }

    /// An `Rc` to this loop (it always lives in one).
    pub fn rc(&self) -> Rc<EventLoop> {
        self.me.borrow().upgrade().expect("loop alive")
    }

    /// Settings of server connections not yet routed to a server.
    pub fn default_conn_config(&self) -> Rc<ConnConfig> {
        self.default_conn_config.clone()
    }

    /// A new server id (1, 2, ...).
    pub fn next_server_id(&self) -> u64 {
        self.last_server_id.set(self.last_server_id.get() + 1);
        self.last_server_id.get()
    }

    /// Adds to the traffic counters of `conn`, of its server (once it has one) and of the
    /// reactor: one call per read, write or batch of messages, not per byte.
    #[inline]
    pub fn count_traffic(&self, conn: &Conn, add: impl Fn(&Traffic)) {
        add(&conn.handle.stats.traffic);
        if let Some(server) = conn.server.borrow().as_ref() {
            add(&server.handle.stats.traffic);
        }
        add(&self.shared.stats.traffic);
    }

    /// Publishes `written` bytes and the messages queued since the last call to the sent
    /// counters (once per flush).
    #[inline]
    fn count_sent(&self, conn: &Conn, written: usize) {
        let messages = conn.unflushed_sent.replace(0);
        if messages > 0 || written > 0 {
            self.count_traffic(conn, |t| {
                t.bytes_out.add(written as u64);
                t.messages_out.add(messages);
            });
        }
    }

    /// A connection reached OPEN.
    pub fn count_opened(&self) {
        self.shared.stats.opened.add(1);
        self.shared.stats.open.add(1);
    }

    /// A ping goes out on `conn`: its pong will give the round trip.
    pub fn ping_sent(&self, conn: &Conn, payload: &[u8]) {
        conn.rtt_probe.set(Some((Instant::now(), payload_tag(payload))));
    }

    /// The mio registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Is the reactor shutting down?
    pub fn is_stopping(&self) -> bool {
        self.stopping.get().is_some()
    }

    /// Runs until shutdown completes.
    pub fn run(self: &Rc<Self>) {
        *self.me.borrow_mut() = Rc::downgrade(self);
        let mut events = Events::with_capacity(1024);
        let mut commands = Vec::new();
        let mut due = Vec::new();
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.borrow_mut().poll(&mut events, timeout) {
                if e.kind() != ErrorKind::Interrupted {
                    break;
                }
            }
            for event in events.iter() {
                self.guarded(|| self.dispatch(event));
            }
            self.guarded(|| self.run_timers(&mut due));
            self.guarded(|| self.run_app_timers());
            self.guarded(|| self.retry_stalled_accepts());
            self.shared.take_commands(&mut commands);
            for cmd in commands.drain(..) {
                self.guarded(|| self.run_command(cmd));
            }
            self.guarded(|| self.run_resumed());
            self.guarded(|| self.flush_dirty());
            if let Some(queue) = self.shared.dispatch_queue() {
                queue.signal();
            }
            if let Some(deadline) = self.stopping.get() {
                if self.conns.borrow().is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
        }
    }

    /// Last stage of shutdown: ends what is left, then runs every remaining destroy.
    pub fn finish(self: &Rc<Self>) {
        // Also after a poll failure: nothing left may wait to reconnect.
        if self.stopping.get().is_none() {
            self.stopping.set(Some(Instant::now()));
        }
        // Work accepted before the queue closed still runs (a queued connect must end with
        // its close callback like any other), then everything left is ended.
        for cmd in self.shared.close_queue() {
            self.guarded(|| self.run_command(cmd));
        }
        let leftover: Vec<Rc<Conn>> = self.conns.borrow().values().cloned().collect();
        for conn in leftover {
            // One that only waits for the peer's TCP close after the close handshake is done.
            if !conn.closing.borrow().is_complete() {
                conn.set_failure(Error::ShutDown, "reactor shut down");
            }
            self.finalize(&conn);
        }
        let servers: Vec<Rc<Server>> = self.servers.borrow().values().cloned().collect();
        for server in servers {
            self.finish_server(&server);
        }
        let listeners: Vec<Rc<Listener>> = self.listeners.borrow().values().cloned().collect();
        for listener in listeners {
            self.remove_listener(&listener);
        }
        // Last: the callbacks above may still have added timers.
        let timers = self.app_timers.borrow_mut().drain();
        self.drop_where_callbacks_run(timers);
    }

    /// Runs `f`, turning a panic into a logged no-op so one bad event cannot stop the loop.
    /// Also delivers the log records the step made, now that nothing is borrowed.
    fn guarded(&self, f: impl FnOnce()) {
        let _ = catch_unwind(AssertUnwindSafe(f));
        let _ = catch_unwind(super::log::flush_pending);
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.resumed.borrow().is_empty() || !self.dirty.borrow().is_empty() {
            return Some(Duration::ZERO);
        }
        let mut next = self.timers.borrow().next_deadline();
        if let Some(app) = self.app_timers.borrow().next_deadline() {
            next = Some(next.map_or(app, |n| n.min(app)));
        }
        if let Some(retry) = self.next_accept_retry() {
            next = Some(next.map_or(retry, |n| n.min(retry)));
        }
        if let Some(stop) = self.stopping.get() {
            next = Some(next.map_or(stop, |n| n.min(stop)));
        }
        next.map(|at| at.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
    }

    fn dispatch(&self, event: &Event) {
        let token = event.token();
        if token == WAKER_TOKEN {
            return;
        }
        let index = (token.0 - 1) / 2;
        if token.0 % 2 == 0 {
            let listener = self.listeners.borrow().get_index(index).cloned();
            if let Some(listener) = listener {
                self.accept_ready(&listener);
            }
            return;
        }
        let Some(conn) = self.conns.borrow().get_index(index).cloned() else { return };
        let result = catch_unwind(AssertUnwindSafe(|| self.conn_ready(&conn, event)));
        if result.is_err() {
            self.panicked(&conn);
        }
    }

    /// A panic inside wsffi while handling `conn`: fail it with 1011 and still deliver close.
    fn panicked(&self, conn: &Rc<Conn>) {
        conn.set_failure(Error::Panic, "internal panic while handling the connection");
        // The panic may have left either borrowed.
        if let (Ok(mut out), Ok(mut closing)) = (conn.output.try_borrow_mut(), conn.closing.try_borrow_mut()) {
            let out = &mut *out;
            if out.writer.close(&mut out.buf, Some(codes::INTERNAL_ERROR), b"internal error").is_ok() {
                closing.sent(CloseFrame::new(Some(codes::INTERNAL_ERROR), "internal error"));
            }
        }
        self.close_soon(conn);
    }

    fn conn_ready(&self, conn: &Rc<Conn>, event: &Event) {
        if matches!(conn.teardown.get(), Teardown::Draining { .. }) {
            // Whatever the phase (an HTTP answer drains too), input is only thrown away now.
            self.drain_input(conn);
            self.settle(conn);
            return;
        }
        match conn.phase.get() {
            Phase::Resolving | Phase::Backoff | Phase::Closed => {}
            Phase::Connecting => self.connect_ready(conn),
            Phase::Proxy => {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.proxy_readable(conn);
                }
            }
            Phase::ClientHandshake | Phase::ResponseBody => {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.client_handshake_readable(conn);
                }
            }
            Phase::ServerHandshake => {
                if event.is_read_closed() || event.is_error() {
                    // Also while a decision is deferred: a client that left cannot be accepted.
                    if self.handshake_deferred(conn) {
                        conn.terminate();
                        self.mark_dirty(conn);
                    }
                }
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.server_handshake_readable(conn);
                }
            }
            Phase::Open | Phase::Closing => {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    self.pump(conn, event.is_read_closed() || event.is_error());
                }
            }
        }
        if event.is_writable() && !conn.is_closed() {
            self.mark_dirty(conn);
        }
        self.settle(conn);
    }

    // ---- reading ----------------------------------------------------------------------

    /// Processes buffered input, then reads until the socket is drained. A short read ends
    /// the loop (new data makes a new edge) unless `until_blocked`: when the peer has also
    /// closed its side, the EOF came with the same edge and must be read now.
    pub fn pump(&self, conn: &Rc<Conn>, until_blocked: bool) {
        // Complete frames may already wait in the buffer: after a resume, or bytes that
        // arrived together with the handshake.
        // Inflated output of a frame already read may wait too, in streaming mode.
        if self.can_read(conn) && (!conn.input.borrow().is_empty() || conn.reader.borrow().has_pending_parts()) {
            let mut input = conn.input.borrow_mut();
            let (consumed, _, messages) = self.process(conn, input.data());
            input.consume(consumed);
            drop(input);
            self.count_traffic(conn, |t| t.messages_in.add(messages));
        }
        loop {
            if !self.can_read(conn) {
                return;
            }
            // The shared buffer is empty while another connection's callbacks run (a
            // callback can open a connection whose first bytes are read right away).
            let shared_free = !self.read_buf.borrow().is_empty();
            let buffered = !conn.input.borrow().is_empty() || !shared_free;
            let (n, space) = if buffered {
                let mut input = conn.input.borrow_mut();
                // Mid-frame (streaming) the input starts inside a payload, not with a header.
                let frame_len = if conn.reader.borrow().mid_frame() { 0 } else { Self::frame_len(&mut input) };
                let spare = input.spare(READ_BUF_SIZE, frame_len);
                let space = spare.len();
                match self.read_uncounted(conn, spare) {
                    Some(n) => {
                        input.filled(n);
                        (n, space)
                    }
                    None => return,
                }
            } else {
                let mut shared = self.read_buf.borrow_mut();
                let space = shared.len();
                match self.read_uncounted(conn, &mut shared[..]) {
                    Some(n) => (n, space),
                    None => return,
                }
            };
            if n == 0 {
                conn.tear_down(Teardown::PeerEof);
                return;
            }
            self.note_input(conn);
            let messages = if buffered {
                let mut input = conn.input.borrow_mut();
                let (consumed, _, messages) = self.process(conn, input.data());
                input.consume(consumed);
                messages
            } else {
                // Take the shared buffer out so callbacks cannot observe it borrowed.
                let mut shared = std::mem::take(&mut *self.read_buf.borrow_mut());
                let (consumed, frame_len, messages) = self.process(conn, &mut shared[..n]);
                if consumed < n && !conn.is_closed() {
                    conn.input.borrow_mut().store(&shared[consumed..n], frame_len);
                }
                *self.read_buf.borrow_mut() = shared;
                messages
            };
            // One update of the counters per read: its bytes and the messages it completed.
            self.count_traffic(conn, |t| {
                t.bytes_in.add(n as u64);
                t.messages_in.add(messages);
            });
            if n < space && !until_blocked {
                // A short read drained the socket; epoll reports new data as a new edge.
                return;
            }
        }
    }

    /// Length of the (incomplete) frame at the start of `input`, when its header is there.
    fn frame_len(input: &mut super::conn::InBuf) -> usize {
        match crate::core::protocol::frame::parse_header(input.data()) {
            Ok(Some((h, n))) => n.saturating_add(h.payload_len.min(usize::MAX as u64 / 2) as usize),
            _ => 0,
        }
    }

    fn can_read(&self, conn: &Conn) -> bool {
        matches!(conn.phase.get(), Phase::Open | Phase::Closing)
            && !conn.paused.get()
            && conn.teardown.get() == Teardown::Running
            && !Self::throttle(conn)
    }

    /// Is reading held back by a full output buffer? Sets the hold when the output passes
    /// the high-water mark; `flush` lifts it at the low-water mark.
    fn throttle(conn: &Conn) -> bool {
        if !conn.throttled.get() {
            let over = conn.output.try_borrow().is_ok_and(|o| o.pending() > conn.cfg().high_water);
            conn.throttled.set(over);
        }
        conn.throttled.get()
    }

    /// One read; None when the socket has nothing (or failed, which is recorded). The bytes
    /// count as received.
    pub fn read_into(&self, conn: &Conn, buf: &mut [u8]) -> Option<usize> {
        let n = self.read_uncounted(conn, buf)?;
        if n > 0 {
            self.count_traffic(conn, |t| t.bytes_in.add(n as u64));
        }
        Some(n)
    }

    /// As [`Self::read_into`], for a caller that counts the bytes itself.
    fn read_uncounted(&self, conn: &Conn, buf: &mut [u8]) -> Option<usize> {
        let mut stream = conn.stream.borrow_mut();
        let stream = stream.as_mut()?;
        let result = loop {
            match stream.read(buf) {
                Ok(n) => break Some(n),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break None,
                Err(e) => {
                    let (status, message) = super::tls::io_failure(&e, "read");
                    conn.io_failed(status, message);
                    return None;
                }
            }
        };
        // TLS output the socket did not take (handshake records): the flush waits for it.
        if stream.tls_wants_write() && !conn.want_writable.get() {
            self.flush_later(conn);
        }
        result
    }

    fn note_input(&self, conn: &Conn) {
        if conn.cfg().ping_interval.is_some() || conn.cfg().idle_timeout.is_some() {
            conn.last_input.set(Instant::now());
            conn.ping_sent.set(None);
        }
    }

    /// Feeds `bytes` to the frame reader; returns (consumed, length of the incomplete frame,
    /// messages completed).
    fn process(&self, conn: &Rc<Conn>, bytes: &mut [u8]) -> (usize, usize, u64) {
        let mut reader = conn.reader.borrow_mut();
        if reader.close_received() {
            // Nothing after a close frame means anything; only EOF is still awaited.
            return (bytes.len(), 0, 0);
        }
        let mut messages = 0u64;
        let result = reader.feed(bytes, &mut |ev| {
            // A streamed message counts once, at its last part.
            messages += u64::from(matches!(ev, Incoming::Message(..) | Incoming::Part { last: true, .. }));
            self.on_incoming(conn, ev)
        });
        drop(reader);
        match result {
            Ok(p) => (p.consumed, p.next_frame_len, messages),
            Err(v) => {
                self.fail(conn, v);
                (bytes.len(), 0, messages)
            }
        }
    }

    fn on_incoming(&self, conn: &Rc<Conn>, ev: Incoming<'_>) -> bool {
        let events = conn.events();
        match ev {
            Incoming::Message(kind, data) => {
                if let Some(events) = &events {
                    events.on_message(&conn.handle, kind, data);
                }
            }
            Incoming::Part { kind, data, first, last } => {
                // After wsffi_close or wsffi_terminate (from a part callback too) the
                // application hears no more of the message.
                if let (Some(events), false) = (&events, conn.handle.closed_by_app()) {
                    events.on_message_part(&conn.handle, kind, data, first, last);
                }
            }
            Incoming::Ping(data) => {
                {
                    let mut out = conn.output.borrow_mut();
                    let out = &mut *out;
                    let _ = out.writer.control(&mut out.buf, OpCode::Pong, data);
                }
                self.mark_dirty(conn);
                if let Some(events) = &events {
                    events.on_ping(&conn.handle, data);
                }
            }
            Incoming::Pong(data) => {
                if let Some((sent, tag)) = conn.rtt_probe.get() {
                    if tag == payload_tag(data) {
                        conn.rtt_probe.set(None);
                        conn.handle.stats.set_rtt(sent.elapsed());
                    }
                }
                if let Some(events) = &events {
                    events.on_pong(&conn.handle, data);
                }
            }
            Incoming::Close(payload) => self.peer_closed(conn, payload),
        }
        self.can_read(conn)
    }

    /// The peer's close frame arrived.
    fn peer_closed(&self, conn: &Rc<Conn>, payload: Option<(u16, &str)>) {
        let theirs = CloseFrame::new(payload.map(|(c, _)| c), payload.map_or("", |(_, r)| r));
        let echo = {
            let mut out = conn.output.borrow_mut();
            let out = &mut *out;
            // Echo the code (RFC 6455 §5.5.1); an empty close gets an empty reply.
            let code = payload.map(|(c, _)| c);
            out.writer.close(&mut out.buf, code, b"").ok().map(|()| CloseFrame::new(code, ""))
        };
        conn.closing.borrow_mut().received(theirs, echo);
        self.enter_closing(conn);
        match conn.role {
            // The server closes TCP first (RFC 6455 §7.1.1).
            crate::core::session::Role::Server => self.close_soon(conn),
            crate::core::session::Role::Client => {
                conn.phase_deadline.set(Some(Instant::now() + conn.cfg().close_timeout));
                self.arm(conn);
            }
        }
        self.mark_dirty(conn);
    }

    fn enter_closing(&self, conn: &Conn) {
        if conn.phase.get() == Phase::Open {
            conn.phase.set(Phase::Closing);
            conn.handle.set_state(ready_state::CLOSING);
        }
    }

    /// Fails the connection for a protocol violation: error, close frame, then TCP close.
    pub fn fail(&self, conn: &Rc<Conn>, v: Violation) {
        let status = match v.code {
            codes::MESSAGE_TOO_BIG => Error::MessageTooBig,
            codes::INTERNAL_ERROR => Error::Internal,
            _ => Error::Protocol,
        };
        conn.set_failure(status, v.message);
        self.queue_close(conn, Some(v.code), v.message.as_bytes());
        self.enter_closing(conn);
        self.close_soon(conn);
    }

    /// Queues our close frame and records it; false when one was sent already.
    fn queue_close(&self, conn: &Conn, code: Option<u16>, reason: &[u8]) -> bool {
        let mut out = conn.output.borrow_mut();
        let out = &mut *out;
        if out.writer.close(&mut out.buf, code, reason).is_err() {
            return false;
        }
        let reason = if code.is_some() { String::from_utf8_lossy(close_reason_on_wire(reason)) } else { "".into() };
        conn.closing.borrow_mut().sent(CloseFrame::new(code, &reason));
        true
    }

    /// Closes the socket once the output is written, or after the close timeout if the
    /// peer never reads it.
    pub fn close_soon(&self, conn: &Rc<Conn>) {
        conn.tear_down(Teardown::AfterFlush);
        conn.phase_deadline.set(Some(Instant::now() + conn.cfg().close_timeout));
        self.arm(conn);
        self.mark_dirty(conn);
    }

    // ---- writing ----------------------------------------------------------------------

    /// Queues `conn` for the end-of-wake-up flush.
    pub fn mark_dirty(&self, conn: &Rc<Conn>) {
        if !conn.dirty.replace(true) {
            self.dirty.borrow_mut().push(conn.clone());
        }
    }

    fn flush_dirty(&self) {
        loop {
            let batch = std::mem::take(&mut *self.dirty.borrow_mut());
            if batch.is_empty() {
                return;
            }
            for conn in batch {
                conn.dirty.set(false);
                let result = catch_unwind(AssertUnwindSafe(|| {
                    self.flush(&conn);
                    self.settle(&conn);
                }));
                if result.is_err() {
                    conn.terminate();
                    conn.set_failure(Error::Panic, "internal panic while writing");
                    let _ = catch_unwind(AssertUnwindSafe(|| self.settle(&conn)));
                }
            }
        }
    }

    /// Writes as much output as the socket takes.
    pub fn flush(&self, conn: &Rc<Conn>) {
        let pending = {
            let mut out = conn.output.borrow_mut();
            if out.pending() == 0 && !conn.stream.borrow().as_ref().is_some_and(|s| s.tls_wants_write()) {
                drop(out);
                conn.over_since.set(None);
                self.count_sent(conn, 0);
                self.drain_if_wanted(conn);
                return;
            }
            let mut stream = conn.stream.borrow_mut();
            let Some(s) = stream.as_mut() else { return };
            let mut blocked = false;
            let mut written = 0;
            while out.sent < out.buf.len() {
                match s.write(&out.buf[out.sent..]) {
                    Ok(0) => {
                        conn.io_failed(Error::Io, "write returned 0");
                        break;
                    }
                    Ok(n) => {
                        out.sent += n;
                        written += n;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        blocked = true;
                        break;
                    }
                    Err(e) => {
                        let (status, message) = super::tls::io_failure(&e, "write");
                        conn.io_failed(status, message);
                        break;
                    }
                }
            }
            self.count_sent(conn, written);
            // TLS keeps ciphertext of its own; it must reach the socket too.
            if !blocked && !conn.is_terminating() {
                match s.flush() {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => blocked = true,
                    Err(e) => {
                        let (status, message) = super::tls::io_failure(&e, "write");
                        conn.io_failed(status, message);
                    }
                }
            }
            // Nothing can follow a close frame, so an empty output means ours is all out.
            if out.sent == out.buf.len() && !s.tls_wants_write() && !conn.is_terminating() {
                conn.closing.borrow_mut().written();
            }
            if out.sent == out.buf.len() {
                out.sent = 0;
                if out.buf.capacity() > OUTPUT_KEEP {
                    bufpool::give_output(std::mem::take(&mut out.buf));
                } else {
                    out.buf.clear();
                }
            } else if out.sent > out.buf.len() / 2 {
                // Keep the unwritten tail at the front so the buffer does not creep.
                let sent = out.sent;
                out.buf.drain(..sent);
                out.sent = 0;
            }
            let pending = out.pending();
            conn.handle.set_buffered(pending);
            if blocked != conn.want_writable.get() {
                let interest = if blocked { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
                if s.reregister(&self.registry, conn.token(), interest).is_ok() {
                    conn.want_writable.set(blocked);
                }
            }
            pending
        };
        self.track_over_mark(conn, pending);
        let drained = pending <= conn.cfg().low_water;
        if drained && conn.throttled.replace(false) {
            // Edge-triggered polling will not repeat the edge we stopped reading at.
            self.resumed.borrow_mut().push(conn.clone());
        }
        if drained {
            self.drain_if_wanted(conn);
        }
    }

    /// Notes when the output passed the high-water mark and when it drained to the low-water
    /// mark again; under the `Close` policy a timer then ends a connection that stays above.
    fn track_over_mark(&self, conn: &Conn, pending: usize) {
        let (high, low, policy) = {
            let c = conn.cfg();
            (c.high_water, c.low_water, c.backpressure)
        };
        if pending <= low {
            conn.over_since.set(None);
        } else if pending > high && conn.over_since.get().is_none() {
            conn.over_since.set(Some(Instant::now()));
            if matches!(policy, BackpressurePolicy::Close { .. }) {
                self.arm(conn);
            }
        }
    }

    /// A send from another thread was refused: fire `on_drain` now if the output has
    /// already drained (otherwise `flush` fires it when it does).
    pub fn recheck_drain(&self, handle: &Arc<ConnHandle>) {
        if let Some(conn) = self.conn_of(handle) {
            if conn.output.borrow().pending() <= conn.cfg().low_water {
                self.drain_if_wanted(&conn);
            }
        }
    }

    /// The output is at or below the low-water mark: `on_drain` if a send was refused for
    /// back-pressure, on this thread or another, since the last one.
    fn drain_if_wanted(&self, conn: &Rc<Conn>) {
        // Both flags are cleared: one `on_drain` answers every refusal before it.
        let wanted = conn.want_drain.replace(false) | conn.handle.take_drain_wanted();
        if wanted && !conn.is_terminating() {
            if let Some(events) = conn.events() {
                events.on_drain(&conn.handle);
            }
        }
    }

    /// A send on the reactor thread: encode straight into the output buffer.
    pub fn send_now(&self, handle: &Arc<ConnHandle>, op: SendOp, data: &[u8]) -> Result<(), Error> {
        let conn = self.conn_of(handle).ok_or(Error::Closed)?;
        if conn.phase.get() != Phase::Open || conn.is_terminating() {
            return Err(Error::Closed);
        }
        let pending = {
            let mut out = conn.output.borrow_mut();
            if out.pending() > conn.cfg().high_water {
                conn.want_drain.set(true);
                return Err(handle.over_mark(op));
            }
            if let SendOp::Message(kind) = op {
                if data.len() >= DIRECT_WRITE_MIN && out.pending() == 0 {
                    if let Some(r) = self.write_direct(&conn, &mut out, kind, data) {
                        r.map_err(send_error_status)?;
                        let pending = out.pending();
                        drop(out);
                        self.sent(&conn, op, data);
                        return self.after_send(&conn, pending);
                    }
                }
                if out.buf.is_empty() && out.buf.capacity() < data.len() && data.len() >= bufpool::POOLED_MIN {
                    if let Some(b) = bufpool::take_output(data.len() + MAX_HEADER_LEN) {
                        out.buf = b;
                    }
                }
            }
            match out.encode(op, data) {
                Ok(()) => {
                    self.sent(&conn, op, data);
                    out.pending()
                }
                Err(SendError::Compression) => {
                    drop(out);
                    let v = Violation { code: codes::INTERNAL_ERROR, message: "permessage-deflate compression failed" };
                    self.fail(&conn, v);
                    return Err(Error::Internal);
                }
                Err(e) => return Err(send_error_status(e)),
            }
        };
        self.after_send(&conn, pending)
    }

    /// A send was taken into the output buffer: counts a whole message, or notes a ping.
    fn sent(&self, conn: &Conn, op: SendOp, data: &[u8]) {
        match op {
            SendOp::Message(_) | SendOp::Fragment(_, true) => conn.unflushed_sent.set(conn.unflushed_sent.get() + 1),
            SendOp::Ping => self.ping_sent(conn, data),
            SendOp::Fragment(_, false) | SendOp::Pong => {}
        }
    }

    fn after_send(&self, conn: &Rc<Conn>, pending: usize) -> Result<(), Error> {
        conn.handle.set_buffered(pending);
        if pending == 0 {
            // Written whole at once: no flush follows to count it.
            self.count_sent(conn, 0);
        }
        if pending > conn.cfg().high_water {
            conn.want_drain.set(true);
        }
        if pending > 0 {
            self.mark_dirty(conn);
        }
        Ok(())
    }

    /// A large message with nothing queued before it goes to the socket at once, header and
    /// payload in one `writev`, without copying the payload; only what the socket does not
    /// take is buffered. `None` when the frame can't be written as is (a client must mask
    /// the payload, a compressed message must be compressed first).
    fn write_direct(
        &self,
        conn: &Conn,
        out: &mut OutBuf,
        kind: MessageKind,
        data: &[u8],
    ) -> Option<Result<(), SendError>> {
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = match out.writer.direct_header(kind, data.len(), &mut header)? {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        let mut written = 0;
        if let Some(s) = conn.stream.borrow_mut().as_mut() {
            loop {
                match s.write_two(&header[..n], data) {
                    Ok(w) => written = w,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    // Anything else shows again when the buffered rest is flushed.
                    Err(_) => {}
                }
                break;
            }
        }
        if written > 0 {
            self.count_sent(conn, written);
        }
        if written < n {
            out.buf.extend_from_slice(&header[written..n]);
            out.buf.extend_from_slice(data);
        } else {
            out.buf.extend_from_slice(&data[written - n..]);
        }
        Some(Ok(()))
    }

    /// The loop's connection for a handle, if it still lives.
    pub fn conn_of(&self, handle: &ConnHandle) -> Option<Rc<Conn>> {
        let key = handle.key()?;
        self.conns.borrow().get(key).cloned()
    }

    // ---- application requests ---------------------------------------------------------

    /// `wsffi_close`.
    pub fn close_conn(&self, handle: &Arc<ConnHandle>, code: Option<u16>, reason: &[u8]) {
        let Some(conn) = self.conn_of(handle) else { return };
        self.reconnect_stop(&conn);
        if conn.phase.get() == Phase::Backoff {
            self.close_during_backoff(&conn);
            return;
        }
        self.start_close(&conn, code, reason);
    }

    /// Begins the close handshake from our side.
    pub fn start_close(&self, conn: &Rc<Conn>, code: Option<u16>, reason: &[u8]) {
        match conn.phase.get() {
            Phase::Open => {
                if !self.queue_close(conn, code, reason) {
                    return;
                }
                self.enter_closing(conn);
                conn.phase_deadline.set(Some(Instant::now() + conn.cfg().close_timeout));
                self.arm(conn);
                self.mark_dirty(conn);
            }
            Phase::Closing | Phase::Closed => {}
            _ => {
                conn.set_failure(Error::Closed, "closed before the connection was established");
                conn.terminate();
                self.mark_dirty(conn);
            }
        }
    }

    /// `wsffi_terminate`.
    pub fn terminate_conn(&self, handle: &Arc<ConnHandle>) {
        let Some(conn) = self.conn_of(handle) else { return };
        self.reconnect_stop(&conn);
        conn.terminate();
        self.mark_dirty(&conn);
    }

    /// `wsffi_conn_pause` / `wsffi_conn_resume`.
    pub fn set_paused(&self, handle: &Arc<ConnHandle>, paused: bool) {
        let Some(conn) = self.conn_of(handle) else { return };
        let was = conn.paused.replace(paused);
        if was && !paused {
            // Edge-triggered polling will not repeat an old edge: read on our own.
            self.resumed.borrow_mut().push(conn);
        }
    }

    /// Replaces a connection's events (see [`ConnHandle::replace_events`]).
    pub fn replace_events(
        &self,
        handle: &Arc<ConnHandle>,
        f: impl FnOnce(Option<&dyn ConnEvents>) -> Box<dyn ConnEvents>,
    ) {
        let Some(conn) = self.conn_of(handle) else {
            // Closed meanwhile: nothing to replace; `f` still builds (and drops) the new object.
            drop(f(None));
            return;
        };
        let old = conn.events();
        let new = f(old.as_deref());
        *conn.events.borrow_mut() = Some(Rc::from(new));
        drop(old);
    }

    fn run_resumed(&self) {
        let list = std::mem::take(&mut *self.resumed.borrow_mut());
        for conn in list {
            match conn.phase.get() {
                Phase::Open | Phase::Closing => self.pump(&conn, true),
                Phase::ServerHandshake => self.server_handshake_readable(&conn),
                _ => {}
            }
            self.settle(&conn);
        }
    }

    fn run_command(&self, cmd: Command) {
        match cmd {
            Command::Call(f) => f(self),
            Command::Send { conn: handle, op, data } => {
                if let Some(conn) = self.conn_of(&handle) {
                    if conn.phase.get() == Phase::Open && !conn.is_terminating() {
                        let pending = {
                            let mut out = conn.output.borrow_mut();
                            if out.encode(op, &data).is_ok() {
                                self.sent(&conn, op, &data);
                            }
                            out.pending()
                        };
                        // Counted as buffered before it stops counting as queued, so
                        // buffered_amount never dips to 0 while the message is in hand.
                        conn.handle.set_buffered(pending);
                        if pending > conn.cfg().high_water {
                            conn.want_drain.set(true);
                        }
                        self.mark_dirty(&conn);
                    }
                }
                handle.unqueue(data.len());
            }
            Command::Shutdown => {
                if self.stopping.get().is_none() {
                    self.begin_shutdown();
                }
            }
        }
    }

    fn begin_shutdown(&self) {
        if self.is_stopping() {
            return;
        }
        self.stopping.set(Some(Instant::now() + self.shared.config.shutdown_grace));
        let listeners: Vec<Rc<Listener>> = self.listeners.borrow().values().cloned().collect();
        for listener in listeners {
            self.remove_listener(&listener);
        }
        let conns: Vec<Rc<Conn>> = self.conns.borrow().values().cloned().collect();
        for conn in conns {
            match conn.phase.get() {
                Phase::Open => self.start_close(&conn, Some(codes::GOING_AWAY), b"reactor shutting down"),
                Phase::Closing | Phase::Closed => {}
                _ => {
                    conn.set_failure(Error::ShutDown, "reactor shut down");
                    conn.terminate();
                    self.mark_dirty(&conn);
                }
            }
        }
    }

    // ---- timers -----------------------------------------------------------------------

    /// Makes sure a timer fires at the connection's next deadline.
    pub fn arm(&self, conn: &Conn) {
        let Some(next) = self.next_deadline(conn) else { return };
        if conn.armed.get().is_none_or(|armed| next < armed) {
            conn.armed.set(Some(next));
            self.timers.borrow_mut().schedule(next, conn.key);
        }
    }

    fn next_deadline(&self, conn: &Conn) -> Option<Instant> {
        let mut next = conn.phase_deadline.get();
        if conn.phase.get() == Phase::Open {
            let last = conn.last_input.get();
            if let Some(p) = conn.cfg().ping_interval {
                let at = conn.ping_sent.get().map_or(last + p, |sent| sent + p);
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            if let Some(idle) = conn.cfg().idle_timeout {
                let at = last + idle;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
            if let (BackpressurePolicy::Close { grace, .. }, Some(since)) =
                (conn.cfg().backpressure, conn.over_since.get())
            {
                let at = since + grace;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
    }

    // ---- application timers ----------------------------------------------------------

    /// Schedules an application timer (see `app_timers`).
    pub fn add_app_timer(&self, delay: Duration, repeat: Option<Duration>, callback: TimerFn) -> TimerId {
        self.app_timers.borrow_mut().add(Instant::now(), delay, repeat, callback)
    }

    /// Cancels a pending application timer; `AlreadyDone` when it has run its last time or
    /// was cancelled before.
    pub fn cancel_app_timer(&self, id: TimerId) -> Result<(), Error> {
        let taken = self.app_timers.borrow_mut().cancel(id).ok_or(Error::AlreadyDone)?;
        self.drop_where_callbacks_run(taken);
        Ok(())
    }

    /// Application callbacks (and their user data) end where they run: here, or in
    /// dispatch mode on the dispatching thread.
    fn drop_where_callbacks_run<T: Send + 'static>(&self, value: T) {
        match self.shared.dispatch_queue() {
            Some(queue) => queue.push(Box::new(move || drop(value))),
            None => drop(value),
        }
    }

    fn run_app_timers(&self) {
        let now = Instant::now();
        if self.app_timers.borrow().next_deadline().is_none_or(|at| at > now) {
            return;
        }
        let mut due = Vec::new();
        self.app_timers.borrow_mut().take_due(now, &mut due);
        // The schedule is not borrowed while callbacks run: they may add or cancel timers.
        match self.shared.dispatch_queue() {
            Some(queue) => due.into_iter().for_each(|run| run.dispatch(queue)),
            None => due.into_iter().for_each(|run| run.run()),
        }
    }

    fn run_timers(&self, due: &mut Vec<(Instant, Key)>) {
        let now = Instant::now();
        self.timers.borrow_mut().pop_due(now, due);
        for (at, key) in due.drain(..) {
            let Some(conn) = self.conns.borrow().get(key).cloned() else { continue };
            if conn.armed.get() != Some(at) {
                continue;
            }
            conn.armed.set(None);
            self.on_timer(&conn, now);
            self.arm(&conn);
            self.settle(&conn);
        }
    }

    fn on_timer(&self, conn: &Rc<Conn>, now: Instant) {
        if conn.phase_deadline.get().is_some_and(|d| d <= now) {
            conn.phase_deadline.set(None);
            if matches!(conn.teardown.get(), Teardown::AfterFlush | Teardown::Draining { .. }) {
                // The peer does not read what we still owe it, or does not close; give up.
                // Only a close frame of ours that never got out makes that an error.
                if conn.closing.borrow().is_unwritten() {
                    conn.set_failure(Error::Timeout, "close handshake timed out");
                }
                conn.terminate();
                self.mark_dirty(conn);
                return;
            }
            if conn.phase.get() == Phase::Backoff {
                self.redial(conn);
                return;
            }
            let what = match conn.phase.get() {
                Phase::Backoff => return,
                Phase::Resolving | Phase::Connecting => "connect timed out",
                Phase::Proxy => "connect timed out (opening the proxy tunnel)",
                Phase::ClientHandshake | Phase::ResponseBody | Phase::ServerHandshake => "opening handshake timed out",
                Phase::Closing => "close handshake timed out",
                Phase::Open | Phase::Closed => return,
            };
            if conn.phase.get() == Phase::ServerHandshake {
                self.server_handshake_timed_out(conn);
            }
            // Once both close frames went over the wire only the TCP close is missing (a
            // server that keeps the socket, or a peer that still sends while we drain): we
            // may close it ourselves, and the connection closed cleanly.
            if !conn.closing.borrow().is_complete() {
                conn.set_failure(Error::Timeout, what);
            }
            conn.terminate();
            self.mark_dirty(conn);
            return;
        }
        if conn.phase.get() != Phase::Open {
            return;
        }
        if let (BackpressurePolicy::Close { code, grace }, Some(since)) =
            (conn.cfg().backpressure, conn.over_since.get())
        {
            if now >= since + grace {
                // A slow consumer: its queue (at most the mark plus a message) goes out ahead
                // of the close frame, or the close timeout drops the socket and frees it.
                let message = format!("output above the high-water mark for {} ms (slow consumer)", grace.as_millis());
                conn.set_failure(Error::Backpressure, message);
                self.start_close(conn, Some(code), b"slow consumer");
                return;
            }
        }
        let last = conn.last_input.get();
        if let Some(idle) = conn.cfg().idle_timeout {
            if now >= last + idle {
                conn.set_failure(Error::Timeout, "idle timeout");
                self.start_close(conn, Some(codes::GOING_AWAY), b"idle timeout");
                return;
            }
        }
        if let Some(p) = conn.cfg().ping_interval {
            match conn.ping_sent.get() {
                Some(sent) if now >= sent + p => {
                    conn.set_failure(Error::Timeout, "no pong within the ping interval");
                    conn.terminate();
                    self.mark_dirty(conn);
                }
                None if now >= last + p => {
                    {
                        let mut out = conn.output.borrow_mut();
                        let out = &mut *out;
                        let _ = out.writer.control(&mut out.buf, OpCode::Ping, b"");
                    }
                    conn.ping_sent.set(Some(now));
                    self.ping_sent(conn, b"");
                    self.mark_dirty(conn);
                }
                _ => {}
            }
        }
    }

    // ---- ending -----------------------------------------------------------------------

    /// Ends the connection when its state says it is over.
    pub fn settle(&self, conn: &Rc<Conn>) {
        if conn.is_closed() {
            return;
        }
        match conn.teardown.get() {
            Teardown::Running | Teardown::Draining { .. } => {}
            Teardown::Now => self.finalize(conn),
            Teardown::AfterFlush => {
                let flushed = conn.output.borrow().pending() == 0
                    && !conn.stream.borrow().as_ref().is_some_and(|s| s.tls_wants_write());
                if flushed {
                    self.begin_drain(conn);
                    if conn.is_terminating() {
                        self.finalize(conn);
                    }
                }
            }
            Teardown::PeerEof => {
                if conn.reader.borrow().close_received() {
                    // A peer may half-close after its close frame; it can still read our
                    // answer. One that has gone entirely only misses the answer: no error.
                    let failed_before = conn.failure.borrow().is_some();
                    self.flush(conn);
                    if !failed_before {
                        conn.take_failure();
                    }
                } else {
                    conn.set_failure(Error::ConnectionReset, "connection closed without a close frame");
                }
                self.finalize(conn);
            }
        }
    }

    /// Our output is all written: half-close, then read and throw away what the peer still
    /// sends until its EOF, so closing the socket with unread input does not reset the
    /// connection (a reset can destroy our close frame before the peer reads it). Bounded by
    /// [`DRAIN_LIMIT`] and the close timeout that `close_soon` armed.
    fn begin_drain(&self, conn: &Rc<Conn>) {
        conn.tear_down(Teardown::Draining { discarded: 0 });
        if let Some(s) = conn.stream.borrow_mut().as_mut() {
            s.close_notify();
            // A close_notify the socket did not take yet would be cut off by the half-close.
            if !s.tls_wants_write() {
                s.shutdown_write();
            }
        }
        self.drain_input(conn);
    }

    /// Reads and drops input until the socket would block; at EOF, an error or the limit
    /// the connection is to be dropped (without an error: it is closing already).
    fn drain_input(&self, conn: &Rc<Conn>) {
        let Teardown::Draining { mut discarded } = conn.teardown.get() else { return };
        // The shared buffer is taken while callbacks run; a small one does then.
        let mut shared = std::mem::take(&mut *self.read_buf.borrow_mut());
        let mut small = [0u8; 4096];
        let buf: &mut [u8] = if shared.is_empty() { &mut small } else { &mut shared };
        let done = {
            let mut stream = conn.stream.borrow_mut();
            match stream.as_mut() {
                None => true,
                Some(s) => loop {
                    match s.read(buf) {
                        Ok(0) => break true,
                        Ok(n) => {
                            discarded += n;
                            self.count_traffic(conn, |t| t.bytes_in.add(n as u64));
                            if discarded >= DRAIN_LIMIT {
                                break true;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                        Err(_) => break true,
                    }
                },
            }
        };
        if !shared.is_empty() {
            *self.read_buf.borrow_mut() = shared;
        }
        if done {
            conn.terminate();
        } else {
            conn.teardown.set(Teardown::Draining { discarded });
        }
    }

    /// The one place a connection ends: socket gone, state CLOSED, error then close
    /// callback, then destroy.
    pub fn finalize(&self, conn: &Rc<Conn>) {
        let was = conn.phase.replace(Phase::Closed);
        if was == Phase::Closed {
            return;
        }
        // Named while the socket is still there (a server connection's peer address).
        let who = log::enabled(Level::Error).then(|| self.describe(conn));
        if let Some(mut stream) = conn.stream.borrow_mut().take() {
            stream.close_notify();
            let _ = self.registry.deregister(&mut stream);
        }
        self.handshake_ended(conn);
        let failure = conn.take_failure();
        let report = conn.closing.borrow().report();
        // Every connection ends once in the counters, also one a reconnect follows; messages
        // queued but never flushed still count as sent.
        self.count_sent(conn, 0);
        self.count_end(conn, was, failure.as_ref(), &report);
        // With reconnect on, a lost connection waits for the next attempt instead.
        let failure = match self.try_reconnect(conn, failure, &report) {
            Ok(()) => return,
            Err(failure) => failure,
        };
        self.conns.borrow_mut().remove(conn.key);
        conn.handle.set_state(ready_state::CLOSED);
        conn.handle.set_buffered(0);
        *conn.input.borrow_mut() = Default::default();
        let events = conn.events.borrow_mut().take();
        if let Some(who) = who {
            Self::log_end(&who, failure.as_ref(), &report);
        }
        if let Some(events) = &events {
            if let Some((error, message)) = failure {
                events.on_error(&conn.handle, error, &message);
            }
            events.on_close(&conn.handle, &report);
        }
        // After the client's close callback, so a closing server reports its own close last.
        self.detach_from_server(conn);
        // Nothing calls into the events any more: dropping them ends the application's state.
        drop(events);
        *conn.output.borrow_mut() =
            super::conn::OutBuf { writer: crate::core::session::Writer::new(conn.role), buf: Vec::new(), sent: 0 };
    }

    /// The counters of a connection's end: the open gauge and close codes of one that was
    /// open (before it leaves its server), a TLS handshake failure of one that never opened.
    fn count_end(&self, conn: &Conn, was: Phase, failure: Option<&(Error, String)>, report: &CloseReport) {
        let stats = &self.shared.stats;
        if matches!(was, Phase::Open | Phase::Closing) {
            stats.open.sub(1);
            let sent = report.local.as_ref().map(|f| f.code);
            let received = report.peer.as_ref().map_or(codes::ABNORMAL, |f| f.code);
            let count = |sent_codes: &CloseCodes, received_codes: &CloseCodes| {
                if let Some(code) = sent {
                    sent_codes.count(code);
                }
                received_codes.count(received);
            };
            count(&stats.closes_sent, &stats.closes_received);
            if let Some(server) = conn.server.borrow().as_ref() {
                count(&server.handle.stats.closes_sent, &server.handle.stats.closes_received);
            }
        } else if let Some((Error::Tls, _)) = failure {
            match conn.role {
                crate::core::session::Role::Client => stats.tls_failures_client.add(1),
                crate::core::session::Role::Server => stats.tls_failures_server.add(1),
            }
        }
    }

    /// How log records name a connection: a client by its URL, a server connection by its
    /// peer's address.
    pub fn describe(&self, conn: &Conn) -> String {
        match conn.role {
            crate::core::session::Role::Client => {
                format!("client {}", log::quoted(&conn.handle.url().to_string_lossy()))
            }
            crate::core::session::Role::Server => {
                // The address kept at open: a socket whose peer has gone no longer tells it.
                let peer = match (conn.handle.info(), super::server::accepted_peer(conn)) {
                    (Some(info), _) => info.remote.to_string_lossy().into_owned(),
                    (None, Some(peer)) => peer.to_string(),
                    (None, None) => conn.peer_text(),
                };
                format!("server connection from {peer}")
            }
        }
    }

    /// The end of a connection: its failure (at a level by kind) and its close.
    fn log_end(who: &str, failure: Option<&(Error, String)>, report: &super::ending::CloseReport) {
        if let Some((error, message)) = failure {
            let level = match error {
                Error::Timeout | Error::ConnectionReset => Level::Info,
                Error::ShutDown => Level::Debug,
                _ => Level::Warn,
            };
            let sent = report.local.as_ref().map(|f| format!(", closing with {}", f.code)).unwrap_or_default();
            crate::log!(level, "{who}: {error}: {message}{sent}");
        }
        let first = match report.origin {
            super::ending::CloseOrigin::None => "no close frame",
            super::ending::CloseOrigin::Peer => "the peer closed first",
            super::ending::CloseOrigin::Local => "closed first here",
        };
        let clean = if report.clean { "clean" } else { "not clean" };
        crate::log!(
            Level::Debug,
            "{who}: closed with {} {} ({first}, {clean})",
            report.code,
            log::quoted(&report.reason)
        );
    }

    /// Registers a new connection's socket with the poller.
    pub fn register(&self, conn: &Conn, interest: Interest) -> std::io::Result<()> {
        let mut stream = conn.stream.borrow_mut();
        match stream.as_mut() {
            Some(s) => s.register(&self.registry, conn.token(), interest),
            None => Ok(()),
        }
    }

    /// Changes a connection's poll interest.
    pub fn reregister(&self, conn: &Conn, interest: Interest) {
        if let Some(s) = conn.stream.borrow_mut().as_mut() {
            let _ = s.reregister(&self.registry, conn.token(), interest);
        }
    }
}

/// Maps a writer refusal to a status.
pub fn send_error_status(e: SendError) -> Error {
    match e {
        SendError::Closed => Error::Closed,
        SendError::FragmentInProgress => Error::InvalidParameter,
        SendError::ControlTooLong => Error::TooBig,
        SendError::Compression => Error::Internal,
    }
}
