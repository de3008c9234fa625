//! Bounces linked to their ticket (issue 14): which GN6 notification a bounce returns,
//! and the private comment that tells the technicians. Pure.
//!
//! The returned message is found in the bounce's `message/rfc822` /
//! `text/rfc822-headers` part (its Message-ID, In-Reply-To, References); text-only
//! bounces quote the returned headers in their body; and many MTAs (Gmail, Office 365)
//! put the returned Message-ID in the bounce's own In-Reply-To/References. Every id
//! is tried with `regex_message_id`: only GN6's own ids match it.

use std::sync::LazyLock;

use regex::Regex;

use super::dsn::RecipientStatus;
use super::filters::match_at_start;
use super::html::Body;
use super::mail::Mail;

/// What a bounce returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// A GN6 notification of this ticket; `id` is the Message-ID that matched.
    Notification { ticket: String, id: String },
    /// One of our own error reports (`X-Mailtoticket-Loop`, or sent from an own address).
    OwnReport,
    /// Nothing we sent, as far as the bounce shows.
    Unknown,
}

static ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^<>\s]+>").expect("static regex"));
static QUOTED_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?im)^[ \t>]*(Message-ID|In-Reply-To|References|X-Mailtoticket-Loop|From):[ \t]*(.*)$",
    )
    .expect("static regex")
});

/// Ids (`<...>`) written in a header value.
fn ids(value: &str) -> impl Iterator<Item = &str> {
    ID.find_iter(value).map(|m| m.as_str())
}

/// The returned message's header fields: those of its MIME part, else the ones quoted
/// at the start of a line in the bounce's text (Exim, qmail, Domino, fml).
fn returned_fields(mail: &Mail) -> Vec<(String, String)> {
    if !mail.structure.returned_headers.is_empty() {
        return mail.structure.returned_headers.clone();
    }
    let text = if mail.body_text.trim().is_empty() {
        &mail.structure.first_text
    } else {
        &mail.body_text
    };
    QUOTED_HEADER
        .captures_iter(text)
        .map(|c| (c[1].to_string(), c[2].trim().to_string()))
        .collect()
}

/// What `mail` (already classified as a bounce) returns. `is_own` tells whether a bare
/// lower-case address is one of the gateway's own.
pub fn returned(mail: &Mail, message_id: &Regex, is_own: impl Fn(&str) -> bool) -> Returned {
    let fields = returned_fields(mail);
    let field = |name: &'static str| {
        fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if field("X-Mailtoticket-Loop").next().is_some() {
        return Returned::OwnReport;
    }
    for from in field("From") {
        let address = match (from.rfind('<'), from.rfind('>')) {
            (Some(a), Some(b)) if a < b => &from[a + 1..b],
            _ => from,
        };
        let address = address.trim().to_lowercase();
        if !address.is_empty() && is_own(&address) {
            return Returned::OwnReport;
        }
    }
    // The returned message's own id first, then what it answered, newest reference
    // first; then the bounce's own thread headers.
    let mut candidates: Vec<&str> = Vec::new();
    candidates.extend(field("Message-ID").flat_map(ids));
    candidates.extend(field("In-Reply-To").flat_map(ids));
    for refs in field("References") {
        let mut r: Vec<&str> = ids(refs).collect();
        r.reverse();
        candidates.extend(r);
    }
    candidates.extend(mail.in_reply_to.iter().map(String::as_str));
    candidates.extend(mail.references.iter().rev().map(String::as_str));
    for id in candidates {
        let id = id.trim();
        if let Some(code) = match_at_start(message_id, id)
            .and_then(|c| c.get(1).map(|g| g.as_str().trim().to_string()))
            .filter(|c| !c.is_empty())
        {
            return Returned::Notification {
                ticket: code,
                id: id.to_string(),
            };
        }
    }
    Returned::Unknown
}

/// The private comment as stored (Catalan): one line per recipient,
/// "La notificació a ADREÇA no s'ha pogut lliurar: ESTAT DIAGNÒSTIC". What the remote
/// server wrote is text in the tree; only the serialiser writes HTML.
pub fn comment_html(recipients: &[RecipientStatus], subject: &str) -> String {
    Body::from_text(&comment_text(recipients, subject))
        .render()
        .into_string()
}

/// The comment's plain text, one line per recipient.
fn comment_text(recipients: &[RecipientStatus], subject: &str) -> String {
    if recipients.is_empty() {
        return format!(
            "La notificació no s'ha pogut lliurar (el rebot no diu a qui): {}",
            subject.trim()
        );
    }
    recipients
        .iter()
        .map(|r| {
            let verb = if r.action == "delayed" {
                "encara no s'ha pogut lliurar (el servidor ho reintenta)"
            } else {
                "no s'ha pogut lliurar"
            };
            let detail = [r.status.as_str(), r.diagnostic.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let detail = if detail.is_empty() {
                "sense detalls".to_string()
            } else {
                detail
            };
            format!("La notificació a {} {verb}: {detail}", r.recipient)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re() -> Regex {
        Regex::new(r"^<[-a-f0-9]+-tiquet-id-([0-9]+)@gn6>$").unwrap()
    }

    fn with_returned(fields: &[(&str, &str)]) -> Mail {
        let mut m = Mail::default();
        m.structure.returned_headers = fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        m
    }

    #[test]
    fn returned_message_id_names_the_ticket() {
        let m = with_returned(&[("Message-ID", "<ab12-tiquet-id-4567@gn6>")]);
        assert_eq!(
            returned(&m, &re(), |_| false),
            Returned::Notification {
                ticket: "4567".into(),
                id: "<ab12-tiquet-id-4567@gn6>".into()
            }
        );
    }

    #[test]
    fn references_and_the_bounces_own_thread_headers_count_too() {
        let m = with_returned(&[
            ("Message-ID", "<x@other>"),
            ("References", "<a-tiquet-id-1@gn6> <b-tiquet-id-2@gn6>"),
        ]);
        assert!(
            matches!(returned(&m, &re(), |_| false), Returned::Notification { ticket, .. } if ticket == "2")
        );
        let m = Mail {
            in_reply_to: vec!["<c-tiquet-id-9@gn6>".into()],
            ..Mail::default()
        };
        assert!(
            matches!(returned(&m, &re(), |_| false), Returned::Notification { ticket, .. } if ticket == "9")
        );
    }

    #[test]
    fn quoted_headers_of_a_text_bounce() {
        let m = Mail {
            body_text: "The following address(es) failed:\n\n  a@b.example\n\n\
            ------ This is a copy of the message, including all the headers. ------\n\n\
            Message-Id: <d0-tiquet-id-31@gn6>\nSubject: x\n"
                .into(),
            ..Mail::default()
        };
        assert!(
            matches!(returned(&m, &re(), |_| false), Returned::Notification { ticket, .. } if ticket == "31")
        );
    }

    #[test]
    fn own_reports_are_recognised() {
        let m = with_returned(&[
            ("X-Mailtoticket-Loop", "1"),
            ("Message-ID", "<e-tiquet-id-3@gn6>"),
        ]);
        assert_eq!(returned(&m, &re(), |_| false), Returned::OwnReport);
        let m = with_returned(&[("From", "Mailtoticket <Errors@upc.edu>")]);
        assert_eq!(
            returned(&m, &re(), |a| a == "errors@upc.edu"),
            Returned::OwnReport
        );
        assert_eq!(returned(&m, &re(), |_| false), Returned::Unknown);
    }

    #[test]
    fn comment_text_escapes_what_the_remote_server_wrote() {
        let r = RecipientStatus {
            recipient: "anna@example.org".into(),
            action: "failed".into(),
            status: "5.1.1".into(),
            diagnostic: "550 <script>alert(1)</script> unknown".into(),
        };
        let t = comment_html(&[r], "x");
        assert!(
            t.contains(
                "La notificació a anna@example.org no s'ha pogut lliurar: 5.1.1 550 &lt;script&gt;alert(1)&lt;/script&gt; unknown"
            ),
            "{t}"
        );
        assert!(!t.contains("<script"), "{t}");
        let t = comment_html(&[], "Undeliverable: <b>");
        assert!(t.contains("&lt;b&gt;") && !t.contains("<b>"), "{t}");
    }
}
