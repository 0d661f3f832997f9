//! The WebSocket protocol without I/O.

#![forbid(unsafe_code)]

pub mod extensions;
pub mod handshake;
pub mod protocol;
pub mod proxy;
pub mod session;
