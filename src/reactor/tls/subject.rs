//! The subject of an X.509 certificate as an RFC 4514 string, read from the DER directly.

/// One DER element: (tag, content, rest).
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn oid_name(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x09] => "STREET",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x55, 0x04, 0x05] => "serialNumber",
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID",
        _ => return None,
    })
}

fn oid_dotted(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut value: u64 = 0;
    for (i, &b) in oid.iter().enumerate() {
        value = (value << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let first = (value / 40).min(2);
                parts.push(first);
                parts.push(value - first * 40);
            } else {
                parts.push(value);
            }
            value = 0;
        }
    }
    parts.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(".")
}

fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, ch) in v.chars().enumerate() {
        let special = matches!(ch, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (ch == '#' || ch == ' '))
            || (i + 1 == v.chars().count() && ch == ' ');
        if special {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

fn attribute_text(value_tag: u8, value: &[u8]) -> String {
    match value_tag {
        // UTF8String, PrintableString, IA5String, TeletexString (treated as Latin-1).
        0x0c | 0x13 | 0x16 => String::from_utf8_lossy(value).into_owned(),
        0x14 => value.iter().map(|&b| b as char).collect(),
        // BMPString: UTF-16BE.
        0x1e => {
            let units: Vec<u16> =
                value.chunks(2).filter(|c| c.len() == 2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
            String::from_utf16_lossy(&units)
        }
        _ => {
            let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
            format!("#{hex}")
        }
    }
}

/// The subject of a DER X.509 certificate as an RFC 4514 string ("CN=client,O=Example").
pub fn subject_of(cert: &[u8]) -> Option<String> {
    let (0x30, cert, _) = der_next(cert)? else { return None };
    let (0x30, tbs, _) = der_next(cert)? else { return None };
    let mut rest = tbs;
    let (tag, _, after) = der_next(rest)?;
    if tag == 0xa0 {
        rest = after; // explicit version
    }
    let (_serial, _, rest) = der_next(rest)?;
    let (_sig_alg, _, rest) = der_next(rest)?;
    let (_issuer, _, rest) = der_next(rest)?;
    let (_validity, _, rest) = der_next(rest)?;
    let (0x30, mut name, _) = der_next(rest)? else { return None };
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (0x31, mut set, next) = der_next(name)? else { return None };
        name = next;
        let mut attrs = Vec::new();
        while !set.is_empty() {
            let (0x30, atv, next) = der_next(set)? else { return None };
            set = next;
            let (0x06, oid, value) = der_next(atv)? else { return None };
            let (value_tag, value, _) = der_next(value)?;
            let key = oid_name(oid).map_or_else(|| oid_dotted(oid), str::to_string);
            attrs.push(format!("{key}={}", escape_value(&attribute_text(value_tag, value))));
        }
        rdns.push(attrs.join("+"));
    }
    // RFC 4514: the last RDN of the sequence comes first.
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_in_dotted_form() {
        assert_eq!(oid_dotted(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(oid_dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]), "1.2.840.113549.1.9.1");
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(escape_value("a,b"), "a\\,b");
        assert_eq!(escape_value(" x "), "\\ x\\ ");
        assert_eq!(escape_value("#1"), "\\#1");
    }

    #[test]
    fn a_subject_in_rfc_4514_order() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "DE");
        dn.push(rcgen::DnType::OrganizationName, "Example, Inc.");
        dn.push(rcgen::DnType::CommonName, "client");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(subject_of(cert.der()).unwrap(), "CN=client,O=Example\\, Inc.,C=DE");
    }
}
