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

/// The first rule that marks the mail as machine-generated, most specific first.
fn detect_automatic(mail: &Mail, skip_list_mail: bool) -> Option<(AutoClass, String)> {
    use AutoClass::*;
    let h = |n: &str| mail.header(n);

    // Loops first: answering them would feed the loop.
    if let Some(v) = h(LOOP_HEADER) {
        return Some((Loop, rule(LOOP_HEADER, v)));
    }
    if let Some(v) = h("X-Loop") {
        return Some((Loop, rule("X-Loop", v)));
    }
    // Outlook puts X-Auto-Response-Suppress on ordinary mail; only with Exchange's
    // inbox-rules loop marker is it a rule-generated message.
    if let (Some(_), Some(v)) = (
        h("X-Auto-Response-Suppress"),
        h("X-MS-Exchange-Inbox-Rules-Loop"),
    ) {
        return Some((Loop, rule("X-MS-Exchange-Inbox-Rules-Loop", v)));
    }

    // Delivery and read notifications.
    if mail.content_type == "multipart/report" {
        let rt = mail.report_type.as_deref().unwrap_or("");
        let class = match rt {
            "disposition-notification" => ReadReceipt,
            "delivery-status" => Bounce,
            _ => AutoReply,
        };
        return Some((
            class,
            format!("Content-Type: multipart/report; report-type={rt}"),
        ));
    }
    if let Some(v) = h("X-Failed-Recipients") {
        return Some((Bounce, rule("X-Failed-Recipients", v)));
    }
    if let Some(v) = h("X-MS-Exchange-Message-Is-Ndr") {
        return Some((Bounce, rule("X-MS-Exchange-Message-Is-Ndr", v)));
    }
    let local = mail.sender().split('@').next().unwrap_or("");
    if local == "mailer-daemon" || local == "postmaster" {
        return Some((Bounce, rule("From", mail.sender())));
    }
    if mail.subject.contains("DELIVERY FAILURE") {
        return Some((Bounce, "Subject: DELIVERY FAILURE".into()));
    }
    for marker in ["Informe de lectura", "Leer informe :", "Llegit:"] {
        if mail.subject.contains(marker) {
            return Some((ReadReceipt, format!("Subject: {marker}")));
        }
    }
    if mail.body_text.contains("Return Receipt") || mail.body_html.contains("Return Receipt") {
        return Some((ReadReceipt, "Body: Return Receipt".into()));
    }

    // Out of office: Exchange's OOF message class, or the subjects clients use.
    if let Some((n, v)) = mail
        .headers
        .iter()
        .find(|(_, v)| v.contains("IPM.Note.Rules.OofTemplate"))
    {
        return Some((OutOfOffice, rule(n, v)));
    }
    if oof_subject(&mail.subject) {
        return Some((OutOfOffice, format!("Subject: {}", mail.subject.trim())));
    }

    // RFC 3834: any Auto-Submitted value but "no".
    if let Some(v) = h("Auto-Submitted") {
        let kw = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if kw != "no" {
            return Some((AutoReply, rule("Auto-Submitted", v)));
        }
    }
    if let Some(v) = h("Precedence") {
        let p = v.trim().to_ascii_lowercase();
        match p.as_str() {
            "bulk" | "junk" => return Some((BulkOrList, rule("Precedence", v))),
            "auto_reply" | "auto-reply" => return Some((AutoReply, rule("Precedence", v))),
            "list" if skip_list_mail => return Some((BulkOrList, rule("Precedence", v))),
            _ => {}
        }
    }
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-AutoReply-From",
        "X-Mail-Autoreply",
    ] {
        if let Some(v) = h(name) {
            return Some((AutoReply, rule(name, v)));
        }
    }
    if let Some(v) = h("Return-Path")
        && v.replace(' ', "") == "<>"
    {
        return Some((Bounce, "Return-Path: <>".into()));
    }
    if skip_list_mail && let Some(v) = h("List-Id") {
        return Some((BulkOrList, rule("List-Id", v)));
    }
    None
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
}
