//! The use case: one decoded mail in, one delivery outcome out, through the ports.
//! Classification (§2), then the configured filters (§5) in order; every side effect
//! is checked against and recorded in the delivery journal so a re-run resumes.
//!
//! Journal rules (issue 5): a step is looked up with `Journal::done` before its call
//! and recorded with `Journal::record` right after it succeeds; a record failure stops
//! the run with TEMPFAIL. `Completed` is recorded only on SUCCESS, and a mail already
//! completed returns SUCCESS at once without any call. A mail that already created a
//! ticket never tries the reply filters again, and one that already commented never
//! tries the creation filters, so a resumed run cannot take the other path. Read-only
//! calls (ConsultaTiquetsDades, the directory) are repeated on a resume.
//!
//! Unknown outcomes (issue 5, "never a second ticket"): GN6 may act on a call whose
//! answer is then lost (a timeout after it processed the request, a truncated answer).
//! So before each call that is not idempotent — AltaTiquet, AnnexarFitxerTiquet N,
//! AfegirComentariTiquet — an intent record (`Step::Intent`, key `pending:STEP`, value
//! the day as `dd-mm-yyyy`) goes to the journal; an intent without its step on a
//! resume means "outcome unknown", and the policy depends on what GN6 lets us check:
//! - AltaTiquet: look before creating again. `TicketSystem::find_tickets` lists the
//!   requester's tickets created since the day before the intent; one with the same
//!   requester and subject whose description starts with this mail's own
//!   `[Tiquet creat des del correu de FROM a TO del DD/MM/YYYY a les HH:MM]` header is
//!   adopted (recorded as `TicketCreated`, the run goes on with its attachments). No
//!   match: create. A failed search stops the run (TEMPFAIL/ERROR), never a blind create.
//! - AnnexarFitxerTiquet and AfegirComentariTiquet: GN6's API has no operation listing
//!   a ticket's attachments or comments, so they cannot be checked. The rule is "never
//!   lost" first: the call is made again, at the risk of a duplicate file or comment,
//!   with the warning "Resultat desconegut de ...: es torna a enviar (possible duplicat)".
//!
//! An intent that cannot be recorded stops the run before the call (TEMPFAIL).
//!
//! Loop protection (issue 5 §4): our own loop marker, the gateway's own addresses and
//! GN6's own notifications are skipped before any list can force them through
//! ([`loop_rule`]); a sender gets at most `max_tickets_per_hour` new tickets an hour
//! ([`RateLimit`]); automatic mail forced through never reopens nor notifies.
//! [`deliver_with_deadline`] bounds the whole mail; retries of read-only calls live in
//! the `adapters::retry` decorator, so the use case never repeats a call itself.

mod bounce;
pub mod budget;
mod filters;
mod handle;
mod hourly;
pub mod identity;
pub mod permanent;

pub use filters::ATTACHMENT_FAILED_PREFIX;
pub use handle::{Handled, MAIL_SPAN, MailPorts, handle, mail_span};

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDateTime};
use chrono_tz::Tz;
use regex::Regex;
use tracing::{info, warn};

use crate::domain::classify::{self, AutoClass, ClassifyOptions, Decision};
use crate::domain::filters::FilterKind;
use crate::domain::identity::IdentityRules;
use crate::domain::mail::Mail;
use crate::domain::outcome::{LOOP_HEADER, Status};
use crate::domain::rules::Rule;
use crate::ports::{Clock, Journal, PortError, RateLimit, Step, TicketSystem};

/// Settings of the use case, validated and compiled once (by
/// `crate::config::Settings::build`, the only constructor): domain types only.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `filtres`, in order.
    pub filters: Vec<FilterKind>,
    pub classify: ClassifyOptions,
    /// `valors_defecte`, compiled.
    pub rules: Vec<Rule>,
    /// Rewrites, `mails_addicionals`, `patrons_mail_addicionals`.
    pub identity: IdentityRules,
    pub regex_reply: Regex,
    pub regex_privat: Regex,
    pub regex_message_id: Regex,
    /// `afegir_solicitants_addicionals_en_cc_nomes_via`, when set.
    pub cc_via: Option<Regex>,
    /// `zona_horaria`, else the server's zone read at load time; `None` = the offset
    /// of the clock's `now()` (when the server's zone could not be told).
    pub time_zone: Option<Tz>,
    /// `adreces_propies` plus `notificar_errors_from`, bare and in canonical form.
    pub own_addresses: Vec<String>,
    /// `equip_resolutor_nous`.
    pub equip_resolutor_nous: String,
    /// `usuari_extern`, trimmed (required by `nou_extern`).
    pub usuari_extern: String,
    pub notificar_comentaris_afegits: bool,
    pub netejar_mail_nou: bool,
    pub netejar_mail_reply: bool,
    pub assignar_data_resolucio_amb_data_creacio: bool,
    pub afegir_solicitants_addicionals_en_cc: bool,
    /// The identity chain in order (`directoris`, else the old order).
    pub directories: Vec<identity::Source>,
    /// `directoris_opcionals`: their failure counts as "not found".
    pub optional_directories: Vec<identity::Source>,
    pub limits: Limits,
    pub reports: ReportPolicy,
    /// Who may write into a ticket, and as whom (issue 10).
    pub trust: TrustSettings,
}

/// The issue-10 settings, compiled (see `crate::domain::trust`); built with the
/// rest by `config::Settings::build`.
#[derive(Debug, Clone, Default)]
pub struct TrustSettings {
    /// `agents`.
    pub agents: crate::domain::trust::NameList,
    /// `respostes_no_participants`.
    pub non_participants: crate::domain::trust::NonParticipantReplies,
    /// `autenticacio_servidor`, trimmed, empty ones dropped.
    pub servers: Vec<String>,
    /// `autenticacio_requerida`.
    pub required: crate::domain::trust::Requirement,
    /// `remitents_formulari`, `dominis_confiats`, `confiar_sempre_reply_to`.
    pub reply_to: crate::domain::trust::ReplyToPolicy,
}

/// Limits of one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `max_tickets_per_hour`: new tickets per sender and hour; 0 = unlimited.
    pub max_tickets_per_hour: u32,
    /// `deadline_secs`: the whole mail, start to end.
    pub deadline: Duration,
    /// `max_comentaris_per_tiquet_hora`: comments per ticket and hour; 0 = unlimited.
    pub max_comments_per_ticket_hour: u32,
    /// `[limits]`: size, attachments, subject, HTML depth (issue 9).
    pub mail: crate::domain::limits::Limits,
    /// `max_calls_per_mail`: bus calls for look-ups, requesters and uploads (issue 19 §3).
    pub max_calls_per_mail: usize,
}

/// When an error report is due (`notificar_errors`, `notificar_errors_skip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportPolicy {
    pub enabled: bool,
    pub on_skip: bool,
    /// `max_informes_per_hora`: reports per hour in all (and one per sender and hour
    /// for REJECT); 0 = unlimited.
    pub max_per_hour: u32,
    /// `max_quarantena_per_hora`: quarantined mails per hour; 0 = unlimited.
    pub max_quarantined_per_hour: u32,
}

/// The bare address of `Name <a@b>` or `a@b`, lower-cased.
pub(crate) fn bare_address(text: &str) -> String {
    let t = text.trim();
    let inner = match (t.rfind('<'), t.rfind('>')) {
        (Some(a), Some(b)) if a < b => &t[a + 1..b],
        _ => t,
    };
    inner.trim().to_lowercase()
}

impl Settings {
    /// A time in the zone of the ticket texts: `zona_horaria`, else the offset the
    /// clock reports for now (the server's local zone, as the old program wrote).
    pub fn local_time(
        &self,
        when: &DateTime<FixedOffset>,
        now: &DateTime<FixedOffset>,
    ) -> NaiveDateTime {
        match self.time_zone {
            Some(tz) => when.with_timezone(&tz).naive_local(),
            None => when.with_timezone(now.offset()).naive_local(),
        }
    }
}

/// What happened to one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub status: Status,
    /// The filter that decided, if any.
    pub filter: Option<String>,
    /// The ticket created or commented, if any.
    pub ticket: Option<String>,
    /// One line for the log and the error report.
    pub reason: String,
    /// The class of an automatic mail (`bounce`, `out-of-office`...), when classified so.
    pub class: Option<String>,
    /// The requester of the new ticket or the author of the comment, when known.
    pub requester: Option<String>,
}

impl Delivery {
    fn new(status: Status, reason: impl Into<String>) -> Delivery {
        Delivery {
            status,
            filter: None,
            ticket: None,
            reason: reason.into(),
            class: None,
            requester: None,
        }
    }
}

/// Stable names of the automatic classes, for the log and `Delivery::class`.
pub fn class_name(class: AutoClass) -> &'static str {
    match class {
        AutoClass::AutoReply => "auto-reply",
        AutoClass::OutOfOffice => "out-of-office",
        AutoClass::Bounce => "bounce",
        AutoClass::ReadReceipt => "read-receipt",
        AutoClass::BulkOrList => "bulk/list",
        AutoClass::Loop => "loop",
    }
}

/// Loop protection beyond the classifier's headers (issue 5): the rule that makes
/// this mail one of our own or GN6's own, if any. Checked before `mails_sempre_ticket`
/// can force anything through, since no list should be able to start a loop.
pub fn loop_rule(mail: &Mail, settings: &Settings) -> Option<String> {
    // Our own marker, on every error report we send: the classifier knows it too, but
    // here `mails_sempre_ticket` cannot override it.
    if let Some(v) = mail.header(LOOP_HEADER) {
        return Some(format!("{LOOP_HEADER}: {}", v.trim()));
    }
    if !settings.own_addresses.is_empty() {
        for from in &mail.from {
            let address = settings.identity.canonical(&bare_address(from));
            if settings.own_addresses.contains(&address) {
                return Some(format!("adreça pròpia {address}"));
            }
        }
    }
    // GN6 writes its notifications with its own Message-ID form. One that is not a
    // reply to anything is GN6 talking to itself through us: processing it would
    // make a ticket (or a comment) out of a notification about a ticket.
    if let Some(id) = mail.message_id.as_deref().map(str::trim)
        && settings.regex_message_id.is_match(id)
        && mail.in_reply_to.is_empty()
        && mail.references.is_empty()
        && !settings.regex_reply.is_match(&mail.subject)
    {
        return Some(format!("Message-ID de GN6 {id}"));
    }
    None
}

/// A mail the journal says was handled completely before: SUCCESS at once, without
/// any call (a duplicate delivery).
/// Reason of a duplicate delivery (the journal says the mail was handled).
pub const DUPLICATE_REASON: &str = "entrega duplicada: ja tractat";

fn already_done(journal: &dyn Journal) -> Option<Delivery> {
    let status = journal.done(&Step::Completed)?;
    let ticket = journal
        .done(&Step::TicketCreated)
        .or_else(|| journal.done(&Step::CommentAdded));
    info!(
        "Entrega duplicada: el mail ja es va tractar ({status}), tiquet {}",
        ticket.as_deref().unwrap_or("-")
    );
    let mut d = Delivery::new(Status::Success, DUPLICATE_REASON);
    d.ticket = ticket;
    Some(d)
}

/// What the use case works through for one decoded mail.
pub struct Ports<'a, T, I> {
    /// GN6.
    pub tickets: &'a T,
    /// The identity directory (Persones).
    pub identity: &'a I,
    pub clock: &'a dyn Clock,
    /// This mail's delivery journal.
    pub journal: &'a dyn Journal,
    /// New tickets per sender, for `max_tickets_per_hour`.
    pub rate: &'a dyn RateLimit,
}

/// Handles one mail: classification, then the filters in order.
///
/// `ports.rate` counts the new tickets per sender for `max_tickets_per_hour`.
///
/// A mail forced through by `mails_sempre_ticket` although it looks automatic gets
/// no creation notice (`enviarMissatgeCreacio` N), no comment notification and never
/// reopens a ticket: answering a robot is how mail loops start.
pub async fn deliver<T, I>(mail: &Mail, settings: &Settings, ports: &Ports<'_, T, I>) -> Delivery
where
    T: TicketSystem,
    I: identity::UserLookup,
{
    let decision = classify::classify(mail, &settings.classify);
    deliver_decided(mail, settings, ports, &decision).await
}

/// [`deliver`] with the classification (§2) already made, so that the caller that
/// also needs it (the summary line) classifies only once.
pub(crate) async fn deliver_decided<T, I>(
    mail: &Mail,
    settings: &Settings,
    ports: &Ports<'_, T, I>,
    decision: &Decision,
) -> Delivery
where
    T: TicketSystem,
    I: identity::UserLookup,
{
    let journal = ports.journal;
    if let Some(d) = already_done(journal) {
        return d;
    }

    // Hard limits (issue 9): permanent, so the MTA does not retry what cannot pass.
    if let Some(exceeded) = crate::domain::limits::check(mail, &settings.limits.mail) {
        let reason = exceeded.reason();
        warn!("Mail rebutjat per un límit: {reason}");
        return Delivery::new(Status::Reject, reason);
    }

    if let Some(rule) = loop_rule(mail, settings) {
        let name = class_name(AutoClass::Loop);
        info!("Mail automàtic ({name}, regla {rule}): no el tracto");
        let mut d = Delivery::new(Status::Skip, format!("mail automàtic: {name} ({rule})"));
        d.class = Some(name.to_string());
        return d;
    }

    let automatic = match decision {
        Decision::SkipListed { item } => {
            info!("Remitent a mails_no_ticket ({item}): no el tracto");
            return Delivery::new(Status::Skip, format!("mails_no_ticket: {item}"));
        }
        Decision::SkipAutomatic {
            class: AutoClass::Bounce,
            rule,
        } => {
            let d = bounce::bounce(mail, settings, ports, rule).await;
            return completed(d, journal);
        }
        Decision::SkipAutomatic { class, rule } => {
            let name = class_name(*class);
            info!("Mail automàtic ({name}, regla {rule}): no el tracto");
            let mut d = Delivery::new(Status::Skip, format!("mail automàtic: {name} ({rule})"));
            d.class = Some(name.to_string());
            if matches!(class, AutoClass::OutOfOffice | AutoClass::AutoReply)
                && let Some(code) = bounce::note_reply_to_notification(mail, settings, journal)
            {
                d.reason = format!("{}: resposta a una notificació del tiquet {code}", d.reason);
                d.ticket = Some(code);
            }
            return d;
        }
        Decision::Process { forced: false } => None,
        Decision::Process { forced: true } => {
            // Would it have been skipped as automatic without mails_sempre_ticket?
            let mut opts = settings.classify.clone();
            opts.mails_sempre_ticket.clear();
            opts.mails_no_ticket.clear();
            match classify::classify(mail, &opts) {
                // A bounce never creates, reopens or notifies: no list forces one through.
                Decision::SkipAutomatic {
                    class: AutoClass::Bounce,
                    rule,
                } => {
                    let d = bounce::bounce(mail, settings, ports, &rule).await;
                    return completed(d, journal);
                }
                Decision::SkipAutomatic { class, rule } => {
                    info!(
                        "Mail automàtic ({}, regla {rule}) acceptat per mails_sempre_ticket: sense notificacions",
                        class_name(class)
                    );
                    Some(class_name(class).to_string())
                }
                _ => None,
            }
        }
    };

    let names: Vec<&str> = settings.filters.iter().map(|k| k.name()).collect();
    info!("Vaig a provar filtres {names:?}");
    // Bus calls of the variable kind are bounded per mail; look-ups are cached.
    let budget = budget::CallBudget::new(settings.limits.max_calls_per_mail);
    let identity = budget::BudgetedDirectory::new(ports.identity, &budget);
    let budgeted = Ports {
        tickets: ports.tickets,
        identity: &identity,
        clock: ports.clock,
        journal: ports.journal,
        rate: ports.rate,
    };
    let mut run = filters::Run::new(mail, settings, &budgeted, automatic.is_some(), &budget);
    let mut delivery = run.run_filters().await;
    delivery.class = automatic;
    completed(delivery, journal)
}

/// Only a success closes the record: a REJECT or ERROR must be retried in full
/// by `reprocess` once the cause is fixed (the steps done so far stay recorded).
fn completed(mut delivery: Delivery, journal: &dyn Journal) -> Delivery {
    if delivery.status == Status::Success
        && let Err(e) = journal.record(&Step::Completed, Status::Success.as_header())
    {
        warn!("No puc registrar el final de l'entrega al diari: {e}");
        delivery.status = Status::TempFail;
        delivery.reason = format!("diari: {e}");
    }
    delivery
}

tokio::task_local! {
    /// Set by [`deliver_with_deadline`]: whether the run is inside CPU-bound work.
    static CPU_STAGE: std::sync::Arc<std::sync::atomic::AtomicBool>;
}

/// Marks the CPU-bound part of a run (parsing and cleaning the body) from `enter` to
/// `leave`. Not cleared on drop: when the deadline drops the run inside that part, the
/// mark must still be there for [`deliver_with_deadline`] to read.
pub(crate) struct CpuStage(Option<std::sync::Arc<std::sync::atomic::AtomicBool>>);

impl CpuStage {
    pub(crate) fn enter() -> CpuStage {
        let flag = CPU_STAGE.try_with(|f| f.clone()).ok();
        if let Some(f) = &flag {
            f.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        CpuStage(flag)
    }
}

impl CpuStage {
    pub(crate) fn leave(self) {
        if let Some(f) = &self.0 {
            f.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// [`deliver`] within an overall deadline. On expiry the run is dropped where it
/// stands and the mail is TEMPFAIL: every step completed so far is in the journal,
/// so the MTA's retry resumes instead of repeating them.
pub async fn deliver_with_deadline<T, I>(
    mail: &Mail,
    settings: &Settings,
    ports: &Ports<'_, T, I>,
    deadline: Duration,
) -> Delivery
where
    T: TicketSystem,
    I: identity::UserLookup,
{
    let decision = classify::classify(mail, &settings.classify);
    decided_with_deadline(mail, settings, ports, &decision, deadline).await
}

pub(crate) async fn decided_with_deadline<T, I>(
    mail: &Mail,
    settings: &Settings,
    ports: &Ports<'_, T, I>,
    decision: &Decision,
    deadline: Duration,
) -> Delivery
where
    T: TicketSystem,
    I: identity::UserLookup,
{
    let run = deliver_decided(mail, settings, ports, decision);
    let cpu = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let timed = CPU_STAGE.scope(cpu.clone(), tokio::time::timeout(deadline, run));
    match timed.await {
        Ok(delivery) => delivery,
        Err(_) if cpu.load(std::sync::atomic::Ordering::SeqCst) => {
            // Pure CPU work on this mail's own content, no I/O waited on: a retry
            // would take as long again. Permanent (issue 9).
            warn!(
                "Temps esgotat preparant el cos del mail ({} s, deadline_secs): no es reintentarà",
                deadline.as_secs_f64()
            );
            let mut d = Delivery::new(
                Status::Reject,
                "temps esgotat preparant el cos del mail (treball de CPU)",
            );
            d.ticket = ports
                .journal
                .done(&Step::TicketCreated)
                .or_else(|| ports.journal.done(&Step::CommentAdded));
            d
        }
        Err(_) => {
            warn!(
                "Temps esgotat: el mail no s'ha acabat de tractar en {} s (deadline_secs); es reintentarà",
                deadline.as_secs_f64()
            );
            let mut d = Delivery::new(Status::TempFail, "temps esgotat");
            d.ticket = ports
                .journal
                .done(&Step::TicketCreated)
                .or_else(|| ports.journal.done(&Step::CommentAdded));
            d
        }
    }
}

/// How a failure maps to a status (§1, §5): a transient fault → TEMPFAIL, a clean
/// GN6 refusal (codiRetorn) → REJECT, anything else → ERROR.
pub(crate) fn port_status(err: &PortError) -> Status {
    if err.is_transient() {
        Status::TempFail
    } else if err.is_service() {
        Status::Reject
    } else {
        Status::Error
    }
}
