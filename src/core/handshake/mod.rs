//! The HTTP/1.1 upgrade handshake of RFC 6455 §4: WebSocket URLs, request and response
//! parsing and building, header checks. Pure functions over byte buffers, no I/O.

pub mod chunked;
pub mod client;
pub mod headers;
pub mod redirect;
pub mod request;
pub mod response;
pub mod url;

use std::fmt;

/// Why a handshake message was refused; `status` is the HTTP status a server answers with
/// (400, 404, 405, 426, 431, 505 ...), `message` a human sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// HTTP status that describes the problem (a server sends it back as is).
    pub status: u16,
    /// A human sentence naming the cause.
    pub message: String,
}

impl HttpError {
    /// Builds an error from a status and a message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        HttpError { status, message: message.into() }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for HttpError {}

/// One header as received: name as sent (case preserved), value as bytes converted lossily
/// to String (trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Field name exactly as the peer spelled it.
    pub name: String,
    /// Field value without surrounding spaces or tabs; invalid UTF-8 replaced by U+FFFD.
    pub value: String,
}
