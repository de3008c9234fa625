//! Fuzz target (outside the hexagon, a driver like `main`): raw bytes → mail adapter
//! `parse` → domain `classify` → use case `deliver` with in-memory fake ports, plus the
//! HTML cleaner in both modes. Any panic on the way is a bug: the MDA must never
//! crash on a mail, whatever it is.
//!
//! The fakes answer from a hash of the input, so every seed explores one fixed
//! combination (person found or not, ticket open/closed/missing, a failing call) and
//! a one-byte mutation explores another, while a crash stays reproducible.

#![no_main]

mod contain;

use std::cell::Cell;
use std::path::Path;
use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset};
use libfuzzer_sys::fuzz_target;
use mailtoticket::adapters::mail::{AttachmentFilters, parse};
use mailtoticket::app::{Settings, deliver};
use mailtoticket::config::Config;
use mailtoticket::domain::classify::classify;
use mailtoticket::domain::html;
use mailtoticket::domain::identity::Person;
use mailtoticket::domain::ticket::{
    ESTAT_OBERT, ESTAT_TANCAT, NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo,
};
use mailtoticket::ports::{
    Clock, IdentityDirectory, MemoryJournal, NoRateLimit, PortError, TicketSystem,
};

/// The default filters, one default rule, mail cleaning on.
const CONFIG_A: &str = r#"
username_gn6 = "gn6user"
domini = "1234"
equip_resolutor_nous = "98765"
zona_horaria = "Europe/Madrid"
filtrar_attachments_per_nom = ["(?i)\\.exe$", "^image0\\d+\\.(png|gif)$"]
filtrar_attachments_per_hash = ["d41d8cd98f00b204e9800998ecf8427e"]

[[valors_defecte]]
order = ["Subject", "From"]
match = "(?i)urgent"
defaults = { urgencia = "GRAVETAT_ALTA" }
"#;

/// Every filter, the reopening reply, Cc requesters, lists, own addresses, no cleaning.
const CONFIG_B: &str = r#"
username_gn6 = "gn6user"
domini = "1234"
equip_resolutor_nous = "98765"
usuari_extern = "extern"
filtres = ["reply_reobrint", "reply", "nou", "nou_extern"]
afegir_solicitants_addicionals_en_cc = true
assignar_data_resolucio_amb_data_creacio = true
netejar_mail_nou = false
netejar_mail_reply = false
notificar_comentaris_afegits = false
mails_sempre_ticket = ["sempre@upc.edu", "^.*@forced\\.example$"]
mails_no_ticket = ["spam@example.com", "^noreply@"]
skip_list_mail = true
adreces_propies = ["suport@upc.edu"]

[mails_addicionals]
"alias@example.org" = "joan.garcia"
"#;

struct Fixture {
    settings: Settings,
    filters: AttachmentFilters,
}

fn fixture(text: &str) -> Fixture {
    let config = Config::from_toml(text, Path::new("fuzz.toml")).expect("fuzz configuration");
    let settings = Settings::from_config(&config).expect("fuzz settings");
    let filters = AttachmentFilters::new(
        &config.filtrar_attachments_per_nom,
        &config.filtrar_attachments_per_hash,
    )
    .expect("fuzz attachment filters");
    Fixture { settings, filters }
}

fn fixtures() -> &'static [Fixture; 2] {
    static F: OnceLock<[Fixture; 2]> = OnceLock::new();
    F.get_or_init(|| [fixture(CONFIG_A), fixture(CONFIG_B)])
}

/// FNV-1a: cheap, stable across runs, so a crash input reproduces the same fakes.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Draws small choices out of the input's hash.
struct Dice(Cell<u64>);

impl Dice {
    fn roll(&self, sides: u64) -> u64 {
        let v = self.0.get();
        self.0.set(v.rotate_right(7) ^ 0x9e37_79b9_7f4a_7c15);
        v % sides
    }
}

fn error(kind: u64) -> PortError {
    match kind {
        0 => PortError::Transient("connexió refusada".into()),
        1 => PortError::Service {
            code: "-2".into(),
            description: "error de negoci".into(),
        },
        2 => PortError::Fault {
            code: "soapenv:Server".into(),
            message: "NullPointerException".into(),
        },
        _ => PortError::Permanent("resposta incomprensible".into()),
    }
}

struct FakeGn6 {
    dice: Dice,
    next_annex: Cell<u32>,
}

impl FakeGn6 {
    /// One call in 16 fails, in one of the four ways.
    fn maybe_fail(&self) -> Result<(), PortError> {
        if self.dice.roll(16) == 0 {
            Err(error(self.dice.roll(4)))
        } else {
            Ok(())
        }
    }
}

impl TicketSystem for FakeGn6 {
    async fn query_ticket(&self, codi_tiquet: &str) -> Result<Option<TicketInfo>, PortError> {
        self.maybe_fail()?;
        let estat = match self.dice.roll(3) {
            0 => return Ok(None),
            1 => ESTAT_OBERT,
            _ => ESTAT_TANCAT,
        };
        let (solicitant, email) = match self.dice.roll(3) {
            0 => ("joan.garcia", "joan.garcia@upc.edu"),
            1 => ("extern", "someone@example.org"),
            _ => ("", ""),
        };
        Ok(Some(TicketInfo {
            codi_tiquet: codi_tiquet.to_string(),
            estat: estat.into(),
            solicitant: solicitant.into(),
            email_solicitant: email.into(),
            assumpte: "Assumpte".into(),
            descripcio: "<p>Descripció</p>".into(),
            equip_resolutor: "98765".into(),
            ..TicketInfo::default()
        }))
    }

    async fn create_ticket(&self, _ticket: &NewTicket) -> Result<String, PortError> {
        self.maybe_fail()?;
        Ok("700123".into())
    }

    async fn modify_ticket(&self, _changes: &TicketChanges) -> Result<(), PortError> {
        self.maybe_fail()
    }

    async fn add_comment(&self, _comment: &NewComment) -> Result<(), PortError> {
        self.maybe_fail()
    }

    async fn attach_file(&self, _attachment: &NewAttachment<'_>) -> Result<String, PortError> {
        self.maybe_fail()?;
        let n = self.next_annex.get() + 1;
        self.next_annex.set(n);
        Ok(format!("{}", 9000 + n))
    }

    async fn add_requester(&self, _codi_tiquet: &str, _solicitant: &str) -> Result<(), PortError> {
        self.maybe_fail()
    }

    async fn find_tickets(
        &self,
        _solicitant: &str,
        _created_from: &str,
    ) -> Result<Vec<TicketInfo>, PortError> {
        self.maybe_fail()?;
        Ok(Vec::new())
    }
}

struct FakeDirectory {
    dice: Dice,
}

impl IdentityDirectory for FakeDirectory {
    async fn person(&self, cn: &str) -> Result<Option<Person>, PortError> {
        if self.dice.roll(20) == 0 {
            return Err(error(self.dice.roll(4)));
        }
        Ok(match self.dice.roll(3) {
            0 => None,
            1 => Some(Person {
                cn: cn.to_string(),
                email_preferent: Some(format!("{cn}@upc.edu")),
            }),
            _ => Some(Person {
                cn: cn.to_string(),
                email_preferent: None,
            }),
        })
    }

    async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError> {
        if self.dice.roll(20) == 0 {
            return Err(error(self.dice.roll(4)));
        }
        let local = email.split('@').next().unwrap_or_default().to_string();
        Ok(match self.dice.roll(3) {
            0 => Vec::new(),
            1 => vec![local],
            _ => vec![local.clone(), format!("{local}.2")],
        })
    }
}

struct FixedClock(DateTime<FixedOffset>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<FixedOffset> {
        self.0
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("tokio runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    contain::mail_parser_panics();
    let hash = fnv(data);
    let fixture = &fixtures()[(hash & 1) as usize];
    let mail = parse(data, &fixture.filters);

    let _ = classify(&mail, &fixture.settings.classify);
    let _ = html::clean(&mail.body_html, true, false);
    let _ = html::clean(&mail.body_html, false, true);

    let tickets = FakeGn6 {
        dice: Dice(Cell::new(hash >> 1)),
        next_annex: Cell::new(0),
    };
    let directory = FakeDirectory {
        dice: Dice(Cell::new(hash.rotate_left(29))),
    };
    let clock = FixedClock(
        DateTime::parse_from_rfc3339("2025-12-31T23:30:00+00:00").expect("fixed instant"),
    );
    let journal = MemoryJournal::default();
    let first = runtime().block_on(deliver(
        &mail,
        &fixture.settings,
        &tickets,
        &directory,
        &clock,
        &journal,
        &NoRateLimit,
    ));
    // A second run on the same journal is the MTA's retry: it must resume, never panic.
    let second = runtime().block_on(deliver(
        &mail,
        &fixture.settings,
        &tickets,
        &directory,
        &clock,
        &journal,
        &NoRateLimit,
    ));
    // A mail completed once is a duplicate delivery, and a duplicate is a success.
    if first.status == mailtoticket::domain::outcome::Status::Success {
        assert_eq!(
            second.status, first.status,
            "resumed run of a completed mail"
        );
    }
});
