//! One socket type for TCP and Unix-domain connections, plain or with TLS.

use std::io::{self, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

/// `writev` without SIGPIPE: to a peer that has gone away it fails with EPIPE instead of
/// raising the signal, whose default action kills the application. (Single-buffer writes
/// of std's sockets already pass MSG_NOSIGNAL; its `write_vectored` does not.)
fn send_vectored(socket: &impl AsFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    socket2::SockRef::from(socket).send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL)
}

/// `write` without SIGPIPE for Unix sockets, whose std `write` is a plain write(2) (std's TCP
/// writes already pass MSG_NOSIGNAL).
fn send(socket: &impl AsFd, buf: &[u8]) -> io::Result<usize> {
    socket2::SockRef::from(socket).send_with_flags(buf, libc::MSG_NOSIGNAL)
}

/// A connected, non-blocking byte stream.
#[derive(Debug)]
pub enum Stream {
    /// TCP over IPv4 or IPv6.
    Tcp(TcpStream),
    /// A Unix-domain stream socket.
    Unix(UnixStream),
    /// TLS over one of the above.
    Tls(Box<super::tls::TlsStream>),
}

impl Stream {
    /// The peer as text: "1.2.3.4:5", "[::1]:5" or "unix".
    pub fn peer_text(&self) -> String {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(|a| a.to_string()).unwrap_or_default(),
            Stream::Unix(_) => "unix".to_string(),
            Stream::Tls(t) => t.inner.peer_text(),
        }
    }

    /// The TCP peer address, if any.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr(),
            Stream::Unix(_) => Err(io::Error::new(io::ErrorKind::Unsupported, "unix socket")),
            Stream::Tls(t) => t.inner.peer_addr(),
        }
    }

    /// Pending socket error (used to finish a non-blocking connect).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
            Stream::Tls(t) => t.inner.take_error(),
        }
    }

    /// Is a non-blocking connect complete?
    pub fn is_connected(&self) -> io::Result<bool> {
        if let Some(e) = self.take_error()? {
            return Err(e);
        }
        let r = match self {
            Stream::Tcp(s) => s.peer_addr().map(|_| ()),
            Stream::Unix(s) => s.peer_addr().map(|_| ()),
            Stream::Tls(t) => return t.inner.is_connected(),
        };
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Half-closes the write side so the peer sees EOF after the queued bytes.
    pub fn shutdown_write(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Tls(t) => {
                t.inner.shutdown_write();
                Ok(())
            }
        };
    }

    /// TLS output (handshake records, ciphertext, alerts) waits for the socket.
    pub fn tls_wants_write(&self) -> bool {
        matches!(self, Stream::Tls(t) if t.tls.wants_write())
    }

    /// Before the socket closes: TLS sends close_notify (as far as the socket takes it now).
    pub fn close_notify(&mut self) {
        if let Stream::Tls(t) = self {
            t.close_notify();
        }
    }

    /// The TLS layer, when the stream has one.
    pub fn tls(&self) -> Option<&super::tls::TlsStream> {
        match self {
            Stream::Tls(t) => Some(t),
            _ => None,
        }
    }

    /// Two buffers in one system call.
    pub fn write_two(&mut self, a: &[u8], b: &[u8]) -> io::Result<usize> {
        let bufs = [IoSlice::new(a), IoSlice::new(b)];
        match self {
            Stream::Tcp(s) => send_vectored(s, &bufs),
            Stream::Unix(s) => send_vectored(s, &bufs),
            Stream::Tls(t) => t.write_vectored(&bufs),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => send(s, buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    /// Plain sockets have nothing to flush; TLS sends pending ciphertext (`WouldBlock` when
    /// some is left).
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(t) => t.flush(),
            _ => Ok(()),
        }
    }
}

impl Source for Stream {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(registry, token, interests),
            Stream::Unix(s) => s.register(registry, token, interests),
            Stream::Tls(t) => t.inner.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(registry, token, interests),
            Stream::Unix(s) => s.reregister(registry, token, interests),
            Stream::Tls(t) => t.inner.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(registry),
            Stream::Unix(s) => s.deregister(registry),
            Stream::Tls(t) => t.inner.deregister(registry),
        }
    }
}
