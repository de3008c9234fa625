//! The per-sender count of new tickets (loop protection's rate limit), kept in the
//! journal's database because the count must survive across MDA processes.

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset};
use rusqlite::params;

use super::{DeliveryJournal, JournalError, MailRun, Store};
use crate::ports::PortError;

/// The rate-limit port, under the name this adapter first gave it.
pub use crate::ports::RateLimit as RateLimitStore;

/// A [`RateLimitStore`] that forgets everything at exit (dry runs, tests).
#[derive(Debug, Default)]
pub struct MemoryRateLimitStore {
    notes: Mutex<Vec<(String, DateTime<FixedOffset>)>>,
}

impl RateLimitStore for MemoryRateLimitStore {
    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError> {
        let sender = normalise_sender(sender);
        let notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        let n = notes
            .iter()
            .filter(|(s, at)| *s == sender && *at >= since)
            .count();
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        notes.push((normalise_sender(sender), at));
        Ok(())
    }
}

impl RateLimitStore for DeliveryJournal {
    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError> {
        Ok(self.store.count_new_tickets(sender, since)?)
    }

    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        Ok(self.store.note_new_ticket(sender, at)?)
    }
}

impl RateLimitStore for MailRun {
    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError> {
        Ok(self.store.count_new_tickets(sender, since)?)
    }

    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), PortError> {
        Ok(self.store.note_new_ticket(sender, at)?)
    }
}

impl Store {
    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, JournalError> {
        let sender = normalise_sender(sender);
        let since_ms = since.timestamp_millis();
        let n = self.with_conn(|c| {
            c.prepare_cached("SELECT count(*) FROM rate WHERE sender = ?1 AND at_ms >= ?2")?
                .query_row(params![sender, since_ms], |r| r.get::<_, i64>(0))
        })?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), JournalError> {
        let sender = normalise_sender(sender);
        let at_ms = at.timestamp_millis();
        self.write(false, |tx| {
            tx.prepare_cached("INSERT INTO rate (sender, at_ms) VALUES (?1, ?2)")?
                .execute(params![sender, at_ms])?;
            Ok(())
        })
    }
}

fn normalise_sender(sender: &str) -> String {
    sender.trim().to_lowercase()
}
