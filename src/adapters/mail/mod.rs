//! Driven adapter: raw bytes → domain `Mail` (BEHAVIOUR §3). The only place that imports
//! mail-parser; everything leaving this module is owned domain data.
//!
//! mail-parser finds the MIME structure (parts, header and body offsets); this adapter
//! reads the bytes itself where the crate loses something, split by job:
//! - [`headers`]: header fields, RFC 2047 words, addresses, ids, the date;
//! - [`body`]: which parts are the text, transfer- and charset-decoded;
//! - [`attachments`]: file names (RFC 2231), attached messages, winmail.dat ([`tnef`]);
//! - [`charset`] and [`transfer`]: the decoders they share;
//! - [`structure`]: repairs of the raw MIME structure before the walk.
//!
//! Where a depth or count limit fits: the MIME walk is mail-parser's (one pass in
//! [`parse_inner`]); every attachment kept, winmail.dat contents included, goes through
//! `attachments::push`, and an attached message is read one level deep for its summary
//! (`attachments::summarise`, which does not walk the inner message's attachments).

mod attachments;
mod body;
mod charset;
mod headers;
mod repair;
mod tnef;
mod transfer;

use std::fmt;

use mail_parser::{Message, MessageParser, MimeHeaders};
use md5::{Digest, Md5};

pub use body::text_to_html;
pub use headers::decode_header_value;

use crate::domain::mail::Mail;
use charset::Charset;

/// Errors of the mail adapter.
#[derive(Debug)]
pub enum MailError {
    /// A `filtrar_attachments_per_nom` pattern that does not compile.
    FilterRegex {
        pattern: String,
        source: regex::Error,
    },
}

impl fmt::Display for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MailError::FilterRegex { pattern, .. } => {
                write!(f, "filtrar_attachments_per_nom: regex invàlida {pattern:?}")
            }
        }
    }
}

impl std::error::Error for MailError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MailError::FilterRegex { source, .. } => Some(source),
        }
    }
}

mod structure;

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
    pub fn new(per_nom: &[String], per_hash: &[String]) -> Result<Self, MailError> {
        let per_nom = per_nom
            .iter()
            .map(|p| {
                regex::Regex::new(p).map_err(|source| MailError::FilterRegex {
                    pattern: p.clone(),
                    source,
                })
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
///
/// The MIME nesting is measured first, on the raw bytes, up to the default
/// `max_mime_depth`; see [`parse_limited`].
pub fn parse(raw: &[u8], filters: &AttachmentFilters) -> Mail {
    parse_limited(raw, filters, crate::domain::limits::DEFAULT_MAX_MIME_DEPTH)
}

/// [`parse`] with the configured `max_mime_depth`. A mail nested deeper never reaches
/// mail-parser (whose work and recursion grow with the nesting): only its header block is
/// read, and `mime_depth` (one past the limit) makes the limit check reject it.
pub fn parse_limited(raw: &[u8], filters: &AttachmentFilters, max_mime_depth: usize) -> Mail {
    let max_mime_depth = max_mime_depth.min(crate::domain::limits::MIME_DEPTH_CEILING);
    let depth = std::panic::catch_unwind(|| structure::mime_depth(raw, max_mime_depth))
        .unwrap_or(usize::MAX);
    if depth > max_mime_depth {
        let mut mail =
            std::panic::catch_unwind(|| parse_header_block(raw, false)).unwrap_or_else(|_| Mail {
                raw_len: raw.len(),
                ..Mail::default()
            });
        mail.mime_depth = depth;
        with_structure(&mut mail, raw);
        return mail;
    }
    // mail-parser is third-party code fed with untrusted bytes: a panic inside it must not
    // take the delivery down, so contain it and fall back to the headers alone.
    let mut mail = std::panic::catch_unwind(|| parse_inner(raw, filters))
        .or_else(|_| std::panic::catch_unwind(|| parse_header_block(raw, true)))
        .unwrap_or_else(|_| Mail {
            raw_len: raw.len(),
            ..Mail::default()
        });
    mail.mime_depth = depth;
    with_structure(&mut mail, raw);
    mail
}

/// Adds the MIME skeleton read by our own walker (issue 14), independent of mail-parser;
/// when mail-parser could read no header at all, the walker's raw headers stand in.
fn with_structure(mail: &mut Mail, raw: &[u8]) {
    if let Ok(s) = std::panic::catch_unwind(|| structure::scan(raw)) {
        if mail.headers.is_empty() {
            mail.headers = s.headers.clone();
        }
        mail.structure = s;
    }
}

/// Fallback when the MIME walk panicked (mail-parser 0.11.9 has a `debug_assert!` on some
/// nested multiparts with broken boundaries, found by fuzzing): the header block is parsed
/// alone, so sender and subject still route the mail, and the rest is kept as plain text
/// rather than lost (`with_body`; without it the body is left empty).
fn parse_header_block(raw: &[u8], with_body: bool) -> Mail {
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
    if let Some(msg) = MessageParser::default().parse_headers(head)
        && let Some(root) = msg.parts.first()
    {
        headers::read_headers(root, head, None, &mut mail);
    }
    mail.content_type = "text/plain".into();
    if with_body {
        mail.body_text = bytes_to_string(body);
        mail.body_html = text_to_html(&mail.body_text);
    }
    mail
}

fn parse_inner(raw: &[u8], filters: &AttachmentFilters) -> Mail {
    let mut mail = Mail {
        raw_len: raw.len(),
        ..Mail::default()
    };
    // Missing closing boundaries of nested multiparts, inserted on a copy (only then).
    let repaired = repair::close_nested_multiparts(raw);
    let raw: &[u8] = repaired.as_deref().unwrap_or(raw);
    let Some(mut msg) = MessageParser::default().parse(raw) else {
        return mail;
    };
    let hint = mail_hint(&msg, raw);
    if let Some(root) = msg.parts.first() {
        headers::read_headers(root, raw, hint, &mut mail);
    }
    body::read_bodies(&msg, raw, hint, &mut mail);
    attachments::read_attachments(&mut msg, raw, hint, filters, &mut mail);
    mail
}

/// The charset the mail declares elsewhere, when it is not UTF-8 or ASCII: a part's
/// `charset`, else the charset of an encoded word in the headers. The best guess for
/// undeclared 8-bit bytes in the same mail.
fn mail_hint(msg: &Message<'_>, raw: &[u8]) -> Option<Charset> {
    let useful = |label: &str| {
        let l = label.trim().to_ascii_lowercase();
        if matches!(l.as_str(), "us-ascii" | "ascii" | "utf-8" | "utf8") {
            return None;
        }
        charset::resolve(&l)
    };
    msg.parts
        .iter()
        .find_map(|p| useful(p.content_type()?.attribute("charset")?))
        .or_else(|| {
            let root = msg.parts.first()?;
            let head = raw.get(..root.offset_body as usize)?;
            head.windows(2)
                .enumerate()
                .filter(|(_, w)| *w == b"=?")
                .find_map(|(i, _)| {
                    let rest = &head[i + 2..];
                    let end = rest.iter().take(40).position(|&b| b == b'?')?;
                    useful(std::str::from_utf8(&rest[..end]).ok()?)
                })
        })
}

fn raw_slice(raw: &[u8], start: u32, end: u32) -> Option<&[u8]> {
    raw.get(start as usize..end as usize)
}

/// Bytes as text with no charset to go by: UTF-8 when valid, else the detector's guess
/// (Windows-1252 when it has none).
pub(crate) fn bytes_to_string(b: &[u8]) -> String {
    charset::decode_undeclared(b, None)
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
                .to_string()
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

    #[test]
    fn undeclared_header_bytes_use_the_charset_of_an_encoded_word() {
        let m = p(b"From: \xe9\xd7\xc1\xce <ivan@x.ru>\nSubject: =?koi8-r?B?8NLJ18XU?=\n\nx");
        assert_eq!(m.subject, "Привет");
        assert_eq!(m.header("From"), Some("Иван <ivan@x.ru>"));
        assert_eq!(m.from, ["ivan@x.ru"]);
    }

    #[test]
    fn attached_message_named_after_its_subject_and_summarised() {
        let raw = b"From: a@upc.edu\nSubject: Fwd\nContent-Type: multipart/mixed; boundary=o\n\n\
            --o\nContent-Type: message/rfc822\n\nFrom: B <b@x.org>\nSubject: Avui\n\
            Date: Tue, 9 Dec 2014 15:46:28 +0100\n\nText de dins\n--o--\n";
        let m = p(raw);
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].name, "Avui.eml");
        assert!(m.attachments[0].data.starts_with(b"From: B <b@x.org>"));
        assert!(m.attachments[0].data.ends_with(b"Text de dins"));
        assert_eq!(m.forwarded.len(), 1);
        let d = m.forwarded_text().join("\n");
        assert!(d.contains("De: B <b@x.org>"), "{d}");
        assert!(d.contains("Data: 09/12/2014 15:46"), "{d}");
        assert!(d.contains("Assumpte: Avui"), "{d}");
        assert!(d.contains("Text de dins"), "{d}");
    }

    #[test]
    fn winmail_dat_unpacked_and_kept() {
        use base64::Engine;
        let blob = tnef::build::blob(&[("A.PDF", "Llarg nom.pdf", "application/pdf", b"%PDF")]);
        let mut raw = b"From: a@upc.edu\nContent-Type: multipart/mixed; boundary=o\n\n--o\n\
            Content-Type: text/plain\n\ntext\n--o\nContent-Type: application/ms-tnef; name=winmail.dat\n\
            Content-Transfer-Encoding: base64\n\n"
            .to_vec();
        raw.extend(
            base64::engine::general_purpose::STANDARD
                .encode(&blob)
                .as_bytes(),
        );
        raw.extend(b"\n--o--\n");
        let m = p(&raw);
        let names: Vec<_> = m.attachments.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["winmail.dat", "Llarg nom.pdf"]);
        assert_eq!(m.attachments[0].data, blob);
        assert_eq!(m.attachments[1].data, b"%PDF");
        assert_eq!(m.attachments[1].content_type, "application/pdf");
    }
}
