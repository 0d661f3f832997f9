//! The C ABI. Every exported function runs inside [`boundary`], so a panic becomes
//! `WSFFI_ERR_PANIC` instead of unwinding into C.
#![allow(non_camel_case_types)]

pub mod callbacks;
pub mod status;
