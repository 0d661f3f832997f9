//! Client side: the upgrade request, parsing and checking the server's answer (RFC 6455 §4.1),
//! and reading the body of a refusal.

use super::headers::{self, MAX_HEADERS};
use super::response::{accept_key, check_header, is_sec_websocket};
use super::url::WsUrl;
use super::{Header, HttpError};

pub use super::chunked::ChunkedDecoder;

/// A fresh Sec-WebSocket-Key: 16 random bytes in base64 (24 characters).
pub fn generate_key() -> String {
    let nonce: [u8; 16] = rand::random();
    headers::base64_encode(&nonce)
}

/// Headers the library writes itself, or that would frame content after the GET; an
/// application may not send its own. The Sec-WebSocket-* family is reserved as well: the key,
/// version, subprotocol offer and extension offer all come from the connection options.
const RESERVED: [&str; 5] = ["host", "upgrade", "connection", "content-length", "transfer-encoding"];

/// Checks a header an application adds to the upgrade request: a token name, a value without
/// control characters, and not a name in [`RESERVED`] or the Sec-WebSocket-* family.
pub fn check_extra_request_header(name: &str, value: &str) -> Result<(), String> {
    check_header(name, value)?;
    if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) || is_sec_websocket(name) {
        return Err(format!("header {name} is set by the library and cannot be given"));
    }
    Ok(())
}

/// The upgrade request head: `GET {resource} HTTP/1.1`, Host, Upgrade: websocket,
/// Connection: Upgrade, Sec-WebSocket-Key, Sec-WebSocket-Version: 13, then when given
/// Sec-WebSocket-Protocol (`a, b`), Origin, Authorization (Basic, from `url.userinfo`
/// percent-decoded) and Sec-WebSocket-Extensions, then the extra headers in order.
///
/// Errors: an extra header named Host, Upgrade, Connection, Content-Length,
/// Transfer-Encoding or Sec-WebSocket-*, or one that repeats a header written from the
/// other arguments (Origin, Authorization); invalid or duplicate subprotocols; any value
/// with control characters.
pub fn build_request(
    url: &WsUrl,
    key: &str,
    protocols: &[String],
    origin: Option<&str>,
    extensions_offer: Option<&str>,
    extra: &[(String, String)],
) -> Result<Vec<u8>, String> {
    // WsUrl fields are public, so the resource may not come from parse_ws_url.
    if !url.resource.starts_with('/') || url.resource.bytes().any(|b| b <= b' ' || b >= 0x7f) {
        return Err(format!("invalid request target {:?}", url.resource));
    }
    let host = url.host_header();
    check_header("Host", &host)?;
    check_header("Sec-WebSocket-Key", key)?;
    for (i, p) in protocols.iter().enumerate() {
        if !headers::is_token(p) {
            return Err(format!("invalid subprotocol name {p:?}"));
        }
        if protocols[..i].contains(p) {
            return Err(format!("subprotocol {p:?} is listed twice"));
        }
    }
    let authorization = url.userinfo.as_deref().map(basic_credentials);
    let written = [("origin", origin.is_some()), ("authorization", authorization.is_some())];
    for (name, value) in extra {
        check_extra_request_header(name, value)?;
        if written.iter().any(|(w, set)| *set && name.eq_ignore_ascii_case(w)) {
            return Err(format!("header {name} is already set from the connection options"));
        }
    }

    let mut head = String::with_capacity(
        200 + url.resource.len() + host.len() + extra.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>(),
    );
    head.push_str("GET ");
    head.push_str(&url.resource);
    head.push_str(" HTTP/1.1\r\n");
    push(&mut head, "Host", &host);
    head.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\n");
    push(&mut head, "Sec-WebSocket-Key", key);
    head.push_str("Sec-WebSocket-Version: 13\r\n");
    if !protocols.is_empty() {
        head.push_str("Sec-WebSocket-Protocol: ");
        head.push_str(&protocols.join(", "));
        head.push_str("\r\n");
    }
    if let Some(o) = origin {
        check_header("Origin", o)?;
        push(&mut head, "Origin", o);
    }
    if let Some(auth) = &authorization {
        push(&mut head, "Authorization", auth);
    }
    if let Some(e) = extensions_offer {
        check_header("Sec-WebSocket-Extensions", e)?;
        push(&mut head, "Sec-WebSocket-Extensions", e);
    }
    for (name, value) in extra {
        push(&mut head, name, value);
    }
    head.push_str("\r\n");
    Ok(head.into_bytes())
}

fn push(head: &mut String, name: &str, value: &str) {
    head.push_str(name);
    head.push_str(": ");
    head.push_str(value);
    head.push_str("\r\n");
}

/// `Basic base64(user:pass)` from URL userinfo; escapes like `%40` stand for the character.
fn basic_credentials(userinfo: &str) -> String {
    let decoded = headers::percent_decode(userinfo, false);
    let mut plain = decoded.into_owned();
    if !plain.contains(':') {
        plain.push(':');
    }
    format!("Basic {}", headers::base64_encode(plain.as_bytes()))
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase as sent (empty if it was not plain ASCII).
    pub reason: String,
    /// Minor version of HTTP/1.x: 0 or 1.
    pub http_minor: u8,
    /// Headers in the order received.
    pub headers: Vec<Header>,
}

impl Response {
    /// Value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::find(&self.headers, name)
    }
}

/// Parses a response head. Ok(None) = incomplete. Errors for malformed (400), oversized
/// (> max bytes or more than 100 headers, 431) or non-HTTP/1.x (505) heads. On success returns
/// the response and the head length (bytes consumed, including the final CRLFCRLF).
pub fn parse_response(buf: &[u8], max_header_bytes: usize) -> Result<Option<(Response, usize)>, HttpError> {
    // Bytes past the limit can't belong to an acceptable head, so they are never scanned.
    let window = &buf[..buf.len().min(max_header_bytes)];
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_header_bytes => {
            return Err(headers::too_large("response", max_header_bytes))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(headers::parse_error(e, window, "response")),
    };
    let response = Response {
        status: parsed.code.unwrap_or_default(),
        reason: parsed.reason.unwrap_or_default().to_owned(),
        http_minor: parsed.version.unwrap_or(1),
        headers: headers::collect(parsed.headers),
    };
    Ok(Some((response, len)))
}

/// What a 101 agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The subprotocol the server chose, one of those offered.
    pub protocol: Option<String>,
    /// The server's Sec-WebSocket-Extensions answer (repeated headers joined with ", ").
    pub extensions: Option<String>,
}

/// Validates a 101 answer (RFC 6455 §4.1 client rules): Upgrade/Connection tokens,
/// Sec-WebSocket-Accept matches the key, a Sec-WebSocket-Protocol only if we offered it and
/// only one of ours, and Sec-WebSocket-Extensions naming only extensions in
/// `offered_extensions` (names, ASCII case-insensitive; empty means any extension answer is
/// an error). Err(message) names the cause.
pub fn validate_switching(
    resp: &Response,
    key: &str,
    offered_protocols: &[String],
    offered_extensions: &[&str],
) -> Result<Negotiated, String> {
    if resp.status != 101 {
        return Err(format!("expected status 101, got {} {}", resp.status, resp.reason));
    }
    if !headers::has_token(&resp.headers, "upgrade", "websocket") {
        return Err("the server's answer lacks Upgrade: websocket".into());
    }
    if !headers::has_token(&resp.headers, "connection", "upgrade") {
        return Err("the server's answer lacks Connection: Upgrade".into());
    }
    match headers::count(&resp.headers, "sec-websocket-accept") {
        0 => return Err("the server's answer lacks Sec-WebSocket-Accept".into()),
        1 => {}
        _ => return Err("the server sent more than one Sec-WebSocket-Accept".into()),
    }
    if resp.header("sec-websocket-accept") != Some(accept_key(key).as_str()) {
        return Err("Sec-WebSocket-Accept does not match the key sent".into());
    }

    let protocol = if headers::count(&resp.headers, "sec-websocket-protocol") == 0 {
        None
    } else {
        let mut chosen = headers::elements(&resp.headers, "sec-websocket-protocol");
        match (chosen.next(), chosen.next()) {
            (Some(p), None) if offered_protocols.iter().any(|o| o == p) => Some(p.to_owned()),
            (Some(p), None) if offered_protocols.is_empty() => {
                return Err(format!("the server chose subprotocol {p:?} but none was offered"))
            }
            (Some(p), None) => return Err(format!("the server chose subprotocol {p:?}, which was not offered")),
            (None, _) => return Err("the server sent an empty Sec-WebSocket-Protocol".into()),
            (Some(_), Some(_)) => return Err("the server chose more than one subprotocol".into()),
        }
    };

    let offers: Vec<&str> = headers::elements(&resp.headers, "sec-websocket-extensions").collect();
    if !offers.is_empty() && offered_extensions.is_empty() {
        return Err("the server sent Sec-WebSocket-Extensions but none were offered".into());
    }
    // RFC 6455 §9.1: the server may only answer with extensions the client asked for.
    for offer in &offers {
        let name = headers::trim_ows(offer.split(';').next().unwrap_or_default());
        if !offered_extensions.iter().any(|o| o.eq_ignore_ascii_case(name)) {
            return Err(format!("the server accepted extension {name:?}, which was not offered"));
        }
    }
    let extensions = (!offers.is_empty()).then(|| offers.join(", "));
    Ok(Negotiated { protocol, extensions })
}

/// How the body of a non-101 answer is delimited, for the unexpected_response event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// Exactly this many bytes follow the head.
    Length(u64),
    /// Chunked transfer coding; see [`ChunkedDecoder`].
    Chunked,
    /// The body runs until the server closes the connection.
    UntilClose,
    /// No body (1xx, 204, 304).
    None,
}

/// 1xx/204/304 -> None; Transfer-Encoding ending in chunked -> Chunked; valid Content-Length ->
/// Length; else UntilClose (RFC 7230 §3.3.3, which also covers conflicting lengths).
pub fn body_framing(resp: &Response) -> BodyFraming {
    if resp.status < 200 || resp.status == 204 || resp.status == 304 {
        return BodyFraming::None;
    }
    if headers::count(&resp.headers, "transfer-encoding") > 0 {
        let last = headers::elements(&resp.headers, "transfer-encoding").last();
        return match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => BodyFraming::Chunked,
            _ => BodyFraming::UntilClose,
        };
    }
    let mut length = None;
    for value in headers::elements(&resp.headers, "content-length") {
        let parsed = if value.bytes().all(|b| b.is_ascii_digit()) { value.parse::<u64>().ok() } else { None };
        match (parsed, length) {
            (Some(n), None) => length = Some(n),
            (Some(n), Some(m)) if n == m => {}
            _ => return BodyFraming::UntilClose,
        }
    }
    match length {
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::UntilClose,
    }
}

#[cfg(test)]
mod tests {
    use super::super::url::parse_ws_url;
    use super::*;

    const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn url(s: &str) -> WsUrl {
        parse_ws_url(s).unwrap()
    }

    fn text(r: Result<Vec<u8>, String>) -> String {
        String::from_utf8(r.unwrap()).unwrap()
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn response(head: &str) -> Response {
        parse_response(head.as_bytes(), 16 * 1024).unwrap().unwrap().0
    }

    const RFC_101: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

    #[test]
    fn generated_keys_are_16_random_bytes() {
        let a = generate_key();
        let b = generate_key();
        assert_eq!(a.len(), 24);
        assert_eq!(headers::base64_decoded_len(&a), Some(16));
        assert_ne!(a, b);
    }

    #[test]
    fn minimal_request_bytes() {
        let out = text(build_request(&url("ws://server.example.com/chat"), RFC_KEY, &[], None, None, &[]));
        assert_eq!(
            out,
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
    }

    #[test]
    fn full_request_bytes() {
        let extra = vec![("X-Trace".to_owned(), "1".to_owned()), ("Cookie".to_owned(), "a=b".to_owned())];
        let out = text(build_request(
            &url("wss://Aladdin:open%20sesame@[::1]:9000/chat?room=1"),
            RFC_KEY,
            &strings(&["chat", "superchat"]),
            Some("http://example.com"),
            Some("permessage-deflate; client_max_window_bits"),
            &extra,
        ));
        assert_eq!(
            out,
            "GET /chat?room=1 HTTP/1.1\r\nHost: [::1]:9000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\nOrigin: http://example.com\r\n\
Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
X-Trace: 1\r\nCookie: a=b\r\n\r\n"
        );
    }

    #[test]
    fn basic_auth_without_password() {
        let out = text(build_request(&url("ws://bob@h/"), RFC_KEY, &[], None, None, &[]));
        assert!(out.contains("\r\nAuthorization: Basic Ym9iOg==\r\n"), "{out}");
    }

    #[test]
    fn unix_request_uses_localhost() {
        let out = text(build_request(&url("ws+unix:///tmp/s:/x"), RFC_KEY, &[], None, None, &[]));
        assert!(out.starts_with("GET /x HTTP/1.1\r\nHost: localhost\r\n"));
    }

    #[test]
    fn request_rejects_reserved_and_duplicate_headers() {
        let u = url("ws://h/");
        for name in [
            "Host",
            "upgrade",
            "CONNECTION",
            "Sec-WebSocket-Key",
            "sec-websocket-version",
            "Content-Length",
            "transfer-encoding",
            "Sec-WebSocket-Extensions",
            "Sec-WebSocket-Protocol",
        ] {
            let extra = vec![(name.to_owned(), "x".to_owned())];
            assert!(build_request(&u, RFC_KEY, &[], None, None, &extra).is_err(), "{name}");
        }
        let origin = vec![("Origin".to_owned(), "http://a".to_owned())];
        assert!(build_request(&u, RFC_KEY, &[], None, None, &origin).is_ok());
        assert!(build_request(&u, RFC_KEY, &[], Some("http://b"), None, &origin).is_err());
        let auth = vec![("Authorization".to_owned(), "Bearer t".to_owned())];
        assert!(build_request(&u, RFC_KEY, &[], None, None, &auth).is_ok());
        assert!(build_request(&url("ws://u:p@h/"), RFC_KEY, &[], None, None, &auth).is_err());
        let proto = vec![("Sec-WebSocket-Protocol".to_owned(), "x".to_owned())];
        assert!(build_request(&u, RFC_KEY, &strings(&["a"]), None, None, &proto).is_err());
    }

    #[test]
    fn request_rejects_bad_values() {
        let u = url("ws://h/");
        let bad = |extra: &[(&str, &str)]| {
            let extra: Vec<_> = extra.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
            build_request(&u, RFC_KEY, &[], None, None, &extra).is_err()
        };
        assert!(bad(&[("X-A", "1\r\nHost: evil")]));
        assert!(bad(&[("Bad Name", "1")]));
        assert!(bad(&[("", "1")]));
        assert!(build_request(&u, RFC_KEY, &strings(&["a", "a"]), None, None, &[]).is_err());
        assert!(build_request(&u, RFC_KEY, &strings(&["a b"]), None, None, &[]).is_err());
        assert!(build_request(&u, RFC_KEY, &strings(&[""]), None, None, &[]).is_err());
        assert!(build_request(&u, RFC_KEY, &[], Some("http://a\r\nX: y"), None, &[]).is_err());
        assert!(build_request(&u, RFC_KEY, &[], None, Some("x\n"), &[]).is_err());
        assert!(build_request(&u, "k\r\n", &[], None, None, &[]).is_err());
        let mut hand_made = u.clone();
        hand_made.resource = "/a b".into();
        assert!(build_request(&hand_made, RFC_KEY, &[], None, None, &[]).is_err());
        hand_made.resource = "x".into();
        assert!(build_request(&hand_made, RFC_KEY, &[], None, None, &[]).is_err());
    }

    #[test]
    fn parses_and_accepts_rfc_101() {
        let (resp, len) = parse_response(RFC_101.as_bytes(), 1024).unwrap().unwrap();
        assert_eq!(len, RFC_101.len());
        assert_eq!(resp.status, 101);
        assert_eq!(resp.reason, "Switching Protocols");
        assert_eq!(resp.http_minor, 1);
        assert_eq!(resp.header("SEC-WEBSOCKET-ACCEPT"), Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert_eq!(validate_switching(&resp, RFC_KEY, &[], &[]), Ok(Negotiated { protocol: None, extensions: None }));
    }

    #[test]
    fn response_parse_limits() {
        let b = RFC_101.as_bytes();
        assert_eq!(parse_response(&b[..b.len() - 1], 1024).unwrap().map(|(_, n)| n), None);
        assert_eq!(parse_response(&b[..20], 20).unwrap().map(|(_, n)| n), None);
        assert_eq!(parse_response(b, 20).unwrap_err().status, 431);
        assert_eq!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n", 1024).unwrap_err().status, 400);
        assert_eq!(parse_response(b"HTTP/2 200 OK\r\n\r\n", 1024).unwrap_err().status, 400);
        assert_eq!(parse_response(b"HTTP/2.0 200 OK\r\n\r\n", 1024).unwrap_err().status, 505);
        assert_eq!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n", 1024).unwrap_err().status, 400);
        let mut many = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..101 {
            many.push_str(&format!("X-{i}: v\r\n"));
        }
        many.push_str("\r\n");
        assert_eq!(parse_response(many.as_bytes(), 16 * 1024).unwrap_err().status, 431);
    }

    #[test]
    fn switching_header_tokens_are_case_insensitive() {
        let resp = response(
            &RFC_101
                .replace("Upgrade: websocket", "upgrade: WebSocket")
                .replace("Connection: Upgrade", "connection: keep-alive, upgrade"),
        );
        assert!(validate_switching(&resp, RFC_KEY, &[], &[]).is_ok());
    }

    #[test]
    fn switching_failures_name_the_cause() {
        let check = |head: String, protocols: &[&str], ext: &[&str]| {
            validate_switching(&response(&head), RFC_KEY, &strings(protocols), ext).unwrap_err()
        };
        assert!(check(RFC_101.replace("101 Switching Protocols", "200 OK"), &[], &[]).contains("got 200 OK"));
        assert!(check(RFC_101.replace("Upgrade: websocket\r\n", ""), &[], &[]).contains("Upgrade: websocket"));
        assert!(check(RFC_101.replace("Upgrade: websocket", "Upgrade: h2c"), &[], &[]).contains("Upgrade: websocket"));
        assert!(check(RFC_101.replace("Connection: Upgrade", "Connection: close"), &[], &[]).contains("Connection"));
        assert!(check(RFC_101.replace("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="), &[], &[])
            .contains("does not match"));
        assert!(check(RFC_101.replace("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", ""), &[], &[])
            .contains("lacks Sec-WebSocket-Accept"));
        let twice = RFC_101.replace("\r\n\r\n", "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
        assert!(check(twice, &[], &[]).contains("more than one"));
    }

    #[test]
    fn switching_subprotocol_rules() {
        let with = |extra: &str| RFC_101.replace("\r\n\r\n", &format!("\r\n{extra}\r\n\r\n"));
        let ok = |head: String, offered: &[&str]| validate_switching(&response(&head), RFC_KEY, &strings(offered), &[]);
        assert_eq!(
            ok(with("Sec-WebSocket-Protocol: chat"), &["superchat", "chat"]).unwrap().protocol.as_deref(),
            Some("chat")
        );
        // No answer is fine: the server declined every offer.
        assert_eq!(ok(RFC_101.to_owned(), &["chat"]).unwrap().protocol, None);
        assert!(ok(with("Sec-WebSocket-Protocol: chat"), &[]).unwrap_err().contains("none was offered"));
        assert!(ok(with("Sec-WebSocket-Protocol: Chat"), &["chat"]).unwrap_err().contains("not offered"));
        assert!(ok(with("Sec-WebSocket-Protocol: chat, superchat"), &["chat", "superchat"])
            .unwrap_err()
            .contains("more than one"));
        assert!(ok(with("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat"), &["chat"])
            .unwrap_err()
            .contains("more than one"));
        assert!(ok(with("Sec-WebSocket-Protocol: "), &["chat"]).unwrap_err().contains("empty"));
    }

    #[test]
    fn switching_extension_rules() {
        let head = RFC_101.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\nSec-WebSocket-Extensions: x-y\r\n\r\n");
        let resp = response(&head);
        assert_eq!(
            validate_switching(&resp, RFC_KEY, &[], &["permessage-deflate", "x-y"]).unwrap().extensions.as_deref(),
            Some("permessage-deflate; server_no_context_takeover, x-y")
        );
        assert!(validate_switching(&resp, RFC_KEY, &[], &[]).unwrap_err().contains("none were offered"));
        assert_eq!(
            validate_switching(&response(RFC_101), RFC_KEY, &[], &["permessage-deflate"]).unwrap().extensions,
            None
        );
    }

    #[test]
    fn switching_refuses_unoffered_extensions() {
        let with =
            |ext: &str| response(&RFC_101.replace("\r\n\r\n", &format!("\r\nSec-WebSocket-Extensions: {ext}\r\n\r\n")));
        let offered = ["permessage-deflate"];
        let e = validate_switching(&with("permessage-deflate, x-evil"), RFC_KEY, &[], &offered).unwrap_err();
        assert_eq!(e, "the server accepted extension \"x-evil\", which was not offered");
        assert!(validate_switching(&with("x-evil; permessage-deflate"), RFC_KEY, &[], &offered).is_err());
        let ok = validate_switching(&with("PerMessage-Deflate ; client_max_window_bits=10"), RFC_KEY, &[], &offered);
        assert_eq!(ok.unwrap().extensions.as_deref(), Some("PerMessage-Deflate ; client_max_window_bits=10"));
    }

    #[test]
    fn framing_of_refusals() {
        let framing = |head: &str| body_framing(&response(head));
        assert_eq!(framing("HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\n"), BodyFraming::Length(12));
        assert_eq!(framing("HTTP/1.1 404 Not Found\r\nContent-Length: 12, 12\r\n\r\n"), BodyFraming::Length(12));
        assert_eq!(
            framing("HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nContent-Length: 13\r\n\r\n"),
            BodyFraming::UntilClose
        );
        assert_eq!(framing("HTTP/1.1 404 Not Found\r\nContent-Length: -1\r\n\r\n"), BodyFraming::UntilClose);
        assert_eq!(
            framing("HTTP/1.1 404 Not Found\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            BodyFraming::UntilClose
        );
        assert_eq!(
            framing("HTTP/1.1 500 Oops\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 5\r\n\r\n"),
            BodyFraming::Chunked
        );
        assert_eq!(framing("HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), BodyFraming::UntilClose);
        assert_eq!(framing("HTTP/1.1 403 Forbidden\r\n\r\n"), BodyFraming::UntilClose);
        assert_eq!(framing("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"), BodyFraming::None);
        assert_eq!(framing("HTTP/1.1 304 Not Modified\r\n\r\n"), BodyFraming::None);
        assert_eq!(framing("HTTP/1.1 100 Continue\r\n\r\n"), BodyFraming::None);
        assert_eq!(framing(RFC_101), BodyFraming::None);
    }

    #[test]
    fn arbitrary_response_heads_never_panic() {
        use rand::RngExt as _;
        let mut rng = rand::rng();
        let alphabet = b"0123456789aFx;= \t\r\n\"\x00";
        for _ in 0..3000 {
            let mut head = RFC_101.as_bytes().to_vec();
            for _ in 0..rng.random_range(0..4) {
                let at = rng.random_range(0..head.len());
                head[at] = alphabet[rng.random_range(0..alphabet.len())];
            }
            head.truncate(rng.random_range(0..=head.len()));
            if let Ok(Some((resp, _))) = parse_response(&head, 256) {
                let _ = validate_switching(&resp, RFC_KEY, &strings(&["chat"]), &[]);
                let _ = body_framing(&resp);
            }
        }
    }

    #[test]
    fn client_and_server_sides_agree() {
        use super::super::request::{parse_request, validate_upgrade};
        use super::super::response::build_switching_protocols;

        let key = generate_key();
        let offered = strings(&["v2.chat", "v1.chat"]);
        let wire = build_request(
            &url("ws://Example.com:8080/room?id=7"),
            &key,
            &offered,
            Some("https://example.com"),
            Some("permessage-deflate"),
            &[],
        )
        .unwrap();
        let (req, used) = parse_request(&wire, 16 * 1024).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(req.host(), Some("example.com:8080"));
        assert_eq!(req.query_param("id").as_deref(), Some("7"));
        let up = validate_upgrade(&req).unwrap();
        assert_eq!(up.key, key);
        assert_eq!(up.protocols, offered);
        assert_eq!(up.extensions, ["permessage-deflate"]);

        let answer = build_switching_protocols(&accept_key(&up.key), Some("v1.chat"), Some("permessage-deflate"), &[]);
        let (resp, used) = parse_response(&answer, 16 * 1024).unwrap().unwrap();
        assert_eq!(used, answer.len());
        assert_eq!(
            validate_switching(&resp, &key, &offered, &["permessage-deflate"]),
            Ok(Negotiated { protocol: Some("v1.chat".into()), extensions: Some("permessage-deflate".into()) })
        );
    }
}
