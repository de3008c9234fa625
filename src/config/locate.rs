//! Which configuration file `-c` names (a path, or a NAME in the configuration folders).

use std::path::{Path, PathBuf};

use super::{ConfigError, ENV_CONFIG_DIR};

/// Where `-c` looks for a bare NAME (and for `default.toml` without `-c`), in order.
pub fn config_dirs(env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = env(ENV_CONFIG_DIR).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
    }
    if let Some(x) = env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(x).join("mailtoticket"));
    } else if let Some(h) = env("HOME").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(h).join(".config/mailtoticket"));
    }
    dirs.push(PathBuf::from("/etc/mailtoticket"));
    dirs
}

/// Resolves the `-c` argument: a path (has a `/` or ends in `.toml`, or exists) is
/// taken as is; a bare NAME is `NAME.toml` in the first of [`config_dirs`] holding it.
pub fn locate(
    arg: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PathBuf, ConfigError> {
    let name = match arg {
        Some(a) if a.contains('/') || a.ends_with(".toml") || Path::new(a).is_file() => {
            return Ok(PathBuf::from(a));
        }
        Some(a) => a,
        None => "default",
    };
    let dirs = config_dirs(env);
    let file = format!("{name}.toml");
    for d in &dirs {
        let candidate = d.join(&file);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(ConfigError::NotFound {
        file,
        searched: searched.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_name_is_looked_up_in_config_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alt.toml"), "").unwrap();
        let d = dir.path().to_string_lossy().into_owned();
        let env = |k: &str| (k == ENV_CONFIG_DIR).then(|| d.clone());
        assert_eq!(
            locate(Some("alt"), env).unwrap(),
            dir.path().join("alt.toml")
        );
        let e = locate(Some("nope"), env).unwrap_err();
        assert!(e.to_string().starts_with("nope.toml: not found in"), "{e}");
        assert_eq!(
            locate(Some("./x.toml"), env).unwrap(),
            PathBuf::from("./x.toml")
        );
    }
}
