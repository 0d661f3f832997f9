//! wsffi: a WebSocket (RFC 6455) client and server with a C ABI.
//!
//! The crate has three layers:
//! - [`core`]: the protocol in plain safe Rust (frames, masking, UTF-8, close codes,
//!   handshakes, the per-connection state machine). It never touches a socket, so tests
//!   drive it with byte slices.
//! - [`reactor`]: one thread per reactor that owns every socket, timer and connection,
//!   built on mio.
//! - [`ffi`]: the thin `extern "C"` skin that `include/wsffi.h` describes. It is the only
//!   place with `unsafe` pointer handling.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod core;
pub mod ffi;
pub mod reactor;
