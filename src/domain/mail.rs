//! The mail as the domain sees it: owned, decoded, with no parser types.
//! Built by `crate::adapters::mail` from raw bytes.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset};

use crate::domain::html::escape_text;

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
    /// Attached messages, in order (each is also in `attachments` as a `.eml` file).
    pub forwarded: Vec<Forwarded>,
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

    /// The HTML the ticket description or comment is made from: the body; when the mail
    /// has no text of its own and carries attached messages, their sender, date, subject
    /// and text follow it, so the ticket is never blank.
    pub fn description_html(&self) -> Cow<'_, str> {
        if self.forwarded.is_empty() || !self.body_text.trim().is_empty() {
            return Cow::Borrowed(&self.body_html);
        }
        let mut out = self.body_html.clone();
        for f in &self.forwarded {
            out.push_str("<p>---------- Missatge reenviat ----------<br>\n");
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
                    out.push_str(&format!("{label}: {}<br>\n", escape_text(&value)));
                }
            }
            out.push_str("</p>\n");
            for (i, line) in f.body_text.split('\n').enumerate() {
                if i > 0 {
                    out.push_str("<br>\n");
                }
                out.push_str(&escape_text(line.strip_suffix('\r').unwrap_or(line)));
            }
            out.push('\n');
        }
        Cow::Owned(out)
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
