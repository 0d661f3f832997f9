//! The WebSocket protocol without I/O.

pub mod extensions;
pub mod handshake;
pub mod protocol;
pub mod session;
