//! The C ABI that `include/wsffi.h` declares. Every exported function runs inside the
//! `boundary!` macro, so a panic becomes `WSFFI_STATUS_ERR_PANIC` instead of unwinding into C.
//! This is the only layer that handles raw pointers.
#![allow(non_camel_case_types)]
// Exported functions take raw pointers from C and check them for NULL before use; marking
// them `unsafe fn` would change nothing for C callers. C signatures set the argument count.
#![allow(clippy::not_unsafe_ptr_arg_deref, clippy::too_many_arguments)]

pub mod boundary;
pub mod callbacks;
pub mod close_info;
pub mod conn;
pub mod deflate_options;
pub mod dispatch;
pub mod extensible;
pub mod handles;
pub mod log;
pub mod options;
pub mod reactor;
pub mod server;
pub mod stats;
pub mod status;
pub mod timers;
pub mod tls_options;
pub mod topics;
pub mod views;
