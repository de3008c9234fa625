//! Quarantine adapter (driven side of the hexagon): mails that ended in ERROR, REJECT
//! or UNKNOWN are kept on disk, byte for byte, with the reason beside them, so that
//! `mailtoticket reprocess` can run them again once the cause is fixed.
//!
//! Layout: `<dir>/<UTC time>-<hash>.eml` holds the raw mail unchanged and
//! `<dir>/<UTC time>-<hash>.reason` the status and reason (a sidecar, because a header
//! added to the mail would change its bytes and thus its journal key when it has no
//! Message-ID). Names sort by time. Both files are written to a temporary name and
//! renamed, the sidecar first: an `.eml` present means the entry is complete.

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
        Self { dir: dir.into() }
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
        super::private_files::create_dir_all(&self.dir)?;
        let stamp = now.with_timezone(&Utc).format("%Y%m%dT%H%M%S%.3fZ");
        // The first 6 bytes of the digest: 12 hex digits.
        let stem = format!("{stamp}-{:.12x}", Sha256::digest(raw));
        let mail_path = self.dir.join(format!("{stem}.{MAIL_EXT}"));
        let reason_path = self.dir.join(format!("{stem}.{REASON_EXT}"));
        let sidecar = format!(
            "status: {}\nquarantined-at: {}\nreason: {}\n",
            one_line(status),
            now.to_rfc3339(),
            reason
        );
        write_atomic(&reason_path, sidecar.as_bytes(), Durability::Fsync)?;
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
        for p in [path.to_path_buf(), reason_path(path)] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(parent) = path.parent() {
            sync_dir(parent);
        }
        Ok(())
    }
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
        self.put(
            raw,
            status.as_header(),
            reason,
            crate::ports::SystemClock.now(),
        )
        .map(|path| path.display().to_string())
        .map_err(|source| {
            Box::new(QuarantineError {
                dir: self.dir.clone(),
                source,
            }) as crate::ports::BoxError
        })
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
