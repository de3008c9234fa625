//! STUB (branch mda only; the lead replaces it at merge with calls into
//! `crate::adapters::journal` / `crate::adapters::quarantine`): what the `journal`
//! and `reprocess` subcommands need from the journal and the quarantine.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Human-readable record of one mail (by Message-ID or journal key).
pub fn show(config: &Config, id: &str) -> Result<String, String> {
    let _ = (config, id);
    Err("journal not implemented in this branch".into())
}

/// One line per mail handled since `since` (YYYY-MM-DD), or all.
pub fn list(config: &Config, since: Option<&str>) -> Result<String, String> {
    let _ = (config, since);
    Err("journal not implemented in this branch".into())
}

/// Every quarantined mail file, oldest first.
pub fn quarantined(config: &Config) -> Result<Vec<PathBuf>, String> {
    Ok(std::fs::read_dir(config.quarantine_dir())
        .map(|rd| {
            let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            v.sort();
            v
        })
        .unwrap_or_default())
}

/// Removes a mail from the quarantine once it was handled.
pub fn release(config: &Config, path: &Path) -> Result<(), String> {
    if path.starts_with(config.quarantine_dir()) {
        std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))
    } else {
        Ok(())
    }
}

/// Keeps a copy of a mail that was not handled (for `reprocess`). `Ok(None)`: no
/// quarantine in this build.
pub fn quarantine(
    config: &Config,
    raw: &[u8],
    status: crate::domain::outcome::Status,
    reason: &str,
) -> Result<Option<PathBuf>, String> {
    let _ = (config, raw, status, reason);
    Ok(None)
}
