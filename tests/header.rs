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

/// The text of every comment in the header, and the rest (the declarations).
fn split_comments(header: &str) -> (String, String) {
    let (mut comments, mut code) = (String::new(), String::new());
    let mut rest = header;
    while let Some(start) = rest.find("/*") {
        code.push_str(&rest[..start]);
        let end = rest[start..].find("*/").map_or(rest.len(), |e| start + e + 2);
        comments.push_str(&rest[start..end]);
        comments.push('\n');
        rest = &rest[end..];
    }
    code.push_str(rest);
    // `//` comments (cbindgen's after `#endif`) are comments too.
    let code = code.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    (comments, code)
}

/// Every `wsffi_`/`WSFFI_` word of `text`, with a trailing `*` kept (a family of names).
fn prefixed_words(text: &str) -> Vec<String> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut words = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !is_word(c) || text[..i].chars().next_back().is_some_and(is_word) {
            continue;
        }
        let end = text[i..].find(|c: char| !is_word(c)).map_or(text.len(), |e| i + e);
        let word = &text[i..end];
        if word.starts_with("wsffi_") || word.starts_with("WSFFI_") {
            let star = text[end..].starts_with('*');
            words.push(format!("{word}{}", if star { "*" } else { "" }));
        }
        while chars.peek().is_some_and(|&(j, _)| j < end) {
            chars.next();
        }
    }
    words
}

#[test]
fn every_name_a_comment_mentions_is_declared() {
    let header = generate();
    let (comments, code) = split_comments(&header);
    let declared: std::collections::BTreeSet<String> = prefixed_words(&code).into_iter().collect();
    assert!(declared.contains("WSFFI_STATUS_ERR_TLS") && declared.contains("wsffi_connect"));
    let mut unknown: Vec<String> = prefixed_words(&comments)
        .into_iter()
        .filter(|word| match word.strip_suffix('*') {
            Some(family) => !declared.iter().any(|d| d.starts_with(family) && d.len() > family.len()),
            None => !declared.contains(word),
        })
        .collect();
    unknown.sort();
    unknown.dedup();
    assert!(unknown.is_empty(), "comments of include/wsffi.h mention names it does not declare: {unknown:?}");
}

#[test]
fn name_checks_see_words_and_families() {
    let words = prefixed_words("use `WSFFI_VERDICT_*` or wsffi_send(conn); not xwsffi_a, WSFFI_ERR_TLS.");
    assert_eq!(words, ["WSFFI_VERDICT_*", "wsffi_send", "WSFFI_ERR_TLS"]);
    let (comments, code) = split_comments("/* a wsffi_x */ int wsffi_y(void); // wsffi_z\n");
    assert_eq!(prefixed_words(&comments), ["wsffi_x"]);
    assert_eq!(prefixed_words(&code), ["wsffi_y"]);
}

/// Every function declaration with its comment: (name, parameters, comment).
fn functions_with_comments(header: &str) -> Vec<(String, String, String)> {
    let lines: Vec<&str> = header.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with(' ') || line.starts_with('#') || line.starts_with("typedef") || !line.contains("wsffi_") {
            continue;
        }
        let Some(open) = line.find('(') else { continue };
        let name = line[..open].split_whitespace().last().unwrap_or("").trim_start_matches('*');
        if !name.starts_with("wsffi_") {
            continue;
        }
        let params = line[open..].to_string();
        let mut start = i;
        while start > 0 && !lines[start - 1].trim_start().starts_with("/*") {
            start -= 1;
        }
        let comment = lines[start.saturating_sub(1)..i].join("\n");
        out.push((name.to_string(), params, comment));
    }
    out
}

#[test]
fn every_function_taking_a_pointer_says_what_null_does() {
    let header = generate();
    let functions = functions_with_comments(&header);
    assert!(functions.len() > 50, "found only {} functions", functions.len());
    let silent: Vec<&str> = functions
        .iter()
        .filter(|(_, params, comment)| params.contains('*') && !comment.contains("NULL"))
        .map(|(name, _, _)| name.as_str())
        .collect();
    assert!(silent.is_empty(), "functions whose comment does not say what NULL arguments do: {silent:?}");
}
