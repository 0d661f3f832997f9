//! Writes a fresh set of test certificates and keys into a directory, for the C and
//! interop TLS tests: `tls-test-certs DIR`. Test material only.

#[path = "../tests/support/certs.rs"]
mod certs;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: tls-test-certs DIR");
        std::process::exit(2);
    };
    if let Err(e) = certs::generate().write(std::path::Path::new(&dir)) {
        eprintln!("tls-test-certs: {dir}: {e}");
        std::process::exit(1);
    }
}
