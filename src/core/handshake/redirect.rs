//! Following HTTP redirects during the client handshake (opt-in, like Node `ws`'s
//! `followRedirects` / `maxRedirects`): which statuses redirect, resolving `Location` against
//! the current URL (RFC 3986 §5.2), loop and hop-count limits, and which request headers and
//! credentials survive a hop. Pure functions, no I/O; the reactor re-dials the result.

use super::url::{parse_ws_url, WsUrl};

/// Default hop limit when following is on (the same as Node `ws`).
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

/// 301, 302, 303, 307 and 308 redirect a WebSocket handshake; 300 and 304-306 do not.
pub fn is_redirect_status(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Where one redirect leads and what the next request may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The next URL to dial (`http`/`https` Locations mapped to `ws`/`wss`).
    pub url: WsUrl,
    /// Authorization, Cookie and URL credentials must be dropped: the host or port changed,
    /// or the hop went from `wss` to plain `ws`.
    pub drop_credentials: bool,
    /// The host name changed: a TLS name set by the application for the old host (SNI and
    /// the name verified) must not be applied to the new one.
    pub other_host_name: bool,
}

/// Request headers the application set that must not follow a redirect to another host
/// (compared case-insensitively).
pub fn is_credential_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie")
}

/// Counts hops and remembers visited URLs across one connection attempt.
#[derive(Debug, Clone)]
pub struct RedirectFollower {
    max: u32,
    hops: u32,
    visited: Vec<String>,
    original_secure: bool,
}

impl RedirectFollower {
    /// Starts at `start` (the URL the application asked for), allowing `max` hops.
    pub fn new(start: &WsUrl, max: u32) -> Self {
        RedirectFollower { max, hops: 0, visited: vec![start.to_url_string()], original_secure: start.secure }
    }

    /// Hops followed so far.
    pub fn hops(&self) -> u32 {
        self.hops
    }

    /// Decides the next hop for a `status` answer with the given `Location` header to a
    /// request for `current`. Errors name the cause: not a redirect status, missing or bad
    /// Location, a loop, or more than `max` hops.
    pub fn next(&mut self, current: &WsUrl, status: u16, location: Option<&str>) -> Result<Redirect, String> {
        if !is_redirect_status(status) {
            return Err(format!("status {status} is not a redirect"));
        }
        let location = location.map(str::trim).filter(|l| !l.is_empty());
        let Some(location) = location else {
            return Err(format!("redirect ({status}) without a Location header"));
        };
        if self.hops >= self.max {
            return Err(format!("too many redirects (more than {}), last Location {location:?}", self.max));
        }
        let url = resolve_location(current, location)?;
        let key = url.to_url_string();
        if self.visited.contains(&key) {
            return Err(format!("redirect loop: {key} was already visited"));
        }
        self.visited.push(key);
        self.hops += 1;
        let same_host = url.unix_path == current.unix_path && url.host == current.host && url.port == current.port;
        let downgrade = self.original_secure && !url.secure;
        let mut url = url;
        let drop_credentials = !same_host || downgrade;
        if drop_credentials {
            url.userinfo = None;
        }
        let other_host_name = url.unix_path != current.unix_path || url.host != current.host;
        Ok(Redirect { url, drop_credentials, other_host_name })
    }
}

/// Resolves a `Location` value against the URL that answered it (RFC 3986 §5.2.2, strict).
/// Fragments are dropped (WebSocket URLs have none); `http`/`https` map to `ws`/`wss`.
pub fn resolve_location(base: &WsUrl, location: &str) -> Result<WsUrl, String> {
    let reference = location.split('#').next().unwrap_or("");
    if let Some(c) = reference.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("Location contains whitespace or a control character ({c:?})"));
    }
    if has_scheme(reference) {
        return parse_ws_url(reference).map_err(|e| format!("bad Location {location:?}: {e}"));
    }
    let scheme = if base.secure { "wss" } else { "ws" };
    if let Some(rest) = reference.strip_prefix("//") {
        if base.unix_path.is_some() {
            return Err(format!("Location {location:?} names a host, but the connection is to a Unix socket"));
        }
        return parse_ws_url(&format!("{scheme}://{rest}")).map_err(|e| format!("bad Location {location:?}: {e}"));
    }
    let (base_path, base_query) = split_query(&base.resource);
    let (ref_path, ref_query) = split_query(reference);
    let (path, query) = if ref_path.is_empty() {
        (base_path.to_owned(), ref_query.or(base_query))
    } else if ref_path.starts_with('/') {
        (remove_dot_segments(ref_path), ref_query)
    } else {
        let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
        (remove_dot_segments(&format!("{dir}{ref_path}")), ref_query)
    };
    let mut url = base.clone();
    url.resource = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    // Re-parse so the resource gets the same escaping as a URL given by the application.
    let text = match &base.unix_path {
        Some(_) => url.to_url_string(),
        None => {
            let auth = match &url.userinfo {
                Some(u) => format!("{u}@{}", url.host_header()),
                None => url.host_header(),
            };
            format!("{scheme}://{auth}{}", url.resource)
        }
    };
    parse_ws_url(&text).map_err(|e| format!("bad Location {location:?}: {e}"))
}

fn has_scheme(s: &str) -> bool {
    let Some(colon) = s.find(':') else { return false };
    let scheme = &s[..colon];
    // A colon after the first '/' or '?' belongs to the path or query, not a scheme.
    !scheme.is_empty()
        && scheme.as_bytes()[0].is_ascii_alphabetic()
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => {
                if i == last {
                    out.push("");
                }
            }
            ".." => {
                if out.len() > 1 {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    if joined.starts_with('/') {
        joined
    } else {
        format!("/{joined}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> WsUrl {
        parse_ws_url(s).unwrap()
    }

    fn resolve(base: &str, loc: &str) -> String {
        resolve_location(&url(base), loc).unwrap().to_url_string()
    }

    #[test]
    fn redirect_statuses() {
        for s in [301, 302, 303, 307, 308] {
            assert!(is_redirect_status(s), "{s}");
        }
        for s in [200, 300, 304, 305, 306, 400, 101] {
            assert!(!is_redirect_status(s), "{s}");
        }
    }

    #[test]
    fn absolute_locations_map_http_schemes() {
        assert_eq!(resolve("ws://a/x", "http://b:8080/y"), "ws://b:8080/y");
        assert_eq!(resolve("ws://a/x", "https://b/y?q=1"), "wss://b/y?q=1");
        assert_eq!(resolve("wss://a/x", "ws://a/x2"), "ws://a/x2");
        assert!(resolve_location(&url("ws://a/"), "ftp://b/").is_err());
    }

    #[test]
    fn relative_locations_rfc3986_examples() {
        // RFC 3986 §5.4.1 with base http://a/b/c/d;p?q (as ws).
        let b = "ws://a/b/c/d;p?q";
        assert_eq!(resolve(b, "g"), "ws://a/b/c/g");
        assert_eq!(resolve(b, "./g"), "ws://a/b/c/g");
        assert_eq!(resolve(b, "g/"), "ws://a/b/c/g/");
        assert_eq!(resolve(b, "/g"), "ws://a/g");
        assert_eq!(resolve(b, "//g"), "ws://g/");
        assert_eq!(resolve(b, "?y"), "ws://a/b/c/d;p?y");
        assert_eq!(resolve(b, "g?y"), "ws://a/b/c/g?y");
        assert_eq!(resolve(b, "#s"), "ws://a/b/c/d;p?q");
        assert_eq!(resolve(b, ""), "ws://a/b/c/d;p?q");
        assert_eq!(resolve(b, "."), "ws://a/b/c/");
        assert_eq!(resolve(b, ".."), "ws://a/b/");
        assert_eq!(resolve(b, "../g"), "ws://a/b/g");
        assert_eq!(resolve(b, "../.."), "ws://a/");
        assert_eq!(resolve(b, "../../../g"), "ws://a/g");
        assert_eq!(resolve(b, "/./g"), "ws://a/g");
        assert_eq!(resolve(b, "g;x=1/../y"), "ws://a/b/c/y");
    }

    #[test]
    fn relative_keeps_port_scheme_and_credentials() {
        let u = resolve_location(&url("wss://u:p@h:9443/a/b"), "c").unwrap();
        assert!(u.secure);
        assert_eq!(u.port, 9443);
        assert_eq!(u.userinfo.as_deref(), Some("u:p"));
        assert_eq!(u.resource, "/a/c");
    }

    #[test]
    fn unix_socket_relative_changes_resource_only() {
        let u = resolve_location(&url("ws+unix:///tmp/s:/a/b"), "/c?d").unwrap();
        assert_eq!(u.unix_path.as_deref(), Some("/tmp/s"));
        assert_eq!(u.resource, "/c?d");
        assert!(resolve_location(&url("ws+unix:///tmp/s:/a"), "//h/x").is_err());
    }

    #[test]
    fn follower_credentials_dropped_on_host_change_or_downgrade() {
        let start = url("wss://u:p@a/x");
        let mut f = RedirectFollower::new(&start, 10);
        let r = f.next(&start, 302, Some("/y")).unwrap();
        assert!(!r.drop_credentials);
        assert_eq!(r.url.userinfo.as_deref(), Some("u:p"));
        let r2 = f.next(&r.url, 307, Some("wss://a:444/z")).unwrap();
        assert!(r2.drop_credentials, "port change is another host");
        assert!(!r.other_host_name && !r2.other_host_name, "the same name on another port");
        let r3 = f.next(&r2.url, 302, Some("wss://b/z")).unwrap();
        assert!(r3.other_host_name && r3.drop_credentials);
        assert_eq!(r2.url.userinfo, None);
        let mut f = RedirectFollower::new(&start, 10);
        assert!(f.next(&start, 301, Some("ws://a/x")).unwrap().drop_credentials, "wss -> ws downgrade");
        assert!(is_credential_header("COOKIE") && is_credential_header("authorization"));
        assert!(!is_credential_header("X-Token"));
    }

    #[test]
    fn follower_loop_cap_and_bad_answers() {
        let a = url("ws://h/a");
        let mut f = RedirectFollower::new(&a, 10);
        let b = f.next(&a, 302, Some("/b")).unwrap().url;
        let e = f.next(&b, 302, Some("/a")).unwrap_err();
        assert!(e.contains("loop"), "{e}");

        let mut f = RedirectFollower::new(&a, 2);
        let u1 = f.next(&a, 301, Some("/1")).unwrap().url;
        let u2 = f.next(&u1, 301, Some("/2")).unwrap().url;
        let e = f.next(&u2, 301, Some("/3")).unwrap_err();
        assert!(e.contains("too many redirects (more than 2)"), "{e}");
        assert_eq!(f.hops(), 2);

        let mut f = RedirectFollower::new(&a, 0);
        assert!(f.next(&a, 302, Some("/b")).unwrap_err().contains("too many"));

        let mut f = RedirectFollower::new(&a, 5);
        assert!(f.next(&a, 302, None).unwrap_err().contains("without a Location"));
        assert!(f.next(&a, 302, Some("  ")).unwrap_err().contains("without a Location"));
        assert!(f.next(&a, 200, Some("/b")).unwrap_err().contains("not a redirect"));
        assert!(f.next(&a, 302, Some("gopher://x/")).unwrap_err().contains("bad Location"));
    }
}
