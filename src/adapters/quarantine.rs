//! Quarantine adapter (driven side of the hexagon): mails that ended in ERROR, REJECT
//! or UNKNOWN are kept on disk, byte for byte, with the reason beside them, so that
//! `mailtoticket reprocess` can run them again once the cause is fixed.
//!
//! Layout: `<dir>/<UTC time>-<hash>.eml` holds the raw mail unchanged and
//! `<dir>/<UTC time>-<hash>.reason` the status and reason (a sidecar, because a header
//! added to the mail would change its bytes and thus its journal key when it has no
//! Message-ID). Names sort by time. Both files are written to a temporary name and
//! renamed, the sidecar first: an `.eml` present means the entry is complete.
//!
//! The sidecar is `key: value` lines with `reason:` last (it may span lines): `status`,
//! `quarantined-at`, then what `mailtoticket quarantine` adds (a reader that only knows
//! the first three skips them): `config` (the configuration file the mail ran with),
//! `source` (`mda (stdin)`, `imap MAILBOX`, `import`), `journal-key` /
//! `journal-clash-key` (the keys the mail has or may have in the journal: `journal
//! purge` keeps those rows), `retries`, `last-retry-at`, `last-error` (each
//! `quarantine reprocess` that did not end the entry), `imported-from`.
//! The ID of an entry is its file stem (`20261206T101500.123Z-abcdef012345`).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};
use sha2::{Digest, Sha256};

use crate::adapters::atomic_file::{Durability, write_atomic};

/// Suggested name of the quarantine folder inside the state directory.
pub const DEFAULT_DIR_NAME: &str = "quarantine";
/// Extension of the raw mail files.
pub const MAIL_EXT: &str = "eml";
/// Extension of the sidecar reason files.
pub const REASON_EXT: &str = "reason";

/// A quarantine folder.
#[derive(Debug, Clone)]
pub struct Quarantine {
    dir: PathBuf,
    /// Written into the sidecar of each new entry (see [`Quarantine::with_provenance`]).
    provenance: Option<Provenance>,
    /// `reprocess` of this entry: [`crate::ports::MailQuarantine::keep`] leaves it in
    /// place instead of storing the mail a second time.
    replaying: Option<PathBuf>,
}

/// How a mail came to be handled, recorded at quarantine time so that `reprocess`
/// runs it again the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The configuration file the run used (absolute when known).
    pub config: Option<PathBuf>,
    /// `mda (stdin)`, `imap MAILBOX`...
    pub source: String,
}

/// One quarantined mail, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedMail {
    /// Path of the `.eml` file.
    pub path: PathBuf,
    /// The raw mail, exactly as received.
    pub raw: Vec<u8>,
    /// Status the run ended with (`ERROR`, `REJECT`, `UNKNOWN`); empty when unknown.
    pub status: String,
    /// Why it was quarantined; empty when the sidecar is missing.
    pub reason: String,
    /// When it was quarantined (RFC 3339), as written in the sidecar.
    pub quarantined_at: String,
}

impl Quarantine {
    /// A quarantine in `dir` (created on the first [`Quarantine::put`]).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            provenance: None,
            replaying: None,
        }
    }

    /// New entries record how the mail ran (configuration and source).
    pub fn with_provenance(mut self, provenance: Provenance) -> Self {
        self.provenance = Some(provenance);
        self
    }

    /// The mail being run is the entry `path` of this quarantine (`reprocess`): a
    /// failure keeps that entry instead of adding a copy.
    pub fn replaying(mut self, path: Option<PathBuf>) -> Self {
        self.replaying = path;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `raw` with its status and reason; returns the path of the `.eml` file.
    /// Storing the same mail twice in the same millisecond gives the same name and
    /// the same content, which is harmless.
    pub fn put(
        &self,
        raw: &[u8],
        status: &str,
        reason: &str,
        now: DateTime<FixedOffset>,
    ) -> io::Result<PathBuf> {
        let sidecar = Sidecar {
            status: one_line(status),
            quarantined_at: now.to_rfc3339(),
            fields: Vec::new(),
            reason: reason.to_string(),
        };
        self.put_sidecar(raw, &sidecar, now, None)
    }

    /// Stores `raw` with a whole sidecar; `stem` keeps a given ID (an import of an
    /// export), else the ID is made of `now` and the mail's digest.
    pub fn put_sidecar(
        &self,
        raw: &[u8],
        sidecar: &Sidecar,
        now: DateTime<FixedOffset>,
        stem: Option<&str>,
    ) -> io::Result<PathBuf> {
        super::private_files::create_dir_all(&self.dir)?;
        let stem = match stem {
            Some(s) if is_valid_stem(s) => s.to_string(),
            _ => {
                let stamp = now.with_timezone(&Utc).format("%Y%m%dT%H%M%S%.3fZ");
                // The first 6 bytes of the digest: 12 hex digits.
                format!("{stamp}-{}", short_hash(raw))
            }
        };
        let mail_path = self.dir.join(format!("{stem}.{MAIL_EXT}"));
        let reason_path = self.dir.join(format!("{stem}.{REASON_EXT}"));
        write_atomic(&reason_path, sidecar.render().as_bytes(), Durability::Fsync)?;
        write_atomic(&mail_path, raw, Durability::Fsync)?;
        sync_dir(&self.dir);
        Ok(mail_path)
    }

    /// The quarantined mails (`.eml` paths), oldest first. A missing folder is empty.
    pub fn list(&self) -> io::Result<Vec<PathBuf>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."));
            let is_mail = path.extension().is_some_and(|e| e == MAIL_EXT);
            if is_mail && !hidden && path.is_file() {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads a quarantined mail (any mail file works; its sidecar is optional).
    pub fn read(&self, path: &Path) -> io::Result<QuarantinedMail> {
        let raw = fs::read(path)?;
        let (mut status, mut reason, mut at) = (String::new(), String::new(), String::new());
        match fs::read(reason_path(path)) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                let mut rest = text.as_ref();
                while let Some((line, tail)) = rest.split_once('\n') {
                    if let Some(v) = line.strip_prefix("status: ") {
                        status = v.to_string();
                    } else if let Some(v) = line.strip_prefix("quarantined-at: ") {
                        at = v.to_string();
                    } else if let Some(v) = line.strip_prefix("reason: ") {
                        // The reason is last and may span lines.
                        let full = format!("{v}\n{tail}");
                        reason = full.strip_suffix('\n').unwrap_or(&full).to_string();
                        break;
                    }
                    rest = tail;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(QuarantinedMail {
            path: path.to_path_buf(),
            raw,
            status,
            reason,
            quarantined_at: at,
        })
    }

    /// Removes a quarantined mail and its sidecar, mail first (an orphan sidecar is
    /// ignored by [`Quarantine::list`]). Missing files are not an error.
    pub fn remove(&self, path: &Path) -> io::Result<()> {
        unlink_entry(path)?;
        if let Some(parent) = path.parent() {
            sync_dir(parent);
        }
        Ok(())
    }

    /// [`Quarantine::remove`] of several entries with one folder sync at the end
    /// (`purge` of a large quarantine); one result per path, in order.
    pub fn remove_many(&self, paths: &[PathBuf]) -> Vec<io::Result<()>> {
        let out = paths.iter().map(|p| unlink_entry(p)).collect();
        sync_dir(&self.dir);
        out
    }
}

fn unlink_entry(path: &Path) -> io::Result<()> {
    for p in [path.to_path_buf(), reason_path(path)] {
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The sidecar of a mail file.
pub fn reason_path(mail_path: &Path) -> PathBuf {
    mail_path.with_extension(REASON_EXT)
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Makes renames durable; best effort (not every platform can open a directory).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The quarantine could not store a mail.
#[derive(Debug, thiserror::Error)]
#[error("{}", dir.display())]
pub struct QuarantineError {
    pub dir: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The quarantine port of the use case: stamped with the system clock.
impl crate::ports::MailQuarantine for Quarantine {
    fn keep(
        &self,
        raw: &[u8],
        status: crate::domain::outcome::Status,
        reason: &str,
    ) -> Result<String, crate::ports::BoxError> {
        use crate::ports::Clock;
        // `reprocess` of an entry: it stays where it is (the caller records the retry).
        if let Some(path) = &self.replaying {
            return Ok(path.display().to_string());
        }
        let now = crate::ports::SystemClock.now();
        let mut sidecar = Sidecar {
            status: one_line(status.as_header()),
            quarantined_at: now.to_rfc3339(),
            fields: Vec::new(),
            reason: reason.to_string(),
        };
        if let Some(p) = &self.provenance {
            if let Some(config) = &p.config {
                sidecar.set(FIELD_CONFIG, &config.display().to_string());
            }
            sidecar.set(FIELD_SOURCE, &p.source);
        }
        for (field, key) in [FIELD_JOURNAL_KEY, FIELD_JOURNAL_CLASH_KEY]
            .into_iter()
            .zip(journal_keys_of(raw))
        {
            // A key with a control character cannot be one sidecar line; `journal
            // purge` derives it from the mail again.
            if !key.chars().any(char::is_control) {
                sidecar.set(field, &key);
            }
        }
        self.put_sidecar(raw, &sidecar, now, None)
            .map(|path| path.display().to_string())
            .map_err(|source| {
                Box::new(QuarantineError {
                    dir: self.dir.clone(),
                    source,
                }) as crate::ports::BoxError
            })
    }

    fn already_kept(&self) -> bool {
        self.replaying.is_some()
    }

    /// In `parts/` under the quarantine, where `reprocess` never looks (the mail
    /// itself was delivered). The name depends only on the mail's key and the part,
    /// so a later run of the same mail writes the same file again, not a new one.
    fn keep_part(
        &self,
        key: &str,
        n: usize,
        name: &str,
        data: &[u8],
        reason: &str,
    ) -> Result<String, crate::ports::BoxError> {
        let dir = self.dir.join(PARTS_DIR);
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
        let write = || -> io::Result<()> {
            fs::create_dir_all(&dir)?;
            fs::write(&path, data)?;
            let mut note = path.clone().into_os_string();
            note.push(".txt");
            fs::write(
                note,
                format!(
                    "journal: {key}\npart: {}\nnom: {name}\nmotiu: {reason}\n",
                    n + 1
                ),
            )
        };
        write().map_err(|source| {
            Box::new(QuarantineError {
                dir: dir.clone(),
                source,
            }) as crate::ports::BoxError
        })?;
        Ok(path.display().to_string())
    }
}

/// Sub-folder of the quarantine holding single parts that could not be attached.
pub const PARTS_DIR: &str = "parts";

/// Sidecar field: the configuration file the mail ran with.
pub const FIELD_CONFIG: &str = "config";
/// Sidecar field: how the mail came (`mda (stdin)`, `imap MAILBOX`, `import`).
pub const FIELD_SOURCE: &str = "source";
/// Sidecar field: the mail's journal key when nothing clashes.
pub const FIELD_JOURNAL_KEY: &str = "journal-key";
/// Sidecar field: the mail's journal key when its Message-ID belonged to another mail.
pub const FIELD_JOURNAL_CLASH_KEY: &str = "journal-clash-key";
/// Sidecar field: how many `reprocess` runs did not end the entry.
pub const FIELD_RETRIES: &str = "retries";
/// Sidecar field: when the last of them ran (RFC 3339).
pub const FIELD_LAST_RETRY_AT: &str = "last-retry-at";
/// Sidecar field: how the last of them ended (`STATUS: reason`, one line).
pub const FIELD_LAST_ERROR: &str = "last-error";
/// Sidecar field: where `quarantine import` took the mail from.
pub const FIELD_IMPORTED_FROM: &str = "imported-from";
/// The `config` an imported entry had where it was exported: kept for the record, never
/// loaded (a path in someone else's export must not choose what this host runs).
pub const FIELD_EXPORTED_CONFIG: &str = "exported-config";

/// The sidecar of an entry: `status`, `quarantined-at`, other `key: value` fields in
/// file order, and the reason (last, may span lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sidecar {
    pub status: String,
    pub quarantined_at: String,
    pub fields: Vec<(String, String)>,
    pub reason: String,
}

impl Sidecar {
    /// Parses a sidecar; lines that are not `key: value` are ignored.
    pub fn parse(text: &str) -> Sidecar {
        let mut out = Sidecar::default();
        let mut rest = text;
        while !rest.is_empty() {
            let (line, tail) = rest.split_once('\n').unwrap_or((rest, ""));
            if let Some(v) = line.strip_prefix("reason: ") {
                // The reason is last and may span lines.
                let full = format!("{v}\n{tail}");
                out.reason = full.strip_suffix('\n').unwrap_or(&full).to_string();
                break;
            }
            if let Some((k, v)) = line.split_once(": ") {
                match k {
                    "status" => out.status = v.to_string(),
                    "quarantined-at" => out.quarantined_at = v.to_string(),
                    _ if is_field_name(k) => out.fields.push((k.to_string(), v.to_string())),
                    _ => {}
                }
            }
            rest = tail;
        }
        out
    }

    /// The sidecar's text: every value on one line, the reason last.
    pub fn render(&self) -> String {
        let mut out = format!(
            "status: {}\nquarantined-at: {}\n",
            one_line(&self.status),
            one_line(&self.quarantined_at)
        );
        for (k, v) in &self.fields {
            if is_field_name(k) && !matches!(k.as_str(), "status" | "quarantined-at" | "reason") {
                out.push_str(&format!("{k}: {}\n", one_line(v)));
            }
        }
        out.push_str(&format!("reason: {}\n", self.reason));
        out
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets (or adds, at the end) one field.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_string(),
            None => self.fields.push((key.to_string(), value.to_string())),
        }
    }

    /// Removes one field (if present).
    pub fn unset(&mut self, key: &str) {
        self.fields.retain(|(k, _)| k != key);
    }

    /// `reprocess` runs that did not end the entry.
    pub fn retries(&self) -> u32 {
        self.get(FIELD_RETRIES)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn is_field_name(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 40
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit())
}

/// One entry of the quarantine, without its mail's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file stem: `<UTC stamp>-<12 hex digits>`.
    pub id: String,
    /// Path of the `.eml` file.
    pub path: PathBuf,
    /// Size of the mail in bytes.
    pub size: u64,
    pub sidecar: Sidecar,
}

impl Entry {
    /// When the mail was quarantined: the sidecar's time, else the ID's stamp.
    pub fn quarantined_at(&self) -> Option<DateTime<FixedOffset>> {
        DateTime::parse_from_rfc3339(self.sidecar.quarantined_at.trim())
            .ok()
            .or_else(|| stamp_of(&self.id))
    }
}

/// The time in an ID (`20261206T101500.123Z-…`).
pub fn stamp_of(id: &str) -> Option<DateTime<FixedOffset>> {
    let stamp = id.split('-').next()?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3fZ")
        .ok()
        .map(|t| t.and_utc().fixed_offset())
}

/// A name [`Quarantine::put_sidecar`] would make: stamp, `-`, 12 hex digits.
pub fn is_valid_stem(stem: &str) -> bool {
    match stem.split_once('-') {
        Some((stamp, hash)) => {
            stamp_of(stem).is_some()
                && stamp.len() <= 24
                && hash.len() == 12
                && hash
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        }
        None => false,
    }
}

fn short_hash(raw: &[u8]) -> String {
    Sha256::digest(raw)[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The keys the mail may have in the journal: its primary key, then its clash key
/// when it has a Message-ID (see `crate::adapters::journal::mail_identity`).
pub fn journal_keys_of(raw: &[u8]) -> Vec<String> {
    // Only the header block is parsed: the Message-ID is all that is needed.
    let mail = crate::adapters::mail::parse(header_block(raw), &Default::default());
    let identity = crate::domain::mail_key::MailIdentity::of(mail.message_id.as_deref(), raw);
    let mut keys = vec![identity.primary_key()];
    if identity.message_id.is_some() {
        keys.push(identity.clash_key());
    }
    keys
}

/// The entries of a quarantine by the hash in their names, for importing many mails
/// (each compared by content only with the entries of the same hash).
#[derive(Debug)]
pub struct ImportIndex<'q> {
    quarantine: &'q Quarantine,
    by_hash: std::collections::HashMap<String, Vec<PathBuf>>,
}

impl<'q> ImportIndex<'q> {
    /// Lists `quarantine` once.
    pub fn new(quarantine: &'q Quarantine) -> io::Result<Self> {
        let mut by_hash: std::collections::HashMap<String, Vec<PathBuf>> = Default::default();
        for p in quarantine.list()? {
            let hash = p
                .file_stem()
                .map(|s| {
                    s.to_string_lossy()
                        .rsplit('-')
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default();
            by_hash.entry(hash).or_default().push(p);
        }
        Ok(Self {
            quarantine,
            by_hash,
        })
    }

    /// Adds a mail unless the same bytes are already an entry (idempotent import);
    /// returns the entry and whether it is new. The index is kept up to date.
    pub fn import(
        &mut self,
        raw: &[u8],
        sidecar: &Sidecar,
        now: DateTime<FixedOffset>,
        stem: Option<&str>,
    ) -> io::Result<(PathBuf, bool)> {
        let hash = short_hash(raw);
        if let Some(same) = self
            .by_hash
            .get(&hash)
            .into_iter()
            .flatten()
            .find(|p| fs::read(p).is_ok_and(|b| b == raw))
        {
            return Ok((same.clone(), false));
        }
        let (path, new) = self.quarantine.put_new(raw, sidecar, now, stem)?;
        self.by_hash.entry(hash).or_default().push(path.clone());
        Ok((path, new))
    }
}

/// The header block of a raw mail, with the blank line that ends it (the whole mail
/// when there is none): enough to read From, Subject, Message-ID.
pub fn header_block(raw: &[u8]) -> &[u8] {
    let lf = memchr::memmem::find(raw, b"\n\n").map(|i| i + 2);
    let crlf = memchr::memmem::find(raw, b"\n\r\n").map(|i| i + 3);
    let end = match (lf, crlf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(raw.len()),
    };
    &raw[..end]
}

/// One part of a delivered mail that GN6 did not take (`parts/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartEntry {
    pub path: PathBuf,
    pub size: u64,
    /// The `key: value` lines of its `.txt` note (`journal`, `part`, `nom`, `motiu`).
    pub note: Vec<(String, String)>,
    pub modified: Option<DateTime<FixedOffset>>,
}

/// Why an ID names no entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}: no such entry in the quarantine")]
    NotFound(String),
    #[error("{0}: more than one entry matches ({1})")]
    Ambiguous(String, String),
    #[error("{0}: not a mail of the quarantine folder {1}")]
    Outside(String, String),
}

impl Quarantine {
    /// Every entry (mail and sidecar), oldest first; see [`Quarantine::list`].
    pub fn entries(&self) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        for path in self.list()? {
            match self.entry(&path) {
                Ok(e) => out.push(e),
                // Removed meanwhile (a concurrent `reprocess`): not an entry any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The entry of one `.eml` path (its sidecar is optional).
    pub fn entry(&self, path: &Path) -> io::Result<Entry> {
        let size = fs::metadata(path)?.len();
        Ok(Entry {
            id: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_path_buf(),
            size,
            sidecar: self.sidecar(path)?,
        })
    }

    /// The sidecar of a mail file; empty when missing.
    pub fn sidecar(&self, mail_path: &Path) -> io::Result<Sidecar> {
        match fs::read(reason_path(mail_path)) {
            Ok(bytes) => Ok(Sidecar::parse(&String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Sidecar::default()),
            Err(e) => Err(e),
        }
    }

    /// Replaces the sidecar of an entry atomically.
    pub fn write_sidecar(&self, mail_path: &Path, sidecar: &Sidecar) -> io::Result<()> {
        write_atomic(
            &reason_path(mail_path),
            sidecar.render().as_bytes(),
            Durability::Fsync,
        )?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Notes one `reprocess` run that left the entry in place: `retries` + 1,
    /// `last-retry-at`, `last-error` (`STATUS: reason`). Returns the new count.
    pub fn record_retry(
        &self,
        mail_path: &Path,
        status: &str,
        error: &str,
        now: DateTime<FixedOffset>,
    ) -> io::Result<u32> {
        let mut sidecar = self.sidecar(mail_path)?;
        let retries = sidecar.retries().saturating_add(1);
        sidecar.set(FIELD_RETRIES, &retries.to_string());
        sidecar.set(FIELD_LAST_RETRY_AT, &now.to_rfc3339());
        sidecar.set(FIELD_LAST_ERROR, &format!("{status}: {error}"));
        self.write_sidecar(mail_path, &sidecar)?;
        Ok(retries)
    }

    /// The entry an argument names: its ID, a unique prefix of its ID or of its hash
    /// (the 12 hex digits after the `-`), or a path of a mail inside this folder.
    /// Only entries [`Quarantine::list`] returns can come out, so `../x` or a path
    /// elsewhere never names a file outside the quarantine.
    pub fn resolve(&self, arg: &str) -> Result<PathBuf, ResolveError> {
        let listed = self
            .list()
            .map_err(|_| ResolveError::NotFound(arg.to_string()))?;
        if arg.contains('/') || arg.contains(std::path::MAIN_SEPARATOR) {
            let outside = || ResolveError::Outside(arg.to_string(), self.dir.display().to_string());
            let wanted = fs::canonicalize(arg).map_err(|_| outside())?;
            return listed
                .into_iter()
                .find(|p| fs::canonicalize(p).is_ok_and(|c| c == wanted))
                .ok_or_else(outside);
        }
        let id = arg.strip_suffix(".eml").unwrap_or(arg);
        if id.is_empty() {
            return Err(ResolveError::NotFound(arg.to_string()));
        }
        let stem = |p: &PathBuf| {
            p.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        if let Some(p) = listed.iter().find(|p| stem(p) == id) {
            return Ok(p.clone());
        }
        let matches: Vec<&PathBuf> = listed
            .iter()
            .filter(|p| {
                let s = stem(p);
                let hash = s.rsplit('-').next().unwrap_or("");
                s.starts_with(id) || hash.starts_with(id)
            })
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(ResolveError::NotFound(arg.to_string())),
            many => Err(ResolveError::Ambiguous(
                arg.to_string(),
                many.iter().map(|p| stem(p)).collect::<Vec<_>>().join(", "),
            )),
        }
    }

    /// Stores a new entry for `import` (see [`ImportIndex`]): a given ID is kept
    /// only when it belongs to these bytes and is free.
    fn put_new(
        &self,
        raw: &[u8],
        sidecar: &Sidecar,
        now: DateTime<FixedOffset>,
        stem: Option<&str>,
    ) -> io::Result<(PathBuf, bool)> {
        // A given ID must belong to these bytes; otherwise a new one is made.
        let stem = stem.filter(|s| s.ends_with(&format!("-{}", short_hash(raw))));
        let stem = stem.filter(|s| !self.dir.join(format!("{s}.{MAIL_EXT}")).exists());
        self.put_sidecar(raw, sidecar, now, stem).map(|p| (p, true))
    }

    /// The journal keys of every mail still in the quarantine (from the sidecars and
    /// from the mails themselves): `journal purge` keeps their rows.
    pub fn journal_keys(&self) -> io::Result<std::collections::HashSet<String>> {
        let mut keys = std::collections::HashSet::new();
        for e in self.entries()? {
            for f in [FIELD_JOURNAL_KEY, FIELD_JOURNAL_CLASH_KEY] {
                if let Some(k) = e.sidecar.get(f) {
                    keys.insert(k.to_string());
                }
            }
            // Written since the sidecar records them: no need to read the mail.
            if e.sidecar.get(FIELD_JOURNAL_KEY).is_some() {
                continue;
            }
            match fs::read(&e.path) {
                Ok(raw) => keys.extend(journal_keys_of(&raw)),
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
        Ok(keys)
    }

    /// The refused attachment parts kept under `parts/`, oldest first.
    pub fn parts(&self) -> io::Result<Vec<PartEntry>> {
        let dir = self.dir.join(PARTS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') || name.ends_with(".txt") || !path.is_file() {
                continue;
            }
            let meta = fs::metadata(&path)?;
            let mut note_path = path.clone().into_os_string();
            note_path.push(".txt");
            let note = fs::read(PathBuf::from(note_path))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .lines()
                        .filter_map(|l| l.split_once(": "))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            out.push(PartEntry {
                path,
                size: meta.len(),
                note,
                modified: meta
                    .modified()
                    .ok()
                    .map(|t| DateTime::<Utc>::from(t).fixed_offset()),
            });
        }
        out.sort_by(|a, b| a.modified.cmp(&b.modified).then(a.path.cmp(&b.path)));
        Ok(out)
    }

    /// Removes one refused part and its note.
    pub fn remove_part(&self, path: &Path) -> io::Result<()> {
        let mut note = path.to_path_buf().into_os_string();
        note.push(".txt");
        for p in [path.to_path_buf(), PathBuf::from(note)] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
