//! Delivery journal adapter (driven side of the hexagon): a durable embedded store of
//! the side effects done for each mail, so that a re-run resumes instead of repeating,
//! plus the per-sender count of new tickets used by the rate limit.
//!
//! Storage is one SQLite file, `journal.sqlite3`, in the state directory, in WAL mode.
//! Each [`DeliveryJournal`] opens one connection and keeps it for its whole life (the
//! [`MailRun`]s it begins share it): in WAL mode any number of MDA processes keep the
//! file open at once, readers never block, and writers queue on SQLite's own lock with
//! a bounded `busy_timeout` ([`DeliveryJournal::with_db_wait`]). Every write
//! transaction is `BEGIN IMMEDIATE`, so a writer waits for the lock up front instead of
//! failing half-way when its read snapshot went stale.
//! WAL needs shared memory between the processes (`journal.sqlite3-shm`), so the state
//! directory must be on a local file system, not NFS.
//!
//! Durability is chosen per transaction. The connection runs with
//! `synchronous=NORMAL`: a commit is appended to the WAL without any fsync, so it
//! survives the death of the process (what an MTA retry faces) but the last commits
//! may be lost on power failure or a kernel crash. The commits that record a
//! side effect which cannot be safely repeated ([`Step::TicketCreated`],
//! [`Step::CommentAdded`], [`Step::Attachment`], [`Step::RequesterAdded`]) switch to
//! `synchronous=FULL` for that one commit: one fsync of the WAL, which also hardens
//! every earlier commit in it. Losing anything else (run counts, status, rate notes,
//! idempotent steps, `completed`) at a power cut only makes the next run redo
//! idempotent work or count one ticket less. Checkpoints (copying the WAL into the
//! main file, with their fsyncs) happen every [`WAL_AUTOCHECKPOINT_PAGES`] pages
//! instead of at every close, so that a short MDA process does not pay for one.
//!
//! Why SQLite: concurrent multi-process access in WAL mode with per-transaction
//! durability control, ubiquitous tooling (`sqlite3 journal.sqlite3` to inspect), and
//! long-term maintenance. The journal used redb before; redb lets only one process have
//! the file open, which forced an open/commit/close per operation at about five
//! fsyncs each (~12 ms per read, ~27 ms per recorded step on the reference machine,
//! 60-100 ms per new mail). There is no migration from `journal.redb`: nothing was
//! deployed with it.
//!
//! Mutual exclusion between two runs of the *same* mail is a separate, longer lock: one
//! lock file per key under `locks/`, held (OS advisory lock) by the [`MailRun`] for its
//! whole life. Because a run holds that lock, its cached view of its own steps is
//! authoritative: nobody else writes them while it lives.
//!
//! Layout: this file is the store (schema, [`DeliveryJournal`], [`MailRun`], the
//! journal-store port for the MDA); `lock` holds the per-mail lock files and `rate`
//! the per-sender counts of new tickets.

mod lock;
mod purge;
mod rate;

use lock::MailLock;
pub use purge::{DEFAULT_DELIVERED_DAYS, DEFAULT_OTHER_DAYS, PurgeReport, PurgedMail, Retention};
pub use rate::{MemoryRateLimitStore, RateLimitStore};

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Offset, TimeDelta, TimeZone, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use sha2::{Digest, Sha256};

use crate::domain::mail::Mail;
use crate::domain::mail_key::{MailIdentity, id_key};
use crate::domain::outcome::Status;
use crate::ports::{
    Clock, Journal, JournalStore, JournalUnavailable, MailJournal, PortError, Step, SystemClock,
};

mod mail_identity;
mod participants;
pub mod telemetry;
pub use mail_identity::{
    DIGEST_STEP, KnownMail, PERMANENT_STATUSES, PERMANENT_STEP, SnapshotJournals,
};

/// File name of the journal inside the state directory.
pub const DB_FILE_NAME: &str = "journal.sqlite3";
/// Sub-directory of the state directory holding the per-mail lock files.
pub const LOCKS_DIR_NAME: &str = "locks";
/// Status of a mail whose run started and has not recorded an outcome (yet).
pub const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";
/// WAL size (in 4 KiB pages) that triggers a checkpoint by the committing process:
/// small enough that the first opener's WAL recovery stays well under a millisecond,
/// large enough that checkpoints are rare.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 256;

/// Schema version stored in `PRAGMA user_version`.
/// 3: the `counters` table of the telemetry (issue 18); older journals gain it on open.
const SCHEMA_VERSION: i64 = 3;
/// Times are stored as UTC milliseconds plus the offset in seconds, so that a record
/// shows the time zone the mail was handled in.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS mails (
    key            TEXT PRIMARY KEY NOT NULL,
    first_seen_ms  INTEGER NOT NULL,
    first_seen_off INTEGER NOT NULL,
    last_run_ms    INTEGER NOT NULL,
    last_run_off   INTEGER NOT NULL,
    runs           INTEGER NOT NULL,
    status         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS mails_by_last_run ON mails (last_run_ms);
CREATE TABLE IF NOT EXISTS steps (
    key    TEXT NOT NULL,
    step   TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    value  TEXT NOT NULL,
    at_ms  INTEGER NOT NULL,
    at_off INTEGER NOT NULL,
    PRIMARY KEY (key, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rate (
    sender TEXT NOT NULL,
    at_ms  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rate_by_sender ON rate (sender, at_ms);
CREATE INDEX IF NOT EXISTS rate_by_time ON rate (at_ms);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);
";
const LAST_PRUNE: &str = "last_prune";
/// [`DeliveryJournal::purge_if_due`] purges at most this often.
const PRUNE_INTERVAL: TimeDelta = TimeDelta::hours(24);

const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_DB_WAIT: Duration = Duration::from_secs(10);

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

pub use crate::domain::mail_key::MAX_ID_KEY_LEN;

/// The journal key of a mail when nothing clashes: its Message-ID when it has a
/// non-blank one (or `id-sha256:<hex>` of it when longer than [`MAX_ID_KEY_LEN`]),
/// otherwise `sha256:<hex>` of its content digest
/// ([`crate::domain::mail_key::content_digest`]: a re-fetch with new trace headers
/// keeps it). See [`DeliveryJournal::begin_mail`] for the clash rule.
pub fn mail_key(message_id: Option<&str>, raw: &[u8]) -> String {
    MailIdentity::of(message_id, raw).primary_key()
}

/// The journal store of the MDA: opens the durable journal in the state folder for
/// each mail, prunes records older than the retention at most once a day, then takes
/// the mail's lock under the key of its identity (see [`DeliveryJournal::begin_mail`]).
/// Nothing is opened until a mail needs it.
#[derive(Debug, Clone)]
pub struct DurableJournals {
    pub state_dir: PathBuf,
    /// Ages of the daily prune (see [`DeliveryJournal::purge`]).
    pub retention: Retention,
    /// The quarantine whose mails keep their journal rows.
    pub quarantine_dir: PathBuf,
    /// `reprocess`: a permanent outcome of an earlier run is not repeated.
    pub retry_permanent: bool,
}

impl JournalStore for DurableJournals {
    fn begin(&self, mail: &Mail, raw: &[u8]) -> Result<Box<dyn MailJournal>, JournalUnavailable> {
        let now = SystemClock.now();
        let journal = DeliveryJournal::open(&self.state_dir)
            .map_err(|e| JournalUnavailable(format!("no puc obrir el journal: {e}")))?;
        let keep = || {
            crate::adapters::quarantine::Quarantine::new(&self.quarantine_dir)
                .journal_keys()
                .inspect_err(|e| {
                    // Without the quarantine's keys nothing is pruned (next run again).
                    tracing::warn!("Journal: no he pogut llegir la quarantena: {e}");
                })
                .ok()
        };
        match journal.purge_if_due(&self.retention, keep, now) {
            Ok(Some(r)) if r.mails() > 0 => {
                tracing::info!("Journal: {} registres antics esborrats", r.mails());
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("Journal: no he pogut esborrar registres antics: {e}"),
        }
        let identity = MailIdentity::of(mail.message_id.as_deref(), raw);
        let run = mail_identity::begin_durable(&journal, &identity, now, self.retry_permanent)?;
        Ok(Box::new(run))
    }

    fn counters(&self) -> Option<Box<dyn RateLimitStore>> {
        match DeliveryJournal::open(&self.state_dir) {
            Ok(j) => Some(Box::new(j)),
            Err(e) => {
                tracing::warn!("No puc obrir els comptadors d'informes i quarantena: {e}");
                None
            }
        }
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
    clock: Arc<dyn Clock + Send + Sync>,
    /// The one connection of this journal, shared by its clones and runs. SQLite
    /// connections are not `Sync`; every operation is short, so a mutex costs nothing.
    conn: Arc<Mutex<Connection>>,
}

impl DeliveryJournal {
    /// Opens (creating it and the directory when missing) `state_dir/journal.sqlite3`
    /// and keeps one connection to it for the life of the journal.
    pub fn open(state_dir: &Path) -> Result<Self, JournalError> {
        let locks_dir = state_dir.join(LOCKS_DIR_NAME);
        crate::adapters::private_files::create_dir_all(&locks_dir)?;
        let db_path = state_dir.join(DB_FILE_NAME);
        // 0600 before SQLite opens it: its -wal and -shm take the same mode.
        crate::adapters::private_files::precreate(&db_path)?;
        let conn = open_connection(&db_path, DEFAULT_DB_WAIT).map_err(|e| db_error(&db_path, e))?;
        Ok(Self {
            store: Arc::new(Store {
                db_path,
                locks_dir,
                lock_wait: DEFAULT_LOCK_WAIT,
                clock: Arc::new(SystemClock),
                conn: Arc::new(Mutex::new(conn)),
            }),
        })
    }

    /// How long [`DeliveryJournal::begin`] waits for another run of the same mail
    /// before giving up with [`JournalError::Busy`] (default 30 s).
    pub fn with_lock_wait(self, wait: Duration) -> Self {
        self.map_store(|s| s.lock_wait = wait)
    }

    /// How long one operation waits for the database's write lock held by another
    /// process before [`JournalError::Busy`] (default 10 s; each writer holds it for
    /// well under a millisecond, or one fsync). Applies to the shared connection, so
    /// to every clone of this journal.
    pub fn with_db_wait(self, wait: Duration) -> Self {
        {
            let conn = self.store.lock_conn();
            // Only fails on a closed connection, which the next operation reports.
            let _ = conn.busy_timeout(wait);
        }
        self
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
            clock: Arc::clone(&s.clock),
            conn: Arc::clone(&s.conn),
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
        let completed_key = Step::Completed.key();
        let steps = self.store.write(false, |tx| {
            let mut steps = HashMap::new();
            {
                let mut stmt = tx.prepare_cached("SELECT step, value FROM steps WHERE key = ?1")?;
                let rows = stmt.query_map([key], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (step, value) = row?;
                    steps.insert(step, value);
                }
            }
            // A completed mail keeps its final status; anything else is being worked
            // on again.
            let completed = steps.contains_key(&completed_key);
            tx.prepare_cached(
                "INSERT INTO mails
                     (key, first_seen_ms, first_seen_off, last_run_ms, last_run_off, runs, status)
                 VALUES (?1, ?2, ?3, ?2, ?3, 1, ?4)
                 ON CONFLICT (key) DO UPDATE SET
                     last_run_ms = excluded.last_run_ms,
                     last_run_off = excluded.last_run_off,
                     runs = min(runs + 1, 4294967295),
                     status = CASE WHEN ?5 THEN status ELSE excluded.status END",
            )?
            .execute(params![key, now_ms, now_off, STATUS_IN_PROGRESS, completed])?;
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
        self.store.read(|tx| {
            for key in &candidates {
                let mail = tx
                    .prepare_cached(&format!("{SELECT_MAIL} WHERE key = ?1"))?
                    .query_row([key], mail_row)
                    .optional()?;
                if let Some(mail) = mail {
                    return Ok(Some(with_steps(tx, mail)?));
                }
            }
            Ok(None)
        })
    }

    /// Every mail whose last run began at or after `since`, oldest first.
    pub fn list(&self, since: DateTime<FixedOffset>) -> Result<Vec<MailRecord>, JournalError> {
        let since_ms = since.timestamp_millis();
        self.store.read(|tx| {
            let mails = tx
                .prepare_cached(&format!(
                    "{SELECT_MAIL} WHERE last_run_ms >= ?1 ORDER BY last_run_ms, key"
                ))?
                .query_map([since_ms], mail_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut out = mails
                .into_iter()
                .map(|m| with_steps(tx, m))
                .collect::<Result<Vec<_>, _>>()?;
            // Same instant in different offsets: order by the instant, as stored.
            out.sort_by(|a, b| a.last_run.cmp(&b.last_run).then(a.key.cmp(&b.key)));
            Ok(out)
        })
    }
}

/// The journal of one mail being delivered, holding the mail's exclusive lock until
/// dropped. Each [`Journal::record`] is its own committed write transaction, made
/// durable against power loss (fsync'd) when the step is a non-idempotent side effect,
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
        self.store.write(false, |tx| {
            tx.prepare_cached("UPDATE mails SET status = ?2 WHERE key = ?1")?
                .execute([key, status])?;
            Ok(())
        })
    }

    fn write_step(
        &self,
        step: &Step,
        step_key: &str,
        value: &str,
        seq: u64,
    ) -> Result<(), JournalError> {
        let (at_ms, at_off) = split_time(self.store.clock.now());
        let key = self.key.as_str();
        let completes = matches!(step, Step::Completed);
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        self.store.write(is_side_effect(step), |tx| {
            tx.prepare_cached(
                "INSERT INTO steps (key, step, seq, value, at_ms, at_off)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (key, step) DO UPDATE SET
                     seq = excluded.seq, value = excluded.value,
                     at_ms = excluded.at_ms, at_off = excluded.at_off",
            )?
            .execute(params![key, step_key, seq, value, at_ms, at_off])?;
            if completes {
                tx.prepare_cached("UPDATE mails SET status = ?2 WHERE key = ?1")?
                    .execute([key, value])?;
            }
            Ok(())
        })
    }
}

impl MailJournal for MailRun {
    fn key(&self) -> &str {
        &self.key
    }

    fn set_status(&self, status: Status) -> Result<(), PortError> {
        MailRun::set_status(self, status.as_header()).map_err(PortError::from)
    }

    fn mark_permanent(&self, reason: &str) -> Result<(), PortError> {
        MailRun::mark_permanent(self, reason).map_err(PortError::from)
    }
}

/// Steps whose repetition would be visible (a second ticket, comment, attachment or
/// requester): their record must survive a power cut, not just a process crash.
fn is_side_effect(step: &Step) -> bool {
    matches!(
        step,
        Step::TicketCreated | Step::CommentAdded | Step::Attachment(_) | Step::RequesterAdded(_)
    )
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
        self.write_step(step, &step_key, value, seq)?;
        // Only after the commit: a failed write must not look done to this run either.
        steps.insert(step_key, value.to_string());
        Ok(())
    }
}

/// Opens the database in WAL mode and creates the schema when missing.
///
/// Several first openers of a new file (MDA processes started together on a fresh
/// state folder) race on the switch to WAL, and SQLite can answer one of them BUSY at
/// once, without its busy handler (the switch needs the file to itself, and a reader
/// that must upgrade cannot wait on the writer it blocks). The whole opening is then
/// tried again, briefly, until `busy_wait` has passed: a contended first open waits
/// like any other write instead of failing.
fn open_connection(path: &Path, busy_wait: Duration) -> rusqlite::Result<Connection> {
    let deadline = std::time::Instant::now() + busy_wait;
    let mut pause = Duration::from_millis(2);
    loop {
        match try_open_connection(path, busy_wait) {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && std::time::Instant::now() + pause < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

fn try_open_connection(path: &Path, busy_wait: Duration) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // First, so that even switching to WAL or creating the schema waits for others.
    conn.busy_timeout(busy_wait)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("no s'ha pogut activar el mode WAL (mode {mode})")),
        ));
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL;
         PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};"
    ))?;
    // The last process to close would otherwise checkpoint and delete the WAL (several
    // fsyncs) at every exit; the auto-checkpoint bounds the WAL instead.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        // IMMEDIATE: two first openers queue on the write lock instead of one failing
        // on a stale snapshot; `IF NOT EXISTS` makes the second one a no-op. On error
        // the connection is dropped, which rolls back.
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} {} {} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;",
            participants::SCHEMA,
            telemetry::SCHEMA
        ))?;
    }
    Ok(conn)
}

/// Maps SQLite's "busy/locked after the busy timeout" to [`JournalError::Busy`].
fn db_error(path: &Path, e: rusqlite::Error) -> JournalError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => JournalError::Busy(format!(
            "{} bloquejat per un altre procés: {e}",
            path.display()
        )),
        _ => JournalError::Storage(format!("{}: {e}", path.display())),
    }
}

impl Store {
    fn lock_path(&self, key: &str) -> PathBuf {
        self.locks_dir
            .join(format!("{:x}.lock", Sha256::digest(key.as_bytes())))
    }

    fn lock_conn(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-operation leaves no open transaction (dropping it rolls back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let conn = self.lock_conn();
        f(&conn).map_err(|e| db_error(&self.db_path, e))
    }

    /// Runs `f` in one read transaction: a consistent snapshot, never blocked by writers.
    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let mut conn = self.lock_conn();
        let run = || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        run().map_err(|e| db_error(&self.db_path, e))
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` write transaction and commits it; with
    /// `durable`, the commit is fsync'd (`synchronous=FULL`) before returning.
    fn write<T>(
        &self,
        durable: bool,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, JournalError> {
        let mut conn = self.lock_conn();
        if durable {
            conn.execute_batch("PRAGMA synchronous = FULL")
                .map_err(|e| db_error(&self.db_path, e))?;
        }
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })();
        if durable {
            // Back to the cheap default even when the write failed.
            let reset = conn.execute_batch("PRAGMA synchronous = NORMAL");
            if let (Ok(_), Err(e)) = (&result, reset) {
                return Err(db_error(&self.db_path, e));
            }
        }
        result.map_err(|e| db_error(&self.db_path, e))
    }
}

const SELECT_MAIL: &str =
    "SELECT key, first_seen_ms, first_seen_off, last_run_ms, last_run_off, runs, status FROM mails";

fn mail_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MailRecord> {
    Ok(MailRecord {
        key: r.get(0)?,
        first_seen: join_time(r.get(1)?, r.get(2)?),
        last_run: join_time(r.get(3)?, r.get(4)?),
        runs: u32::try_from(r.get::<_, i64>(5)?).unwrap_or(u32::MAX),
        status: r.get(6)?,
        steps: Vec::new(),
    })
}

fn with_steps(
    tx: &rusqlite::Transaction<'_>,
    mut mail: MailRecord,
) -> rusqlite::Result<MailRecord> {
    mail.steps = tx
        .prepare_cached(
            "SELECT step, value, at_ms, at_off FROM steps WHERE key = ?1 ORDER BY seq, at_ms",
        )?
        .query_map([&mail.key], |r| {
            Ok(StepRecord {
                step: r.get(0)?,
                value: r.get(1)?,
                at: join_time(r.get(2)?, r.get(3)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(mail)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn synchronous(j: &DeliveryJournal) -> i64 {
        j.store
            .with_conn(|c| c.query_row("PRAGMA synchronous", [], |r| r.get(0)))
            .unwrap()
    }

    #[test]
    fn side_effect_steps_are_fsynced_and_the_default_stays_cheap() {
        assert!(is_side_effect(&Step::TicketCreated));
        assert!(is_side_effect(&Step::CommentAdded));
        assert!(is_side_effect(&Step::Attachment(3)));
        assert!(is_side_effect(&Step::RequesterAdded("joan".into())));
        assert!(!is_side_effect(&Step::Completed));
        assert!(!is_side_effect(&Step::DescriptionUpdated));

        let dir = tempfile::tempdir().unwrap();
        let j = DeliveryJournal::open(dir.path()).unwrap();
        const NORMAL: i64 = 1;
        assert_eq!(synchronous(&j), NORMAL);
        let now = Utc::now().fixed_offset();
        let run = j.begin("<sync@x>", now).unwrap();
        run.record(&Step::TicketCreated, "T-1").unwrap();
        // FULL only for that commit: back to NORMAL for the next ones.
        assert_eq!(synchronous(&j), NORMAL);
        assert_eq!(run.done(&Step::TicketCreated).as_deref(), Some("T-1"));
    }
}
