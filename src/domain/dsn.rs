//! Delivery status notifications (issue 14): who could not be reached and why.
//!
//! Standard reports are read per RFC 3464 (`message/delivery-status`: one per-message
//! block, then one block per recipient with Final-Recipient, Action, Status and
//! Diagnostic-Code). Many MTAs send no such part, or one that says less than their
//! text, so the common plain-text forms are read too: Postfix, qmail and Sendmail
//! (`<address>:` then the reason), Exim (`The following address(es) failed:`),
//! Exchange 2003–2019 (`did not reach the following recipient(s)`,
//! `Delivery has failed to these recipients`, `#550 5.x.x ...`), Office 365
//! (`Remote Server returned '550 5.x.x ...'`), Gmail (`Technical details of
//! permanent failure`, `The response from the remote server was:`) and Lotus Domino
//! (`was not delivered to: ... because:`). No crate in the registry does this for
//! Rust with these forms, so it is a small parser of our own. Pure: text in, facts out.

use std::sync::LazyLock;

use regex::Regex;

use super::mail::Mail;

/// One recipient a DSN reports on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecipientStatus {
    /// The address, bare and lower-cased (`Final-Recipient`, else `Original-Recipient`).
    pub recipient: String,
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded`; empty when unknown.
    pub action: String,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`; empty when unknown.
    pub status: String,
    /// The remote server's text (without its `smtp;` type), unfolded; may be empty.
    pub diagnostic: String,
}

/// Longest diagnostic kept: the text comes from a remote server.
const MAX_DIAGNOSTIC: usize = 400;
/// Recipients read at most from one mail.
const MAX_RECIPIENTS: usize = 50;

/// Every recipient the mail reports on: the delivery-status parts first; when they name
/// nobody, the plain-text forms of the first text part; then `X-Failed-Recipients`
/// for any address still missing.
pub fn recipients(mail: &Mail) -> Vec<RecipientStatus> {
    let mut out: Vec<RecipientStatus> = Vec::new();
    for report in &mail.structure.delivery_status {
        out.extend(parse_report(report));
    }
    let text = if mail.body_text.trim().is_empty() {
        mail.structure.first_text.as_str()
    } else {
        mail.body_text.as_str()
    };
    let from_text = parse_text(text);
    if out.is_empty() {
        out = from_text;
    } else {
        // A report without a diagnostic (Courier, some Exchange) borrows the text's.
        for r in &mut out {
            if r.diagnostic.is_empty()
                && let Some(t) = from_text.iter().find(|t| t.recipient == r.recipient)
            {
                r.diagnostic = t.diagnostic.clone();
                if r.status.is_empty() {
                    r.status = t.status.clone();
                }
            }
        }
    }
    for value in mail.header_all("X-Failed-Recipients") {
        for address in value.split(',') {
            let address = bare(address);
            if address.contains('@') && !out.iter().any(|r| r.recipient == address) {
                out.push(RecipientStatus {
                    recipient: address,
                    action: "failed".into(),
                    ..Default::default()
                });
            }
        }
    }
    out.truncate(MAX_RECIPIENTS);
    out
}

/// The per-recipient blocks of an RFC 3464 `message/delivery-status` body.
pub fn parse_report(text: &str) -> Vec<RecipientStatus> {
    let mut out = Vec::new();
    for block in blocks(text) {
        let field = |name: &str| {
            block
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let Some(recipient) = field("Final-Recipient")
            .or_else(|| field("Original-Recipient"))
            .map(typed_value)
            .map(bare)
            .filter(|r| !r.is_empty())
        else {
            continue;
        };
        let diagnostic = field("Diagnostic-Code").map(typed_value).unwrap_or("");
        let mut status = field("Status")
            .map(|s| s.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_default();
        if !STATUS.is_match(&status) {
            status = status_in(diagnostic);
        }
        out.push(RecipientStatus {
            recipient,
            action: field("Action")
                .map(|a| a.trim().to_ascii_lowercase())
                .unwrap_or_default(),
            status,
            diagnostic: clip(diagnostic),
        });
        if out.len() >= MAX_RECIPIENTS {
            break;
        }
    }
    out
}

/// Field blocks separated by empty lines, continuation lines unfolded.
fn blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = cur.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            cur.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `rfc822; a@b` → `a@b`; `smtp; 550 ...` → `550 ...`.
fn typed_value(v: &str) -> &str {
    match v.split_once(';') {
        Some((kind, rest)) if !kind.trim().is_empty() && !kind.contains(' ') => rest.trim(),
        _ => v.trim(),
    }
}

/// A bare lower-case address out of `<a@b>`, `"Name" <a@b>`, `a@b<mailto:a@b>`.
fn bare(v: &str) -> String {
    let v = v.trim();
    let v = match v.find("<mailto:") {
        Some(i) => &v[..i],
        None => v,
    };
    let inner = match (v.rfind('<'), v.rfind('>')) {
        (Some(a), Some(b)) if a < b => &v[a + 1..b],
        _ => v,
    };
    inner
        .trim()
        .trim_matches(|c: char| c == '<' || c == '>' || c == '"' || c == '\'' || c == ':')
        .to_lowercase()
}

static STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[245]\.\d{1,3}\.\d{1,3}$").expect("static regex"));
static STATUS_IN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d.])([245]\.\d{1,3}\.\d{1,3})(?:[^\d.]|$)").expect("static regex")
});
static REPLY_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b([45]\d\d)\b").expect("static regex"));
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
        .expect("static regex")
});

/// The first enhanced status code in a text; else `5.0.0`/`4.0.0` from an SMTP reply code.
fn status_in(text: &str) -> String {
    if let Some(c) = STATUS_IN.captures(text) {
        return c[1].to_string();
    }
    match REPLY_CODE.captures(text) {
        Some(c) if c[1].starts_with('5') => "5.0.0".into(),
        Some(c) if c[1].starts_with('4') => "4.0.0".into(),
        _ => String::new(),
    }
}

/// Collapses white space and cuts the text to [`MAX_DIAGNOSTIC`] characters.
fn clip(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX_DIAGNOSTIC) {
        Some((i, _)) => format!("{}…", &joined[..i]),
        None => joined,
    }
}

fn first_address(line: &str) -> Option<String> {
    ADDRESS.find(line).map(|m| m.as_str().to_lowercase())
}

/// Lines of a text, trimmed of their line ends only.
fn lines(text: &str) -> Vec<&str> {
    text.lines().map(|l| l.trim_end()).collect()
}

/// The plain-text forms (see the module documentation), first form that names anyone.
pub fn parse_text(text: &str) -> Vec<RecipientStatus> {
    let l = lines(text);
    for form in [
        exim as fn(&[&str]) -> Vec<RecipientStatus>,
        exchange_legacy,
        exchange_modern,
        office365,
        gmail,
        domino,
        angle_bracket_list,
    ] {
        let found = form(&l);
        if !found.is_empty() {
            let mut found = found;
            found.truncate(MAX_RECIPIENTS);
            return found;
        }
    }
    Vec::new()
}

fn failed(recipient: String, diagnostic: &str) -> RecipientStatus {
    RecipientStatus {
        recipient,
        action: "failed".into(),
        status: status_in(diagnostic),
        diagnostic: clip(diagnostic),
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Lines that end a bounce's own text: the returned message starts there.
fn is_copy_marker(line: &str) -> bool {
    let t = line.trim().to_ascii_lowercase();
    t.starts_with("------ this is a copy")
        || t.starts_with("--- below this line")
        || t.starts_with("------- returned message")
        || t.starts_with("--- the header of the original message")
        || t.starts_with("----- original message")
        || t.starts_with("original message headers")
}

/// Exim: after `The following address(es) failed:`, each address indented by two,
/// its reason on the more indented lines below it.
fn exim(l: &[&str]) -> Vec<RecipientStatus> {
    let Some(start) = l.iter().position(|x| {
        let x = x.to_ascii_lowercase();
        x.contains("following address(es) failed") || x.contains("following address failed")
    }) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    let mut base: Option<usize> = None;
    for line in &l[start + 1..] {
        if is_copy_marker(line) {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let ind = indent(line);
        match base {
            Some(b) if ind > b => {
                if let Some((_, reasons)) = out.last_mut() {
                    reasons.push(line.trim());
                }
            }
            _ => {
                let t = line.trim();
                if t.contains(' ') && !t.contains('@') {
                    // Prose ("For the following reason:") between address and reason.
                    if let Some((_, reasons)) = out.last_mut() {
                        reasons.push(t);
                    }
                    continue;
                }
                base = Some(ind);
                out.push((bare(t), Vec::new()));
            }
        }
    }
    out.into_iter()
        .filter(|(r, _)| !r.is_empty())
        .map(|(r, reasons)| failed(r, &reasons.join(" ")))
        .collect()
}

/// Exchange 2000/2003: `did not reach the following recipient(s):` then
/// `address on DATE` and the indented reason lines.
fn exchange_legacy(l: &[&str]) -> Vec<RecipientStatus> {
    let Some(start) = l.iter().position(|x| {
        x.to_ascii_lowercase()
            .contains("did not reach the following recipient")
    }) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    for line in &l[start + 1..] {
        if line.trim().is_empty() {
            continue;
        }
        if indent(line) == 0 {
            match line.split_once(" on ").map(|(a, _)| a.trim()) {
                Some(a) if a.contains('@') && !a.contains(' ') => out.push((bare(a), Vec::new())),
                _ => {
                    if let Some((_, reasons)) = out.last_mut() {
                        reasons.push(line.trim());
                    }
                }
            }
        } else if let Some((_, reasons)) = out.last_mut() {
            reasons.push(line.trim());
        }
    }
    out.into_iter()
        .map(|(r, reasons)| failed(r, &reasons.join(" ")))
        .collect()
}

static EXCHANGE_DIAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*#\s*([45]\d\d[ -][245]\.\d{1,3}\.\d{1,3}.*?)\s*(?:##.*)?$")
        .expect("static regex")
});

/// Exchange 2007+: `Delivery has failed to these recipients or groups:`; the
/// administrators' section pairs each address with a `#550 5.x.x ...` line.
fn exchange_modern(l: &[&str]) -> Vec<RecipientStatus> {
    if !l.iter().any(|x| {
        x.to_ascii_lowercase()
            .contains("delivery has failed to these recipients")
    }) {
        return Vec::new();
    }
    let mut out: Vec<RecipientStatus> = Vec::new();
    let mut last_address: Option<String> = None;
    for line in l {
        if line
            .trim()
            .to_ascii_lowercase()
            .starts_with("original message headers")
        {
            break;
        }
        if let Some(c) = EXCHANGE_DIAG.captures(line) {
            if let Some(a) = last_address.take()
                && !out.iter().any(|r| r.recipient == a)
            {
                out.push(failed(a, &c[1]));
            }
        } else if let Some(a) = first_address(line) {
            last_address = Some(a);
        }
    }
    out
}

static O365_REMOTE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)Remote Server returned '([^']*)'").expect("static regex"));
static O365_TO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)Your message to (\S+@\S+?) couldn'?t be delivered").expect("static regex")
});

/// Office 365 / Exchange Online: `Your message to ADDRESS couldn't be delivered`, and
/// `Remote Server returned '550 5.1.10 RESOLVER...'` in the administrators' section.
fn office365(l: &[&str]) -> Vec<RecipientStatus> {
    let text = l.join("\n");
    let diag = O365_REMOTE
        .captures(&text)
        .map(|c| c[1].to_string())
        .unwrap_or_default();
    let mut out = Vec::new();
    for c in O365_TO.captures_iter(&text) {
        let r = bare(&c[1]);
        if !out.iter().any(|x: &RecipientStatus| x.recipient == r) {
            out.push(failed(r, &diag));
        }
    }
    if out.is_empty() && !diag.is_empty() {
        // The older form: the address on a line of its own before the remote answer.
        if let Some(i) = l.iter().position(|x| O365_REMOTE.is_match(x))
            && let Some(a) = l[..i].iter().rev().find_map(|x| first_address(x))
        {
            out.push(failed(a, &diag));
        }
    }
    out
}

/// Gmail: `Delivery to the following recipient failed permanently:` then the address,
/// the reason after `Technical details of permanent failure:`; the newer form says
/// `Your message wasn't delivered to ADDRESS` and `The response from the remote server was:`.
fn gmail(l: &[&str]) -> Vec<RecipientStatus> {
    let lower: Vec<String> = l.iter().map(|x| x.to_ascii_lowercase()).collect();
    let mut recipient = None;
    if let Some(i) = lower.iter().position(|x| {
        x.contains("delivery to the following recipient failed")
            || x.contains("delivery to the following recipients failed")
    }) {
        recipient = l[i + 1..]
            .iter()
            .find(|x| !x.trim().is_empty())
            .and_then(|x| first_address(x));
    }
    if recipient.is_none()
        && let Some(i) = lower
            .iter()
            .position(|x| x.contains("wasn't delivered to") || x.contains("wasn’t delivered to"))
    {
        recipient = first_address(l[i]).or_else(|| l.get(i + 1).and_then(|x| first_address(x)));
    }
    let Some(recipient) = recipient else {
        return Vec::new();
    };
    let diagnostic = lower
        .iter()
        .position(|x| {
            x.contains("technical details of permanent failure")
                || x.contains("technical details of temporary failure")
                || x.contains("the response from the remote server was")
                || x.contains("the response was:")
        })
        .map(|i| paragraph_after(l, i))
        .unwrap_or_default();
    vec![failed(recipient, &diagnostic)]
}

/// The first paragraph (non-blank lines) after line `i`, joined by spaces.
fn paragraph_after(l: &[&str], i: usize) -> String {
    l[i + 1..]
        .iter()
        .skip_while(|x| x.trim().is_empty())
        .take_while(|x| !x.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lotus Domino: `was not delivered to:` / the address / `because:` / the reason.
fn domino(l: &[&str]) -> Vec<RecipientStatus> {
    let lower: Vec<String> = l.iter().map(|x| x.trim().to_ascii_lowercase()).collect();
    let Some(i) = lower.iter().position(|x| x == "was not delivered to:") else {
        return Vec::new();
    };
    let Some(recipient) = l[i + 1..]
        .iter()
        .find(|x| !x.trim().is_empty())
        .and_then(|x| first_address(x))
    else {
        return Vec::new();
    };
    let diagnostic = lower
        .iter()
        .position(|x| x == "because:")
        .map(|j| paragraph_after(l, j))
        .unwrap_or_default();
    vec![failed(recipient, &diagnostic)]
}

static ANGLE_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^<([^<>\s]+@[^<>\s]+)>:?\s*(.*)$").expect("static regex"));

/// Postfix (`<a@b>: host x said: 550 ...`), qmail (`<a@b>:` then the reason lines up
/// to an empty line) and Sendmail (`<a@b>` then `(reason: 550 ...)`): an address in
/// angle brackets starting a line, its reason on the same line and the lines after it
/// up to the next empty line or address.
fn angle_bracket_list(l: &[&str]) -> Vec<RecipientStatus> {
    let mut out: Vec<(String, Vec<&str>)> = Vec::new();
    let mut open = false;
    for line in l {
        if is_copy_marker(line) {
            break;
        }
        // The returned message's own headers are not recipients.
        if line.starts_with("Return-Path:") || line.starts_with("Received:") {
            break;
        }
        if let Some(c) = ANGLE_LINE.captures(line) {
            let r = c[1].to_lowercase();
            let rest = c.get(2).map(|m| m.as_str()).unwrap_or("");
            out.push((r, if rest.is_empty() { vec![] } else { vec![rest] }));
            open = true;
            continue;
        }
        if line.trim().is_empty() {
            open = false;
            continue;
        }
        if open && let Some((_, reasons)) = out.last_mut() {
            reasons.push(line.trim());
        }
    }
    out.into_iter()
        .map(|(r, reasons)| {
            let d = reasons.join(" ");
            let d = d
                .trim()
                .strip_prefix("(reason:")
                .map(|x| x.trim_end_matches(')').trim().to_string())
                .unwrap_or(d);
            failed(r, &d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(v: Vec<RecipientStatus>) -> RecipientStatus {
        assert_eq!(v.len(), 1, "{v:?}");
        v.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn rfc3464_report() {
        let report = "Reporting-MTA: dns; mx.example.org\n\
            Arrival-Date: Mon, 3 Feb 2025 10:00:00 +0100\n\n\
            Original-Recipient: rfc822;Old@Example.org\n\
            Final-Recipient: rfc822; <Anna@Example.org>\n\
            Action: failed\nStatus: 5.1.1\n\
            Diagnostic-Code: smtp; 550 5.1.1 <anna@example.org>: mailbox\n  unknown\n\n\
            Final-Recipient: rfc822; pere@example.org\nAction: delayed\nStatus: 4.4.1\n";
        let r = parse_report(report);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].recipient, "anna@example.org");
        assert_eq!(r[0].action, "failed");
        assert_eq!(r[0].status, "5.1.1");
        assert_eq!(
            r[0].diagnostic,
            "550 5.1.1 <anna@example.org>: mailbox unknown"
        );
        assert_eq!(
            (r[1].action.as_str(), r[1].status.as_str()),
            ("delayed", "4.4.1")
        );
        // A per-message block alone names nobody.
        assert!(parse_report("Reporting-MTA: dns; x\n").is_empty());
        // A status that is not a code is read from the diagnostic.
        let r = parse_report(
            "Final-Recipient: rfc822; a@b.example\nStatus: failed\nDiagnostic-Code: smtp; 552 5.2.2 full\n",
        );
        assert_eq!(r[0].status, "5.2.2");
    }

    #[test]
    fn postfix_text() {
        let t = "This is the mail system at host mx.example.org.\n\n\
            <joan@example.net>: host mx.example.net[192.0.2.1] said: 550 5.1.1\n    \
            <joan@example.net>: Recipient address rejected: User unknown (in reply to\n    \
            RCPT TO command)\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "joan@example.net");
        assert_eq!(r.status, "5.1.1");
        assert!(
            r.diagnostic.ends_with("(in reply to RCPT TO command)"),
            "{r:?}"
        );
    }

    #[test]
    fn qmail_text() {
        let t = "Hi. This is the qmail-send program at mail.example.org.\n\
            I'm afraid I wasn't able to deliver your message to the following addresses.\n\n\
            <maria@example.net>:\nRemote host said: 550 no such mailbox here\n. (#5.1.1)\n\n\
            --- Below this line is a copy of the message.\n\nReturn-Path: <x@example.org>\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "maria@example.net");
        assert_eq!(r.status, "5.1.1");
        assert!(r.diagnostic.starts_with("Remote host said: 550"));
    }

    #[test]
    fn sendmail_text() {
        let t = "   ----- The following addresses had permanent fatal errors -----\n\
            <pau@example.net>\n    (reason: 550 5.7.1 relaying denied)\n\n\
               ----- Transcript of session follows -----\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "pau@example.net");
        assert_eq!(r.diagnostic, "550 5.7.1 relaying denied");
    }

    #[test]
    fn exim_text() {
        let t = "This message was created automatically by mail delivery software.\n\n\
            A message that you sent could not be delivered to one or more of its\n\
            recipients. This is a permanent error. The following address(es) failed:\n\n  \
            laia@example.net\n    host mx.example.net [192.0.2.7]\n    \
            SMTP error from remote mail server after RCPT TO:<laia@example.net>:\n    \
            550 5.2.1 mailbox disabled\n  \
            marc@example.net\n    mailbox is full\n\n\
            ------ This is a copy of the message, including all the headers. ------\n";
        let r = parse_text(t);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(r[0].recipient, "laia@example.net");
        assert_eq!(r[0].status, "5.2.1");
        assert!(r[0].diagnostic.ends_with("550 5.2.1 mailbox disabled"));
        assert_eq!(r[1].recipient, "marc@example.net");
        assert_eq!(r[1].diagnostic, "mailbox is full");
    }

    #[test]
    fn exchange_2003_text() {
        let t = "Your message\n\n  To:      jordi@example.net\n  Subject: Hola\n\n\
            did not reach the following recipient(s):\n\n\
            jordi@example.net on Mon, 3 Feb 2025 10:00:00 +0100\n    \
            The e-mail account does not exist at the organization this message was sent to.\n    \
            <mx.example.net #5.1.1>\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "jordi@example.net");
        assert_eq!(r.status, "5.1.1");
        assert!(
            r.diagnostic
                .starts_with("The e-mail account does not exist")
        );
    }

    #[test]
    fn exchange_2007_text() {
        let t = "Delivery has failed to these recipients or groups:\n\n\
            Nuria Puig<mailto:nuria@example.net>\nThe recipient's mailbox is full.\n\n\
            Diagnostic information for administrators:\n\nGenerating server: ex1.example.net\n\n\
            nuria@example.net\n#550 5.2.2 STOREDRV.Deliver; mailbox full ##\n\n\
            Original message headers:\n\nTo: nuria@example.net\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "nuria@example.net");
        assert_eq!(r.status, "5.2.2");
        assert_eq!(r.diagnostic, "550 5.2.2 STOREDRV.Deliver; mailbox full");
    }

    #[test]
    fn office365_text() {
        let t = "Your message to sergi@example.net couldn't be delivered.\n\
            sergi wasn't found at example.net.\n\nDiagnostic information for administrators:\n\n\
            Generating server: AM0PR01MB.eurprd01.prod.outlook.com\n\nsergi@example.net\n\
            Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup'\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "sergi@example.net");
        assert_eq!(r.status, "5.1.10");
        assert!(r.diagnostic.contains("RecipientNotFound"));
    }

    #[test]
    fn gmail_text() {
        let t = "Delivery to the following recipient failed permanently:\n\n     \
            rosa@example.net\n\nTechnical details of permanent failure:\n\
            The email account that you tried to reach does not exist. 550-5.1.1\n\n\
            ----- Original message -----\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "rosa@example.net");
        assert_eq!(r.status, "5.1.1");
        let t = "** Address not found **\n\nYour message wasn't delivered to albert@example.net \
            because the address couldn't be found.\n\nThe response from the remote server was:\n\
            550 5.1.1 The email account that you tried to reach does not exist.\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "albert@example.net");
        assert!(r.diagnostic.starts_with("550 5.1.1 The email account"));
    }

    #[test]
    fn domino_text() {
        let t = "Your message\n\n  Subject: Hola\n\nwas not delivered to:\n\n  \
            eva@example.net\n\nbecause:\n\n  User eva (eva@example.net) not listed in Domino Directory\n";
        let r = one(parse_text(t));
        assert_eq!(r.recipient, "eva@example.net");
        assert!(r.diagnostic.contains("not listed in Domino Directory"));
    }

    #[test]
    fn hostile_text_is_clipped_and_bounded() {
        let long = format!("<a@b.example>: {}", "x ".repeat(5000));
        let r = one(parse_text(&long));
        assert!(r.diagnostic.chars().count() <= MAX_DIAGNOSTIC + 1);
        let many: String = (0..500)
            .map(|i| format!("<u{i}@b.example>: 550\n\n"))
            .collect();
        assert_eq!(parse_text(&many).len(), MAX_RECIPIENTS);
        assert!(parse_text("").is_empty());
        assert!(parse_text("Hola,\nGràcies per la resposta.\n").is_empty());
    }
}
