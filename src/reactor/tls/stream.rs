//! TLS over a socket: reads and writes plaintext like a socket, with rustls in between.

use std::fmt;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

use rustls::pki_types::ServerName;

use crate::reactor::stream::Stream;

use super::subject::subject_of;
use super::{describe, tls_io_error, TLS_BUFFER_LIMIT};

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

    /// The ALPN protocol agreed on in the handshake, if any.
    pub fn alpn(&self) -> Option<String> {
        self.tls.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// Server side: the server name (SNI) the client asked for, if it sent one.
    pub fn requested_server_name(&self) -> Option<String> {
        match &self.tls {
            rustls::Connection::Server(s) => s.server_name().map(str::to_string),
            rustls::Connection::Client(_) => None,
        }
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
            let name = match &self.tls {
                rustls::Connection::Server(s) => s.server_name().unwrap_or(""),
                rustls::Connection::Client(_) => &self.server_name,
            };
            let message = describe(&e, self.is_client(), name);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::tls::{ClientTls, ServerTls};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

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
}
