//! Status codes returned by every fallible function. Values are grouped and never renumbered.

/// Result of a wsffi call. 0 is success; the hundreds digit tells the group. Every value is
/// fixed: none is ever renumbered or reused, new ones may be added.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum wsffi_status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    ErrNullParameter = 100,
    /// An argument is out of range or malformed (see the function's documentation).
    ErrInvalidParameter = 101,
    /// A text message or close reason is not valid UTF-8.
    ErrInvalidUtf8 = 102,
    /// A URL could not be parsed or uses an unsupported scheme.
    ErrInvalidUrl = 103,
    /// A payload or a name is larger than allowed (control frames: 125 bytes, topic names
    /// `WSFFI_MAX_TOPIC_BYTES`), or a count reached its limit (subscriptions per connection).
    ErrTooBig = 104,
    /// The feature is not available.
    ErrUnsupported = 105,
    /// The connection is still connecting.
    ErrNotOpen = 200,
    /// The connection (or server, listener, handshake) is closing or closed.
    ErrClosed = 201,
    /// The output buffer is above its high-water mark; nothing was queued. Retry after `drain`.
    ErrBackpressure = 202,
    /// A blocking function was called from a callback on the reactor thread, or
    /// `wsffi_reactor_dispatch` from a callback it is running.
    ErrCalledFromCallback = 203,
    /// The reactor is shutting down or gone.
    ErrShutDown = 204,
    /// The operation was already done (a handshake decided twice).
    ErrAlreadyDone = 205,
    /// Too many commands are queued for the reactor.
    ErrQueueFull = 206,
    /// The connection was lost and waits to reconnect (reconnect on): nothing was queued.
    /// Send again after the next `on_open`.
    ErrReconnecting = 207,
    /// The output buffer is above its high-water mark and the server's back-pressure
    /// policy is `WSFFI_BACKPRESSURE_DROP`: the message was dropped (not queued, not to be
    /// sent again).
    ErrDropped = 208,
    /// The peer broke the WebSocket protocol.
    ErrProtocol = 300,
    /// The opening handshake failed (malformed or invalid answer or request).
    ErrHandshake = 301,
    /// The server answered the upgrade with a non-101 status.
    ErrHandshakeRejected = 302,
    /// A message exceeded max_payload.
    ErrMessageTooBig = 303,
    /// A socket operation failed.
    ErrIo = 400,
    /// The host name could not be resolved.
    ErrDns = 401,
    /// The peer refused the connection.
    ErrConnectionRefused = 402,
    /// A timeout expired (connect, handshake, close, ping, idle).
    ErrTimeout = 403,
    /// The address is already in use.
    ErrAddressInUse = 404,
    /// The peer went away without a close handshake.
    ErrConnectionReset = 405,
    /// TLS failed.
    ErrTls = 500,
    /// A bug inside wsffi.
    ErrInternal = 900,
    /// A Rust panic was caught at the boundary.
    ErrPanic = 901,
}

impl wsffi_status {
    /// A static description.
    pub fn text(self) -> &'static str {
        use wsffi_status::*;
        match self {
            Ok => "ok\0",
            ErrNullParameter => "a required pointer argument was NULL\0",
            ErrInvalidParameter => "invalid argument\0",
            ErrInvalidUtf8 => "invalid UTF-8\0",
            ErrInvalidUrl => "invalid WebSocket URL\0",
            ErrTooBig => "payload too big\0",
            ErrUnsupported => "not supported\0",
            ErrNotOpen => "connection is not open yet\0",
            ErrClosed => "closed\0",
            ErrBackpressure => "output buffer above its high-water mark\0",
            ErrCalledFromCallback => "blocking call from a callback on the reactor thread\0",
            ErrShutDown => "reactor shut down\0",
            ErrAlreadyDone => "already done\0",
            ErrQueueFull => "reactor command queue full\0",
            ErrReconnecting => "connection lost, reconnecting; nothing was sent\0",
            ErrDropped => "message dropped: output buffer above its high-water mark\0",
            ErrProtocol => "WebSocket protocol error\0",
            ErrHandshake => "opening handshake failed\0",
            ErrHandshakeRejected => "server rejected the upgrade\0",
            ErrMessageTooBig => "message exceeds max_payload\0",
            ErrIo => "I/O error\0",
            ErrDns => "host name resolution failed\0",
            ErrConnectionRefused => "connection refused\0",
            ErrTimeout => "timed out\0",
            ErrAddressInUse => "address already in use\0",
            ErrConnectionReset => "connection reset by peer\0",
            ErrTls => "TLS error\0",
            ErrInternal => "internal error\0",
            ErrPanic => "internal panic caught\0",
        }
    }

    /// Maps an I/O error to the closest status.
    pub fn from_io(e: &std::io::Error) -> wsffi_status {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => wsffi_status::ErrConnectionRefused,
            AddrInUse => wsffi_status::ErrAddressInUse,
            TimedOut => wsffi_status::ErrTimeout,
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => wsffi_status::ErrConnectionReset,
            _ => wsffi_status::ErrIo,
        }
    }
}

/// Shorthand used across the crate.
pub type Status = wsffi_status;

impl From<crate::reactor::error::Error> for wsffi_status {
    fn from(e: crate::reactor::error::Error) -> wsffi_status {
        use crate::reactor::error::Error as E;
        match e {
            E::InvalidParameter => wsffi_status::ErrInvalidParameter,
            E::InvalidUrl => wsffi_status::ErrInvalidUrl,
            E::TooBig => wsffi_status::ErrTooBig,
            E::NotOpen => wsffi_status::ErrNotOpen,
            E::Reconnecting => wsffi_status::ErrReconnecting,
            E::Closed => wsffi_status::ErrClosed,
            E::Backpressure => wsffi_status::ErrBackpressure,
            E::CalledFromCallback => wsffi_status::ErrCalledFromCallback,
            E::ShutDown => wsffi_status::ErrShutDown,
            E::AlreadyDone => wsffi_status::ErrAlreadyDone,
            E::QueueFull => wsffi_status::ErrQueueFull,
            E::Dropped => wsffi_status::ErrDropped,
            E::Protocol => wsffi_status::ErrProtocol,
            E::Handshake => wsffi_status::ErrHandshake,
            E::HandshakeRejected => wsffi_status::ErrHandshakeRejected,
            E::MessageTooBig => wsffi_status::ErrMessageTooBig,
            E::Io => wsffi_status::ErrIo,
            E::Dns => wsffi_status::ErrDns,
            E::ConnectionRefused => wsffi_status::ErrConnectionRefused,
            E::Timeout => wsffi_status::ErrTimeout,
            E::AddressInUse => wsffi_status::ErrAddressInUse,
            E::ConnectionReset => wsffi_status::ErrConnectionReset,
            E::Tls => wsffi_status::ErrTls,
            E::Internal => wsffi_status::ErrInternal,
            E::Panic => wsffi_status::ErrPanic,
            E::Unsupported => wsffi_status::ErrUnsupported,
        }
    }
}
