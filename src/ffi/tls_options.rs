//! TLS settings of client and listener options, and the TLS accessors of views. Files and
//! PEM/DER material are read and checked when set: a failure returns `WSFFI_STATUS_ERR_TLS` (or
//! the status of the unreadable argument) with a sentence in `*out_err`, and leaves the
//! options unchanged.

use std::ffi::c_char;
use std::ptr::null;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;

use super::boundary::{boundary, bytes, report, status_boundary, text, wsffi_error};
use super::handles::{owned, peek, Handle, Owned};
use super::options::{wsffi_client_options, wsffi_listener_options};
use super::status::{wsffi_status, Status};
use crate::reactor::server::{ListenerHandle, RequestView};
use crate::reactor::tls;

/// Applies `f` to an options object; a sentence from `f` becomes `WSFFI_STATUS_ERR_TLS` in `out_err`.
fn with_tls<T: Handle<Ownership = Owned>>(
    p: *mut T,
    out_err: *mut *mut wsffi_error,
    f: impl FnOnce(&mut T) -> Result<(), (Status, String)>,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live options object from its `_new`.
        let o = unsafe { owned(p) }?;
        // SAFETY: out_err is NULL or writable.
        f(o).map_err(|(status, message)| unsafe { report(out_err, status, message) })
    })
}

/// A path argument: NUL-terminated UTF-8.
fn path_arg<'a>(p: *const c_char) -> Result<&'a str, (Status, String)> {
    // SAFETY: NULL or a NUL-terminated string, per the callers' contracts.
    unsafe { text(p) }.map_err(|s| (s, "TLS: missing or non-UTF-8 path".to_string()))
}

fn tls_error(message: String) -> (Status, String) {
    (Status::ErrTls, message)
}

// ---- client -----------------------------------------------------------------------------

/// Loads CA certificates from `path` with `load` and adds them to the client's trust roots.
fn add_client_ca(
    options: *mut wsffi_client_options,
    path: *const c_char,
    out_err: *mut *mut wsffi_error,
    load: fn(&str) -> Result<Vec<CertificateDer<'static>>, String>,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        let path = path_arg(path)?;
        let certs = load(path).map_err(tls_error)?;
        tls::add_client_ca(&mut o.config.tls, certs, path).map_err(tls_error)
    })
}

/// Trusts the CA certificates of the PEM file at `path` for `wss://` servers. Once a CA file
/// or directory is given, only those CAs are trusted (not the system's); both kinds may be
/// combined and each may be called several times. Without any, the system's certificates
/// are used.
/// NULL `options` or `path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a
/// detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_tls_ca_file(
    options: *mut wsffi_client_options,
    path: *const c_char,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    add_client_ca(options, path, out_err, tls::certs_from_file)
}

/// Trusts every CA certificate found in the PEM files of the directory `path` (files
/// without certificates are skipped; a directory without any is an error). See
/// `wsffi_client_options_set_tls_ca_file`.
/// NULL `options` or `path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a
/// detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_tls_ca_dir(
    options: *mut wsffi_client_options,
    path: *const c_char,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    add_client_ca(options, path, out_err, tls::certs_from_dir)
}

/// Presents a client certificate (mutual TLS): `cert_path` is a PEM file with the chain,
/// leaf first; `key_path` a PEM file with its private key (PKCS#8, PKCS#1 or SEC1), which
/// must belong to the certificate.
/// NULL `options`, `cert_path` or `key_path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err`
/// may be NULL, a detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_tls_client_cert(
    options: *mut wsffi_client_options,
    cert_path: *const c_char,
    key_path: *const c_char,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        let (cert_path, key_path) = (path_arg(cert_path)?, path_arg(key_path)?);
        let chain = tls::certs_from_file(cert_path).map_err(tls_error)?;
        let key = tls::key_from_file(key_path).map_err(tls_error)?;
        tls::check_pair(&chain, &key).map_err(tls_error)?;
        o.config.tls.client_cert = Some((chain, Arc::new(key)));
        Ok(())
    })
}

/// Sends `name` as SNI and verifies the server certificate against it instead of the URL's
/// host (a DNS name or an IP address). NULL restores the URL host.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_tls_server_name(
    options: *mut wsffi_client_options,
    name: *const c_char,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live options object.
        let o = unsafe { owned(options) }?;
        if name.is_null() {
            o.config.tls.server_name = None;
            return Ok(());
        }
        // SAFETY: a NUL-terminated string.
        let name = unsafe { text(name) }?;
        rustls::pki_types::ServerName::try_from(name).map_err(|_| Status::ErrInvalidParameter)?;
        o.config.tls.server_name = Some(name.to_string());
        Ok(())
    })
}

/// FOR TESTS ONLY: accept any server certificate (no chain, name or date check). The
/// connection is encrypted but not authenticated, so anyone in the path can read it.
/// NULL `options`: WSFFI_STATUS_ERR_NULL_PARAMETER.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_tls_insecure(
    options: *mut wsffi_client_options,
    insecure: bool,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live options object.
        let o = unsafe { owned(options) }?;
        o.config.tls.insecure = insecure;
        Ok(())
    })
}

/// The ALPN protocols a `wss://` client offers, in order of preference: `count`
/// NUL-terminated names (1 to 255 bytes each, no duplicates, at most 64), copied.
/// Default: "http/1.1". `count` 0 offers none. A server that accepts none of them fails the
/// handshake (the client's `on_error` gets `WSFFI_STATUS_ERR_TLS`, "TLS: peer sent alert
/// "no application protocol""); a server that answers without ALPN is accepted. The
/// agreed protocol is `wsffi_tls_alpn` once open.
/// NULL `options`, or NULL `protocols` (or a NULL name) with `count` > 0:
/// WSFFI_STATUS_ERR_NULL_PARAMETER; a bad name: WSFFI_STATUS_ERR_INVALID_PARAMETER (the
/// options are unchanged); `out_err` may be NULL, a detail stored there is the caller's
/// (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_client_options_set_tls_alpn(
    options: *mut wsffi_client_options,
    protocols: *const *const c_char,
    count: usize,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        // SAFETY: per this function's contract.
        o.config.tls.alpn = Some(unsafe { alpn_arg(protocols, count) }?);
        Ok(())
    })
}

// ---- listener ---------------------------------------------------------------------------

/// A certificate chain and key from two PEM files.
fn pair_from_files(chain_path: *const c_char, key_path: *const c_char) -> Result<tls::CertPair, (Status, String)> {
    let (chain_path, key_path) = (path_arg(chain_path)?, path_arg(key_path)?);
    let chain = tls::certs_from_file(chain_path).map_err(tls_error)?;
    let key = tls::key_from_file(key_path).map_err(tls_error)?;
    tls::check_pair(&chain, &key).map_err(tls_error)?;
    Ok((chain, Arc::new(key)))
}

/// A certificate chain and key from PEM text in memory.
///
/// # Safety
/// Each pointer is NULL or has the given number of readable bytes.
unsafe fn pair_from_pem(
    chain: *const u8,
    chain_len: usize,
    key: *const u8,
    key_len: usize,
) -> Result<tls::CertPair, (Status, String)> {
    // SAFETY: per the caller's contract.
    let (chain, key) = unsafe { (bytes(chain, chain_len), bytes(key, key_len)) };
    let (chain, key) =
        (chain.map_err(|s| (s, "TLS: NULL chain".into()))?, key.map_err(|s| (s, "TLS: NULL key".into()))?);
    let chain = tls::certs_from_pem(chain, "the certificate PEM").map_err(tls_error)?;
    let key = tls::key_from_pem(key, "the key PEM").map_err(tls_error)?;
    tls::check_pair(&chain, &key).map_err(tls_error)?;
    Ok((chain, Arc::new(key)))
}

/// One DER certificate and its key from memory.
///
/// # Safety
/// Each pointer is NULL or has the given number of readable bytes.
unsafe fn pair_from_der(
    cert: *const u8,
    cert_len: usize,
    key: *const u8,
    key_len: usize,
) -> Result<tls::CertPair, (Status, String)> {
    // SAFETY: per the caller's contract.
    let (cert, key) = unsafe { (bytes(cert, cert_len), bytes(key, key_len)) };
    let (cert, key) =
        (cert.map_err(|s| (s, "TLS: NULL certificate".into()))?, key.map_err(|s| (s, "TLS: NULL key".into()))?);
    let cert = tls::cert_from_der(cert).map_err(tls_error)?;
    let key = tls::key_from_der(key).map_err(tls_error)?;
    let chain = vec![cert];
    tls::check_pair(&chain, &key).map_err(tls_error)?;
    Ok((chain, Arc::new(key)))
}

/// Adds `pair` for the server name `name` to listener options.
fn add_sni(
    options: *mut wsffi_listener_options,
    name: *const c_char,
    out_err: *mut *mut wsffi_error,
    pair: impl FnOnce() -> Result<tls::CertPair, (Status, String)>,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        // SAFETY: NULL or a NUL-terminated string, per the callers' contracts.
        let name = unsafe { text(name) }.map_err(|s| (s, "TLS: missing or non-UTF-8 server name".to_string()))?;
        let pattern = tls::sni_pattern(name).map_err(|m| (Status::ErrInvalidParameter, m))?;
        let pair = pair()?;
        o.config.tls.add_sni(&pattern, pair).map_err(|m| (Status::ErrInvalidParameter, m))
    })
}

/// Serves TLS on the listener with the certificate chain of the PEM file `chain_path`
/// (leaf first) and the private key of the PEM file `key_path`. Every accepted connection
/// then speaks TLS (ALPN "http/1.1" unless `wsffi_listener_options_set_tls_alpn` says
/// otherwise); TLS failures reach `on_client_error` of the attached servers with
/// `WSFFI_STATUS_ERR_TLS`. A key that does not belong to the certificate is refused.
/// With certificates for server names (`wsffi_listener_options_add_tls_sni_cert_*`) this
/// one is the default, for clients that send no server name or one without its own
/// certificate. Calling it again replaces the default.
/// NULL `options`, `chain_path` or `key_path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err`
/// may be NULL, a detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_tls_cert_files(
    options: *mut wsffi_listener_options,
    chain_path: *const c_char,
    key_path: *const c_char,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        o.config.tls.cert = Some(pair_from_files(chain_path, key_path)?);
        Ok(())
    })
}

/// As `wsffi_listener_options_set_tls_cert_files`, from PEM text in memory (`chain`:
/// certificates, leaf first; `key`: the private key). The bytes are copied.
/// NULL `options`, `chain` or `key`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be
/// NULL, a detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_tls_cert_pem(
    options: *mut wsffi_listener_options,
    chain: *const u8,
    chain_len: usize,
    key: *const u8,
    key_len: usize,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        // SAFETY: NULL or readable buffers of the given lengths.
        o.config.tls.cert = Some(unsafe { pair_from_pem(chain, chain_len, key, key_len) }?);
        Ok(())
    })
}

/// As `wsffi_listener_options_set_tls_cert_files`, from DER in memory: one certificate
/// and its private key (PKCS#8, PKCS#1 or SEC1). The bytes are copied.
/// NULL `options`, `cert` or `key`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL,
/// a detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_tls_cert_der(
    options: *mut wsffi_listener_options,
    cert: *const u8,
    cert_len: usize,
    key: *const u8,
    key_len: usize,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        // SAFETY: NULL or readable buffers of the given lengths.
        o.config.tls.cert = Some(unsafe { pair_from_der(cert, cert_len, key, key_len) }?);
        Ok(())
    })
}

/// Presents the certificate chain of the PEM file `chain_path` (leaf first, with the key
/// of the PEM file `key_path`) to clients that ask for `server_name` by SNI. `server_name`
/// is a DNS name ("chat.example.com") or a wildcard ("*.example.com": any name exactly one
/// label below example.com, not example.com itself), compared case-insensitively; an
/// exact name wins over a wildcard. Any number of names may be added; adding one again
/// replaces its certificate. Clients that send no server name or an unknown one get the
/// default certificate (`wsffi_listener_options_set_tls_cert_*`); without a default their
/// handshake fails (rustls sends the alert access_denied) and `on_client_error` of the
/// attached servers gets `WSFFI_STATUS_ERR_TLS` with "TLS: no certificate for server name
/// ...". The certificate is not checked against the name: clients verify it.
/// Errors: a malformed name (or an IP address) is WSFFI_STATUS_ERR_INVALID_PARAMETER;
/// unreadable or unusable material WSFFI_STATUS_ERR_TLS; the options are then unchanged.
/// NULL `options`, `server_name`, `chain_path` or `key_path`:
/// WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a detail stored there is the
/// caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_add_tls_sni_cert_files(
    options: *mut wsffi_listener_options,
    server_name: *const c_char,
    chain_path: *const c_char,
    key_path: *const c_char,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    add_sni(options, server_name, out_err, || pair_from_files(chain_path, key_path))
}

/// As `wsffi_listener_options_add_tls_sni_cert_files`, from PEM text in memory (`chain`:
/// certificates, leaf first; `key`: the private key). The bytes are copied.
/// NULL `options`, `server_name`, `chain` or `key`: WSFFI_STATUS_ERR_NULL_PARAMETER;
/// `out_err` may be NULL, a detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_add_tls_sni_cert_pem(
    options: *mut wsffi_listener_options,
    server_name: *const c_char,
    chain: *const u8,
    chain_len: usize,
    key: *const u8,
    key_len: usize,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    // SAFETY: NULL or readable buffers of the given lengths.
    add_sni(options, server_name, out_err, || unsafe { pair_from_pem(chain, chain_len, key, key_len) })
}

/// As `wsffi_listener_options_add_tls_sni_cert_files`, from DER in memory: one
/// certificate and its private key (PKCS#8, PKCS#1 or SEC1). The bytes are copied.
/// NULL `options`, `server_name`, `cert` or `key`: WSFFI_STATUS_ERR_NULL_PARAMETER;
/// `out_err` may be NULL, a detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_add_tls_sni_cert_der(
    options: *mut wsffi_listener_options,
    server_name: *const c_char,
    cert: *const u8,
    cert_len: usize,
    key: *const u8,
    key_len: usize,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    // SAFETY: NULL or readable buffers of the given lengths.
    add_sni(options, server_name, out_err, || unsafe { pair_from_der(cert, cert_len, key, key_len) })
}

/// ALPN protocol names from a C array.
///
/// # Safety
/// `protocols` is NULL or points to `count` pointers, each NULL or NUL-terminated.
unsafe fn alpn_arg(protocols: *const *const c_char, count: usize) -> Result<Vec<Vec<u8>>, (Status, String)> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if protocols.is_null() {
        return Err((Status::ErrNullParameter, "TLS: NULL ALPN protocol list".into()));
    }
    // SAFETY: `count` readable pointers, per the caller's contract.
    let items = unsafe { std::slice::from_raw_parts(protocols, count) };
    let mut names: Vec<&[u8]> = Vec::with_capacity(count);
    for &p in items {
        if p.is_null() {
            return Err((Status::ErrNullParameter, "TLS: NULL ALPN protocol name".into()));
        }
        // SAFETY: NUL-terminated, per the caller's contract.
        names.push(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes());
    }
    tls::alpn_list(&names).map_err(|m| (Status::ErrInvalidParameter, m))
}

/// The ALPN protocols the listener accepts, in order of preference (the server's order
/// decides): `count` NUL-terminated names ("http/1.1", "x-chat/2"; 1 to 255 bytes each, no
/// duplicates, at most 64), copied. Default: "http/1.1". A client that offers ALPN but none
/// of these fails the handshake (alert no_application_protocol; `on_client_error` gets
/// `WSFFI_STATUS_ERR_TLS` "TLS: no common ALPN protocol"); a client that offers no ALPN is
/// served without one. `count` 0 accepts no ALPN at all (clients' offers are ignored). The
/// agreed protocol is `wsffi_request_tls_alpn` and `wsffi_tls_alpn`. Setting ALPN without
/// any certificate makes `wsffi_listen` fail with `WSFFI_STATUS_ERR_TLS`.
/// NULL `options`, or NULL `protocols` (or a NULL name) with `count` > 0:
/// WSFFI_STATUS_ERR_NULL_PARAMETER; a bad name: WSFFI_STATUS_ERR_INVALID_PARAMETER (the
/// options are unchanged); `out_err` may be NULL, a detail stored there is the caller's
/// (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_tls_alpn(
    options: *mut wsffi_listener_options,
    protocols: *const *const c_char,
    count: usize,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        // SAFETY: per this function's contract.
        o.config.tls.alpn = Some(unsafe { alpn_arg(protocols, count) }?);
        Ok(())
    })
}

/// Verifies client certificates against the CAs of the PEM file `path` (mutual TLS).
/// `required`: clients without a valid certificate fail the TLS handshake; otherwise a
/// client may present none, but one it presents must be valid. The subject of an
/// accepted certificate is `wsffi_request_tls_subject`.
/// NULL `options` or `path`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a
/// detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_options_set_tls_client_ca_file(
    options: *mut wsffi_listener_options,
    path: *const c_char,
    required: bool,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    with_tls(options, out_err, |o| {
        let path = path_arg(path)?;
        let certs = tls::certs_from_file(path).map_err(tls_error)?;
        o.config.tls.client_ca = Some((certs, path.to_string(), required));
        Ok(())
    })
}

// ---- a running listener ------------------------------------------------------------------

/// Replaces the certificates of a running TLS listener with those of `options`: its
/// default certificate (`wsffi_listener_options_set_tls_cert_*`) and its certificates for
/// server names (`wsffi_listener_options_add_tls_sni_cert_*`), all at once; the other
/// settings in `options` (client CAs, ALPN, timeouts) are not used. Handshakes that start
/// afterwards present the new certificates and sessions from before are not resumed; open
/// connections (and handshakes past choosing a certificate) keep theirs. Callable from any
/// thread, also from callbacks. `options` stays the caller's and may be freed at once.
/// Material is checked when set on `options`, so bad files fail there; this call fails
/// with `WSFFI_STATUS_ERR_TLS` when `options` holds no certificate or the listener does not
/// serve TLS, `WSFFI_STATUS_ERR_CLOSED` once the listener or its reactor stopped; on
/// any error the listener keeps its certificates.
/// NULL `listener` or `options`: WSFFI_STATUS_ERR_NULL_PARAMETER; `out_err` may be NULL, a
/// detail stored there is the caller's (`wsffi_error_free`).
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_listener_set_tls_certificates(
    listener: *mut ListenerHandle,
    options: *const wsffi_listener_options,
    out_err: *mut *mut wsffi_error,
) -> wsffi_status {
    status_boundary!({
        // SAFETY: NULL or a live listener, NULL or live options.
        let (listener, options) = unsafe { (peek(listener.cast_const()), peek(options)) };
        let (Some(listener), Some(options)) = (listener, options) else {
            return Err(Status::ErrNullParameter);
        };
        listener
            .replace_tls_certificates(&options.config.tls)
            // SAFETY: out_err is NULL or writable.
            .map_err(|(e, m)| unsafe { report(out_err, e.into(), m) })
    })
}

// ---- views ------------------------------------------------------------------------------

/// Subject of the client's TLS certificate as an RFC 4514 string ("CN=client,O=Example"),
/// "" when the connection has no client certificate (or is not TLS), NULL for a NULL view.
/// The string belongs to the view and lives as long as it.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_tls_subject(req: *const RequestView) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { unsafe { peek(req) }.map_or(null(), |r| r.tls_subject.as_ptr()) })
}

/// The ALPN protocol agreed on with the client ("http/1.1" by default), "" without TLS or
/// when none was agreed, NULL for a NULL view. The string belongs to the view and lives as
/// long as it.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_tls_alpn(req: *const RequestView) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { unsafe { peek(req) }.map_or(null(), |r| r.tls_alpn.as_ptr()) })
}

/// The server name the client asked for with SNI, as sent (it chose the certificate; see
/// `wsffi_listener_options_add_tls_sni_cert_files`), "" without TLS or when the client sent
/// none, NULL for a NULL view. The string belongs to the view and lives as long as it.
#[unsafe(no_mangle)]
pub extern "C" fn wsffi_request_tls_server_name(req: *const RequestView) -> *const c_char {
    // SAFETY: NULL or a live request view.
    boundary!(null(), { unsafe { peek(req) }.map_or(null(), |r| r.tls_server_name.as_ptr()) })
}
