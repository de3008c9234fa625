//! Log adapter (driven side, infrastructure): tracing events → one line each, appended
//! to `log_file` (stderr when it can't be written), captured in memory for the error
//! report, with every configured secret replaced by `***` in whatever is written.
//!
//! `log_format` chooses what goes out (the capture for the error report is always the
//! text form, for the people who read the report): `text` (the historic lines), `json`
//! (one object per line, [`json`]) or `journald` (native protocol with structured
//! fields, [`journald`]). Every line carries mail text escaped ([`escape`]), and each
//! line logged inside a mail's span ([`crate::app::MAIL_SPAN`]) carries that mail's
//! journal id, Message-ID, outcome, reason, ticket and time since it was read, in the
//! JSON and journald forms.

mod escape;
pub mod journald;
mod json;

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

pub use escape::{escape, for_terminal, is_dangerous};

/// The separator line that starts and ends a run, as in the old log.
pub const SEPARATOR: &str =
    "---------------------------------------------------------------------------";

/// Replaces every secret (longest first, so that one secret containing another is
/// fully hidden) by `***`, where it stands as a whole value: an occurrence glued to
/// a letter, digit, `_` or `-` (or to a `.` followed by one) is part of some other
/// text (a Message-ID, a word) and is left as it is (issue 12 §8). Secrets shorter than 3 characters are left alone: hiding
/// every "a" of a log would make it unreadable and protect nothing.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| s.chars().count() >= 3).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in sorted {
        if out.contains(s.as_str()) {
            out = replace_whole(&out, s);
        }
        // SOAP bodies logged at trace level carry the passwords XML-escaped.
        let escaped = s
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;");
        if escaped != *s && out.contains(escaped.as_str()) {
            out = replace_whole(&out, &escaped);
        }
    }
    out
}

/// A character that, next to a secret, makes the occurrence part of a larger token.
fn glues(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// `text` with every whole-value occurrence of `needle` replaced by `***`.
fn replace_whole(text: &str, needle: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut from = 0;
    while let Some(i) = text[from..].find(needle).map(|i| i + from) {
        let end = i + needle.len();
        let before = text[..i].chars().next_back();
        let mut after = text[end..].chars();
        let next = after.next();
        let glued_after = match next {
            Some('.') => after.next().is_some_and(glues),
            Some(c) => glues(c),
            None => false,
        };
        let glued_before = before.is_some_and(|c| glues(c) || c == '.')
            && needle.chars().next().is_some_and(glues);
        let glued_after = glued_after && needle.chars().next_back().is_some_and(glues);
        if glued_before || glued_after {
            from = i + needle.chars().next().map_or(1, char::len_utf8);
            continue;
        }
        out.push_str(&text[rest..i]);
        out.push_str("***");
        rest = end;
        from = end;
    }
    out.push_str(&text[rest..]);
    out
}

/// What the log lines are written as (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// The historic text lines, to `log_file`.
    Text,
    /// One JSON object per line, to `log_file`.
    Json,
    /// journald's native protocol (structured fields); `log_file` is not used.
    Journald,
}

impl LogFormat {
    /// The values of `log_format`.
    pub const NAMES: [&'static str; 3] = ["text", "json", "journald"];

    /// `log_format` as written in the configuration (case-insensitive).
    pub fn parse(name: &str) -> Option<LogFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            "journald" => Some(LogFormat::Journald),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
            LogFormat::Journald => "journald",
        }
    }

    /// The format when `log_format` is not set: journald when systemd connected our
    /// stderr to the journal (`JOURNAL_STREAM` names stderr's device and inode, as
    /// systemd documents it; a variable inherited from a parent whose stderr went
    /// there but ours does not is ignored) and `log_file` was left at its default (a
    /// configured file is what the admin asked for); text otherwise.
    pub fn automatic(
        journal_stream: Option<&str>,
        stderr: Option<(u64, u64)>,
        log_file_is_default: bool,
    ) -> LogFormat {
        let to_journal = journal_stream
            .and_then(|v| {
                let (dev, ino) = v.trim().split_once(':')?;
                Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
            })
            .is_some_and(|stream| Some(stream) == stderr);
        if to_journal && log_file_is_default {
            LogFormat::Journald
        } else {
            LogFormat::Text
        }
    }
}

/// Device and inode of this process's stderr (for [`LogFormat::automatic`]).
pub fn stderr_identity() -> Option<(u64, u64)> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = File::from(fd).metadata().ok()?;
    Some((meta.dev(), meta.ino()))
}

enum Target {
    File(File),
    Stderr,
}

/// Where the lines go besides the capture.
enum Output {
    /// Text lines to `target`.
    Text,
    /// JSON lines to `target`.
    Json,
    /// Datagrams to journald.
    Journald(journald::Journald),
}

struct State {
    target: Target,
    output: Output,
    capture: String,
    secrets: Vec<String>,
}

impl State {
    fn write_target(&mut self, text: &str) {
        let ok = match &mut self.target {
            Target::File(f) => f.write_all(text.as_bytes()).is_ok(),
            Target::Stderr => io::stderr().write_all(text.as_bytes()).is_ok(),
        };
        if !ok {
            self.target = Target::Stderr;
            let _ = io::stderr().write_all(text.as_bytes());
        }
    }
}

/// Where the log lines go. Cheap to clone; clones share the file and the capture.
#[derive(Clone)]
pub struct LogSink {
    state: Arc<Mutex<State>>,
}

impl LogSink {
    /// Opens `log_file` for append, creating its folder. When that fails the lines go
    /// to stderr and the returned warning says why (a log problem never loses a mail).
    pub fn open(log_file: Option<&Path>, secrets: Vec<String>) -> (LogSink, Option<String>) {
        let (target, warning) = match log_file {
            None => (Target::Stderr, None),
            Some(path) => match open_append(path) {
                Ok(f) => (Target::File(f), None),
                Err(e) => (
                    Target::Stderr,
                    Some(format!(
                        "no puc escriure el log a {}: {e}; escric a stderr",
                        path.display()
                    )),
                ),
            },
        };
        let sink = LogSink {
            state: Arc::new(Mutex::new(State {
                target,
                output: Output::Text,
                capture: String::new(),
                secrets,
            })),
        };
        (sink, warning)
    }

    /// A sink for `format`: `log_file` for text and JSON; for journald the socket at
    /// `socket` (text on stderr, with the returned notice, when nobody listens there).
    pub fn open_as(
        format: LogFormat,
        log_file: &Path,
        socket: &Path,
        secrets: Vec<String>,
    ) -> (LogSink, Option<String>) {
        match format {
            LogFormat::Text => LogSink::open(Some(log_file), secrets),
            LogFormat::Json => {
                let (sink, warning) = LogSink::open(Some(log_file), secrets);
                sink.lock().output = Output::Json;
                (sink, warning)
            }
            LogFormat::Journald => {
                let (sink, _) = LogSink::open(None, secrets);
                match journald::Journald::connect(socket) {
                    Ok(j) => {
                        sink.lock().output = Output::Journald(j);
                        (sink, None)
                    }
                    Err(e) => {
                        let w = format!(
                            "no puc escriure al journal ({}: {e}); escric el log a stderr",
                            socket.display()
                        );
                        (sink, Some(w))
                    }
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic while logging; the text is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every line written during this run (already redacted).
    pub fn captured(&self) -> String {
        self.lock().capture.clone()
    }

    /// Length of the capture so far: a mark for [`LogSink::captured_since`].
    pub fn mark(&self) -> usize {
        self.lock().capture.len()
    }

    /// The lines written since `mark` (one mail's log when a run handles several).
    pub fn captured_since(&self, mark: usize) -> String {
        self.lock()
            .capture
            .get(mark..)
            .unwrap_or_default()
            .to_string()
    }

    /// Adds secrets to hide (e.g. once the configuration is known).
    pub fn add_secrets(&self, secrets: impl IntoIterator<Item = String>) {
        self.lock().secrets.extend(secrets);
    }

    fn write_line(&self, bytes: &[u8]) {
        let mut st = self.lock();
        let text = redact(&String::from_utf8_lossy(bytes), &st.secrets);
        st.capture.push_str(&text);
        st.write_target(&text);
    }

    /// One event: its text line to the capture, and to the output in its format.
    fn emit(&self, line: &Line<'_>) {
        let mut st = self.lock();
        let text = redact(&line.text(), &st.secrets);
        st.capture.push_str(&text);
        match &st.output {
            Output::Text => st.write_target(&text),
            Output::Json => {
                let json = json::line(line, &st.secrets);
                st.write_target(&json);
            }
            Output::Journald(j) => {
                let sent = journald_fields(line, &st.secrets, |fields| j.send(fields));
                if let Err(e) = sent {
                    // Once: from now on the text lines go to stderr.
                    let notice = Line {
                        level: Level::WARN,
                        target: module_path!(),
                        message: format!(
                            "no puc escriure al journal ({}: {e}); escric el log a stderr",
                            j.path().display()
                        ),
                        ..line.clone()
                    }
                    .text();
                    st.output = Output::Text;
                    st.target = Target::Stderr;
                    st.capture.push_str(&notice);
                    st.write_target(&notice);
                    st.write_target(&text);
                }
            }
        }
    }
}

/// The journald fields of one event, passed to `send`.
fn journald_fields<R>(
    line: &Line<'_>,
    secrets: &[String],
    send: impl FnOnce(&[(&str, &str)]) -> R,
) -> R {
    let clean = |v: &str| escape(&redact(v, secrets)).into_owned();
    let message = clean(&line.message);
    let mut owned: Vec<(&str, String)> = Vec::with_capacity(12);
    owned.push(("MESSAGE", message));
    owned.push(("PRIORITY", journald::priority(line.level).to_string()));
    owned.push(("SYSLOG_IDENTIFIER", journald::IDENTIFIER.to_string()));
    owned.push(("MAILTOTICKET_TARGET", clean(line.target)));
    if let Some((m, ms)) = &line.mail {
        let known = [
            ("MAILTOTICKET_JOURNAL_ID", &m.journal_id),
            ("MAILTOTICKET_MESSAGE_ID", &m.message_id),
            ("MAILTOTICKET_OUTCOME", &m.outcome),
            ("MAILTOTICKET_REASON", &m.reason),
            ("MAILTOTICKET_TICKET", &m.ticket),
        ];
        for (k, v) in known {
            if let Some(v) = v {
                owned.push((k, clean(v)));
            }
        }
        owned.push(("MAILTOTICKET_DURATION_MS", ms.to_string()));
    }
    let fields: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send(&fields)
}

/// Whether the log file can be opened for append (creating its folder), for `check`.
pub fn check_writable(path: &Path) -> Result<(), String> {
    open_append(path)
        .map(|_| ())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        super::private_files::create_dir_all(parent)?;
    }
    super::private_files::file_options()
        .create(true)
        .append(true)
        .open(path)
}

/// Per-event writer: the fmt layer writes one whole line through it.
pub struct LineWriter {
    sink: LogSink,
    buf: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.sink.write_line(&buf);
        }
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LineWriter;
    fn make_writer(&'a self) -> LineWriter {
        LineWriter {
            sink: self.clone(),
            buf: Vec::new(),
        }
    }
}

/// What is known about the mail a line is about (the fields of its span).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailFields {
    pub journal_id: Option<String>,
    pub message_id: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub ticket: Option<String>,
}

impl Visit for MailFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "journal_id" => &mut self.journal_id,
            "message_id" => &mut self.message_id,
            "outcome" => &mut self.outcome,
            "reason" => &mut self.reason,
            "ticket" => &mut self.ticket,
            _ => return,
        };
        *slot = Some(value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// The extension of a mail's span: its fields and when it was opened (the time is
/// read here, in the adapter: the use case is clock-free).
struct MailSpan {
    started: Instant,
    fields: MailFields,
}

/// One event, ready to be written in any format.
#[derive(Clone)]
struct Line<'a> {
    now: chrono::DateTime<chrono::Local>,
    level: Level,
    target: &'a str,
    /// The event's text as the historic line had it, not yet escaped nor redacted.
    message: String,
    /// The mail's fields and milliseconds since it was read, for a line about a mail.
    mail: Option<(MailFields, u64)>,
}

impl Line<'_> {
    fn level_name(&self) -> &'static str {
        match self.level {
            Level::WARN => "WARNING",
            Level::ERROR => "ERROR",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        }
    }

    /// `2026-11-28 10:00:00.123 [4242] mailtoticket::cli INFO  message\n`.
    fn text(&self) -> String {
        format!(
            "{} [{}] {} {:<7} {}\n",
            self.now.format("%Y-%m-%d %H:%M:%S%.3f"),
            std::process::id(),
            escape(self.target),
            self.level_name(),
            escape(&self.message)
        )
    }
}

/// An event's text as tracing-subscriber's default formatter writes it (the message,
/// then ` name=value` with the value's `Debug`), but raw: escaping is done once, by
/// [`escape`], on the whole text.
#[derive(Default)]
struct EventText {
    out: String,
}

impl EventText {
    fn pad(&mut self) {
        if !self.out.is_empty() {
            self.out.push(' ');
        }
    }
}

impl Visit for EventText {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.pad();
            self.out.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        use std::fmt::Write as _;
        self.pad();
        if field.name() != "message" {
            let _ = write!(self.out, "{}=", field.name().trim_start_matches("r#"));
        }
        let _ = write!(self.out, "{value}");
        let mut source = value.source();
        if source.is_some() {
            let _ = write!(self.out, " {}.sources=[", field.name());
            let mut first = true;
            while let Some(s) = source {
                let _ = write!(self.out, "{}{s}", if first { "" } else { ", " });
                first = false;
                source = s.source();
            }
            self.out.push(']');
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        self.pad();
        let _ = match field.name() {
            "message" => write!(self.out, "{value:?}"),
            name => write!(self.out, "{}={value:?}", name.trim_start_matches("r#")),
        };
    }
}

/// The layer writing every event to a [`LogSink`] and keeping the fields of mail spans.
pub struct LogLayer {
    sink: LogSink,
}

impl<S> Layer<S> for LogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != crate::app::MAIL_SPAN {
            return;
        }
        if let Some(span) = ctx.span(id) {
            let mut mail = MailSpan {
                started: Instant::now(),
                fields: MailFields::default(),
            };
            attrs.record(&mut mail.fields);
            span.extensions_mut().insert(mail);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(mail) = span.extensions_mut().get_mut::<MailSpan>()
        {
            values.record(&mut mail.fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut text = EventText::default();
        event.record(&mut text);
        let message = text.out;
        let mail = ctx.event_scope(event).and_then(|scope| {
            scope.into_iter().find_map(|span| {
                let ext = span.extensions();
                let m = ext.get::<MailSpan>()?;
                let ms = u64::try_from(m.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                Some((m.fields.clone(), ms))
            })
        });
        self.sink.emit(&Line {
            now: chrono::Local::now(),
            level: *meta.level(),
            target: meta.target(),
            message,
            mail,
        });
    }
}

/// The subscriber writing to `sink` at `level` (what [`install`] installs).
pub fn subscriber(sink: &LogSink, level: Level) -> impl Subscriber + Send + Sync + 'static {
    tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::from_level(level))
        .with(LogLayer { sink: sink.clone() })
}

/// Installs the process-wide subscriber writing to `sink` at `level`. Returns false
/// when one was already installed (then events go to that one).
pub fn install(sink: &LogSink, level: Level) -> bool {
    tracing::subscriber::set_global_default(subscriber(sink, level)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_plain_and_xml_escaped_secrets() {
        let secrets = vec![
            "s3<cr>t".to_string(),
            "ab".to_string(),
            "trustno1".to_string(),
        ];
        let out = redact(
            "pw=s3<cr>t xml=s3&lt;cr&gt;t other=trustno1 short=ab",
            &secrets,
        );
        assert_eq!(out, "pw=*** xml=*** other=*** short=ab");
    }

    #[test]
    fn redacts_whole_values_only() {
        let secrets = vec!["wrong".to_string()];
        assert_eq!(
            redact(
                "id=<wrong-id.123@x> <wrongly@x> <a.wrong@x> Wrong",
                &secrets
            ),
            "id=<wrong-id.123@x> <wrongly@x> <a.wrong@x> Wrong"
        );
        assert_eq!(
            redact(
                "pw=wrong <password>wrong</password> 'wrong', user:wrong@host wrong.",
                &secrets
            ),
            "pw=*** <password>***</password> '***', user:***@host ***."
        );
    }

    #[test]
    fn sink_falls_back_to_stderr_and_captures() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        // a log path under a regular file can't be created
        let (sink, warning) =
            LogSink::open(Some(&blocker.join("x/m.log")), vec!["hunter22".into()]);
        assert!(warning.unwrap().contains("no puc escriure el log"));
        let mut w = sink.make_writer();
        w.write_all(b"password hunter22\n").unwrap();
        drop(w);
        assert_eq!(sink.captured(), "password ***\n");
    }

    #[test]
    fn sink_appends_to_file_creating_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/sub/m.log");
        std::fs::write(dir.path().join("seed"), "").unwrap();
        let (sink, warning) = LogSink::open(Some(&path), vec![]);
        assert!(warning.is_none());
        let mut w = sink.make_writer();
        w.write_all(b"one\n").unwrap();
        drop(w);
        let (sink2, _) = LogSink::open(Some(&path), vec![]);
        let mut w = sink2.make_writer();
        w.write_all(b"two\n").unwrap();
        drop(w);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
    }

    /// Runs `f` with the log layer on `sink` as the thread's subscriber.
    fn logged(sink: &LogSink, f: impl FnOnce()) {
        tracing::subscriber::with_default(subscriber(sink, Level::INFO), f);
    }

    /// One mail's lines: outside any mail, then inside its span as fields get known.
    fn one_mail() {
        tracing::info!("abans del mail");
        let span = crate::app::mail_span();
        span.in_scope(|| {
            tracing::info!("Llegeixo mail");
            span.record("message_id", "<m1@x>");
            span.record("journal_id", "k-1");
            tracing::debug!("no surt: nivell DEBUG");
            span.record("outcome", "SUCCESS");
            span.record("reason", "tiquet creat amb clau hunter22");
            span.record("ticket", "4242");
            tracing::info!("Entro a mailtoticketx\nINFO forged \u{1b}[31mvermell\u{202e}txt.exe");
            tracing::warn!("Resum: tiquet=4242 clau=hunter22");
        });
        tracing::info!("després");
    }

    #[test]
    fn text_lines_keep_their_shape_and_escape_mail_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        let (sink, _) = LogSink::open_as(
            LogFormat::Text,
            &path,
            Path::new("/nonexistent"),
            vec!["hunter22".into()],
        );
        logged(&sink, one_mail);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, sink.captured());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        let shape = regex::Regex::new(
            r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[\d+\] mailtoticket::adapters::logging::tests (INFO |WARNING) ",
        )
        .unwrap();
        for l in &lines {
            assert!(shape.is_match(l), "{l}");
            assert!(!l.chars().any(is_dangerous), "{l:?}");
        }
        assert!(lines[0].ends_with("INFO    abans del mail"));
        assert!(
            lines[2]
                .ends_with("Entro a mailtoticketx\\nINFO forged \\x1b[31mvermell\\u{202e}txt.exe")
        );
        assert!(lines[3].ends_with("WARNING Resum: tiquet=4242 clau=***"));
    }

    #[test]
    fn json_lines_parse_and_carry_the_mail_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.log");
        let (sink, _) = LogSink::open_as(
            LogFormat::Json,
            &path,
            Path::new("/nonexistent"),
            vec!["hunter22".into()],
        );
        logged(&sink, one_mail);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(!text.contains("hunter22") && !text.contains('\u{1b}'));
        // Outside a mail: no mail fields at all.
        assert_eq!(lines[0]["message"], "abans del mail");
        assert!(lines[0].get("journal_id").is_none());
        assert!(lines[4].get("outcome").is_none());
        let ts = lines[0]["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        // The first line of the mail: nothing known yet, but a duration.
        assert_eq!(lines[1]["message"], "Llegeixo mail");
        assert_eq!(lines[1]["level"], "INFO");
        assert!(lines[1]["journal_id"].is_null() && lines[1]["ticket"].is_null());
        assert!(lines[1]["duration_ms"].is_u64());
        // The summary: everything.
        let resum = &lines[3];
        assert_eq!(resum["level"], "WARNING");
        assert_eq!(resum["message"], "Resum: tiquet=4242 clau=***");
        assert_eq!(resum["journal_id"], "k-1");
        assert_eq!(resum["message_id"], "<m1@x>");
        assert_eq!(resum["outcome"], "SUCCESS");
        assert_eq!(resum["reason"], "tiquet creat amb clau ***");
        assert_eq!(resum["ticket"], "4242");
        assert_eq!(resum["target"], "mailtoticket::adapters::logging::tests");
        assert!(
            resum["duration_ms"].as_u64().unwrap() >= lines[1]["duration_ms"].as_u64().unwrap()
        );
        assert_eq!(
            lines[2]["message"],
            "Entro a mailtoticketx\\nINFO forged \\x1b[31mvermell\\u{202e}txt.exe"
        );
        // The error report's capture stays text.
        assert!(
            sink.captured()
                .contains("WARNING Resum: tiquet=4242 clau=***\n")
        );
    }

    #[test]
    fn journald_datagrams_carry_the_fields_and_fall_back_to_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("journal.socket");
        let server = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
        server.set_nonblocking(true).unwrap();
        let (sink, warning) = LogSink::open_as(
            LogFormat::Journald,
            &dir.path().join("unused.log"),
            &socket,
            vec!["hunter22".into()],
        );
        assert!(warning.is_none());
        logged(&sink, one_mail);
        assert!(!dir.path().join("unused.log").exists());
        let mut entries = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = server.recv(&mut buf) {
            let fields = journald::decode(&buf[..n]).unwrap();
            let map: std::collections::HashMap<String, String> = fields
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
                .collect();
            entries.push(map);
        }
        assert_eq!(entries.len(), 5);
        for e in &entries {
            assert_eq!(e["SYSLOG_IDENTIFIER"], "mailtoticket");
            assert!(!e.values().any(|v| v.chars().any(is_dangerous)), "{e:?}");
            assert!(!e.values().any(|v| v.contains("hunter22")), "{e:?}");
        }
        assert!(!entries[0].contains_key("MAILTOTICKET_DURATION_MS"));
        assert_eq!(entries[1]["PRIORITY"], "6");
        assert!(!entries[1].contains_key("MAILTOTICKET_TICKET"));
        assert!(
            entries[1]["MAILTOTICKET_DURATION_MS"]
                .parse::<u64>()
                .is_ok()
        );
        let resum = &entries[3];
        assert_eq!(resum["PRIORITY"], "4");
        assert_eq!(resum["MESSAGE"], "Resum: tiquet=4242 clau=***");
        assert_eq!(resum["MAILTOTICKET_JOURNAL_ID"], "k-1");
        assert_eq!(resum["MAILTOTICKET_MESSAGE_ID"], "<m1@x>");
        assert_eq!(resum["MAILTOTICKET_OUTCOME"], "SUCCESS");
        assert_eq!(resum["MAILTOTICKET_REASON"], "tiquet creat amb clau ***");
        assert_eq!(resum["MAILTOTICKET_TICKET"], "4242");
        assert_eq!(
            resum["MAILTOTICKET_TARGET"],
            "mailtoticket::adapters::logging::tests"
        );
        // journald goes away: one notice, then text (stderr), and the capture goes on.
        drop(server);
        std::fs::remove_file(&socket).unwrap();
        logged(&sink, || {
            tracing::info!("primer sense journal");
            tracing::info!("segon sense journal");
        });
        let captured = sink.captured();
        assert_eq!(captured.matches("no puc escriure al journal").count(), 1);
        assert!(
            captured.ends_with("INFO    segon sense journal\n"),
            "{captured}"
        );
    }

    #[test]
    fn journald_absent_at_start_gives_text_with_a_notice() {
        let dir = tempfile::tempdir().unwrap();
        let (sink, warning) = LogSink::open_as(
            LogFormat::Journald,
            &dir.path().join("unused.log"),
            &dir.path().join("no.socket"),
            vec![],
        );
        assert!(warning.unwrap().contains("no puc escriure al journal"));
        logged(&sink, || tracing::info!("hola"));
        assert!(sink.captured().ends_with("INFO    hola\n"));
        assert!(!dir.path().join("unused.log").exists());
    }

    #[test]
    fn automatic_format_follows_the_journal_stream_of_stderr() {
        let own = Some((64769, 12345));
        assert_eq!(
            LogFormat::automatic(Some("64769:12345"), own, true),
            LogFormat::Journald
        );
        // A configured log file wins.
        assert_eq!(
            LogFormat::automatic(Some("64769:12345"), own, false),
            LogFormat::Text
        );
        // Inherited from a parent: stderr is somewhere else now.
        assert_eq!(
            LogFormat::automatic(Some("64769:999"), own, true),
            LogFormat::Text
        );
        assert_eq!(LogFormat::automatic(None, own, true), LogFormat::Text);
        assert_eq!(
            LogFormat::automatic(Some("junk"), own, true),
            LogFormat::Text
        );
        assert_eq!(
            LogFormat::automatic(Some("64769:12345"), None, true),
            LogFormat::Text
        );
        assert_eq!(LogFormat::parse(" JSON "), Some(LogFormat::Json));
        assert_eq!(LogFormat::parse("syslog"), None);
        for n in LogFormat::NAMES {
            assert_eq!(LogFormat::parse(n).unwrap().name(), n);
        }
    }
}
