//! Event objects for the tests that drive the reactor's Rust API: each event becomes one line
//! in a [`Log`] (support/log.rs), which the test waits on.
// Each test binary compiles this module and uses its own part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use wsffi::core::session::MessageKind;
use wsffi::reactor::conn::{CloseFrame, CloseReport, ConnHandle, SendOp};
use wsffi::reactor::error::Error;
use wsffi::reactor::events::{ConnEvents, ReconnectEvent, ServerEvents, Verdict};
use wsffi::reactor::server::{HandshakeHandle, RequestView, ResponseView, ServerHandle};

use super::event_log::Log;

/// FNV-1a, to name large payloads in log lines.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

/// "text hello" / "binary len=N sum=X" (long text as "text len=N sum=X").
pub fn describe(kind: MessageKind, data: &[u8]) -> String {
    match kind {
        MessageKind::Text if data.len() <= 64 => format!("text {}", String::from_utf8_lossy(data)),
        MessageKind::Text => format!("text len={} sum={:x}", data.len(), checksum(data)),
        MessageKind::Binary => format!("binary len={} sum={:x}", data.len(), checksum(data)),
    }
}

fn frame(f: &Option<CloseFrame>) -> String {
    f.as_ref().map_or_else(|| "-".to_string(), |f| format!("{}:{:?}", f.code, f.reason))
}

/// `close 4001 "bye" clean Local peer=4001:"" local=4001:"bye"`; a side without a close frame
/// shows as `-`.
pub fn close_line(r: &CloseReport) -> String {
    format!(
        "close {} {:?} {} {:?} peer={} local={}",
        r.code,
        r.reason,
        if r.clean { "clean" } else { "unclean" },
        r.origin,
        frame(&r.peer),
        frame(&r.local)
    )
}

/// A connection's events as log lines; optionally echoes every message back.
pub struct Recorder {
    pub log: &'static Log,
    pub echo: bool,
}

impl Recorder {
    pub fn new(log: &'static Log) -> Box<Recorder> {
        Box::new(Recorder { log, echo: false })
    }

    pub fn echo(log: &'static Log) -> Box<Recorder> {
        Box::new(Recorder { log, echo: true })
    }
}

impl ConnEvents for Recorder {
    fn on_open(&self, _conn: &Arc<ConnHandle>) {
        self.log.push("open".into());
    }

    fn on_message(&self, conn: &Arc<ConnHandle>, kind: MessageKind, data: &[u8]) {
        self.log.push(describe(kind, data));
        if self.echo {
            if let Err(e) = conn.send(SendOp::Message(kind), data) {
                self.log.push(format!("echo failed {e:?}"));
            }
        }
    }

    fn on_ping(&self, _conn: &Arc<ConnHandle>, data: &[u8]) {
        self.log.push(format!("ping {}", String::from_utf8_lossy(data)));
    }

    fn on_pong(&self, _conn: &Arc<ConnHandle>, data: &[u8]) {
        self.log.push(format!("pong {}", String::from_utf8_lossy(data)));
    }

    fn on_drain(&self, _conn: &Arc<ConnHandle>) {
        self.log.push("drain".into());
    }

    fn on_unexpected_response(&self, _conn: &Arc<ConnHandle>, response: &ResponseView) {
        self.log.push(format!("response {} {}", response.status, String::from_utf8_lossy(&response.body).trim_end()));
    }

    fn on_reconnect(&self, _conn: &Arc<ConnHandle>, event: &ReconnectEvent<'_>) {
        self.log.push(format!(
            "reconnect {} {} {:?} {} | {}",
            event.attempt,
            event.delay.as_millis(),
            event.error,
            event.message,
            close_line(event.close)
        ));
    }

    fn on_error(&self, _conn: &Arc<ConnHandle>, error: Error, message: &str) {
        self.log.push(format!("error {error:?} {message}"));
    }

    fn on_close(&self, _conn: &Arc<ConnHandle>, close: &CloseReport) {
        self.log.push(close_line(close));
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.log.push("dropped".into());
    }
}

/// `verify_client` as a closure.
pub type VerifyFn = Box<dyn Fn(&Arc<HandshakeHandle>) -> Option<Verdict> + Send + Sync>;
/// `handle_protocols` as a closure.
pub type ProtocolsFn = Box<dyn Fn(&[String]) -> Option<Option<usize>> + Send + Sync>;

/// A server's events as log lines; each connection gets an echoing [`Recorder`] on `conn_log`
/// and is kept in `conns`, in the order they opened.
pub struct ServerRecorder {
    pub log: &'static Log,
    pub conn_log: &'static Log,
    pub conns: Arc<Mutex<Vec<Arc<ConnHandle>>>>,
    pub verify: Option<VerifyFn>,
    pub protocols: Option<ProtocolsFn>,
    pub echo: bool,
}

impl ServerRecorder {
    pub fn new() -> ServerRecorder {
        ServerRecorder {
            log: Log::new(),
            conn_log: Log::new(),
            conns: Arc::default(),
            verify: None,
            protocols: None,
            echo: true,
        }
    }
}

impl ServerEvents for ServerRecorder {
    fn verify_client(&self, handshake: &Arc<HandshakeHandle>) -> Option<Verdict> {
        self.verify.as_ref().and_then(|f| f(handshake))
    }

    fn handle_protocols(&self, _request: &RequestView, offered: &[String]) -> Option<Option<usize>> {
        self.protocols.as_ref().and_then(|f| f(offered))
    }

    fn on_connection(&self, _server: &Arc<ServerHandle>, conn: &Arc<ConnHandle>, request: &Arc<RequestView>) {
        let protocol = conn.info().and_then(|i| i.protocol.as_ref()).map(|p| p.to_string_lossy().into_owned());
        self.log.push(format!(
            "connection {} protocol={}",
            request.url.to_string_lossy(),
            protocol.as_deref().unwrap_or("-")
        ));
        self.conns.lock().unwrap().push(conn.clone());
        conn.set_events(Box::new(Recorder { log: self.conn_log, echo: self.echo })).expect("set_events");
    }

    fn on_client_error(&self, _server: &Arc<ServerHandle>, error: Error, message: &str) {
        self.log.push(format!("client_error {error:?} {message}"));
    }

    fn on_error(&self, _server: &Arc<ServerHandle>, error: Error, message: &str) {
        self.log.push(format!("server_error {error:?} {message}"));
    }

    fn on_close(&self, _server: &Arc<ServerHandle>) {
        self.log.push("server_close".into());
    }
}

/// How many lines of `events` start with `prefix`.
pub fn count(events: &[String], prefix: &str) -> usize {
    events.iter().filter(|e| e.starts_with(prefix)).count()
}
