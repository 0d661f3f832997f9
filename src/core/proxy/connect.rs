//! The HTTP `CONNECT` exchange (RFC 9110 §9.3.6): the request and the proxy's answer.

use crate::core::handshake::headers::base64_encode;

/// Most bytes of a proxy's response head read before giving up.
pub(crate) const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Why a `CONNECT` did not open a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectError {
    /// 407 (or 401): credentials missing or refused.
    AuthRequired {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// 403: the proxy's rules forbid the target.
    Forbidden {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// Any other non-2xx answer (502 and 503 usually mean the target is unreachable).
    Status {
        /// The status code.
        status: u16,
        /// The reason phrase.
        reason: String,
    },
    /// Not HTTP, or a head larger than [`MAX_RESPONSE_HEAD`].
    Malformed(String),
}

impl ConnectError {
    /// A sentence for `on_error`.
    pub fn message(&self) -> String {
        match self {
            ConnectError::AuthRequired { status, reason } => {
                format!("proxy: authentication required or refused ({status} {reason})")
            }
            ConnectError::Forbidden { status, reason } => {
                format!("proxy: tunnel forbidden by the proxy ({status} {reason})")
            }
            ConnectError::Status { status, reason } => {
                format!("proxy: CONNECT failed ({status} {reason})")
            }
            ConnectError::Malformed(why) => format!("proxy: malformed CONNECT response: {why}"),
        }
    }
}

/// The request that asks for a tunnel to `host:port` (`host` without brackets).
pub fn connect_request(host: &str, port: u16, credentials: Option<(&str, &str)>) -> Vec<u8> {
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, pass)) = credentials {
        let token = base64_encode(format!("{user}:{pass}").as_bytes());
        head.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Reads the proxy's answer from the bytes received so far.
/// `Ok(None)`: incomplete, read more. `Ok(Some(n))`: tunnel open, the head was `n` bytes and
/// whatever follows belongs to the tunnel.
pub fn parse_connect_response(buf: &[u8]) -> Result<Option<usize>, ConnectError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_RESPONSE_HEAD {
                Err(ConnectError::Malformed(format!("response head larger than {MAX_RESPONSE_HEAD} bytes")))
            } else {
                Ok(None)
            }
        }
        Ok(httparse::Status::Complete(n)) => {
            if n > MAX_RESPONSE_HEAD {
                return Err(ConnectError::Malformed(format!("response head larger than {MAX_RESPONSE_HEAD} bytes")));
            }
            let status = resp.code.unwrap_or(0);
            let reason = resp.reason.unwrap_or("").to_string();
            match status {
                200..=299 => Ok(Some(n)),
                // Some proxies (tinyproxy) answer 401 where RFC 9110 says 407.
                401 | 407 => Err(ConnectError::AuthRequired { status, reason }),
                403 => Err(ConnectError::Forbidden { status, reason }),
                _ => Err(ConnectError::Status { status, reason }),
            }
        }
        Err(httparse::Error::TooManyHeaders) => Err(ConnectError::Malformed("more than 64 header fields".into())),
        Err(e) => Err(ConnectError::Malformed(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_with_basic_auth() {
        let r = connect_request("example.com", 443, Some(("Aladdin", "open sesame")));
        assert_eq!(
            std::str::from_utf8(&r).unwrap(),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
        let r = connect_request("::1", 80, None);
        assert!(r.starts_with(b"CONNECT [::1]:80 HTTP/1.1\r\n"));
    }

    #[test]
    fn established_keeps_tunnel_bytes() {
        let buf = b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\nHTTP/1.1 101";
        let n = parse_connect_response(buf).unwrap().unwrap();
        assert_eq!(&buf[n..], b"HTTP/1.1 101");
        assert_eq!(parse_connect_response(b"HTTP/1.0 200 OK\r\n\r\n").unwrap(), Some(19));
    }

    #[test]
    fn truncated_is_incomplete() {
        let full = b"HTTP/1.1 200 Connection established\r\n\r\n";
        for i in 0..full.len() {
            assert_eq!(parse_connect_response(&full[..i]).unwrap(), None, "{i}");
        }
    }

    #[test]
    fn failures() {
        let e = parse_connect_response(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n");
        assert!(matches!(e, Err(ConnectError::AuthRequired { status: 407, .. })));
        let e = parse_connect_response(b"HTTP/1.1 403 Filtered\r\n\r\n").unwrap_err();
        assert!(e.message().contains("403 Filtered"), "{}", e.message());
        let e = parse_connect_response(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").unwrap_err();
        assert_eq!(e, ConnectError::Status { status: 502, reason: "Bad Gateway".into() });
    }

    #[test]
    fn garbage_and_oversized() {
        assert!(matches!(parse_connect_response(b"SSH-2.0-OpenSSH\r\n\r\n"), Err(ConnectError::Malformed(_))));
        assert!(matches!(parse_connect_response(b"\x05\x00\x00\x01"), Err(ConnectError::Malformed(_))));
        let mut big = b"HTTP/1.1 200 OK\r\n".to_vec();
        while big.len() <= MAX_RESPONSE_HEAD {
            big.extend_from_slice(b"X: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        assert!(matches!(parse_connect_response(&big), Err(ConnectError::Malformed(_))));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..100 {
            many.extend_from_slice(b"X: y\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert!(parse_connect_response(&many).is_err());
    }
}
