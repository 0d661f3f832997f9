//! A listener's certificates: a default and any number chosen by the client's server name
//! (SNI; exact names and one-label wildcards), replaced as a whole while the listener runs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions};
use rustls::sign::CertifiedKey;

use super::material::check_pair;
use super::provider;

/// A certificate chain (leaf first) and its private key.
pub type CertPair = (Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>);

/// Sessions a listener remembers for resumption (rustls' default size).
const SESSION_CACHE_SIZE: usize = 256;

/// The normalised form of a server name pattern: "example.com" or "*.example.com",
/// lowercased, without a trailing dot; an error sentence for anything else (IP addresses
/// included: clients never send them as SNI).
pub fn sni_pattern(name: &str) -> Result<String, String> {
    let bad = || format!("TLS: \"{name}\" is not a server name (a DNS name or *.name expected)");
    let lower = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let rest = lower.strip_prefix("*.").unwrap_or(&lower);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if rest.is_empty() || rest.len() > 253 || !rest.split('.').all(label_ok) || rest.parse::<std::net::IpAddr>().is_ok()
    {
        return Err(bad());
    }
    Ok(lower)
}

/// One generation of certificates.
#[derive(Default)]
struct CertSet {
    default: Option<Arc<CertifiedKey>>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by what follows "*.".
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

fn certified(pair: &CertPair) -> Result<Arc<CertifiedKey>, String> {
    check_pair(&pair.0, &pair.1)?;
    CertifiedKey::from_der(pair.0.clone(), pair.1.clone_key(), &provider())
        .map(Arc::new)
        .map_err(|e| format!("TLS: unusable certificate or key: {e}"))
}

impl CertSet {
    fn build(default: Option<&CertPair>, sni: &[(String, CertPair)]) -> Result<Self, String> {
        if default.is_none() && sni.is_empty() {
            return Err("TLS: no server certificate (set a default or a certificate for a server name)".into());
        }
        let mut set = CertSet { default: default.map(certified).transpose()?, ..Default::default() };
        for (pattern, pair) in sni {
            let key = certified(pair)?;
            match pattern.strip_prefix("*.") {
                Some(suffix) => set.wildcard.insert(suffix.to_string(), key),
                None => set.exact.insert(pattern.clone(), key),
            };
        }
        Ok(set)
    }

    /// The certificate for `name`: an exact entry, else a wildcard covering its first label,
    /// else the default.
    fn lookup(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = name else { return self.default.clone() };
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        self.exact
            .get(&name)
            .or_else(|| name.split_once('.').and_then(|(_, parent)| self.wildcard.get(parent)))
            .or(self.default.as_ref())
            .cloned()
    }
}

/// The certificates a listener presents and the sessions it can resume; rustls asks it
/// for each handshake. Replacing the certificates also forgets the sessions, so every
/// handshake after a replacement presents a new certificate.
pub struct ListenerCerts {
    current: RwLock<Arc<CertSet>>,
    sessions: RwLock<Arc<ServerSessionMemoryCache>>,
}

impl fmt::Debug for ListenerCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.set();
        f.debug_struct("ListenerCerts")
            .field("default", &set.default.is_some())
            .field("names", &(set.exact.len() + set.wildcard.len()))
            .finish()
    }
}

impl ListenerCerts {
    /// Certificates from a default pair and (pattern, pair) entries; an error sentence for
    /// unusable material or when there is none at all.
    pub fn new(default: Option<&CertPair>, sni: &[(String, CertPair)]) -> Result<Self, String> {
        Ok(ListenerCerts {
            current: RwLock::new(Arc::new(CertSet::build(default, sni)?)),
            sessions: RwLock::new(ServerSessionMemoryCache::new(SESSION_CACHE_SIZE)),
        })
    }

    /// Replaces every certificate at once; on error nothing changes. Handshakes already
    /// past certificate selection keep the certificate they chose.
    pub fn replace(&self, default: Option<&CertPair>, sni: &[(String, CertPair)]) -> Result<(), String> {
        let set = Arc::new(CertSet::build(default, sni)?);
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = set;
        *self.sessions.write().unwrap_or_else(|p| p.into_inner()) = ServerSessionMemoryCache::new(SESSION_CACHE_SIZE);
        Ok(())
    }

    fn set(&self) -> Arc<CertSet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn sessions(&self) -> Arc<ServerSessionMemoryCache> {
        self.sessions.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The certificate chain presented for `name` (None: the handshake fails).
    pub fn chain_for(&self, name: Option<&str>) -> Option<Vec<CertificateDer<'static>>> {
        self.set().lookup(name).map(|k| k.cert.clone())
    }
}

impl ResolvesServerCert for ListenerCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.set().lookup(hello.server_name())
    }
}

impl StoresServerSessions for ListenerCerts {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.sessions().put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.sessions().get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.sessions().take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(names: &[&str]) -> CertPair {
        let ck = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        (vec![ck.cert.der().clone()], Arc::new(key))
    }

    #[test]
    fn patterns_are_normalised_and_checked() {
        assert_eq!(sni_pattern("Example.COM.").unwrap(), "example.com");
        assert_eq!(sni_pattern("*.Example.com").unwrap(), "*.example.com");
        for bad in ["", "*.", "a..b", "*.*.example.com", "a*.example.com", "127.0.0.1", "-a.example", "a b"] {
            assert!(sni_pattern(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_choose_exact_then_wildcard_then_default() {
        let (d, a, w) = (pair(&["localhost"]), pair(&["a.test"]), pair(&["*.wild.test"]));
        let sni = vec![("a.test".to_string(), a.clone()), ("*.wild.test".to_string(), w.clone())];
        let certs = ListenerCerts::new(Some(&d), &sni).unwrap();
        assert_eq!(certs.chain_for(Some("a.test")), Some(a.0.clone()));
        assert_eq!(certs.chain_for(Some("A.Test")), Some(a.0.clone()));
        assert_eq!(certs.chain_for(Some("x.WILD.test")), Some(w.0.clone()));
        // One label only: deeper names and the bare parent fall back to the default.
        assert_eq!(certs.chain_for(Some("y.x.wild.test")), Some(d.0.clone()));
        assert_eq!(certs.chain_for(Some("wild.test")), Some(d.0.clone()));
        assert_eq!(certs.chain_for(None), Some(d.0.clone()));

        let no_default = ListenerCerts::new(None, &sni).unwrap();
        assert_eq!(no_default.chain_for(Some("other.test")), None);
        assert_eq!(no_default.chain_for(None), None);
    }

    #[test]
    fn a_failed_replacement_keeps_the_old_certificates() {
        let (old, new) = (pair(&["localhost"]), pair(&["localhost"]));
        let certs = ListenerCerts::new(Some(&old), &[]).unwrap();
        let mismatched = (new.0.clone(), old.1.clone());
        assert_eq!(
            certs.replace(Some(&mismatched), &[]).unwrap_err(),
            "TLS: the private key does not belong to the certificate"
        );
        assert!(certs.replace(None, &[]).is_err());
        assert_eq!(certs.chain_for(None), Some(old.0.clone()));
        certs.replace(Some(&new), &[]).unwrap();
        assert_eq!(certs.chain_for(None), Some(new.0));
    }
}
