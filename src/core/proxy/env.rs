//! Choosing a proxy from the environment as curl does: `http_proxy` (lowercase only) for
//! `ws://`, `https_proxy`/`HTTPS_PROXY` for `wss://`, then `all_proxy`/`ALL_PROXY`;
//! `no_proxy`/`NO_PROXY` lists hosts that go direct.

use std::net::IpAddr;

/// The proxy URL for a connection to `host`, or `None` for a direct one. `lookup` reads a
/// variable (`std::env::var` in the library, a table in tests); empty values count as unset.
pub fn proxy_from_env(secure: bool, host: &str, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
    let get = |names: &[&str]| names.iter().find_map(|n| lookup(n).filter(|v| !v.trim().is_empty()));
    let no_proxy = get(&["no_proxy", "NO_PROXY"]);
    if let Some(list) = no_proxy {
        if no_proxy_matches(&list, host) {
            return None;
        }
    }
    let scheme_var = if secure {
        get(&["https_proxy", "HTTPS_PROXY"])
    } else {
        // Upper-case HTTP_PROXY is ignored: CGI sets it from a request's `Proxy:` header.
        get(&["http_proxy"])
    };
    scheme_var.or_else(|| get(&["all_proxy", "ALL_PROXY"]))
}

/// curl's `no_proxy` rules: a comma (or space) separated list; `*` alone matches every host;
/// a name matches itself and its subdomains (a leading dot changes nothing); an IP address
/// matches itself, and `addr/bits` matches a network.
pub fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    for entry in list.split([',', ' ', '\t']).map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        if entry == "*" {
            return true;
        }
        let entry = entry.trim_start_matches('[');
        let entry = entry.trim_end_matches(']');
        if let Some(ip) = host_ip {
            if ip_matches(entry, ip) {
                return true;
            }
            continue;
        }
        let name = entry.strip_prefix('.').unwrap_or(entry);
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        if host == name
            || (host.len() > name.len()
                && host.ends_with(&name)
                && host.as_bytes()[host.len() - name.len() - 1] == b'.')
        {
            return true;
        }
    }
    false
}

fn ip_matches(entry: &str, ip: IpAddr) -> bool {
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => match b.parse::<u32>() {
            Ok(b) => (a, Some(b)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let Ok(net) = addr.parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(h)) => prefix_eq(&n.octets(), &h.octets(), bits.unwrap_or(32)),
        (IpAddr::V6(n), IpAddr::V6(h)) => prefix_eq(&n.octets(), &h.octets(), bits.unwrap_or(128)),
        _ => false,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u32) -> bool {
    if bits as usize > a.len() * 8 {
        return false;
    }
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[full] & mask == b[full] & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    }

    #[test]
    fn variable_choice() {
        let vars = [("http_proxy", "http://h:1"), ("HTTPS_PROXY", "http://s:2"), ("ALL_PROXY", "socks5h://a:3")];
        assert_eq!(proxy_from_env(false, "x", env(&vars)).as_deref(), Some("http://h:1"));
        assert_eq!(proxy_from_env(true, "x", env(&vars)).as_deref(), Some("http://s:2"));
        let upper_http = [("HTTP_PROXY", "http://h:1"), ("all_proxy", "socks5://a:3")];
        assert_eq!(proxy_from_env(false, "x", env(&upper_http)).as_deref(), Some("socks5://a:3"));
        assert_eq!(proxy_from_env(false, "x", env(&[("HTTP_PROXY", "h")])), None);
        let both = [("https_proxy", "lower"), ("HTTPS_PROXY", "upper")];
        assert_eq!(proxy_from_env(true, "x", env(&both)).as_deref(), Some("lower"));
        assert_eq!(proxy_from_env(true, "x", env(&[("https_proxy", " ")])), None);
    }

    #[test]
    fn no_proxy_bypasses() {
        let vars = [("all_proxy", "http://p:1"), ("NO_PROXY", "example.com, .local,10.0.0.0/8")];
        assert_eq!(proxy_from_env(true, "example.com", env(&vars)), None);
        assert_eq!(proxy_from_env(true, "a.example.com", env(&vars)), None);
        assert_eq!(proxy_from_env(true, "printer.local", env(&vars)), None);
        assert_eq!(proxy_from_env(true, "10.2.3.4", env(&vars)), None);
        assert!(proxy_from_env(true, "badexample.com", env(&vars)).is_some());
        assert!(proxy_from_env(true, "11.0.0.1", env(&vars)).is_some());
    }

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches("*", "anything"));
        assert!(no_proxy_matches("Example.COM", "www.example.com."));
        assert!(no_proxy_matches(".example.com", "example.com"));
        assert!(!no_proxy_matches("ample.com", "example.com"));
        assert!(no_proxy_matches("127.0.0.1", "127.0.0.1"));
        assert!(!no_proxy_matches("127.0.0.1", "127.0.0.2"));
        assert!(no_proxy_matches("::1", "[::1]"));
        assert!(no_proxy_matches("fd00::/8", "fd12::1"));
        assert!(!no_proxy_matches("10.0.0.0/33", "10.0.0.1"));
        assert!(!no_proxy_matches("localhost", "127.0.0.1"));
        assert!(!no_proxy_matches("", "x"));
        assert!(!no_proxy_matches(" , ,", "x"));
    }
}
