//! loadgen: WebSocket (and plain TCP) load generator for the echo benchmark.
//!
//! One thread, raw epoll (edge-triggered), pre-built masked frames written with writev
//! straight from those buffers, 1 MiB reads parsed in place: no allocation per message.
//!
//! Modes (`--mode`):
//!   echo       N connections (`--conns`), each keeping K messages (`--pipeline`) of S bytes
//!              (`--size`) in flight; after `--warmup` seconds, counts echoed messages for
//!              `--duration` seconds.
//!   handshake  `--concurrency` slots, each looping: connect, upgrade, close handshake
//!              (TCP: connect, 8-byte round trip, close); counts completed cycles per second.
//!   fanout     one publisher (connection 0) and `--conns` - 1 subscribers, for a server that
//!              publishes every message it receives to all its other connections (a topic):
//!              the publisher keeps K messages in flight ahead of subscriber 1; counts
//!              messages delivered to subscribers. Every subscriber checks the sequence.
//!   idle       opens `--conns` connections (at most `--concurrency` connecting at once),
//!              echoes one message on each, waits `--settle` seconds, then reports the
//!              server's resident memory per connection from /proc/PID/status.
//!
//! Every echo is checked: opcode, size and leading bytes (so order) on every connection, and
//! the full content on connection 0 (on all connections with `--verify-all`).
//! With `--server-pid`, the server's CPU time (user + system, /proc/PID/stat) over the
//! measured window is reported, and divided by the messages echoed.
//! The result is one line on stdout: `RESULT {json}`.

use bench_common::{accept_key, base64, header_value, Args};
use miniz_oxide::deflate::core::{create_comp_flags_from_zip_params, CompressorOxide};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZFlush, MZStatus};
use std::fmt::Write as _;
use std::net::{SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Distinct payloads cycled through, so reordering or stale data is detected.
const PATTERNS: usize = 16;
const READ_BUF: usize = 1024 * 1024;
const MAX_IOV: usize = 64;
/// Leading bytes of every echo compared on every connection (the whole echo on the
/// verified ones): catches dropped, duplicated or reordered messages anywhere.
const PREFIX_CHECK: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Echo,
    Handshake,
    Idle,
    Fanout,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    Free,
    Connecting,
    Upgrading,
    Open,
    Closing,
    Idle,
}

struct Config {
    addr: SocketAddrV4,
    ws: bool,
    mode: Mode,
    conns: usize,
    pipeline: u64,
    size: usize,
    text: bool,
    deflate: bool,
    warmup: f64,
    duration: f64,
    settle: f64,
    concurrency: usize,
    server_pid: Option<i32>,
    setup_timeout: f64,
    verify_all: bool,
    path: String,
}

/// Pre-built traffic: what is written, and what must come back.
struct Traffic {
    /// Complete frames (WebSocket, masked) or raw chunks (TCP), one per pattern.
    frames: Vec<Vec<u8>>,
    /// Expected echoed payload per pattern (uncompressed).
    payloads: Vec<Vec<u8>>,
    /// Upgrade requests (distinct keys) and the accept value expected for each.
    requests: Vec<(Vec<u8>, String)>,
    /// Masked close frame (code 1000) for the handshake mode.
    close_frame: Vec<u8>,
}

struct Conn {
    fd: i32,
    st: St,
    hs: Vec<u8>,
    key_idx: usize,
    // Send side: frames fully written, bytes written of the next one, limit on frames.
    sent_done: u64,
    send_off: usize,
    send_limit: u64,
    blocked: bool,
    // Receive side.
    recvd: u64,
    /// Data-frame payload bytes received as they came on the wire (compressed or not).
    wire_payload: u64,
    hdr: [u8; 14],
    hdr_have: usize,
    in_payload: bool,
    payload_left: u64,
    frame_op: u8,
    frame_fin: bool,
    in_msg: bool,
    msg_op: u8,
    msg_compressed: bool,
    msg_len: usize,
    verify: bool,
    inflate: Option<Box<InflateState>>,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            fd: -1,
            st: St::Free,
            hs: Vec::new(),
            key_idx: 0,
            sent_done: 0,
            send_off: 0,
            send_limit: u64::MAX,
            blocked: false,
            recvd: 0,
            hdr: [0; 14],
            hdr_have: 0,
            in_payload: false,
            payload_left: 0,
            frame_op: 0,
            frame_fin: false,
            in_msg: false,
            msg_op: 0,
            msg_compressed: false,
            msg_len: 0,
            verify: false,
            inflate: None,
            wire_payload: 0,
        }
    }

    fn reset(&mut self) {
        let inflate = self.inflate.take();
        let hs = std::mem::take(&mut self.hs);
        *self = Conn::new();
        self.inflate = inflate;
        self.hs = hs;
        self.hs.clear();
    }
}

#[derive(Default, Clone, Copy)]
struct Snap {
    at: Option<Instant>,
    msgs: u64,
    bytes: u64,
    cycles: u64,
    server_cpu: f64,
    client_cpu: f64,
    reads: u64,
    writes: u64,
    waits: u64,
    wire_payload: u64,
}

struct Gen {
    cfg: Config,
    tr: Traffic,
    ep: i32,
    conns: Vec<Conn>,
    msgs: u64,
    bytes: u64,
    cycles: u64,
    /// System calls on the data path, for the syscalls-per-message figures.
    n_reads: u64,
    n_writes: u64,
    n_waits: u64,
    idle_ready: usize,
    opened: usize,
    connecting: usize,
    next_src: u32,
    inflate_out: Vec<u8>,
    /// The server agreed to `server_no_context_takeover`: every message inflates alone.
    inflate_reset: bool,
    error: Option<String>,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn os_err() -> String {
    std::io::Error::last_os_error().to_string()
}

fn clk_tck() -> f64 {
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15).
fn proc_cpu(pid: i32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((ut + st) / clk_tck())
}

/// VmRSS of a process, in KiB.
fn proc_rss_kib(pid: i32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    for line in s.lines() {
        if let Some(v) = line.strip_prefix("VmRSS:") {
            return v.trim().trim_end_matches("kB").trim().parse().ok();
        }
    }
    None
}

fn self_cpu() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Payload of pattern `i`: binary bytes, or JSON-like ASCII text of exactly `size` bytes.
fn make_payload(i: usize, size: usize, text: bool) -> Vec<u8> {
    if !text {
        return (0..size).map(|j| (j.wrapping_mul(31) ^ (i * 97 + 13) ^ (j >> 8)) as u8).collect();
    }
    const WORDS: [&str; 8] = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
    let mut s = String::new();
    let mut k = 0usize;
    s.push('[');
    while s.len() < size {
        let _ = write!(
            s,
            "{{\"id\":{},\"user\":\"user-{:04}\",\"event\":\"{}\",\"ts\":{},\"price\":{}.{:02},\"tags\":[\"{}\",\"{}\"],\"active\":{}}},",
            1000 + i * 37 + k,
            (i * 13 + k * 7) % 10000,
            WORDS[(i + k) % 8],
            1_700_000_000 + i * 1000 + k * 17,
            (i * 7 + k * 3) % 500,
            (i + k) % 100,
            WORDS[(i * 3 + k) % 8],
            WORDS[(i + 5 * k) % 8],
            (i + k) % 2 == 0
        );
        k += 1;
    }
    let mut b = s.into_bytes();
    b.truncate(size);
    if size >= 2 {
        b[size - 1] = b']';
    }
    b
}

/// Raw DEFLATE of one message as permessage-deflate wants it: sync flush, tail removed.
fn deflate_message(data: &[u8]) -> Vec<u8> {
    let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(6, -15, 0));
    let mut out = vec![0u8; data.len() * 2 + 64];
    let r = miniz_oxide::deflate::stream::deflate(&mut c, data, &mut out, MZFlush::Sync);
    assert!(r.status.is_ok() && r.bytes_consumed == data.len(), "deflate failed");
    out.truncate(r.bytes_written);
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn mask_key(i: usize) -> [u8; 4] {
    let v = (i as u32).wrapping_mul(0x9E37_79B1) ^ 0xA5C3_5A3C;
    v.to_le_bytes()
}

/// A complete masked client frame.
fn client_frame(opcode: u8, rsv1: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | if rsv1 { 0x40 } else { 0 } | opcode);
    let n = payload.len();
    if n < 126 {
        f.push(0x80 | n as u8);
    } else if n < 65536 {
        f.push(0x80 | 126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(j, b)| b ^ mask[j & 3]));
    f
}

fn build_traffic(cfg: &Config) -> Traffic {
    let mut frames = Vec::new();
    let mut payloads = Vec::new();
    let size = if cfg.mode == Mode::Handshake && !cfg.ws { 8 } else { cfg.size };
    for i in 0..PATTERNS {
        let p = make_payload(i, size, cfg.text);
        if cfg.ws {
            let op = if cfg.text { 1 } else { 2 };
            if cfg.deflate {
                frames.push(client_frame(op, true, &deflate_message(&p), mask_key(i)));
            } else {
                frames.push(client_frame(op, false, &p, mask_key(i)));
            }
        } else {
            frames.push(p.clone());
        }
        payloads.push(p);
    }
    let mut requests = Vec::new();
    for i in 0..PATTERNS {
        let raw: Vec<u8> = (0..16).map(|j| (i * 16 + j * 7 + 1) as u8).collect();
        let key = base64(&raw);
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n",
            cfg.path, cfg.addr, key
        );
        if cfg.deflate {
            req.push_str("Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n");
        }
        req.push_str("\r\n");
        requests.push((req.into_bytes(), accept_key(&key)));
    }
    let close_frame = client_frame(8, false, &1000u16.to_be_bytes(), mask_key(99));
    Traffic { frames, payloads, requests, close_frame }
}

impl Gen {
    fn fail(&mut self, msg: String) {
        if self.error.is_none() {
            self.error = Some(msg);
        }
    }

    /// Starts a connection in slot `idx`.
    fn open(&mut self, idx: usize) {
        let fd =
            unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return self.fail(format!("socket: {}", os_err()));
        }
        let one: libc::c_int = 1;
        unsafe {
            libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const libc::c_void, 4);
        }
        let ip = u32::from(*self.cfg.addr.ip());
        if self.cfg.mode == Mode::Handshake && (ip >> 24) == 127 {
            // Spread short-lived connections over several loopback sources so TIME_WAIT
            // does not exhaust the ephemeral ports.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_IP,
                    libc::IP_BIND_ADDRESS_NO_PORT,
                    &one as *const _ as *const libc::c_void,
                    4,
                );
            }
            self.next_src = (self.next_src + 1) % 16;
            let src = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr { s_addr: (0x7f00_0001u32 + self.next_src * 256).to_be() },
                sin_zero: [0; 8],
            };
            unsafe {
                libc::bind(
                    fd,
                    &src as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            };
        }
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: self.cfg.addr.port().to_be(),
            sin_addr: libc::in_addr { s_addr: ip.to_be() },
            sin_zero: [0; 8],
        };
        let r = unsafe {
            libc::connect(fd, &sa as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_in>() as u32)
        };
        if r < 0 && errno() != libc::EINPROGRESS {
            unsafe { libc::close(fd) };
            return self.fail(format!("connect {}: {}", self.cfg.addr, os_err()));
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: idx as u64,
        };
        unsafe { libc::epoll_ctl(self.ep, libc::EPOLL_CTL_ADD, fd, &mut ev) };
        // Full content on connection 0, or on the first subscriber of a fan-out.
        let verify = self.cfg.verify_all || idx == usize::from(self.cfg.mode == Mode::Fanout);
        let deflate = self.cfg.deflate;
        let c = &mut self.conns[idx];
        c.reset();
        c.fd = fd;
        c.st = St::Connecting;
        c.verify = verify;
        c.key_idx = idx % PATTERNS;
        if deflate && c.inflate.is_none() {
            c.inflate = Some(InflateState::new_boxed(DataFormat::Raw));
        }
        self.connecting += 1;
    }

    fn close_slot(&mut self, idx: usize) {
        let c = &mut self.conns[idx];
        if c.fd >= 0 {
            unsafe { libc::close(c.fd) };
        }
        if matches!(c.st, St::Connecting | St::Upgrading) {
            self.connecting -= 1;
        }
        c.fd = -1;
        c.st = St::Free;
    }

    fn write_all_small(&mut self, idx: usize, data_ptr: *const u8, len: usize) -> bool {
        let fd = self.conns[idx].fd;
        let w = unsafe { libc::write(fd, data_ptr as *const libc::c_void, len) };
        if w != len as isize {
            self.fail(format!("short write of {len} bytes on a fresh connection ({})", os_err()));
            return false;
        }
        true
    }

    fn event(&mut self, idx: usize, ev: u32) {
        if self.conns[idx].st == St::Free {
            return;
        }
        if self.conns[idx].st == St::Connecting {
            if ev & (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32 == 0 {
                return;
            }
            let mut err: libc::c_int = 0;
            let mut len = 4u32;
            unsafe {
                libc::getsockopt(
                    self.conns[idx].fd,
                    libc::SOL_SOCKET,
                    libc::SO_ERROR,
                    &mut err as *mut _ as *mut libc::c_void,
                    &mut len,
                )
            };
            if err != 0 {
                let e = std::io::Error::from_raw_os_error(err);
                return self.fail(format!("connect {}: {e}", self.cfg.addr));
            }
            self.connected(idx);
            if self.error.is_some() {
                return;
            }
        }
        if ev & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            // Reading is done by the caller with the shared buffer.
            return;
        }
        if ev & libc::EPOLLOUT as u32 != 0 && self.conns[idx].blocked {
            self.pump(idx);
        }
    }

    fn connected(&mut self, idx: usize) {
        if self.cfg.ws {
            let k = self.conns[idx].key_idx;
            let (ptr, len) = (self.tr.requests[k].0.as_ptr(), self.tr.requests[k].0.len());
            if !self.write_all_small(idx, ptr, len) {
                return;
            }
            self.conns[idx].st = St::Upgrading;
        } else {
            self.connecting -= 1;
            self.start(idx);
        }
    }

    /// The connection is usable (upgraded, or TCP connected).
    fn start(&mut self, idx: usize) {
        self.opened += 1;
        match self.cfg.mode {
            Mode::Echo => {
                self.conns[idx].st = St::Open;
                self.pump(idx);
            }
            Mode::Fanout => {
                // Subscribers only listen; the publisher starts once all are up (main).
                self.conns[idx].st = St::Open;
                self.conns[idx].send_limit = if idx == 0 { u64::MAX } else { 0 };
            }
            Mode::Idle => {
                self.conns[idx].st = St::Open;
                self.conns[idx].send_limit = 1;
                self.pump(idx);
            }
            Mode::Handshake => {
                self.conns[idx].st = St::Closing;
                let (ptr, len) = if self.cfg.ws {
                    (self.tr.close_frame.as_ptr(), self.tr.close_frame.len())
                } else {
                    (self.tr.frames[0].as_ptr(), self.tr.frames[0].len())
                };
                self.write_all_small(idx, ptr, len);
            }
        }
    }

    /// Writes frames until K are in flight, the send limit is reached, or the socket is full.
    fn pump(&mut self, idx: usize) {
        let k = self.cfg.pipeline;
        // What the in-flight window counts from: the connection's own echoes, or for the
        // fan-out publisher the deliveries to subscriber 1.
        let base = if self.cfg.mode == Mode::Fanout && idx == 0 { self.conns[1].recvd } else { self.conns[idx].recvd };
        let c = &mut self.conns[idx];
        if c.st != St::Open {
            return;
        }
        loop {
            let want = (base + k).min(c.send_limit);
            if c.sent_done >= want {
                c.blocked = false;
                return;
            }
            let mut iov: [libc::iovec; MAX_IOV] = unsafe { std::mem::zeroed() };
            let mut n = 0;
            let mut total = 0usize;
            let mut j = c.sent_done;
            while j < want && n < MAX_IOV {
                let f = &self.tr.frames[(j % PATTERNS as u64) as usize];
                let off = if j == c.sent_done { c.send_off } else { 0 };
                iov[n] = libc::iovec { iov_base: f[off..].as_ptr() as *mut libc::c_void, iov_len: f.len() - off };
                total += f.len() - off;
                n += 1;
                j += 1;
            }
            self.n_writes += 1;
            let w = unsafe { libc::writev(c.fd, iov.as_ptr(), n as i32) };
            if w < 0 {
                let e = errno();
                if e == libc::EAGAIN {
                    c.blocked = true;
                    return;
                }
                if e == libc::EINTR {
                    continue;
                }
                let msg = format!("write: {}", os_err());
                self.fail(msg);
                return;
            }
            let w = w as usize;
            let mut left = w;
            while left > 0 {
                let flen = self.tr.frames[(c.sent_done % PATTERNS as u64) as usize].len();
                let rest = flen - c.send_off;
                if left >= rest {
                    left -= rest;
                    c.sent_done += 1;
                    c.send_off = 0;
                } else {
                    c.send_off += left;
                    left = 0;
                }
            }
            if w < total {
                // The socket buffer is full: wait for EPOLLOUT.
                c.blocked = true;
                return;
            }
        }
    }

    /// Reads everything available on slot `idx` through `buf`.
    fn read(&mut self, idx: usize, buf: &mut [u8]) {
        loop {
            let st = self.conns[idx].st;
            if st == St::Free || st == St::Connecting {
                return;
            }
            let fd = self.conns[idx].fd;
            self.n_reads += 1;
            let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if r < 0 {
                let e = errno();
                if e == libc::EAGAIN {
                    return;
                }
                if e == libc::EINTR {
                    continue;
                }
                return self.fail(format!("read ({:?}): {}", st, os_err()));
            }
            if r == 0 {
                return self.eof(idx);
            }
            let n = r as usize;
            self.feed(idx, &buf[..n]);
            if self.error.is_some() || self.conns[idx].fd != fd {
                return;
            }
            if n < buf.len() {
                return;
            }
        }
    }

    fn eof(&mut self, idx: usize) {
        let st = self.conns[idx].st;
        self.fail(format!("server closed the connection (state {:?}, {} echoes received)", st, self.conns[idx].recvd));
    }

    fn cycle_done(&mut self, idx: usize) {
        self.cycles += 1;
        self.close_slot(idx);
        self.open(idx);
    }

    fn feed(&mut self, idx: usize, mut data: &[u8]) {
        if self.conns[idx].st == St::Upgrading {
            let c = &mut self.conns[idx];
            c.hs.extend_from_slice(data);
            let Some(end) = find(&c.hs, b"\r\n\r\n") else {
                if c.hs.len() > 16384 {
                    self.fail("handshake response too long".into());
                }
                return;
            };
            let head = String::from_utf8_lossy(&c.hs[..end]).into_owned();
            let extra = c.hs.len() - end - 4;
            let status_ok = head.starts_with("HTTP/1.1 101");
            let accept_ok = header_value(&head, "sec-websocket-accept") == Some(self.tr.requests[c.key_idx].1.as_str());
            let ext = header_value(&head, "sec-websocket-extensions").unwrap_or("").to_ascii_lowercase();
            if !status_ok || !accept_ok {
                let first = head.lines().next().unwrap_or("").to_string();
                return self.fail(format!("bad upgrade response: {first} (accept ok: {accept_ok})"));
            }
            if self.cfg.deflate && !ext.contains("permessage-deflate") {
                return self.fail("server did not accept permessage-deflate".into());
            }
            // Without server_no_context_takeover the server's messages share one stream.
            self.inflate_reset = ext.contains("server_no_context_takeover");
            if !self.cfg.deflate && !ext.is_empty() {
                return self.fail(format!("server negotiated an extension that was not offered: {ext}"));
            }
            self.connecting -= 1;
            data = &data[data.len() - extra..];
            self.conns[idx].hs.clear();
            self.start(idx);
            if self.error.is_some() || data.is_empty() {
                return;
            }
        }
        if self.cfg.ws {
            self.feed_ws(idx, data);
        } else {
            self.feed_tcp(idx, data);
        }
        if self.error.is_none() && self.conns[idx].st == St::Open {
            self.pump(idx);
        }
    }

    fn feed_tcp(&mut self, idx: usize, mut data: &[u8]) {
        let size = self.tr.payloads[0].len();
        while !data.is_empty() {
            let c = &mut self.conns[idx];
            if !matches!(c.st, St::Open | St::Closing) {
                return self.fail(format!("unexpected {} bytes from the server", data.len()));
            }
            let take = (size - c.msg_len).min(data.len());
            if c.verify || c.msg_len < PREFIX_CHECK {
                let p = &self.tr.payloads[(c.recvd % PATTERNS as u64) as usize];
                let n = if c.verify { take } else { take.min(PREFIX_CHECK - c.msg_len) };
                if data[..n] != p[c.msg_len..c.msg_len + n] {
                    {
                        let m = format!("echo content mismatch on connection {idx}, message {}", c.recvd);
                        return self.fail(m);
                    }
                }
            }
            c.msg_len += take;
            data = &data[take..];
            if c.msg_len == size {
                c.msg_len = 0;
                self.message_done(idx, size);
                if self.error.is_some() || self.conns[idx].st == St::Free || self.conns[idx].st == St::Connecting {
                    return;
                }
            }
        }
    }

    fn feed_ws(&mut self, idx: usize, mut data: &[u8]) {
        while !data.is_empty() {
            let c = &mut self.conns[idx];
            if !c.in_payload {
                // Collect the frame header (2 bytes, then the extended length and mask).
                if c.hdr_have < 2 {
                    let take = (2 - c.hdr_have).min(data.len());
                    c.hdr[c.hdr_have..c.hdr_have + take].copy_from_slice(&data[..take]);
                    c.hdr_have += take;
                    data = &data[take..];
                    if c.hdr_have < 2 {
                        continue;
                    }
                }
                let need =
                    2 + match c.hdr[1] & 0x7f {
                        126 => 2,
                        127 => 8,
                        _ => 0,
                    } + if c.hdr[1] & 0x80 != 0 { 4 } else { 0 };
                if c.hdr_have < need {
                    let take = (need - c.hdr_have).min(data.len());
                    c.hdr[c.hdr_have..c.hdr_have + take].copy_from_slice(&data[..take]);
                    c.hdr_have += take;
                    data = &data[take..];
                    if c.hdr_have < need {
                        continue;
                    }
                }
                let b0 = c.hdr[0];
                let b1 = c.hdr[1];
                if b1 & 0x80 != 0 {
                    return self.fail("server sent a masked frame".into());
                }
                let len = match b1 & 0x7f {
                    126 => u16::from_be_bytes([c.hdr[2], c.hdr[3]]) as u64,
                    127 => u64::from_be_bytes(c.hdr[2..10].try_into().unwrap()),
                    n => n as u64,
                };
                let op = b0 & 0x0f;
                let rsv1 = b0 & 0x40 != 0;
                if b0 & 0x30 != 0 || (rsv1 && (!self.cfg.deflate || op == 0 || op >= 8)) {
                    return self.fail(format!("unexpected RSV bits in frame header {b0:#04x}"));
                }
                c.hdr_have = 0;
                c.frame_op = op;
                c.frame_fin = b0 & 0x80 != 0;
                c.payload_left = len;
                c.in_payload = true;
                match op {
                    1 | 2 => {
                        if c.in_msg {
                            return self.fail("new data frame inside a fragmented message".into());
                        }
                        c.in_msg = true;
                        c.msg_op = op;
                        c.msg_len = 0;
                        c.msg_compressed = rsv1;
                        if rsv1 && self.inflate_reset {
                            if let Some(inf) = c.inflate.as_mut() {
                                inf.reset(DataFormat::Raw);
                            }
                        }
                    }
                    0 => {
                        if !c.in_msg {
                            return self.fail("continuation frame without a message".into());
                        }
                    }
                    8..=10 => {
                        if len > 125 || !c.frame_fin {
                            return self.fail("bad control frame".into());
                        }
                    }
                    _ => return self.fail(format!("unknown opcode {op}")),
                }
                if len == 0 {
                    self.frame_done(idx);
                    if self.error.is_some() || self.conns[idx].st == St::Free || self.conns[idx].st == St::Connecting {
                        return;
                    }
                }
                continue;
            }
            // Payload bytes.
            let take = (c.payload_left.min(data.len() as u64)) as usize;
            if c.frame_op <= 2 {
                c.wire_payload += take as u64;
            }
            let chunk = &data[..take];
            data = &data[take..];
            c.payload_left -= take as u64;
            match c.frame_op {
                0..=2 => {
                    if c.msg_compressed {
                        if let Err(e) = self.inflate_chunk(idx, chunk) {
                            return self.fail(e);
                        }
                    } else {
                        if c.verify || c.msg_len < PREFIX_CHECK {
                            let p = &self.tr.payloads[(c.recvd % PATTERNS as u64) as usize];
                            let n = if c.verify { take } else { take.min(PREFIX_CHECK - c.msg_len) };
                            if c.msg_len + take > p.len() || chunk[..n] != p[c.msg_len..c.msg_len + n] {
                                {
                                    let m = format!("echo content mismatch on connection {idx}, message {}", c.recvd);
                                    return self.fail(m);
                                }
                            }
                        }
                        c.msg_len += take;
                    }
                }
                8 => {
                    // Close payload: code only matters for the record.
                }
                _ => {}
            }
            if self.conns[idx].payload_left == 0 {
                self.frame_done(idx);
                if self.error.is_some() || self.conns[idx].st == St::Free || self.conns[idx].st == St::Connecting {
                    return;
                }
            }
        }
    }

    /// Inflates a piece of a compressed message (at its end, the RFC 7692 tail).
    fn inflate_chunk(&mut self, idx: usize, mut input: &[u8]) -> Result<(), String> {
        let c = &mut self.conns[idx];
        let p = &self.tr.payloads[(c.recvd % PATTERNS as u64) as usize];
        let inf = c.inflate.as_mut().ok_or("compressed frame without deflate")?;
        loop {
            let r = miniz_oxide::inflate::stream::inflate(inf, input, &mut self.inflate_out, MZFlush::None);
            let out = &self.inflate_out[..r.bytes_written];
            let n = if c.verify { out.len() } else { out.len().min(PREFIX_CHECK.saturating_sub(c.msg_len)) };
            if c.msg_len + out.len() > p.len() || out[..n] != p[c.msg_len..c.msg_len + n] {
                return Err(format!("inflated echo mismatch on connection {idx}, message {}", c.recvd));
            }
            c.msg_len += out.len();
            if c.msg_len > p.len() {
                return Err(format!("inflated echo too long on connection {idx}"));
            }
            input = &input[r.bytes_consumed..];
            match r.status {
                Ok(MZStatus::Ok) | Ok(MZStatus::StreamEnd) => {}
                Err(miniz_oxide::MZError::Buf) if input.is_empty() => {}
                other => return Err(format!("inflate failed: {other:?}")),
            }
            if input.is_empty() && r.bytes_written < self.inflate_out.len() {
                break;
            }
            if r.bytes_consumed == 0 && r.bytes_written == 0 {
                // Stream ended (a final block): what follows is the RFC 7692 tail.
                break;
            }
        }
        Ok(())
    }

    fn frame_done(&mut self, idx: usize) {
        let c = &mut self.conns[idx];
        c.in_payload = false;
        match c.frame_op {
            0..=2 => {
                if !c.frame_fin {
                    return;
                }
                if c.msg_compressed {
                    if let Err(e) = self.inflate_chunk(idx, &[0, 0, 0xff, 0xff]) {
                        return self.fail(e);
                    }
                }
                let c = &mut self.conns[idx];
                c.in_msg = false;
                let want_op = if self.cfg.text { 1 } else { 2 };
                let expect = self.tr.payloads[(c.recvd % PATTERNS as u64) as usize].len();
                if c.msg_op != want_op {
                    {
                        let m = format!("echo has opcode {} instead of {want_op}", c.msg_op);
                        return self.fail(m);
                    }
                }
                if c.msg_len != expect {
                    {
                        let m = format!("echo of {} bytes instead of {expect} on connection {idx}", c.msg_len);
                        return self.fail(m);
                    }
                }
                let len = c.msg_len;
                self.message_done(idx, len);
            }
            8 => {
                if c.st == St::Closing && self.cfg.mode == Mode::Handshake {
                    // The close handshake is complete; the client may drop the socket.
                    self.cycle_done(idx);
                } else {
                    {
                        let m = format!("server sent a close frame (after {} echoes)", c.recvd);
                        self.fail(m);
                    }
                }
            }
            _ => {}
        }
    }

    fn message_done(&mut self, idx: usize, len: usize) {
        let c = &mut self.conns[idx];
        if c.st == St::Closing && self.cfg.mode == Mode::Handshake {
            // TCP reference: the round trip after connect completes the cycle.
            return self.cycle_done(idx);
        }
        let fanout = self.cfg.mode == Mode::Fanout;
        let sent = if fanout { self.conns[0].sent_done } else { self.conns[idx].sent_done };
        let c = &mut self.conns[idx];
        if fanout && idx == 0 {
            return self.fail("the publisher received its own message".into());
        }
        if c.recvd >= sent {
            return self.fail(format!("more messages than were sent arrived on connection {idx}"));
        }
        c.recvd += 1;
        self.msgs += 1;
        self.bytes += len as u64;
        if fanout && idx == 1 {
            self.pump(0);
            return;
        }
        let c = &mut self.conns[idx];
        if self.cfg.mode == Mode::Idle && c.recvd == 1 {
            c.st = St::Idle;
            self.idle_ready += 1;
        }
    }

    fn snap(&self) -> Snap {
        Snap {
            at: Some(Instant::now()),
            msgs: self.msgs,
            bytes: self.bytes,
            cycles: self.cycles,
            server_cpu: self.cfg.server_pid.and_then(proc_cpu).unwrap_or(f64::NAN),
            client_cpu: self_cpu(),
            reads: self.n_reads,
            writes: self.n_writes,
            waits: self.n_waits,
            wire_payload: self.conns.iter().map(|c| c.wire_payload).sum(),
        }
    }

    fn poll(&mut self, events: &mut [libc::epoll_event], buf: &mut [u8], timeout: Duration) {
        let ms = timeout.as_millis().min(100) as i32;
        self.n_waits += 1;
        let n = unsafe { libc::epoll_wait(self.ep, events.as_mut_ptr(), events.len() as i32, ms) };
        if n < 0 {
            if errno() != libc::EINTR {
                self.fail(format!("epoll_wait: {}", os_err()));
            }
            return;
        }
        for i in 0..n as usize {
            let idx = events[i].u64 as usize;
            let ev = events[i].events;
            let fd = self.conns[idx].fd;
            self.event(idx, ev);
            if self.error.is_some() {
                return;
            }
            if self.conns[idx].fd == fd
                && ev & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
            {
                self.read(idx, buf);
                if self.error.is_some() {
                    return;
                }
                if self.conns[idx].fd == fd && ev & libc::EPOLLOUT as u32 != 0 && self.conns[idx].blocked {
                    self.pump(idx);
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        "null".into()
    }
}

fn parse_config() -> Config {
    let a = Args::from_env();
    if a.flag("help") {
        println!(
            "loadgen --addr HOST:PORT [--proto ws|tcp] [--mode echo|handshake|idle|fanout] [--conns N] [--pipeline K]\n\
             \x20       [--size BYTES] [--text] [--deflate] [--warmup S] [--duration S] [--settle S]\n\
             \x20       [--concurrency C] [--server-pid PID] [--verify-all] [--path /]"
        );
        std::process::exit(0);
    }
    let addr_s = a.value("addr").unwrap_or_else(|| {
        eprintln!("loadgen: --addr HOST:PORT is required");
        std::process::exit(2)
    });
    let addr: SocketAddr = addr_s.parse().unwrap_or_else(|_| {
        eprintln!("loadgen: bad --addr {addr_s}");
        std::process::exit(2)
    });
    let SocketAddr::V4(addr) = addr else {
        eprintln!("loadgen: only IPv4 addresses are supported");
        std::process::exit(2)
    };
    let mode = match a.value("mode").unwrap_or("echo") {
        "echo" => Mode::Echo,
        "handshake" => Mode::Handshake,
        "idle" => Mode::Idle,
        "fanout" => Mode::Fanout,
        m => {
            eprintln!("loadgen: unknown mode {m}");
            std::process::exit(2)
        }
    };
    let ws = match a.value("proto").unwrap_or("ws") {
        "ws" => true,
        "tcp" => false,
        p => {
            eprintln!("loadgen: unknown proto {p}");
            std::process::exit(2)
        }
    };
    let cfg = Config {
        addr,
        ws,
        mode,
        conns: a.get("conns", 100usize),
        pipeline: a.get("pipeline", 16u64).max(1),
        size: a.get("size", 32usize),
        text: a.flag("text") || a.flag("deflate"),
        deflate: a.flag("deflate"),
        warmup: a.get("warmup", 1.0f64),
        duration: a.get("duration", 5.0f64),
        settle: a.get("settle", 1.0f64),
        concurrency: a.get("concurrency", if mode == Mode::Handshake { 8usize } else { 64 }).max(1),
        server_pid: a.value("server-pid").and_then(|p| p.parse().ok()),
        setup_timeout: a.get("setup-timeout", 120.0f64),
        verify_all: a.flag("verify-all"),
        path: a.value("path").unwrap_or("/").to_string(),
    };
    if cfg.deflate && !cfg.ws {
        eprintln!("loadgen: --deflate needs --proto ws");
        std::process::exit(2);
    }
    if cfg.size == 0 {
        eprintln!("loadgen: --size must be at least 1");
        std::process::exit(2);
    }
    if cfg.mode == Mode::Fanout && cfg.conns < 2 {
        eprintln!("loadgen: --mode fanout needs --conns 2 or more (a publisher and subscribers)");
        std::process::exit(2);
    }
    cfg
}

fn main() {
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let cfg = parse_config();
    let tr = build_traffic(&cfg);
    let slots = match cfg.mode {
        Mode::Handshake => cfg.concurrency,
        _ => cfg.conns,
    };
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut g = Gen {
        ep,
        conns: (0..slots).map(|_| Conn::new()).collect(),
        msgs: 0,
        bytes: 0,
        cycles: 0,
        n_reads: 0,
        n_writes: 0,
        n_waits: 0,
        idle_ready: 0,
        opened: 0,
        connecting: 0,
        next_src: 0,
        inflate_out: vec![0u8; 64 * 1024],
        inflate_reset: true,
        error: None,
        tr,
        cfg,
    };
    let mut buf = vec![0u8; READ_BUF];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let start = Instant::now();
    let setup_deadline = start + Duration::from_secs_f64(g.cfg.setup_timeout);
    let rss_base = g.cfg.server_pid.and_then(proc_rss_kib);
    let mut result = String::new();

    match g.cfg.mode {
        Mode::Echo | Mode::Handshake | Mode::Fanout => {
            for i in 0..slots {
                g.open(i);
            }
            // Echo and fan-out: all connections up before the clock starts.
            if g.cfg.mode != Mode::Handshake {
                while g.error.is_none() && g.opened < slots {
                    if Instant::now() > setup_deadline {
                        g.fail(format!("only {} of {slots} connections opened in time", g.opened));
                        break;
                    }
                    g.poll(&mut events, &mut buf, Duration::from_millis(50));
                }
            }
            if g.cfg.mode == Mode::Fanout && g.error.is_none() {
                g.pump(0);
            }
            let warm_end = Instant::now() + Duration::from_secs_f64(g.cfg.warmup);
            let end = warm_end + Duration::from_secs_f64(g.cfg.duration);
            let mut first: Option<Snap> = None;
            while g.error.is_none() {
                let now = Instant::now();
                if first.is_none() && now >= warm_end {
                    first = Some(g.snap());
                }
                if now >= end {
                    break;
                }
                let next = if first.is_none() { warm_end } else { end };
                g.poll(&mut events, &mut buf, next.saturating_duration_since(now) + Duration::from_millis(1));
            }
            if g.error.is_none() {
                let a = first.unwrap();
                let b = g.snap();
                let secs = b.at.unwrap().duration_since(a.at.unwrap()).as_secs_f64();
                let count = if g.cfg.mode == Mode::Handshake { b.cycles - a.cycles } else { b.msgs - a.msgs };
                let bytes = b.bytes - a.bytes;
                let server_cpu = b.server_cpu - a.server_cpu;
                let client_cpu = b.client_cpu - a.client_cpu;
                let per = if count > 0 { server_cpu / count as f64 * 1e6 } else { f64::NAN };
                let per_op = |v: u64| if count > 0 { v as f64 / count as f64 } else { f64::NAN };
                let _ = write!(
                    result,
                    "{{\"ok\":true,\"mode\":\"{:?}\",\"count\":{count},\"bytes\":{bytes},\"seconds\":{},\"per_sec\":{},\"mib_per_sec\":{},\
                     \"server_cpu_s\":{},\"server_cpu_us_per_op\":{},\"client_cpu_s\":{},\"client_cpu_frac\":{},\"client_reads_per_op\":{},\"client_writes_per_op\":{},\"client_waits_per_op\":{},\"wire_payload_per_op\":{}}}",
                    g.cfg.mode,
                    json_num(secs),
                    json_num(count as f64 / secs),
                    json_num(bytes as f64 / secs / 1048576.0),
                    json_num(server_cpu),
                    json_num(per),
                    json_num(client_cpu),
                    json_num(client_cpu / secs),
                    json_num(per_op(b.reads - a.reads)),
                    json_num(per_op(b.writes - a.writes)),
                    json_num(per_op(b.waits - a.waits)),
                    json_num(per_op(b.wire_payload.saturating_sub(a.wire_payload)))
                );
            }
        }
        Mode::Idle => {
            let mut next = 0usize;
            while g.error.is_none() && g.idle_ready < slots {
                while next < slots && g.connecting < g.cfg.concurrency {
                    g.open(next);
                    next += 1;
                }
                if Instant::now() > setup_deadline {
                    g.fail(format!("only {} of {slots} connections ready in time", g.idle_ready));
                    break;
                }
                g.poll(&mut events, &mut buf, Duration::from_millis(50));
            }
            let settle_end = Instant::now() + Duration::from_secs_f64(g.cfg.settle);
            while g.error.is_none() && Instant::now() < settle_end {
                g.poll(
                    &mut events,
                    &mut buf,
                    settle_end.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
                );
            }
            if g.error.is_none() {
                let rss = g.cfg.server_pid.and_then(proc_rss_kib);
                let per = match (rss_base, rss) {
                    (Some(a), Some(b)) => (b as f64 - a as f64) * 1024.0 / slots as f64,
                    _ => f64::NAN,
                };
                let _ = write!(
                    result,
                    "{{\"ok\":true,\"mode\":\"Idle\",\"count\":{slots},\"rss_base_kib\":{},\"rss_kib\":{},\"rss_per_conn_bytes\":{},\"setup_seconds\":{}}}",
                    rss_base.map(|v| v.to_string()).unwrap_or("null".into()),
                    rss.map(|v| v.to_string()).unwrap_or("null".into()),
                    json_num(per),
                    json_num(start.elapsed().as_secs_f64() - g.cfg.settle)
                );
            }
        }
    }
    if let Some(e) = &g.error {
        let e = e.replace('\\', "\\\\").replace('"', "'");
        println!("RESULT {{\"ok\":false,\"error\":\"{e}\"}}");
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
    println!("RESULT {result}");
}
