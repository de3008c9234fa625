//! Domain: whether to process a mail at all (BEHAVIOUR §2) — sender lists, then detection
//! of machine-generated mail with RFC 3834 semantics, each rule named for the log.

use std::sync::LazyLock;

use regex::Regex;

use super::mail::Mail;
use super::outcome::LOOP_HEADER;

/// Why a mail is considered machine-generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoClass {
    AutoReply,
    OutOfOffice,
    Bounce,
    ReadReceipt,
    BulkOrList,
    Loop,
}

impl AutoClass {
    /// Short name for logs and fixtures.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoClass::AutoReply => "auto-reply",
            AutoClass::OutOfOffice => "out-of-office",
            AutoClass::Bounce => "bounce",
            AutoClass::ReadReceipt => "read-receipt",
            AutoClass::BulkOrList => "bulk-or-list",
            AutoClass::Loop => "loop",
        }
    }
}

/// The decision of §2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the filters. `forced` when `mails_sempre_ticket` matched.
    Process { forced: bool },
    /// The sender is in `mails_no_ticket`.
    SkipListed { item: String },
    /// Machine-generated: the class and the rule that fired.
    SkipAutomatic { class: AutoClass, rule: String },
}

/// One item of `mails_sempre_ticket` / `mails_no_ticket`, compiled once: starting
/// with `^`, a regex on the lower-cased sender matched case-insensitively; otherwise
/// an exact, case-insensitive address. Surrounding blanks are ignored.
#[derive(Debug, Clone)]
pub struct SenderItem {
    text: String,
    kind: ItemKind,
}

#[derive(Debug, Clone)]
enum ItemKind {
    Address,
    Pattern(Regex),
    /// A regex that does not compile: never matches. [`SenderItem::parse`] refuses it;
    /// only the infallible `From` conversions can make one.
    Invalid(String),
}

impl SenderItem {
    /// Compiles an item with the flags it is matched with; the error is the regex's.
    pub fn parse(text: &str) -> Result<SenderItem, String> {
        let item = Self::from(text);
        match &item.kind {
            ItemKind::Invalid(e) => Err(e.clone()),
            _ => Ok(item),
        }
    }

    /// The item as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `sender` (already lower-cased) is this item.
    pub fn matches(&self, sender: &str) -> bool {
        let item = self.text.trim();
        if item.is_empty() || sender.is_empty() {
            return false;
        }
        match &self.kind {
            ItemKind::Address => item.eq_ignore_ascii_case(sender),
            ItemKind::Pattern(r) => r.is_match(sender),
            ItemKind::Invalid(_) => false,
        }
    }
}

impl From<&str> for SenderItem {
    fn from(text: &str) -> SenderItem {
        let item = text.trim();
        let kind = if item.starts_with('^') {
            match Regex::new(&format!("(?i){item}")) {
                Ok(r) => ItemKind::Pattern(r),
                Err(e) => ItemKind::Invalid(e.to_string()),
            }
        } else {
            ItemKind::Address
        };
        SenderItem {
            text: text.to_string(),
            kind,
        }
    }
}

impl From<String> for SenderItem {
    fn from(text: String) -> SenderItem {
        SenderItem::from(text.as_str())
    }
}

/// Settings that drive the decision. The list items are compiled when built (see
/// [`SenderItem`]); call [`ClassifyOptions::validate`] to refuse a bad regex.
#[derive(Debug, Clone, Default)]
pub struct ClassifyOptions {
    pub mails_sempre_ticket: Vec<SenderItem>,
    pub mails_no_ticket: Vec<SenderItem>,
    /// Skip mailing-list posts (`Precedence: list`, `List-Id`). Default false.
    pub skip_list_mail: bool,
}

impl ClassifyOptions {
    /// Builds validated options; the error names the list and the bad item.
    pub fn new(
        mails_sempre_ticket: Vec<String>,
        mails_no_ticket: Vec<String>,
        skip_list_mail: bool,
    ) -> Result<Self, String> {
        let o = Self {
            mails_sempre_ticket: mails_sempre_ticket.into_iter().map(Into::into).collect(),
            mails_no_ticket: mails_no_ticket.into_iter().map(Into::into).collect(),
            skip_list_mail,
        };
        o.validate()?;
        Ok(o)
    }

    /// Checks every regex item of both lists.
    pub fn validate(&self) -> Result<(), String> {
        for (list, items) in [
            ("mails_sempre_ticket", &self.mails_sempre_ticket),
            ("mails_no_ticket", &self.mails_no_ticket),
        ] {
            for item in items {
                if let ItemKind::Invalid(e) = &item.kind {
                    return Err(format!("{list}: regex invàlida {:?}: {e}", item.text));
                }
            }
        }
        Ok(())
    }
}

/// Decides whether to process the mail.
pub fn classify(mail: &Mail, opts: &ClassifyOptions) -> Decision {
    let sender = mail.sender();
    if opts.mails_sempre_ticket.iter().any(|i| i.matches(sender)) {
        return Decision::Process { forced: true };
    }
    if let Some(item) = opts.mails_no_ticket.iter().find(|i| i.matches(sender)) {
        return Decision::SkipListed {
            item: item.as_str().to_string(),
        };
    }
    match detect_automatic(mail, opts.skip_list_mail) {
        Some((class, rule)) => Decision::SkipAutomatic { class, rule },
        None => Decision::Process { forced: false },
    }
}

static OOF_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:(?:re|fw|fwd|rv)\s*:\s*)?(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?response|autoreply|auto[- ]reply|respuesta autom[aá]tica|resposta autom[aà]tica|fuera de (?:la )?oficina|fora de (?:l'|la )?oficina|r[ée]ponse automatique|abwesenheitsnotiz|(?:abs[èe]ncia|ausencia|absence)(?:\s*[:(\-]|\s*$))",
    )
    .expect("static regex")
});

/// Whether `OOF_SUBJECT` can match at all, without compiling it (its Unicode
/// case-insensitive classes make it the costliest part of a start-up). The regex is
/// anchored: after `\s*` (White_Space, as `char::is_whitespace`) comes either the
/// `re|fw|fwd|rv` prefix or a keyword, all starting with o, a, r or f, letters whose
/// only simple case foldings are their ASCII upper-case forms.
fn oof_may_match(subject: &str) -> bool {
    matches!(
        subject.trim_start().chars().next(),
        Some('o' | 'O' | 'a' | 'A' | 'r' | 'R' | 'f' | 'F')
    )
}

fn oof_subject(subject: &str) -> bool {
    oof_may_match(subject) && OOF_SUBJECT.is_match(subject)
}

fn rule(name: &str, value: &str) -> String {
    format!("{name}: {}", value.trim())
}

/// What the classifier needs besides the mail.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub skip_list_mail: bool,
}

/// One signal of machine-generated mail: documentation and check in one place, so the
/// README table ([`rules_table`]) is the list the classifier runs, in its order.
pub struct Signal {
    /// Stable name, printed by `mailtoticket classify`.
    pub name: &'static str,
    /// What is looked at, as the README shows it.
    pub signal: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// The class given (`None`: documented, never skips by itself).
    pub class: Option<AutoClass>,
    /// Outcome when it fires.
    pub outcome: &'static str,
    /// The check: the rule text for the log when it fires.
    check: fn(&Mail, Context) -> Option<String>,
}

/// The rule that fired and what it saw.
#[derive(Clone, Copy)]
pub struct Hit {
    pub signal: &'static Signal,
    pub class: AutoClass,
}

const SKIP: &str = "skipped";
const BOUNCE: &str =
    "skipped; a bounce of a GN6 notification becomes a private, unnotified comment on its ticket";
const OOF: &str = "skipped; one answering a GN6 notification is counted in the journal";

/// Every signal, most specific first. Loops come first: answering them feeds the loop.
pub static SIGNALS: &[Signal] = &[
    Signal {
        name: "own-loop-marker",
        signal: "`X-Mailtoticket-Loop`",
        meaning: "our own error report (or a mail that went through us)",
        class: Some(AutoClass::Loop),
        outcome: "skipped; never forced through by `mails_sempre_ticket`",
        check: |m, _| h(m, LOOP_HEADER).map(|v| rule(LOOP_HEADER, v)),
    },
    Signal {
        name: "x-loop",
        signal: "`X-Loop`",
        meaning: "a mail loop marker (procmail, list managers, ticket systems)",
        class: Some(AutoClass::Loop),
        outcome: SKIP,
        check: |m, _| h(m, "X-Loop").map(|v| rule("X-Loop", v)),
    },
    Signal {
        name: "exchange-inbox-rule",
        signal: "`X-Auto-Response-Suppress` with `X-MS-Exchange-Inbox-Rules-Loop`",
        meaning: "sent by an Exchange inbox rule",
        class: Some(AutoClass::Loop),
        outcome: SKIP,
        check: |m, _| match (
            h(m, "X-Auto-Response-Suppress"),
            h(m, "X-MS-Exchange-Inbox-Rules-Loop"),
        ) {
            (Some(_), Some(v)) => Some(rule("X-MS-Exchange-Inbox-Rules-Loop", v)),
            _ => None,
        },
    },
    Signal {
        name: "delivery-status-report",
        signal: "`multipart/report; report-type=delivery-status`, or any `message/delivery-status` part (bare, or inside `multipart/mixed`)",
        meaning: "a delivery status notification (RFC 3464), read from the raw MIME structure even when a part cannot be decoded",
        class: Some(AutoClass::Bounce),
        outcome: BOUNCE,
        check: |m, _| {
            report(m, "delivery-status").or_else(|| {
                ["message/delivery-status", "message/global-delivery-status"]
                    .into_iter()
                    .find(|t| m.content_type == *t || m.structure.has_part(t))
                    .map(|t| format!("MIME part {t}"))
            })
        },
    },
    Signal {
        name: "disposition-notification",
        signal: "`multipart/report; report-type=disposition-notification`, or a `message/disposition-notification` part",
        meaning: "a read receipt (RFC 8098)",
        class: Some(AutoClass::ReadReceipt),
        outcome: SKIP,
        check: |m, _| {
            report(m, "disposition-notification").or_else(|| {
                m.structure
                    .has_part("message/disposition-notification")
                    .then(|| "MIME part message/disposition-notification".to_string())
            })
        },
    },
    Signal {
        name: "feedback-report",
        signal: "`multipart/report; report-type=feedback-report`, or a `message/feedback-report` part",
        meaning: "an abuse/feedback-loop report (ARF, RFC 5965)",
        class: Some(AutoClass::AutoReply),
        outcome: SKIP,
        check: |m, _| {
            report(m, "feedback-report").or_else(|| {
                m.structure
                    .has_part("message/feedback-report")
                    .then(|| "MIME part message/feedback-report".to_string())
            })
        },
    },
    Signal {
        name: "other-report",
        signal: "`multipart/report` of any other report type",
        meaning: "a machine-generated report",
        class: Some(AutoClass::AutoReply),
        outcome: SKIP,
        check: |m, _| {
            (m.content_type == "multipart/report").then(|| {
                format!(
                    "Content-Type: multipart/report; report-type={}",
                    m.report_type.as_deref().unwrap_or("")
                )
            })
        },
    },
    Signal {
        name: "x-failed-recipients",
        signal: "`X-Failed-Recipients`",
        meaning: "an Exim (or compatible) bounce",
        class: Some(AutoClass::Bounce),
        outcome: BOUNCE,
        check: |m, _| h(m, "X-Failed-Recipients").map(|v| rule("X-Failed-Recipients", v)),
    },
    Signal {
        name: "exchange-ndr",
        signal: "`X-MS-Exchange-Message-Is-Ndr`",
        meaning: "an Exchange non-delivery report",
        class: Some(AutoClass::Bounce),
        outcome: BOUNCE,
        check: |m, _| {
            h(m, "X-MS-Exchange-Message-Is-Ndr").map(|v| rule("X-MS-Exchange-Message-Is-Ndr", v))
        },
    },
    Signal {
        name: "returned-headers-part",
        signal: "a `text/rfc822-headers` part",
        meaning: "the headers of a returned message: only bounces carry them",
        class: Some(AutoClass::Bounce),
        outcome: BOUNCE,
        check: |m, _| {
            m.structure
                .has_part("text/rfc822-headers")
                .then(|| "MIME part text/rfc822-headers".to_string())
        },
    },
    Signal {
        name: "mailer-daemon",
        signal: "From `MAILER-DAEMON`, `postmaster`, `post_master`, `mail-daemon` (address or display name, also `MAILER-DAEMON <>`)",
        meaning: "the mail system itself writes",
        class: Some(AutoClass::Bounce),
        outcome: BOUNCE,
        check: |m, _| {
            // Local parts are compared case-insensitively: `MAILER-DAEMON`, `Postmaster`.
            let local = m
                .sender()
                .split('@')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if DAEMONS.contains(&local.as_str()) {
                return Some(rule("From", m.sender()));
            }
            let from = h(m, "From").unwrap_or("").to_ascii_lowercase();
            (m.sender().is_empty() && from.contains("mailer-daemon")).then(|| rule("From", &from))
        },
    },
    Signal {
        name: "bounce-subject",
        signal: "Subject starting with a delivery-failure phrase (`Undeliverable:`, `Undelivered Mail Returned to Sender`, `Mail delivery failed`, `Delivery Status Notification (Failure)`, `Returned mail:`, `failure notice`, `DELIVERY FAILURE`, `Non remis`, `Unzustellbar`, `No se puede entregar`, `メールエラー`...)",
        meaning: "the subjects MTAs give their bounces",
        class: Some(AutoClass::Bounce),
        outcome: BOUNCE,
        check: |m, _| {
            // The phrase as the subject writes it.
            bounce_subject(&m.subject).map(|p| {
                let written: String = m
                    .subject
                    .trim_start()
                    .chars()
                    .take(p.chars().count())
                    .collect();
                format!("Subject: {written}")
            })
        },
    },
    Signal {
        name: "no-reply-returning-message",
        signal: "From `no-reply`/`noreply`/`do-not-reply` with a returned `message/rfc822` part",
        meaning: "a carrier or service error notice returning the message (Japanese carriers, gateways)",
        class: Some(AutoClass::Bounce),
        outcome: BOUNCE,
        check: |m, _| {
            let local = m.sender().split('@').next().unwrap_or("");
            (NO_REPLY.contains(&local) && m.structure.has_part("message/rfc822"))
                .then(|| format!("From: {} amb missatge retornat", m.sender()))
        },
    },
    Signal {
        name: "read-receipt-subject",
        signal: "Subject with `Informe de lectura`, `Leer informe :`, `Llegit:`; body `Return Receipt`",
        meaning: "read receipts of clients that send no MDN part",
        class: Some(AutoClass::ReadReceipt),
        outcome: SKIP,
        check: |m, _| {
            for marker in ["Informe de lectura", "Leer informe :", "Llegit:"] {
                if m.subject.contains(marker) {
                    return Some(format!("Subject: {marker}"));
                }
            }
            (m.body_text.contains("Return Receipt") || m.body_html.contains("Return Receipt"))
                .then(|| "Body: Return Receipt".to_string())
        },
    },
    Signal {
        name: "exchange-oof",
        signal: "a header with `IPM.Note.Rules.OofTemplate`",
        meaning: "an Exchange out-of-office message",
        class: Some(AutoClass::OutOfOffice),
        outcome: OOF,
        check: |m, _| {
            m.headers
                .iter()
                .find(|(_, v)| v.contains("IPM.Note.Rules.OofTemplate"))
                .map(|(n, v)| rule(n, v))
        },
    },
    Signal {
        name: "oof-subject",
        signal: "Subject starting `Out of office`, `Automatic reply`, `AUTO:` (Lotus Notes), `Resposta automàtica`, `Fuera de la oficina`, `Absència:`..., or ending `(Automatic Response)`",
        meaning: "the subjects of out-of-office replies",
        class: Some(AutoClass::OutOfOffice),
        outcome: OOF,
        check: |m, _| {
            let s = m.subject.trim();
            // Lotus Notes writes `AUTO:` in capitals; "Auto: ..." is a person's subject.
            (oof_subject(&m.subject)
                || s.starts_with("AUTO: ")
                || s.to_ascii_lowercase().ends_with("(automatic response)"))
            .then(|| format!("Subject: {s}"))
        },
    },
    Signal {
        name: "auto-submitted",
        signal: "`Auto-Submitted` other than `no`",
        meaning: "machine-generated (RFC 3834)",
        class: Some(AutoClass::AutoReply),
        outcome: OOF,
        check: |m, _| {
            let v = h(m, "Auto-Submitted")?;
            let kw = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            (kw != "no").then(|| rule("Auto-Submitted", v))
        },
    },
    Signal {
        name: "precedence-auto-reply",
        signal: "`Precedence: auto_reply`",
        meaning: "an automatic answer",
        class: Some(AutoClass::AutoReply),
        outcome: OOF,
        check: |m, _| {
            let v = h(m, "Precedence")?;
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "auto_reply" | "auto-reply"
            )
            .then(|| rule("Precedence", v))
        },
    },
    Signal {
        name: "precedence-bulk",
        signal: "`Precedence: bulk`, `junk` (and `list` with `skip_list_mail`)",
        meaning: "bulk mail",
        class: Some(AutoClass::BulkOrList),
        outcome: SKIP,
        check: |m, c| {
            let v = h(m, "Precedence")?;
            match v.trim().to_ascii_lowercase().as_str() {
                "bulk" | "junk" => Some(rule("Precedence", v)),
                "list" if c.skip_list_mail => Some(rule("Precedence", v)),
                _ => None,
            }
        },
    },
    Signal {
        name: "x-autoreply",
        signal: "`X-Autoreply`, `X-Autorespond`, `X-AutoReply-From`, `X-Mail-Autoreply`, `X-Auto-Reply`, `X-Autogenerated`",
        meaning: "an autoresponder's own marker",
        class: Some(AutoClass::AutoReply),
        outcome: OOF,
        check: |m, _| {
            AUTOREPLY_HEADERS
                .iter()
                .find_map(|n| h(m, n).map(|v| rule(n, v)))
        },
    },
    Signal {
        name: "null-return-path",
        signal: "`Return-Path: <>`",
        meaning: "the null sender: only notifications are sent with it (RFC 5321 §4.5.5)",
        class: Some(AutoClass::Bounce),
        outcome: BOUNCE,
        check: |m, _| {
            let v = h(m, "Return-Path").or_else(|| m.structure.header("Return-Path"))?;
            (v.replace(' ', "") == "<>").then(|| "Return-Path: <>".to_string())
        },
    },
    Signal {
        name: "list-manager",
        signal: "From `owner-*`, `*-owner`, `*-request`, `*-admin`, `*-bounces` with a list header (`List-Id`, `X-ML-Name`, `X-MLServer`, `X-Mailman-Version`)",
        meaning: "a list manager's own notice (refusal, loop alert, \"you are not member\")",
        class: Some(AutoClass::BulkOrList),
        outcome: SKIP,
        check: |m, _| {
            let local = m.sender().split('@').next().unwrap_or("");
            let admin = local.starts_with("owner-")
                || ["-owner", "-request", "-admin", "-bounces"]
                    .iter()
                    .any(|s| local.ends_with(s));
            if !admin {
                return None;
            }
            LIST_HEADERS
                .iter()
                .find_map(|n| h(m, n).map(|_| format!("From: {} ({n})", m.sender())))
        },
    },
    Signal {
        name: "feedback-id",
        signal: "`Feedback-ID`",
        meaning: "a bulk sender's campaign id (Gmail feedback loop)",
        class: Some(AutoClass::BulkOrList),
        outcome: SKIP,
        check: |m, _| h(m, "Feedback-ID").map(|v| rule("Feedback-ID", v)),
    },
    Signal {
        name: "fax-or-voice-gateway",
        signal: "`multipart/fax-message`, `multipart/voice-message` (RFC 3458)",
        meaning: "a fax-to-mail or voicemail gateway",
        class: Some(AutoClass::AutoReply),
        outcome: SKIP,
        check: |m, _| {
            ["multipart/fax-message", "multipart/voice-message"]
                .into_iter()
                .find(|t| m.content_type == *t || m.structure.has_part(t))
                .map(|t| format!("Content-Type: {t}"))
        },
    },
    Signal {
        name: "list-id",
        signal: "`List-Id` (with `skip_list_mail`)",
        meaning: "a mailing-list post",
        class: Some(AutoClass::BulkOrList),
        outcome: "skipped only when `skip_list_mail = true`; processed otherwise",
        check: |m, c| {
            if !c.skip_list_mail {
                return None;
            }
            h(m, "List-Id").map(|v| rule("List-Id", v))
        },
    },
    Signal {
        name: "x-auto-response-suppress",
        signal: "`X-Auto-Response-Suppress` alone",
        meaning: "Outlook asks not to be auto-answered; it is on ordinary mail too",
        class: None,
        outcome: "processed (only with the inbox-rules loop marker, above, is it automatic)",
        check: |_, _| None,
    },
    Signal {
        name: "disposition-notification-to",
        signal: "`Disposition-Notification-To`, `Return-Receipt-To`",
        meaning: "a person asks for a read receipt",
        class: None,
        outcome: "processed (the gateway never sends receipts)",
        check: |_, _| None,
    },
];

const DAEMONS: &[&str] = &[
    "mailer-daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "post_master",
    "mdaemon",
];
const NO_REPLY: &[&str] = &[
    "no-reply",
    "noreply",
    "do-not-reply",
    "donotreply",
    "no_reply",
];
const AUTOREPLY_HEADERS: &[&str] = &[
    "X-Autoreply",
    "X-Autorespond",
    "X-AutoReply-From",
    "X-Mail-Autoreply",
    "X-Auto-Reply",
    "X-Autogenerated",
];
const LIST_HEADERS: &[&str] = &["List-Id", "X-ML-Name", "X-MLServer", "X-Mailman-Version"];

/// Subjects of bounces, matched at the start (case-insensitive), never after `Re:`.
const BOUNCE_SUBJECTS: &[&str] = &[
    "delivery failure",
    "undeliverable",
    "undelivered mail returned to sender",
    "undelivered mail",
    "mail delivery failed",
    "mail delivery failure",
    "delivery status notification (failure)",
    "delivery status notification (delay)",
    "delivery notification: delivery has failed",
    "returned mail",
    "mail could not be delivered",
    "message could not be delivered",
    "mail delivery warning",
    "failure notice",
    "failed delivery",
    "message delivery failure",
    "non remis",
    "non délivré",
    "unzustellbar",
    "nicht zustellbar",
    "no se puede entregar",
    "no se pudo entregar",
    "no s'ha pogut lliurar",
    "non recapitabile",
    "onbestelbaar",
    "メールエラー",
    "mail error notification",
];

/// Verdicts some gateways append to the returned subject, after ` : `.
const BOUNCE_SUFFIXES: &[&str] = &[" : non remis", " : undeliverable"];

fn bounce_subject(subject: &str) -> Option<&'static str> {
    let s = subject.trim_start().to_lowercase();
    if s.starts_with("your message to ") && s.contains(" could not be delivered") {
        return Some("your message to … could not be delivered");
    }
    // Gateways that append the verdict to the returned subject: `RE: <subject> : non remis`,
    // sometimes glossed in parentheses: `… : non remis (delivery failed)`.
    let end = s.trim_end();
    let unglossed = match end.strip_suffix(')').and_then(|e| e.rfind('(')) {
        Some(open) => end[..open].trim_end(),
        None => end,
    };
    if let Some(x) = BOUNCE_SUFFIXES
        .iter()
        .find(|x| end.ends_with(*x) || unglossed.ends_with(*x))
    {
        return Some(x);
    }
    BOUNCE_SUBJECTS.iter().find(|p| s.starts_with(*p)).copied()
}

fn h<'a>(m: &'a Mail, name: &str) -> Option<&'a str> {
    m.header(name)
}

/// `Content-Type: multipart/report; report-type=RT` of the root, or of any part.
fn report(m: &Mail, rt: &str) -> Option<String> {
    let root = m.content_type == "multipart/report" && m.report_type.as_deref() == Some(rt);
    (root || m.structure.report_types.iter().any(|r| r == rt))
        .then(|| format!("Content-Type: multipart/report; report-type={rt}"))
}

/// The first signal that fires, if any (the lists are not consulted).
pub fn detect(mail: &Mail, ctx: Context) -> Option<(Hit, String)> {
    SIGNALS.iter().find_map(|s| {
        let class = s.class?;
        (s.check)(mail, ctx).map(|detail| (Hit { signal: s, class }, detail))
    })
}

/// The first rule that marks the mail as machine-generated, most specific first.
fn detect_automatic(mail: &Mail, skip_list_mail: bool) -> Option<(AutoClass, String)> {
    detect(mail, Context { skip_list_mail }).map(|(hit, detail)| (hit.class, detail))
}

/// The README table of every signal, generated from [`SIGNALS`].
pub fn rules_table() -> String {
    let mut out = String::from(
        "| # | rule | signal | meaning | class | outcome |\n|---|---|---|---|---|---|\n",
    );
    for (i, s) in SIGNALS.iter().enumerate() {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | {} |\n",
            i + 1,
            s.name,
            s.signal,
            s.meaning,
            s.class.map(AutoClass::as_str).unwrap_or("—"),
            s.outcome
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oof_prefilter_never_hides_a_match() {
        let subjects = [
            "Out of office",
            "  \u{a0}\u{2003}OUT OF THE OFFICE",
            "Re: Automatic reply: hola",
            "FWD : autoreply",
            "rv:Respuesta automática",
            "Resposta automàtica",
            "Réponse automatique",
            "fora de l'oficina",
            "Fuera de la oficina",
            "Abwesenheitsnotiz",
            "Absència: fins dilluns",
            "ausencia",
            "ABſENCE",
            "\tauto-response",
            "Benvingut, mailtoticket!",
            "[Suport Unitat 12] Re: out of office",
            "Ñ out of office",
            "Kout of office",
            "",
            "   ",
        ];
        for s in subjects {
            if OOF_SUBJECT.is_match(s) {
                assert!(oof_may_match(s), "{s:?}");
                assert!(oof_subject(s), "{s:?}");
            } else {
                assert!(!oof_subject(s), "{s:?}");
            }
        }
        assert!(oof_subject("  Out of Office"));
        assert!(!oof_subject("Benvingut"));
    }

    fn mail(headers: &[(&str, &str)]) -> Mail {
        let mut m = Mail {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..Mail::default()
        };
        if let Some(f) = m.header("From").map(str::to_lowercase) {
            m.from = vec![f];
        }
        if let Some(s) = m.header("Subject").map(str::to_string) {
            m.subject = s;
        }
        m
    }

    fn auto(m: &Mail) -> Option<(AutoClass, String)> {
        match classify(m, &ClassifyOptions::default()) {
            Decision::SkipAutomatic { class, rule } => Some((class, rule)),
            _ => None,
        }
    }

    fn class(headers: &[(&str, &str)]) -> Option<AutoClass> {
        auto(&mail(headers)).map(|(c, _)| c)
    }

    const HUMAN: (&str, &str) = ("From", "joan@upc.edu");

    #[test]
    fn human_mail_is_processed() {
        assert_eq!(class(&[HUMAN, ("Subject", "Impressora")]), None);
    }

    #[test]
    fn sempre_ticket_wins_over_everything() {
        let m = mail(&[HUMAN, ("Auto-Submitted", "auto-replied")]);
        let o = ClassifyOptions {
            mails_sempre_ticket: vec!["JOAN@upc.edu".into()],
            mails_no_ticket: vec!["joan@upc.edu".into()],
            ..Default::default()
        };
        assert_eq!(classify(&m, &o), Decision::Process { forced: true });
    }

    #[test]
    fn no_ticket_exact_and_regex() {
        let m = mail(&[HUMAN]);
        let o = ClassifyOptions {
            mails_no_ticket: vec!["^.*@upc\\.edu$".into()],
            ..Default::default()
        };
        assert_eq!(
            classify(&m, &o),
            Decision::SkipListed {
                item: "^.*@upc\\.edu$".into()
            }
        );
        let o = ClassifyOptions {
            mails_no_ticket: vec!["Joan@UPC.edu".into()],
            ..Default::default()
        };
        assert!(matches!(classify(&m, &o), Decision::SkipListed { .. }));
        // An exact item is not a substring match.
        let o = ClassifyOptions {
            mails_no_ticket: vec!["oan@upc.edu".into()],
            ..Default::default()
        };
        assert_eq!(classify(&m, &o), Decision::Process { forced: false });
    }

    #[test]
    fn bad_regex_is_named() {
        let e = ClassifyOptions::new(vec![], vec!["^(".into()], false).unwrap_err();
        assert!(e.contains("mails_no_ticket") && e.contains("^("), "{e}");
    }

    #[test]
    fn auto_submitted_no_is_human() {
        assert_eq!(class(&[HUMAN, ("Auto-Submitted", "no")]), None);
        assert_eq!(class(&[HUMAN, ("Auto-Submitted", "No; comment")]), None);
    }

    #[test]
    fn auto_submitted_values() {
        let (c, r) = auto(&mail(&[HUMAN, ("Auto-Submitted", "auto-replied")])).unwrap();
        assert_eq!(c, AutoClass::AutoReply);
        assert_eq!(r, "Auto-Submitted: auto-replied");
        assert_eq!(
            class(&[HUMAN, ("Auto-Submitted", "auto-generated")]),
            Some(AutoClass::AutoReply)
        );
        // The old test mail: any other value is automatic too.
        assert_eq!(
            class(&[HUMAN, ("Auto-Submitted", "foobar")]),
            Some(AutoClass::AutoReply)
        );
    }

    #[test]
    fn precedence() {
        assert_eq!(
            class(&[HUMAN, ("Precedence", "bulk")]),
            Some(AutoClass::BulkOrList)
        );
        assert_eq!(
            class(&[HUMAN, ("Precedence", "junk")]),
            Some(AutoClass::BulkOrList)
        );
        assert_eq!(
            class(&[HUMAN, ("Precedence", "auto_reply")]),
            Some(AutoClass::AutoReply)
        );
        assert_eq!(class(&[HUMAN, ("Precedence", "list")]), None);
        assert_eq!(class(&[HUMAN, ("Precedence", "first-class")]), None);
    }

    #[test]
    fn list_mail_is_a_config_choice() {
        let m = mail(&[HUMAN, ("List-Id", "<suport.llista.upc.edu>")]);
        assert_eq!(
            classify(&m, &ClassifyOptions::default()),
            Decision::Process { forced: false }
        );
        let o = ClassifyOptions {
            skip_list_mail: true,
            ..Default::default()
        };
        assert!(matches!(
            classify(&m, &o),
            Decision::SkipAutomatic {
                class: AutoClass::BulkOrList,
                ..
            }
        ));
        let m = mail(&[HUMAN, ("Precedence", "list")]);
        assert!(matches!(
            classify(&m, &o),
            Decision::SkipAutomatic {
                class: AutoClass::BulkOrList,
                ..
            }
        ));
    }

    #[test]
    fn x_autoreply_family() {
        for h in [
            "X-Autoreply",
            "X-Autorespond",
            "X-AutoReply-From",
            "X-Mail-Autoreply",
        ] {
            let (c, r) = auto(&mail(&[HUMAN, (h, "yes")])).unwrap();
            assert_eq!(c, AutoClass::AutoReply);
            assert!(r.starts_with(h));
        }
    }

    #[test]
    fn loops() {
        assert_eq!(
            class(&[HUMAN, ("X-Loop", "suport@upc.edu")]),
            Some(AutoClass::Loop)
        );
        assert_eq!(
            class(&[HUMAN, ("X-Mailtoticket-Loop", "1")]),
            Some(AutoClass::Loop)
        );
        // X-Auto-Response-Suppress alone: ordinary Outlook mail.
        assert_eq!(class(&[HUMAN, ("X-Auto-Response-Suppress", "All")]), None);
        assert_eq!(
            class(&[HUMAN, ("X-MS-Exchange-Inbox-Rules-Loop", "a@upc.edu")]),
            None
        );
        assert_eq!(
            class(&[
                HUMAN,
                ("X-Auto-Response-Suppress", "All"),
                ("X-MS-Exchange-Inbox-Rules-Loop", "a@upc.edu")
            ]),
            Some(AutoClass::Loop)
        );
    }

    #[test]
    fn reports() {
        let mut m = mail(&[HUMAN]);
        m.content_type = "multipart/report".into();
        m.report_type = Some("delivery-status".into());
        assert_eq!(auto(&m).unwrap().0, AutoClass::Bounce);
        m.report_type = Some("disposition-notification".into());
        let (c, r) = auto(&m).unwrap();
        assert_eq!(c, AutoClass::ReadReceipt);
        assert!(r.contains("disposition-notification"));
    }

    #[test]
    fn bounce_markers() {
        assert_eq!(
            class(&[HUMAN, ("X-Failed-Recipients", "x@y.com")]),
            Some(AutoClass::Bounce)
        );
        assert_eq!(
            class(&[HUMAN, ("Return-Path", "<>")]),
            Some(AutoClass::Bounce)
        );
        assert_eq!(class(&[HUMAN, ("Return-Path", "<joan@upc.edu>")]), None);
        assert_eq!(
            class(&[("From", "MAILER-DAEMON@mx.upc.edu")]),
            Some(AutoClass::Bounce)
        );
        assert_eq!(
            class(&[("From", "postmaster@upc.edu")]),
            Some(AutoClass::Bounce)
        );
        assert_eq!(
            class(&[HUMAN, ("Subject", "DELIVERY FAILURE: User x not listed")]),
            Some(AutoClass::Bounce)
        );
    }

    #[test]
    fn read_receipt_markers() {
        for s in [
            "Informe de lectura: hola",
            "Leer informe : hola",
            "Llegit: hola",
        ] {
            assert_eq!(
                class(&[HUMAN, ("Subject", s)]),
                Some(AutoClass::ReadReceipt),
                "{s}"
            );
        }
        let mut m = mail(&[HUMAN]);
        m.body_text = "Return Receipt\nYour document was read".into();
        assert_eq!(auto(&m).unwrap().0, AutoClass::ReadReceipt);
    }

    #[test]
    fn out_of_office() {
        for s in [
            "Out of Office: Impressora",
            "Automatic reply: Impressora",
            "Respuesta automática: hola",
            "Fuera de la oficina",
            "Absència: vacances",
            "RE: Out of office",
        ] {
            assert_eq!(
                class(&[HUMAN, ("Subject", s)]),
                Some(AutoClass::OutOfOffice),
                "{s}"
            );
        }
        assert_eq!(
            class(&[HUMAN, ("Subject", "Absència del professor dilluns")]),
            None
        );
        assert_eq!(
            class(&[
                HUMAN,
                (
                    "X-MS-Exchange-Message-Class",
                    "IPM.Note.Rules.OofTemplate.Microsoft"
                )
            ]),
            Some(AutoClass::OutOfOffice)
        );
        // OOF is more specific than the generic Auto-Submitted rule.
        assert_eq!(
            class(&[
                HUMAN,
                ("Auto-Submitted", "auto-replied"),
                ("Subject", "Automatic reply: x")
            ]),
            Some(AutoClass::OutOfOffice)
        );
    }

    fn structured(root: &str, parts: &[&str]) -> Mail {
        let mut m = mail(&[HUMAN]);
        m.content_type = root.into();
        m.structure.part_types = std::iter::once(root)
            .chain(parts.iter().copied())
            .map(String::from)
            .collect();
        m
    }

    #[test]
    fn structural_dsn_shapes_are_bounces() {
        // A bare message/delivery-status mail.
        let m = structured("message/delivery-status", &[]);
        assert_eq!(auto(&m).unwrap().0, AutoClass::Bounce);
        // A DSN inside multipart/mixed.
        let m = structured(
            "multipart/mixed",
            &["text/plain", "message/delivery-status", "message/rfc822"],
        );
        let (c, r) = auto(&m).unwrap();
        assert_eq!(
            (c, r.as_str()),
            (AutoClass::Bounce, "MIME part message/delivery-status")
        );
        // The report type read by the raw walker when the parser saw no multipart/report
        // (a part it could not decode).
        let mut m = structured("text/plain", &[]);
        m.structure.report_types = vec!["delivery-status".into()];
        assert_eq!(auto(&m).unwrap().0, AutoClass::Bounce);
        // Returned headers only.
        let m = structured("multipart/mixed", &["text/plain", "text/rfc822-headers"]);
        assert_eq!(auto(&m).unwrap().0, AutoClass::Bounce);
        // A person forwarding a message is not a bounce.
        let m = structured("multipart/mixed", &["text/plain", "message/rfc822"]);
        assert_eq!(auto(&m), None);
    }

    #[test]
    fn null_return_path_from_the_raw_headers() {
        let mut m = mail(&[HUMAN]);
        m.structure.headers = vec![("Return-Path".into(), "< >".into())];
        assert_eq!(auto(&m).unwrap().0, AutoClass::Bounce);
    }

    #[test]
    fn mailer_daemon_with_an_empty_address() {
        let mut m = mail(&[("From", "MAILER-DAEMON <>"), ("Subject", "Hola")]);
        m.from.clear();
        assert_eq!(auto(&m).unwrap().0, AutoClass::Bounce);
        assert_eq!(
            class(&[("From", "post_master@vtext.example.com")]),
            Some(AutoClass::Bounce)
        );
    }

    #[test]
    fn bounce_subjects_at_the_start_only() {
        for s in [
            "Mail delivery failed: returning message to sender",
            "Undeliverable: Tiquet 12",
            "failure notice",
            "Delivery Status Notification (Failure)",
            "メールエラー通知",
            "Unzustellbar: Hallo",
            "Returned Mail - Error During Delivery",
            "Mail could not be delivered",
            "Mail Delivery Warning",
            "Your message to joan@example.it could not be delivered.",
            "RE: Your message to GPC-talk awaits moderator approval : non remis",
            "RE: Your message to GPC-talk awaits moderator approval : non remis\t(delivery failed)",
        ] {
            assert_eq!(
                class(&[HUMAN, ("Subject", s)]),
                Some(AutoClass::Bounce),
                "{s}"
            );
        }
        assert_eq!(
            class(&[HUMAN, ("Subject", "Re: Undeliverable: Tiquet 12")]),
            None
        );
        assert_eq!(
            class(&[HUMAN, ("Subject", "Què vol dir failure notice?")]),
            None
        );
    }

    #[test]
    fn carrier_notice_from_no_reply_returning_the_message() {
        let mut m = structured("multipart/mixed", &["text/plain", "message/rfc822"]);
        m.from = vec!["no-reply@carrier.example.jp".into()];
        assert_eq!(auto(&m).unwrap().0, AutoClass::Bounce);
        m.structure.part_types.pop();
        assert_eq!(
            auto(&m),
            None,
            "no-reply alone is a notification, not proof"
        );
    }

    #[test]
    fn lotus_and_aol_out_of_office() {
        assert_eq!(
            class(&[
                HUMAN,
                (
                    "Subject",
                    "AUTO: Smith, John is out of the office. (returning 05/01)"
                )
            ]),
            Some(AutoClass::OutOfOffice)
        );
        assert_eq!(
            class(&[HUMAN, ("Subject", "Re:   flowers (Automatic Response)")]),
            Some(AutoClass::OutOfOffice)
        );
        assert_eq!(
            class(&[HUMAN, ("Subject", "Auto: renting, a question")]),
            None
        );
    }

    #[test]
    fn list_manager_notices() {
        assert_eq!(
            class(&[
                ("From", "2ndml-admin@example.com"),
                ("X-MLServer", "fml 4.0")
            ]),
            Some(AutoClass::BulkOrList)
        );
        assert_eq!(
            class(&[
                ("From", "suport-owner@llistes.upc.edu"),
                ("List-Id", "<suport.llistes.upc.edu>")
            ]),
            Some(AutoClass::BulkOrList)
        );
        // A person posting to a list is not a notice of the list manager.
        assert_eq!(
            class(&[HUMAN, ("List-Id", "<suport.llistes.upc.edu>")]),
            None
        );
        // An -admin mailbox writing without list headers is a person.
        assert_eq!(class(&[("From", "sys-admin@upc.edu")]), None);
    }

    #[test]
    fn feedback_reports_fax_and_feedback_id() {
        let mut m = mail(&[HUMAN]);
        m.content_type = "multipart/report".into();
        m.report_type = Some("feedback-report".into());
        assert_eq!(
            detect(
                &m,
                Context {
                    skip_list_mail: false
                }
            )
            .unwrap()
            .0
            .signal
            .name,
            "feedback-report"
        );
        let m = structured("multipart/fax-message", &["text/plain", "image/tiff"]);
        assert_eq!(auto(&m).unwrap().0, AutoClass::AutoReply);
        assert_eq!(
            class(&[HUMAN, ("Feedback-ID", "1:campaign:esp")]),
            Some(AutoClass::BulkOrList)
        );
    }

    #[test]
    fn every_rule_that_can_fire_has_a_class_and_unique_name() {
        let mut names: Vec<&str> = SIGNALS.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SIGNALS.len());
        let table = rules_table();
        for s in SIGNALS {
            assert!(table.contains(&format!("`{}`", s.name)));
        }
    }
}
