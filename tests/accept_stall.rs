//! A listener that runs out of descriptors keeps accepting once some are free again, without
//! waiting for a new connection. The descriptor limit is lowered in a child process (this
//! test binary run again), so the test runner itself keeps its limit.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

use wsffi::ffi::callbacks::wsffi_server_callbacks;
use wsffi::ffi::reactor::*;
use wsffi::ffi::server::*;
use wsffi::ffi::status::wsffi_status as S;

const CHILD_ENV: &str = "WSFFI_ACCEPT_STALL_CHILD";
const CLIENTS: usize = 3;

/// Polls `cond` every 10 ms for up to 10 s.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The child: a server whose process has no descriptor left when the clients arrive.
fn child() {
    let mut reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut reactor, null_mut()), S::Ok);
    let mut listener = null_mut();
    assert_eq!(wsffi_listen(reactor, c"127.0.0.1:0".as_ptr(), null(), &mut listener, null_mut()), S::Ok);
    let scbs = wsffi_server_callbacks::default();
    let mut server = null_mut();
    let s = wsffi_server_attach(reactor, listener, null(), null(), &scbs, null_mut(), None, &mut server, null_mut());
    assert_eq!(s, S::Ok);

    // A low limit keeps the filling quick; then every free descriptor is taken.
    let limit = libc::rlimit { rlim_cur: 128, rlim_max: 128 };
    // SAFETY: setrlimit with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let mut filler = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        filler.push(f);
    }
    assert!(!filler.is_empty());
    println!("PORT {}", wsffi_listener_port(listener));

    // SAFETY: live handles for the rest of this function.
    let (l, srv) = unsafe { (&*listener, &*server) };
    wait_until("the accept stall", || l.accept_stalls() >= 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(srv.client_count(), 0, "accepted with no descriptor free");
    assert_eq!(l.accept_stalls(), 1, "one stall is counted once however often it is retried");
    println!("STALLED");
    drop(filler);
    // No new connection arrives: the retry alone must pick up the waiting ones.
    wait_until("the waiting clients", || srv.client_count() == CLIENTS);
    println!("ACCEPTED {}", srv.client_count());
    std::process::exit(0);
}

#[test]
fn backlog_is_accepted_once_descriptors_are_free() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "backlog_is_accepted_once_descriptors_are_free", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines().map_while(Result::ok);
    // The harness may print its own text before ours on a line.
    let port: u16 = lines.by_ref().find_map(|l| l.split_once("PORT ").map(|(_, p)| p.parse().unwrap())).unwrap();

    let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            s
        })
        .collect();
    assert!(lines.by_ref().any(|l| l.ends_with("STALLED")), "the child never reported the stall");
    for c in &mut clients {
        let mut head = [0u8; 12];
        c.read_exact(&mut head).unwrap();
        assert_eq!(&head, b"HTTP/1.1 101");
    }
    assert!(lines.any(|l| l.ends_with(&format!("ACCEPTED {CLIENTS}"))));
    assert!(proc.wait().unwrap().success());
}
