//! Bytes → text for every charset a mail can declare.
//!
//! Labels resolve as the WHATWG Encoding Standard does (aliases, case, `iso-8859-1` read as
//! Windows-1252), plus a few mail-only names (UTF-7, IBM/Microsoft code-page numbers).
//! Bytes with no usable label are read as UTF-8 when valid, else with the charset the same
//! mail declares elsewhere, else with a detector's guess (chardetng, as Firefox uses).

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// A resolved charset label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    /// A WHATWG encoding (UTF-8 included).
    Whatwg(&'static Encoding),
    /// UTF-16 without a byte order: BOM, else guessed from where the zero bytes are.
    Utf16,
    /// UTF-7 (RFC 2152), which Exchange still sends.
    Utf7,
}

/// Resolves a label (`"GB2312"`, `" Latin1 "`, `"utf-8*ca"` with an RFC 2231 language).
/// `None` for an unknown or empty label.
pub(crate) fn resolve(label: &str) -> Option<Charset> {
    let label = label
        .split('*')
        .next()
        .unwrap_or("")
        .trim()
        .trim_matches('"');
    if label.is_empty() {
        return None;
    }
    let lower = label.to_ascii_lowercase();
    match lower.as_str() {
        "utf-7" | "utf7" | "unicode-1-1-utf-7" | "csunicode11utf7" | "x-unicode20utf7" => {
            return Some(Charset::Utf7);
        }
        "utf-16" | "utf16" | "unicode" | "ucs-2" | "iso-10646-ucs-2" | "csunicode" => {
            return Some(Charset::Utf16);
        }
        _ => {}
    }
    if let Some(enc) = Encoding::for_label_no_replacement(lower.as_bytes()) {
        return Some(Charset::Whatwg(enc));
    }
    // Names mail clients write that WHATWG does not list.
    let alias = match lower.as_str() {
        "cp932" | "windows-932" | "x-ms-cp932" => "shift_jis",
        "cp936" | "windows-936" | "gb_2312-80" | "x-gbk" => "gbk",
        "cp949" | "windows-949" | "uhc" | "ks_c_5601" => "euc-kr",
        "cp950" | "windows-950" | "big5-hkscs" | "x-x-big5" => "big5",
        "cp1250" | "cp1251" | "cp1253" | "cp1254" | "cp1255" | "cp1256" | "cp1257" | "cp1258" => {
            return Encoding::for_label(format!("windows-{}", &lower[2..]).as_bytes())
                .map(Charset::Whatwg);
        }
        "cp819" | "iso_8859-1:1987" | "8859-1" | "iso8859_1" => "windows-1252",
        "cp28605" | "iso8859_15" | "8859-15" => "iso-8859-15",
        "cp20866" => "koi8-r",
        "cp21866" => "koi8-u",
        "cp874" | "tis620" => "windows-874",
        "cp65001" => "utf-8",
        "cp1200" => "utf-16le",
        "cp1201" => "utf-16be",
        "x-euc-jp" | "eucjp" => "euc-jp",
        "x-sjis" | "sjis" => "shift_jis",
        _ => {
            // `iso_8859_2`, `iso8859_2`, `8859-2`, `ISO 8859-2`: normalise to `iso-8859-N`.
            let digits = lower
                .trim_start_matches("iso")
                .trim_start_matches(['-', '_', ' '])
                .trim_start_matches("8859")
                .trim_start_matches(['-', '_', ' ']);
            if digits.len() < lower.len()
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Encoding::for_label(format!("iso-8859-{digits}").as_bytes())
                    .map(Charset::Whatwg);
            }
            return None;
        }
    };
    Encoding::for_label(alias.as_bytes()).map(Charset::Whatwg)
}

/// Decodes bytes in a resolved charset. Invalid sequences become U+FFFD one by one.
pub(crate) fn decode_with(cs: Charset, bytes: &[u8]) -> String {
    match cs {
        Charset::Whatwg(enc) => {
            // `decode_without_bom_handling` keeps a label's word: a BOM of another
            // encoding would otherwise silently win. A UTF-8 BOM is dropped.
            if enc == UTF_8 {
                let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
                return String::from_utf8_lossy(b).into_owned();
            }
            if enc == UTF_16LE || enc == UTF_16BE {
                return decode_utf16(bytes, Some(enc));
            }
            enc.decode_without_bom_handling(bytes).0.into_owned()
        }
        Charset::Utf16 => decode_utf16(bytes, None),
        Charset::Utf7 => decode_utf7(bytes),
    }
}

fn decode_utf16(bytes: &[u8], declared: Option<&'static Encoding>) -> String {
    if let Some((enc, bom_len)) = Encoding::for_bom(bytes)
        && (enc == UTF_16LE || enc == UTF_16BE)
    {
        return enc
            .decode_without_bom_handling(&bytes[bom_len..])
            .0
            .into_owned();
    }
    let enc = declared.unwrap_or_else(|| {
        // No BOM: RFC 2781 says big-endian, but Windows writes little-endian. Text that is
        // mostly Latin has its zero bytes on the high side of each unit: follow them.
        let (mut even, mut odd) = (0usize, 0usize);
        for pair in bytes.chunks_exact(2).take(512) {
            even += usize::from(pair[0] == 0);
            odd += usize::from(pair[1] == 0);
        }
        if odd > even { UTF_16LE } else { UTF_16BE }
    });
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

/// Decodes with a label; an unknown label falls back to [`decode_undeclared`].
pub(crate) fn decode_label(label: &str, bytes: &[u8], hint: Option<Charset>) -> String {
    match resolve(label) {
        Some(cs) => decode_declared(cs, bytes, hint),
        None => decode_undeclared(bytes, hint),
    }
}

/// Decodes bytes that carry a label. A UTF-8 (or ASCII) label on bytes with no valid
/// multi-byte sequence at all but with 8-bit bytes is a wrong label (a Latin-1 client that
/// writes `utf-8` by default): those bytes are read as undeclared. Otherwise each invalid
/// sequence becomes one U+FFFD and the rest stays as sent.
pub(crate) fn decode_declared(cs: Charset, bytes: &[u8], hint: Option<Charset>) -> String {
    if let Charset::Whatwg(enc) = cs
        && (enc == UTF_8 || (enc == WINDOWS_1252 && bytes.is_ascii()))
    {
        return match std::str::from_utf8(bytes) {
            Ok(s) => s.strip_prefix('\u{FEFF}').unwrap_or(s).to_string(),
            Err(_) if !has_valid_multibyte_utf8(bytes) => decode_undeclared(bytes, hint),
            Err(_) => decode_with(cs, bytes),
        };
    }
    decode_with(cs, bytes)
}

/// Bytes with no charset: UTF-8 when valid; else the mail's own declared charset (`hint`,
/// when it is not UTF-8 itself); else the detector's guess (Windows-1252 when it has none).
pub(crate) fn decode_undeclared(bytes: &[u8], hint: Option<Charset>) -> String {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_string();
    }
    match hint {
        Some(Charset::Whatwg(enc)) if enc != UTF_8 => {
            let (text, had_errors) = enc.decode_without_bom_handling(bytes);
            if !had_errors {
                return text.into_owned();
            }
        }
        Some(cs @ (Charset::Utf16 | Charset::Utf7)) => return decode_with(cs, bytes),
        _ => {}
    }
    detect(bytes)
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

/// The detector's guess for non-UTF-8 bytes (never UTF-8 itself; Windows-1252 by default).
fn detect(bytes: &[u8]) -> &'static Encoding {
    let mut det = chardetng::EncodingDetector::new();
    det.feed(bytes, true);
    let enc = det.guess(None, false);
    if enc == UTF_8 { WINDOWS_1252 } else { enc }
}

/// Whether the bytes hold at least one well-formed UTF-8 sequence of two bytes or more.
fn has_valid_multibyte_utf8(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => return !s.is_ascii(),
            Err(e) => {
                let good = &rest[..e.valid_up_to()];
                if !good.is_ascii() {
                    return true;
                }
                let skip = e.error_len().unwrap_or(rest.len() - e.valid_up_to());
                rest = &rest[e.valid_up_to() + skip..];
                if rest.is_empty() {
                    return false;
                }
            }
        }
    }
}

/// UTF-7 (RFC 2152): ASCII as itself, `+…-` runs of modified base64 holding UTF-16 units,
/// `+-` for `+`. A broken run gives U+FFFD, never an error.
pub(crate) fn decode_utf7(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'+' {
            out.push(if b.is_ascii() {
                char::from(b)
            } else {
                '\u{FFFD}'
            });
            i += 1;
            continue;
        }
        i += 1;
        if bytes.get(i) == Some(&b'-') {
            out.push('+');
            i += 1;
            continue;
        }
        let (mut acc, mut nbits) = (0u32, 0u32);
        units.clear();
        while let Some(v) = bytes.get(i).and_then(|&c| b64_value(c)) {
            acc = (acc << 6) | u32::from(v);
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push(((acc >> nbits) & 0xFFFF) as u16);
            }
            i += 1;
        }
        // An explicit `-` ends the run and is absorbed.
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        out.extend(char::decode_utf16(units.iter().copied()).map(|r| r.unwrap_or('\u{FFFD}')));
    }
    out
}

fn b64_value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(l: &str, b: &[u8]) -> String {
        decode_label(l, b, None)
    }

    #[test]
    fn whatwg_labels_and_mail_aliases() {
        assert_eq!(
            label("GB2312", b"\xb4\xf2\xd3\xa1\xbb\xfa\xbb\xb5\xc1\xcb"),
            "打印机坏了"
        );
        assert_eq!(label(" Latin1 ", b"\x93a\x94"), "\u{201c}a\u{201d}");
        assert_eq!(label("ISO_8859-2", b"\xb1"), "ą");
        assert_eq!(label("iso8859_2", b"\xb1"), "ą");
        assert_eq!(label("cp1251", b"\xcf"), "П");
        assert_eq!(label("KOI8-R", b"\xf0"), "П");
        assert_eq!(label("Shift_JIS", b"\x93\xfa\x96\x7b"), "日本");
        assert_eq!(label("cp932", b"\x93\xfa\x96\x7b"), "日本");
        assert_eq!(label("ISO-2022-JP", b"\x1b$BF|K\\\x1b(B"), "日本");
        assert_eq!(label("EUC-KR", b"\xc7\xd1"), "한");
        assert_eq!(label("big5", b"\xa4\xa4"), "中");
        assert_eq!(label("utf-8*ca", "à".as_bytes()), "à");
        assert_eq!(resolve("x-unknown-thing"), None);
    }

    #[test]
    fn utf16_with_and_without_bom() {
        assert_eq!(label("utf-16", b"\xff\xfea\x00"), "a");
        assert_eq!(label("utf-16", b"\xfe\xff\x00a"), "a");
        assert_eq!(label("utf-16", b"\x00a\x00b"), "ab");
        assert_eq!(label("utf-16", b"a\x00b\x00"), "ab");
        assert_eq!(label("UTF-16LE", b"a\x00"), "a");
    }

    #[test]
    fn utf7() {
        assert_eq!(decode_utf7(b"Hi Mom -+Jjo--!"), "Hi Mom -\u{263a}-!");
        assert_eq!(decode_utf7(b"+ZeVnLIqe-"), "日本語");
        assert_eq!(decode_utf7(b"A+ImIDkQ."), "A\u{2262}\u{391}.");
        assert_eq!(decode_utf7(b"1 +- 1"), "1 + 1");
        assert_eq!(label("UTF-7", b"configuraci+APM-"), "configuració");
    }

    #[test]
    fn broken_utf8_replaces_only_the_bad_sequence() {
        let b = "configuració fàcil \u{20ac}".as_bytes();
        let mut bad = b.to_vec();
        bad.insert(3, 0xff);
        assert_eq!(label("utf-8", &bad), "con\u{FFFD}figuració fàcil \u{20ac}");
        // Nothing valid at all: a wrong label, read as undeclared.
        assert_eq!(label("utf-8", b"pla\xe7a \x80"), "plaça €");
    }

    #[test]
    fn undeclared_utf8_hint_then_detector() {
        assert_eq!(decode_undeclared("àé".as_bytes(), None), "àé");
        let koi = b"\xf0\xd2\xc9\xd7\xc5\xd4";
        let hint = resolve("koi8-r");
        assert_eq!(decode_undeclared(koi, hint), "Привет");
        assert_eq!(decode_undeclared(b"pla\xe7a", None), "plaça");
        // Russian text in windows-1251 with no help at all.
        let cyr = encoding_rs::WINDOWS_1251
            .encode("Добрий день, принтер не працює, допоможіть будь ласка")
            .0;
        assert!(decode_undeclared(&cyr, None).contains("принтер"));
    }
}
