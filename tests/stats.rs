//! The counters of connections, servers and the reactor after known traffic, read through the
//! reactor's Rust API (no C layer) from the test thread while the reactor runs.

#[path = "support/log.rs"]
mod event_log;

#[path = "support/events.rs"]
mod events;

#[path = "support/raw_ws.rs"]
mod raw_ws;

#[path = "support/certs.rs"]
mod certs;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use event_log::Log;
use events::{count, Recorder, ServerRecorder};
use raw_ws::{RawPeer, TEXT};
use wsffi::core::session::MessageKind;
use wsffi::reactor::api;
use wsffi::reactor::config::{ClientConfig, ListenerConfig, ReactorConfig, ServerConfig};
use wsffi::reactor::conn::{ConnHandle, SendOp};
use wsffi::reactor::events::{ConnEvents, Verdict};
use wsffi::reactor::server::{HandshakeHandle, ServerHandle};
use wsffi::reactor::stats::{close_slot, Refusal, CLOSE_SLOTS};
use wsffi::reactor::{tls, Reactor};

/// A reactor with a listener on 127.0.0.1:0 and an echo server attached at "/".
struct Fixture {
    reactor: Reactor,
    server: Arc<ServerHandle>,
    port: u16,
    log: &'static Log,
    conns: Arc<Mutex<Vec<Arc<ConnHandle>>>>,
}

impl Fixture {
    fn with(scfg: ServerConfig, rec: ServerRecorder) -> Fixture {
        Fixture::on(ListenerConfig::default(), scfg, rec)
    }

    fn on(lcfg: ListenerConfig, scfg: ServerConfig, rec: ServerRecorder) -> Fixture {
        let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
        let (log, conns) = (rec.log, rec.conns.clone());
        let listener = api::listen(reactor.shared(), "127.0.0.1:0", lcfg).expect("listen");
        let server = api::attach_server(reactor.shared(), Some(listener.clone()), "/".into(), scfg, Box::new(rec))
            .expect("attach");
        Fixture { reactor, server, port: listener.port, log, conns }
    }

    fn new() -> Fixture {
        Fixture::with(ServerConfig::default(), ServerRecorder::new())
    }

    fn client(&self, path: &str) -> (Arc<ConnHandle>, &'static Log) {
        self.client_at(&format!("ws://127.0.0.1:{}{path}", self.port), ClientConfig::default())
    }

    fn client_at(&self, url: &str, cfg: ClientConfig) -> (Arc<ConnHandle>, &'static Log) {
        let log = Log::new();
        let conn = api::connect(self.reactor.shared(), url, cfg, |_| Recorder::new(log) as Box<dyn ConnEvents>)
            .expect("connect");
        (conn, log)
    }

    fn server_conn(&self, i: usize) -> Arc<ConnHandle> {
        self.log.wait_for(|ev| count(ev, "connection ") > i);
        self.conns.lock().unwrap()[i].clone()
    }
}

/// Waits until `cond` holds (counters are updated by the reactor thread as it goes).
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn closes(table: &[u64; CLOSE_SLOTS], code: u16) -> u64 {
    table[close_slot(code)]
}

#[test]
fn bytes_and_messages_of_a_raw_peer_are_counted_exactly() {
    let fix = Fixture::new();
    let request = RawPeer::upgrade_request("/", "");
    let mut peer = RawPeer::connect(fix.port);
    peer.send_raw(request.as_bytes());
    let answer = peer.read_head();
    assert!(answer.starts_with("HTTP/1.1 101"), "{answer}");
    let conn = fix.server_conn(0);
    // A masked text frame: 2 header bytes, 4 mask bytes, 5 payload bytes; its echo: 2 + 5.
    peer.send_frame(true, TEXT, b"hello");
    assert_eq!(peer.frame().payload, b"hello");
    eventually("the echo counted", || conn.stats().traffic.bytes_out == (answer.len() + 7) as u64);
    let c = conn.stats();
    assert_eq!(c.traffic.bytes_in, (request.len() + 11) as u64);
    assert_eq!((c.traffic.messages_in, c.traffic.messages_out), (1, 1));
    assert_eq!(c.buffered, 0);
    assert_eq!(c.last_ping_rtt, None);
    // The server counts from the 101 answer on: the request came before it was known.
    let s = fix.server.stats();
    assert_eq!(s.traffic.bytes_in, 11);
    assert_eq!(s.traffic.bytes_out, (answer.len() + 7) as u64);
    assert_eq!((s.traffic.messages_in, s.traffic.messages_out), (1, 1));
    assert_eq!((s.connections_open, s.accepted), (1, 1));
    // The reactor counts everything.
    let r = fix.reactor.stats();
    assert_eq!(r.traffic.bytes_in, c.traffic.bytes_in);
    assert_eq!(r.traffic.bytes_out, c.traffic.bytes_out);
    assert_eq!((r.connections_open, r.connections_opened, r.accepted), (1, 1, 1));
    // The peer closes with an application code: "other" on the server and the reactor.
    peer.send_close(4000, "done");
    assert_eq!(peer.close_frame().close_code(), 4000);
    drop(peer);
    eventually("the close counted", || fix.reactor.stats().connections_open == 0);
    let r = fix.reactor.stats();
    assert_eq!(r.closes_received[CLOSE_SLOTS - 1], 1);
    assert_eq!(r.closes_sent[CLOSE_SLOTS - 1], 1);
    assert_eq!(r.closes_received.iter().sum::<u64>(), 1);
    // The server's count drops after its connection's on_close has run.
    eventually("the server's count", || fix.server.stats().connections_open == 0);
    let s = fix.server.stats();
    assert_eq!((s.closes_received[CLOSE_SLOTS - 1], s.closes_sent[CLOSE_SLOTS - 1]), (1, 1));
    // A closed connection's counters stay readable and final.
    let after = conn.stats();
    assert_eq!(after.traffic, c.traffic.with_close(after.traffic));
}

/// Only the bytes of the close handshake may differ between `self` (before the close) and
/// `after`; the messages may not.
trait WithClose {
    fn with_close(self, after: Self) -> Self;
}

impl WithClose for wsffi::reactor::stats::TrafficCounts {
    fn with_close(self, after: Self) -> Self {
        assert_eq!((after.messages_in, after.messages_out), (self.messages_in, self.messages_out));
        assert!(after.bytes_in > self.bytes_in && after.bytes_out > self.bytes_out);
        after
    }
}

#[test]
fn client_and_server_sides_agree_and_close_codes_are_counted() {
    let fix = Fixture::new();
    let (client, log) = fix.client("/");
    log.wait_event("open");
    let server_side = fix.server_conn(0);
    for _ in 0..3 {
        client.send(SendOp::Message(MessageKind::Text), b"hello").unwrap();
    }
    client.send(SendOp::Message(MessageKind::Binary), &[7; 1000]).unwrap();
    client.send(SendOp::Fragment(MessageKind::Text, false), b"frag").unwrap();
    client.send(SendOp::Fragment(MessageKind::Text, true), b"ment").unwrap();
    log.wait_for(|ev| count(ev, "text") == 4 && count(ev, "binary") == 1);
    // Received messages are counted once the read that carried them is processed, just
    // after their callbacks.
    eventually("five messages each way", || {
        let (c, s) = (client.stats().traffic, server_side.stats().traffic);
        (c.messages_out, c.messages_in, s.messages_in, s.messages_out) == (5, 5, 5, 5)
    });
    eventually("both streams read whole", || {
        let (c, s) = (client.stats().traffic, server_side.stats().traffic);
        c.bytes_out == s.bytes_in && s.bytes_out == c.bytes_in
    });
    let r = fix.reactor.stats();
    assert_eq!((r.traffic.messages_in, r.traffic.messages_out), (10, 10));
    assert_eq!((r.connections_open, r.connections_opened, r.accepted), (2, 2, 1));

    client.close(Some(1000), b"bye".to_vec()).unwrap();
    log.wait_event("close");
    eventually("both ends closed", || fix.reactor.stats().connections_open == 0);
    let r = fix.reactor.stats();
    // The client's 1000 and the server's echo of it, seen from both ends.
    assert_eq!((closes(&r.closes_sent, 1000), closes(&r.closes_received, 1000)), (2, 2));
    assert_eq!(r.closes_sent.iter().sum::<u64>(), 2);
    let srv = fix.server.stats();
    assert_eq!((closes(&srv.closes_sent, 1000), closes(&srv.closes_received, 1000)), (1, 1));
    assert_eq!(client.stats().traffic.messages_in, 5, "final counters after close");

    // A terminated connection: no close frame either way, 1006 received on both ends.
    let (client, log) = fix.client("/");
    log.wait_event("open");
    client.terminate().unwrap();
    log.wait_event("close");
    eventually("both ends closed", || fix.reactor.stats().connections_open == 0);
    let r = fix.reactor.stats();
    assert_eq!(closes(&r.closes_received, 1006), 2);
    assert_eq!(r.closes_sent.iter().sum::<u64>(), 2, "no close frame went out");
    assert_eq!(r.connections_opened, 4);
}

#[test]
fn ping_round_trips_are_measured() {
    let cfg = {
        let mut c = ServerConfig::default();
        c.conn.ping_interval = Some(Duration::from_millis(50));
        c
    };
    let fix = Fixture::with(cfg, ServerRecorder::new());
    let (client, log) = fix.client("/");
    log.wait_event("open");
    let server_side = fix.server_conn(0);
    assert_eq!(client.stats().last_ping_rtt, None);
    // The application's ping.
    client.send(SendOp::Ping, b"probe").unwrap();
    log.wait_event("pong probe");
    let rtt = client.stats().last_ping_rtt.expect("rtt after the pong");
    assert!(rtt < Duration::from_secs(5), "{rtt:?}");
    // The server's automatic pings (the client answers them).
    eventually("an automatic ping answered", || server_side.stats().last_ping_rtt.is_some());
    // A pong that answers no ping of ours leaves the figure alone.
    let before = client.stats().last_ping_rtt;
    server_side.send(SendOp::Pong, b"unsolicited").unwrap();
    log.wait_event("pong unsolicited");
    assert_eq!(client.stats().last_ping_rtt, before);
}

#[test]
fn refusals_are_counted_by_reason() {
    let mut rec = ServerRecorder::new();
    rec.verify = Some(Box::new(|hs: &Arc<HandshakeHandle>| {
        let refuse = hs.request.request.query.as_deref() == Some("no");
        Some(if refuse { Verdict::Reject } else { Verdict::Accept })
    }));
    let cfg = ServerConfig { max_connections: 1, ..Default::default() };
    let fix = Fixture::with(cfg, rec);
    // verify_client says no.
    let (_refused, log) = fix.client("/?no");
    log.wait_event("close");
    // One connection is allowed; the second gets 503.
    let (_first, log1) = fix.client("/");
    log1.wait_event("open");
    let (_second, log2) = fix.client("/");
    log2.wait_event("close");
    // Nobody at that path.
    let (_lost, log3) = fix.client("/nowhere");
    log3.wait_event("close");
    // Not HTTP at all, and a plain HTTP request.
    let mut garbage = RawPeer::connect(fix.port);
    garbage.send_raw(b"HELLO\r\n\r\n");
    garbage.read_to_end();
    let mut plain = RawPeer::connect(fix.port);
    plain.send_raw(b"GET /page HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(String::from_utf8_lossy(&plain.read_to_end()).starts_with("HTTP/1.1 404"));

    eventually("all counted", || fix.reactor.stats().http_requests == 1);
    let r = fix.reactor.stats();
    let s = fix.server.stats();
    assert_eq!((r.refused.get(Refusal::VerifyClient), s.refused.get(Refusal::VerifyClient)), (1, 1));
    assert_eq!((r.refused.get(Refusal::MaxConnections), s.refused.get(Refusal::MaxConnections)), (1, 1));
    assert_eq!((r.refused.get(Refusal::NotFound), s.refused.get(Refusal::NotFound)), (1, 0));
    assert_eq!((r.refused.get(Refusal::BadRequest), s.refused.get(Refusal::BadRequest)), (1, 0));
    assert_eq!(r.refused.get(Refusal::Origin) + r.refused.get(Refusal::Timeout), 0);
    assert_eq!((r.accepted, s.accepted, s.connections_open), (1, 1, 1));
}

#[test]
fn origin_refusals_and_the_prometheus_text() {
    let cfg = ServerConfig { allowed_origins: vec!["https://ok.example".into()], ..Default::default() };
    let fix = Fixture::with(cfg, ServerRecorder::new());
    let mut peer = RawPeer::connect(fix.port);
    let head = peer.request("/", "Origin: https://evil.example\r\n");
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    eventually("the refusal counted", || fix.server.stats().refused.get(Refusal::Origin) == 1);
    let text = fix.reactor.shared().prometheus_text();
    assert!(text.contains("wsffi_handshakes_refused_total{reason=\"origin\"} 1\n"), "{text}");
    assert!(text.contains("wsffi_server_handshakes_refused_total{server=\"1\",path=\"/\",reason=\"origin\"} 1\n"));
    assert!(text.contains("wsffi_server_connections_open{server=\"1\",path=\"/\"} 0\n"));
}

#[test]
fn tls_handshake_failures_are_counted_on_both_sides() {
    let pki = certs::generate();
    let mut lcfg = ListenerConfig::default();
    let chain = tls::certs_from_pem(pki.server.cert_pem.as_bytes(), "server").unwrap();
    let key = tls::key_from_pem(pki.server.key_pem.as_bytes(), "server key").unwrap();
    lcfg.tls.cert = Some((chain, Arc::new(key)));
    let fix = Fixture::on(lcfg, ServerConfig::default(), ServerRecorder::new());
    // A client that does not trust the server's certificate: both ends fail in TLS.
    let mut cfg = ClientConfig::default();
    cfg.tls.ca = tls::certs_from_pem(pki.other_ca.cert_pem.as_bytes(), "other ca").unwrap();
    let (_client, log) = fix.client_at(&format!("wss://localhost:{}/", fix.port), cfg);
    assert!(log.wait_event("error").starts_with("error Tls"));
    log.wait_event("close");
    eventually("both failures", || {
        let r = fix.reactor.stats();
        r.tls_failures_client == 1 && r.tls_failures_server == 1
    });
    // Plain HTTP on the TLS port.
    let mut plain = RawPeer::connect(fix.port);
    plain.send_raw(RawPeer::upgrade_request("/", "").as_bytes());
    plain.read_to_end();
    eventually("the plain peer's failure", || fix.reactor.stats().tls_failures_server == 2);
    let r = fix.reactor.stats();
    assert_eq!((r.tls_failures_client, r.connections_opened, r.accepted), (1, 0, 0));
    assert_eq!(r.closes_received.iter().sum::<u64>(), 0, "no connection opened");
}

#[test]
fn streamed_messages_count_once_and_publishes_count_as_sent() {
    let mut rec = ServerRecorder::new();
    rec.echo = false;
    let mut cfg = ServerConfig::default();
    cfg.conn.stream_messages = true;
    let fix = Fixture::with(cfg, rec);
    let (client, log) = fix.client("/");
    log.wait_event("open");
    let server_side = fix.server_conn(0);
    // Three fragments of one message, then a whole one: two messages, however many parts.
    client.send(SendOp::Fragment(MessageKind::Binary, false), &[1; 100]).unwrap();
    client.send(SendOp::Fragment(MessageKind::Binary, false), &[2; 100]).unwrap();
    client.send(SendOp::Fragment(MessageKind::Binary, true), &[3; 100]).unwrap();
    client.send(SendOp::Message(MessageKind::Text), b"whole").unwrap();
    eventually("two messages in", || server_side.stats().traffic.messages_in == 2);
    assert_eq!(client.stats().traffic.messages_out, 2);
    // Two publishes to a topic the server side subscribed to.
    assert!(wsffi::reactor::pubsub::subscribe(&server_side, "news").unwrap());
    for text in ["first", "second"] {
        wsffi::reactor::pubsub::publish(&fix.server, "news", MessageKind::Text, text.as_bytes(), None).unwrap();
    }
    log.wait_for(|ev| count(ev, "text") == 2);
    eventually("two messages out", || server_side.stats().traffic.messages_out == 2);
    assert_eq!(fix.server.stats().traffic.messages_out, 2);
    eventually("two messages in at the client", || client.stats().traffic.messages_in == 2);
}
