//! Delivery journal adapter (driven side of the hexagon): a durable embedded store of
//! the side effects done for each mail, so that a re-run resumes instead of repeating,
//! plus the per-sender count of new tickets used by the rate limit.
//!
//! Storage is one redb file, `journal.redb`, in the state directory. redb lets only one
//! process (in fact one open file description) have the file open at a time, so the
//! database is opened for the span of each operation only and closed right after; an
//! operation that finds it open elsewhere retries for a bounded time. Every operation is
//! a few milliseconds, so MDA processes on different mails interleave and all make
//! progress. Holding a global lock for a whole delivery would serialise them behind the
//! slowest SOAP call instead.
//!
//! Mutual exclusion between two runs of the *same* mail is a separate, longer lock: one
//! lock file per key under `locks/`, held (OS advisory lock) by the [`MailRun`] for its
//! whole life. Because a run holds that lock, its cached view of its own steps is
//! authoritative: nobody else writes them while it lives.

// redb's own error type is large; it only travels the cold error path of each operation.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, TimeZone, Utc};
use redb::{Database, ReadableTable, TableDefinition};
use sha2::{Digest, Sha256};

use crate::ports::{Clock, Journal, PortError, Step, SystemClock};

/// File name of the journal inside the state directory.
pub const DB_FILE_NAME: &str = "journal.redb";
/// Sub-directory of the state directory holding the per-mail lock files.
pub const LOCKS_DIR_NAME: &str = "locks";
/// Status of a mail whose run started and has not recorded an outcome (yet).
pub const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";

/// Mail key → (first seen ms, first seen offset s, last run ms, last run offset s, runs, status).
const MAILS: TableDefinition<&str, (i64, i32, i64, i32, u32, &str)> = TableDefinition::new("mails");
/// (mail key, step key) → (sequence, at ms, at offset s, value).
const STEPS: TableDefinition<(&str, &str), (u64, i64, i32, &str)> = TableDefinition::new("steps");
/// (sender, at ms) → number of new tickets opened for that sender at that instant.
const NEW_TICKETS: TableDefinition<(&str, i64), u64> = TableDefinition::new("new_tickets");
/// Bookkeeping: `last_prune` → ms.
const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const LAST_PRUNE: &str = "last_prune";
/// [`DeliveryJournal::prune_if_due`] prunes at most this often.
const PRUNE_INTERVAL: TimeDelta = TimeDelta::hours(24);

const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_DB_WAIT: Duration = Duration::from_secs(10);
/// Longest pause between two tries for a mail lock (held for a whole run).
const MAX_LOCK_PAUSE: Duration = Duration::from_millis(50);
/// Longest pause between two tries to open the database (held for one operation,
/// a few fsyncs: tens of milliseconds), so waiters pick it up soon after.
const MAX_DB_PAUSE: Duration = Duration::from_millis(10);

/// Failure of the journal. Every kind is worth a retry by the MTA (TEMPFAIL): going on
/// without the journal could duplicate a ticket, and a busy mail will be free later.
#[derive(Debug)]
pub enum JournalError {
    /// Another process holds the lock of this mail (or the database) longer than the
    /// bounded wait. The CLI maps it to TEMPFAIL.
    Busy(String),
    /// The state directory or a lock file could not be used.
    Io(std::io::Error),
    /// The database refused an operation (corrupt file, disk full...).
    Storage(String),
}

impl JournalError {
    /// Someone else is working on the same mail (or holds the database too long).
    pub fn is_busy(&self) -> bool {
        matches!(self, JournalError::Busy(_))
    }

    fn storage(e: impl fmt::Display) -> Self {
        JournalError::Storage(e.to_string())
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Busy(what) => write!(f, "diari de lliuraments ocupat: {what}"),
            JournalError::Io(e) => write!(f, "diari de lliuraments: error d'E/S: {e}"),
            JournalError::Storage(e) => write!(f, "diari de lliuraments: {e}"),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for JournalError {
    fn from(e: std::io::Error) -> Self {
        JournalError::Io(e)
    }
}

impl From<JournalError> for PortError {
    fn from(e: JournalError) -> Self {
        PortError::Transient(e.to_string())
    }
}

/// One recorded step of a mail, as shown by `mailtoticket journal show`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    /// The stable step key ([`Step::key`]), e.g. `ticket`, `attachment:0`.
    pub step: String,
    /// The value recorded with it (ticket code, codiAnnex, final status...).
    pub value: String,
    pub at: DateTime<FixedOffset>,
}

/// What the journal knows of one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRecord {
    /// Message-ID (with angle brackets) or `sha256:<hex>` of the raw mail.
    pub key: String,
    pub first_seen: DateTime<FixedOffset>,
    pub last_run: DateTime<FixedOffset>,
    /// How many runs began for this mail.
    pub runs: u32,
    /// [`STATUS_IN_PROGRESS`], or the last status set by a run (e.g. `SUCCESS`, `TEMPFAIL`).
    pub status: String,
    /// Steps in the order they were recorded.
    pub steps: Vec<StepRecord>,
}

impl MailRecord {
    /// The whole mail was handled ([`Step::Completed`] recorded).
    pub fn is_completed(&self) -> bool {
        let completed = Step::Completed.key();
        self.steps.iter().any(|s| s.step == completed)
    }
}

impl fmt::Display for MailRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key:        {}", self.key)?;
        writeln!(f, "status:     {}", self.status)?;
        writeln!(f, "first seen: {}", self.first_seen.to_rfc3339())?;
        writeln!(f, "last run:   {}", self.last_run.to_rfc3339())?;
        writeln!(f, "runs:       {}", self.runs)?;
        for s in &self.steps {
            writeln!(f, "  {}  {} = {}", s.at.to_rfc3339(), s.step, s.value)?;
        }
        Ok(())
    }
}

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

/// Message-IDs longer than this are keyed by their hash, so that a hostile header
/// cannot make keys (and lock-file lookups) of megabytes.
pub const MAX_ID_KEY_LEN: usize = 255;

/// The journal key of a mail: its Message-ID when it has a non-blank one (or
/// `id-sha256:<hex>` of it when longer than [`MAX_ID_KEY_LEN`]), otherwise
/// `sha256:<hex>` of the raw bytes (an MTA retry delivers the very same bytes).
pub fn mail_key(message_id: Option<&str>, raw: &[u8]) -> String {
    match message_id.map(str::trim) {
        Some(id) if !id.is_empty() => id_key(id),
        _ => format!("sha256:{}", hex(&Sha256::digest(raw))),
    }
}

fn id_key(id: &str) -> String {
    if id.len() > MAX_ID_KEY_LEN {
        format!("id-sha256:{}", hex(&Sha256::digest(id.as_bytes())))
    } else {
        id.to_string()
    }
}

/// The durable delivery journal in a state directory.
#[derive(Clone)]
pub struct DeliveryJournal {
    store: Arc<Store>,
}

impl fmt::Debug for DeliveryJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryJournal")
            .field("db_path", &self.store.db_path)
            .finish_non_exhaustive()
    }
}

struct Store {
    db_path: PathBuf,
    locks_dir: PathBuf,
    lock_wait: Duration,
    db_wait: Duration,
    clock: Arc<dyn Clock + Send + Sync>,
}

impl DeliveryJournal {
    /// Opens (creating it and the directory when missing) `state_dir/journal.redb`.
    pub fn open(state_dir: &Path) -> Result<Self, JournalError> {
        let locks_dir = state_dir.join(LOCKS_DIR_NAME);
        fs::create_dir_all(&locks_dir)?;
        let store = Store {
            db_path: state_dir.join(DB_FILE_NAME),
            locks_dir,
            lock_wait: DEFAULT_LOCK_WAIT,
            db_wait: DEFAULT_DB_WAIT,
            clock: Arc::new(SystemClock),
        };
        // Create the tables once so that read transactions never meet a missing table.
        store.with_db(|db| {
            let tx = db.begin_write()?;
            tx.open_table(MAILS)?;
            tx.open_table(STEPS)?;
            tx.open_table(NEW_TICKETS)?;
            tx.open_table(META)?;
            tx.commit()?;
            Ok(())
        })?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// How long [`DeliveryJournal::begin`] waits for another run of the same mail
    /// before giving up with [`JournalError::Busy`] (default 30 s).
    pub fn with_lock_wait(self, wait: Duration) -> Self {
        self.map_store(|s| s.lock_wait = wait)
    }

    /// How long one operation waits for the database file held by another process
    /// (default 10 s; each holder keeps it for milliseconds).
    pub fn with_db_wait(self, wait: Duration) -> Self {
        self.map_store(|s| s.db_wait = wait)
    }

    /// The clock that timestamps steps (default: the system clock).
    pub fn with_clock(self, clock: Arc<dyn Clock + Send + Sync>) -> Self {
        self.map_store(|s| s.clock = clock)
    }

    fn map_store(self, f: impl FnOnce(&mut Store)) -> Self {
        let s = &*self.store;
        let mut store = Store {
            db_path: s.db_path.clone(),
            locks_dir: s.locks_dir.clone(),
            lock_wait: s.lock_wait,
            db_wait: s.db_wait,
            clock: Arc::clone(&s.clock),
        };
        f(&mut store);
        Self {
            store: Arc::new(store),
        }
    }

    /// Path of the database file.
    pub fn db_path(&self) -> &Path {
        &self.store.db_path
    }

    /// Starts (or resumes) the run of the mail `key`: takes the mail's exclusive lock,
    /// waiting at most the lock wait, then records the run and loads its done steps.
    pub fn begin(&self, key: &str, now: DateTime<FixedOffset>) -> Result<MailRun, JournalError> {
        let lock = MailLock::acquire(&self.store.lock_path(key), self.store.lock_wait, key)?;
        let (now_ms, now_off) = split_time(now);
        let steps = self.store.with_db(|db| {
            let tx = db.begin_write()?;
            let mut steps = HashMap::new();
            {
                let table = tx.open_table(STEPS)?;
                for entry in table.range((key, "")..)? {
                    let (k, v) = entry?;
                    let (mail, step) = k.value();
                    if mail != key {
                        break;
                    }
                    steps.insert(step.to_string(), v.value().3.to_string());
                }
            }
            {
                let mut mails = tx.open_table(MAILS)?;
                let completed = steps.get(&Step::Completed.key()).cloned();
                let previous = mails.get(key)?.map(|v| {
                    let (fs, fo, _, _, runs, status) = v.value();
                    (fs, fo, runs, status.to_string())
                });
                let (fs, fo, runs, status) = match previous {
                    Some((fs, fo, runs, status)) => {
                        // A completed mail keeps its final status; anything else is
                        // being worked on again.
                        let status = if completed.is_some() {
                            status
                        } else {
                            STATUS_IN_PROGRESS.to_string()
                        };
                        (fs, fo, runs.saturating_add(1), status)
                    }
                    None => (now_ms, now_off, 1, STATUS_IN_PROGRESS.to_string()),
                };
                mails.insert(key, (fs, fo, now_ms, now_off, runs, status.as_str()))?;
            }
            tx.commit()?;
            Ok(steps)
        })?;
        Ok(MailRun {
            key: key.to_string(),
            store: Arc::clone(&self.store),
            steps: Mutex::new(steps),
            _lock: lock,
        })
    }

    /// The record of a mail by key; a Message-ID is also found with or without its
    /// angle brackets.
    pub fn show(&self, key_or_message_id: &str) -> Result<Option<MailRecord>, JournalError> {
        let id = key_or_message_id.trim();
        let mut candidates = vec![id_key(id)];
        if let Some(inner) = id.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
            candidates.push(id_key(inner));
        } else if !id.starts_with("sha256:") && !id.starts_with("id-sha256:") {
            candidates.push(id_key(&format!("<{id}>")));
        }
        self.store.with_db(|db| {
            let tx = db.begin_read()?;
            let mails = tx.open_table(MAILS)?;
            let steps = tx.open_table(STEPS)?;
            for key in &candidates {
                if let Some(v) = mails.get(key.as_str())? {
                    return Ok(Some(build_record(key, v.value(), &steps)?));
                }
            }
            Ok(None)
        })
    }

    /// Every mail whose last run began at or after `since`, oldest first.
    pub fn list(&self, since: DateTime<FixedOffset>) -> Result<Vec<MailRecord>, JournalError> {
        let since_ms = since.timestamp_millis();
        self.store.with_db(|db| {
            let tx = db.begin_read()?;
            let mails = tx.open_table(MAILS)?;
            let steps = tx.open_table(STEPS)?;
            let mut out = Vec::new();
            for entry in mails.iter()? {
                let (k, v) = entry?;
                let v = v.value();
                if v.2 >= since_ms {
                    out.push(build_record(k.value(), v, &steps)?);
                }
            }
            out.sort_by(|a, b| a.last_run.cmp(&b.last_run).then(a.key.cmp(&b.key)));
            Ok(out)
        })
    }

    /// [`DeliveryJournal::prune`] unless a prune ran in the last 24 hours (by the journal's
    /// record), so that every MDA run can call it cheaply. `None` when not due.
    pub fn prune_if_due(
        &self,
        retention_days: u32,
        now: DateTime<FixedOffset>,
    ) -> Result<Option<usize>, JournalError> {
        let last = self.store.with_db(|db| {
            let tx = db.begin_read()?;
            let meta = tx.open_table(META)?;
            Ok(meta.get(LAST_PRUNE)?.map(|v| v.value()))
        })?;
        let due_ms = (now - PRUNE_INTERVAL).timestamp_millis();
        match last {
            // A last prune "in the future" means the clock was set back: prune anyway
            // rather than wait for the clock to catch up.
            Some(ms) if ms > due_ms && ms <= now.timestamp_millis() => Ok(None),
            _ => self.prune(retention_days, now).map(Some),
        }
    }

    /// Forgets mails whose last run is older than `retention_days` before `now`, their
    /// steps and lock files, and older new-ticket notes. Returns how many mails went.
    pub fn prune(
        &self,
        retention_days: u32,
        now: DateTime<FixedOffset>,
    ) -> Result<usize, JournalError> {
        let cutoff = now - TimeDelta::days(i64::from(retention_days));
        let cutoff_ms = cutoff.timestamp_millis();
        let gone = self.store.with_db(|db| {
            let tx = db.begin_write()?;
            let mut gone = Vec::new();
            {
                let mut mails = tx.open_table(MAILS)?;
                for entry in mails.iter()? {
                    let (k, v) = entry?;
                    if v.value().2 < cutoff_ms {
                        gone.push(k.value().to_string());
                    }
                }
                for key in &gone {
                    mails.remove(key.as_str())?;
                }
            }
            {
                let gone: std::collections::HashSet<&str> =
                    gone.iter().map(String::as_str).collect();
                let mut steps = tx.open_table(STEPS)?;
                steps.retain(|(mail, _), _| !gone.contains(mail))?;
            }
            {
                let mut notes = tx.open_table(NEW_TICKETS)?;
                notes.retain(|(_, at), _| at >= cutoff_ms)?;
            }
            tx.open_table(META)?
                .insert(LAST_PRUNE, now.timestamp_millis())?;
            tx.commit()?;
            Ok(gone)
        })?;
        for key in &gone {
            // Best effort: a lock file left behind costs a few bytes, nothing more.
            MailLock::remove_if_free(&self.store.lock_path(key));
        }
        Ok(gone.len())
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

/// The journal of one mail being delivered, holding the mail's exclusive lock until
/// dropped. Each [`Journal::record`] is its own committed (fsync'd) write transaction,
/// so a crash right after AltaTiquet still leaves `ticket` recorded.
pub struct MailRun {
    key: String,
    store: Arc<Store>,
    /// Step key → value: authoritative while the lock is held.
    steps: Mutex<HashMap<String, String>>,
    _lock: MailLock,
}

impl fmt::Debug for MailRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailRun")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl MailRun {
    /// The mail's journal key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A previous run handled the whole mail: the caller answers SUCCESS at once
    /// (duplicate delivery).
    pub fn is_completed(&self) -> bool {
        self.done(&Step::Completed).is_some()
    }

    /// Records the status a run ended with (`TEMPFAIL`, `ERROR`...) without marking
    /// the mail completed; completion is `record(&Step::Completed, status)`.
    pub fn set_status(&self, status: &str) -> Result<(), JournalError> {
        let key = self.key.as_str();
        self.store.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut mails = tx.open_table(MAILS)?;
                let current = mails.get(key)?.map(|v| {
                    let (fs, fo, ls, lo, runs, _) = v.value();
                    (fs, fo, ls, lo, runs)
                });
                if let Some((fs, fo, ls, lo, runs)) = current {
                    mails.insert(key, (fs, fo, ls, lo, runs, status))?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn write_step(&self, step_key: &str, value: &str, seq: u64) -> Result<(), JournalError> {
        let (at_ms, at_off) = split_time(self.store.clock.now());
        let key = self.key.as_str();
        let completes = step_key == Step::Completed.key();
        self.store.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut steps = tx.open_table(STEPS)?;
                steps.insert((key, step_key), (seq, at_ms, at_off, value))?;
            }
            if completes {
                let mut mails = tx.open_table(MAILS)?;
                let current = mails.get(key)?.map(|v| {
                    let (fs, fo, ls, lo, runs, _) = v.value();
                    (fs, fo, ls, lo, runs)
                });
                if let Some((fs, fo, ls, lo, runs)) = current {
                    mails.insert(key, (fs, fo, ls, lo, runs, value))?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }
}

impl Journal for MailRun {
    fn done(&self, step: &Step) -> Option<String> {
        let steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        steps.get(&step.key()).cloned()
    }

    fn record(&self, step: &Step, value: &str) -> Result<(), PortError> {
        let step_key = step.key();
        let mut steps = self.steps.lock().unwrap_or_else(|p| p.into_inner());
        let seq = u64::try_from(steps.len()).unwrap_or(u64::MAX);
        self.write_step(&step_key, value, seq)?;
        // Only after the commit: a failed write must not look done to this run either.
        steps.insert(step_key, value.to_string());
        Ok(())
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
    fn lock_path(&self, key: &str) -> PathBuf {
        self.locks_dir
            .join(format!("{}.lock", hex(&Sha256::digest(key.as_bytes()))))
    }

    /// Runs `f` on the database opened for this operation only, waiting (bounded) while
    /// another process or thread has it open.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, JournalError> {
        let deadline = Instant::now() + self.db_wait;
        let mut pause = Duration::from_millis(1);
        loop {
            match Database::create(&self.db_path) {
                Ok(db) => return f(&db).map_err(JournalError::storage),
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(JournalError::Busy(format!(
                            "{} obert per un altre procés",
                            self.db_path.display()
                        )));
                    }
                    std::thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(MAX_DB_PAUSE);
                }
                Err(e) => return Err(JournalError::storage(e)),
            }
        }
    }

    fn count_new_tickets(
        &self,
        sender: &str,
        since: DateTime<FixedOffset>,
    ) -> Result<u32, JournalError> {
        let sender = normalise_sender(sender);
        let since_ms = since.timestamp_millis();
        self.with_db(|db| {
            let tx = db.begin_read()?;
            let notes = tx.open_table(NEW_TICKETS)?;
            let mut n: u64 = 0;
            for entry in notes.range((sender.as_str(), since_ms)..=(sender.as_str(), i64::MAX))? {
                let (_, v) = entry?;
                n = n.saturating_add(v.value());
            }
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
    }

    fn note_new_ticket(&self, sender: &str, at: DateTime<FixedOffset>) -> Result<(), JournalError> {
        let sender = normalise_sender(sender);
        let at_ms = at.timestamp_millis();
        self.with_db(|db| {
            let tx = db.begin_write()?;
            {
                let mut notes = tx.open_table(NEW_TICKETS)?;
                let before = notes
                    .get((sender.as_str(), at_ms))?
                    .map(|v| v.value())
                    .unwrap_or(0);
                notes.insert((sender.as_str(), at_ms), before.saturating_add(1))?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

/// The exclusive advisory lock of one mail, released when dropped (or when the process
/// dies, which is what makes a crashed run harmless).
struct MailLock {
    _file: File,
}

impl MailLock {
    fn acquire(path: &Path, wait: Duration, key: &str) -> Result<Self, JournalError> {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)?;
            match file.try_lock() {
                Ok(()) => {
                    // prune may have unlinked the file between our open and our lock:
                    // a lock on an unlinked inode excludes nobody, so start again.
                    if same_file(&file, path) {
                        return Ok(Self { _file: file });
                    }
                    continue;
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(e.into()),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(JournalError::Busy(format!(
                    "un altre procés està tractant el correu {key}"
                )));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(MAX_LOCK_PAUSE);
        }
    }

    /// Deletes a lock file nobody holds. Deleting under our own lock is safe because
    /// [`MailLock::acquire`] checks that the locked inode is still the one at the path.
    fn remove_if_free(path: &Path) {
        if !cfg!(unix) {
            return;
        }
        let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
            return;
        };
        if file.try_lock().is_ok() && same_file(&file, path) {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    // Lock files are never deleted off Unix, so the path still names our file.
    path.exists()
}

fn build_record(
    key: &str,
    (fs, fo, ls, lo, runs, status): (i64, i32, i64, i32, u32, &str),
    steps: &impl ReadableTable<(&'static str, &'static str), (u64, i64, i32, &'static str)>,
) -> Result<MailRecord, redb::Error> {
    let mut found = Vec::new();
    for entry in steps.range((key, "")..)? {
        let (k, v) = entry?;
        let (mail, step) = k.value();
        if mail != key {
            break;
        }
        let (seq, at_ms, at_off, value) = v.value();
        found.push((
            seq,
            StepRecord {
                step: step.to_string(),
                value: value.to_string(),
                at: join_time(at_ms, at_off),
            },
        ));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.at.cmp(&b.1.at)));
    Ok(MailRecord {
        key: key.to_string(),
        first_seen: join_time(fs, fo),
        last_run: join_time(ls, lo),
        runs,
        status: status.to_string(),
        steps: found.into_iter().map(|(_, s)| s).collect(),
    })
}

fn split_time(t: DateTime<FixedOffset>) -> (i64, i32) {
    (t.timestamp_millis(), t.offset().local_minus_utc())
}

fn join_time(ms: i64, offset_s: i32) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(offset_s).unwrap_or(Utc.fix());
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .with_timezone(&offset)
}

fn normalise_sender(sender: &str) -> String {
    sender.trim().to_lowercase()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
