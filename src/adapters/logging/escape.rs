//! Neutralising mail text in log lines: every control character (C0, DEL, C1), the
//! bidirectional overrides and isolates and the Unicode line and paragraph separators
//! become a visible escape (`\n`, `\r`, `\t`, `\x1b`, `\u{202e}`), so that a Subject,
//! From, Message-ID, reason or file name can neither start a forged log line, drive a
//! terminal nor reorder what a reader sees. A backslash that would read as the start
//! of one of these escapes is doubled, so the result can be read back unambiguously;
//! any other backslash (a Windows path) stays as it is.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a log line as it is.
pub fn is_dangerous(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, LRM/RLM, embeddings and overrides, isolates.
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Line and paragraph separators (a new line for some readers).
            | '\u{2028}' | '\u{2029}'
        )
}

/// What may follow a backslash in one of our escapes (then the backslash is doubled).
fn escape_like(c: char) -> bool {
    matches!(c, '\\' | 'n' | 'r' | 't' | 'x' | 'u')
}

/// `text` with every dangerous character escaped (borrowed when there is none, the
/// common case).
pub fn escape(text: &str) -> Cow<'_, str> {
    let clean = !text.chars().any(is_dangerous) && !backslash_to_double(text);
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().copied().is_some_and(escape_like) => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && is_dangerous(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_dangerous(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` for a terminal: like [`escape`], but line breaks and tabs stay (the text is
/// a multi-line report: a ticket, a journal record, a list), while every other control
/// character, ESC above all, and the bidi and separator characters become visible
/// escapes. Whatever a command prints that a mail could have written goes through it.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c != '\n' && c != '\t' && is_dangerous(c))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for piece in text.split_inclusive('\n') {
        let (line, eol) = match piece.strip_suffix('\n') {
            Some(l) => (l, "\n"),
            None => (piece, ""),
        };
        for (i, cell) in line.split('\t').enumerate() {
            if i > 0 {
                out.push('\t');
            }
            out.push_str(&escape(cell));
        }
        out.push_str(eol);
    }
    Cow::Owned(out)
}

fn backslash_to_double(text: &str) -> bool {
    text.as_bytes()
        .windows(2)
        .any(|w| w[0] == b'\\' && escape_like(char::from(w[1])))
}

#[cfg(test)]
mod tests {

    #[test]
    fn for_terminal_keeps_lines_and_tabs_and_escapes_the_rest() {
        assert_eq!(for_terminal("a\tb\nc\n"), "a\tb\nc\n");
        assert_eq!(
            for_terminal("x\x1b[31mred\r\nok \u{202e}cba\n"),
            "x\\x1b[31mred\\r\nok \\u{202e}cba\n"
        );
        assert!(matches!(for_terminal("plain\n"), Cow::Borrowed(_)));
    }

    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let t = "Mail de maria@upc.edu llegit amb ID <a.b@c> — àèíòú C:\\Users";
        assert!(matches!(escape(t), Cow::Borrowed(_)));
    }

    #[test]
    fn every_dangerous_character_is_visible() {
        let t = "x\nINFO forged\r\t\0\u{1b}[31m\u{7f}\u{85}\u{9b}\u{202e}gpj.exe\u{2066}\u{2028}\u{2029}\u{200f}";
        let e = escape(t);
        assert_eq!(
            e,
            "x\\nINFO forged\\r\\t\\x00\\x1b[31m\\x7f\\u{85}\\u{9b}\\u{202e}gpj.exe\\u{2066}\\u{2028}\\u{2029}\\u{200f}"
        );
        assert!(!e.chars().any(is_dangerous));
    }

    #[test]
    fn backslashes_that_look_like_escapes_are_doubled() {
        assert_eq!(escape("a\\nb"), "a\\\\nb");
        assert_eq!(escape("a\\\\n"), "a\\\\\\\\n");
        assert_eq!(escape("C:\\Dades\\x"), "C:\\Dades\\\\x");
        assert_eq!(escape("trail\\"), "trail\\");
    }

    proptest::proptest! {
        #[test]
        fn no_dangerous_character_survives(
            chars in proptest::collection::vec(proptest::char::any(), 0..64)
        ) {
            let s: String = chars.into_iter().collect();
            let e = escape(&s);
            proptest::prop_assert!(!e.chars().any(is_dangerous));
            proptest::prop_assert!(e.len() >= s.len());
        }
    }
}
