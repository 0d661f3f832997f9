//! The proxy stage of a client connection: after the TCP connect to the proxy and before TLS
//! and the WebSocket handshake, open a tunnel to the target (HTTP `CONNECT` or SOCKS5).

use std::net::IpAddr;
use std::rc::Rc;

use mio::Interest;

use super::client::with_state;
use super::conn::{Conn, Phase};
use super::event_loop::EventLoop;
use crate::core::proxy::{connect, socks5, ProxyKind, ProxyUrl};
use crate::reactor::error::Error;

/// Where the tunnel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProxyStage {
    /// CONNECT sent, reading the proxy's answer.
    HttpResponse,
    /// SOCKS5 greeting sent, reading the chosen method.
    SocksMethod,
    /// RFC 1929 request sent, reading its answer.
    SocksAuth,
    /// SOCKS5 CONNECT sent, reading the reply.
    SocksReply,
}

/// The proxy in use and its progress, kept in the client state.
pub(super) struct ProxyState {
    pub(super) url: ProxyUrl,
    pub(super) stage: Option<ProxyStage>,
}

impl EventLoop {
    /// Called once the socket to the proxy is connected. Returns false when there is no proxy
    /// stage to run (direct connection, or the tunnel is already open).
    pub(super) fn start_proxy(&self, conn: &Rc<Conn>) -> bool {
        let first = with_state(conn, |st| {
            let p = st.proxy.as_mut()?;
            if p.stage.is_some() {
                return None;
            }
            let (host, port) = (st.url.host.clone(), st.url.port);
            Some(match p.url.kind {
                ProxyKind::HttpConnect => {
                    p.stage = Some(ProxyStage::HttpResponse);
                    let creds = p.url.credentials.as_ref().map(|(u, w)| (u.as_str(), w.as_str()));
                    Ok(connect::connect_request(&host, port, creds))
                }
                ProxyKind::Socks5 { .. } => {
                    p.stage = Some(ProxyStage::SocksMethod);
                    Ok(socks5::greeting(p.url.credentials.is_some()))
                }
            })
        })
        .flatten();
        let Some(first) = first else { return false };
        match first {
            Ok(bytes) => {
                self.reregister(conn, Interest::READABLE);
                conn.want_writable.set(false);
                conn.output.borrow_mut().buf.extend_from_slice(&bytes);
                conn.phase.set(Phase::Proxy);
                self.mark_dirty(conn);
            }
            Err(message) => self.proxy_failed(conn, Error::InvalidParameter, message),
        }
        true
    }

    /// Bytes arrived from the proxy.
    pub(super) fn proxy_readable(&self, conn: &Rc<Conn>) {
        let eof = self.read_head(conn);
        if conn.is_terminating() {
            return;
        }
        while conn.phase.get() == Phase::Proxy {
            let Some(Some((stage, url))) =
                with_state(conn, |st| st.proxy.as_ref().and_then(|p| p.stage.map(|s| (s, p.url.clone()))))
            else {
                return;
            };
            let target = with_state(conn, |st| (st.url.host.clone(), st.url.port)).unwrap_or_default();
            // (bytes consumed, whether the proxy asked for user and password)
            let step = {
                let mut input = conn.input.borrow_mut();
                let data = input.data();
                let parsed: Result<Option<(usize, bool)>, (Error, String)> = match stage {
                    ProxyStage::HttpResponse => {
                        connect::parse_connect_response(data).map(|r| r.map(|n| (n, false))).map_err(|e| {
                            let status = match e {
                                connect::ConnectError::Malformed(_) => Error::Handshake,
                                _ => Error::HandshakeRejected,
                            };
                            (status, e.message())
                        })
                    }
                    ProxyStage::SocksMethod => socks5::parse_method(data, url.credentials.is_some())
                        .map(|r| r.map(|m| (2, m == socks5::Method::UserPassword)))
                        .map_err(|m| (Error::HandshakeRejected, m)),
                    ProxyStage::SocksAuth => socks5::parse_auth_reply(data)
                        .map(|r| r.map(|()| (2, false)))
                        .map_err(|m| (Error::HandshakeRejected, m)),
                    ProxyStage::SocksReply => {
                        socks5::parse_connect_reply(data).map(|r| r.map(|n| (n, false))).map_err(|m| {
                            let status = if m.contains("refused") || m.contains("unreachable") {
                                Error::ConnectionRefused
                            } else {
                                Error::HandshakeRejected
                            };
                            (status, m)
                        })
                    }
                };
                if let Ok(Some((n, _))) = parsed {
                    input.consume(n);
                }
                parsed
            };
            match step {
                Err((status, message)) => {
                    self.proxy_failed(conn, status, message);
                    return;
                }
                Ok(None) => {
                    if eof {
                        self.proxy_failed(
                            conn,
                            Error::Handshake,
                            "proxy: connection closed by the proxy before the tunnel was open".into(),
                        );
                    }
                    return;
                }
                Ok(Some((_, wants_password))) => {
                    let next = match stage {
                        ProxyStage::SocksMethod if wants_password => {
                            let (u, p) = url.credentials.clone().unwrap_or_default();
                            socks5::auth_request(&u, &p).map(|m| (ProxyStage::SocksAuth, m))
                        }
                        ProxyStage::SocksMethod | ProxyStage::SocksAuth => {
                            let t = match target.0.parse::<IpAddr>() {
                                Ok(ip) => socks5::Target::Ip(ip),
                                Err(_) => socks5::Target::Name(&target.0),
                            };
                            socks5::connect_request(&t, target.1).map(|m| (ProxyStage::SocksReply, m))
                        }
                        ProxyStage::HttpResponse | ProxyStage::SocksReply => {
                            // From now on the tunnel is the connection.
                            with_state(conn, |st| st.proxy = None);
                            if !conn.input.borrow_mut().data().is_empty() {
                                // The target speaks only after our first bytes.
                                self.proxy_failed(
                                    conn,
                                    Error::Handshake,
                                    "proxy: unexpected bytes after the tunnel was opened".into(),
                                );
                                return;
                            }
                            self.tunnel_open(conn);
                            return;
                        }
                    };
                    match next {
                        Ok((s, bytes)) => {
                            with_state(conn, |st| {
                                if let Some(p) = st.proxy.as_mut() {
                                    p.stage = Some(s);
                                }
                            });
                            conn.output.borrow_mut().buf.extend_from_slice(&bytes);
                            self.mark_dirty(conn);
                        }
                        Err(m) => {
                            self.proxy_failed(conn, Error::InvalidParameter, m);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn proxy_failed(&self, conn: &Rc<Conn>, status: Error, message: String) {
        conn.set_failure(status, message);
        conn.terminate();
        self.mark_dirty(conn);
    }
}
