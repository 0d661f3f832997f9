//! A connection: the handle every thread may hold ([`ConnHandle`], the C `wsffi_conn`) and
//! the state only the reactor thread touches ([`Conn`]).

use std::cell::{Cell, RefCell};
use std::ffi::{c_void, CString};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mio::Token;
use once_cell::sync::OnceCell;

use super::bufpool;
use super::config::{BackpressurePolicy, ConnConfig};
use super::dispatch::{ConnForwarder, ConnTarget};
use super::ending::{CloseHandshake, Teardown};
use super::events::ConnEvents;
use super::slab::Key;
use super::stats::{ConnCounters, ConnStats};
use super::stream::Stream;
use super::{with_loop, Command, Shared};
use crate::core::protocol::frame::OpCode;
use crate::core::protocol::{close, utf8};
use crate::core::session::{MessageKind, Reader, Role, SendError, Writer};
use crate::reactor::error::Error;

pub use super::ending::{CloseFrame, CloseOrigin, CloseReport};

/// Largest payload of a ping or pong (RFC 6455 §5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// Ready states, as in the browser API.
pub mod ready_state {
    /// Connecting or handshaking.
    pub const CONNECTING: u8 = 0;
    /// Open.
    pub const OPEN: u8 = 1;
    /// Close handshake under way.
    pub const CLOSING: u8 = 2;
    /// Closed.
    pub const CLOSED: u8 = 3;
}

/// What a send puts on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOp {
    /// A whole message.
    Message(MessageKind),
    /// One fragment of a message.
    Fragment(MessageKind, bool),
    /// A ping.
    Ping,
    /// A pong.
    Pong,
}

/// Negotiated details, fixed once the connection opens.
#[derive(Debug, Default)]
pub struct ConnInfo {
    /// Chosen subprotocol (None for none: an empty CString would still be an allocation).
    pub protocol: Option<CString>,
    /// Negotiated extensions (None for none).
    pub extensions: Option<CString>,
    /// Peer address.
    pub remote: CString,
    /// The ALPN protocol agreed on in the TLS handshake (None without TLS or ALPN).
    pub tls_alpn: Option<CString>,
    /// Subject of the TLS peer's certificate (None without TLS or a peer certificate).
    pub tls_peer_subject: Option<CString>,
    /// A client's 101 response (status, reason, headers; no body). None on the server side.
    pub handshake_response: Option<super::views::ResponseView>,
}

impl ConnInfo {
    /// Fills the TLS details from the connection's stream.
    pub fn with_tls_of(mut self, conn: &Conn) -> Self {
        if let Some(tls) = conn.stream.borrow().as_ref().and_then(|s| s.tls()) {
            self.tls_alpn = nonempty_cstring(tls.alpn().as_deref());
            self.tls_peer_subject = nonempty_cstring(tls.peer_subject().as_deref());
        }
        self
    }
}

/// The details of every connection a handle has had, newest last. A reconnect adds one and
/// keeps the older ones, so strings handed out for an earlier connection stay valid as long
/// as the handle (lock-free readers on any thread, one writer: the reactor).
#[derive(Default)]
struct InfoChain {
    info: OnceCell<ConnInfo>,
    next: OnceCell<Box<InfoChain>>,
}

impl InfoChain {
    fn latest(&self) -> Option<&ConnInfo> {
        let mut node = self;
        while let Some(next) = node.next.get() {
            node = next;
        }
        node.info.get()
    }

    fn push(&self, info: ConnInfo) {
        let mut node = self;
        loop {
            if node.info.get().is_none() {
                let _ = node.info.set(info);
                return;
            }
            match node.next.get() {
                Some(next) => node = next,
                None => {
                    let _ =
                        node.next.set(Box::new(InfoChain { info: OnceCell::with_value(info), next: OnceCell::new() }));
                    return;
                }
            }
        }
    }
}

impl Drop for InfoChain {
    fn drop(&mut self) {
        // Iteratively: a long-lived connection may have reconnected many times.
        let mut next = self.next.take();
        while let Some(mut node) = next {
            next = node.next.take();
        }
    }
}

/// The C `wsffi_conn`: reference counted, usable from any thread.
pub struct ConnHandle {
    pub(crate) shared: Arc<Shared>,
    key: OnceCell<Key>,
    state: AtomicU8,
    buffered: AtomicUsize,
    queued: AtomicUsize,
    high_water: AtomicUsize,
    /// The back-pressure policy drops whole messages above the high-water mark.
    drops: AtomicBool,
    /// Messages dropped for this connection (policy `Drop`, and broadcasts that skipped it).
    dropped: AtomicU64,
    /// The server's count of dropped messages (server side, once routed).
    server_dropped: OnceCell<Arc<AtomicU64>>,
    fragmenting: AtomicBool,
    /// A send from another thread was refused for back-pressure: `on_drain` is owed.
    drain_wanted: AtomicBool,
    /// The application closed or terminated the connection: no more message parts.
    app_closed: AtomicBool,
    /// Between a lost connection and the next open (reconnect on): sends are refused with
    /// `Reconnecting`, not `NotOpen`.
    reconnecting: AtomicBool,
    user: AtomicPtr<c_void>,
    url: OnceCell<CString>,
    info: InfoChain,
    /// Dispatch mode: the application's events, which jobs look up when they run.
    dispatch: Option<Arc<ConnTarget>>,
    /// Counters, kept with the handle so they outlive the connection.
    pub(crate) stats: ConnStats,
}

/// `s` as a C string, None when empty.
pub fn nonempty_cstring(s: Option<&str>) -> Option<CString> {
    s.filter(|s| !s.is_empty()).map(|s| CString::new(s.replace('\0', "")).unwrap_or_default())
}

impl ConnHandle {
    /// A handle for a connection that does not exist on the loop yet.
    pub fn new(shared: Arc<Shared>, url: CString, config: &ConnConfig) -> Self {
        let url_cell = OnceCell::new();
        if !url.as_bytes().is_empty() {
            let _ = url_cell.set(url);
        }
        let dispatch = shared.dispatch_queue().map(|_| Arc::new(ConnTarget::default()));
        ConnHandle {
            shared,
            key: OnceCell::new(),
            state: AtomicU8::new(ready_state::CONNECTING),
            buffered: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            high_water: AtomicUsize::new(config.high_water),
            drops: AtomicBool::new(config.backpressure == BackpressurePolicy::Drop),
            dropped: AtomicU64::new(0),
            server_dropped: OnceCell::new(),
            fragmenting: AtomicBool::new(false),
            drain_wanted: AtomicBool::new(false),
            app_closed: AtomicBool::new(false),
            reconnecting: AtomicBool::new(false),
            user: AtomicPtr::new(std::ptr::null_mut()),
            url: url_cell,
            info: InfoChain::default(),
            dispatch,
            stats: ConnStats::default(),
        }
    }

    pub(crate) fn key(&self) -> Option<Key> {
        self.key.get().copied()
    }

    pub(crate) fn set_key(&self, key: Key) {
        let _ = self.key.set(key);
    }

    /// Current ready state (a `ready_state` value).
    pub fn ready_state(&self) -> u8 {
        if self.shared.is_stopped() {
            return ready_state::CLOSED;
        }
        self.state.load(Ordering::Acquire)
    }

    pub(crate) fn set_state(&self, s: u8) {
        self.state.store(s, Ordering::Release);
    }

    /// The connection's counters now (see [`super::stats`]); from any thread, also after
    /// the connection closed (then they are final).
    pub fn stats(&self) -> ConnCounters {
        ConnCounters {
            traffic: self.stats.traffic.snapshot(),
            buffered: self.buffered_amount() as u64,
            last_ping_rtt: self.stats.last_rtt(),
            dropped: self.dropped_messages(),
        }
    }

    /// Bytes accepted by sends and not yet written to the socket.
    pub fn buffered_amount(&self) -> usize {
        self.buffered.load(Ordering::Relaxed) + self.queued.load(Ordering::Relaxed)
    }

    pub(crate) fn set_buffered(&self, n: usize) {
        self.buffered.store(n, Ordering::Relaxed);
    }

    /// The URL (client) or request target (server); empty before a server handshake.
    pub fn url(&self) -> &std::ffi::CStr {
        self.url.get().map_or(c"", |u| u.as_c_str())
    }

    pub(crate) fn set_url(&self, url: CString) {
        let _ = self.url.set(url);
    }

    /// Takes the output limits of `config` and the server's count of dropped messages (a
    /// server connection once routed).
    pub(crate) fn set_limits(&self, config: &ConnConfig, server_dropped: Option<&Arc<AtomicU64>>) {
        self.high_water.store(config.high_water, Ordering::Relaxed);
        self.drops.store(config.backpressure == BackpressurePolicy::Drop, Ordering::Relaxed);
        if let Some(count) = server_dropped {
            let _ = self.server_dropped.set(count.clone());
        }
    }

    /// Messages dropped for this connection because its output was above the high-water
    /// mark: sends under the `Drop` policy and broadcasts that skipped it (any policy).
    pub fn dropped_messages(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counts one message dropped for this connection (and its server).
    pub(crate) fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = self.server_dropped.get() {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The answer to a send above the high-water mark: a whole message or a control frame
    /// is dropped under the `Drop` policy (and counted); anything else is refused.
    pub(crate) fn over_mark(&self, op: SendOp) -> Error {
        if self.drops.load(Ordering::Relaxed) && !matches!(op, SendOp::Fragment(..)) {
            self.count_drop();
            Error::Dropped
        } else {
            Error::Backpressure
        }
    }

    /// Negotiated details of the connection that opened last, once open.
    pub fn info(&self) -> Option<&ConnInfo> {
        self.info.latest()
    }

    pub(crate) fn set_info(&self, info: ConnInfo) {
        self.info.push(info);
    }

    /// Is the connection between a loss and the next open (reconnect on)?
    pub fn is_reconnecting(&self) -> bool {
        self.reconnecting.load(Ordering::Acquire)
    }

    pub(crate) fn set_reconnecting(&self, on: bool) {
        self.reconnecting.store(on, Ordering::Release);
    }

    /// The connection was lost and will be dialled again: CONNECTING, nothing buffered, no
    /// message half sent.
    pub(crate) fn reconnect_reset(&self) {
        self.set_reconnecting(true);
        self.set_state(ready_state::CONNECTING);
        self.set_buffered(0);
        self.fragmenting.store(false, Ordering::Release);
    }

    /// The user data pointer last set.
    pub fn user_data(&self) -> *mut c_void {
        self.user.load(Ordering::Acquire)
    }

    pub(crate) fn mirror_user_data(&self, p: *mut c_void) {
        self.user.store(p, Ordering::Release);
    }

    fn check_sendable(&self) -> Result<(), Error> {
        match self.ready_state() {
            ready_state::OPEN => Ok(()),
            ready_state::CONNECTING if self.is_reconnecting() => Err(Error::Reconnecting),
            ready_state::CONNECTING => Err(Error::NotOpen),
            _ => Err(Error::Closed),
        }
    }

    /// Queues data on the connection: appended straight to the output buffer on the reactor
    /// thread, posted as a command from other threads.
    pub fn send(self: &Arc<Self>, op: SendOp, data: &[u8]) -> Result<(), Error> {
        self.check_sendable()?;
        // Message order rules are checked here so calls from any thread get the same answer.
        match op {
            SendOp::Message(_) if self.fragmenting.load(Ordering::Acquire) => return Err(Error::InvalidParameter),
            // The loop would drop a posted control frame its writer refuses, after the send
            // had already returned Ok.
            SendOp::Ping | SendOp::Pong if data.len() > MAX_CONTROL_PAYLOAD => return Err(Error::TooBig),
            _ => {}
        }
        let r = self.send_unchecked(op, data);
        // Only a fragment that was taken starts or ends a message: a refused one (above all
        // for back-pressure, to be sent again after on_drain) changes nothing.
        if let (SendOp::Fragment(_, fin), Ok(())) = (op, &r) {
            self.fragmenting.store(!fin, Ordering::Release);
        }
        r
    }

    fn send_unchecked(self: &Arc<Self>, op: SendOp, data: &[u8]) -> Result<(), Error> {
        if let Some(r) = with_loop(&self.shared, |lp| lp.send_now(self, op, data)) {
            return r;
        }
        if self.buffered_amount() > self.high_water.load(Ordering::Relaxed) {
            // The loop fires on_drain once the output falls to the low-water mark.
            // The loop may have drained everything between the check above and the flag, so
            // ask it to look again (a refusal is rare; this costs nothing on the fast path).
            self.drain_wanted.store(true, Ordering::Release);
            let me = self.clone();
            let _ = self.shared.post(Command::Call(Box::new(move |lp| lp.recheck_drain(&me))));
            return Err(self.over_mark(op));
        }
        self.queued.fetch_add(data.len(), Ordering::Relaxed);
        let r = self.shared.post(Command::Send { conn: self.clone(), op, data: data.to_vec() });
        if r.is_err() {
            self.queued.fetch_sub(data.len(), Ordering::Relaxed);
        }
        r
    }

    /// Takes the "a send from another thread was refused" flag.
    pub(crate) fn take_drain_wanted(&self) -> bool {
        self.drain_wanted.swap(false, Ordering::AcqRel)
    }

    /// Called by the loop when a posted send has been applied (or dropped).
    pub(crate) fn unqueue(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
    }

    /// Starts the close handshake (or aborts a connection still connecting). `code` must be
    /// one a peer accepts (1000-1003, 1007-1014, 3000-4999) and `reason` UTF-8 of at most 123
    /// bytes, empty without a code: `InvalidParameter` (`TooBig` for a long reason) otherwise,
    /// and nothing changes.
    pub fn close(self: &Arc<Self>, code: Option<u16>, reason: Vec<u8>) -> Result<(), Error> {
        if reason.len() > close::MAX_REASON_LEN {
            return Err(Error::TooBig);
        }
        let valid = match code {
            None => reason.is_empty(),
            Some(c) => close::is_sendable_code(c) && utf8::validate(&reason).is_ok(),
        };
        if !valid {
            return Err(Error::InvalidParameter);
        }
        if self.ready_state() >= ready_state::CLOSING {
            return Err(Error::Closed);
        }
        let me = self.clone();
        self.app_closed.store(true, Ordering::Release);
        self.shared.run_async(move |lp| lp.close_conn(&me, code, &reason))?;
        // Visible at once to every thread: no send is accepted after a close.
        let _ =
            self.state.compare_exchange(ready_state::OPEN, ready_state::CLOSING, Ordering::AcqRel, Ordering::Acquire);
        Ok(())
    }

    /// Drops the socket without a close handshake.
    pub fn terminate(self: &Arc<Self>) -> Result<(), Error> {
        if self.ready_state() == ready_state::CLOSED {
            return Err(Error::Closed);
        }
        self.app_closed.store(true, Ordering::Release);
        let me = self.clone();
        self.shared.run_async(move |lp| lp.terminate_conn(&me))
    }

    /// Has the application closed or terminated this connection? Message parts that
    /// arrive (or wait in the dispatch queue) after that are not delivered.
    pub fn closed_by_app(&self) -> bool {
        self.app_closed.load(Ordering::Acquire)
    }

    /// Reconnect on: no further attempt. During the wait the connection ends now; an open
    /// connection or an attempt under way is the last. Nothing happens without reconnect.
    pub fn stop_reconnect(self: &Arc<Self>) -> Result<(), Error> {
        if self.ready_state() == ready_state::CLOSED {
            return Err(Error::Closed);
        }
        let me = self.clone();
        self.shared.run_async(move |lp| lp.stop_reconnect(&me))
    }

    /// Stops (`true`) or restarts reading from the peer.
    pub fn set_paused(self: &Arc<Self>, paused: bool) -> Result<(), Error> {
        if self.ready_state() == ready_state::CLOSED {
            return Err(Error::Closed);
        }
        let me = self.clone();
        self.shared.run_async(move |lp| lp.set_paused(&me, paused))
    }

    /// Replaces the connection's events. The old object is dropped on the reactor thread
    /// once no call into it is running.
    pub fn set_events(self: &Arc<Self>, events: Box<dyn ConnEvents>) -> Result<(), Error> {
        self.replace_events(move |_| events)
    }

    /// Replaces the connection's events with what `f` makes of the current ones (`None`
    /// when there are none), on the reactor thread.
    pub fn replace_events(
        self: &Arc<Self>,
        f: impl FnOnce(Option<&dyn ConnEvents>) -> Box<dyn ConnEvents> + Send + 'static,
    ) -> Result<(), Error> {
        if let Some(target) = &self.dispatch {
            // Jobs already queued see the new events: the dispatching thread installs them
            // from `on_connection` before the messages behind it run.
            return target.replace(f);
        }
        if self.ready_state() == ready_state::CLOSED {
            return Err(Error::Closed);
        }
        let me = self.clone();
        self.shared.run_async(move |lp| lp.replace_events(&me, f))
    }
}

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Client: waiting for DNS.
    Resolving,
    /// Client: TCP connect under way.
    Connecting,
    /// Client: opening the tunnel through a proxy.
    Proxy,
    /// Client: request sent, reading the response.
    ClientHandshake,
    /// Client: reading the body of a non-101 response.
    ResponseBody,
    /// Server: reading the request / deciding.
    ServerHandshake,
    /// Open.
    Open,
    /// Close frame sent or received.
    Closing,
    /// Client with reconnect on: the connection was lost; waiting to dial again.
    Backoff,
    /// Finished; nothing more happens.
    Closed,
}

/// Where a connection's opening handshake stands: boxed, so an open connection pays one
/// pointer for it.
pub(super) enum HandshakeState {
    /// Connecting, sending the request, reading the response.
    Client(Box<super::client::ClientState>),
    /// Reading the request, waiting for a decision or an HTTP answer.
    Server(Box<super::server::ServerState>),
}

/// Bytes received and not yet processed (an incomplete frame or handshake head).
#[derive(Debug, Default)]
pub struct InBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl InBuf {
    /// Nothing buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Buffered bytes.
    pub fn data(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.end]
    }

    /// Drops `n` processed bytes from the front; releases the memory when empty.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.end {
            // Idle connections keep no input buffer.
            bufpool::give_input(std::mem::take(self).buf);
        }
    }

    /// Room to read at least `min` more bytes (and a whole frame of `frame_len` bytes).
    pub fn spare(&mut self, min: usize, frame_len: usize) -> &mut [u8] {
        let want = (self.end - self.start + min).max(frame_len);
        if self.start > 0 && (self.buf.len() - self.end < min || self.start > self.buf.len() / 2) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.start < want {
            self.grow(want);
        }
        &mut self.buf[self.end..]
    }

    /// Makes `buf[start..]` at least `want` bytes long, from the pool for large sizes.
    fn grow(&mut self, want: usize) {
        if want >= bufpool::POOLED_MIN {
            if let Some(mut fresh) = bufpool::take_input(want) {
                let len = self.end - self.start;
                if fresh.len() < want {
                    fresh.resize(want, 0);
                }
                fresh[..len].copy_from_slice(&self.buf[self.start..self.end]);
                bufpool::give_input(std::mem::replace(&mut self.buf, fresh));
                self.start = 0;
                self.end = len;
                return;
            }
        }
        self.buf.resize(self.start + want, 0);
    }

    /// Records `n` bytes read into the spare area.
    pub fn filled(&mut self, n: usize) {
        self.end += n;
    }

    /// Stores a copy of `bytes` (the unprocessed tail of the shared read buffer).
    pub fn store(&mut self, bytes: &[u8], frame_len: usize) {
        let space = self.spare(bytes.len(), frame_len);
        space[..bytes.len()].copy_from_slice(bytes);
        self.filled(bytes.len());
    }

    /// Number of bytes buffered.
    pub fn len(&self) -> usize {
        self.end - self.start
    }
}

/// Output side: the frame writer and the bytes waiting for the socket.
#[derive(Debug)]
pub struct OutBuf {
    /// Frame encoder.
    pub writer: Writer,
    /// Encoded bytes; `buf[sent..]` is still to be written.
    pub buf: Vec<u8>,
    /// Bytes of `buf` already written.
    pub sent: usize,
}

impl OutBuf {
    /// Bytes waiting for the socket.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Encodes one send.
    pub fn encode(&mut self, op: SendOp, data: &[u8]) -> Result<(), SendError> {
        match op {
            SendOp::Message(kind) => self.writer.message(&mut self.buf, kind, data),
            SendOp::Fragment(kind, fin) => self.writer.fragment(&mut self.buf, kind, data, fin),
            SendOp::Ping => self.writer.control(&mut self.buf, OpCode::Ping, data),
            SendOp::Pong => self.writer.control(&mut self.buf, OpCode::Pong, data),
        }
    }
}

/// Reactor-side state of one connection.
pub struct Conn {
    /// The shared handle; the loop holds this reference while the connection lives.
    pub handle: Arc<ConnHandle>,
    /// Slab key (also the mio token).
    pub key: Key,
    /// Client or server.
    pub role: Role,
    /// Settings (a server connection takes its server's once routed); shared with the
    /// server's other connections.
    pub config: RefCell<Rc<ConnConfig>>,
    /// The socket, once there is one.
    pub stream: RefCell<Option<Stream>>,
    /// Life cycle.
    pub phase: Cell<Phase>,
    /// Frame reader (borrowed while message callbacks run).
    pub reader: RefCell<Reader>,
    /// Unprocessed input.
    pub input: RefCell<InBuf>,
    /// Output.
    pub output: RefCell<OutBuf>,
    /// The application's events (None once closed, or when nobody listens).
    pub events: RefCell<Option<Rc<dyn ConnEvents>>>,
    /// Reading stopped by the application.
    pub paused: Cell<bool>,
    /// On the loop's flush list.
    pub dirty: Cell<bool>,
    /// Reading stopped because the output passed the high-water mark (a peer that sends
    /// but never reads, pings included, must not grow our memory); resumes at low water.
    pub throttled: Cell<bool>,
    /// WRITABLE interest registered.
    pub want_writable: Cell<bool>,
    /// The buffered amount passed the high-water mark: fire drain when it falls.
    pub want_drain: Cell<bool>,
    /// Since when the output has been above the high-water mark without draining to the
    /// low-water mark (for the `Close` back-pressure policy).
    pub over_since: Cell<Option<Instant>>,
    /// The close frames sent and received; what the close callback will say.
    pub closing: RefCell<CloseHandshake>,
    /// What takes the socket down, if anything yet.
    pub teardown: Cell<Teardown>,
    /// An error to report before close.
    pub failure: RefCell<Option<Box<(Error, String)>>>,
    /// Deadline of the current phase (connect, handshake, close).
    pub phase_deadline: Cell<Option<Instant>>,
    /// The deadline currently in the timer heap.
    pub armed: Cell<Option<Instant>>,
    /// Last time input arrived.
    pub last_input: Cell<Instant>,
    /// When the last automatic ping went out (cleared by input).
    pub ping_sent: Cell<Option<Instant>>,
    /// The last ping sent (automatic or the application's) and a tag of its payload, until
    /// its pong arrives: the round trip in the counters.
    pub rtt_probe: Cell<Option<(Instant, u32)>>,
    /// Messages queued since the last flush: the sent-message counters take them with the
    /// flush's bytes, so a send costs one add here, not three counters.
    pub unflushed_sent: Cell<u64>,
    /// The opening handshake's progress, until it ends.
    pub(super) handshake: RefCell<Option<HandshakeState>>,
    /// The server this connection belongs to (server side).
    pub server: RefCell<Option<Rc<super::server::Server>>>,
    /// Slot in the server's client set.
    pub server_slot: Cell<Option<Key>>,
    /// A client with reconnect on: the policy, the URL to dial again, the attempts.
    pub(super) reconnect: RefCell<Option<Box<super::reconnect::ReconnectState>>>,
}

impl Conn {
    /// What the reactor calls: `events` itself, or in dispatch mode a forwarder to them.
    fn reactor_side_events(handle: &ConnHandle, events: Option<Box<dyn ConnEvents>>) -> Option<Rc<dyn ConnEvents>> {
        match (&handle.dispatch, handle.shared.dispatch_queue()) {
            (Some(target), Some(queue)) => {
                if let Some(events) = events {
                    target.install(events);
                }
                Some(Rc::new(ConnForwarder::new(target.clone(), queue.clone())))
            }
            _ => events.map(Rc::from),
        }
    }

    /// A connection in `phase`, without a socket yet (clients) or with one (servers).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        handle: Arc<ConnHandle>,
        key: Key,
        role: Role,
        config: Rc<ConnConfig>,
        stream: Option<Stream>,
        phase: Phase,
        events: Option<Box<dyn ConnEvents>>,
    ) -> Self {
        let reader = config.reader(role);
        let events = Self::reactor_side_events(&handle, events);
        Conn {
            handle,
            key,
            role,
            config: RefCell::new(config),
            stream: RefCell::new(stream),
            phase: Cell::new(phase),
            reader: RefCell::new(reader),
            input: RefCell::new(InBuf::default()),
            output: RefCell::new(OutBuf { writer: Writer::new(role), buf: Vec::new(), sent: 0 }),
            events: RefCell::new(events),
            paused: Cell::new(false),
            dirty: Cell::new(false),
            throttled: Cell::new(false),
            want_writable: Cell::new(false),
            want_drain: Cell::new(false),
            over_since: Cell::new(None),
            closing: RefCell::new(CloseHandshake::Idle),
            teardown: Cell::new(Teardown::Running),
            failure: RefCell::new(None),
            phase_deadline: Cell::new(None),
            armed: Cell::new(None),
            last_input: Cell::new(Instant::now()),
            ping_sent: Cell::new(None),
            rtt_probe: Cell::new(None),
            unflushed_sent: Cell::new(0),
            handshake: RefCell::new(None),
            server: RefCell::new(None),
            server_slot: Cell::new(None),
            reconnect: RefCell::new(None),
        }
    }

    /// The mio token for this connection.
    pub fn token(&self) -> Token {
        super::event_loop::conn_token(self.key)
    }

    /// Is the connection finished or finishing without further reads?
    pub fn is_closed(&self) -> bool {
        self.phase.get() == Phase::Closed
    }

    /// Takes the recorded failure, if any.
    pub fn take_failure(&self) -> Option<(Error, String)> {
        self.failure.borrow_mut().take().map(|b| *b)
    }

    /// Records the first failure (later ones are consequences).
    pub fn set_failure(&self, status: Error, message: impl Into<String>) {
        let mut f = self.failure.borrow_mut();
        if f.is_none() {
            *f = Some(Box::new((status, message.into())));
        }
    }

    /// Moves towards the end of the socket; a weaker request than the current one is ignored.
    pub fn tear_down(&self, next: Teardown) {
        self.teardown.set(self.teardown.get().escalate(next));
    }

    /// Drops the socket at the next settle (`wsffi_terminate`, a socket error, a timeout).
    pub fn terminate(&self) {
        self.tear_down(Teardown::Now);
    }

    /// Is the socket to be dropped now?
    pub fn is_terminating(&self) -> bool {
        self.teardown.get() == Teardown::Now
    }

    /// A socket read or write failed: the connection ends. After a completed close handshake
    /// that is no error (the connection already closed cleanly; a peer may reset instead of
    /// closing), so nothing is recorded for `on_error` then.
    pub fn io_failed(&self, status: Error, message: impl Into<String>) {
        if !self.closing.borrow().is_complete() {
            self.set_failure(status, message);
        }
        self.terminate();
    }

    /// The peer's address as text ("" once the socket is gone).
    pub fn peer_text(&self) -> String {
        self.stream.borrow().as_ref().map(|s| s.peer_text()).unwrap_or_default()
    }

    /// Current settings.
    pub fn cfg(&self) -> std::cell::Ref<'_, ConnConfig> {
        std::cell::Ref::map(self.config.borrow(), |c| &**c)
    }

    /// Switches to other settings (a server connection once its server is known).
    pub fn config_replace(&self, config: Rc<ConnConfig>) {
        *self.config.borrow_mut() = config;
    }

    /// The events object, kept alive by the caller for the duration of a call into it (so
    /// a replacement from inside the call drops the old one only afterwards).
    pub fn events(&self) -> Option<Rc<dyn ConnEvents>> {
        self.events.borrow().clone()
    }
}
