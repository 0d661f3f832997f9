//! TLS with rustls (ring provider): the encrypted stream the reactor reads and writes like a
//! socket (`stream`), the client and listener settings (`settings`), a listener's
//! replaceable certificates chosen by server name (`certs`), certificate and key loading
//! (`material`), the subject text of certificates (`subject`), and here the error wording
//! and the loop's side.

mod certs;
mod material;
mod settings;
mod stream;
mod subject;

pub use certs::{sni_pattern, CertPair, ListenerCerts};
pub use material::{
    cert_from_der, certs_from_dir, certs_from_file, certs_from_pem, check_pair, key_from_der, key_from_file,
    key_from_pem,
};
pub use settings::{alpn_list, looks_like_tls, plain_port_hint, ClientTls, ServerTls};
pub use stream::TlsStream;
pub use subject::subject_of;

use material::roots_of;

use std::fmt;
use std::io::{self, ErrorKind};
use std::sync::Arc;

use once_cell::sync::OnceCell;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, Error as TlsError};

use std::rc::Rc;

use super::client::with_state as with_client_state;
use super::conn::Conn;
use super::event_loop::EventLoop;
use super::stream::Stream;
use crate::reactor::error::Error;

/// Most ciphertext (and not yet encrypted plaintext) rustls keeps per connection; a write
/// beyond it returns `WouldBlock`, so the connection's own output buffer keeps the
/// back-pressure and memory stays bounded.
pub(crate) const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// ALPN protocol offered by clients and accepted by servers.
const ALPN_HTTP11: &[u8] = b"http/1.1";

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceCell<Arc<CryptoProvider>> = OnceCell::new();
    PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())).clone()
}

// ---- errors -------------------------------------------------------------------------------

/// A TLS failure carried inside an `io::Error`; its text is the sentence reported.
#[derive(Debug)]
pub struct TlsFailure(pub String);

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsFailure {}

fn tls_io_error(message: String) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, TlsFailure(message))
}

/// Kind and sentence for an I/O error of `what` ("read", "write"); TLS failures keep their
/// own sentence and get `WSFFI_ERR_TLS`.
pub fn io_failure(e: &io::Error, what: &str) -> (Error, String) {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<TlsFailure>()) {
        Some(t) => (Error::Tls, t.0.clone()),
        None => (Error::from_io(e), format!("{what}: {e}")),
    }
}

/// What rustls reports when the certificate resolver found nothing for a client.
const NO_CERTIFICATE_RESOLVED: &str = "no server certificate chain resolved";

/// A readable sentence for a rustls error. `server_name` is the name a client verifies, or
/// on the server side the name the client asked for ("" when it sent none).
pub fn describe(e: &TlsError, is_client: bool, server_name: &str) -> String {
    match e {
        TlsError::General(m) if !is_client && m == NO_CERTIFICATE_RESOLVED => {
            if server_name.is_empty() {
                "TLS: the client sent no server name (SNI) and there is no default certificate".into()
            } else {
                format!("TLS: no certificate for server name \"{server_name}\" and no default certificate")
            }
        }
        TlsError::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("TLS: certificate not valid for name \"{server_name}\"")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "TLS: invalid certificate: expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "TLS: invalid certificate: not valid yet".into()
            }
            CertificateError::UnknownIssuer => "TLS: invalid certificate: unknown issuer".into(),
            CertificateError::BadSignature => "TLS: invalid certificate: bad signature".into(),
            CertificateError::Revoked => "TLS: invalid certificate: revoked".into(),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "TLS: invalid certificate: not valid for this purpose".into()
            }
            other => format!("TLS: invalid certificate: {other:?}"),
        },
        TlsError::InvalidMessage(rustls::InvalidMessage::InvalidContentType)
        | TlsError::InvalidMessage(rustls::InvalidMessage::UnknownProtocolVersion) => {
            if is_client {
                "TLS: server sent non-TLS data (a plain ws:// port?)".into()
            } else {
                "TLS: peer sent non-TLS data (plain HTTP on a TLS port?)".into()
            }
        }
        TlsError::NoCertificatesPresented => "TLS: client certificate required but none was presented".into(),
        TlsError::AlertReceived(alert) => format!("TLS: peer sent alert \"{}\"", words(&format!("{alert:?}"))),
        TlsError::NoApplicationProtocol => "TLS: no common ALPN protocol".into(),
        other => format!("TLS: {other}"),
    }
}

/// "CertificateRequired" -> "certificate required".
fn words(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

// ---- the loop's side -------------------------------------------------------------------------

impl EventLoop {
    /// Flushes `conn` at the end of this wake-up (pending TLS output after a read).
    pub(super) fn flush_later(&self, conn: &Conn) {
        let rc = self.conns.borrow().get(conn.key).cloned();
        if let Some(rc) = rc {
            self.mark_dirty(&rc);
        }
    }

    /// A client connected: for `wss://`, TLS starts on the socket.
    pub(super) fn start_client_tls(&self, conn: &Rc<Conn>) -> Result<(), (Error, String)> {
        let Some(Some((config, name))) = with_client_state(conn, |st| {
            st.url.secure.then(|| {
                let name = st.config.tls.server_name.clone().unwrap_or_else(|| st.url.host.clone());
                (st.config.tls.built.clone(), name)
            })
        }) else {
            return Ok(());
        };
        let config = match config {
            Some(c) => c,
            None => build_client_config(conn)?,
        };
        let mut slot = conn.stream.borrow_mut();
        let Some(plain) = slot.take() else { return Ok(()) };
        match TlsStream::client(plain, config, &name) {
            Ok(t) => {
                *slot = Some(Stream::Tls(Box::new(t)));
                Ok(())
            }
            Err(e) => Err(io_failure(&e, "TLS")),
        }
    }

    /// A server connection failed in TLS before its request: tell the servers that could
    /// have taken it.
    pub(super) fn report_tls_failure(&self, conn: &Conn) {
        let failure = conn.failure.borrow().as_deref().cloned();
        if let Some((Error::Tls, message)) = failure {
            for s in self.servers_for_errors(conn) {
                s.client_error(Error::Tls, &message);
            }
        }
    }
}

fn build_client_config(conn: &Conn) -> Result<Arc<rustls::ClientConfig>, (Error, String)> {
    with_client_state(conn, |st| st.config.tls.build())
        .unwrap_or_else(|| Err("TLS: client state missing".into()))
        .map_err(|m| (Error::Tls, m))
}

/// Loads a CA file into client settings.
pub fn add_client_ca(tls: &mut ClientTls, certs: Vec<CertificateDer<'static>>, source: &str) -> Result<(), String> {
    roots_of(&certs, source)?;
    tls.ca.extend(certs);
    tls.ca_sources.push(source.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_in_words() {
        let e = TlsError::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert_eq!(describe(&e, true, "x"), "TLS: peer sent alert \"certificate required\"");
    }

    #[test]
    fn a_missing_certificate_names_the_server_name() {
        let e = TlsError::General(NO_CERTIFICATE_RESOLVED.into());
        assert_eq!(
            describe(&e, false, "nowhere.test"),
            "TLS: no certificate for server name \"nowhere.test\" and no default certificate"
        );
        assert!(describe(&e, false, "").starts_with("TLS: the client sent no server name"));
    }

    #[test]
    fn io_failures_keep_the_tls_sentence() {
        let e = tls_io_error("TLS: invalid certificate: expired".into());
        assert_eq!(io_failure(&e, "read"), (Error::Tls, "TLS: invalid certificate: expired".to_string()));
        let e = io::Error::new(ErrorKind::ConnectionReset, "reset");
        assert_eq!(io_failure(&e, "read").0, Error::ConnectionReset);
    }
}
