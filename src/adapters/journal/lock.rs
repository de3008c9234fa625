//! The per-mail lock: one lock file per journal key under `locks/`, held with an OS
//! advisory lock by the mail's run for its whole life.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use super::JournalError;

/// Longest pause between two tries for a mail lock (held for a whole run).
const MAX_LOCK_PAUSE: Duration = Duration::from_millis(50);

/// The exclusive advisory lock of one mail, released when dropped (or when the process
/// dies, which is what makes a crashed run harmless).
pub(super) struct MailLock {
    _file: File,
}

impl MailLock {
    pub(super) fn acquire(path: &Path, wait: Duration, key: &str) -> Result<Self, JournalError> {
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(1);
        loop {
            let file = crate::adapters::private_files::file_options()
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

    /// Whether a run holds the lock file at `path` now (a missing file: no).
    pub(super) fn is_held(path: &Path) -> bool {
        let Ok(file) = OpenOptions::new().read(true).write(true).open(path) else {
            return false;
        };
        matches!(file.try_lock(), Err(TryLockError::WouldBlock))
    }

    /// Deletes a lock file nobody holds. Deleting under our own lock is safe because
    /// [`MailLock::acquire`] checks that the locked inode is still the one at the path.
    pub(super) fn remove_if_free(path: &Path) {
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
