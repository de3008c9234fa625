//! Pure core (domain): the identity of a mail (issues 12 and 19), one rule for "is this
//! the same mail?".
//!
//! A mail is identified by its Message-ID (when it has one) **and** a digest of what
//! its sender wrote: the body bytes and the values of `From`, `Date` and `Subject`.
//! Nothing else of the header takes part, so every header that a hop adds or rewrites
//! on the way leaves the digest alone. In particular, and by design, these are ignored:
//!
//! - trace and delivery headers: `Received`, `Return-Path`, `Delivered-To`,
//!   `X-Original-To`, `Envelope-To`, `X-Envelope-From`, `X-Envelope-To`;
//! - authentication results of our own hops: `Authentication-Results`,
//!   `ARC-Seal`, `ARC-Message-Signature`, `ARC-Authentication-Results`,
//!   `DKIM-Signature`, `Received-SPF`, `X-Spam-*`;
//! - what fetchers and mailbox stores write: fetchmail's `Received` line and
//!   `X-Fetchmail-*`, `Status`, `X-Status`, `X-Keywords`, `X-UID`, `Lines`,
//!   `Content-Length`;
//! - our own `X-Mailtoticket` mark (an MDA echo re-injected upstream).
//!
//! Line endings are normalised (CRLF and LF give the same digest: IMAP stores CRLF,
//! fetchmail hands LF to its MDA) and trailing blank lines of the body are dropped.
//!
//! A mail without Message-ID is keyed by the digest alone. A mail whose Message-ID is
//! already in the journal with a *different* digest is another mail (a clash: ids
//! leak and some clients make them predictable), keyed by [`clash_key`].
//!
//! Pure: bytes in, strings out.

use sha2::{Digest, Sha256};

/// Message-IDs longer than this are keyed by their hash, so that a hostile header
/// cannot make keys (and lock-file lookups) of megabytes.
pub const MAX_ID_KEY_LEN: usize = 255;

/// Prefix of the key of a mail without Message-ID (followed by [`content_digest`]).
pub const DIGEST_PREFIX: &str = "sha256:";

/// The headers whose values take part in the digest, in this order.
pub const DIGESTED_HEADERS: [&str; 3] = ["from", "date", "subject"];

/// What identifies one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailIdentity {
    /// The trimmed Message-ID, when the mail has a non-blank one.
    pub message_id: Option<String>,
    /// [`content_digest`] of the raw mail (64 hex digits).
    pub digest: String,
}

impl MailIdentity {
    /// The identity of a raw mail whose Message-ID (as parsed) is `message_id`.
    pub fn of(message_id: Option<&str>, raw: &[u8]) -> MailIdentity {
        MailIdentity {
            message_id: message_id
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_string),
            digest: content_digest(raw),
        }
    }

    /// The journal key this mail gets when nothing clashes: its Message-ID (or
    /// `id-sha256:<hex>` of an overlong one), else `sha256:<digest>`.
    pub fn primary_key(&self) -> String {
        match &self.message_id {
            Some(id) => id_key(id),
            None => format!("{DIGEST_PREFIX}{}", self.digest),
        }
    }

    /// The key of this mail when its Message-ID is already taken by another mail.
    pub fn clash_key(&self) -> String {
        clash_key(&self.primary_key(), &self.digest)
    }
}

/// Key of a mail whose Message-ID clashes with another mail's: the id's key, a space
/// and `sha256:<digest>` (a space never occurs inside a Message-ID).
pub fn clash_key(primary: &str, digest: &str) -> String {
    format!("{primary} {DIGEST_PREFIX}{digest}")
}

/// The key of a Message-ID: the id itself, or `id-sha256:<hex>` when too long.
pub fn id_key(id: &str) -> String {
    if id.len() > MAX_ID_KEY_LEN {
        format!("id-sha256:{}", hex(&Sha256::digest(id.as_bytes())))
    } else {
        id.to_string()
    }
}

/// SHA-256 (hex) of what the sender wrote: the unfolded, trimmed values of every
/// `From`, `Date` and `Subject` field (each prefixed by its name, in that order) and
/// the body with LF line endings and no trailing blank lines.
pub fn content_digest(raw: &[u8]) -> String {
    let (header, body) = split(raw);
    let fields = unfolded_fields(header);
    // Not a mail at all (no header field): all of it is what was written.
    let body = if fields.is_empty() { raw } else { body };
    let mut h = Sha256::new();
    for name in DIGESTED_HEADERS {
        for (n, v) in &fields {
            if n.eq_ignore_ascii_case(name.as_bytes()) {
                h.update(name.as_bytes());
                h.update(b":");
                h.update(v);
                h.update(b"\n");
            }
        }
    }
    h.update(b"\n");
    let mut body = normalise_eol(body);
    while body.last().is_some_and(|b| b.is_ascii_whitespace()) {
        body.pop();
    }
    h.update(&body);
    hex(&h.finalize())
}

/// Splits a raw mail at its first empty line (LF or CRLF); no empty line means the
/// whole mail is header.
fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    let mut start = 0;
    while start < raw.len() {
        let end = raw[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(raw.len(), |i| start + i + 1);
        let line = &raw[start..end];
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.is_empty() {
            return (&raw[..start], &raw[end..]);
        }
        start = end;
    }
    (raw, &[])
}

/// The header block as (name, unfolded trimmed value) in order; lines that are not
/// fields (an mbox `From ` line, garbage) are skipped.
fn unfolded_fields(header: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut out: Vec<(&[u8], Vec<u8>)> = Vec::new();
    let mut in_field = false;
    for line in header.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            if in_field && let Some((_, v)) = out.last_mut() {
                v.push(b' ');
                v.extend_from_slice(trim(line));
            }
            continue;
        }
        in_field = false;
        if let Some(colon) = line.iter().position(|b| *b == b':') {
            let name = trim(&line[..colon]);
            if !name.is_empty() && !name.contains(&b' ') {
                out.push((name, trim(&line[colon + 1..]).to_vec()));
                in_field = true;
            }
        }
    }
    for (_, v) in &mut out {
        let t = trim(v).to_vec();
        *v = t;
    }
    out
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

fn normalise_eol(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\r' && body.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: Anna <anna@example.org>\nTo: suport@example.org\nSubject: Impressora\n  trencada\nDate: Mon, 7 Dec 2026 10:00:00 +0100\nMessage-ID: <a1@example.org>\n\nNo imprimeix.\n";

    #[test]
    fn trace_headers_and_line_endings_do_not_change_the_digest() {
        let base = content_digest(MAIL);
        let mut refetched = b"Received: from imap.example.org by fetchmail-6.4 (single-drop) for <x>; Mon, 7 Dec 2026 10:05:01 +0100\nDelivered-To: suport@example.org\nReturn-Path: <anna@example.org>\nX-Original-To: suport@example.org\nAuthentication-Results: mx; dkim=pass\nX-Mailtoticket: TEMPFAIL\n".to_vec();
        refetched.extend_from_slice(MAIL);
        refetched.extend_from_slice(b"\n\n");
        assert_eq!(content_digest(&refetched), base);
        let crlf: Vec<u8> = String::from_utf8_lossy(MAIL)
            .replace('\n', "\r\n")
            .into_bytes();
        assert_eq!(content_digest(&crlf), base);
        // Another folding of the same Subject is the same value.
        let refolded =
            String::from_utf8_lossy(MAIL).replace("Impressora\n  trencada", "Impressora trencada");
        assert_eq!(content_digest(refolded.as_bytes()), base);
    }

    #[test]
    fn what_the_sender_wrote_changes_the_digest() {
        let base = content_digest(MAIL);
        let text = String::from_utf8_lossy(MAIL).into_owned();
        for (from, to) in [
            ("No imprimeix.", "No imprimeix!"),
            ("Anna <anna@", "Anna <annb@"),
            ("10:00:00", "10:00:01"),
            ("trencada", "trencad"),
        ] {
            let changed = text.replace(from, to);
            assert_ne!(content_digest(changed.as_bytes()), base, "{from} -> {to}");
        }
        // The Message-ID is not part of the digest (it is the other half of the key).
        let other_id = text.replace("<a1@", "<a2@");
        assert_eq!(content_digest(other_id.as_bytes()), base);
    }

    #[test]
    fn keys() {
        let with = MailIdentity::of(Some("  <a1@example.org>\r\n"), MAIL);
        assert_eq!(with.primary_key(), "<a1@example.org>");
        assert!(with.clash_key().starts_with("<a1@example.org> sha256:"));
        let without = MailIdentity::of(Some("  "), MAIL);
        assert_eq!(without.message_id, None);
        assert_eq!(without.primary_key(), format!("sha256:{}", with.digest));
        let long = format!("<{}@x>", "a".repeat(2000));
        assert!(
            MailIdentity::of(Some(&long), MAIL)
                .primary_key()
                .starts_with("id-sha256:")
        );
    }

    #[test]
    fn odd_inputs_have_a_digest() {
        for raw in [
            &b""[..],
            b"abc",
            b"\n\n",
            b"From x\nno colon\n\nbody",
            b"\xff\xfe:\n\n\x00",
        ] {
            assert_eq!(content_digest(raw).len(), 64);
        }
        assert_ne!(content_digest(b"abc"), content_digest(b"abd"));
    }
}
