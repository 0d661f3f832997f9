//! Server side: building the 101 answer and error responses, checking application headers.

use std::fmt::Write as _;

use super::headers;

/// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455 §4.2.2).
pub fn accept_key(client_key: &str) -> String {
    tungstenite::handshake::derive_accept_key(client_key.as_bytes())
}

/// "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ...\r\n
/// [Sec-WebSocket-Protocol: p\r\n][Sec-WebSocket-Extensions: e\r\n]{extra headers}\r\n".
/// Callers check `extra` with [`check_app_response_header`] first; anything that fails it is
/// left out so a value can never split the head or restate what the library writes.
pub fn build_switching_protocols(
    accept: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
    extra: &[(String, String)],
) -> Vec<u8> {
    let mut head = String::with_capacity(160 + extra_len(extra));
    head.push_str("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    push_header(&mut head, "Sec-WebSocket-Accept", accept);
    if let Some(p) = protocol {
        push_header(&mut head, "Sec-WebSocket-Protocol", p);
    }
    if let Some(e) = extensions {
        push_header(&mut head, "Sec-WebSocket-Extensions", e);
    }
    for (name, value) in extra {
        if check_app_response_header(name, value).is_ok() {
            push_header(&mut head, name, value);
        }
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// A complete non-101 response: status line with the standard reason phrase when `reason` is
/// empty, extra headers, "Connection: close", "Content-Type: text/plain; charset=utf-8" when
/// body is non-empty and the caller gave no Content-Type, "Content-Length: n", then body.
///
/// The framing is ours: extra Connection, Content-Length and Transfer-Encoding headers are
/// dropped, as are headers failing [`check_header`]. A status outside 100..=999 becomes 500,
/// a reason with control characters the standard phrase; 1xx, 204 and 304 carry no body.
pub fn build_response(status: u16, reason: &str, extra: &[(String, String)], body: &[u8]) -> Vec<u8> {
    build_response_to(false, status, reason, extra, body)
}

/// [`build_response`] for a request that may be a HEAD: with `head_only` the body is left
/// out but Content-Length stays what it would have been for GET (RFC 9110 §9.3.2).
pub fn build_response_to(
    head_only: bool,
    status: u16,
    reason: &str,
    extra: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let status = if (100..=999).contains(&status) { status } else { 500 };
    let reason = if reason.is_empty() || reason.chars().any(|c| c.is_control() && c != '\t') {
        reason_phrase(status)
    } else {
        reason
    };
    let bodyless = status < 200 || status == 204 || status == 304;
    let body: &[u8] = if bodyless { &[] } else { body };

    let mut head = String::with_capacity(96 + reason.len() + extra_len(extra));
    let _ = write!(head, "HTTP/1.1 {status} {reason}\r\n");
    let mut has_content_type = false;
    for (name, value) in extra {
        if ["connection", "content-length", "transfer-encoding"].iter().any(|n| name.eq_ignore_ascii_case(n)) {
            continue;
        }
        if push_header(&mut head, name, value) && name.eq_ignore_ascii_case("content-type") {
            has_content_type = true;
        }
    }
    head.push_str("Connection: close\r\n");
    if !body.is_empty() && !has_content_type {
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    if !bodyless {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// Writes `name: value\r\n` if the pair passes [`check_header`]; returns whether it did.
fn push_header(head: &mut String, name: &str, value: &str) -> bool {
    if check_header(name, value).is_err() {
        return false;
    }
    head.push_str(name);
    head.push_str(": ");
    head.push_str(value);
    head.push_str("\r\n");
    true
}

fn extra_len(extra: &[(String, String)]) -> usize {
    extra.iter().map(|(n, v)| n.len() + v.len() + 4).sum()
}

/// Standard reason phrases for the common codes, "Unknown" otherwise.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// Header names/values supplied by applications are checked before being written: a token
/// name, value without CR/LF/NUL (nor other control characters except tab). Err(message) otherwise.
pub fn check_header(name: &str, value: &str) -> Result<(), String> {
    if !headers::is_token(name) {
        return Err(format!("invalid header name {name:?}: must be a non-empty token"));
    }
    // CR and LF would end the header early (response splitting); peers reject other controls.
    if let Some(c) = value.chars().find(|&c| c.is_ascii_control() && c != '\t') {
        return Err(format!("header {name} has a control character ({c:?}) in its value"));
    }
    Ok(())
}

/// Names an application may not add to a server's answer: the message framing
/// (Content-Length, Transfer-Encoding), the upgrade itself (Connection, Upgrade) and the
/// whole Sec-WebSocket-* family (Accept, Protocol, Extensions, Version, Key), which the
/// library writes from the negotiation. A second copy of any of them would let a peer or
/// proxy read the answer differently from the library.
pub fn reserved_response_header(name: &str) -> bool {
    ["content-length", "transfer-encoding", "connection", "upgrade"].iter().any(|r| name.eq_ignore_ascii_case(r))
        || is_sec_websocket(name)
}

/// Whether `name` is in the `Sec-WebSocket-` family (ASCII case-insensitive).
pub fn is_sec_websocket(name: &str) -> bool {
    name.get(..14).is_some_and(|p| p.eq_ignore_ascii_case("sec-websocket-"))
}

/// [`check_header`] plus the refusal of [`reserved_response_header`] names, for headers an
/// application adds to a handshake answer.
pub fn check_app_response_header(name: &str, value: &str) -> Result<(), String> {
    check_header(name, value)?;
    if reserved_response_header(name) {
        return Err(format!("header {name} is written by the library and cannot be added"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn rfc_6455_accept_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn switching_protocols_minimal() {
        let out = build_switching_protocols("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", None, None, &[]);
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }

    #[test]
    fn switching_protocols_full() {
        let extra =
            pairs(&[("Set-Cookie", "a=1"), ("X-Bad\r\nInjected", "v"), ("X-Split", "a\r\nb: c"), ("X-Id", "7")]);
        let out = build_switching_protocols(
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            Some("chat"),
            Some("permessage-deflate; server_no_context_takeover"),
            &extra,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\
Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
Set-Cookie: a=1\r\nX-Id: 7\r\n\r\n"
        );
    }

    #[test]
    fn error_response_with_body() {
        let out = build_response(400, "", &[], b"Missing Host header");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 19\r\n\r\nMissing Host header"
        );
    }

    #[test]
    fn error_response_extra_headers_and_custom_reason() {
        let extra = pairs(&[
            ("Sec-WebSocket-Version", "13"),
            ("content-type", "application/json"),
            ("Content-Length", "999"),
            ("Connection", "keep-alive"),
        ]);
        let out = build_response(426, "Please Upgrade", &extra, b"{}");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 426 Please Upgrade\r\nSec-WebSocket-Version: 13\r\n\
content-type: application/json\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn error_response_without_body() {
        assert_eq!(
            build_response(405, "", &pairs(&[("Allow", "GET")]), b""),
            b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(build_response(204, "", &[], b"ignored"), b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn head_responses_keep_the_length_but_not_the_body() {
        assert_eq!(
            build_response_to(true, 404, "", &[], b"not found\n"),
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\r\n"
        );
        assert!(build_response_to(false, 404, "", &[], b"not found\n").ends_with(b"\r\n\r\nnot found\n"));
    }

    #[test]
    fn reserved_response_headers() {
        for name in [
            "Content-Length",
            "transfer-encoding",
            "CONNECTION",
            "Upgrade",
            "Sec-WebSocket-Accept",
            "sec-websocket-protocol",
            "Sec-WebSocket-Extensions",
            "Sec-WebSocket-Version",
        ] {
            assert!(reserved_response_header(name), "{name}");
            assert!(check_app_response_header(name, "x").unwrap_err().contains("written by the library"), "{name}");
        }
        for name in ["Set-Cookie", "X-Upgrade", "Sec-WebSocket", "Content-Type", "Sec-Fetch-Mode"] {
            assert!(!reserved_response_header(name), "{name}");
        }
        assert!(check_app_response_header("X", "a\nb").is_err());
        // Even if one slips in, the 101 leaves it out.
        let extra = pairs(&[("Sec-WebSocket-Accept", "forged"), ("Transfer-Encoding", "chunked"), ("X-Id", "7")]);
        let out = String::from_utf8(build_switching_protocols("k", None, None, &extra)).unwrap();
        assert!(out.ends_with("Sec-WebSocket-Accept: k\r\nX-Id: 7\r\n\r\n"), "{out}");
    }

    #[test]
    fn error_response_sanitizes_status_and_reason() {
        assert!(build_response(42, "", &[], b"").starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
        assert!(build_response(403, "No\r\nX: y", &[], b"").starts_with(b"HTTP/1.1 403 Forbidden\r\nConnection"));
        assert!(build_response(599, "", &[], b"").starts_with(b"HTTP/1.1 599 Unknown\r\n"));
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(101), "Switching Protocols");
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(426), "Upgrade Required");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(505), "HTTP Version Not Supported");
        assert_eq!(reason_phrase(799), "Unknown");
    }

    #[test]
    fn header_checks() {
        assert_eq!(check_header("X-Token", "abc def\t\"q\" é"), Ok(()));
        assert_eq!(check_header("X-Empty", ""), Ok(()));
        assert!(check_header("", "v").is_err());
        assert!(check_header("X Token", "v").is_err());
        assert!(check_header("X:Token", "v").is_err());
        assert!(check_header("Ünicode", "v").is_err());
        assert!(check_header("X", "a\rb").unwrap_err().contains("control character"));
        assert!(check_header("X", "a\nb").is_err());
        assert!(check_header("X", "a\0b").is_err());
        assert!(check_header("X", "a\u{7f}").is_err());
    }
}
