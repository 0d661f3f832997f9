//! Speed of the protocol core without sockets: permessage-deflate compress + inflate of
//! JSON-like messages at several levels, and masking. Prints figures; `--quick` runs one
//! round (to check it works). Built in release by `make bench-tools`, run by `make bench-core`.

use std::time::Instant;

use wsffi::core::extensions::deflate::{Agreed, DeflateConfig, Deflater, Inflater, Side};
use wsffi::core::protocol::mask::{apply_mask, extend_masked};

/// JSON-like text that varies from message to message.
fn json_msg(i: usize) -> Vec<u8> {
    format!(
        "{{\"type\":\"update\",\"seq\":{i},\"user\":{{\"id\":{},\"name\":\"user-{}\"}},\
         \"price\":{}.{:02},\"tags\":[\"alpha\",\"beta\",\"gamma\"],\"ok\":{}}}",
        i * 7919 % 100_000,
        i % 97,
        i * 31 % 1000,
        i % 100,
        i.is_multiple_of(3)
    )
    .into_bytes()
}

fn deflate(rounds: usize) {
    let small: Vec<Vec<u8>> = (0..1000).map(json_msg).collect();
    // About 2.5 KB each: 20 records.
    let medium: Vec<Vec<u8>> = (0..200).map(|k| (0..20).flat_map(|j| json_msg(k * 20 + j)).collect()).collect();
    let no_takeover =
        Agreed { server_no_context_takeover: true, client_no_context_takeover: true, ..Agreed::default() };
    for (set, msgs) in [("small", &small), ("2.5 KB", &medium)] {
        let bytes: usize = msgs.iter().map(Vec::len).sum();
        for (name, agreed) in [("context takeover", Agreed::default()), ("no context takeover", no_takeover)] {
            for level in [1, 2, 6, 9] {
                let cfg = DeflateConfig { level, ..DeflateConfig::default() };
                let mut d = Deflater::new(Side::Client, &agreed, &cfg);
                let mut i = Inflater::new(Side::Server, &agreed);
                let (mut c, mut p) = (Vec::new(), Vec::new());
                let mut compressed = 0usize;
                let t = Instant::now();
                for _ in 0..rounds {
                    for m in msgs.iter() {
                        c.clear();
                        p.clear();
                        d.compress(m, &mut c).expect("compress");
                        compressed += c.len();
                        i.inflate(&c, true, &mut p, 1 << 20).expect("inflate");
                        assert_eq!(&p, m, "round trip");
                    }
                }
                let secs = t.elapsed().as_secs_f64();
                let n = (rounds * msgs.len()) as f64;
                println!(
                    "deflate: {set} messages, {name}, level {level}: {:.0} msgs/s compress+inflate, {} -> {:.1} bytes",
                    n / secs,
                    bytes / msgs.len(),
                    compressed as f64 / n
                );
            }
        }
    }
}

fn mask(rounds: usize) {
    let mut buf = vec![0x5Au8; 16 << 20];
    let key = [1, 2, 3, 4];
    // Pre-fault the destination so page faults are not measured.
    let mut out = vec![1u8; buf.len()];
    let t = Instant::now();
    for _ in 0..rounds {
        apply_mask(&mut buf, key, 1);
    }
    let in_place = t.elapsed().as_secs_f64() / rounds as f64;
    let t = Instant::now();
    for _ in 0..rounds {
        out.clear();
        extend_masked(&mut out, &buf, key);
    }
    let copying = t.elapsed().as_secs_f64() / rounds as f64;
    let mib = buf.len() as f64 / (1 << 20) as f64;
    println!("mask: in place {:.0} MiB/s, extend_masked {:.0} MiB/s", mib / in_place, mib / copying);
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    deflate(if quick { 1 } else { 30 });
    mask(if quick { 1 } else { 20 });
}
