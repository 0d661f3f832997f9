//! Server side: parsing an HTTP/1.1 upgrade request and checking it against RFC 6455 §4.2.1.

use super::headers::{self, MAX_HEADERS};
use super::{Header, HttpError};

/// A parsed request head (the `request` object handed to server callbacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Method as sent (`GET`).
    pub method: String,
    /// Request target as sent, e.g. `/chat?room=1`.
    pub target: String,
    /// Target up to the first `?`.
    pub path: String,
    /// Raw text after the first `?`, if any.
    pub query: Option<String>,
    /// Minor version of HTTP/1.x: 0 or 1.
    pub http_minor: u8,
    /// Headers in the order received (the raw header list).
    pub headers: Vec<Header>,
}

/// Default bound on the size of a request head, request line and CRLFCRLF included.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// Parses a request head from the start of buf. Ok(None) = incomplete (and buf.len() <= max so far).
/// Errors: head larger than max_header_bytes (431 "Request Header Fields Too Large"), malformed (400),
/// more than 100 headers (431), HTTP version other than 1.x (505), framing that leaves the
/// length of the content unknown (400: an invalid or conflicting Content-Length, Content-Length
/// with Transfer-Encoding, a Transfer-Encoding not ending in chunked).
/// On success returns the request and the head length (bytes consumed, including the final CRLFCRLF).
pub fn parse_request(buf: &[u8], max_header_bytes: usize) -> Result<Option<(Request, usize)>, HttpError> {
    // Bytes past the limit can't belong to an acceptable head, so they are never scanned.
    let window = &buf[..buf.len().min(max_header_bytes)];
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_header_bytes => {
            return Err(headers::too_large("request", max_header_bytes))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(headers::parse_error(e, window, "request")),
    };
    // A complete parse always fills these; the fallbacks only avoid a panic path.
    let method = parsed.method.unwrap_or_default().to_owned();
    let target = parsed.path.unwrap_or_default().to_owned();
    let (path, query) = split_target(&target);
    let request = Request {
        method,
        target,
        path,
        query,
        http_minor: parsed.version.unwrap_or(1),
        headers: headers::collect(parsed.headers),
    };
    check_framing(&request.headers)?;
    Ok(Some((request, len)))
}

/// Path and query of a request target. An absolute-form target (`http://host/chat?x`,
/// RFC 9112 §3.2.2) is routed by its path, `/` when it has none; other forms are split as
/// they are.
fn split_target(target: &str) -> (String, Option<String>) {
    let origin_form = match target.split_once("://") {
        Some((scheme, rest)) if ["http", "https", "ws", "wss"].iter().any(|s| scheme.eq_ignore_ascii_case(s)) => {
            match rest.find(['/', '?']) {
                Some(i) if rest.as_bytes()[i] == b'/' => rest[i..].to_owned(),
                Some(i) => format!("/{}", &rest[i..]),
                None => "/".to_owned(),
            }
        }
        _ => target.to_owned(),
    };
    match origin_form.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (origin_form, None),
    }
}

/// Request message framing (RFC 9112 §6.1, §6.3): every Content-Length must be a decimal
/// number and all of them equal, and Content-Length may not come with Transfer-Encoding,
/// whose final coding must be chunked. Anything else is a 400: the length of the content
/// cannot be known, and guessing it is how requests are smuggled.
fn check_framing(hs: &[Header]) -> Result<(), HttpError> {
    let lengths = headers::count(hs, "content-length");
    let codings = headers::count(hs, "transfer-encoding");
    if lengths > 0 && codings > 0 {
        return Err(HttpError::new(400, "Bad Request: both Content-Length and Transfer-Encoding"));
    }
    if codings > 0 {
        let last = headers::elements(hs, "transfer-encoding").last();
        if !last.is_some_and(|c| c.eq_ignore_ascii_case("chunked")) {
            return Err(HttpError::new(400, "Bad Request: Transfer-Encoding must end with chunked"));
        }
    }
    content_length(hs).map(|_| ())
}

/// The request's Content-Length (0 when absent), or 400 when one is not a decimal number or
/// they disagree. A list value (`5, 5`) counts as repeated headers.
fn content_length(hs: &[Header]) -> Result<u64, HttpError> {
    let mut length = None;
    for h in hs.iter().filter(|h| h.name.eq_ignore_ascii_case("content-length")) {
        // An empty value or list element is as unknowable as a non-number.
        for value in h.value.split(',').map(headers::trim_ows) {
            let n = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| HttpError::new(400, "Bad Request: invalid Content-Length"))?;
            if length.is_some_and(|m| m != n) {
                return Err(HttpError::new(400, "Bad Request: conflicting Content-Length headers"));
            }
            length = Some(n);
        }
    }
    Ok(length.unwrap_or(0))
}

impl Request {
    /// Value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        headers::find(&self.headers, name)
    }

    /// Whether a header named `name` is present (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    /// The Host header.
    pub fn host(&self) -> Option<&str> {
        self.header("host")
    }

    /// First query parameter named `name`, percent-decoded with `+` as space. A parameter
    /// without `=` (`?flag`) has the value `""`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        query.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (!pair.is_empty() && headers::percent_decode(key, true) == name)
                .then(|| headers::percent_decode(value, true).into_owned())
        })
    }

    /// Does the request ask for a WebSocket upgrade at all (Upgrade: websocket token, case-insensitive,
    /// and Connection contains the "upgrade" token in a comma list)?
    pub fn is_websocket_upgrade(&self) -> bool {
        headers::has_token(&self.headers, "upgrade", "websocket")
            && headers::has_token(&self.headers, "connection", "upgrade")
    }

    /// Comma-separated header values across repeated headers, trimmed tokens (used for
    /// Sec-WebSocket-Protocol and Sec-WebSocket-Extensions).
    pub fn header_tokens(&self, name: &str) -> Vec<String> {
        headers::tokens(&self.headers, name)
    }
}

/// What a valid upgrade request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The Sec-WebSocket-Key value, to derive Sec-WebSocket-Accept from.
    pub key: String,
    /// Offered subprotocols in the client's order of preference.
    pub protocols: Vec<String>,
    /// Offered extensions, one element per offer with its parameters (`permessage-deflate; client_max_window_bits`).
    pub extensions: Vec<String>,
}

fn reject(status: u16, message: &str) -> (HttpError, Vec<(String, String)>) {
    (HttpError::new(status, message), Vec::new())
}

fn reject_with(status: u16, message: &str, name: &str, value: &str) -> (HttpError, Vec<(String, String)>) {
    (HttpError::new(status, message), vec![(name.to_owned(), value.to_owned())])
}

/// Full RFC 6455 §4.2.1 validation: method GET (else 405 with "Allow: GET"), HTTP/1.1 (else
/// 400), exactly one Host (400), Upgrade websocket + Connection upgrade (426 "Upgrade Required"
/// with "Upgrade: websocket"), Sec-WebSocket-Version 13 (else 426 with
/// "Sec-WebSocket-Version: 13"), one Sec-WebSocket-Key that base64-decodes to exactly 16 bytes
/// (400), at most one Origin (400), no content: no Transfer-Encoding and no Content-Length
/// other than 0 (400). Subprotocols must be unique RFC 7230 tokens and extension names
/// tokens (400). The `Vec` holds headers to send with the error response.
pub fn validate_upgrade(req: &Request) -> Result<UpgradeRequest, (HttpError, Vec<(String, String)>)> {
    if req.method != "GET" {
        return Err(reject_with(405, "Method Not Allowed: a WebSocket upgrade must use GET", "Allow", "GET"));
    }
    if req.http_minor < 1 {
        return Err(reject(400, "Bad Request: a WebSocket upgrade needs HTTP/1.1"));
    }
    match headers::count(&req.headers, "host") {
        0 => return Err(reject(400, "Bad Request: missing Host header")),
        1 => {}
        // RFC 7230 §5.4: more than one Host is answered with 400.
        _ => return Err(reject(400, "Bad Request: more than one Host header")),
    }
    // A browser sends one Origin; with two, a check of the first could pass while the
    // application reads the other.
    if headers::count(&req.headers, "origin") > 1 {
        return Err(reject(400, "Bad Request: more than one Origin header"));
    }
    // Content of an upgrade request would otherwise be read as the first WebSocket frames.
    if headers::count(&req.headers, "transfer-encoding") > 0 || content_length(&req.headers).map_or(true, |n| n > 0) {
        return Err(reject(400, "Bad Request: a WebSocket upgrade request must not carry content"));
    }
    if !req.is_websocket_upgrade() {
        return Err(reject_with(
            426,
            "Upgrade Required: expected Upgrade: websocket and Connection: Upgrade",
            "Upgrade",
            "websocket",
        ));
    }
    let mut versions = headers::elements(&req.headers, "sec-websocket-version");
    if versions.next() != Some("13") || versions.next().is_some() {
        return Err(reject_with(
            426,
            "Upgrade Required: Sec-WebSocket-Version must be 13",
            "Sec-WebSocket-Version",
            "13",
        ));
    }
    if headers::count(&req.headers, "sec-websocket-key") != 1 {
        return Err(reject(400, "Bad Request: expected exactly one Sec-WebSocket-Key header"));
    }
    let key = req.header("sec-websocket-key").unwrap_or_default();
    if headers::base64_decoded_len(key) != Some(16) {
        return Err(reject(400, "Bad Request: Sec-WebSocket-Key must be 16 bytes in base64"));
    }
    let protocols = req.header_tokens("sec-websocket-protocol");
    for (i, p) in protocols.iter().enumerate() {
        if !headers::is_token(p) {
            return Err(reject(400, "Bad Request: invalid subprotocol name in Sec-WebSocket-Protocol"));
        }
        if protocols[..i].contains(p) {
            return Err(reject(400, "Bad Request: duplicate subprotocol in Sec-WebSocket-Protocol"));
        }
    }
    let extensions = req.header_tokens("sec-websocket-extensions");
    for e in &extensions {
        let name = e.split(';').next().unwrap_or_default();
        if !headers::is_token(headers::trim_ows(name)) {
            return Err(reject(400, "Bad Request: invalid extension name in Sec-WebSocket-Extensions"));
        }
    }
    Ok(UpgradeRequest { key: key.to_owned(), protocols, extensions })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\n\
Host: server.example.com\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Origin: http://example.com\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

    fn parse(buf: &[u8]) -> Request {
        match parse_request(buf, DEFAULT_MAX_HEADER_BYTES) {
            Ok(Some((r, _))) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn status(buf: &[u8], max: usize) -> u16 {
        match parse_request(buf, max) {
            Err(e) => e.status,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    /// The RFC request with header lines replaced: `edit` maps each line to its new text.
    fn edited(edit: impl Fn(&str) -> Option<String>) -> Request {
        let text = std::str::from_utf8(RFC_REQUEST).unwrap_or_default();
        let mut out = String::new();
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            if let Some(l) = edit(line) {
                out.push_str(&l);
                out.push_str("\r\n");
            }
        }
        out.push_str("\r\n");
        parse(out.as_bytes())
    }

    fn rejection(req: &Request) -> (HttpError, Vec<(String, String)>) {
        match validate_upgrade(req) {
            Err(e) => e,
            Ok(u) => panic!("expected a rejection, got {u:?}"),
        }
    }

    #[test]
    fn parses_rfc_example() {
        let (req, len) = parse_request(RFC_REQUEST, DEFAULT_MAX_HEADER_BYTES).unwrap().unwrap();
        assert_eq!(len, RFC_REQUEST.len());
        assert_eq!(req.method, "GET");
        assert_eq!(req.target, "/chat");
        assert_eq!(req.path, "/chat");
        assert_eq!(req.query, None);
        assert_eq!(req.http_minor, 1);
        assert_eq!(req.headers.len(), 7);
        assert_eq!(req.headers[0], Header { name: "Host".into(), value: "server.example.com".into() });
        assert_eq!(req.host(), Some("server.example.com"));
        assert_eq!(req.header("sec-websocket-key"), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(req.has_header("ORIGIN"));
        assert!(!req.has_header("Cookie"));
        assert!(req.is_websocket_upgrade());
        assert_eq!(req.header_tokens("Sec-WebSocket-Protocol"), ["chat", "superchat"]);
    }

    #[test]
    fn validates_rfc_example() {
        let up = validate_upgrade(&parse(RFC_REQUEST)).unwrap();
        assert_eq!(
            up,
            UpgradeRequest {
                key: "dGhlIHNhbXBsZSBub25jZQ==".into(),
                protocols: vec!["chat".into(), "superchat".into()],
                extensions: vec![],
            }
        );
    }

    #[test]
    fn reports_consumed_length_with_trailing_bytes() {
        let mut buf = RFC_REQUEST.to_vec();
        buf.extend_from_slice(&[0x81, 0x85, 1, 2, 3, 4]);
        let (_, len) = parse_request(&buf, DEFAULT_MAX_HEADER_BYTES).unwrap().unwrap();
        assert_eq!(len, RFC_REQUEST.len());
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        for cut in [0, 1, 10, RFC_REQUEST.len() - 2, RFC_REQUEST.len() - 1] {
            assert_eq!(parse_request(&RFC_REQUEST[..cut], DEFAULT_MAX_HEADER_BYTES), Ok(None), "cut {cut}");
        }
    }

    #[test]
    fn oversized_heads_are_431() {
        let max = RFC_REQUEST.len() - 1;
        assert_eq!(parse_request(&RFC_REQUEST[..max], max), Ok(None));
        assert_eq!(status(RFC_REQUEST, max), 431);
        assert!(parse_request(RFC_REQUEST, RFC_REQUEST.len()).unwrap().is_some());
        // An endless header line is refused once it passes the limit.
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(DEFAULT_MAX_HEADER_BYTES + 1, b'a');
        let e = parse_request(&long, DEFAULT_MAX_HEADER_BYTES).unwrap_err();
        assert_eq!(e.status, 431);
        assert!(e.message.starts_with("Request Header Fields Too Large"));
        assert_eq!(status(b"GET", 0), 431);
        assert_eq!(parse_request(b"", 0), Ok(None));
    }

    #[test]
    fn header_count_limit() {
        let mut head = String::from("GET / HTTP/1.1\r\n");
        for i in 0..100 {
            head.push_str(&format!("X-{i}: v\r\n"));
        }
        assert_eq!(parse(format!("{head}\r\n").as_bytes()).headers.len(), 100);
        head.push_str("X-100: v\r\n\r\n");
        assert_eq!(status(head.as_bytes(), DEFAULT_MAX_HEADER_BYTES), 431);
    }

    #[test]
    fn malformed_is_400_and_bad_version_is_505() {
        assert_eq!(status(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 1024), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\n: x\r\n\r\n", 1024), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", 1024), 400);
        assert_eq!(status(b"GET  / HTTP/1.1\r\n\r\n", 1024), 400);
        assert_eq!(status(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 1024), 400);
        assert_eq!(status(b"GET / FOO\r\n\r\n", 1024), 400);
        let e = parse_request(b"GET / HTTP/2.0\r\n\r\n", 1024).unwrap_err();
        assert_eq!(e.status, 505);
        assert_eq!(status(b"GET / HTTP/1.2\r\n\r\n", 1024), 505);
    }

    #[test]
    fn header_values_are_trimmed_and_lossy() {
        let r = parse(b"GET /a?b=1?c HTTP/1.0\r\nX-Thing:   spaced \t \r\nX-Bin: caf\xe9\r\n\r\n");
        assert_eq!(r.http_minor, 0);
        assert_eq!(r.path, "/a");
        assert_eq!(r.query.as_deref(), Some("b=1?c"));
        assert_eq!(r.header("x-thing"), Some("spaced"));
        assert_eq!(r.header("x-bin"), Some("caf\u{fffd}"));
        assert_eq!(r.headers[0].name, "X-Thing");
    }

    #[test]
    fn query_params() {
        let r = parse(b"GET /p?a=1&b=&c&name=J%C3%BCrgen+M&a=2&x%20y=z&&e=%zz HTTP/1.1\r\n\r\n");
        assert_eq!(r.query_param("a").as_deref(), Some("1"));
        assert_eq!(r.query_param("b").as_deref(), Some(""));
        assert_eq!(r.query_param("c").as_deref(), Some(""));
        assert_eq!(r.query_param("name").as_deref(), Some("Jürgen M"));
        assert_eq!(r.query_param("x y").as_deref(), Some("z"));
        assert_eq!(r.query_param("e").as_deref(), Some("%zz"));
        assert_eq!(r.query_param("missing"), None);
        assert_eq!(r.query_param(""), None);
        assert_eq!(parse(b"GET /p HTTP/1.1\r\n\r\n").query_param("a"), None);
    }

    #[test]
    fn upgrade_detection_needs_both_tokens() {
        let r = edited(|l| {
            Some(
                l.replace("Connection: Upgrade", "Connection: keep-alive, UPGRADE")
                    .replace("Upgrade: websocket", "Upgrade: WebSocket"),
            )
        });
        assert!(r.is_websocket_upgrade());
        let r = edited(|l| (!l.starts_with("Connection")).then(|| l.to_owned()));
        assert!(!r.is_websocket_upgrade());
        let r = edited(|l| Some(l.replace("Connection: Upgrade", "Connection: keep-alive, Upgraded")));
        assert!(!r.is_websocket_upgrade());
        let r = edited(|l| Some(l.replace("Upgrade: websocket", "Upgrade: h2c")));
        assert!(!r.is_websocket_upgrade());
    }

    #[test]
    fn rejects_wrong_method_with_allow() {
        let r = parse(&[b"POST".as_slice(), &RFC_REQUEST[3..]].concat());
        let (e, extra) = rejection(&r);
        assert_eq!(e.status, 405);
        assert_eq!(extra, [("Allow".to_owned(), "GET".to_owned())]);
        let r = parse(&[b"get".as_slice(), &RFC_REQUEST[3..]].concat());
        assert_eq!(rejection(&r).0.status, 405);
    }

    #[test]
    fn rejects_http_1_0() {
        let r = edited(|l| Some(l.replace("HTTP/1.1", "HTTP/1.0")));
        assert_eq!(r.http_minor, 0);
        assert_eq!(rejection(&r).0.status, 400);
    }

    #[test]
    fn rejects_missing_or_repeated_host() {
        let r = edited(|l| (!l.starts_with("Host")).then(|| l.to_owned()));
        let (e, extra) = rejection(&r);
        assert_eq!((e.status, e.message.as_str()), (400, "Bad Request: missing Host header"));
        assert!(extra.is_empty());
        let r = edited(|l| Some(if l.starts_with("Host") { format!("{l}\r\nHost: other") } else { l.to_owned() }));
        assert_eq!(rejection(&r).0.status, 400);
    }

    #[test]
    fn rejects_non_upgrade_with_426() {
        let r = edited(|l| (!l.starts_with("Upgrade")).then(|| l.to_owned()));
        let (e, extra) = rejection(&r);
        assert_eq!(e.status, 426);
        assert_eq!(extra, [("Upgrade".to_owned(), "websocket".to_owned())]);
    }

    #[test]
    fn rejects_wrong_version_with_426_and_version_header() {
        for v in [Some("8"), Some("13, 8"), Some(""), None] {
            let r = edited(|l| {
                if l.starts_with("Sec-WebSocket-Version") {
                    v.map(|v| format!("Sec-WebSocket-Version: {v}"))
                } else {
                    Some(l.to_owned())
                }
            });
            let (e, extra) = rejection(&r);
            assert_eq!(e.status, 426, "{v:?}");
            assert_eq!(extra, [("Sec-WebSocket-Version".to_owned(), "13".to_owned())]);
        }
    }

    #[test]
    fn rejects_bad_keys() {
        for key in [
            None,
            Some(""),
            Some("dGhlIHNhbXBsZSBub25jZQ"),
            Some("dGhlIHNhbXBsZSBub25jZSE="), // 17 bytes
            Some("dGhlIHNhbXBsZSBub25j"),     // 15 bytes
            Some("dGhlIHNhbXBsZSBub25jZR=="), // non-canonical
            Some("dGhlIHNhbXBsZSBub25jZ!=="),
            Some("dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
        ] {
            let r = edited(|l| {
                if l.starts_with("Sec-WebSocket-Key") {
                    key.map(|k| format!("Sec-WebSocket-Key: {k}"))
                } else {
                    Some(l.to_owned())
                }
            });
            assert_eq!(rejection(&r).0.status, 400, "{key:?}");
        }
    }

    #[test]
    fn checks_subprotocols() {
        let with = |p: &str| {
            edited(|l| {
                Some(if l.starts_with("Sec-WebSocket-Protocol") {
                    format!("Sec-WebSocket-Protocol: {p}")
                } else {
                    l.to_owned()
                })
            })
        };
        assert_eq!(rejection(&with("chat, chat")).0.status, 400);
        assert_eq!(rejection(&with("chat, a/b")).0.status, 400);
        assert_eq!(rejection(&with("\"chat\"")).0.status, 400);
        assert_eq!(validate_upgrade(&with("v1.chat, Chat")).unwrap().protocols, ["v1.chat", "Chat"]);
        assert!(validate_upgrade(&with("")).unwrap().protocols.is_empty());
        let r = edited(|l| {
            Some(if l.starts_with("Sec-WebSocket-Protocol") {
                "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b, a".to_owned()
            } else {
                l.to_owned()
            })
        });
        assert_eq!(rejection(&r).0.status, 400);
    }

    #[test]
    fn collects_extension_offers() {
        let r = edited(|l| {
            Some(if l.starts_with("Origin") {
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover".to_owned()
            } else {
                l.to_owned()
            })
        });
        assert_eq!(
            validate_upgrade(&r).unwrap().extensions,
            ["permessage-deflate; client_max_window_bits", "x-foo", "permessage-deflate; server_no_context_takeover"]
        );
        let r = edited(|l| {
            Some(if l.starts_with("Origin") { "Sec-WebSocket-Extensions: ; x".to_owned() } else { l.to_owned() })
        });
        assert_eq!(rejection(&r).0.status, 400);
    }

    /// The RFC request with `extra` header lines added before the blank line.
    fn with_lines(extra: &str) -> Vec<u8> {
        let head = &RFC_REQUEST[..RFC_REQUEST.len() - 2];
        [head, extra.as_bytes(), b"\r\n"].concat()
    }

    #[test]
    fn ambiguous_framing_is_400() {
        for extra in [
            "Content-Length: abc\r\n",
            "Content-Length: \r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: 5, 6\r\n",
            "Content-Length: 99999999999999999999999\r\n",
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: gzip\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
        ] {
            let e = parse_request(&with_lines(extra), DEFAULT_MAX_HEADER_BYTES).unwrap_err();
            assert_eq!(e.status, 400, "{extra:?}");
            assert!(e.message.starts_with("Bad Request: "), "{e:?}");
        }
        // Equal repeats are one length (RFC 9112 §6.3 item 5).
        assert!(parse_request(&with_lines("Content-Length: 0\r\nContent-Length: 0\r\n"), 1024).is_ok());
    }

    #[test]
    fn upgrade_with_content_is_400() {
        for extra in ["Content-Length: 14\r\n", "Transfer-Encoding: chunked\r\n", "Content-Length: 3, 3\r\n"] {
            let (e, _) = rejection(&parse(&with_lines(extra)));
            assert_eq!(
                (e.status, e.message.as_str()),
                (400, "Bad Request: a WebSocket upgrade request must not carry content"),
                "{extra:?}"
            );
        }
        assert!(validate_upgrade(&parse(&with_lines("Content-Length: 0\r\n"))).is_ok());
    }

    #[test]
    fn repeated_origin_is_400() {
        let (e, _) = rejection(&parse(&with_lines("origin: http://evil.example\r\n")));
        assert_eq!((e.status, e.message.as_str()), (400, "Bad Request: more than one Origin header"));
    }

    #[test]
    fn absolute_form_targets_route_by_path() {
        let r = parse(b"GET http://server.example.com/chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\n\r\n");
        assert_eq!(r.target, "http://server.example.com/chat?room=1");
        assert_eq!((r.path.as_str(), r.query.as_deref()), ("/chat", Some("room=1")));
        let r = parse(b"GET WSS://h:8443 HTTP/1.1\r\n\r\n");
        assert_eq!((r.path.as_str(), r.query.as_deref()), ("/", None));
        let r = parse(b"GET https://h?x=1 HTTP/1.1\r\n\r\n");
        assert_eq!((r.path.as_str(), r.query.as_deref()), ("/", Some("x=1")));
        // Other schemes and forms stay as sent (and route nowhere).
        assert_eq!(parse(b"GET ftp://h/chat HTTP/1.1\r\n\r\n").path, "ftp://h/chat");
        assert_eq!(parse(b"OPTIONS * HTTP/1.1\r\n\r\n").path, "*");
    }

    #[test]
    fn mutated_input_never_panics() {
        use rand::RngExt as _;
        let mut rng = rand::rng();
        let alphabet = b"GET /?&=%+HTTP1.0\r\n:; ,\tUpgrade websocket\x00\x7f\xff";
        for _ in 0..3000 {
            let mut buf = RFC_REQUEST.to_vec();
            for _ in 0..rng.random_range(0..4) {
                let at = rng.random_range(0..buf.len());
                buf[at] = alphabet[rng.random_range(0..alphabet.len())];
            }
            buf.truncate(rng.random_range(0..=buf.len()));
            let max = rng.random_range(0..300);
            match parse_request(&buf, max) {
                Ok(Some((req, len))) => {
                    assert!(len <= buf.len() && len <= max);
                    let _ = validate_upgrade(&req);
                    let _ = req.query_param("a");
                }
                Ok(None) => assert!(buf.len() <= max),
                Err(e) => assert!([400, 431, 505].contains(&e.status), "{e:?}"),
            }
        }
    }
}
