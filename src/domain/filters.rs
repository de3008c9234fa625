//! Pure decisions of the filters (BEHAVIOUR §5): which filters exist, the ticket
//! number a reply names, private comments, the author and notification rules, and
//! the defaults of a new ticket. The use case (`crate::app`) drives them.

use regex::{Captures, Regex};

use super::mail::Mail;
use super::ticket::{ESTAT_OBERT, NewTicket, TicketInfo};

/// The filters of `filtres`, by their configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterKind {
    Reply,
    ReplyReobrint,
    Nou,
    NouExtern,
}

impl FilterKind {
    /// Every filter, for messages listing the valid names.
    pub const ALL: [FilterKind; 4] = [
        FilterKind::Reply,
        FilterKind::ReplyReobrint,
        FilterKind::Nou,
        FilterKind::NouExtern,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FilterKind::Reply => "reply",
            FilterKind::ReplyReobrint => "reply_reobrint",
            FilterKind::Nou => "nou",
            FilterKind::NouExtern => "nou_extern",
        }
    }

    /// Parses a configuration name (case-insensitive, surrounding blanks ignored).
    pub fn parse(name: &str) -> Option<FilterKind> {
        let n = name.trim().to_ascii_lowercase();
        FilterKind::ALL.into_iter().find(|k| k.name() == n)
    }

    /// Filters that comment an existing ticket (as opposed to creating one).
    pub fn is_reply(self) -> bool {
        matches!(self, FilterKind::Reply | FilterKind::ReplyReobrint)
    }
}

/// Python's `re.match`: a match that starts at the beginning of the text (not
/// necessarily reaching its end). Leftmost-first search returns a match at 0
/// whenever one exists, so checking the start is equivalent to anchoring.
pub fn match_at_start<'t>(re: &Regex, text: &'t str) -> Option<Captures<'t>> {
    re.captures(text)
        .filter(|c| c.get(0).is_some_and(|m| m.start() == 0))
}

/// Where a reply's ticket number was found, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSource {
    InReplyTo,
    References,
    Subject,
}

impl IdSource {
    pub fn label(self) -> &'static str {
        match self {
            IdSource::InReplyTo => "In-Reply-To",
            IdSource::References => "References",
            IdSource::Subject => "Subject",
        }
    }
}

fn group1(re: &Regex, text: &str) -> Option<String> {
    let caps = match_at_start(re, text)?;
    let id = caps.get(1)?.as_str().trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// The ticket number a reply refers to (§5.1): In-Reply-To with `regex_message_id`,
/// else every References id newest first with the same regex, else the subject with
/// `regex_reply`; group 1 of a match at the start.
pub fn find_ticket_id(
    mail: &Mail,
    message_id: &Regex,
    reply: &Regex,
) -> Option<(String, IdSource)> {
    if let Some(id) = mail
        .in_reply_to
        .iter()
        .find_map(|m| group1(message_id, m.trim()))
    {
        return Some((id, IdSource::InReplyTo));
    }
    // The newest reference is the last one: a thread that moved through GN6 several
    // times names the most recent notification last.
    if let Some(id) = mail
        .references
        .iter()
        .rev()
        .find_map(|m| group1(message_id, m.trim()))
    {
        return Some((id, IdSource::References));
    }
    group1(reply, &mail.subject).map(|id| (id, IdSource::Subject))
}

/// A comment is private when `regex_privat` is found anywhere in the subject.
pub fn is_private(subject: &str, privat: &Regex) -> bool {
    privat.is_match(subject)
}

/// Who signs a comment (§5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    /// The sender's own username (identity chain).
    Known(String),
    /// The sender's address is the ticket's emailSolicitant: its sol·licitant.
    TicketRequester(String),
    /// Anyone else: `usuari_extern`.
    External(String),
}

impl Author {
    pub fn username(&self) -> &str {
        match self {
            Author::Known(u) | Author::TicketRequester(u) | Author::External(u) => u,
        }
    }
}

/// The author of a comment: the sender's username when known; else the ticket's
/// requester when one of the sender addresses is the ticket's emailSolicitant; else
/// the external user.
pub fn choose_author(
    found: Option<&str>,
    sender_addresses: &[&str],
    ticket: &TicketInfo,
    usuari_extern: &str,
) -> Author {
    if let Some(u) = found {
        return Author::Known(u.to_string());
    }
    let email = ticket.email_solicitant.trim();
    if !email.is_empty()
        && !ticket.solicitant.trim().is_empty()
        && sender_addresses
            .iter()
            .any(|a| !a.is_empty() && a.trim().eq_ignore_ascii_case(email))
    {
        return Author::TicketRequester(ticket.solicitant.trim().to_string());
    }
    Author::External(usuari_extern.to_string())
}

/// esNotificat of a comment (§5.1): never for a private comment, never when the
/// author is the ticket's own requester, never for automatic mail (a notification
/// answering a robot can start a loop); otherwise the setting.
pub fn notify(
    author: &str,
    ticket: &TicketInfo,
    private: bool,
    notificar_comentaris_afegits: bool,
    automatic: bool,
) -> bool {
    if private || automatic || author == ticket.solicitant.trim() {
        return false;
    }
    notificar_comentaris_afegits
}

/// The fixed defaults of a new ticket (§5.3), before the `valors_defecte` rules.
pub fn new_ticket_defaults(
    solicitant: &str,
    email_solicitant: &str,
    equip_resolutor: &str,
) -> NewTicket {
    NewTicket {
        solicitant: solicitant.to_string(),
        email_solicitant: email_solicitant.to_string(),
        equip_resolutor: equip_resolutor.to_string(),
        enviar_missatge_creacio: "S".into(),
        urgencia: "GRAVETAT_MITJA".into(),
        proces: "PROCES_AUS".into(),
        estat: ESTAT_OBERT.into(),
        enviar_missatge_tancament: "N".into(),
        imputacio_automatica: "N".into(),
        ..NewTicket::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res() -> (Regex, Regex) {
        (
            Regex::new(r"^<[-a-f0-9]+-tiquet-id-([0-9]+)@gn6>$").unwrap(),
            Regex::new(r".*?R[eEvV]:.*?\[Suport Unitat ([\d]+)\]").unwrap(),
        )
    }

    #[test]
    fn parse_names() {
        assert_eq!(FilterKind::parse(" Reply "), Some(FilterKind::Reply));
        assert_eq!(FilterKind::parse("nou_extern"), Some(FilterKind::NouExtern));
        assert_eq!(
            FilterKind::parse("reply_reobrint"),
            Some(FilterKind::ReplyReobrint)
        );
        assert_eq!(FilterKind::parse("nou2"), None);
        for k in FilterKind::ALL {
            assert_eq!(FilterKind::parse(k.name()), Some(k));
        }
    }

    #[test]
    fn match_at_start_is_python_match() {
        let re = Regex::new("b+").unwrap();
        assert!(match_at_start(&re, "bbc").is_some());
        assert!(match_at_start(&re, "abb").is_none());
    }

    #[test]
    fn id_from_in_reply_to() {
        let (m, r) = res();
        let mail = Mail {
            in_reply_to: vec!["<4b3b6b9c-bd31-tiquet-id-657421@gn6>".into()],
            subject: "Re: [Suport Unitat 1]".into(),
            ..Mail::default()
        };
        assert_eq!(
            find_ticket_id(&mail, &m, &r),
            Some(("657421".into(), IdSource::InReplyTo))
        );
    }

    #[test]
    fn id_from_references_newest_first() {
        let (m, r) = res();
        let mail = Mail {
            in_reply_to: vec!["<foo@bar>".into()],
            references: vec![
                "<aa-tiquet-id-1@gn6>".into(),
                "<bb-tiquet-id-2@gn6>".into(),
                "<x@y>".into(),
            ],
            ..Mail::default()
        };
        assert_eq!(
            find_ticket_id(&mail, &m, &r),
            Some(("2".into(), IdSource::References))
        );
    }

    #[test]
    fn id_from_subject_at_start_only() {
        let (m, r) = res();
        let mut mail = Mail {
            subject: "RE: hola [Suport Unitat 77] adeu".into(),
            ..Mail::default()
        };
        assert_eq!(
            find_ticket_id(&mail, &m, &r),
            Some(("77".into(), IdSource::Subject))
        );
        mail.subject = "Hola [Suport Unitat 77]".into();
        assert_eq!(find_ticket_id(&mail, &m, &r), None);
    }

    #[test]
    fn id_regex_must_match_whole_message_id_when_anchored() {
        let (m, r) = res();
        let mail = Mail {
            in_reply_to: vec!["<4b3b-tiquet-id-657421@gn6.example>".into()],
            ..Mail::default()
        };
        assert_eq!(find_ticket_id(&mail, &m, &r), None);
    }

    #[test]
    fn private_anywhere() {
        let p = Regex::new(r"(?i)\(comentari privat\)").unwrap();
        assert!(is_private("Re: [Suport Unitat 3] (Comentari Privat)", &p));
        assert!(!is_private("Re: [Suport Unitat 3]", &p));
    }

    fn ticket() -> TicketInfo {
        TicketInfo {
            solicitant: "pep.garcia".into(),
            email_solicitant: "Pep@Gmail.com".into(),
            ..TicketInfo::default()
        }
    }

    #[test]
    fn author_rules() {
        let t = ticket();
        assert_eq!(
            choose_author(Some("jo"), &["pep@gmail.com"], &t, "ext"),
            Author::Known("jo".into())
        );
        assert_eq!(
            choose_author(None, &["pep@gmail.com"], &t, "ext"),
            Author::TicketRequester("pep.garcia".into())
        );
        assert_eq!(
            choose_author(None, &["other@gmail.com"], &t, "ext"),
            Author::External("ext".into())
        );
        let no_email = TicketInfo::default();
        assert_eq!(
            choose_author(None, &[""], &no_email, "ext"),
            Author::External("ext".into())
        );
    }

    #[test]
    fn notify_rules() {
        let t = ticket();
        assert!(notify("tecnic", &t, false, true, false));
        assert!(!notify("tecnic", &t, false, false, false));
        assert!(!notify("pep.garcia", &t, false, true, false));
        assert!(!notify("tecnic", &t, true, true, false));
        assert!(!notify("tecnic", &t, false, true, true));
    }

    #[test]
    fn defaults_of_new_ticket() {
        let t = new_ticket_defaults("u", "u@x", "42");
        assert_eq!(t.enviar_missatge_creacio, "S");
        assert_eq!(t.urgencia, "GRAVETAT_MITJA");
        assert_eq!(t.proces, "PROCES_AUS");
        assert_eq!(t.estat, "TIQUET_STATUS_OBERT");
        assert_eq!(t.enviar_missatge_tancament, "N");
        assert_eq!(t.imputacio_automatica, "N");
        assert_eq!(t.equip_resolutor, "42");
        assert_eq!(t.client, "");
        assert_eq!(t.assignat_a, "");
    }
}
