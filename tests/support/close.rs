//! The close callback of the Rust tests that drive the C API: one log line per close.
// Each test binary compiles this module and uses its own part of it.
#![allow(dead_code)]

use std::ffi::c_char;

use wsffi::ffi::close_info::{wsffi_close_info, wsffi_close_origin};

/// `len` bytes of a reason the library passed, or "NULL".
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes followed by a NUL byte.
unsafe fn reason(ptr: *const c_char, len: usize) -> String {
    if ptr.is_null() {
        assert_eq!(len, 0, "a NULL reason has no length");
        return "NULL".into();
    }
    // SAFETY: per the contract of `struct wsffi_close_info`, `len` bytes and a NUL.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len + 1) };
    assert_eq!(bytes[len], 0, "reasons are followed by a NUL byte");
    String::from_utf8(bytes[..len].to_vec()).expect("reasons are UTF-8")
}

/// "close <code> <reason> <clean> <origin> peer=<code>:<reason> local=<code>:<reason>", a
/// side without a close frame shown as "0:NULL".
///
/// # Safety
/// `info` is what the library passed to a close callback.
pub unsafe fn close_line(info: *const wsffi_close_info) -> String {
    assert!(!info.is_null());
    // SAFETY: the library passes a valid info for the duration of the callback.
    let i = unsafe { &*info };
    assert_eq!(i.size, std::mem::size_of::<wsffi_close_info>());
    let origin = match i.origin {
        wsffi_close_origin::None => "none",
        wsffi_close_origin::Peer => "peer",
        wsffi_close_origin::Local => "local",
    };
    // SAFETY: the pointers come with their lengths from the library.
    let (r, p, l) = unsafe {
        (
            reason(i.reason, i.reason_len),
            reason(i.peer_reason, i.peer_reason_len),
            reason(i.local_reason, i.local_reason_len),
        )
    };
    assert_ne!(r, "NULL", "the deciding reason is never NULL");
    format!("close {} {r} {} {origin} peer={}:{p} local={}:{l}", i.code, i.was_clean, i.peer_code, i.local_code)
}
