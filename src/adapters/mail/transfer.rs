//! Content-Transfer-Encoding, decoded the way a careful mail client does: base64 with
//! missing padding or stray characters, quoted-printable, uuencode (`x-uuencode`,
//! `uuencode`, `x-uue`); an unknown encoding keeps the bytes as sent.

use mail_parser::decoders::quoted_printable::quoted_printable_decode;

/// A part's transfer encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cte {
    /// 7bit, 8bit, binary or none: the bytes are the content.
    Identity,
    Base64,
    QuotedPrintable,
    Uuencode,
    /// Anything else, as written (lower-case).
    Unknown(String),
}

impl Cte {
    pub(crate) fn from_header(value: Option<&str>) -> Self {
        let Some(v) = value else {
            return Cte::Identity;
        };
        let v = v.trim().trim_matches('"').to_ascii_lowercase();
        match v.as_str() {
            "" | "7bit" | "8bit" | "binary" | "7-bit" | "8-bit" => Cte::Identity,
            "base64" => Cte::Base64,
            "quoted-printable" => Cte::QuotedPrintable,
            "x-uuencode" | "uuencode" | "x-uue" | "uue" => Cte::Uuencode,
            _ => Cte::Unknown(v),
        }
    }
}

/// Decodes a part body. `Unknown` returns the bytes as sent (the caller logs it).
pub(crate) fn decode(cte: &Cte, body: &[u8]) -> Vec<u8> {
    match cte {
        Cte::Identity | Cte::Unknown(_) => body.to_vec(),
        Cte::Base64 => base64_lenient(body),
        Cte::QuotedPrintable => quoted_printable_decode(body).unwrap_or_else(|| body.to_vec()),
        Cte::Uuencode => uudecode(body)
            .map(|(_, d)| d)
            .unwrap_or_else(|| body.to_vec()),
    }
}

/// Whether mail-parser's strict base64 decoder would lose or reject something here: a
/// character outside the alphabet and whitespace, or a length that is not a whole number
/// of quads (missing padding). One pass, no allocation.
pub(crate) fn base64_needs_lenient(body: &[u8]) -> bool {
    // Branch-free classification so the loop vectorises: alphabet and `=` count 1,
    // white space 0, anything else 1 << 32.
    static CLASS: [u64; 256] = {
        let mut t = [1u64 << 32; 256];
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
                t[c] = 1;
            } else if b == b' ' || b == b'\t' || b == b'\r' || b == b'\n' {
                t[c] = 0;
            }
            c += 1;
        }
        t
    };
    let sum: u64 = body.iter().map(|&c| CLASS[usize::from(c)]).sum();
    sum >> 32 != 0 || !(sum & 0xFFFF_FFFF).is_multiple_of(4)
}

/// Base64 that skips every character outside the alphabet, stops at the first padding
/// and decodes a trailing partial quad (2 or 3 characters) as far as it goes.
pub(crate) fn base64_lenient(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 3);
    let (mut acc, mut n) = (0u32, 0u32);
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                // Padding ends this quad; a later quad (concatenated base64) goes on.
                flush_partial(&mut out, acc, n);
                acc = 0;
                n = 0;
                continue;
            }
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
            n = 0;
        }
    }
    flush_partial(&mut out, acc, n);
    out
}

fn flush_partial(out: &mut Vec<u8>, acc: u32, n: u32) {
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => out.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        _ => {}
    }
}

/// uuencode: an optional `begin <mode> <name>` line, data lines whose first character is
/// the byte count, up to `end` or a zero-length line. Returns the name of the `begin`
/// line (if any) and the data; `None` when no data line was found.
pub(crate) fn uudecode(body: &[u8]) -> Option<(Option<String>, Vec<u8>)> {
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut name = None;
    let mut started = false;
    let mut lines = 0usize;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !started {
            if let Some(rest) = line.strip_prefix(b"begin ") {
                let text = String::from_utf8_lossy(rest);
                let mut it = text.trim().splitn(2, ' ');
                let _mode = it.next();
                name = it
                    .next()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty());
                started = true;
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // Data without a begin line.
            started = true;
        }
        if line == b"end" || line.is_empty() {
            if line == b"end" {
                break;
            }
            continue;
        }
        let len = usize::from((line[0].wrapping_sub(b' ')) & 0x3f);
        if len == 0 {
            continue;
        }
        let mut got = Vec::with_capacity(len + 2);
        for quad in line[1..].chunks(4) {
            let v: Vec<u32> = quad
                .iter()
                .map(|&c| u32::from(c.wrapping_sub(b' ') & 0x3f))
                .collect();
            let g = |i: usize| v.get(i).copied().unwrap_or(0);
            let bits = (g(0) << 18) | (g(1) << 12) | (g(2) << 6) | g(3);
            got.extend_from_slice(&[(bits >> 16) as u8, (bits >> 8) as u8, bits as u8]);
        }
        got.truncate(len);
        out.extend_from_slice(&got);
        lines += 1;
    }
    (lines > 0).then_some((name, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_without_padding_and_with_noise() {
        assert_eq!(base64_lenient(b"QUJDREVGR0g"), b"ABCDEFGH");
        assert_eq!(base64_lenient(b"QUJDREVGRw"), b"ABCDEFG");
        assert_eq!(base64_lenient(b"QUJD\r\nREVG*R0g=\n!!"), b"ABCDEFGH");
        assert_eq!(base64_lenient(b"QQ==QkM="), b"ABC");
        assert!(base64_needs_lenient(b"QUJDREVGR0g"));
        assert!(base64_needs_lenient(b"QUJD*REVG"));
        assert!(!base64_needs_lenient(b"QUJD\r\nREVG\r\nR0g=\r\n"));
    }

    #[test]
    fn uuencode_round_trip_of_a_known_sample() {
        // "Cat" and "hello world\n" as produced by GNU uuencode.
        let (name, data) = uudecode(b"begin 644 cat.txt\n#0V%T\n`\nend\n").unwrap();
        assert_eq!(name.as_deref(), Some("cat.txt"));
        assert_eq!(data, b"Cat");
        let (_, data) = uudecode(b"begin 644 h\r\n,:&5L;&\\@=V]R;&0*\r\n`\r\nend\r\n").unwrap();
        assert_eq!(data, b"hello world\n");
        assert!(uudecode(b"\n\n").is_none());
    }

    #[test]
    fn cte_names() {
        assert_eq!(Cte::from_header(Some(" X-UUEncode ")), Cte::Uuencode);
        assert_eq!(Cte::from_header(Some("8BIT")), Cte::Identity);
        assert_eq!(
            Cte::from_header(Some("x-gzip")),
            Cte::Unknown("x-gzip".into())
        );
        assert_eq!(decode(&Cte::Unknown("x".into()), b"as sent"), b"as sent");
    }
}
