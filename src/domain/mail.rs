//! The mail as the domain sees it: owned, decoded, with no parser types.
//! Built by `crate::adapters::mail` from raw bytes.

use chrono::{DateTime, FixedOffset};

/// One attachment (a non-body leaf part), already transfer-decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    /// File name (RFC 2231 decoded), or `attach<N>.<subtype>` when the part has none.
    pub name: String,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// Content-ID without angle brackets, for inline images.
    pub content_id: Option<String>,
    pub data: Vec<u8>,
}

/// A message attached to the mail (`message/rfc822`, `message/global`: a forwarded mail,
/// the returned message of a bounce), summarised for the description.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// The From header as written (decoded), e.g. `Anna Puig <anna@example.com>`.
    pub from: String,
    pub date: Option<DateTime<FixedOffset>>,
    pub subject: String,
    /// Its text body (plain text).
    pub body_text: String,
}

/// A decoded mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mail {
    /// Every header in order: (name as written, decoded value, line breaks unfolded).
    pub headers: Vec<(String, String)>,
    /// Addresses of each address header, lower-cased, in order.
    pub from: Vec<String>,
    pub reply_to: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub resent_from: Vec<String>,
    pub resent_to: Vec<String>,
    /// RFC 2047-decoded subject without line breaks; empty when absent.
    pub subject: String,
    /// The Date header, when it parses.
    pub date: Option<DateTime<FixedOffset>>,
    /// Message-ID with angle brackets, e.g. `<abc@host>`.
    pub message_id: Option<String>,
    /// In-Reply-To ids with angle brackets.
    pub in_reply_to: Vec<String>,
    /// References ids with angle brackets, oldest first (as in the header).
    pub references: Vec<String>,
    /// Top-level content type, lower-case, e.g. `multipart/report`.
    pub content_type: String,
    /// `report-type` parameter of a multipart/report, lower-case.
    pub report_type: Option<String>,
    /// The body as HTML (§3): the HTML part, or the text part escaped and joined with `<br>`.
    pub body_html: String,
    /// The body as plain text (for detection rules such as "Return Receipt").
    pub body_text: String,
    /// Kept attachments (after the name and hash filters).
    pub attachments: Vec<Attachment>,
    /// Size of the raw mail in bytes.
    pub raw_len: usize,
    /// Deepest MIME nesting, measured on the raw bytes by a bounded scan that stops one
    /// level past the limit (issue 9, `max_mime_depth`).
    pub mime_depth: usize,
    /// The MIME skeleton, read from the raw bytes without decoding any text (issue 14).
    pub structure: Structure,
    /// Attached messages, in order (each is also in `attachments` as a `.eml` file).
    pub forwarded: Vec<Forwarded>,
}

/// Structural facts of a mail, read by the mail adapter straight from the raw bytes,
/// independently of charsets and of the full MIME parser: the automatic-mail signals
/// (multipart/report, message/delivery-status parts, a null Return-Path) must decide
/// even when a part cannot be decoded. Parts inside an embedded message
/// (`message/rfc822`) are not the mail's own parts and are not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Structure {
    /// Content type of every part outside embedded messages, lower-case, root first.
    pub part_types: Vec<String>,
    /// `report-type` of every multipart/report among them, lower-case.
    pub report_types: Vec<String>,
    /// The top-level header block as written: (name, value unfolded, not decoded).
    pub headers: Vec<(String, String)>,
    /// Body of every `message/delivery-status` (or `message/global-delivery-status`)
    /// part, transfer-decoded, as lossy UTF-8 (RFC 3464 fields are ASCII).
    pub delivery_status: Vec<String>,
    /// Headers of the returned message of a bounce: the first `message/rfc822`,
    /// `message/global`, `text/rfc822-headers` or `message/partial` part.
    pub returned_headers: Vec<(String, String)>,
    /// The first `text/plain` part (or a non-MIME body), transfer-decoded, lossy UTF-8.
    pub first_text: String,
}

impl Structure {
    /// First value of a top-level header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        first(&self.headers, name)
    }

    /// First value of a returned-message header, by case-insensitive name.
    pub fn returned_header(&self, name: &str) -> Option<&str> {
        first(&self.returned_headers, name)
    }

    /// Whether any part (root included) has this content type.
    pub fn has_part(&self, content_type: &str) -> bool {
        self.part_types.iter().any(|t| t == content_type)
    }
}

fn first<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Mail {
    /// First value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, by case-insensitive name.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The sender: first From address, lower-cased; empty when absent.
    pub fn sender(&self) -> &str {
        self.from.first().map(String::as_str).unwrap_or("")
    }

    /// To for templates and rules: Resent-To if present, else To (first address).
    pub fn template_to(&self) -> &str {
        self.resent_to
            .first()
            .or(self.to.first())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// emailSolicitant of a new ticket: Reply-To, else From.
    pub fn requester_email(&self) -> &str {
        self.reply_to
            .first()
            .map(String::as_str)
            .unwrap_or_else(|| self.sender())
    }

    /// What the ticket must show of the attached messages (issue 17): when the mail has
    /// no text of its own and carries attached messages, one plain-text block per
    /// message with its sender, date, subject and text, so the ticket is never blank.
    /// Plain text: the HTML pipeline puts it in the tree as text (never as markup).
    pub fn forwarded_text(&self) -> Vec<String> {
        if self.forwarded.is_empty() || !self.body_text.trim().is_empty() {
            return Vec::new();
        }
        self.forwarded
            .iter()
            .map(|f| {
                let mut block = String::from("---------- Missatge reenviat ----------\n");
                for (label, value) in [
                    ("De", f.from.clone()),
                    (
                        "Data",
                        f.date
                            .map(|d| d.format("%d/%m/%Y %H:%M").to_string())
                            .unwrap_or_default(),
                    ),
                    ("Assumpte", f.subject.clone()),
                ] {
                    if !value.is_empty() {
                        block.push_str(&format!("{label}: {value}\n"));
                    }
                }
                block.push('\n');
                block.push_str(&f.body_text);
                block
            })
            .collect()
    }

    /// Addresses of an address header by name ("From", "cc", ...), for rules.
    pub fn addresses(&self, name: &str) -> Option<&[String]> {
        let n = name.to_ascii_lowercase();
        Some(match n.as_str() {
            "from" => &self.from,
            "reply-to" => &self.reply_to,
            "to" => &self.to,
            "cc" => &self.cc,
            "bcc" => &self.bcc,
            "resent-from" => &self.resent_from,
            "resent-to" => &self.resent_to,
            _ => return None,
        })
    }
}
