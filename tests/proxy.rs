//! Clients through real proxies started here: tinyproxy (HTTP CONNECT with Basic auth) and
//! microsocks (SOCKS5 with user/password), both on loopback with generated configuration.
//! `make test-proxy` installs them when missing; without them these tests fail.

#[path = "support/log.rs"]
mod event_log;

#[path = "support/events.rs"]
mod events;

#[path = "support/certs.rs"]
mod certs;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_log::Log;
use events::{Recorder, ServerRecorder};
use wsffi::core::session::MessageKind;
use wsffi::reactor::api;
use wsffi::reactor::config::{ClientConfig, ListenerConfig, ReactorConfig, ServerConfig};
use wsffi::reactor::conn::{ConnHandle, SendOp};
use wsffi::reactor::events::ConnEvents;
use wsffi::reactor::{tls, Reactor};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A proxy process, killed on drop.
struct Proxy {
    child: Child,
    port: u16,
    _dir: Option<std::path::PathBuf>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self._dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn wait_listening(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "proxy did not start on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// tinyproxy with Basic auth `user:secret`, allowing CONNECT only to `allowed_port` (0: any).
fn tinyproxy(allowed_port: u16) -> Proxy {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("wsffi-tinyproxy-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nAllow 127.0.0.1\n\
             BasicAuth user secret\n{}LogLevel Critical\n",
            if allowed_port == 0 { String::new() } else { format!("ConnectPort {allowed_port}\n") }
        ),
    )
    .unwrap();
    let child = Command::new("tinyproxy")
        .args(["-d", "-c"])
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tinyproxy (make test-proxy installs it)");
    wait_listening(port);
    Proxy { child, port, _dir: Some(dir) }
}

/// microsocks with user `user`, password `secret`.
fn microsocks() -> Proxy {
    let port = free_port();
    let child = Command::new("microsocks")
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-u", "user", "-P", "secret"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("microsocks (make test-proxy installs it)");
    wait_listening(port);
    Proxy { child, port, _dir: None }
}

struct Server {
    reactor: Reactor,
    port: u16,
    _keep: Arc<wsffi::reactor::server::ListenerHandle>,
}

fn server() -> Server {
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let listener = api::listen(reactor.shared(), "127.0.0.1:0", ListenerConfig::default()).expect("listen");
    api::attach_server(
        reactor.shared(),
        Some(listener.clone()),
        "/".into(),
        ServerConfig::default(),
        Box::new(ServerRecorder::new()),
    )
    .expect("attach");
    Server { port: listener.port, reactor, _keep: listener }
}

fn connect(reactor: &Reactor, url: &str, proxy: &str) -> (Arc<ConnHandle>, &'static Log) {
    let log = Log::new();
    let cfg = ClientConfig { proxy: Some(proxy.to_string()), ..ClientConfig::default() };
    let conn =
        api::connect(reactor.shared(), url, cfg, |_| Recorder::new(log) as Box<dyn ConnEvents>).expect("connect");
    (conn, log)
}

fn echo_through(proxy: &str) {
    let s = server();
    let (conn, log) = connect(&s.reactor, &format!("ws://127.0.0.1:{}/", s.port), proxy);
    log.wait_event("open");
    conn.send(SendOp::Message(MessageKind::Text), b"through the tunnel").unwrap();
    log.wait_event("text through the tunnel");
}

fn failure_through(proxy: &str, target_port: Option<u16>) -> String {
    let s = server();
    let port = target_port.unwrap_or(s.port);
    let (_conn, log) = connect(&s.reactor, &format!("ws://127.0.0.1:{port}/"), proxy);
    let ev = log.wait_for(|ev| ev.iter().any(|e| e.starts_with("close")));
    assert!(!ev.iter().any(|e| e == "open"), "{ev:?}");
    ev.iter().find(|e| e.starts_with("error")).cloned().unwrap_or_else(|| panic!("no error: {ev:?}"))
}

#[test]
fn http_connect_with_basic_auth_echoes() {
    let p = tinyproxy(0);
    echo_through(&format!("http://user:secret@127.0.0.1:{}", p.port));
}

#[test]
fn http_connect_wrong_or_missing_credentials_is_407() {
    let p = tinyproxy(0);
    let e = failure_through(&format!("http://user:wrong@127.0.0.1:{}", p.port), None);
    // tinyproxy answers a CONNECT without valid credentials with 401, not 407.
    assert!(e.contains("HandshakeRejected") && e.contains("authentication required"), "{e}");
    let e = failure_through(&format!("http://127.0.0.1:{}", p.port), None);
    assert!(e.contains("authentication required"), "{e}");
}

#[test]
fn http_connect_to_a_forbidden_port_is_403() {
    let p = tinyproxy(1);
    let e = failure_through(&format!("http://user:secret@127.0.0.1:{}", p.port), None);
    assert!(e.contains("HandshakeRejected") && e.contains("403"), "{e}");
}

#[test]
fn socks5_with_password_echoes() {
    let p = microsocks();
    echo_through(&format!("socks5h://user:secret@127.0.0.1:{}", p.port));
}

#[test]
fn socks5_wrong_password_fails() {
    let p = microsocks();
    let e = failure_through(&format!("socks5h://user:nope@127.0.0.1:{}", p.port), None);
    assert!(e.contains("authentication failed"), "{e}");
    let e = failure_through(&format!("socks5h://127.0.0.1:{}", p.port), None);
    assert!(e.contains("requires authentication") || e.contains("none of"), "{e}");
}

#[test]
fn socks5_unreachable_target_is_reported() {
    let p = microsocks();
    let e = failure_through(&format!("socks5h://user:secret@127.0.0.1:{}", p.port), Some(free_port()));
    assert!(e.contains("proxy: SOCKS5 connect failed"), "{e}");
}

#[test]
fn unreachable_proxy_is_reported() {
    let e = failure_through(&format!("http://127.0.0.1:{}", free_port()), None);
    assert!(e.contains("ConnectionRefused"), "{e}");
}

#[test]
fn environment_is_used_only_when_asked_and_no_proxy_bypasses() {
    // The only test that reads the environment; the others set the proxy explicitly.
    let dead = format!("http://127.0.0.1:{}", free_port());
    // SAFETY: no other thread of this process reads these variables.
    unsafe {
        std::env::set_var("http_proxy", &dead);
        std::env::remove_var("no_proxy");
        std::env::remove_var("NO_PROXY");
    }
    let s = server();
    let url = format!("ws://127.0.0.1:{}/", s.port);
    let run = |from_env: bool| {
        let log = Log::new();
        let cfg = ClientConfig { proxy_from_env: from_env, ..ClientConfig::default() };
        let _c = api::connect(s.reactor.shared(), &url, cfg, |_| Recorder::new(log) as Box<dyn ConnEvents>).unwrap();
        log.wait_for(|ev| ev.iter().any(|e| e == "open" || e.starts_with("close")))
    };
    assert!(run(false).iter().any(|e| e == "open"), "default ignores http_proxy");
    let ev = run(true);
    assert!(ev.iter().any(|e| e.starts_with("error ConnectionRefused")), "{ev:?}");
    unsafe { std::env::set_var("no_proxy", "localhost, 127.0.0.0/8") };
    assert!(run(true).iter().any(|e| e == "open"), "no_proxy bypasses");
}

/// A wss server with a test certificate for `localhost`, reached through `proxy`: TLS runs
/// inside the tunnel, verified against the target's name (not the proxy's).
fn tls_echo_through(proxy: &str) {
    let pki = certs::generate();
    let reactor = Reactor::start(ReactorConfig::default()).expect("reactor");
    let mut lcfg = ListenerConfig::default();
    let chain = tls::certs_from_pem(pki.server.cert_pem.as_bytes(), "server").unwrap();
    let key = tls::key_from_pem(pki.server.key_pem.as_bytes(), "server key").unwrap();
    lcfg.tls.cert = Some((chain, Arc::new(key)));
    let listener = api::listen(reactor.shared(), "127.0.0.1:0", lcfg).expect("listen");
    let _server = api::attach_server(
        reactor.shared(),
        Some(listener.clone()),
        "/".into(),
        ServerConfig::default(),
        Box::new(ServerRecorder::new()),
    )
    .expect("attach");
    let log = Log::new();
    let mut cfg = ClientConfig { proxy: Some(proxy.to_string()), ..ClientConfig::default() };
    cfg.tls.ca = tls::certs_from_pem(pki.ca.cert_pem.as_bytes(), "ca").unwrap();
    let url = format!("wss://localhost:{}/", listener.port);
    let conn =
        api::connect(reactor.shared(), &url, cfg, |_| Recorder::new(log) as Box<dyn ConnEvents>).expect("connect");
    log.wait_event("open");
    conn.send(SendOp::Message(MessageKind::Text), b"tls in the tunnel").unwrap();
    log.wait_event("text tls in the tunnel");
}

#[test]
fn wss_through_http_connect_echoes() {
    let p = tinyproxy(0);
    tls_echo_through(&format!("http://user:secret@127.0.0.1:{}", p.port));
}

#[test]
fn wss_through_socks5_echoes() {
    let p = microsocks();
    tls_echo_through(&format!("socks5h://user:secret@127.0.0.1:{}", p.port));
}
