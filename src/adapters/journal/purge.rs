//! `journal purge` and the MDA's daily prune (issue 18): mails are forgotten by age,
//! with one age for delivered mails (status SUCCESS) and another for everything else,
//! except the mails still in the quarantine (their rows stay until the admin deletes
//! or purges the quarantine entry) and runs that may still be going on.

use std::collections::HashSet;

use chrono::{DateTime, FixedOffset, TimeDelta};
use rusqlite::{OptionalExtension, params};

use super::lock::MailLock;
use super::{DeliveryJournal, JournalError, LAST_PRUNE, PRUNE_INTERVAL, STATUS_IN_PROGRESS};

/// Default age of delivered mails (status SUCCESS) before they are forgotten.
pub const DEFAULT_DELIVERED_DAYS: u32 = 30;
/// Default age of every other mail (SKIP, REJECT, ERROR, UNKNOWN, TEMPFAIL...).
pub const DEFAULT_OTHER_DAYS: u32 = 90;

/// How old a mail's last run must be before the journal forgets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Mails whose status is SUCCESS.
    pub delivered: TimeDelta,
    /// Every other mail.
    pub other: TimeDelta,
}

impl Retention {
    /// Ages in days.
    pub fn days(delivered: u32, other: u32) -> Retention {
        Retention {
            delivered: TimeDelta::days(i64::from(delivered)),
            other: TimeDelta::days(i64::from(other)),
        }
    }

    /// One age for every mail (`journal purge --older-than D`).
    pub fn uniform(age: TimeDelta) -> Retention {
        Retention {
            delivered: age,
            other: age,
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::days(DEFAULT_DELIVERED_DAYS, DEFAULT_OTHER_DAYS)
    }
}

/// One mail a purge forgot (or would forget, in a dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurgedMail {
    pub key: String,
    pub status: String,
    pub last_run: DateTime<FixedOffset>,
}

/// What a purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Delivered mails forgotten.
    pub delivered: Vec<PurgedMail>,
    /// Other mails forgotten.
    pub other: Vec<PurgedMail>,
    /// Old enough, kept because the mail is still in the quarantine.
    pub kept_quarantined: usize,
    /// Old enough, kept because its run may still be going on (IN_PROGRESS younger
    /// than the lock wait, or its lock is held).
    pub kept_running: usize,
    /// New-ticket notes (rate limit) forgotten.
    pub rate_notes: usize,
}

impl PurgeReport {
    /// Mails forgotten in all.
    pub fn mails(&self) -> usize {
        self.delivered.len() + self.other.len()
    }
}

impl DeliveryJournal {
    /// Forgets the mails older than `retention` before `now` (their steps and lock
    /// files too) and the new-ticket notes older than the longer of the two ages,
    /// except the keys in `keep` (mails still in the quarantine) and IN_PROGRESS mails
    /// younger than the lock wait or whose lock is held. With `dry_run`, only says
    /// what would go. A real purge counts as the daily prune.
    pub fn purge(
        &self,
        retention: &Retention,
        keep: &HashSet<String>,
        now: DateTime<FixedOffset>,
        dry_run: bool,
    ) -> Result<PurgeReport, JournalError> {
        let delivered_cut = (now - retention.delivered).timestamp_millis();
        let other_cut = (now - retention.other).timestamp_millis();
        let rate_cut = delivered_cut.min(other_cut);
        let running_cut = (now
            - TimeDelta::from_std(self.store.lock_wait).unwrap_or(TimeDelta::seconds(30)))
        .timestamp_millis();
        let store = &self.store;
        let select = |tx: &rusqlite::Transaction<'_>| -> rusqlite::Result<PurgeReport> {
            let mut report = PurgeReport::default();
            let rows = tx
                .prepare_cached(
                    "SELECT key, status, last_run_ms, last_run_off FROM mails
                     WHERE last_run_ms < ?1 ORDER BY last_run_ms, key",
                )?
                .query_map([delivered_cut.max(other_cut)], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, i32>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (key, status, ms, off) in rows {
                let delivered = status == "SUCCESS";
                if ms >= if delivered { delivered_cut } else { other_cut } {
                    continue;
                }
                if keep.contains(&key) {
                    report.kept_quarantined += 1;
                    continue;
                }
                if status == STATUS_IN_PROGRESS
                    && (ms >= running_cut || MailLock::is_held(&store.lock_path(&key)))
                {
                    report.kept_running += 1;
                    continue;
                }
                let mail = PurgedMail {
                    key,
                    status,
                    last_run: super::join_time(ms, off),
                };
                if delivered {
                    report.delivered.push(mail);
                } else {
                    report.other.push(mail);
                }
            }
            report.rate_notes = tx
                .prepare_cached("SELECT COUNT(*) FROM rate WHERE at_ms < ?1")?
                .query_row([rate_cut], |r| r.get::<_, i64>(0))
                .map(|n| usize::try_from(n).unwrap_or(0))?;
            Ok(report)
        };
        if dry_run {
            return self.store.read(select);
        }
        let report = self.store.write(false, |tx| {
            let report = select(tx)?;
            for m in report.delivered.iter().chain(&report.other) {
                tx.prepare_cached("DELETE FROM steps WHERE key = ?1")?
                    .execute([&m.key])?;
                tx.prepare_cached("DELETE FROM mails WHERE key = ?1")?
                    .execute([&m.key])?;
            }
            tx.execute("DELETE FROM rate WHERE at_ms < ?1", [rate_cut])?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![LAST_PRUNE, now.timestamp_millis()],
            )?;
            Ok(report)
        })?;
        for m in report.delivered.iter().chain(&report.other) {
            // Best effort: a lock file left behind costs a few bytes, nothing more.
            MailLock::remove_if_free(&self.store.lock_path(&m.key));
        }
        Ok(report)
    }

    /// [`DeliveryJournal::purge`] unless a prune or purge ran in the last 24 hours
    /// (by the journal's record), so that every MDA run can call it cheaply; `keep`
    /// is only asked for when due, and `None` from it (the quarantine could not be
    /// read) skips the purge. `None` when nothing ran.
    pub fn purge_if_due(
        &self,
        retention: &Retention,
        keep: impl FnOnce() -> Option<HashSet<String>>,
        now: DateTime<FixedOffset>,
    ) -> Result<Option<PurgeReport>, JournalError> {
        let last = self.store.with_conn(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE name = ?1")?
                .query_row([LAST_PRUNE], |r| r.get::<_, i64>(0))
                .optional()
        })?;
        let due_ms = (now - PRUNE_INTERVAL).timestamp_millis();
        match last {
            // A last prune "in the future" means the clock was set back: prune anyway.
            Some(ms) if ms > due_ms && ms <= now.timestamp_millis() => Ok(None),
            _ => match keep() {
                Some(keep) => self.purge(retention, &keep, now, false).map(Some),
                None => Ok(None),
            },
        }
    }
}
