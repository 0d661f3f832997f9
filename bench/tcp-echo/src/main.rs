//! tcp-echo: the physical reference. A single-threaded TCP echo server on epoll that reads
//! the way a good server would (big reads until the socket is drained) and writes back what
//! it read at once; when a peer does not read, its leftover output is kept and reading from
//! it stops until the output is written.
//!
//!   tcp-echo [HOST:PORT]        (default 127.0.0.1:0; prints "listening on ADDR")

use std::io::Write;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

const READ_BUF: usize = 1024 * 1024;

struct Conn {
    open: bool,
    /// Output not yet written; while non-empty the connection is not read.
    pending: Vec<u8>,
    pending_off: usize,
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn ctl(ep: i32, op: i32, fd: i32, events: u32) {
    let mut ev = libc::epoll_event { events, u64: fd as u64 };
    unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) };
}

fn main() {
    let args = bench_common::Args::from_env();
    let addr = args.positional().unwrap_or("127.0.0.1:0").to_string();
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("tcp-echo: bind {addr}: {e}");
        std::process::exit(1)
    });
    listener.set_nonblocking(true).unwrap();
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let lfd = listener.as_raw_fd();
    println!("listening on {}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();

    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    ctl(ep, libc::EPOLL_CTL_ADD, lfd, libc::EPOLLIN as u32);
    let mut conns: Vec<Conn> = Vec::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];

    loop {
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            panic!("epoll_wait: {}", std::io::Error::last_os_error());
        }
        for i in 0..n as usize {
            let fd = events[i].u64 as i32;
            let ev = events[i].events;
            if fd == lfd {
                loop {
                    let c = unsafe {
                        libc::accept4(lfd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
                    };
                    if c < 0 {
                        break;
                    }
                    let one: libc::c_int = 1;
                    unsafe {
                        libc::setsockopt(c, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const libc::c_void, 4)
                    };
                    let idx = c as usize;
                    if conns.len() <= idx {
                        conns.resize_with(idx + 1, || Conn { open: false, pending: Vec::new(), pending_off: 0 });
                    }
                    conns[idx].open = true;
                    conns[idx].pending.clear();
                    conns[idx].pending_off = 0;
                    ctl(ep, libc::EPOLL_CTL_ADD, c, libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32);
                }
                continue;
            }
            let conn = &mut conns[fd as usize];
            if !conn.open {
                continue;
            }
            let mut close = false;
            if ev & libc::EPOLLOUT as u32 != 0 && !conn.pending.is_empty() {
                match flush_pending(fd, conn) {
                    Ok(true) => ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32 | libc::EPOLLRDHUP as u32),
                    Ok(false) => {}
                    Err(()) => close = true,
                }
            }
            if !close && conn.pending.is_empty() && ev & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                close = read_and_echo(ep, fd, conn, &mut buf);
            }
            if close {
                conn.open = false;
                conn.pending = Vec::new();
                unsafe { libc::close(fd) };
            }
        }
    }
}

/// Writes leftover output. Ok(true) when all of it is out.
fn flush_pending(fd: i32, conn: &mut Conn) -> Result<bool, ()> {
    while conn.pending_off < conn.pending.len() {
        let rest = &conn.pending[conn.pending_off..];
        let w = unsafe { libc::write(fd, rest.as_ptr() as *const libc::c_void, rest.len()) };
        if w < 0 {
            return if errno() == libc::EAGAIN { Ok(false) } else { Err(()) };
        }
        conn.pending_off += w as usize;
    }
    conn.pending.clear();
    conn.pending_off = 0;
    Ok(true)
}

/// Reads until drained, writing back each chunk. Returns true when the connection is done.
fn read_and_echo(ep: i32, fd: i32, conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        let r = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if r == 0 {
            return true;
        }
        if r < 0 {
            let e = errno();
            return !(e == libc::EAGAIN || e == libc::EINTR);
        }
        let r = r as usize;
        let mut off = 0;
        while off < r {
            let w = unsafe { libc::write(fd, buf[off..].as_ptr() as *const libc::c_void, r - off) };
            if w < 0 {
                if errno() == libc::EAGAIN {
                    break;
                }
                return true;
            }
            off += w as usize;
        }
        if off < r {
            // The peer is not reading: keep the rest, stop reading until it is written.
            conn.pending.extend_from_slice(&buf[off..r]);
            conn.pending_off = 0;
            ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLOUT as u32);
            return false;
        }
        if r < buf.len() {
            // A short read means the socket is drained; level-triggered epoll reports more.
            return false;
        }
    }
}
