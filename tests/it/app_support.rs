//! Test support for the use case: mockall mocks of both ports, a fixed clock, a
//! journal that fails, and builders for settings and mails.

use std::path::Path;

use chrono::{DateTime, FixedOffset};
use mailtoticket::app::Settings;
use mailtoticket::config::Config;
use mailtoticket::domain::identity::Person;
use mailtoticket::domain::mail::{Attachment, Mail};
use mailtoticket::domain::ticket::{
    NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo,
};
use mailtoticket::ports::{Clock, Journal, MemoryJournal, PortError, Step};

mockall::mock! {
    pub Tickets {}
    impl mailtoticket::ports::TicketSystem for Tickets {
        async fn query_ticket(&self, codi_tiquet: &str) -> Result<Option<TicketInfo>, PortError>;
        async fn find_tickets(&self, solicitant: &str, created_from: &str) -> Result<Vec<TicketInfo>, PortError>;
        async fn create_ticket(&self, ticket: &NewTicket) -> Result<String, PortError>;
        async fn modify_ticket(&self, changes: &TicketChanges) -> Result<(), PortError>;
        async fn add_comment(&self, comment: &NewComment) -> Result<(), PortError>;
        async fn attach_file<'a>(&self, attachment: &NewAttachment<'a>) -> Result<String, PortError>;
        async fn add_requester(&self, codi_tiquet: &str, solicitant: &str) -> Result<(), PortError>;
    }
}

mockall::mock! {
    pub Directory {}
    impl mailtoticket::ports::IdentityDirectory for Directory {
        async fn person(&self, cn: &str) -> Result<Option<Person>, PortError>;
        async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError>;
    }
}

/// A clock stuck at one instant.
pub struct FixedClock(pub DateTime<FixedOffset>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<FixedOffset> {
        self.0
    }
}

/// 2024-03-05 10:07 in Barcelona (winter, +01:00).
pub fn mail_date() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2024-03-05T09:07:00+00:00").unwrap()
}

/// The clock's instant: 2025-12-31 23:30 UTC (already 2026-01-01 in Barcelona).
pub fn clock() -> FixedClock {
    FixedClock(DateTime::parse_from_rfc3339("2025-12-31T23:30:00+00:00").unwrap())
}

/// A journal whose every record fails (a full disk).
#[derive(Default)]
pub struct BrokenJournal;

impl Journal for BrokenJournal {
    fn done(&self, _step: &Step) -> Option<String> {
        None
    }
    fn record(&self, _step: &Step, _value: &str) -> Result<(), PortError> {
        Err(PortError::Permanent("disc ple".into()))
    }
}

pub fn journal() -> MemoryJournal {
    MemoryJournal::default()
}

/// `bus = "sandbox"`: the settings builder then asks for no bus credentials.
pub const BASE: &str = r#"
bus = "sandbox"
username_gn6 = "gn6user"
domini = "1234"
equip_resolutor_nous = "98765"
usuari_extern = "extern"
zona_horaria = "Europe/Madrid"
"#;

/// Settings from the base configuration plus extra TOML (top-level keys first).
pub fn settings(extra: &str) -> Settings {
    let config = Config::from_toml(&format!("{BASE}\n{extra}"), Path::new("test.toml"))
        .expect("test configuration");
    mailtoticket::config::Settings::build(&config)
        .expect("test settings")
        .app
}

/// A plain mail from `from` to suport@upc.edu.
pub fn mail(from: &str, subject: &str, body: &str) -> Mail {
    Mail {
        headers: vec![
            ("From".into(), from.into()),
            ("To".into(), "suport@upc.edu".into()),
            ("Subject".into(), subject.into()),
        ],
        from: vec![from.into()],
        to: vec!["suport@upc.edu".into()],
        subject: subject.into(),
        date: Some(mail_date()),
        message_id: Some("<m1@example.org>".into()),
        content_type: "text/html".into(),
        body_html: body.into(),
        body_text: body.into(),
        ..Mail::default()
    }
}

pub fn attachment(name: &str, content_type: &str, cid: Option<&str>, data: &[u8]) -> Attachment {
    Attachment {
        name: name.into(),
        content_type: content_type.into(),
        content_id: cid.map(Into::into),
        data: data.to_vec(),
    }
}

pub fn transient() -> PortError {
    PortError::Transient("connexió refusada".into())
}

pub fn service() -> PortError {
    PortError::Service {
        code: "-2".into(),
        description: "sol·licitant no trobat".into(),
    }
}

pub fn fault() -> PortError {
    PortError::Fault {
        code: "soapenv:Server".into(),
        message: "NullPointerException".into(),
    }
}

pub fn person(cn: &str, email: Option<&str>) -> Person {
    Person {
        cn: cn.into(),
        email_preferent: email.map(Into::into),
    }
}

pub fn ticket_info(code: &str, estat: &str, solicitant: &str, email: &str) -> TicketInfo {
    TicketInfo {
        codi_tiquet: code.into(),
        estat: estat.into(),
        solicitant: solicitant.into(),
        email_solicitant: email.into(),
        ..TicketInfo::default()
    }
}
