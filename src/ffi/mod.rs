//! The C ABI that `include/wsffi.h` declares. Every exported function runs inside the
//! `boundary!` macro, so a panic becomes `WSFFI_ERR_PANIC` instead of unwinding into C.
//! This is the only layer that handles raw pointers.
#![allow(non_camel_case_types)]

pub mod boundary;
pub mod callbacks;
pub mod conn;
pub mod options;
pub mod reactor;
pub mod server;
pub mod status;
pub mod views;
