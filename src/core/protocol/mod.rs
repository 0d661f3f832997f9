//! RFC 6455 building blocks: frame headers, masking, UTF-8 validation, close payloads.

pub mod close;
pub mod frame;
pub mod mask;
pub mod utf8;
