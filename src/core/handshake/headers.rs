//! Helpers shared by the handshake modules: header lookup, comma lists and parameterised lists,
//! RFC 7230 tokens, base64 and percent-decoding.

use std::borrow::Cow;

use super::{Header, HttpError};

/// Most header fields a request or response head may carry.
pub const MAX_HEADERS: usize = 100;

/// True for the bytes RFC 7230 allows in a token (`tchar`).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// True when `s` is a non-empty RFC 7230 token, the syntax of header names, methods and
/// subprotocol names.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Value of the first header named `name` (ASCII case-insensitive).
pub fn find<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.as_str())
}

/// How many headers are named `name` (ASCII case-insensitive).
pub fn count(headers: &[Header], name: &str) -> usize {
    headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).count()
}

/// Elements of the comma lists in every header named `name`, in order.
pub fn elements<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).flat_map(|h| ListElements { rest: &h.value })
}

/// Owned copy of [`elements`], for callers that keep the list.
pub fn tokens(headers: &[Header], name: &str) -> Vec<String> {
    elements(headers, name).map(str::to_owned).collect()
}

/// Whether any list element of the headers named `name` equals `token` (ASCII case-insensitive).
pub fn has_token(headers: &[Header], name: &str, token: &str) -> bool {
    elements(headers, name).any(|e| e.eq_ignore_ascii_case(token))
}

/// Splits one header value on commas (RFC 7230 §7 `#rule`), trimming elements and skipping
/// empty ones. Commas inside double-quoted strings do not split, since extension parameters
/// may be quoted.
struct ListElements<'a> {
    rest: &'a str,
}

impl<'a> Iterator for ListElements<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        while !self.rest.is_empty() {
            let bytes = self.rest.as_bytes();
            let mut in_quotes = false;
            let mut escaped = false;
            let mut end = bytes.len();
            for (i, &b) in bytes.iter().enumerate() {
                if escaped {
                    escaped = false;
                } else if in_quotes && b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quotes = !in_quotes;
                } else if b == b',' && !in_quotes {
                    end = i;
                    break;
                }
            }
            // `end` is the position of an ASCII comma or the length, so both slices are on
            // character boundaries.
            let element = self.rest.get(..end).unwrap_or("");
            self.rest = self.rest.get(end + 1..).unwrap_or("");
            let element = trim_ows(element);
            if !element.is_empty() {
                return Some(element);
            }
        }
        None
    }
}

/// One element of a parameterised list, the syntax of Sec-WebSocket-Extensions
/// (RFC 6455 §9.1): a token and its `;`-separated parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamItem {
    /// The element's token, as written.
    pub name: String,
    /// Its parameters, in order.
    pub params: Vec<Param>,
}

/// One parameter of a [`ParamItem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter's token, as written.
    pub name: String,
    /// The value after `=`, a token or an unescaped quoted-string; `None` without `=`.
    pub value: Option<String>,
}

/// Parses a parameterised list: `item *( "," item )`, each item
/// `token *( ";" token [ "=" ( token / quoted-string ) ] )` with optional whitespace around
/// the separators. Empty list elements are skipped (RFC 7230 §7); the error names the
/// malformed element.
pub fn parse_param_list(value: &str) -> Result<Vec<ParamItem>, String> {
    ListElements { rest: value }.map(parse_param_item).collect()
}

fn parse_param_item(element: &str) -> Result<ParamItem, String> {
    let mut c = Cursor { s: element, i: 0 };
    let in_element = |e: String| format!("{e} in {element:?}");
    let name = c.token("a name").map_err(in_element)?.to_owned();
    let mut params = Vec::new();
    loop {
        c.skip_ows();
        match c.peek() {
            None => return Ok(ParamItem { name, params }),
            Some(b';') => {
                c.i += 1;
                c.skip_ows();
                let pname = c.token("a parameter name").map_err(in_element)?.to_owned();
                c.skip_ows();
                let value = if c.peek() == Some(b'=') {
                    c.i += 1;
                    c.skip_ows();
                    if c.peek() == Some(b'"') {
                        Some(c.quoted().map_err(in_element)?)
                    } else {
                        Some(c.token("a parameter value").map_err(in_element)?.to_owned())
                    }
                } else {
                    None
                };
                params.push(Param { name: pname, value });
            }
            Some(b) => return Err(in_element(format!("unexpected byte {b:#04x} at offset {}", c.i))),
        }
    }
}

/// A read position in one list element.
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

/// Trims HTTP optional whitespace (space and tab) from both ends.
pub fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Converts parsed httparse headers into owned [`Header`]s.
pub(super) fn collect(parsed: &[httparse::Header<'_>]) -> Vec<Header> {
    parsed
        .iter()
        .map(|h| Header { name: h.name.to_owned(), value: trim_ows(&String::from_utf8_lossy(h.value)).to_owned() })
        .collect()
}

/// Maps an httparse failure to the status a server would answer with. `head` is the start of
/// the message, used to tell an unsupported HTTP version (505) from garbage (400).
pub(super) fn parse_error(err: httparse::Error, head: &[u8], what: &str) -> HttpError {
    match err {
        httparse::Error::TooManyHeaders => HttpError::new(
            431,
            format!("Request Header Fields Too Large: the {what} has more than {MAX_HEADERS} headers"),
        ),
        httparse::Error::Version if names_http_version(head) => {
            HttpError::new(505, format!("HTTP Version Not Supported: the {what} is not HTTP/1.0 or HTTP/1.1"))
        }
        other => HttpError::new(400, format!("Bad Request: malformed {what} ({other})")),
    }
}

/// Whether the first line of `head` carries something shaped like `HTTP/<digit>.<digit>`.
fn names_http_version(head: &[u8]) -> bool {
    let line_end = head.iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(head.len());
    let line = head.get(..line_end).unwrap_or(&[]);
    line.windows(8).any(|w| w.starts_with(b"HTTP/") && w[5].is_ascii_digit() && w[6] == b'.' && w[7].is_ascii_digit())
}

/// The size error of a head that did not end within the allowed bytes.
pub(super) fn too_large(what: &str, max: usize) -> HttpError {
    HttpError::new(431, format!("Request Header Fields Too Large: the {what} head exceeds {max} bytes"))
}

const BASE64_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for i in 0..4 {
            // A chunk of k bytes yields k + 1 significant characters; the rest is padding.
            if i <= chunk.len() {
                let sextet = (n >> (18 - 6 * i)) & 63;
                out.push(char::from(BASE64_ALPHABET[sextet as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Number of bytes `s` decodes to if it is canonical padded base64, `None` otherwise.
/// Validates without decoding: the handshake only needs to know the key is 16 bytes.
pub fn base64_decoded_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return None;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let body = &b[..b.len() - pad];
    let mut last = 0;
    for &c in body {
        last = base64_value(c)?;
    }
    // Bits past the last whole byte must be zero, or two strings would decode alike.
    let spare_bits_mask = match pad {
        1 => 0b11,
        2 => 0b1111,
        _ => 0,
    };
    if last & spare_bits_mask != 0 {
        return None;
    }
    Some(body.len() * 3 / 4)
}

/// Decodes `%XX` escapes (and `+` as space when `plus_as_space`); malformed escapes stay as
/// written and invalid UTF-8 becomes U+FFFD. Borrows when there is nothing to decode.
pub fn percent_decode(s: &str, plus_as_space: bool) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || (plus_as_space && b == b'+')) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            let hi = b.get(i + 1).and_then(|&h| char::from(h).to_digit(16));
            let lo = b.get(i + 2).and_then(|&l| char::from(l).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus_as_space && c == b'+' { b' ' } else { c });
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        Header { name: name.into(), value: value.into() }
    }

    #[test]
    fn tokens_split_trim_and_skip_empty() {
        let hs = [h("Sec-WebSocket-Protocol", " chat ,, superchat,"), h("X", "y"), h("sec-websocket-protocol", "v2")];
        assert_eq!(tokens(&hs, "SEC-WEBSOCKET-PROTOCOL"), ["chat", "superchat", "v2"]);
        assert!(tokens(&hs, "missing").is_empty());
    }

    #[test]
    fn tokens_keep_quoted_commas() {
        let hs = [h("Sec-WebSocket-Extensions", r#"foo; a="x,\"y", bar"#)];
        assert_eq!(tokens(&hs, "sec-websocket-extensions"), [r#"foo; a="x,\"y""#, "bar"]);
    }

    #[test]
    fn param_lists_with_params_and_quotes() {
        let e = parse_param_list(" foo , permessage-deflate ;a; b = 1 ;c=\"x,y;\\\"z\" ,, bar;q=\"\"\t").unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].name, "foo");
        assert_eq!(e[1].name, "permessage-deflate");
        let p: Vec<_> = e[1].params.iter().map(|p| (p.name.as_str(), p.value.as_deref())).collect();
        assert_eq!(p, [("a", None), ("b", Some("1")), ("c", Some("x,y;\"z"))]);
        assert_eq!(e[2].params[0].value.as_deref(), Some(""));
        assert!(parse_param_list("").unwrap().is_empty());
        assert!(parse_param_list(" , ,").unwrap().is_empty());
    }

    #[test]
    fn malformed_param_lists_name_the_element() {
        for bad in [
            "x;",
            "x; ; y",
            ";x",
            "x; a=",
            "x; a=\"open",
            "x; a=\"bad\\",
            "x; a=b c",
            "x y",
            "x; a=\"ctl\u{1}\"",
            "x; a=(y)",
            "é",
        ] {
            let err = parse_param_list(&format!("ok, {bad}")).unwrap_err();
            assert!(err.contains(&format!("{:?}", bad.trim())), "{bad:?}: {err}");
        }
    }

    #[test]
    fn has_token_is_case_insensitive() {
        let hs = [h("Connection", "keep-alive, Upgrade")];
        assert!(has_token(&hs, "connection", "upgrade"));
        assert!(!has_token(&hs, "connection", "close"));
        assert_eq!(find(&hs, "CONNECTION"), Some("keep-alive, Upgrade"));
        assert_eq!(count(&hs, "connection"), 1);
    }

    #[test]
    fn token_syntax() {
        assert!(is_token("chat.v2+json"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token("a/b"));
        assert!(!is_token("é"));
    }

    #[test]
    fn base64_round_trip_lengths() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(base64_encode(&[0xff, 0xfe, 0xfd]), "//79");
        for s in ["", "Zg==", "Zm8=", "Zm9v", "dGhlIHNhbXBsZSBub25jZQ=="] {
            assert_eq!(base64_decoded_len(s), Some(s.len() / 4 * 3 - s.matches('=').count()));
        }
    }

    #[test]
    fn base64_rejects_non_canonical() {
        assert_eq!(base64_decoded_len("dGhlIHNhbXBsZSBub25jZQ"), None); // no padding
        assert_eq!(base64_decoded_len("dGhlIHNhbXBsZSBub25jZR=="), None); // spare bits set
        assert_eq!(base64_decoded_len("Zm8"), None);
        assert_eq!(base64_decoded_len("Z==="), None);
        assert_eq!(base64_decoded_len("Zm=v"), None);
        assert_eq!(base64_decoded_len("Zm9-"), None);
    }

    #[test]
    fn percent_decoding() {
        assert!(matches!(percent_decode("plain", true), Cow::Borrowed("plain")));
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("%E2%9C%93", false), "✓");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%ff", false), "\u{fffd}");
    }

    #[test]
    fn version_detection_for_505() {
        assert!(names_http_version(b"GET / HTTP/2.0\r\n"));
        assert!(!names_http_version(b"GET / FOO/1.1\r\n"));
        assert!(!names_http_version(b"GET / HTTP/x\r\nHTTP/1.1"));
    }
}
