//! Log adapter (driven side, infrastructure): tracing events → one line each, appended
//! to `log_file` (stderr when it can't be written), captured in memory for the error
//! report, with every configured secret replaced by `***` in whatever is written.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

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

enum Target {
    File(File),
    Stderr,
}

struct State {
    target: Target,
    capture: String,
    secrets: Vec<String>,
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
                capture: String::new(),
                secrets,
            })),
        };
        (sink, warning)
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
        let ok = match &mut st.target {
            Target::File(f) => f.write_all(text.as_bytes()).is_ok(),
            Target::Stderr => io::stderr().write_all(text.as_bytes()).is_ok(),
        };
        if !ok {
            st.target = Target::Stderr;
            let _ = io::stderr().write_all(text.as_bytes());
        }
    }
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

/// `2026-11-28 10:00:00.123 [4242] mailtoticket::cli INFO  message`.
struct LineFormat;

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::WARN => "WARNING",
            Level::ERROR => "ERROR",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        write!(
            writer,
            "{} [{}] {} {:<7} ",
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S%.3f"),
            std::process::id(),
            meta.target(),
            level
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the process-wide subscriber writing to `sink` at `level`. Returns false
/// when one was already installed (then events go to that one).
pub fn install(sink: &LogSink, level: Level) -> bool {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .event_format(LineFormat)
        .with_writer(sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).is_ok()
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
}
