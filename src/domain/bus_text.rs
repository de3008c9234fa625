//! Pure core (domain): what the bus accepts (issue 19 §2), checked before the first
//! call. The SOAP layer drops the characters XML 1.0 cannot carry, so a file name made
//! only of them would reach GN6 empty and be refused after the ticket exists. Names are made safe
//! here, with the same fallback as an unnamed part. Pure.

/// A character XML 1.0 can carry (and that the SOAP layer keeps).
pub fn is_xml_char(c: char) -> bool {
    !(c < ' ' && c != '\t' && c != '\n' && c != '\r')
        && c != '\u{FFFE}'
        && c != '\u{FFFF}'
        && c != '\u{FDD0}'
}

/// The file name GN6 gets for attachment `n` (0-based among the kept ones): `name`
/// without the characters XML 1.0 cannot carry, line breaks, tabs and path
/// separators, trimmed; when nothing is left, `attach{n+1}.{subtype}` as for an
/// unnamed part.
pub fn safe_file_name(name: &str, n: usize, content_type: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|&c| is_xml_char(c) && !matches!(c, '\t' | '\n' | '\r'))
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim().trim_matches('.').trim();
    if cleaned.is_empty() {
        let subtype = content_type
            .split(';')
            .next()
            .and_then(|t| t.split('/').nth(1))
            .map(str::trim)
            .filter(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            })
            .unwrap_or("bin");
        format!("attach{}.{subtype}", n + 1)
    } else {
        cleaned.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_bus_would_refuse_get_the_unnamed_fallback() {
        assert_eq!(
            safe_file_name("\u{1}\u{2}\u{FFFE}", 0, "image/png"),
            "attach1.png"
        );
        assert_eq!(
            safe_file_name("  \u{7} ", 2, "application/pdf; name=x"),
            "attach3.pdf"
        );
        assert_eq!(safe_file_name("", 0, "weird"), "attach1.bin");
        assert_eq!(safe_file_name("a\u{0}b.txt", 0, "text/plain"), "ab.txt");
        assert_eq!(
            safe_file_name("../../etc/passwd", 0, "text/plain"),
            "_.._etc_passwd"
        );
        assert_eq!(
            safe_file_name("informe\r\n final.pdf", 0, "x/y"),
            "informe final.pdf"
        );
        assert_eq!(safe_file_name("café.odt", 0, "x/y"), "café.odt");
    }
}
