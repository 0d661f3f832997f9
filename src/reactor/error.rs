//! What can go wrong inside the reactor. The C layer maps each variant to its status code;
//! the reactor itself knows nothing of the C ABI.

/// Why a reactor operation failed or a connection ended badly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// An argument is out of range or malformed.
    InvalidParameter,
    /// A URL could not be parsed or uses an unsupported scheme.
    InvalidUrl,
    /// A payload is larger than the protocol allows (control frames: 125 bytes).
    TooBig,
    /// The connection is still connecting.
    NotOpen,
    /// The connection was lost and is waiting to reconnect (reconnect on).
    Reconnecting,
    /// The connection (or server, listener, handshake) is closing or closed.
    Closed,
    /// The output buffer is above its high-water mark; nothing was queued.
    Backpressure,
    /// The output buffer is above its high-water mark and the policy drops messages: this
    /// one was thrown away (and counted).
    Dropped,
    /// A blocking call was made from the reactor thread.
    CalledFromCallback,
    /// The reactor is shutting down or gone.
    ShutDown,
    /// The operation was already done (a handshake decided twice).
    AlreadyDone,
    /// Too many commands are queued for the reactor.
    QueueFull,
    /// The peer broke the WebSocket protocol.
    Protocol,
    /// The opening handshake failed.
    Handshake,
    /// The server answered the upgrade with a non-101 status, or refused the client.
    HandshakeRejected,
    /// A message exceeded max_payload.
    MessageTooBig,
    /// A socket operation failed.
    Io,
    /// The host name could not be resolved.
    Dns,
    /// The peer refused the connection.
    ConnectionRefused,
    /// A timeout expired.
    Timeout,
    /// The address is already in use.
    AddressInUse,
    /// The peer went away without a close handshake.
    ConnectionReset,
    /// TLS failed.
    Tls,
    /// A bug inside the library.
    Internal,
    /// A panic was caught on the reactor thread.
    Panic,
    /// The operation does not apply to this object (topics on a client connection).
    Unsupported,
}

impl Error {
    /// Maps an I/O error to the closest kind.
    pub fn from_io(e: &std::io::Error) -> Error {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => Error::ConnectionRefused,
            AddrInUse => Error::AddressInUse,
            TimedOut => Error::Timeout,
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => Error::ConnectionReset,
            _ => Error::Io,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Error {}
