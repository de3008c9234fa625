//! Architecture guard: the domain (`src/domain`) stays pure. It may not name an I/O
//! library, the process-wide side of std, or the outer layers of the hexagon. The check
//! scans the source text (comments and string literals removed), so it also sees paths
//! written inline (`tokio::spawn(..)`) and grouped imports (`use std::{fs, io}`).

use std::path::{Path, PathBuf};

/// Crates and modules the domain must not refer to.
const FORBIDDEN: &[&str] = &[
    "tokio",
    "hyper",
    "hyper_util",
    "rusqlite",
    "mail_parser",
    "quick_xml",
    "lettre",
    "std::fs",
    "std::net",
    "std::process",
    "crate::adapters",
    "crate::config",
    "crate::cli",
];

/// The source without comments, string and char literals (replaced by spaces), so a
/// forbidden name in a doc comment or a test string does not count.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &src[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            // Block comments nest in Rust.
            let mut depth = 0usize;
            let mut j = 0;
            while j < rest.len() {
                if rest[j..].starts_with("/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with("*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += rest[j..].chars().next().map_or(1, char::len_utf8);
                }
            }
            i += j;
            out.push(' ');
        } else if let Some(len) = raw_string_len(rest) {
            i += len;
            out.push(' ');
        } else if let Some(len) = char_literal_len(rest) {
            i += len;
            out.push(' ');
        } else if rest.starts_with('"') {
            let rb = rest.as_bytes();
            let mut j = 1;
            while j < rb.len() && rb[j] != b'"' {
                j += if rb[j] == b'\\' { 2 } else { 1 };
            }
            i += (j + 1).min(rest.len());
            out.push(' ');
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Length of a char literal (`'"'`, `'\''`, `'\u{41}'`) at the start of `s`; `None` for
/// a lifetime or a label (`'a`).
fn char_literal_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix('\'')?;
    if let Some(esc) = body.strip_prefix('\\') {
        let end = esc.get(1..)?.find('\'')?;
        return Some(3 + end + 1);
    }
    let c = body.chars().next()?;
    body[c.len_utf8()..]
        .starts_with('\'')
        .then_some(1 + c.len_utf8() + 1)
}

/// Length of a raw string literal (`r"…"`, `r#"…"#`, `br"…"`) at the start of `s`.
fn raw_string_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("br").or_else(|| s.strip_prefix('r'))?;
    let hashes = body.len() - body.trim_start_matches('#').len();
    let body = &body[hashes..];
    if !body.starts_with('"') {
        return None;
    }
    let close = format!("\"{}", "#".repeat(hashes));
    let end = body[1..].find(&close)?;
    Some(s.len() - body.len() + 1 + end + close.len())
}

/// Every path the code names, with `use` groups expanded (`std::{fs, io::Read}` gives
/// `std::fs` and `std::io::Read`) and whitespace around `::` removed.
fn paths(code: &str) -> Vec<String> {
    let compact: String = {
        let mut s = code.to_string();
        for (from, to) in [(" ::", "::"), (":: ", "::"), ("\n", " "), ("\t", " ")] {
            while s.contains(from) {
                s = s.replace(from, to);
            }
        }
        s
    };
    let mut out = Vec::new();
    expand(&compact, "", &mut out);
    out
}

const KEYWORDS: &[&str] = &[
    "use", "pub", "as", "in", "mut", "ref", "return", "let", "dyn", "impl", "for", "where",
    "extern", "const", "static", "type", "fn", "struct", "enum", "trait", "mod", "match",
];

fn expand(code: &str, prefix: &str, out: &mut Vec<String>) {
    let bytes = code.as_bytes();
    let is_path_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < bytes.len() {
        if !is_path_char(bytes[i]) || (i > 0 && is_path_char(bytes[i - 1])) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_path_char(bytes[i]) {
            i += 1;
        }
        let mut path = &code[start..i];
        // `use ::hyper` became `use::hyper` when the spaces around `::` were removed.
        while let Some((head, rest)) = path.split_once("::") {
            if KEYWORDS.contains(&head) {
                path = rest;
            } else {
                break;
            }
        }
        let full = format!("{prefix}{}", path.trim_start_matches("::"));
        if full.ends_with("::") && bytes.get(i) == Some(&b'{') {
            // A group: expand its items with this prefix.
            let mut depth = 0usize;
            let mut j = i;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            expand(&code[i + 1..j.min(code.len())], &full, out);
            i = j + 1;
        } else {
            out.push(full);
        }
    }
}

fn violations(src: &str) -> Vec<String> {
    let mut found = Vec::new();
    for p in paths(&code_only(src)) {
        for f in FORBIDDEN {
            let p = p.trim_start_matches("::");
            if p == *f || p.starts_with(&format!("{f}::")) {
                found.push(p.to_string());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/domain") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn domain_imports_no_io_library_and_no_outer_layer() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() >= 5, "src/domain looks empty: {files:?}");
    let mut report = Vec::new();
    for f in &files {
        let src = std::fs::read_to_string(f).expect("read source");
        for v in violations(&src) {
            report.push(format!("{}: {v}", f.display()));
        }
    }
    assert!(
        report.is_empty(),
        "the domain must stay pure (no I/O crates, no adapters/config):\n{}",
        report.join("\n")
    );
}

#[test]
fn the_guard_sees_every_spelling() {
    let bad = [
        "use tokio::sync::Mutex;",
        "use std::{collections::HashMap, fs};",
        "use std::{io, process::Command};",
        "fn f() { let _ = std :: net :: TcpStream::connect(\"x\"); }",
        "use crate::adapters::mail::parse;",
        "use crate::{config::Config, domain::mail::Mail};",
        "fn g() -> rusqlite::Result<()> { todo!() }",
        "use ::hyper::Uri;",
        "use std::{\n    fs::{self, File},\n    io,\n};",
    ];
    for src in bad {
        assert!(!violations(src).is_empty(), "not caught: {src}");
    }
    let good = [
        "use std::collections::HashMap; use regex::Regex;",
        "// uses tokio::spawn in the adapter\nfn f() {}",
        "/* std::fs /* nested */ crate::config */ fn f() {}",
        "const S: &str = \"std::fs::read\"; const R: &str = r#\"tokio::x\"#;",
        "use super::mail::Mail; fn config() {} struct Tokio;",
        "use crate::domain::ticket::NewTicket;",
        "fn q(c: char) -> bool { c == '\"' || c == '\\'' } fn t<'a>(s: &'a str) {} // std::fs",
    ];
    for src in good {
        assert!(
            violations(src).is_empty(),
            "false alarm: {src}: {:?}",
            violations(src)
        );
    }
}
