//! Writing a file so that no reader ever sees half of it: the bytes go to a temporary
//! file in the same folder, which then takes the final name. Used by the quarantine
//! (durable) and by the simulator's state (consistent between processes only).

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a completed write survives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Power loss: the data is fsynced before it takes the final name (the caller
    /// syncs the folder if the name itself must survive too).
    Fsync,
    /// Other processes only. An existing file is first moved aside and removed after
    /// the new one took its name, instead of renaming over it: ext4 (auto_da_alloc)
    /// flushes the data of a file renamed over another one, which made every write cost
    /// milliseconds. The moment where `path` is missing must be invisible to readers,
    /// so they must hold a lock of the folder.
    Consistent,
}

/// Writes `bytes` to `path` atomically (see [`Durability`]), creating its folder.
pub fn write_atomic(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let unique = format!(
        "{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let tmp = dir.join(format!(".tmp-{unique}"));
    let result = (|| {
        // 0600 whatever the umask (issue 10): quarantined mail is other people's mail.
        let mut f = super::private_files::file_options()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        match durability {
            Durability::Fsync => {
                f.sync_all()?;
                drop(f);
                fs::rename(&tmp, path)
            }
            Durability::Consistent => {
                drop(f);
                let aside = dir.join(format!(".old-{unique}"));
                let moved = match fs::rename(path, &aside) {
                    Ok(()) => true,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                    Err(e) => return Err(e),
                };
                if let Err(e) = fs::rename(&tmp, path) {
                    if moved {
                        let _ = fs::rename(&aside, path);
                    }
                    return Err(e);
                }
                if moved {
                    let _ = fs::remove_file(&aside);
                }
                Ok(())
            }
        }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("f.txt");
        for durability in [Durability::Fsync, Durability::Consistent] {
            write_atomic(&path, b"first version, longer", durability).unwrap();
            write_atomic(&path, b"second", durability).unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"second");
        }
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["f.txt"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        write_atomic(&path, b"old", Durability::Consistent).unwrap();
        // A folder in the way of the final name: the rename fails.
        let blocked = dir.path().join("d");
        fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomic(&blocked, b"new", Durability::Fsync).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert!(blocked.join("x").is_dir());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }
}
