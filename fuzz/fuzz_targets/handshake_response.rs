//! Client-side handshake: parse a server's answer, validate a 101 and find how a non-101
//! body is delimited; decode the bytes as a chunked body whole and in two pieces, which
//! must give the same result.
//!
//! Input: a flags byte, two bytes for the split point, one byte for the body limit, then
//! the bytes.
#![no_main]

mod common;

use common::Input;
use libfuzzer_sys::fuzz_target;
use wsffi::core::handshake::client::{body_framing, parse_response, validate_switching, BodyFraming, ChunkedDecoder};
use wsffi::core::handshake::request::DEFAULT_MAX_HEADER_BYTES;

/// The RFC 6455 §1.3 key, so that an answer with its accept value can pass.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let flags = input.u8();
    let split = usize::from(input.u16());
    let limit = match input.u8() {
        0 => usize::MAX,
        b => usize::from(b) * 4,
    };
    let buf = input.rest();

    check_response(buf, flags);
    check_chunked(buf, split % (buf.len() + 1), limit);
});

fn check_response(buf: &[u8], flags: u8) {
    let offered_extensions: &[&str] = if flags & 1 != 0 { &["permessage-deflate"] } else { &[] };
    let protocols: Vec<String> = if flags & 2 != 0 { vec!["chat".into(), "superchat".into()] } else { Vec::new() };
    match parse_response(buf, DEFAULT_MAX_HEADER_BYTES) {
        Ok(Some((resp, len))) => {
            assert!(len <= buf.len() && len <= DEFAULT_MAX_HEADER_BYTES);
            match validate_switching(&resp, KEY, &protocols, offered_extensions) {
                Ok(n) => {
                    assert_eq!(resp.status, 101);
                    if let Some(p) = &n.protocol {
                        assert!(protocols.contains(p), "chosen protocol {p:?} was not offered");
                    }
                    assert!(n.extensions.is_none() || !offered_extensions.is_empty());
                }
                Err(e) => assert!(!e.is_empty()),
            }
            let framing = body_framing(&resp);
            if resp.status < 200 || resp.status == 204 || resp.status == 304 {
                assert_eq!(framing, BodyFraming::None);
            }
        }
        Ok(None) => assert!(buf.len() <= DEFAULT_MAX_HEADER_BYTES),
        Err(e) => assert!((400..=599).contains(&e.status), "status {}: {}", e.status, e.message),
    }
}

fn check_chunked(buf: &[u8], split: usize, limit: usize) {
    let mut whole_out = Vec::new();
    let whole = ChunkedDecoder::new(limit).feed(buf, &mut whole_out);

    let mut dec = ChunkedDecoder::new(limit);
    let mut split_out = Vec::new();
    let (a, b) = buf.split_at(split);
    let first = dec.feed(a, &mut split_out);
    let pieces = match first {
        Ok(_) => dec.feed(b, &mut split_out),
        Err(e) => Err(e),
    };

    assert_eq!(whole, pieces, "whole vs split at {split}");
    assert_eq!(whole_out, split_out, "decoded bytes, whole vs split at {split}");
    assert!(whole_out.len() <= limit, "decoded {} bytes over a {limit} byte limit", whole_out.len());
    if whole == Ok(true) {
        // Bytes after the end are ignored.
        let mut extra = Vec::new();
        assert_eq!(dec.feed(b"5\r\nhello\r\n", &mut extra), Ok(true));
        assert!(extra.is_empty());
    } else if whole.is_err() {
        // After an error every call fails.
        assert!(dec.feed(b"0\r\n\r\n", &mut Vec::new()).is_err());
    }
}
