//! Certificates and private keys from PEM or DER, in files, directories or memory.

use std::sync::Arc;

use once_cell::sync::OnceCell;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{Error as TlsError, RootCertStore};

use super::provider;
use super::subject::subject_of;

fn read_file(path: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("TLS: cannot read {what} {path}: {e}"))
}

/// Certificates of a PEM text; an error when there are none or one is malformed.
pub fn certs_from_pem(pem: &[u8], source: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        certs.push(item.map_err(|e| format!("TLS: bad PEM in {source}: {e}"))?);
    }
    if certs.is_empty() {
        return Err(format!("TLS: no PEM certificate in {source}"));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM text.
pub fn key_from_pem(pem: &[u8], source: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!("TLS: no PEM private key in {source}"),
        e => format!("TLS: bad PEM private key in {source}: {e}"),
    })
}

/// Certificates of a PEM file.
pub fn certs_from_file(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    certs_from_pem(&read_file(path, "certificate file")?, path)
}

/// The private key of a PEM file.
pub fn key_from_file(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    key_from_pem(&read_file(path, "key file")?, path)
}

/// Every certificate of the PEM files in a directory (files without certificates are
/// skipped); an error when there are none at all.
pub fn certs_from_dir(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let entries = std::fs::read_dir(path).map_err(|e| format!("TLS: cannot read CA directory {path}: {e}"))?;
    let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    names.sort();
    let mut certs = Vec::new();
    for name in names {
        let Ok(bytes) = std::fs::read(&name) else { continue };
        for item in CertificateDer::pem_slice_iter(&bytes) {
            match item {
                Ok(c) => certs.push(c),
                Err(_) => break,
            }
        }
    }
    if certs.is_empty() {
        return Err(format!("TLS: no PEM certificate in CA directory {path}"));
    }
    Ok(certs)
}

/// A DER certificate, checked for being one X.509 structure.
pub fn cert_from_der(der: &[u8]) -> Result<CertificateDer<'static>, String> {
    if subject_of(der).is_none() {
        return Err("TLS: the DER certificate is not a valid X.509 certificate".into());
    }
    Ok(CertificateDer::from(der.to_vec()))
}

/// A DER private key (PKCS#8, PKCS#1 or SEC1).
pub fn key_from_der(der: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::try_from(der.to_vec()).map_err(|e| format!("TLS: bad DER private key: {e}"))
}

/// Checks that `key` is the private key of the first certificate of `chain` (and that ring
/// can sign with it).
pub fn check_pair(chain: &[CertificateDer<'static>], key: &PrivateKeyDer<'static>) -> Result<(), String> {
    match rustls::sign::CertifiedKey::from_der(chain.to_vec(), key.clone_key(), &provider()) {
        Ok(_) => Ok(()),
        Err(TlsError::InconsistentKeys(_)) => Err("TLS: the private key does not belong to the certificate".into()),
        Err(e) => Err(format!("TLS: unusable certificate or key: {e}")),
    }
}

pub(super) fn roots_of(certs: &[CertificateDer<'static>], source: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots.add(c.clone()).map_err(|e| format!("TLS: unusable CA certificate in {source}: {e}"))?;
    }
    Ok(roots)
}

pub(super) fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceCell<Arc<RootCertStore>> = OnceCell::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let _ = roots.add_parsable_certificates(found.certs);
            Arc::new(roots)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(subject_of(b"\x30\x03\x02\x01\x01").is_none());
        assert!(cert_from_der(b"not a certificate").is_err());
    }
}
