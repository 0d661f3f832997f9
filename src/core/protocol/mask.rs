//! Payload masking (RFC 6455 §5.3).

/// The key rotated so that index 0 applies to payload byte `offset`.
#[inline]
fn rotated(key: [u8; 4], offset: usize) -> [u8; 4] {
    let mut k = key;
    k.rotate_left(offset % 4);
    k
}

/// The 4-byte key repeated to 8 bytes, in memory order, so XOR with
/// `u64::from_ne_bytes` of a chunk is correct on any endianness.
#[inline]
fn wide_key(k: [u8; 4]) -> u64 {
    u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]])
}

/// XORs `buf` in place with `key`, where `buf[0]` is payload byte number `offset`
/// (so a payload unmasked in several pieces gives the same result as one pass).
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let k = rotated(key, offset);
    let wide = wide_key(k);
    // Four words per iteration gives the optimiser a block it can vectorise.
    let mut big = buf.chunks_exact_mut(32);
    for chunk in &mut big {
        for word in chunk.chunks_exact_mut(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            word.copy_from_slice(&(u64::from_ne_bytes(w) ^ wide).to_ne_bytes());
        }
    }
    // Every chunk length is a multiple of 4, so the tail starts key-aligned.
    for (i, b) in big.into_remainder().iter_mut().enumerate() {
        *b ^= k[i & 3];
    }
}

/// Appends `src` masked with `key` (payload offset 0) to `out` in one pass
/// (copy + mask without a second traversal).
pub fn extend_masked(out: &mut Vec<u8>, src: &[u8], key: [u8; 4]) {
    // Copy then mask block by block: each block is masked while still in L1,
    // so memory is traversed once, and both steps run at memcpy-like speed
    // (element-wise pushes would defeat vectorisation).
    const BLOCK: usize = 4096;
    out.reserve(src.len());
    let mut offset = 0;
    for block in src.chunks(BLOCK) {
        let start = out.len();
        out.extend_from_slice(block);
        if let Some(tail) = out.get_mut(start..) {
            apply_mask(tail, key, offset);
        }
        offset += block.len();
    }
}

/// The byte-at-a-time reference version, kept for tests and benches.
pub fn apply_mask_naive(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= key[(i.wrapping_add(offset)) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic xorshift64* generator; tests need variety, not quality.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
    }

    const KEYS: [[u8; 4]; 5] =
        [[0, 0, 0, 0], [0xFF, 0xFF, 0xFF, 0xFF], [0x37, 0xfa, 0x21, 0x3d], [1, 2, 3, 4], [0x80, 0x00, 0x7F, 0x01]];

    #[test]
    fn rfc_hello_example() {
        // RFC 6455 §5.7: "Hello" masked with 37 fa 21 3d.
        let mut buf = *b"Hello";
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(buf, [0x7f, 0x9f, 0x4d, 0x51, 0x58]);
        apply_mask(&mut buf, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&buf, b"Hello");

        let mut out = vec![0xAA];
        extend_masked(&mut out, b"Hello", [0x37, 0xfa, 0x21, 0x3d]);
        assert_eq!(out, [0xAA, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    }

    #[test]
    fn fast_matches_naive_all_lengths_offsets_keys() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut keys = KEYS.to_vec();
        for _ in 0..5 {
            keys.push((rng.next() as u32).to_ne_bytes());
        }
        for key in keys {
            for len in 0..=300 {
                let data = rng.bytes(len);
                for offset in 0..8 {
                    let mut fast = data.clone();
                    let mut slow = data.clone();
                    apply_mask(&mut fast, key, offset);
                    apply_mask_naive(&mut slow, key, offset);
                    assert_eq!(fast, slow, "len {len} offset {offset} key {key:?}");
                }
                let mut slow = data.clone();
                apply_mask_naive(&mut slow, key, 0);
                let mut out = vec![7u8; 3];
                extend_masked(&mut out, &data, key);
                assert_eq!(&out[..3], &[7, 7, 7]);
                assert_eq!(&out[3..], &slow[..], "extend len {len} key {key:?}");
            }
        }
    }

    #[test]
    fn piecewise_equals_one_pass() {
        let mut rng = Rng(42);
        let data = rng.bytes(1000);
        let key = [0xDE, 0xAD, 0xBE, 0xEF];
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for split_seed in 0..50 {
            let mut pieces = data.clone();
            let mut pos = 0;
            let mut r = Rng(split_seed + 1);
            while pos < pieces.len() {
                let n = ((r.next() % 70) as usize).min(pieces.len() - pos);
                apply_mask(&mut pieces[pos..pos + n], key, pos);
                pos += n;
            }
            assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn extend_masked_across_blocks() {
        // Lengths spanning the internal block size, including odd remainders.
        let mut rng = Rng(7);
        for len in [4095, 4096, 4097, 8193, 10_007] {
            let data = rng.bytes(len);
            let key = (rng.next() as u32).to_ne_bytes();
            let mut expect = data.clone();
            apply_mask_naive(&mut expect, key, 0);
            let mut out = Vec::new();
            extend_masked(&mut out, &data, key);
            assert_eq!(out, expect, "len {len}");
        }
    }

    #[test]
    fn huge_offset_does_not_overflow() {
        let mut a = [1u8, 2, 3];
        let mut b = a;
        apply_mask(&mut a, [9, 8, 7, 6], usize::MAX);
        apply_mask_naive(&mut b, [9, 8, 7, 6], usize::MAX);
        assert_eq!(a, b);
        // usize::MAX % 4 == 3, so byte 0 uses key[3].
        assert_eq!(a[0], 1 ^ 6);
    }

    #[test]
    fn sixteen_mib_in_place_and_copied_agree_with_the_naive_mask() {
        // Speed figures for these paths come from bench/core-speed.
        let mut buf = vec![0x5Au8; 16 << 20];
        let key = [1, 2, 3, 4];
        apply_mask_naive(&mut buf, key, 1);
        apply_mask(&mut buf, key, 1);
        assert!(buf.iter().all(|&b| b == 0x5A));
        let mut out = Vec::new();
        extend_masked(&mut out, &buf, key);
        assert_eq!(out.len(), buf.len());
        assert!(out.iter().enumerate().all(|(i, &b)| b == 0x5A ^ key[i & 3]));
    }
}
