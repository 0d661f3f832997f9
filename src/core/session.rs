//! The per-connection WebSocket state machine after the handshake, without I/O.
//!
//! It is split in a read half ([`Reader`]) and a write half ([`Writer`]) on purpose: a
//! message callback runs while the reader is busy (the payload it sees points into the read
//! buffer), and that callback may send on the same connection, which only touches the writer.

use super::protocol::close::{self, codes};
use super::protocol::frame::{self, FrameHeader, OpCode};
use super::protocol::mask;
use super::protocol::utf8::{self, Utf8Validator};

/// Which end of the connection this is; it decides the masking rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Masks what it sends, rejects masked frames.
    Client,
    /// Rejects unmasked frames, never masks.
    Server,
}

/// The two kinds of data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

impl MessageKind {
    fn opcode(self) -> OpCode {
        match self {
            MessageKind::Text => OpCode::Text,
            MessageKind::Binary => OpCode::Binary,
        }
    }
}

/// One event decoded from the peer's bytes. Payloads borrow the caller's buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A complete (possibly reassembled) data message.
    Message(MessageKind, &'a [u8]),
    /// A ping; the caller answers it with a pong.
    Ping(&'a [u8]),
    /// A pong.
    Pong(&'a [u8]),
    /// A valid close frame: `None` when it carried no status code (1005).
    Close(Option<(u16, &'a str)>),
}

/// The peer broke the protocol: the connection must be failed with `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// Close code to send (1002, 1007, 1009).
    pub code: u16,
    /// What was wrong, for the error callback and the close reason.
    pub message: &'static str,
}

impl Violation {
    const fn protocol(message: &'static str) -> Self {
        Violation { code: codes::PROTOCOL_ERROR, message }
    }
}

/// What one call to [`Reader::feed`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes at the start of the buffer that were fully processed.
    pub consumed: usize,
    /// When the rest of the buffer starts with an incomplete frame whose header is known:
    /// how many bytes that whole frame takes, so the caller can make room. 0 otherwise.
    pub next_frame_len: usize,
}

/// Limits applied to incoming data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (after reassembly) accepted; larger ones fail with 1009.
    pub max_payload: usize,
    /// Most frames one fragmented message may use; more fail with 1009.
    pub max_fragments: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_payload: 64 * 1024 * 1024, max_fragments: 1 << 17 }
    }
}

/// A reassembly buffer larger than this is released after its message, so idle
/// connections do not keep the memory of their largest message.
const ASSEMBLY_KEEP: usize = 16 * 1024;

/// The read half: turns bytes from the peer into [`Incoming`] events.
#[derive(Debug)]
pub struct Reader {
    role: Role,
    limits: Limits,
    assembling: Option<MessageKind>,
    assembly: Vec<u8>,
    fragments: usize,
    utf8: Utf8Validator,
    close_received: bool,
}

impl Reader {
    /// A reader for one end of a connection.
    pub fn new(role: Role, limits: Limits) -> Self {
        Reader {
            role,
            limits,
            assembling: None,
            assembly: Vec::new(),
            fragments: 0,
            utf8: Utf8Validator::new(),
            close_received: false,
        }
    }

    /// Has a close frame been received? Nothing after it is read.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Processes as many complete frames as `buf` holds, unmasking payloads in place.
    ///
    /// `on` receives each event; returning `false` stops after that event (the caller paused
    /// or closed). Unprocessed bytes (an incomplete frame) must be presented again, followed by
    /// more input. An `Err` means the connection must be failed with the violation's code.
    pub fn feed(
        &mut self,
        buf: &mut [u8],
        on: &mut dyn FnMut(Incoming<'_>) -> bool,
    ) -> Result<Progress, Violation> {
        let mut pos = 0;
        while !self.close_received {
            let Some((header, header_len)) =
                frame::parse_header(&buf[pos..]).map_err(|e| Violation::protocol(e.message()))?
            else {
                break;
            };
            let payload_len = self.check_header(&header)?;
            let frame_len = header_len + payload_len;
            if buf.len() - pos < frame_len {
                return Ok(Progress { consumed: pos, next_frame_len: frame_len });
            }
            let payload = &mut buf[pos + header_len..pos + frame_len];
            if let Some(key) = header.mask {
                mask::apply_mask(payload, key, 0);
            }
            pos += frame_len;
            if !self.dispatch(&header, payload, on)? {
                break;
            }
        }
        Ok(Progress { consumed: pos, next_frame_len: 0 })
    }

    /// Applies the rules that depend on role and state; returns the payload length.
    fn check_header(&self, h: &FrameHeader) -> Result<usize, Violation> {
        if h.rsv1 || h.rsv2 || h.rsv3 {
            return Err(Violation::protocol("reserved bits set without a negotiated extension"));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(Violation::protocol("unmasked frame from client")),
            (Role::Client, true) => return Err(Violation::protocol("masked frame from server")),
            _ => {}
        }
        let already = match h.opcode {
            OpCode::Continue => {
                if self.assembling.is_none() {
                    return Err(Violation::protocol("continuation frame without a message to continue"));
                }
                if self.fragments >= self.limits.max_fragments {
                    return Err(Violation { code: codes::MESSAGE_TOO_BIG, message: "too many fragments" });
                }
                self.assembly.len()
            }
            OpCode::Text | OpCode::Binary => {
                if self.assembling.is_some() {
                    return Err(Violation::protocol("new message started inside a fragmented message"));
                }
                0
            }
            // Control frame lengths are capped at 125 by the header parser.
            _ => return Ok(h.payload_len as usize),
        };
        let limit = self.limits.max_payload as u64;
        if h.payload_len > limit || already as u64 + h.payload_len > limit {
            return Err(Violation { code: codes::MESSAGE_TOO_BIG, message: "message exceeds max_payload" });
        }
        Ok(h.payload_len as usize)
    }

    fn dispatch(
        &mut self,
        h: &FrameHeader,
        payload: &[u8],
        on: &mut dyn FnMut(Incoming<'_>) -> bool,
    ) -> Result<bool, Violation> {
        const BAD_UTF8: Violation =
            Violation { code: codes::INVALID_PAYLOAD, message: "invalid UTF-8 in text message" };
        match h.opcode {
            OpCode::Text | OpCode::Binary => {
                let kind = if h.opcode == OpCode::Text { MessageKind::Text } else { MessageKind::Binary };
                if h.fin {
                    if kind == MessageKind::Text && utf8::validate(payload).is_err() {
                        return Err(BAD_UTF8);
                    }
                    return Ok(on(Incoming::Message(kind, payload)));
                }
                if kind == MessageKind::Text {
                    self.utf8.reset();
                    self.utf8.feed(payload).map_err(|_| BAD_UTF8)?;
                }
                self.assembling = Some(kind);
                self.fragments = 1;
                self.assembly.extend_from_slice(payload);
                Ok(true)
            }
            OpCode::Continue => {
                let kind = self.assembling.unwrap_or(MessageKind::Binary);
                if kind == MessageKind::Text {
                    self.utf8.feed(payload).map_err(|_| BAD_UTF8)?;
                }
                self.fragments += 1;
                self.assembly.extend_from_slice(payload);
                if !h.fin {
                    return Ok(true);
                }
                if kind == MessageKind::Text {
                    self.utf8.finish().map_err(|_| BAD_UTF8)?;
                }
                self.assembling = None;
                let go_on = on(Incoming::Message(kind, &self.assembly));
                if self.assembly.capacity() > ASSEMBLY_KEEP {
                    self.assembly = Vec::new();
                } else {
                    self.assembly.clear();
                }
                Ok(go_on)
            }
            OpCode::Ping => Ok(on(Incoming::Ping(payload))),
            OpCode::Pong => Ok(on(Incoming::Pong(payload))),
            OpCode::Close => {
                let parsed = close::parse_close_payload(payload).map_err(|e| match e {
                    close::ClosePayloadError::InvalidUtf8 => {
                        Violation { code: codes::INVALID_PAYLOAD, message: "invalid UTF-8 in close reason" }
                    }
                    close::ClosePayloadError::OneByte => Violation::protocol("close frame with a one-byte payload"),
                    close::ClosePayloadError::InvalidCode(_) => Violation::protocol("invalid close code"),
                })?;
                self.close_received = true;
                on(Incoming::Close(parsed));
                Ok(false)
            }
        }
    }
}

/// Why the write half refused a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// A close frame was already sent; nothing may follow it.
    Closed,
    /// A whole message was sent while a fragmented one is unfinished.
    FragmentInProgress,
    /// A control frame payload over 125 bytes.
    ControlTooLong,
}

/// The write half: encodes frames into an output buffer.
#[derive(Debug)]
pub struct Writer {
    role: Role,
    fragmenting: bool,
    close_sent: bool,
}

impl Writer {
    /// A writer for one end of a connection.
    pub fn new(role: Role) -> Self {
        Writer { role, fragmenting: false, close_sent: false }
    }

    /// Has a close frame been written?
    pub fn close_sent(&self) -> bool {
        self.close_sent
    }

    /// Is a fragmented message under way?
    pub fn is_fragmenting(&self) -> bool {
        self.fragmenting
    }

    /// Appends one complete message as a single frame.
    pub fn message(&mut self, out: &mut Vec<u8>, kind: MessageKind, data: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if self.fragmenting {
            return Err(SendError::FragmentInProgress);
        }
        self.frame(out, true, kind.opcode(), data);
        Ok(())
    }

    /// Appends one fragment; the first fragment of a message carries `kind`, later ones are
    /// continuation frames (their `kind` is ignored). `is_final` ends the message.
    pub fn fragment(&mut self, out: &mut Vec<u8>, kind: MessageKind, data: &[u8], is_final: bool) -> Result<(), SendError> {
        self.check_open()?;
        let opcode = if self.fragmenting { OpCode::Continue } else { kind.opcode() };
        self.frame(out, is_final, opcode, data);
        self.fragmenting = !is_final;
        Ok(())
    }

    /// Appends a ping or pong.
    pub fn control(&mut self, out: &mut Vec<u8>, opcode: OpCode, data: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if data.len() > 125 {
            return Err(SendError::ControlTooLong);
        }
        self.frame(out, true, opcode, data);
        Ok(())
    }

    /// Appends the close frame (`code` None sends an empty payload). Only the first one counts.
    pub fn close(&mut self, out: &mut Vec<u8>, code: Option<u16>, reason: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        let mut payload = [0u8; 125];
        let len = match code {
            Some(code) => {
                let reason = &reason[..reason.len().min(close::MAX_REASON_LEN)];
                payload[..2].copy_from_slice(&code.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason);
                2 + reason.len()
            }
            None => 0,
        };
        self.frame(out, true, OpCode::Close, &payload[..len]);
        self.close_sent = true;
        Ok(())
    }

    fn check_open(&self) -> Result<(), SendError> {
        if self.close_sent {
            Err(SendError::Closed)
        } else {
            Ok(())
        }
    }

    fn frame(&self, out: &mut Vec<u8>, fin: bool, opcode: OpCode, data: &[u8]) {
        match self.role {
            Role::Server => encode_unmasked(out, fin, opcode, data),
            Role::Client => {
                let key: [u8; 4] = rand::random();
                out.reserve(frame::MAX_HEADER_LEN + data.len());
                frame::encode_header(out, fin, false, opcode, Some(key), data.len());
                mask::extend_masked(out, data, key);
            }
        }
    }
}

/// Encodes a complete unmasked (server) frame; used directly to encode a broadcast once.
pub fn encode_unmasked(out: &mut Vec<u8>, fin: bool, opcode: OpCode, data: &[u8]) {
    let mut header = [0u8; frame::MAX_HEADER_LEN];
    let n = frame::encode_header_into(&mut header, fin, false, opcode, None, data.len());
    out.reserve(n + data.len());
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(data);
}

/// Encodes a whole server message frame; see [`encode_unmasked`].
pub fn encode_server_message(out: &mut Vec<u8>, kind: MessageKind, data: &[u8]) {
    encode_unmasked(out, true, kind.opcode(), data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a reader reported, owned, for assertions.
    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Msg(MessageKind, Vec<u8>),
        Ping(Vec<u8>),
        Pong(Vec<u8>),
        Close(Option<(u16, String)>),
    }

    fn collect(reader: &mut Reader, bytes: &[u8]) -> (Result<Progress, Violation>, Vec<Ev>) {
        let mut buf = bytes.to_vec();
        let mut evs = Vec::new();
        let r = reader.feed(&mut buf, &mut |ev| {
            evs.push(match ev {
                Incoming::Message(k, d) => Ev::Msg(k, d.to_vec()),
                Incoming::Ping(d) => Ev::Ping(d.to_vec()),
                Incoming::Pong(d) => Ev::Pong(d.to_vec()),
                Incoming::Close(c) => Ev::Close(c.map(|(c, r)| (c, r.to_string()))),
            });
            true
        });
        (r, evs)
    }

    fn client_frames(f: impl FnOnce(&mut Writer, &mut Vec<u8>)) -> Vec<u8> {
        let mut w = Writer::new(Role::Client);
        let mut out = Vec::new();
        f(&mut w, &mut out);
        out
    }

    fn server() -> Reader {
        Reader::new(Role::Server, Limits::default())
    }

    #[test]
    fn rfc_masked_hello_is_decoded() {
        // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
        let bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (r, evs) = collect(&mut server(), &bytes);
        assert_eq!(r.unwrap().consumed, bytes.len());
        assert_eq!(evs, vec![Ev::Msg(MessageKind::Text, b"Hello".to_vec())]);
    }

    #[test]
    fn client_writer_output_round_trips_through_server_reader() {
        let bytes = client_frames(|w, out| {
            w.message(out, MessageKind::Binary, &[1, 2, 3]).unwrap();
            w.message(out, MessageKind::Text, "héllo".as_bytes()).unwrap();
            w.control(out, OpCode::Ping, b"p").unwrap();
            w.message(out, MessageKind::Binary, &[]).unwrap();
        });
        let (r, evs) = collect(&mut server(), &bytes);
        assert_eq!(r.unwrap().consumed, bytes.len());
        assert_eq!(
            evs,
            vec![
                Ev::Msg(MessageKind::Binary, vec![1, 2, 3]),
                Ev::Msg(MessageKind::Text, "héllo".as_bytes().to_vec()),
                Ev::Ping(b"p".to_vec()),
                Ev::Msg(MessageKind::Binary, vec![]),
            ]
        );
    }

    #[test]
    fn fragmented_text_with_interleaved_ping_is_reassembled() {
        let text = "fragmented €uro text";
        let bytes = text.as_bytes();
        let out = client_frames(|w, out| {
            w.fragment(out, MessageKind::Text, &bytes[..12], false).unwrap();
            w.control(out, OpCode::Ping, b"x").unwrap();
            // Split inside the multi-byte euro sign.
            w.fragment(out, MessageKind::Text, &bytes[12..13], false).unwrap();
            w.fragment(out, MessageKind::Binary, &bytes[13..], true).unwrap();
        });
        let (r, evs) = collect(&mut server(), &out);
        assert_eq!(r.unwrap().consumed, out.len());
        assert_eq!(evs, vec![Ev::Ping(b"x".to_vec()), Ev::Msg(MessageKind::Text, bytes.to_vec())]);
    }

    #[test]
    fn partial_input_reports_the_frame_length_needed() {
        let out = client_frames(|w, out| w.message(out, MessageKind::Binary, &[7u8; 300]).unwrap());
        let (r, evs) = collect(&mut server(), &out[..100]);
        assert_eq!(r.unwrap(), Progress { consumed: 0, next_frame_len: out.len() });
        assert!(evs.is_empty());
        let (r, _) = collect(&mut server(), &out[..1]);
        assert_eq!(r.unwrap(), Progress { consumed: 0, next_frame_len: 0 });
    }

    #[test]
    fn masking_rules_depend_on_role() {
        let masked = client_frames(|w, out| w.message(out, MessageKind::Binary, b"a").unwrap());
        let mut client = Reader::new(Role::Client, Limits::default());
        assert_eq!(collect(&mut client, &masked).0.unwrap_err().code, 1002);
        let mut unmasked = Vec::new();
        encode_server_message(&mut unmasked, MessageKind::Binary, b"a");
        assert_eq!(collect(&mut server(), &unmasked).0.unwrap_err().code, 1002);
        let (r, evs) = collect(&mut Reader::new(Role::Client, Limits::default()), &unmasked);
        assert!(r.is_ok());
        assert_eq!(evs, vec![Ev::Msg(MessageKind::Binary, b"a".to_vec())]);
    }

    #[test]
    fn reserved_bits_and_opcodes_fail_with_1002() {
        for first in [0xC1u8, 0xA1, 0x91, 0x83, 0x8B] {
            let bytes = [first, 0x80, 0, 0, 0, 0];
            let err = collect(&mut server(), &bytes).0.unwrap_err();
            assert_eq!(err.code, 1002, "first byte {first:#x}");
        }
    }

    #[test]
    fn continuation_rules_fail_with_1002() {
        let stray = client_frames(|w, out| {
            w.fragment(out, MessageKind::Text, b"a", false).unwrap();
        });
        // A continuation frame with nothing to continue: build it by hand.
        let lone = [0x80u8, 0x80, 0, 0, 0, 0];
        assert_eq!(collect(&mut server(), &lone).0.unwrap_err().code, 1002);
        // A new text frame while the first message is unfinished.
        let mut two = stray.clone();
        two.extend_from_slice(&stray);
        assert_eq!(collect(&mut server(), &two).0.unwrap_err().code, 1002);
    }

    #[test]
    fn invalid_utf8_fails_with_1007_even_when_fragmented() {
        let single = client_frames(|w, out| w.message(out, MessageKind::Text, &[0xff]).unwrap());
        assert_eq!(collect(&mut server(), &single).0.unwrap_err().code, 1007);
        // Fail fast: the first fragment is already impossible UTF-8, no final fragment needed.
        let first = client_frames(|w, out| w.fragment(out, MessageKind::Text, &[b'a', 0xF4, 0x90], false).unwrap());
        assert_eq!(collect(&mut server(), &first).0.unwrap_err().code, 1007);
        // A message that ends in the middle of a code point.
        let dangling = client_frames(|w, out| {
            w.fragment(out, MessageKind::Text, b"ok", false).unwrap();
            w.fragment(out, MessageKind::Text, &[0xE2, 0x82], true).unwrap();
        });
        assert_eq!(collect(&mut server(), &dangling).0.unwrap_err().code, 1007);
    }

    #[test]
    fn max_payload_is_enforced_on_header_and_on_reassembly() {
        let limits = Limits { max_payload: 10, max_fragments: 100 };
        let big = client_frames(|w, out| w.message(out, MessageKind::Binary, &[0; 11]).unwrap());
        // Only the header is needed to refuse it.
        let err = Reader::new(Role::Server, limits).feed(&mut big[..8].to_vec(), &mut |_| true).unwrap_err();
        assert_eq!(err.code, 1009);
        let pieces = client_frames(|w, out| {
            w.fragment(out, MessageKind::Binary, &[0; 6], false).unwrap();
            w.fragment(out, MessageKind::Binary, &[0; 6], true).unwrap();
        });
        assert_eq!(collect(&mut Reader::new(Role::Server, limits), &pieces).0.unwrap_err().code, 1009);
        let exact = client_frames(|w, out| w.message(out, MessageKind::Binary, &[0; 10]).unwrap());
        assert!(collect(&mut Reader::new(Role::Server, limits), &exact).0.is_ok());
    }

    #[test]
    fn fragment_count_is_bounded() {
        let limits = Limits { max_payload: 1000, max_fragments: 3 };
        let ok = client_frames(|w, out| {
            for i in 0..3 {
                w.fragment(out, MessageKind::Binary, b"x", i == 2).unwrap();
            }
        });
        assert!(collect(&mut Reader::new(Role::Server, limits), &ok).0.is_ok());
        let too_many = client_frames(|w, out| {
            for i in 0..4 {
                w.fragment(out, MessageKind::Binary, b"x", i == 3).unwrap();
            }
        });
        assert_eq!(collect(&mut Reader::new(Role::Server, limits), &too_many).0.unwrap_err().code, 1009);
    }

    #[test]
    fn close_frames_are_validated_and_end_reading() {
        let good = client_frames(|w, out| {
            w.close(out, Some(1000), b"bye").unwrap();
        });
        let mut after = good.clone();
        after.extend(client_frames(|w, out| w.message(out, MessageKind::Binary, b"late").unwrap()));
        let mut reader = server();
        let (r, evs) = collect(&mut reader, &after);
        assert_eq!(r.unwrap().consumed, good.len());
        assert_eq!(evs, vec![Ev::Close(Some((1000, "bye".into())))]);
        assert!(reader.close_received());

        let empty = client_frames(|w, out| w.close(out, None, b"").unwrap());
        assert_eq!(collect(&mut server(), &empty).1, vec![Ev::Close(None)]);

        let bad_code = client_frames(|w, out| w.close(out, Some(1005), b"").unwrap());
        assert_eq!(collect(&mut server(), &bad_code).0.unwrap_err().code, 1002);
        let bad_reason = client_frames(|w, out| w.close(out, Some(1000), &[0xff]).unwrap());
        assert_eq!(collect(&mut server(), &bad_reason).0.unwrap_err().code, 1007);
    }

    #[test]
    fn stopping_leaves_later_frames_unconsumed() {
        let bytes = client_frames(|w, out| {
            w.message(out, MessageKind::Binary, b"1").unwrap();
            w.message(out, MessageKind::Binary, b"2").unwrap();
        });
        let mut buf = bytes.clone();
        let mut seen = 0;
        let p = server().feed(&mut buf, &mut |_| {
            seen += 1;
            false
        });
        assert_eq!(seen, 1);
        assert_eq!(p.unwrap().consumed, bytes.len() / 2);
    }

    #[test]
    fn writer_refuses_after_close_and_checks_control_length() {
        let mut w = Writer::new(Role::Server);
        let mut out = Vec::new();
        assert_eq!(w.control(&mut out, OpCode::Ping, &[0; 126]), Err(SendError::ControlTooLong));
        w.fragment(&mut out, MessageKind::Text, b"a", false).unwrap();
        assert_eq!(w.message(&mut out, MessageKind::Text, b"b"), Err(SendError::FragmentInProgress));
        w.control(&mut out, OpCode::Ping, b"").unwrap();
        w.fragment(&mut out, MessageKind::Text, b"c", true).unwrap();
        w.close(&mut out, Some(1000), b"").unwrap();
        assert!(w.close_sent());
        assert_eq!(w.message(&mut out, MessageKind::Text, b"d"), Err(SendError::Closed));
        assert_eq!(
            out,
            vec![0x01, 0x01, b'a', 0x89, 0x00, 0x80, 0x01, b'c', 0x88, 0x02, 0x03, 0xe8]
        );
    }

    #[test]
    fn long_close_reasons_are_cut_to_fit_a_control_frame() {
        let mut w = Writer::new(Role::Server);
        let mut out = Vec::new();
        w.close(&mut out, Some(4000), &[b'r'; 200]).unwrap();
        assert_eq!(out[1] as usize, 125);
    }
}
