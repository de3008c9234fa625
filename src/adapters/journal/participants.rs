//! The requesters this program added from Cc to each ticket (issue 10): a reply from
//! one of them is a reply from a participant. One row per (ticket, username), kept
//! as long as the database (tickets outlive the journal's retention of mails).

use rusqlite::params;

use super::{JournalError, Store};
use crate::domain::trust::CcRequester;

/// Created with the rest of the schema (version 2).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cc_requesters (
    ticket   TEXT NOT NULL,
    username TEXT NOT NULL,
    address  TEXT NOT NULL,
    PRIMARY KEY (ticket, username)
) WITHOUT ROWID;
";

impl Store {
    pub(super) fn cc_requesters(&self, ticket: &str) -> Result<Vec<CcRequester>, JournalError> {
        self.with_conn(|c| {
            c.prepare_cached(
                "SELECT address, username FROM cc_requesters WHERE ticket = ?1 ORDER BY username",
            )?
            .query_map(params![ticket.trim()], |r| {
                Ok(CcRequester {
                    address: r.get(0)?,
                    username: r.get(1)?,
                })
            })?
            .collect()
        })
    }

    pub(super) fn note_cc_requester(
        &self,
        ticket: &str,
        r: &CcRequester,
    ) -> Result<(), JournalError> {
        self.write(false, |tx| {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO cc_requesters (ticket, username, address) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                ticket.trim(),
                r.username.trim(),
                r.address.trim().to_lowercase()
            ])?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::adapters::journal::DeliveryJournal;
    use crate::domain::trust::CcRequester;
    use crate::ports::RateLimit;

    #[test]
    fn cc_requesters_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let r = CcRequester {
            address: "CC@Example.org".into(),
            username: "cc.user".into(),
        };
        {
            let j = DeliveryJournal::open(dir.path()).unwrap();
            j.note_cc_requester("12", &r).unwrap();
            j.note_cc_requester("12", &r).unwrap();
        }
        let j = DeliveryJournal::open(dir.path()).unwrap();
        let got = j.cc_requesters("12").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].address, "cc@example.org");
        assert!(j.cc_requesters("13").unwrap().is_empty());
    }
}
