//! The reactor's front door for code on any thread: connect, listen (binding the socket or
//! adopting one already bound), attach servers, hand over upgraded sockets. The C layer is
//! one user of these functions; Rust code and tests use them directly.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use super::app_timers::{TimerFn, TimerId};
use super::client::ClientSetup;
use super::config::{ClientConfig, ListenerConfig, ServerConfig};
use super::conn::ConnHandle;
use super::dispatch::ServerForwarder;
use super::error::Error;
use super::events::{ConnEvents, ServerEvents};
use super::server::{ListenSocket, ListenerHandle, ServerHandle};
use super::stream::Stream;
use super::views::cstring;
use super::Shared;
use crate::core::handshake::url::parse_ws_url;

/// A failure with the sentence that explains it.
pub type Failure = (Error, String);

/// Opens a client connection to a `ws://`, `wss://` or `ws+unix://` URL. `events` makes the
/// connection's events once its handle exists (before any event can happen). The outcome
/// arrives as `on_open`, or `on_error` then `on_close`; an unusable URL or TLS setting fails
/// here (and `events` is dropped unused).
pub fn connect(
    shared: &Arc<Shared>,
    url: &str,
    mut config: ClientConfig,
    events: impl FnOnce(&Arc<ConnHandle>) -> Box<dyn ConnEvents>,
) -> Result<Arc<ConnHandle>, Failure> {
    let parsed = parse_ws_url(url).map_err(|e| (Error::InvalidUrl, format!("{url}: {e}")))?;
    if parsed.secure {
        config.tls.prepare().map_err(|m| (Error::Tls, m))?;
    }
    let handle = Arc::new(ConnHandle::new(shared.clone(), cstring(&parsed.to_url_string()), &config.conn));
    let events = events(&handle);
    let setup = ClientSetup { url: parsed, config: Arc::new(config), handle: handle.clone(), events };
    shared.run_async(move |lp| lp.start_client(setup)).map_err(refused)?;
    Ok(handle)
}

/// Runs `callback` on the reactor after `delay`, then every `repeat` if given, where the
/// reactor's callbacks run (in dispatch mode: as a job on the dispatching thread). Returns the
/// timer's id, for [`cancel_timer`]. The callback is dropped after its last run, when
/// cancelled, or when the reactor stops.
pub fn add_timer(
    shared: &Arc<Shared>,
    delay: Duration,
    repeat: Option<Duration>,
    callback: TimerFn,
) -> Result<TimerId, Failure> {
    if repeat.is_some_and(|r| r.is_zero()) {
        return Err((Error::InvalidParameter, "a repeating timer needs an interval above 0".to_string()));
    }
    shared.run_sync(move |lp| lp.add_app_timer(delay, repeat, callback)).map_err(refused)
}

/// Cancels a timer: once this returns, its callback does not start again (in dispatch mode,
/// a cancel from a thread other than the dispatching one can meet a run already under way).
/// `AlreadyDone` when the timer has run its last time or was cancelled before.
pub fn cancel_timer(shared: &Arc<Shared>, id: TimerId) -> Result<(), Error> {
    shared.run_sync(move |lp| lp.cancel_app_timer(id))?
}

/// The sentence for a command the reactor did not take.
pub fn refused(e: Error) -> Failure {
    let text = match e {
        Error::QueueFull => "the reactor's command queue is full (see max_queued_commands)",
        Error::CalledFromCallback => "blocking call from a callback on the reactor thread",
        _ => "the reactor is shut down",
    };
    (e, text.to_string())
}

fn bind_tcp(addr: SocketAddr, config: &ListenerConfig) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if config.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(config.backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Binds `address`: "HOST:PORT", "[::1]:PORT" or "unix:/path".
fn bind(address: &str, config: &ListenerConfig) -> Result<(ListenSocket, u16, String), Failure> {
    if let Some(path) = address.strip_prefix("unix:") {
        let l = std::os::unix::net::UnixListener::bind(path)
            .map_err(|e| (Error::from_io(&e), format!("bind {address}: {e}")))?;
        l.set_nonblocking(true).map_err(|e| (Error::Io, format!("bind {address}: {e}")))?;
        return Ok((ListenSocket::Unix(mio::net::UnixListener::from_std(l)), 0, address.to_string()));
    }
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| (Error::InvalidParameter, format!("bad listen address {address}: {e}")))?
        .collect();
    let mut last = (Error::InvalidParameter, format!("bad listen address {address}"));
    for addr in addrs {
        match bind_tcp(addr, config) {
            Ok(l) => {
                let local = l.local_addr().map_err(|e| (Error::Io, e.to_string()))?;
                return Ok((ListenSocket::Tcp(mio::net::TcpListener::from_std(l)), local.port(), local.to_string()));
            }
            Err(e) => last = (Error::from_io(&e), format!("bind {addr}: {e}")),
        }
    }
    Err(last)
}

fn add_listener(
    shared: &Arc<Shared>,
    socket: ListenSocket,
    port: u16,
    address: String,
    config: ListenerConfig,
) -> Result<Arc<ListenerHandle>, Failure> {
    let handle = Arc::new(ListenerHandle::new(shared.clone(), port, &address, config.tls.certs.clone()));
    let h = handle.clone();
    shared
        .run_sync(move |lp| lp.add_listener(h, socket, config))
        .map_err(refused)?
        .map_err(|e| (e, format!("register listener {address}")))?;
    Ok(handle)
}

/// Listens on `address` ("127.0.0.1:0", "[::1]:9000", "localhost:9000", "unix:/path").
pub fn listen(shared: &Arc<Shared>, address: &str, mut config: ListenerConfig) -> Result<Arc<ListenerHandle>, Failure> {
    config.tls.prepare().map_err(|m| (Error::Tls, m))?;
    let (socket, port, bound) = bind(address, &config)?;
    add_listener(shared, socket, port, bound, config)
}

/// Serves on a socket that is already bound and listening (closed on failure).
pub fn adopt_listener(
    shared: &Arc<Shared>,
    fd: OwnedFd,
    mut config: ListenerConfig,
) -> Result<Arc<ListenerHandle>, Failure> {
    let socket = Socket::from(fd);
    config.tls.prepare().map_err(|m| (Error::Tls, m))?;
    let fail = |e: std::io::Error| (Error::from_io(&e), format!("adopt listening socket: {e}"));
    socket.set_nonblocking(true).map_err(fail)?;
    let local = socket.local_addr().map_err(fail)?;
    let (listen, port, address) = match local.as_socket() {
        Some(addr) => {
            let l: std::net::TcpListener = socket.into();
            (ListenSocket::Tcp(mio::net::TcpListener::from_std(l)), addr.port(), addr.to_string())
        }
        None => {
            let l: std::os::unix::net::UnixListener = socket.into();
            (ListenSocket::Unix(mio::net::UnixListener::from_std(l)), 0, "unix".to_string())
        }
    };
    add_listener(shared, listen, port, address, config)
}

/// Attaches a server at `path` to `listener` (which must belong to the same reactor), or
/// without a listener a standalone server fed by [`adopt_upgrade`].
pub fn attach_server(
    shared: &Arc<Shared>,
    listener: Option<Arc<ListenerHandle>>,
    path: String,
    config: ServerConfig,
    events: Box<dyn ServerEvents>,
) -> Result<Arc<ServerHandle>, Failure> {
    if let Some(l) = &listener {
        if !Arc::ptr_eq(&l.shared, shared) {
            return Err((Error::InvalidParameter, "the listener belongs to another reactor".to_string()));
        }
    }
    let events: Box<dyn ServerEvents> = match shared.dispatch_queue() {
        Some(queue) => Box::new(ServerForwarder::new(events, queue.clone())),
        None => events,
    };
    shared
        .run_sync(move |lp| {
            let l = match &listener {
                Some(h) => match lp.listener_of(h) {
                    Some(l) => Some(l),
                    None => return Err((Error::Closed, "the listener is closed".to_string())),
                },
                None => None,
            };
            lp.attach_server(l.as_ref(), path, config, events)
        })
        .map_err(refused)?
}

/// Hands a connected socket whose upgrade request was read elsewhere (`head`: the bytes read
/// so far) to `server`; the handshake then runs as for a listener.
pub fn adopt_upgrade(server: &Arc<ServerHandle>, fd: OwnedFd, head: Vec<u8>) -> Result<(), Error> {
    let socket = Socket::from(fd);
    socket.set_nonblocking(true).map_err(|_| Error::Io)?;
    let is_tcp = socket.local_addr().map(|a| a.as_socket().is_some()).map_err(|_| Error::Io)?;
    let stream = if is_tcp {
        let s: std::net::TcpStream = socket.into();
        let _ = s.set_nodelay(true);
        Stream::Tcp(mio::net::TcpStream::from_std(s))
    } else {
        let s: std::os::unix::net::UnixStream = socket.into();
        Stream::Unix(mio::net::UnixStream::from_std(s))
    };
    let handle = Arc::clone(server);
    server.shared.run_sync(move |lp| {
        let Some(server) = lp.server_of(&handle) else { return Err(Error::Closed) };
        let defaults = ListenerConfig::default();
        lp.new_server_conn(stream, None, None, Some(server), &head, &defaults);
        Ok(())
    })?
}
