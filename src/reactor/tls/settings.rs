//! Client and listener TLS settings, and the rustls configurations built from them.

use std::io::{self};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, Error as TlsError, SignatureScheme};

use crate::reactor::stream::Stream;

use super::certs::{sni_pattern, CertPair, ListenerCerts};
use super::material::{roots_of, system_roots};
use super::stream::TlsStream;
use super::{provider, ALPN_HTTP11};

/// Checks ALPN protocol names (1 to 255 bytes each, no duplicates, at most 64 of them);
/// an error sentence otherwise.
pub fn alpn_list(protocols: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
    if protocols.len() > 64 {
        return Err("TLS: at most 64 ALPN protocols".into());
    }
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(protocols.len());
    for p in protocols {
        if p.is_empty() || p.len() > 255 {
            return Err("TLS: an ALPN protocol name has 1 to 255 bytes".into());
        }
        if out.iter().any(|o| o == p) {
            return Err(format!("TLS: ALPN protocol \"{}\" given twice", String::from_utf8_lossy(p)));
        }
        out.push(p.to_vec());
    }
    Ok(out)
}

/// The ALPN list a side uses: the application's, or "http/1.1".
fn alpn_or_default(alpn: &Option<Vec<Vec<u8>>>) -> Vec<Vec<u8>> {
    alpn.clone().unwrap_or_else(|| vec![ALPN_HTTP11.to_vec()])
}

/// Client TLS settings (used for `wss://` URLs).
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// Trusted CAs from files and directories; when any, they replace the system roots.
    pub ca: Vec<CertificateDer<'static>>,
    /// Where `ca` came from (for messages).
    pub ca_sources: Vec<String>,
    /// Client certificate chain and key (mutual TLS).
    pub client_cert: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    /// Name sent as SNI and verified, instead of the URL host.
    pub server_name: Option<String>,
    /// Skip certificate verification (tests only).
    pub insecure: bool,
    /// ALPN protocols offered, in order of preference (None: "http/1.1"; empty: none).
    pub alpn: Option<Vec<Vec<u8>>>,
    /// The rustls configuration, built once by `prepare` when a `wss://` connect starts.
    pub built: Option<Arc<rustls::ClientConfig>>,
}

/// Accepts any server certificate: the `insecure` option.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ClientTls {
    /// Builds the rustls configuration (reported by the connect call when it fails).
    pub fn prepare(&mut self) -> Result<(), String> {
        self.built = Some(self.build()?);
        Ok(())
    }

    /// The rustls configuration for a connection.
    pub fn build(&self) -> Result<Arc<rustls::ClientConfig>, String> {
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = if self.insecure {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else if self.ca.is_empty() {
            builder.with_root_certificates(system_roots())
        } else {
            builder.with_root_certificates(roots_of(&self.ca, &self.ca_sources.join(", "))?)
        };
        let mut config = match &self.client_cert {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| format!("TLS: client certificate: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = alpn_or_default(&self.alpn);
        Ok(Arc::new(config))
    }
}

// ---- listener settings -------------------------------------------------------------------

/// Listener TLS settings: with a certificate, every accepted connection speaks TLS.
#[derive(Clone, Debug, Default)]
pub struct ServerTls {
    /// The default certificate chain (leaf first) and its key: for clients that send no
    /// server name or one without a certificate of its own.
    pub cert: Option<CertPair>,
    /// Certificates chosen by server name: (normalised pattern, pair), see `add_sni`.
    pub sni: Vec<(String, CertPair)>,
    /// CAs for client certificates, and whether a certificate is required.
    pub client_ca: Option<(Vec<CertificateDer<'static>>, String, bool)>,
    /// ALPN protocols accepted, in order of preference (None: "http/1.1"; empty: none).
    pub alpn: Option<Vec<Vec<u8>>>,
    /// The rustls configuration built by `prepare` when the listener starts.
    pub built: Option<Arc<rustls::ServerConfig>>,
    /// The certificates of `built`, replaceable while the listener runs.
    pub certs: Option<Arc<ListenerCerts>>,
}

impl ServerTls {
    /// Is TLS configured (a certificate, client CAs or ALPN were given)?
    pub fn is_configured(&self) -> bool {
        self.has_certificates() || self.client_ca.is_some() || self.alpn.is_some()
    }

    /// Is there any certificate (a default or one for a server name)?
    pub fn has_certificates(&self) -> bool {
        self.cert.is_some() || !self.sni.is_empty()
    }

    /// Adds the certificate for server name `name` ("example.com", or "*.example.com" for
    /// every name one label below example.com), case-insensitive; a later one for the same
    /// name replaces the earlier. An error sentence for a malformed name.
    pub fn add_sni(&mut self, name: &str, pair: CertPair) -> Result<(), String> {
        let pattern = sni_pattern(name)?;
        self.sni.retain(|(p, _)| *p != pattern);
        self.sni.push((pattern, pair));
        Ok(())
    }

    /// Builds the rustls configuration; an error sentence for unusable material.
    pub fn prepare(&mut self) -> Result<(), String> {
        if !self.is_configured() {
            self.built = None;
            return Ok(());
        }
        if !self.has_certificates() {
            let what = if self.client_ca.is_some() { "a client CA was" } else { "ALPN protocols were" };
            return Err(format!("TLS: {what} set but no server certificate and key"));
        }
        let certs = Arc::new(ListenerCerts::new(self.cert.as_ref(), &self.sni)?);
        let provider = provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &self.client_ca {
            Some((certs, source, required)) => {
                let roots = Arc::new(roots_of(certs, source)?);
                let mut verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                if !required {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier.build().map_err(|e| format!("TLS: client CA {source}: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(certs.clone());
        config.session_storage = certs.clone();
        config.alpn_protocols = alpn_or_default(&self.alpn);
        self.built = Some(Arc::new(config));
        self.certs = Some(certs);
        Ok(())
    }

    /// Wraps an accepted socket when TLS is on.
    pub fn accept(&self, stream: Stream) -> io::Result<Stream> {
        match &self.built {
            Some(config) => Ok(Stream::Tls(Box::new(TlsStream::server(stream, config.clone())?))),
            None => Ok(stream),
        }
    }
}

/// Does this look like a TLS ClientHello (a wss:// client on a plain port)?
pub fn looks_like_tls(head: &[u8]) -> bool {
    head.len() >= 3 && head[0] == 0x16 && head[1] == 0x03
}

/// The sentence for a request that is really a TLS ClientHello.
pub fn plain_port_hint(head: &[u8]) -> Option<&'static str> {
    looks_like_tls(head).then_some("TLS handshake on a plain port (a wss:// client on a ws:// listener?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_recognised() {
        assert!(looks_like_tls(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(!looks_like_tls(b"GET / HTTP/1.1\r\n"));
    }
}
