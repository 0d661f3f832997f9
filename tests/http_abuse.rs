//! The HTTP side of the upgrade, attacked over raw sockets: ambiguous framing, smuggled
//! content, forged interim answers, malformed heads. Each case checks the exact status line
//! and that the server closes the connection after answering.

use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use wsffi::core::handshake::response::accept_key;
use wsffi::ffi::callbacks::*;
use wsffi::ffi::conn::*;
use wsffi::ffi::options::*;
use wsffi::ffi::reactor::*;
use wsffi::ffi::server::*;
use wsffi::ffi::status::wsffi_status as S;
use wsffi::reactor::conn::ConnHandle;
use wsffi::reactor::server::ListenerHandle;
use wsffi::reactor::views::{HttpResponse, RequestView};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// One reactor for the whole file: a listener with a plain-HTTP handler and a WebSocket
/// server at /chat, and a listener with only the server (for the built-in 404 and 426).
struct Servers {
    with_handler: u16,
    bare: u16,
}

/// What `wsffi_http_response_set_status` answered for 101, 199 and 600 in the handler.
static REFUSED_STATUSES: [AtomicU32; 3] =
    [AtomicU32::new(u32::MAX), AtomicU32::new(u32::MAX), AtomicU32::new(u32::MAX)];

unsafe extern "C" fn handler(_user: *mut c_void, _req: *const RequestView, resp: *mut HttpResponse) {
    for (slot, status) in REFUSED_STATUSES.iter().zip([101, 199, 600]) {
        slot.store(wsffi_http_response_set_status(resp, status, null()) as u32, Ordering::Relaxed);
    }
    assert_eq!(wsffi_http_response_set_status(resp, 200, c"OK".as_ptr()), S::Ok);
    assert_eq!(wsffi_http_response_set_body(resp, b"hello\n".as_ptr(), 6), S::Ok);
}

fn listen(reactor: *mut wsffi_reactor) -> *mut ListenerHandle {
    let mut listener = null_mut();
    assert_eq!(wsffi_listen(reactor, c"127.0.0.1:0".as_ptr(), null(), &mut listener, null_mut()), S::Ok);
    let scbs = wsffi_server_callbacks::default();
    let mut server = null_mut();
    let s = wsffi_server_attach(
        reactor,
        listener,
        c"/chat".as_ptr(),
        null(),
        &scbs,
        null_mut(),
        None,
        &mut server,
        null_mut(),
    );
    assert_eq!(s, S::Ok);
    listener
}

fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let mut reactor = null_mut();
        assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
        let with_handler = listen(reactor);
        assert_eq!(wsffi_listener_set_http_handler(with_handler, Some(handler), null_mut()), S::Ok);
        let bare = listen(reactor);
        // Both stay up until the test process exits.
        Servers { with_handler: wsffi_listener_port(with_handler), bare: wsffi_listener_port(bare) }
    })
}

/// What came back for one request: every byte the server sent, and whether it closed.
struct Answer {
    text: String,
    closed: bool,
}

impl Answer {
    fn status_line(&self) -> &str {
        self.text.split("\r\n").next().unwrap_or_default()
    }

    fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }

    fn header(&self, name: &str) -> Option<&str> {
        let head = self.text.split_once("\r\n\r\n").map_or(self.text.as_str(), |(h, _)| h);
        head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Sends `request` and reads until the server closes (or 5 s pass).
fn exchange(port: u16, request: &[u8]) -> Answer {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The server may answer and close before it has read everything.
    let _ = sock.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        match sock.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    Answer { text: String::from_utf8_lossy(&out).into_owned(), closed }
}

/// A valid upgrade request for /chat with `extra` header lines and then `tail` after the head.
fn upgrade(extra: &str, tail: &[u8]) -> Vec<u8> {
    let head = format!(
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    [head.as_bytes(), tail].concat()
}

/// Asserts the exact status line and that the connection was closed after it.
fn assert_refused(answer: &Answer, status_line: &str) {
    assert_eq!(answer.status_line(), status_line, "full answer: {:?}", answer.text);
    assert!(answer.closed, "the connection stayed open after {:?}", answer.text);
}

/// A masked text frame "smuggled!" (mask 0), 14 bytes on the wire.
const FRAME: &[u8] = b"\x81\x88\0\0\0\0smuggled";

#[test]
fn upgrade_content_is_refused_not_read_as_frames() {
    let port = servers().with_handler;
    let cases: [(&str, &[u8]); 6] = [
        ("Content-Length: 14\r\n", FRAME),
        ("Content-Length: abc\r\n", b""),
        ("Content-Length: 14\r\nContent-Length: 15\r\n", FRAME),
        ("Transfer-Encoding: gzip\r\n", FRAME),
        ("Content-Length: 14\r\nTransfer-Encoding: chunked\r\n", b"e\r\n\x81\x88\0\0\0\0smuggled\r\n0\r\n\r\n"),
        ("Transfer-Encoding: chunked\r\n", b"e\r\n\x81\x88\0\0\0\0smuggled\r\n0\r\n\r\n"),
    ];
    for (extra, tail) in cases {
        let answer = exchange(port, &upgrade(extra, tail));
        assert_refused(&answer, "HTTP/1.1 400 Bad Request");
        assert!(!answer.text.contains("101"), "{extra:?}: {:?}", answer.text);
    }
    // A zero length is no content and upgrades as usual.
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.write_all(&upgrade("Content-Length: 0\r\n", b"")).unwrap();
    let mut head = [0u8; 12];
    sock.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");
}

#[test]
fn plain_requests_with_ambiguous_framing_are_400() {
    let port = servers().with_handler;
    for extra in ["Content-Length: 1x\r\n", "Content-Length: 2\r\nContent-Length: 3\r\n", "Transfer-Encoding: gzip\r\n"]
    {
        let answer = exchange(port, format!("GET / HTTP/1.1\r\nHost: x\r\n{extra}\r\nab").as_bytes());
        assert_refused(&answer, "HTTP/1.1 400 Bad Request");
    }
}

#[test]
fn a_plain_request_body_is_never_parsed_as_a_request() {
    let smuggled = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\nGET /chat HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = exchange(servers().with_handler, smuggled);
    assert_refused(&answer, "HTTP/1.1 200 OK");
    assert_eq!(answer.text.matches("HTTP/1.1 ").count(), 1, "{:?}", answer.text);
    assert_eq!(answer.header("Connection"), Some("close"));
}

#[test]
fn the_handler_cannot_answer_with_1xx() {
    let answer = exchange(servers().with_handler, b"GET /anything HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_refused(&answer, "HTTP/1.1 200 OK");
    assert_eq!(answer.body(), "hello\n");
    for slot in &REFUSED_STATUSES {
        assert_eq!(slot.load(Ordering::Relaxed), S::ErrInvalidParameter as u32);
    }
}

#[test]
fn head_answers_have_the_length_but_no_body() {
    let s = servers();
    let get = exchange(s.with_handler, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = exchange(s.with_handler, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_refused(&head, "HTTP/1.1 200 OK");
    assert_eq!(head.header("Content-Length"), get.header("Content-Length"));
    assert_eq!(head.header("Content-Length"), Some("6"));
    assert!(head.text.ends_with("\r\n\r\n"), "{:?}", head.text);
    for (path, status_line, length) in
        [("/chat", "HTTP/1.1 426 Upgrade Required", "38"), ("/missing", "HTTP/1.1 404 Not Found", "10")]
    {
        let get = exchange(s.bare, format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert_eq!(get.header("Content-Length"), Some(length), "{path}: {:?}", get.text);
        let head = exchange(s.bare, format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        assert_refused(&head, status_line);
        assert_eq!(head.header("Content-Length"), Some(length), "{path}");
        assert_eq!(head.body(), "", "{path}");
    }
}

#[test]
fn repeated_origin_is_400() {
    let answer = exchange(
        servers().with_handler,
        &upgrade("Origin: http://allowed.example\r\nOrigin: http://evil.example\r\n", b""),
    );
    assert_refused(&answer, "HTTP/1.1 400 Bad Request");
    assert!(answer.body().contains("more than one Origin"), "{:?}", answer.text);
}

#[test]
fn absolute_form_target_is_routed_by_its_path() {
    let port = servers().with_handler;
    let text = String::from_utf8(upgrade("", b"")).unwrap();
    let text = text.replacen("GET /chat ", &format!("GET http://127.0.0.1:{port}/chat "), 1);
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.write_all(text.as_bytes()).unwrap();
    let mut head = [0u8; 34];
    sock.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101 Switching Protocols\r\n");
}

#[test]
fn malformed_heads_keep_being_refused() {
    let port = servers().with_handler;
    let many: String = (0..10_000).map(|i| format!("X-{i}: v\r\n")).collect();
    let big = format!("X-Big: {}\r\n", "a".repeat(20 * 1024));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (upgrade("X-Folded: a\r\n b\r\n", b""), "HTTP/1.1 400 Bad Request"),
        (upgrade("X-Space : a\r\n", b""), "HTTP/1.1 400 Bad Request"),
        (b"GET /ch\0at HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "HTTP/1.1 400 Bad Request"),
        (upgrade(&many, b""), "HTTP/1.1 431 Request Header Fields Too Large"),
        (upgrade(&big, b""), "HTTP/1.1 431 Request Header Fields Too Large"),
        (upgrade("Host: evil.example\r\n", b""), "HTTP/1.1 400 Bad Request"),
        (upgrade(&format!("Sec-WebSocket-Key: {KEY}\r\n"), b""), "HTTP/1.1 400 Bad Request"),
        (
            upgrade("", b"").iter().map(|&b| if b == b'1' { b'2' } else { b }).collect(),
            "HTTP/1.1 505 HTTP Version Not Supported",
        ),
        (
            String::from_utf8(upgrade("", b"")).unwrap().replacen("HTTP/1.1", "HTTP/1.0", 1).into_bytes(),
            "HTTP/1.1 400 Bad Request",
        ),
        (
            String::from_utf8(upgrade("", b"")).unwrap().replacen("HTTP/1.1", "HTTP/one", 1).into_bytes(),
            "HTTP/1.1 400 Bad Request",
        ),
    ];
    for (request, status_line) in cases {
        let answer = exchange(port, &request);
        assert_refused(&answer, status_line);
    }
}

// ---- our client against a hand-written server -----------------------------------------------

#[path = "support/log.rs"]
mod event_log;
use event_log::Log;

fn events(user: *mut c_void) -> &'static Log {
    Log::of(user)
}

unsafe extern "C" fn on_open(user: *mut c_void, _c: *mut ConnHandle) {
    events(user).push("open".into());
}

unsafe extern "C" fn on_error(user: *mut c_void, _c: *mut ConnHandle, _s: S, message: *const c_char) {
    // SAFETY: NUL-terminated message from the library.
    let m = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    events(user).push(format!("error {m}"));
}

/// Runs our client against a server that answers the upgrade with `answer(accept)`;
/// returns the client's events once it opened or failed.
fn client_against(answer: impl Fn(&str) -> String + Send + 'static) -> Vec<String> {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut sock, _) = server.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0);
            request.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&request).into_owned();
        let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap().trim().to_owned();
        sock.write_all(answer(&accept_key(&key)).as_bytes()).unwrap();
        // Hold the socket until the client has made up its mind.
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = sock.read(&mut buf);
    });
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let log = Log::new();
    let cbs = wsffi_conn_callbacks { on_open: Some(on_open), on_error: Some(on_error), ..Default::default() };
    let url = CString::new(format!("ws://127.0.0.1:{port}/")).unwrap();
    let mut conn = null_mut();
    let user = log.ptr();
    assert_eq!(wsffi_connect(reactor, url.as_ptr(), null(), &cbs, user, None, &mut conn, null_mut()), S::Ok);
    let seen = log.wait_for(|ev| ev.iter().any(|e| e == "open" || e.starts_with("error")));
    wsffi_conn_release(conn);
    assert_eq!(wsffi_reactor_free(reactor), S::Ok);
    peer.join().unwrap();
    seen
}

fn switching(accept: &str, extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
}

#[test]
fn client_refuses_an_extension_it_did_not_offer() {
    let seen = client_against(|accept| switching(accept, "Sec-WebSocket-Extensions: permessage-deflate, x-evil\r\n"));
    assert!(!seen.iter().any(|e| e == "open"), "{seen:?}");
    assert!(seen.iter().any(|e| e.contains("\"x-evil\", which was not offered")), "{seen:?}");
}

#[test]
fn client_skips_100_continue_before_the_101() {
    let seen = client_against(|accept| {
        format!("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n{}", switching(accept, ""))
    });
    assert_eq!(seen, ["open"]);
}

#[test]
fn client_refuses_reserved_request_headers() {
    let o = wsffi_client_options_new();
    for name in [c"Content-Length", c"transfer-encoding", c"Sec-WebSocket-Extensions", c"SEC-WEBSOCKET-PROTOCOL"] {
        assert_eq!(
            wsffi_client_options_add_header(o, name.as_ptr(), c"1".as_ptr()),
            S::ErrInvalidParameter,
            "{name:?}"
        );
    }
    assert_eq!(wsffi_client_options_add_header(o, c"X-Length".as_ptr(), c"1".as_ptr()), S::Ok);
    wsffi_client_options_free(o);
}
