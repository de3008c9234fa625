//! `log_format = "json"`: one object per line. Every string value is redacted and
//! escaped (control characters, bidi overrides) before serde_json encodes it, so that
//! `jq -r` prints no terminal escape either; the line itself never breaks.

use serde::Serialize;

use super::{Line, escape, redact};

#[derive(Serialize)]
struct JsonLine {
    /// RFC 3339 with the local offset, milliseconds.
    timestamp: String,
    level: &'static str,
    /// The Catalan text exactly as the text line has it.
    message: String,
    target: String,
    pid: u32,
    #[serde(flatten)]
    mail: Option<JsonMail>,
}

/// The fields of a line about a mail: `null` while not known yet.
#[derive(Serialize)]
struct JsonMail {
    journal_id: Option<String>,
    message_id: Option<String>,
    outcome: Option<String>,
    reason: Option<String>,
    ticket: Option<String>,
    duration_ms: u64,
}

/// The JSON line of `line` (with its `\n`).
pub(super) fn line(line: &Line<'_>, secrets: &[String]) -> String {
    let clean = |v: &str| escape(&redact(v, secrets)).into_owned();
    let clean_opt = |v: &Option<String>| v.as_deref().map(clean);
    let record = JsonLine {
        timestamp: line
            .now
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, false),
        level: line.level_name(),
        message: clean(&line.message),
        target: clean(line.target),
        pid: std::process::id(),
        mail: line.mail.as_ref().map(|(m, ms)| JsonMail {
            journal_id: clean_opt(&m.journal_id),
            message_id: clean_opt(&m.message_id),
            outcome: clean_opt(&m.outcome),
            reason: clean_opt(&m.reason),
            ticket: clean_opt(&m.ticket),
            duration_ms: *ms,
        }),
    };
    let mut out = serde_json::to_string(&record).unwrap_or_else(|e| {
        format!("{{\"level\":\"ERROR\",\"message\":\"log line not serialisable: {e}\"}}")
    });
    out.push('\n');
    out
}
