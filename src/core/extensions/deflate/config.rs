//! What an endpoint is willing to use ([`DeflateConfig`]) and what both ends agreed
//! ([`Agreed`]).

/// What an endpoint is willing to use (options set by the application).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Server: always include it in the response (the server then compresses every
    /// message from an empty window). Client: request it in the offer.
    pub server_no_context_takeover: bool,
    /// Client: promise it in the offer (the client resets its compressor after every
    /// message). Server: require it from the client in the response.
    pub client_no_context_takeover: bool,
    /// Largest window (log2 bytes, 8..=15) for what the server compresses. Server: its
    /// own limit. Client: requested in the offer when below 15. Default 15 (no parameter).
    pub server_max_window_bits: u8,
    /// Largest window (log2 bytes, 8..=15) for what the client compresses. Client: sent
    /// as the hint value in the offer when below 15. Server: imposed on clients that
    /// offer `client_max_window_bits`; offers without it are declined when this is below
    /// 15, since the server could not limit the client's window. Default 15.
    pub client_max_window_bits: u8,
    /// Messages shorter than this many bytes are sent uncompressed. Default 64: below
    /// that the saving is a few bytes at best and not worth the CPU time (Node's `ws`
    /// uses 1024, which leaves most small JSON messages uncompressed).
    pub threshold: usize,
    /// zlib compression level 0..=9. Default 6, zlib's own default. Level 1 is two to
    /// four times faster; its output is about 15% larger on small JSON messages with
    /// context takeover and up to 50% larger on messages of a few KB.
    pub level: u32,
    /// zlib memory level 1..=9 (hash table and buffer size: about
    /// `2^(mem_level + 9)` bytes besides the `2^(window_bits + 2)` bytes of window).
    /// Default 8, zlib's default; lower it to save memory on many idle connections.
    pub mem_level: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            threshold: 64,
            level: 6,
            mem_level: 8,
        }
    }
}

impl DeflateConfig {
    /// Checks every field's range; the error names the first bad field.
    ///
    /// The constructors never panic on a bad configuration (they clamp), but an
    /// application should be told about it when it sets the options.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !(8..=15).contains(&self.server_max_window_bits) {
            return Err("server_max_window_bits must be in 8..=15");
        }
        if !(8..=15).contains(&self.client_max_window_bits) {
            return Err("client_max_window_bits must be in 8..=15");
        }
        if self.level > 9 {
            return Err("level must be in 0..=9");
        }
        if !(1..=9).contains(&self.mem_level) {
            return Err("mem_level must be in 1..=9");
        }
        Ok(())
    }
}

/// Parameters agreed for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message.
    pub client_no_context_takeover: bool,
    /// Largest window (log2 bytes) the server compresses with.
    pub server_max_window_bits: u8,
    /// Largest window (log2 bytes) the client compresses with.
    pub client_max_window_bits: u8,
}

impl Default for Agreed {
    /// Plain `permessage-deflate` without parameters.
    fn default() -> Self {
        Agreed {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// A window size brought into the range RFC 7692 allows (8..=15).
pub(super) fn clamp_bits(b: u8) -> u8 {
    b.clamp(8, 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_validate() {
        let c = DeflateConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!((c.server_max_window_bits, c.client_max_window_bits), (15, 15));
        assert_eq!((c.threshold, c.level, c.mem_level), (64, 6, 8));
        for bad in [
            DeflateConfig { server_max_window_bits: 7, ..c },
            DeflateConfig { server_max_window_bits: 16, ..c },
            DeflateConfig { client_max_window_bits: 7, ..c },
            DeflateConfig { client_max_window_bits: 16, ..c },
            DeflateConfig { level: 10, ..c },
            DeflateConfig { mem_level: 0, ..c },
            DeflateConfig { mem_level: 10, ..c },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        for ok in [
            DeflateConfig { server_max_window_bits: 8, client_max_window_bits: 8, ..c },
            DeflateConfig { level: 0, mem_level: 1, ..c },
            DeflateConfig { level: 9, mem_level: 9, ..c },
        ] {
            assert_eq!(ok.validate(), Ok(()));
        }
    }
}
