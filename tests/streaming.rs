//! Streaming receive (`stream_messages`): messages far larger than `max_payload` pass
//! through a reactor server in parts while the process's memory stays flat.
//!
//! A raw TCP client (a thread of this process) writes one huge fragmented binary message,
//! generated on the fly from a 1 MiB buffer; the server's part callback checks every byte
//! against the pattern, counts the bytes and watches the process's resident memory.
//! The message is 4 GiB (about 7 s plain and 5 s compressed on the 2-core test machine);
//! `WSFFI_STREAM_BYTES` sets another size.

#[path = "support/log.rs"]
mod event_log;

#[path = "support/events.rs"]
mod events;

#[path = "support/raw_ws.rs"]
mod raw_ws;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use events::close_line;
use raw_ws::{RawPeer, CLOSE};
use wsffi::core::extensions::deflate::{Agreed, DeflateConfig};
use wsffi::core::session::{MessageKind, Role, Writer};
use wsffi::reactor::api;
use wsffi::reactor::config::{DispatchSettings, ListenerConfig, ReactorConfig, ServerConfig};
use wsffi::reactor::conn::{CloseReport, ConnHandle};
use wsffi::reactor::error::Error;
use wsffi::reactor::events::{ConnEvents, ServerEvents};
use wsffi::reactor::server::{RequestView, ServerHandle};
use wsffi::reactor::Reactor;

/// Payload bytes per fragment the client sends.
const FRAG: usize = 1 << 20;
/// The most resident memory may grow while a message streams through.
const RSS_GROWTH_LIMIT: u64 = 64 << 20;
const WAIT: Duration = Duration::from_secs(600);

/// The RSS tests measure the whole process: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn message_bytes() -> u64 {
    std::env::var("WSFFI_STREAM_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(4 << 30)
}

/// A `kB` line of /proc/self/status, in bytes.
fn proc_status(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("{field} missing"));
    line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).expect("kB value") * 1024
}

/// The message's content: fragment `k` is `block` with its first 8 bytes replaced by `k`.
#[derive(Clone)]
struct Pattern {
    block: Arc<Vec<u8>>,
}

impl Pattern {
    /// Noise (compresses to nothing) or a 1000-byte noise run repeated (compresses ~100:1).
    fn new(compressible: bool) -> Pattern {
        let mut x = 0x9E37_79B9u32;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect()
        };
        let block = if compressible { noise(1000).into_iter().cycle().take(FRAG).collect() } else { noise(FRAG) };
        Pattern { block: Arc::new(block) }
    }

    fn fragment(&self, k: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.block);
        out[..8].copy_from_slice(&k.to_le_bytes());
    }

    /// Does `part`, found at message offset `pos`, hold what the message has there?
    fn matches(&self, mut pos: u64, mut part: &[u8]) -> bool {
        while !part.is_empty() {
            let (k, o) = (pos / FRAG as u64, (pos % FRAG as u64) as usize);
            let n = part.len().min(FRAG - o);
            let index = k.to_le_bytes();
            let head = n.min(8usize.saturating_sub(o));
            if part[..head] != index[o.min(8)..o.min(8) + head] || part[head..n] != self.block[o + head..o + n] {
                return false;
            }
            pos += n as u64;
            part = &part[n..];
        }
        true
    }
}

/// What the server's part callback saw.
#[derive(Default)]
struct Seen {
    bytes: AtomicU64,
    parts: AtomicU64,
    max_part: AtomicU64,
    peak_rss: AtomicU64,
    errors: Mutex<Vec<String>>,
    /// The connection, once a part arrived.
    conn: Mutex<Option<Arc<ConnHandle>>>,
}

/// The server's connection events: checks parts against the pattern.
struct Sink {
    pattern: Pattern,
    seen: Arc<Seen>,
    open_message: AtomicBool,
    /// Close the connection after this many parts.
    close_after: Option<u64>,
    /// Pause reading after every part (a thread resumes it), and count the pauses.
    pause_every_part: bool,
    done: mpsc::Sender<String>,
}

impl Sink {
    fn fail(&self, what: String) {
        self.seen.errors.lock().unwrap().push(what);
    }
}

impl ConnEvents for Sink {
    fn on_message(&self, _conn: &Arc<ConnHandle>, _kind: MessageKind, data: &[u8]) {
        self.fail(format!("on_message with {} bytes in streaming mode", data.len()));
    }

    fn on_message_part(&self, conn: &Arc<ConnHandle>, kind: MessageKind, data: &[u8], first: bool, last: bool) {
        let s = &self.seen;
        let pos = s.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        let parts = s.parts.fetch_add(1, Ordering::Relaxed) + 1;
        s.max_part.fetch_max(data.len() as u64, Ordering::Relaxed);
        if kind != MessageKind::Binary || first != (pos == 0) || first == self.open_message.load(Ordering::Relaxed) {
            self.fail(format!("part {parts}: kind {kind:?} first {first} at {pos}"));
        }
        self.open_message.store(!last, Ordering::Relaxed);
        if !self.pattern.matches(pos, data) {
            self.fail(format!("part {parts}: wrong bytes at {pos}"));
        }
        if parts % 256 == 0 || last {
            s.peak_rss.fetch_max(proc_status("VmRSS:"), Ordering::Relaxed);
        }
        if last {
            let _ = self.done.send(format!("last {}", pos + data.len() as u64));
        }
        if self.pause_every_part {
            s.conn.lock().unwrap().get_or_insert_with(|| conn.clone());
            conn.set_paused(true).expect("pause from a part callback");
        }
        if self.close_after == Some(parts) {
            conn.close(Some(1000), b"enough".to_vec()).expect("close from a part callback");
        }
    }

    fn on_error(&self, _conn: &Arc<ConnHandle>, error: Error, message: &str) {
        let _ = self.done.send(format!("error {error:?} {message}"));
    }

    fn on_close(&self, _conn: &Arc<ConnHandle>, close: &CloseReport) {
        let _ = self.done.send(close_line(close));
    }
}

/// Installs a [`Sink`] on every connection.
struct SinkServer {
    make: Box<dyn Fn() -> Sink + Send + Sync>,
}

impl ServerEvents for SinkServer {
    fn hooks_handshake(&self) -> bool {
        false
    }

    fn on_connection(&self, _server: &Arc<ServerHandle>, conn: &Arc<ConnHandle>, _request: &Arc<RequestView>) {
        conn.set_events(Box::new((self.make)())).expect("set_events");
    }
}

struct Setup {
    reactor: Reactor,
    port: u16,
    seen: Arc<Seen>,
    done: mpsc::Receiver<String>,
    dispatching: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

impl Setup {
    fn new(pattern: &Pattern, deflate: bool, close_after: Option<u64>, dispatch: bool) -> Setup {
        Setup::with(pattern, deflate, close_after, dispatch, false)
    }

    fn with(pattern: &Pattern, deflate: bool, close_after: Option<u64>, dispatch: bool, pause: bool) -> Setup {
        let config =
            ReactorConfig { dispatch: dispatch.then(|| DispatchSettings { wake: None }), ..ReactorConfig::default() };
        let reactor = Reactor::start(config).expect("reactor");
        let mut scfg = ServerConfig::default();
        scfg.conn.stream_messages = true;
        // Far below the message size: it does not apply to streamed messages.
        scfg.conn.limits.max_payload = 1 << 20;
        scfg.conn.limits.max_fragments = 16;
        if deflate {
            scfg.deflate = Some(DeflateConfig::default());
        }
        let seen = Arc::new(Seen::default());
        let (tx, done) = mpsc::channel();
        let (p, s) = (pattern.clone(), seen.clone());
        let tx = Mutex::new(tx);
        let make = Box::new(move || Sink {
            pattern: p.clone(),
            seen: s.clone(),
            open_message: AtomicBool::new(false),
            close_after,
            pause_every_part: pause,
            done: tx.lock().unwrap().clone(),
        });
        let listener = api::listen(reactor.shared(), "127.0.0.1:0", ListenerConfig::default()).expect("listen");
        api::attach_server(reactor.shared(), Some(listener.clone()), "/".into(), scfg, Box::new(SinkServer { make }))
            .expect("attach");
        let dispatching = dispatch.then(|| {
            let queue = reactor.shared().dispatch_queue().expect("dispatch mode").clone();
            let stop = Arc::new(AtomicBool::new(false));
            let stop2 = stop.clone();
            let thread = std::thread::spawn(move || {
                while !stop2.load(Ordering::Acquire) {
                    if matches!(queue.run(usize::MAX), Ok(0)) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
            (stop, thread)
        });
        Setup { reactor, port: listener.port, seen, done, dispatching }
    }

    fn wait(&self, prefix: &str) -> String {
        loop {
            let line = self.done.recv_timeout(WAIT).unwrap_or_else(|_| panic!("no {prefix:?} event"));
            if line.starts_with(prefix) {
                return line;
            }
            assert!(!line.starts_with("error"), "{line}");
        }
    }

    fn errors(&self) -> Vec<String> {
        self.seen.errors.lock().unwrap().clone()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.dispatching.take() {
            stop.store(true, Ordering::Release);
            let _ = thread.join();
        }
        let _ = &self.reactor;
    }
}

/// Sends `total` bytes of `pattern` as one binary message in fragments of [`FRAG`] bytes,
/// compressed when `deflate` (the server must have agreed), then the client's close.
/// Returns the stream for reading the server's answer.
fn send_message(port: u16, pattern: &Pattern, total: u64, deflate: bool) -> RawPeer {
    let mut peer = RawPeer::connect(port);
    let extra = if deflate { "Sec-WebSocket-Extensions: permessage-deflate\r\n" } else { "" };
    let head = peer.request("/", extra);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(deflate, head.to_ascii_lowercase().contains("permessage-deflate"), "{head}");
    let mut writer = Writer::new(Role::Client);
    if deflate {
        writer.enable_deflate(Agreed::default(), DeflateConfig { threshold: 0, ..DeflateConfig::default() });
    }
    let mut stream: TcpStream = peer.stream.try_clone().expect("clone");
    let (mut payload, mut frames) = (Vec::with_capacity(FRAG), Vec::with_capacity(FRAG + 64));
    let count = total.div_ceil(FRAG as u64);
    for k in 0..count {
        pattern.fragment(k, &mut payload);
        payload.truncate((total - k * FRAG as u64).min(FRAG as u64) as usize);
        frames.clear();
        writer.fragment(&mut frames, MessageKind::Binary, &payload, k + 1 == count).expect("encode");
        stream.write_all(&frames).expect("write");
    }
    peer
}

fn report(what: &str, total: u64, started: Instant, baseline: u64, seen: &Seen) -> u64 {
    let secs = started.elapsed().as_secs_f64();
    let peak = seen.peak_rss.load(Ordering::Relaxed).max(proc_status("VmRSS:"));
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{what}: {} MiB in {secs:.1} s ({:.0} MiB/s), {} parts (largest {} bytes), RSS {} MiB -> peak {} MiB (VmHWM {} MiB)",
        total >> 20,
        (total >> 20) as f64 / secs,
        seen.parts.load(Ordering::Relaxed),
        seen.max_part.load(Ordering::Relaxed),
        baseline >> 20,
        peak >> 20,
        proc_status("VmHWM:") >> 20,
    );
    growth
}

fn stream_through(deflate: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let total = message_bytes();
    let pattern = Pattern::new(deflate);
    let setup = Setup::new(&pattern, deflate, None, false);
    let baseline = proc_status("VmRSS:");
    let started = Instant::now();
    let mut peer = send_message(setup.port, &pattern, total, deflate);
    assert_eq!(setup.wait("last"), format!("last {total}"));
    let growth = report(if deflate { "compressed" } else { "binary" }, total, started, baseline, &setup.seen);
    assert_eq!(setup.errors(), Vec::<String>::new());
    assert_eq!(setup.seen.bytes.load(Ordering::Relaxed), total);
    if deflate {
        assert!(setup.seen.max_part.load(Ordering::Relaxed) <= 32 * 1024, "inflated parts are bounded");
    } else {
        // Parts come from single reads of the 64 KiB shared buffer, not whole frames.
        assert!(setup.seen.max_part.load(Ordering::Relaxed) <= 64 * 1024);
    }
    assert!(growth < RSS_GROWTH_LIMIT, "resident memory grew by {} MiB", growth >> 20);
    peer.send_close(1000, "done");
    assert_eq!(peer.close_frame().close_code(), 1000);
    peer.expect_gone();
    let line = setup.wait("close");
    assert!(line.starts_with("close 1000 \"done\" clean Peer"), "{line}");
}

/// Dispatch mode: every part is copied into a job and delivered on the dispatching thread,
/// in order (the pattern check sees each byte at its offset). Memory is not asserted: the
/// queue holds what the dispatcher has not run yet.
#[test]
fn dispatch_mode_delivers_every_part_in_order() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for deflate in [false, true] {
        let total: u64 = 256 << 20;
        let pattern = Pattern::new(deflate);
        let setup = Setup::new(&pattern, deflate, None, true);
        let mut peer = send_message(setup.port, &pattern, total, deflate);
        assert_eq!(setup.wait("last"), format!("last {total}"));
        assert_eq!(setup.errors(), Vec::<String>::new(), "deflate {deflate}");
        assert!(setup.seen.parts.load(Ordering::Relaxed) >= total / (64 << 10));
        peer.send_close(1000, "done");
        assert_eq!(peer.close_frame().close_code(), 1000);
        peer.expect_gone();
        setup.wait("close");
    }
}

#[test]
fn a_binary_message_far_over_max_payload_streams_through_with_flat_memory() {
    stream_through(false);
}

#[test]
fn a_compressed_message_is_inflated_part_by_part_with_flat_memory() {
    stream_through(true);
}

/// A part callback that pauses the connection stops the parts right there, and resuming
/// goes on where they stopped: inflated output still inside the decompressor and payload
/// already unmasked but not yet delivered come out exactly once, in order.
#[test]
fn pausing_from_part_callbacks_loses_and_repeats_nothing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for deflate in [false, true] {
        let pattern = Pattern::new(deflate);
        let setup = Setup::with(&pattern, deflate, None, false, true);
        let total: u64 = 64 << 20;
        let port = setup.port;
        let sender = {
            let pattern = pattern.clone();
            std::thread::spawn(move || send_message(port, &pattern, total, deflate))
        };
        // Resume whatever the sink paused, until the message is through.
        let (stop, resumes) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let resumer = {
            let (stop, resumes, seen) = (stop.clone(), resumes.clone(), setup.seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    if let Some(conn) = seen.conn.lock().unwrap().as_ref() {
                        if conn.set_paused(false).is_ok() {
                            resumes.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            })
        };
        assert_eq!(setup.wait("last"), format!("last {total}"));
        stop.store(true, Ordering::Release);
        resumer.join().unwrap();
        // The last part paused it too.
        setup.seen.conn.lock().unwrap().as_ref().expect("conn").set_paused(false).expect("resume");
        assert_eq!(setup.errors(), Vec::<String>::new(), "deflate {deflate}");
        assert_eq!(setup.seen.bytes.load(Ordering::Relaxed), total);
        assert!(resumes.load(Ordering::Relaxed) > 10);
        let mut peer = sender.join().unwrap();
        peer.send_close(1000, "done");
        assert_eq!(peer.close_frame().close_code(), 1000);
        peer.expect_gone();
        setup.wait("close");
    }
}

/// A part callback that closes its own connection hears nothing more of the message, in
/// both modes, and the close handshake completes.
fn close_from_part_callback(dispatch: bool) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pattern = Pattern::new(false);
    let setup = Setup::new(&pattern, false, Some(3), dispatch);
    let total = 64 << 20;
    let mut peer = send_message(setup.port, &pattern, total, false);
    let close = peer.close_frame();
    assert_eq!((close.close_code(), close.close_reason().as_str()), (1000, "enough"));
    peer.send_raw(&raw_ws::encode_frame(true, CLOSE, &close.payload, Some([1, 2, 3, 4])));
    peer.expect_gone();
    let line = setup.wait("close");
    assert!(line.starts_with("close 1000 \"enough\" clean Local"), "{line}");
    assert_eq!(setup.seen.parts.load(Ordering::Relaxed), 3, "no part after wsffi_close");
    assert_eq!(setup.errors(), Vec::<String>::new());
}

#[test]
fn closing_from_a_part_callback_stops_the_parts() {
    close_from_part_callback(false);
}

#[test]
fn closing_from_a_dispatched_part_callback_stops_the_parts() {
    close_from_part_callback(true);
}
