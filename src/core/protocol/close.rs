//! Close frame payloads and status codes (RFC 6455 §5.5.1, §7.4).

use std::fmt;

/// Close codes of RFC 6455 §7.4 that wsffi names.
pub mod codes {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Received a data type it cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// No status code was present (never sent on the wire).
    pub const NO_STATUS: u16 = 1005;
    /// Connection dropped without a close frame (never sent on the wire).
    pub const ABNORMAL: u16 = 1006;
    /// Message data inconsistent with its type (e.g. invalid UTF-8 text).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Message violates the endpoint's policy.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Client expected the server to negotiate an extension.
    pub const MANDATORY_EXTENSION: u16 = 1010;
    /// Server hit an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Service is restarting.
    pub const SERVICE_RESTART: u16 = 1012;
    /// Temporary overload; try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Gateway received an invalid upstream response.
    pub const BAD_GATEWAY: u16 = 1014;
    /// TLS handshake failed (never sent on the wire).
    pub const TLS_HANDSHAKE: u16 = 1015;
}

/// Maximum reason length in bytes (125 - 2).
pub const MAX_REASON_LEN: usize = 123;

/// May this code appear in a received close frame? 1000-1003, 1007-1014, 3000-4999.
/// (1004, 1005, 1006, 1015, <1000, 1016-2999, >=5000 are invalid on the wire.)
#[inline]
pub fn is_valid_wire_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// May an application send this code? Same set as [`is_valid_wire_code`].
#[inline]
pub fn is_sendable_code(code: u16) -> bool {
    // Anything the peer would reject must not be sent either.
    is_valid_wire_code(code)
}

/// Reasons a received close payload is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosePayloadError {
    /// Payload of exactly one byte (a code needs two).
    OneByte,
    /// Status code not allowed on the wire.
    InvalidCode(u16),
    /// Reason is not valid UTF-8.
    InvalidUtf8,
}

impl ClosePayloadError {
    /// Close code to answer this error with.
    pub fn close_code(&self) -> u16 {
        match self {
            ClosePayloadError::InvalidUtf8 => codes::INVALID_PAYLOAD,
            _ => codes::PROTOCOL_ERROR,
        }
    }

    /// Short human-readable description.
    pub fn message(&self) -> &'static str {
        match self {
            ClosePayloadError::OneByte => "close payload of one byte",
            ClosePayloadError::InvalidCode(_) => "invalid close code",
            ClosePayloadError::InvalidUtf8 => "close reason is not valid UTF-8",
        }
    }
}

impl fmt::Display for ClosePayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ClosePayloadError {}

/// Parses a received close payload: empty -> `Ok(None)` (means 1005, no status);
/// 1 byte -> error; else code (validated) + reason (validated UTF-8, borrowed).
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<(u16, &str)>, ClosePayloadError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ClosePayloadError::OneByte),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_wire_code(code) {
                return Err(ClosePayloadError::InvalidCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| ClosePayloadError::InvalidUtf8)?;
            Ok(Some((code, reason)))
        }
    }
}

/// Appends code (big-endian) + reason to `out`. Caller guarantees
/// `reason.len() <= MAX_REASON_LEN` so the control frame stays within 125 bytes.
pub fn encode_close_payload(out: &mut Vec<u8>, code: u16, reason: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_codes() {
        let cases: &[(u16, bool)] = &[
            (0, false),
            (999, false),
            (1000, true),
            (1001, true),
            (1002, true),
            (1003, true),
            (1004, false),
            (1005, false),
            (1006, false),
            (1007, true),
            (1008, true),
            (1011, true),
            (1014, true),
            (1015, false),
            (1016, false),
            (2999, false),
            (3000, true),
            (4000, true),
            (4999, true),
            (5000, false),
            (65535, false),
        ];
        for &(code, ok) in cases {
            assert_eq!(is_valid_wire_code(code), ok, "wire {code}");
            assert_eq!(is_sendable_code(code), ok, "send {code}");
            let payload = code.to_be_bytes();
            let r = parse_close_payload(&payload);
            if ok {
                assert_eq!(r, Ok(Some((code, ""))), "parse {code}");
            } else {
                assert_eq!(r, Err(ClosePayloadError::InvalidCode(code)), "parse {code}");
            }
        }
    }

    #[test]
    fn named_codes() {
        use codes::*;
        for c in [
            NORMAL,
            GOING_AWAY,
            PROTOCOL_ERROR,
            UNSUPPORTED_DATA,
            INVALID_PAYLOAD,
            POLICY_VIOLATION,
            MESSAGE_TOO_BIG,
            MANDATORY_EXTENSION,
            INTERNAL_ERROR,
            SERVICE_RESTART,
            TRY_AGAIN_LATER,
            BAD_GATEWAY,
        ] {
            assert!(is_sendable_code(c), "{c}");
        }
        for c in [NO_STATUS, ABNORMAL, TLS_HANDSHAKE] {
            assert!(!is_valid_wire_code(c), "{c}");
        }
    }

    #[test]
    fn empty_and_one_byte() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
        assert_eq!(parse_close_payload(&[0x03]), Err(ClosePayloadError::OneByte));
        assert_eq!(ClosePayloadError::OneByte.close_code(), codes::PROTOCOL_ERROR);
    }

    #[test]
    fn code_and_reason() {
        assert_eq!(parse_close_payload(&[0x03, 0xE8, b'b', b'y', b'e']), Ok(Some((1000, "bye"))));
        let mut p = vec![0x0F, 0xA0]; // 4000
        p.extend_from_slice("κόσμε".as_bytes());
        assert_eq!(parse_close_payload(&p), Ok(Some((4000, "κόσμε"))));
        // Code is checked before the reason.
        assert_eq!(parse_close_payload(&[0x03, 0xED, 0xFF]), Err(ClosePayloadError::InvalidCode(1005)));
    }

    #[test]
    fn bad_utf8_reasons() {
        let bad: &[&[u8]] = &[
            &[0xFF],
            &[0xC0, 0x80],
            &[0xED, 0xA0, 0x80],
            &[0xF4, 0x90, 0x80, 0x80],
            &[b'o', b'k', 0xE2, 0x82], // truncated at end
            &[0x80],
        ];
        for r in bad {
            let mut p = vec![0x03, 0xE8];
            p.extend_from_slice(r);
            assert_eq!(parse_close_payload(&p), Err(ClosePayloadError::InvalidUtf8), "{r:02X?}");
        }
        assert_eq!(ClosePayloadError::InvalidUtf8.close_code(), codes::INVALID_PAYLOAD);
    }

    #[test]
    fn encode_exact_bytes_and_roundtrip() {
        let mut out = vec![0xAA];
        encode_close_payload(&mut out, 1001, b"bye");
        assert_eq!(out, [0xAA, 0x03, 0xE9, b'b', b'y', b'e']);

        let mut out = Vec::new();
        encode_close_payload(&mut out, 4999, b"");
        assert_eq!(out, [0x13, 0x87]);

        let reason = "é".repeat(MAX_REASON_LEN / 2) + "x";
        assert_eq!(reason.len(), MAX_REASON_LEN);
        let mut out = Vec::new();
        encode_close_payload(&mut out, codes::NORMAL, reason.as_bytes());
        assert_eq!(out.len(), 125);
        assert_eq!(parse_close_payload(&out), Ok(Some((1000, reason.as_str()))));
    }

    #[test]
    fn error_text() {
        assert_eq!(ClosePayloadError::InvalidCode(5).to_string(), "invalid close code");
        assert!(!ClosePayloadError::OneByte.message().is_empty());
    }
}
