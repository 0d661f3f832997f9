//! The reactor driven through its Rust API (`wsffi::reactor::api`, the event traits and the
//! handles), without the C layer: reactor servers and clients, and raw TCP peers for what
//! the library itself never sends.

#[path = "support/log.rs"]
mod event_log;

#[path = "support/events.rs"]
mod events;

#[path = "support/raw_ws.rs"]
mod raw_ws;

#[path = "support/certs.rs"]
mod certs;

use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use event_log::Log;
use events::{checksum, count, describe, Recorder, ServerRecorder};
use raw_ws::{RawPeer, BINARY, CONT, PING, PONG, TEXT};
use wsffi::core::session::{Limits, MessageKind};
use wsffi::reactor::api;
use wsffi::reactor::config::{
    BackpressurePolicy, ClientConfig, DispatchSettings, ListenerConfig, ReactorConfig, ServerConfig,
};
use wsffi::reactor::conn::{ready_state, ConnHandle, SendOp};
use wsffi::reactor::error::Error;
use wsffi::reactor::events::{ConnEvents, ServerEvents, Verdict};
use wsffi::reactor::server::{HandshakeHandle, ListenerHandle, RequestView, ServerHandle};
use wsffi::reactor::{tls, Reactor};

/// How long a test waits on a channel before it fails.
const WAIT: Duration = Duration::from_secs(20);

// ---- fixture ------------------------------------------------------------------------------

/// A reactor with a listener on 127.0.0.1:0 and a server attached at "/".
struct Fixture {
    reactor: Reactor,
    listener: Arc<ListenerHandle>,
    server: Arc<ServerHandle>,
    port: u16,
    /// Server events.
    log: &'static Log,
    /// Events of the server's connections.
    conn_log: &'static Log,
    conns: Arc<Mutex<Vec<Arc<ConnHandle>>>>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(ListenerConfig::default(), ServerConfig::default(), ServerRecorder::new())
    }

    fn with(lcfg: ListenerConfig, scfg: ServerConfig, rec: ServerRecorder) -> Fixture {
        Fixture::on(Reactor::start(ReactorConfig::default()).expect("reactor"), lcfg, scfg, rec)
    }

    fn on(reactor: Reactor, lcfg: ListenerConfig, scfg: ServerConfig, rec: ServerRecorder) -> Fixture {
        let (log, conn_log, conns) = (rec.log, rec.conn_log, rec.conns.clone());
        let listener = api::listen(reactor.shared(), "127.0.0.1:0", lcfg).expect("listen");
        let server = api::attach_server(reactor.shared(), Some(listener.clone()), "/".into(), scfg, Box::new(rec))
            .expect("attach_server");
        let port = listener.port;
        assert_ne!(port, 0);
        Fixture { reactor, listener, server, port, log, conn_log, conns }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    /// A client of this server on the same reactor, with its own log.
    fn client(&self) -> (Arc<ConnHandle>, &'static Log) {
        self.client_with(ClientConfig::default())
    }

    fn client_with(&self, cfg: ClientConfig) -> (Arc<ConnHandle>, &'static Log) {
        connect(&self.reactor, &self.url(), cfg)
    }

    /// The server side of the `i`-th connection, once it opened.
    fn server_conn(&self, i: usize) -> Arc<ConnHandle> {
        self.log.wait_for(|ev| count(ev, "connection ") > i);
        self.conns.lock().unwrap()[i].clone()
    }

    /// Runs `f` on the reactor thread with the loop's server.
    fn on_server<R: Send + 'static>(
        &self,
        f: impl FnOnce(&wsffi::reactor::event_loop::EventLoop, &wsffi::reactor::server::Server) -> R + Send + 'static,
    ) -> R {
        let handle = self.server.clone();
        self.reactor
            .shared()
            .run_sync(move |lp| {
                let server = lp.server_of(&handle).expect("server alive");
                f(lp, &server)
            })
            .expect("run_sync")
    }
}

/// Connects a recording client to `url` on `reactor`.
fn connect(reactor: &Reactor, url: &str, cfg: ClientConfig) -> (Arc<ConnHandle>, &'static Log) {
    let log = Log::new();
    let conn =
        api::connect(reactor.shared(), url, cfg, |_| Recorder::new(log) as Box<dyn ConnEvents>).expect("connect");
    (conn, log)
}

/// A connected client (its `open` seen) and the server's side of it.
fn open_pair(fix: &Fixture) -> (Arc<ConnHandle>, &'static Log, Arc<ConnHandle>) {
    let n = fix.conns.lock().unwrap().len();
    let (client, log) = fix.client();
    log.wait_event("open");
    let server_side = fix.server_conn(n);
    (client, log, server_side)
}

fn text(s: &str) -> (SendOp, Vec<u8>) {
    (SendOp::Message(MessageKind::Text), s.as_bytes().to_vec())
}

fn send_text(conn: &Arc<ConnHandle>, s: &str) {
    let (op, data) = text(s);
    conn.send(op, &data).expect("send");
}

/// A payload that compresses badly and shows where bytes went missing.
fn pattern(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e3779b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn server_cfg(f: impl FnOnce(&mut ServerConfig)) -> ServerConfig {
    let mut c = ServerConfig::default();
    f(&mut c);
    c
}

// ---- echo ---------------------------------------------------------------------------------

#[test]
fn echo_text_and_binary() {
    let fix = Fixture::new();
    let (client, log, _) = open_pair(&fix);
    assert_eq!(client.ready_state(), ready_state::OPEN);
    send_text(&client, "hello, wörld");
    client.send(SendOp::Message(MessageKind::Binary), &[0, 1, 2, 255]).unwrap();
    client.send(SendOp::Message(MessageKind::Text), b"").unwrap();
    let ev = log.wait_for(|ev| count(ev, "text") == 2 && count(ev, "binary") == 1);
    let messages: Vec<&String> = ev.iter().filter(|e| e.starts_with("text") || e.starts_with("binary")).collect();
    assert_eq!(messages, ["text hello, wörld", &describe(MessageKind::Binary, &[0, 1, 2, 255]), "text "]);
    // The server saw the same messages, in order.
    let sev = fix.conn_log.wait_for(|ev| ev.len() >= 4);
    assert_eq!(sev[..2], ["open", "text hello, wörld"]);
    assert_eq!(fix.log.snapshot()[0], "connection / protocol=-");
}

#[test]
fn echo_one_mebibyte_each_way() {
    let fix = Fixture::new();
    let (client, log, _) = open_pair(&fix);
    let big = pattern(1 << 20);
    client.send(SendOp::Message(MessageKind::Binary), &big).unwrap();
    let text_big: String = "wsffi ünïcode ".repeat((1 << 20) / 16);
    client.send(SendOp::Message(MessageKind::Text), text_big.as_bytes()).unwrap();
    let want_bin = describe(MessageKind::Binary, &big);
    let want_text = describe(MessageKind::Text, text_big.as_bytes());
    let ev = log.wait_for(|ev| ev.contains(&want_bin) && ev.contains(&want_text));
    let pos = |s: &String| ev.iter().position(|e| e == s).unwrap();
    assert!(pos(&want_bin) < pos(&want_text), "messages arrive in order: {ev:?}");
    assert_eq!(client.buffered_amount(), 0);
}

#[test]
fn echo_with_permessage_deflate() {
    let fix = Fixture::with(
        ListenerConfig::default(),
        server_cfg(|c| c.deflate = Some(Default::default())),
        ServerRecorder::new(),
    );
    let (client, log, server_side) = open_pair(&fix);
    let ext = |c: &ConnHandle| c.info().and_then(|i| i.extensions.as_ref()).map(|e| e.to_string_lossy().into_owned());
    assert!(ext(&client).unwrap_or_default().starts_with("permessage-deflate"), "{:?}", ext(&client));
    assert!(ext(&server_side).unwrap_or_default().starts_with("permessage-deflate"));
    let compressible = "abcabcabc".repeat(100_000);
    send_text(&client, &compressible);
    log.wait_event(&describe(MessageKind::Text, compressible.as_bytes()));
}

#[test]
fn fragmented_messages_from_a_raw_peer_arrive_whole() {
    let fix = Fixture::new();
    let mut raw = RawPeer::open(fix.port, "/");
    raw.send_frame(false, TEXT, "Hel".as_bytes());
    // A control frame may come between the fragments of a message.
    raw.send_frame(true, PING, b"mid");
    raw.send_frame(false, CONT, "lo, ".as_bytes());
    // A UTF-8 sequence split across fragments.
    let tail = "wörld".as_bytes();
    raw.send_frame(false, CONT, &tail[..2]);
    raw.send_frame(true, CONT, &tail[2..]);
    let pong = raw.frame();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (PONG, &b"mid"[..]));
    let echo = raw.frame();
    assert_eq!((echo.fin, echo.opcode), (true, TEXT));
    assert_eq!(echo.payload, "Hello, wörld".as_bytes());

    // A binary message in many fragments, larger than one read.
    let big = pattern(300_000);
    let mut chunks = big.chunks(70_000).peekable();
    let mut first = true;
    while let Some(c) = chunks.next() {
        raw.send_frame(chunks.peek().is_none(), if first { BINARY } else { CONT }, c);
        first = false;
    }
    let echo = raw.frame();
    assert_eq!((echo.fin, echo.opcode, echo.payload.len()), (true, BINARY, big.len()));
    assert_eq!(checksum(&echo.payload), checksum(&big));
    let ev = fix.conn_log.wait_for(|ev| count(ev, "binary") == 1);
    assert_eq!(
        ev.iter().filter(|e| !e.starts_with("open")).cloned().collect::<Vec<_>>(),
        ["ping mid", "text Hello, wörld", &describe(MessageKind::Binary, &big)]
    );
}

#[test]
fn fragments_sent_by_a_client_arrive_as_one_message() {
    let fix = Fixture::new();
    let (client, log, _) = open_pair(&fix);
    client.send(SendOp::Fragment(MessageKind::Text, false), b"one ").unwrap();
    // No whole message may go out while a fragmented one is under way.
    assert_eq!(client.send(SendOp::Message(MessageKind::Text), b"x"), Err(Error::InvalidParameter));
    client.send(SendOp::Ping, b"between").unwrap();
    client.send(SendOp::Fragment(MessageKind::Text, false), b"two ").unwrap();
    client.send(SendOp::Fragment(MessageKind::Text, true), b"three").unwrap();
    send_text(&client, "after");
    let ev = log.wait_for(|ev| ev.iter().any(|e| e == "text after"));
    let msgs: Vec<&String> = ev.iter().filter(|e| e.starts_with("text") || e.starts_with("pong")).collect();
    assert_eq!(msgs, ["pong between", "text one two three", "text after"]);
    fix.conn_log.wait_event("ping between");
}

#[test]
fn ping_is_answered_with_a_pong() {
    let fix = Fixture::new();
    let (client, log, server_side) = open_pair(&fix);
    client.send(SendOp::Ping, b"are you there").unwrap();
    assert_eq!(log.wait_event("pong"), "pong are you there");
    fix.conn_log.wait_event("ping are you there");
    // Control frames are limited to 125 bytes, whichever thread sends them.
    assert_eq!(server_side.send(SendOp::Ping, &[0; 126]), Err(Error::TooBig));
    assert_eq!(client.send(SendOp::Pong, &[0; 126]), Err(Error::TooBig));
    let c = client.clone();
    let on_loop = fix.reactor.shared().run_sync(move |_| c.send(SendOp::Ping, &[0; 126])).unwrap();
    assert_eq!(on_loop, Err(Error::TooBig));
    server_side.send(SendOp::Ping, &[b'x'; 125]).unwrap();
    log.wait_event(&format!("ping {}", "x".repeat(125)));
    server_side.send(SendOp::Pong, b"unsolicited").unwrap();
    log.wait_event("pong unsolicited");
}

// ---- close handshake ------------------------------------------------------------------------

#[test]
fn client_closes_first() {
    let fix = Fixture::new();
    let (client, log, server_side) = open_pair(&fix);
    client.close(Some(4001), b"bye".to_vec()).unwrap();
    assert_eq!(client.ready_state(), ready_state::CLOSING);
    assert_eq!(client.send(SendOp::Message(MessageKind::Text), b"late"), Err(Error::Closed));
    assert_eq!(client.close(Some(1000), Vec::new()), Err(Error::Closed));
    assert_eq!(log.wait_event("close"), r#"close 4001 "bye" clean Local peer=4001:"" local=4001:"bye""#);
    assert_eq!(fix.conn_log.wait_event("close"), r#"close 4001 "bye" clean Peer peer=4001:"bye" local=4001:"""#);
    // Nothing but the drop follows the close, and no error came before it.
    let ev = log.wait_for(|ev| ev.last().is_some_and(|e| e == "dropped"));
    assert_eq!(count(&ev, "error"), 0, "{ev:?}");
    assert_eq!(client.ready_state(), ready_state::CLOSED);
    assert_eq!(server_side.ready_state(), ready_state::CLOSED);
    fix.conn_log.wait_event("dropped");
}

#[test]
fn server_closes_first() {
    let fix = Fixture::new();
    let (_client, log, server_side) = open_pair(&fix);
    server_side.close(Some(4002), "server says bye".into()).unwrap();
    assert_eq!(
        log.wait_event("close"),
        r#"close 4002 "server says bye" clean Peer peer=4002:"server says bye" local=4002:"""#
    );
    assert_eq!(
        fix.conn_log.wait_event("close"),
        r#"close 4002 "server says bye" clean Local peer=4002:"" local=4002:"server says bye""#
    );
    assert_eq!(count(&log.snapshot(), "error"), 0);
}

#[test]
fn close_without_a_code_reports_1005() {
    let fix = Fixture::new();
    let (client, log, _) = open_pair(&fix);
    client.close(None, Vec::new()).unwrap();
    assert_eq!(log.wait_event("close"), r#"close 1005 "" clean Local peer=1005:"" local=1005:"""#);
    assert_eq!(fix.conn_log.wait_event("close"), r#"close 1005 "" clean Peer peer=1005:"" local=1005:"""#);
}

#[test]
fn close_refuses_codes_and_reasons_a_peer_would_reject() {
    let fix = Fixture::new();
    let (client, log, _) = open_pair(&fix);
    for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(client.close(Some(code), Vec::new()), Err(Error::InvalidParameter), "code {code}");
    }
    assert_eq!(client.close(None, b"a reason needs a code".to_vec()), Err(Error::InvalidParameter));
    assert_eq!(client.close(Some(1000), vec![b'a', 0xff]), Err(Error::InvalidParameter));
    assert_eq!(client.close(Some(1000), vec![b'r'; 124]), Err(Error::TooBig));
    // None of that started a close.
    assert_eq!(client.ready_state(), ready_state::OPEN);
    send_text(&client, "still open");
    log.wait_event("text still open");
    let longest = "é".repeat(61) + "x";
    client.close(Some(3000), longest.clone().into_bytes()).unwrap();
    assert_eq!(
        log.wait_event("close"),
        format!(r#"close 3000 "{longest}" clean Local peer=3000:"" local=3000:"{longest}""#)
    );
    assert_eq!(count(&fix.conn_log.snapshot(), "error"), 0);
}

#[test]
fn close_codes_on_the_wire_seen_by_a_raw_peer() {
    let fix = Fixture::new();
    let mut raw = RawPeer::open(fix.port, "/");
    let server_side = fix.server_conn(0);
    server_side.close(Some(4003), "raw bye".into()).unwrap();
    let f = raw.close_frame();
    assert_eq!((f.close_code(), f.close_reason().as_str()), (4003, "raw bye"));
    raw.send_close(4003, "");
    raw.expect_gone();
    assert_eq!(
        fix.conn_log.wait_event("close"),
        r#"close 4003 "raw bye" clean Local peer=4003:"" local=4003:"raw bye""#
    );
}

#[test]
fn raw_peer_closes_first_and_gets_the_code_echoed() {
    let fix = Fixture::new();
    let mut raw = RawPeer::open(fix.port, "/");
    fix.server_conn(0);
    raw.send_close(1000, "done");
    let f = raw.close_frame();
    assert_eq!((f.close_code(), f.close_reason().as_str()), (1000, ""));
    // The server closes TCP first.
    raw.expect_gone();
    assert_eq!(fix.conn_log.wait_event("close"), r#"close 1000 "done" clean Peer peer=1000:"done" local=1000:"""#);
}

#[test]
fn terminate_reports_1006_on_both_sides() {
    let fix = Fixture::new();
    let (client, log, _) = open_pair(&fix);
    client.terminate().unwrap();
    assert_eq!(log.wait_event("close"), "close 1006 \"\" unclean None peer=- local=-");
    assert_eq!(count(&log.snapshot(), "error"), 0, "terminating is no error for the side that does it");
    let ev = fix.conn_log.wait_for(|ev| ev.iter().any(|e| e.starts_with("close")));
    assert!(ev.iter().any(|e| e.starts_with("error ConnectionReset")), "{ev:?}");
    assert_eq!(fix.conn_log.wait_event("close"), "close 1006 \"\" unclean None peer=- local=-");
}

#[test]
fn stopping_the_reactor_closes_connections_with_1001() {
    let fix = Fixture::new();
    let client_reactor = Reactor::start(ReactorConfig::default()).unwrap();
    let (_client, log) = connect(&client_reactor, &fix.url(), ClientConfig::default());
    log.wait_event("open");
    fix.server_conn(0);
    let Fixture { reactor, log: server_log, conn_log, .. } = fix;
    reactor.stop().unwrap();
    assert_eq!(
        log.wait_event("close"),
        r#"close 1001 "reactor shutting down" clean Peer peer=1001:"reactor shutting down" local=1001:"""#
    );
    assert_eq!(
        conn_log.wait_event("close"),
        r#"close 1001 "reactor shutting down" clean Local peer=1001:"" local=1001:"reactor shutting down""#
    );
    server_log.wait_event("server_close");
    // A stopped reactor takes no more work.
    let refused = api::connect(reactor.shared(), "ws://127.0.0.1:1/", ClientConfig::default(), |_| {
        Box::new(wsffi::reactor::events::NoConnEvents) as Box<dyn ConnEvents>
    });
    assert_eq!(refused.err().map(|e| e.0), Some(Error::ShutDown));
}

// ---- protocol errors from a raw peer ---------------------------------------------------------

/// Sends `frame` from a raw peer and returns the close code the server answered with and the
/// server connection's error line.
fn violation(fix: &Fixture, send: impl FnOnce(&mut RawPeer)) -> (u16, String) {
    let mut raw = RawPeer::open(fix.port, "/");
    fix.server_conn(0);
    send(&mut raw);
    let f = raw.close_frame();
    raw.expect_gone();
    let err = fix.conn_log.wait_event("error");
    let close = fix.conn_log.wait_event("close");
    assert!(close.starts_with(&format!("close {} ", f.close_code())), "{close}");
    assert!(close.contains(" Local "), "{close}");
    (f.close_code(), err)
}

#[test]
fn invalid_utf8_text_gets_1007() {
    let fix = Fixture::new();
    let (code, err) = violation(&fix, |raw| raw.send_frame(true, TEXT, &[b'o', b'k', 0xff, 0xfe]));
    assert_eq!(code, 1007);
    assert!(err.starts_with("error Protocol"), "{err}");
}

#[test]
fn invalid_utf8_across_fragments_gets_1007() {
    let fix = Fixture::new();
    // "é" is C3 A9; a lead byte followed by another lead byte is invalid however it is split.
    let (code, _) = violation(&fix, |raw| {
        raw.send_frame(false, TEXT, &[b'a', 0xc3]);
        raw.send_frame(true, CONT, &[0xc3, 0xa9]);
    });
    assert_eq!(code, 1007);
}

#[test]
fn message_over_max_payload_gets_1009() {
    let limits = Limits { max_payload: 1000, ..Limits::default() };
    let fix = Fixture::with(ListenerConfig::default(), server_cfg(|c| c.conn.limits = limits), ServerRecorder::new());
    // At the limit is fine.
    let mut raw = RawPeer::open(fix.port, "/");
    raw.send_frame(true, BINARY, &[1; 1000]);
    assert_eq!(raw.frame().payload.len(), 1000);
    raw.send_frame(true, BINARY, &[1; 1001]);
    let f = raw.close_frame();
    assert_eq!(f.close_code(), 1009);
    raw.expect_gone();
    assert!(fix.conn_log.wait_event("error").starts_with("error MessageTooBig"));
}

#[test]
fn fragmented_message_over_max_payload_gets_1009() {
    let limits = Limits { max_payload: 1000, ..Limits::default() };
    let fix = Fixture::with(ListenerConfig::default(), server_cfg(|c| c.conn.limits = limits), ServerRecorder::new());
    let (code, err) = violation(&fix, |raw| {
        raw.send_frame(false, BINARY, &[1; 600]);
        raw.send_frame(true, CONT, &[2; 600]);
    });
    assert_eq!(code, 1009);
    assert!(err.starts_with("error MessageTooBig"), "{err}");
}

#[test]
fn unmasked_client_frame_gets_1002() {
    let fix = Fixture::new();
    let (code, err) = violation(&fix, |raw| raw.send_unmasked(true, TEXT, b"no mask"));
    assert_eq!(code, 1002);
    assert!(err.starts_with("error Protocol"), "{err}");
    assert_eq!(count(&fix.conn_log.snapshot(), "text"), 0, "the unmasked message is not delivered");
}

/// What a raw peer sends to break the protocol.
type RawSend = Box<dyn FnOnce(&mut RawPeer)>;

#[test]
fn other_framing_violations_get_1002() {
    let cases: [(&str, RawSend); 4] = [
        ("reserved opcode", Box::new(|raw: &mut RawPeer| raw.send_frame(true, 0x3, b"?"))),
        ("long ping", Box::new(|raw: &mut RawPeer| raw.send_frame(true, PING, &[0; 126]))),
        ("fragmented ping", Box::new(|raw: &mut RawPeer| raw.send_frame(false, PING, b"x"))),
        ("continuation without a start", Box::new(|raw: &mut RawPeer| raw.send_frame(true, CONT, b"x"))),
    ];
    for (what, send) in cases {
        let fix = Fixture::new();
        let (code, _) = violation(&fix, send);
        assert_eq!(code, 1002, "{what}");
    }
}

// ---- timeouts -----------------------------------------------------------------------------

#[test]
fn handshake_timeout_closes_a_silent_peer() {
    let lcfg = ListenerConfig { handshake_timeout: Duration::from_millis(300), ..Default::default() };
    let fix = Fixture::with(lcfg, ServerConfig::default(), ServerRecorder::new());
    let mut silent = RawPeer::connect(fix.port);
    let mut partial = RawPeer::connect(fix.port);
    partial.send_raw(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    assert!(silent.read_to_end().is_empty(), "the silent peer is closed without an answer");
    assert!(partial.read_to_end().is_empty(), "the half request gets no answer either");
    let ev = fix.log.wait_for(|ev| count(ev, "client_error Timeout opening handshake timed out") == 2);
    assert_eq!(count(&ev, "connection"), 0);
}

#[test]
fn client_handshake_timeout_against_a_silent_server() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let reactor = Reactor::start(ReactorConfig::default()).unwrap();
    let cfg = ClientConfig { handshake_timeout: Duration::from_millis(300), ..Default::default() };
    let (client, log) = connect(&reactor, &format!("ws://127.0.0.1:{port}/"), cfg);
    // Accepted, the request read, never answered.
    let (mut peer, _) = silent.accept().unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = std::io::Read::read(&mut peer, &mut buf).unwrap();
        assert!(n > 0);
        head.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&head).starts_with("GET / HTTP/1.1\r\n"));
    assert_eq!(log.wait_event("error"), "error Timeout opening handshake timed out");
    assert_eq!(log.wait_event("close"), "close 1006 \"\" unclean None peer=- local=-");
    assert_eq!(client.ready_state(), ready_state::CLOSED);
}

#[test]
fn idle_timeout_closes_with_1001() {
    let scfg = server_cfg(|c| {
        c.conn.idle_timeout = Some(Duration::from_millis(300));
        c.conn.ping_interval = None;
    });
    let fix = Fixture::with(ListenerConfig::default(), scfg, ServerRecorder::new());
    let mut raw = RawPeer::open(fix.port, "/");
    let f = raw.close_frame();
    assert_eq!((f.close_code(), f.close_reason().as_str()), (1001, "idle timeout"));
    raw.send_close(1001, "");
    raw.expect_gone();
    assert_eq!(fix.conn_log.wait_event("error"), "error Timeout idle timeout");
    assert_eq!(
        fix.conn_log.wait_event("close"),
        r#"close 1001 "idle timeout" clean Local peer=1001:"" local=1001:"idle timeout""#
    );
}

#[test]
fn unanswered_ping_ends_the_connection() {
    let scfg = server_cfg(|c| {
        c.conn.idle_timeout = None;
        c.conn.ping_interval = Some(Duration::from_millis(200));
    });
    let fix = Fixture::with(ListenerConfig::default(), scfg, ServerRecorder::new());
    let mut raw = RawPeer::open(fix.port, "/");
    let ping = raw.frame();
    assert_eq!((ping.opcode, ping.payload.len()), (PING, 0));
    raw.expect_gone();
    assert_eq!(fix.conn_log.wait_event("error"), "error Timeout no pong within the ping interval");
    assert_eq!(fix.conn_log.wait_event("close"), "close 1006 \"\" unclean None peer=- local=-");
}

#[test]
fn answered_pings_keep_the_connection() {
    let scfg = server_cfg(|c| {
        c.conn.idle_timeout = None;
        c.conn.ping_interval = Some(Duration::from_millis(150));
    });
    let fix = Fixture::with(ListenerConfig::default(), scfg, ServerRecorder::new());
    let mut raw = RawPeer::open(fix.port, "/");
    // Each ping comes an interval after the last input; three in a row means the pongs
    // counted as answers.
    for _ in 0..3 {
        let ping = raw.frame();
        assert_eq!(ping.opcode, PING);
        raw.send_frame(true, PONG, &ping.payload);
    }
    raw.send_frame(true, TEXT, b"still here");
    assert_eq!(raw.frame().payload, b"still here");
    assert_eq!(count(&fix.conn_log.snapshot(), "error"), 0);
    assert_eq!(count(&fix.conn_log.snapshot(), "pong"), 3);
}

#[test]
fn close_timeout_when_the_peer_never_answers() {
    let scfg = server_cfg(|c| c.conn.close_timeout = Duration::from_millis(300));
    let fix = Fixture::with(ListenerConfig::default(), scfg, ServerRecorder::new());
    let mut raw = RawPeer::open(fix.port, "/");
    let server_side = fix.server_conn(0);
    server_side.close(Some(4000), "answer me".into()).unwrap();
    assert_eq!(raw.close_frame().close_code(), 4000);
    // No answer: the server gives up at the close timeout.
    raw.expect_gone();
    assert_eq!(fix.conn_log.wait_event("error"), "error Timeout close handshake timed out");
    assert_eq!(
        fix.conn_log.wait_event("close"),
        r#"close 4000 "answer me" unclean Local peer=- local=4000:"answer me""#
    );
}

// ---- flow control ---------------------------------------------------------------------------

const HIGH: usize = 1 << 20;
const LOW: usize = 256 * 1024;

/// A server whose connections back up at [`HIGH`] and drain at [`LOW`], and a raw peer that
/// does not read (yet).
fn backed_up_fixture() -> (Fixture, RawPeer, Arc<ConnHandle>) {
    let scfg = server_cfg(|c| {
        c.conn.high_water = HIGH;
        c.conn.low_water = LOW;
    });
    let fix = Fixture::with(ListenerConfig::default(), scfg, ServerRecorder::new());
    let raw = RawPeer::open(fix.port, "/");
    let conn = fix.server_conn(0);
    (fix, raw, conn)
}

/// Sends 32 KiB binary messages on `conn` until the output is above the high-water mark with
/// the kernel's buffers full too (it stays above low water after the loop has flushed); returns
/// how many were accepted.
fn back_up(fix: &Fixture, conn: &Arc<ConnHandle>) -> usize {
    back_up_with(fix, conn, SendOp::Message(MessageKind::Binary))
}

/// [`back_up`] with sends of `op`.
fn back_up_with(fix: &Fixture, conn: &Arc<ConnHandle>, op: SendOp) -> usize {
    let chunk = Arc::new(vec![7u8; 32 * 1024]);
    let mut accepted = 0;
    for _ in 0..10_000 {
        let (c, data) = (conn.clone(), chunk.clone());
        // From the reactor thread, so nothing is flushed until the refusal.
        let (n, refusal, at_refusal) = fix
            .reactor
            .shared()
            .run_sync(move |_| {
                let mut n = 0;
                loop {
                    match c.send(op, &data) {
                        Ok(()) => n += 1,
                        Err(e) => return (n, e, c.buffered_amount()),
                    }
                }
            })
            .unwrap();
        accepted += n;
        assert_eq!(refusal, Error::Backpressure);
        assert!(at_refusal > HIGH, "refused only above the high-water mark: {at_refusal}");
        let c = conn.clone();
        if fix.reactor.shared().run_sync(move |_| c.buffered_amount()).unwrap() > LOW {
            // From another thread too, once that is above high water.
            loop {
                match conn.send(op, &chunk) {
                    Ok(()) => accepted += 1,
                    Err(e) => {
                        assert_eq!(e, Error::Backpressure);
                        return accepted;
                    }
                }
            }
        }
    }
    panic!("the output never backed up");
}

/// The number of drains so far, once commands sent before are done.
fn drains_so_far(fix: &Fixture) -> usize {
    fix.reactor.shared().run_sync(|_| ()).unwrap();
    count(&fix.conn_log.snapshot(), "drain")
}

/// Reads frames on another thread until a text frame; returns the binary messages before it
/// (whole frames and reassembled fragments) and the text.
fn read_until_text(mut raw: RawPeer) -> std::thread::JoinHandle<(Vec<Vec<u8>>, Vec<u8>)> {
    std::thread::spawn(move || {
        let mut binary = Vec::new();
        let mut partial: Option<Vec<u8>> = None;
        loop {
            let f = raw.frame();
            match f.opcode {
                BINARY if f.fin => binary.push(f.payload),
                BINARY => partial = Some(f.payload),
                CONT => {
                    let mut p = partial.take().expect("a continuation follows a first fragment");
                    p.extend_from_slice(&f.payload);
                    if f.fin {
                        binary.push(p);
                    } else {
                        partial = Some(p);
                    }
                }
                TEXT => return (binary, f.payload),
                _ => {}
            }
        }
    })
}

#[test]
fn backpressure_and_drain_when_the_peer_does_not_read() {
    let (fix, raw, conn) = backed_up_fixture();
    let accepted = back_up(&fix, &conn);
    assert!(conn.buffered_amount() > LOW);
    // Drains while the kernel still took our output were due; from here on the peer must read.
    let drains = drains_so_far(&fix);
    // The peer reads: the output drains and on_drain fires.
    let reader = read_until_text(raw);
    fix.conn_log.wait_for(|ev| count(ev, "drain") > drains);
    send_text(&conn, "end");
    let (binary, last) = reader.join().unwrap();
    assert_eq!(last, b"end");
    assert_eq!(binary.len(), accepted, "every accepted message arrived");
    assert_eq!(count(&fix.conn_log.snapshot(), "drain"), drains + 1, "one on_drain answers every refusal");
}

#[test]
fn a_refused_first_fragment_starts_no_message() {
    let (fix, raw, conn) = backed_up_fixture();
    let accepted = back_up(&fix, &conn);
    assert_eq!(conn.send(SendOp::Fragment(MessageKind::Binary, false), b"start"), Err(Error::Backpressure));
    let drains = drains_so_far(&fix);
    let reader = read_until_text(raw);
    fix.conn_log.wait_for(|ev| count(ev, "drain") > drains);
    // Nothing of the refused fragment went out, so whole messages may be sent again.
    assert_eq!(conn.send(SendOp::Message(MessageKind::Text), b"end"), Ok(()));
    let (binary, last) = reader.join().unwrap();
    assert_eq!((binary.len(), last.as_slice()), (accepted, &b"end"[..]));
}

#[test]
fn a_refused_final_fragment_leaves_the_message_open() {
    let (fix, raw, conn) = backed_up_fixture();
    conn.send(SendOp::Fragment(MessageKind::Binary, false), b"first ").unwrap();
    let more = back_up_with(&fix, &conn, SendOp::Fragment(MessageKind::Binary, false));
    assert_eq!(conn.send(SendOp::Fragment(MessageKind::Binary, true), b" last"), Err(Error::Backpressure));
    let drains = drains_so_far(&fix);
    let reader = read_until_text(raw);
    fix.conn_log.wait_for(|ev| count(ev, "drain") > drains);
    // The message is still open: a whole message is refused until its final fragment.
    assert_eq!(conn.send(SendOp::Message(MessageKind::Text), b"too early"), Err(Error::InvalidParameter));
    conn.send(SendOp::Fragment(MessageKind::Binary, true), b" last").unwrap();
    send_text(&conn, "end");
    let (binary, last) = reader.join().unwrap();
    assert_eq!(last, b"end");
    assert_eq!(binary.len(), 1);
    let message = &binary[0];
    assert_eq!(message.len(), 6 + more * 32 * 1024 + 5);
    assert!(message.starts_with(b"first ") && message.ends_with(b" last"));
}

#[test]
fn paused_connection_delivers_after_resume() {
    let fix = Fixture::new();
    let (_a, _alog, a_server) = open_pair(&fix);
    let (a, alog) = (_a, _alog);
    let (b, blog, _) = open_pair(&fix);
    a_server.set_paused(true).unwrap();
    // The same reactor runs the pause, then these sends, in order.
    send_text(&a, "one");
    send_text(&a, "two");
    send_text(&b, "witness");
    blog.wait_event("text witness");
    let ev = fix.conn_log.snapshot();
    assert!(ev.contains(&"text witness".to_string()));
    assert_eq!(count(&ev, "text one"), 0, "a paused connection delivers nothing: {ev:?}");
    assert_eq!(count(&alog.snapshot(), "text"), 0);
    a_server.set_paused(false).unwrap();
    let ev = alog.wait_for(|ev| count(ev, "text") == 2);
    let msgs: Vec<&String> = ev.iter().filter(|e| e.starts_with("text")).collect();
    assert_eq!(msgs, ["text one", "text two"]);
}

#[test]
fn send_before_open_is_refused() {
    let fix = Fixture::new();
    let (client, log) = fix.client();
    // The connect runs on the reactor thread; until `open` the connection is connecting.
    if client.ready_state() == ready_state::CONNECTING {
        assert_eq!(client.send(SendOp::Message(MessageKind::Text), b"early"), Err(Error::NotOpen));
    }
    log.wait_event("open");
    send_text(&client, "now");
    log.wait_event("text now");
}

// ---- slow consumers -------------------------------------------------------------------------

/// A server whose connections back up at [`HIGH`] and drain at [`LOW`], with `policy` for
/// clients above the mark.
fn policy_fixture(policy: BackpressurePolicy, close_timeout: Duration) -> Fixture {
    let scfg = server_cfg(|c| {
        c.conn.high_water = HIGH;
        c.conn.low_water = LOW;
        c.conn.backpressure = policy;
        c.conn.close_timeout = close_timeout;
    });
    Fixture::with(ListenerConfig::default(), scfg, ServerRecorder::new())
}

/// One broadcast from the reactor thread (flushed before the next); how many clients took it.
fn broadcast(fix: &Fixture, data: &Arc<Vec<u8>>) -> usize {
    let data = data.clone();
    fix.on_server(move |lp, server| lp.broadcast(server, MessageKind::Binary, &data))
}

/// Waits until `cond` holds (checked every 5 ms) or fails the test after [`WAIT`].
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends 32 KiB messages until the output stays above the high-water mark after the loop
/// flushed it (the kernel's buffers are full too): each round sends on the reactor thread
/// until a refusal (nothing is flushed in between). Returns how many were accepted and the
/// last refusal.
fn fill_until_over(fix: &Fixture, conn: &Arc<ConnHandle>) -> (usize, Error) {
    let chunk = Arc::new(vec![7u8; 32 * 1024]);
    let mut accepted = 0;
    for _ in 0..10_000 {
        let (c, data) = (conn.clone(), chunk.clone());
        let (n, refusal) = fix
            .reactor
            .shared()
            .run_sync(move |_| {
                let mut n = 0;
                loop {
                    match c.send(SendOp::Message(MessageKind::Binary), &data) {
                        Ok(()) => n += 1,
                        Err(e) => return (n, e),
                    }
                }
            })
            .unwrap();
        accepted += n;
        let c = conn.clone();
        if fix.reactor.shared().run_sync(move |_| c.buffered_amount()).unwrap() > HIGH {
            return (accepted, refusal);
        }
    }
    panic!("the output never stayed above the high-water mark");
}

#[test]
fn drop_policy_drops_messages_for_the_slow_client_only() {
    let fix = policy_fixture(BackpressurePolicy::Drop, Duration::from_secs(5));
    let slow_raw = RawPeer::open(fix.port, "/");
    let slow = fix.server_conn(0);
    let fast_raw = RawPeer::open(fix.port, "/");
    let fast = fix.server_conn(1);
    let fast_reader = read_until_text(fast_raw);
    let chunk = Arc::new(vec![3u8; 32 * 1024]);
    const N: usize = 400;
    let (mut taken, mut peak) = (0, 0);
    for _ in 0..N {
        taken += broadcast(&fix, &chunk);
        peak = peak.max(slow.buffered_amount());
    }
    let slow_drops = slow.dropped_messages() as usize;
    assert!(slow_drops > 0, "the slow client missed broadcasts");
    // Nothing was queued past the mark: at most the mark plus the message that crossed it.
    assert!(peak <= HIGH + chunk.len() + 14, "the slow client's output reached {peak}");
    let fast_drops = fast.dropped_messages() as usize;
    assert_eq!(taken, 2 * N - slow_drops - fast_drops);

    // Direct sends are dropped too and say so, from any thread; fragments are refused.
    assert_eq!(slow.send(SendOp::Message(MessageKind::Binary), &chunk), Err(Error::Dropped));
    assert_eq!(slow.send(SendOp::Ping, b"p"), Err(Error::Dropped));
    assert_eq!(slow.send(SendOp::Fragment(MessageKind::Binary, false), b"f"), Err(Error::Backpressure));
    let c = slow.clone();
    let on_loop = fix.reactor.shared().run_sync(move |_| c.send(SendOp::Message(MessageKind::Text), b"x")).unwrap();
    assert_eq!(on_loop, Err(Error::Dropped));
    assert_eq!(slow.dropped_messages() as usize, slow_drops + 3);
    assert_eq!(fix.server.dropped_messages(), slow.dropped_messages() + fast.dropped_messages());

    // The fast client got every broadcast it did not miss (it may have fallen behind too).
    wait_until("the fast client drained", || fast.buffered_amount() <= LOW);
    send_text(&fast, "end");
    let (binary, last) = fast_reader.join().unwrap();
    assert_eq!((binary.len(), last.as_slice()), (N - fast_drops, &b"end"[..]));
    // The slow one, once it reads, gets whole messages: those it took.
    let slow_reader = read_until_text(slow_raw);
    wait_until("the slow client drained", || slow.buffered_amount() <= LOW);
    send_text(&slow, "end");
    let (binary, last) = slow_reader.join().unwrap();
    assert_eq!((binary.len(), last.as_slice()), (N - slow_drops, &b"end"[..]));
    assert!(binary.iter().all(|m| m == &*chunk));
}

#[test]
fn refuse_policy_broadcast_and_publish_skip_and_count_the_slow_client() {
    let fix = policy_fixture(BackpressurePolicy::Refuse, Duration::from_secs(5));
    let _raw = RawPeer::open(fix.port, "/");
    let conn = fix.server_conn(0);
    back_up(&fix, &conn);
    let before = conn.dropped_messages();
    assert_eq!(broadcast(&fix, &Arc::new(vec![1u8; 100])), 0);
    assert_eq!(conn.dropped_messages(), before + 1);
    assert_eq!(fix.server.dropped_messages(), before + 1);
    // A publish skips it the same way.
    assert!(wsffi::reactor::pubsub::subscribe(&conn, "news").unwrap());
    let published = fix.on_server(|lp, server| lp.publish(server, "news", MessageKind::Text, b"headline", None));
    assert_eq!(published, 0);
    assert_eq!(conn.dropped_messages(), before + 2);
    assert_eq!(fix.server.dropped_messages(), before + 2);
    // A refused direct send is the caller's to send again: not a drop.
    assert_eq!(conn.send(SendOp::Message(MessageKind::Binary), b"x"), Err(Error::Backpressure));
    assert_eq!(conn.dropped_messages(), before + 2);
    assert_eq!(conn.ready_state(), ready_state::OPEN);
}

#[test]
fn close_policy_closes_a_client_that_stays_above_the_mark() {
    let grace = Duration::from_millis(300);
    let close_timeout = Duration::from_millis(300);
    let fix = policy_fixture(BackpressurePolicy::Close { code: 1013, grace }, close_timeout);
    let _raw = RawPeer::open(fix.port, "/");
    let conn = fix.server_conn(0);
    let start = Instant::now();
    let (_, refusal) = fill_until_over(&fix, &conn);
    // Above the mark the sends are refused, as under Refuse, until the grace time is over.
    assert_eq!(refusal, Error::Backpressure);
    wait_until("the close began", || conn.ready_state() == ready_state::CLOSING);
    let closing_after = start.elapsed();
    assert!(closing_after >= grace, "closing after {closing_after:?}");
    assert!(closing_after < grace + Duration::from_secs(1), "closing after {closing_after:?}");
    // on_error and on_close come once the socket is gone.
    // The peer reads nothing, not even the close frame: dropped at the close timeout.
    assert_eq!(
        fix.conn_log.wait_event("close"),
        r#"close 1013 "slow consumer" unclean Local peer=- local=1013:"slow consumer""#
    );
    let closed_after = start.elapsed();
    let error = "error Backpressure output above the high-water mark for 300 ms (slow consumer)";
    assert!(fix.conn_log.snapshot().iter().any(|e| e == error), "{:?}", fix.conn_log.snapshot());
    assert!(closed_after >= grace + close_timeout, "closed after {closed_after:?}");
    assert!(closed_after < grace + close_timeout + Duration::from_secs(3), "closed after {closed_after:?}");
    assert_eq!(conn.ready_state(), ready_state::CLOSED);
}

#[test]
fn close_policy_with_no_grace_closes_at_once() {
    let fix =
        policy_fixture(BackpressurePolicy::Close { code: 1008, grace: Duration::ZERO }, Duration::from_millis(200));
    let _raw = RawPeer::open(fix.port, "/");
    let conn = fix.server_conn(0);
    let start = Instant::now();
    fill_until_over(&fix, &conn);
    wait_until("the close began", || conn.ready_state() == ready_state::CLOSING);
    assert!(start.elapsed() < Duration::from_secs(1), "closing after {:?}", start.elapsed());
    assert_eq!(
        fix.conn_log.wait_event("close"),
        r#"close 1008 "slow consumer" unclean Local peer=- local=1008:"slow consumer""#
    );
}

#[test]
fn close_policy_sends_the_queue_then_the_close_frame() {
    let grace = Duration::from_millis(200);
    let fix = policy_fixture(BackpressurePolicy::Close { code: 1013, grace }, Duration::from_secs(10));
    let mut raw = RawPeer::open(fix.port, "/");
    let conn = fix.server_conn(0);
    let (accepted, _) = fill_until_over(&fix, &conn);
    // (on_error and on_close come at the end, once the socket is gone.)
    wait_until("the close began", || conn.ready_state() == ready_state::CLOSING);
    // A peer that reads late still gets every accepted message, then the close frame.
    let mut got = 0;
    let close = loop {
        let f = raw.frame();
        match f.opcode {
            BINARY => got += 1,
            PING | PONG => {}
            raw_ws::CLOSE => break f,
            other => panic!("unexpected opcode {other}"),
        }
    };
    assert_eq!(got, accepted);
    assert_eq!((close.close_code(), close.close_reason().as_str()), (1013, "slow consumer"));
    raw.send_close(1013, "");
    raw.expect_gone();
    assert_eq!(
        fix.conn_log.wait_event("close"),
        r#"close 1013 "slow consumer" clean Local peer=1013:"" local=1013:"slow consumer""#
    );
}

#[test]
fn close_policy_spares_a_client_that_drains_within_the_grace_time() {
    let grace = Duration::from_millis(1500);
    let fix = policy_fixture(BackpressurePolicy::Close { code: 1013, grace }, Duration::from_secs(5));
    let raw = RawPeer::open(fix.port, "/");
    let conn = fix.server_conn(0);
    back_up(&fix, &conn);
    let reader = read_until_text(raw);
    wait_until("the client drained", || conn.buffered_amount() <= LOW);
    std::thread::sleep(grace + Duration::from_millis(300));
    assert_eq!(conn.ready_state(), ready_state::OPEN);
    let ev = fix.conn_log.snapshot();
    assert_eq!((count(&ev, "error"), count(&ev, "close")), (0, 0), "{ev:?}");
    send_text(&conn, "end");
    let (_, last) = reader.join().unwrap();
    assert_eq!(last, b"end");
}

// ---- server side ----------------------------------------------------------------------------

#[test]
fn verify_client_reject_with_status() {
    let mut rec = ServerRecorder::new();
    rec.verify = Some(Box::new(|hs: &Arc<HandshakeHandle>| {
        if hs.request.query_param("token").is_some_and(|t| t.to_bytes() == b"good") {
            return Some(Verdict::Accept);
        }
        hs.set_reject(403, "Go Away");
        hs.add_header("X-Reason", "no token");
        Some(Verdict::Reject)
    }));
    let fix = Fixture::with(ListenerConfig::default(), ServerConfig::default(), rec);
    let mut raw = RawPeer::connect(fix.port);
    let head = raw.request("/?token=bad", "");
    assert!(head.starts_with("HTTP/1.1 403 Go Away\r\n"), "{head}");
    assert!(head.contains("X-Reason: no token\r\n"), "{head}");
    fix.log.wait_event("client_error HandshakeRejected verify_client rejected the client (403)");

    let (_, log) = connect(&fix.reactor, &format!("ws://127.0.0.1:{}/?token=bad", fix.port), ClientConfig::default());
    assert!(log.wait_event("response").starts_with("response 403"));
    assert!(log.wait_event("error").starts_with("error HandshakeRejected"));
    assert_eq!(log.wait_event("close"), "close 1006 \"\" unclean None peer=- local=-");

    let (_, log) = connect(&fix.reactor, &format!("ws://127.0.0.1:{}/?token=good", fix.port), ClientConfig::default());
    log.wait_event("open");
    assert_eq!(fix.log.wait_event("connection"), "connection /?token=good protocol=-");
}

/// A server whose `verify_client` defers and hands the handshake to the test.
fn deferring_server(lcfg: ListenerConfig) -> (Fixture, mpsc::Receiver<Arc<HandshakeHandle>>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let mut rec = ServerRecorder::new();
    rec.verify = Some(Box::new(move |hs: &Arc<HandshakeHandle>| {
        tx.lock().unwrap().send(hs.clone()).unwrap();
        Some(Verdict::Defer)
    }));
    (Fixture::with(lcfg, ServerConfig::default(), rec), rx)
}

#[test]
fn deferred_handshake_accepted_from_another_thread() {
    let (fix, rx) = deferring_server(ListenerConfig::default());
    let (client, log) = fix.client();
    let hs = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(hs.request.path.to_bytes(), b"/");
    assert_eq!(client.ready_state(), ready_state::CONNECTING);
    let decider = std::thread::spawn(move || {
        hs.add_header("X-Decided", "elsewhere");
        let again = hs.clone();
        let first = hs.decide(true);
        (first, again.decide(false))
    });
    let (first, second) = decider.join().unwrap();
    assert_eq!(first, Ok(()));
    assert_eq!(second, Err(Error::AlreadyDone));
    log.wait_event("open");
    fix.log.wait_event("connection");
    send_text(&client, "after a deferred accept");
    log.wait_event("text after a deferred accept");
}

#[test]
fn deferred_handshake_rejected_from_another_thread() {
    let (fix, rx) = deferring_server(ListenerConfig::default());
    let (_client, log) = fix.client();
    let hs = rx.recv_timeout(WAIT).unwrap();
    std::thread::spawn(move || {
        hs.set_reject(451, "Unavailable For Legal Reasons");
        hs.decide(false).unwrap();
    })
    .join()
    .unwrap();
    assert!(log.wait_event("response").starts_with("response 451"));
    assert!(log.wait_event("error").starts_with("error HandshakeRejected"));
    assert_eq!(count(&fix.log.snapshot(), "connection"), 0);
}

#[test]
fn deferred_handshake_decided_too_late() {
    let lcfg = ListenerConfig { handshake_timeout: Duration::from_millis(300), ..Default::default() };
    let (fix, rx) = deferring_server(lcfg);
    let (_client, log) = fix.client();
    let hs = rx.recv_timeout(WAIT).unwrap();
    log.wait_event("close");
    fix.log.wait_event("client_error Timeout opening handshake timed out waiting for a decision");
    assert_eq!(hs.decide(true), Err(Error::Timeout));
    assert_eq!(count(&fix.log.snapshot(), "connection"), 0);
}

#[test]
fn subprotocol_choice_is_visible_on_both_ends() {
    let mut rec = ServerRecorder::new();
    rec.protocols = Some(Box::new(|offered: &[String]| match offered.iter().position(|p| p == "chat.v2") {
        Some(i) => Some(Some(i)),
        None if offered.iter().any(|p| p == "none-please") => Some(None),
        None => None,
    }));
    let fix = Fixture::with(ListenerConfig::default(), ServerConfig::default(), rec);
    let protocol =
        |c: &ConnHandle| c.info().and_then(|i| i.protocol.as_ref()).map(|p| p.to_string_lossy().into_owned());
    let offer =
        |list: &[&str]| ClientConfig { protocols: list.iter().map(|s| s.to_string()).collect(), ..Default::default() };

    let (chosen, log) = fix.client_with(offer(&["chat.v1", "chat.v2", "superchat"]));
    log.wait_event("open");
    assert_eq!(protocol(&chosen).as_deref(), Some("chat.v2"));
    assert_eq!(protocol(&fix.server_conn(0)).as_deref(), Some("chat.v2"));
    assert_eq!(fix.log.wait_event("connection"), "connection / protocol=chat.v2");

    // `None` from the hook: the first offered.
    let (first, log) = fix.client_with(offer(&["alpha", "beta"]));
    log.wait_event("open");
    assert_eq!(protocol(&first).as_deref(), Some("alpha"));
    assert_eq!(protocol(&fix.server_conn(1)).as_deref(), Some("alpha"));

    // `Some(None)`: no subprotocol at all.
    let (none, log) = fix.client_with(offer(&["none-please"]));
    log.wait_event("open");
    assert_eq!(protocol(&none), None);
    assert_eq!(protocol(&fix.server_conn(2)), None);
}

#[test]
fn clients_broadcast_and_client_count() {
    let fix = Fixture::new();
    let clients: Vec<(Arc<ConnHandle>, &'static Log, Arc<ConnHandle>)> = (0..3).map(|_| open_pair(&fix)).collect();
    assert_eq!(fix.server.client_count(), 3);
    let listed = fix.on_server(|lp, s| lp.server_clients(s));
    assert_eq!(listed.len(), 3);
    for (_, _, server_side) in &clients {
        assert!(listed.iter().any(|c| Arc::ptr_eq(c, server_side)));
    }
    let sent = fix.on_server(|lp, s| lp.broadcast(s, MessageKind::Text, b"to everyone"));
    assert_eq!(sent, 3);
    for (_, log, _) in &clients {
        log.wait_event("text to everyone");
    }
    // One leaves: the count and the list follow.
    clients[0].0.close(Some(1000), Vec::new()).unwrap();
    clients[0].1.wait_event("close");
    // The server forgets a client after its close callback, before its events are dropped.
    fix.conn_log.wait_event("dropped");
    assert_eq!(fix.server.client_count(), 2);
    let sent = fix.on_server(|lp, s| lp.broadcast(s, MessageKind::Binary, &[1, 2, 3]));
    assert_eq!(sent, 2);
    for (_, log, _) in &clients[1..] {
        log.wait_event("binary len=3");
    }
    assert_eq!(count(&clients[0].1.snapshot(), "binary"), 0);
}

#[test]
fn closing_the_server_closes_its_clients() {
    let fix = Fixture::new();
    let a = open_pair(&fix);
    let b = open_pair(&fix);
    let handle = fix.server.clone();
    fix.reactor
        .shared()
        .run_sync(move |lp| {
            let s = lp.server_of(&handle).unwrap();
            lp.close_server(&s);
        })
        .unwrap();
    assert!(fix.server.is_closed());
    let want = r#"close 1001 "server closing" clean Peer peer=1001:"server closing" local=1001:"""#;
    assert_eq!(a.1.wait_event("close"), want);
    assert_eq!(b.1.wait_event("close"), want);
    // The server's own close comes after its clients'.
    let ev = fix.log.wait_for(|ev| ev.iter().any(|e| e == "server_close"));
    assert_eq!(ev.last().unwrap(), "server_close");
    assert_eq!(count(&fix.conn_log.wait_for(|ev| count(ev, "close") == 2), "close 1001"), 2);
    assert_eq!(fix.server.client_count(), 0);
    // Nobody answers at "/" any more; the listener still does.
    assert!(!fix.listener.is_closed());
    let (_, log) = fix.client();
    assert!(log.wait_event("response").starts_with("response 404"));
}

#[test]
fn max_connections_and_allowed_origins() {
    let scfg = server_cfg(|c| {
        c.max_connections = 1;
        c.allowed_origins = vec!["https://good.example".into()];
    });
    let fix = Fixture::with(ListenerConfig::default(), scfg, ServerRecorder::new());
    let origin = |o: &str| ClientConfig { origin: Some(o.into()), ..Default::default() };
    let (_bad, log) = fix.client_with(origin("https://evil.example"));
    assert!(log.wait_event("response").starts_with("response 403"));
    let (_first, log) = fix.client_with(origin("https://good.example"));
    log.wait_event("open");
    let (_second, log) = fix.client_with(origin("https://good.example"));
    assert!(log.wait_event("response").starts_with("response 503"));
    let ev = fix.log.wait_for(|ev| count(ev, "client_error") == 2);
    assert!(ev.iter().any(|e| e.starts_with("client_error HandshakeRejected origin not allowed")));
    assert!(ev.iter().any(|e| e == "client_error HandshakeRejected too many connections"));
}

#[test]
fn unknown_path_and_refused_connect() {
    let fix = Fixture::new();
    let (_, log) = connect(&fix.reactor, &format!("ws://127.0.0.1:{}/nowhere", fix.port), ClientConfig::default());
    assert!(log.wait_event("response").starts_with("response 404"), "{:?}", log.snapshot());
    // A port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_, log) = connect(&fix.reactor, &format!("ws://127.0.0.1:{port}/"), ClientConfig::default());
    assert!(log.wait_event("error").starts_with("error ConnectionRefused"));
    assert_eq!(log.wait_event("close"), "close 1006 \"\" unclean None peer=- local=-");
    let bad = api::connect(fix.reactor.shared(), "ftp://example.com/", ClientConfig::default(), |_| {
        panic!("no events for a URL that cannot be used")
    });
    assert_eq!(bad.err().map(|e| e.0), Some(Error::InvalidUrl));
}

#[test]
fn attach_refuses_a_second_server_at_the_same_path() {
    let fix = Fixture::new();
    let again = api::attach_server(
        fix.reactor.shared(),
        Some(fix.listener.clone()),
        "/".into(),
        ServerConfig::default(),
        Box::new(wsffi::reactor::events::NoServerEvents),
    );
    assert_eq!(again.err().map(|e| e.0), Some(Error::InvalidParameter));
    // A second path on the same listener works.
    let rec = ServerRecorder::new();
    let other_log = rec.conn_log;
    api::attach_server(
        fix.reactor.shared(),
        Some(fix.listener.clone()),
        "/other".into(),
        ServerConfig::default(),
        Box::new(rec),
    )
    .unwrap();
    let (c, log) = connect(&fix.reactor, &format!("ws://127.0.0.1:{}/other", fix.port), ClientConfig::default());
    log.wait_event("open");
    send_text(&c, "to other");
    other_log.wait_event("text to other");
    assert_eq!(count(&fix.conn_log.snapshot(), "text"), 0);
}

#[test]
fn unix_socket_listener_and_client() {
    let path = std::env::temp_dir().join(format!("wsffi-reactor-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let reactor = Reactor::start(ReactorConfig::default()).unwrap();
    let address = format!("unix:{}", path.display());
    let listener = api::listen(reactor.shared(), &address, ListenerConfig::default()).unwrap();
    assert_eq!(listener.port, 0);
    let rec = ServerRecorder::new();
    let (slog, conn_log) = (rec.log, rec.conn_log);
    api::attach_server(reactor.shared(), Some(listener), "/chat".into(), ServerConfig::default(), Box::new(rec))
        .unwrap();
    let (client, log) = connect(&reactor, &format!("ws+unix://{}:/chat", path.display()), ClientConfig::default());
    log.wait_event("open");
    assert_eq!(slog.wait_event("connection"), "connection /chat protocol=-");
    send_text(&client, "over a unix socket");
    log.wait_event("text over a unix socket");
    conn_log.wait_event("text over a unix socket");
    drop(reactor);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn adopted_listener_and_adopted_upgrade() {
    let reactor = Reactor::start(ReactorConfig::default()).unwrap();
    // A socket bound and listening elsewhere.
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let listener = api::adopt_listener(reactor.shared(), std_listener.into(), ListenerConfig::default()).unwrap();
    assert_eq!(listener.port, port);
    let rec = ServerRecorder::new();
    let conn_log = rec.conn_log;
    api::attach_server(reactor.shared(), Some(listener), "/".into(), ServerConfig::default(), Box::new(rec)).unwrap();
    let (client, log) = connect(&reactor, &format!("ws://127.0.0.1:{port}/"), ClientConfig::default());
    log.wait_event("open");
    send_text(&client, "adopted listener");
    conn_log.wait_event("text adopted listener");

    // A standalone server fed a socket whose request head was read by someone else.
    let rec = ServerRecorder::new();
    let (slog, conn_log) = (rec.log, rec.conn_log);
    let standalone =
        api::attach_server(reactor.shared(), None, "/".into(), ServerConfig::default(), Box::new(rec)).unwrap();
    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front_port = front.local_addr().unwrap().port();
    let mut raw = RawPeer::connect(front_port);
    raw.send_raw(RawPeer::upgrade_request("/elsewhere", "").as_bytes());
    let (mut accepted, _) = front.accept().unwrap();
    let mut head = vec![0u8; 16];
    std::io::Read::read_exact(&mut accepted, &mut head).unwrap();
    api::adopt_upgrade(&standalone, accepted.into(), head).unwrap();
    let response = raw.read_head();
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    assert_eq!(slog.wait_event("connection"), "connection /elsewhere protocol=-");
    raw.send_frame(true, TEXT, b"handed over");
    assert_eq!(raw.frame().payload, b"handed over");
    conn_log.wait_event("text handed over");
}

#[test]
fn plain_http_requests_reach_the_listeners_handler() {
    struct Hello;
    impl wsffi::reactor::events::HttpHandler for Hello {
        fn handle(&self, request: &RequestView, response: &mut wsffi::reactor::server::HttpResponse) {
            response.status = 200;
            response.headers.push(("Content-Type".into(), "text/plain".into()));
            response.body = format!("hello {}", request.path.to_string_lossy()).into_bytes();
        }
    }
    let fix = Fixture::new();
    // No handler yet: a WebSocket path wants an upgrade.
    let mut raw = RawPeer::connect(fix.port);
    raw.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = String::from_utf8(raw.read_to_end()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 426"), "{answer}");
    let l = fix.listener.clone();
    fix.reactor
        .shared()
        .run_sync(move |lp| {
            let listener = lp.listener_of(&l).unwrap();
            *listener.http.borrow_mut() = Some(Arc::new(Hello));
        })
        .unwrap();
    let mut raw = RawPeer::connect(fix.port);
    raw.send_raw(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
    let answer = String::from_utf8(raw.read_to_end()).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Content-Type: text/plain\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\nhello /status"), "{answer}");
    // Upgrades still go to the server.
    let (_, log, _) = open_pair(&fix);
    assert_eq!(count(&log.snapshot(), "open"), 1);
}

#[test]
fn client_frames_are_masked_and_server_fragments_reassembled() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let reactor = Reactor::start(ReactorConfig::default()).unwrap();
    let cfg = ClientConfig { deflate: None, ..Default::default() };
    let (client, log) = connect(&reactor, &format!("ws://127.0.0.1:{port}/raw"), cfg);
    let (stream, _) = server.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut peer = RawPeer::from_stream(stream);
    let request = peer.read_head();
    assert!(request.starts_with("GET /raw HTTP/1.1\r\n"), "{request}");
    let key = request.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).expect("a key").trim().to_string();
    let accept = wsffi::core::handshake::response::accept_key(&key);
    peer.send_raw(
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .as_bytes(),
    );
    log.wait_event("open");
    // A server's frames are unmasked; these come in fragments around a ping.
    peer.send_unmasked(false, TEXT, b"frag");
    peer.send_unmasked(true, PING, b"p");
    peer.send_unmasked(true, CONT, b"mented");
    log.wait_event("text fragmented");
    send_text(&client, "masked?");
    let (pong, masked) = peer.frame_with_mask();
    assert_eq!((pong.opcode, pong.payload.as_slice(), masked), (PONG, &b"p"[..], true));
    let (f, masked) = peer.frame_with_mask();
    assert_eq!((f.opcode, f.payload.as_slice(), masked), (TEXT, &b"masked?"[..], true));
    // The server closes: the client answers with the code and waits for the TCP close.
    peer.send_raw(&raw_ws::encode_frame(true, raw_ws::CLOSE, &[0x0f, 0xa0, b'o', b'k'], None));
    let (f, masked) = peer.frame_with_mask();
    assert!(masked);
    assert_eq!(f.close_code(), 4000);
    drop(peer);
    assert_eq!(log.wait_event("close"), r#"close 4000 "ok" clean Peer peer=4000:"ok" local=4000:"""#);
}

#[test]
fn stopping_the_reactor_ends_a_connection_still_connecting() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let reactor = Reactor::start(ReactorConfig::default()).unwrap();
    let (client, log) = connect(&reactor, &format!("ws://127.0.0.1:{port}/"), ClientConfig::default());
    let _accepted = silent.accept().unwrap();
    reactor.stop().unwrap();
    assert_eq!(log.wait_event("error"), "error ShutDown reactor shut down");
    assert_eq!(log.wait_event("close"), "close 1006 \"\" unclean None peer=- local=-");
    assert_eq!(client.ready_state(), ready_state::CLOSED);
    assert_eq!(client.close(Some(1000), Vec::new()), Err(Error::Closed));
}

// ---- TLS ----------------------------------------------------------------------------------

fn pki() -> &'static certs::TestPki {
    static PKI: OnceLock<certs::TestPki> = OnceLock::new();
    PKI.get_or_init(certs::generate)
}

fn tls_fixture() -> Fixture {
    let p = pki();
    let mut lcfg = ListenerConfig::default();
    let chain = tls::certs_from_pem(p.server.cert_pem.as_bytes(), "server").unwrap();
    let key = tls::key_from_pem(p.server.key_pem.as_bytes(), "server key").unwrap();
    lcfg.tls.cert = Some((chain, Arc::new(key)));
    Fixture::with(lcfg, ServerConfig::default(), ServerRecorder::new())
}

#[test]
fn wss_echo_with_a_test_certificate() {
    let fix = tls_fixture();
    let mut cfg = ClientConfig::default();
    cfg.tls.ca = tls::certs_from_pem(pki().ca.cert_pem.as_bytes(), "ca").unwrap();
    let (client, log) = connect(&fix.reactor, &format!("wss://localhost:{}/", fix.port), cfg);
    log.wait_event("open");
    send_text(&client, "over tls");
    let big = pattern(1 << 20);
    client.send(SendOp::Message(MessageKind::Binary), &big).unwrap();
    log.wait_event("text over tls");
    log.wait_event(&describe(MessageKind::Binary, &big));
    client.close(Some(1000), b"tls done".to_vec()).unwrap();
    assert_eq!(log.wait_event("close"), r#"close 1000 "tls done" clean Local peer=1000:"" local=1000:"tls done""#);
    assert_eq!(count(&log.snapshot(), "error"), 0);
}

#[test]
fn wss_with_an_untrusted_certificate_fails() {
    let fix = tls_fixture();
    let mut cfg = ClientConfig::default();
    cfg.tls.ca = tls::certs_from_pem(pki().other_ca.cert_pem.as_bytes(), "other ca").unwrap();
    let (_client, log) = connect(&fix.reactor, &format!("wss://localhost:{}/", fix.port), cfg);
    assert!(log.wait_event("error").starts_with("error Tls"), "{:?}", log.snapshot());
    assert_eq!(log.wait_event("close"), "close 1006 \"\" unclean None peer=- local=-");
    assert_eq!(count(&fix.log.snapshot(), "connection"), 0);
}

#[test]
fn mutual_tls_shows_the_client_subject() {
    let p = pki();
    let mut lcfg = ListenerConfig::default();
    let chain = tls::certs_from_pem(p.server.cert_pem.as_bytes(), "server").unwrap();
    let key = tls::key_from_pem(p.server.key_pem.as_bytes(), "server key").unwrap();
    lcfg.tls.cert = Some((chain, Arc::new(key)));
    let client_ca = tls::certs_from_pem(p.client_ca.cert_pem.as_bytes(), "client ca").unwrap();
    lcfg.tls.client_ca = Some((client_ca, "client ca".into(), true));
    let subjects = Log::new();
    let mut rec = ServerRecorder::new();
    rec.verify = Some(Box::new(move |hs: &Arc<HandshakeHandle>| {
        subjects.push(format!("subject {}", hs.request.tls_subject.to_string_lossy()));
        None
    }));
    let fix = Fixture::with(lcfg, ServerConfig::default(), rec);
    let url = format!("wss://localhost:{}/", fix.port);
    let trusting = || {
        let mut cfg = ClientConfig::default();
        cfg.tls.ca = tls::certs_from_pem(p.ca.cert_pem.as_bytes(), "ca").unwrap();
        cfg
    };

    let mut cfg = trusting();
    let chain = tls::certs_from_pem(p.client.cert_pem.as_bytes(), "client").unwrap();
    let key = tls::key_from_pem(p.client.key_pem.as_bytes(), "client key").unwrap();
    cfg.tls.client_cert = Some((chain, Arc::new(key)));
    let (client, log) = connect(&fix.reactor, &url, cfg);
    log.wait_event("open");
    let subject = subjects.wait_event("subject");
    assert!(subject.contains("CN=client") && subject.contains("O=Example"), "{subject}");
    send_text(&client, "mutual");
    log.wait_event("text mutual");

    // Without a certificate the TLS handshake fails: no upgrade reaches the server.
    let (_anonymous, log) = connect(&fix.reactor, &url, trusting());
    assert!(log.wait_event("error").starts_with("error"), "{:?}", log.snapshot());
    log.wait_event("close 1006");
    assert_eq!(count(&fix.log.snapshot(), "connection"), 1);
}

// ---- dispatch mode ------------------------------------------------------------------------

/// Records events with whether they ran on the thread that dispatches.
struct ThreadRecorder {
    log: &'static Log,
    thread: std::thread::ThreadId,
    echo: bool,
    /// Tries a dispatch from inside `on_open`.
    queue: Option<Arc<wsffi::reactor::dispatch::DispatchQueue>>,
}

impl ThreadRecorder {
    fn note(&self, what: String) {
        let here = if std::thread::current().id() == self.thread { "dispatcher" } else { "elsewhere" };
        self.log.push(format!("{what} @{here}"));
    }
}

impl ConnEvents for ThreadRecorder {
    fn on_open(&self, _conn: &Arc<ConnHandle>) {
        self.note("open".into());
        if let Some(q) = &self.queue {
            self.log.push(format!("nested dispatch {:?}", q.run(usize::MAX)));
        }
    }
    fn on_message(&self, conn: &Arc<ConnHandle>, kind: MessageKind, data: &[u8]) {
        self.note(describe(kind, data));
        if self.echo {
            conn.send(SendOp::Message(kind), data).unwrap();
        }
    }
    fn on_close(&self, _conn: &Arc<ConnHandle>, close: &wsffi::reactor::conn::CloseReport) {
        self.note(events::close_line(close));
    }
}

struct ThreadServer {
    log: &'static Log,
    conn_log: &'static Log,
    thread: std::thread::ThreadId,
}

impl ServerEvents for ThreadServer {
    fn verify_client(&self, hs: &Arc<HandshakeHandle>) -> Option<Verdict> {
        let here = std::thread::current().id() == self.thread;
        self.log.push(format!("verify @{}", if here { "dispatcher" } else { "elsewhere" }));
        let _ = hs;
        Some(Verdict::Accept)
    }
    fn handle_protocols(&self, _request: &RequestView, offered: &[String]) -> Option<Option<usize>> {
        Some(Some(offered.len() - 1))
    }
    fn on_connection(&self, _server: &Arc<ServerHandle>, conn: &Arc<ConnHandle>, _request: &Arc<RequestView>) {
        self.log.push("connection".into());
        conn.set_events(Box::new(ThreadRecorder { log: self.conn_log, thread: self.thread, echo: true, queue: None }))
            .unwrap();
    }
    fn on_close(&self, _server: &Arc<ServerHandle>) {
        self.log.push("server_close".into());
    }
}

/// Waits for the dispatch descriptor to become readable.
fn wait_readable(fd: std::os::fd::RawFd) {
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, WAIT.as_millis() as i32) };
    assert_eq!(n, 1, "no event became ready to dispatch");
}

#[test]
fn dispatch_mode_runs_events_only_when_dispatched() {
    let wakes = Log::new();
    let wake: wsffi::reactor::dispatch::WakeFn = Arc::new(move || wakes.push("wake".into()));
    let config = ReactorConfig { dispatch: Some(DispatchSettings { wake: Some(wake) }), ..Default::default() };
    let reactor = Reactor::start(config).unwrap();
    let queue = reactor.shared().dispatch_queue().expect("dispatch mode").clone();
    let me = std::thread::current().id();
    let (slog, conn_log, clog) = (Log::new(), Log::new(), Log::new());
    let listener = api::listen(reactor.shared(), "127.0.0.1:0", ListenerConfig::default()).unwrap();
    let server = ThreadServer { log: slog, conn_log, thread: me };
    api::attach_server(reactor.shared(), Some(listener.clone()), "/".into(), ServerConfig::default(), Box::new(server))
        .unwrap();
    let cfg = ClientConfig { protocols: vec!["a".into(), "b".into()], ..Default::default() };
    let url = format!("ws://127.0.0.1:{}/", listener.port);
    let client = api::connect(reactor.shared(), &url, cfg, |_| {
        Box::new(ThreadRecorder { log: clog, thread: me, echo: false, queue: Some(queue.clone()) })
            as Box<dyn ConnEvents>
    })
    .unwrap();

    // The upgrade waits for verify_client, which waits for a dispatch.
    wait_readable(queue.fd());
    assert!(slog.snapshot().is_empty() && clog.snapshot().is_empty(), "nothing runs before a dispatch");
    // The wake function announces them too (right after the descriptor).
    wakes.wait_event("wake");
    let until = |log: &Log, pred: &dyn Fn(&[String]) -> bool| {
        while !pred(&log.snapshot()) {
            wait_readable(queue.fd());
            queue.run(usize::MAX).unwrap();
        }
    };
    until(clog, &|ev| ev.iter().any(|e| e.starts_with("open")));
    assert_eq!(client.info().and_then(|i| i.protocol.as_ref()).unwrap().to_bytes(), b"b");
    send_text(&client, "dispatched echo");
    until(clog, &|ev| ev.iter().any(|e| e.starts_with("text")));
    client.close(Some(4005), Vec::new()).unwrap();
    until(clog, &|ev| ev.iter().any(|e| e.starts_with("close")));
    until(conn_log, &|ev| ev.iter().any(|e| e.starts_with("close")));
    assert_eq!(slog.snapshot(), ["verify @dispatcher", "connection"]);
    assert_eq!(
        conn_log.snapshot(),
        [
            "open @dispatcher",
            "text dispatched echo @dispatcher",
            "close 4005 \"\" clean Peer peer=4005:\"\" local=4005:\"\" @dispatcher"
        ]
    );
    assert_eq!(
        clog.snapshot(),
        [
            "open @dispatcher",
            "nested dispatch Err(Reentrant)",
            "text dispatched echo @dispatcher",
            "close 4005 \"\" clean Local peer=4005:\"\" local=4005:\"\" @dispatcher"
        ]
    );
    assert_eq!(queue.run(0), Ok(0), "max 0 runs nothing");
    reactor.stop().unwrap();
    assert_eq!(slog.snapshot().last().unwrap(), "server_close");
}

// ---- application timers ---------------------------------------------------------------

#[test]
fn timers_repeat_until_cancelled_and_run_on_the_reactor_thread() {
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let (tx, rx) = mpsc::channel();
    let main = std::thread::current().id();
    let id = api::add_timer(
        reactor.shared(),
        Duration::ZERO,
        Some(Duration::from_millis(5)),
        Box::new(move |id| {
            let _ = tx.send((id, std::thread::current().id() != main));
        }),
    )
    .expect("timer");
    for _ in 0..3 {
        let (seen, elsewhere) = rx.recv_timeout(WAIT).expect("a run");
        assert_eq!(seen, id);
        assert!(elsewhere, "timers run on the reactor thread");
    }
    api::cancel_timer(reactor.shared(), id).expect("cancel");
    // The callback (and its sender) is gone once cancel returns: the channel disconnects.
    loop {
        match rx.recv_timeout(WAIT) {
            Ok(_) => continue, // runs queued before the cancel
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("the callback was not dropped"),
        }
    }
    assert_eq!(api::cancel_timer(reactor.shared(), id), Err(Error::AlreadyDone));
    let refused = api::add_timer(reactor.shared(), Duration::ZERO, Some(Duration::ZERO), Box::new(|_| {}));
    assert_eq!(refused.err().map(|(e, _)| e), Some(Error::InvalidParameter));
    reactor.stop().expect("stop");
    let late = api::add_timer(reactor.shared(), Duration::ZERO, None, Box::new(|_| {}));
    assert_eq!(late.err().map(|(e, _)| e), Some(Error::ShutDown));
}

#[test]
fn timers_in_dispatch_mode_wait_for_the_dispatching_thread() {
    let config = ReactorConfig { dispatch: Some(DispatchSettings::default()), ..ReactorConfig::default() };
    let reactor = Reactor::start(config).expect("reactor");
    let queue = reactor.shared().dispatch_queue().expect("dispatch mode").clone();
    let runs = Arc::new(Mutex::new(Vec::new()));
    let r2 = runs.clone();
    api::add_timer(
        reactor.shared(),
        Duration::from_millis(1),
        None,
        Box::new(move |_| r2.lock().unwrap().push(std::thread::current().id())),
    )
    .expect("timer");
    let deadline = std::time::Instant::now() + WAIT;
    while queue.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the timer's job never arrived");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(runs.lock().unwrap().is_empty(), "nothing runs before a dispatch");
    queue.run(usize::MAX).expect("run");
    assert_eq!(*runs.lock().unwrap(), vec![std::thread::current().id()]);
    reactor.stop().expect("stop");
}

// ---- topics -------------------------------------------------------------------------------

#[test]
fn publish_reaches_subscribers_and_skips_one_that_does_not_read() {
    use wsffi::reactor::pubsub;
    let scfg = server_cfg(|c| {
        c.conn.high_water = 256 * 1024;
        c.conn.low_water = 64 * 1024;
    });
    let fix = Fixture::with(ListenerConfig::default(), scfg, ServerRecorder::new());
    let (_a, a_log, a_srv) = open_pair(&fix);
    let (_b, b_log, b_srv) = open_pair(&fix);
    assert_eq!(pubsub::subscribe(&a_srv, "news"), Ok(true));
    assert_eq!(pubsub::subscribe(&a_srv, "news"), Ok(false));
    assert_eq!(pubsub::subscribe(&b_srv, "news"), Ok(true));
    assert_eq!(pubsub::subscriber_count(&fix.server, "news"), 2);
    assert!(pubsub::is_subscribed(&b_srv, "news"));
    // Not from the reactor thread: handed over, in order.
    assert_eq!(pubsub::publish(&fix.server, "news", MessageKind::Text, b"one", None), Ok(None));
    assert_eq!(pubsub::publish(&fix.server, "news", MessageKind::Text, b"two", Some(&a_srv)), Ok(None));
    b_log.wait_event("text two");
    a_log.wait_event("text one");
    // From the reactor thread it is queued before returning.
    let sent = fix.on_server(|lp, s| lp.publish(s, "news", MessageKind::Binary, b"\x01", None));
    assert_eq!(sent, 2);
    a_log.wait_event("binary len=1");
    // Published after "two" on the same reactor: "two" never reached `a`.
    assert_eq!(count(&a_log.snapshot(), "text "), 1);

    // A subscriber that never reads: its output passes the high-water mark, later
    // publishes skip it (and are counted) while the others still get everything.
    let mut stuck = RawPeer::open(fix.port, "/");
    let stuck_srv = fix.server_conn(2);
    assert_eq!(pubsub::subscribe(&stuck_srv, "news"), Ok(true));
    let big = pattern(64 * 1024);
    let mut skipped = 0;
    for _ in 0..400 {
        fix.on_server({
            let big = big.clone();
            move |lp, s| lp.publish(s, "news", MessageKind::Binary, &big, None)
        });
        skipped = stuck_srv.dropped_messages();
        if skipped > 0 {
            break;
        }
    }
    assert!(skipped > 0, "a stuck subscriber was never skipped");
    assert!(stuck_srv.buffered_amount() <= 256 * 1024 + big.len() + 16, "{}", stuck_srv.buffered_amount());
    // The stuck one still holds its queue; nothing was lost for the readers.
    drop(stuck.frame());
    // Close ends the subscriptions.
    api_close(&a_srv);
    a_log.wait_event("close");
    let deadline = std::time::Instant::now() + WAIT;
    while pubsub::subscriber_count(&fix.server, "news") != 2 {
        assert!(std::time::Instant::now() < deadline, "the closed subscriber stayed");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!pubsub::is_subscribed(&a_srv, "news"));
    assert_eq!(pubsub::subscribe(&a_srv, "news"), Err(Error::Closed));
    let client_side = fix.client().0;
    assert_eq!(pubsub::subscribe(&client_side, "news"), Err(Error::Unsupported));
    assert_eq!(pubsub::subscribe(&b_srv, ""), Err(Error::InvalidParameter));
    assert_eq!(pubsub::subscribe(&b_srv, &"x".repeat(1025)), Err(Error::TooBig));
}

fn api_close(conn: &Arc<ConnHandle>) {
    conn.close(Some(1000), Vec::new()).expect("close");
}
