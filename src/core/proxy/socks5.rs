//! SOCKS5 client messages (RFC 1928) with user/password authentication (RFC 1929).

use std::net::IpAddr;

/// Where the tunnel should lead: a name the proxy resolves, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// A host name, resolved by the proxy.
    Name(&'a str),
    /// An address.
    Ip(IpAddr),
}

/// The greeting: offers "no authentication" and, with credentials, user/password.
pub fn greeting(with_credentials: bool) -> Vec<u8> {
    if with_credentials {
        vec![5, 2, 0x00, 0x02]
    } else {
        vec![5, 1, 0x00]
    }
}

/// The method the proxy chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// No authentication.
    NoAuth,
    /// RFC 1929 user name and password.
    UserPassword,
}

/// Reads the 2-byte method selection. `Ok(None)`: incomplete.
pub fn parse_method(buf: &[u8], offered_password: bool) -> Result<Option<Method>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] != 5 {
        return Err(format!("proxy: not a SOCKS5 proxy (version byte {})", buf[0]));
    }
    match buf[1] {
        0x00 => Ok(Some(Method::NoAuth)),
        0x02 if offered_password => Ok(Some(Method::UserPassword)),
        0xff if offered_password => {
            Err("proxy: SOCKS5 proxy accepts none of the offered authentication methods".into())
        }
        0xff | 0x02 => Err("proxy: SOCKS5 proxy requires authentication".into()),
        m => Err(format!("proxy: SOCKS5 proxy chose unsupported method {m:#04x}")),
    }
}

/// The RFC 1929 request. User name and password are at most 255 bytes each.
pub fn auth_request(user: &str, pass: &str) -> Result<Vec<u8>, String> {
    if user.len() > 255 || pass.len() > 255 {
        return Err("proxy: SOCKS5 user name and password are limited to 255 bytes".into());
    }
    let mut m = vec![1, user.len() as u8];
    m.extend_from_slice(user.as_bytes());
    m.push(pass.len() as u8);
    m.extend_from_slice(pass.as_bytes());
    Ok(m)
}

/// Reads the 2-byte RFC 1929 answer. `Ok(None)`: incomplete; `Ok(Some(()))`: accepted.
pub fn parse_auth_reply(buf: &[u8]) -> Result<Option<()>, String> {
    if buf.len() < 2 {
        return Ok(None);
    }
    if buf[0] != 1 {
        return Err(format!("proxy: malformed SOCKS5 authentication reply (version {})", buf[0]));
    }
    if buf[1] != 0 {
        return Err("proxy: SOCKS5 authentication failed (user name or password refused)".into());
    }
    Ok(Some(()))
}

/// The CONNECT request for `target:port`.
pub fn connect_request(target: &Target<'_>, port: u16) -> Result<Vec<u8>, String> {
    let mut m = vec![5, 1, 0];
    match target {
        Target::Ip(IpAddr::V4(a)) => {
            m.push(1);
            m.extend_from_slice(&a.octets());
        }
        Target::Ip(IpAddr::V6(a)) => {
            m.push(4);
            m.extend_from_slice(&a.octets());
        }
        Target::Name(n) => {
            if n.is_empty() || n.len() > 255 {
                return Err(format!("proxy: host name {n:?} cannot be sent to a SOCKS5 proxy"));
            }
            m.push(3);
            m.push(n.len() as u8);
            m.extend_from_slice(n.as_bytes());
        }
    }
    m.extend_from_slice(&port.to_be_bytes());
    Ok(m)
}

/// A sentence for a SOCKS5 reply code.
pub fn reply_message(code: u8) -> String {
    let what = match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => return format!("proxy: SOCKS5 connect failed (reply code {code})"),
    };
    format!("proxy: SOCKS5 connect failed: {what}")
}

/// Reads the CONNECT reply. `Ok(None)`: incomplete; `Ok(Some(n))`: tunnel open, the reply
/// was `n` bytes and whatever follows belongs to the tunnel.
pub fn parse_connect_reply(buf: &[u8]) -> Result<Option<usize>, String> {
    if buf.len() < 4 {
        // A failure code is known before the address arrives.
        if buf.len() >= 2 && buf[0] == 5 && buf[1] != 0 {
            return Err(reply_message(buf[1]));
        }
        if !buf.is_empty() && buf[0] != 5 {
            return Err(format!("proxy: malformed SOCKS5 reply (version {})", buf[0]));
        }
        return Ok(None);
    }
    if buf[0] != 5 {
        return Err(format!("proxy: malformed SOCKS5 reply (version {})", buf[0]));
    }
    if buf[1] != 0 {
        return Err(reply_message(buf[1]));
    }
    let addr_len = match buf[3] {
        1 => 4,
        4 => 16,
        3 => match buf.get(4) {
            Some(&n) => 1 + n as usize,
            None => return Ok(None),
        },
        t => return Err(format!("proxy: malformed SOCKS5 reply (address type {t})")),
    };
    let total = 4 + addr_len + 2;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn greeting_and_method() {
        assert_eq!(greeting(false), [5, 1, 0]);
        assert_eq!(greeting(true), [5, 2, 0, 2]);
        assert_eq!(parse_method(&[5], true), Ok(None));
        assert_eq!(parse_method(&[5, 0], false), Ok(Some(Method::NoAuth)));
        assert_eq!(parse_method(&[5, 2], true), Ok(Some(Method::UserPassword)));
        assert!(parse_method(&[5, 2], false).unwrap_err().contains("requires authentication"));
        assert!(parse_method(&[5, 0xff], true).unwrap_err().contains("none of"));
        assert!(parse_method(b"HT", true).unwrap_err().contains("not a SOCKS5"));
    }

    #[test]
    fn auth() {
        assert_eq!(auth_request("u", "pw").unwrap(), [1, 1, b'u', 2, b'p', b'w']);
        assert!(auth_request(&"x".repeat(256), "").is_err());
        assert_eq!(parse_auth_reply(&[1]), Ok(None));
        assert_eq!(parse_auth_reply(&[1, 0]), Ok(Some(())));
        assert!(parse_auth_reply(&[1, 1]).unwrap_err().contains("authentication failed"));
        assert!(parse_auth_reply(&[5, 0]).is_err());
    }

    #[test]
    fn connect_encoding() {
        assert_eq!(connect_request(&Target::Name("ab"), 443).unwrap(), [5, 1, 0, 3, 2, b'a', b'b', 1, 187]);
        assert_eq!(
            connect_request(&Target::Ip(Ipv4Addr::new(127, 0, 0, 1).into()), 80).unwrap(),
            [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]
        );
        let v6 = connect_request(&Target::Ip(Ipv6Addr::LOCALHOST.into()), 1).unwrap();
        assert_eq!((v6[3], v6.len()), (4, 22));
        assert!(connect_request(&Target::Name(&"a".repeat(256)), 1).is_err());
    }

    #[test]
    fn connect_reply() {
        let ok = [5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90, b'x'];
        for i in 0..10 {
            assert_eq!(parse_connect_reply(&ok[..i]), Ok(None), "{i}");
        }
        assert_eq!(parse_connect_reply(&ok), Ok(Some(10)));
        let name = [5, 0, 0, 3, 3, b'a', b'b', b'c', 0, 1];
        assert_eq!(parse_connect_reply(&name[..9]), Ok(None));
        assert_eq!(parse_connect_reply(&name), Ok(Some(10)));
        assert!(parse_connect_reply(&[5, 5]).unwrap_err().contains("connection refused"));
        assert!(parse_connect_reply(&[5, 4, 0, 1]).unwrap_err().contains("host unreachable"));
        assert!(parse_connect_reply(&[5, 0x33]).unwrap_err().contains("reply code 51"));
        assert!(parse_connect_reply(&[5, 0, 0, 9, 0, 0]).is_err());
        assert!(parse_connect_reply(b"HTTP/1.1 400").is_err());
    }
}
