//! Decoding of the chunked transfer coding (RFC 9112 §7.1), used for the body of a refused
//! upgrade so its text can be reported.

/// Bytes of chunk extensions and trailers accepted in one body; they are skipped, not kept.
const MAX_CHUNK_META: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    SizeExt,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
    Failed,
}

/// Incremental chunked-transfer decoder: feed bytes, get decoded body bytes appended to `out`,
/// returns Ok(true) when the terminating chunk (and trailers) were seen. Bounded: Err if the
/// decoded size would exceed `limit` or extensions and trailers exceed 16 KiB.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
    limit: usize,
    decoded: usize,
    /// Size of the chunk being read, then what is left of it.
    remaining: u64,
    size_digits: u8,
    meta: usize,
}

impl ChunkedDecoder {
    /// A decoder that accepts at most `limit` decoded bytes.
    pub fn new(limit: usize) -> Self {
        ChunkedDecoder { state: ChunkState::Size, limit, decoded: 0, remaining: 0, size_digits: 0, meta: 0 }
    }

    /// Decodes `input`, appending body bytes to `out`. Ok(true) once the body is complete
    /// (bytes after the end are ignored); after an error every call fails.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
        let result = self.run(input, out);
        if result.is_err() {
            self.state = ChunkState::Failed;
        }
        result
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<bool, String> {
        use ChunkState::*;
        let mut i = 0;
        while i < input.len() {
            if self.state == Data {
                // Copy whole runs of chunk data rather than byte by byte.
                let avail = input.len() - i;
                let take = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                out.extend_from_slice(&input[i..i + take]);
                self.decoded += take;
                self.remaining -= take as u64;
                i += take;
                if self.remaining == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (Size, _) if b.is_ascii_hexdigit() => {
                    if self.size_digits == 16 {
                        return Err("chunk size is too long".into());
                    }
                    self.size_digits += 1;
                    self.remaining = self.remaining << 4 | u64::from(char::from(b).to_digit(16).unwrap_or(0));
                    Size
                }
                (Size, b' ' | b'\t' | b';' | b'\r') if self.size_digits > 0 => {
                    if b == b'\r' {
                        SizeLf
                    } else {
                        SizeExt
                    }
                }
                (Size, _) => return Err("invalid chunk size line".into()),
                (SizeExt, b'\r') => SizeLf,
                (SizeExt, _) if b == b'\t' || !b.is_ascii_control() => {
                    self.count_meta()?;
                    SizeExt
                }
                (SizeExt, _) => return Err("invalid chunk extension".into()),
                (SizeLf, b'\n') if self.remaining == 0 => TrailerStart,
                (SizeLf, b'\n') => {
                    let room = (self.limit - self.decoded) as u64;
                    if self.remaining > room {
                        return Err(format!("response body exceeds {} bytes", self.limit));
                    }
                    Data
                }
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => {
                    self.size_digits = 0;
                    Size
                }
                (SizeLf | DataCr | DataLf, _) => return Err("missing CRLF in chunked body".into()),
                (TrailerStart, b'\r') => EndLf,
                (TrailerLine, b'\r') => TrailerLf,
                (TrailerStart | TrailerLine, _) if b == b'\t' || !b.is_ascii_control() => {
                    self.count_meta()?;
                    TrailerLine
                }
                (TrailerStart | TrailerLine, _) => return Err("invalid trailer line".into()),
                (TrailerLf, b'\n') => TrailerStart,
                (EndLf, b'\n') => {
                    self.state = Done;
                    return Ok(true);
                }
                (TrailerLf | EndLf, _) => return Err("missing CRLF in chunked trailer".into()),
                (Done, _) => return Ok(true),
                (Failed, _) => return Err("chunked body already failed".into()),
                (Data, _) => Data,
            };
        }
        match self.state {
            Done => Ok(true),
            Failed => Err("chunked body already failed".into()),
            _ => Ok(false),
        }
    }

    fn count_meta(&mut self) -> Result<(), String> {
        self.meta += 1;
        if self.meta > MAX_CHUNK_META {
            return Err(format!("chunk extensions and trailers exceed {MAX_CHUNK_META} bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNKED: &[u8] =
        b"4\r\nWiki\r\n5;name=\"v\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n";

    #[test]
    fn chunked_whole() {
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        assert_eq!(d.feed(CHUNKED, &mut out), Ok(true));
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        // Finished: later bytes are ignored.
        assert_eq!(d.feed(b"junk", &mut out), Ok(true));
        assert_eq!(out.len(), 23);
    }

    #[test]
    fn chunked_byte_by_byte() {
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        for (i, b) in CHUNKED.iter().enumerate() {
            let done = d.feed(std::slice::from_ref(b), &mut out).unwrap();
            assert_eq!(done, i == CHUNKED.len() - 1, "at {i}");
        }
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn chunked_without_trailers_and_uppercase_hex() {
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        let body = [b"1A\r\n".as_slice(), &[b'x'; 26], b"\r\n0\r\n\r\n"].concat();
        assert_eq!(d.feed(&body, &mut out), Ok(true));
        assert_eq!(out.len(), 26);
        let mut d = ChunkedDecoder::new(1024);
        assert_eq!(d.feed(b"0\r\n", &mut out), Ok(false));
        assert_eq!(d.feed(b"\r\n", &mut out), Ok(true));
    }

    #[test]
    fn chunked_limit() {
        let mut out = Vec::new();
        let mut d = ChunkedDecoder::new(8);
        assert_eq!(d.feed(b"4\r\nabcd\r\n4\r\nefgh\r\n", &mut out), Ok(false));
        assert!(d.feed(b"1\r\n", &mut out).unwrap_err().contains("exceeds 8"));
        assert_eq!(out, b"abcdefgh");
        assert!(d.feed(b"0\r\n\r\n", &mut out).is_err(), "errors are sticky");
        let mut d = ChunkedDecoder::new(usize::MAX);
        assert!(d.feed(b"FFFFFFFFFFFFFFFF\r\n", &mut out).is_ok());
        let mut d = ChunkedDecoder::new(usize::MAX);
        assert!(d.feed(b"10000000000000000\r\n", &mut out).unwrap_err().contains("too long"));
    }

    #[test]
    fn chunked_rejects_malformed() {
        for bad in [
            b"\r\n".as_slice(),
            b"x\r\n",
            b";ext\r\n",
            b"4\nWiki",
            b"4\r\nWikiX\r\n",
            b"4\r\nWiki\r\r",
            b"4;a\x01\r\n",
            b"0\r\nX: y\n",
            b"0\r\n\rX",
            b"-1\r\n",
        ] {
            let mut d = ChunkedDecoder::new(1024);
            assert!(d.feed(bad, &mut Vec::new()).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn chunked_meta_is_bounded() {
        let mut d = ChunkedDecoder::new(1024);
        let mut out = Vec::new();
        let mut ext = b"1;".to_vec();
        ext.resize(MAX_CHUNK_META + 10, b'a');
        assert!(d.feed(&ext, &mut out).unwrap_err().contains("exceed"));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        use rand::RngExt as _;
        let mut rng = rand::rng();
        let alphabet = b"0123456789aFx;= \t\r\n\"\x00";
        for _ in 0..3000 {
            let len = rng.random_range(0..64);
            let input: Vec<u8> = (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
            let mut d = ChunkedDecoder::new(rng.random_range(0..32));
            let mut out = Vec::new();
            for piece in input.chunks(rng.random_range(1..8)) {
                if d.feed(piece, &mut out).is_err() {
                    break;
                }
            }
            assert!(out.len() <= d.limit);
        }
    }
}
