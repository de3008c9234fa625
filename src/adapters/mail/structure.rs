//! The MIME skeleton of a raw mail (issue 14), read with a small walker of our own that
//! never decodes a charset: content types of the parts, the report types, the
//! delivery-status bodies and the returned message's headers. mail-parser builds the
//! decoded `Mail`; this walker only has to find structure, so a part it cannot decode
//! (an unknown charset, a broken encoded word) never hides a bounce.
//!
//! Hostile input: every loop is bounded (depth, parts, headers, sizes) and every slice
//! is taken with checked indices.

use base64::Engine as _;

use crate::domain::limits::MIME_DEPTH_CEILING;
use crate::domain::mail::Structure;

/// Nesting of multiparts followed.
const MAX_DEPTH: usize = 12;
/// Parts recorded at most.
const MAX_PARTS: usize = 500;
/// Header fields read per header block.
const MAX_HEADERS: usize = 1000;
/// Bytes kept of one header value, of a delivery-status body and of the first text.
const MAX_VALUE: usize = 16 * 1024;
const MAX_BODY: usize = 256 * 1024;

/// Deepest MIME nesting of `raw`, counted on the raw bytes before any MIME parser sees
/// them (issue 9, `[limits] max_mime_depth`): a single-part mail is 0, each multipart
/// level and each attached message (`message/rfc822`, `message/global`, transfer-decoded
/// as a whole) adds one. The walk stops descending once it is past `cap`, so the answer
/// is at most `cap + 1` (and `cap` is itself held to [`MIME_DEPTH_CEILING`]): each level
/// is one linear pass over the part it nests in, so the work is at most `cap + 1` passes
/// over the mail, and the recursion is as deep as that.
/// Unlike [`scan`] it records nothing and has no part count limit, so a deep branch after
/// thousands of siblings is still found.
pub fn mime_depth(raw: &[u8], cap: usize) -> usize {
    let cap = cap.min(MIME_DEPTH_CEILING);
    let raw = skip_mbox_line(raw);
    let (head, body) = split_head(raw);
    depth_below(head, body, 0, cap)
}

fn depth_below(head: &[u8], body: &[u8], level: usize, cap: usize) -> usize {
    if level > cap {
        return level;
    }
    let headers = header_fields(head);
    let ct = header(&headers, "Content-Type")
        .map(ContentType::parse)
        .unwrap_or_default();
    if ct.mime.starts_with("multipart/") {
        let Some(boundary) = ct.param("boundary").filter(|b| !b.is_empty()) else {
            return level;
        };
        let mut deepest = level;
        for part in split_parts(body, boundary.as_bytes(), usize::MAX) {
            let (h, b) = split_head(part);
            deepest = deepest.max(depth_below(h, b, level + 1, cap));
            if deepest > cap {
                break;
            }
        }
        return deepest;
    }
    if matches!(ct.mime.as_str(), "message/rfc822" | "message/global") {
        let cte = header(&headers, "Content-Transfer-Encoding")
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let inner: std::borrow::Cow<'_, [u8]> = match cte.as_str() {
            "base64" | "quoted-printable" => decode_whole(body, &cte).into(),
            _ => body.into(),
        };
        let (h, b) = split_head(trim_leading_newlines(&inner));
        return depth_below(h, b, level + 1, cap);
    }
    level
}

/// Reads the skeleton of `raw`.
pub fn scan(raw: &[u8]) -> Structure {
    let mut s = Structure::default();
    let raw = skip_mbox_line(raw);
    let (head, body) = split_head(raw);
    s.headers = header_fields(head);
    let mut walker = Walker {
        out: &mut s,
        parts: 0,
        returned: false,
        text: false,
    };
    walker.entity(&header_fields(head), body, 0);
    s
}

struct Walker<'a> {
    out: &'a mut Structure,
    parts: usize,
    returned: bool,
    text: bool,
}

impl Walker<'_> {
    fn entity(&mut self, headers: &[(String, String)], body: &[u8], depth: usize) {
        if self.parts >= MAX_PARTS {
            return;
        }
        self.parts += 1;
        let ct = header(headers, "Content-Type").map(ContentType::parse);
        let ct = ct.unwrap_or_default();
        let cte = header(headers, "Content-Transfer-Encoding")
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        let mime = ct.mime.clone();
        self.out.part_types.push(mime.clone());
        if mime == "multipart/report"
            && let Some(rt) = ct.param("report-type")
        {
            self.out.report_types.push(rt.to_ascii_lowercase());
        }
        match mime.as_str() {
            m if m.starts_with("multipart/") => {
                let Some(boundary) = ct.param("boundary").filter(|b| !b.is_empty()) else {
                    return;
                };
                if depth >= MAX_DEPTH {
                    return;
                }
                for part in split_multipart(body, boundary.as_bytes()) {
                    let (h, b) = split_head(part);
                    self.entity(&header_fields(h), b, depth + 1);
                }
            }
            "message/delivery-status" | "message/global-delivery-status" => {
                let text = decode(body, &cte);
                self.out.delivery_status.push(lossy(&text, MAX_BODY));
            }
            "message/rfc822"
            | "message/global"
            | "message/partial"
            | "text/rfc822-headers"
            | "message/rfc822-headers"
                if !self.returned =>
            {
                self.returned = true;
                let inner = decode(body, &cte);
                let (h, _) = split_head(trim_leading_newlines(&inner));
                self.out.returned_headers = header_fields(h);
            }
            "text/plain" | "" if !self.text => {
                self.text = true;
                self.out.first_text = lossy(&decode(body, &cte), MAX_BODY);
            }
            _ => {}
        }
    }
}

/// A parsed Content-Type: lower-case `type/subtype` (empty when absent) and parameters.
#[derive(Debug, Default)]
struct ContentType {
    mime: String,
    params: Vec<(String, String)>,
}

impl ContentType {
    fn parse(value: &str) -> ContentType {
        let mut pieces = split_params(value).into_iter();
        let mime = pieces
            .next()
            .map(|m| m.trim().to_ascii_lowercase())
            .unwrap_or_default();
        // "text/plain" without a subtype or with garbage is still recorded as written.
        let mime = mime.split_whitespace().next().unwrap_or("").to_string();
        let params = pieces
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                Some((k.trim().to_ascii_lowercase(), v.to_string()))
            })
            .collect();
        ContentType { mime, params }
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a header value on `;` outside double quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// An mbox `From ` separator line before the headers is not a header.
fn skip_mbox_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        match raw.iter().position(|b| *b == b'\n') {
            Some(i) => raw.get(i + 1..).unwrap_or(&[]),
            None => &[],
        }
    } else {
        raw
    }
}

fn trim_leading_newlines(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .take_while(|c| **c == b'\n' || **c == b'\r')
        .count();
    b.get(n..).unwrap_or(&[])
}

/// (header block, body): the body starts after the first empty line. A block that does
/// not start with a header line at all has no headers.
fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(raw.len());
        let line = &raw[pos..end];
        let content = strip_eol(line);
        if content.is_empty() {
            return (&raw[..pos], &raw[end..]);
        }
        pos = end;
    }
    (raw, &[])
}

fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Header fields of a block, unfolded, values as lossy UTF-8 (never decoded further).
fn header_fields(head: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split(|b| *b == b'\n') {
        let line = strip_eol(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, v)) = out.last_mut()
                && v.len() < MAX_VALUE
            {
                v.push(' ');
                v.push_str(String::from_utf8_lossy(line).trim());
            }
            continue;
        }
        if out.len() >= MAX_HEADERS {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
        if name.is_empty() || name.contains(' ') {
            continue;
        }
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_string();
        out.push((name, value));
    }
    for (_, v) in &mut out {
        if v.len() > MAX_VALUE {
            let mut cut = MAX_VALUE;
            while !v.is_char_boundary(cut) {
                cut -= 1;
            }
            v.truncate(cut);
        }
    }
    out
}

/// The parts of a multipart body between `--boundary` lines, up to `--boundary--`.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    split_parts(body, boundary, MAX_PARTS)
}

/// [`split_multipart`] with at most `max` parts.
fn split_parts<'a>(body: &'a [u8], boundary: &[u8], max: usize) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0;
    while pos < body.len() && parts.len() < max {
        let end = body[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|i| pos + i + 1)
            .unwrap_or(body.len());
        let line = strip_eol(&body[pos..end]);
        let line = trim_end_ws(line);
        if let Some(rest) = line.strip_prefix(b"--")
            && let Some(after) = rest.strip_prefix(boundary)
            && (after.is_empty() || after == b"--")
        {
            if let Some(s) = start {
                // The line break before the delimiter belongs to the delimiter.
                let mut e = pos;
                if e > s && body[e - 1] == b'\n' {
                    e -= 1;
                    if e > s && body[e - 1] == b'\r' {
                        e -= 1;
                    }
                }
                parts.push(&body[s..e]);
            }
            if after == b"--" {
                return parts;
            }
            start = Some(end);
        }
        pos = end;
    }
    // An unterminated last part is still a part.
    if let Some(s) = start
        && s < body.len()
    {
        parts.push(&body[s..]);
    }
    parts
}

fn trim_end_ws(b: &[u8]) -> &[u8] {
    let n = b
        .iter()
        .rev()
        .take_while(|c| **c == b' ' || **c == b'\t')
        .count();
    &b[..b.len() - n]
}

/// Undoes a transfer encoding leniently; unknown encodings are taken as they are.
fn decode(body: &[u8], cte: &str) -> Vec<u8> {
    decode_whole(&body[..body.len().min(MAX_BODY * 2)], cte)
}

/// [`decode`] of the whole body, however long.
fn decode_whole(body: &[u8], cte: &str) -> Vec<u8> {
    match cte {
        "base64" => {
            let mut clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
                .collect();
            // A single trailing sextet cannot encode a byte: drop it.
            if clean.len() % 4 == 1 {
                clean.pop();
            }
            let lenient = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
            lenient.decode(&clean).unwrap_or_else(|_| body.to_vec())
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_vec(),
    }
}

fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c == b'=' {
            match (body.get(i + 1), body.get(i + 2)) {
                (Some(b'\r'), Some(b'\n')) => i += 3,
                (Some(b'\n'), _) => i += 2,
                (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                    let hex = [*a, *b];
                    let v = std::str::from_utf8(&hex)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .unwrap_or(b'?');
                    out.push(v);
                    i += 3;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn lossy(b: &[u8], max: usize) -> String {
    let b = &b[..b.len().min(max)];
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_parts_are_found_whatever_the_text_charset() {
        let raw = b"Return-Path: <>\r\nFrom: postmaster@x.example\r\n\
Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain; charset=unicode-1-1-utf-7\r\n\r\n+AGQAZQBs-\r\n\
--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n\
Final-Recipient: rfc822; a@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
--b1\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <n-tiquet-id-7@gn6>\r\nSubject: x\r\n\r\nbody\r\n\
--b1--\r\n";
        let s = scan(raw);
        assert_eq!(
            s.part_types,
            [
                "multipart/report",
                "text/plain",
                "message/delivery-status",
                "message/rfc822"
            ]
        );
        assert_eq!(s.report_types, ["delivery-status"]);
        assert_eq!(s.header("return-path"), Some("<>"));
        assert!(s.delivery_status[0].contains("Final-Recipient: rfc822; a@b.example"));
        assert_eq!(s.returned_header("message-id"), Some("<n-tiquet-id-7@gn6>"));
    }

    #[test]
    fn embedded_messages_do_not_lend_their_parts() {
        let raw = b"From: a@b.example\nContent-Type: multipart/mixed; boundary=o\n\n\
--o\nContent-Type: text/plain\n\nsee attached\n--o\nContent-Type: message/rfc822\n\n\
From: c@d.example\nContent-Type: multipart/report; report-type=delivery-status; boundary=i\n\n\
--i\nContent-Type: message/delivery-status\n\nAction: failed\n--i--\n--o--\n";
        let s = scan(raw);
        assert_eq!(
            s.part_types,
            ["multipart/mixed", "text/plain", "message/rfc822"]
        );
        assert!(s.delivery_status.is_empty() && s.report_types.is_empty());
        assert_eq!(s.first_text, "see attached");
    }

    #[test]
    fn transfer_encodings_and_mbox_line() {
        let raw = b"From MAILER-DAEMON Thu Apr 29 2015\nContent-Type: text/plain\n\
Content-Transfer-Encoding: quoted-printable\n\nsoft=\nbreak =C3=A9\n";
        let s = scan(raw);
        assert_eq!(s.headers.len(), 2);
        assert_eq!(s.first_text, "softbreak \u{e9}\n");
        let raw = b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n\
QWN0aW9uOiBmYWlsZWQ=\n";
        assert_eq!(scan(raw).delivery_status, ["Action: failed"]);
    }

    #[test]
    fn hostile_shapes_never_panic() {
        let deep: Vec<u8> = (0..200)
            .flat_map(|i| {
                format!("Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n").into_bytes()
            })
            .collect();
        for raw in [
            &b""[..],
            b"\n\n\n",
            b"Content-Type: multipart/mixed; boundary=\"\n\n--\n--",
            b"Content-Type: multipart/mixed; boundary=x\n\n--x\n",
            b"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n=",
            b"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n=",
            b"From ",
            b": no name\n x",
            &deep,
        ] {
            let _ = scan(raw);
        }
        assert!(scan(&deep).part_types.len() <= MAX_DEPTH + 1);
    }

    /// `n` nested multiparts around one text part, each boundary its own.
    fn nested(n: usize) -> Vec<u8> {
        let mut m = String::from("Subject: x\r\n");
        for i in 0..n {
            m.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
            ));
        }
        m.push_str("Content-Type: text/plain\r\n\r\nhola\r\n");
        for i in (0..n).rev() {
            m.push_str(&format!("--b{i}--\r\n"));
        }
        m.into_bytes()
    }

    #[test]
    fn mime_depth_counts_levels_and_stops_past_the_cap() {
        assert_eq!(mime_depth(b"Subject: x\r\n\r\nhola\r\n", 20), 0);
        assert_eq!(mime_depth(&nested(1), 20), 1);
        assert_eq!(mime_depth(&nested(20), 20), 20);
        assert_eq!(mime_depth(&nested(21), 20), 21);
        // Past the cap it stops descending: 10,000 levels answer cap + 1.
        assert_eq!(mime_depth(&nested(10_000), 20), 21);
        assert_eq!(mime_depth(&nested(500), usize::MAX), MIME_DEPTH_CEILING + 1);
        // A deep branch after more siblings than `scan` records is still found.
        let mut wide = String::from("Content-Type: multipart/mixed; boundary=\"w\"\r\n\r\n");
        for _ in 0..(MAX_PARTS + 10) {
            wide.push_str("--w\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        wide.push_str("--w\r\n");
        wide.push_str(std::str::from_utf8(&nested(5)).unwrap());
        wide.push_str("--w--\r\n");
        assert_eq!(mime_depth(wide.as_bytes(), 20), 6);
        // An attached message counts one level, also when base64-encoded.
        let inner = nested(3);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&inner);
        let attached = format!(
            "Content-Type: multipart/mixed; boundary=\"o\"\r\n\r\n--o\r\n\
             Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n\
             {b64}\r\n--o--\r\n"
        );
        assert_eq!(mime_depth(attached.as_bytes(), 20), 5);
    }
}
