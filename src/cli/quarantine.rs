//! `mailtoticket quarantine …` and `mailtoticket journal purge` (issue 18): the
//! quarantine as a tool (list, show, export, import, reprocess, delete, purge) and
//! the journal's retention, over the quarantine and journal adapters.
//!
//! IDs are the entries' file stems (`20261206T101500.123Z-abcdef012345`); a unique
//! prefix of the stem or of its 12-digit hash, or the path of the `.eml` inside the
//! quarantine folder, names an entry too (see [`Quarantine::resolve`]: nothing outside
//! the folder can be named).

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta};
use serde_json::json;
use tracing::info;

use super::Loaded;
use super::mda::{self, Mode};
use crate::adapters::atomic_file::{Durability, write_atomic};
use crate::adapters::journal::{DB_FILE_NAME, DeliveryJournal, PurgeReport, Retention};
use crate::adapters::logging::SEPARATOR;
use crate::adapters::quarantine::{
    self, Entry, FIELD_CONFIG, FIELD_IMPORTED_FROM, FIELD_JOURNAL_CLASH_KEY, FIELD_JOURNAL_KEY,
    FIELD_LAST_ERROR, FIELD_LAST_RETRY_AT, FIELD_SOURCE, MAIL_EXT, Quarantine, Sidecar,
};
use crate::config::Config;
use crate::domain::outcome::Status;
use crate::exit;
use crate::ports::{Clock, SystemClock, error_chain};

/// Longest sender or subject shown by `list`, in characters.
const LIST_FIELD_CHARS: usize = 60;
/// Longest reason shown by `list`, in characters.
const LIST_REASON_CHARS: usize = 120;

/// Mails `reprocess` runs at once before pacing starts.
pub const DEFAULT_BURST: usize = 10;
/// Pause between two mails after the first [`DEFAULT_BURST`].
pub const DEFAULT_PACE: &str = "1s";
/// Consecutive TEMPFAILs after which `reprocess` stops (the bus is down).
pub const DEFAULT_MAX_TEMPFAILS: u32 = 5;

/// A duration argument (`30d`, `12h`, `2w`, `90m`, `45s`, `500ms`; a bare number is
/// seconds): what `--older-than` and `--pace` take.
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let usage =
        || format!("`{text}`: expected a number and a unit (ms, s, m, h, d, w), e.g. 30d, 12h, 2w");
    if number.is_empty() || number.matches('.').count() > 1 {
        return Err(usage());
    }
    let value: f64 = number.parse().map_err(|_| usage())?;
    let unit_ms: f64 = match unit.trim() {
        "ms" => 1.0,
        "" | "s" | "sec" | "secs" => 1e3,
        "m" | "min" | "mins" => 60e3,
        "h" | "hour" | "hours" => 3_600e3,
        "d" | "day" | "days" => 86_400e3,
        "w" | "week" | "weeks" => 604_800e3,
        _ => return Err(usage()),
    };
    let ms = value * unit_ms;
    // 100 years: anything longer is a typo.
    if !ms.is_finite() || ms > 100.0 * 365.0 * 86_400e3 {
        return Err(format!("`{text}`: too long"));
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "bounded above, and a fraction of a millisecond does not matter"
    )]
    Ok(TimeDelta::milliseconds(ms.round() as i64))
}

/// Text from a mail (sender, subject, reason) made safe for one terminal line:
/// control characters escaped, at most `max` characters.
pub fn safe_text(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        // Bidi overrides and other format characters could reorder the line.
        let format_char = matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}');
        if c.is_control() || format_char {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn human_size(n: u64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "a display value")]
    let f = n as f64;
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{:.1} MiB", f / (1024.0 * 1024.0))
    }
}

/// From, To, Subject, Date and Message-ID of a raw mail (header block only).
struct Summary {
    from: String,
    to: String,
    subject: String,
    date: String,
    message_id: String,
}

fn summary(raw: &[u8]) -> Summary {
    let mail = crate::adapters::mail::parse(quarantine::header_block(raw), &Default::default());
    Summary {
        from: mail
            .header("From")
            .map(str::to_string)
            .unwrap_or_else(|| mail.sender().to_string()),
        to: mail.header("To").unwrap_or("").to_string(),
        subject: mail.subject.clone(),
        date: mail.header("Date").unwrap_or("").to_string(),
        message_id: mail.message_id.clone().unwrap_or_default(),
    }
}

fn read_summary(path: &Path) -> Summary {
    // Only the start of the file: a 20 MB mail is not read whole to list it.
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        use std::io::Read;
        let _ = f.take(256 * 1024).read_to_end(&mut head);
    }
    summary(&head)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Why a `quarantine` or `journal purge` command failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The command line asks for something impossible (exit 64).
    #[error("{0}")]
    Usage(String),
    /// A file or folder could not be read, written or removed.
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An ID names no single entry of the quarantine.
    #[error(transparent)]
    Resolve(#[from] quarantine::ResolveError),
    /// The quarantine could not be read, so the journal keeps everything.
    #[error("{} (nothing purged: the quarantine's mails must keep their journal rows)", path.display())]
    QuarantineUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The journal could not be opened or purged.
    #[error("journal {}", path.display())]
    Journal {
        path: PathBuf,
        #[source]
        source: crate::adapters::journal::JournalError,
    },
    /// Some of the items named failed; the report says which (for stdout).
    #[error("some items failed")]
    Partial(String),
}

impl ToolError {
    /// The exit code: 64 for a usage error, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::Usage(_) => super::EX_USAGE,
            _ => 1,
        }
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> ToolError + '_ {
        move |source| ToolError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What a command prints, or why it failed.
type Outcome = Result<String, ToolError>;

fn quarantine_of(config: &Config) -> Quarantine {
    Quarantine::new(config.quarantine_dir())
}

fn entries(q: &Quarantine) -> Result<Vec<Entry>, ToolError> {
    q.entries().map_err(ToolError::io(q.dir()))
}

/// `quarantine list [--json]`.
pub fn list(config: &Config, as_json: bool) -> Outcome {
    let q = quarantine_of(config);
    let all = entries(&q)?;
    let parts = q.parts().map_err(ToolError::io(q.dir()))?;
    if as_json {
        let mails: Vec<_> = all
            .iter()
            .map(|e| {
                let s = read_summary(&e.path);
                json!({
                    "id": e.id,
                    "path": e.path.display().to_string(),
                    "quarantined_at": e.quarantined_at().map(|t| t.to_rfc3339()),
                    "status": e.sidecar.status,
                    "retries": e.sidecar.retries(),
                    "last_retry_at": e.sidecar.get(FIELD_LAST_RETRY_AT),
                    "last_error": e.sidecar.get(FIELD_LAST_ERROR),
                    "size": e.size,
                    "from": s.from,
                    "subject": s.subject,
                    "message_id": s.message_id,
                    "reason": e.sidecar.reason,
                    "config": e.sidecar.get(FIELD_CONFIG),
                    "source": e.sidecar.get(FIELD_SOURCE),
                    "journal_key": e.sidecar.get(FIELD_JOURNAL_KEY),
                    "imported_from": e.sidecar.get(FIELD_IMPORTED_FROM),
                })
            })
            .collect();
        let parts: Vec<_> = parts
            .iter()
            .map(|p| {
                let note = |k: &str| p.note.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                json!({
                    "path": p.path.display().to_string(),
                    "size": p.size,
                    "modified": p.modified.map(|t| t.to_rfc3339()),
                    "journal_key": note("journal"),
                    "part": note("part"),
                    "name": note("nom"),
                    "reason": note("motiu"),
                })
            })
            .collect();
        let doc = json!({ "mails": mails, "refused_parts": parts });
        // Serialising a `Value` cannot fail.
        return Ok(format!("{doc:#}\n"));
    }
    let mut out = String::new();
    if all.is_empty() {
        out.push_str(&format!(
            "no mails in the quarantine ({})\n",
            q.dir().display()
        ));
    }
    for e in &all {
        let s = read_summary(&e.path);
        let at = e
            .quarantined_at()
            .map(|t| t.to_utc().format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{}  {at}  {:<7}  retries={}  {:>9}  from={}  subject={}  reason={}\n",
            e.id,
            safe_text(&e.sidecar.status, 10),
            e.sidecar.retries(),
            human_size(e.size),
            safe_text(&s.from, LIST_FIELD_CHARS),
            safe_text(&s.subject, LIST_FIELD_CHARS),
            safe_text(first_line(&e.sidecar.reason), LIST_REASON_CHARS),
        ));
    }
    if !parts.is_empty() {
        out.push_str(&format!(
            "\nrefused attachment parts ({}; their mails were delivered, so they are not reprocessed: attach them by hand, then delete the files):\n",
            parts.len()
        ));
        for p in &parts {
            let note = |k: &str| {
                p.note
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| safe_text(v, LIST_FIELD_CHARS))
                    .unwrap_or_else(|| "-".into())
            };
            out.push_str(&format!(
                "  {}  {:>9}  journal={}  part={}  name={}  reason={}\n",
                p.path.display(),
                human_size(p.size),
                note("journal"),
                note("part"),
                note("nom"),
                note("motiu"),
            ));
        }
    }
    Ok(out)
}

fn resolve(q: &Quarantine, id: &str) -> Result<PathBuf, ToolError> {
    Ok(q.resolve(id)?)
}

/// `quarantine show ID [--raw]`: the sidecar and a header summary, or (`--raw`) the
/// mail's bytes on stdout.
pub fn show(config: &Config, id: &str, raw: bool, out: &mut dyn Write) -> u8 {
    let q = quarantine_of(config);
    let path = match resolve(&q, id) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mailtoticket: {e}");
            return e.exit_code();
        }
    };
    let result = (|| -> io::Result<()> {
        if raw {
            out.write_all(&std::fs::read(&path)?)?;
            return out.flush();
        }
        let e = q.entry(&path)?;
        let s = read_summary(&path);
        let mut text = String::new();
        text.push_str(&format!("id:             {}\n", e.id));
        text.push_str(&format!("path:           {}\n", e.path.display()));
        text.push_str(&format!("size:           {} bytes\n", e.size));
        text.push_str(&format!(
            "status:         {}\n",
            safe_text(&e.sidecar.status, 40)
        ));
        text.push_str(&format!(
            "quarantined-at: {}\n",
            safe_text(&e.sidecar.quarantined_at, 40)
        ));
        for (k, v) in &e.sidecar.fields {
            text.push_str(&format!("{:<15} {}\n", format!("{k}:"), safe_text(v, 1000)));
        }
        text.push_str(&format!("retries:        {}\n", e.sidecar.retries()));
        text.push_str("reason:\n");
        for line in e.sidecar.reason.lines() {
            text.push_str(&format!("  {}\n", safe_text(line, 1000)));
        }
        text.push_str("mail:\n");
        for (k, v) in [
            ("From", &s.from),
            ("To", &s.to),
            ("Subject", &s.subject),
            ("Date", &s.date),
            ("Message-ID", &s.message_id),
        ] {
            text.push_str(&format!("  {k}: {}\n", safe_text(v, 300)));
        }
        out.write_all(text.as_bytes())?;
        out.flush()
    })();
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("mailtoticket: {}: {e}", path.display());
            1
        }
    }
}

/// `quarantine export [ID...|--all] --to DIR`: a folder of `<ID>.eml` + `<ID>.reason`
/// pairs, byte for byte, that `import` on any host reads back.
pub fn export(config: &Config, ids: &[String], all: bool, to: &Path) -> Outcome {
    let q = quarantine_of(config);
    let paths = pick(&q, ids, all)?;
    crate::adapters::private_files::create_dir_all(to).map_err(ToolError::io(to))?;
    let mut out = String::new();
    for p in &paths {
        let stem = p.file_stem().unwrap_or_default().to_string_lossy();
        let copy = |from: &Path, name: String| -> io::Result<bool> {
            let bytes = match std::fs::read(from) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            write_atomic(&to.join(name), &bytes, Durability::Fsync)?;
            Ok(true)
        };
        // The sidecar first, as in the quarantine: an `.eml` means a complete pair.
        copy(
            &quarantine::reason_path(p),
            format!("{stem}.{}", quarantine::REASON_EXT),
        )
        .and_then(|_| copy(p, format!("{stem}.{MAIL_EXT}")))
        .map_err(ToolError::io(to))?;
        out.push_str(&format!("exported {stem}\n"));
    }
    out.push_str(&format!(
        "{} mail(s) exported to {}\n",
        paths.len(),
        to.display()
    ));
    Ok(out)
}

/// The entries named on the command line, or all of them.
fn pick(q: &Quarantine, ids: &[String], all: bool) -> Result<Vec<PathBuf>, ToolError> {
    if all {
        return q.list().map_err(ToolError::io(q.dir()));
    }
    if ids.is_empty() {
        return Err(ToolError::Usage("name at least one ID, or --all".into()));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for id in ids {
        let p = resolve(q, id)?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// The mail files an import PATH holds: a file; an export folder (`*.eml`); a
/// Maildir (`cur/` and `new/`).
fn import_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let visible = |p: &Path| {
        p.file_name()
            .is_some_and(|n| !n.as_encoded_bytes().starts_with(b"."))
            && p.is_file()
    };
    let mut out = Vec::new();
    let maildir = path.join("cur").is_dir() || path.join("new").is_dir();
    if maildir {
        for sub in ["cur", "new"] {
            match std::fs::read_dir(path.join(sub)) {
                Ok(rd) => {
                    for e in rd {
                        let p = e?.path();
                        if visible(&p) {
                            out.push(p);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    } else {
        for e in std::fs::read_dir(path)? {
            let p = e?.path();
            if visible(&p) && p.extension().is_some_and(|x| x == MAIL_EXT) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `quarantine import PATH...`: export folders, plain mail files or Maildirs into
/// the quarantine; a mail already there (same bytes) is not added twice.
pub fn import(config: &Config, paths: &[PathBuf]) -> Outcome {
    let q = quarantine_of(config);
    let mut index = quarantine::ImportIndex::new(&q).map_err(ToolError::io(q.dir()))?;
    let now = SystemClock.now();
    let mut out = String::new();
    let (mut added, mut present, mut failed) = (0usize, 0usize, 0usize);
    for path in paths {
        let files = match import_files(path) {
            Ok(f) => f,
            Err(e) => {
                out.push_str(&format!("{}: cannot read: {e}\n", path.display()));
                failed += 1;
                continue;
            }
        };
        for f in files {
            let raw = match std::fs::read(&f) {
                Ok(r) => r,
                Err(e) => {
                    out.push_str(&format!("{}: cannot read: {e}\n", f.display()));
                    failed += 1;
                    continue;
                }
            };
            let from = std::path::absolute(&f).unwrap_or_else(|_| f.clone());
            // An exported pair keeps its sidecar (and its ID); a plain mail gets one.
            let beside = if f.extension().is_some_and(|x| x == MAIL_EXT) {
                q.sidecar(&f).ok().filter(|s| *s != Sidecar::default())
            } else {
                None
            };
            let stem = beside
                .as_ref()
                .and_then(|_| f.file_stem())
                .map(|s| s.to_string_lossy().into_owned());
            let mut sidecar = beside.unwrap_or_else(|| Sidecar {
                status: Status::Unknown.as_header().to_string(),
                quarantined_at: now.to_rfc3339(),
                fields: vec![(FIELD_SOURCE.to_string(), "import".to_string())],
                reason: format!("imported from {}", from.display()),
            });
            sidecar.set(FIELD_IMPORTED_FROM, &from.display().to_string());
            // An export names a configuration of the host it came from; the importing
            // admin's configuration (`-c`) is the one `reprocess` uses here. Loading a
            // path an export file names would let that file choose what runs.
            if let Some(c) = sidecar.get(FIELD_CONFIG).map(str::to_string) {
                sidecar.unset(FIELD_CONFIG);
                sidecar.set(quarantine::FIELD_EXPORTED_CONFIG, &c);
            }
            if sidecar.get(FIELD_JOURNAL_KEY).is_none() {
                for (field, key) in [FIELD_JOURNAL_KEY, FIELD_JOURNAL_CLASH_KEY]
                    .into_iter()
                    .zip(quarantine::journal_keys_of(&raw))
                {
                    if !key.chars().any(char::is_control) {
                        sidecar.set(field, &key);
                    }
                }
            }
            match index.import(&raw, &sidecar, now, stem.as_deref()) {
                Ok((p, true)) => {
                    added += 1;
                    out.push_str(&format!(
                        "{}: imported as {}\n",
                        f.display(),
                        p.file_stem().unwrap_or_default().to_string_lossy()
                    ));
                }
                Ok((p, false)) => {
                    present += 1;
                    out.push_str(&format!(
                        "{}: already in the quarantine as {}\n",
                        f.display(),
                        p.file_stem().unwrap_or_default().to_string_lossy()
                    ));
                }
                Err(e) => {
                    failed += 1;
                    out.push_str(&format!("{}: {e}\n", f.display()));
                }
            }
        }
    }
    out.push_str(&format!(
        "{added} imported, {present} already there, {failed} failed\n"
    ));
    if failed > 0 {
        Err(ToolError::Partial(out))
    } else {
        Ok(out)
    }
}

/// `quarantine delete ID...`: asks nothing, says what went.
pub fn delete(config: &Config, ids: &[String]) -> Outcome {
    let q = quarantine_of(config);
    let mut out = String::new();
    let mut failed = false;
    for id in ids {
        match q.resolve(id) {
            Ok(p) => match q.remove(&p) {
                Ok(()) => out.push_str(&format!(
                    "deleted {}\n",
                    p.file_stem().unwrap_or_default().to_string_lossy()
                )),
                Err(e) => {
                    failed = true;
                    out.push_str(&format!("{id}: {e}\n"));
                }
            },
            Err(e) => {
                failed = true;
                out.push_str(&format!("{e}\n"));
            }
        }
    }
    if failed {
        Err(ToolError::Partial(out))
    } else {
        Ok(out)
    }
}

/// `quarantine purge --older-than D [--dry-run]`: the entries (and refused parts)
/// quarantined more than D ago; nothing else.
pub fn purge(config: &Config, older_than: &str, dry_run: bool) -> Outcome {
    let age =
        parse_duration(older_than).map_err(|e| ToolError::Usage(format!("--older-than {e}")))?;
    let q = quarantine_of(config);
    let now = SystemClock.now();
    let cutoff = now - age;
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut out = String::new();
    let old: Vec<(Entry, DateTime<FixedOffset>)> = entries(&q)?
        .into_iter()
        // An entry whose time cannot be told is never taken as old.
        .filter_map(|e| e.quarantined_at().map(|at| (e, at)))
        .filter(|(_, at)| *at < cutoff)
        .collect();
    let results = if dry_run {
        old.iter().map(|_| Ok(())).collect()
    } else {
        let paths: Vec<PathBuf> = old.iter().map(|(e, _)| e.path.clone()).collect();
        q.remove_many(&paths)
    };
    let (mut n, mut failed) = (0usize, false);
    for ((e, at), result) in old.iter().zip(results) {
        if let Err(err) = result {
            failed = true;
            out.push_str(&format!("{}: {err}\n", e.id));
            continue;
        }
        n += 1;
        out.push_str(&format!(
            "{verb} {} (quarantined {})\n",
            e.id,
            at.to_rfc3339()
        ));
    }
    let mut parts = 0usize;
    for p in q.parts().map_err(ToolError::io(q.dir()))? {
        if p.modified.is_none_or(|m| m >= cutoff) {
            continue;
        }
        if !dry_run {
            q.remove_part(&p.path).map_err(ToolError::io(&p.path))?;
        }
        parts += 1;
        out.push_str(&format!("{verb} part {}\n", p.path.display()));
    }
    out.push_str(&format!(
        "{}: {n} mail(s) and {parts} refused part(s) older than {older_than}\n",
        if dry_run {
            "dry run, would delete"
        } else {
            "deleted"
        }
    ));
    if failed {
        Err(ToolError::Partial(out))
    } else {
        Ok(out)
    }
}

/// `journal purge [--older-than D] [--dry-run]`: forgets old mails (see
/// [`DeliveryJournal::purge`]); never the rows of mails still in the quarantine, never
/// a quarantine file.
pub fn journal_purge(config: &Config, older_than: Option<&str>, dry_run: bool) -> Outcome {
    let retention = match older_than {
        Some(d) => Retention::uniform(
            parse_duration(d).map_err(|e| ToolError::Usage(format!("--older-than {e}")))?,
        ),
        None => config.journal_retention(),
    };
    let keep =
        quarantine_of(config)
            .journal_keys()
            .map_err(|source| ToolError::QuarantineUnreadable {
                path: config.quarantine_dir(),
                source,
            })?;
    let state = config.state_dir();
    if !state.join(DB_FILE_NAME).is_file() {
        return Ok(format!(
            "no journal at {}: nothing to purge\n",
            state.join(DB_FILE_NAME).display()
        ));
    }
    let db = state.join(DB_FILE_NAME);
    let journal_error = |source| ToolError::Journal {
        path: db.clone(),
        source,
    };
    let journal = DeliveryJournal::open(&state).map_err(journal_error)?;
    let now = SystemClock.now();
    let r = journal
        .purge(&retention, &keep, now, dry_run)
        .map_err(journal_error)?;
    Ok(purge_text(&r, &retention, dry_run))
}

fn age_text(d: TimeDelta) -> String {
    let s = d.num_seconds();
    if s == 0 {
        format!("{} ms", d.num_milliseconds())
    } else if s % 86_400 == 0 {
        format!("{} days", s / 86_400)
    } else if s % 3_600 == 0 {
        format!("{} hours", s / 3_600)
    } else {
        format!("{s} s")
    }
}

fn purge_text(r: &PurgeReport, retention: &Retention, dry_run: bool) -> String {
    let mut out = String::new();
    if dry_run {
        for m in r.delivered.iter().chain(&r.other) {
            out.push_str(&format!(
                "would forget {}  {}  last run {}\n",
                safe_text(&m.key, 200),
                m.status,
                m.last_run.to_rfc3339()
            ));
        }
    }
    out.push_str(&format!(
        "{} {} mail(s): {} delivered (older than {}), {} other (older than {}); {} rate note(s)\n",
        if dry_run {
            "dry run: would forget"
        } else {
            "forgot"
        },
        r.mails(),
        r.delivered.len(),
        age_text(retention.delivered),
        r.other.len(),
        age_text(retention.other),
        r.rate_notes,
    ));
    out.push_str(&format!(
        "kept: {} still in the quarantine, {} possibly running\n",
        r.kept_quarantined, r.kept_running
    ));
    out
}

/// How `reprocess` goes through a large quarantine.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// Pause between two mails once [`Replay::burst`] mails have run.
    pub pace: Duration,
    /// Mails run without pause first.
    pub burst: usize,
    /// Stop after this many TEMPFAILs in a row (0: never).
    pub max_tempfails: u32,
    /// Run every mail with the `-c` configuration instead of the recorded one.
    pub use_current_config: bool,
}

impl Replay {
    /// From the command-line values.
    pub fn parse(
        pace: &str,
        burst: usize,
        max_tempfails: u32,
        use_current_config: bool,
    ) -> Result<Replay, String> {
        let pace = parse_duration(pace).map_err(|e| format!("--pace {e}"))?;
        Ok(Replay {
            pace: pace.to_std().map_err(|_| "--pace: negative".to_string())?,
            burst,
            max_tempfails,
            use_current_config,
        })
    }
}

/// What to reprocess: entries of the quarantine (by ID or `--all`) and, for the old
/// `reprocess PATH`, any mail file.
pub fn reprocess_targets(
    config: &Config,
    ids: &[String],
    all: bool,
) -> Result<Vec<PathBuf>, ToolError> {
    let q = quarantine_of(config);
    if all {
        return pick(&q, ids, true);
    }
    if ids.is_empty() {
        return Err(ToolError::Usage("name at least one ID, or --all".into()));
    }
    let mut out = Vec::new();
    for id in ids {
        match q.resolve(id) {
            Ok(p) => out.push(p),
            // A mail file elsewhere is run, never removed (see `reprocess`).
            Err(_) if Path::new(id).is_file() => out.push(PathBuf::from(id)),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// `quarantine reprocess` (and the older `reprocess`): each mail through the whole
/// path again, with the configuration it first ran with (unless
/// [`Replay::use_current_config`]), as a repeat that may retry a permanent outcome.
/// SUCCESS and SKIP end the entry (it leaves the quarantine); any other outcome
/// stays, with `retries`, `last-retry-at` and `last-error` updated in its sidecar.
/// Paced after the first [`Replay::burst`] mails; stops after
/// [`Replay::max_tempfails`] TEMPFAILs in a row. Prints one line per mail and a
/// summary; returns the worst exit code.
pub fn reprocess(current: &Loaded, files: &[PathBuf], replay: Replay) -> u8 {
    if files.is_empty() {
        println!("nothing to reprocess: the quarantine is empty");
        return 0;
    }
    let sink = super::start_logging(&current.config, &current.origin);
    let rt = match super::wiring::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailtoticket: {}", error_chain(&e));
            return 1;
        }
    };
    let q = quarantine_of(&current.config);
    let listed = q.list().unwrap_or_default();
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let current_origin = canonical(&current.origin);
    // Configurations recorded by the entries, loaded once each.
    let mut loaded: HashMap<PathBuf, Result<Loaded, String>> = HashMap::new();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let (mut done, mut failing, mut streak) = (0usize, 0usize, 0u32);
    let mut worst = 0u8;
    let mut stopped_at = None;
    for (i, f) in files.iter().enumerate() {
        // Every line about this mail carries its fields (log_format json/journald).
        let span = crate::app::mail_span();
        let _in_mail = span.enter();
        if i >= replay.burst && !replay.pace.is_zero() {
            std::thread::sleep(replay.pace);
        }
        let in_quarantine = listed.contains(f);
        let label = if in_quarantine {
            f.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        } else {
            f.display().to_string()
        };
        let raw = match std::fs::read(f) {
            Ok(r) => r,
            Err(e) => {
                let _ = writeln!(out, "{label}: ERROR cannot read: {e}");
                worst = worst.max(1);
                failing += 1;
                continue;
            }
        };
        let sidecar = if in_quarantine {
            q.sidecar(f).unwrap_or_default()
        } else {
            Sidecar::default()
        };
        // The configuration it first ran with, unless told otherwise.
        let recorded = sidecar
            .get(FIELD_CONFIG)
            .filter(|_| !replay.use_current_config)
            .map(PathBuf::from)
            .filter(|p| canonical(p) != current_origin);
        let run_with: &Loaded = match &recorded {
            None => current,
            Some(path) => {
                let entry = loaded.entry(path.clone()).or_insert_with(|| {
                    super::load_config(Some(&path.to_string_lossy())).map_err(|e| error_chain(&e))
                });
                match entry {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = writeln!(
                            out,
                            "{label}: ERROR the configuration it first ran with cannot be loaded ({e}); `--use-config` runs it with the -c one"
                        );
                        worst = worst.max(1);
                        failing += 1;
                        continue;
                    }
                }
            }
        };
        info!("{SEPARATOR}");
        info!(
            "Reprocesso {label} amb la configuració {}",
            run_with.origin.display()
        );
        let source = sidecar
            .get(FIELD_SOURCE)
            .map_or_else(|| "reprocess".to_string(), str::to_string);
        let h = rt.block_on(mda::handle(
            &run_with.config,
            &run_with.settings,
            &raw,
            &sink,
            Mode {
                dry_run: false,
                retry_permanent: true,
                origin: Some(&run_with.origin),
                source: Some(&source),
                replaying: in_quarantine.then_some(f.as_path()),
            },
            &mut io::sink(),
        ));
        let reason = safe_text(first_line(&h.reason), 300);
        if matches!(h.status, Status::Success | Status::Skip) {
            done += 1;
            streak = 0;
            let note = if in_quarantine {
                match q.remove(f) {
                    Ok(()) => " (done: removed from the quarantine)".to_string(),
                    Err(e) => format!(" (done, but it could not be removed: {e})"),
                }
            } else {
                " (done)".to_string()
            };
            let _ = writeln!(out, "{label}: {} {reason}{note}", h.status.as_header());
        } else {
            failing += 1;
            streak = if h.status == Status::TempFail {
                streak + 1
            } else {
                0
            };
            let note = if in_quarantine {
                match q.record_retry(f, h.status.as_header(), &h.reason, SystemClock.now()) {
                    Ok(n) => format!(" (kept in the quarantine, retry {n})"),
                    Err(e) => format!(" (kept; the retry could not be recorded: {e})"),
                }
            } else {
                String::new()
            };
            let _ = writeln!(out, "{label}: {} {reason}{note}", h.status.as_header());
        }
        let _ = out.flush();
        worst = worst.max(exit::exit_code(h.status));
        if replay.max_tempfails > 0 && streak >= replay.max_tempfails {
            stopped_at = Some(i + 1);
            break;
        }
    }
    let left = stopped_at.map_or(0, |n| files.len() - n);
    if let Some(n) = stopped_at {
        let _ = writeln!(
            out,
            "stopped after {} TEMPFAILs in a row (is the bus down?): {left} mail(s) left untried",
            replay.max_tempfails
        );
        debug_assert!(n <= files.len());
    }
    if files.len() > 1 {
        let _ = writeln!(
            out,
            "reprocessed {}: {done} done, {failing} still failing, {left} not tried",
            files.len() - left
        );
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("30d").unwrap(), TimeDelta::days(30));
        assert_eq!(parse_duration("12h").unwrap(), TimeDelta::hours(12));
        assert_eq!(parse_duration("2w").unwrap(), TimeDelta::weeks(2));
        assert_eq!(parse_duration("90m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(parse_duration("0").unwrap(), TimeDelta::zero());
        assert_eq!(parse_duration("0.5").unwrap(), TimeDelta::milliseconds(500));
        assert_eq!(
            parse_duration("250ms").unwrap(),
            TimeDelta::milliseconds(250)
        );
        for bad in ["", "d", "-3d", "3x", "1.2.3d", "1e9w", "30 dd"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains(bad) || bad.is_empty(), "{bad}: {e}");
        }
    }

    #[test]
    fn safe_text_escapes_controls_and_truncates() {
        assert_eq!(safe_text("a\x1b[31mb\nc", 100), "a\\u{1b}[31mb\\nc");
        assert_eq!(safe_text("abcdef", 3), "abc…");
        assert_eq!(safe_text("x\u{202e}y", 10), "x\\u{202e}y");
    }
}
