//! Frame header parser on arbitrary bytes; every accepted header must re-encode to the
//! same bytes (RSV2/RSV3 aside, which the encoder never sets) and parse back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsffi::core::protocol::frame::{encode_header_into, parse_header, FrameHeader, MAX_HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    match parse_header(data) {
        Ok(Some((h, n))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&n) && n <= data.len(), "header length {n}");
            assert!(h.payload_len < 1 << 63);
            if h.opcode.is_control() {
                assert!(h.fin && h.payload_len <= 125, "control frame rules: {h:?}");
            }

            let mut enc = [0u8; MAX_HEADER_LEN];
            let m = encode_header_into(&mut enc, h.fin, h.rsv1, h.opcode, h.mask, h.payload_len as usize);
            assert_eq!(m, n, "re-encoded length differs for {h:?}");
            let mut expected = data[..n].to_vec();
            expected[0] &= !0x30;
            assert_eq!(&enc[..m], &expected[..], "re-encoded bytes differ for {h:?}");

            let again = parse_header(&enc[..m]).expect("re-encoded header rejected");
            assert_eq!(again, Some((FrameHeader { rsv2: false, rsv3: false, ..h }, n)));

            // Every shorter prefix is an incomplete header, never an error.
            for cut in 0..n {
                assert_eq!(parse_header(&data[..cut]), Ok(None), "prefix of {cut} bytes");
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEADER_LEN, "{} bytes and still incomplete", data.len()),
        Err(e) => {
            assert!(!e.message().is_empty());
            // An error is decided by the bytes present: more input does not change it.
            let mut longer = data.to_vec();
            longer.extend_from_slice(&[0u8; MAX_HEADER_LEN]);
            assert_eq!(parse_header(&longer), Err(e));
        }
    }
});
