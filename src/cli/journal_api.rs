//! What the MDA path and the `journal` subcommands need from the delivery journal
//! (driving side over that adapter); the quarantine's commands are in `quarantine`.

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};

use crate::adapters::journal::{DB_FILE_NAME, DeliveryJournal, JournalError, KnownMail};
use crate::config::Config;
use crate::domain::mail_key::MailIdentity;
use crate::ports::{Clock, SystemClock};

/// What the `journal` subcommands can fail on.
#[derive(Debug, thiserror::Error)]
pub enum JournalApiError {
    #[error("journal {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: JournalError,
    },
    #[error(transparent)]
    Query(#[from] JournalError),
    #[error("no mail {0} in the journal")]
    NotFound(String),
    #[error("--since {0}: expected YYYY-MM-DD or an RFC 3339 time")]
    Since(String),
    #[error("--since {0}: not a valid local time")]
    LocalTime(String),
}

fn open(config: &Config) -> Result<DeliveryJournal, JournalApiError> {
    DeliveryJournal::open(&config.state_dir()).map_err(|source| JournalApiError::Open {
        path: config.state_dir().join(DB_FILE_NAME),
        source,
    })
}

/// Human-readable record of one mail (by Message-ID or journal key).
pub fn show(config: &Config, id: &str) -> Result<String, JournalApiError> {
    match open(config)?.show(id)? {
        Some(record) => Ok(record.to_string()),
        None => Err(JournalApiError::NotFound(id.to_string())),
    }
}

fn parse_since(
    since: &str,
    now: DateTime<FixedOffset>,
) -> Result<DateTime<FixedOffset>, JournalApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(since) {
        return Ok(t);
    }
    let day = NaiveDate::parse_from_str(since, "%Y-%m-%d")
        .map_err(|_| JournalApiError::Since(since.to_string()))?;
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    now.offset()
        .from_local_datetime(&midnight)
        .single()
        .ok_or_else(|| JournalApiError::LocalTime(since.to_string()))
}

/// One line per mail handled since `since` (YYYY-MM-DD or RFC 3339), or all.
pub fn list(config: &Config, since: Option<&str>) -> Result<String, JournalApiError> {
    let journal = open(config)?;
    let now = SystemClock.now();
    let since = match since {
        Some(s) => parse_since(s, now)?,
        None => DateTime::from_timestamp(0, 0)
            .unwrap_or_default()
            .fixed_offset(),
    };
    let mut out = String::new();
    for r in journal.list(since)? {
        let ticket = r
            .steps
            .iter()
            .find(|s| s.step == "ticket" || s.step == "comment")
            .map(|s| s.value.as_str())
            .unwrap_or("-");
        out.push_str(&format!(
            "{}  {:<11} tiquet={:<8} execucions={}  {}\n",
            r.last_run.format("%Y-%m-%d %H:%M:%S"),
            r.status,
            ticket,
            r.runs,
            r.key
        ));
    }
    if out.is_empty() {
        out.push_str("no mails in the journal for that period\n");
    }
    Ok(out)
}

/// The journal API of a raw mail (for the MDA, dry runs and pull mode): its stable
/// key, whether it is done (a repeat is a duplicate) and whether it ended with a
/// permanent outcome (a repeat gets that status without a new report). Read-only.
pub fn known_mail(config: &Config, raw: &[u8]) -> Result<KnownMail, String> {
    let mail = crate::adapters::mail::parse(raw, &Default::default());
    let identity = MailIdentity::of(mail.message_id.as_deref(), raw);
    if !config.state_dir().join(DB_FILE_NAME).is_file() {
        return Ok(KnownMail {
            key: identity.primary_key(),
            clash_with: None,
            record: None,
        });
    }
    open(config)
        .map_err(|e| e.to_string())?
        .lookup(&identity)
        .map_err(|e| e.to_string())
}
