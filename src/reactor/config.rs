//! Settings the reactor applies; the FFI option objects build these.

use std::time::Duration;

use crate::core::extensions::deflate::DeflateConfig;
use crate::core::session::Limits;

/// Default high-water mark of a connection's output buffer.
pub const DEFAULT_HIGH_WATER: usize = 16 * 1024 * 1024;
/// Default maximum handshake head size.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// What every connection needs, client or server side.
#[derive(Debug, Clone, Copy)]
pub struct ConnConfig {
    /// Incoming message limits.
    pub limits: Limits,
    /// Send a ping after this long without input; fail if the next interval passes silently too.
    pub ping_interval: Option<Duration>,
    /// Close (1001) after this long without input.
    pub idle_timeout: Option<Duration>,
    /// How long to wait for the peer's side of the close handshake.
    pub close_timeout: Duration,
    /// Sends are refused above this many buffered bytes.
    pub high_water: usize,
    /// `drain` fires when the buffered amount falls to this.
    pub low_water: usize,
    /// Deliver messages in parts as they arrive (`on_message_part`) instead of whole.
    pub stream_messages: bool,
    /// What happens to a connection whose output passes `high_water`.
    pub backpressure: BackpressurePolicy,
}

impl ConnConfig {
    /// The frame reader for a connection with these settings.
    pub fn reader(&self, role: crate::core::session::Role) -> crate::core::session::Reader {
        let mut reader = crate::core::session::Reader::new(role, self.limits);
        if self.stream_messages {
            reader.stream_messages();
        }
        reader
    }
}

/// What a server does with a client whose output passed the high-water mark (a slow
/// consumer). Under every policy nothing is queued for a connection above the mark, so its
/// output holds at most the mark plus the one message that crossed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackpressurePolicy {
    /// Sends are refused (`Error::Backpressure`) until the output drains; broadcasts skip
    /// the connection. The default.
    #[default]
    Refuse,
    /// Messages for the connection are dropped and counted: a direct send returns
    /// `Error::Dropped`, a broadcast skips it. Fragments are refused instead (dropping part
    /// of a message would corrupt it).
    Drop,
    /// As `Refuse`, and a connection that stays above the mark (does not drain to the
    /// low-water mark) for `grace` is closed with `code` (1008 or 1013); zero closes it at
    /// once.
    Close {
        /// Close code.
        code: u16,
        /// Time allowed above the mark.
        grace: Duration,
    },
}

/// Client-side defaults: no automatic ping and no idle timeout, as browsers.
impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            limits: Limits::default(),
            ping_interval: None,
            idle_timeout: None,
            close_timeout: Duration::from_secs(5),
            high_water: DEFAULT_HIGH_WATER,
            low_water: DEFAULT_HIGH_WATER / 4,
            stream_messages: false,
            backpressure: BackpressurePolicy::Refuse,
        }
    }
}

/// Client connection settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Shared connection settings.
    pub conn: ConnConfig,
    /// Subprotocols offered, in order of preference.
    pub protocols: Vec<String>,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Origin header.
    pub origin: Option<String>,
    /// Time allowed for DNS plus TCP connect.
    pub connect_timeout: Duration,
    /// Time allowed for the whole opening handshake, from the start of the connect.
    pub handshake_timeout: Duration,
    /// Largest response head accepted.
    pub max_header_bytes: usize,
    /// TLS settings for `wss://`.
    pub tls: super::tls::ClientTls,
    /// permessage-deflate to offer; `None` offers no extension.
    pub deflate: Option<DeflateConfig>,
    /// Proxy URL (`http://`, `socks5://`, `socks5h://`); `Some("")` or `None` for none.
    pub proxy: Option<String>,
    /// Without `proxy`, take one from `https_proxy`/`http_proxy`/`all_proxy`/`no_proxy`.
    pub proxy_from_env: bool,
    /// Follow 301/302/303/307/308 answers to the upgrade (off by default).
    pub follow_redirects: bool,
    /// Most redirects followed for one connection.
    pub max_redirects: u32,
    /// Dial again after a lost connection or a failed attempt (off by default).
    pub reconnect: Option<ReconnectPolicy>,
}

/// Automatic reconnect: a jittered exponential backoff (see `reactor::reconnect`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconnectPolicy {
    /// The wait before the first attempt (before jitter).
    pub initial_delay: Duration,
    /// Each attempt waits this many times longer than the one before (>= 1).
    pub factor: f64,
    /// The longest wait (before jitter).
    pub max_delay: Duration,
    /// Attempts in a row without an open connection before giving up; 0 = no limit.
    pub max_attempts: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            conn: ConnConfig::default(),
            protocols: Vec::new(),
            headers: Vec::new(),
            origin: None,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            tls: Default::default(),
            // Browsers, Node's `ws` and Python's `websockets` all offer it too.
            deflate: Some(DeflateConfig::default()),
            proxy: None,
            proxy_from_env: false,
            follow_redirects: false,
            max_redirects: crate::core::handshake::redirect::DEFAULT_MAX_REDIRECTS,
            reconnect: None,
        }
    }
}

/// WebSocket server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Shared connection settings.
    pub conn: ConnConfig,
    /// Keep a set of clients for `wsffi_server_clients` and broadcast.
    pub client_tracking: bool,
    /// Most simultaneous connections; 0 = no limit. Over it the handshake gets 503.
    pub max_connections: usize,
    /// When non-empty, only these Origin values are accepted (403 otherwise).
    pub allowed_origins: Vec<String>,
    /// permessage-deflate to accept; `None` declines every offer.
    pub deflate: Option<DeflateConfig>,
    /// Most topics one connection may subscribe to.
    pub max_subscriptions: usize,
}

/// Default idle timeout of a server's connections: a client that completes the handshake
/// and goes silent must not hold its descriptor forever (uWebSockets uses the same).
pub const DEFAULT_SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Default ping interval of a server's connections, half the idle timeout: a client that
/// answers the ping is heard from before the idle timeout runs out.
pub const DEFAULT_SERVER_PING_INTERVAL: Duration = Duration::from_secs(60);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            conn: ConnConfig {
                ping_interval: Some(DEFAULT_SERVER_PING_INTERVAL),
                idle_timeout: Some(DEFAULT_SERVER_IDLE_TIMEOUT),
                ..ConnConfig::default()
            },
            client_tracking: true,
            max_connections: 0,
            max_subscriptions: super::topics::DEFAULT_MAX_SUBSCRIPTIONS,
            allowed_origins: Vec::new(),
            deflate: None,
        }
    }
}

/// Listener settings.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// listen(2) backlog.
    pub backlog: i32,
    /// Largest request head accepted (431 beyond it).
    pub max_header_bytes: usize,
    /// Time a client has to send a complete request and finish the handshake.
    pub handshake_timeout: Duration,
    /// Set SO_REUSEPORT so several processes or reactors can share the port.
    pub reuse_port: bool,
    /// TLS certificate and client verification; accepted connections speak TLS when set.
    pub tls: super::tls::ServerTls,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            backlog: 1024,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            handshake_timeout: Duration::from_secs(10),
            reuse_port: false,
            tls: Default::default(),
        }
    }
}

/// Dispatch mode: events wait for the application's thread (see [`super::dispatch`]).
#[derive(Clone, Default)]
pub struct DispatchSettings {
    /// Called on the reactor thread when events start waiting.
    pub wake: Option<super::dispatch::WakeFn>,
}

impl std::fmt::Debug for DispatchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DispatchSettings").field("wake", &self.wake.is_some()).finish()
    }
}

/// Reactor settings.
#[derive(Debug, Clone)]
pub struct ReactorConfig {
    /// Most commands from other threads waiting for the reactor; more are refused.
    pub max_queued_commands: usize,
    /// Time `wsffi_reactor_free` gives open connections to finish their close handshake.
    pub shutdown_grace: Duration,
    /// Queue events for the application's thread instead of calling them on the reactor's.
    pub dispatch: Option<DispatchSettings>,
}

impl Default for ReactorConfig {
    fn default() -> Self {
        ReactorConfig { max_queued_commands: 1 << 20, shutdown_grace: Duration::from_secs(2), dispatch: None }
    }
}
