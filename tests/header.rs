//! `include/wsffi.h` must be exactly what cbindgen generates from the sources.
//! `WSFFI_BLESS=1 cargo test --test header` rewrites it.

use std::path::Path;

fn generate() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("read cbindgen.toml");
    let version = format!(
        "#define WSFFI_VERSION_MAJOR {major}\n#define WSFFI_VERSION_MINOR {minor}\n#define WSFFI_VERSION_PATCH {patch}\n\
         #define WSFFI_VERSION_NUMBER ((WSFFI_VERSION_MAJOR << 16) | (WSFFI_VERSION_MINOR << 8) | WSFFI_VERSION_PATCH)\n\
         #define WSFFI_VERSION \"{full}\"\n",
        major = env!("CARGO_PKG_VERSION_MAJOR"),
        minor = env!("CARGO_PKG_VERSION_MINOR"),
        patch = env!("CARGO_PKG_VERSION_PATCH"),
        full = env!("CARGO_PKG_VERSION"),
    );
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_crate(root)
        .with_after_include(version)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    String::from_utf8(out).expect("header is UTF-8")
}

#[test]
fn header_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/wsffi.h");
    let generated = generate();
    if std::env::var_os("WSFFI_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write header");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(checked_in == generated, "include/wsffi.h is out of date: run `make header` and commit it");
}

#[test]
fn every_function_is_prefixed_and_documented() {
    let header = generate();
    let lines: Vec<&str> = header.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.split('(').next().and_then(|s| s.split_whitespace().last()) else { continue };
        if !line.contains('(') || line.starts_with(' ') || line.starts_with('#') || line.starts_with("typedef") {
            continue;
        }
        let name = name.trim_start_matches('*');
        assert!(name.starts_with("wsffi_"), "unprefixed symbol {name}");
        assert!(i > 0 && lines[i - 1].trim_end().ends_with("*/"), "undocumented function {name}");
    }
}

#[test]
fn every_macro_and_type_is_prefixed() {
    let header = generate();
    for line in header.lines() {
        let mut words = line.split_whitespace();
        let name = match (words.next(), words.next(), words.next()) {
            (Some("#define"), Some(name), _) => name,
            (Some("typedef"), Some("struct" | "enum"), Some(name)) => name,
            _ => continue,
        };
        if name == "WSFFI_H" {
            continue;
        }
        assert!(name.starts_with("WSFFI_") || name.starts_with("wsffi_"), "unprefixed name in the header: {name}");
    }
}
