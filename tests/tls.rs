//! TLS through the C API: wss:// clients against TLS listeners, mutual TLS, and each
//! failure (unknown CA, wrong host, expired, plain and TLS on the wrong port) with its
//! status and message. Certificates are generated for each run.

#[path = "support/certs.rs"]
mod certs;

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::PathBuf;
use std::ptr::{null, null_mut};
use std::sync::{Mutex, OnceLock};

use wsffi::ffi::callbacks::*;
use wsffi::ffi::close_info::wsffi_close_info;
use wsffi::ffi::conn::*;
use wsffi::ffi::options::*;
use wsffi::ffi::reactor::*;
use wsffi::ffi::server::*;
use wsffi::ffi::status::wsffi_status as S;
use wsffi::ffi::tls_options::*;
use wsffi::reactor::conn::ConnHandle;
use wsffi::reactor::server::{ListenerHandle, RequestView, ServerHandle};

// ---- certificates ---------------------------------------------------------------------------

struct Material {
    pki: certs::TestPki,
    dir: PathBuf,
}

fn material() -> &'static Material {
    static M: OnceLock<Material> = OnceLock::new();
    M.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("wsffi-tls-test-{}", std::process::id()));
        let pki = certs::generate();
        pki.write(&dir).expect("write certificates");
        Material { pki, dir }
    })
}

fn file(name: &str) -> CString {
    CString::new(material().dir.join(name).to_str().unwrap()).unwrap()
}

// ---- event log ----------------------------------------------------------------------------

#[path = "support/log.rs"]
mod event_log;
use event_log::Log;

fn log(user: *mut c_void) -> &'static Log {
    Log::of(user)
}

fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

unsafe extern "C" fn on_open(user: *mut c_void, _c: *mut ConnHandle) {
    log(user).push("open".into());
}

unsafe extern "C" fn on_message(user: *mut c_void, _c: *mut ConnHandle, kind: u32, data: *const u8, len: usize) {
    // SAFETY: the library passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) };
    if len <= 64 {
        log(user).push(format!("message {kind} {}", String::from_utf8_lossy(bytes)));
    } else {
        log(user).push(format!("message {kind} len={len} sum={:x}", checksum(bytes)));
    }
}

unsafe extern "C" fn on_close(user: *mut c_void, _c: *mut ConnHandle, info: *const wsffi_close_info) {
    // SAFETY: the library passes a valid info for the call.
    let info = unsafe { &*info };
    log(user).push(format!("close {} {}", info.code, info.was_clean));
}

unsafe extern "C" fn on_error(user: *mut c_void, _c: *mut ConnHandle, status: S, message: *const c_char) {
    // SAFETY: NUL-terminated message from the library.
    let m = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    log(user).push(format!("error {status:?} {m}"));
}

unsafe extern "C" fn echo(_user: *mut c_void, c: *mut ConnHandle, kind: u32, data: *const u8, len: usize) {
    assert_eq!(wsffi_send(c, kind, data, len), S::Ok);
}

unsafe extern "C" fn server_connection(
    user: *mut c_void,
    _s: *mut ServerHandle,
    c: *mut ConnHandle,
    r: *const RequestView,
) {
    // SAFETY: a live view with a NUL-terminated subject.
    let subject = unsafe { CStr::from_ptr(wsffi_request_tls_subject(r)) }.to_string_lossy().into_owned();
    log(user).push(format!("connection [{subject}]"));
    let cbs = wsffi_conn_callbacks { on_message: Some(echo), ..Default::default() };
    assert_eq!(wsffi_conn_set_callbacks(c, &cbs, null_mut(), None), S::Ok);
}

unsafe extern "C" fn server_client_error(user: *mut c_void, _s: *mut ServerHandle, status: S, message: *const c_char) {
    // SAFETY: NUL-terminated message from the library.
    let m = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    log(user).push(format!("client_error {status:?} {m}"));
}

// ---- fixtures -----------------------------------------------------------------------------

struct Fixture {
    reactor: *mut wsffi_reactor,
    listener: *mut ListenerHandle,
    server: *mut ServerHandle,
    port: u16,
    events: &'static Log,
}

/// A reactor with an echo server at /echo on a listener configured by `setup`.
fn serve(setup: impl FnOnce(*mut wsffi_listener_options)) -> Fixture {
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let opts = wsffi_listener_options_new();
    setup(opts);
    let mut listener = null_mut();
    let mut err = null_mut();
    let s = wsffi_listen(reactor, c"127.0.0.1:0".as_ptr(), opts, &mut listener, &mut err);
    assert_eq!(s, S::Ok, "listen: {}", error_text(err));
    wsffi_listener_options_free(opts);
    let events = Log::new();
    let scbs = wsffi_server_callbacks {
        on_connection: Some(server_connection),
        on_client_error: Some(server_client_error),
        ..Default::default()
    };
    let mut server = null_mut();
    let s = wsffi_server_attach(
        reactor,
        listener,
        c"/echo".as_ptr(),
        null(),
        &scbs,
        events.ptr(),
        None,
        &mut server,
        null_mut(),
    );
    assert_eq!(s, S::Ok);
    let port = wsffi_listener_port(listener);
    Fixture { reactor, listener, server, port, events }
}

fn serve_files(cert: &str, key: &str) -> Fixture {
    serve(|o| {
        let mut err = null_mut();
        let s = wsffi_listener_options_set_tls_cert_files(o, file(cert).as_ptr(), file(key).as_ptr(), &mut err);
        assert_eq!(s, S::Ok, "{}", error_text(err));
    })
}

fn stop(f: Fixture) {
    assert_eq!(wsffi_server_close(f.server), S::Ok);
    assert_eq!(wsffi_listener_close(f.listener), S::Ok);
    assert_eq!(wsffi_reactor_free(f.reactor), S::Ok);
}

/// Takes the message of an error detail and frees it ("" for none).
fn error_text(err: *mut wsffi::ffi::boundary::wsffi_error) -> String {
    if err.is_null() {
        return String::new();
    }
    // SAFETY: a live error detail with a NUL-terminated message.
    let m = unsafe { CStr::from_ptr(wsffi_error_message(err)) }.to_string_lossy().into_owned();
    wsffi_error_free(err);
    m
}

fn trust_ca(o: *mut wsffi_client_options) {
    let mut err = null_mut();
    let s = wsffi_client_options_set_tls_ca_file(o, file("ca.pem").as_ptr(), &mut err);
    assert_eq!(s, S::Ok, "{}", error_text(err));
}

/// Connects with client options made by `setup`; events go to the returned log.
fn connect(f: &Fixture, url: &str, setup: impl FnOnce(*mut wsffi_client_options)) -> (*mut ConnHandle, &'static Log) {
    let opts = wsffi_client_options_new();
    setup(opts);
    let events = Log::new();
    let cbs = wsffi_conn_callbacks {
        on_open: Some(on_open),
        on_message: Some(on_message),
        on_close: Some(on_close),
        on_error: Some(on_error),
        ..Default::default()
    };
    let url = CString::new(url.replace("PORT", &f.port.to_string())).unwrap();
    let mut conn = null_mut();
    let mut err = null_mut();
    let s = wsffi_connect(f.reactor, url.as_ptr(), opts, &cbs, events.ptr(), None, &mut conn, &mut err);
    assert_eq!(s, S::Ok, "connect: {}", error_text(err));
    wsffi_client_options_free(opts);
    (conn, events)
}

/// The client opens, echoes a text message, and closes cleanly.
fn assert_echo(conn: *mut ConnHandle, events: &'static Log) {
    events.wait_for(|ev| ev.iter().any(|e| e == "open") || ev.iter().any(|e| e.starts_with("close")));
    assert_eq!(wsffi_send_text(conn, c"ping".as_ptr(), 4), S::Ok, "events: {:?}", events.snapshot());
    events.wait_event("message 1 ping");
    assert_eq!(wsffi_close(conn, 1000, null(), 0), S::Ok);
    assert_eq!(events.wait_event("close"), "close 1000 true");
    wsffi_conn_release(conn);
}

/// The client fails with `status`: error (message containing `text`) then close 1006.
fn assert_fails(events: &'static Log, status: S, text: &str) {
    let ev = events.wait_for(|ev| ev.iter().any(|e| e.starts_with("close")));
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev[0].starts_with(&format!("error {status:?} ")), "{ev:?}");
    assert!(ev[0].contains(text), "expected {text:?} in {ev:?}");
    assert_eq!(ev[1], "close 1006 false");
}

// ---- tests --------------------------------------------------------------------------------

#[test]
fn echo_of_text_binary_and_a_mebibyte_over_tls() {
    let f = serve_files("server.pem", "server.key");
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    events.wait_event("open");
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(wsffi_send_text(conn, c"héllo".as_ptr(), "héllo".len()), S::Ok);
    assert_eq!(wsffi_send_binary(conn, b"\x01\x02".as_ptr(), 2), S::Ok);
    assert_eq!(wsffi_send_binary(conn, big.as_ptr(), big.len()), S::Ok);
    assert_eq!(wsffi_send_text(conn, c"after".as_ptr(), 5), S::Ok);
    let ev = events.wait_for(|ev| ev.iter().filter(|e| e.starts_with("message")).count() == 4);
    let expected_big = format!("message 2 len={} sum={:x}", big.len(), checksum(&big));
    assert_eq!(
        ev[1..],
        ["message 1 héllo".to_string(), "message 2 \u{1}\u{2}".into(), expected_big, "message 1 after".into()]
    );
    assert_eq!(f.events.wait_event("connection"), "connection []", "no client certificate");
    assert_eq!(wsffi_close(conn, 4001, null(), 0), S::Ok);
    assert_eq!(events.wait_event("close"), "close 4001 true");
    wsffi_conn_release(conn);
    stop(f);
}

#[test]
fn many_large_messages_in_both_directions_keep_their_order() {
    let f = serve_files("server.pem", "server.key");
    let (conn, events) = connect(&f, "wss://127.0.0.1:PORT/echo", trust_ca);
    events.wait_event("open");
    let mut expected = Vec::new();
    for i in 0..20u32 {
        let msg: Vec<u8> = (0..300_000u32).map(|j| (j.wrapping_mul(i + 3) % 253) as u8).collect();
        expected.push(format!("message 2 len={} sum={:x}", msg.len(), checksum(&msg)));
        assert_eq!(wsffi_send_binary(conn, msg.as_ptr(), msg.len()), S::Ok);
    }
    let ev = events.wait_for(|ev| ev.iter().filter(|e| e.starts_with("message")).count() == 20);
    assert_eq!(ev[1..], expected[..]);
    assert_eq!(wsffi_close(conn, 1000, null(), 0), S::Ok);
    assert_eq!(events.wait_event("close"), "close 1000 true");
    wsffi_conn_release(conn);
    stop(f);
}

#[test]
fn the_server_closes_first_after_the_client_sends_close_over_tls() {
    // The server side sends the close frame, then close_notify, then closes TCP; the client
    // sees a clean close.
    let f = serve_files("server.pem", "server.key");
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    assert_echo(conn, events);
    stop(f);
}

#[test]
fn mutual_tls_accepts_a_client_certificate_and_shows_its_subject() {
    let f = serve(|o| {
        assert_eq!(
            wsffi_listener_options_set_tls_cert_files(
                o,
                file("server.pem").as_ptr(),
                file("server.key").as_ptr(),
                null_mut()
            ),
            S::Ok
        );
        assert_eq!(
            wsffi_listener_options_set_tls_client_ca_file(o, file("client-ca.pem").as_ptr(), true, null_mut()),
            S::Ok
        );
    });
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", |o| {
        trust_ca(o);
        let mut err = null_mut();
        let s = wsffi_client_options_set_tls_client_cert(
            o,
            file("client.pem").as_ptr(),
            file("client.key").as_ptr(),
            &mut err,
        );
        assert_eq!(s, S::Ok, "{}", error_text(err));
    });
    assert_echo(conn, events);
    assert_eq!(f.events.wait_event("connection"), "connection [CN=client,O=Example]");
    stop(f);
}

#[test]
fn mutual_tls_rejects_a_client_without_a_certificate() {
    let f = serve(|o| {
        assert_eq!(
            wsffi_listener_options_set_tls_cert_files(
                o,
                file("server.pem").as_ptr(),
                file("server.key").as_ptr(),
                null_mut()
            ),
            S::Ok
        );
        assert_eq!(
            wsffi_listener_options_set_tls_client_ca_file(o, file("client-ca.pem").as_ptr(), true, null_mut()),
            S::Ok
        );
    });
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    assert_fails(events, S::ErrTls, "TLS: ");
    assert_eq!(
        f.events.wait_event("client_error"),
        "client_error ErrTls TLS: client certificate required but none was presented"
    );
    wsffi_conn_release(conn);
    // A client certificate from another CA is refused too.
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", |o| {
        trust_ca(o);
        assert_eq!(
            wsffi_client_options_set_tls_client_cert(
                o,
                file("stranger.pem").as_ptr(),
                file("stranger.key").as_ptr(),
                null_mut()
            ),
            S::Ok
        );
    });
    assert_fails(events, S::ErrTls, "TLS: ");
    let ev = f.events.wait_for(|ev| ev.iter().filter(|e| e.starts_with("client_error")).count() == 2);
    assert!(ev.iter().any(|e| e == "client_error ErrTls TLS: invalid certificate: unknown issuer"), "{ev:?}");
    wsffi_conn_release(conn);
    stop(f);
}

#[test]
fn optional_client_certificates_let_clients_without_one_in() {
    let f = serve(|o| {
        assert_eq!(
            wsffi_listener_options_set_tls_cert_files(
                o,
                file("server.pem").as_ptr(),
                file("server.key").as_ptr(),
                null_mut()
            ),
            S::Ok
        );
        assert_eq!(
            wsffi_listener_options_set_tls_client_ca_file(o, file("client-ca.pem").as_ptr(), false, null_mut()),
            S::Ok
        );
    });
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    assert_echo(conn, events);
    assert_eq!(f.events.wait_event("connection"), "connection []");
    stop(f);
}

#[test]
fn an_unknown_issuer_fails_and_the_server_keeps_serving() {
    let f = serve_files("other-server.pem", "other-server.key");
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    assert_fails(events, S::ErrTls, "TLS: invalid certificate: unknown issuer");
    wsffi_conn_release(conn);
    assert!(f.events.wait_event("client_error").starts_with("client_error ErrTls TLS: peer sent alert"));
    // Others are still served: a client that trusts that CA gets through.
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", |o| {
        assert_eq!(wsffi_client_options_set_tls_ca_file(o, file("other-ca.pem").as_ptr(), null_mut()), S::Ok);
    });
    assert_echo(conn, events);
    stop(f);
}

#[test]
fn the_system_roots_are_the_default_trust() {
    // The test CA is in no system store, so a client with default options refuses it.
    let f = serve_files("server.pem", "server.key");
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", |_| {});
    assert_fails(events, S::ErrTls, "TLS: invalid certificate: unknown issuer");
    wsffi_conn_release(conn);
    stop(f);
}

#[test]
fn a_certificate_for_another_host_fails() {
    let f = serve_files("wrong-host.pem", "wrong-host.key");
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    assert_fails(events, S::ErrTls, "TLS: certificate not valid for name \"localhost\"");
    wsffi_conn_release(conn);
    stop(f);
}

#[test]
fn an_expired_certificate_fails() {
    let f = serve_files("expired.pem", "expired.key");
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    assert_fails(events, S::ErrTls, "TLS: invalid certificate: expired");
    wsffi_conn_release(conn);
    stop(f);
}

#[test]
fn a_plain_client_on_a_tls_port_fails_on_both_sides() {
    let f = serve_files("server.pem", "server.key");
    let (conn, events) = connect(&f, "ws://127.0.0.1:PORT/echo", |_| {});
    let ev = events.wait_for(|ev| ev.iter().any(|e| e.starts_with("close")));
    assert!(ev[0].starts_with("error ErrHandshake "), "{ev:?}");
    assert_eq!(ev[1], "close 1006 false");
    assert_eq!(
        f.events.wait_event("client_error"),
        "client_error ErrTls TLS: peer sent non-TLS data (plain HTTP on a TLS port?)"
    );
    wsffi_conn_release(conn);
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    assert_echo(conn, events);
    stop(f);
}

#[test]
fn a_tls_client_on_a_plain_port_fails_on_both_sides() {
    let f = serve(|_| {});
    let (conn, events) = connect(&f, "wss://127.0.0.1:PORT/echo", trust_ca);
    assert_fails(events, S::ErrTls, "TLS: server sent non-TLS data (a plain ws:// port?)");
    assert_eq!(
        f.events.wait_event("client_error"),
        "client_error ErrHandshake TLS handshake on a plain port (a wss:// client on a ws:// listener?)"
    );
    wsffi_conn_release(conn);
    let (conn, events) = connect(&f, "ws://127.0.0.1:PORT/echo", |_| {});
    assert_echo(conn, events);
    stop(f);
}

#[test]
fn the_server_name_override_is_sent_and_verified() {
    let f = serve_files("sni.pem", "sni.key");
    let (conn, events) = connect(&f, "wss://127.0.0.1:PORT/echo", trust_ca);
    assert_fails(events, S::ErrTls, "TLS: certificate not valid for name \"127.0.0.1\"");
    wsffi_conn_release(conn);
    let (conn, events) = connect(&f, "wss://127.0.0.1:PORT/echo", |o| {
        trust_ca(o);
        assert_eq!(wsffi_client_options_set_tls_server_name(o, c"wsffi.test".as_ptr()), S::Ok);
    });
    assert_echo(conn, events);
    stop(f);
}

#[test]
fn insecure_skips_verification() {
    let f = serve_files("expired.pem", "expired.key");
    let (conn, events) = connect(&f, "wss://127.0.0.1:PORT/echo", |o| {
        assert_eq!(wsffi_client_options_set_tls_insecure(o, true), S::Ok);
    });
    assert_echo(conn, events);
    stop(f);
}

#[test]
fn certificates_from_memory_in_pem_and_der() {
    let pki = &material().pki;
    let f = serve(|o| {
        let (c, k) = (&pki.server.cert_pem, &pki.server.key_pem);
        assert_eq!(
            wsffi_listener_options_set_tls_cert_pem(o, c.as_ptr(), c.len(), k.as_ptr(), k.len(), null_mut()),
            S::Ok
        );
    });
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    assert_echo(conn, events);
    stop(f);
    let f = serve(|o| {
        let (c, k) = (&pki.server.cert_der, &pki.server.key_der);
        assert_eq!(
            wsffi_listener_options_set_tls_cert_der(o, c.as_ptr(), c.len(), k.as_ptr(), k.len(), null_mut()),
            S::Ok
        );
    });
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", |o| {
        let mut err = null_mut();
        let dir = CString::new(material().dir.to_str().unwrap()).unwrap();
        // The directory holds every test CA; the server's is among them.
        assert_eq!(wsffi_client_options_set_tls_ca_dir(o, dir.as_ptr(), &mut err), S::Ok, "{}", error_text(err));
    });
    assert_echo(conn, events);
    stop(f);
}

#[test]
fn unusable_material_is_refused_with_a_sentence() {
    let o = wsffi_listener_options_new();
    let mut err = null_mut();
    let missing = c"/nonexistent/wsffi/cert.pem";
    assert_eq!(
        wsffi_listener_options_set_tls_cert_files(o, missing.as_ptr(), file("server.key").as_ptr(), &mut err),
        S::ErrTls
    );
    assert_eq!(wsffi_error_status(err), S::ErrTls);
    let m = error_text(err);
    assert!(m.starts_with("TLS: cannot read certificate file /nonexistent/wsffi/cert.pem: "), "{m}");
    let mut err = null_mut();
    // A key file where the certificate should be.
    assert_eq!(
        wsffi_listener_options_set_tls_cert_files(
            o,
            file("server.key").as_ptr(),
            file("server.key").as_ptr(),
            &mut err
        ),
        S::ErrTls
    );
    assert!(error_text(err).starts_with("TLS: no PEM certificate in "));
    let mut err = null_mut();
    assert_eq!(
        wsffi_listener_options_set_tls_cert_files(
            o,
            file("server.pem").as_ptr(),
            file("server.pem").as_ptr(),
            &mut err
        ),
        S::ErrTls
    );
    assert!(error_text(err).starts_with("TLS: no PEM private key in "));
    let mut err = null_mut();
    assert_eq!(
        wsffi_listener_options_set_tls_cert_pem(o, b"junk".as_ptr(), 4, b"junk".as_ptr(), 4, &mut err),
        S::ErrTls
    );
    assert_eq!(error_text(err), "TLS: no PEM certificate in the certificate PEM");
    let mut err = null_mut();
    assert_eq!(
        wsffi_listener_options_set_tls_cert_der(o, b"junk".as_ptr(), 4, b"junk".as_ptr(), 4, &mut err),
        S::ErrTls
    );
    assert_eq!(error_text(err), "TLS: the DER certificate is not a valid X.509 certificate");
    assert_eq!(wsffi_listener_options_set_tls_cert_files(o, null(), null(), null_mut()), S::ErrNullParameter);
    assert_eq!(wsffi_listener_options_set_tls_cert_files(null_mut(), null(), null(), null_mut()), S::ErrNullParameter);

    // A key of another certificate, from files, PEM and DER.
    let mut err = null_mut();
    assert_eq!(
        wsffi_listener_options_set_tls_cert_files(
            o,
            file("server.pem").as_ptr(),
            file("client.key").as_ptr(),
            &mut err
        ),
        S::ErrTls
    );
    assert_eq!(error_text(err), "TLS: the private key does not belong to the certificate");
    let pki = &material().pki;
    let (c, k) = (&pki.server.cert_pem, &pki.client.key_pem);
    assert_eq!(
        wsffi_listener_options_set_tls_cert_pem(o, c.as_ptr(), c.len(), k.as_ptr(), k.len(), null_mut()),
        S::ErrTls
    );
    let (c, k) = (&pki.server.cert_der, &pki.client.key_der);
    assert_eq!(
        wsffi_listener_options_set_tls_cert_der(o, c.as_ptr(), c.len(), k.as_ptr(), k.len(), null_mut()),
        S::ErrTls
    );
    wsffi_listener_options_free(o);
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let mut listener = null_mut();
    // Client CAs without a certificate.
    let o = wsffi_listener_options_new();
    assert_eq!(
        wsffi_listener_options_set_tls_client_ca_file(o, file("client-ca.pem").as_ptr(), true, null_mut()),
        S::Ok
    );
    let mut err = null_mut();
    assert_eq!(wsffi_listen(reactor, c"127.0.0.1:0".as_ptr(), o, &mut listener, &mut err), S::ErrTls);
    assert_eq!(error_text(err), "TLS: a client CA was set but no server certificate and key");
    wsffi_listener_options_free(o);

    let c = wsffi_client_options_new();
    let mut err = null_mut();
    assert_eq!(wsffi_client_options_set_tls_ca_file(c, missing.as_ptr(), &mut err), S::ErrTls);
    assert!(error_text(err).starts_with("TLS: cannot read certificate file "));
    let mut err = null_mut();
    assert_eq!(wsffi_client_options_set_tls_ca_dir(c, c"/nonexistent/wsffi".as_ptr(), &mut err), S::ErrTls);
    assert!(error_text(err).starts_with("TLS: cannot read CA directory /nonexistent/wsffi: "));
    let mut err = null_mut();
    assert_eq!(
        wsffi_client_options_set_tls_client_cert(c, file("client.pem").as_ptr(), missing.as_ptr(), &mut err),
        S::ErrTls
    );
    assert!(error_text(err).starts_with("TLS: cannot read key file "));
    let mut err = null_mut();
    assert_eq!(
        wsffi_client_options_set_tls_client_cert(c, file("client.pem").as_ptr(), file("server.key").as_ptr(), &mut err),
        S::ErrTls
    );
    assert_eq!(error_text(err), "TLS: the private key does not belong to the certificate");
    assert_eq!(wsffi_client_options_set_tls_server_name(c, c"not a name!".as_ptr()), S::ErrInvalidParameter);
    assert_eq!(wsffi_client_options_set_tls_server_name(c, c"::1".as_ptr()), S::Ok);
    assert_eq!(wsffi_client_options_set_tls_server_name(c, null()), S::Ok);
    assert_eq!(wsffi_client_options_set_tls_insecure(null_mut(), true), S::ErrNullParameter);
    wsffi_client_options_free(c);
    assert_eq!(wsffi_reactor_free(reactor), S::Ok);
}

#[test]
fn the_handshake_timeout_covers_tls() {
    // A TCP server that accepts and never answers the ClientHello.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    let f = Fixture { reactor: null_mut(), listener: null_mut(), server: null_mut(), port, events: Log::new() };
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let f = Fixture { reactor, ..f };
    let (conn, events) = connect(&f, "wss://127.0.0.1:PORT/", |o| {
        trust_ca(o);
        assert_eq!(wsffi_client_options_set_handshake_timeout_ms(o, 300), S::Ok);
    });
    let _peer = socket.accept().unwrap();
    assert_fails(events, S::ErrTimeout, "opening handshake timed out");
    wsffi_conn_release(conn);
    assert_eq!(wsffi_reactor_free(f.reactor), S::Ok);
}

unsafe extern "C" fn on_unexpected(
    user: *mut c_void,
    _c: *mut ConnHandle,
    resp: *const wsffi::reactor::server::ResponseView,
) {
    // SAFETY: a live response view.
    let r = unsafe { &*resp };
    log(user).push(format!("response {} {}", r.status, String::from_utf8_lossy(&r.body).trim_end()));
}

#[test]
fn a_refusal_travels_over_tls() {
    let f = serve_files("server.pem", "server.key");
    let opts = wsffi_client_options_new();
    trust_ca(opts);
    let events = Log::new();
    let cbs = wsffi_conn_callbacks {
        on_open: Some(on_open),
        on_close: Some(on_close),
        on_error: Some(on_error),
        on_unexpected_response: Some(on_unexpected),
        ..Default::default()
    };
    let url = CString::new(format!("wss://localhost:{}/nowhere", f.port)).unwrap();
    let mut conn = null_mut();
    assert_eq!(wsffi_connect(f.reactor, url.as_ptr(), opts, &cbs, events.ptr(), None, &mut conn, null_mut()), S::Ok);
    wsffi_client_options_free(opts);
    let ev = events.wait_for(|ev| ev.iter().any(|e| e.starts_with("close")));
    assert_eq!(ev[0], "response 404 no WebSocket server at this path");
    assert!(ev[1].starts_with("error ErrHandshakeRejected "), "{ev:?}");
    assert_eq!(ev[2], "close 1006 false");
    wsffi_conn_release(conn);
    stop(f);
}

#[test]
fn closing_the_server_closes_tls_clients_cleanly() {
    let f = serve_files("server.pem", "server.key");
    let (conn, events) = connect(&f, "wss://localhost:PORT/echo", trust_ca);
    events.wait_event("open");
    assert_eq!(wsffi_send_text(conn, c"x".as_ptr(), 1), S::Ok);
    events.wait_event("message 1 x");
    assert_eq!(wsffi_server_close(f.server), S::Ok);
    assert_eq!(events.wait_event("close"), "close 1001 true");
    wsffi_conn_release(conn);
    assert_eq!(wsffi_listener_close(f.listener), S::Ok);
    assert_eq!(wsffi_reactor_free(f.reactor), S::Ok);
}

const FLOOD_SIZE: usize = 64 * 1024;
const FLOOD_TOTAL: usize = 48 * 1024 * 1024 / FLOOD_SIZE;
static FLOOD_SENT: Mutex<usize> = Mutex::new(0);

/// On the reactor thread: sends 64 KiB messages until the high-water mark refuses one or
/// FLOOD_TOTAL went out; `on_drain` goes on.
unsafe extern "C" fn flood(user: *mut c_void, c: *mut ConnHandle, _kind: u32, _data: *const u8, _len: usize) {
    let payload = vec![b'q'; FLOOD_SIZE];
    let mut sent = FLOOD_SENT.lock().unwrap();
    while *sent < FLOOD_TOTAL {
        match wsffi_send_binary(c, payload.as_ptr(), FLOOD_SIZE) {
            S::Ok => *sent += 1,
            S::ErrBackpressure => {
                log(user).push(format!("held {}", wsffi_buffered_amount(c)));
                return;
            }
            other => panic!("send: {other:?}"),
        }
    }
}

unsafe extern "C" fn on_drain(user: *mut c_void, c: *mut ConnHandle) {
    log(user).push("drain".into());
    // SAFETY: as for any callback.
    unsafe { flood(user, c, 2, null(), 0) };
}

unsafe extern "C" fn flood_connection(
    user: *mut c_void,
    _s: *mut ServerHandle,
    c: *mut ConnHandle,
    _r: *const RequestView,
) {
    let cbs = wsffi_conn_callbacks { on_drain: Some(on_drain), on_message: Some(flood), ..Default::default() };
    assert_eq!(wsffi_conn_set_callbacks(c, &cbs, user, None), S::Ok);
}

unsafe extern "C" fn pause_on_open(user: *mut c_void, c: *mut ConnHandle) {
    assert_eq!(wsffi_conn_pause(c), S::Ok);
    log(user).push("open".into());
}

/// Flow control is the same over TLS: a sender is held at its high-water mark (refused
/// sends, buffered amount bounded), `on_drain` lets it go on, and 48 MiB arrive in order.
#[test]
fn flow_control_over_tls_holds_the_sender_at_the_high_water_mark() {
    const HIGH: usize = 1 << 20;
    const SIZE: usize = FLOOD_SIZE;
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let lo = wsffi_listener_options_new();
    assert_eq!(
        wsffi_listener_options_set_tls_cert_files(
            lo,
            file("server.pem").as_ptr(),
            file("server.key").as_ptr(),
            null_mut()
        ),
        S::Ok
    );
    let mut listener = null_mut();
    assert_eq!(wsffi_listen(reactor, c"127.0.0.1:0".as_ptr(), lo, &mut listener, null_mut()), S::Ok);
    wsffi_listener_options_free(lo);
    let so = wsffi_server_options_new();
    assert_eq!(wsffi_server_options_set_water_marks(so, HIGH, HIGH / 4), S::Ok);
    let server_events = Log::new();
    let scbs = wsffi_server_callbacks { on_connection: Some(flood_connection), ..Default::default() };
    let mut server = null_mut();
    let s =
        wsffi_server_attach(reactor, listener, null(), so, &scbs, server_events.ptr(), None, &mut server, null_mut());
    assert_eq!(s, S::Ok);
    wsffi_server_options_free(so);

    let co = wsffi_client_options_new();
    trust_ca(co);
    let events = Log::new();
    let cbs = wsffi_conn_callbacks {
        on_open: Some(pause_on_open),
        on_message: Some(on_message),
        on_close: Some(on_close),
        on_error: Some(on_error),
        ..Default::default()
    };
    let url = CString::new(format!("wss://localhost:{}/", wsffi_listener_port(listener))).unwrap();
    let mut conn = null_mut();
    assert_eq!(wsffi_connect(reactor, url.as_ptr(), co, &cbs, events.ptr(), None, &mut conn, null_mut()), S::Ok);
    wsffi_client_options_free(co);
    events.wait_event("open");
    assert_eq!(wsffi_send_text(conn, c"go".as_ptr(), 2), S::Ok);
    server_events.wait_event("held");
    // The client reads from now on: the server goes on at each drain until all went out.
    assert_eq!(wsffi_conn_resume(conn), S::Ok);
    let payload = vec![b'q'; SIZE];
    let ev = events.wait_for(|ev| ev.iter().filter(|e| e.starts_with("message")).count() == FLOOD_TOTAL);
    let expected = format!("message 2 len={SIZE} sum={:x}", checksum(&payload));
    assert!(ev[1..].iter().all(|e| *e == expected));
    let sev = server_events.snapshot();
    assert!(sev.iter().any(|e| e == "drain"), "{sev:?}");
    for e in sev.iter().filter(|e| e.starts_with("held ")) {
        let buffered: usize = e[5..].parse().unwrap();
        assert!(buffered > HIGH && buffered <= HIGH + SIZE + 16, "{e}");
    }
    assert_eq!(wsffi_close(conn, 1000, null(), 0), S::Ok);
    assert_eq!(events.wait_event("close"), "close 1000 true");
    wsffi_conn_release(conn);
    assert_eq!(wsffi_server_close(server), S::Ok);
    assert_eq!(wsffi_listener_close(listener), S::Ok);
    assert_eq!(wsffi_reactor_free(reactor), S::Ok);
}

#[test]
fn an_ipv6_literal_is_verified_against_the_certificate() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this machine; nothing to test");
        return;
    }
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let lo = wsffi_listener_options_new();
    assert_eq!(
        wsffi_listener_options_set_tls_cert_files(
            lo,
            file("server.pem").as_ptr(),
            file("server.key").as_ptr(),
            null_mut()
        ),
        S::Ok
    );
    let mut listener = null_mut();
    assert_eq!(wsffi_listen(reactor, c"[::1]:0".as_ptr(), lo, &mut listener, null_mut()), S::Ok);
    wsffi_listener_options_free(lo);
    let scbs = wsffi_server_callbacks { on_connection: Some(server_connection), ..Default::default() };
    let events = Log::new();
    let mut server = null_mut();
    assert_eq!(
        wsffi_server_attach(
            reactor,
            listener,
            c"/echo".as_ptr(),
            null(),
            &scbs,
            events.ptr(),
            None,
            &mut server,
            null_mut()
        ),
        S::Ok
    );
    let f = Fixture { reactor, listener, server, port: wsffi_listener_port(listener), events };
    // The certificate names ::1 among its addresses.
    let (conn, client) = connect(&f, "wss://[::1]:PORT/echo", trust_ca);
    assert_echo(conn, client);
    stop(f);
}
