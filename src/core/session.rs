//! The per-connection WebSocket state machine after the handshake, without I/O.
//!
//! It is split in a read half ([`Reader`]) and a write half ([`Writer`]) on purpose: a
//! message callback runs while the reader is busy (the payload it sees points into the read
//! buffer), and that callback may send on the same connection, which only touches the writer.

use super::extensions::deflate::{Agreed, DeflateConfig, Deflater, InflateError, Inflater, Side};
use super::protocol::close::{self, codes};
use super::protocol::frame::{self, FrameHeader, OpCode};
use super::protocol::mask;
use super::protocol::utf8::{self, Utf8Validator};

mod streaming;

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

impl Role {
    fn side(self) -> Side {
        match self {
            Role::Client => Side::Client,
            Role::Server => Side::Server,
        }
    }
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
    /// Streaming mode ([`Reader::stream_messages`]): the next piece of a data message, as
    /// it arrived (inflated, for a compressed message). `first` on the first part of a
    /// message, `last` on its final one; the final part may be empty. A text part may end
    /// inside a UTF-8 character that the next part completes.
    Part {
        /// The message's kind (that of its first frame).
        kind: MessageKind,
        /// The bytes of this part.
        data: &'a [u8],
        /// The first part of its message.
        first: bool,
        /// The last part of its message.
        last: bool,
    },
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
    /// Payload bytes of the incomplete frame at the front of the input that are already
    /// unmasked in place and checked (text) or inflated (compressed). The caller presents
    /// that frame again, as `feed` left it, with more bytes behind it.
    early: usize,
    close_received: bool,
    /// permessage-deflate, when negotiated.
    deflate: Option<Box<ReadDeflate>>,
    /// Streaming mode: messages are delivered in parts.
    streaming: Option<Box<streaming::Streaming>>,
}

/// The receiving half of permessage-deflate. The zlib stream is created on the first
/// compressed message: it costs tens of KiB, which peers that never compress don't pay.
#[derive(Debug)]
struct ReadDeflate {
    agreed: Agreed,
    inflater: Option<Inflater>,
    /// The message being assembled is compressed (its first frame had RSV1).
    compressed: bool,
    /// Output of single-frame compressed messages.
    inflated: Vec<u8>,
}

const BAD_UTF8: Violation = Violation { code: codes::INVALID_PAYLOAD, message: "invalid UTF-8 in text message" };

fn inflate_violation(e: InflateError) -> Violation {
    match e {
        InflateError::TooBig => {
            Violation { code: codes::MESSAGE_TOO_BIG, message: "decompressed message exceeds max_payload" }
        }
        InflateError::Corrupt(_) => {
            Violation { code: codes::INVALID_PAYLOAD, message: "invalid permessage-deflate data" }
        }
    }
}

/// Frees a buffer that grew past [`ASSEMBLY_KEEP`], otherwise empties it for reuse.
fn recycle(buf: &mut Vec<u8>) {
    if buf.capacity() > ASSEMBLY_KEEP {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
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
            early: 0,
            close_received: false,
            deflate: None,
            streaming: None,
        }
    }

    /// Accepts compressed messages (RSV1) as negotiated by permessage-deflate.
    pub fn enable_deflate(&mut self, agreed: Agreed) {
        self.deflate = Some(Box::new(ReadDeflate { agreed, inflater: None, compressed: false, inflated: Vec::new() }));
    }

    /// Has a close frame been received? Nothing after it is read.
    pub fn close_received(&self) -> bool {
        self.close_received
    }

    /// Processes as many complete frames as `buf` holds, unmasking payloads in place.
    ///
    /// `on` receives each event; returning `false` stops after that event (the caller paused
    /// or closed). Unprocessed bytes (an incomplete frame) must be presented again, as this
    /// call left them, followed by more input: the part of an incomplete text or compressed
    /// frame that has arrived is already unmasked and checked, so invalid UTF-8 fails the
    /// connection as soon as it arrives. An `Err` means the connection must be failed with
    /// the violation's code.
    pub fn feed(&mut self, buf: &mut [u8], on: &mut dyn FnMut(Incoming<'_>) -> bool) -> Result<Progress, Violation> {
        if self.streaming.is_some() {
            return self.feed_streaming(buf, on);
        }
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
                self.read_early(&header, &mut buf[pos + header_len..])?;
                return Ok(Progress { consumed: pos, next_frame_len: frame_len });
            }
            let payload = &mut buf[pos + header_len..pos + frame_len];
            let early = std::mem::take(&mut self.early);
            if let Some(key) = header.mask {
                mask::apply_mask(&mut payload[early..], key, early);
            }
            pos += frame_len;
            if !self.dispatch(&header, payload, early, on)? {
                break;
            }
        }
        Ok(Progress { consumed: pos, next_frame_len: 0 })
    }

    /// Does this data frame belong to a message whose content is checked as it arrives
    /// (text, or anything compressed)?
    fn read_early_applies(&self, h: &FrameHeader) -> bool {
        match h.opcode {
            OpCode::Text => true,
            OpCode::Binary => h.rsv1,
            OpCode::Continue => {
                self.assembling == Some(MessageKind::Text) || self.deflate.as_ref().is_some_and(|d| d.compressed)
            }
            _ => false,
        }
    }

    /// Unmasks and checks (or inflates) the bytes of an incomplete data frame that have
    /// arrived since the last call; `arrived` is the frame's payload so far.
    fn read_early(&mut self, h: &FrameHeader, arrived: &mut [u8]) -> Result<(), Violation> {
        let start = self.early;
        if arrived.len() <= start || !self.read_early_applies(h) {
            return Ok(());
        }
        self.early = arrived.len();
        let fresh = &mut arrived[start..];
        if let Some(key) = h.mask {
            mask::apply_mask(fresh, key, start);
        }
        let first = start == 0 && h.opcode != OpCode::Continue;
        if first {
            self.utf8.reset();
        }
        let compressed =
            h.rsv1 || (h.opcode == OpCode::Continue && self.deflate.as_ref().is_some_and(|d| d.compressed));
        if !compressed {
            return self.utf8.feed(fresh).map_err(|_| BAD_UTF8);
        }
        let text = h.opcode == OpCode::Text || self.assembling == Some(MessageKind::Text);
        let (max, side) = (self.limits.max_payload, self.role.side());
        let Some(d) = self.deflate.as_deref_mut() else {
            return Err(Violation::protocol("RSV1 set without a negotiated extension"));
        };
        // A single-frame message inflates into its own buffer, fragments into the assembly.
        let out = if h.opcode != OpCode::Continue && h.fin { &mut d.inflated } else { &mut self.assembly };
        if first && h.fin {
            out.clear();
        }
        let before = out.len();
        let inflater = d.inflater.get_or_insert_with(|| Inflater::new(side, &d.agreed));
        inflater.inflate(fresh, false, out, max).map_err(inflate_violation)?;
        if text {
            self.utf8.feed(&out[before..]).map_err(|_| BAD_UTF8)?;
        }
        Ok(())
    }

    /// Applies the rules that depend on role and state; returns the payload length.
    fn check_header(&self, h: &FrameHeader) -> Result<usize, Violation> {
        if h.rsv2 || h.rsv3 {
            return Err(Violation::protocol("reserved bits set without a negotiated extension"));
        }
        if h.rsv1 {
            if self.deflate.is_none() {
                return Err(Violation::protocol("RSV1 set without a negotiated extension"));
            }
            if !matches!(h.opcode, OpCode::Text | OpCode::Binary) {
                return Err(Violation::protocol("RSV1 set on a control or continuation frame"));
            }
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
                if self.streaming.is_some() {
                    // Parts are not held: neither the size nor the fragment count is bounded.
                    return Ok(h.payload_len as usize);
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
                if self.streaming.is_some() {
                    return Ok(h.payload_len as usize);
                }
                0
            }
            // Control frame lengths are capped at 125 by the header parser.
            _ => return Ok(h.payload_len as usize),
        };
        // A compressed message's size is checked while inflating; its frames only need to
        // fit on their own.
        let compressed =
            h.rsv1 || (h.opcode == OpCode::Continue && self.deflate.as_ref().is_some_and(|d| d.compressed));
        let already = if compressed { 0 } else { already };
        let limit = self.limits.max_payload as u64;
        if h.payload_len > limit || already as u64 + h.payload_len > limit {
            return Err(Violation { code: codes::MESSAGE_TOO_BIG, message: "message exceeds max_payload" });
        }
        Ok(h.payload_len as usize)
    }

    /// Handles one complete frame. The first `early` payload bytes were already checked
    /// (text) or inflated (compressed) by [`read_early`](Self::read_early).
    fn dispatch(
        &mut self,
        h: &FrameHeader,
        payload: &[u8],
        early: usize,
        on: &mut dyn FnMut(Incoming<'_>) -> bool,
    ) -> Result<bool, Violation> {
        match h.opcode {
            OpCode::Text | OpCode::Binary => {
                let kind = if h.opcode == OpCode::Text { MessageKind::Text } else { MessageKind::Binary };
                if h.rsv1 {
                    return self.compressed_start(kind, h.fin, payload, early, on);
                }
                if kind == MessageKind::Text {
                    if early == 0 && h.fin {
                        // The whole message in one piece: the fast whole-buffer check.
                        utf8::validate(payload).map_err(|_| BAD_UTF8)?;
                    } else {
                        if early == 0 {
                            self.utf8.reset();
                        }
                        self.utf8.feed(&payload[early..]).map_err(|_| BAD_UTF8)?;
                        if h.fin {
                            self.utf8.finish().map_err(|_| BAD_UTF8)?;
                        }
                    }
                }
                if h.fin {
                    return Ok(on(Incoming::Message(kind, payload)));
                }
                self.assembling = Some(kind);
                self.fragments = 1;
                self.assembly.extend_from_slice(payload);
                Ok(true)
            }
            OpCode::Continue => {
                let kind = self.assembling.unwrap_or(MessageKind::Binary);
                self.fragments += 1;
                let before = self.assembly.len();
                let checked = match self.deflate.as_deref_mut() {
                    Some(d) if d.compressed => {
                        let max = self.limits.max_payload;
                        let inflater = d.inflater.get_or_insert_with(|| Inflater::new(self.role.side(), &d.agreed));
                        inflater
                            .inflate(&payload[early..], h.fin, &mut self.assembly, max)
                            .map_err(inflate_violation)?;
                        before
                    }
                    _ => {
                        self.assembly.extend_from_slice(payload);
                        before + early
                    }
                };
                if kind == MessageKind::Text {
                    self.utf8.feed(&self.assembly[checked..]).map_err(|_| BAD_UTF8)?;
                }
                if !h.fin {
                    return Ok(true);
                }
                if kind == MessageKind::Text {
                    self.utf8.finish().map_err(|_| BAD_UTF8)?;
                }
                self.assembling = None;
                if let Some(d) = self.deflate.as_deref_mut() {
                    d.compressed = false;
                }
                let go_on = on(Incoming::Message(kind, &self.assembly));
                recycle(&mut self.assembly);
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

impl Reader {
    /// The first frame of a compressed message (RSV1 set; `check_header` ensured
    /// permessage-deflate is on). Its first `early` bytes were inflated as they arrived.
    fn compressed_start(
        &mut self,
        kind: MessageKind,
        fin: bool,
        payload: &[u8],
        early: usize,
        on: &mut dyn FnMut(Incoming<'_>) -> bool,
    ) -> Result<bool, Violation> {
        let max = self.limits.max_payload;
        let side = self.role.side();
        let Some(d) = self.deflate.as_deref_mut() else {
            return Err(Violation::protocol("RSV1 set without a negotiated extension"));
        };
        if early == 0 {
            self.utf8.reset();
        }
        let text = kind == MessageKind::Text;
        let inflater = d.inflater.get_or_insert_with(|| Inflater::new(side, &d.agreed));
        if fin {
            if early == 0 {
                d.inflated.clear();
            }
            let before = d.inflated.len();
            inflater.inflate(&payload[early..], true, &mut d.inflated, max).map_err(inflate_violation)?;
            if text {
                self.utf8.feed(&d.inflated[before..]).and_then(|_| self.utf8.finish()).map_err(|_| BAD_UTF8)?;
            }
            let go_on = on(Incoming::Message(kind, &d.inflated));
            recycle(&mut d.inflated);
            return Ok(go_on);
        }
        let before = self.assembly.len();
        inflater.inflate(&payload[early..], false, &mut self.assembly, max).map_err(inflate_violation)?;
        d.compressed = true;
        if text {
            self.utf8.feed(&self.assembly[before..]).map_err(|_| BAD_UTF8)?;
        }
        self.assembling = Some(kind);
        self.fragments = 1;
        Ok(true)
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
    /// The compressor failed; the message was not sent and the connection must close.
    Compression,
}

/// The write half: encodes frames into an output buffer.
#[derive(Debug)]
pub struct Writer {
    role: Role,
    fragmenting: bool,
    close_sent: bool,
    /// permessage-deflate, when negotiated.
    deflate: Option<Box<WriteDeflate>>,
}

/// The sending half of permessage-deflate; the zlib stream is created on first use.
#[derive(Debug)]
struct WriteDeflate {
    agreed: Agreed,
    config: DeflateConfig,
    deflater: Option<Deflater>,
    /// The fragmented message under way is compressed.
    compressing: bool,
    /// Compressed payload of the frame being written.
    scratch: Vec<u8>,
}

impl WriteDeflate {
    /// Compresses `data` into `scratch`.
    fn compress(&mut self, side: Side, data: &[u8], fin: bool) -> Result<(), SendError> {
        let (agreed, config) = (self.agreed, self.config);
        let z = self.deflater.get_or_insert_with(|| Deflater::new(side, &agreed, &config));
        self.scratch.clear();
        z.compress_fragment(data, fin, &mut self.scratch).map_err(|_| SendError::Compression)
    }
}

impl Writer {
    /// A writer for one end of a connection.
    pub fn new(role: Role) -> Self {
        Writer { role, fragmenting: false, close_sent: false, deflate: None }
    }

    /// Compresses messages from now on, as negotiated by permessage-deflate.
    pub fn enable_deflate(&mut self, agreed: Agreed, config: DeflateConfig) {
        self.deflate =
            Some(Box::new(WriteDeflate { agreed, config, deflater: None, compressing: false, scratch: Vec::new() }));
    }

    /// Would a message of `len` bytes be compressed? (Then it can't share a broadcast frame.)
    pub fn compresses(&self, len: usize) -> bool {
        self.deflate.as_ref().is_some_and(|d| len >= d.config.threshold)
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
        let side = self.role.side();
        match self.deflate.as_deref_mut() {
            Some(d) if data.len() >= d.config.threshold => {
                d.compress(side, data, true)?;
                put_frame(self.role, out, true, true, kind.opcode(), &d.scratch);
                recycle(&mut d.scratch);
            }
            _ => put_frame(self.role, out, true, false, kind.opcode(), data),
        }
        Ok(())
    }

    /// For a whole message that goes out uncompressed and unmasked (server side): checks it
    /// may be sent now and writes its frame header into `dst`, returning the header length;
    /// the caller then sends the header and `len` payload bytes as they are. `None` when the
    /// payload would need transforming (a client masks, a compressing writer compresses).
    pub fn direct_header(
        &mut self,
        kind: MessageKind,
        len: usize,
        dst: &mut [u8; frame::MAX_HEADER_LEN],
    ) -> Option<Result<usize, SendError>> {
        if self.role == Role::Client || self.compresses(len) {
            return None;
        }
        if let Err(e) = self.check_open() {
            return Some(Err(e));
        }
        if self.fragmenting {
            return Some(Err(SendError::FragmentInProgress));
        }
        Some(Ok(frame::encode_header_into(dst, true, false, kind.opcode(), None, len)))
    }

    /// Appends one fragment; the first fragment of a message carries `kind`, later ones are
    /// continuation frames (their `kind` is ignored). `is_final` ends the message.
    pub fn fragment(
        &mut self,
        out: &mut Vec<u8>,
        kind: MessageKind,
        data: &[u8],
        is_final: bool,
    ) -> Result<(), SendError> {
        self.check_open()?;
        let first = !self.fragmenting;
        let opcode = if first { kind.opcode() } else { OpCode::Continue };
        let side = self.role.side();
        match self.deflate.as_deref_mut() {
            Some(d) if (first && data.len() >= d.config.threshold) || (!first && d.compressing) => {
                d.compress(side, data, is_final)?;
                d.compressing = !is_final;
                // RSV1 marks the message as compressed on its first frame only.
                put_frame(self.role, out, is_final, first, opcode, &d.scratch);
                recycle(&mut d.scratch);
            }
            _ => put_frame(self.role, out, is_final, false, opcode, data),
        }
        self.fragmenting = !is_final;
        Ok(())
    }

    /// Appends a ping or pong.
    pub fn control(&mut self, out: &mut Vec<u8>, opcode: OpCode, data: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        if data.len() > 125 {
            return Err(SendError::ControlTooLong);
        }
        put_frame(self.role, out, true, false, opcode, data);
        Ok(())
    }

    /// Appends the close frame (`code` None sends an empty payload). Only the first one counts.
    /// A reason longer than 123 bytes is cut, never inside a UTF-8 character.
    pub fn close(&mut self, out: &mut Vec<u8>, code: Option<u16>, reason: &[u8]) -> Result<(), SendError> {
        self.check_open()?;
        let mut payload = [0u8; 125];
        let len = match code {
            Some(code) => {
                let reason = close_reason_on_wire(reason);
                payload[..2].copy_from_slice(&code.to_be_bytes());
                payload[2..2 + reason.len()].copy_from_slice(reason);
                2 + reason.len()
            }
            None => 0,
        };
        put_frame(self.role, out, true, false, OpCode::Close, &payload[..len]);
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
}

/// The part of `reason` that [`Writer::close`] puts in the frame: at most 123 bytes, cut
/// at a character boundary.
pub fn close_reason_on_wire(reason: &[u8]) -> &[u8] {
    &reason[..utf8_cut(reason, close::MAX_REASON_LEN)]
}

/// The length of the longest prefix of `text` that fits `max` bytes without splitting a
/// UTF-8 character (a cut character would make the peer fail the connection with 1007).
fn utf8_cut(text: &[u8], max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    // Back off over at most three continuation bytes to the start of the cut character.
    let mut cut = max;
    while cut > max.saturating_sub(3) && text[cut] & 0xC0 == 0x80 {
        cut -= 1;
    }
    if text[cut] & 0xC0 == 0x80 {
        max
    } else {
        cut
    }
}

/// Appends one frame as `role` sends it: masked with a fresh key from a client.
fn put_frame(role: Role, out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: OpCode, data: &[u8]) {
    match role {
        Role::Server => encode_unmasked_rsv(out, fin, rsv1, opcode, data),
        Role::Client => {
            let key: [u8; 4] = rand::random();
            out.reserve(frame::MAX_HEADER_LEN + data.len());
            frame::encode_header(out, fin, rsv1, opcode, Some(key), data.len());
            mask::extend_masked(out, data, key);
        }
    }
}

/// Encodes a complete unmasked (server) frame; used directly to encode a broadcast once.
pub fn encode_unmasked(out: &mut Vec<u8>, fin: bool, opcode: OpCode, data: &[u8]) {
    encode_unmasked_rsv(out, fin, false, opcode, data);
}

fn encode_unmasked_rsv(out: &mut Vec<u8>, fin: bool, rsv1: bool, opcode: OpCode, data: &[u8]) {
    let mut header = [0u8; frame::MAX_HEADER_LEN];
    let n = frame::encode_header_into(&mut header, fin, rsv1, opcode, None, data.len());
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
    #[derive(Debug, Clone, PartialEq, Eq)]
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
                Incoming::Part { .. } => unreachable!("not streaming"),
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
    fn long_close_reason_is_cut_on_a_character_boundary() {
        // 122 ASCII bytes then "é" (2 bytes): a cut at 123 bytes would split the "é".
        let mut reason = "r".repeat(122);
        reason.push_str("éé");
        for role in [Role::Client, Role::Server] {
            let mut w = Writer::new(role);
            let mut out = Vec::new();
            w.close(&mut out, Some(1000), reason.as_bytes()).unwrap();
            let mut reader =
                Reader::new(if role == Role::Client { Role::Server } else { Role::Client }, Limits::default());
            let (r, evs) = collect(&mut reader, &out);
            assert_eq!(r.unwrap().consumed, out.len());
            assert_eq!(evs, vec![Ev::Close(Some((1000, "r".repeat(122))))]);
        }
        // Four-byte characters: 120 + 4 = 124 bytes, cut back to 120.
        let mut reason = "x".repeat(120);
        reason.push('😀');
        let out = client_frames(|w, out| w.close(out, Some(4000), reason.as_bytes()).unwrap());
        assert_eq!(collect(&mut server(), &out).1, vec![Ev::Close(Some((4000, "x".repeat(120))))]);
        // A reason that fits is sent whole, multi-byte characters included.
        let fits = format!("{}é", "y".repeat(121));
        let out = client_frames(|w, out| w.close(out, Some(1000), fits.as_bytes()).unwrap());
        assert_eq!(collect(&mut server(), &out).1, vec![Ev::Close(Some((1000, fits.clone())))]);
        assert_eq!(utf8_cut(&[0x80; 200], 123), 123);
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
        assert_eq!(out, vec![0x01, 0x01, b'a', 0x89, 0x00, 0x80, 0x01, b'c', 0x88, 0x02, 0x03, 0xe8]);
    }

    #[test]
    fn long_close_reasons_are_cut_to_fit_a_control_frame() {
        let mut w = Writer::new(Role::Server);
        let mut out = Vec::new();
        w.close(&mut out, Some(4000), &[b'r'; 200]).unwrap();
        assert_eq!(out[1] as usize, 125);
    }

    // ---- permessage-deflate ------------------------------------------------------------

    fn deflate_pair(agreed: Agreed, cfg: DeflateConfig) -> (Writer, Reader) {
        let mut w = Writer::new(Role::Client);
        w.enable_deflate(agreed, cfg);
        let mut r = Reader::new(Role::Server, Limits::default());
        r.enable_deflate(agreed);
        (w, r)
    }

    fn first_byte_flags(frame: &[u8]) -> (bool, bool) {
        (frame[0] & 0x80 != 0, frame[0] & 0x40 != 0)
    }

    #[test]
    fn compressed_messages_round_trip_with_context_takeover() {
        let (mut w, mut r) = deflate_pair(Agreed::default(), DeflateConfig::default());
        let json = br#"{"type":"update","id":12345,"values":[1,2,3,4,5,6,7,8],"ok":true,"name":"sensor"}"#;
        let mut first = Vec::new();
        w.message(&mut first, MessageKind::Text, json).unwrap();
        assert!(first_byte_flags(&first).1, "RSV1 marks a compressed message");
        assert!(first.len() < json.len() + 6);
        let mut second = Vec::new();
        w.message(&mut second, MessageKind::Text, json).unwrap();
        // With context takeover the repeat is a back-reference: far smaller.
        assert!(second.len() < first.len() / 2, "{} vs {}", second.len(), first.len());
        let mut all = first.clone();
        all.extend_from_slice(&second);
        let (res, evs) = collect(&mut r, &all);
        assert_eq!(res.unwrap().consumed, all.len());
        assert_eq!(evs, vec![Ev::Msg(MessageKind::Text, json.to_vec()), Ev::Msg(MessageKind::Text, json.to_vec())]);
    }

    #[test]
    fn messages_under_the_threshold_go_uncompressed() {
        let cfg = DeflateConfig { threshold: 100, ..DeflateConfig::default() };
        let (mut w, mut r) = deflate_pair(Agreed::default(), cfg);
        assert!(!w.compresses(99) && w.compresses(100));
        let mut out = Vec::new();
        w.message(&mut out, MessageKind::Binary, &[5; 99]).unwrap();
        assert!(!first_byte_flags(&out).1);
        let (res, evs) = collect(&mut r, &out);
        assert!(res.is_ok());
        assert_eq!(evs, vec![Ev::Msg(MessageKind::Binary, vec![5; 99])]);
    }

    #[test]
    fn compressed_fragments_carry_rsv1_on_the_first_frame_only_and_allow_control_frames_between() {
        let (mut w, mut r) = deflate_pair(Agreed::default(), DeflateConfig::default());
        let text = "ünïcödé text split across compressed fragments, ".repeat(20);
        let bytes = text.as_bytes();
        let mut frames = Vec::new();
        let mut starts = Vec::new();
        for (i, chunk) in bytes.chunks(97).enumerate() {
            starts.push(frames.len());
            let last = (i + 1) * 97 >= bytes.len();
            w.fragment(&mut frames, MessageKind::Text, chunk, last).unwrap();
            if i == 1 {
                w.control(&mut frames, OpCode::Ping, b"mid").unwrap();
            }
        }
        assert!(first_byte_flags(&frames[starts[0]..]).1);
        for &at in &starts[1..] {
            assert!(!first_byte_flags(&frames[at..]).1, "continuation frames have RSV1 clear");
        }
        let (res, evs) = collect(&mut r, &frames);
        assert_eq!(res.unwrap().consumed, frames.len());
        assert_eq!(evs, vec![Ev::Ping(b"mid".to_vec()), Ev::Msg(MessageKind::Text, bytes.to_vec())]);
        // The next message after a compressed fragmented one still decodes.
        let mut more = Vec::new();
        w.message(&mut more, MessageKind::Binary, &[9; 300]).unwrap();
        assert_eq!(collect(&mut r, &more).1, vec![Ev::Msg(MessageKind::Binary, vec![9; 300])]);
    }

    #[test]
    fn no_context_takeover_and_small_windows_round_trip() {
        for (bits, nct) in [(8u8, true), (9, false), (12, true), (15, false)] {
            let agreed = Agreed {
                server_no_context_takeover: nct,
                client_no_context_takeover: nct,
                server_max_window_bits: bits,
                client_max_window_bits: bits,
            };
            let (mut w, mut r) = deflate_pair(agreed, DeflateConfig::default());
            let payloads: Vec<Vec<u8>> =
                (0..5).map(|i| format!("message {i}: {}", "abcdefghij".repeat(50 + i)).into_bytes()).collect();
            let mut out = Vec::new();
            for p in &payloads {
                w.message(&mut out, MessageKind::Binary, p).unwrap();
            }
            let (res, evs) = collect(&mut r, &out);
            assert!(res.is_ok(), "bits {bits} nct {nct}");
            let want: Vec<Ev> = payloads.iter().map(|p| Ev::Msg(MessageKind::Binary, p.clone())).collect();
            assert_eq!(evs, want, "bits {bits} nct {nct}");
        }
    }

    #[test]
    fn rsv1_is_a_protocol_error_on_control_frames_continuations_and_without_the_extension() {
        // Without the extension.
        let (mut w, _) = deflate_pair(Agreed::default(), DeflateConfig::default());
        let mut compressed = Vec::new();
        w.message(&mut compressed, MessageKind::Text, &[b'a'; 200]).unwrap();
        let err = collect(&mut server(), &compressed).0.unwrap_err();
        assert_eq!(err.code, 1002);
        // On a ping, with the extension.
        let (_, mut r) = deflate_pair(Agreed::default(), DeflateConfig::default());
        let ping = [0xC9u8, 0x80, 0, 0, 0, 0];
        assert_eq!(collect(&mut r, &ping).0.unwrap_err().code, 1002);
        // On a continuation frame.
        let (_, mut r) = deflate_pair(Agreed::default(), DeflateConfig::default());
        let mut frames = vec![0x01u8, 0x81, 0, 0, 0, 0, b'a'];
        frames.extend_from_slice(&[0xC0, 0x80, 0, 0, 0, 0]);
        assert_eq!(collect(&mut r, &frames).0.unwrap_err().code, 1002);
        // RSV2 and RSV3 stay errors with the extension.
        let (_, mut r) = deflate_pair(Agreed::default(), DeflateConfig::default());
        assert_eq!(collect(&mut r, &[0xA1, 0x80, 0, 0, 0, 0]).0.unwrap_err().code, 1002);
    }

    #[test]
    fn decompression_bombs_fail_with_1009_without_allocating_the_claimed_size() {
        let limits = Limits { max_payload: 1 << 20, max_fragments: 1000 };
        let agreed = Agreed::default();
        // 64 MiB of zeros compresses to about 64 KiB.
        let mut w = Writer::new(Role::Client);
        w.enable_deflate(agreed, DeflateConfig::default());
        let mut bomb = Vec::new();
        w.message(&mut bomb, MessageKind::Binary, &vec![0u8; 64 << 20]).unwrap();
        assert!(bomb.len() < 1 << 20, "the bomb fits under max_payload on the wire");
        let mut r = Reader::new(Role::Server, limits);
        r.enable_deflate(agreed);
        let err = collect(&mut r, &bomb).0.unwrap_err();
        assert_eq!(err.code, 1009);
        assert!(r.deflate.as_ref().unwrap().inflated.capacity() < 4 << 20);

        // The same as a fragmented message.
        let mut w = Writer::new(Role::Client);
        w.enable_deflate(agreed, DeflateConfig::default());
        let mut frames = Vec::new();
        let zeros = vec![0u8; 1 << 20];
        for i in 0..8 {
            w.fragment(&mut frames, MessageKind::Binary, &zeros, i == 7).unwrap();
        }
        let mut r = Reader::new(Role::Server, limits);
        r.enable_deflate(agreed);
        assert_eq!(collect(&mut r, &frames).0.unwrap_err().code, 1009);
        assert!(r.assembly.capacity() < 4 << 20);
    }

    #[test]
    fn corrupt_data_and_bad_utf8_inside_compressed_messages_fail_with_1007() {
        let (_, mut r) = deflate_pair(Agreed::default(), DeflateConfig::default());
        // Block type 3 is invalid in DEFLATE.
        let mut bad = Vec::new();
        frame::encode_header(&mut bad, true, true, OpCode::Binary, Some([0; 4]), 2);
        bad.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(collect(&mut r, &bad).0.unwrap_err().code, 1007);

        let (mut w, mut r) =
            deflate_pair(Agreed::default(), DeflateConfig { threshold: 0, ..DeflateConfig::default() });
        let mut out = Vec::new();
        // A text frame whose decompressed payload is not UTF-8.
        let mut text = Vec::new();
        w.message(&mut out, MessageKind::Binary, &[b'x', 0xff, 0xfe]).unwrap();
        text.push(0xC1);
        text.extend_from_slice(&out[1..]);
        assert_eq!(collect(&mut r, &text).0.unwrap_err().code, 1007);
    }

    #[test]
    fn server_compresses_unmasked_and_client_reads_it() {
        let mut w = Writer::new(Role::Server);
        w.enable_deflate(Agreed::default(), DeflateConfig::default());
        let mut r = Reader::new(Role::Client, Limits::default());
        r.enable_deflate(Agreed::default());
        let mut out = Vec::new();
        w.message(&mut out, MessageKind::Text, "server says hello ".repeat(10).as_bytes()).unwrap();
        assert_eq!(out[0], 0xC1);
        assert_eq!(out[1] & 0x80, 0, "server frames are unmasked");
        let (res, evs) = collect(&mut r, &out);
        assert!(res.is_ok());
        assert_eq!(evs, vec![Ev::Msg(MessageKind::Text, "server says hello ".repeat(10).into_bytes())]);
    }

    // ---- text checked as it arrives ----------------------------------------------------

    /// What happened when a byte stream was fed in pieces the way the reactor feeds it.
    struct Fed {
        events: Vec<Ev>,
        /// The violation and the index of the piece whose arrival caused it.
        failed: Option<(Violation, usize)>,
    }

    /// Feeds `bytes` cut at `cuts`, keeping unconsumed bytes (as `feed` left them) at the
    /// front of the buffer and appending each new piece behind them.
    fn feed_pieces(reader: &mut Reader, bytes: &[u8], cuts: &[usize]) -> Fed {
        let mut fed = Fed { events: Vec::new(), failed: None };
        let mut pending = Vec::new();
        let mut bounds = cuts.to_vec();
        bounds.push(bytes.len());
        let mut from = 0;
        for (i, &to) in bounds.iter().enumerate() {
            pending.extend_from_slice(&bytes[from..to]);
            from = to;
            let events = &mut fed.events;
            let result = reader.feed(&mut pending, &mut |ev| {
                events.push(match ev {
                    Incoming::Message(k, d) => Ev::Msg(k, d.to_vec()),
                    Incoming::Ping(d) => Ev::Ping(d.to_vec()),
                    Incoming::Pong(d) => Ev::Pong(d.to_vec()),
                    Incoming::Close(c) => Ev::Close(c.map(|(c, r)| (c, r.to_string()))),
                    Incoming::Part { .. } => unreachable!("not streaming"),
                });
                true
            });
            match result {
                Ok(p) => drop(pending.drain(..p.consumed)),
                Err(v) => {
                    fed.failed = Some((v, i));
                    return fed;
                }
            }
        }
        assert!(pending.is_empty(), "{} bytes left unread", pending.len());
        fed
    }

    fn one_byte_cuts(len: usize) -> Vec<usize> {
        (1..len).collect()
    }

    /// A reader of `role` and the frames a writer of the other role makes with `f`.
    fn frames_for(role: Role, f: impl FnOnce(&mut Writer, &mut Vec<u8>)) -> (Reader, Vec<u8>) {
        let mut w = Writer::new(if role == Role::Server { Role::Client } else { Role::Server });
        let mut out = Vec::new();
        f(&mut w, &mut out);
        (Reader::new(role, Limits::default()), out)
    }

    /// Sequences no valid UTF-8 text can contain, with the index of the byte that makes
    /// them impossible (nothing after it is needed to tell).
    const IMPOSSIBLE: &[(&str, &[u8], usize)] = &[
        ("above U+10FFFF", &[0xF4, 0x90, 0x80, 0x80], 1),
        ("lead byte F5", &[0xF5, 0x80, 0x80, 0x80], 0),
        ("overlong two-byte", &[0xC0, 0xAF], 0),
        ("overlong three-byte", &[0xE0, 0x80, 0xAF], 1),
        ("overlong four-byte", &[0xF0, 0x80, 0x80, 0xAF], 1),
        ("surrogate", &[0xED, 0xA0, 0x80], 1),
        ("stray continuation", &[0x80], 0),
        ("missing continuation", &[0xE2, 0x41], 1),
    ];

    #[test]
    fn valid_text_fed_one_byte_at_a_time_is_delivered_whole_in_both_roles() {
        let text = "a€😀ü\u{10FFFF}z".repeat(3);
        for role in [Role::Server, Role::Client] {
            let (mut reader, bytes) = frames_for(role, |w, out| {
                w.message(out, MessageKind::Text, text.as_bytes()).unwrap();
                // The same text in three fragments cut inside code points.
                let b = text.as_bytes();
                w.fragment(out, MessageKind::Text, &b[..2], false).unwrap();
                w.fragment(out, MessageKind::Text, &b[2..7], false).unwrap();
                w.fragment(out, MessageKind::Text, &b[7..], true).unwrap();
            });
            let fed = feed_pieces(&mut reader, &bytes, &one_byte_cuts(bytes.len()));
            assert!(fed.failed.is_none(), "{role:?}: {:?}", fed.failed);
            let want = Ev::Msg(MessageKind::Text, text.clone().into_bytes());
            assert_eq!(fed.events, vec![want.clone(), want], "{role:?}");
        }
    }

    #[test]
    fn every_cut_inside_a_code_point_is_accepted() {
        let text = "€😀\u{10FFFF}".as_bytes();
        for role in [Role::Server, Role::Client] {
            let (_, bytes) = frames_for(role, |w, out| w.message(out, MessageKind::Text, text).unwrap());
            let header = bytes.len() - text.len();
            for a in header..bytes.len() {
                for b in a..bytes.len() {
                    let mut reader = Reader::new(role, Limits::default());
                    let fed = feed_pieces(&mut reader, &bytes, &[a, b]);
                    assert!(fed.failed.is_none(), "{role:?} cut at {a},{b}");
                    assert_eq!(fed.events, vec![Ev::Msg(MessageKind::Text, text.to_vec())]);
                }
            }
        }
    }

    #[test]
    fn impossible_utf8_fails_with_1007_when_it_arrives_not_when_the_frame_ends() {
        for role in [Role::Server, Role::Client] {
            for &(what, bad, decisive) in IMPOSSIBLE {
                let mut payload = b"hello ".to_vec();
                payload.extend_from_slice(bad);
                let bad_end = payload.len();
                payload.extend_from_slice(&[b'x'; 300]);
                let (mut reader, bytes) =
                    frames_for(role, |w, out| w.message(out, MessageKind::Text, &payload).unwrap());
                let header = bytes.len() - payload.len();
                // Header and the valid start, then the bad bytes, then the rest later.
                let cuts = [header + 6, header + bad_end, header + bad_end + 100];
                let fed = feed_pieces(&mut reader, &bytes, &cuts);
                let (v, piece) = fed.failed.unwrap_or_else(|| panic!("{role:?} {what}: accepted"));
                assert_eq!((v.code, piece), (1007, 1), "{role:?} {what}");
                assert!(fed.events.is_empty());

                // One byte at a time: the failure comes with the byte that makes it impossible.
                let mut reader = Reader::new(role, Limits::default());
                let fed = feed_pieces(&mut reader, &bytes, &one_byte_cuts(bytes.len()));
                let (v, piece) = fed.failed.unwrap_or_else(|| panic!("{role:?} {what}: accepted"));
                assert_eq!((v.code, piece), (1007, header + 6 + decisive), "{role:?} {what} byte-wise");
            }
        }
    }

    #[test]
    fn impossible_utf8_in_a_continuation_frame_fails_before_that_frame_ends() {
        for role in [Role::Server, Role::Client] {
            for &(what, bad, _) in IMPOSSIBLE {
                let mut second = bad.to_vec();
                second.extend_from_slice(&[b'y'; 200]);
                let (mut reader, bytes) = frames_for(role, |w, out| {
                    w.fragment(out, MessageKind::Text, b"first part ", false).unwrap();
                    w.control(out, OpCode::Ping, b"p").unwrap();
                    w.fragment(out, MessageKind::Text, &second, true).unwrap();
                });
                let second_payload = bytes.len() - second.len();
                let fed = feed_pieces(&mut reader, &bytes, &[second_payload + bad.len(), second_payload + 50]);
                let (v, piece) = fed.failed.unwrap_or_else(|| panic!("{role:?} {what}: accepted"));
                assert_eq!((v.code, piece), (1007, 0), "{role:?} {what}");
                assert_eq!(fed.events, vec![Ev::Ping(b"p".to_vec())]);
            }
        }
    }

    #[test]
    fn a_code_point_split_across_fragments_is_checked_as_its_bytes_arrive() {
        for role in [Role::Server, Role::Client] {
            // "€" = E2 82 AC, its first two bytes end the first fragment.
            let (mut reader, bytes) = frames_for(role, |w, out| {
                w.fragment(out, MessageKind::Text, &[b'a', 0xE2, 0x82], false).unwrap();
                w.fragment(out, MessageKind::Text, &[0xAC, b'b'], true).unwrap();
            });
            let fed = feed_pieces(&mut reader, &bytes, &one_byte_cuts(bytes.len()));
            assert!(fed.failed.is_none());
            assert_eq!(fed.events, vec![Ev::Msg(MessageKind::Text, "a€b".into())]);

            // The continuation starts with a byte that cannot finish it: failed on that byte.
            let mut rest = vec![0x41];
            rest.extend_from_slice(&[b'z'; 100]);
            let (mut reader, bytes) = frames_for(role, |w, out| {
                w.fragment(out, MessageKind::Text, &[b'a', 0xE2, 0x82], false).unwrap();
                w.fragment(out, MessageKind::Text, &rest, true).unwrap();
            });
            let at = bytes.len() - rest.len() + 1;
            let fed = feed_pieces(&mut reader, &bytes, &[at, at + 10]);
            assert_eq!(fed.failed.map(|(v, piece)| (v.code, piece)), Some((1007, 0)), "{role:?}");
        }
    }

    #[test]
    fn text_cut_short_at_the_end_of_its_last_frame_fails_with_1007() {
        for role in [Role::Server, Role::Client] {
            let (mut reader, bytes) =
                frames_for(role, |w, out| w.message(out, MessageKind::Text, &[b'o', b'k', 0xF0, 0x9F]).unwrap());
            let fed = feed_pieces(&mut reader, &bytes, &one_byte_cuts(bytes.len()));
            assert_eq!(fed.failed.map(|(v, piece)| (v.code, piece)), Some((1007, bytes.len() - 1)), "{role:?}");
        }
    }

    #[test]
    fn binary_frames_fed_in_pieces_are_left_alone_until_complete() {
        let data: Vec<u8> = (0..=255).collect();
        let (mut reader, bytes) =
            frames_for(Role::Server, |w, out| w.message(out, MessageKind::Binary, &data).unwrap());
        let fed = feed_pieces(&mut reader, &bytes, &one_byte_cuts(bytes.len()));
        assert!(fed.failed.is_none());
        assert_eq!(fed.events, vec![Ev::Msg(MessageKind::Binary, data)]);
    }

    /// Bytes that compress poorly, so inflating half of their compressed form yields
    /// about half of them.
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x2545_F491u32;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b'a' + (x % 26) as u8
            })
            .collect()
    }

    #[test]
    fn compressed_text_is_checked_as_it_inflates() {
        for role in [Role::Server, Role::Client] {
            let writer_role = if role == Role::Server { Role::Client } else { Role::Server };
            let mut plain = b"start ".to_vec();
            plain.extend_from_slice(&[0xF4, 0x90, 0x80, 0x80]);
            plain.extend_from_slice(&noise(4000));
            // Compressed as binary (the writer refuses nothing), sent with the text opcode.
            let mut w = Writer::new(writer_role);
            w.enable_deflate(Agreed::default(), DeflateConfig { threshold: 0, ..DeflateConfig::default() });
            let mut bytes = Vec::new();
            w.message(&mut bytes, MessageKind::Binary, &plain).unwrap();
            bytes[0] = (bytes[0] & 0xF0) | OpCode::Text.as_u8();
            let mut reader = Reader::new(role, Limits::default());
            reader.enable_deflate(Agreed::default());
            let half = bytes.len() / 2;
            let fed = feed_pieces(&mut reader, &bytes, &[half]);
            assert_eq!(fed.failed.map(|(v, piece)| (v.code, piece)), Some((1007, 0)), "{role:?}");

            // Valid compressed text, single frame and fragmented, fed a few bytes at a time.
            let text = format!("ü€😀 {}", String::from_utf8(noise(3000)).unwrap());
            let mut w = Writer::new(writer_role);
            w.enable_deflate(Agreed::default(), DeflateConfig { threshold: 0, ..DeflateConfig::default() });
            let mut bytes = Vec::new();
            w.message(&mut bytes, MessageKind::Text, text.as_bytes()).unwrap();
            let b = text.as_bytes();
            w.fragment(&mut bytes, MessageKind::Text, &b[..1], false).unwrap();
            w.fragment(&mut bytes, MessageKind::Text, &b[1..1000], false).unwrap();
            w.fragment(&mut bytes, MessageKind::Text, &b[1000..], true).unwrap();
            let mut reader = Reader::new(role, Limits::default());
            reader.enable_deflate(Agreed::default());
            let cuts: Vec<usize> = (1..bytes.len()).step_by(7).collect();
            let fed = feed_pieces(&mut reader, &bytes, &cuts);
            assert!(fed.failed.is_none(), "{role:?}: {:?}", fed.failed);
            let want = Ev::Msg(MessageKind::Text, text.clone().into_bytes());
            assert_eq!(fed.events, vec![want.clone(), want], "{role:?}");
        }
    }

    #[test]
    fn impossible_utf8_in_a_compressed_continuation_fails_before_it_ends() {
        let mut second = vec![0xED, 0xA0, 0x80];
        second.extend_from_slice(&noise(4000));
        let mut w = Writer::new(Role::Client);
        w.enable_deflate(Agreed::default(), DeflateConfig { threshold: 0, ..DeflateConfig::default() });
        let mut bytes = Vec::new();
        w.fragment(&mut bytes, MessageKind::Text, b"fine so far", false).unwrap();
        let second_at = bytes.len();
        w.fragment(&mut bytes, MessageKind::Binary, &second, true).unwrap();
        let mut reader = server();
        reader.enable_deflate(Agreed::default());
        let half = second_at + (bytes.len() - second_at) / 2;
        let fed = feed_pieces(&mut reader, &bytes, &[half]);
        assert_eq!(fed.failed.map(|(v, piece)| (v.code, piece)), Some((1007, 0)));
    }
}
