//! TLS with rustls (ring provider): the encrypted stream the reactor reads and writes like a
//! socket, the client and listener settings, certificate loading, and error wording.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

use once_cell::sync::OnceCell;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme};

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

/// A readable sentence for a rustls error. `server_name` is the name a client verifies.
pub fn describe(e: &TlsError, is_client: bool, server_name: &str) -> String {
    match e {
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
        TlsError::NoApplicationProtocol => "TLS: no common ALPN protocol (http/1.1 expected)".into(),
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

// ---- the stream -----------------------------------------------------------------------------

/// TLS over a socket.
pub struct TlsStream {
    /// The socket.
    pub inner: Stream,
    /// The rustls connection.
    pub tls: rustls::Connection,
    /// Name the client verifies (for messages), "" on the server side.
    server_name: String,
    /// The socket reached end of stream.
    socket_eof: bool,
    /// A failure found after some plaintext was already returned; reported by the next read.
    deferred: Option<io::Error>,
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsStream").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl TlsStream {
    /// Client side: starts the handshake (the ClientHello waits in the output).
    pub fn client(inner: Stream, config: Arc<rustls::ClientConfig>, name: &str) -> io::Result<Self> {
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| tls_io_error(format!("TLS: invalid server name \"{name}\"")))?;
        let mut tls =
            rustls::ClientConnection::new(config, server_name).map_err(|e| tls_io_error(describe(&e, true, name)))?;
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Ok(TlsStream { inner, tls: tls.into(), server_name: name.to_string(), socket_eof: false, deferred: None })
    }

    /// Server side: waits for the ClientHello.
    pub fn server(inner: Stream, config: Arc<rustls::ServerConfig>) -> io::Result<Self> {
        let mut tls = rustls::ServerConnection::new(config).map_err(|e| tls_io_error(describe(&e, false, "")))?;
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Ok(TlsStream { inner, tls: tls.into(), server_name: String::new(), socket_eof: false, deferred: None })
    }

    fn is_client(&self) -> bool {
        matches!(self.tls, rustls::Connection::Client(_))
    }

    /// Writes pending ciphertext until the socket blocks (`WouldBlock`) or none is left.
    pub fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.inner) {
                Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "socket accepted no bytes")),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends close_notify and whatever the socket takes now, without waiting.
    pub fn close_notify(&mut self) {
        self.tls.send_close_notify();
        let _ = self.flush_tls();
    }

    /// Subject of the peer's certificate as an RFC 4514 string, if it sent one.
    pub fn peer_subject(&self) -> Option<String> {
        let cert = self.tls.peer_certificates()?.first()?;
        subject_of(cert.as_ref())
    }

    /// Reads and decrypts socket bytes once; Ok(false) at socket EOF.
    fn receive(&mut self) -> io::Result<bool> {
        let n = loop {
            match self.tls.read_tls(&mut self.inner) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.socket_eof = true;
            return Ok(false);
        }
        if let Err(e) = self.tls.process_new_packets() {
            // Let the peer know why (the alert rustls queued), then fail.
            let _ = self.flush_tls();
            let message = describe(&e, self.is_client(), &self.server_name);
            return Err(tls_io_error(message));
        }
        // Handshake records, resumption tickets, key updates: send them now.
        match self.flush_tls() {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(true),
            Err(e) => Err(e),
        }
    }
}

impl Read for TlsStream {
    /// Fills `buf` with plaintext until it is full or the socket would block, so a short read
    /// means the socket is drained (edge-triggered polling depends on it). Bytes that only
    /// advance the handshake give `WouldBlock`, not end of stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let mut filled = 0;
        loop {
            match self.tls.reader().read(&mut buf[filled..]) {
                // close_notify received (or buf is full).
                Ok(0) => return Ok(filled),
                Ok(n) => {
                    filled += n;
                    if filled == buf.len() {
                        return Ok(filled);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The socket ended without close_notify: the WebSocket layer decides whether
                // that was clean (it was after a close handshake).
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(filled),
                Err(e) => return if filled > 0 { self.defer(e, filled) } else { Err(e) },
            }
            if self.socket_eof {
                return Ok(filled);
            }
            match self.receive() {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock && filled > 0 => return Ok(filled),
                Err(e) if filled > 0 => return self.defer(e, filled),
                Err(e) => return Err(e),
            }
        }
    }
}

impl TlsStream {
    fn defer(&mut self, e: io::Error, filled: usize) -> io::Result<usize> {
        self.deferred = Some(e);
        Ok(filled)
    }
}

impl Write for TlsStream {
    /// Encrypts as much of `buf` as the buffer limit allows and sends what the socket takes.
    /// `WouldBlock` when nothing could be taken.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.flush_tls() {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        let n = self.tls.writer().write(buf)?;
        match self.flush_tls() {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if n == 0 => return Err(e),
            // Taken; the failure shows again on the next write.
            Err(_) => {}
        }
        if n == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Sends pending ciphertext; `WouldBlock` when some is left.
    fn flush(&mut self) -> io::Result<()> {
        self.flush_tls()
    }
}

// ---- loading certificates and keys -----------------------------------------------------------

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

fn roots_of(certs: &[CertificateDer<'static>], source: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots.add(c.clone()).map_err(|e| format!("TLS: unusable CA certificate in {source}: {e}"))?;
    }
    Ok(roots)
}

fn system_roots() -> Arc<RootCertStore> {
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

// ---- client settings ---------------------------------------------------------------------

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
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(Arc::new(config))
    }
}

// ---- listener settings -------------------------------------------------------------------

/// Listener TLS settings: with a certificate, every accepted connection speaks TLS.
#[derive(Clone, Debug, Default)]
pub struct ServerTls {
    /// Certificate chain (leaf first) and its key.
    pub cert: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    /// CAs for client certificates, and whether a certificate is required.
    pub client_ca: Option<(Vec<CertificateDer<'static>>, String, bool)>,
    /// The rustls configuration built by `prepare` when the listener starts.
    pub built: Option<Arc<rustls::ServerConfig>>,
}

impl ServerTls {
    /// Is TLS configured (a certificate or client CAs were given)?
    pub fn is_configured(&self) -> bool {
        self.cert.is_some() || self.client_ca.is_some()
    }

    /// Builds the rustls configuration; an error sentence for unusable material.
    pub fn prepare(&mut self) -> Result<(), String> {
        if !self.is_configured() {
            self.built = None;
            return Ok(());
        }
        let Some((chain, key)) = &self.cert else {
            return Err("TLS: a client CA was set but no server certificate and key".into());
        };
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
        let mut config = builder
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| format!("TLS: server certificate and key: {e}"))?;
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        self.built = Some(Arc::new(config));
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

// ---- certificate subject -------------------------------------------------------------------

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

    /// A client and a server stream over a socket pair, handshake done.
    fn pair() -> (TlsStream, TlsStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let (cert, key) = self_signed();
        let mut server_tls = ServerTls { cert: Some((vec![cert], Arc::new(key))), ..Default::default() };
        server_tls.prepare().unwrap();
        let client_tls = ClientTls { insecure: true, ..Default::default() };
        let mut client = TlsStream::client(
            Stream::Unix(mio::net::UnixStream::from_std(a)),
            client_tls.build().unwrap(),
            "localhost",
        )
        .unwrap();
        let mut server =
            TlsStream::server(Stream::Unix(mio::net::UnixStream::from_std(b)), server_tls.built.clone().unwrap())
                .unwrap();
        let mut buf = [0u8; 16];
        while client.tls.is_handshaking() || server.tls.is_handshaking() {
            let _ = client.flush_tls();
            let _ = server.read(&mut buf);
            let _ = server.flush_tls();
            let _ = client.read(&mut buf);
        }
        (client, server)
    }

    /// A self-signed certificate for localhost and its key.
    fn self_signed() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
        (ck.cert.der().clone(), key)
    }

    #[test]
    fn writes_stop_at_the_buffer_limit_when_the_peer_does_not_read() {
        let (mut client, mut server) = pair();
        let chunk = vec![7u8; 64 * 1024];
        let mut accepted = 0usize;
        loop {
            match client.write(&chunk) {
                Ok(n) => accepted += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
            assert!(accepted < 64 * 1024 * 1024, "writes never blocked");
        }
        let sock = match &client.inner {
            Stream::Unix(s) => socket2::SockRef::from(s),
            _ => unreachable!(),
        };
        let peer = match &server.inner {
            Stream::Unix(s) => socket2::SockRef::from(s),
            _ => unreachable!(),
        };
        let kernel = sock.send_buffer_size().unwrap() + peer.recv_buffer_size().unwrap();
        // Record overhead is small; what the socket does not hold stays in rustls, bounded.
        assert!(accepted <= kernel + TLS_BUFFER_LIMIT + accepted / 50, "accepted {accepted}, kernel {kernel}");
        assert!(client.tls.wants_write(), "ciphertext waits for the socket");
        // The reader gets every byte; the writer's flush empties rustls' buffer on the way.
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        while got < accepted {
            match server.read(&mut buf) {
                Ok(0) => panic!("end of stream"),
                Ok(n) => {
                    assert!(buf[..n].iter().all(|&b| b == 7));
                    got += n;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let _ = client.flush_tls();
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, accepted);
        assert!(!client.tls.wants_write());
    }

    #[test]
    fn handshake_bytes_alone_are_not_end_of_stream() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let (cert, key) = self_signed();
        let mut server_tls = ServerTls { cert: Some((vec![cert], Arc::new(key))), ..Default::default() };
        server_tls.prepare().unwrap();
        let config = ClientTls { insecure: true, ..Default::default() }.build().unwrap();
        let mut client =
            TlsStream::client(Stream::Unix(mio::net::UnixStream::from_std(a)), config, "localhost").unwrap();
        let mut server =
            TlsStream::server(Stream::Unix(mio::net::UnixStream::from_std(b)), server_tls.built.unwrap()).unwrap();
        client.flush_tls().unwrap();
        let mut buf = [0u8; 64];
        // The ClientHello arrives: no plaintext, not EOF; the server answers at once.
        assert_eq!(server.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(!server.tls.wants_write(), "the server's flight was sent while reading");
        assert_eq!(client.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
        assert!(!client.tls.is_handshaking());
        assert_eq!(client.write(b"hello").unwrap(), 5);
        assert_eq!(server.read(&mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        // close_notify, then the socket closes: a clean end of stream.
        client.close_notify();
        drop(client);
        assert_eq!(server.read(&mut buf).unwrap(), 0);
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

    #[test]
    fn alerts_in_words() {
        let e = TlsError::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert_eq!(describe(&e, true, "x"), "TLS: peer sent alert \"certificate required\"");
    }

    #[test]
    fn tls_records_are_recognised() {
        assert!(looks_like_tls(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(!looks_like_tls(b"GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(subject_of(b"\x30\x03\x02\x01\x01").is_none());
        assert!(cert_from_der(b"not a certificate").is_err());
    }

    #[test]
    fn io_failures_keep_the_tls_sentence() {
        let e = tls_io_error("TLS: invalid certificate: expired".into());
        assert_eq!(io_failure(&e, "read"), (Error::Tls, "TLS: invalid certificate: expired".to_string()));
        let e = io::Error::new(ErrorKind::ConnectionReset, "reset");
        assert_eq!(io_failure(&e, "read").0, Error::ConnectionReset);
    }
}
