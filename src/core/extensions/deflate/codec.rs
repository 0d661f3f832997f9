//! The per-message compressor ([`Deflater`]) and decompressor ([`Inflater`]); see the
//! parent module for why an 8-bit window compresses with 9 bits.

use zlib_rs::{DeflateFlush, InflateFlush, Status};

use super::config::{clamp_bits, Agreed, DeflateConfig};

/// The bytes a sync flush ends with; stripped from every sent message and put back
/// before inflating a received one (RFC 7692 §7.2.1, §7.2.2).
pub(crate) const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output grows by at most this much per inflate step and is checked against the
/// caller's limit after each, so a decompression bomb cannot make us allocate much
/// beyond that limit.
const INFLATE_STEP: usize = 64 * 1024;
/// The first output step for a small input.
const INFLATE_MIN_STEP: usize = 512;

/// Messages up to this size use the small compressor under no_context_takeover.
const SMALL_MESSAGE: usize = 1024;
/// Window of the small compressor (log2 bytes).
const SMALL_WINDOW_BITS: u8 = 10;
/// Memory level of the small compressor (a 512-entry hash table).
const SMALL_MEM_LEVEL: i32 = 2;

/// Upper bound on one compress output step (the loop continues when it fills up).
const DEFLATE_STEP_MAX: usize = 1024 * 1024;

// ---------------------------------------------------------------------------
// Compression
// ---------------------------------------------------------------------------

/// Which side this endpoint is (decides which window bits / no_context_takeover applies
/// to compressing vs decompressing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Compresses with the client's parameters, decompresses with the server's.
    Client,
    /// Compresses with the server's parameters, decompresses with the client's.
    Server,
}

/// (window bits, no_context_takeover) of what `side` sends, and of what it receives.
fn directions(side: Side, a: &Agreed) -> ((u8, bool), (u8, bool)) {
    let server = (a.server_max_window_bits, a.server_no_context_takeover);
    let client = (a.client_max_window_bits, a.client_no_context_takeover);
    match side {
        Side::Server => (server, client),
        Side::Client => (client, server),
    }
}

/// Per-connection compressor for outgoing messages.
///
/// With our sending window agreed at 8 bits it compresses with zlib's 9-bit window,
/// whose references reach at most 250 bytes back (see the module documentation).
pub struct Deflater {
    z: zlib_rs::Deflate,
    threshold: usize,
    no_context_takeover: bool,
    /// A fragmented message is under way on `z`.
    mid_message: bool,
    /// Under no_context_takeover every message starts from an empty window, and resetting
    /// `z` clears its hash tables (over 100 KiB at the defaults) each time. Small messages
    /// use this compressor with a 1 KiB window and small tables instead: the same output
    /// for messages that fit the window, a fraction of the reset cost. Created on first use.
    small: Option<zlib_rs::Deflate>,
    small_config: zlib_rs::DeflateConfig,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater")
            .field("threshold", &self.threshold)
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor for what `side` sends under `agreed`, with `cfg`'s level, memory
    /// level and threshold (out-of-range values are clamped; see
    /// [`DeflateConfig::validate`]).
    pub fn new(side: Side, agreed: &Agreed, cfg: &DeflateConfig) -> Self {
        let ((bits, no_context_takeover), _) = directions(side, agreed);
        let config = zlib_rs::DeflateConfig {
            level: cfg.level.min(9) as i32,
            // Negative: raw deflate, no zlib header. 9 stands in for 8 (module docs).
            window_bits: -i32::from(clamp_bits(bits).max(9)),
            mem_level: i32::from(cfg.mem_level.clamp(1, 9)),
            ..zlib_rs::DeflateConfig::default()
        };
        // 9 stands in for 8 as above; 10 bits reach 762 bytes back, within any window >= 10.
        let small_bits = clamp_bits(bits).clamp(9, SMALL_WINDOW_BITS);
        let small_config = zlib_rs::DeflateConfig {
            window_bits: -i32::from(small_bits),
            mem_level: config.mem_level.min(SMALL_MEM_LEVEL),
            ..config
        };
        Deflater {
            z: zlib_rs::Deflate::new_with_config(config),
            threshold: cfg.threshold,
            no_context_takeover,
            mid_message: false,
            small: None,
            small_config,
        }
    }

    /// Should this message be compressed (size >= threshold)?
    pub fn wants(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Appends the compressed form of a whole message to `out` (without the trailing
    /// `00 00 FF FF`, RFC 7692 §7.2.1), resetting the context afterwards when our side
    /// has no_context_takeover.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        self.compress_fragment(data, true, out)
    }

    /// Streaming for fragmented sends: compresses one fragment and appends its bytes to
    /// `out`. Every fragment ends with a sync flush so its bytes can be sent at once;
    /// `fin` ends the message, and only then is the `00 00 FF FF` trailer stripped (and
    /// the context reset under no_context_takeover). An empty non-final fragment may
    /// append nothing.
    ///
    /// On error the compressor is reset and the message is lost: fail the connection.
    pub fn compress_fragment(&mut self, data: &[u8], fin: bool, out: &mut Vec<u8>) -> Result<(), String> {
        if fin && !self.mid_message && self.no_context_takeover && data.len() <= SMALL_MESSAGE {
            let config = self.small_config;
            let z = self.small.get_or_insert_with(|| zlib_rs::Deflate::new_with_config(config));
            let r = compress_message(z, data, out);
            z.reset();
            return r;
        }
        self.mid_message = !fin;
        let start = out.len();
        if let Err(e) = sync_flush(&mut self.z, data, out) {
            out.truncate(start);
            self.z.reset();
            self.mid_message = false;
            return Err(e);
        }
        if fin {
            end_message(out, start);
            if self.no_context_takeover {
                self.z.reset();
            }
        }
        Ok(())
    }
}

/// Compresses a whole message with `z` (which starts and ends it with an empty window),
/// appending it to `out` without the trailer.
fn compress_message(z: &mut zlib_rs::Deflate, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let start = out.len();
    if let Err(e) = sync_flush(z, data, out) {
        out.truncate(start);
        return Err(e);
    }
    end_message(out, start);
    Ok(())
}

/// Strips the `00 00 FF FF` trailer from the last frame of a message that began at
/// `out[start]` (RFC 7692 §7.2.1).
fn end_message(out: &mut Vec<u8>, start: usize) {
    if out[start..].ends_with(&TRAILER) {
        out.truncate(out.len() - TRAILER.len());
    }
    if out.len() == start {
        // Nothing new since the last flush: one empty stored block header, so the
        // payload plus the receiver's trailer is still a well-formed block.
        out.push(0x00);
    }
}

/// Compresses all of `data` with a sync flush, appending to `out`.
fn sync_flush(z: &mut zlib_rs::Deflate, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    loop {
        // Room for the input plus block overhead; the loop runs again if it fills.
        let step = (data.len() + data.len() / 8 + 64).min(DEFLATE_STEP_MAX);
        let at = out.len();
        out.resize(at + step, 0);
        let (in0, out0) = (z.total_in(), z.total_out());
        let r = z.compress(data, &mut out[at..], DeflateFlush::SyncFlush);
        let consumed = usize::try_from(z.total_in() - in0).unwrap_or(usize::MAX);
        let written = usize::try_from(z.total_out() - out0).unwrap_or(usize::MAX);
        if consumed > data.len() || written > step {
            return Err("compressor reported impossible progress".into());
        }
        out.truncate(at + written);
        data = &data[consumed..];
        match r {
            Err(e) => return Err(format!("compression failed: {}", e.as_str())),
            // BufError: nothing to do (a repeated flush with no new input).
            Ok(Status::BufError) => return Ok(()),
            Ok(_) => {}
        }
        // Output space left over means the flush is complete.
        if data.is_empty() && written < step {
            return Ok(());
        }
    }
}

/// Why an incoming compressed message was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InflateError {
    /// The message inflates to more than the caller's limit (close with 1009).
    TooBig,
    /// The payload is not a valid deflate stream (close with 1007 or 1002).
    Corrupt(String),
}

impl std::fmt::Display for InflateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InflateError::TooBig => f.write_str("decompressed message too big"),
            InflateError::Corrupt(m) => write!(f, "corrupt compressed message: {m}"),
        }
    }
}

impl std::error::Error for InflateError {}

/// Per-connection decompressor for incoming messages.
///
/// A message that ends with a final (BFINAL) block ends the deflate stream: the rest of
/// that message is ignored and the next message starts with an empty window, so a peer
/// that uses BFINAL and then refers back to older messages gets `Corrupt`.
pub struct Inflater {
    z: zlib_rs::Inflate,
    no_context_takeover: bool,
    /// The stream hit a final block inside the current message.
    ended: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").field("no_context_takeover", &self.no_context_takeover).finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decompressor for what `side` receives under `agreed`.
    pub fn new(side: Side, agreed: &Agreed) -> Self {
        let (_, (_, no_context_takeover)) = directions(side, agreed);
        // The largest window reads streams made with any smaller one (module docs).
        Inflater { z: zlib_rs::Inflate::new(false, 15), no_context_takeover, ended: false }
    }

    fn reset(&mut self) {
        // Keeps the allocation; the argument is "no zlib header".
        self.z.reset(false);
        self.ended = false;
    }

    /// Feeds one frame's payload of a compressed message; decompressed bytes are
    /// appended to `out`. `fin` marks the last frame (the `00 00 FF FF` trailer is
    /// appended before inflating it).
    ///
    /// Returns `Err(TooBig)` as soon as `out.len()` would exceed `max`: output grows by
    /// at most 64 KiB per step and is checked after each, so memory stays within
    /// about twice `max + 64 KiB` whatever the payload claims. The context is reset
    /// after the message when the peer's side has no_context_takeover. After an error
    /// `out` holds partial data, the context is lost and the connection must be failed.
    pub fn inflate(&mut self, data: &[u8], fin: bool, out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        let mut r = self.feed(data, out, max);
        if fin && r.is_ok() {
            r = self.feed(&TRAILER, out, max);
        }
        if r.is_err() || (fin && (self.no_context_takeover || self.ended)) {
            self.reset();
        }
        r
    }

    /// One step of streaming decompression: inflates from `data` into the fixed `out`,
    /// returning (input bytes consumed, output bytes written). The caller loops until the
    /// input is used up and a step leaves `out` with room (then no output is pending); a
    /// step may consume nothing while it writes output the previous one had no room for.
    /// The message's last frame is followed by [`TRAILER`]; [`end_message`](Self::end_message)
    /// comes after the last step. Input after a final (BFINAL) block is consumed unread.
    pub fn inflate_step(&mut self, data: &[u8], out: &mut [u8]) -> Result<(usize, usize), InflateError> {
        if self.ended {
            return Ok((data.len(), 0));
        }
        let (in0, out0) = (self.z.total_in(), self.z.total_out());
        let r = self.z.decompress(data, out, InflateFlush::NoFlush);
        let consumed = usize::try_from(self.z.total_in() - in0).unwrap_or(usize::MAX);
        let written = usize::try_from(self.z.total_out() - out0).unwrap_or(usize::MAX);
        if consumed > data.len() || written > out.len() {
            self.reset();
            return Err(InflateError::Corrupt("decompressor reported impossible progress".into()));
        }
        match r {
            Err(e) => {
                let msg = self.z.error_message().unwrap_or(e.as_str()).to_string();
                self.reset();
                Err(InflateError::Corrupt(msg))
            }
            Ok(Status::StreamEnd) => {
                self.ended = true;
                Ok((data.len(), written))
            }
            Ok(_) => Ok((consumed, written)),
        }
    }

    /// The streamed message ended: resets the context when the peer's side has
    /// no_context_takeover or its stream ended with a final block.
    pub fn end_message(&mut self) {
        if self.no_context_takeover || self.ended {
            self.reset();
        }
    }

    fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), InflateError> {
        // Output space is zero-filled before zlib writes to it, so start near the likely
        // size (small messages are the common case) and double up to INFLATE_STEP.
        let mut want = (data.len() * 4).clamp(INFLATE_MIN_STEP, INFLATE_STEP);
        while !self.ended {
            // One byte past the limit is enough to see that the limit is crossed.
            let step = want.min(max.saturating_sub(out.len()).saturating_add(1));
            want = (want * 2).min(INFLATE_STEP);
            let at = out.len();
            out.resize(at + step, 0);
            let (in0, out0) = (self.z.total_in(), self.z.total_out());
            let r = self.z.decompress(data, &mut out[at..], InflateFlush::NoFlush);
            let consumed = usize::try_from(self.z.total_in() - in0).unwrap_or(usize::MAX);
            let written = usize::try_from(self.z.total_out() - out0).unwrap_or(usize::MAX);
            if consumed > data.len() || written > step {
                out.truncate(at);
                return Err(InflateError::Corrupt("decompressor reported impossible progress".into()));
            }
            out.truncate(at + written);
            data = &data[consumed..];
            match r {
                Err(e) => {
                    let msg = self.z.error_message().unwrap_or(e.as_str());
                    return Err(InflateError::Corrupt(msg.to_string()));
                }
                Ok(Status::StreamEnd) => self.ended = true,
                Ok(_) => {}
            }
            if written > 0 && out.len() > max {
                return Err(InflateError::TooBig);
            }
            // Input used up and output space to spare: everything available is out.
            if data.is_empty() && written < step {
                break;
            }
            if consumed == 0 && written == 0 && !self.ended {
                return Err(InflateError::Corrupt("decompressor made no progress".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::agreed;
    use super::*;

    // ----- compression -----

    /// JSON-like text that varies from message to message.
    fn json_msg(i: usize) -> Vec<u8> {
        format!(
            "{{\"type\":\"update\",\"seq\":{i},\"user\":{{\"id\":{},\"name\":\"user-{}\"}},\
             \"price\":{}.{:02},\"tags\":[\"alpha\",\"beta\",\"gamma\"],\"ok\":{}}}",
            i * 7919 % 100_000,
            i % 97,
            i * 31 % 1000,
            i % 100,
            i % 3 == 0
        )
        .into_bytes()
    }

    fn inflate_all(inf: &mut Inflater, payload: &[u8]) -> Result<Vec<u8>, InflateError> {
        let mut out = Vec::new();
        inf.inflate(payload, true, &mut out, usize::MAX)?;
        Ok(out)
    }

    #[test]
    fn rfc_7692_hello_examples() {
        let a = Agreed::default();
        // §7.2.3.1: "Hello" in one compressed block.
        let mut d = Deflater::new(Side::Server, &a, &DeflateConfig::default());
        let mut out = Vec::new();
        d.compress(b"Hello", &mut out).unwrap();
        assert_eq!(out, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        // §7.2.3.2: the same message again, sharing the window.
        out.clear();
        d.compress(b"Hello", &mut out).unwrap();
        assert_eq!(out, [0xf2, 0x00, 0x11, 0x00, 0x00]);

        let mut i = Inflater::new(Side::Client, &a);
        assert_eq!(inflate_all(&mut i, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).unwrap(), b"Hello");
        assert_eq!(inflate_all(&mut i, &[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap(), b"Hello");

        // §7.2.3.1, fragmented: the payload split over two frames.
        let mut i = Inflater::new(Side::Client, &a);
        let mut plain = Vec::new();
        i.inflate(&[0xf2, 0x48, 0xcd], false, &mut plain, 100).unwrap();
        i.inflate(&[0xc9, 0xc9, 0x07, 0x00], true, &mut plain, 100).unwrap();
        assert_eq!(plain, b"Hello");

        // §7.2.3.3: a stored (no compression) block.
        let stored = [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
        assert_eq!(inflate_all(&mut Inflater::new(Side::Client, &a), &stored).unwrap(), b"Hello");

        // §7.2.3.4: a block with BFINAL set; the stream ends, the rest is ignored and the
        // next message starts afresh.
        let mut i = Inflater::new(Side::Client, &a);
        assert_eq!(inflate_all(&mut i, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]).unwrap(), b"Hello");
        assert_eq!(inflate_all(&mut i, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).unwrap(), b"Hello");

        // §7.2.3.5: two deflate blocks in one message.
        let two = [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(inflate_all(&mut Inflater::new(Side::Client, &a), &two).unwrap(), b"Hello");
    }

    #[test]
    fn level_zero_is_stored_blocks() {
        let cfg = DeflateConfig { level: 0, ..DeflateConfig::default() };
        let mut d = Deflater::new(Side::Client, &Agreed::default(), &cfg);
        let mut out = Vec::new();
        d.compress(b"Hello", &mut out).unwrap();
        // RFC 7692 §7.2.3.3 shape: stored block header, LEN 5, NLEN, the bytes, and the
        // empty block left after stripping the trailer.
        assert_eq!(out, [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]);
        let mut i = Inflater::new(Side::Server, &Agreed::default());
        assert_eq!(inflate_all(&mut i, &out).unwrap(), b"Hello");
    }

    #[test]
    fn empty_messages() {
        let a = Agreed::default();
        let mut d = Deflater::new(Side::Client, &a, &DeflateConfig::default());
        let mut i = Inflater::new(Side::Server, &a);
        let mut out = Vec::new();
        d.compress(b"", &mut out).unwrap();
        assert_eq!(out, [0x00]);
        assert_eq!(inflate_all(&mut i, &out).unwrap(), b"");
        // After a message (the flush state is different) and between messages.
        for msg in [&b"abc"[..], b"", b"", b"abcabc", b""] {
            out.clear();
            d.compress(msg, &mut out).unwrap();
            assert!(!out.is_empty());
            assert_eq!(inflate_all(&mut i, &out).unwrap(), msg);
        }
        // An empty payload is not a valid compressed message (the trailer alone lacks a
        // block header byte; RFC 7692 §7.2.3.6 sends 0x00). It must not panic, and the
        // truncated block is only noticed by later input, if at all.
        let _ = inflate_all(&mut i, &[]);
        let mut i = Inflater::new(Side::Server, &a);
        let mut d = Deflater::new(Side::Client, &a, &DeflateConfig::default());
        // Empty fragments anywhere in a fragmented message.
        let mut payloads = Vec::new();
        for (chunk, fin) in [(&b""[..], false), (b"xyz", false), (b"", false), (b"", true)] {
            let mut p = Vec::new();
            d.compress_fragment(chunk, fin, &mut p).unwrap();
            payloads.push(p);
        }
        let mut plain = Vec::new();
        let n = payloads.len();
        for (k, p) in payloads.iter().enumerate() {
            i.inflate(p, k + 1 == n, &mut plain, 1000).unwrap();
        }
        assert_eq!(plain, b"xyz");
    }

    /// Sends `msgs` from `side` to its peer under `agreed`, returning payload sizes.
    fn round_trip(side: Side, a: &Agreed, cfg: &DeflateConfig, msgs: &[Vec<u8>]) -> Vec<usize> {
        let peer = match side {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        };
        let mut d = Deflater::new(side, a, cfg);
        let mut i = Inflater::new(peer, a);
        let mut sizes = Vec::new();
        for m in msgs {
            let mut c = Vec::new();
            d.compress(m, &mut c).unwrap();
            assert!(!c.ends_with(&TRAILER) || m.is_empty());
            sizes.push(c.len());
            assert_eq!(&inflate_all(&mut i, &c).unwrap(), m, "{side:?} {a:?}");
        }
        sizes
    }

    #[test]
    fn round_trip_all_takeover_and_window_combinations() {
        let msgs: Vec<Vec<u8>> = (0..5)
            .map(|k| {
                let mut m = Vec::new();
                for j in 0..(k * 8 + 1) {
                    m.extend(json_msg(j));
                }
                m
            })
            .collect();
        let cfg = DeflateConfig::default();
        for snct in [false, true] {
            for cnct in [false, true] {
                for sbits in 8..=15 {
                    for cbits in 8..=15 {
                        let a = agreed(snct, cnct, sbits, cbits);
                        round_trip(Side::Client, &a, &cfg, &msgs);
                        round_trip(Side::Server, &a, &cfg, &msgs);
                    }
                }
            }
        }
    }

    #[test]
    fn round_trip_levels_and_mem_levels() {
        let msgs: Vec<Vec<u8>> = (0..20).map(json_msg).collect();
        for level in 0..=9 {
            for mem_level in 1..=9 {
                let cfg = DeflateConfig { level, mem_level, ..DeflateConfig::default() };
                round_trip(Side::Client, &Agreed::default(), &cfg, &msgs);
            }
        }
    }

    #[test]
    fn context_takeover_makes_later_messages_smaller() {
        let msgs: Vec<Vec<u8>> = (0..50).map(json_msg).collect();
        let cfg = DeflateConfig::default();
        for side in [Side::Client, Side::Server] {
            let keep = round_trip(side, &Agreed::default(), &cfg, &msgs);
            let reset = round_trip(side, &agreed(true, true, 15, 15), &cfg, &msgs);
            // Without takeover every message costs about the same.
            let first = reset[0];
            assert!(reset.iter().all(|&n| n + 16 > first && n < first + 16), "{reset:?}");
            // With it the first matches, and the later ones are much smaller.
            assert_eq!(keep[0], reset[0]);
            let later: usize = keep[1..].iter().sum();
            let later_reset: usize = reset[1..].iter().sum();
            assert!(later * 2 < later_reset, "{later} vs {later_reset}");
            assert!(keep[1..].iter().all(|&n| n < keep[0]), "{keep:?}");
        }
    }

    #[test]
    fn without_context_takeover_every_message_inflates_alone() {
        // Small messages go through the small compressor, large ones and fragmented ones
        // through the main one; none may refer to an earlier message.
        let cfg = DeflateConfig::default();
        for bits in [8u8, 9, 10, 15] {
            let a = agreed(true, true, bits, bits);
            let mut d = Deflater::new(Side::Server, &a, &cfg);
            let big: Vec<u8> = (0..40).flat_map(json_msg).collect();
            let mut sizes = Vec::new();
            for round in 0..3 {
                for m in [json_msg(round), big.clone(), json_msg(round), b"x".to_vec(), Vec::new()] {
                    let mut c = Vec::new();
                    d.compress(&m, &mut c).unwrap();
                    let mut fresh = Inflater::new(Side::Client, &a);
                    assert_eq!(inflate_all(&mut fresh, &c).unwrap(), m, "bits {bits}");
                    sizes.push(c.len());
                }
                // A fragmented message in between, then small ones again.
                let mut frames = Vec::new();
                for (k, piece) in big.chunks(300).enumerate() {
                    let mut p = Vec::new();
                    d.compress_fragment(piece, (k + 1) * 300 >= big.len(), &mut p).unwrap();
                    frames.push(p);
                }
                let mut fresh = Inflater::new(Side::Client, &a);
                let mut plain = Vec::new();
                for (k, f) in frames.iter().enumerate() {
                    fresh.inflate(f, k + 1 == frames.len(), &mut plain, usize::MAX).unwrap();
                }
                assert_eq!(plain, big);
            }
            // The same small message compresses to the same size every time.
            assert_eq!(sizes[0], sizes[2], "{sizes:?}");
        }
    }

    #[test]
    fn only_our_side_no_context_takeover_resets() {
        let msgs: Vec<Vec<u8>> = (0..10).map(json_msg).collect();
        let cfg = DeflateConfig::default();
        // The server resets; the client keeps its context.
        let a = agreed(true, false, 15, 15);
        let server = round_trip(Side::Server, &a, &cfg, &msgs);
        let client = round_trip(Side::Client, &a, &cfg, &msgs);
        let (s, c): (usize, usize) = (server[1..].iter().sum(), client[1..].iter().sum());
        assert!(c * 2 < s, "client {c} server {s}");
    }

    #[test]
    fn fragmented_compress_inflated_fragment_by_fragment() {
        let cfg = DeflateConfig::default();
        let mut text = Vec::new();
        for j in 0..300 {
            text.extend(json_msg(j));
        }
        for a in [Agreed::default(), agreed(true, true, 9, 8), agreed(false, false, 8, 10)] {
            for side in [Side::Client, Side::Server] {
                let peer = if side == Side::Client { Side::Server } else { Side::Client };
                let mut d = Deflater::new(side, &a, &cfg);
                let mut i = Inflater::new(peer, &a);
                for round in 0..3 {
                    for frag_len in [1usize, 7, 100, 4096, 70_000] {
                        let pieces: Vec<&[u8]> = text.chunks(frag_len).take(40).collect();
                        let want: Vec<u8> = pieces.concat();
                        let mut plain = Vec::new();
                        for (k, piece) in pieces.iter().enumerate() {
                            let fin = k + 1 == pieces.len();
                            let mut p = Vec::new();
                            d.compress_fragment(piece, fin, &mut p).unwrap();
                            if !fin {
                                // Intermediate fragments are sync-flushed, trailer kept.
                                assert!(p.is_empty() || p.ends_with(&TRAILER));
                            }
                            // Each fragment can be inflated as soon as it arrives.
                            let before = plain.len();
                            i.inflate(&p, fin, &mut plain, usize::MAX).unwrap();
                            assert_eq!(&plain[..], &want[..plain.len()]);
                            assert_eq!(plain.len() - before, piece.len(), "round {round}");
                        }
                        assert_eq!(plain, want);
                    }
                    // Whole messages still work in between.
                    let mut c = Vec::new();
                    d.compress(b"between", &mut c).unwrap();
                    assert_eq!(inflate_all(&mut i, &c).unwrap(), b"between");
                }
            }
        }
    }

    #[test]
    fn payload_split_differently_from_compression() {
        // The receiver's frame boundaries need not match anything the sender did.
        let a = Agreed::default();
        let mut d = Deflater::new(Side::Client, &a, &DeflateConfig::default());
        let mut i = Inflater::new(Side::Server, &a);
        for m in 0..5 {
            let msg: Vec<u8> = (0..200).flat_map(|j| json_msg(j + m)).collect();
            let mut c = Vec::new();
            d.compress(&msg, &mut c).unwrap();
            let mut plain = Vec::new();
            let chunks: Vec<&[u8]> = c.chunks(3 + m * 5).collect();
            for (k, ch) in chunks.iter().enumerate() {
                i.inflate(ch, k + 1 == chunks.len(), &mut plain, usize::MAX).unwrap();
            }
            assert_eq!(plain, msg);
        }
    }

    #[test]
    fn large_and_incompressible_messages() {
        let a = Agreed::default();
        let mut d = Deflater::new(Side::Server, &a, &DeflateConfig::default());
        let mut i = Inflater::new(Side::Client, &a);
        // Pseudo-random bytes: compressed output is a little larger than the input.
        let mut x: u32 = 0x1234_5678;
        let noise: Vec<u8> = (0..3_000_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let zeros = vec![0u8; 5_000_000];
        for msg in [&noise, &zeros, &noise] {
            let mut c = Vec::new();
            d.compress(msg, &mut c).unwrap();
            assert_eq!(&inflate_all(&mut i, &c).unwrap(), msg);
        }
    }

    /// A small independent inflater (after zlib's puff) that records the longest
    /// back-reference distance, to check what a window-limited peer would see.
    mod puff {
        const LBASE: [usize; 29] = [
            3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195,
            227, 258,
        ];
        const LEXT: [u32; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
        const DBASE: [usize; 30] = [
            1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
            4097, 6145, 8193, 12289, 16385, 24577,
        ];
        const DEXT: [u32; 30] =
            [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

        struct Bits<'a> {
            d: &'a [u8],
            pos: usize,
            buf: u32,
            cnt: u32,
        }

        impl Bits<'_> {
            fn get(&mut self, n: u32) -> Option<u32> {
                while self.cnt < n {
                    self.buf |= u32::from(*self.d.get(self.pos)?) << self.cnt;
                    self.pos += 1;
                    self.cnt += 8;
                }
                let v = self.buf & ((1u32 << n) - 1);
                self.buf = self.buf.checked_shr(n).unwrap_or(0);
                self.cnt -= n;
                Some(v)
            }
        }

        struct Huffman {
            count: [u16; 16],
            symbol: Vec<u16>,
        }

        fn build(lengths: &[u8]) -> Huffman {
            let mut count = [0u16; 16];
            for &l in lengths {
                count[l as usize] += 1;
            }
            count[0] = 0;
            let mut offs = [0u16; 16];
            for l in 1..15 {
                offs[l + 1] = offs[l] + count[l];
            }
            let mut symbol = vec![0u16; lengths.len()];
            for (sym, &l) in lengths.iter().enumerate() {
                if l != 0 {
                    symbol[offs[l as usize] as usize] = sym as u16;
                    offs[l as usize] += 1;
                }
            }
            Huffman { count, symbol }
        }

        fn decode(b: &mut Bits, h: &Huffman) -> Option<usize> {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= b.get(1)? as i32;
                let count = i32::from(h.count[len]);
                if code - count < first {
                    return h.symbol.get((index + code - first) as usize).map(|&s| s as usize);
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            None
        }

        /// Decodes a non-final stream that ends at a byte boundary; returns the output
        /// and the longest distance used.
        pub fn inflate(d: &[u8]) -> Option<(Vec<u8>, usize)> {
            let mut b = Bits { d, pos: 0, buf: 0, cnt: 0 };
            let (mut out, mut max_dist) = (Vec::new(), 0usize);
            while b.pos < d.len() || b.cnt >= 8 {
                let last = b.get(1)?;
                match b.get(2)? {
                    0 => {
                        b.buf = 0;
                        b.cnt = 0;
                        let len = usize::from(*d.get(b.pos)?) | usize::from(*d.get(b.pos + 1)?) << 8;
                        let nlen = usize::from(*d.get(b.pos + 2)?) | usize::from(*d.get(b.pos + 3)?) << 8;
                        if len != !nlen & 0xffff {
                            return None;
                        }
                        out.extend_from_slice(d.get(b.pos + 4..b.pos + 4 + len)?);
                        b.pos += 4 + len;
                    }
                    t @ (1 | 2) => {
                        let (lit, dist) = if t == 1 {
                            let mut l = [8u8; 288];
                            l[144..256].fill(9);
                            l[256..280].fill(7);
                            (build(&l), build(&[5u8; 30]))
                        } else {
                            let nlen = b.get(5)? as usize + 257;
                            let ndist = b.get(5)? as usize + 1;
                            let ncode = b.get(4)? as usize + 4;
                            const ORDER: [usize; 19] =
                                [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];
                            let mut cl = [0u8; 19];
                            for &o in &ORDER[..ncode] {
                                cl[o] = b.get(3)? as u8;
                            }
                            let clh = build(&cl);
                            let mut lens = Vec::new();
                            while lens.len() < nlen + ndist {
                                match decode(&mut b, &clh)? {
                                    s @ 0..=15 => lens.push(s as u8),
                                    16 => {
                                        let prev = *lens.last()?;
                                        for _ in 0..3 + b.get(2)? {
                                            lens.push(prev);
                                        }
                                    }
                                    17 => lens.extend(std::iter::repeat_n(0, 3 + b.get(3)? as usize)),
                                    _ => lens.extend(std::iter::repeat_n(0, 11 + b.get(7)? as usize)),
                                }
                            }
                            (build(&lens[..nlen]), build(&lens[nlen..nlen + ndist]))
                        };
                        loop {
                            let sym = decode(&mut b, &lit)?;
                            if sym < 256 {
                                out.push(sym as u8);
                            } else if sym == 256 {
                                break;
                            } else {
                                let k = sym - 257;
                                let len = LBASE.get(k)? + b.get(*LEXT.get(k)?)? as usize;
                                let dk = decode(&mut b, &dist)?;
                                let dd = DBASE.get(dk)? + b.get(*DEXT.get(dk)?)? as usize;
                                if dd > out.len() {
                                    return None;
                                }
                                max_dist = max_dist.max(dd);
                                for _ in 0..len {
                                    out.push(out[out.len() - dd]);
                                }
                            }
                        }
                    }
                    _ => return None,
                }
                if last == 1 {
                    break;
                }
            }
            Some((out, max_dist))
        }
    }

    /// Compresses `msgs` in a row under `agreed` and decodes the whole stream with the
    /// independent decoder: (all plain bytes, longest distance).
    fn distances(bits: u8, level: u32, msgs: &[Vec<u8>]) -> (Vec<u8>, usize) {
        let cfg = DeflateConfig { level, ..DeflateConfig::default() };
        let mut d = Deflater::new(Side::Server, &agreed(false, false, bits, 15), &cfg);
        let mut stream = Vec::new();
        for m in msgs {
            d.compress(m, &mut stream).unwrap();
            stream.extend_from_slice(&TRAILER);
        }
        puff::inflate(&stream).expect("valid deflate stream")
    }

    #[test]
    fn back_references_stay_within_the_agreed_window() {
        // Repeats at distances around 256..=2000 and JSON with context takeover.
        let mut x: u32 = 12345;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    b"abcdefghijklmnopqrstuvwxyz{}:,\""[(x >> 16) as usize % 31]
                })
                .collect()
        };
        let mut msgs: Vec<Vec<u8>> = Vec::new();
        for period in [200usize, 251, 256, 257, 300, 511, 600, 1500] {
            let unit = noise(period);
            msgs.push(unit.iter().cycle().take(period * 6).copied().collect());
        }
        msgs.extend((0..100).map(json_msg));
        let plain = msgs.concat();

        // The decoder sees long references when the window allows them.
        let (out, far) = distances(12, 6, &msgs);
        assert_eq!(out, plain);
        assert!(far > 1000, "{far}");

        for level in 0..=9 {
            for bits in 8..=15u8 {
                let (out, far) = distances(bits, level, &msgs);
                assert_eq!(out, plain);
                assert!(far <= 1 << bits, "bits {bits} level {level}: distance {far}");
            }
        }
        // Window 8 still compresses well (references up to 250 bytes back).
        let json: Vec<Vec<u8>> = (0..100).map(json_msg).collect();
        let a = agreed(false, false, 8, 15);
        let sizes = round_trip(Side::Server, &a, &DeflateConfig::default(), &json);
        let raw: usize = json.iter().map(Vec::len).sum();
        assert!(sizes.iter().sum::<usize>() * 3 < raw, "{sizes:?}");
    }

    #[test]
    fn decompression_bomb_is_stopped_at_max() {
        // Deflate tops out near 1032:1, so 100 MiB of zeros is about 100 KiB.
        let claimed = 100usize << 20;
        let cfg = DeflateConfig { level: 9, ..DeflateConfig::default() };
        let mut d = Deflater::new(Side::Client, &Agreed::default(), &cfg);
        let mut bomb = Vec::new();
        // Once the window is all zeros, every further MiB of zeros compresses to the
        // same bytes, so compress two and repeat the second.
        let block = vec![0u8; 1 << 20];
        d.compress_fragment(&block, false, &mut bomb).unwrap();
        let mut again = Vec::new();
        d.compress_fragment(&block, false, &mut again).unwrap();
        for _ in 1..99 {
            bomb.extend_from_slice(&again);
        }
        d.compress_fragment(&block, true, &mut bomb).unwrap();
        assert!(bomb.len() < 150 * 1024, "{}", bomb.len());
        let max = 1 << 20;
        for frame in [bomb.len(), 4096] {
            let mut i = Inflater::new(Side::Server, &Agreed::default());
            let mut out = Vec::new();
            let chunks: Vec<&[u8]> = bomb.chunks(frame).collect();
            let mut result = Ok(());
            for (k, ch) in chunks.iter().enumerate() {
                result = i.inflate(ch, k + 1 == chunks.len(), &mut out, max);
                if result.is_err() {
                    break;
                }
            }
            assert_eq!(result, Err(InflateError::TooBig));
            assert!(out.len() <= max + 1, "{}", out.len());
            assert!(out.capacity() <= 2 * (max + INFLATE_STEP), "{}", out.capacity());
            assert!(out.capacity() < claimed / 32);
        }

        // The same payload is fine with a big enough limit (and exact limits work).
        let mut i = Inflater::new(Side::Server, &Agreed::default());
        let mut out = Vec::new();
        i.inflate(&bomb, true, &mut out, claimed).unwrap();
        assert_eq!(out.len(), claimed);
        let mut i = Inflater::new(Side::Server, &Agreed::default());
        let mut out = Vec::new();
        assert_eq!(i.inflate(&bomb, true, &mut out, claimed - 1), Err(InflateError::TooBig));
    }

    #[test]
    fn max_counts_bytes_already_in_out() {
        let a = Agreed::default();
        let mut d = Deflater::new(Side::Client, &a, &DeflateConfig::default());
        let mut c = Vec::new();
        d.compress(b"0123456789", &mut c).unwrap();
        let mut i = Inflater::new(Side::Server, &a);
        let mut out = b"abcde".to_vec();
        assert_eq!(i.inflate(&c, true, &mut out, 14), Err(InflateError::TooBig));
        let mut i = Inflater::new(Side::Server, &a);
        let mut out = b"abcde".to_vec();
        i.inflate(&c, true, &mut out, 15).unwrap();
        assert_eq!(out, b"abcde0123456789");
    }

    #[test]
    fn corrupt_input_is_reported() {
        let a = Agreed::default();
        for bad in [
            &[0xff, 0xff, 0xff, 0xff][..],             // reserved block type 11
            &[0x00, 0x05, 0x00, 0x00, 0x00, 0x48][..], // stored block with bad NLEN
            &[0xf2, 0x00, 0x11, 0x00, 0x00][..],       // refers back before any output
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xf7][..],
        ] {
            let mut i = Inflater::new(Side::Client, &a);
            let r = inflate_all(&mut i, bad);
            assert!(matches!(r, Err(InflateError::Corrupt(_))), "{bad:02x?}: {r:?}");
            // The inflater is usable again (though the connection should be failed).
            assert_eq!(inflate_all(&mut i, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).unwrap(), b"Hello");
        }
        // A reference into context that was reset away (peer said no takeover).
        let mut i = Inflater::new(Side::Client, &agreed(true, false, 15, 15));
        assert_eq!(inflate_all(&mut i, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]).unwrap(), b"Hello");
        assert!(matches!(inflate_all(&mut i, &[0xf2, 0x00, 0x11, 0x00, 0x00]), Err(InflateError::Corrupt(_))));
    }
}
