//! Client connections: resolve, connect (trying each address), send the upgrade request,
//! read the answer, and open, or report the refusal with its body.

use std::ffi::CString;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use mio::Interest;

use super::config::ClientConfig;
use super::conn::{nonempty_cstring, ready_state, Conn, ConnHandle, ConnInfo, HandshakeState, Phase};
use super::event_loop::EventLoop;
use super::events::ConnEvents;
use super::log::{self, Level};
use super::proxy::ProxyState;
use super::reconnect::ReconnectState;
use super::stream::Stream;
use super::views::{cstring, HeaderList, ResponseView};
use crate::core::extensions::deflate::{client_accept, client_offer};
use crate::core::handshake::client::{
    body_framing, build_request, generate_key, parse_response, validate_switching, BodyFraming, ChunkedDecoder,
    Response,
};
use crate::core::handshake::redirect::{is_credential_header, is_redirect_status, Redirect, RedirectFollower};
use crate::core::handshake::url::WsUrl;
use crate::core::proxy::env::proxy_from_env;
use crate::core::proxy::{parse_proxy_url, ProxyUrl};
use crate::core::session::Role;
use crate::reactor::error::Error;

/// Most bytes of a refusal body kept for `on_unexpected_response`.
const MAX_REFUSAL_BODY: usize = 1024 * 1024;

/// Everything `wsffi_connect` prepared.
pub struct ClientSetup {
    /// Parsed URL.
    pub url: WsUrl,
    /// Options.
    pub config: Arc<ClientConfig>,
    /// The handle returned to the caller.
    pub handle: Arc<ConnHandle>,
    /// The application's events.
    pub events: Box<dyn ConnEvents>,
}

/// Client handshake progress, stored in `Conn::handshake`.
pub(super) struct ClientState {
    pub(super) url: WsUrl,
    pub(super) config: Arc<ClientConfig>,
    key: String,
    addrs: Vec<SocketAddr>,
    current: Option<SocketAddr>,
    started: Instant,
    refusal: Option<Refusal>,
    /// The proxy still to go through; `None` once the tunnel is open or without one.
    pub(super) proxy: Option<ProxyState>,
    follower: Option<RedirectFollower>,
}

struct Refusal {
    response: Response,
    framing: BodyFraming,
    body: Vec<u8>,
    chunked: Option<ChunkedDecoder>,
}

pub(super) fn with_state<R>(conn: &Conn, f: impl FnOnce(&mut ClientState) -> R) -> Option<R> {
    let mut hs = conn.handshake.borrow_mut();
    match hs.as_mut()? {
        HandshakeState::Client(st) => Some(f(st)),
        HandshakeState::Server(_) => None,
    }
}

impl EventLoop {
    /// Creates the connection and starts resolving or connecting.
    pub fn start_client(&self, setup: ClientSetup) {
        let key = self.conns.borrow().next_key();
        setup.handle.set_key(key);
        let conn = Rc::new(Conn::new(
            setup.handle,
            key,
            Role::Client,
            Rc::new(setup.config.conn),
            None,
            Phase::Resolving,
            Some(setup.events),
        ));
        self.conns.borrow_mut().insert(conn.clone());
        if let Some(policy) = setup.config.reconnect {
            *conn.reconnect.borrow_mut() =
                Some(Box::new(ReconnectState::new(policy, setup.url.clone(), setup.config.clone())));
        }
        self.begin_dial(&conn, setup.url, setup.config);
        self.settle(&conn);
    }

    /// One attempt at `url`: the connect and handshake deadlines count from now.
    pub(super) fn begin_dial(&self, conn: &Rc<Conn>, url: WsUrl, config: Arc<ClientConfig>) {
        let now = Instant::now();
        conn.phase.set(Phase::Resolving);
        conn.phase_deadline.set(Some(now + config.connect_timeout.min(config.handshake_timeout)));
        self.arm(conn);
        let follower = config.follow_redirects.then(|| RedirectFollower::new(&url, config.max_redirects));
        *conn.handshake.borrow_mut() = Some(HandshakeState::Client(Box::new(ClientState {
            url: url.clone(),
            config,
            key: generate_key(),
            addrs: Vec::new(),
            current: None,
            started: now,
            refusal: None,
            proxy: None,
            follower,
        })));
        self.dial(conn, &url);
    }

    /// Connects to `url`, or to the proxy chosen for it: a Unix socket, an IP literal, or a
    /// name resolved on a thread. The proxy is chosen again for every dial (a redirect may
    /// lead to a host that `no_proxy` names).
    fn dial(&self, conn: &Rc<Conn>, url: &WsUrl) {
        let conn = conn.clone();
        let proxy = if url.unix_path.is_some() {
            Ok(None)
        } else {
            with_state(&conn, |st| choose_proxy(st.config.proxy.as_deref(), st.config.proxy_from_env, url))
                .unwrap_or(Ok(None))
        };
        let proxy = match proxy {
            Ok(p) => p,
            Err(message) => {
                self.connect_failed(&conn, Error::InvalidUrl, message);
                return;
            }
        };
        // With a proxy the socket goes to the proxy; the target is named in the tunnel request.
        let (dial_host, dial_port) = match &proxy {
            Some(p) => (p.host.clone(), p.port),
            None => (url.host.clone(), url.port),
        };
        with_state(&conn, |st| st.proxy = proxy.map(|url| ProxyState { url, stage: None }));
        if let Some(path) = &url.unix_path {
            match mio::net::UnixStream::connect(path) {
                Ok(s) => self.connecting(&conn, Stream::Unix(s)),
                Err(e) => self.connect_failed(&conn, Error::from_io(&e), format!("connect to {path}: {e}")),
            }
        } else if let Ok(ip) = dial_host.parse::<IpAddr>() {
            with_state(&conn, |st| st.addrs.push(SocketAddr::new(ip, dial_port)));
            self.try_next_address(&conn);
        } else {
            let shared = self.shared.clone();
            let handle = conn.handle.clone();
            let (host, port) = (dial_host.clone(), dial_port);
            // Name resolution blocks; it runs on a short-lived thread and reports back.
            let spawned = std::thread::Builder::new().name("wsffi-resolve".into()).spawn(move || {
                let result = (host.as_str(), port).to_socket_addrs().map(|a| a.collect::<Vec<_>>());
                let _ = shared.run_async(move |lp| lp.resolved(&handle, result));
            });
            if let Err(e) = spawned {
                self.connect_failed(&conn, Error::Dns, format!("resolve {dial_host}: {e}"));
            }
        }
    }

    /// Follows a redirect answer: drops the socket and dials the next URL with a new key.
    /// The connect and handshake deadlines keep running from the first dial.
    fn follow_redirect(&self, conn: &Rc<Conn>, redirect: Redirect) {
        if let Some(mut s) = conn.stream.borrow_mut().take() {
            let _ = mio::event::Source::deregister(&mut s, self.registry());
        }
        {
            let mut input = conn.input.borrow_mut();
            let n = input.data().len();
            input.consume(n);
        }
        conn.output.borrow_mut().buf.clear();
        let url = redirect.url.clone();
        with_state(conn, |st| {
            let strip_headers =
                redirect.drop_credentials && st.config.headers.iter().any(|(n, _)| is_credential_header(n));
            let strip_tls_name = redirect.other_host_name && st.config.tls.server_name.is_some();
            if strip_headers || strip_tls_name {
                let mut config = (*st.config).clone();
                if strip_headers {
                    config.headers.retain(|(n, _)| !is_credential_header(n));
                }
                if strip_tls_name {
                    // Verified against the new host's own name.
                    config.tls.server_name = None;
                }
                st.config = Arc::new(config);
            }
            st.url = redirect.url;
            st.key = generate_key();
            st.addrs.clear();
            st.current = None;
            st.refusal = None;
        });
        conn.phase.set(Phase::Resolving);
        let deadline = with_state(conn, |st| st.started + st.config.connect_timeout.min(st.config.handshake_timeout));
        conn.phase_deadline.set(deadline);
        self.arm(conn);
        self.dial(conn, &url);
    }

    fn resolved(&self, handle: &Arc<ConnHandle>, result: std::io::Result<Vec<SocketAddr>>) {
        let Some(conn) = self.conn_of(handle) else { return };
        if conn.phase.get() != Phase::Resolving {
            return;
        }
        match result {
            Ok(addrs) if !addrs.is_empty() => {
                with_state(&conn, |st| st.addrs = addrs.into_iter().rev().collect());
                self.try_next_address(&conn);
            }
            Ok(_) => {
                let host = with_state(&conn, |st| st.url.host.clone()).unwrap_or_default();
                self.connect_failed(&conn, Error::Dns, format!("resolve {host}: no addresses"));
            }
            Err(e) => {
                let host = with_state(&conn, |st| st.url.host.clone()).unwrap_or_default();
                self.connect_failed(&conn, Error::Dns, format!("resolve {host}: {e}"));
            }
        }
        self.settle(&conn);
    }

    /// Starts a TCP connect to the next address, or fails when none is left.
    fn try_next_address(&self, conn: &Rc<Conn>) {
        let mut last_error = None;
        while let Some(addr) = with_state(conn, |st| st.addrs.pop()).flatten() {
            match mio::net::TcpStream::connect(addr) {
                Ok(s) => {
                    with_state(conn, |st| st.current = Some(addr));
                    self.connecting(conn, Stream::Tcp(s));
                    return;
                }
                Err(e) => last_error = Some((Error::from_io(&e), format!("connect to {addr}: {e}"))),
            }
        }
        let (status, message) = last_error
            .or_else(|| conn.take_failure())
            .unwrap_or((Error::ConnectionRefused, "no address to connect to".into()));
        self.connect_failed(conn, status, message);
    }

    fn connecting(&self, conn: &Rc<Conn>, stream: Stream) {
        *conn.stream.borrow_mut() = Some(stream);
        conn.phase.set(Phase::Connecting);
        if let Err(e) = self.register(conn, Interest::READABLE | Interest::WRITABLE) {
            self.connect_failed(conn, Error::Io, format!("register socket: {e}"));
        }
    }

    fn connect_failed(&self, conn: &Rc<Conn>, status: Error, message: String) {
        conn.set_failure(status, message);
        conn.terminate();
        self.mark_dirty(conn);
    }

    /// The socket became ready while connecting.
    pub fn connect_ready(&self, conn: &Rc<Conn>) {
        let state = conn.stream.borrow().as_ref().map(|s| s.is_connected());
        match state {
            Some(Ok(true)) => self.connected(conn),
            Some(Ok(false)) | None => {}
            Some(Err(e)) => {
                let addr = with_state(conn, |st| st.current).flatten();
                if let Some(mut s) = conn.stream.borrow_mut().take() {
                    let _ = mio::event::Source::deregister(&mut s, self.registry());
                }
                let what = addr.map_or_else(|| "connect".to_string(), |a| format!("connect to {a}"));
                // Remember this failure in case no other address works.
                *conn.failure.borrow_mut() = Some(Box::new((Error::from_io(&e), format!("{what}: {e}"))));
                if with_state(conn, |st| st.url.unix_path.is_some()).unwrap_or(false) {
                    let (status, message) = conn.take_failure().unwrap_or((Error::Io, what));
                    self.connect_failed(conn, status, message);
                } else {
                    self.try_next_address(conn);
                }
            }
        }
    }

    fn connected(&self, conn: &Rc<Conn>) {
        if let Some(Stream::Tcp(s)) = conn.stream.borrow().as_ref() {
            let _ = s.set_nodelay(true);
        }
        if self.start_proxy(conn) {
            return;
        }
        self.tunnel_open(conn);
    }

    /// The byte stream to the target is ready (directly or through a proxy's tunnel): TLS,
    /// then the upgrade request.
    pub(super) fn tunnel_open(&self, conn: &Rc<Conn>) {
        if let Err((status, message)) = self.start_client_tls(conn) {
            self.connect_failed(conn, status, message);
            return;
        }
        self.reregister(conn, Interest::READABLE);
        conn.want_writable.set(false);
        let request = with_state(conn, |st| {
            let c = &st.config;
            let offer = c.deflate.as_ref().map(client_offer);
            build_request(&st.url, &st.key, &c.protocols, c.origin.as_deref(), offer.as_deref(), &c.headers)
                .map(|r| (r, st.started + c.handshake_timeout))
        });
        match request {
            Some(Ok((bytes, deadline))) => {
                conn.output.borrow_mut().buf.extend_from_slice(&bytes);
                conn.phase.set(Phase::ClientHandshake);
                conn.phase_deadline.set(Some(deadline));
                self.arm(conn);
                self.mark_dirty(conn);
            }
            Some(Err(e)) => self.connect_failed(conn, Error::InvalidParameter, e),
            None => self.connect_failed(conn, Error::Internal, "client state missing".into()),
        }
    }

    /// Bytes arrived during the opening handshake (or the refusal body).
    pub fn client_handshake_readable(&self, conn: &Rc<Conn>) {
        let eof = self.read_head(conn);
        if conn.is_terminating() {
            return;
        }
        while conn.phase.get() == Phase::ClientHandshake {
            let max = with_state(conn, |st| st.config.max_header_bytes).unwrap_or(16 * 1024);
            let parsed = parse_response(conn.input.borrow_mut().data(), max);
            match parsed {
                Ok(None) => {
                    if eof {
                        self.connect_failed(
                            conn,
                            Error::Handshake,
                            "connection closed during the opening handshake".into(),
                        );
                    }
                    return;
                }
                Err(e) => {
                    self.connect_failed(conn, Error::Handshake, format!("invalid handshake response: {}", e.message));
                    return;
                }
                Ok(Some((response, n))) => {
                    conn.input.borrow_mut().consume(n);
                    if (100..200).contains(&response.status) && response.status != 101 {
                        // An interim answer such as 100 Continue; the final one follows
                        // (RFC 9110 §15.2).
                        continue;
                    }
                    if response.status == 101 {
                        self.client_upgraded(conn, &response);
                        return;
                    }
                    if is_redirect_status(response.status) {
                        let next = with_state(conn, |st| {
                            let location = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case("location"));
                            let url = st.url.clone();
                            st.follower
                                .as_mut()
                                .map(|f| f.next(&url, response.status, location.map(|h| h.value.as_str())))
                        })
                        .flatten();
                        match next {
                            Some(Ok(redirect)) => {
                                self.follow_redirect(conn, redirect);
                                return;
                            }
                            Some(Err(e)) => {
                                self.connect_failed(
                                    conn,
                                    Error::HandshakeRejected,
                                    format!("redirect not followed: {e}"),
                                );
                                return;
                            }
                            None => {}
                        }
                    }
                    let framing = body_framing(&response);
                    let chunked = (framing == BodyFraming::Chunked).then(|| ChunkedDecoder::new(MAX_REFUSAL_BODY));
                    with_state(conn, |st| st.refusal = Some(Refusal { response, framing, body: Vec::new(), chunked }));
                    conn.phase.set(Phase::ResponseBody);
                }
            }
        }
        self.collect_refusal_body(conn, eof);
    }

    /// Reads everything available into the input buffer; returns true at end of stream.
    pub(super) fn read_head(&self, conn: &Rc<Conn>) -> bool {
        loop {
            let mut input = conn.input.borrow_mut();
            let spare = input.spare(4096, 0);
            match self.read_into(conn, spare) {
                Some(0) => return true,
                Some(n) => input.filled(n),
                None => return false,
            }
        }
    }

    fn collect_refusal_body(&self, conn: &Rc<Conn>, eof: bool) {
        let done = with_state(conn, |st| {
            let r = st.refusal.as_mut()?;
            let mut input = conn.input.borrow_mut();
            let data = input.data();
            let n = data.len();
            let finished = match r.framing {
                BodyFraming::None => true,
                BodyFraming::Length(len) => {
                    let want = (len as usize).min(MAX_REFUSAL_BODY).saturating_sub(r.body.len());
                    let take = want.min(n);
                    r.body.extend_from_slice(&data[..take]);
                    r.body.len() as u64 >= len.min(MAX_REFUSAL_BODY as u64) || eof
                }
                BodyFraming::Chunked => {
                    let dec = r.chunked.as_mut()?;
                    dec.feed(data, &mut r.body).unwrap_or(true) || eof
                }
                BodyFraming::UntilClose => {
                    let take = MAX_REFUSAL_BODY.saturating_sub(r.body.len()).min(n);
                    r.body.extend_from_slice(&data[..take]);
                    eof || r.body.len() >= MAX_REFUSAL_BODY
                }
            };
            input.consume(n);
            finished.then(|| st.refusal.take()).flatten()
        })
        .flatten();
        let Some(refusal) = done else { return };
        let view = ResponseView {
            status: refusal.response.status,
            reason: cstring(&refusal.response.reason),
            headers: HeaderList::from_headers(&refusal.response.headers),
            body: refusal.body,
        };
        if let Some(events) = conn.events() {
            events.on_unexpected_response(&conn.handle, &view);
        }
        if let Some(rs) = conn.reconnect.borrow_mut().as_mut() {
            rs.http_status = Some(refusal.response.status);
        }
        let message =
            format!("server answered the upgrade with {} {}", refusal.response.status, refusal.response.reason);
        self.connect_failed(conn, Error::HandshakeRejected, message);
    }

    fn client_upgraded(&self, conn: &Rc<Conn>, response: &Response) {
        let negotiated = with_state(conn, |st| {
            let deflate = st.config.deflate;
            validate_switching(
                response,
                &st.key,
                &st.config.protocols,
                if deflate.is_some() { &["permessage-deflate"] } else { &[] },
            )
            .and_then(|n| {
                // Only permessage-deflate is ever offered, so any extension answer is one.
                let agreed = match (&n.extensions, deflate) {
                    (Some(answer), Some(cfg)) => {
                        Some((client_accept(answer, &cfg).map_err(|e| format!("permessage-deflate: {e}"))?, cfg))
                    }
                    _ => None,
                };
                Ok((n, agreed))
            })
        });
        let (negotiated, agreed) = match negotiated {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                self.connect_failed(conn, Error::Handshake, format!("invalid handshake response: {e}"));
                return;
            }
            None => return,
        };
        if let Some((agreed, cfg)) = agreed {
            conn.reader.borrow_mut().enable_deflate(agreed);
            conn.output.borrow_mut().writer.enable_deflate(agreed, cfg);
        }
        *conn.handshake.borrow_mut() = None;
        self.reconnect_opened(conn);
        let remote = conn.peer_text();
        conn.handle.set_info(
            ConnInfo {
                protocol: nonempty_cstring(negotiated.protocol.as_deref()),
                extensions: nonempty_cstring(negotiated.extensions.as_deref()),
                remote: CString::new(remote).unwrap_or_default(),
                handshake_response: Some(ResponseView {
                    status: response.status,
                    reason: cstring(&response.reason),
                    headers: HeaderList::from_headers(&response.headers),
                    body: Vec::new(),
                }),
                ..Default::default()
            }
            .with_tls_of(conn),
        );
        self.count_opened();
        self.open_conn(conn);
    }

    /// Both sides: the handshake is done; report `open` and process early frames.
    pub fn open_conn(&self, conn: &Rc<Conn>) {
        conn.phase.set(Phase::Open);
        conn.handle.set_state(ready_state::OPEN);
        conn.phase_deadline.set(None);
        conn.last_input.set(Instant::now());
        self.arm(conn);
        if log::enabled(Level::Info) {
            let info = conn.handle.info();
            let protocol = info.and_then(|i| i.protocol.as_ref()).map(|p| p.to_string_lossy().into_owned());
            let extensions = info.and_then(|i| i.extensions.as_ref()).map(|e| e.to_string_lossy().into_owned());
            crate::log!(
                Level::Info,
                "{}: open (protocol {}, extensions {})",
                self.describe(conn),
                log::quoted(protocol.as_deref().unwrap_or("")),
                log::quoted(extensions.as_deref().unwrap_or(""))
            );
        }
        if let Some(events) = conn.events() {
            events.on_open(&conn.handle);
        }
        if !conn.input.borrow().is_empty() && !conn.is_closed() {
            self.pump(conn, true);
        }
    }
}

/// The proxy for `url`: the one set in the options (an empty string means none), else, when
/// allowed, the one the environment names for it.
fn choose_proxy(setting: Option<&str>, use_env: bool, url: &WsUrl) -> Result<Option<ProxyUrl>, String> {
    let from_env;
    let chosen = match setting {
        Some(s) => Some(s),
        None if use_env => {
            from_env = proxy_from_env(url.secure, &url.host, |n| std::env::var(n).ok());
            from_env.as_deref()
        }
        None => None,
    };
    match chosen.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => parse_proxy_url(s).map(Some),
    }
}
