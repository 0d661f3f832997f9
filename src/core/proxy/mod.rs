//! Client-side proxies without I/O: proxy URLs, the HTTP `CONNECT` exchange, SOCKS5 messages
//! (RFC 1928, RFC 1929) and the curl-style environment variables with `no_proxy`.

pub mod connect;
pub mod env;
pub mod socks5;
pub mod url;

pub use url::{parse_proxy_url, ProxyKind, ProxyUrl};
