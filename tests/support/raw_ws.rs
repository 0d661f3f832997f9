//! A WebSocket peer written by hand over a plain TCP socket, for the tests that need bytes
//! the library would never send: fragments, masked or unmasked frames, bad UTF-8, oversized
//! messages, silence. It speaks the client side (writes masked frames unless told not to)
//! and reads the server's unmasked frames.
// Each test binary compiles this module and uses its own part of it.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a read waits before the test fails.
const READ_WAIT: Duration = Duration::from_secs(20);

/// Opcodes.
pub const CONT: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame as read from the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The code of a close frame (1005 for an empty one).
    pub fn close_code(&self) -> u16 {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        if self.payload.len() < 2 {
            1005
        } else {
            u16::from_be_bytes([self.payload[0], self.payload[1]])
        }
    }

    /// The reason of a close frame.
    pub fn close_reason(&self) -> String {
        assert_eq!(self.opcode, CLOSE, "not a close frame: {self:?}");
        String::from_utf8(self.payload.get(2..).unwrap_or_default().to_vec()).expect("UTF-8 reason")
    }
}

/// What the peer saw when it tried to read a frame.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    /// The other side closed the TCP connection (EOF or reset).
    Gone,
}

/// A raw TCP peer.
pub struct RawPeer {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// Encodes one frame; `mask` None sends it unmasked.
pub fn encode_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

impl RawPeer {
    /// Connects without sending anything.
    pub fn connect(port: u16) -> RawPeer {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(READ_WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        RawPeer { stream, buf: Vec::new() }
    }

    /// A peer on a socket accepted elsewhere.
    pub fn from_stream(stream: TcpStream) -> RawPeer {
        stream.set_read_timeout(Some(READ_WAIT)).unwrap();
        RawPeer { stream, buf: Vec::new() }
    }

    /// Sends `bytes` as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// An upgrade request for `path` with extra header lines (each ending in "\r\n").
    pub fn upgrade_request(path: &str, extra: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    }

    /// Sends an upgrade request and reads the response head; returns it.
    pub fn request(&mut self, path: &str, extra: &str) -> String {
        let req = Self::upgrade_request(path, extra);
        self.send_raw(req.as_bytes());
        self.read_head()
    }

    /// Connects, upgrades at `path` and checks the 101.
    pub fn open(port: u16, path: &str) -> RawPeer {
        let mut p = RawPeer::connect(port);
        let head = p.request(path, "");
        assert!(head.starts_with("HTTP/1.1 101"), "expected 101, got {head:?}");
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "accept key missing: {head:?}");
        p
    }

    /// Reads until the end of an HTTP head and returns it (bytes after it stay buffered).
    pub fn read_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.buf.drain(..end + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            if !self.fill() {
                panic!("connection ended inside the HTTP head: {:?}", String::from_utf8_lossy(&self.buf));
            }
        }
    }

    /// Reads everything up to EOF (an HTTP answer that closes the connection).
    pub fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill() {}
        std::mem::take(&mut self.buf)
    }

    /// Reads more bytes into the buffer; false at EOF or reset.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return false,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!("nothing arrived within {READ_WAIT:?}")
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Writes one masked frame.
    pub fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        self.send_raw(&encode_frame(fin, opcode, payload, Some(mask)));
    }

    /// Writes one frame without a mask (which a client must never do).
    pub fn send_unmasked(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.send_raw(&encode_frame(fin, opcode, payload, None));
    }

    /// Writes a masked close frame with `code` and `reason`.
    pub fn send_close(&mut self, code: u16, reason: &str) {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        self.send_frame(true, CLOSE, &payload);
    }

    /// Reads the next frame, or `Gone` when the connection ended first.
    pub fn next(&mut self) -> Next {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Next::Frame(frame);
            }
            if !self.fill() {
                assert!(self.buf.is_empty(), "connection ended inside a frame");
                return Next::Gone;
            }
        }
    }

    /// Reads the next frame and whether it was masked (as a client's must be).
    pub fn frame_with_mask(&mut self) -> (Frame, bool) {
        loop {
            if self.buf.len() >= 2 {
                let masked = self.buf[1] & 0x80 != 0;
                if let Some((frame, used)) = parse_frame(&self.buf) {
                    self.buf.drain(..used);
                    return (frame, masked);
                }
            }
            assert!(self.fill(), "the connection ended; a frame was expected");
        }
    }

    /// Reads the next frame; fails the test when the connection ended.
    pub fn frame(&mut self) -> Frame {
        match self.next() {
            Next::Frame(f) => f,
            Next::Gone => panic!("the connection ended; a frame was expected"),
        }
    }

    /// Reads frames until a close frame, skipping pings and pongs; returns it.
    pub fn close_frame(&mut self) -> Frame {
        loop {
            let f = self.frame();
            match f.opcode {
                CLOSE => return f,
                PING | PONG => continue,
                _ => panic!("expected a close frame, got {f:?}"),
            }
        }
    }

    /// Waits for the other side to end the TCP connection, skipping whatever frames come,
    /// then closes ours (as a client does once the server closed).
    pub fn expect_gone(&mut self) {
        while let Next::Frame(_) = self.next() {}
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Parses one frame from the front of `buf` (a server's frames are unmasked; masked ones are
/// unmasked too).
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let fin = buf[0] & 0x80 != 0;
    let opcode = buf[0] & 0x0F;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10)
        }
        n => (n as usize, 2),
    };
    let mask = if masked {
        if buf.len() < at + 4 {
            return None;
        }
        let m = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    if buf.len() < at + len {
        return None;
    }
    let mut payload = buf[at..at + len].to_vec();
    if let Some(m) = mask {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= m[i % 4];
        }
    }
    Some((Frame { fin, opcode, payload }, at + len))
}
