//! Drives the connection state machine the way the reactor does, for the session targets.
//!
//! Input: a flags byte, then
//! - bit 7 clear: hostile bytes. Two bytes of limits, one byte of callback answers, then
//!   chunks, each a length byte (low 6 bits + 1) and its bytes, appended to whatever the
//!   reader left unconsumed and fed again.
//! - bit 7 set: a round trip. Operations for a [`Writer`] of the other role; its output is
//!   read back by a [`Reader`] of this role, which must report the same messages.

use std::collections::VecDeque;

use super::Input;
use wsffi::core::extensions::deflate::{Agreed, DeflateConfig};
use wsffi::core::protocol::close::{is_valid_wire_code, MAX_REASON_LEN};
use wsffi::core::protocol::frame::{OpCode, MAX_HEADER_LEN};
use wsffi::core::session::{Incoming, Limits, MessageKind, Reader, Role, SendError, Violation, Writer};

/// An event as the reader reported it, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Msg(MessageKind, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u16, String)>),
}

/// A reader fed like the reactor feeds it: unconsumed bytes stay at the front of the
/// buffer and new input is appended behind them.
pub struct Feeder {
    reader: Reader,
    limits: Limits,
    pending: Vec<u8>,
    /// Answers of the event callback, used in turn (true = go on, false = pause).
    answers: u8,
    calls: u32,
    pub events: Vec<Ev>,
    pub violation: Option<Violation>,
}

impl Feeder {
    pub fn new(reader: Reader, limits: Limits, answers: u8) -> Self {
        Feeder { reader, limits, pending: Vec::new(), answers, calls: 0, events: Vec::new(), violation: None }
    }

    /// Appends `chunk` and feeds until the reader needs more input; false once the
    /// connection is over (violation or close).
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.violation.is_some() {
            return false;
        }
        self.pending.extend_from_slice(chunk);
        loop {
            let Feeder { reader, limits, pending, answers, calls, events, violation } = self;
            let was_closed = reader.close_received();
            let len = pending.len();
            let result = reader.feed(pending, &mut |ev| {
                events.push(check_event(ev, limits));
                let go_on = (*answers >> (*calls % 8)) & 1 == 1;
                *calls += 1;
                go_on
            });
            let progress = match result {
                Ok(p) => p,
                Err(v) => {
                    assert!(matches!(v.code, 1002 | 1007 | 1009), "violation close code {}: {}", v.code, v.message);
                    assert!(!v.message.is_empty());
                    *violation = Some(v);
                    return false;
                }
            };
            assert!(progress.consumed <= len, "consumed {} of {len}", progress.consumed);
            if was_closed {
                assert_eq!(progress.consumed, 0, "bytes read after the close frame");
            }
            if progress.next_frame_len > 0 {
                let left = len - progress.consumed;
                assert!(left < progress.next_frame_len, "frame of {} announced, {left} bytes present", progress.next_frame_len);
                let bound = MAX_HEADER_LEN + limits.max_payload.max(125);
                assert!(progress.next_frame_len <= bound, "room for {} bytes asked, limit {bound}", progress.next_frame_len);
            }
            pending.drain(..progress.consumed);
            if reader.close_received() {
                return false;
            }
            if progress.consumed == 0 {
                return true;
            }
        }
    }
}

fn check_event(ev: Incoming<'_>, limits: &Limits) -> Ev {
    match ev {
        Incoming::Message(kind, data) => {
            assert!(data.len() <= limits.max_payload, "message of {} bytes, limit {}", data.len(), limits.max_payload);
            if kind == MessageKind::Text {
                assert!(std::str::from_utf8(data).is_ok(), "text message is not UTF-8");
            }
            Ev::Msg(kind, data.to_vec())
        }
        Incoming::Part { .. } => panic!("a reader that does not stream delivered a message part"),
        Incoming::Ping(data) => {
            assert!(data.len() <= 125);
            Ev::Ping(data.to_vec())
        }
        Incoming::Pong(data) => {
            assert!(data.len() <= 125);
            Ev::Pong(data.to_vec())
        }
        Incoming::Close(c) => {
            if let Some((code, reason)) = c {
                assert!(is_valid_wire_code(code), "close code {code} delivered");
                assert!(reason.len() <= MAX_REASON_LEN);
            }
            Ev::Close(c.map(|(code, reason)| (code, reason.to_owned())))
        }
    }
}

fn agreed_from(b: u8) -> Agreed {
    Agreed {
        server_no_context_takeover: b & 1 != 0,
        client_no_context_takeover: b & 2 != 0,
        server_max_window_bits: 8 + (b >> 2 & 7),
        client_max_window_bits: 8 + (b >> 5 & 7),
    }
}

fn other(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// The whole target for a reader of `role`.
pub fn run(role: Role, data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let deflate = (flags & 1 != 0).then(|| agreed_from(input.u8()));
    if flags & 0x80 == 0 {
        hostile(role, deflate, &mut input);
    } else {
        round_trip(role, deflate, &mut input);
    }
}

fn hostile(role: Role, deflate: Option<Agreed>, input: &mut Input<'_>) {
    let a = input.u8();
    let limits = Limits { max_payload: usize::from(a) << 4 | usize::from(a & 15), max_fragments: 1 + usize::from(input.u8() & 15) };
    let mut reader = Reader::new(role, limits);
    if let Some(agreed) = deflate {
        reader.enable_deflate(agreed);
    }
    let mut feeder = Feeder::new(reader, limits, input.u8());
    while !input.is_empty() {
        let n = usize::from(input.u8() & 63) + 1;
        if !feeder.push(input.bytes(n)) {
            break;
        }
    }
}

/// Text from arbitrary bytes that stays valid UTF-8.
fn text(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes).into_owned().into_bytes()
}

fn round_trip(role: Role, deflate: Option<Agreed>, input: &mut Input<'_>) {
    let sender = other(role);
    let mut writer = Writer::new(sender);
    let limits = Limits { max_payload: 1 << 20, max_fragments: 1 << 17 };
    let mut reader = Reader::new(role, limits);
    if let Some(agreed) = deflate {
        let settings = input.u8();
        let cfg = DeflateConfig {
            threshold: usize::from(settings >> 4) * 8,
            level: u32::from(settings & 15) % 10,
            mem_level: 1 + (input.u8() % 9),
            ..DeflateConfig::default()
        };
        writer.enable_deflate(agreed, cfg);
        reader.enable_deflate(agreed);
    }
    let answers = input.u8();

    // What the writer accepted, as the reader must report it.
    let mut expected = Vec::new();
    let mut fragmented: Option<(MessageKind, Vec<u8>)> = None;
    let mut closed = false;
    let mut wire = Vec::new();
    // Bytes of output between which the reader gets its input.
    let mut cuts = VecDeque::new();

    while !input.is_empty() {
        let op = input.u8();
        let kind = if op & 0x10 != 0 { MessageKind::Text } else { MessageKind::Binary };
        let len = usize::from(input.u8());
        let raw = input.bytes(if op & 0x20 != 0 { len * 16 } else { len });
        // A continuation frame carries more of the message under way, whatever `kind` says.
        let content = match (&fragmented, op & 7) {
            (Some((k, _)), 2 | 3) => *k,
            _ => kind,
        };
        let data = if content == MessageKind::Text { text(raw) } else { raw.to_vec() };
        let data_len = data.len();
        let before = wire.len();
        let r = match op & 7 {
            0 | 1 => {
                let r = writer.message(&mut wire, kind, &data);
                if r.is_ok() {
                    expected.push(Ev::Msg(kind, data));
                }
                r
            }
            2 | 3 => {
                let fin = op & 0x40 != 0;
                let r = writer.fragment(&mut wire, kind, &data, fin);
                if r.is_ok() {
                    let (k, mut buf) = fragmented.take().unwrap_or((kind, Vec::new()));
                    buf.extend_from_slice(&data);
                    if fin {
                        expected.push(Ev::Msg(k, buf));
                    } else {
                        fragmented = Some((k, buf));
                    }
                }
                r
            }
            4 => {
                let opcode = if op & 0x40 != 0 { OpCode::Ping } else { OpCode::Pong };
                let r = writer.control(&mut wire, opcode, &data);
                if r.is_ok() {
                    expected.push(if opcode == OpCode::Ping { Ev::Ping(data) } else { Ev::Pong(data) });
                } else if !closed {
                    assert!(data_len > 125);
                    assert_eq!(r, Err(SendError::ControlTooLong));
                }
                r
            }
            5 => {
                let mut hdr = [0u8; MAX_HEADER_LEN];
                match writer.direct_header(kind, data.len(), &mut hdr) {
                    None => {
                        assert!(sender == Role::Client || writer.compresses(data.len()));
                        Ok(())
                    }
                    Some(Ok(n)) => {
                        wire.extend_from_slice(&hdr[..n]);
                        wire.extend_from_slice(&data);
                        expected.push(Ev::Msg(kind, data));
                        Ok(())
                    }
                    Some(Err(e)) => Err(e),
                }
            }
            _ => {
                const CODES: [u16; 8] = [1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999];
                let code = (op & 0x40 != 0).then(|| CODES[usize::from(op >> 5 & 7) % CODES.len()]);
                let reason = text(raw);
                let r = writer.close(&mut wire, code, &reason);
                if r.is_ok() {
                    // A long reason is cut to fit, on a character boundary.
                    let reason = String::from_utf8(reason).expect("text() makes UTF-8");
                    let mut keep = reason.len().min(MAX_REASON_LEN);
                    while !reason.is_char_boundary(keep) {
                        keep -= 1;
                    }
                    let shown = code.map(|c| (c, reason[..keep].to_owned()));
                    expected.push(Ev::Close(shown));
                    closed = true;
                }
                r
            }
        };
        match r {
            Ok(()) => {}
            Err(SendError::Closed) => assert!(closed),
            Err(SendError::FragmentInProgress) => assert!(fragmented.is_some()),
            Err(SendError::ControlTooLong) => assert!(data_len > 125),
            Err(SendError::Compression) => panic!("compression failed"),
        }
        if r.is_err() {
            assert_eq!(wire.len(), before, "a refused operation wrote bytes");
        }
        assert_eq!(writer.close_sent(), closed);
        assert_eq!(writer.is_fragmenting(), fragmented.is_some());
        if op & 0x08 != 0 {
            cuts.push_back(wire.len() - usize::from(len).min(wire.len() - before));
        }
    }

    let mut feeder = Feeder::new(reader, limits, answers);
    let mut at = 0;
    for cut in cuts.into_iter().chain([wire.len()]) {
        let cut = cut.max(at);
        feeder.push(&wire[at..cut]);
        at = cut;
    }
    if let Some(v) = feeder.violation {
        panic!("the {role:?} reader rejected the {sender:?} writer's output: {} ({})", v.message, v.code);
    }
    assert_eq!(feeder.events, expected);
}
