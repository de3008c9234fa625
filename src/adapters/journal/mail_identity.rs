//! Journal adapter (driven side): the journal side of a mail's identity (issues 12 and 19, see
//! [`crate::domain::mail_key`]): which key a raw mail has in the journal (its
//! Message-ID, or a clash key when that id belongs to another mail, or the content
//! digest), and what the journal already knows of it — done, or ended with a
//! permanent outcome that must not be quarantined or reported again.
//!
//! The digest of the mail that owns a key is kept as the step `digest`. Records
//! written before it existed have no such step: they are taken as the same mail
//! (what the journal did then), so an old journal keeps working unchanged.

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset};
use rusqlite::{OptionalExtension, params};

use super::{
    DeliveryJournal, JournalError, MailRecord, MailRun, SELECT_MAIL, mail_row, split_time,
    with_steps,
};
use crate::domain::mail::Mail;
use crate::domain::mail_key::MailIdentity;
use crate::domain::outcome::Status;
use crate::ports::{
    Journal, JournalStore, JournalUnavailable, MailJournal, MemoryJournal, NoRateLimit, PortError,
    RateLimit, Step,
};

/// Step holding the content digest of the mail that owns a key.
pub const DIGEST_STEP: &str = "digest";

/// Statuses that no later run of the same bytes can change without an admin
/// (`reprocess` after fixing the cause): a repeat gets the same status at once,
/// without a second quarantine copy or report. ERROR counts only when its run marked
/// it as a fault of our configuration ([`PERMANENT_STEP`]); any other ERROR (a bus
/// Fault, an answer that could not be read) is resumed by the next delivery.
pub const PERMANENT_STATUSES: [&str; 2] = ["REJECT", "UNKNOWN"];

/// Step marking an ERROR caused by our configuration (wrong credentials, a bad
/// endpoint...); value = the reason.
pub const PERMANENT_STEP: &str = "permanent";

/// What the journal knows of one raw mail (read-only; see [`DeliveryJournal::lookup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMail {
    /// The key this mail has (or will have) in the journal.
    pub key: String,
    /// When the Message-ID belongs to another mail (different digest): that mail's key.
    pub clash_with: Option<String>,
    /// The record under [`KnownMail::key`], when there is one.
    pub record: Option<MailRecord>,
}

impl KnownMail {
    /// A previous run handled the whole mail (a repeat is a duplicate: SUCCESS).
    pub fn is_completed(&self) -> bool {
        self.record.as_ref().is_some_and(MailRecord::is_completed)
    }

    /// The permanent status a previous run ended with (REJECT, UNKNOWN, ERROR), when
    /// the mail was not completed since.
    pub fn permanent_status(&self) -> Option<&str> {
        let r = self.record.as_ref()?;
        let marked = r.status == "ERROR" && r.steps.iter().any(|s| s.step == PERMANENT_STEP);
        (!r.is_completed() && (PERMANENT_STATUSES.contains(&r.status.as_str()) || marked))
            .then_some(r.status.as_str())
    }

    /// The ticket created or commented by a previous run, if any.
    pub fn ticket(&self) -> Option<&str> {
        let r = self.record.as_ref()?;
        let created = Step::TicketCreated.key();
        let commented = Step::CommentAdded.key();
        r.steps
            .iter()
            .find(|s| s.step == created)
            .or_else(|| r.steps.iter().find(|s| s.step == commented))
            .map(|s| s.value.as_str())
    }
}

fn digest_of(record: &MailRecord) -> Option<&str> {
    record
        .steps
        .iter()
        .find(|s| s.step == DIGEST_STEP)
        .map(|s| s.value.as_str())
}

impl DeliveryJournal {
    /// The record stored under exactly `key`.
    fn record(&self, key: &str) -> Result<Option<MailRecord>, JournalError> {
        self.store.read(|tx| {
            let mail = tx
                .prepare_cached(&format!("{SELECT_MAIL} WHERE key = ?1"))?
                .query_row([key], mail_row)
                .optional()?;
            mail.map(|m| with_steps(tx, m)).transpose()
        })
    }

    /// Which key `mail` has and what the journal knows of it, without writing or
    /// locking anything (dry runs, pull mode, the MDA's permanent-outcome check).
    pub fn lookup(&self, mail: &MailIdentity) -> Result<KnownMail, JournalError> {
        let primary = mail.primary_key();
        let record = self.record(&primary)?;
        if mail.message_id.is_some()
            && let Some(r) = &record
            && digest_of(r).is_some_and(|d| d != mail.digest)
        {
            let key = mail.clash_key();
            let record = self.record(&key)?;
            return Ok(KnownMail {
                key,
                clash_with: Some(primary),
                record,
            });
        }
        Ok(KnownMail {
            key: primary,
            clash_with: None,
            record,
        })
    }

    /// Starts (or resumes) the run of `mail` under the key [`DeliveryJournal::lookup`]
    /// gives, checked again under the mail's lock (another process may have claimed
    /// the Message-ID meanwhile). A new record gets the mail's digest. Returns the
    /// run and, on a clash, the key of the other mail.
    pub fn begin_mail(
        &self,
        mail: &MailIdentity,
        now: DateTime<FixedOffset>,
    ) -> Result<(MailRun, Option<String>), JournalError> {
        let known = self.lookup(mail)?;
        let run = self.begin(&known.key, now)?;
        let owner = run.raw_step(DIGEST_STEP);
        match owner {
            Some(d) if d != mail.digest && known.clash_with.is_none() => {
                // Claimed by another mail between the lookup and the lock.
                let primary = known.key;
                drop(run);
                let run = self.begin(&mail.clash_key(), now)?;
                run.claim(&mail.digest)?;
                Ok((run, Some(primary)))
            }
            Some(_) => Ok((run, known.clash_with)),
            None => {
                // A new record is ours; an old one (no digest, journal of an older
                // version) is taken as the same mail and left as it was.
                if run.steps_len() == 0 {
                    run.claim(&mail.digest)?;
                }
                Ok((run, known.clash_with))
            }
        }
    }
}

impl MailRun {
    /// The value of a step by its raw key (for steps outside [`Step`]).
    pub fn raw_step(&self, step: &str) -> Option<String> {
        let steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        steps.get(step).cloned()
    }

    fn steps_len(&self) -> usize {
        self.steps.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Marks the ERROR this run ends with as a fault of our configuration: a repeat
    /// of the mail gets ERROR at once, without a new report or quarantine copy.
    pub fn mark_permanent(&self, reason: &str) -> Result<(), JournalError> {
        self.raw_write(PERMANENT_STEP, reason, true)
    }

    /// Records the digest of the mail owning this key.
    fn claim(&self, digest: &str) -> Result<(), JournalError> {
        self.raw_write(DIGEST_STEP, digest, false)
    }

    fn raw_write(&self, step: &str, value: &str, replace: bool) -> Result<(), JournalError> {
        let (at_ms, at_off) = split_time(self.store.clock.now());
        let key = self.key.as_str();
        let sql = if replace {
            "INSERT INTO steps (key, step, seq, value, at_ms, at_off)
             VALUES (?1, ?2, -1, ?3, ?4, ?5)
             ON CONFLICT (key, step) DO UPDATE SET value = excluded.value"
        } else {
            "INSERT INTO steps (key, step, seq, value, at_ms, at_off)
             VALUES (?1, ?2, -1, ?3, ?4, ?5)
             ON CONFLICT (key, step) DO NOTHING"
        };
        self.store.write(false, |tx| {
            tx.prepare_cached(sql)?
                .execute(params![key, step, value, at_ms, at_off])?;
            Ok(())
        })?;
        let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        steps.insert(step.to_string(), value.to_string());
        Ok(())
    }
}

/// The header name of a status back to the status (journal records hold headers).
pub fn status_from_header(s: &str) -> Option<Status> {
    [
        Status::Success,
        Status::Skip,
        Status::Reject,
        Status::Error,
        Status::Unknown,
        Status::TempFail,
    ]
    .into_iter()
    .find(|st| st.as_header() == s)
}

/// The run of one mail in the durable journal, with the permanent outcome an earlier
/// run ended with (read before this run began, which sets the status to
/// `IN_PROGRESS` until the end of the run writes it again).
pub struct DurableRun {
    run: MailRun,
    previous: Option<Status>,
}

/// [`DeliveryJournal::begin_mail`] for the MDA: notes the permanent outcome of an
/// earlier run (unless `retry_permanent`) and logs a Message-ID clash, one line with
/// both keys.
pub(super) fn begin_durable(
    journal: &DeliveryJournal,
    mail: &MailIdentity,
    now: DateTime<FixedOffset>,
    retry_permanent: bool,
) -> Result<DurableRun, JournalUnavailable> {
    let unavailable =
        |e: JournalError| JournalUnavailable(format!("journal ({}): {e}", mail.primary_key()));
    let known = journal.lookup(mail).map_err(unavailable)?;
    let previous = if retry_permanent {
        None
    } else {
        known.permanent_status().and_then(status_from_header)
    };
    let (run, clash) = journal.begin_mail(mail, now).map_err(unavailable)?;
    if let Some(other) = clash {
        tracing::warn!(
            "Message-ID repetit amb un contingut diferent: el tracto com un mail nou (journal {} i {})",
            other,
            run.key()
        );
    }
    Ok(DurableRun { run, previous })
}

impl Journal for DurableRun {
    fn done(&self, step: &Step) -> Option<String> {
        self.run.done(step)
    }

    fn record(&self, step: &Step, value: &str) -> Result<(), PortError> {
        self.run.record(step, value)
    }
}

impl RateLimit for DurableRun {
    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError> {
        self.run.count_new_tickets(sender, since)
    }

    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        self.run.note_new_ticket(sender, at)
    }

    // Issue 10: every method forwarded, or the defaults would forget participants.
    fn count(&self, key: &str, since: DateTime<FixedOffset>) -> Result<u32, PortError> {
        self.run.count(key, since)
    }

    fn note(&self, key: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        self.run.note(key, at)
    }

    fn cc_requesters(
        &self,
        codi_tiquet: &str,
    ) -> Result<Vec<crate::domain::trust::CcRequester>, PortError> {
        self.run.cc_requesters(codi_tiquet)
    }

    fn note_cc_requester(
        &self,
        codi_tiquet: &str,
        requester: &crate::domain::trust::CcRequester,
    ) -> Result<(), PortError> {
        self.run.note_cc_requester(codi_tiquet, requester)
    }
}

impl MailJournal for DurableRun {
    fn key(&self) -> &str {
        self.run.key()
    }

    fn set_status(&self, status: Status) -> Result<(), PortError> {
        MailJournal::set_status(&self.run, status)
    }

    fn previous_permanent(&self) -> Option<Status> {
        self.previous
    }

    fn mark_permanent(&self, reason: &str) -> Result<(), PortError> {
        MailJournal::mark_permanent(&self.run, reason)
    }
}

/// The journal store of a dry run (issue 12 §5): reads the durable journal without
/// creating, writing or locking anything, and hands the use case a memory journal
/// holding what was recorded, so that a mail already delivered is answered as a
/// duplicate and a half-done one plans only what a resumed run would still do.
#[derive(Debug, Clone)]
pub struct SnapshotJournals {
    pub state_dir: PathBuf,
}

struct SnapshotRun {
    key: String,
    steps: MemoryJournal,
    previous: Option<Status>,
}

impl JournalStore for SnapshotJournals {
    fn begin(&self, mail: &Mail, raw: &[u8]) -> Result<Box<dyn MailJournal>, JournalUnavailable> {
        let identity = MailIdentity::of(mail.message_id.as_deref(), raw);
        let known = if self.state_dir.join(super::DB_FILE_NAME).is_file() {
            DeliveryJournal::open(&self.state_dir)
                .and_then(|j| j.lookup(&identity))
                .ok()
        } else {
            None
        };
        let steps = MemoryJournal::default();
        let (key, previous) = match &known {
            Some(k) => {
                for s in k.record.iter().flat_map(|r| &r.steps) {
                    if let Some(step) = step_from_key(&s.step) {
                        let _ = steps.record(&step, &s.value);
                    }
                }
                (
                    k.key.clone(),
                    k.permanent_status().and_then(status_from_header),
                )
            }
            None => (identity.primary_key(), None),
        };
        Ok(Box::new(SnapshotRun {
            key,
            steps,
            previous,
        }))
    }
}

impl Journal for SnapshotRun {
    fn done(&self, step: &Step) -> Option<String> {
        self.steps.done(step)
    }

    fn record(&self, step: &Step, value: &str) -> Result<(), PortError> {
        self.steps.record(step, value)
    }
}

impl RateLimit for SnapshotRun {
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

impl MailJournal for SnapshotRun {
    fn key(&self) -> &str {
        &self.key
    }

    fn set_status(&self, _status: Status) -> Result<(), PortError> {
        Ok(())
    }

    fn previous_permanent(&self) -> Option<Status> {
        self.previous
    }
}

/// A step of the journal back from its stable key ([`Step::key`]).
fn step_from_key(key: &str) -> Option<Step> {
    if let Some(inner) = key.strip_prefix("pending:") {
        return step_from_key(inner).map(|s| s.intent());
    }
    Some(match key {
        "ticket" => Step::TicketCreated,
        "descripcio" => Step::DescriptionUpdated,
        "reopened" => Step::Reopened,
        "comment" => Step::CommentAdded,
        "completed" => Step::Completed,
        _ => {
            if let Some(n) = key.strip_prefix("attachment:") {
                Step::Attachment(n.parse().ok()?)
            } else if let Some(u) = key.strip_prefix("requester:") {
                Step::RequesterAdded(u.to_string())
            } else {
                return None;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_key_reads_back() {
        for step in [
            Step::TicketCreated,
            Step::Attachment(3),
            Step::DescriptionUpdated,
            Step::Reopened,
            Step::CommentAdded,
            Step::RequesterAdded("joan".into()),
            Step::Completed,
            Step::Attachment(0).intent(),
        ] {
            assert_eq!(step_from_key(&step.key()), Some(step));
        }
        assert_eq!(step_from_key(DIGEST_STEP), None);
        assert_eq!(status_from_header("REJECT"), Some(Status::Reject));
        assert_eq!(status_from_header("nope"), None);
    }
}
