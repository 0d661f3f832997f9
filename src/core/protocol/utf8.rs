//! Incremental, fail-fast UTF-8 validation for text messages that arrive in pieces.

use std::fmt;

/// Validates UTF-8 across piece boundaries, rejecting as soon as the bytes seen
/// so far cannot be a prefix of valid UTF-8.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    /// Bytes of an incomplete code point carried over from the previous piece.
    pending: [u8; 4],
    /// Number of valid bytes in `pending` (0..=3).
    pending_len: u8,
}

/// The input is not valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utf8Error;

impl fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for Utf8Error {}

/// Encoded length implied by a lead byte that std has already accepted as a
/// valid prefix (so only C2..=F4 reach here).
#[inline]
fn seq_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// A validator with no pending bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next piece. `Err` as soon as the input cannot be valid.
    ///
    /// After an error the state is unspecified until [`reset`](Self::reset) or
    /// [`finish`](Self::finish) (the message is rejected anyway).
    pub fn feed(&mut self, piece: &[u8]) -> Result<(), Utf8Error> {
        let mut rest = piece;
        let plen = usize::from(self.pending_len);
        if plen > 0 {
            let need = seq_len(self.pending[0]).saturating_sub(plen);
            let take = need.min(rest.len());
            let (head, tail) = rest.split_at(take);
            let end = plen + take;
            // plen <= 3 and take <= need <= 4 - plen, so end <= 4.
            if let Some(slot) = self.pending.get_mut(plen..end) {
                slot.copy_from_slice(head);
            }
            match std::str::from_utf8(self.pending.get(..end).unwrap_or(&[])) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix; the piece was too short to finish it.
                    self.pending_len = end as u8;
                    return Ok(());
                }
                Err(_) => return Err(Utf8Error),
            }
            rest = tail;
        }
        match std::str::from_utf8(rest) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                // std reports a truncated but so-far-valid sequence at the end
                // (at most 3 bytes); keep it for the next piece.
                let tail = rest.get(e.valid_up_to()..).unwrap_or(&[]);
                let n = tail.len().min(3);
                self.pending[..n].copy_from_slice(&tail[..n]);
                self.pending_len = n as u8;
                Ok(())
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// The message ended: `Err` if a code point is incomplete. Resets the validator either way.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let clean = self.is_clean();
        self.reset();
        if clean {
            Ok(())
        } else {
            Err(Utf8Error)
        }
    }

    /// Forgets any pending partial code point.
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// True when no partial code point is pending.
    pub fn is_clean(&self) -> bool {
        self.pending_len == 0
    }
}

/// Whole-buffer check (fast path for a text message that arrived in one piece).
#[inline]
pub fn validate(bytes: &[u8]) -> Result<(), Utf8Error> {
    std::str::from_utf8(bytes).map(|_| ()).map_err(|_| Utf8Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `pieces` then finishes; the first error wins.
    fn run(pieces: &[&[u8]]) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        for p in pieces {
            v.feed(p)?;
        }
        v.finish()
    }

    const VALID: &[&str] = &[
        "",
        "hello",
        "κόσμε",
        "Hello-µ@ßöäüàá-UTF-8!!",
        "\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}",
        "\u{D7FF}\u{E000}",
        "a😀b€c",
    ];

    /// Invalid sequences, each detectable before the end of input.
    const INVALID: &[&[u8]] = &[
        &[0xF4, 0x90],       // above U+10FFFF
        &[0xED, 0xA0],       // surrogate
        &[0xC0],             // overlong lead
        &[0xC1, 0xBF],       // overlong lead
        &[0xF5],             // lead beyond range
        &[0xFF],             // never valid
        &[0xE0, 0x80],       // overlong 3-byte
        &[0xF0, 0x80],       // overlong 4-byte
        &[0x80],             // stray continuation
        &[0xC2, 0x41],       // missing continuation
        &[0xE2, 0x82, 0x41], // missing last continuation
        &[
            0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74,
            0x65, 0x64,
        ],
    ];

    #[test]
    fn whole_buffer() {
        for s in VALID {
            assert_eq!(validate(s.as_bytes()), Ok(()));
            assert_eq!(run(&[s.as_bytes()]), Ok(()));
        }
        for b in INVALID {
            assert_eq!(validate(b), Err(Utf8Error), "{b:02X?}");
            assert_eq!(run(&[b]), Err(Utf8Error), "{b:02X?}");
        }
        // Truncated at end of message.
        assert_eq!(validate(&[0xE2, 0x82]), Err(Utf8Error));
    }

    #[test]
    fn valid_split_in_two_at_every_position() {
        for s in VALID {
            let b = s.as_bytes();
            for i in 0..=b.len() {
                assert_eq!(run(&[&b[..i], &b[i..]]), Ok(()), "{s} @ {i}");
            }
        }
    }

    #[test]
    fn valid_split_in_three_at_every_position() {
        for s in VALID {
            let b = s.as_bytes();
            for i in 0..=b.len() {
                for j in i..=b.len() {
                    assert_eq!(run(&[&b[..i], &b[i..j], &b[j..]]), Ok(()), "{s} @ {i},{j}");
                }
            }
        }
    }

    #[test]
    fn invalid_split_at_every_position() {
        for b in INVALID {
            for i in 0..=b.len() {
                assert_eq!(run(&[&b[..i], &b[i..]]), Err(Utf8Error), "{b:02X?} @ {i}");
                for j in i..=b.len() {
                    assert_eq!(run(&[&b[..i], &b[i..j], &b[j..]]), Err(Utf8Error), "{b:02X?} @ {i},{j}");
                }
            }
        }
    }

    #[test]
    fn invalid_detected_without_finish() {
        // Fail fast: the error must come from feed(), never only from finish().
        for b in INVALID {
            for i in 0..=b.len() {
                let mut v = Utf8Validator::new();
                let r = v.feed(&b[..i]).and_then(|_| v.feed(&b[i..]));
                assert_eq!(r, Err(Utf8Error), "{b:02X?} @ {i}");
            }
            let mut v = Utf8Validator::new();
            let r = b.iter().try_for_each(|&x| v.feed(&[x]));
            assert_eq!(r, Err(Utf8Error), "{b:02X?} byte-wise");
        }
    }

    #[test]
    fn fail_fast_immediately() {
        for b in [&[0xF4u8, 0x90][..], &[0xED, 0xA0], &[0xC0], &[0xF5], &[0xE0, 0x80]] {
            assert_eq!(Utf8Validator::new().feed(b), Err(Utf8Error), "{b:02X?}");
        }
        // Second byte of a bad pair arriving alone in the next piece.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[b'a', 0xF4]), Ok(()));
        assert!(!v.is_clean());
        assert_eq!(v.feed(&[0x90]), Err(Utf8Error));
    }

    #[test]
    fn four_byte_char_one_byte_at_a_time() {
        let b = "😀".as_bytes();
        assert_eq!(b.len(), 4);
        let mut v = Utf8Validator::new();
        for (i, &x) in b.iter().enumerate() {
            assert_eq!(v.feed(&[x]), Ok(()));
            assert_eq!(v.is_clean(), i == 3);
        }
        assert_eq!(v.finish(), Ok(()));

        // The largest code point, likewise.
        let mut v = Utf8Validator::new();
        for &x in "\u{10FFFF}".as_bytes() {
            assert_eq!(v.feed(&[x]), Ok(()));
        }
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn empty_pieces_are_harmless() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(&[]), Ok(()));
        assert_eq!(v.feed(&[0xE2]), Ok(()));
        assert_eq!(v.feed(&[]), Ok(()));
        assert_eq!(v.feed(&[0x82]), Ok(()));
        assert_eq!(v.feed(&[]), Ok(()));
        assert_eq!(v.feed(&[0xAC, b'x']), Ok(()));
        assert!(v.is_clean());
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn finish_with_dangling_bytes() {
        for b in [&[0xC2u8][..], &[0xE2], &[0xE2, 0x82], &[0xF0, 0x9F, 0x98], &[b'a', 0xF4, 0x8F]] {
            let mut v = Utf8Validator::new();
            assert_eq!(v.feed(b), Ok(()), "{b:02X?}");
            assert!(!v.is_clean());
            assert_eq!(v.finish(), Err(Utf8Error));
            // finish() resets, so the next message starts clean.
            assert!(v.is_clean());
            assert_eq!(v.feed(b"ok"), Ok(()));
            assert_eq!(v.finish(), Ok(()));
        }
    }

    #[test]
    fn reset_discards_pending() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xF0, 0x9F]).unwrap();
        v.reset();
        assert!(v.is_clean());
        // A continuation byte would now be stray.
        assert_eq!(v.feed(&[0x98]), Err(Utf8Error));
    }

    #[test]
    fn pending_completed_then_more_text_checked() {
        let mut v = Utf8Validator::new();
        v.feed(&[0xE2, 0x82]).unwrap();
        // Completes the euro sign, then an invalid byte in the same piece.
        assert_eq!(v.feed(&[0xAC, b'a', 0xFF]), Err(Utf8Error));
        let mut v = Utf8Validator::new();
        v.feed(&[0xE2, 0x82]).unwrap();
        assert_eq!(v.feed(&[0xAC, 0xF0, 0x9F]), Ok(()));
        assert!(!v.is_clean());
        assert_eq!(v.feed(&[0x98, 0x80]), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }
}
