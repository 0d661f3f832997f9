//! Echo throughput of 1 MiB binary messages, plain ws:// against wss:// (TLS 1.3, rustls
//! with ring), through the C API: a server on one reactor, a client on another, `INFLIGHT`
//! messages in flight.
//!
//!     cargo run --release --example tls-throughput [MESSAGES] [SIZE_BYTES]
//!
//! Prints MiB/s of echoed payload (each byte crosses the connection twice).

#[path = "../tests/support/certs.rs"]
mod certs;

use std::ffi::{c_void, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use wsffi::ffi::callbacks::*;
use wsffi::ffi::conn::*;
use wsffi::ffi::options::*;
use wsffi::ffi::reactor::*;
use wsffi::ffi::server::*;
use wsffi::ffi::status::wsffi_status as S;
use wsffi::ffi::tls_options::*;
use wsffi::reactor::conn::ConnHandle;
use wsffi::reactor::server::{RequestView, ServerHandle};

const INFLIGHT: usize = 4;

struct Run {
    payload: Vec<u8>,
    total: usize,
    sent: AtomicUsize,
    received: AtomicUsize,
    done: Mutex<bool>,
    cv: Condvar,
}

fn run_of(user: *mut c_void) -> &'static Run {
    // SAFETY: the user data is a leaked `Run`.
    unsafe { &*(user as *const Run) }
}

fn send_next(run: &Run, c: *mut ConnHandle) {
    if run.sent.fetch_add(1, Ordering::Relaxed) < run.total {
        assert_eq!(wsffi_send_binary(c, run.payload.as_ptr(), run.payload.len()), S::Ok);
    }
}

unsafe extern "C" fn on_open(user: *mut c_void, c: *mut ConnHandle) {
    for _ in 0..INFLIGHT {
        send_next(run_of(user), c);
    }
}

unsafe extern "C" fn on_message(user: *mut c_void, c: *mut ConnHandle, _kind: u32, _data: *const u8, len: usize) {
    let run = run_of(user);
    assert_eq!(len, run.payload.len());
    if run.received.fetch_add(1, Ordering::Relaxed) + 1 == run.total {
        *run.done.lock().unwrap() = true;
        run.cv.notify_all();
    } else {
        send_next(run, c);
    }
}

unsafe extern "C" fn echo(_user: *mut c_void, c: *mut ConnHandle, kind: u32, data: *const u8, len: usize) {
    assert_eq!(wsffi_send(c, kind, data, len), S::Ok);
}

unsafe extern "C" fn on_connection(_u: *mut c_void, _s: *mut ServerHandle, c: *mut ConnHandle, _r: *const RequestView) {
    let cbs = wsffi_conn_callbacks { on_message: Some(echo), ..Default::default() };
    assert_eq!(wsffi_conn_set_callbacks(c, &cbs, null_mut(), None), S::Ok);
}

fn measure(tls: Option<&certs::TestPki>, total: usize, size: usize) -> f64 {
    let mut server_reactor = null_mut();
    let mut client_reactor = null_mut();
    assert_eq!(wsffi_reactor_new(null(), &mut server_reactor, null_mut()), S::Ok);
    assert_eq!(wsffi_reactor_new(null(), &mut client_reactor, null_mut()), S::Ok);
    let lo = wsffi_listener_options_new();
    let co = wsffi_client_options_new();
    if let Some(pki) = tls {
        let (c, k) = (&pki.server.cert_pem, &pki.server.key_pem);
        assert_eq!(
            wsffi_listener_options_set_tls_cert_pem(lo, c.as_ptr(), c.len(), k.as_ptr(), k.len(), null_mut()),
            S::Ok
        );
        assert_eq!(wsffi_client_options_set_tls_insecure(co, true), S::Ok);
    }
    // Room for every message in flight plus the one being answered.
    let high = (INFLIGHT + 2) * (size + 16);
    assert_eq!(wsffi_client_options_set_water_marks(co, high, high / 4), S::Ok);
    let so = wsffi_server_options_new();
    assert_eq!(wsffi_server_options_set_water_marks(so, high, high / 4), S::Ok);
    let mut listener = null_mut();
    assert_eq!(wsffi_listen(server_reactor, c"127.0.0.1:0".as_ptr(), lo, &mut listener, null_mut()), S::Ok);
    let scbs = wsffi_server_callbacks { on_connection: Some(on_connection), ..Default::default() };
    let mut server = null_mut();
    assert_eq!(
        wsffi_server_attach(
            server_reactor,
            listener,
            c"/".as_ptr(),
            so,
            &scbs,
            null_mut(),
            None,
            &mut server,
            null_mut()
        ),
        S::Ok
    );
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let url = CString::new(format!("{scheme}://127.0.0.1:{}/", wsffi_listener_port(listener))).unwrap();
    let run: &'static Run = Box::leak(Box::new(Run {
        payload: (0..size).map(|i| (i % 251) as u8).collect(),
        total,
        sent: AtomicUsize::new(0),
        received: AtomicUsize::new(0),
        done: Mutex::new(false),
        cv: Condvar::new(),
    }));
    let cbs = wsffi_conn_callbacks { on_open: Some(on_open), on_message: Some(on_message), ..Default::default() };
    let started = Instant::now();
    let mut conn = null_mut();
    let user = run as *const Run as *mut c_void;
    assert_eq!(wsffi_connect(client_reactor, url.as_ptr(), co, &cbs, user, None, &mut conn, null_mut()), S::Ok);
    let guard = run.done.lock().unwrap();
    let (_guard, timeout) = run.cv.wait_timeout_while(guard, Duration::from_secs(300), |d| !*d).unwrap();
    assert!(!timeout.timed_out(), "stalled after {} messages", run.received.load(Ordering::Relaxed));
    let elapsed = started.elapsed().as_secs_f64();
    wsffi_conn_release(conn);
    wsffi_client_options_free(co);
    wsffi_listener_options_free(lo);
    wsffi_server_options_free(so);
    assert_eq!(wsffi_reactor_free(client_reactor), S::Ok);
    assert_eq!(wsffi_server_close(server), S::Ok);
    assert_eq!(wsffi_listener_close(listener), S::Ok);
    assert_eq!(wsffi_reactor_free(server_reactor), S::Ok);
    (total * size) as f64 / (1024.0 * 1024.0) / elapsed
}

fn main() {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(500, |a| a.parse().expect("MESSAGES"));
    let size: usize = args.next().map_or(1 << 20, |a| a.parse().expect("SIZE_BYTES"));
    let pki = certs::generate();
    println!("{total} echoes of {size} bytes, {INFLIGHT} in flight, server and client on separate reactors");
    for round in 1..=3 {
        let plain = measure(None, total, size);
        let tls = measure(Some(&pki), total, size);
        println!("round {round}: plain {plain:8.1} MiB/s   tls {tls:8.1} MiB/s   tls/plain {:.2}", tls / plain);
    }
}
