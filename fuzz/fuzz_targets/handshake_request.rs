//! Server-side handshake: parse an upgrade request under a size limit and validate it.
//! Never panics; every error carries an HTTP status in 400..=599; a request that
//! validates leads to a 101 answer that the client side accepts.
//!
//! Input: one byte choosing the head size limit (0 = the default), then the request.
#![no_main]

mod common;

use common::Input;
use libfuzzer_sys::fuzz_target;
use wsffi::core::extensions::deflate::{server_negotiate, DeflateConfig};
use wsffi::core::handshake::client::{parse_response, validate_switching};
use wsffi::core::handshake::request::{parse_request, validate_upgrade, DEFAULT_MAX_HEADER_BYTES};
use wsffi::core::handshake::response::{accept_key, build_switching_protocols};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let max = match input.u8() {
        0 => DEFAULT_MAX_HEADER_BYTES,
        b => usize::from(b) * 8,
    };
    let buf = input.rest();

    let (req, len) = match parse_request(buf, max) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            assert!(buf.len() <= max, "{} bytes over a {max} byte limit still incomplete", buf.len());
            return;
        }
        Err(e) => {
            assert!((400..=599).contains(&e.status), "parse error status {}: {}", e.status, e.message);
            return;
        }
    };
    assert!(len <= buf.len() && len <= max, "head length {len}, input {}, limit {max}", buf.len());
    assert!(req.http_minor <= 1);
    // The head alone parses to the same request.
    assert_eq!(parse_request(&buf[..len], max), Ok(Some((req.clone(), len))));

    // Accessors used by server callbacks must not panic on any request.
    let _ = req.host();
    let _ = req.query_param("room");
    let _ = req.query_param("");
    let _ = req.is_websocket_upgrade();
    let offers = req.header_tokens("sec-websocket-extensions");
    let _ = server_negotiate(&offers, &DeflateConfig::default());

    match validate_upgrade(&req) {
        Ok(up) => {
            assert!(req.is_websocket_upgrade());
            // Answer the way the server does and check the client side accepts it.
            let protocol = up.protocols.first().map(String::as_str);
            let head = build_switching_protocols(&accept_key(&up.key), protocol, None, &[]);
            let (resp, n) = parse_response(&head, DEFAULT_MAX_HEADER_BYTES)
                .expect("own 101 answer rejected")
                .expect("own 101 answer incomplete");
            assert_eq!(n, head.len());
            let negotiated = validate_switching(&resp, &up.key, &up.protocols, &[])
                .unwrap_or_else(|e| panic!("own 101 answer does not validate: {e}"));
            assert_eq!(negotiated.protocol.as_deref(), protocol);
        }
        Err((e, extra)) => {
            assert!((400..=599).contains(&e.status), "validation status {}: {}", e.status, e.message);
            assert!(!e.message.is_empty());
            for (name, value) in &extra {
                assert!(!name.is_empty() && !value.is_empty());
            }
        }
    }
});
