//! Read-only views handed to callbacks: the handshake request (`wsffi_request`), a refusal
//! answer (`wsffi_response`), and the builder for plain HTTP answers (`wsffi_http_response`).
//! Strings are converted to C strings once, so accessors can return stable pointers.

use std::ffi::CString;

use crate::core::handshake::request::Request;
use crate::core::handshake::Header;

/// NUL-terminated copy; interior NULs (impossible in valid HTTP) become spaces.
pub fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Header list in C form, in received order.
#[derive(Debug, Default, Clone)]
pub struct HeaderList {
    /// (name, value) pairs.
    pub pairs: Vec<(CString, CString)>,
}

impl HeaderList {
    /// Converts parsed headers.
    pub fn from_headers(headers: &[Header]) -> Self {
        HeaderList { pairs: headers.iter().map(|h| (cstring(&h.name), cstring(&h.value))).collect() }
    }

    /// First value of `name`, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&CString> {
        self.pairs.iter().find(|(n, _)| n.to_bytes().eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }
}

/// The C `wsffi_request`: an HTTP upgrade (or plain) request as received: method, target,
/// headers, peer address and TLS client subject.
#[derive(Debug)]
pub struct RequestView {
    /// Method.
    pub method: CString,
    /// Request target (url / requestUri).
    pub url: CString,
    /// Path without query.
    pub path: CString,
    /// Raw query string ("" when none).
    pub query_string: CString,
    /// "1.0" or "1.1".
    pub http_version: CString,
    /// Host header, if present.
    pub host: Option<CString>,
    /// Peer address ("127.0.0.1:5000").
    pub remote_address: CString,
    /// Headers in received order.
    pub headers: HeaderList,
    /// Decoded query parameters in order.
    pub query: Vec<(String, CString)>,
    /// Subject of the client's TLS certificate ("" without one).
    pub tls_subject: CString,
    /// The ALPN protocol agreed on ("" without TLS or ALPN).
    pub tls_alpn: CString,
    /// The server name (SNI) the client asked for ("" without TLS or SNI).
    pub tls_server_name: CString,
    /// The parsed request.
    pub request: Request,
}

impl RequestView {
    /// Builds the view of a parsed request from `remote`.
    pub fn new(request: Request, remote: &str) -> Self {
        let mut query: Vec<(String, CString)> = Vec::new();
        if let Some(q) = &request.query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let raw_name = pair.split('=').next().unwrap_or("");
                let name = crate::core::handshake::headers::percent_decode(raw_name, true).into_owned();
                if query.iter().any(|(n, _)| *n == name) {
                    continue;
                }
                let value = request.query_param(&name).unwrap_or_default();
                query.push((name, cstring(&value)));
            }
        }
        RequestView {
            method: cstring(&request.method),
            url: cstring(&request.target),
            path: cstring(&request.path),
            query_string: cstring(request.query.as_deref().unwrap_or("")),
            http_version: cstring(if request.http_minor == 0 { "1.0" } else { "1.1" }),
            host: request.host().map(cstring),
            remote_address: cstring(remote),
            headers: HeaderList::from_headers(&request.headers),
            query,
            tls_subject: CString::default(),
            tls_alpn: CString::default(),
            tls_server_name: CString::default(),
            request,
        }
    }

    /// Decoded value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&CString> {
        self.query.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// The C `wsffi_response`: a server's answer to a client's upgrade (a refusal, or the 101
/// kept for `wsffi_conn_handshake_response`).
#[derive(Debug, Clone)]
pub struct ResponseView {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: CString,
    /// Headers.
    pub headers: HeaderList,
    /// Body (possibly cut at the collection limit).
    pub body: Vec<u8>,
}

/// The C `wsffi_http_response`: what a plain HTTP handler answers.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code (default 200).
    pub status: u16,
    /// Reason phrase ("" = standard phrase).
    pub reason: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Default for HttpResponse {
    fn default() -> Self {
        HttpResponse { status: 200, reason: String::new(), headers: Vec::new(), body: Vec::new() }
    }
}
