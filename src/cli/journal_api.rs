//! What the MDA path and the `journal` / `reprocess` subcommands need from the
//! delivery journal and the quarantine (driving side over those adapters).

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};

use crate::adapters::journal::{DB_FILE_NAME, DeliveryJournal, KnownMail};
use crate::adapters::quarantine::Quarantine;
use crate::config::Config;
use crate::domain::mail_key::MailIdentity;
use crate::ports::{Clock, SystemClock};

fn open(config: &Config) -> Result<DeliveryJournal, String> {
    DeliveryJournal::open(&config.state_dir()).map_err(|e| {
        format!(
            "journal {}: {e}",
            config.state_dir().join(DB_FILE_NAME).display()
        )
    })
}

/// Human-readable record of one mail (by Message-ID or journal key).
pub fn show(config: &Config, id: &str) -> Result<String, String> {
    match open(config)?.show(id).map_err(|e| e.to_string())? {
        Some(record) => Ok(record.to_string()),
        None => Err(format!("no mail {id} in the journal")),
    }
}

fn parse_since(since: &str, now: DateTime<FixedOffset>) -> Result<DateTime<FixedOffset>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(since) {
        return Ok(t);
    }
    let day = NaiveDate::parse_from_str(since, "%Y-%m-%d")
        .map_err(|_| format!("--since {since}: expected YYYY-MM-DD or an RFC 3339 time"))?;
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    now.offset()
        .from_local_datetime(&midnight)
        .single()
        .ok_or_else(|| format!("--since {since}: not a valid local time"))
}

/// One line per mail handled since `since` (YYYY-MM-DD or RFC 3339), or all.
pub fn list(config: &Config, since: Option<&str>) -> Result<String, String> {
    let journal = open(config)?;
    let now = SystemClock.now();
    let since = match since {
        Some(s) => parse_since(s, now)?,
        None => DateTime::from_timestamp(0, 0)
            .unwrap_or_default()
            .fixed_offset(),
    };
    let mut out = String::new();
    for r in journal.list(since).map_err(|e| e.to_string())? {
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

/// Every quarantined mail file, oldest first.
pub fn quarantined(config: &Config) -> Result<Vec<PathBuf>, String> {
    Quarantine::new(config.quarantine_dir())
        .list()
        .map_err(|e| format!("{}: {e}", config.quarantine_dir().display()))
}

/// Removes a mail from the quarantine once it was handled (files elsewhere are
/// left alone: `reprocess PATH` may point at any file).
pub fn release(config: &Config, path: &Path) -> Result<(), String> {
    let q = Quarantine::new(config.quarantine_dir());
    if path.starts_with(q.dir()) {
        q.remove(path)
            .map_err(|e| format!("{}: {e}", path.display()))
    } else {
        Ok(())
    }
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
    open(config)?.lookup(&identity).map_err(|e| e.to_string())
}
