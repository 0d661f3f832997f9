//! Automatic reconnect through the reactor's Rust API (no C layer): a server that goes away
//! and comes back on the same port, one that accepts and never answers, refusals that are
//! permanent, attempts running out, and stopping during the wait.

#[path = "support/log.rs"]
mod event_log;

#[path = "support/events.rs"]
mod events;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_log::Log;
use events::{count, Recorder, ServerRecorder};
use wsffi::core::session::MessageKind;
use wsffi::reactor::api;
use wsffi::reactor::config::{
    ClientConfig, DispatchSettings, ListenerConfig, ReactorConfig, ReconnectPolicy, ServerConfig,
};
use wsffi::reactor::conn::{ready_state, ConnHandle, SendOp};
use wsffi::reactor::error::Error;
use wsffi::reactor::events::ConnEvents;
use wsffi::reactor::server::{ListenerHandle, ServerHandle};
use wsffi::reactor::Reactor;

/// An echo server on its own reactor, at `address` ("127.0.0.1:0" or a fixed port).
struct EchoServer {
    // Dropping it stops the server: its clients get 1001 and the port closes.
    _reactor: Reactor,
    _listener: Arc<ListenerHandle>,
    _server: Arc<ServerHandle>,
    port: u16,
}

impl EchoServer {
    /// The socket listens only once the server is attached: a client that connects in
    /// between would be answered 404 (no server at the path), which is final.
    fn start(address: &str) -> EchoServer {
        let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
        let addr: std::net::SocketAddr = address.parse().unwrap();
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_reuse_address(true).unwrap();
        socket.bind(&addr.into()).unwrap();
        let keep = socket.try_clone().unwrap();
        let listener =
            api::adopt_listener(reactor.shared(), std::os::fd::OwnedFd::from(socket), ListenerConfig::default())
                .expect("adopt");
        let server = api::attach_server(
            reactor.shared(),
            Some(listener.clone()),
            "/".into(),
            ServerConfig::default(),
            Box::new(ServerRecorder::new()),
        )
        .expect("attach");
        keep.listen(128).unwrap();
        let port = listener.port;
        EchoServer { _reactor: reactor, _listener: listener, _server: server, port }
    }
}

fn policy(initial_ms: u64, factor: f64, max_ms: u64, attempts: u32) -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: Duration::from_millis(initial_ms),
        factor,
        max_delay: Duration::from_millis(max_ms),
        max_attempts: attempts,
    }
}

fn client(reactor: &Reactor, url: &str, cfg: ClientConfig) -> (Arc<ConnHandle>, &'static Log) {
    let log = Log::new();
    let conn =
        api::connect(reactor.shared(), url, cfg, |_| Recorder::new(log) as Box<dyn ConnEvents>).expect("connect");
    (conn, log)
}

fn reconnecting(p: ReconnectPolicy) -> ClientConfig {
    ClientConfig { reconnect: Some(p), ..ClientConfig::default() }
}

fn text(conn: &Arc<ConnHandle>, s: &str) -> Result<(), Error> {
    conn.send(SendOp::Message(MessageKind::Text), s.as_bytes())
}

/// The delay of every "reconnect" line, in order.
fn delays(events: &[String]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.starts_with("reconnect "))
        .map(|e| e.split(' ').nth(2).unwrap().parse().unwrap())
        .collect()
}

/// An unused port (bound once, then closed).
fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_server_that_goes_away_and_comes_back_is_reconnected_on_the_same_handle() {
    let server = EchoServer::start("127.0.0.1:0");
    let port = server.port;
    let reactor = Reactor::start(ReactorConfig::default()).expect("client reactor");
    let url = format!("ws://127.0.0.1:{port}/");
    let (conn, log) = client(&reactor, &url, reconnecting(policy(40, 2.0, 320, 0)));
    log.wait_event("open");
    text(&conn, "one").unwrap();
    log.wait_event("text one");

    // The server's reactor stops: its clients get 1001, then nothing listens on the port.
    drop(server);
    let ev = log.wait_for(|ev| count(ev, "reconnect ") >= 4);
    assert!(ev[2].starts_with("reconnect 1 "), "{ev:?}");
    assert!(ev[2].contains("the server closed the connection with 1001"), "{ev:?}");
    assert!(ev[3].starts_with("reconnect 2 ") && ev[3].contains("ConnectionRefused"), "{ev:?}");
    // Equal jitter: attempt n waits between half and all of 40 * 2^(n-1), capped at 320.
    for (i, d) in delays(&ev).into_iter().enumerate() {
        let base = (40u64 << i).min(320);
        assert!((base / 2..=base).contains(&d), "attempt {}: {d} ms, events {ev:?}", i + 1);
    }
    assert_eq!(conn.ready_state(), ready_state::CONNECTING);
    assert_eq!(text(&conn, "lost"), Err(Error::Reconnecting), "refused, never queued");
    assert_eq!(count(&ev, "open"), 1);
    assert_eq!(count(&ev, "close"), 0);
    assert_eq!(count(&ev, "error"), 0);

    // Back on the same port: the next attempt opens the same handle again.
    let again = EchoServer::start(&format!("127.0.0.1:{port}"));
    log.wait_for(|ev| count(ev, "open") == 2);
    assert_eq!(conn.ready_state(), ready_state::OPEN);
    text(&conn, "two").unwrap();
    log.wait_event("text two");
    assert_eq!(conn.url().to_str().unwrap(), url);
    // The counters saw two connections, one of them over, ended by the server's 1001.
    let r = reactor.stats();
    assert_eq!((r.connections_opened, r.connections_open), (2, 1), "{r:?}");
    let slot = wsffi::reactor::stats::CLOSE_CODES.iter().position(|&c| c == 1001).unwrap();
    assert_eq!(r.closes_received[slot], 1, "{r:?}");

    conn.close(Some(1000), b"done".to_vec()).unwrap();
    log.wait_event("dropped");
    let ev = log.snapshot();
    assert_eq!(ev.last().map(String::as_str), Some("dropped"), "{ev:?}");
    assert_eq!(count(&ev, "close"), 1, "{ev:?}");
    assert_eq!(count(&ev, "error"), 0, "{ev:?}");
    assert!(ev[ev.len() - 2].starts_with("close 1000 \"done\" clean Local"), "{ev:?}");
    drop(again);
    reactor.stop().unwrap();
}

#[test]
fn attempts_run_out_with_one_error_and_one_close() {
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let url = format!("ws://127.0.0.1:{}/", unused_port());
    let (conn, log) = client(&reactor, &url, reconnecting(policy(10, 1.5, 100, 3)));
    log.wait_event("dropped");
    let ev = log.snapshot();
    assert_eq!(count(&ev, "reconnect "), 3, "{ev:?}");
    for (i, line) in ev.iter().take(3).enumerate() {
        assert!(line.starts_with(&format!("reconnect {} ", i + 1)), "{ev:?}");
        assert!(line.contains("ConnectionRefused") && line.contains("close 1006"), "{ev:?}");
    }
    assert!(ev[3].starts_with("error ConnectionRefused gave up reconnecting after 3 attempts: connect to"), "{ev:?}");
    assert!(ev[4].starts_with("close 1006"), "{ev:?}");
    assert_eq!(ev.len(), 6, "{ev:?}");
    assert_eq!(conn.ready_state(), ready_state::CLOSED);
    assert_eq!(text(&conn, "x"), Err(Error::Closed));
    reactor.stop().unwrap();
}

#[test]
fn a_server_that_stops_answering_times_out_each_attempt() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accepts (the kernel completes the TCP handshake) and never answers the upgrade.
    let keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().take(3) {
            held.push(s.unwrap());
        }
        std::thread::sleep(Duration::from_millis(300));
    });
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let cfg = ClientConfig {
        handshake_timeout: Duration::from_millis(150),
        connect_timeout: Duration::from_millis(150),
        ..reconnecting(policy(10, 2.0, 40, 2))
    };
    let started = Instant::now();
    let (_conn, log) = client(&reactor, &format!("ws://127.0.0.1:{port}/"), cfg);
    log.wait_event("dropped");
    let ev = log.snapshot();
    assert!(started.elapsed() >= Duration::from_millis(450), "three handshakes of 150 ms each");
    assert_eq!(count(&ev, "reconnect "), 2, "{ev:?}");
    assert!(ev
        .iter()
        .filter(|e| e.starts_with("reconnect "))
        .all(|e| e.contains("Timeout opening handshake timed out")));
    assert!(
        ev[2].starts_with("error Timeout gave up reconnecting after 2 attempts: opening handshake timed out"),
        "{ev:?}"
    );
    reactor.stop().unwrap();
    keep.join().unwrap();
}

#[test]
fn a_refused_upgrade_is_permanent_but_503_is_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answers = ["503 Service Unavailable", "404 Not Found"];
    let peer = std::thread::spawn(move || {
        for status in answers {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
        }
    });
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let (_conn, log) = client(&reactor, &format!("ws://127.0.0.1:{port}/"), reconnecting(policy(10, 2.0, 50, 0)));
    log.wait_event("dropped");
    let ev = log.snapshot();
    assert_eq!(ev[0], "response 503 ");
    assert!(ev[1].starts_with("reconnect 1 ") && ev[1].contains("HandshakeRejected"), "{ev:?}");
    assert_eq!(ev[2], "response 404 ");
    assert!(ev[3].starts_with("error HandshakeRejected server answered the upgrade with 404"), "{ev:?}");
    assert_eq!(count(&ev, "reconnect "), 1, "{ev:?}");
    peer.join().unwrap();
    reactor.stop().unwrap();
}

#[test]
fn close_or_stop_during_the_wait_ends_the_connection() {
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let url = format!("ws://127.0.0.1:{}/", unused_port());
    let (conn, log) = client(&reactor, &url, reconnecting(policy(10_000, 2.0, 10_000, 0)));
    log.wait_event("reconnect 1 ");
    assert!(conn.is_reconnecting());
    conn.close(Some(1000), Vec::new()).unwrap();
    log.wait_event("dropped");
    let ev = log.snapshot();
    assert_eq!(ev[1], "error Closed closed while waiting to reconnect", "{ev:?}");
    assert!(ev[2].starts_with("close 1006"), "{ev:?}");

    let (conn, log) = client(&reactor, &url, reconnecting(policy(10_000, 2.0, 10_000, 0)));
    log.wait_event("reconnect 1 ");
    conn.stop_reconnect().unwrap();
    log.wait_event("dropped");
    let ev = log.snapshot();
    assert!(ev[1].starts_with("error ConnectionRefused reconnecting stopped: connect to"), "{ev:?}");
    assert_eq!(conn.stop_reconnect(), Err(Error::Closed));

    // Reactor shutdown during the wait: an end like any other.
    let (_conn, log) = client(&reactor, &url, reconnecting(policy(10_000, 2.0, 10_000, 0)));
    log.wait_event("reconnect 1 ");
    reactor.stop().unwrap();
    let ev = log.snapshot();
    assert!(ev[1].starts_with("error ShutDown"), "{ev:?}");
    assert_eq!(ev.last().map(String::as_str), Some("dropped"));
}

#[test]
fn a_close_by_the_application_while_open_is_not_reconnected() {
    let server = EchoServer::start("127.0.0.1:0");
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let url = format!("ws://127.0.0.1:{}/", server.port);
    let (conn, log) = client(&reactor, &url, reconnecting(policy(10, 2.0, 50, 0)));
    log.wait_event("open");
    conn.close(Some(1000), Vec::new()).unwrap();
    log.wait_event("dropped");
    std::thread::sleep(Duration::from_millis(100));
    let ev = log.snapshot();
    assert_eq!(count(&ev, "reconnect "), 0, "{ev:?}");
    assert_eq!(count(&ev, "open"), 1, "{ev:?}");
    reactor.stop().unwrap();
}

#[test]
fn a_server_close_frame_is_retried_unless_it_says_the_request_is_wrong() {
    let rec = ServerRecorder::new();
    let conns = rec.conns.clone();
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let listener = api::listen(reactor.shared(), "127.0.0.1:0", ListenerConfig::default()).expect("listen");
    let _server = api::attach_server(
        reactor.shared(),
        Some(listener.clone()),
        "/".into(),
        ServerConfig::default(),
        Box::new(rec),
    )
    .expect("attach");
    let url = format!("ws://127.0.0.1:{}/", listener.port);
    let (conn, log) = client(&reactor, &url, reconnecting(policy(10, 2.0, 50, 0)));
    log.wait_event("open");
    let server_side = |i: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(c) = conns.lock().unwrap().get(i).cloned() {
                return c;
            }
            assert!(Instant::now() < deadline, "no server connection {i}");
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    // A restart notice (1012): reconnected, the attempt count starts at 1.
    server_side(0).close(Some(1012), b"restart".to_vec()).unwrap();
    log.wait_for(|ev| count(ev, "open") == 2);
    let ev = log.snapshot();
    let line = ev.iter().find(|e| e.starts_with("reconnect ")).unwrap();
    assert!(line.starts_with("reconnect 1 "), "{ev:?}");
    assert!(line.contains("Closed the server closed the connection with 1012 \"restart\""), "{ev:?}");
    assert!(line.contains("close 1012 \"restart\" clean Peer"), "{ev:?}");
    // A normal close (1000) too.
    server_side(1).close(Some(1000), Vec::new()).unwrap();
    log.wait_for(|ev| count(ev, "open") == 3);
    assert!(log.snapshot().iter().filter(|e| e.starts_with("reconnect 1 ")).count() == 2);
    text(&conn, "still here").unwrap();
    log.wait_event("text still here");
    // A policy violation (1008) is final: no attempt, one close with the server's code.
    server_side(2).close(Some(1008), b"banned".to_vec()).unwrap();
    log.wait_event("dropped");
    let ev = log.snapshot();
    assert_eq!(count(&ev, "reconnect "), 2, "{ev:?}");
    assert_eq!(count(&ev, "error"), 0, "{ev:?}");
    assert!(ev[ev.len() - 2].starts_with("close 1008 \"banned\" clean Peer"), "{ev:?}");
    reactor.stop().unwrap();
}

#[test]
fn reconnect_in_dispatch_mode_reports_on_the_dispatching_thread() {
    let config = ReactorConfig { dispatch: Some(DispatchSettings::default()), ..ReactorConfig::default() };
    let reactor = Reactor::start(config).expect("reactor");
    let queue = reactor.shared().dispatch_queue().expect("dispatch mode").clone();
    let url = format!("ws://127.0.0.1:{}/", unused_port());
    let (_conn, log) = client(&reactor, &url, reconnecting(policy(5, 2.0, 20, 2)));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.snapshot().iter().any(|e| e == "dropped") {
        assert!(Instant::now() < deadline, "events so far: {:?}", log.snapshot());
        queue.run(usize::MAX).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let ev = log.snapshot();
    assert!(ev[0].starts_with("reconnect 1 ") && ev[1].starts_with("reconnect 2 "), "{ev:?}");
    assert!(ev[2].starts_with("error ConnectionRefused gave up reconnecting after 2 attempts"), "{ev:?}");
    assert!(ev[3].starts_with("close 1006"), "{ev:?}");
    assert_eq!(ev.len(), 5, "{ev:?}");
    reactor.stop().unwrap();
}
