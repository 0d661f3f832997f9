//! Streaming mode of the [`Reader`]: data frames become [`Incoming::Part`] events as their
//! bytes arrive, so a message is never held whole, whatever its size.
//!
//! Every piece of a data frame's payload in the input is unmasked in place and handed out
//! at once, without waiting for the rest of the frame or of the message; only a frame
//! header or a control frame cut by the end of the input is left for the caller to present
//! again. A compressed message is inflated into a fixed buffer of [`INFLATE_PART`] bytes
//! and handed out buffer by buffer. Text is validated across parts: invalid UTF-8 fails
//! with 1007 and the part holding it is not delivered. `max_payload` and the fragment
//! limit do not apply: the application sees every byte as it comes and enforces its own
//! bound by closing.

use super::*;
use crate::core::extensions::deflate::codec::TRAILER;

/// Inflated output is handed out in parts of at most this many bytes.
pub(crate) const INFLATE_PART: usize = 32 * 1024;

/// The streaming state of a reader.
#[derive(Debug, Default)]
pub(super) struct Streaming {
    /// The data frame whose payload is being read.
    frame: Option<DataFrame>,
    /// A part of the current message has been delivered.
    started: bool,
    /// Bytes at the front of the next input that belong to `frame` and are already
    /// unmasked (input left unconsumed when the caller stopped in the middle of a piece).
    ahead: usize,
    /// Bytes of the deflate trailer still to feed after the last frame's payload.
    trailer_left: usize,
    /// The last inflate step filled `out`: more output may be waiting in the inflater.
    out_pending: bool,
    /// Inflate output (allocated on the first compressed message).
    out: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct DataFrame {
    fin: bool,
    mask: Option<[u8; 4]>,
    len: u64,
    done: u64,
}

impl Reader {
    /// Delivers messages as [`Incoming::Part`]s from now on (call before any input);
    /// `Incoming::Message` is then never produced.
    pub fn stream_messages(&mut self) {
        self.streaming = Some(Box::default());
    }

    /// Is this reader in streaming mode?
    pub fn is_streaming(&self) -> bool {
        self.streaming.is_some()
    }

    /// Streaming mode, in the middle of a data frame's payload: the next input continues
    /// it and does not start with a frame header.
    pub fn mid_frame(&self) -> bool {
        self.streaming.as_ref().is_some_and(|s| s.frame.is_some())
    }

    /// Streaming mode: a frame's payload is all read but its inflated output is not all
    /// delivered (the caller stopped); `feed` with no new input delivers the rest.
    pub fn has_pending_parts(&self) -> bool {
        self.streaming.as_ref().is_some_and(|s| s.frame.is_some_and(|f| f.done == f.len))
    }

    pub(super) fn feed_streaming(
        &mut self,
        buf: &mut [u8],
        on: &mut dyn FnMut(Incoming<'_>) -> bool,
    ) -> Result<Progress, Violation> {
        let mut pos = 0;
        while !self.close_received {
            if self.mid_frame() {
                let (used, go_on) = self.stream_payload(&mut buf[pos..], on)?;
                pos += used;
                if !go_on || self.mid_frame() {
                    break;
                }
                continue;
            }
            let Some((header, header_len)) =
                frame::parse_header(&buf[pos..]).map_err(|e| Violation::protocol(e.message()))?
            else {
                break;
            };
            self.check_header(&header)?;
            if header.opcode.is_control() {
                // At most 125 bytes (the header parser checks): handled whole.
                let frame_len = header_len + header.payload_len as usize;
                if buf.len() - pos < frame_len {
                    return Ok(Progress { consumed: pos, next_frame_len: frame_len });
                }
                let payload = &mut buf[pos + header_len..pos + frame_len];
                if let Some(key) = header.mask {
                    mask::apply_mask(payload, key, 0);
                }
                pos += frame_len;
                if !self.dispatch(&header, payload, 0, on)? {
                    break;
                }
                continue;
            }
            self.start_data_frame(&header);
            pos += header_len;
        }
        Ok(Progress { consumed: pos, next_frame_len: 0 })
    }

    /// A data frame's header was read (`check_header` accepted it).
    fn start_data_frame(&mut self, h: &FrameHeader) {
        if h.opcode != OpCode::Continue {
            self.assembling = Some(if h.opcode == OpCode::Text { MessageKind::Text } else { MessageKind::Binary });
            self.utf8.reset();
            if let Some(d) = self.deflate.as_deref_mut() {
                d.compressed = h.rsv1;
            }
        }
        let compressed = self.deflate.as_ref().is_some_and(|d| d.compressed);
        let Some(st) = self.streaming.as_deref_mut() else { return };
        if h.opcode != OpCode::Continue {
            st.started = false;
        }
        st.trailer_left = if compressed && h.fin { TRAILER.len() } else { 0 };
        st.ahead = 0;
        st.out_pending = false;
        st.frame = Some(DataFrame { fin: h.fin, mask: h.mask, len: h.payload_len, done: 0 });
    }

    /// Reads what `buf` holds of the current frame's payload; returns the bytes used and
    /// whether to go on.
    fn stream_payload(
        &mut self,
        buf: &mut [u8],
        on: &mut dyn FnMut(Incoming<'_>) -> bool,
    ) -> Result<(usize, bool), Violation> {
        let Some(st) = self.streaming.as_deref_mut() else { return Ok((0, true)) };
        let Some(f) = st.frame else { return Ok((0, true)) };
        let avail = (f.len - f.done).min(buf.len() as u64) as usize;
        let chunk = &mut buf[..avail];
        if let Some(key) = f.mask {
            let ahead = st.ahead.min(avail);
            mask::apply_mask(&mut chunk[ahead..], key, ((f.done + ahead as u64) & 3) as usize);
        }
        let end = f.done + avail as u64 == f.len;
        let kind = self.assembling.unwrap_or(MessageKind::Binary);
        let compressed = self.deflate.as_ref().is_some_and(|d| d.compressed);
        let (used, go_on) = if compressed {
            self.stream_inflate(kind, chunk, end, f.fin, on)?
        } else {
            let last = end && f.fin;
            if kind == MessageKind::Text {
                self.utf8.feed(chunk).map_err(|_| BAD_UTF8)?;
                if last {
                    self.utf8.finish().map_err(|_| BAD_UTF8)?;
                }
            }
            let st = self.streaming.as_deref_mut().expect("streaming");
            let first = !st.started;
            let deliver = avail > 0 || last;
            if deliver {
                st.started = !last;
            }
            if last {
                self.assembling = None;
            }
            self.advance(avail, avail);
            let go_on = !deliver || on(Incoming::Part { kind, data: chunk, first, last });
            return Ok((avail, go_on));
        };
        self.advance(avail, used);
        Ok((used, go_on))
    }

    /// Records that `used` of the `avail` payload bytes presented were consumed, and ends
    /// the frame when nothing of it is left to read or to deliver.
    fn advance(&mut self, avail: usize, used: usize) {
        let Some(st) = self.streaming.as_deref_mut() else { return };
        let Some(f) = st.frame.as_mut() else { return };
        f.done += used as u64;
        st.ahead = avail - used;
        if f.done == f.len && !st.out_pending && st.trailer_left == 0 {
            st.frame = None;
        }
    }

    /// Inflates `input` (payload of the current compressed frame; `end` when it reaches the
    /// frame's end, `fin` when that frame ends the message) and delivers the output.
    fn stream_inflate(
        &mut self,
        kind: MessageKind,
        input: &[u8],
        end: bool,
        fin: bool,
        on: &mut dyn FnMut(Incoming<'_>) -> bool,
    ) -> Result<(usize, bool), Violation> {
        let side = self.role.side();
        let (Some(st), Some(d)) = (self.streaming.as_deref_mut(), self.deflate.as_deref_mut()) else {
            return Err(Violation::protocol("RSV1 set without a negotiated extension"));
        };
        if st.out.is_empty() {
            st.out = vec![0; INFLATE_PART];
        }
        let inflater = d.inflater.get_or_insert_with(|| Inflater::new(side, &d.agreed));
        let mut pos = 0;
        loop {
            let (src, trailer): (&[u8], bool) = if pos < input.len() {
                (&input[pos..], false)
            } else if end && st.trailer_left > 0 {
                (&TRAILER[TRAILER.len() - st.trailer_left..], true)
            } else {
                (&[], false)
            };
            let (c, w) = inflater.inflate_step(src, &mut st.out).map_err(inflate_violation)?;
            if trailer {
                st.trailer_left -= c;
            } else {
                pos += c;
            }
            st.out_pending = w == st.out.len();
            let input_left = pos < input.len() || (end && st.trailer_left > 0);
            let drained = !input_left && !st.out_pending;
            let last = drained && end && fin;
            if w > 0 || last {
                let part = &st.out[..w];
                if kind == MessageKind::Text {
                    self.utf8.feed(part).map_err(|_| BAD_UTF8)?;
                    if last {
                        self.utf8.finish().map_err(|_| BAD_UTF8)?;
                    }
                }
                let first = !st.started;
                st.started = !last;
                if last {
                    inflater.end_message();
                    d.compressed = false;
                    self.assembling = None;
                }
                let go_on = on(Incoming::Part { kind, data: part, first, last });
                if !go_on || last {
                    return Ok((pos, go_on));
                }
            }
            if drained {
                return Ok((pos, true));
            }
            if c == 0 && w == 0 {
                return Err(Violation { code: codes::INVALID_PAYLOAD, message: "invalid permessage-deflate data" });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a streaming reader reported.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Part(MessageKind, Vec<u8>, bool, bool),
        Ping(Vec<u8>),
        Close(Option<u16>),
    }

    struct Run {
        events: Vec<Ev>,
        failed: Option<Violation>,
    }

    impl Run {
        /// The messages the parts add up to, checking the first/last flags on the way.
        fn messages(&self) -> Vec<(MessageKind, Vec<u8>)> {
            let mut out: Vec<(MessageKind, Vec<u8>)> = Vec::new();
            let mut open = false;
            for ev in &self.events {
                if let Ev::Part(kind, data, first, last) = ev {
                    assert_eq!(*first, !open, "first flag");
                    if *first {
                        out.push((*kind, Vec::new()));
                    }
                    let msg = out.last_mut().unwrap();
                    assert_eq!(msg.0, *kind);
                    msg.1.extend_from_slice(data);
                    open = !last;
                }
            }
            assert!(!open, "a message was left unfinished");
            out
        }

        fn parts(&self) -> Vec<&[u8]> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Ev::Part(_, d, _, _) => Some(&d[..]),
                    _ => None,
                })
                .collect()
        }
    }

    fn streaming(role: Role, deflate: bool, max_payload: usize) -> Reader {
        let mut r = Reader::new(role, Limits { max_payload, max_fragments: 4 });
        if deflate {
            r.enable_deflate(Agreed::default());
        }
        r.stream_messages();
        r
    }

    /// Feeds `bytes` in pieces of `step` bytes the way the reactor does (unconsumed bytes
    /// stay in front of the next piece). With `stop_every_part` the callback stops after
    /// each part and the same input is presented again (as after a pause and a resume),
    /// with an empty feed when only inflated output is pending.
    fn run(reader: &mut Reader, bytes: &[u8], step: usize, stop_every_part: bool) -> Run {
        let mut out = Run { events: Vec::new(), failed: None };
        let mut pending: Vec<u8> = Vec::new();
        let mut from = 0;
        loop {
            let to = (from + step).min(bytes.len());
            pending.extend_from_slice(&bytes[from..to]);
            from = to;
            loop {
                let events = &mut out.events;
                let mut parts = 0;
                let result = reader.feed(&mut pending, &mut |ev| {
                    let is_part = matches!(ev, Incoming::Part { .. });
                    parts += usize::from(is_part);
                    events.push(match ev {
                        Incoming::Part { kind, data, first, last } => Ev::Part(kind, data.to_vec(), first, last),
                        Incoming::Ping(d) => Ev::Ping(d.to_vec()),
                        Incoming::Close(c) => Ev::Close(c.map(|(c, _)| c)),
                        other => panic!("unexpected {other:?}"),
                    });
                    !(stop_every_part && is_part)
                });
                match result {
                    Ok(p) => drop(pending.drain(..p.consumed)),
                    Err(v) => {
                        out.failed = Some(v);
                        return out;
                    }
                }
                // A call that stopped after a part is followed by another with what is
                // left (possibly nothing but inflated output still to come).
                if !stop_every_part || parts == 0 {
                    break;
                }
            }
            if from == bytes.len() {
                break;
            }
        }
        assert!(pending.is_empty(), "{} bytes left unread", pending.len());
        assert!(!reader.has_pending_parts());
        out
    }

    fn writer(role: Role, deflate: bool) -> Writer {
        let mut w = Writer::new(if role == Role::Server { Role::Client } else { Role::Server });
        if deflate {
            w.enable_deflate(Agreed::default(), DeflateConfig { threshold: 0, ..DeflateConfig::default() });
        }
        w
    }

    fn noise(len: usize, seed: u32) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    #[test]
    fn a_message_larger_than_max_payload_arrives_in_parts_as_read() {
        for role in [Role::Server, Role::Client] {
            let data = noise(100_000, 7);
            let mut w = writer(role, false);
            let mut bytes = Vec::new();
            w.message(&mut bytes, MessageKind::Binary, &data).unwrap();
            // max_payload 10 and at most 4 fragments: neither applies to parts.
            let mut reader = streaming(role, false, 10);
            let r = run(&mut reader, &bytes, 4096, false);
            assert!(r.failed.is_none(), "{:?}", r.failed);
            assert_eq!(r.messages(), vec![(MessageKind::Binary, data.clone())]);
            // One part per read: nothing waits for the frame to complete.
            assert_eq!(r.parts().len(), bytes.len().div_ceil(4096), "{role:?}");
            assert!(r.parts().iter().all(|p| p.len() <= 4096));
        }
    }

    #[test]
    fn fragments_with_control_frames_between_them_fed_in_every_way() {
        for role in [Role::Server, Role::Client] {
            let data = noise(3000, 3);
            let mut w = writer(role, false);
            let mut bytes = Vec::new();
            for (i, chunk) in data.chunks(500).enumerate() {
                w.fragment(&mut bytes, MessageKind::Binary, chunk, (i + 1) * 500 >= data.len()).unwrap();
                if i == 2 {
                    w.control(&mut bytes, OpCode::Ping, b"between").unwrap();
                }
            }
            // An empty message, then an empty first fragment, then a close.
            w.message(&mut bytes, MessageKind::Text, b"").unwrap();
            w.fragment(&mut bytes, MessageKind::Text, b"", false).unwrap();
            w.fragment(&mut bytes, MessageKind::Text, b"tail", true).unwrap();
            w.close(&mut bytes, Some(1000), b"").unwrap();
            for step in [1, 7, 500, 506, 4096, bytes.len()] {
                for stop in [false, true] {
                    let mut reader = streaming(role, false, 100);
                    let r = run(&mut reader, &bytes, step, stop);
                    assert!(r.failed.is_none(), "{role:?} step {step}: {:?}", r.failed);
                    assert_eq!(
                        r.messages(),
                        vec![
                            (MessageKind::Binary, data.clone()),
                            (MessageKind::Text, vec![]),
                            (MessageKind::Text, b"tail".to_vec())
                        ],
                        "{role:?} step {step} stop {stop}"
                    );
                    let ping_at = r.events.iter().position(|e| *e == Ev::Ping(b"between".to_vec())).unwrap();
                    let before: usize = r.events[..ping_at]
                        .iter()
                        .map(|e| if let Ev::Part(_, d, _, _) = e { d.len() } else { 0 })
                        .sum();
                    assert_eq!(before, 1500, "{role:?} step {step}: the ping comes after the third fragment");
                    assert_eq!(r.events.last(), Some(&Ev::Close(Some(1000))));
                    // The empty message is a single empty part, first and last.
                    assert!(r.events.contains(&Ev::Part(MessageKind::Text, vec![], true, true)));
                }
            }
        }
    }

    #[test]
    fn text_split_inside_code_points_is_accepted_and_bad_utf8_in_a_later_part_fails() {
        for role in [Role::Server, Role::Client] {
            let text = "a€😀ü\u{10FFFF}z".repeat(50);
            let mut w = writer(role, false);
            let mut bytes = Vec::new();
            w.fragment(&mut bytes, MessageKind::Text, &text.as_bytes()[..2], false).unwrap();
            w.fragment(&mut bytes, MessageKind::Text, &text.as_bytes()[2..], true).unwrap();
            let mut reader = streaming(role, false, 10);
            let r = run(&mut reader, &bytes, 1, false);
            assert!(r.failed.is_none());
            assert_eq!(r.messages(), vec![(MessageKind::Text, text.clone().into_bytes())]);

            // Valid parts are delivered; the part holding the invalid byte is not.
            let mut bad = "good ".repeat(100).into_bytes();
            let good_len = bad.len();
            bad.extend_from_slice(&[0xED, 0xA0, 0x80]);
            bad.extend_from_slice(b"never delivered");
            let mut w = writer(role, false);
            let mut bytes = Vec::new();
            w.message(&mut bytes, MessageKind::Text, &bad).unwrap();
            let header = bytes.len() - bad.len();
            let mut reader = streaming(role, false, 10);
            let r = run(&mut reader, &bytes, header + 100, false);
            assert_eq!(r.failed.map(|v| v.code), Some(1007), "{role:?}");
            let delivered: Vec<u8> = r.parts().concat();
            assert!(delivered.len() <= good_len && bad.starts_with(&delivered), "{role:?}");
            assert!(!delivered.is_empty());

            // A message that ends inside a character: its last part is not delivered.
            let mut w = writer(role, false);
            let mut bytes = Vec::new();
            w.fragment(&mut bytes, MessageKind::Text, b"ok", false).unwrap();
            w.fragment(&mut bytes, MessageKind::Text, &[0xE2, 0x82], true).unwrap();
            let mut reader = streaming(role, false, 10);
            let r = run(&mut reader, &bytes, bytes.len(), false);
            assert_eq!(r.failed.map(|v| v.code), Some(1007));
            assert_eq!(r.events, vec![Ev::Part(MessageKind::Text, b"ok".to_vec(), true, false)]);
        }
    }

    #[test]
    fn compressed_messages_are_inflated_in_bounded_parts() {
        for role in [Role::Server, Role::Client] {
            // Compresses about 100:1, so a small input inflates to many parts.
            let big: Vec<u8> = (0..1_000_000u32).map(|i| b"abcdefgh"[(i / 1000 % 8) as usize]).collect();
            let text = format!("ü€😀 {}", "streamed text ".repeat(5000));
            let mut w = writer(role, true);
            let mut bytes = Vec::new();
            w.message(&mut bytes, MessageKind::Binary, &big).unwrap();
            let b = text.as_bytes();
            w.fragment(&mut bytes, MessageKind::Text, &b[..1], false).unwrap();
            w.control(&mut bytes, OpCode::Ping, b"p").unwrap();
            w.fragment(&mut bytes, MessageKind::Text, &b[1..30_000], false).unwrap();
            w.fragment(&mut bytes, MessageKind::Text, &b[30_000..], true).unwrap();
            // Context takeover: the repeat refers back into the earlier messages.
            w.message(&mut bytes, MessageKind::Binary, &big).unwrap();
            assert!(bytes.len() < 50_000, "{}", bytes.len());
            for step in [3, 1000, bytes.len()] {
                for stop in [false, true] {
                    let mut reader = streaming(role, true, 100);
                    let r = run(&mut reader, &bytes, step, stop);
                    assert!(r.failed.is_none(), "{role:?} step {step}: {:?}", r.failed);
                    assert!(r.parts().iter().all(|p| p.len() <= INFLATE_PART));
                    assert_eq!(
                        r.messages(),
                        vec![
                            (MessageKind::Binary, big.clone()),
                            (MessageKind::Text, text.clone().into_bytes()),
                            (MessageKind::Binary, big.clone())
                        ],
                        "{role:?} step {step} stop {stop}"
                    );
                    assert!(r.parts().len() >= 2 * big.len() / INFLATE_PART);
                    assert!(r.events.contains(&Ev::Ping(b"p".to_vec())));
                }
            }
        }
    }

    #[test]
    fn bad_utf8_in_a_later_inflated_part_fails_with_1007() {
        let mut plain = "fine text ".repeat(10_000).into_bytes();
        let good_len = plain.len();
        plain.extend_from_slice(&[0xF4, 0x90, 0x80, 0x80]);
        plain.extend_from_slice(&"more ".repeat(1000).into_bytes());
        // Compressed as binary (the writer checks nothing), sent with the text opcode.
        let mut w = writer(Role::Server, true);
        let mut bytes = Vec::new();
        w.message(&mut bytes, MessageKind::Binary, &plain).unwrap();
        bytes[0] = (bytes[0] & 0xF0) | OpCode::Text.as_u8();
        let mut reader = streaming(Role::Server, true, 10);
        let r = run(&mut reader, &bytes, 64, false);
        assert_eq!(r.failed.map(|v| v.code), Some(1007));
        let delivered = r.parts().concat();
        assert!(delivered.len() >= INFLATE_PART && delivered.len() <= good_len);
        assert!(plain.starts_with(&delivered));
    }

    #[test]
    fn corrupt_compressed_data_fails_with_1007() {
        let mut bytes = Vec::new();
        frame::encode_header(&mut bytes, true, true, OpCode::Binary, Some([1, 2, 3, 4]), 2);
        let mut payload = [0xff, 0xff];
        mask::apply_mask(&mut payload, [1, 2, 3, 4], 0);
        bytes.extend_from_slice(&payload);
        let r = run(&mut streaming(Role::Server, true, 10), &bytes, 100, false);
        assert_eq!(r.failed.map(|v| v.code), Some(1007));
        assert!(r.events.is_empty());
    }

    #[test]
    fn protocol_rules_still_hold_in_streaming_mode() {
        // A continuation without a message, a new message inside one, RSV1 without deflate.
        let lone = [0x80u8, 0x80, 0, 0, 0, 0];
        assert_eq!(run(&mut streaming(Role::Server, false, 10), &lone, 10, false).failed.unwrap().code, 1002);
        let mut w = writer(Role::Server, false);
        let mut two = Vec::new();
        w.fragment(&mut two, MessageKind::Text, b"a", false).unwrap();
        let mut w = writer(Role::Server, false);
        w.fragment(&mut two, MessageKind::Text, b"b", false).unwrap();
        let r = run(&mut streaming(Role::Server, false, 10), &two, 100, false);
        assert_eq!(r.failed.unwrap().code, 1002);
        assert_eq!(r.events, vec![Ev::Part(MessageKind::Text, b"a".to_vec(), true, false)]);
        let rsv1 = [0xC2u8, 0x80, 0, 0, 0, 0];
        assert_eq!(run(&mut streaming(Role::Server, false, 10), &rsv1, 10, false).failed.unwrap().code, 1002);
        let unmasked = [0x82u8, 0x01, 0x00];
        assert_eq!(run(&mut streaming(Role::Server, false, 10), &unmasked, 10, false).failed.unwrap().code, 1002);
    }
}
