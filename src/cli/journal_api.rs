//! What the MDA path and the `journal` / `reprocess` subcommands need from the
//! delivery journal and the quarantine (driving side over those adapters).

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone};

use crate::adapters::journal::{DB_FILE_NAME, DeliveryJournal, KnownMail, MailRecord};
use crate::adapters::quarantine::Quarantine;
use crate::config::Config;
use crate::domain::mail_key::MailIdentity;
use crate::domain::outcome::Status;
use crate::ports::{Clock, Journal, MemoryJournal, Step, SystemClock};

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

/// Keeps a copy of a mail that was not handled, with the reason beside it.
pub fn quarantine(
    config: &Config,
    raw: &[u8],
    status: Status,
    reason: &str,
) -> Result<Option<PathBuf>, String> {
    Quarantine::new(config.quarantine_dir())
        .put(raw, status.as_header(), reason, SystemClock.now())
        .map(Some)
        .map_err(|e| format!("{}: {e}", config.quarantine_dir().display()))
}

/// What the journal knows of a mail, read-only: `None` when there is no journal yet
/// (nothing is created) or it cannot be read (a dry run then plans from scratch).
pub fn lookup(config: &Config, identity: &MailIdentity) -> Option<KnownMail> {
    if !config.state_dir().join(DB_FILE_NAME).is_file() {
        return None;
    }
    open(config).ok()?.lookup(identity).ok()
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

/// Fills a memory journal with the steps a record holds, so that a dry run plans
/// only what a resumed run would still do.
pub fn preload(memory: &MemoryJournal, record: &MailRecord) {
    for s in &record.steps {
        if let Some(step) = step_from_key(&s.step) {
            let _ = memory.record(&step, &s.value);
        }
    }
}

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

/// Sub-folder of the quarantine holding single parts that could not be attached
/// (issue 19 §2). `reprocess` never looks there: the mail itself was delivered.
pub const PARTS_DIR: &str = "parts";

/// Keeps one part of a delivered mail that GN6 did not take, with the reason beside
/// it. The name depends only on the mail's key and the part, so a later run of the
/// same mail writes the same file again instead of a new one.
pub fn quarantine_part(
    config: &Config,
    key: &str,
    n: usize,
    name: &str,
    data: &[u8],
    reason: &str,
) -> Result<PathBuf, String> {
    use sha2::{Digest, Sha256};
    let dir = config.quarantine_dir().join(PARTS_DIR);
    let short: String = Sha256::digest(key.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let safe: String = crate::domain::bus_text::safe_file_name(name, n, "")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    let path = dir.join(format!("{short}-{}-{safe}", n + 1));
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(&path, data)?;
        let mut note = path.clone().into_os_string();
        note.push(".txt");
        std::fs::write(
            note,
            format!(
                "journal: {key}\npart: {}\nnom: {name}\nmotiu: {reason}\n",
                n + 1
            ),
        )
    };
    write().map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
