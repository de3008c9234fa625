//! Private state on disk (issue 10): the log, the journal (with its `-wal`/`-shm`)
//! and the quarantined mails hold other people's mail, so folders are created 0700
//! and files 0600 whatever the process umask; `check` warns about existing ones
//! that are wider. On non-Unix systems the platform defaults apply.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// Mode of the folders created for the state.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files created in them.
pub const FILE_MODE: u32 = 0o600;

/// `create_dir_all` whose newly created folders are 0700 (existing ones untouched).
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(DIR_MODE);
    }
    b.create(path)
}

/// Open options whose newly created file is 0600.
pub fn file_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(FILE_MODE);
    }
    o
}

/// Creates `path` empty with mode 0600 when it does not exist yet (so that a library
/// creating it afterwards, and the files SQLite derives from it, inherit the mode).
pub fn precreate(path: &Path) -> io::Result<()> {
    match file_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The permission bits of `path` when some are granted beyond `allowed`.
#[cfg(unix)]
pub fn wider_than(path: &Path, allowed: u32) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & !allowed != 0).then_some(mode)
}

#[cfg(not(unix))]
pub fn wider_than(_path: &Path, _allowed: u32) -> Option<u32> {
    None
}

/// One warning per existing state folder wider than 0700 or state file wider than
/// 0600: the log, the state folder, the journal and its `-wal`/`-shm`, the
/// quarantine folder and the files in it.
pub fn mode_warnings(log_file: &Path, state_dir: &Path, quarantine_dir: &Path) -> Vec<String> {
    let mut dirs: Vec<PathBuf> = vec![state_dir.to_path_buf(), quarantine_dir.to_path_buf()];
    dirs.dedup();
    let mut files: Vec<PathBuf> = vec![log_file.to_path_buf()];
    for name in [
        "journal.sqlite3",
        "journal.sqlite3-wal",
        "journal.sqlite3-shm",
    ] {
        files.push(state_dir.join(name));
    }
    if let Ok(entries) = fs::read_dir(quarantine_dir) {
        files.extend(
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_file()),
        );
    }
    let mut out = Vec::new();
    for d in dirs.iter().filter(|d| d.is_dir()) {
        if let Some(mode) = wider_than(d, DIR_MODE) {
            out.push(format!(
                "{} is {mode:03o}: it holds other people's mail, chmod 700 it",
                d.display()
            ));
        }
    }
    for f in files.iter().filter(|f| f.is_file()) {
        if let Some(mode) = wider_than(f, FILE_MODE) {
            out.push(format!(
                "{} is {mode:03o}: it holds other people's mail, chmod 600 it",
                f.display()
            ));
        }
    }
    out
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_wider_ones_reported() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/b");
        create_dir_all(&state).unwrap();
        assert_eq!(wider_than(&state, 0o700), None);
        let f = state.join("x.log");
        file_options().create(true).append(true).open(&f).unwrap();
        assert_eq!(wider_than(&f, 0o600), None);
        precreate(&state.join("journal.sqlite3")).unwrap();
        assert_eq!(wider_than(&state.join("journal.sqlite3"), 0o600), None);
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        let w = mode_warnings(&f, &state, &state.join("q"));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("644"));
    }
}
