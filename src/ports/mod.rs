//! Ports of the hexagon: what the use case needs from the outside world, in domain
//! types only. Adapters in `crate::adapters` implement them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, FixedOffset};

use crate::domain::identity::{DirectoryEntry, Person};
use crate::domain::mail::Mail;
use crate::domain::outcome::Status;
use crate::domain::ticket::{NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo};
use crate::domain::trust::CcRequester;

/// Failure of a port call. Callers ask [`PortError::is_transient`] to decide whether
/// the MTA should retry; the exit code follows from that in `crate::exit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortError {
    /// Could not reach the service or it did not answer in time: retry later.
    /// (timeout, refused, reset, HTTP 502/503/504 or a 5xx without a SOAP Fault.)
    Transient(String),
    /// The service answered with a SOAP Fault.
    Fault { code: String, message: String },
    /// GN6 answered `codiRetorn` other than "1".
    Service { code: String, description: String },
    /// Anything else: an answer that could not be understood, a refused request...
    Permanent(String),
}

impl PortError {
    pub fn is_transient(&self) -> bool {
        matches!(self, PortError::Transient(_))
    }

    /// A GN6 business error (codiRetorn ≠ 1): the filter fails cleanly (REJECT).
    pub fn is_service(&self) -> bool {
        matches!(self, PortError::Service { .. })
    }
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortError::Transient(m) => write!(f, "error temporal: {m}"),
            PortError::Fault { code, message } => write!(f, "SOAP Fault {code}: {message}"),
            PortError::Service { code, description } => {
                write!(f, "GN6 codiRetorn {code}: {description}")
            }
            PortError::Permanent(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for PortError {}

/// GN6 - GestioTiquets.
#[allow(async_fn_in_trait)]
pub trait TicketSystem {
    /// ConsultaTiquetsDades by code. `Ok(None)` when GN6 answers with no such ticket.
    async fn query_ticket(&self, codi_tiquet: &str) -> Result<Option<TicketInfo>, PortError>;
    /// ConsultaTiquetsDades by requester (username) and creation date from
    /// `created_from` (`dd-mm-yyyy`, GN6's filter format); every other filter empty.
    /// Read-only: used to find out whether an AltaTiquet whose answer was lost did
    /// create the ticket. No default body on purpose: every decorator must forward it.
    async fn find_tickets(
        &self,
        solicitant: &str,
        created_from: &str,
    ) -> Result<Vec<TicketInfo>, PortError>;
    /// AltaTiquet; returns the new ticket's code.
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<String, PortError>;
    /// ModificarTiquet; empty fields are left unchanged.
    async fn modify_ticket(&self, changes: &TicketChanges) -> Result<(), PortError>;
    /// AfegirComentariTiquet.
    async fn add_comment(&self, comment: &NewComment) -> Result<(), PortError>;
    /// AnnexarFitxerTiquet; returns codiAnnex.
    async fn attach_file(&self, attachment: &NewAttachment<'_>) -> Result<String, PortError>;
    /// AfegirSolicitantTiquet (GN6 v6).
    async fn add_requester(&self, codi_tiquet: &str, solicitant: &str) -> Result<(), PortError>;
}

/// GestioIdentitat - Persones.
#[allow(async_fn_in_trait)]
pub trait IdentityDirectory {
    /// obtenirDadesPersona by common name; `Ok(None)` when it is not a UPC user.
    async fn person(&self, cn: &str) -> Result<Option<Person>, PortError>;
    /// llistaPersones by e-mail: the common names of every person with that address.
    async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError>;
}

/// An LDAP-style directory searched by `mail` (BEHAVIOUR §4, the optional LDAP step).
#[allow(async_fn_in_trait)]
pub trait MailDirectory {
    /// The entries whose mail is exactly `address`, in the directory's order; an
    /// empty list when there is none. A failure (unreachable, bind refused, timeout)
    /// is an `Err`, never an empty list.
    async fn entries_by_mail(&self, address: &str) -> Result<Vec<DirectoryEntry>, PortError>;
    /// Connects and binds once (for `check`).
    async fn probe(&self) -> Result<(), PortError>;
}

/// The clock, so that the domain and the use case never read the wall clock.
pub trait Clock {
    fn now(&self) -> DateTime<FixedOffset>;
}

/// The real clock, in the local time zone.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<FixedOffset> {
        chrono::Local::now().fixed_offset()
    }
}

/// One side effect of a delivery, as recorded in the delivery journal so that a
/// re-run of the same mail resumes instead of repeating it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// AltaTiquet done; value = codiTiquet.
    TicketCreated,
    /// Attachment N (0-based, among the kept ones) uploaded; value = codiAnnex.
    Attachment(usize),
    /// ModificarTiquet with the rewritten description done.
    DescriptionUpdated,
    /// A closed ticket was reopened (value = codiTiquet).
    Reopened,
    /// AfegirComentariTiquet done; value = codiTiquet.
    CommentAdded,
    /// AfegirSolicitantTiquet done for this username.
    RequesterAdded(String),
    /// The whole mail was handled; value = the final status header.
    Completed,
    /// An automatic reply (out of office...) to a GN6 notification was skipped;
    /// value = the ticket it answers (issue 14: counted, never commented).
    AutoReplyTo,
    /// About to make the (non-idempotent) call of the inner step; value = when, as
    /// `dd-mm-yyyy` of the clock. An intent without its step means the outcome of
    /// that call is unknown: GN6 may have acted and the answer been lost.
    Intent(Box<Step>),
}

impl Step {
    /// The intent record of this step (recorded before its call).
    pub fn intent(&self) -> Step {
        Step::Intent(Box::new(self.clone()))
    }

    /// Stable key of the step in the journal.
    pub fn key(&self) -> String {
        match self {
            Step::TicketCreated => "ticket".into(),
            Step::Attachment(n) => format!("attachment:{n}"),
            Step::DescriptionUpdated => "descripcio".into(),
            Step::Reopened => "reopened".into(),
            Step::CommentAdded => "comment".into(),
            Step::RequesterAdded(u) => format!("requester:{u}"),
            Step::Completed => "completed".into(),
            Step::AutoReplyTo => "auto-reply".into(),
            Step::Intent(inner) => format!("pending:{}", inner.key()),
        }
    }
}

/// The delivery journal of the mail being processed (already bound to its key).
pub trait Journal {
    /// The value recorded for a step, if it was done.
    fn done(&self, step: &Step) -> Option<String>;
    /// Records a completed step. An error here must stop the run (TEMPFAIL): going on
    /// without a record would risk a duplicate on the next run.
    fn record(&self, step: &Step, value: &str) -> Result<(), PortError>;
}

/// Per-sender count of new tickets, for the "new tickets per hour" limit of loop
/// protection. The use case asks [`RateLimit::count_new_tickets`] before AltaTiquet
/// and calls [`RateLimit::note_new_ticket`] after it succeeded. Kept beside the
/// journal because the count must survive across MDA processes.
pub trait RateLimit {
    /// New tickets noted for `sender` (case-insensitive) at or after `since`.
    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError>;
    /// Notes one new ticket for `sender` at `at`.
    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), PortError>;

    /// Events noted under `key` at or after `since`: the hourly counters of issue 10
    /// (keys from `crate::domain::trust::keys`), kept with the new-ticket counts.
    fn count(&self, key: &str, since: DateTime<FixedOffset>) -> Result<u32, PortError> {
        self.count_new_tickets(key, since)
    }
    /// Notes one event under `key` at `at`.
    fn note(&self, key: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        self.note_new_ticket(key, at)
    }
    /// The requesters this program added from Cc to ticket `codi_tiquet` (issue 10:
    /// they are participants of the ticket). A store that keeps none answers empty.
    fn cc_requesters(&self, _codi_tiquet: &str) -> Result<Vec<CcRequester>, PortError> {
        Ok(Vec::new())
    }
    /// Remembers a requester added from Cc to a ticket.
    fn note_cc_requester(
        &self,
        _codi_tiquet: &str,
        _requester: &CcRequester,
    ) -> Result<(), PortError> {
        Ok(())
    }
}

/// No limit at all (dry runs, `max_tickets_per_hour = 0`): counts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRateLimit;

impl RateLimit for NoRateLimit {
    fn count_new_tickets(
        &self,
        _sender: &str,
        _since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError> {
        Ok(0)
    }

    fn note_new_ticket(&self, _sender: &str, _at: DateTime<FixedOffset>) -> Result<(), PortError> {
        Ok(())
    }
}

impl<R: RateLimit + ?Sized> RateLimit for &R {
    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError> {
        (**self).count_new_tickets(sender, since)
    }

    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        (**self).note_new_ticket(sender, at)
    }

    fn count(&self, key: &str, since: DateTime<FixedOffset>) -> Result<u32, PortError> {
        (**self).count(key, since)
    }

    fn note(&self, key: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        (**self).note(key, at)
    }

    fn cc_requesters(&self, codi_tiquet: &str) -> Result<Vec<CcRequester>, PortError> {
        (**self).cc_requesters(codi_tiquet)
    }

    fn note_cc_requester(
        &self,
        codi_tiquet: &str,
        requester: &CcRequester,
    ) -> Result<(), PortError> {
        (**self).note_cc_requester(codi_tiquet, requester)
    }
}

/// A journal that remembers nothing across runs (dry runs, tests, journal disabled).
#[derive(Debug, Default)]
pub struct MemoryJournal {
    steps: std::cell::RefCell<Vec<(String, String)>>,
}

impl MemoryJournal {
    /// Every (step key, value) recorded so far, in order.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.steps.borrow().clone()
    }
}

impl Journal for MemoryJournal {
    fn done(&self, step: &Step) -> Option<String> {
        let key = step.key();
        self.steps
            .borrow()
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }

    fn record(&self, step: &Step, value: &str) -> Result<(), PortError> {
        self.steps
            .borrow_mut()
            .push((step.key(), value.to_string()));
        Ok(())
    }
}

/// Lets a caller choose the journal at run time (`&dyn Journal`) and still call the
/// generic use case.
impl<J: Journal + ?Sized> Journal for &J {
    fn done(&self, step: &Step) -> Option<String> {
        (**self).done(step)
    }

    fn record(&self, step: &Step, value: &str) -> Result<(), PortError> {
        (**self).record(step, value)
    }
}

/// Turns the raw bytes of a mail into the domain's [`Mail`]. Never fails: what cannot
/// be decoded is kept as text, so that every mail gets a decision.
pub trait MailDecoder {
    fn decode(&self, raw: &[u8]) -> Mail;
}

/// The durable delivery journal could not be opened or the mail's lock taken: the
/// mail must wait (TEMPFAIL), since going on could duplicate a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalUnavailable(pub String);

impl fmt::Display for JournalUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JournalUnavailable {}

/// Where each mail's journal comes from: [`JournalStore::begin`] takes the mail's
/// exclusive lock (a second process on the same mail waits or gives up) and loads
/// what earlier runs recorded.
pub trait JournalStore {
    fn begin(&self, mail: &Mail, raw: &[u8]) -> Result<Box<dyn MailJournal>, JournalUnavailable>;

    /// The hourly counters shared by every mail (issue 10: the report and quarantine
    /// budgets), opened only when asked; `None` counts nothing (dry runs, a store that
    /// cannot be opened).
    fn counters(&self) -> Option<Box<dyn RateLimit>> {
        None
    }
}

/// The journal of one mail being handled, with the rate-limit counts beside it.
pub trait MailJournal: Journal + RateLimit {
    /// The mail's key in the journal (Message-ID or a hash).
    fn key(&self) -> &str;
    /// Notes the status a run ended with, without marking the mail completed.
    fn set_status(&self, status: Status) -> Result<(), PortError>;
    /// The permanent outcome (REJECT, UNKNOWN, ERROR of our configuration) an earlier
    /// run of this very mail ended with: a new delivery gets it at once, without a
    /// new report or quarantine copy (issue 12 §2). `None` also when the store was
    /// asked to run such mails again (`reprocess`).
    fn previous_permanent(&self) -> Option<Status> {
        None
    }
    /// Marks the ERROR this run ends with as a fault of our configuration, so that a
    /// new delivery repeats it (see [`MailJournal::previous_permanent`]).
    fn mark_permanent(&self, _reason: &str) -> Result<(), PortError> {
        Ok(())
    }
}

/// A journal store that forgets everything (dry runs): every mail starts afresh and
/// nothing is counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryJournals;

struct MemoryRun(MemoryJournal);

impl Journal for MemoryRun {
    fn done(&self, step: &Step) -> Option<String> {
        self.0.done(step)
    }

    fn record(&self, step: &Step, value: &str) -> Result<(), PortError> {
        self.0.record(step, value)
    }
}

impl RateLimit for MemoryRun {
    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError> {
        NoRateLimit.count_new_tickets(sender, since)
    }

    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        NoRateLimit.note_new_ticket(sender, at)
    }
}

impl MailJournal for MemoryRun {
    fn key(&self) -> &str {
        "-"
    }

    fn set_status(&self, _status: Status) -> Result<(), PortError> {
        Ok(())
    }
}

impl JournalStore for MemoryJournals {
    fn begin(&self, _mail: &Mail, _raw: &[u8]) -> Result<Box<dyn MailJournal>, JournalUnavailable> {
        Ok(Box::new(MemoryRun(MemoryJournal::default())))
    }
}

/// An error of an outward adapter, with its `source()` chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error and its `source()` chain on one line (`outer: inner: root`).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let c = cause.to_string();
        // Some errors repeat their source in their own message: say it once.
        if !text.ends_with(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        next = cause.source();
    }
    text
}

/// A boxed future, so that the ports below can be used as `dyn`.
pub type PortFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// What an error report says (the adapter adds this run's log).
#[derive(Debug, Clone, Copy)]
pub struct ErrorReport<'a> {
    pub status: Status,
    /// One line: why the mail was not handled.
    pub reason: &'a str,
    /// The mail as received.
    pub original: &'a [u8],
}

/// Sends error reports to the administrators.
pub trait Reporter {
    /// Sends one report; `Ok` names where it went (for the log).
    fn report<'a>(&'a self, report: ErrorReport<'a>) -> PortFuture<'a, Result<String, BoxError>>;
}

/// Keeps the mails nobody will retry, for `reprocess`.
pub trait MailQuarantine {
    /// Stores the mail with its status and reason; `Ok` names where (for the log).
    fn keep(&self, raw: &[u8], status: Status, reason: &str) -> Result<String, BoxError>;
    /// Keeps one part (number `n`, 0-based) of a delivered mail that GN6 did not
    /// take, with the reason beside it (issue 19 §2); `key` is the mail's journal key.
    /// `Ok` names where (for the log).
    fn keep_part(
        &self,
        key: &str,
        n: usize,
        name: &str,
        data: &[u8],
        reason: &str,
    ) -> Result<String, BoxError>;
    /// The mail being handled is already one of the kept ones (`quarantine
    /// reprocess`): [`MailQuarantine::keep`] stores nothing new, so it does not count
    /// against the hourly quarantine cap.
    fn already_kept(&self) -> bool {
        false
    }
}

/// Measures of the run so far, for the summary line: the SOAP calls made and the
/// time since the mail was read (the use case never reads a clock itself).
pub trait RunMeter {
    fn soap_calls(&self) -> usize;
    fn elapsed_ms(&self) -> u128;
}
