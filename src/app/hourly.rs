//! Hourly budgets of the side channels of a mail (issue 10): error reports (one per
//! sender and hour for REJECT, `max_informes_per_hora` in all) and quarantined mails
//! (`max_quarantena_per_hora`). Counted in the journal store's shared counters so that
//! every MDA process sees them; the verdicts are `crate::domain::trust`'s.

use chrono::{DateTime, FixedOffset, TimeDelta};
use tracing::warn;

use crate::domain::trust::{self, ReportVerdict, keys};
use crate::ports::RateLimit;

/// The budgets of one mail's end. Without counters (dry runs, a store that cannot be
/// opened) nothing is counted and everything is allowed: a report or a quarantined
/// mail is worth more than the cap that failed.
pub struct Budgets<'a> {
    counters: Option<Box<dyn RateLimit + 'a>>,
    now: DateTime<FixedOffset>,
}

impl<'a> Budgets<'a> {
    pub fn new(counters: Option<Box<dyn RateLimit + 'a>>, now: DateTime<FixedOffset>) -> Self {
        Budgets { counters, now }
    }

    fn count(&self, key: &str) -> u32 {
        let since = self.now - TimeDelta::hours(1);
        self.counters
            .as_ref()
            .and_then(|c| c.count(key, since).ok())
            .unwrap_or(0)
    }

    fn note(&self, key: &str) {
        if let Some(c) = &self.counters
            && let Err(e) = c.note(key, self.now)
        {
            warn!("No puc comptar {key}: {e}");
        }
    }

    /// Whether to send the report about a mail from `sender`; a refusal is counted.
    pub fn report(&self, sender: &str, is_reject: bool, cap: u32) -> ReportVerdict {
        let v = trust::report_verdict(
            is_reject,
            self.count(&keys::report_about(sender)),
            self.count(keys::REPORTS),
            cap,
        );
        if v != ReportVerdict::Send {
            self.note(keys::REPORTS_SUPPRESSED);
        }
        v
    }

    /// Reports not sent in the last hour (for the summary line of the next one).
    pub fn reports_suppressed(&self) -> u32 {
        self.count(keys::REPORTS_SUPPRESSED)
    }

    pub fn note_report(&self, sender: &str) {
        self.note(&keys::report_about(sender));
        self.note(keys::REPORTS);
    }

    /// Whether one more mail may be written to the quarantine this hour; counts it
    /// (or its suppression).
    pub fn quarantine(&self, cap: u32) -> bool {
        if trust::within(self.count(keys::QUARANTINE), cap) {
            self.note(keys::QUARANTINE);
            true
        } else {
            self.note(keys::QUARANTINE_SUPPRESSED);
            false
        }
    }

    /// Mails not quarantined in the last hour.
    pub fn quarantine_suppressed(&self) -> u32 {
        self.count(keys::QUARANTINE_SUPPRESSED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::journal::MemoryRateLimitStore;

    #[test]
    fn one_report_per_sender_and_a_cap_in_all() {
        let store = MemoryRateLimitStore::default();
        let now = chrono::Utc::now().fixed_offset();
        let b = Budgets::new(Some(Box::new(&store)), now);
        assert_eq!(b.report("m@evil.example", true, 2), ReportVerdict::Send);
        b.note_report("m@evil.example");
        assert_eq!(
            b.report("m@evil.example", true, 2),
            ReportVerdict::AlreadyReported
        );
        assert_eq!(b.report("x@evil.example", true, 2), ReportVerdict::Send);
        b.note_report("x@evil.example");
        assert_eq!(b.report("y@evil.example", false, 2), ReportVerdict::Capped);
        assert_eq!(b.reports_suppressed(), 2);
        // an hour later, all is forgiven
        let later = Budgets::new(Some(Box::new(&store)), now + TimeDelta::minutes(61));
        assert_eq!(later.report("m@evil.example", true, 2), ReportVerdict::Send);
        assert!(later.quarantine(1));
        assert!(!later.quarantine(1));
        assert_eq!(later.quarantine_suppressed(), 1);
        // without counters everything is allowed
        let none = Budgets::new(None, now);
        assert_eq!(none.report("m@evil.example", true, 1), ReportVerdict::Send);
        assert!(none.quarantine(1));
    }
}
