//! The per-sender count of new tickets (loop protection's rate limit), kept in the
//! journal's database because the count must survive across MDA processes.

use std::sync::Mutex;

use chrono::{DateTime, FixedOffset};
use rusqlite::params;

use super::{DeliveryJournal, JournalError, MailRun, Store};
use crate::domain::trust::CcRequester;
use crate::ports::PortError;

/// The rate-limit port, under the name this adapter first gave it.
pub use crate::ports::RateLimit as RateLimitStore;

/// A [`RateLimitStore`] that forgets everything at exit (dry runs, tests).
#[derive(Debug, Default)]
pub struct MemoryRateLimitStore {
    notes: Mutex<Vec<(String, DateTime<FixedOffset>)>>,
    cc: Mutex<Vec<(String, CcRequester)>>,
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

    fn cc_requesters(&self, codi_tiquet: &str) -> Result<Vec<CcRequester>, PortError> {
        let cc = self.cc.lock().unwrap_or_else(|p| p.into_inner());
        Ok(cc
            .iter()
            .filter(|(t, _)| t == codi_tiquet.trim())
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn note_cc_requester(&self, codi_tiquet: &str, r: &CcRequester) -> Result<(), PortError> {
        let mut cc = self.cc.lock().unwrap_or_else(|p| p.into_inner());
        cc.push((codi_tiquet.trim().to_string(), r.clone()));
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

    fn cc_requesters(&self, codi_tiquet: &str) -> Result<Vec<CcRequester>, PortError> {
        Ok(self.store.cc_requesters(codi_tiquet)?)
    }

    fn note_cc_requester(&self, codi_tiquet: &str, r: &CcRequester) -> Result<(), PortError> {
        Ok(self.store.note_cc_requester(codi_tiquet, r)?)
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

    fn cc_requesters(&self, codi_tiquet: &str) -> Result<Vec<CcRequester>, PortError> {
        Ok(self.store.cc_requesters(codi_tiquet)?)
    }

    fn note_cc_requester(&self, codi_tiquet: &str, r: &CcRequester) -> Result<(), PortError> {
        Ok(self.store.note_cc_requester(codi_tiquet, r)?)
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
