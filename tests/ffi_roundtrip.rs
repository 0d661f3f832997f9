//! The C API called from Rust: a server and a client on one reactor, through the same
//! `extern "C"` functions and callback tables a C program uses.

use std::ffi::{c_char, c_void, CStr};
use std::ptr::{null, null_mut};
use std::sync::Mutex;
use std::time::Duration;

use wsffi::ffi::callbacks::*;
use wsffi::ffi::conn::*;
use wsffi::ffi::options::*;
use wsffi::ffi::reactor::*;
use wsffi::ffi::server::*;
use wsffi::ffi::status::wsffi_status as S;
use wsffi::reactor::conn::ConnHandle;
use wsffi::reactor::server::{HandshakeHandle, ServerHandle};

#[path = "support/log.rs"]
mod event_log;
use event_log::Log;

#[path = "support/close.rs"]
mod close_log;
use close_log::close_line;
use wsffi::ffi::close_info::wsffi_close_info;

fn log(user: *mut c_void) -> &'static Log {
    Log::of(user)
}

unsafe extern "C" fn on_open(user: *mut c_void, _c: *mut ConnHandle) {
    log(user).push("open".into());
}

unsafe extern "C" fn on_message(user: *mut c_void, _c: *mut ConnHandle, kind: u32, data: *const u8, len: usize) {
    // SAFETY: the library passes `len` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data, len) };
    log(user).push(format!("message {kind} {}", String::from_utf8_lossy(bytes)));
}

unsafe extern "C" fn on_close(user: *mut c_void, _c: *mut ConnHandle, info: *const wsffi_close_info) {
    // SAFETY: the info the library passed.
    log(user).push(unsafe { close_line(info) });
}

unsafe extern "C" fn on_error(user: *mut c_void, _c: *mut ConnHandle, status: S, message: *const c_char) {
    // SAFETY: NUL-terminated message from the library.
    let m = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    log(user).push(format!("error {status:?} {m}"));
}

unsafe extern "C" fn echo(_user: *mut c_void, c: *mut ConnHandle, kind: u32, data: *const u8, len: usize) {
    assert_eq!(wsffi_send(c, kind, data, len), S::Ok);
}

unsafe extern "C" fn destroy(user: *mut c_void) {
    log(user).push("destroy".into());
}

unsafe extern "C" fn server_connection(
    _user: *mut c_void,
    _s: *mut ServerHandle,
    c: *mut ConnHandle,
    _r: *const wsffi::reactor::server::RequestView,
) {
    let cbs = wsffi_conn_callbacks { on_message: Some(echo), ..Default::default() };
    assert_eq!(wsffi_conn_set_callbacks(c, &cbs, null_mut(), None), S::Ok);
}

static PENDING: Mutex<usize> = Mutex::new(0);

unsafe extern "C" fn defer_verify(_user: *mut c_void, hs: *mut HandshakeHandle) -> wsffi_verdict {
    *PENDING.lock().unwrap() = hs as usize;
    WSFFI_VERDICT_DEFER
}

fn client_callbacks() -> wsffi_conn_callbacks {
    wsffi_conn_callbacks {
        on_open: Some(on_open),
        on_message: Some(on_message),
        on_close: Some(on_close),
        on_error: Some(on_error),
        ..Default::default()
    }
}

struct Fixture {
    reactor: *mut wsffi_reactor,
    listener: *mut wsffi::reactor::server::ListenerHandle,
    server: *mut ServerHandle,
    port: u16,
}

fn start(verify: wsffi_verify_client_cb) -> Fixture {
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let mut listener = null_mut();
    assert_eq!(wsffi_listen(reactor, c"127.0.0.1:0".as_ptr(), null(), &mut listener, null_mut()), S::Ok);
    let scbs =
        wsffi_server_callbacks { on_connection: Some(server_connection), verify_client: verify, ..Default::default() };
    let mut server = null_mut();
    let s = wsffi_server_attach(
        reactor,
        listener,
        c"/echo".as_ptr(),
        null(),
        &scbs,
        null_mut(),
        None,
        &mut server,
        null_mut(),
    );
    assert_eq!(s, S::Ok);
    let port = wsffi_listener_port(listener);
    assert_ne!(port, 0);
    Fixture { reactor, listener, server, port }
}

fn connect(f: &Fixture, log: &'static Log) -> *mut ConnHandle {
    let url = std::ffi::CString::new(format!("ws://127.0.0.1:{}/echo", f.port)).unwrap();
    let cbs = client_callbacks();
    let mut conn = null_mut();
    let user = log.ptr();
    let s = wsffi_connect(f.reactor, url.as_ptr(), null(), &cbs, user, Some(destroy), &mut conn, null_mut());
    assert_eq!(s, S::Ok);
    conn
}

fn stop(f: Fixture) {
    assert_eq!(wsffi_server_close(f.server), S::Ok);
    assert_eq!(wsffi_listener_close(f.listener), S::Ok);
    assert_eq!(wsffi_reactor_free(f.reactor), S::Ok);
}

#[test]
fn echo_then_close_handshake_from_the_client() {
    let f = start(None);
    let log = Log::new();
    let conn = connect(&f, log);
    log.wait_for(|ev| ev.contains(&"open".to_string()));
    assert_eq!(wsffi_ready_state(conn), WSFFI_OPEN);
    assert_eq!(wsffi_send_text(conn, c"héllo".as_ptr(), "héllo".len()), S::Ok);
    assert_eq!(wsffi_send_binary(conn, b"\x01\x02".as_ptr(), 2), S::Ok);
    assert_eq!(wsffi_send_text(conn, b"\xff".as_ptr().cast(), 1), S::ErrInvalidUtf8);
    log.wait_for(|ev| ev.iter().filter(|e| e.starts_with("message")).count() == 2);
    assert_eq!(wsffi_close(conn, 4001, c"bye".as_ptr(), 3), S::Ok);
    let ev = log.wait_for(|ev| ev.contains(&"destroy".to_string()));
    assert_eq!(
        ev,
        vec![
            "open",
            "message 1 héllo",
            "message 2 \u{1}\u{2}",
            "close 4001 bye true local peer=4001: local=4001:bye",
            "destroy"
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>(),
        "our close decided; the server echoes the code without a reason"
    );
    assert_eq!(wsffi_ready_state(conn), WSFFI_CLOSED);
    assert_eq!(wsffi_send_text(conn, c"late".as_ptr(), 4), S::ErrClosed);
    wsffi_conn_release(conn);
    stop(f);
}

#[test]
fn deferred_verification_is_decided_from_another_thread() {
    let f = start(Some(defer_verify));
    let log = Log::new();
    let conn = connect(&f, log);
    let hs = loop {
        let p = *PENDING.lock().unwrap();
        if p != 0 {
            break p;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(wsffi_ready_state(conn), WSFFI_CONNECTING);
    let decided = std::thread::spawn(move || wsffi::ffi::server::wsffi_handshake_accept(hs as *mut HandshakeHandle));
    assert_eq!(decided.join().unwrap(), S::Ok);
    log.wait_for(|ev| ev.contains(&"open".to_string()));
    assert_eq!(wsffi_reactor_free(f.reactor), S::Ok);
    // Freeing the reactor closed the connection (1001 going away) and ran destroy.
    let ev = log.wait_for(|ev| ev.contains(&"destroy".to_string()));
    assert_eq!(ev.last().map(String::as_str), Some("destroy"));
    assert!(ev.iter().any(|e| e.starts_with("close 1001 reactor shutting down true local peer=1001:")), "{ev:?}");
    wsffi_conn_release(conn);
    // The server and listener handles are still ours to give back.
    wsffi_server_close(f.server);
    wsffi_listener_close(f.listener);
}

#[test]
fn refused_connection_reports_error_then_close() {
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    // Bind then drop a socket to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = std::ffi::CString::new(format!("ws://127.0.0.1:{port}/")).unwrap();
    let log = Log::new();
    let cbs = client_callbacks();
    let mut conn = null_mut();
    let user = log.ptr();
    assert_eq!(wsffi_connect(reactor, url.as_ptr(), null(), &cbs, user, Some(destroy), &mut conn, null_mut()), S::Ok);
    let ev = log.wait_for(|ev| ev.contains(&"destroy".to_string()));
    assert_eq!(ev.len(), 3, "{ev:?}");
    assert!(ev[0].starts_with("error ErrConnectionRefused"), "{ev:?}");
    assert_eq!(ev[1], "close 1006  false none peer=0:NULL local=0:NULL");
    wsffi_conn_release(conn);
    assert_eq!(wsffi_reactor_free(reactor), S::Ok);
}

#[test]
fn bad_arguments_return_statuses() {
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let mut conn = null_mut();
    let mut err = null_mut();
    let s = wsffi_connect(reactor, c"http//nope".as_ptr(), null(), null(), null_mut(), None, &mut conn, &mut err);
    assert_eq!(s, S::ErrInvalidUrl);
    assert!(conn.is_null());
    assert_eq!(wsffi_error_status(err), S::ErrInvalidUrl);
    // SAFETY: the library returns a NUL-terminated message.
    let message = unsafe { CStr::from_ptr(wsffi_error_message(err)) }.to_string_lossy().into_owned();
    assert!(message.contains("http//nope"), "{message}");
    wsffi_error_free(err);
    assert_eq!(
        wsffi_connect(null_mut(), c"ws://x/".as_ptr(), null(), null(), null_mut(), None, &mut conn, null_mut()),
        S::ErrNullParameter
    );
    assert_eq!(wsffi_send(null_mut(), WSFFI_TEXT, null(), 0), S::ErrNullParameter);
    assert_eq!(wsffi_close(null_mut(), 1000, null(), 0), S::ErrNullParameter);
    assert_eq!(wsffi_ready_state(null()), WSFFI_CLOSED);
    let opts = wsffi_client_options_new();
    assert_eq!(wsffi_client_options_add_protocol(opts, c"bad token".as_ptr()), S::ErrInvalidParameter);
    assert_eq!(wsffi_client_options_add_header(opts, c"Host".as_ptr(), c"x".as_ptr()), S::ErrInvalidParameter);
    assert_eq!(wsffi_client_options_set_water_marks(opts, 10, 20), S::ErrInvalidParameter);
    wsffi_client_options_free(opts);
    wsffi_client_options_free(null_mut());
    assert_eq!(wsffi_reactor_free(reactor), S::Ok);
    assert_eq!(wsffi_reactor_free(null_mut()), S::Ok);
}

// ---- flow control --------------------------------------------------------------------

const HIGH: usize = 256 * 1024;
static MAX_BUFFERED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static ECHOED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static DRAINS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

unsafe extern "C" fn paced_echo(_user: *mut c_void, c: *mut ConnHandle, kind: u32, data: *const u8, len: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    if wsffi_send(c, kind, data, len) == S::Ok {
        ECHOED.fetch_add(1, Relaxed);
    }
    let buffered = wsffi_buffered_amount(c);
    MAX_BUFFERED.fetch_max(buffered, Relaxed);
    if buffered > HIGH {
        assert_eq!(wsffi_conn_pause(c), S::Ok);
    }
}

unsafe extern "C" fn paced_drain(_user: *mut c_void, c: *mut ConnHandle) {
    DRAINS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(wsffi_conn_resume(c), S::Ok);
}

unsafe extern "C" fn paced_connection(
    _u: *mut c_void,
    _s: *mut ServerHandle,
    c: *mut ConnHandle,
    _r: *const wsffi::reactor::server::RequestView,
) {
    let cbs = wsffi_conn_callbacks { on_message: Some(paced_echo), on_drain: Some(paced_drain), ..Default::default() };
    assert_eq!(wsffi_conn_set_callbacks(c, &cbs, null_mut(), None), S::Ok);
}

/// A client that sends without reading cannot grow the server's output past the high-water
/// mark plus one message; once it reads, everything it sent comes back.
#[test]
fn a_client_that_does_not_read_is_held_back() {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering::Relaxed;
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let mut listener = null_mut();
    assert_eq!(wsffi_listen(reactor, c"127.0.0.1:0".as_ptr(), null(), &mut listener, null_mut()), S::Ok);
    let opts = wsffi_server_options_new();
    assert_eq!(wsffi_server_options_set_water_marks(opts, HIGH, HIGH / 4), S::Ok);
    let scbs = wsffi_server_callbacks { on_connection: Some(paced_connection), ..Default::default() };
    let mut server = null_mut();
    assert_eq!(
        wsffi_server_attach(reactor, listener, null(), opts, &scbs, null_mut(), None, &mut server, null_mut()),
        S::Ok
    );
    wsffi_server_options_free(opts);

    let mut sock = std::net::TcpStream::connect(("127.0.0.1", wsffi_listener_port(listener))).unwrap();
    sock.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut head = [0u8; 129];
    sock.read_exact(&mut head).unwrap();
    assert!(head.starts_with(b"HTTP/1.1 101"));
    // 16 KiB masked binary frames (mask of zeros keeps the payload readable).
    let payload = vec![b'z'; 16 * 1024];
    let mut frame = vec![0x82, 0xFE, 0x40, 0x00, 0, 0, 0, 0];
    frame.extend_from_slice(&payload);
    let total_frames = 2000; // 32 MiB
    sock.set_write_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut sent = 0;
    while sent < total_frames {
        match sock.write_all(&frame) {
            Ok(()) => sent += 1,
            Err(_) => break, // the server stopped reading: the kernel buffers are full
        }
    }
    assert!(sent < total_frames, "the server kept reading although nobody read its output");
    let max = MAX_BUFFERED.load(Relaxed);
    assert!(max <= HIGH + frame.len() + 16, "server buffered {max} bytes");
    // Now read: the server drains, resumes, and echoes every frame it accepted.
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let expected = ECHOED.load(Relaxed);
    let mut buf = vec![0u8; 1 << 20];
    let mut received = 0usize;
    let want = expected * (payload.len() + 4);
    while received < want {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0);
        received += n;
    }
    assert!(DRAINS.load(Relaxed) >= 1, "drain never fired");
    wsffi_server_close(server);
    wsffi_listener_close(listener);
    assert_eq!(wsffi_reactor_free(reactor), S::Ok);
}

/// Impossible UTF-8 in the middle of a text frame fails the connection with 1007 as soon as
/// it arrives, while most of the frame is still unsent; a code point cut by a segment
/// boundary is not failed on its own.
#[test]
fn invalid_utf8_fails_the_connection_before_the_frame_is_complete() {
    use std::io::{ErrorKind, Read, Write};
    let f = start(None);
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.write_all(b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));

    // A masked text frame of 1000 bytes: "hello " then U+110000 (F4 90 80 80), then 'x's.
    let key = [0x12, 0x34, 0x56, 0x78];
    let mut payload = b"hello ".to_vec();
    payload.extend_from_slice(&[0xF4, 0x90, 0x80, 0x80]);
    payload.resize(1000, b'x');
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
    let mut first = vec![0x81, 0xFE, 0x03, 0xE8];
    first.extend_from_slice(&key);
    // The first segment ends inside the four-byte sequence, on its lead byte.
    first.extend_from_slice(&payload[..7]);
    sock.write_all(&first).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut reply = [0u8; 64];
    match sock.read(&mut reply) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("the server answered an incomplete code point: {other:?}"),
    }
    // The byte that makes it impossible; 990 payload bytes are still unsent.
    sock.write_all(&payload[7..8]).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        let n = sock.read(&mut reply).unwrap();
        assert!(n > 0, "connection closed without a close frame");
        got.extend_from_slice(&reply[..n]);
    }
    assert_eq!(got[0], 0x88, "a close frame: {got:02x?}");
    assert_eq!(u16::from_be_bytes([got[2], got[3]]), 1007);
    stop(f);
}
