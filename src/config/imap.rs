//! The `[imap]` table: where `mailtoticket imap` (pull mode) reads its mail.

use std::path::PathBuf;

use serde::Deserialize;

/// Environment variable that overrides `[imap] password_file`.
pub const ENV_PASSWORD_IMAP: &str = "MAILTOTICKET_PASSWORD_IMAP";

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (port 993).
    #[default]
    Imaps,
    /// Plain connection upgraded with STARTTLS before logging in (port 143).
    Starttls,
    /// No TLS: only on a loopback address, or with `allow_insecure = true`.
    None,
}

/// Folders a handled mail is moved to, per outcome (TEMPFAIL stays in the mailbox).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folders {
    /// SUCCESS (a ticket or a comment).
    #[serde(default = "d_success")]
    pub success: String,
    /// SKIP (automatic mail, duplicates, `mails_no_ticket`).
    #[serde(default = "d_skip")]
    pub skip: String,
    /// REJECT, ERROR and UNKNOWN.
    #[serde(default = "d_errors")]
    pub errors: String,
}

impl Default for Folders {
    fn default() -> Self {
        Folders {
            success: d_success(),
            skip: d_skip(),
            errors: d_errors(),
        }
    }
}

fn d_success() -> String {
    "processats".into()
}
fn d_skip() -> String {
    "descartats".into()
}
fn d_errors() -> String {
    "errors".into()
}
fn d_mailbox() -> String {
    "INBOX".into()
}
fn d_idle_secs() -> u64 {
    // Below the 29 minutes of RFC 2177, and below common NAT timeouts.
    600
}
fn d_backoff_max_secs() -> u64 {
    300
}
fn d_timeout_secs() -> u64 {
    30
}

/// The `[imap]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    /// Host name (also the name checked in the server's certificate).
    pub server: String,
    /// Default: 993 for `imaps`, 143 otherwise.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    /// Allow `tls = "none"` to a server that is not on a loopback address.
    #[serde(default)]
    pub allow_insecure: bool,
    pub user: String,
    /// File whose content (trailing newline removed) is the IMAP password
    /// (or the environment variable `MAILTOTICKET_PASSWORD_IMAP`).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Filled from `password_file` or the environment; never written in the file.
    #[serde(skip)]
    pub password: String,
    /// Extra trust anchors (PEM) for a server with a private certificate authority.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The mailbox read (default INBOX).
    #[serde(default = "d_mailbox")]
    pub mailbox: String,
    #[serde(default)]
    pub folders: Folders,
    /// `--watch`: seconds of IDLE before it is renewed (and the mailbox searched again).
    #[serde(default = "d_idle_secs")]
    pub idle_secs: u64,
    /// `--watch`: longest wait between two reconnection attempts (the wait doubles from 1 s).
    #[serde(default = "d_backoff_max_secs")]
    pub backoff_max_secs: u64,
    /// Connecting, TLS and each command, in seconds.
    #[serde(default = "d_timeout_secs")]
    pub timeout_secs: u64,
}

impl ImapConfig {
    /// The port used: the configured one or the default of the TLS mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Imaps => 993,
            TlsMode::Starttls | TlsMode::None => 143,
        })
    }

    /// Problems that make the table unusable (one line each, naming the key).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.server.trim().is_empty() {
            out.push("[imap] server: empty".to_string());
        }
        if self.user.trim().is_empty() {
            out.push("[imap] user: empty".to_string());
        }
        if self.password.is_empty() {
            out.push(format!(
                "[imap] password_file (or {ENV_PASSWORD_IMAP}): no password"
            ));
        }
        if self.tls == TlsMode::None && !self.allow_insecure && !is_loopback(&self.server) {
            out.push(format!(
                "[imap] tls = \"none\" to {}: a password in clear text over the network; \
                 use imaps/starttls, or allow_insecure = true",
                self.server
            ));
        }
        let f = &self.folders;
        for (key, name) in [
            ("success", &f.success),
            ("skip", &f.skip),
            ("errors", &f.errors),
        ] {
            if name.trim().is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
                out.push(format!("[imap.folders] {key}: not a usable folder name"));
            } else if name.eq_ignore_ascii_case(&self.mailbox) {
                out.push(format!(
                    "[imap.folders] {key}: the same folder as `mailbox` ({name})"
                ));
            }
        }
        if self.mailbox.trim().is_empty()
            || self.mailbox.chars().any(|c| c.is_control() || c == '"')
        {
            out.push("[imap] mailbox: not a usable folder name".to_string());
        }
        if self.idle_secs == 0 || self.timeout_secs == 0 {
            out.push("[imap] idle_secs and timeout_secs must be at least 1".to_string());
        }
        out
    }
}

/// `localhost` or a loopback IP address.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ImapConfig {
        let mut c: ImapConfig = toml::from_str(text).unwrap();
        c.password = "x".repeat(12);
        c
    }

    #[test]
    fn defaults_and_ports() {
        let c = parse("server = \"imap.upc.edu\"\nuser = \"u\"\n");
        assert_eq!(c.port(), 993);
        assert_eq!(c.folders.success, "processats");
        assert_eq!(c.folders.skip, "descartats");
        assert_eq!(c.folders.errors, "errors");
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let c = parse("server = \"imap.upc.edu\"\nuser = \"u\"\ntls = \"starttls\"\n");
        assert_eq!(c.port(), 143);
    }

    #[test]
    fn plain_imap_only_on_loopback_or_when_allowed() {
        let c = parse("server = \"imap.upc.edu\"\nuser = \"u\"\ntls = \"none\"\n");
        assert!(c.problems().iter().any(|p| p.contains("allow_insecure")));
        let c = parse("server = \"127.0.0.1\"\nuser = \"u\"\ntls = \"none\"\n");
        assert!(c.problems().is_empty());
        let c = parse("server = \"[::1]\"\nuser = \"u\"\ntls = \"none\"\n");
        assert!(c.problems().is_empty());
        let c = parse(
            "server = \"imap.upc.edu\"\nuser = \"u\"\ntls = \"none\"\nallow_insecure = true\n",
        );
        assert!(c.problems().is_empty());
    }

    #[test]
    fn bad_folders_and_missing_password_are_reported() {
        let mut c = parse(
            "server = \"s\"\nuser = \"u\"\n[folders]\nsuccess = \"INBOX\"\nerrors = \"a\\\"b\"\n",
        );
        c.password.clear();
        let p = c.problems().join("\n");
        assert!(p.contains("success"), "{p}");
        assert!(p.contains("errors"), "{p}");
        assert!(p.contains("no password"), "{p}");
    }
}
