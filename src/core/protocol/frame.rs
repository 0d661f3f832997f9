//! Frame header parsing and encoding (RFC 6455 §5.2).

use std::fmt;

/// Frame opcodes of RFC 6455 §5.2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continue = 0,
    /// First frame of a text message.
    Text = 1,
    /// First frame of a binary message.
    Binary = 2,
    /// Connection close.
    Close = 8,
    /// Ping.
    Ping = 9,
    /// Pong.
    Pong = 10,
}

impl OpCode {
    /// Decodes a 4-bit opcode; `None` for the reserved values 3-7 and 0xB-0xF.
    #[inline]
    pub fn from_u8(v: u8) -> Option<OpCode> {
        match v {
            0 => Some(OpCode::Continue),
            1 => Some(OpCode::Text),
            2 => Some(OpCode::Binary),
            8 => Some(OpCode::Close),
            9 => Some(OpCode::Ping),
            10 => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// True for Close, Ping and Pong.
    #[inline]
    pub fn is_control(self) -> bool {
        // Control opcodes are exactly those with the high bit of the nibble set.
        (self as u8) & 0x08 != 0
    }

    /// The 4-bit wire value.
    #[inline]
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1 bit (used by permessage-deflate).
    pub rsv1: bool,
    /// RSV2 bit.
    pub rsv2: bool,
    /// RSV3 bit.
    pub rsv3: bool,
    /// Frame opcode.
    pub opcode: OpCode,
    /// Masking key, present when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

/// Reasons a frame header is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Opcode 3-7 or 0xB-0xF.
    ReservedOpcode(u8),
    /// Control frame payload longer than 125 bytes (or using the 126/127 length form).
    ControlTooLong,
    /// Control frame with FIN = 0.
    ControlFragmented,
    /// 64-bit length with the most significant bit set.
    LengthMsbSet,
    /// Extended length form used for a length that fits a shorter form.
    NonMinimalLength,
}

impl HeaderError {
    /// Short human-readable description.
    pub fn message(&self) -> &'static str {
        match self {
            HeaderError::ReservedOpcode(_) => "reserved opcode",
            HeaderError::ControlTooLong => "control frame payload too long",
            HeaderError::ControlFragmented => "fragmented control frame",
            HeaderError::LengthMsbSet => "64-bit payload length has the most significant bit set",
            HeaderError::NonMinimalLength => "payload length not in minimal form",
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HeaderError {}

/// Maximum encoded header size (2 + 8 + 4).
pub const MAX_HEADER_LEN: usize = 14;

/// Parses one frame header from the start of `buf`. `Ok(None)` = need more bytes.
///
/// `Ok(Some((header, header_len)))` on success. Does not look at RSV bits or
/// masking policy (the caller does; they depend on role and extensions).
/// Errors detectable from the bytes already present are reported even if the
/// header is still incomplete, so a bad peer is rejected as early as possible.
#[inline]
pub fn parse_header(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, HeaderError> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };

    let raw_op = b0 & 0x0F;
    let opcode = match OpCode::from_u8(raw_op) {
        Some(op) => op,
        None => return Err(HeaderError::ReservedOpcode(raw_op)),
    };
    let fin = b0 & 0x80 != 0;
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;

    if opcode.is_control() {
        if !fin {
            return Err(HeaderError::ControlFragmented);
        }
        // 126/127 are the extended-length markers, so this also rejects them.
        if len7 > 125 {
            return Err(HeaderError::ControlTooLong);
        }
    }

    let (payload_len, mut pos) = match len7 {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => {
                let n = u16::from_be_bytes([a, b]);
                if n < 126 {
                    return Err(HeaderError::NonMinimalLength);
                }
                (u64::from(n), 4)
            }
            _ => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(&[a, b, c, d, e, f, g, h]) => {
                let n = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
                if n & (1 << 63) != 0 {
                    return Err(HeaderError::LengthMsbSet);
                }
                if n <= 0xFFFF {
                    return Err(HeaderError::NonMinimalLength);
                }
                (n, 10)
            }
            _ => return Ok(None),
        },
        n => (u64::from(n), 2),
    };

    let mask = if masked {
        match buf.get(pos..pos + 4) {
            Some(&[a, b, c, d]) => {
                pos += 4;
                Some([a, b, c, d])
            }
            _ => return Ok(None),
        }
    } else {
        None
    };

    Ok(Some((
        FrameHeader {
            fin,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode,
            mask,
            payload_len,
        },
        pos,
    )))
}

/// Appends an encoded header (minimal length form) to `out`.
///
/// `payload_len` must be below 2^63 (any real buffer is).
pub fn encode_header(
    out: &mut Vec<u8>,
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload_len: usize,
) {
    let mut tmp = [0u8; MAX_HEADER_LEN];
    let n = encode_header_into(&mut tmp, fin, rsv1, opcode, mask, payload_len);
    out.extend_from_slice(&tmp[..n]);
}

/// Same as [`encode_header`], writing into a stack array; returns the used length.
#[inline]
pub fn encode_header_into(
    dst: &mut [u8; MAX_HEADER_LEN],
    fin: bool,
    rsv1: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload_len: usize,
) -> usize {
    dst[0] = (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode.as_u8();
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload_len as u64;
    let mut pos = if len < 126 {
        dst[1] = mask_bit | len as u8;
        2
    } else if len <= 0xFFFF {
        dst[1] = mask_bit | 126;
        dst[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        dst[1] = mask_bit | 127;
        dst[2..10].copy_from_slice(&len.to_be_bytes());
        10
    };
    if let Some(key) = mask {
        dst[pos..pos + 4].copy_from_slice(&key);
        pos += 4;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(fin: bool, rsv1: bool, op: OpCode, mask: Option<[u8; 4]>, len: usize) -> Vec<u8> {
        let mut v = Vec::new();
        encode_header(&mut v, fin, rsv1, op, mask, len);
        let mut arr = [0u8; MAX_HEADER_LEN];
        let n = encode_header_into(&mut arr, fin, rsv1, op, mask, len);
        assert_eq!(&arr[..n], &v[..]);
        v
    }

    #[test]
    fn opcode_roundtrip_and_reserved() {
        for v in 0u8..=0x0F {
            match OpCode::from_u8(v) {
                Some(op) => {
                    assert_eq!(op.as_u8(), v);
                    assert_eq!(op.is_control(), v >= 8);
                }
                None => assert!((3..=7).contains(&v) || v >= 0x0B),
            }
        }
        assert_eq!(OpCode::from_u8(0x10), None);
        assert!(!OpCode::Continue.is_control());
        assert!(!OpCode::Text.is_control());
        assert!(!OpCode::Binary.is_control());
        assert!(OpCode::Close.is_control());
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Pong.is_control());
    }

    #[test]
    fn rfc_example_unmasked_text() {
        // RFC 6455 §5.7: single-frame unmasked "Hello".
        let buf = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let (h, n) = parse_header(&buf).unwrap().unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            h,
            FrameHeader {
                fin: true,
                rsv1: false,
                rsv2: false,
                rsv3: false,
                opcode: OpCode::Text,
                mask: None,
                payload_len: 5
            }
        );
        assert_eq!(enc(true, false, OpCode::Text, None, 5), vec![0x81, 0x05]);
    }

    #[test]
    fn rfc_example_masked_text() {
        // RFC 6455 §5.7: single-frame masked "Hello".
        let buf = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
        let (h, n) = parse_header(&buf).unwrap().unwrap();
        assert_eq!(n, 6);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(h.payload_len, 5);
        assert_eq!(enc(true, false, OpCode::Text, Some([0x37, 0xfa, 0x21, 0x3d]), 5), buf[..6].to_vec());
    }

    #[test]
    fn rfc_example_fragments_and_ping() {
        // RFC 6455 §5.7: fragmented "Hel" + "lo", and unmasked ping "Hello".
        let (h, _) = parse_header(&[0x01, 0x03]).unwrap().unwrap();
        assert!(!h.fin);
        assert_eq!(h.opcode, OpCode::Text);
        let (h, _) = parse_header(&[0x80, 0x02]).unwrap().unwrap();
        assert!(h.fin);
        assert_eq!(h.opcode, OpCode::Continue);
        let (h, _) = parse_header(&[0x89, 0x05]).unwrap().unwrap();
        assert_eq!(h.opcode, OpCode::Ping);
        assert_eq!(h.payload_len, 5);
    }

    #[test]
    fn rfc_example_256_and_64k() {
        // RFC 6455 §5.7: 256 bytes and 64 KiB binary, unmasked.
        let h256 = [0x82, 0x7E, 0x01, 0x00];
        let (h, n) = parse_header(&h256).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (256, 4));
        assert_eq!(enc(true, false, OpCode::Binary, None, 256), h256.to_vec());

        let h64k = [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
        let (h, n) = parse_header(&h64k).unwrap().unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
        assert_eq!(enc(true, false, OpCode::Binary, None, 65536), h64k.to_vec());
    }

    #[test]
    fn length_form_boundaries() {
        assert_eq!(enc(true, false, OpCode::Binary, None, 0), vec![0x82, 0]);
        assert_eq!(enc(true, false, OpCode::Binary, None, 125), vec![0x82, 125]);
        assert_eq!(enc(true, false, OpCode::Binary, None, 126), vec![0x82, 126, 0, 126]);
        assert_eq!(enc(true, false, OpCode::Binary, None, 0xFFFF), vec![0x82, 126, 0xFF, 0xFF]);
        assert_eq!(enc(true, false, OpCode::Binary, None, 0x1_0000), vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn rsv_bits_and_fin() {
        assert_eq!(enc(false, true, OpCode::Text, None, 1), vec![0x41, 1]);
        let (h, _) = parse_header(&[0xF2, 0x00]).unwrap().unwrap();
        assert!(h.fin && h.rsv1 && h.rsv2 && h.rsv3);
        let (h, _) = parse_header(&[0x22, 0x00]).unwrap().unwrap();
        assert!(!h.fin && !h.rsv1 && h.rsv2 && !h.rsv3);
    }

    #[test]
    fn roundtrip_all_forms() {
        let key = Some([1, 2, 3, 4]);
        for &len in &[0usize, 1, 125, 126, 127, 1000, 0xFFFF, 0x1_0000, 1 << 40] {
            for &mask in &[None, key] {
                for &op in &[OpCode::Continue, OpCode::Text, OpCode::Binary] {
                    for &(fin, rsv1) in &[(true, false), (false, true)] {
                        let v = enc(fin, rsv1, op, mask, len);
                        let (h, n) = parse_header(&v).unwrap().unwrap();
                        assert_eq!(n, v.len());
                        assert_eq!(h.fin, fin);
                        assert_eq!(h.rsv1, rsv1);
                        assert_eq!(h.opcode, op);
                        assert_eq!(h.mask, mask);
                        assert_eq!(h.payload_len, len as u64);
                    }
                }
            }
        }
        let v = enc(true, false, OpCode::Binary, key, 1 << 40);
        assert_eq!(v.len(), MAX_HEADER_LEN);
    }

    #[test]
    fn incomplete_returns_none_at_every_prefix() {
        let full = enc(true, false, OpCode::Binary, Some([9, 8, 7, 6]), 0x1_0000);
        for cut in 0..full.len() {
            assert_eq!(parse_header(&full[..cut]), Ok(None), "cut {cut}");
        }
        let full = enc(true, false, OpCode::Binary, Some([9, 8, 7, 6]), 300);
        for cut in 0..full.len() {
            assert_eq!(parse_header(&full[..cut]), Ok(None), "cut {cut}");
        }
        // Trailing payload bytes are not part of the header.
        let mut v = full.clone();
        v.extend_from_slice(&[0xAA; 5]);
        assert_eq!(parse_header(&v).unwrap().unwrap().1, full.len());
    }

    #[test]
    fn reserved_opcodes_rejected() {
        for op in (3u8..=7).chain(0x0B..=0x0F) {
            assert_eq!(parse_header(&[0x80 | op, 0]), Err(HeaderError::ReservedOpcode(op)));
        }
    }

    #[test]
    fn control_frame_rules() {
        // 125 is the largest allowed control payload.
        let (h, _) = parse_header(&[0x88, 125]).unwrap().unwrap();
        assert_eq!(h.payload_len, 125);
        for op in [0x88u8, 0x89, 0x8A] {
            assert_eq!(parse_header(&[op, 126]), Err(HeaderError::ControlTooLong));
            assert_eq!(parse_header(&[op, 127]), Err(HeaderError::ControlTooLong));
            assert_eq!(parse_header(&[op, 0xFE, 0, 200]), Err(HeaderError::ControlTooLong));
            assert_eq!(parse_header(&[op & 0x7F, 0]), Err(HeaderError::ControlFragmented));
        }
    }

    #[test]
    fn non_minimal_lengths_rejected() {
        assert_eq!(parse_header(&[0x82, 126, 0, 125]), Err(HeaderError::NonMinimalLength));
        assert_eq!(parse_header(&[0x82, 126, 0, 0]), Err(HeaderError::NonMinimalLength));
        assert_eq!(parse_header(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]), Err(HeaderError::NonMinimalLength));
        assert_eq!(parse_header(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5]), Err(HeaderError::NonMinimalLength));
        // Detected before the masking key arrives.
        assert_eq!(parse_header(&[0x82, 0xFE, 0, 1]), Err(HeaderError::NonMinimalLength));
    }

    #[test]
    fn msb_length_rejected() {
        assert_eq!(parse_header(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]), Err(HeaderError::LengthMsbSet));
        assert_eq!(
            parse_header(&[0x82, 127, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Err(HeaderError::LengthMsbSet)
        );
        let (h, _) = parse_header(&[0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]).unwrap().unwrap();
        assert_eq!(h.payload_len, i64::MAX as u64);
    }

    #[test]
    fn error_messages() {
        assert_eq!(HeaderError::ReservedOpcode(3).message(), "reserved opcode");
        assert_eq!(HeaderError::ReservedOpcode(3).to_string(), "reserved opcode");
        for e in [
            HeaderError::ControlTooLong,
            HeaderError::ControlFragmented,
            HeaderError::LengthMsbSet,
            HeaderError::NonMinimalLength,
        ] {
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn never_panics_on_any_short_input() {
        // Exhaustive over the first two bytes, with a few tails.
        for b0 in 0..=255u8 {
            for b1 in 0..=255u8 {
                for tail in [&[][..], &[0xFF; 3][..], &[0x00; 12][..], &[0x7F; 12][..]] {
                    let mut v = vec![b0, b1];
                    v.extend_from_slice(tail);
                    if let Ok(Some((_, n))) = parse_header(&v) {
                        assert!(n <= v.len() && n <= MAX_HEADER_LEN);
                    }
                }
            }
        }
    }
}
