//! The body of a mail (BEHAVIOUR §3): which parts are the text, and their decoding. Each
//! body part is decoded here from its raw bytes (transfer encoding, then charset), so the
//! repairs of `transfer` and `charset` apply and mail-parser's lossy fallbacks do not.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};

use super::charset::{self, Charset};
use super::raw_slice;
use super::transfer::{self, Cte};
use crate::domain::html::escape_text;
use crate::domain::mail::Mail;

/// Fills `body_html` and `body_text` from the message's body parts.
pub(crate) fn read_bodies(msg: &Message<'_>, raw: &[u8], hint: Option<Charset>, mail: &mut Mail) {
    let html: Vec<String> = msg
        .html_body
        .iter()
        .filter_map(|id| msg.parts.get(*id as usize))
        .filter(|p| matches!(p.body, PartType::Html(_)))
        .map(|p| part_text(p, raw, hint))
        .collect();
    let text: Vec<String> = msg
        .text_body
        .iter()
        .filter_map(|id| msg.parts.get(*id as usize))
        .filter(|p| matches!(p.body, PartType::Text(_)))
        .map(|p| part_text(p, raw, hint))
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

/// The transfer-decoded bytes of a part, from the raw mail. An unknown transfer encoding
/// keeps the bytes as sent and is logged.
pub(crate) fn part_bytes(part: &MessagePart<'_>, raw: &[u8]) -> Vec<u8> {
    let body = raw_slice(raw, part.offset_body, part.offset_end).unwrap_or_default();
    let cte = Cte::from_header(part.content_transfer_encoding());
    if let Cte::Unknown(name) = &cte {
        tracing::warn!(
            "codificació de transferència desconeguda {name:?}: la part es desa tal com ha arribat"
        );
    }
    transfer::decode(&cte, body)
}

/// The decoded text of a body part.
pub(crate) fn part_text(part: &MessagePart<'_>, raw: &[u8], hint: Option<Charset>) -> String {
    let bytes = part_bytes(part, raw);
    let label = part.content_type().and_then(|ct| ct.attribute("charset"));
    let declared = label.and_then(charset::resolve);
    let text = match declared {
        Some(cs) => charset::decode_declared(cs, &bytes, hint),
        None => charset::decode_undeclared(&bytes, hint),
    };
    if label.is_none()
        && let Some(fixed) = undo_double_utf8(&text)
    {
        return fixed;
    }
    text
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
