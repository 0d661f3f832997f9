//! The connection state machine as a client: hostile input fed in chunks, and the round
//! trip of what the peer's writer produces. See `common/session.rs` for the input layout.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wsffi::core::session::Role;

fuzz_target!(|data: &[u8]| common::session::run(Role::Client, data));
