//! Proxy URLs: `http://[user:pass@]host[:port]`, `socks5://`, `socks5h://`.

use crate::core::handshake::headers::percent_decode;

/// The proxy protocol spoken to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// HTTP `CONNECT` tunnel.
    HttpConnect,
    /// SOCKS5; `remote_dns` true for `socks5h` (the proxy resolves the target name).
    Socks5 {
        /// The proxy resolves the target's name.
        remote_dns: bool,
    },
}

/// A parsed proxy URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// The protocol.
    pub kind: ProxyKind,
    /// Host name or IP literal, without brackets.
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// Decoded user name and password, when the URL has userinfo.
    pub credentials: Option<(String, String)>,
}

/// Parses a proxy URL the way curl reads one: a missing scheme means `http://`, a missing port
/// means 1080 for SOCKS and 80 for HTTP; a path of `/` is allowed.
pub fn parse_proxy_url(s: &str) -> Result<ProxyUrl, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty proxy URL".into());
    }
    let (scheme, rest) = match s.find("://") {
        Some(i) => (s[..i].to_ascii_lowercase(), &s[i + 3..]),
        None => ("http".to_string(), s),
    };
    let (kind, default_port) = match scheme.as_str() {
        "http" => (ProxyKind::HttpConnect, 80),
        "socks5h" => (ProxyKind::Socks5 { remote_dns: true }, 1080),
        "socks5" => (ProxyKind::Socks5 { remote_dns: false }, 1080),
        other => return Err(format!("proxy URL {s:?}: unsupported scheme {other:?} (http, socks5, socks5h)")),
    };
    let authority = match rest.find(['/', '?', '#']) {
        Some(i) => {
            let tail = &rest[i..];
            if tail != "/" {
                return Err(format!("proxy URL {s:?}: a proxy URL has no path"));
            }
            &rest[..i]
        }
        None => rest,
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let credentials = userinfo.map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        (percent_decode(user, false).into_owned(), percent_decode(pass, false).into_owned())
    });
    let (host, port) = split_host_port(hostport).ok_or_else(|| format!("proxy URL {s:?}: bad host or port"))?;
    let port = match port {
        Some(p) => p,
        None => default_port,
    };
    if host.is_empty() {
        return Err(format!("proxy URL {s:?}: no host"));
    }
    Ok(ProxyUrl { kind, host, port, credentials })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`. `None` for a malformed port or bracket.
pub(crate) fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after {
            "" => None,
            p => Some(parse_port(p.strip_prefix(':')?)?),
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), Some(parse_port(p)?))),
        Some(_) => None,
        None => Some((s.to_string(), None)),
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&n| n != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_with_credentials() {
        let p = parse_proxy_url("http://al%40x:p%3Ass@127.0.0.1:3128/").unwrap();
        assert_eq!(p.kind, ProxyKind::HttpConnect);
        assert_eq!(p.host, "127.0.0.1");
        assert_eq!(p.port, 3128);
        assert_eq!(p.credentials, Some(("al@x".into(), "p:ss".into())));
    }

    #[test]
    fn defaults_and_schemes() {
        let p = parse_proxy_url("proxy.example").unwrap();
        assert_eq!((p.kind, p.port), (ProxyKind::HttpConnect, 80));
        let p = parse_proxy_url("SOCKS5H://[::1]").unwrap();
        assert_eq!(p.kind, ProxyKind::Socks5 { remote_dns: true });
        assert_eq!((p.host.as_str(), p.port), ("::1", 1080));
        let p = parse_proxy_url("socks5://u@h:9").unwrap();
        assert_eq!(p.kind, ProxyKind::Socks5 { remote_dns: false });
        assert_eq!(p.credentials, Some(("u".into(), "".into())));
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "",
            "ftp://h:1",
            "http://h:0",
            "http://h:99999",
            "http://h:x",
            "http://:8080",
            "http://h/path",
            "http://[::1",
            "socks4://h",
        ] {
            assert!(parse_proxy_url(bad).is_err(), "{bad}");
        }
    }
}
