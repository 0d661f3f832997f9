//! WebSocket URLs: `ws://`, `wss://` (and `http://`, `https://` as browsers map them), and
//! `ws+unix://` for Unix domain sockets in the syntax of Node's `ws` package.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A parsed WebSocket URL, ready for connecting and for building the upgrade request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss` (TLS) rather than `ws`.
    pub secure: bool,
    /// Lower-cased DNS name or IP literal, without brackets; `""` for Unix sockets.
    pub host: String,
    /// TCP port; 80 or 443 when the URL names none.
    pub port: u16,
    /// Path plus `?query`, never empty (`"/"` by default); percent-escapes kept as given.
    pub resource: String,
    /// The host is an IPv6 literal (written in brackets in the URL).
    pub is_ipv6: bool,
    /// Socket path of a `ws+unix:` URL.
    pub unix_path: Option<String>,
    /// `user:pass` from `ws://user:pass@host/`, as written (percent-escapes kept).
    pub userinfo: Option<String>,
}

/// Parses a WebSocket URL. Scheme and host are case-insensitive; the host is lower-cased.
///
/// Unix sockets: `ws+unix:///tmp/sock` or `ws+unix:///tmp/sock:/resource?x` (socket path,
/// then `:`, then the resource). Characters not allowed in a request target (non-ASCII, the
/// double quote, `<`, `>`, `\`, `^`, the backtick, `{`, `|`, `}`) are percent-encoded in the
/// resource.
pub fn parse_ws_url(s: &str) -> Result<WsUrl, String> {
    if s.is_empty() {
        return Err("URL is empty".into());
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("URL contains whitespace or a control character ({c:?})"));
    }
    let scheme_end = s.find(':').filter(|&i| is_scheme(&s[..i]));
    let Some(scheme_end) = scheme_end else {
        return Err(format!("URL {s:?} has no scheme (expected ws:// or wss://)"));
    };
    let (scheme, rest) = (&s[..scheme_end], &s[scheme_end + 1..]);
    let (secure, unix) = match scheme.to_ascii_lowercase().as_str() {
        "ws" | "http" => (false, false),
        "wss" | "https" => (true, false),
        "ws+unix" => (false, true),
        "wss+unix" => (true, true),
        _ => return Err(format!("unsupported URL scheme {scheme:?} (expected ws, wss, http, https or ws+unix)")),
    };
    if rest.contains('#') {
        return Err("URL fragments are not allowed in WebSocket URLs".into());
    }
    if unix {
        return parse_unix(rest, secure);
    }
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(format!("URL {s:?} has no host (expected {scheme}://host/...)"));
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (host, port, is_ipv6) = parse_host_port(host_port, secure)?;
    Ok(WsUrl {
        secure,
        host,
        port,
        resource: resource_from(tail),
        is_ipv6,
        unix_path: None,
        userinfo: userinfo.filter(|u| !u.is_empty()).map(str::to_owned),
    })
}

/// RFC 3986 scheme syntax: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn parse_unix(rest: &str, secure: bool) -> Result<WsUrl, String> {
    let path = match rest.strip_prefix("//") {
        Some(p) if !p.is_empty() && !p.starts_with('/') => {
            return Err("ws+unix URLs take no host: write ws+unix:///path/to/socket".into())
        }
        Some(p) => p,
        None => rest,
    };
    let end = path.find([':', '?']).unwrap_or(path.len());
    let (socket, tail) = path.split_at(end);
    if socket.is_empty() {
        return Err("ws+unix URL has no socket path".into());
    }
    let tail = tail.strip_prefix(':').unwrap_or(tail);
    Ok(WsUrl {
        secure,
        host: String::new(),
        port: default_port(secure),
        resource: resource_from(tail),
        is_ipv6: false,
        unix_path: Some(socket.to_owned()),
        userinfo: None,
    })
}

fn default_port(secure: bool) -> u16 {
    if secure {
        443
    } else {
        80
    }
}

/// Returns (host, port, is_ipv6).
fn parse_host_port(s: &str, secure: bool) -> Result<(String, u16, bool), String> {
    if s.is_empty() {
        return Err("URL has no host".into());
    }
    let (host, is_ipv6, port) = if let Some(after) = s.strip_prefix('[') {
        let Some(close) = after.find(']') else {
            return Err(format!("IPv6 address in {s:?} lacks its closing ']'"));
        };
        let (literal, rest) = (&after[..close], &after[close + 1..]);
        let addr: Ipv6Addr = literal.parse().map_err(|_| format!("invalid IPv6 address [{literal}]"))?;
        let port = match rest {
            "" => None,
            _ => match rest.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("unexpected {rest:?} after IPv6 address [{literal}]")),
            },
        };
        // The canonical text form (lower case, `::` compression) keeps Host headers stable.
        (addr.to_string(), true, port)
    } else {
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        check_reg_name(host)?;
        (host.to_ascii_lowercase(), false, port)
    };
    let port = match port {
        None | Some("") => default_port(secure),
        Some(p) => parse_port(p)?,
    };
    Ok((host, port, is_ipv6))
}

fn check_reg_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("URL has no host".into());
    }
    if let Some(c) = host.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')) {
        return Err(if c.is_ascii() {
            format!("invalid character {c:?} in host {host:?}")
        } else {
            format!("host {host:?} must be ASCII (use the punycode xn-- form)")
        });
    }
    // All digits and dots reads as IPv4; a bad one must not be looked up as a name.
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') && host.parse::<Ipv4Addr>().is_err() {
        return Err(format!("invalid IPv4 address {host:?}"));
    }
    Ok(())
}

fn parse_port(p: &str) -> Result<u16, String> {
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid port {p:?}"));
    }
    match p.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err(format!("port {p} is out of range (1-65535)")),
    }
}

/// Builds the request target from what follows the authority: "" -> "/", "?q" -> "/?q".
fn resource_from(tail: &str) -> String {
    let mut out = String::with_capacity(tail.len() + 1);
    if !tail.starts_with('/') {
        out.push('/');
    }
    for c in tail.chars() {
        if c.is_ascii() && !matches!(c, '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}') {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

impl WsUrl {
    /// Value for the Host header: `example.com`, `example.com:8080` when the port is not the
    /// default, `[::1]:9000`; `localhost` for Unix sockets.
    pub fn host_header(&self) -> String {
        if self.unix_path.is_some() {
            return "localhost".into();
        }
        let mut out = String::with_capacity(self.host.len() + 8);
        if self.is_ipv6 {
            let _ = write!(out, "[{}]", self.host);
        } else {
            out.push_str(&self.host);
        }
        if self.port != default_port(self.secure) {
            let _ = write!(out, ":{}", self.port);
        }
        out
    }

    /// `http://host[:port]` or `https://host[:port]`, for a default Origin.
    pub fn origin_like(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        format!("{scheme}://{}", self.host_header())
    }

    /// Normalized URL (`ws://host[:port]/resource`, default port omitted, no credentials).
    pub fn to_url_string(&self) -> String {
        match &self.unix_path {
            Some(path) => {
                let scheme = if self.secure { "wss+unix" } else { "ws+unix" };
                // An absolute socket path takes the `scheme://` form, a relative one `scheme:`.
                let slashes = if path.starts_with('/') { "//" } else { "" };
                format!("{scheme}:{slashes}{path}:{}", self.resource)
            }
            None => {
                let scheme = if self.secure { "wss" } else { "ws" };
                format!("{scheme}://{}{}", self.host_header(), self.resource)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> WsUrl {
        match parse_ws_url(s) {
            Ok(u) => u,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match parse_ws_url(s) {
            Ok(u) => panic!("{s:?} should fail, got {u:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_ws_defaults() {
        let u = ok("ws://example.com");
        assert_eq!(
            u,
            WsUrl {
                secure: false,
                host: "example.com".into(),
                port: 80,
                resource: "/".into(),
                is_ipv6: false,
                unix_path: None,
                userinfo: None,
            }
        );
        assert_eq!(u.host_header(), "example.com");
        assert_eq!(u.origin_like(), "http://example.com");
        assert_eq!(u.to_url_string(), "ws://example.com/");
    }

    #[test]
    fn wss_with_port_path_query() {
        let u = ok("WSS://Example.COM:8443/chat/room?id=1&x=%20y");
        assert!(u.secure);
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, 8443);
        assert_eq!(u.resource, "/chat/room?id=1&x=%20y");
        assert_eq!(u.host_header(), "example.com:8443");
        assert_eq!(u.origin_like(), "https://example.com:8443");
        assert_eq!(u.to_url_string(), "wss://example.com:8443/chat/room?id=1&x=%20y");
    }

    #[test]
    fn default_ports_are_omitted_when_written() {
        assert_eq!(ok("ws://h:80/").to_url_string(), "ws://h/");
        assert_eq!(ok("wss://h:443").host_header(), "h");
        assert_eq!(ok("wss://h:80").host_header(), "h:80");
        assert_eq!(ok("ws://h:/x").port, 80);
        assert_eq!(ok("ws://h:0080").port, 80);
    }

    #[test]
    fn query_without_path() {
        assert_eq!(ok("ws://h?a=1").resource, "/?a=1");
        assert_eq!(ok("ws://h/?").resource, "/?");
    }

    #[test]
    fn http_schemes_map_to_ws() {
        let u = ok("http://h/x");
        assert!(!u.secure);
        assert_eq!(u.port, 80);
        assert_eq!(u.to_url_string(), "ws://h/x");
        let u = ok("HTTPS://h/x");
        assert!(u.secure);
        assert_eq!(u.port, 443);
        assert_eq!(u.to_url_string(), "wss://h/x");
    }

    #[test]
    fn ipv6_literals() {
        let u = ok("ws://[::1]:9000/s");
        assert!(u.is_ipv6);
        assert_eq!(u.host, "::1");
        assert_eq!(u.port, 9000);
        assert_eq!(u.host_header(), "[::1]:9000");
        assert_eq!(u.to_url_string(), "ws://[::1]:9000/s");
        let u = ok("wss://[2001:DB8:0:0:0:0:0:1]");
        assert_eq!(u.host, "2001:db8::1");
        assert_eq!(u.host_header(), "[2001:db8::1]");
        assert_eq!(u.origin_like(), "https://[2001:db8::1]");
    }

    #[test]
    fn ipv4_literals() {
        let u = ok("ws://127.0.0.1:8080");
        assert_eq!(u.host, "127.0.0.1");
        assert!(!u.is_ipv6);
        assert_eq!(u.host_header(), "127.0.0.1:8080");
    }

    #[test]
    fn userinfo_is_kept_but_not_printed() {
        let u = ok("ws://user:p%40ss@h:81/x");
        assert_eq!(u.userinfo.as_deref(), Some("user:p%40ss"));
        assert_eq!(u.host, "h");
        assert_eq!(u.to_url_string(), "ws://h:81/x");
        assert_eq!(ok("ws://a@b@h/").userinfo.as_deref(), Some("a@b"));
        assert_eq!(ok("ws://@h/").userinfo, None);
    }

    #[test]
    fn unsafe_resource_characters_are_encoded() {
        assert_eq!(ok("ws://h/caf\u{e9}?q=\u{2713}").resource, "/caf%C3%A9?q=%E2%9C%93");
        assert_eq!(ok("ws://h/a\"b<c>{d}|`^\\").resource, "/a%22b%3Cc%3E%7Bd%7D%7C%60%5E%5C");
        assert_eq!(ok("ws://h/%41%zz").resource, "/%41%zz");
    }

    #[test]
    fn unix_sockets() {
        let u = ok("ws+unix:///tmp/sock");
        assert_eq!(u.unix_path.as_deref(), Some("/tmp/sock"));
        assert_eq!(u.host, "");
        assert_eq!(u.resource, "/");
        assert_eq!(u.host_header(), "localhost");
        assert_eq!(u.origin_like(), "http://localhost");
        assert_eq!(u.to_url_string(), "ws+unix:///tmp/sock:/");

        let u = ok("ws+unix:///tmp/sock:/chat?x=1");
        assert_eq!(u.unix_path.as_deref(), Some("/tmp/sock"));
        assert_eq!(u.resource, "/chat?x=1");
        assert_eq!(u.to_url_string(), "ws+unix:///tmp/sock:/chat?x=1");

        let u = ok("ws+unix:/run/app.sock?x");
        assert_eq!(u.unix_path.as_deref(), Some("/run/app.sock"));
        assert_eq!(u.resource, "/?x");

        let u = ok("wss+unix:///s:chat");
        assert!(u.secure);
        assert_eq!(u.resource, "/chat");

        let u = ok("ws+unix:run/s.sock:/x");
        assert_eq!(u.unix_path.as_deref(), Some("run/s.sock"));
        assert_eq!(u.to_url_string(), "ws+unix:run/s.sock:/x");
    }

    #[test]
    fn rejects_bad_schemes() {
        assert_eq!(err(""), "URL is empty");
        assert!(err("ftp://h/").contains("\"ftp\""));
        assert!(err("example.com/chat").contains("no scheme"));
        assert!(err("/chat").contains("no scheme"));
        assert!(err("1ws://h").contains("no scheme"));
        assert!(err("ws:h/x").contains("no host"));
    }

    #[test]
    fn rejects_missing_host() {
        assert!(err("ws://").contains("no host"));
        assert!(err("ws:///path").contains("no host"));
        assert!(err("ws://:80/").contains("no host"));
        assert!(err("ws://user@/").contains("no host"));
        assert!(err("ws+unix://").contains("no socket path"));
        assert!(err("ws+unix:").contains("no socket path"));
        assert!(err("ws+unix://host/tmp/sock").contains("no host"));
    }

    #[test]
    fn rejects_bad_ports() {
        assert!(err("ws://h:0/").contains("out of range"));
        assert!(err("ws://h:65536/").contains("out of range"));
        assert!(err("ws://h:99999999999999999999/").contains("out of range"));
        assert!(err("ws://h:8o/").contains("invalid port"));
        assert!(err("ws://h:-1/").contains("invalid port"));
        assert!(err("ws://h:+80/").contains("invalid port"));
        assert!(err("ws://h:80:81/").contains("invalid port"));
        assert_eq!(ok("ws://h:65535/").port, 65535);
    }

    #[test]
    fn rejects_fragments() {
        for s in ["ws://h/#x", "ws://h#", "ws://h/p?q#f", "ws+unix:///s#x"] {
            assert_eq!(err(s), "URL fragments are not allowed in WebSocket URLs");
        }
    }

    #[test]
    fn rejects_bad_ip_literals() {
        assert!(err("ws://[::1/").contains("closing ']'"));
        assert!(err("ws://[::g]/").contains("invalid IPv6"));
        assert!(err("ws://[]/").contains("invalid IPv6"));
        assert!(err("ws://[fe80::1%25eth0]/").contains("invalid IPv6"));
        assert!(err("ws://[::1]x/").contains("after IPv6"));
        assert!(err("ws://::1/").contains("no host"));
        assert!(err("ws://256.1.1.1/").contains("invalid IPv4"));
        assert!(err("ws://1.2.3/").contains("invalid IPv4"));
    }

    #[test]
    fn rejects_bad_host_characters() {
        assert!(err("ws://ex%61mple.com/").contains("invalid character"));
        assert!(err("ws://b\u{fc}cher.de/").contains("punycode"));
        assert!(err("ws://a,b/").contains("invalid character"));
    }

    #[test]
    fn rejects_whitespace_and_controls() {
        for s in [
            " ws://h/",
            "ws://h/ ",
            "ws://h/a b",
            "ws://h/\t",
            "ws://h/\r\nX: y",
            "ws://h/\0",
            "ws://h/\u{7f}",
            "ws://h/\u{a0}",
        ] {
            assert!(err(s).contains("whitespace or a control"), "{s:?}");
        }
    }

    #[test]
    fn arbitrary_strings_never_panic() {
        use rand::RngExt as _;
        let mut rng = rand::rng();
        let pieces = [
            "ws", "wss", "+unix", ":", "//", "/", "[", "]", "::1", "@", "?", "#", "%", "80", "0", "h", ".", "é", " ",
            "\u{1}",
        ];
        for _ in 0..5000 {
            let s: String = (0..rng.random_range(0..12)).map(|_| pieces[rng.random_range(0..pieces.len())]).collect();
            if let Ok(u) = parse_ws_url(&s) {
                assert!(u.resource.starts_with('/'), "{s:?}");
                assert!(u.port != 0);
                // The normalized form parses back to the same URL (credentials aside).
                let again =
                    parse_ws_url(&u.to_url_string()).unwrap_or_else(|e| panic!("{s:?} -> {}: {e}", u.to_url_string()));
                assert_eq!(again, WsUrl { userinfo: None, ..u }, "{s:?}");
            }
        }
    }
}
