//! Listeners, WebSocket servers attached to them at paths, and the server side of the
//! opening handshake (routing, verification, subprotocols, deferred decisions).

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mio::net::{TcpListener, UnixListener};
use mio::Interest;
use once_cell::sync::OnceCell;

pub use super::views::{HttpResponse, RequestView, ResponseView};

use super::config::{ConnConfig, ListenerConfig, ServerConfig};
use super::conn::{nonempty_cstring, Conn, ConnHandle, ConnInfo, HandshakeState, Phase};
use super::event_loop::{listener_token, EventLoop};
use super::events::{HttpHandler, ServerEvents, Verdict};
use super::log::{self, Level};
use super::slab::{Key, Slab};
use super::stats::{Refusal, ServerCounters, ServerStats};
use super::stream::Stream;
use super::tls::{ListenerCerts, ServerTls};
use super::topics::Topics;
use super::views::cstring;
use super::Shared;
use crate::core::extensions::deflate::server_negotiate;
use crate::core::handshake::redirect::is_redirect_status;
use crate::core::handshake::request::{parse_request, validate_upgrade, UpgradeRequest};
use crate::core::handshake::response::{accept_key, build_response_to, build_switching_protocols};
use crate::core::protocol::close::codes;
use crate::core::session::{encode_server_message, MessageKind, Role};
use crate::reactor::error::Error;

/// A bound listening socket.
pub enum ListenSocket {
    /// TCP.
    Tcp(TcpListener),
    /// Unix domain.
    Unix(UnixListener),
}

/// The C `wsffi_listener`.
pub struct ListenerHandle {
    pub(crate) shared: Arc<Shared>,
    key: OnceCell<Key>,
    /// Bound port (0 for Unix sockets).
    pub port: u16,
    /// Bound address as text.
    pub address: CString,
    closed: AtomicBool,
    accept_stalls: AtomicUsize,
    /// A TLS listener's certificates (shared with its rustls configuration).
    tls_certs: Option<Arc<ListenerCerts>>,
}

impl ListenerHandle {
    /// A handle for a socket bound at `address`; `tls_certs` for a TLS listener.
    pub fn new(shared: Arc<Shared>, port: u16, address: &str, tls_certs: Option<Arc<ListenerCerts>>) -> Self {
        ListenerHandle {
            shared,
            key: OnceCell::new(),
            port,
            address: cstring(address),
            closed: AtomicBool::new(false),
            accept_stalls: AtomicUsize::new(0),
            tls_certs,
        }
    }

    /// Replaces the TLS certificates (the default and those chosen by server name) with
    /// those of `tls`, from any thread: handshakes from now on use them, open connections
    /// keep theirs. On error (not a TLS listener, no certificate in `tls`, unusable
    /// material) nothing changes.
    pub fn replace_tls_certificates(&self, tls: &ServerTls) -> Result<(), (Error, String)> {
        if self.is_closed() {
            return Err((Error::Closed, "the listener is closed".into()));
        }
        let Some(certs) = &self.tls_certs else {
            return Err((Error::Tls, "TLS: the listener does not serve TLS".into()));
        };
        certs.replace(tls.cert.as_ref(), &tls.sni).map_err(|m| (Error::Tls, m))
    }

    /// How many times accepting stopped for an error such as running out of descriptors
    /// (each such stall is reported once to the attached servers' `error` callbacks and
    /// retried every [`ACCEPT_RETRY_DELAY`] until it clears).
    pub fn accept_stalls(&self) -> usize {
        self.accept_stalls.load(Ordering::Relaxed)
    }

    pub(crate) fn key(&self) -> Option<Key> {
        self.key.get().copied()
    }

    /// Has `wsffi_listener_close` run (or the reactor stopped)?
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.shared.is_stopped()
    }
}

/// Reactor-side listener.
pub struct Listener {
    /// Shared handle.
    pub handle: Arc<ListenerHandle>,
    /// Slab key.
    pub key: Key,
    socket: RefCell<Option<ListenSocket>>,
    /// Settings.
    pub config: ListenerConfig,
    /// Servers by path.
    pub servers: RefCell<Vec<Rc<Server>>>,
    /// Plain HTTP handler.
    pub http: RefCell<Option<Arc<dyn HttpHandler>>>,
    /// When accepting failed for want of descriptors (or memory), the time to try again:
    /// the socket is edge-triggered, so the connections already waiting would otherwise
    /// sit in the backlog until a new one arrives.
    accept_retry: Cell<Option<Instant>>,
}

/// How long a listener waits before accepting again after running out of descriptors.
pub const ACCEPT_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// The C `wsffi_server`.
pub struct ServerHandle {
    pub(crate) shared: Arc<Shared>,
    key: OnceCell<Key>,
    /// Attached path.
    pub path: CString,
    client_count: AtomicUsize,
    /// Messages dropped for this server's clients (see [`ServerHandle::dropped_messages`]);
    /// each client's handle shares it.
    dropped: Arc<AtomicU64>,
    closed: AtomicBool,
    /// Client tracking enabled.
    pub tracking: bool,
    /// Unique within the reactor, in attach order (names the server in the Prometheus text).
    pub id: u64,
    pub(crate) stats: ServerStats,
}

impl ServerHandle {
    pub(crate) fn key(&self) -> Option<Key> {
        self.key.get().copied()
    }

    /// Open connections of this server.
    pub fn client_count(&self) -> usize {
        self.client_count.load(Ordering::Relaxed)
    }

    /// Closed or closing?
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire) || self.shared.is_stopped()
    }

    /// Messages dropped for this server's clients because their output was above the
    /// high-water mark: sends under the `Drop` policy and clients a broadcast skipped.
    pub fn dropped_messages(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The server's counters now (see [`super::stats`]); from any thread.
    pub fn stats(&self) -> ServerCounters {
        ServerCounters { dropped: self.dropped_messages(), ..self.stats.snapshot(self.client_count() as u64) }
    }
}

/// Reactor-side server.
pub struct Server {
    /// Shared handle.
    pub handle: Arc<ServerHandle>,
    /// Slab key.
    pub key: Key,
    /// Path it answers ("/" by default).
    pub path: String,
    /// Settings.
    pub config: ServerConfig,
    /// `config.conn`, shared by the server's connections.
    pub conn_config: Rc<ConnConfig>,
    events: RefCell<Option<Rc<dyn ServerEvents>>>,
    /// Open (and closing) connections.
    pub clients: RefCell<Slab<Rc<Conn>>>,
    /// Pub/sub subscriptions of its connections, by their loop keys.
    pub topics: RefCell<Topics<Key, Rc<Conn>>>,
    closing: Cell<bool>,
    finished: Cell<bool>,
}

impl Server {
    /// The events object, kept alive by the caller for the duration of a call into it.
    fn events(&self) -> Option<Rc<dyn ServerEvents>> {
        self.events.borrow().clone()
    }

    pub(super) fn client_error(&self, error: Error, message: &str) {
        crate::log!(Level::Info, "server at {}: refused a client: {error}: {message}", log::quoted(&self.path));
        if let Some(events) = self.events() {
            events.on_client_error(&self.handle, error, message);
        }
    }
}

/// The C `wsffi_handshake`: a server-side upgrade waiting for a decision.
pub struct HandshakeHandle {
    shared: Arc<Shared>,
    conn: Arc<ConnHandle>,
    /// The request.
    pub request: Arc<RequestView>,
    headers: Mutex<Vec<(String, String)>>,
    reject: Mutex<(u16, String)>,
    /// The subprotocols the client offered.
    offered: Vec<String>,
    /// A subprotocol chosen ahead of the decision (dispatch mode), as `handle_protocols` answers.
    protocol_choice: Mutex<Option<Option<usize>>>,
    decided: AtomicBool,
    expired: AtomicBool,
    /// Held while the dispatching thread still runs the handshake hooks: `Some(decision)`.
    /// A decision made meanwhile (from another thread) waits here until `release`.
    held: Mutex<Option<Option<bool>>>,
}

impl HandshakeHandle {
    /// Adds a header to whichever response goes out (101 or refusal).
    pub fn add_header(&self, name: &str, value: &str) {
        self.headers.lock().unwrap_or_else(|e| e.into_inner()).push((name.to_string(), value.to_string()));
    }

    /// Sets the refusal status and reason for a `REJECT` verdict.
    pub fn set_reject(&self, status: u16, reason: &str) {
        *self.reject.lock().unwrap_or_else(|e| e.into_inner()) = (status, reason.to_string());
    }

    /// The subprotocols the client offered, in its order.
    pub fn offered_protocols(&self) -> &[String] {
        &self.offered
    }

    /// Chooses the subprotocol before the decision: `None` for none, `Some(i)` for
    /// `offered_protocols()[i]`. `handle_protocols` is then not asked.
    pub fn choose_protocol(&self, choice: Option<usize>) {
        let choice = choice.filter(|&i| i < self.offered.len());
        *self.protocol_choice.lock().unwrap_or_else(|e| e.into_inner()) = Some(choice);
    }

    fn protocol_choice(&self) -> Option<Option<usize>> {
        *self.protocol_choice.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides a deferred handshake (from any thread).
    pub fn decide(self: Arc<Self>, accept: bool) -> Result<(), Error> {
        if self.decided.swap(true, Ordering::AcqRel) {
            return Err(Error::AlreadyDone);
        }
        if self.expired.load(Ordering::Acquire) {
            return Err(Error::Timeout);
        }
        if let Some(slot) = self.held.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            *slot = Some(accept);
            return Ok(());
        }
        self.post_decision(accept)
    }

    fn post_decision(self: Arc<Self>, accept: bool) -> Result<(), Error> {
        let shared = self.shared.clone();
        shared.run_async(move |lp| lp.deferred_decision(&self, accept))
    }

    /// Keeps decisions back until `release`: the hooks that shape the answer (subprotocol,
    /// headers) run after a deferring `verify_client` returns.
    pub fn hold(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(None);
    }

    /// Ends `hold` when the verdict was not DEFER: a decision made meanwhile is void (the
    /// verdict decided).
    pub fn unhold(&self) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Ends `hold`, sending on a decision made meanwhile.
    pub fn release(self: &Arc<Self>) {
        let decision = self.held.lock().unwrap_or_else(|e| e.into_inner()).take().flatten();
        if let Some(accept) = decision {
            let _ = self.clone().post_decision(accept);
        }
    }

    fn headers(&self) -> Vec<(String, String)> {
        self.headers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Server handshake progress, stored in `Conn::handshake`.
pub(super) struct ServerState {
    listener: Option<Rc<Listener>>,
    forced: Option<Rc<Server>>,
    max_header_bytes: usize,
    deferred: Option<(Arc<HandshakeHandle>, UpgradeRequest, Rc<Server>)>,
    /// The request was a HEAD: answers carry headers only.
    head_only: bool,
    /// A plain request waits for the HTTP handler on the dispatching thread.
    answer_pending: bool,
    /// The peer's address as `accept` gave it (the socket is not asked again, and the log
    /// can still name a peer that has gone); `None` for sockets handed over.
    peer: Option<std::net::SocketAddr>,
}

/// The address `accept` gave for a server connection still in its handshake.
pub(super) fn accepted_peer(conn: &Conn) -> Option<std::net::SocketAddr> {
    with_state(conn, |st| st.peer).flatten()
}

fn with_state<R>(conn: &Conn, f: impl FnOnce(&mut ServerState) -> R) -> Option<R> {
    let mut hs = conn.handshake.borrow_mut();
    match hs.as_mut()? {
        HandshakeState::Server(st) => Some(f(st)),
        HandshakeState::Client(_) => None,
    }
}

impl EventLoop {
    /// Adds a bound socket as a listener.
    pub fn add_listener(
        &self,
        handle: Arc<ListenerHandle>,
        mut socket: ListenSocket,
        config: ListenerConfig,
    ) -> Result<(), Error> {
        let key = self.listeners.borrow().next_key();
        let token = listener_token(key);
        let r = match &mut socket {
            ListenSocket::Tcp(s) => self.registry().register(s, token, Interest::READABLE),
            ListenSocket::Unix(s) => self.registry().register(s, token, Interest::READABLE),
        };
        r.map_err(|_| Error::Io)?;
        let _ = handle.key.set(key);
        let listener = Rc::new(Listener {
            handle,
            key,
            socket: RefCell::new(Some(socket)),
            config,
            servers: RefCell::new(Vec::new()),
            http: RefCell::new(None),
            accept_retry: Cell::new(None),
        });
        self.listeners.borrow_mut().insert(listener);
        Ok(())
    }

    /// The loop's listener for a handle.
    pub fn listener_of(&self, handle: &ListenerHandle) -> Option<Rc<Listener>> {
        self.listeners.borrow().get(handle.key()?).cloned()
    }

    /// The loop's server for a handle.
    pub fn server_of(&self, handle: &ServerHandle) -> Option<Rc<Server>> {
        self.servers.borrow().get(handle.key()?).cloned()
    }

    /// Stops listening; accepted connections and attached servers go on.
    pub fn remove_listener(&self, listener: &Rc<Listener>) {
        listener.handle.closed.store(true, Ordering::Release);
        if let Some(mut socket) = listener.socket.borrow_mut().take() {
            let _ = match &mut socket {
                ListenSocket::Tcp(s) => self.registry().deregister(s),
                ListenSocket::Unix(s) => self.registry().deregister(s),
            };
        }
        listener.servers.borrow_mut().clear();
        // Requests still being read on connections it accepted get no handler call after the
        // close: they are answered like requests for a path nobody serves.
        drop(listener.http.borrow_mut().take());
        self.listeners.borrow_mut().remove(listener.key);
    }

    /// Attaches a server at `path` (to a listener, or standalone for `handle_upgrade`).
    pub fn attach_server(
        &self,
        listener: Option<&Rc<Listener>>,
        path: String,
        config: ServerConfig,
        events: Box<dyn ServerEvents>,
    ) -> Result<Arc<ServerHandle>, (Error, String)> {
        if let Some(l) = listener {
            if l.servers.borrow().iter().any(|s| s.path == path) {
                return Err((Error::InvalidParameter, format!("a server is already attached at {path}")));
            }
        }
        let key = self.servers.borrow().next_key();
        let handle = Arc::new(ServerHandle {
            shared: self.shared.clone(),
            key: OnceCell::new(),
            path: cstring(&path),
            client_count: AtomicUsize::new(0),
            dropped: Arc::default(),
            closed: AtomicBool::new(false),
            tracking: config.client_tracking,
            id: self.next_server_id(),
            stats: ServerStats::default(),
        });
        let _ = handle.key.set(key);
        self.shared.register_server(&handle);
        let server = Rc::new(Server {
            handle: handle.clone(),
            key,
            path,
            conn_config: Rc::new(config.conn),
            config,
            events: RefCell::new(Some(Rc::from(events))),
            clients: RefCell::new(Slab::default()),
            topics: RefCell::default(),
            closing: Cell::new(false),
            finished: Cell::new(false),
        });
        self.servers.borrow_mut().insert(server.clone());
        if let Some(l) = listener {
            l.servers.borrow_mut().push(server);
        }
        Ok(handle)
    }

    /// `wsffi_server_close`: no new clients; open ones get 1001; `on_close` when all are gone.
    pub fn close_server(&self, server: &Rc<Server>) {
        if server.closing.replace(true) {
            return;
        }
        server.handle.closed.store(true, Ordering::Release);
        let listeners: Vec<Rc<Listener>> = self.listeners.borrow().values().cloned().collect();
        for l in listeners {
            l.servers.borrow_mut().retain(|s| !Rc::ptr_eq(s, server));
        }
        let clients: Vec<Rc<Conn>> = server.clients.borrow().values().cloned().collect();
        for conn in &clients {
            self.start_close(conn, Some(codes::GOING_AWAY), b"server closing");
        }
        if server.clients.borrow().is_empty() {
            self.finish_server(server);
        }
    }

    /// Last step of a server: `on_close`, then destroy.
    pub fn finish_server(&self, server: &Rc<Server>) {
        if server.finished.replace(true) {
            return;
        }
        server.closing.set(true);
        server.handle.closed.store(true, Ordering::Release);
        self.servers.borrow_mut().remove(server.key);
        self.shared.unregister_server(&server.handle);
        let events = server.events.borrow_mut().take();
        if let Some(events) = events {
            events.on_close(&server.handle);
        }
    }

    /// Removes a finished connection from its server.
    pub fn detach_from_server(&self, conn: &Conn) {
        let Some(server) = conn.server.borrow_mut().take() else { return };
        server.topics.borrow_mut().remove_member(conn.key);
        if let Some(slot) = conn.server_slot.take() {
            server.clients.borrow_mut().remove(slot);
            server.handle.client_count.fetch_sub(1, Ordering::Relaxed);
        }
        if server.closing.get() && server.clients.borrow().is_empty() {
            self.finish_server(&server);
        }
    }

    /// Clients of a server, retained (for `wsffi_server_clients`).
    pub fn server_clients(&self, server: &Server) -> Vec<Arc<ConnHandle>> {
        server.clients.borrow().values().filter(|c| c.phase.get() == Phase::Open).map(|c| c.handle.clone()).collect()
    }

    /// Sends one message to every open client; the frame is encoded once. Returns how many
    /// clients took it. Those above their high-water mark (whatever the policy: nothing is
    /// queued past the mark) or in the middle of a fragmented message are skipped, and the
    /// message counts as dropped for them and for the server.
    pub fn broadcast(&self, server: &Server, kind: MessageKind, data: &[u8]) -> usize {
        let mut frame = Vec::with_capacity(data.len() + 10);
        encode_server_message(&mut frame, kind, data);
        let clients: Vec<Rc<Conn>> = server.clients.borrow().values().cloned().collect();
        let mut sent = 0;
        for conn in clients {
            if conn.phase.get() != Phase::Open || conn.is_terminating() {
                continue;
            }
            if self.queue_shared_frame(&conn, kind, data, &frame) {
                sent += 1;
            }
        }
        sent
    }

    // ---- accepting --------------------------------------------------------------------

    /// The listening socket is readable: accept everything pending.
    pub fn accept_ready(&self, listener: &Rc<Listener>) {
        loop {
            let accepted = {
                let socket = listener.socket.borrow();
                match socket.as_ref() {
                    Some(ListenSocket::Tcp(l)) => l.accept().map(|(s, peer)| {
                        let _ = s.set_nodelay(true);
                        (Stream::Tcp(s), Some(peer))
                    }),
                    Some(ListenSocket::Unix(l)) => l.accept().map(|(s, _)| (Stream::Unix(s), None)),
                    None => return,
                }
            };
            if accepted.is_ok() || accepted.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock) {
                listener.accept_retry.set(None);
            }
            match accepted {
                Ok((stream, peer)) => {
                    let stream = match listener.config.tls.accept(stream) {
                        Ok(stream) => stream,
                        Err(e) => {
                            crate::log!(
                                Level::Warn,
                                "listener {}: TLS setup: {e}",
                                listener.handle.address.to_string_lossy()
                            );
                            continue;
                        }
                    };
                    self.new_server_conn(stream, peer, Some(listener.clone()), None, &[], &listener.config);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // The peer gave up while waiting in the backlog; the next one may be fine.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of descriptors and similar: keep the listener and try again soon,
                    // telling the servers once per stall rather than on every retry.
                    let first = listener.accept_retry.replace(Some(Instant::now() + ACCEPT_RETRY_DELAY)).is_none();
                    if first {
                        let stalls = listener.handle.accept_stalls.fetch_add(1, Ordering::Relaxed) + 1;
                        let message = format!(
                            "accept: {e} (stall {stalls} on this listener; retrying every {} ms)",
                            ACCEPT_RETRY_DELAY.as_millis()
                        );
                        crate::log!(Level::Error, "listener {}: {message}", listener.handle.address.to_string_lossy());
                        let servers: Vec<Rc<Server>> = listener.servers.borrow().clone();
                        for s in servers {
                            if let Some(events) = s.events() {
                                events.on_error(&s.handle, Error::from_io(&e), &message);
                            }
                        }
                    }
                    return;
                }
            }
        }
    }

    /// The earliest time a stalled listener wants to accept again.
    pub fn next_accept_retry(&self) -> Option<Instant> {
        self.listeners.borrow().values().filter_map(|l| l.accept_retry.get()).min()
    }

    /// Accepts again on every listener whose retry time has come.
    pub fn retry_stalled_accepts(&self) {
        let now = Instant::now();
        let due: Vec<Rc<Listener>> = self
            .listeners
            .borrow()
            .values()
            .filter(|l| l.accept_retry.get().is_some_and(|at| at <= now))
            .cloned()
            .collect();
        for listener in due {
            self.accept_ready(&listener);
        }
    }

    /// Starts the server side of a handshake on an accepted (or handed-over) socket.
    pub fn new_server_conn(
        &self,
        stream: Stream,
        peer: Option<std::net::SocketAddr>,
        listener: Option<Rc<Listener>>,
        forced: Option<Rc<Server>>,
        head: &[u8],
        limits: &ListenerConfig,
    ) {
        let (handshake_timeout, max_header_bytes) = (limits.handshake_timeout, limits.max_header_bytes);
        let key = self.conns.borrow().next_key();
        let config = forced.as_ref().map_or_else(|| self.default_conn_config(), |s| s.conn_config.clone());
        let handle = Arc::new(ConnHandle::new(self.shared.clone(), CString::default(), &config));
        handle.set_key(key);
        let conn = Rc::new(Conn::new(handle, key, Role::Server, config, Some(stream), Phase::ServerHandshake, None));
        if self.register(&conn, Interest::READABLE).is_err() {
            return;
        }
        self.conns.borrow_mut().insert(conn.clone());
        *conn.handshake.borrow_mut() = Some(HandshakeState::Server(Box::new(ServerState {
            listener,
            forced,
            max_header_bytes,
            deferred: None,
            head_only: false,
            answer_pending: false,
            peer,
        })));
        conn.phase_deadline.set(Some(Instant::now() + handshake_timeout));
        self.arm(&conn);
        if !head.is_empty() {
            conn.input.borrow_mut().store(head, 0);
        }
        // Data may already be waiting (or was handed over): try now.
        self.server_handshake_readable(&conn);
        self.settle(&conn);
    }

    /// Request bytes arrived.
    pub fn server_handshake_readable(&self, conn: &Rc<Conn>) {
        if with_state(conn, |st| st.deferred.is_some() || st.answer_pending).unwrap_or(true) {
            return;
        }
        let max = with_state(conn, |st| st.max_header_bytes).unwrap_or(16 * 1024);
        let mut eof = false;
        loop {
            let mut input = conn.input.borrow_mut();
            if input.len() > max {
                break;
            }
            let spare = input.spare(4096, 0);
            match self.read_into(conn, spare) {
                Some(0) => {
                    eof = true;
                    break;
                }
                Some(n) => input.filled(n),
                None => break,
            }
        }
        if conn.is_terminating() {
            self.report_tls_failure(conn);
            return;
        }
        let parsed = parse_request(conn.input.borrow_mut().data(), max);
        match parsed {
            Ok(None) => {
                if eof {
                    // The client left before finishing its request; nobody saw this connection.
                    conn.terminate();
                    self.mark_dirty(conn);
                }
            }
            Err(e) => {
                let servers = self.servers_for_errors(conn);
                let message = super::tls::plain_port_hint(conn.input.borrow_mut().data()).unwrap_or(e.message.as_str());
                for s in servers {
                    s.client_error(Error::Handshake, message);
                }
                // Not routed: counted on the reactor only.
                self.count_refusal(None, Refusal::BadRequest);
                self.refuse(conn, e.status, "", &[], e.message.as_bytes());
            }
            Ok(Some((request, n))) => {
                conn.input.borrow_mut().consume(n);
                self.route(conn, request);
            }
        }
    }

    pub(super) fn servers_for_errors(&self, conn: &Conn) -> Vec<Rc<Server>> {
        with_state(conn, |st| match (&st.forced, &st.listener) {
            (Some(s), _) => vec![s.clone()],
            (None, Some(l)) => l.servers.borrow().clone(),
            _ => Vec::new(),
        })
        .unwrap_or_default()
    }

    /// Writes a complete HTTP answer and closes the connection after it; for a HEAD request
    /// the body is left out.
    fn refuse(&self, conn: &Rc<Conn>, status: u16, reason: &str, headers: &[(String, String)], body: &[u8]) {
        let head_only = with_state(conn, |st| st.head_only).unwrap_or(false);
        crate::log!(
            Level::Debug,
            "{}: answered {status} {}",
            self.describe(conn),
            log::quoted(&String::from_utf8_lossy(body))
        );
        let bytes = build_response_to(head_only, status, reason, headers, body);
        conn.output.borrow_mut().buf.extend_from_slice(&bytes);
        self.close_soon(conn);
    }

    fn route(&self, conn: &Rc<Conn>, request: crate::core::handshake::request::Request) {
        let remote = accepted_peer(conn).map_or_else(|| conn.peer_text(), |a| a.to_string());
        let (listener, forced) =
            with_state(conn, |st| (st.listener.clone(), st.forced.clone())).unwrap_or((None, None));
        let server = forced.or_else(|| {
            listener.as_ref().and_then(|l| l.servers.borrow().iter().find(|s| s.path == request.path).cloned())
        });
        let mut view = RequestView::new(request, &remote);
        if let Some(tls) = conn.stream.borrow().as_ref().and_then(|s| s.tls()) {
            view.tls_subject = cstring(&tls.peer_subject().unwrap_or_default());
            view.tls_alpn = cstring(&tls.alpn().unwrap_or_default());
            view.tls_server_name = cstring(&tls.requested_server_name().unwrap_or_default());
        }
        let view = Arc::new(view);
        with_state(conn, |st| st.head_only = view.request.method == "HEAD");
        if !view.request.is_websocket_upgrade() {
            // A plain request's content (if any) is never read: the answer closes the
            // connection, so it cannot be taken for a next request.
            self.shared.stats.http_requests.add(1);
            if let Some(handler) = listener.as_ref().and_then(|l| l.http.borrow().clone()) {
                self.answer_plain(conn, handler, view);
            } else if server.is_some() {
                let headers = [("Upgrade".to_string(), "websocket".to_string())];
                self.refuse(conn, 426, "", &headers, b"this path expects a WebSocket upgrade\n");
            } else {
                self.refuse(conn, 404, "", &[], b"not found\n");
            }
            return;
        }
        let Some(server) = server.filter(|s| !s.closing.get()) else {
            self.count_refusal(None, Refusal::NotFound);
            self.refuse(conn, 404, "", &[], b"no WebSocket server at this path\n");
            return;
        };
        let upgrade = match validate_upgrade(&view.request) {
            Ok(u) => u,
            Err((e, headers)) => {
                server.client_error(Error::Handshake, &e.message);
                self.count_refusal(Some(&server), Refusal::BadRequest);
                self.refuse(conn, e.status, "", &headers, e.message.as_bytes());
                return;
            }
        };
        let max = server.config.max_connections;
        if max > 0 && server.handle.client_count() >= max {
            server.client_error(Error::HandshakeRejected, "too many connections");
            self.count_refusal(Some(&server), Refusal::MaxConnections);
            self.refuse(conn, 503, "", &[], b"too many connections\n");
            return;
        }
        if !server.config.allowed_origins.is_empty() {
            let origin = view.request.header("Origin").unwrap_or("");
            if !server.config.allowed_origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                server.client_error(Error::HandshakeRejected, &format!("origin not allowed: {origin}"));
                self.count_refusal(Some(&server), Refusal::Origin);
                self.refuse(conn, 403, "", &[], b"origin not allowed\n");
                return;
            }
        }
        // The connection now takes the server's settings.
        conn.config_replace(server.conn_config.clone());
        *conn.reader.borrow_mut() = server.config.conn.reader(Role::Server);
        conn.handle.set_limits(&server.config.conn, Some(&server.handle.dropped));
        conn.handle.set_url(view.url.clone());
        let hs = Arc::new(HandshakeHandle {
            shared: self.shared.clone(),
            conn: conn.handle.clone(),
            request: view,
            headers: Mutex::new(Vec::new()),
            reject: Mutex::new((401, String::new())),
            offered: upgrade.protocols.clone(),
            protocol_choice: Mutex::new(None),
            decided: AtomicBool::new(false),
            expired: AtomicBool::new(false),
            held: Mutex::new(None),
        });
        // A direct-mode verify_client may decide on this thread before it returns DEFER: the
        // decision waits until the deferred state below exists. (In dispatch mode the
        // dispatching thread holds the handle itself, and decisions come back through the
        // loop after this returns.)
        let direct = self.shared.dispatch_queue().is_none();
        if direct {
            hs.hold();
        }
        let verdict = server.events().and_then(|events| events.verify_client(&hs));
        match verdict.unwrap_or(Verdict::Accept) {
            Verdict::Accept => {
                hs.unhold();
                self.accept_upgrade(conn, &server, &hs, &upgrade)
            }
            Verdict::Reject => {
                hs.unhold();
                self.reject_upgrade(conn, &server, &hs)
            }
            Verdict::Defer => {
                // The application keeps its own reference until it decides.
                with_state(conn, |st| st.deferred = Some((hs.clone(), upgrade, server)));
                if direct {
                    hs.release();
                }
            }
        }
    }

    /// Asks the HTTP handler for the answer to a plain request: at once, or in dispatch mode
    /// on the dispatching thread, the connection waiting meanwhile (under its handshake timer).
    fn answer_plain(&self, conn: &Rc<Conn>, handler: Arc<dyn HttpHandler>, view: Arc<RequestView>) {
        let Some(queue) = self.shared.dispatch_queue() else {
            let mut response = HttpResponse::default();
            handler.handle(&view, &mut response);
            self.send_plain_answer(conn, response);
            return;
        };
        with_state(conn, |st| st.answer_pending = true);
        let (shared, handle) = (self.shared.clone(), conn.handle.clone());
        queue.push(Box::new(move || {
            let mut response = HttpResponse::default();
            handler.handle(&view, &mut response);
            let _ = shared.run_async(move |lp| lp.plain_answer_ready(&handle, response));
        }));
    }

    /// The dispatching thread answered a plain request.
    fn plain_answer_ready(&self, handle: &Arc<ConnHandle>, response: HttpResponse) {
        let Some(conn) = self.conn_of(handle) else { return };
        if with_state(&conn, |st| std::mem::take(&mut st.answer_pending)) == Some(true) {
            self.send_plain_answer(&conn, response);
            self.settle(&conn);
        }
    }

    fn send_plain_answer(&self, conn: &Rc<Conn>, response: HttpResponse) {
        // Only a final status may answer; a 1xx (above all 101) would be read as an interim
        // answer or an upgrade.
        let status = if (200..=599).contains(&response.status) { response.status } else { 500 };
        self.refuse(conn, status, &response.reason, &response.headers, &response.body);
    }

    fn reject_upgrade(&self, conn: &Rc<Conn>, server: &Rc<Server>, hs: &HandshakeHandle) {
        let (status, reason) = hs.reject.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let allowed = is_redirect_status(status) || (400..=599).contains(&status);
        let status = if allowed { status } else { 401 };
        server.client_error(Error::HandshakeRejected, &format!("verify_client rejected the client ({status})"));
        self.count_refusal(Some(server), Refusal::VerifyClient);
        self.refuse(conn, status, &reason, &hs.headers(), b"");
    }

    fn accept_upgrade(
        &self,
        conn: &Rc<Conn>,
        server: &Rc<Server>,
        hs: &Arc<HandshakeHandle>,
        upgrade: &UpgradeRequest,
    ) {
        let protocol = if upgrade.protocols.is_empty() {
            None
        } else {
            let choice = hs.protocol_choice().or_else(|| {
                server.events().and_then(|events| events.handle_protocols(&hs.request, &upgrade.protocols))
            });
            match choice {
                Some(choice) => choice.map(|i| upgrade.protocols[i].clone()),
                None => upgrade.protocols.first().cloned(),
            }
        };
        let deflate = match server.config.deflate.map(|cfg| (server_negotiate(&upgrade.extensions, &cfg), cfg)) {
            None | Some((Ok(None), _)) => None,
            Some((Ok(Some((agreed, answer))), cfg)) => Some((agreed, answer, cfg)),
            Some((Err(e), _)) => {
                let message = format!("malformed Sec-WebSocket-Extensions: {e}");
                server.client_error(Error::Handshake, &message);
                self.count_refusal(Some(server), Refusal::BadRequest);
                self.refuse(conn, 400, "", &[], message.as_bytes());
                return;
            }
        };
        if let Some(events) = server.events() {
            events.headers(hs);
        }
        let answer = deflate.as_ref().map(|(_, answer, _)| answer.clone());
        let response =
            build_switching_protocols(&accept_key(&upgrade.key), protocol.as_deref(), answer.as_deref(), &hs.headers());
        if let Some((agreed, _, cfg)) = deflate {
            conn.reader.borrow_mut().enable_deflate(agreed);
            conn.output.borrow_mut().writer.enable_deflate(agreed, cfg);
        }
        conn.output.borrow_mut().buf.extend_from_slice(&response);
        self.mark_dirty(conn);
        *conn.handshake.borrow_mut() = None;
        let remote = hs.request.remote_address.clone();
        conn.handle.set_info(
            ConnInfo {
                protocol: nonempty_cstring(protocol.as_deref()),
                extensions: nonempty_cstring(answer.as_deref()),
                remote,
                ..Default::default()
            }
            .with_tls_of(conn),
        );
        let slot = server.clients.borrow_mut().insert(conn.clone());
        conn.server_slot.set(Some(slot));
        *conn.server.borrow_mut() = Some(server.clone());
        server.handle.client_count.fetch_add(1, Ordering::Relaxed);
        server.handle.stats.accepted.add(1);
        self.shared.stats.accepted.add(1);
        self.count_opened();
        conn.phase.set(Phase::Open);
        conn.handle.set_state(super::conn::ready_state::OPEN);
        if let Some(events) = server.events() {
            events.on_connection(&server.handle, &conn.handle, &hs.request);
        }
        if conn.phase.get() == Phase::Open {
            self.open_conn(conn);
        }
    }

    /// A deferred handshake was decided.
    pub fn deferred_decision(&self, hs: &Arc<HandshakeHandle>, accept: bool) {
        let Some(conn) = self.conn_of(&hs.conn) else { return };
        let deferred = with_state(&conn, |st| st.deferred.take()).flatten();
        let Some((hs, upgrade, server)) = deferred else { return };
        if server.closing.get() {
            self.count_refusal(Some(&server), Refusal::ServerClosing);
            self.refuse(&conn, 503, "", &[], b"server closing\n");
        } else if accept {
            self.accept_upgrade(&conn, &server, &hs, &upgrade);
        } else {
            self.reject_upgrade(&conn, &server, &hs);
        }
        self.settle(&conn);
    }

    /// The handshake timer fired while still handshaking.
    pub fn server_handshake_timed_out(&self, conn: &Rc<Conn>) {
        let servers = self.servers_for_errors(conn);
        if let Some(Some((hs, _, server))) = with_state(conn, |st| st.deferred.take()) {
            hs.expired.store(true, Ordering::Release);
            server.client_error(Error::Timeout, "opening handshake timed out waiting for a decision");
            self.count_refusal(Some(&server), Refusal::Timeout);
            return;
        }
        for s in servers {
            s.client_error(Error::Timeout, "opening handshake timed out");
        }
        // The request never arrived whole: no server is known.
        self.count_refusal(None, Refusal::Timeout);
    }

    /// Counts a refused handshake on the reactor and, when it was routed, on its server.
    fn count_refusal(&self, server: Option<&Server>, why: Refusal) {
        self.shared.stats.refused.count(why);
        if let Some(s) = server {
            s.handle.stats.refused.count(why);
        }
    }

    /// Is a `verify_client` decision pending for this connection?
    pub fn handshake_deferred(&self, conn: &Conn) -> bool {
        with_state(conn, |st| st.deferred.is_some()).unwrap_or(false)
    }

    /// A connection ended; a deferred handshake of it can no longer be decided.
    pub fn handshake_ended(&self, conn: &Conn) {
        if let Some(Some((hs, _, _))) = with_state(conn, |st| st.deferred.take()) {
            hs.expired.store(true, Ordering::Release);
        }
        *conn.handshake.borrow_mut() = None;
    }
}
