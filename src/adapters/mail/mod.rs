//! Driven adapter: raw bytes → domain `Mail` (BEHAVIOUR §3). The only place that imports
//! mail-parser; everything leaving this module is owned domain data.
//!
//! mail-parser does the MIME walk and the transfer decoding. Headers are re-read from the
//! raw bytes here because mail-parser decodes each RFC 2047 word on its own (a character
//! split across two words comes out as U+FFFD) and drops undeclared 8-bit header bytes
//! that are not UTF-8.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, NaiveDate};
use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;
use mail_parser::{
    Address, HeaderName, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};
use md5::{Digest, Md5};

use crate::domain::html::escape_text;
use crate::domain::mail::{Attachment, Mail};

/// Attachment filters of the configuration (`filtrar_attachments_per_*`).
#[derive(Debug, Clone, Default)]
pub struct AttachmentFilters {
    /// Regexes on the file name.
    pub per_nom: Vec<regex::Regex>,
    /// MD5 hex digests (lower-case) of contents to drop.
    pub per_hash: Vec<String>,
}

impl AttachmentFilters {
    /// Builds the filters from the configuration lists. The error names the bad regex.
    pub fn new(per_nom: &[String], per_hash: &[String]) -> Result<Self, String> {
        let per_nom = per_nom
            .iter()
            .map(|p| {
                regex::Regex::new(p)
                    .map_err(|e| format!("filtrar_attachments_per_nom: regex invàlida {p:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let per_hash = per_hash
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        Ok(Self { per_nom, per_hash })
    }

    fn drops(&self, name: &str, data: &[u8]) -> bool {
        if self.per_nom.iter().any(|r| r.is_match(name)) {
            return true;
        }
        if self.per_hash.is_empty() {
            return false;
        }
        let hex = format!("{:x}", Md5::digest(data));
        self.per_hash.contains(&hex)
    }
}

/// Parses a raw mail. Never fails and never panics: a non-mail gives a `Mail` with what
/// could be read (at least `raw_len`).
pub fn parse(raw: &[u8], filters: &AttachmentFilters) -> Mail {
    // mail-parser is third-party code fed with untrusted bytes: a panic inside it must not
    // take the delivery down, so contain it and fall back to the headers alone.
    std::panic::catch_unwind(|| parse_inner(raw, filters))
        .or_else(|_| std::panic::catch_unwind(|| parse_header_block(raw)))
        .unwrap_or_else(|_| Mail {
            raw_len: raw.len(),
            ..Mail::default()
        })
}

/// Fallback when the MIME walk panicked (mail-parser 0.11.9 has a `debug_assert!` on some
/// nested multiparts with broken boundaries, found by fuzzing): the header block is parsed
/// alone, so sender and subject still route the mail, and the rest is kept as plain text
/// rather than lost.
fn parse_header_block(raw: &[u8]) -> Mail {
    let end = [&b"\r\n\r\n"[..], &b"\n\n"[..]]
        .iter()
        .filter_map(|sep| {
            raw.windows(sep.len())
                .position(|w| w == *sep)
                .map(|i| i + sep.len())
        })
        .min()
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(end);
    let mut mail = Mail {
        raw_len: raw.len(),
        ..Mail::default()
    };
    if let Some(msg) = MessageParser::default().parse_headers(head) {
        read_headers(&msg, head, &mut mail);
    }
    mail.content_type = "text/plain".into();
    mail.body_text = bytes_to_string(body);
    mail.body_html = text_to_html(&mail.body_text);
    mail
}

fn parse_inner(raw: &[u8], filters: &AttachmentFilters) -> Mail {
    let mut mail = Mail {
        raw_len: raw.len(),
        ..Mail::default()
    };
    let Some(mut msg) = MessageParser::default().parse(raw) else {
        return mail;
    };
    read_headers(&msg, raw, &mut mail);
    read_bodies(&msg, raw, &mut mail);
    read_attachments(&mut msg, raw, filters, &mut mail);
    mail
}

// ---------------------------------------------------------------- headers

fn read_headers(msg: &Message<'_>, raw: &[u8], mail: &mut Mail) {
    let Some(root) = msg.parts.first() else {
        return;
    };
    for h in root.headers() {
        let name = raw_slice(raw, h.offset_field, h.offset_start)
            .map(|b| {
                let s = bytes_to_string(b);
                s.trim_end().trim_end_matches(':').trim().to_string()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| h.name.as_str().to_string());
        let value = raw_slice(raw, h.offset_start, h.offset_end)
            .map(|b| decode_header_value(&bytes_to_string(b)))
            .unwrap_or_default();

        let target = match h.name {
            HeaderName::From => Some(&mut mail.from),
            HeaderName::ReplyTo => Some(&mut mail.reply_to),
            HeaderName::To => Some(&mut mail.to),
            HeaderName::Cc => Some(&mut mail.cc),
            HeaderName::Bcc => Some(&mut mail.bcc),
            HeaderName::ResentFrom => Some(&mut mail.resent_from),
            HeaderName::ResentTo => Some(&mut mail.resent_to),
            _ => None,
        };
        if let Some(list) = target {
            push_addresses(list, h.value());
        }
        match h.name {
            HeaderName::Subject if mail.subject.is_empty() => {
                mail.subject = value.replace(['\r', '\n'], "");
            }
            HeaderName::Date if mail.date.is_none() => {
                mail.date = h.value().as_datetime().and_then(to_chrono);
            }
            HeaderName::MessageId if mail.message_id.is_none() => {
                mail.message_id = ids(&value).into_iter().next();
            }
            HeaderName::InReplyTo if mail.in_reply_to.is_empty() => {
                mail.in_reply_to = ids(&value);
            }
            HeaderName::References if mail.references.is_empty() => {
                mail.references = ids(&value);
            }
            _ => {}
        }
        mail.headers.push((name, value));
    }
    if let Some(ct) = root.content_type() {
        mail.content_type = match &ct.c_subtype {
            Some(sub) => format!("{}/{}", ct.c_type, sub),
            None => ct.c_type.to_string(),
        }
        .to_ascii_lowercase();
        mail.report_type = ct.attribute("report-type").map(|s| s.to_ascii_lowercase());
    }
}

fn raw_slice(raw: &[u8], start: u32, end: u32) -> Option<&[u8]> {
    raw.get(start as usize..end as usize)
}

fn push_addresses(list: &mut Vec<String>, value: &HeaderValue<'_>) {
    let addrs: Box<dyn Iterator<Item = &mail_parser::Addr<'_>>> = match value {
        HeaderValue::Address(Address::List(l)) => Box::new(l.iter()),
        HeaderValue::Address(Address::Group(g)) => {
            Box::new(g.iter().flat_map(|g| g.addresses.iter()))
        }
        _ => return,
    };
    for a in addrs {
        if let Some(addr) = a.address.as_deref() {
            let addr = addr.trim().to_lowercase();
            if !addr.is_empty() {
                list.push(addr);
            }
        }
    }
}

/// Message ids with angle brackets, read from the header text: mail-parser strips the
/// brackets, returns one id or a list, and drops ids written without brackets.
fn ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let id = rest[open + 1..open + close].trim();
        if !id.is_empty() {
            out.push(format!("<{id}>"));
        }
        rest = &rest[open + close + 1..];
    }
    // Bare ids (no brackets at all, or trailing after the bracketed ones).
    for tok in rest.split([' ', '\t', ',']) {
        let tok = tok.trim().trim_end_matches('>');
        if tok.contains('@') && !tok.contains('<') {
            out.push(format!("<{tok}>"));
        }
    }
    out
}

fn to_chrono(d: &mail_parser::DateTime) -> Option<DateTime<FixedOffset>> {
    if !d.is_valid() {
        return None;
    }
    let secs = (i32::from(d.tz_hour) * 3600 + i32::from(d.tz_minute) * 60)
        * if d.tz_before_gmt { -1 } else { 1 };
    let offset = FixedOffset::east_opt(secs)?;
    let naive = NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))?
        .and_hms_opt(u32::from(d.hour), u32::from(d.minute), u32::from(d.second))?;
    naive.and_local_timezone(offset).single()
}

/// Bytes as text: UTF-8 when valid, else Windows-1252 (the usual undeclared 8-bit charset
/// of Western mail clients, a superset of Latin-1 for printable characters).
pub(crate) fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => cp1252(b),
    }
}

fn cp1252(b: &[u8]) -> String {
    match charset_decoder(b"windows-1252") {
        Some(dec) => dec(b),
        None => b.iter().map(|&c| char::from(c)).collect(),
    }
}

/// Unfolds a raw header value and decodes its RFC 2047 encoded words. Adjacent encoded
/// words of one charset are decoded together, so a character split across two words
/// survives; whitespace between adjacent encoded words is dropped (RFC 2047 §6.2).
pub fn decode_header_value(raw: &str) -> String {
    let unfolded: String = raw.replace("\r\n", "\n").replace('\n', "");
    let s = unfolded.trim();
    let mut out = String::with_capacity(s.len());
    // Pending bytes of consecutive encoded words in one charset.
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut gap = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some((charset, bytes, used)) = encoded_word(rest) {
            match &mut pending {
                Some((cs, buf)) if cs.eq_ignore_ascii_case(&charset) => buf.extend(bytes),
                _ => {
                    flush(&mut out, &mut pending);
                    pending = Some((charset, bytes));
                }
            }
            gap.clear();
            rest = &rest[used..];
            continue;
        }
        let ch = rest.chars().next().unwrap_or(' ');
        if pending.is_some() && (ch == ' ' || ch == '\t') {
            gap.push(ch);
        } else {
            flush(&mut out, &mut pending);
            out.push_str(&gap);
            gap.clear();
            out.push(ch);
        }
        rest = &rest[ch.len_utf8()..];
    }
    flush(&mut out, &mut pending);
    out.push_str(&gap);
    out
}

fn flush(out: &mut String, pending: &mut Option<(String, Vec<u8>)>) {
    if let Some((charset, bytes)) = pending.take() {
        out.push_str(&decode_charset(&charset, &bytes));
    }
}

fn decode_charset(charset: &str, bytes: &[u8]) -> String {
    // RFC 2231 allows a language suffix: "utf-8*ca".
    let cs = charset.split('*').next().unwrap_or("");
    let cs = cs.trim();
    if cs.eq_ignore_ascii_case("utf-8") || cs.eq_ignore_ascii_case("us-ascii") || cs.is_empty() {
        return bytes_to_string(bytes);
    }
    if is_latin1_label(cs) {
        return cp1252(bytes);
    }
    match charset_decoder(cs.as_bytes()) {
        Some(dec) => dec(bytes),
        None => bytes_to_string(bytes),
    }
}

/// Latin-1 labels: mail labelled so is in practice Windows-1252 (Outlook's smart quotes,
/// the euro sign), as browsers also assume.
fn is_latin1_label(cs: &str) -> bool {
    matches!(
        cs.to_ascii_lowercase().as_str(),
        "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "l1" | "iso_8859-1" | "cp819"
    )
}

/// One `=?charset?enc?text?=` at the start of `s`: (charset, decoded bytes, length used).
fn encoded_word(s: &str) -> Option<(String, Vec<u8>, usize)> {
    let body = s.strip_prefix("=?")?;
    let q1 = body.find('?')?;
    let charset = &body[..q1];
    if charset.is_empty() || charset.contains(char::is_whitespace) {
        return None;
    }
    let after = &body[q1 + 1..];
    let mut it = after.char_indices();
    let (_, enc) = it.next()?;
    if after.get(1..2)? != "?" {
        return None;
    }
    let text_start = 2;
    let end = after[text_start..].find("?=")?;
    let text = &after[text_start..text_start + end];
    if text.contains(' ') {
        return None;
    }
    let bytes = match enc.to_ascii_lowercase() {
        'b' => decode_b(text.as_bytes())?,
        'q' => decode_q(text.as_bytes()),
        _ => return None,
    };
    let used = 2 + q1 + 1 + text_start + end + 2;
    Some((charset.to_string(), bytes, used))
}

fn decode_b(text: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let trimmed: Vec<u8> = text.iter().copied().filter(|c| *c != b'=').collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&trimmed)
        .ok()
        .or_else(|| base64_decode(text))
}

fn decode_q(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < text.len() => {
                let hex = std::str::from_utf8(&text[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'='),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------- bodies

fn read_bodies(msg: &Message<'_>, raw: &[u8], mail: &mut Mail) {
    let html: Vec<String> = msg
        .html_body
        .iter()
        .filter_map(|id| msg.parts.get(*id as usize))
        .filter(|p| matches!(p.body, PartType::Html(_)))
        .map(|p| part_text(p, raw).into_owned())
        .collect();
    let text: Vec<String> = msg
        .text_body
        .iter()
        .filter_map(|id| msg.parts.get(*id as usize))
        .filter(|p| matches!(p.body, PartType::Text(_)))
        .map(|p| part_text(p, raw).into_owned())
        .collect();
    if !text.is_empty() {
        mail.body_text = text.join("\n");
    }
    if !html.is_empty() {
        mail.body_html = html.join("\n");
        if text.is_empty() {
            mail.body_text = mail_parser::decoders::html::html_to_text(&mail.body_html);
        }
    } else if !text.is_empty() {
        mail.body_html = text_to_html(&mail.body_text);
    }
}

/// §3: a text body as HTML: escaped once, lines joined with `<br>` and a newline.
pub fn text_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("<br>\n");
        }
        out.push_str(&escape_text(line.strip_suffix('\r').unwrap_or(line)));
    }
    out
}

/// The decoded text of a body part, with the undeclared-charset repairs.
fn part_text<'a>(part: &'a MessagePart<'_>, raw: &[u8]) -> Cow<'a, str> {
    let text = match &part.body {
        PartType::Text(t) | PartType::Html(t) => t.as_ref(),
        _ => return Cow::Borrowed(""),
    };
    let charset = part
        .content_type()
        .and_then(|ct| ct.attribute("charset"))
        .map(|c| c.trim().to_ascii_lowercase());
    let declared_utf8 = matches!(
        charset.as_deref(),
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii")
    );
    if declared_utf8 && text.contains('\u{FFFD}') {
        // Not UTF-8 after all: mail-parser decoded it lossily. Go back to the bytes and
        // read them as Windows-1252, the usual charset of such mail.
        if let Some(bytes) = transfer_decoded(part, raw)
            && std::str::from_utf8(&bytes).is_err()
        {
            return Cow::Owned(cp1252(&bytes));
        }
    }
    if charset.as_deref().is_some_and(is_latin1_label)
        && text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c))
        && let Some(bytes) = transfer_decoded(part, raw)
    {
        return Cow::Owned(cp1252(&bytes));
    }
    if charset.is_none()
        && let Some(fixed) = undo_double_utf8(text)
    {
        return Cow::Owned(fixed);
    }
    Cow::Borrowed(text)
}

/// The part's body bytes after transfer decoding, re-read from the raw mail.
fn transfer_decoded(part: &MessagePart<'_>, raw: &[u8]) -> Option<Vec<u8>> {
    let body = raw_slice(raw, part.offset_body, part.offset_end)?;
    let cte = part
        .content_transfer_encoding()
        .map(|c| c.trim().to_ascii_lowercase());
    match cte.as_deref() {
        Some("base64") => base64_decode(body),
        Some("quoted-printable") => quoted_printable_decode(body),
        _ => Some(body.to_vec()),
    }
}

/// Text that is UTF-8 read as Latin-1 and encoded to UTF-8 again ("incidÃ¨ncia"), as some
/// clients send without a charset: undo one level when every character fits in a byte,
/// the bytes are valid UTF-8 and they hold non-ASCII. Genuine Latin-1 text almost never
/// forms valid multi-byte UTF-8 sequences, so this is safe on undeclared parts.
fn undo_double_utf8(text: &str) -> Option<String> {
    if text.is_ascii() {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        let c = u32::from(c);
        if c > 0xFF {
            return None;
        }
        bytes.push(c as u8);
    }
    let s = String::from_utf8(bytes).ok()?;
    (!s.is_ascii()).then_some(s)
}

// ---------------------------------------------------------------- attachments

static RAW_NAME: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r#"(?i)\b(?:file)?name\s*=\s*(?:"([^"]*)"|([^;\s]+))"#).expect("static regex")
});

/// A file name written in undeclared 8-bit (usually Latin-1), which mail-parser decoded
/// lossily: re-read the part's raw Content-Disposition / Content-Type.
fn raw_8bit_name(part: &MessagePart<'_>, raw: &[u8]) -> Option<String> {
    for wanted in [HeaderName::ContentDisposition, HeaderName::ContentType] {
        let Some(h) = part.headers().iter().find(|h| h.name == wanted) else {
            continue;
        };
        let text = bytes_to_string(raw_slice(raw, h.offset_start, h.offset_end)?);
        if let Some(c) = RAW_NAME.captures(&text) {
            let n = c.get(1).or_else(|| c.get(2))?.as_str();
            let n = decode_header_value(n);
            if !n.contains('\u{FFFD}') {
                return Some(n);
            }
        }
    }
    None
}

fn read_attachments(
    msg: &mut Message<'_>,
    raw: &[u8],
    filters: &AttachmentFilters,
    mail: &mut Mail,
) {
    let ids = std::mem::take(&mut msg.attachments);
    for id in ids {
        let Some(part) = msg.parts.get_mut(id as usize) else {
            continue;
        };
        let (content_type, subtype) = match part.content_type() {
            Some(ct) => {
                let sub = ct.c_subtype.as_deref().unwrap_or("octet-stream");
                (
                    format!("{}/{}", ct.c_type, sub).to_ascii_lowercase(),
                    sub.to_ascii_lowercase(),
                )
            }
            None if matches!(part.body, PartType::Message(_)) => {
                ("message/rfc822".to_string(), "rfc822".to_string())
            }
            None => ("text/plain".to_string(), "plain".to_string()),
        };
        let name = part
            .attachment_name()
            .map(|n| decode_header_value(n).replace(['\r', '\n'], ""))
            .map(|n| {
                if n.contains('\u{FFFD}') {
                    raw_8bit_name(part, raw).unwrap_or(n)
                } else {
                    n
                }
            })
            .filter(|n| !n.trim().is_empty());
        let content_id = part
            .content_id()
            .map(|c| {
                c.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
            .filter(|c| !c.is_empty());
        // Move the decoded bytes out of the parser's tree: a 10 MB attachment is held once.
        let data: Vec<u8> = match std::mem::replace(&mut part.body, PartType::Multipart(vec![])) {
            PartType::Text(t) | PartType::Html(t) => t.into_owned().into_bytes(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b.into_owned(),
            PartType::Message(m) => m.raw_message.into_owned(),
            PartType::Multipart(_) => continue,
        };
        let name =
            name.unwrap_or_else(|| format!("attach{}.{}", mail.attachments.len() + 1, subtype));
        if filters.drops(&name, &data) {
            continue;
        }
        mail.attachments.push(Attachment {
            name,
            content_type,
            content_id,
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(raw: &[u8]) -> Mail {
        parse(raw, &AttachmentFilters::default())
    }

    const MAILBUIT: &[u8] = include_bytes!("../../../fixtures/mail/orig-mailbuit.eml");
    const MAILAUTO: &[u8] = include_bytes!("../../../fixtures/mail/orig-mailauto.eml");
    const COMENTARIS: &[u8] = include_bytes!("../../../fixtures/mail/orig-comentaris.eml");
    const XUNGO: &[u8] = include_bytes!("../../../fixtures/mail/orig-encoding-xungo.eml");
    const CC: &[u8] = include_bytes!("../../../fixtures/mail/orig-cc.eml");

    /// Found by `fuzz/` (target `deliver`): mail-parser's `debug_assert!` "Invalid part ID,
    /// could not find multipart" on a message/rfc822 part inside a multipart whose opening
    /// boundary line is broken. Debug builds panic inside the MIME walk; the mail must still
    /// come out with its headers and its text.
    #[test]
    fn mail_parser_invalid_part_id_keeps_headers_and_text() {
        let raw: &[u8] = b"From: Eva Roig <eva.roig@upc.edu>\nSubject: Certificat caducat\n\
            Content-Type: multipart/m; boundary=b3\"\n\n--b3ont\n\
            Content-Type: message/rfc822\n\ni\nContent-Type: message/rfc822\n\n\n--b3--\n";
        let m = p(raw);
        assert_eq!(m.raw_len, raw.len());
        assert_eq!(m.from, vec!["eva.roig@upc.edu".to_string()]);
        assert_eq!(m.subject, "Certificat caducat");
        if m.attachments.is_empty() && m.body_text.contains("--b3") {
            // The fallback ran (debug build): the body is kept verbatim as text.
            assert!(m.body_html.contains("--b3ont"), "{}", m.body_html);
        }
    }

    #[test]
    fn original_mailbuit_has_empty_body_and_one_attachment() {
        let m = p(MAILBUIT);
        assert_eq!(m.body_html, "");
        assert_eq!(m.body_text, "");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].name, "prova.txt");
        assert_eq!(m.attachments[0].data, b"prova inLab");
    }

    #[test]
    fn original_mailauto_is_automatic() {
        use crate::domain::classify::{ClassifyOptions, Decision, classify};
        let m = p(MAILAUTO);
        assert_eq!(m.header("auto-submitted"), Some("foobar"));
        assert!(matches!(
            classify(&m, &ClassifyOptions::default()),
            Decision::SkipAutomatic { .. }
        ));
    }

    #[test]
    fn original_quoted_printable_titol() {
        let m = p(COMENTARIS);
        assert!(
            m.body_html.contains("Corregir el títol."),
            "{}",
            m.body_html
        );
    }

    #[test]
    fn original_undeclared_charset_body_is_readable() {
        let m = p(XUNGO);
        assert!(!m.body_html.is_empty());
        assert!(m.body_html.contains("incidència"), "{}", m.body_html);
        assert!(m.body_html.contains("Telèfon"));
    }

    #[test]
    fn original_two_cc_addresses() {
        let m = p(CC);
        assert_eq!(m.cc, ["mail.qualsevol2@mail.com", "mail.concret2@mail.com"]);
        assert_eq!(m.to.len(), 2);
        // Header names as written.
        assert_eq!(m.headers[2].0, "CC");
    }

    #[test]
    fn addresses_lower_cased_including_groups() {
        let m = p(b"From: \"X\" <Joan.Garcia@UPC.EDU>\nTo: Equip: A@UPC.edu, <B@x.ORG>;, c@D.com\nResent-To: R@Upc.Edu\nReply-To: RT@x.com\n\nx");
        assert_eq!(m.from, ["joan.garcia@upc.edu"]);
        assert_eq!(m.to, ["a@upc.edu", "b@x.org", "c@d.com"]);
        assert_eq!(m.template_to(), "r@upc.edu");
        assert_eq!(m.requester_email(), "rt@x.com");
    }

    #[test]
    fn ids_keep_angle_brackets_single_and_list() {
        let m = p(b"Message-ID: <a@b>\nIn-Reply-To: <x@y>\nReferences: <r1@h> <r2@h>\n\tr3@h\n\nx");
        assert_eq!(m.message_id.as_deref(), Some("<a@b>"));
        assert_eq!(m.in_reply_to, ["<x@y>"]);
        assert_eq!(m.references.len(), 3);
        assert_eq!(m.references[0], "<r1@h>");
        let m = p(b"In-Reply-To: <x@y> <z@w>\nReferences: <only@h>\n\nx");
        assert_eq!(m.in_reply_to, ["<x@y>", "<z@w>"]);
        assert_eq!(m.references, ["<only@h>"]);
    }

    #[test]
    fn date_parsed_or_none() {
        let m = p(b"Date: Tue, 9 Dec 2014 15:46:28 +0100\n\nx");
        assert_eq!(
            m.date.map(|d| d.to_rfc3339()).as_deref(),
            Some("2014-12-09T15:46:28+01:00")
        );
        assert_eq!(p(b"Date: yesterday\n\nx").date, None);
        assert_eq!(p(b"Subject: x\n\nx").date, None);
    }

    #[test]
    fn subject_decoding() {
        // Split mid-character across two encoded words.
        let m = p(b"Subject: =?UTF-8?B?YcOh?= =?UTF-8?B?w6k=?=\n\nx");
        assert_eq!(m.subject, "aáé");
        let m = p(b"Subject: =?UTF-8?B?w6E=?=\n =?UTF-8?Q?=C3?= =?UTF-8?Q?=A9_b?=\n\nx");
        assert_eq!(m.subject, "áé b");
        // Folded plain subject: line breaks removed.
        let m = p(b"Subject: line one\r\n line two\r\n\r\nx");
        assert_eq!(m.subject, "line one line two");
        // Undeclared Latin-1 bytes.
        let m = p(b"Subject: Pla\xe7a\n\nx");
        assert_eq!(m.subject, "Plaça");
        // Text between encoded words is kept with its spaces.
        let m = p(b"Subject: Re: =?iso-8859-1?Q?t=EDtol?= nou\n\nx");
        assert_eq!(m.subject, "Re: títol nou");
        assert_eq!(p(b"From: a@b\n\nx").subject, "");
    }

    #[test]
    fn text_body_escaped_once_and_joined_with_br() {
        let m = p(b"Content-Type: text/plain\n\na < b & c > d\r\nline &lt;2\n");
        assert_eq!(
            m.body_html,
            "a &lt; b &amp; c &gt; d<br>\nline &amp;lt;2<br>\n"
        );
        assert!(m.body_text.starts_with("a < b"));
    }

    #[test]
    fn html_part_preferred_over_text() {
        let m = p(b"Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nplain\n--b\nContent-Type: text/html\n\n<p>rich</p>\n--b--\n");
        assert_eq!(m.body_html.trim(), "<p>rich</p>");
        assert_eq!(m.body_text.trim(), "plain");
    }

    #[test]
    fn latin1_and_windows1252_bodies() {
        let m = p(b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nt=EDtol\n");
        assert!(m.body_text.contains("títol"));
        let m = p(b"Content-Type: text/plain; charset=utf-8\n\nmal declarat: pla\xe7a \x80\n");
        assert!(m.body_text.contains("plaça €"), "{}", m.body_text);
        let m = p(b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nUGxh52E=\n");
        assert!(m.body_text.contains("Plaça"), "{}", m.body_text);
    }

    #[test]
    fn attachments_names_cid_and_unnamed() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: image/png\nContent-ID: <img1@x>\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n--b\nContent-Type: application/pdf; name=\"a.pdf\"\n\n%PDF\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''n%C3%BAmeros.bin\n\n123\n--b--\n";
        let m = p(raw);
        let names: Vec<_> = m.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["attach1.png", "a.pdf", "números.bin"]);
        assert_eq!(m.attachments[0].content_id.as_deref(), Some("img1@x"));
        assert_eq!(m.attachments[0].data, b"hello");
        assert_eq!(m.attachments[0].content_type, "image/png");
    }

    #[test]
    fn attachment_filters_by_name_and_hash() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: image/gif; name=\"logo.gif\"\n\nLOGO\n--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\naGVsbG8=\n--b\nContent-Type: image/jpeg\n\nphoto\n--b--\n";
        // md5("hello") = 5d41402abc4b2a76b9719d911017c592
        let f = AttachmentFilters::new(
            &["^logo\\.".to_string()],
            &["5D41402ABC4B2A76B9719D911017C592".to_string()],
        )
        .expect("filters");
        let m = parse(raw, &f);
        let names: Vec<_> = m.attachments.iter().map(|a| a.name.as_str()).collect();
        // The unnamed jpeg is the first kept attachment.
        assert_eq!(names, ["attach1.jpeg"]);
        assert!(
            AttachmentFilters::new(&["(".to_string()], &[])
                .unwrap_err()
                .contains("filtrar_attachments_per_nom")
        );
    }

    #[test]
    fn headers_in_order_decoded_and_unfolded() {
        let m = p(b"X-A: one\r\n two\r\nSubject: =?utf-8?Q?h=C3=B2la?=\r\nX-A: again\r\n\r\nx");
        assert_eq!(
            m.headers,
            [
                ("X-A".to_string(), "one two".to_string()),
                ("Subject".to_string(), "hòla".to_string()),
                ("X-A".to_string(), "again".to_string()),
            ]
        );
        assert_eq!(m.header_all("x-a").count(), 2);
    }

    #[test]
    fn content_type_and_report_type() {
        let m = p(b"Content-Type: Multipart/Report; report-type=Delivery-Status; boundary=b\n\n--b\n\nx\n--b--\n");
        assert_eq!(m.content_type, "multipart/report");
        assert_eq!(m.report_type.as_deref(), Some("delivery-status"));
    }

    #[test]
    fn non_mail_never_fails() {
        for raw in [
            &b""[..],
            b"\x00\xff\xfe",
            b"just text",
            b"\n\n\n",
            b"From:\n\n",
        ] {
            let m = p(raw);
            assert_eq!(m.raw_len, raw.len());
        }
    }

    #[test]
    fn big_attachment_is_decoded_once_and_fast() {
        use base64::Engine;
        let data: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        let mut raw = b"From: a@b.c\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: application/zip; name=\"big.zip\"\nContent-Transfer-Encoding: base64\n\n".to_vec();
        for line in b64.as_bytes().chunks(76) {
            raw.extend_from_slice(line);
            raw.push(b'\n');
        }
        raw.extend_from_slice(b"--b--\n");
        let m = p(&raw);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].data.len(), data.len());
        assert!(m.attachments[0].data == data);
    }

    #[test]
    fn undeclared_latin1_file_name() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nbody\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"pla\xe7a.pdf\"\n\n%PDF\n--b--\n";
        let m = p(raw);
        assert_eq!(m.attachments[0].name, "pla\u{e7}a.pdf");
    }

    #[test]
    fn latin1_label_read_as_windows_1252() {
        let m = p(b"Subject: =?iso-8859-1?Q?=93hola=94?=\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n=93cometes=94 i 5 =80\n");
        assert_eq!(m.subject, "\u{201c}hola\u{201d}");
        assert!(
            m.body_text.contains("\u{201c}cometes\u{201d} i 5 \u{20ac}"),
            "{}",
            m.body_text
        );
    }
}
