//! Header fields: names as written, values unfolded and RFC 2047-decoded, addresses, ids,
//! the date. Values are re-read from the raw bytes (mail-parser gives the offsets): its own
//! decoding handles each encoded word alone, drops undeclared 8-bit bytes and loses
//! addresses with a quoted local part.

use chrono::{DateTime, FixedOffset, NaiveDate};
use mail_parser::{HeaderName, MessagePart, MimeHeaders};

use super::charset::{self, Charset};
use super::raw_slice;
use crate::domain::mail::Mail;

/// Reads the header block of `root` (the message's first part) into `mail`.
pub(crate) fn read_headers(
    root: &MessagePart<'_>,
    raw: &[u8],
    hint: Option<Charset>,
    mail: &mut Mail,
) {
    for h in root.headers() {
        let name = raw_slice(raw, h.offset_field, h.offset_start)
            .map(|b| {
                let s = charset::decode_undeclared(b, hint);
                s.trim_end().trim_end_matches(':').trim().to_string()
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| h.name.as_str().to_string());
        let raw_value = raw_slice(raw, h.offset_start, h.offset_end)
            .map(|b| charset::decode_undeclared(b, hint))
            .unwrap_or_default();
        let value = decode_words(&raw_value, hint);

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
            list.extend(parse_addresses(&unfold(&raw_value)));
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

fn unfold(raw: &str) -> String {
    raw.replace("\r\n", "\n").replace('\n', "")
}

// ---------------------------------------------------------------- addresses

/// Addresses of an address-list header (RFC 5322 §3.4 with the obsolete forms of §4.4 and
/// RFC 6532 UTF-8), lower-cased: display names, comments and group names dropped; a
/// quoted local part kept (unquoted when it needs no quotes); obsolete routes dropped;
/// white space around `.` and `@` dropped.
pub(crate) fn parse_addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut angle: Option<String> = None;
    let mut in_angle = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let target = if in_angle {
                    angle.get_or_insert_with(String::new)
                } else {
                    &mut cur
                };
                target.push('"');
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            target.push('\\');
                            if let Some(e) = chars.next() {
                                target.push(e);
                            }
                        }
                        '"' => break,
                        '\r' | '\n' => {}
                        _ => target.push(q),
                    }
                }
                target.push('"');
            }
            '(' => {
                let mut depth = 1usize;
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                // A comment separates tokens like white space.
                if in_angle {
                    angle.get_or_insert_with(String::new).push(' ');
                } else {
                    cur.push(' ');
                }
            }
            '<' if !in_angle => {
                in_angle = true;
                angle = Some(String::new());
            }
            '>' if in_angle => in_angle = false,
            ':' if !in_angle => cur.clear(),
            ',' | ';' if !in_angle => finish(&mut out, &mut cur, &mut angle),
            _ if in_angle => angle.get_or_insert_with(String::new).push(c),
            _ => cur.push(c),
        }
    }
    finish(&mut out, &mut cur, &mut angle);
    out
}

fn finish(out: &mut Vec<String>, cur: &mut String, angle: &mut Option<String>) {
    let text = match angle.take() {
        Some(a) => {
            // Obsolete route `@a,@b:user@host`.
            let a = match a.rfind(':') {
                Some(i) if a.trim_start().starts_with('@') => a[i + 1..].to_string(),
                _ => a,
            };
            clean_addr_spec(&a, false)
        }
        None => clean_addr_spec(cur, true),
    };
    cur.clear();
    if let Some(addr) = text
        && !addr.is_empty()
    {
        out.push(addr);
    }
}

/// Tokens split at white space outside quoted strings, after gluing tokens around `.`
/// and `@` (obsolete CFWS inside an addr-spec).
fn clean_addr_spec(s: &str, pick_token: bool) -> Option<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut tok = String::new();
    let mut in_quote = false;
    let mut escaped = false;
    for c in s.chars() {
        if in_quote {
            tok.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quote = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_quote = true;
                tok.push(c);
            }
            c if c.is_whitespace() => {
                if !tok.is_empty() {
                    tokens.push(std::mem::take(&mut tok));
                }
            }
            _ => tok.push(c),
        }
    }
    if !tok.is_empty() {
        tokens.push(tok);
    }
    // Glue `anna . puig @ example . com`.
    let mut glued: Vec<String> = Vec::new();
    for t in tokens {
        let joins = glued
            .last()
            .is_some_and(|p| p.ends_with(['.', '@']) || t.starts_with(['.', '@']));
        match glued.last_mut() {
            Some(p) if joins => p.push_str(&t),
            _ => glued.push(t),
        }
    }
    let addr = if pick_token && glued.len() > 1 {
        // A display name without angle brackets (broken, but seen): the token with `@`.
        glued
            .iter()
            .rev()
            .find(|t| t.contains('@'))
            .or(glued.last())
            .cloned()?
    } else {
        glued.concat()
    };
    Some(unquote_local(&addr).to_lowercase())
}

/// `"anna"@x` → `anna@x` when the local part is a plain dot-atom; kept quoted otherwise.
fn unquote_local(addr: &str) -> String {
    let Some(rest) = addr.strip_prefix('"') else {
        return addr.to_string();
    };
    let Some(end) = rest.rfind("\"@") else {
        return addr.to_string();
    };
    let local = &rest[..end];
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    let dot_atom = !local.is_empty()
        && local
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(atext));
    if dot_atom {
        format!("{local}{}", &rest[end + 1..])
    } else {
        addr.to_string()
    }
}

// ---------------------------------------------------------------- ids and dates

/// Message ids with angle brackets, read from the header text: mail-parser strips the
/// brackets, returns one id or a list, and drops ids written without brackets.
pub(crate) fn ids(value: &str) -> Vec<String> {
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

pub(crate) fn to_chrono(d: &mail_parser::DateTime) -> Option<DateTime<FixedOffset>> {
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

// ---------------------------------------------------------------- encoded words

/// Unfolds a raw header value and decodes its RFC 2047 encoded words. Adjacent encoded
/// words of one charset are decoded together, so a character split across two words
/// survives; whitespace between adjacent encoded words is dropped (RFC 2047 §6.2).
pub fn decode_header_value(raw: &str) -> String {
    decode_words(raw, None)
}

/// [`decode_header_value`] with the mail's own charset as the hint for undeclared bytes.
pub(crate) fn decode_words(raw: &str, hint: Option<Charset>) -> String {
    let unfolded = unfold(raw);
    let s = unfolded.trim();
    if !s.contains("=?") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    // Pending bytes of consecutive encoded words in one charset.
    let mut pending: Option<(String, Vec<u8>)> = None;
    let mut gap = String::new();
    let mut rest = s;
    while !rest.is_empty() {
        if let Some((cs, bytes, used)) = encoded_word(rest) {
            match &mut pending {
                Some((p, buf)) if p.eq_ignore_ascii_case(&cs) => buf.extend(bytes),
                _ => {
                    flush(&mut out, &mut pending, hint);
                    pending = Some((cs, bytes));
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
            flush(&mut out, &mut pending, hint);
            out.push_str(&gap);
            gap.clear();
            out.push(ch);
        }
        rest = &rest[ch.len_utf8()..];
    }
    flush(&mut out, &mut pending, hint);
    out.push_str(&gap);
    out
}

fn flush(out: &mut String, pending: &mut Option<(String, Vec<u8>)>, hint: Option<Charset>) {
    if let Some((cs, bytes)) = pending.take() {
        out.push_str(&charset::decode_label(&cs, &bytes, hint));
    }
}

/// One `=?charset?enc?text?=` at the start of `s`: (charset, decoded bytes, length used).
/// Spaces inside the text are accepted, as common clients do (`=?UTF-8?Q?a b?=`).
fn encoded_word(s: &str) -> Option<(String, Vec<u8>, usize)> {
    let body = s.strip_prefix("=?")?;
    let q1 = body.find('?')?;
    let cs = &body[..q1];
    if cs.is_empty() || cs.contains(char::is_whitespace) {
        return None;
    }
    let after = &body[q1 + 1..];
    let enc = after.chars().next()?;
    if after.get(1..2)? != "?" {
        return None;
    }
    let end = after[2..].find("?=")?;
    let text = &after[2..2 + end];
    if text.contains("=?") || text.contains('?') {
        return None;
    }
    let bytes = match enc.to_ascii_lowercase() {
        'b' => decode_b(text.as_bytes())?,
        'q' => decode_q(text.as_bytes()),
        _ => return None,
    };
    let used = 2 + q1 + 1 + 2 + end + 2;
    Some((cs.to_string(), bytes, used))
}

fn decode_b(text: &[u8]) -> Option<Vec<u8>> {
    let ok = text
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b' ' | b'\t'));
    ok.then(|| super::transfer::base64_lenient(text))
}

fn decode_q(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < text.len() => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_every_form() {
        let cases: &[(&str, &[&str])] = &[
            ("\"anna puig\"@example.com", &["\"anna puig\"@example.com"]),
            ("\"anna\"@Example.com", &["anna@example.com"]),
            ("anna@example.com (Anna Puig)", &["anna@example.com"]),
            ("(Anna) anna@example.com", &["anna@example.com"]),
            ("Anna Puig <anna@example.com>", &["anna@example.com"]),
            (
                "\"Puig, Anna\" <anna@example.com>, b@x.org",
                &["anna@example.com", "b@x.org"],
            ),
            (
                "Equip: A@UPC.edu, <B@x.ORG>;, c@D.com",
                &["a@upc.edu", "b@x.org", "c@d.com"],
            ),
            ("undisclosed-recipients:;", &[]),
            ("anna . puig @ example . com", &["anna.puig@example.com"]),
            ("<@relay.example:anna@example.com>", &["anna@example.com"]),
            ("Jöran <jöran@exämple.de>", &["jöran@exämple.de"]),
            ("用户@例子.广告", &["用户@例子.广告"]),
            ("Anna (la (de) sistemes) <anna@x.com>", &["anna@x.com"]),
            ("\"a\\\"b\"@x.com", &["\"a\\\"b\"@x.com"]),
            ("Anna Puig anna@x.com", &["anna@x.com"]),
            ("MAILER-DAEMON", &["mailer-daemon"]),
            ("<>", &[]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_addresses(input), *want, "{input}");
        }
    }

    #[test]
    fn encoded_words() {
        assert_eq!(
            decode_header_value("=?GB2312?B?tPLTobv6u7XByw==?="),
            "打印机坏了"
        );
        assert_eq!(
            decode_header_value("=?UTF-8?Q?Canvi de contrasenya f=C3=A0cil?="),
            "Canvi de contrasenya fàcil"
        );
        assert_eq!(
            decode_header_value("=?ISO-2022-JP?B?GyRCRnxLXBsoQg==?="),
            "日本"
        );
        assert_eq!(decode_header_value("=?utf-7?Q?+AOA-?="), "à");
        assert_eq!(
            decode_header_value("=?utf-8?Q?a?= plain =?x?"),
            "a plain =?x?"
        );
        assert_eq!(decode_header_value("=?utf-8?b?w6A?="), "à");
        assert_eq!(decode_header_value("=?utf-8?q?=C3=A0=?="), "à=");
    }
}
