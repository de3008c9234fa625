//! Attachments: every non-body leaf part, with its file name (RFC 2231 and RFC 2047), its
//! transfer-decoded bytes, attached messages (`message/rfc822`, `message/global`) as
//! themselves, and Outlook's winmail.dat unpacked.

use mail_parser::{HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType};

use super::body::{part_bytes, read_bodies};
use super::charset::{self, Charset};
use super::headers::{decode_words, read_headers};
use super::transfer::{self, Cte};
use super::{AttachmentFilters, raw_slice, tnef};
use crate::domain::mail::{Attachment, Forwarded, Mail};

/// Longest file name kept, in bytes (most file systems stop at 255).
const MAX_NAME_BYTES: usize = 200;

pub(crate) fn read_attachments(
    msg: &mut Message<'_>,
    raw: &[u8],
    hint: Option<Charset>,
    filters: &AttachmentFilters,
    mail: &mut Mail,
) {
    let ids = std::mem::take(&mut msg.attachments);
    for id in ids {
        let Some(part) = msg.parts.get_mut(id as usize) else {
            continue;
        };
        let is_message = matches!(part.body, PartType::Message(_));
        let (content_type, subtype) = match part.content_type() {
            Some(ct) => {
                let sub = ct.c_subtype.as_deref().unwrap_or("octet-stream");
                (
                    format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
                    sub.to_ascii_lowercase(),
                )
            }
            // A part of a multipart/digest.
            None if is_message => ("message/rfc822".to_string(), "rfc822".to_string()),
            None => ("text/plain".to_string(), "plain".to_string()),
        };
        let name = file_name(part, raw, hint);
        let content_id = part
            .content_id()
            .map(|c| {
                c.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .filter(|c| !c.is_empty());
        let cte = Cte::from_header(part.content_transfer_encoding());
        // Move the decoded bytes out of the parser's tree: a 10 MB attachment is held once.
        let body = std::mem::replace(&mut part.body, PartType::Multipart(vec![]));
        let mut uu_name = None;
        let data: Vec<u8> = match body {
            PartType::Multipart(_) => continue,
            // The bytes as sent, not re-encoded text; an attached message as itself (the
            // parser's `raw_message` is the whole outer mail).
            PartType::Text(_) | PartType::Html(_) | PartType::Message(_) => part_bytes(part, raw),
            PartType::Binary(b) | PartType::InlineBinary(b) => match &cte {
                Cte::Base64 => {
                    let sent =
                        raw_slice(raw, part.offset_body, part.offset_end).unwrap_or_default();
                    if transfer::base64_needs_lenient(sent) {
                        transfer::base64_lenient(sent)
                    } else {
                        b.into_owned()
                    }
                }
                Cte::Uuencode => {
                    let sent =
                        raw_slice(raw, part.offset_body, part.offset_end).unwrap_or_default();
                    match transfer::uudecode(sent) {
                        Some((n, d)) => {
                            uu_name = n;
                            d
                        }
                        None => sent.to_vec(),
                    }
                }
                Cte::Unknown(_) => part_bytes(part, raw),
                Cte::Identity | Cte::QuotedPrintable => b.into_owned(),
            },
        };
        let message = is_message
            || matches!(subtype.as_str(), "rfc822" | "global")
                && content_type.starts_with("message/");
        let name = name.or_else(|| uu_name.map(|n| sanitize_name(&n)).filter(|n| !n.is_empty()));
        let name = if message {
            let summary = summarise(&data);
            let own = name.unwrap_or_else(|| {
                // A subject is not a path: its slashes stay as dashes.
                let n = sanitize_name(&summary.subject.replace(['/', '\\'], "-"));
                if n.is_empty() {
                    format!("missatge{}.eml", mail.attachments.len() + 1)
                } else {
                    format!("{n}.eml")
                }
            });
            mail.forwarded.push(summary);
            own
        } else {
            name.unwrap_or_else(|| format!("attach{}.{}", mail.attachments.len() + 1, subtype))
        };
        let is_tnef = matches!(
            content_type.as_str(),
            "application/ms-tnef" | "application/vnd.ms-tnef"
        ) || name.eq_ignore_ascii_case("winmail.dat");
        let unpacked = if is_tnef {
            tnef::unpack(&data)
        } else {
            Vec::new()
        };
        push(
            mail,
            filters,
            Attachment {
                name,
                content_type,
                content_id,
                data,
            },
        );
        for file in unpacked {
            let name = sanitize_name(&file.name);
            let name = if name.is_empty() {
                format!("attach{}.dat", mail.attachments.len() + 1)
            } else {
                name
            };
            push(
                mail,
                filters,
                Attachment {
                    name,
                    content_type: file.content_type,
                    content_id: None,
                    data: file.data,
                },
            );
        }
    }
}

/// The one place every attachment (MIME part or file unpacked from winmail.dat) is kept:
/// the name and hash filters apply here, and so would a count or total-size limit.
fn push(mail: &mut Mail, filters: &AttachmentFilters, att: Attachment) {
    if filters.drops(&att.name, &att.data) {
        return;
    }
    mail.attachments.push(att);
}

/// The sender, date, subject and text of an attached message, for the description of a
/// mail that has no text of its own. Attachments of the inner message are not walked.
fn summarise(bytes: &[u8]) -> Forwarded {
    let mut inner = Mail::default();
    if let Some(msg) = MessageParser::default().parse(bytes)
        && let Some(root) = msg.parts.first()
    {
        let hint = super::mail_hint(&msg, bytes);
        read_headers(root, bytes, hint, &mut inner);
        read_bodies(&msg, bytes, hint, &mut inner);
    }
    Forwarded {
        from: inner.header("From").map(str::to_string).unwrap_or_default(),
        date: inner.date,
        subject: inner.subject,
        body_text: inner.body_text,
    }
}

/// The file name of a part: `filename` of Content-Disposition, else `name` of
/// Content-Type, RFC 2231 (continuations and charset) or RFC 2047; made safe.
fn file_name(part: &MessagePart<'_>, raw: &[u8], hint: Option<Charset>) -> Option<String> {
    for (wanted, param) in [
        (HeaderName::ContentDisposition, "filename"),
        (HeaderName::ContentType, "name"),
    ] {
        let Some(h) = part.headers().iter().find(|h| h.name == wanted) else {
            continue;
        };
        let Some(bytes) = raw_slice(raw, h.offset_start, h.offset_end) else {
            continue;
        };
        let text = charset::decode_undeclared(bytes, hint);
        if let Some(n) = parameter(&text, param, hint) {
            let n = sanitize_name(&n);
            if !n.is_empty() {
                return Some(n);
            }
        }
    }
    part.attachment_name()
        .map(|n| sanitize_name(&decode_words(n, hint)))
        .filter(|n| !n.is_empty())
}

/// A parameter of a structured header value (`type/sub; a=b; name*0*=...`), RFC 2231
/// aware: sections are joined in order, percent-decoded where marked `*`, and decoded in
/// the charset of the first section. A plain value may hold RFC 2047 words.
pub(crate) fn parameter(value: &str, wanted: &str, hint: Option<Charset>) -> Option<String> {
    let mut plain: Option<String> = None;
    let mut ext_whole: Option<String> = None;
    // (section, extended, value)
    let mut sections: Vec<(u32, bool, String)> = Vec::new();
    for (key, val) in params(value) {
        let key = key.to_ascii_lowercase();
        let Some(rest) = key.strip_prefix(wanted) else {
            continue;
        };
        if rest.is_empty() {
            plain.get_or_insert(val);
        } else if rest == "*" {
            ext_whole.get_or_insert(val);
        } else if let Some(sec) = rest.strip_prefix('*') {
            let (num, ext) = match sec.strip_suffix('*') {
                Some(n) => (n, true),
                None => (sec, false),
            };
            if let Ok(n) = num.parse::<u32>() {
                sections.push((n, ext, val));
            }
        }
    }
    if let Some(v) = ext_whole {
        return Some(decode_extended(&[(true, v)], hint));
    }
    if !sections.is_empty() {
        sections.sort_by_key(|s| s.0);
        sections.dedup_by_key(|s| s.0);
        let parts: Vec<(bool, String)> = sections.into_iter().map(|(_, e, v)| (e, v)).collect();
        return Some(decode_extended(&parts, hint));
    }
    plain.map(|v| decode_words(&v, hint))
}

/// Joins RFC 2231 sections: the charset (`cs'lang'`) comes from the first one and applies
/// to the bytes of every section.
fn decode_extended(parts: &[(bool, String)], hint: Option<Charset>) -> String {
    let mut label = String::new();
    let mut bytes = Vec::new();
    for (i, (ext, v)) in parts.iter().enumerate() {
        let mut v = v.as_str();
        if i == 0 && *ext {
            let mut it = v.splitn(3, '\'');
            if let (Some(cs), Some(_lang), Some(rest)) = (it.next(), it.next(), it.next()) {
                label = cs.to_string();
                v = rest;
            }
        }
        if *ext {
            bytes.extend(percent_decode(v.as_bytes()));
        } else {
            bytes.extend_from_slice(v.as_bytes());
        }
    }
    charset::decode_label(&label, &bytes, hint)
}

fn percent_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = b.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(h).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// `key=value` pairs after the first `;`, values unquoted (backslash escapes resolved).
fn params(value: &str) -> Vec<(String, String)> {
    let unfolded: String = value.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    let mut out = Vec::new();
    let mut chars = unfolded.chars().peekable();
    // Skip the type.
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        if chars.next() == Some(';') {
            continue;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(e) = chars.next() {
                            val.push(e);
                        }
                    }
                    '"' => break,
                    _ => val.push(c),
                }
            }
            // Anything up to the next `;` after the closing quote is dropped.
            while chars.peek().is_some_and(|c| *c != ';') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ';' {
                    break;
                }
                val.push(c);
                chars.next();
            }
            val = val.trim_end().to_string();
        }
        out.push((key.trim().to_string(), val));
    }
    out
}

/// A file name safe to store and show: the last path component, control characters as
/// spaces, none of `: * ? " < > |`, no leading dots or surrounding spaces, at most
/// [`MAX_NAME_BYTES`] bytes with the extension kept. Empty when nothing is left.
pub(crate) fn sanitize_name(name: &str) -> String {
    let name = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = name
        .chars()
        .filter(|c| !matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|'))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    let trimmed = collapsed
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    if trimmed.len() <= MAX_NAME_BYTES {
        return trimmed.to_string();
    }
    let (stem, ext) = match trimmed.rfind('.') {
        Some(i) if trimmed.len() - i <= 16 => (&trimmed[..i], &trimmed[i..]),
        _ => (trimmed, ""),
    };
    let mut cut = MAX_NAME_BYTES - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", stem[..cut].trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2231_continuations_keep_the_charset() {
        let v = "attachment; filename*0*=iso-8859-1''r%E9sum%E9%20; filename*1*=%E0%20revisar.pdf";
        assert_eq!(
            parameter(v, "filename", None).as_deref(),
            Some("résumé à revisar.pdf")
        );
        let v = "attachment; filename*1=\"part.pdf\"; filename*0*=utf-8''n%C3%BAm_";
        assert_eq!(
            parameter(v, "filename", None).as_deref(),
            Some("núm_part.pdf")
        );
        let v = "application/pdf; name=\"=?UTF-8?Q?f=C3=A0cil?= b.pdf\"";
        assert_eq!(parameter(v, "name", None).as_deref(), Some("fàcil b.pdf"));
        let v = "attachment; filename*=GB2312''%B4%F2%D3%A1.txt";
        assert_eq!(parameter(v, "filename", None).as_deref(), Some("打印.txt"));
        let v = "attachment; filename=\"a\\\"b;c.txt\"; size=3";
        assert_eq!(
            parameter(v, "filename", None).as_deref(),
            Some("a\"b;c.txt")
        );
        assert_eq!(parameter("attachment", "filename", None), None);
    }

    #[test]
    fn names_made_safe() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\x\\Re: hola?.eml"), "Re hola.eml");
        assert_eq!(sanitize_name("  .hidden\u{0}name. "), "hidden name");
        let long = format!("{}.pdf", "à".repeat(300));
        let s = sanitize_name(&long);
        assert!(s.len() <= MAX_NAME_BYTES && s.ends_with(".pdf"), "{s}");
        assert_eq!(sanitize_name(" ... "), "");
    }
}
