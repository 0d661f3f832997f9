//! WebSocket extensions negotiated in the opening handshake.

pub mod deflate;
