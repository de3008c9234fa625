//! Who may write into a ticket, and as whom (issue 10). Pure decisions only:
//! - sender authenticity from the `Authentication-Results` headers (RFC 8601) that
//!   our own MTA wrote, every other one being untrusted input;
//! - when `Reply-To` may give the requester's identity;
//! - whether a reply comes from one of the ticket's participants;
//! - the hourly budgets (limits, reports, quarantine) as keys and verdicts.
//!
//! The use case asks the directory and the stores, then calls these.

use regex::Regex;

// ------------------------------------------------------------ RFC 8601 parsing

/// One `method=result` of an `Authentication-Results` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    /// Lower-case method, e.g. `dmarc`, `spf`, `dkim`.
    pub method: String,
    /// Lower-case result, e.g. `pass`, `fail`, `none`.
    pub result: String,
    /// `ptype.property` → value (property names lower-case), e.g. `header.from`.
    pub props: Vec<(String, String)>,
}

impl MethodResult {
    /// A property's value, e.g. `prop("header.from")`.
    pub fn prop(&self, name: &str) -> Option<&str> {
        self.props
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One parsed `Authentication-Results` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResults {
    /// The authserv-id (lower-case): who wrote the header.
    pub authserv_id: String,
    pub results: Vec<MethodResult>,
}

/// The text without RFC 5322 comments (nested parentheses, quoted pairs), with quoted
/// strings kept (quotes included) so that `;` inside them does not split.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if depth > 0 || quoted => {
                let next = chars.next();
                if depth == 0 {
                    out.push(c);
                    out.extend(next);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    out.push(' ');
                }
            }
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

/// Splits on `sep` outside quoted strings.
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn unquote(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let mut out = String::new();
        let mut chars = v[1..v.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.extend(chars.next());
            } else {
                out.push(c);
            }
        }
        out
    } else {
        v.to_string()
    }
}

/// Tokens `key=value` (blanks around `=` allowed) of one resinfo, outside quotes.
fn key_values(text: &str) -> Vec<(String, String)> {
    // Join `a = b` into `a=b`, then split on blanks outside quotes.
    let mut joined = String::with_capacity(text.len());
    let mut quoted = false;
    let mut pending_blank = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if !quoted && c.is_whitespace() {
            pending_blank = true;
            continue;
        }
        if pending_blank {
            let last = joined.chars().last();
            if c != '=' && last != Some('=') && !joined.is_empty() {
                joined.push(' ');
            }
            pending_blank = false;
        }
        joined.push(c);
    }
    split_outside_quotes(&joined, ' ')
        .into_iter()
        .filter_map(|tok| {
            let (k, v) = tok.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), unquote(v)))
        })
        .collect()
}

/// Parses one `Authentication-Results` value (RFC 8601 §2.2):
/// `authserv-id [version] ; method[/version]=result [reason=...] [ptype.prop=value...] ; ...`
/// or `authserv-id; none`. Comments are ignored. `None` when there is no authserv-id.
pub fn parse_authentication_results(value: &str) -> Option<AuthResults> {
    let text = strip_comments(value);
    let mut parts = split_outside_quotes(&text, ';').into_iter();
    let head = parts.next()?.trim();
    let authserv_id = unquote(head.split_whitespace().next()?).to_ascii_lowercase();
    if authserv_id.is_empty() || authserv_id.contains('=') {
        return None;
    }
    let mut results = Vec::new();
    for part in parts {
        let mut kvs = key_values(part).into_iter();
        let Some((method, result)) = kvs.next() else {
            continue; // `none`, or an empty resinfo
        };
        let method = method
            .split('/')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        if method.is_empty() {
            continue;
        }
        let props = kvs
            .filter(|(k, _)| k.contains('.'))
            .map(|(k, v)| (k, v.to_ascii_lowercase()))
            .collect();
        results.push(MethodResult {
            method,
            result: result.to_ascii_lowercase(),
            props,
        });
    }
    Some(AuthResults {
        authserv_id,
        results,
    })
}

/// The topmost `Authentication-Results` (headers in mail order, topmost first) whose
/// authserv-id is one of `ours` (case-insensitive). Any other one may have been
/// written by anybody on the way, so it is ignored.
pub fn our_results<'a>(
    values: impl IntoIterator<Item = &'a str>,
    ours: &[String],
) -> Option<AuthResults> {
    values
        .into_iter()
        .filter_map(parse_authentication_results)
        .find(|r| {
            ours.iter()
                .any(|o| o.trim().eq_ignore_ascii_case(&r.authserv_id))
        })
}

// ------------------------------------------------------------ authenticity

/// `autenticacio_requerida`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requirement {
    /// DMARC must not fail: `dmarc=fail`, or any result other than `pass`, `none`
    /// (no policy published) or `temperror`, is a failure.
    #[default]
    Dmarc,
    /// Only an explicit `dmarc=fail` is a failure.
    Cap,
}

impl Requirement {
    pub fn parse(name: &str) -> Option<Requirement> {
        match name.trim().to_ascii_lowercase().as_str() {
            "dmarc" => Some(Requirement::Dmarc),
            "cap" => Some(Requirement::Cap),
            _ => None,
        }
    }
}

/// What our MTA says of the From address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticity {
    /// `autenticacio_servidor` is empty: nothing is checked (the old behaviour).
    Off,
    /// DMARC passed for the From domain.
    Pass,
    /// Neither passed nor failed (no header of ours, no policy, a temporary error).
    Unverified(String),
    /// The From failed: the mail is handled as from an unknown sender.
    Fail(String),
}

impl Authenticity {
    pub fn failed(&self) -> bool {
        matches!(self, Authenticity::Fail(_))
    }

    pub fn passed(&self) -> bool {
        matches!(self, Authenticity::Pass)
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        match self {
            Authenticity::Off => "no comprovada (autenticacio_servidor buit)".into(),
            Authenticity::Pass => "correcta (dmarc=pass)".into(),
            Authenticity::Unverified(why) => format!("no verificada ({why})"),
            Authenticity::Fail(why) => format!("fallida ({why})"),
        }
    }
}

fn domain_of(address: &str) -> &str {
    address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("")
        .trim()
}

/// The authenticity of the From address `from` according to the topmost
/// `Authentication-Results` of ours among `values`. A DMARC result about another
/// domain (`header.from`) than the From's does not count.
pub fn authenticity<'a>(
    from: &str,
    values: impl IntoIterator<Item = &'a str>,
    ours: &[String],
    required: Requirement,
) -> Authenticity {
    let ours: Vec<String> = ours
        .iter()
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .collect();
    if ours.is_empty() {
        return Authenticity::Off;
    }
    let Some(results) = our_results(values, &ours) else {
        return Authenticity::Unverified(format!(
            "cap Authentication-Results de {}",
            ours.join(", ")
        ));
    };
    let domain = domain_of(from).to_ascii_lowercase();
    let dmarc = results.results.iter().find(|r| {
        r.method == "dmarc"
            && r.prop("header.from").is_none_or(|d| {
                d.trim_start_matches('@') == domain || d.ends_with(&format!("@{domain}"))
            })
    });
    let Some(dmarc) = dmarc else {
        return Authenticity::Unverified(format!(
            "{} no dona cap resultat dmarc per {domain}",
            results.authserv_id
        ));
    };
    let what = format!("{}: dmarc={}", results.authserv_id, dmarc.result);
    match dmarc.result.as_str() {
        "pass" => Authenticity::Pass,
        "fail" => Authenticity::Fail(what),
        "none" | "temperror" => Authenticity::Unverified(what),
        _ if required == Requirement::Dmarc => Authenticity::Fail(what),
        _ => Authenticity::Unverified(what),
    }
}

// ------------------------------------------------------------ address lists

/// A list of addresses or usernames, each literal (case-insensitive) or, when it
/// starts with `^`, a regex (the convention of `mails_no_ticket`).
#[derive(Debug, Clone, Default)]
pub struct NameList {
    literals: Vec<String>,
    patterns: Vec<Regex>,
}

impl NameList {
    /// Compiles the list; the error names the bad pattern.
    pub fn new(items: &[String]) -> Result<NameList, String> {
        let mut list = NameList::default();
        for item in items.iter().map(|i| i.trim()).filter(|i| !i.is_empty()) {
            if item.starts_with('^') {
                let re = Regex::new(item).map_err(|e| format!("{item}: {e}"))?;
                list.patterns.push(re);
            } else {
                list.literals.push(item.to_lowercase());
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.patterns.is_empty()
    }

    pub fn contains(&self, name: &str) -> bool {
        let name = name.trim().to_lowercase();
        !name.is_empty()
            && (self.literals.contains(&name) || self.patterns.iter().any(|p| p.is_match(&name)))
    }
}

/// Whether `address` is in one of `domains` or a subdomain of one.
pub fn in_domains(address: &str, domains: &[String]) -> bool {
    let d = domain_of(address).to_ascii_lowercase();
    !d.is_empty()
        && domains.iter().any(|t| {
            let t = t.trim().trim_start_matches('.').to_ascii_lowercase();
            !t.is_empty() && (d == t || d.ends_with(&format!(".{t}")))
        })
}

// ------------------------------------------------------------ Reply-To

/// How much `Reply-To` is trusted (the configuration, compiled).
#[derive(Debug, Clone, Default)]
pub struct ReplyToPolicy {
    /// `remitents_formulari`: From addresses of the web forms that put the user's
    /// address in Reply-To.
    pub forms: NameList,
    /// `dominis_confiats`: a From in these (after authentication) vouches for its Reply-To.
    pub trusted_domains: Vec<String>,
    /// `confiar_sempre_reply_to`: the old behaviour, Reply-To always wins.
    pub always: bool,
}

/// Why Reply-To was trusted for identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyToTrust {
    /// `confiar_sempre_reply_to = true`.
    Always,
    /// From is a configured form sender.
    FormSender,
    /// From authenticated and in a trusted domain.
    TrustedDomain,
    /// From and Reply-To resolve to the same person.
    SamePerson,
}

impl ReplyToPolicy {
    /// The reasons that need no directory lookup, in order of precedence.
    pub fn trusted_without_lookup(
        &self,
        from: &str,
        authenticity: &Authenticity,
    ) -> Option<ReplyToTrust> {
        if authenticity.failed() {
            return None;
        }
        if self.always {
            return Some(ReplyToTrust::Always);
        }
        if self.forms.contains(from) {
            return Some(ReplyToTrust::FormSender);
        }
        if authenticity.passed() && in_domains(from, &self.trusted_domains) {
            return Some(ReplyToTrust::TrustedDomain);
        }
        None
    }
}

/// Same person: both resolved, to the same username.
pub fn same_person(from_user: Option<&str>, reply_to_user: Option<&str>) -> bool {
    matches!((from_user, reply_to_user), (Some(a), Some(b)) if a.trim() == b.trim() && !a.trim().is_empty())
}

// ------------------------------------------------------------ participants

/// Why a sender is a participant of a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Participant {
    /// The resolved username is the ticket's sol·licitant.
    Requester,
    /// An address of the sender is the ticket's emailSolicitant.
    RequesterAddress,
    /// A requester this program added from the Cc of the ticket's mail.
    CcRequester,
    /// A configured agent (`agents`).
    Agent,
}

/// A requester added from Cc, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CcRequester {
    /// Canonical address as written in the Cc.
    pub address: String,
    pub username: String,
}

/// Whether the sender is a participant of the ticket. `addresses` are the sender's
/// canonical addresses (From, and Reply-To when trusted), `user` its resolved
/// username; `email_solicitant` is the ticket's, in canonical form. A sender whose
/// authentication failed is never a participant.
pub fn participant(
    user: Option<&str>,
    addresses: &[&str],
    authenticity: &Authenticity,
    solicitant: &str,
    email_solicitant: &str,
    cc: &[CcRequester],
    agents: &NameList,
) -> Option<Participant> {
    if authenticity.failed() {
        return None;
    }
    let user = user.map(str::trim).filter(|u| !u.is_empty());
    let addresses: Vec<&str> = addresses
        .iter()
        .map(|a| a.trim())
        .filter(|a| !a.is_empty())
        .collect();
    if let Some(u) = user
        && u == solicitant.trim()
    {
        return Some(Participant::Requester);
    }
    let email = email_solicitant.trim();
    if !email.is_empty() && addresses.iter().any(|a| a.eq_ignore_ascii_case(email)) {
        return Some(Participant::RequesterAddress);
    }
    if cc.iter().any(|c| {
        addresses
            .iter()
            .any(|a| a.eq_ignore_ascii_case(c.address.trim()))
            || user.is_some_and(|u| u == c.username.trim())
    }) {
        return Some(Participant::CcRequester);
    }
    if let Some(u) = user
        && agents.contains(u)
    {
        return Some(Participant::Agent);
    }
    None
}

/// `respostes_no_participants`: what a reply from a non-participant becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NonParticipantReplies {
    /// A private, never-notified comment (default).
    #[default]
    Privat,
    /// A comment as from a participant (the old behaviour).
    Public,
    /// Not a reply: the creation filters handle it (a new ticket).
    Nou,
}

impl NonParticipantReplies {
    pub fn parse(name: &str) -> Option<NonParticipantReplies> {
        match name.trim().to_ascii_lowercase().as_str() {
            "privat" => Some(NonParticipantReplies::Privat),
            "public" => Some(NonParticipantReplies::Public),
            "nou" => Some(NonParticipantReplies::Nou),
            _ => None,
        }
    }
}

/// The comment's kind and notification for one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommentPolicy {
    pub private: bool,
    /// `false` forces esNotificat N; `true` leaves it to the usual rules.
    pub may_notify: bool,
    /// The header line says the sender is not a participant.
    pub marked: bool,
}

/// How a reply is written: the private marker of the subject counts only from a
/// participant; a non-participant with `privat` gets a private, unnotified, marked
/// comment. (`Nou` is decided before: the reply filter does not apply.)
pub fn comment_policy(
    participant: bool,
    marker_in_subject: bool,
    mode: NonParticipantReplies,
) -> CommentPolicy {
    if participant {
        return CommentPolicy {
            private: marker_in_subject,
            may_notify: true,
            marked: false,
        };
    }
    match mode {
        NonParticipantReplies::Privat => CommentPolicy {
            private: true,
            may_notify: false,
            marked: true,
        },
        NonParticipantReplies::Public | NonParticipantReplies::Nou => CommentPolicy {
            private: false,
            may_notify: true,
            marked: false,
        },
    }
}

/// The line (plain text, escaped by the serialiser) put before a non-participant's reply.
pub fn non_participant_line(claimed: &str, authenticity: &Authenticity) -> String {
    if authenticity.failed() {
        format!(
            "[Atenció: el remitent {claimed} no ha superat l'autenticació i no és participant del tiquet; comentari privat sense notificar]"
        )
    } else {
        format!(
            "[Atenció: el remitent {claimed} no és participant del tiquet; comentari privat sense notificar]"
        )
    }
}

/// The line added to a ticket created from a mail whose From failed authentication.
pub fn failed_auth_line(claimed: &str) -> String {
    format!(
        "[Atenció: el remitent declarat {claimed} no ha superat l'autenticació; es tracta com a remitent desconegut]"
    )
}

// ------------------------------------------------------------ counters

/// Keys of the hourly counters kept by the rate store. The From-address key is the
/// bare address, as before issue 10, so existing counts carry over.
pub mod keys {
    /// New tickets of a sender address (authenticated or not checked).
    pub fn sender(address: &str) -> String {
        address.trim().to_lowercase()
    }
    /// New tickets of a sender address whose authentication failed: counted apart,
    /// so that forged mail cannot lock the real owner out.
    pub fn unauthenticated(address: &str) -> String {
        format!("noautenticat:{}", address.trim().to_lowercase())
    }
    /// New tickets of a resolved requester.
    pub fn requester(username: &str) -> String {
        format!("usuari:{}", username.trim())
    }
    /// Comments added to a ticket.
    pub fn ticket_comments(code: &str) -> String {
        format!("comentaris-tiquet:{}", code.trim())
    }
    /// Error reports sent about a sender.
    pub fn report_about(address: &str) -> String {
        format!("informe:{}", address.trim().to_lowercase())
    }
    /// Every error report sent.
    pub const REPORTS: &str = "informes";
    /// Error reports not sent because of a cap.
    pub const REPORTS_SUPPRESSED: &str = "informes-omesos";
    /// Every mail written to the quarantine.
    pub const QUARANTINE: &str = "quarantena";
    /// Mails not quarantined because of the cap.
    pub const QUARANTINE_SUPPRESSED: &str = "quarantena-omesa";
}

/// Whether one more event fits an hourly budget (`0` = unlimited).
pub fn within(count: u32, limit: u32) -> bool {
    limit == 0 || count < limit
}

/// Whether an error report is sent: at most one per sender and hour for REJECT
/// (a flood of refused mail makes one report), and at most `cap` an hour in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportVerdict {
    Send,
    /// Already reported this sender in the last hour.
    AlreadyReported,
    /// The hourly cap of reports is reached.
    Capped,
}

pub fn report_verdict(
    is_reject: bool,
    sent_about_sender: u32,
    sent_in_all: u32,
    cap: u32,
) -> ReportVerdict {
    if is_reject && sent_about_sender > 0 {
        ReportVerdict::AlreadyReported
    } else if !within(sent_in_all, cap) {
        ReportVerdict::Capped
    } else {
        ReportVerdict::Send
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Vec<String> {
        vec!["mx.upc.edu".into()]
    }

    #[test]
    fn parses_rfc8601_examples() {
        let r = parse_authentication_results(
            "example.com; spf=pass smtp.mailfrom=example.net (comment; with semicolon) ;\r\n \
             dkim=pass (good signature) header.d=example.com header.b=\"a;b\"; dmarc=fail (p=reject) header.from=Example.com",
        )
        .unwrap();
        assert_eq!(r.authserv_id, "example.com");
        assert_eq!(r.results.len(), 3, "{r:?}");
        assert_eq!(r.results[0].method, "spf");
        assert_eq!(r.results[0].prop("smtp.mailfrom"), Some("example.net"));
        assert_eq!(r.results[1].prop("header.b"), Some("a;b"));
        assert_eq!(r.results[2].result, "fail");
        assert_eq!(r.results[2].prop("header.from"), Some("example.com"));
        let none = parse_authentication_results("mx.upc.edu 1; none").unwrap();
        assert_eq!(none.authserv_id, "mx.upc.edu");
        assert!(none.results.is_empty());
        let spaced =
            parse_authentication_results("mx.upc.edu; dmarc = pass header.from = upc.edu").unwrap();
        assert_eq!(spaced.results[0].result, "pass");
        assert_eq!(spaced.results[0].prop("header.from"), Some("upc.edu"));
        let versioned =
            parse_authentication_results("(c) mx.upc.edu; dkim/1=pass; dmarc=pass").unwrap();
        assert_eq!(versioned.results[0].method, "dkim");
        assert!(parse_authentication_results("").is_none());
        assert!(parse_authentication_results(" ; dmarc=pass").is_none());
    }

    #[test]
    fn only_the_topmost_of_ours_counts() {
        let headers = [
            "evil.example; dmarc=pass header.from=upc.edu",
            "MX.UPC.EDU; dmarc=fail header.from=upc.edu",
            "mx.upc.edu; dmarc=pass header.from=upc.edu",
        ];
        let r = our_results(headers, &ours()).unwrap();
        assert_eq!(r.results[0].result, "fail");
        assert!(our_results(["evil.example; dmarc=pass"], &ours()).is_none());
        // a look-alike id is not ours
        assert!(our_results(["mx.upc.edu.evil.example; dmarc=pass"], &ours()).is_none());
    }

    #[test]
    fn authenticity_verdicts() {
        let a = |h: &str, req| authenticity("nom@upc.edu", [h], &ours(), req);
        assert_eq!(
            authenticity(
                "x@upc.edu",
                ["mx.upc.edu; dmarc=fail"],
                &[],
                Requirement::Dmarc
            ),
            Authenticity::Off
        );
        assert!(
            a(
                "mx.upc.edu; dmarc=pass header.from=upc.edu",
                Requirement::Dmarc
            )
            .passed()
        );
        assert!(a("mx.upc.edu; dmarc=fail; spf=fail", Requirement::Dmarc).failed());
        assert!(a("mx.upc.edu; dmarc=fail", Requirement::Cap).failed());
        assert!(a("mx.upc.edu; dmarc=permerror", Requirement::Dmarc).failed());
        assert!(!a("mx.upc.edu; dmarc=permerror", Requirement::Cap).failed());
        assert!(matches!(
            a("mx.upc.edu; dmarc=none", Requirement::Dmarc),
            Authenticity::Unverified(_)
        ));
        assert!(matches!(
            a("mx.upc.edu; spf=pass", Requirement::Dmarc),
            Authenticity::Unverified(_)
        ));
        assert!(matches!(
            a("other.example; dmarc=fail", Requirement::Dmarc),
            Authenticity::Unverified(_)
        ));
        // a pass about another domain says nothing about this From
        assert!(
            !a(
                "mx.upc.edu; dmarc=pass header.from=evil.example",
                Requirement::Dmarc
            )
            .passed()
        );
        // comments cannot smuggle a result
        assert!(a("mx.upc.edu; dmarc=fail (dmarc=pass)", Requirement::Dmarc).failed());
    }

    #[test]
    fn name_lists_and_domains() {
        let l = NameList::new(&["Form@UPC.edu".into(), r"^tech\..*$".into()]).unwrap();
        assert!(l.contains("form@upc.edu"));
        assert!(l.contains("tech.anna"));
        assert!(!l.contains("anna"));
        assert!(NameList::new(&["^(".into()]).is_err());
        let d = vec!["upc.edu".to_string()];
        assert!(in_domains("a@upc.edu", &d));
        assert!(in_domains("a@cs.upc.edu", &d));
        assert!(!in_domains("a@evilupc.edu", &d));
        assert!(!in_domains("a@upc.edu.evil.example", &d));
    }

    #[test]
    fn reply_to_trust() {
        let p = ReplyToPolicy {
            forms: NameList::new(&["web@upc.edu".into()]).unwrap(),
            trusted_domains: vec!["upc.edu".into()],
            always: false,
        };
        let off = Authenticity::Off;
        assert_eq!(
            p.trusted_without_lookup("web@upc.edu", &off),
            Some(ReplyToTrust::FormSender)
        );
        assert_eq!(p.trusted_without_lookup("x@evil.example", &off), None);
        // a trusted domain needs authentication
        assert_eq!(p.trusted_without_lookup("x@upc.edu", &off), None);
        assert_eq!(
            p.trusted_without_lookup("x@upc.edu", &Authenticity::Pass),
            Some(ReplyToTrust::TrustedDomain)
        );
        // a failed From vouches for nothing, not even as a form
        assert_eq!(
            p.trusted_without_lookup("web@upc.edu", &Authenticity::Fail("x".into())),
            None
        );
        let always = ReplyToPolicy {
            always: true,
            ..ReplyToPolicy::default()
        };
        assert_eq!(
            always.trusted_without_lookup("x@evil.example", &off),
            Some(ReplyToTrust::Always)
        );
        assert!(same_person(Some("a"), Some("a")));
        assert!(!same_person(Some("a"), Some("b")));
        assert!(!same_person(None, None));
    }

    #[test]
    fn participants() {
        let agents = NameList::new(&["tecnic".into()]).unwrap();
        let cc = vec![CcRequester {
            address: "cc@example.org".into(),
            username: "cc.user".into(),
        }];
        let p = |user: Option<&str>, addr: &str, auth: &Authenticity| {
            participant(
                user,
                &[addr],
                auth,
                "owner",
                "owner@example.org",
                &cc,
                &agents,
            )
        };
        let off = Authenticity::Off;
        assert_eq!(
            p(Some("owner"), "x@upc.edu", &off),
            Some(Participant::Requester)
        );
        assert_eq!(
            p(None, "owner@example.org", &off),
            Some(Participant::RequesterAddress)
        );
        assert_eq!(
            p(None, "cc@example.org", &off),
            Some(Participant::CcRequester)
        );
        assert_eq!(
            p(Some("cc.user"), "other@x.org", &off),
            Some(Participant::CcRequester)
        );
        assert_eq!(
            p(Some("tecnic"), "t@upc.edu", &off),
            Some(Participant::Agent)
        );
        assert_eq!(p(None, "mallory@evil.example", &off), None);
        assert_eq!(p(Some("stranger"), "s@upc.edu", &off), None);
        let failed = Authenticity::Fail("dmarc=fail".into());
        assert_eq!(p(Some("owner"), "owner@example.org", &failed), None);
    }

    #[test]
    fn comment_policies() {
        use NonParticipantReplies::*;
        let c = comment_policy(true, true, Privat);
        assert!(c.private && c.may_notify && !c.marked);
        let c = comment_policy(false, false, Privat);
        assert!(c.private && !c.may_notify && c.marked);
        // the marker only counts from participants
        let c = comment_policy(false, true, Public);
        assert!(!c.private && c.may_notify);
        assert_eq!(NonParticipantReplies::parse(" PUBLIC "), Some(Public));
        assert_eq!(NonParticipantReplies::parse("x"), None);
    }

    #[test]
    fn report_budget() {
        assert_eq!(report_verdict(true, 0, 0, 10), ReportVerdict::Send);
        assert_eq!(
            report_verdict(true, 1, 1, 10),
            ReportVerdict::AlreadyReported
        );
        assert_eq!(report_verdict(false, 1, 1, 10), ReportVerdict::Send);
        assert_eq!(report_verdict(false, 0, 10, 10), ReportVerdict::Capped);
        assert_eq!(report_verdict(false, 0, 1000, 0), ReportVerdict::Send);
        assert!(within(3, 0) && within(2, 3) && !within(3, 3));
    }

    #[test]
    fn the_claimed_address_stays_text_in_the_stored_html() {
        use crate::domain::html::Body;
        let stored = |line: String| {
            let mut b = Body::from_text("hola");
            b.prepend_header(&line);
            b.render().into_string()
        };
        let l = stored(non_participant_line("<b>@x", &Authenticity::Off));
        assert!(l.contains("&lt;b&gt;@x") && !l.contains("<b>"), "{l}");
        let l = stored(failed_auth_line("a&b<img src=x onerror=y>"));
        assert!(l.contains("a&amp;b&lt;img") && !l.contains("<img"), "{l}");
    }
}
