//! permessage-deflate (RFC 7692): handshake negotiation and per-message
//! compression, without I/O.
//!
//! Negotiation: a client sends [`client_offer`] and checks the answer with
//! [`client_accept`]; a server answers with [`server_negotiate`]. Both sides end up with
//! the same [`Agreed`] parameters, from which each endpoint builds one [`Deflater`] for
//! the messages it sends and one [`Inflater`] for the messages it receives.
//!
//! The compression engine is `zlib-rs` (the pure-Rust zlib that `flate2` uses as its
//! `zlib-rs` backend), used directly because `flate2` has no way to set the memory level
//! ([`DeflateConfig::mem_level`]).
//!
//! # Window bits 8
//! zlib, and so zlib-rs, will not make a raw deflate stream with an 8-bit window: asked
//! for 8 it uses 9 (zlib-rs rejects 8 for raw streams). A 9-bit zlib window
//! would still be RFC 7692 compliant only if no back-reference reached further than
//! 256 bytes, since the peer may decompress with a 256-byte window (§7.1.2). That holds:
//! zlib never matches further back than `window - MIN_LOOKAHEAD` = 512 - 262 = 250
//! bytes (zlib-rs asserts this in every match path), because the rest of the window is
//! kept as lookahead. So when our sending side is limited to 8 bits the [`Deflater`]
//! compresses with 9, and the test `back_references_stay_within_the_agreed_window`
//! decodes our output with an independent decoder to check the longest distance at
//! every level and window size. (Huffman-only coding would also be compliant, with no
//! back-references at all, but saved about 17% on JSON where this saves about 75%.)
//!
//! Decompressing is the easy direction: a decompressor with a larger window reads any
//! stream made with a smaller one. zlib-rs keeps a 32 KiB window whatever it is told,
//! so the [`Inflater`] simply uses 15 bits for every agreement.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use zlib_rs::{DeflateFlush, InflateFlush, Status};

/// The extension's registered name.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// The bytes a sync flush ends with; stripped from every sent message and put back
/// before inflating a received one (RFC 7692 §7.2.1, §7.2.2).
const TRAILER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

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

/// What an endpoint is willing to use (options set by the application).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Server: always include it in the response (the server then compresses every
    /// message from an empty window). Client: request it in the offer.
    pub server_no_context_takeover: bool,
    /// Client: promise it in the offer (the client resets its compressor after every
    /// message). Server: require it from the client in the response.
    pub client_no_context_takeover: bool,
    /// Largest window (log2 bytes, 8..=15) for what the server compresses. Server: its
    /// own limit. Client: requested in the offer when below 15. Default 15 (no parameter).
    pub server_max_window_bits: u8,
    /// Largest window (log2 bytes, 8..=15) for what the client compresses. Client: sent
    /// as the hint value in the offer when below 15. Server: imposed on clients that
    /// offer `client_max_window_bits`; offers without it are declined when this is below
    /// 15, since the server could not limit the client's window. Default 15.
    pub client_max_window_bits: u8,
    /// Messages shorter than this many bytes are sent uncompressed. Default 64: below
    /// that the saving is a few bytes at best and not worth the CPU time (Node's `ws`
    /// uses 1024, which leaves most small JSON messages uncompressed).
    pub threshold: usize,
    /// zlib compression level 0..=9. Default 6, zlib's own default. Level 1 is two to
    /// four times faster; its output is about 15% larger on small JSON messages with
    /// context takeover and up to 50% larger on messages of a few KB.
    pub level: u32,
    /// zlib memory level 1..=9 (hash table and buffer size: about
    /// `2^(mem_level + 9)` bytes besides the `2^(window_bits + 2)` bytes of window).
    /// Default 8, zlib's default; lower it to save memory on many idle connections.
    pub mem_level: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            threshold: 64,
            level: 6,
            mem_level: 8,
        }
    }
}

impl DeflateConfig {
    /// Checks every field's range; the error names the first bad field.
    ///
    /// The constructors never panic on a bad configuration (they clamp), but an
    /// application should be told about it when it sets the options.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !(8..=15).contains(&self.server_max_window_bits) {
            return Err("server_max_window_bits must be in 8..=15");
        }
        if !(8..=15).contains(&self.client_max_window_bits) {
            return Err("client_max_window_bits must be in 8..=15");
        }
        if self.level > 9 {
            return Err("level must be in 0..=9");
        }
        if !(1..=9).contains(&self.mem_level) {
            return Err("mem_level must be in 1..=9");
        }
        Ok(())
    }
}

/// Parameters agreed for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// Largest window (log2 bytes) the server compresses with.
    pub server_max_window_bits: u8,
    /// Largest window (log2 bytes) the client compresses with.
    pub client_max_window_bits: u8,
}

impl Default for Agreed {
    /// Plain `permessage-deflate` without parameters.
    fn default() -> Self {
        Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

// ---------------------------------------------------------------------------
// Header parsing
// ---------------------------------------------------------------------------

/// One extension from a Sec-WebSocket-Extensions value.
#[derive(Debug)]
struct Extension {
    name: String,
    params: Vec<Param>,
}

#[derive(Debug)]
struct Param {
    name: String,
    /// Unquoted value, if any.
    value: Option<String>,
}

/// RFC 7230 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self, what: &str) -> Result<&'a str, String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        match self.s.get(start..self.i) {
            Some(t) if !t.is_empty() => Ok(t),
            _ => Err(format!("expected {what} at offset {start}")),
        }
    }

    /// A quoted-string starting at the opening quote; returns it unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        let start = self.i;
        self.i += 1;
        let mut bytes = Vec::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated quoted string at offset {start}")),
                Some(b'"') => {
                    self.i += 1;
                    // Only obs-text can be non-ASCII; no known parameter uses it.
                    return Ok(String::from_utf8_lossy(&bytes).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                            bytes.push(b);
                            self.i += 1;
                        }
                        _ => return Err(format!("bad escape in quoted string at offset {}", self.i)),
                    }
                }
                Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                    bytes.push(b);
                    self.i += 1;
                }
                Some(b) => return Err(format!("byte {b:#04x} not allowed in quoted string at offset {}", self.i)),
            }
        }
    }
}

/// Parses one Sec-WebSocket-Extensions value: `ext *( "," ext )`, each
/// `name *( ";" param [ "=" ( token / quoted-string ) ] )`. Empty list elements are
/// skipped (RFC 7230 §7).
fn parse_extensions(header: &str) -> Result<Vec<Extension>, String> {
    let mut c = Cursor { s: header, i: 0 };
    let mut out = Vec::new();
    loop {
        c.skip_ows();
        match c.peek() {
            None => return Ok(out),
            Some(b',') => {
                c.i += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = c.token("an extension name")?.to_string();
        let mut params = Vec::new();
        loop {
            c.skip_ows();
            match c.peek() {
                None => break,
                Some(b',') => {
                    c.i += 1;
                    break;
                }
                Some(b';') => {
                    c.i += 1;
                    c.skip_ows();
                    let pname = c.token("a parameter name")?.to_string();
                    c.skip_ows();
                    let value = if c.peek() == Some(b'=') {
                        c.i += 1;
                        c.skip_ows();
                        if c.peek() == Some(b'"') {
                            Some(c.quoted()?)
                        } else {
                            Some(c.token("a parameter value")?.to_string())
                        }
                    } else {
                        None
                    };
                    params.push(Param { name: pname, value });
                }
                Some(b) => {
                    return Err(format!("unexpected byte {b:#04x} at offset {}", c.i));
                }
            }
        }
        out.push(Extension { name, params });
    }
}

/// The permessage-deflate parameters present in one offer or response.
#[derive(Debug, Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `Some(None)`: present without a value.
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

/// RFC 7692 §7.1.2: a decimal integer 8..=15 without leading zeros.
fn parse_window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = v.parse().ok()?;
    (8..=15).contains(&n).then_some(n)
}

/// Reads the known parameters; unknown ones, duplicates and bad values are errors
/// (RFC 7692 §5 and §7.1).
fn read_params(ext: &Extension) -> Result<Params, String> {
    let mut p = Params::default();
    let mut seen = [false; 4];
    for param in &ext.params {
        let name = param.name.to_ascii_lowercase();
        let idx = match name.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err(format!("unknown parameter {}", param.name)),
        };
        if seen[idx] {
            return Err(format!("duplicate parameter {name}"));
        }
        seen[idx] = true;
        match idx {
            0 | 1 => {
                if param.value.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                if idx == 0 {
                    p.server_no_context_takeover = true;
                } else {
                    p.client_no_context_takeover = true;
                }
            }
            _ => {
                let bits = match &param.value {
                    None => None,
                    Some(v) => Some(parse_window_bits(v).ok_or_else(|| format!("invalid value {v:?} for {name}"))?),
                };
                if idx == 2 {
                    p.server_max_window_bits = Some(bits);
                } else {
                    p.client_max_window_bits = Some(bits);
                }
            }
        }
    }
    Ok(p)
}

fn is_deflate(ext: &Extension) -> bool {
    ext.name.eq_ignore_ascii_case(EXTENSION_NAME)
}

fn clamp_bits(b: u8) -> u8 {
    b.clamp(8, 15)
}

// ---------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------

/// The client's Sec-WebSocket-Extensions offer for `cfg` (e.g.
/// `"permessage-deflate; client_max_window_bits"`).
///
/// Always includes `client_max_window_bits` (without value when 15) so servers may
/// limit our window.
pub fn client_offer(cfg: &DeflateConfig) -> String {
    let mut s = String::from(EXTENSION_NAME);
    if cfg.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if cfg.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    let server_bits = clamp_bits(cfg.server_max_window_bits);
    if server_bits < 15 {
        s.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    let client_bits = clamp_bits(cfg.client_max_window_bits);
    if client_bits < 15 {
        s.push_str(&format!("; client_max_window_bits={client_bits}"));
    } else {
        s.push_str("; client_max_window_bits");
    }
    s
}

/// Server side: chooses what to answer to the client's offers.
///
/// `offers` are the Sec-WebSocket-Extensions header values of the request (each may
/// hold several comma-separated extensions, each with `;`-separated parameters; values
/// may be quoted strings). Picks the first acceptable permessage-deflate offer: an offer
/// with an unknown parameter, a duplicate parameter or an invalid value is declined and
/// the next one considered (RFC 7692 §5). Other extensions are ignored.
///
/// Returns `Ok(None)` when nothing is acceptable (respond without the extension),
/// `Ok(Some((agreed, response_header_value)))` otherwise, and `Err` when a header value
/// is not syntactically valid (the request is malformed).
///
/// The server's `cfg` is honoured: `server_no_context_takeover` and
/// `client_no_context_takeover` are added to the response when set; the server's window
/// is the smaller of the client's request and `cfg.server_max_window_bits` (announced
/// whenever requested or below 15); the client's window is limited to
/// `cfg.client_max_window_bits` only when the client offered `client_max_window_bits`,
/// and an offer without it is declined if that limit is below 15.
pub fn server_negotiate(offers: &[String], cfg: &DeflateConfig) -> Result<Option<(Agreed, String)>, String> {
    // Parse everything first: a malformed header is an error even after a good offer.
    let mut parsed = Vec::new();
    for h in offers {
        parsed.extend(parse_extensions(h)?);
    }
    Ok(parsed.iter().filter(|e| is_deflate(e)).find_map(|e| accept_offer(e, cfg)))
}

/// Accepts one offer, or declines it (`None`).
fn accept_offer(ext: &Extension, cfg: &DeflateConfig) -> Option<(Agreed, String)> {
    let p = read_params(ext).ok()?;
    // In an offer server_max_window_bits needs a value; client_max_window_bits may omit it.
    let offered_server_bits = match p.server_max_window_bits {
        Some(None) => return None,
        Some(Some(b)) => Some(b),
        None => None,
    };
    let own_client_limit = clamp_bits(cfg.client_max_window_bits);
    if own_client_limit < 15 && p.client_max_window_bits.is_none() {
        // The client cannot be told to use a smaller window, so our limit can't hold.
        return None;
    }
    let server_bits = offered_server_bits.unwrap_or(15).min(clamp_bits(cfg.server_max_window_bits));
    let client_bits = match p.client_max_window_bits {
        None => 15,
        Some(hint) => hint.unwrap_or(15).min(own_client_limit),
    };
    let agreed = Agreed {
        server_no_context_takeover: p.server_no_context_takeover || cfg.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover || cfg.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    };
    let mut resp = String::from(EXTENSION_NAME);
    if agreed.server_no_context_takeover {
        resp.push_str("; server_no_context_takeover");
    }
    if agreed.client_no_context_takeover {
        resp.push_str("; client_no_context_takeover");
    }
    // Accepting a requested server_max_window_bits means echoing it (RFC 7692 §7.1.2.1).
    if offered_server_bits.is_some() || server_bits < 15 {
        resp.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    if p.client_max_window_bits.is_some() && client_bits < 15 {
        resp.push_str(&format!("; client_max_window_bits={client_bits}"));
    }
    Some((agreed, resp))
}

/// Client side: validates the server's response header value against what we offered
/// with [`client_offer`]`(offered)`.
///
/// Fails (RFC 7692 §7.1) when the response has no permessage-deflate or more than one,
/// or when its permessage-deflate has an unknown parameter, a duplicate, an invalid
/// value, a `server_max_window_bits` larger than we asked for (an absent one counts as
/// 15), or a `client_max_window_bits` larger than the value we offered.
/// `client_max_window_bits` itself is always allowed because our offer always carries
/// it. Other extensions in the response are ignored; checking that they were offered is
/// the handshake's job. Call this only when the response has the header at all: without
/// it the extension is simply not in use.
///
/// A response that omits a `server_no_context_takeover` we asked for is accepted with
/// context takeover: our decompressor handles both, so nothing breaks.
pub fn client_accept(response: &str, offered: &DeflateConfig) -> Result<Agreed, String> {
    let exts = parse_extensions(response)?;
    let mut found = exts.iter().filter(|e| is_deflate(e));
    let ext = found.next().ok_or_else(|| "the response has no permessage-deflate".to_string())?;
    if found.next().is_some() {
        return Err("the response has more than one permessage-deflate".into());
    }
    let p = read_params(ext)?;
    let server_bits = match p.server_max_window_bits {
        Some(None) => return Err("server_max_window_bits needs a value in a response".into()),
        Some(Some(b)) => b,
        None => 15,
    };
    let asked_server = clamp_bits(offered.server_max_window_bits);
    if server_bits > asked_server {
        return Err(format!("server_max_window_bits={server_bits} exceeds the requested {asked_server}"));
    }
    let offered_client = clamp_bits(offered.client_max_window_bits);
    let client_bits = match p.client_max_window_bits {
        Some(None) => return Err("client_max_window_bits needs a value in a response".into()),
        Some(Some(b)) if b > offered_client => {
            return Err(format!("client_max_window_bits={b} exceeds the offered {offered_client}"))
        }
        Some(Some(b)) => b,
        None => offered_client,
    };
    Ok(Agreed {
        server_no_context_takeover: p.server_no_context_takeover,
        // Offering it was a promise, whatever the server answers.
        client_no_context_takeover: p.client_no_context_takeover || offered.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

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
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn neg(offers: &[&str], cfg: &DeflateConfig) -> Option<(Agreed, String)> {
        server_negotiate(&s(offers), cfg).expect("well-formed header")
    }

    fn agreed(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> Agreed {
        Agreed {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        }
    }

    // ----- config -----

    #[test]
    fn config_defaults_and_validate() {
        let c = DeflateConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.server_max_window_bits, c.client_max_window_bits), (15, 15));
        assert_eq!((c.threshold, c.level, c.mem_level), (64, 6, 8));
        for bad in [
            DeflateConfig { server_max_window_bits: 7, ..c },
            DeflateConfig { server_max_window_bits: 16, ..c },
            DeflateConfig { client_max_window_bits: 7, ..c },
            DeflateConfig { client_max_window_bits: 16, ..c },
            DeflateConfig { level: 10, ..c },
            DeflateConfig { mem_level: 0, ..c },
            DeflateConfig { mem_level: 10, ..c },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        for ok in [
            DeflateConfig { server_max_window_bits: 8, client_max_window_bits: 8, ..c },
            DeflateConfig { level: 0, mem_level: 1, ..c },
            DeflateConfig { level: 9, mem_level: 9, ..c },
        ] {
            assert_eq!(ok.validate(), Ok(()));
        }
    }

    #[test]
    fn invalid_config_never_panics() {
        let c = DeflateConfig {
            server_max_window_bits: 0,
            client_max_window_bits: 200,
            level: 99,
            mem_level: 0,
            threshold: 0,
            ..DeflateConfig::default()
        };
        let offer = client_offer(&c);
        assert_eq!(offer, "permessage-deflate; server_max_window_bits=8; client_max_window_bits");
        let _ = server_negotiate(&[offer], &c);
        let a = agreed(false, false, 0, 200);
        for side in [Side::Client, Side::Server] {
            let mut d = Deflater::new(side, &a, &c);
            let mut out = Vec::new();
            d.compress(b"hello hello hello", &mut out).unwrap();
            let peer = if side == Side::Client { Side::Server } else { Side::Client };
            let mut i = Inflater::new(peer, &a);
            let mut plain = Vec::new();
            i.inflate(&out, true, &mut plain, 1 << 20).unwrap();
            assert_eq!(plain, b"hello hello hello");
        }
    }

    // ----- header parsing -----

    #[test]
    fn parser_handles_lists_params_and_quotes() {
        let e = parse_extensions(" foo , permessage-deflate ;a; b = 1 ;c=\"x,y;\\\"z\" ,, bar;q=\"\"\t").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "foo");
        assert_eq!(e[1].name, "permessage-deflate");
        let p: Vec<_> = e[1].params.iter().map(|p| (p.name.as_str(), p.value.as_deref())).collect();
        assert_eq!(p, [("a", None), ("b", Some("1")), ("c", Some("x,y;\"z"))]);
        assert_eq!(e[2].params[0].value.as_deref(), Some(""));
        assert!(parse_extensions("").unwrap().is_empty());
        assert!(parse_extensions(" , ,").unwrap().is_empty());
    }

    #[test]
    fn parser_rejects_malformed() {
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; ; x",
            ";x",
            "permessage-deflate; a=",
            "permessage-deflate; a=\"open",
            "permessage-deflate; a=\"bad\\",
            "permessage-deflate; a=b c",
            "permessage-deflate x",
            "permessage deflate",
            "permessage-deflate; a=\"ctl\u{1}\"",
            "permessage-deflate; a=(x)",
            "perméssage-deflate",
        ] {
            assert!(parse_extensions(bad).is_err(), "{bad:?}");
            assert!(server_negotiate(&s(&[bad]), &DeflateConfig::default()).is_err(), "{bad:?}");
            assert!(client_accept(bad, &DeflateConfig::default()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn window_bits_values() {
        for (v, want) in [
            ("8", Some(8)),
            ("9", Some(9)),
            ("15", Some(15)),
            ("7", None),
            ("16", None),
            ("0", None),
            ("08", None),
            ("010", None),
            ("abc", None),
            ("", None),
            ("+9", None),
            ("1 0", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_window_bits(v), want, "{v:?}");
        }
    }

    // ----- client offer -----

    #[test]
    fn client_offer_strings() {
        let d = DeflateConfig::default();
        assert_eq!(client_offer(&d), "permessage-deflate; client_max_window_bits");
        let c = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            ..d
        };
        assert_eq!(
            client_offer(&c),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
        );
        // Our own offer must be acceptable to a default server.
        assert!(neg(&[&client_offer(&c)], &d).is_some());
    }

    // ----- server negotiation -----

    #[test]
    fn server_plain_offer() {
        let d = DeflateConfig::default();
        let (a, r) = neg(&["permessage-deflate"], &d).unwrap();
        assert_eq!(a, Agreed::default());
        assert_eq!(r, "permessage-deflate");
    }

    #[test]
    fn server_no_offer_or_other_extensions() {
        let d = DeflateConfig::default();
        assert_eq!(neg(&[], &d), None);
        assert_eq!(neg(&[""], &d), None);
        assert_eq!(neg(&["x-webkit-deflate-frame", "foo; bar=1"], &d), None);
        let (_, r) = neg(&["foo, permessage-deflate, bar"], &d).unwrap();
        assert_eq!(r, "permessage-deflate");
    }

    #[test]
    fn server_extension_name_case_insensitive() {
        let (a, _) = neg(&["PerMessage-Deflate; Server_Max_Window_Bits=10"], &DeflateConfig::default()).unwrap();
        assert_eq!(a.server_max_window_bits, 10);
    }

    #[test]
    fn server_rfc_7692_section_5_examples() {
        let d = DeflateConfig::default();
        // §5: "permessage-deflate; client_max_window_bits; server_max_window_bits=10,
        //      permessage-deflate; client_max_window_bits" — a server that takes the
        // first one limits its own window to 10.
        let (a, r) = neg(
            &["permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
               permessage-deflate; client_max_window_bits"],
            &d,
        )
        .unwrap();
        assert_eq!(a, agreed(false, false, 10, 15));
        assert_eq!(r, "permessage-deflate; server_max_window_bits=10");
        // The same offer split over two header lines.
        let (a2, _) = neg(
            &[
                "permessage-deflate; client_max_window_bits; server_max_window_bits=10",
                "permessage-deflate; client_max_window_bits",
            ],
            &d,
        )
        .unwrap();
        assert_eq!(a2, a);
    }

    #[test]
    fn server_declines_bad_offer_and_takes_next() {
        let d = DeflateConfig::default();
        for first in [
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits=\"7\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=\"\"",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
            "permessage-deflate; unknown_param",
            "permessage-deflate; x=1; server_max_window_bits=10",
        ] {
            assert_eq!(neg(&[first], &d), None, "{first}");
            let both = format!("{first}, permessage-deflate; client_no_context_takeover");
            let (a, r) = neg(&[&both], &d).unwrap_or_else(|| panic!("{both}"));
            assert_eq!(a, agreed(false, true, 15, 15), "{both}");
            assert_eq!(r, "permessage-deflate; client_no_context_takeover");
        }
    }

    #[test]
    fn server_quoted_values() {
        let d = DeflateConfig::default();
        let (a, r) = neg(
            &["permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=\"1\\2\""],
            &DeflateConfig { client_max_window_bits: 13, ..d },
        )
        .unwrap();
        assert_eq!(a, agreed(false, false, 10, 12));
        assert_eq!(r, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12");
    }

    #[test]
    fn server_window_bits_combinations() {
        let d = DeflateConfig::default();
        // Client asks server ≤ 10; server config 12 → 10; server config 9 → 9.
        let off = "permessage-deflate; server_max_window_bits=10";
        assert_eq!(
            neg(&[off], &DeflateConfig { server_max_window_bits: 12, ..d }).unwrap().0.server_max_window_bits,
            10
        );
        let (a, r) = neg(&[off], &DeflateConfig { server_max_window_bits: 9, ..d }).unwrap();
        assert_eq!((a.server_max_window_bits, r.as_str()), (9, "permessage-deflate; server_max_window_bits=9"));
        // Requested 15 is echoed (acceptance means including it).
        let (a, r) = neg(&["permessage-deflate; server_max_window_bits=15"], &d).unwrap();
        assert_eq!((a.server_max_window_bits, r.as_str()), (15, "permessage-deflate; server_max_window_bits=15"));
        // Not requested, but the server limits itself: announced anyway.
        let (a, r) = neg(&["permessage-deflate"], &DeflateConfig { server_max_window_bits: 11, ..d }).unwrap();
        assert_eq!((a.server_max_window_bits, r.as_str()), (11, "permessage-deflate; server_max_window_bits=11"));
        // client_max_window_bits without value: the server may set its own limit...
        let off = "permessage-deflate; client_max_window_bits";
        let (a, r) = neg(&[off], &DeflateConfig { client_max_window_bits: 10, ..d }).unwrap();
        assert_eq!((a.client_max_window_bits, r.as_str()), (10, "permessage-deflate; client_max_window_bits=10"));
        // ...or leave it out when it has none.
        let (a, r) = neg(&[off], &d).unwrap();
        assert_eq!((a.client_max_window_bits, r.as_str()), (15, "permessage-deflate"));
        // A hint value: the client will use at most that; the server confirms it.
        let (a, r) = neg(&["permessage-deflate; client_max_window_bits=11"], &d).unwrap();
        assert_eq!((a.client_max_window_bits, r.as_str()), (11, "permessage-deflate; client_max_window_bits=11"));
        let (a, _) =
            neg(&["permessage-deflate; client_max_window_bits=11"], &DeflateConfig { client_max_window_bits: 9, ..d })
                .unwrap();
        assert_eq!(a.client_max_window_bits, 9);
        // client_max_window_bits not offered: never sent, and a server that needs a
        // limit declines that offer but takes a later one that allows it.
        let limited = DeflateConfig { client_max_window_bits: 10, ..d };
        assert_eq!(neg(&["permessage-deflate"], &limited), None);
        let (a, r) = neg(&["permessage-deflate, permessage-deflate; client_max_window_bits"], &limited).unwrap();
        assert_eq!((a.client_max_window_bits, r.as_str()), (10, "permessage-deflate; client_max_window_bits=10"));
        // Window 8 both ways is acceptable.
        let (a, r) = neg(&["permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"], &d).unwrap();
        assert_eq!(a, agreed(false, false, 8, 8));
        assert_eq!(r, "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8");
    }

    #[test]
    fn server_no_context_takeover_combinations() {
        let d = DeflateConfig::default();
        for offer_s in [false, true] {
            for offer_c in [false, true] {
                for cfg_s in [false, true] {
                    for cfg_c in [false, true] {
                        let mut off = String::from("permessage-deflate");
                        if offer_s {
                            off.push_str("; server_no_context_takeover");
                        }
                        if offer_c {
                            off.push_str("; client_no_context_takeover");
                        }
                        let cfg =
                            DeflateConfig { server_no_context_takeover: cfg_s, client_no_context_takeover: cfg_c, ..d };
                        let (a, r) = neg(&[&off], &cfg).unwrap();
                        assert_eq!(a.server_no_context_takeover, offer_s || cfg_s);
                        assert_eq!(a.client_no_context_takeover, offer_c || cfg_c);
                        assert_eq!(r.contains("server_no_context_takeover"), offer_s || cfg_s);
                        assert_eq!(r.contains("client_no_context_takeover"), offer_c || cfg_c);
                        // The client reads the same agreement from the response.
                        let client_cfg = DeflateConfig {
                            server_no_context_takeover: offer_s,
                            client_no_context_takeover: offer_c,
                            ..d
                        };
                        assert_eq!(client_accept(&r, &client_cfg), Ok(a));
                    }
                }
            }
        }
    }

    // ----- client acceptance -----

    #[test]
    fn client_accepts_valid_responses() {
        let d = DeflateConfig::default();
        assert_eq!(client_accept("permessage-deflate", &d), Ok(Agreed::default()));
        assert_eq!(
            client_accept("permessage-deflate; server_no_context_takeover", &d),
            Ok(agreed(true, false, 15, 15))
        );
        assert_eq!(
            client_accept("permessage-deflate; client_no_context_takeover", &d),
            Ok(agreed(false, true, 15, 15))
        );
        // The server may limit its own window without being asked.
        assert_eq!(
            client_accept("permessage-deflate; server_max_window_bits=12", &d),
            Ok(agreed(false, false, 12, 15))
        );
        // The server limits our window (we always offer client_max_window_bits).
        assert_eq!(client_accept("permessage-deflate; client_max_window_bits=9", &d), Ok(agreed(false, false, 15, 9)));
        assert_eq!(
            client_accept("permessage-deflate; client_max_window_bits=\"8\"", &d),
            Ok(agreed(false, false, 15, 8))
        );
        // Other extensions are the handshake's business.
        assert_eq!(client_accept("foo, permessage-deflate, bar; x=1", &d), Ok(Agreed::default()));
        // Smaller than asked is fine; equal too.
        let asked = DeflateConfig { server_max_window_bits: 10, client_max_window_bits: 11, ..d };
        assert_eq!(
            client_accept("permessage-deflate; server_max_window_bits=9", &asked),
            Ok(agreed(false, false, 9, 11))
        );
        assert_eq!(
            client_accept("permessage-deflate; server_max_window_bits=10; client_max_window_bits=11", &asked),
            Ok(agreed(false, false, 10, 11))
        );
        // Our promise of client_no_context_takeover holds without an echo.
        let promised = DeflateConfig { client_no_context_takeover: true, ..d };
        assert_eq!(client_accept("permessage-deflate", &promised), Ok(agreed(false, true, 15, 15)));
        // A requested server_no_context_takeover that is not granted: context kept.
        let req = DeflateConfig { server_no_context_takeover: true, ..d };
        assert_eq!(client_accept("permessage-deflate", &req), Ok(Agreed::default()));
    }

    #[test]
    fn client_rejects_invalid_responses() {
        let d = DeflateConfig::default();
        let asked10 = DeflateConfig { server_max_window_bits: 10, ..d };
        let hint11 = DeflateConfig { client_max_window_bits: 11, ..d };
        for (resp, cfg, why) in [
            ("", &d, "no permessage-deflate"),
            ("foo", &d, "no permessage-deflate"),
            ("permessage-deflate, permessage-deflate", &d, "more than one"),
            ("permessage-deflate; unknown", &d, "unknown"),
            ("permessage-deflate; x=\"1\"", &d, "unknown"),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", &d, "duplicate"),
            ("permessage-deflate; client_max_window_bits=9; client_max_window_bits=9", &d, "duplicate"),
            ("permessage-deflate; server_max_window_bits=7", &d, "invalid value"),
            ("permessage-deflate; server_max_window_bits=16", &d, "invalid value"),
            ("permessage-deflate; server_max_window_bits=abc", &d, "invalid value"),
            ("permessage-deflate; client_max_window_bits=7", &d, "invalid value"),
            ("permessage-deflate; server_max_window_bits", &d, "needs a value"),
            ("permessage-deflate; client_max_window_bits", &d, "needs a value"),
            ("permessage-deflate; client_no_context_takeover=1", &d, "takes no value"),
            ("permessage-deflate; server_max_window_bits=11", &asked10, "exceeds"),
            ("permessage-deflate", &asked10, "exceeds"),
            ("permessage-deflate; client_max_window_bits=12", &hint11, "exceeds"),
        ] {
            let e = client_accept(resp, cfg).expect_err(resp);
            assert!(e.contains(why), "{resp:?}: {e}");
        }
    }

    #[test]
    fn negotiation_end_to_end_matrix() {
        let bits = [8u8, 9, 12, 15];
        for cs in bits {
            for cc in bits {
                for ss in bits {
                    for sc in bits {
                        for flags in 0..16u8 {
                            let client = DeflateConfig {
                                server_no_context_takeover: flags & 1 != 0,
                                client_no_context_takeover: flags & 2 != 0,
                                server_max_window_bits: cs,
                                client_max_window_bits: cc,
                                ..DeflateConfig::default()
                            };
                            let server = DeflateConfig {
                                server_no_context_takeover: flags & 4 != 0,
                                client_no_context_takeover: flags & 8 != 0,
                                server_max_window_bits: ss,
                                client_max_window_bits: sc,
                                ..DeflateConfig::default()
                            };
                            let (sa, resp) = neg(&[&client_offer(&client)], &server).unwrap();
                            let ca = client_accept(&resp, &client).unwrap();
                            assert_eq!(ca, sa, "{client:?} {server:?}");
                            assert_eq!(sa.server_max_window_bits, cs.min(ss));
                            assert_eq!(sa.client_max_window_bits, cc.min(sc));
                        }
                    }
                }
            }
        }
    }

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

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 7;
            x ^= x >> 9;
            x as u8
        };
        for n in 0..2000usize {
            let len = n % 64;
            let bytes: Vec<u8> = (0..len).map(|_| next()).collect();
            let mut i = Inflater::new(
                if n % 2 == 0 { Side::Client } else { Side::Server },
                &agreed(n % 3 == 0, false, 8 + (n % 8) as u8, 15),
            );
            let mut out = Vec::new();
            let _ = i.inflate(&bytes, n % 5 != 0, &mut out, 4096);
            let _ = i.inflate(&bytes, true, &mut out, 4096);
            let text = String::from_utf8_lossy(&bytes);
            let _ = server_negotiate(&[text.to_string()], &DeflateConfig::default());
            let _ = client_accept(&text, &DeflateConfig::default());
            let _ = parse_extensions(&format!("permessage-deflate; {text}"));
        }
    }

    #[test]
    fn speed_small_json_messages() {
        // Figures only; run with --release --nocapture for meaningful numbers.
        let small: Vec<Vec<u8>> = (0..1000).map(json_msg).collect();
        // About 2.5 KB each: 20 records.
        let medium: Vec<Vec<u8>> = (0..200).map(|k| (0..20).flat_map(|j| json_msg(k * 20 + j)).collect()).collect();
        let rounds = if cfg!(debug_assertions) { 1 } else { 30 };
        for (set, msgs) in [("small", &small), ("2.5 KB", &medium)] {
            let bytes: usize = msgs.iter().map(Vec::len).sum();
            for (name, a) in
                [("context takeover", Agreed::default()), ("no context takeover", agreed(true, true, 15, 15))]
            {
                for level in [1, 2, 6, 9] {
                    let cfg = DeflateConfig { level, ..DeflateConfig::default() };
                    let mut d = Deflater::new(Side::Client, &a, &cfg);
                    let mut i = Inflater::new(Side::Server, &a);
                    let (mut c, mut p) = (Vec::new(), Vec::new());
                    let mut compressed = 0usize;
                    let t = std::time::Instant::now();
                    for _ in 0..rounds {
                        for m in msgs.iter() {
                            c.clear();
                            p.clear();
                            d.compress(m, &mut c).unwrap();
                            compressed += c.len();
                            i.inflate(&c, true, &mut p, 1 << 20).unwrap();
                        }
                    }
                    let secs = t.elapsed().as_secs_f64();
                    let n = (rounds * msgs.len()) as f64;
                    println!(
                        "{set} messages, {name}, level {level}: {:.0} msgs/s compress+inflate, {} -> {:.1} bytes",
                        n / secs,
                        bytes / msgs.len(),
                        compressed as f64 / n
                    );
                }
            }
        }
    }
}
