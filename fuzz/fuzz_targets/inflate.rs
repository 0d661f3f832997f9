//! permessage-deflate decompression of hostile data, and a compress/decompress round trip.
//!
//! Input: a mode byte (bit 7: round trip), a parameters byte, two bytes of limit or
//! compressor settings, then frames. Each frame is one control byte (bit 0: last frame
//! of its message, bits 1..7: length, 127 = the rest of the input) and its bytes.
#![no_main]

mod common;

use common::Input;
use libfuzzer_sys::fuzz_target;
use wsffi::core::extensions::deflate::{Agreed, DeflateConfig, Deflater, InflateError, Inflater, Side};

/// The documented bound: output grows by at most one 64 KiB step past the limit.
const INFLATE_STEP: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.u8();
    let params = input.u8();
    let side = if params & 1 != 0 { Side::Server } else { Side::Client };
    let agreed = Agreed {
        server_no_context_takeover: params & 2 != 0,
        client_no_context_takeover: params & 4 != 0,
        server_max_window_bits: 8 + (params >> 3 & 7),
        client_max_window_bits: 8 + ((params >> 5) & 7),
    };
    if mode & 0x80 != 0 {
        round_trip(&mut input, side, &agreed);
    } else {
        hostile(&mut input, side, &agreed);
    }
});

/// Reads one frame: (bytes, last frame of its message).
fn next_frame<'a>(input: &mut Input<'a>) -> (&'a [u8], bool) {
    let ctl = input.u8();
    let len = usize::from(ctl >> 1);
    let bytes = if len == 127 { input.rest() } else { input.bytes(len) };
    (bytes, ctl & 1 != 0)
}

fn hostile(input: &mut Input<'_>, side: Side, agreed: &Agreed) {
    let max = usize::from(input.u16() % 8192);
    let mut inflater = Inflater::new(side, agreed);
    let mut out = Vec::new();
    while !input.is_empty() {
        let (frame, fin) = next_frame(input);
        let r = inflater.inflate(frame, fin, &mut out, max);
        assert!(out.len() <= max + INFLATE_STEP, "{} bytes out with a limit of {max}", out.len());
        match r {
            Ok(()) => assert!(out.len() <= max, "{} bytes accepted with a limit of {max}", out.len()),
            // The connection is failed: nothing more is read.
            Err(InflateError::TooBig) => return,
            Err(InflateError::Corrupt(msg)) => {
                assert!(!msg.is_empty());
                return;
            }
        }
        if fin {
            out.clear();
        }
    }
}

fn round_trip(input: &mut Input<'_>, side: Side, agreed: &Agreed) {
    let settings = input.u16();
    let cfg = DeflateConfig {
        level: u32::from(settings % 10),
        mem_level: 1 + ((settings >> 4) % 9) as u8,
        threshold: 0,
        ..DeflateConfig::default()
    };
    let peer = match side {
        Side::Client => Side::Server,
        Side::Server => Side::Client,
    };
    let mut deflater = Deflater::new(side, agreed, &cfg);
    let mut inflater = Inflater::new(peer, agreed);
    let mut sent = Vec::new();
    let mut received = Vec::new();
    let mut wire = Vec::new();
    while !input.is_empty() {
        let (fragment, fin) = next_frame(input);
        wire.clear();
        deflater
            .compress_fragment(fragment, fin, &mut wire)
            .unwrap_or_else(|e| panic!("compression failed: {e}"));
        sent.extend_from_slice(fragment);
        inflater
            .inflate(&wire, fin, &mut received, usize::MAX)
            .unwrap_or_else(|e| panic!("own compressed data rejected: {e}"));
        // Every fragment ends with a sync flush, so all of it is readable at once.
        assert_eq!(received, sent, "message changed by the round trip");
        if fin {
            sent.clear();
            received.clear();
        }
    }
}
