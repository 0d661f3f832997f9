//! The Sec-WebSocket-Extensions offer and answer of permessage-deflate (RFC 7692 §5, §7.1).

use super::config::{clamp_bits, Agreed, DeflateConfig};
use super::EXTENSION_NAME;
use crate::core::handshake::headers::{parse_param_list, ParamItem};

/// The permessage-deflate parameters present in one offer or response.
#[derive(Debug, Default)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// `Some(None)`: present without a value.
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

/// RFC 7692 §7.1.2: a decimal integer 8..=15 without leading zeros.
fn parse_window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = v.parse().ok()?;
    (8..=15).contains(&n).then_some(n)
}

/// Reads the known parameters; unknown ones, duplicates and bad values are errors
/// (RFC 7692 §5 and §7.1).
fn read_params(ext: &ParamItem) -> Result<Params, String> {
    let mut p = Params::default();
    let mut seen = [false; 4];
    for param in &ext.params {
        let name = param.name.to_ascii_lowercase();
        let idx = match name.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err(format!("unknown parameter {}", param.name)),
        };
        if seen[idx] {
            return Err(format!("duplicate parameter {name}"));
        }
        seen[idx] = true;
        match idx {
            0 | 1 => {
                if param.value.is_some() {
                    return Err(format!("{name} takes no value"));
                }
                if idx == 0 {
                    p.server_no_context_takeover = true;
                } else {
                    p.client_no_context_takeover = true;
                }
            }
            _ => {
                let bits = match &param.value {
                    None => None,
                    Some(v) => Some(parse_window_bits(v).ok_or_else(|| format!("invalid value {v:?} for {name}"))?),
                };
                if idx == 2 {
                    p.server_max_window_bits = Some(bits);
                } else {
                    p.client_max_window_bits = Some(bits);
                }
            }
        }
    }
    Ok(p)
}

fn is_deflate(ext: &ParamItem) -> bool {
    ext.name.eq_ignore_ascii_case(EXTENSION_NAME)
}

/// The client's Sec-WebSocket-Extensions offer for `cfg` (e.g.
/// `"permessage-deflate; client_max_window_bits"`).
///
/// Always includes `client_max_window_bits` (without value when 15) so servers may
/// limit our window.
pub fn client_offer(cfg: &DeflateConfig) -> String {
    let mut s = String::from(EXTENSION_NAME);
    if cfg.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if cfg.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    let server_bits = clamp_bits(cfg.server_max_window_bits);
    if server_bits < 15 {
        s.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    let client_bits = clamp_bits(cfg.client_max_window_bits);
    if client_bits < 15 {
        s.push_str(&format!("; client_max_window_bits={client_bits}"));
    } else {
        s.push_str("; client_max_window_bits");
    }
    s
}

/// Server side: chooses what to answer to the client's offers.
///
/// `offers` are the Sec-WebSocket-Extensions header values of the request (each may
/// hold several comma-separated extensions, each with `;`-separated parameters; values
/// may be quoted strings). Picks the first acceptable permessage-deflate offer: an offer
/// with an unknown parameter, a duplicate parameter or an invalid value is declined and
/// the next one considered (RFC 7692 §5). Other extensions are ignored.
///
/// Returns `Ok(None)` when nothing is acceptable (respond without the extension),
/// `Ok(Some((agreed, response_header_value)))` otherwise, and `Err` when a header value
/// is not syntactically valid (the request is malformed).
///
/// The server's `cfg` is honoured: `server_no_context_takeover` and
/// `client_no_context_takeover` are added to the response when set; the server's window
/// is the smaller of the client's request and `cfg.server_max_window_bits` (announced
/// whenever requested or below 15); the client's window is limited to
/// `cfg.client_max_window_bits` only when the client offered `client_max_window_bits`,
/// and an offer without it is declined if that limit is below 15.
pub fn server_negotiate(offers: &[String], cfg: &DeflateConfig) -> Result<Option<(Agreed, String)>, String> {
    // Parse everything first: a malformed header is an error even after a good offer.
    let mut parsed = Vec::new();
    for h in offers {
        parsed.extend(parse_param_list(h)?);
    }
    Ok(parsed.iter().filter(|e| is_deflate(e)).find_map(|e| accept_offer(e, cfg)))
}

/// Accepts one offer, or declines it (`None`).
fn accept_offer(ext: &ParamItem, cfg: &DeflateConfig) -> Option<(Agreed, String)> {
    let p = read_params(ext).ok()?;
    // In an offer server_max_window_bits needs a value; client_max_window_bits may omit it.
    let offered_server_bits = match p.server_max_window_bits {
        Some(None) => return None,
        Some(Some(b)) => Some(b),
        None => None,
    };
    let own_client_limit = clamp_bits(cfg.client_max_window_bits);
    if own_client_limit < 15 && p.client_max_window_bits.is_none() {
        // The client cannot be told to use a smaller window, so our limit can't hold.
        return None;
    }
    let server_bits = offered_server_bits.unwrap_or(15).min(clamp_bits(cfg.server_max_window_bits));
    let client_bits = match p.client_max_window_bits {
        None => 15,
        Some(hint) => hint.unwrap_or(15).min(own_client_limit),
    };
    let agreed = Agreed {
        server_no_context_takeover: p.server_no_context_takeover || cfg.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover || cfg.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    };
    let mut resp = String::from(EXTENSION_NAME);
    if agreed.server_no_context_takeover {
        resp.push_str("; server_no_context_takeover");
    }
    if agreed.client_no_context_takeover {
        resp.push_str("; client_no_context_takeover");
    }
    // Accepting a requested server_max_window_bits means echoing it (RFC 7692 §7.1.2.1).
    if offered_server_bits.is_some() || server_bits < 15 {
        resp.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    if p.client_max_window_bits.is_some() && client_bits < 15 {
        resp.push_str(&format!("; client_max_window_bits={client_bits}"));
    }
    Some((agreed, resp))
}

/// Client side: validates the server's response header value against what we offered
/// with [`client_offer`]`(offered)`.
///
/// Fails (RFC 7692 §7.1) when the response has no permessage-deflate or more than one,
/// or when its permessage-deflate has an unknown parameter, a duplicate, an invalid
/// value, a `server_max_window_bits` larger than we asked for (an absent one counts as
/// 15), or a `client_max_window_bits` larger than the value we offered.
/// `client_max_window_bits` itself is always allowed because our offer always carries
/// it. Other extensions in the response are ignored; checking that they were offered is
/// the handshake's job. Call this only when the response has the header at all: without
/// it the extension is simply not in use.
///
/// A response that omits a `server_no_context_takeover` we asked for is accepted with
/// context takeover: our decompressor handles both, so nothing breaks.
pub fn client_accept(response: &str, offered: &DeflateConfig) -> Result<Agreed, String> {
    let exts = parse_param_list(response)?;
    let mut found = exts.iter().filter(|e| is_deflate(e));
    let ext = found.next().ok_or_else(|| "the response has no permessage-deflate".to_string())?;
    if found.next().is_some() {
        return Err("the response has more than one permessage-deflate".into());
    }
    let p = read_params(ext)?;
    let server_bits = match p.server_max_window_bits {
        Some(None) => return Err("server_max_window_bits needs a value in a response".into()),
        Some(Some(b)) => b,
        None => 15,
    };
    let asked_server = clamp_bits(offered.server_max_window_bits);
    if server_bits > asked_server {
        return Err(format!("server_max_window_bits={server_bits} exceeds the requested {asked_server}"));
    }
    let offered_client = clamp_bits(offered.client_max_window_bits);
    let client_bits = match p.client_max_window_bits {
        Some(None) => return Err("client_max_window_bits needs a value in a response".into()),
        Some(Some(b)) if b > offered_client => {
            return Err(format!("client_max_window_bits={b} exceeds the offered {offered_client}"))
        }
        Some(Some(b)) => b,
        None => offered_client,
    };
    Ok(Agreed {
        server_no_context_takeover: p.server_no_context_takeover,
        // Offering it was a promise, whatever the server answers.
        client_no_context_takeover: p.client_no_context_takeover || offered.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

#[cfg(test)]
mod tests {
    use super::super::agreed;
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn neg(offers: &[&str], cfg: &DeflateConfig) -> Option<(Agreed, String)> {
        server_negotiate(&s(offers), cfg).expect("well-formed header")
    }

    #[test]
    fn parser_rejects_malformed() {
        for bad in [
            "permessage-deflate;",
            "permessage-deflate; ; x",
            ";x",
            "permessage-deflate; a=",
            "permessage-deflate; a=\"open",
            "permessage-deflate; a=\"bad\\",
            "permessage-deflate; a=b c",
            "permessage-deflate x",
            "permessage deflate",
            "permessage-deflate; a=\"ctl\u{1}\"",
            "permessage-deflate; a=(x)",
            "perméssage-deflate",
        ] {
            assert!(parse_param_list(bad).is_err(), "{bad:?}");
            assert!(server_negotiate(&s(&[bad]), &DeflateConfig::default()).is_err(), "{bad:?}");
            assert!(client_accept(bad, &DeflateConfig::default()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn window_bits_values() {
        for (v, want) in [
            ("8", Some(8)),
            ("9", Some(9)),
            ("15", Some(15)),
            ("7", None),
            ("16", None),
            ("0", None),
            ("08", None),
            ("010", None),
            ("abc", None),
            ("", None),
            ("+9", None),
            ("1 0", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_window_bits(v), want, "{v:?}");
        }
    }

    // ----- client offer -----

    #[test]
    fn client_offer_strings() {
        let d = DeflateConfig::default();
        assert_eq!(client_offer(&d), "permessage-deflate; client_max_window_bits");
        let c = DeflateConfig {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 12,
            ..d
        };
        assert_eq!(
            client_offer(&c),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits=12"
        );
        // Our own offer must be acceptable to a default server.
        assert!(neg(&[&client_offer(&c)], &d).is_some());
    }

    // ----- server negotiation -----

    #[test]
    fn server_plain_offer() {
        let d = DeflateConfig::default();
        let (a, r) = neg(&["permessage-deflate"], &d).unwrap();
        assert_eq!(a, Agreed::default());
        assert_eq!(r, "permessage-deflate");
    }

    #[test]
    fn server_no_offer_or_other_extensions() {
        let d = DeflateConfig::default();
        assert_eq!(neg(&[], &d), None);
        assert_eq!(neg(&[""], &d), None);
        assert_eq!(neg(&["x-webkit-deflate-frame", "foo; bar=1"], &d), None);
        let (_, r) = neg(&["foo, permessage-deflate, bar"], &d).unwrap();
        assert_eq!(r, "permessage-deflate");
    }

    #[test]
    fn server_extension_name_case_insensitive() {
        let (a, _) = neg(&["PerMessage-Deflate; Server_Max_Window_Bits=10"], &DeflateConfig::default()).unwrap();
        assert_eq!(a.server_max_window_bits, 10);
    }

    #[test]
    fn server_rfc_7692_section_5_examples() {
        let d = DeflateConfig::default();
        // §5: "permessage-deflate; client_max_window_bits; server_max_window_bits=10,
        //      permessage-deflate; client_max_window_bits" — a server that takes the
        // first one limits its own window to 10.
        let (a, r) = neg(
            &["permessage-deflate; client_max_window_bits; server_max_window_bits=10, \
               permessage-deflate; client_max_window_bits"],
            &d,
        )
        .unwrap();
        assert_eq!(a, agreed(false, false, 10, 15));
        assert_eq!(r, "permessage-deflate; server_max_window_bits=10");
        // The same offer split over two header lines.
        let (a2, _) = neg(
            &[
                "permessage-deflate; client_max_window_bits; server_max_window_bits=10",
                "permessage-deflate; client_max_window_bits",
            ],
            &d,
        )
        .unwrap();
        assert_eq!(a2, a);
    }

    #[test]
    fn server_declines_bad_offer_and_takes_next() {
        let d = DeflateConfig::default();
        for first in [
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits=\"7\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=\"\"",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"\"",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=9",
            "permessage-deflate; unknown_param",
            "permessage-deflate; x=1; server_max_window_bits=10",
        ] {
            assert_eq!(neg(&[first], &d), None, "{first}");
            let both = format!("{first}, permessage-deflate; client_no_context_takeover");
            let (a, r) = neg(&[&both], &d).unwrap_or_else(|| panic!("{both}"));
            assert_eq!(a, agreed(false, true, 15, 15), "{both}");
            assert_eq!(r, "permessage-deflate; client_no_context_takeover");
        }
    }

    #[test]
    fn server_quoted_values() {
        let d = DeflateConfig::default();
        let (a, r) = neg(
            &["permessage-deflate; server_max_window_bits=\"10\"; client_max_window_bits=\"1\\2\""],
            &DeflateConfig { client_max_window_bits: 13, ..d },
        )
        .unwrap();
        assert_eq!(a, agreed(false, false, 10, 12));
        assert_eq!(r, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12");
    }

    #[test]
    fn server_window_bits_combinations() {
        let d = DeflateConfig::default();
        // Client asks server ≤ 10; server config 12 → 10; server config 9 → 9.
        let off = "permessage-deflate; server_max_window_bits=10";
        assert_eq!(
            neg(&[off], &DeflateConfig { server_max_window_bits: 12, ..d }).unwrap().0.server_max_window_bits,
            10
        );
        let (a, r) = neg(&[off], &DeflateConfig { server_max_window_bits: 9, ..d }).unwrap();
        assert_eq!((a.server_max_window_bits, r.as_str()), (9, "permessage-deflate; server_max_window_bits=9"));
        // Requested 15 is echoed (acceptance means including it).
        let (a, r) = neg(&["permessage-deflate; server_max_window_bits=15"], &d).unwrap();
        assert_eq!((a.server_max_window_bits, r.as_str()), (15, "permessage-deflate; server_max_window_bits=15"));
        // Not requested, but the server limits itself: announced anyway.
        let (a, r) = neg(&["permessage-deflate"], &DeflateConfig { server_max_window_bits: 11, ..d }).unwrap();
        assert_eq!((a.server_max_window_bits, r.as_str()), (11, "permessage-deflate; server_max_window_bits=11"));
        // client_max_window_bits without value: the server may set its own limit...
        let off = "permessage-deflate; client_max_window_bits";
        let (a, r) = neg(&[off], &DeflateConfig { client_max_window_bits: 10, ..d }).unwrap();
        assert_eq!((a.client_max_window_bits, r.as_str()), (10, "permessage-deflate; client_max_window_bits=10"));
        // ...or leave it out when it has none.
        let (a, r) = neg(&[off], &d).unwrap();
        assert_eq!((a.client_max_window_bits, r.as_str()), (15, "permessage-deflate"));
        // A hint value: the client will use at most that; the server confirms it.
        let (a, r) = neg(&["permessage-deflate; client_max_window_bits=11"], &d).unwrap();
        assert_eq!((a.client_max_window_bits, r.as_str()), (11, "permessage-deflate; client_max_window_bits=11"));
        let (a, _) =
            neg(&["permessage-deflate; client_max_window_bits=11"], &DeflateConfig { client_max_window_bits: 9, ..d })
                .unwrap();
        assert_eq!(a.client_max_window_bits, 9);
        // client_max_window_bits not offered: never sent, and a server that needs a
        // limit declines that offer but takes a later one that allows it.
        let limited = DeflateConfig { client_max_window_bits: 10, ..d };
        assert_eq!(neg(&["permessage-deflate"], &limited), None);
        let (a, r) = neg(&["permessage-deflate, permessage-deflate; client_max_window_bits"], &limited).unwrap();
        assert_eq!((a.client_max_window_bits, r.as_str()), (10, "permessage-deflate; client_max_window_bits=10"));
        // Window 8 both ways is acceptable.
        let (a, r) = neg(&["permessage-deflate; server_max_window_bits=8; client_max_window_bits=8"], &d).unwrap();
        assert_eq!(a, agreed(false, false, 8, 8));
        assert_eq!(r, "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8");
    }

    #[test]
    fn server_no_context_takeover_combinations() {
        let d = DeflateConfig::default();
        for offer_s in [false, true] {
            for offer_c in [false, true] {
                for cfg_s in [false, true] {
                    for cfg_c in [false, true] {
                        let mut off = String::from("permessage-deflate");
                        if offer_s {
                            off.push_str("; server_no_context_takeover");
                        }
                        if offer_c {
                            off.push_str("; client_no_context_takeover");
                        }
                        let cfg =
                            DeflateConfig { server_no_context_takeover: cfg_s, client_no_context_takeover: cfg_c, ..d };
                        let (a, r) = neg(&[&off], &cfg).unwrap();
                        assert_eq!(a.server_no_context_takeover, offer_s || cfg_s);
                        assert_eq!(a.client_no_context_takeover, offer_c || cfg_c);
                        assert_eq!(r.contains("server_no_context_takeover"), offer_s || cfg_s);
                        assert_eq!(r.contains("client_no_context_takeover"), offer_c || cfg_c);
                        // The client reads the same agreement from the response.
                        let client_cfg = DeflateConfig {
                            server_no_context_takeover: offer_s,
                            client_no_context_takeover: offer_c,
                            ..d
                        };
                        assert_eq!(client_accept(&r, &client_cfg), Ok(a));
                    }
                }
            }
        }
    }

    // ----- client acceptance -----

    #[test]
    fn client_accepts_valid_responses() {
        let d = DeflateConfig::default();
        assert_eq!(client_accept("permessage-deflate", &d), Ok(Agreed::default()));
        assert_eq!(
            client_accept("permessage-deflate; server_no_context_takeover", &d),
            Ok(agreed(true, false, 15, 15))
        );
        assert_eq!(
            client_accept("permessage-deflate; client_no_context_takeover", &d),
            Ok(agreed(false, true, 15, 15))
        );
        // The server may limit its own window without being asked.
        assert_eq!(
            client_accept("permessage-deflate; server_max_window_bits=12", &d),
            Ok(agreed(false, false, 12, 15))
        );
        // The server limits our window (we always offer client_max_window_bits).
        assert_eq!(client_accept("permessage-deflate; client_max_window_bits=9", &d), Ok(agreed(false, false, 15, 9)));
        assert_eq!(
            client_accept("permessage-deflate; client_max_window_bits=\"8\"", &d),
            Ok(agreed(false, false, 15, 8))
        );
        // Other extensions are the handshake's business.
        assert_eq!(client_accept("foo, permessage-deflate, bar; x=1", &d), Ok(Agreed::default()));
        // Smaller than asked is fine; equal too.
        let asked = DeflateConfig { server_max_window_bits: 10, client_max_window_bits: 11, ..d };
        assert_eq!(
            client_accept("permessage-deflate; server_max_window_bits=9", &asked),
            Ok(agreed(false, false, 9, 11))
        );
        assert_eq!(
            client_accept("permessage-deflate; server_max_window_bits=10; client_max_window_bits=11", &asked),
            Ok(agreed(false, false, 10, 11))
        );
        // Our promise of client_no_context_takeover holds without an echo.
        let promised = DeflateConfig { client_no_context_takeover: true, ..d };
        assert_eq!(client_accept("permessage-deflate", &promised), Ok(agreed(false, true, 15, 15)));
        // A requested server_no_context_takeover that is not granted: context kept.
        let req = DeflateConfig { server_no_context_takeover: true, ..d };
        assert_eq!(client_accept("permessage-deflate", &req), Ok(Agreed::default()));
    }

    #[test]
    fn client_rejects_invalid_responses() {
        let d = DeflateConfig::default();
        let asked10 = DeflateConfig { server_max_window_bits: 10, ..d };
        let hint11 = DeflateConfig { client_max_window_bits: 11, ..d };
        for (resp, cfg, why) in [
            ("", &d, "no permessage-deflate"),
            ("foo", &d, "no permessage-deflate"),
            ("permessage-deflate, permessage-deflate", &d, "more than one"),
            ("permessage-deflate; unknown", &d, "unknown"),
            ("permessage-deflate; x=\"1\"", &d, "unknown"),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", &d, "duplicate"),
            ("permessage-deflate; client_max_window_bits=9; client_max_window_bits=9", &d, "duplicate"),
            ("permessage-deflate; server_max_window_bits=7", &d, "invalid value"),
            ("permessage-deflate; server_max_window_bits=16", &d, "invalid value"),
            ("permessage-deflate; server_max_window_bits=abc", &d, "invalid value"),
            ("permessage-deflate; client_max_window_bits=7", &d, "invalid value"),
            ("permessage-deflate; server_max_window_bits", &d, "needs a value"),
            ("permessage-deflate; client_max_window_bits", &d, "needs a value"),
            ("permessage-deflate; client_no_context_takeover=1", &d, "takes no value"),
            ("permessage-deflate; server_max_window_bits=11", &asked10, "exceeds"),
            ("permessage-deflate", &asked10, "exceeds"),
            ("permessage-deflate; client_max_window_bits=12", &hint11, "exceeds"),
        ] {
            let e = client_accept(resp, cfg).expect_err(resp);
            assert!(e.contains(why), "{resp:?}: {e}");
        }
    }

    #[test]
    fn negotiation_end_to_end_matrix() {
        let bits = [8u8, 9, 12, 15];
        for cs in bits {
            for cc in bits {
                for ss in bits {
                    for sc in bits {
                        for flags in 0..16u8 {
                            let client = DeflateConfig {
                                server_no_context_takeover: flags & 1 != 0,
                                client_no_context_takeover: flags & 2 != 0,
                                server_max_window_bits: cs,
                                client_max_window_bits: cc,
                                ..DeflateConfig::default()
                            };
                            let server = DeflateConfig {
                                server_no_context_takeover: flags & 4 != 0,
                                client_no_context_takeover: flags & 8 != 0,
                                server_max_window_bits: ss,
                                client_max_window_bits: sc,
                                ..DeflateConfig::default()
                            };
                            let (sa, resp) = neg(&[&client_offer(&client)], &server).unwrap();
                            let ca = client_accept(&resp, &client).unwrap();
                            assert_eq!(ca, sa, "{client:?} {server:?}");
                            assert_eq!(sa.server_max_window_bits, cs.min(ss));
                            assert_eq!(sa.client_max_window_bits, cc.min(sc));
                        }
                    }
                }
            }
        }
    }
}
