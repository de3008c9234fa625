//! Limits on what one mail may make the gateway do (issue 9): every mail comes from the
//! open internet, so work and memory are bounded by configuration, not by the sender.
//!
//! Hard limits (mail size, header block size, MIME nesting, attachments per mail) make the mail a
//! permanent outcome: REJECT, quarantined once, one report — retrying cannot help.
//! Soft limits change what is stored and say so: a long subject is cut with `…`, HTML
//! nested too deep is flattened into text (and the ticket says how much).

use serde::Deserialize;

use crate::domain::mail::Mail;

/// The `[limits]` table of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest raw mail accepted, in bytes.
    pub max_mail_bytes: usize,
    /// Largest header block (all header names and values), in bytes.
    pub max_header_bytes: usize,
    /// Most attachments one mail may carry.
    pub max_attachments: usize,
    /// Deepest MIME nesting accepted (multipart levels and attached messages; a
    /// single-part mail is 0). Measured on the raw bytes before the mail is parsed.
    pub max_mime_depth: usize,
    /// Longest ticket subject, in characters; longer ones are cut and end with `…`.
    pub max_subject_chars: usize,
    /// Deepest HTML nesting kept as elements; deeper content is flattened into text.
    pub html_max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_mail_bytes: 50 * 1024 * 1024,
            max_header_bytes: 1024 * 1024,
            max_attachments: 100,
            max_mime_depth: DEFAULT_MAX_MIME_DEPTH,
            max_subject_chars: 255,
            html_max_depth: crate::domain::html::DEFAULT_MAX_DEPTH,
        }
    }
}

/// Default of `max_mime_depth`: real mail rarely nests more than 5 levels (a forward of
/// a signed reply with alternatives and inline images); 20 leaves room for forwards of
/// forwards while keeping the parser's work and recursion small.
pub const DEFAULT_MAX_MIME_DEPTH: usize = 20;

/// Largest `max_mime_depth` that takes effect (larger values act as this one): the
/// scan that measures the depth does one pass per level, so its work stays bounded.
pub const MIME_DEPTH_CEILING: usize = 100;

/// A hard limit a mail went past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exceeded {
    MailSize {
        size: usize,
        max: usize,
    },
    HeaderSize {
        size: usize,
        max: usize,
    },
    Attachments {
        count: usize,
        max: usize,
    },
    /// `depth` is as far as the bounded scan went: at most `max + 1`.
    MimeDepth {
        depth: usize,
        max: usize,
    },
}

impl Exceeded {
    /// The reason, in Catalan (journal, report, `X-Mailtoticket`).
    pub fn reason(&self) -> String {
        match self {
            Exceeded::MailSize { size, max } => {
                format!("mail massa gran: {size} bytes (límit max_mail_bytes = {max})")
            }
            Exceeded::HeaderSize { size, max } => {
                format!("capçaleres massa grans: {size} bytes (límit max_header_bytes = {max})")
            }
            Exceeded::Attachments { count, max } => {
                format!("massa fitxers adjunts: {count} (límit max_attachments = {max})")
            }
            Exceeded::MimeDepth { max, .. } => {
                format!(
                    "estructura MIME massa niuada: més de {max} nivells (límit max_mime_depth = {max})"
                )
            }
        }
    }
}

/// The first hard limit the mail goes past, if any. A value equal to its limit passes.
pub fn check(mail: &Mail, limits: &Limits) -> Option<Exceeded> {
    if mail.raw_len > limits.max_mail_bytes {
        return Some(Exceeded::MailSize {
            size: mail.raw_len,
            max: limits.max_mail_bytes,
        });
    }
    // Each header as written: "Name: value\r\n".
    let headers: usize = mail
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum();
    if headers > limits.max_header_bytes {
        return Some(Exceeded::HeaderSize {
            size: headers,
            max: limits.max_header_bytes,
        });
    }
    let max_depth = limits.max_mime_depth.min(MIME_DEPTH_CEILING);
    if mail.mime_depth > max_depth {
        return Some(Exceeded::MimeDepth {
            depth: mail.mime_depth,
            max: max_depth,
        });
    }
    if mail.attachments.len() > limits.max_attachments {
        return Some(Exceeded::Attachments {
            count: mail.attachments.len(),
            max: limits.max_attachments,
        });
    }
    None
}

/// `text` cut to at most `max` characters, the last of them `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some(_) if max == 0 => String::new(),
        Some(_) => {
            let (cut, _) = text.char_indices().nth(max - 1).unwrap_or((0, ' '));
            format!("{}…", &text[..cut])
        }
    }
}

/// An attachment name without control characters and bidi controls (which can make
/// `invoice\u{202e}gpj.exe` read as `invoiceexe.jpg`); the rest is kept.
pub fn clean_file_name(name: &str) -> String {
    let out: String = name
        .chars()
        .filter(|&c| !c.is_control() && !crate::domain::html::is_bidi_control(c))
        .collect();
    if out.trim().is_empty() {
        "attach".to_string()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_at_and_past_the_edge() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("àèìòù", 4), "àèì…");
        assert_eq!(truncate_chars("", 0), "");
        assert_eq!(truncate_chars("a", 0), "");
        assert_eq!(truncate_chars("ab", 1), "…");
    }

    #[test]
    fn file_names_lose_controls_and_bidi() {
        assert_eq!(clean_file_name("invoice\u{202e}gpj.exe"), "invoicegpj.exe");
        assert_eq!(clean_file_name("a\u{2066}b\u{200f}\r\n.pdf"), "ab.pdf");
        assert_eq!(clean_file_name("factura è.pdf"), "factura è.pdf");
        assert_eq!(clean_file_name("\u{202e}"), "attach");
    }

    #[test]
    fn hard_limits_at_and_past_the_edge() {
        let l = Limits {
            max_mail_bytes: 100,
            max_header_bytes: 20,
            max_attachments: 2,
            max_mime_depth: 3,
            ..Limits::default()
        };
        let mut m = Mail {
            raw_len: 100,
            headers: vec![("Subject".into(), "123456789".into())],
            attachments: vec![Default::default(); 2],
            ..Mail::default()
        };
        assert_eq!(check(&m, &l), None);
        m.raw_len = 101;
        assert!(matches!(
            check(&m, &l),
            Some(Exceeded::MailSize { size: 101, .. })
        ));
        m.raw_len = 1;
        m.headers[0].1.push('x');
        assert!(matches!(
            check(&m, &l),
            Some(Exceeded::HeaderSize { size: 21, .. })
        ));
        m.headers[0].1.pop();
        m.mime_depth = 3;
        assert_eq!(check(&m, &l), None);
        m.mime_depth = 4;
        assert!(matches!(
            check(&m, &l),
            Some(Exceeded::MimeDepth { depth: 4, max: 3 })
        ));
        m.mime_depth = 0;
        m.attachments.push(Default::default());
        assert!(matches!(
            check(&m, &l),
            Some(Exceeded::Attachments { count: 3, .. })
        ));
    }
}
