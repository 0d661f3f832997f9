//! permessage-deflate (RFC 7692): handshake negotiation and per-message
//! compression, without I/O. [`config`] holds what an endpoint wants and what was
//! agreed, [`negotiation`] the offer and answer headers, [`codec`] the compressor and
//! decompressor.
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

pub mod codec;
pub mod config;
pub mod negotiation;

pub use codec::{Deflater, InflateError, Inflater, Side};
pub use config::{Agreed, DeflateConfig};
pub use negotiation::{client_accept, client_offer, server_negotiate};

/// The extension's registered name.
pub const EXTENSION_NAME: &str = "permessage-deflate";

/// Agreed parameters in one line, for tests.
#[cfg(test)]
fn agreed(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> Agreed {
    Agreed {
        server_no_context_takeover: snct,
        client_no_context_takeover: cnct,
        server_max_window_bits: sbits,
        client_max_window_bits: cbits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::handshake::headers::parse_param_list;

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
            let _ = parse_param_list(&format!("permessage-deflate; {text}"));
        }
    }
}
