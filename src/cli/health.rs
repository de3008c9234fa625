//! `mailtoticket health [--json] [--probe]` (issue 18): the gateway's state for a
//! monitor, after the Nagios plugin conventions: exit 0 OK, 1 WARNING, 2 CRITICAL,
//! 3 UNKNOWN, and one line `MAILTOTICKET STATUS - summary | perfdata`.
//!
//! Local state only (the quarantine folder, the journal's counters and a write probe,
//! the configuration); `--probe` adds one read-only call per service, like `check`.
//!
//! Decisions:
//! - no configuration file found (or unreadable): UNKNOWN, the plugin cannot tell
//!   anything; a file that does not parse or validate: CRITICAL, every mail would fail.
//! - the worst check decides, in the order OK < WARNING < UNKNOWN < CRITICAL.
//! - no journal yet (nothing handled since the installation) is OK; a journal that
//!   cannot be opened or written (corrupt, read-only, the state folder is a file) is
//!   CRITICAL, as every mail would TEMPFAIL; a journal busy beyond the wait is a WARNING.
//! - the heartbeat of `imap --watch` is checked when `[health] watch = true`, or while
//!   a watcher left one: a watcher stopped cleanly removes it, so a watcher the admin
//!   turned off does not look stale forever, and a killed one does.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::adapters::journal::telemetry::Telemetry;
use crate::adapters::journal::{DeliveryJournal, JournalError};
use crate::adapters::quarantine::Quarantine;
use crate::config::{self, Config, ConfigError, Settings};
use crate::ports::error_chain;

/// A Nagios state; the exit code is its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }

    /// Severity for "the worst decides": UNKNOWN is worse than WARNING, better than
    /// CRITICAL.
    fn rank(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Unknown => 2,
            Level::Critical => 3,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// One check's verdict.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub message: String,
}

/// One perfdata value: `label=value[unit];warn;crit;0`.
#[derive(Debug, Clone)]
pub struct Perf {
    pub label: &'static str,
    pub value: u64,
    /// `s` or empty.
    pub unit: &'static str,
    pub warning: Option<u64>,
    pub critical: Option<u64>,
}

impl Perf {
    fn render(&self) -> String {
        let t = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        format!(
            "{}={}{};{};{};0",
            self.label,
            self.value,
            self.unit,
            t(self.warning),
            t(self.critical)
        )
    }
}

/// Everything `health` found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub checks: Vec<Check>,
    pub perf: Vec<Perf>,
}

impl Report {
    fn check(&mut self, name: &'static str, level: Level, message: impl Into<String>) {
        self.checks.push(Check {
            name,
            level,
            message: message.into(),
        });
    }

    /// The worst level of the checks (OK when there is none).
    pub fn status(&self) -> Level {
        self.checks
            .iter()
            .map(|c| c.level)
            .max_by_key(|l| l.rank())
            .unwrap_or(Level::Ok)
    }

    /// The one status line: the problems first (or every check when all is well).
    pub fn line(&self) -> String {
        let status = self.status();
        let shown: Vec<&str> = if status == Level::Ok {
            self.checks.iter().map(|c| c.message.as_str()).collect()
        } else {
            let mut bad: Vec<&Check> = self
                .checks
                .iter()
                .filter(|c| c.level != Level::Ok)
                .collect();
            bad.sort_by_key(|c| std::cmp::Reverse(c.level.rank()));
            bad.iter().map(|c| c.message.as_str()).collect()
        };
        // One line whatever a message holds (a path, an error text).
        let summary = shown.join("; ").replace(['\n', '\r', '|'], " ");
        let perf: Vec<String> = self.perf.iter().map(Perf::render).collect();
        if perf.is_empty() {
            format!("MAILTOTICKET {} - {summary}", status.name())
        } else {
            format!(
                "MAILTOTICKET {} - {summary} | {}",
                status.name(),
                perf.join(" ")
            )
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let status = self.status();
        json!({
            "status": status.name(),
            "code": status.code(),
            "line": self.line(),
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name,
                "status": c.level.name(),
                "message": c.message,
            })).collect::<Vec<_>>(),
            "perfdata": self.perf.iter().map(|p| json!({
                "label": p.label,
                "value": p.value,
                "unit": p.unit,
                "warning": p.warning,
                "critical": p.critical,
            })).collect::<Vec<_>>(),
        })
    }
}

/// The quarantine folder: how many mails and how old the oldest (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuarantineState {
    pub mails: u64,
    pub oldest_age_s: Option<u64>,
}

/// Reads the quarantine folder (a missing folder is empty). The age of a mail is
/// the UTC time its file name starts with, or else the file's modification time.
pub fn quarantine_state(
    dir: &Path,
    now: chrono::DateTime<Utc>,
) -> std::io::Result<QuarantineState> {
    let q = Quarantine::new(dir);
    let mails = q.list()?;
    let stamp_of = |p: &Path| -> Option<chrono::DateTime<Utc>> {
        let name = p.file_name()?.to_str()?;
        let stamp = name.get(..19)?;
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3f")
            .ok()
            .map(|t| t.and_utc())
            .or_else(|| {
                let modified = std::fs::metadata(p).ok()?.modified().ok()?;
                Some(chrono::DateTime::<Utc>::from(modified))
            })
    };
    // Names sort by time: the first stamped one is the oldest, but a file of another
    // name could be older: take the minimum over all (cheap: names only, mostly).
    let oldest = mails.iter().filter_map(|p| stamp_of(p)).min();
    Ok(QuarantineState {
        mails: mails.len() as u64,
        oldest_age_s: oldest.map(|t| u64::try_from((now - t).num_seconds()).unwrap_or(0)),
    })
}

/// The journal's telemetry without creating a journal (`Ok(None)`: none yet).
pub fn journal_telemetry(
    config: &Config,
) -> Result<Option<(DeliveryJournal, Telemetry)>, JournalError> {
    let Some(journal) = DeliveryJournal::open_existing(&config.state_dir())? else {
        return Ok(None);
    };
    // A monitor must not hang on a busy journal.
    let journal = journal.with_db_wait(Duration::from_secs(2));
    let t = journal.telemetry()?;
    Ok(Some((journal, t)))
}

/// `level` of `value` against "at or above" thresholds (0 or `None` = never).
fn grade(value: u64, warning: Option<u64>, critical: Option<u64>) -> Level {
    let hit = |t: Option<u64>| t.is_some_and(|t| t > 0 && value >= t);
    if hit(critical) {
        Level::Critical
    } else if hit(warning) {
        Level::Warning
    } else {
        Level::Ok
    }
}

fn nonzero(v: u64) -> Option<u64> {
    (v > 0).then_some(v)
}

/// A duration for people: `42 s`, `5 min`, `3 h`, `2 d`.
pub fn human(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs} s"),
        120..7200 => format!("{} min", secs / 60),
        7200..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86_400),
    }
}

/// The local checks (and with `probe`, the services) of a loaded configuration.
pub fn assess(config: &Config, settings_problems: &[config::Problem], probe: bool) -> Report {
    let mut r = Report::default();
    let h = &config.health;
    let now = Utc::now();
    if let Some(first) = settings_problems.first() {
        let more = settings_problems.len() - 1;
        r.check(
            "config",
            Level::Critical,
            if more > 0 {
                format!("invalid configuration: {first} (+{more} more)")
            } else {
                format!("invalid configuration: {first}")
            },
        );
    }

    // Quarantine.
    match quarantine_state(&config.quarantine_dir(), now) {
        Ok(q) => {
            let (w, c) = (
                nonzero(h.quarantine_warning),
                nonzero(h.quarantine_critical),
            );
            let count_level = grade(q.mails, w, c);
            let age_w = nonzero(h.quarantine_age_warning_hours.saturating_mul(3600));
            let age_c = nonzero(h.quarantine_age_critical_hours.saturating_mul(3600));
            let age_level = q.oldest_age_s.map_or(Level::Ok, |a| grade(a, age_w, age_c));
            let level = [count_level, age_level]
                .into_iter()
                .max_by_key(|l| l.rank())
                .unwrap_or(Level::Ok);
            let message = match q.oldest_age_s {
                Some(age) => format!("{} in quarantine (oldest {})", q.mails, human(age)),
                None => "quarantine empty".to_string(),
            };
            r.check("quarantine", level, message);
            r.perf.push(Perf {
                label: "quarantined",
                value: q.mails,
                unit: "",
                warning: w,
                critical: c,
            });
            r.perf.push(Perf {
                label: "oldest_quarantined_s",
                value: q.oldest_age_s.unwrap_or(0),
                unit: "s",
                warning: age_w,
                critical: age_c,
            });
        }
        Err(e) => r.check(
            "quarantine",
            Level::Critical,
            format!(
                "quarantine_dir {} cannot be read: {e}",
                config.quarantine_dir().display()
            ),
        ),
    }

    // Journal: can it be written, and what it counted.
    let telemetry = match journal_telemetry(config) {
        Ok(None) => {
            r.check("journal", Level::Ok, "no journal yet (no mail handled)");
            Some(Telemetry::default())
        }
        Ok(Some((journal, t))) => {
            match journal.probe_write() {
                Ok(()) => r.check("journal", Level::Ok, "journal writable"),
                Err(e) if e.is_busy() => {
                    r.check("journal", Level::Warning, format!("journal busy: {e}"))
                }
                Err(e) => r.check(
                    "journal",
                    Level::Critical,
                    format!("journal cannot be written: {e}"),
                ),
            }
            Some(t)
        }
        Err(e) if e.is_busy() => {
            r.check("journal", Level::Warning, format!("journal busy: {e}"));
            None
        }
        Err(e) => {
            r.check(
                "journal",
                Level::Critical,
                format!("journal cannot be opened: {e}"),
            );
            None
        }
    };

    if let Some(t) = &telemetry {
        let (w, c) = (nonzero(h.tempfail_warning), nonzero(h.tempfail_critical));
        let n = t.consecutive_tempfails;
        r.check("tempfail", grade(n, w, c), format!("{n} TEMPFAIL in a row"));
        r.perf.push(Perf {
            label: "consecutive_tempfails",
            value: n,
            unit: "",
            warning: w,
            critical: c,
        });

        let age = |ms: i64| u64::try_from((now.timestamp_millis() - ms) / 1000).unwrap_or(0);
        let every = h
            .expect_mail_every_hours
            .map(|hours| hours.saturating_mul(3600));
        let last = t.last_success_ms.map(age);
        match (last, every) {
            (Some(a), every) => {
                r.check(
                    "delivery",
                    every.map_or(Level::Ok, |e| grade(a, Some(e), Some(e.saturating_mul(2)))),
                    format!("last delivery {} ago", human(a)),
                );
            }
            (None, Some(_)) => r.check("delivery", Level::Warning, "no delivery recorded yet"),
            (None, None) => r.check("delivery", Level::Ok, "no delivery recorded yet"),
        }
        if let Some(a) = last {
            r.perf.push(Perf {
                label: "last_delivery_age_s",
                value: a,
                unit: "s",
                warning: every,
                critical: every.map(|e| e.saturating_mul(2)),
            });
        }

        let (hw, hc) = (h.heartbeat_warning_secs, h.heartbeat_critical_secs);
        match t.imap_heartbeat_ms.map(age) {
            Some(a) => {
                r.check(
                    "heartbeat",
                    grade(a, Some(hw), Some(hc)),
                    format!("imap --watch heartbeat {} ago", human(a)),
                );
                r.perf.push(Perf {
                    label: "heartbeat_age_s",
                    value: a,
                    unit: "s",
                    warning: Some(hw),
                    critical: Some(hc),
                });
            }
            None if h.watch => r.check(
                "heartbeat",
                Level::Critical,
                "imap --watch is not running (no heartbeat)",
            ),
            None => {}
        }
    }

    if probe {
        for (name, ok, message) in probe_services(config) {
            r.check(name, if ok { Level::Ok } else { Level::Critical }, message);
        }
    }
    r
}

/// `--probe`: one read-only call per service (as `check` makes them).
fn probe_services(config: &Config) -> Vec<(&'static str, bool, String)> {
    use crate::ports::{IdentityDirectory as _, MailDirectory as _, TicketSystem as _};
    let rt = match super::wiring::runtime() {
        Ok(rt) => rt,
        Err(e) => return vec![("probe", false, error_chain(&e))],
    };
    rt.block_on(async {
        let mut out = Vec::new();
        let services = match super::wiring::connect(config).await {
            Ok(s) => s,
            Err(e) => return vec![("probe", false, error_chain(&e))],
        };
        match services.tickets.query_ticket("1").await {
            Ok(_) => out.push(("gn6", true, "GN6 answered".to_string())),
            Err(e) => out.push(("gn6", false, format!("GN6: {e}"))),
        }
        if config.directory_order().iter().any(|d| d == "persones") {
            match services.identity.person("mailtoticket").await {
                Ok(_) => out.push(("persones", true, "Persones answered".to_string())),
                Err(e) => out.push(("persones", false, format!("Persones: {e}"))),
            }
        }
        if let Some(rest) = &services.rest {
            match rest.person("mailtoticket").await {
                Ok(_) => out.push((
                    "identitat_digital",
                    true,
                    "identitat_digital answered".to_string(),
                )),
                Err(e) => out.push((
                    "identitat_digital",
                    false,
                    format!("identitat_digital: {e}"),
                )),
            }
        }
        if let Some(ldap) = &services.ldap {
            match ldap.probe().await {
                Ok(()) => out.push(("ldap", true, "LDAP bind accepted".to_string())),
                Err(e) => out.push(("ldap", false, format!("LDAP: {e}"))),
            }
        }
        out
    })
}

/// The report of `health`: the configuration is located and loaded here, so that
/// its faults get their own levels.
pub fn report(config_arg: Option<&str>, probe: bool) -> Report {
    let env = |k: &str| std::env::var(k).ok();
    let unknown = |message: String| {
        let mut r = Report::default();
        r.check("config", Level::Unknown, message);
        r
    };
    let origin = match config::locate(config_arg, env) {
        Ok(p) => p,
        Err(e) => return unknown(format!("no configuration: {}", error_chain(&e))),
    };
    let config = match Config::load(&origin) {
        Ok(c) => c,
        Err(e @ ConfigError::Read { .. }) => {
            return unknown(format!("configuration unreadable: {}", error_chain(&e)));
        }
        Err(e) => {
            let mut r = Report::default();
            r.check(
                "config",
                Level::Critical,
                format!("invalid configuration: {}", error_chain(&e)),
            );
            return r;
        }
    };
    let problems = Settings::build(&config).err().unwrap_or_default();
    assess(&config, &problems, probe)
}

/// `mailtoticket health`: prints the line (or the JSON object), returns the exit code.
pub fn run(config_arg: Option<&str>, json: bool, probe: bool) -> u8 {
    let r = report(config_arg, probe);
    if json {
        println!("{}", r.json());
    } else {
        println!("{}", r.line());
    }
    r.status().code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_decides_and_the_line_has_perfdata() {
        let mut r = Report::default();
        assert_eq!(r.status(), Level::Ok);
        r.check("a", Level::Ok, "fine");
        r.check("b", Level::Warning, "2 in quarantine");
        assert_eq!(r.status(), Level::Warning);
        r.check("c", Level::Unknown, "?");
        assert_eq!(r.status(), Level::Unknown);
        r.check("d", Level::Critical, "bad|\nthing");
        assert_eq!(r.status(), Level::Critical);
        r.perf.push(Perf {
            label: "quarantined",
            value: 2,
            unit: "",
            warning: Some(1),
            critical: Some(10),
        });
        r.perf.push(Perf {
            label: "last_delivery_age_s",
            value: 60,
            unit: "s",
            warning: None,
            critical: None,
        });
        assert_eq!(
            r.line(),
            "MAILTOTICKET CRITICAL - bad  thing; ?; 2 in quarantine | quarantined=2;1;10;0 last_delivery_age_s=60s;;;0"
        );
        assert_eq!(r.json()["code"], 2);
        assert_eq!(grade(5, Some(1), Some(10)), Level::Warning);
        assert_eq!(grade(10, Some(1), Some(10)), Level::Critical);
        assert_eq!(grade(0, Some(1), Some(10)), Level::Ok);
        assert_eq!(grade(100, None, None), Level::Ok);
        assert_eq!(human(59), "59 s");
        assert_eq!(human(3600), "60 min");
        assert_eq!(human(7200), "2 h");
    }
}
