//! The `[health]` table: thresholds of `mailtoticket health` (Nagios plugin
//! conventions) and the optional HTTP endpoint of `imap --watch` (issue 18).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Deserialize;

use super::imap::ImapConfig;

fn d_quarantine_warning() -> u64 {
    1
}
fn d_quarantine_critical() -> u64 {
    10
}
fn d_quarantine_age_warning_hours() -> u64 {
    24
}
fn d_quarantine_age_critical_hours() -> u64 {
    7 * 24
}
fn d_tempfail_warning() -> u64 {
    3
}
fn d_tempfail_critical() -> u64 {
    10
}
fn d_heartbeat_warning_secs() -> u64 {
    // Above the default IDLE renewal (600 s) plus a reconnection or two.
    1500
}
fn d_heartbeat_critical_secs() -> u64 {
    3600
}

/// The `[health]` table. Every threshold is "at or above": a count of 1 with
/// `quarantine_warning = 1` is a WARNING.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Mails in the quarantine for WARNING / CRITICAL (0 = never).
    #[serde(default = "d_quarantine_warning")]
    pub quarantine_warning: u64,
    #[serde(default = "d_quarantine_critical")]
    pub quarantine_critical: u64,
    /// Age of the oldest quarantined mail, in hours, for WARNING / CRITICAL (0 = never).
    #[serde(default = "d_quarantine_age_warning_hours")]
    pub quarantine_age_warning_hours: u64,
    #[serde(default = "d_quarantine_age_critical_hours")]
    pub quarantine_age_critical_hours: u64,
    /// Mails in a row that ended TEMPFAIL (bus down, credentials refused) for
    /// WARNING / CRITICAL (0 = never).
    #[serde(default = "d_tempfail_warning")]
    pub tempfail_warning: u64,
    #[serde(default = "d_tempfail_critical")]
    pub tempfail_critical: u64,
    /// Expect a delivered mail (SUCCESS) at least every N hours: older is a WARNING,
    /// twice as old CRITICAL. Unset: not checked.
    #[serde(default)]
    pub expect_mail_every_hours: Option<u64>,
    /// `imap --watch` must be running: a missing heartbeat is CRITICAL. When false
    /// (default) the heartbeat is checked only while a watcher left one (a watcher
    /// stopped cleanly removes it).
    #[serde(default)]
    pub watch: bool,
    /// Age of the watcher's heartbeat for WARNING / CRITICAL, in seconds. The
    /// heartbeat advances at each pass and each IDLE renewal (`[imap] idle_secs`).
    #[serde(default = "d_heartbeat_warning_secs")]
    pub heartbeat_warning_secs: u64,
    #[serde(default = "d_heartbeat_critical_secs")]
    pub heartbeat_critical_secs: u64,
    /// `imap --watch` serves `GET /healthz` and `GET /metrics` here: `"PORT"` (on
    /// 127.0.0.1) or `"ADDRESS:PORT"`. Unset: no endpoint.
    #[serde(default)]
    pub listen: Option<String>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            quarantine_warning: d_quarantine_warning(),
            quarantine_critical: d_quarantine_critical(),
            quarantine_age_warning_hours: d_quarantine_age_warning_hours(),
            quarantine_age_critical_hours: d_quarantine_age_critical_hours(),
            tempfail_warning: d_tempfail_warning(),
            tempfail_critical: d_tempfail_critical(),
            expect_mail_every_hours: None,
            watch: false,
            heartbeat_warning_secs: d_heartbeat_warning_secs(),
            heartbeat_critical_secs: d_heartbeat_critical_secs(),
            listen: None,
        }
    }
}

/// `listen` as a socket address: a bare port is on 127.0.0.1 (never a wildcard by
/// default); any other address must be written out.
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("`{text}` is neither a port nor ADDRESS:PORT (e.g. \"127.0.0.1:9187\")")
    })
}

impl HealthConfig {
    /// The listening address, when configured and valid.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen.as_deref().and_then(|l| parse_listen(l).ok())
    }

    /// What is wrong, as (key, problem) pairs; `imap` is the `[imap]` table, whose
    /// IDLE renewal bounds the heartbeat thresholds.
    pub fn problems(&self, imap: Option<&ImapConfig>) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let pairs = [
            (
                "[health] quarantine_critical",
                self.quarantine_warning,
                self.quarantine_critical,
            ),
            (
                "[health] quarantine_age_critical_hours",
                self.quarantine_age_warning_hours,
                self.quarantine_age_critical_hours,
            ),
            (
                "[health] tempfail_critical",
                self.tempfail_warning,
                self.tempfail_critical,
            ),
        ];
        for (key, warning, critical) in pairs {
            if warning != 0 && critical != 0 && critical < warning {
                out.push((
                    key,
                    format!("{critical} is below its warning threshold {warning}"),
                ));
            }
        }
        if self.expect_mail_every_hours == Some(0) {
            out.push((
                "[health] expect_mail_every_hours",
                "must be at least 1 (leave it out to not check)".to_string(),
            ));
        }
        if self.heartbeat_warning_secs == 0
            || self.heartbeat_critical_secs < self.heartbeat_warning_secs
        {
            out.push((
                "[health] heartbeat_critical_secs",
                format!(
                    "heartbeat thresholds must be 0 < warning ({}) <= critical ({})",
                    self.heartbeat_warning_secs, self.heartbeat_critical_secs
                ),
            ));
        }
        if let Some(imap) = imap {
            // The heartbeat only advances at each IDLE renewal: a threshold below it
            // would alarm on every quiet mailbox.
            let renewal = imap.idle_secs.saturating_add(imap.timeout_secs);
            if self.heartbeat_warning_secs <= renewal {
                out.push((
                    "[health] heartbeat_warning_secs",
                    format!(
                        "{} is not above [imap] idle_secs + timeout_secs ({renewal}): a quiet mailbox would look stale",
                        self.heartbeat_warning_secs
                    ),
                ));
            }
        }
        if let Some(listen) = &self.listen
            && let Err(e) = parse_listen(listen)
        {
            out.push(("[health] listen", e));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_defaults_to_loopback_and_thresholds_are_ordered() {
        assert_eq!(
            parse_listen("9187").unwrap(),
            "127.0.0.1:9187".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:9187").unwrap(),
            "[::1]:9187".parse::<SocketAddr>().unwrap()
        );
        assert!(parse_listen("localhost").is_err());
        assert!(HealthConfig::default().problems(None).is_empty());
        let bad = HealthConfig {
            quarantine_warning: 5,
            quarantine_critical: 2,
            expect_mail_every_hours: Some(0),
            listen: Some("x".into()),
            ..HealthConfig::default()
        };
        let keys: Vec<_> = bad.problems(None).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "[health] quarantine_critical",
                "[health] expect_mail_every_hours",
                "[health] listen"
            ]
        );
    }
}
