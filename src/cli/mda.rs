//! MDA mode (driving side): one mail on stdin → the use case → the mail echoed on
//! stdout byte for byte behind `X-Mailtoticket: STATUS`, the exit code of the table,
//! the log summary line and, when due, the error report.

use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use tracing::{Instrument, error, info, warn};

use super::wiring::{self, Identity, Tickets};
use crate::adapters::journal::{DeliveryJournal, DurableJournals, SnapshotJournals};
use crate::adapters::logging::{LogSink, SEPARATOR};
use crate::adapters::planning::{PlannedCall, PlanningTicketSystem};
use crate::adapters::quarantine::{Provenance, Quarantine};
use crate::adapters::report::{SmtpReporter, SmtpReports, SmtpSettings};
use crate::adapters::telemetry::MailSample;
use crate::app::{self, Handled, MailPorts};
use crate::config::{Config, ConfigError, Settings};
use crate::domain::outcome::Status;
use crate::exit;
use crate::ports::{RunMeter, SystemClock, error_chain};

/// Writes the `X-Mailtoticket` line with the input's own line ending (CRLF when the
/// first line of the input ends in CRLF), then the input untouched.
pub fn echo(out: &mut impl Write, raw: &[u8], status: Status) -> io::Result<()> {
    let eol: &[u8] = match raw.iter().position(|b| *b == b'\n') {
        Some(i) if i > 0 && raw[i - 1] == b'\r' => b"\r\n",
        _ => b"\n",
    };
    out.write_all(b"X-Mailtoticket: ")?;
    out.write_all(status.as_header().as_bytes())?;
    out.write_all(eol)?;
    out.write_all(raw)?;
    out.flush()
}

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode<'a> {
    /// Plan only: read-only calls go out, mutating ones are printed.
    pub dry_run: bool,
    /// `reprocess`: run again a mail whose journal entry says it ended with a
    /// permanent outcome (the admin fixed the cause). Other runs repeat that outcome.
    pub retry_permanent: bool,
    /// The configuration file of the run, recorded with a quarantined mail so that
    /// `quarantine reprocess` runs it with the same one.
    pub origin: Option<&'a Path>,
    /// How the mail came (recorded with a quarantined mail); `None`: MDA stdin.
    pub source: Option<&'a str>,
    /// `quarantine reprocess` of this entry: a failure leaves it where it is instead
    /// of quarantining the mail a second time.
    pub replaying: Option<&'a Path>,
}

/// The source recorded for a mail read on standard input.
pub const SOURCE_STDIN: &str = "mda (stdin)";

/// One raw mail through the use case (without echoing it): builds the ports and
/// calls [`app::handle`]. `plan_out` receives the dry-run plan. Everything it logs is
/// inside the mail's span ([`app::mail_span`]).
pub async fn handle(
    config: &Config,
    settings: &Settings,
    raw: &[u8],
    sink: &LogSink,
    mode: Mode<'_>,
    plan_out: &mut dyn Write,
) -> Handled {
    let span = app::mail_span();
    handle_mail(config, settings, raw, sink, mode, plan_out)
        .instrument(span)
        .await
}

async fn handle_mail(
    config: &Config,
    settings: &Settings,
    raw: &[u8],
    sink: &LogSink,
    mode: Mode<'_>,
    plan_out: &mut dyn Write,
) -> Handled {
    let started = Instant::now();
    let mark = sink.mark();
    let services = wiring::connect(config).await;
    // Why GN6 cannot be reached, as the reason of the mail's ERROR.
    let unavailable = services.as_ref().err().map(|e| error_chain(e));
    let unavailable = unavailable.as_deref().unwrap_or_default();
    let decoder = wiring::Decoder(
        &settings.attachments,
        settings.app.limits.mail.max_mime_depth,
    );
    let meter = Meter {
        started,
        services: services.as_ref().ok(),
    };
    // A dry run reads the durable journal without writing or locking anything.
    let snapshot = SnapshotJournals {
        state_dir: config.state_dir(),
    };
    match (&services, mode.dry_run) {
        (Ok(s), true) => {
            let planner = PlanningTicketSystem::new(s.tickets.clone());
            // The identity chain of this mail (its own per-run cache).
            let directories = s.directories();
            let ports = MailPorts {
                decoder: &decoder,
                services: Ok((&planner, &directories)),
                clock: &SystemClock,
                journals: &snapshot,
                reporter: None,
                quarantine: None,
                meter: &meter,
            };
            let handled = app::handle(raw, &settings.app, &ports).await;
            let _ = write_plan(plan_out, config, &handled, &planner.plan());
            handled
        }
        (Err(_), true) => {
            let ports: MailPorts<'_, Tickets, Identity> = MailPorts {
                decoder: &decoder,
                services: Err(unavailable),
                clock: &SystemClock,
                journals: &snapshot,
                reporter: None,
                quarantine: None,
                meter: &meter,
            };
            let handled = app::handle(raw, &settings.app, &ports).await;
            let _ = write_plan(plan_out, config, &handled, &[]);
            handled
        }
        (services, false) => {
            let reports = SmtpReports {
                smtp: SmtpReporter::new(SmtpSettings::from_config(config)),
                sink,
                mark,
                to: config.notificar_errors_to.clone(),
            };
            // Opened first and kept for the run: the telemetry is written through it
            // at the end, and while it is open the run's own journal connections share
            // its WAL index instead of rebuilding it (see `record_telemetry`).
            let telemetry = DeliveryJournal::open(&config.state_dir());
            let journals = DurableJournals {
                state_dir: config.state_dir(),
                retention: config.journal_retention(),
                quarantine_dir: config.quarantine_dir(),
                retry_permanent: mode.retry_permanent,
            };
            let quarantine = Quarantine::new(config.quarantine_dir())
                .with_provenance(Provenance {
                    config: mode
                        .origin
                        .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())),
                    source: mode.source.unwrap_or(SOURCE_STDIN).to_string(),
                })
                .replaying(mode.replaying.map(Path::to_path_buf));
            // The identity chain of this mail (its own per-run cache).
            let directories = services.as_ref().ok().map(wiring::Services::directories);
            let ports = MailPorts {
                decoder: &decoder,
                services: match (services, &directories) {
                    (Ok(s), Some(chain)) => Ok((&s.tickets, chain)),
                    (Err(_), _) => Err(unavailable),
                    (Ok(_), None) => unreachable!("directories exist when services do"),
                },
                clock: &SystemClock,
                journals: &journals,
                reporter: Some(&reports),
                quarantine: Some(&quarantine),
                meter: &meter,
            };
            let handled = app::handle(raw, &settings.app, &ports).await;
            record_telemetry(telemetry, &handled, started, services.as_ref().ok());
            handled
        }
    }
}

/// The `outcome` label of a status in the metrics.
pub fn outcome_label(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::Skip => "skip",
        Status::Reject => "reject",
        Status::Error => "error",
        Status::TempFail => "tempfail",
        Status::Unknown => "unknown",
    }
}

/// Issue 18: the outcome, duration and bus calls of the mail into the journal's
/// counters, in one write (dry runs never get here). A failure is only logged: the
/// mail was handled, the numbers are not worth a retry.
///
/// `journal` was opened before the run and kept open: a connection opened afresh
/// here, once the run's own connections are closed, would be the process's first
/// again and rebuild the WAL index from the whole WAL (SQLite's unix VFS resets the
/// shared memory for a first opener), which then forgets the last checkpoint and
/// makes this one write copy the whole WAL back (measured: ~10 ms instead of ~0.1 ms).
fn record_telemetry(
    journal: Result<DeliveryJournal, crate::adapters::journal::JournalError>,
    handled: &Handled,
    started: Instant,
    services: Option<&wiring::Services>,
) {
    let sample = MailSample {
        outcome: outcome_label(handled.status),
        duration: started.elapsed(),
        calls: services
            .map(wiring::Services::take_calls)
            .unwrap_or_default(),
        at_ms: chrono::Utc::now().timestamp_millis(),
    };
    if let Err(e) = journal.and_then(|j| j.record_mail(&sample)) {
        warn!("No he pogut desar els comptadors del mail al diari: {e}");
    }
}

/// The summary line's measures: time since the mail was read, SOAP calls made.
struct Meter<'a> {
    started: Instant,
    services: Option<&'a wiring::Services>,
}

impl RunMeter for Meter<'_> {
    fn soap_calls(&self) -> usize {
        self.services.map_or(0, wiring::Services::soap_calls)
    }

    fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }
}

fn write_plan(
    out: &mut dyn Write,
    config: &Config,
    handled: &Handled,
    plan: &[PlannedCall],
) -> io::Result<()> {
    let (status, filter, reason) = (handled.status, handled.filter.as_deref(), &handled.reason);
    let mut text = String::new();
    text.push_str("Dry run: nothing was changed.\n");
    text.push_str(&format!(
        "Outcome: {} (filter: {}) — {}\n",
        status.as_header(),
        filter.unwrap_or("none"),
        reason
    ));
    // The journal already settled this mail (issue 12 §5).
    if status == Status::Success && reason.starts_with(app::DUPLICATE_REASON) {
        text.push_str(&format!(
            "Journal: already delivered: ticket {}\n",
            handled.ticket.as_deref().unwrap_or("-")
        ));
    }
    if plan.is_empty() {
        text.push_str("Mutating SOAP calls: none\n");
    } else {
        text.push_str(&format!("Mutating SOAP calls ({}):\n", plan.len()));
        for (i, call) in plan.iter().enumerate() {
            text.push_str(&format!("{}. {call}", i + 1));
        }
    }
    // Defence in depth: the plan never carries credentials, but hide them anyway.
    out.write_all(crate::adapters::logging::redact(&text, &config.secrets()).as_bytes())?;
    out.flush()
}

/// The MDA entry: `raw` was read from stdin (or `read_error` says why not).
pub fn run(
    config: Result<super::Loaded, ConfigError>,
    raw: Vec<u8>,
    read_error: Option<io::Error>,
    mode: Mode<'_>,
) -> u8 {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if let Some(e) = read_error {
        eprintln!("mailtoticket: cannot read the mail from standard input: {e}");
        let _ = echo(&mut out, &raw, Status::Unknown);
        return exit::exit_code(Status::Unknown);
    }
    let super::Loaded {
        config,
        settings,
        origin,
    } = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailtoticket: {}", error_chain(&e));
            if !mode.dry_run {
                let _ = echo(&mut out, &raw, Status::Error);
            }
            return exit::exit_code(Status::Error);
        }
    };
    let sink = super::start_logging(&config, &origin);
    // Every line of the run is about this one mail.
    let span = app::mail_span();
    let _in_mail = span.enter();
    info!("{SEPARATOR}");
    let handled = match wiring::runtime() {
        // Last line of defence: a bug that panics must still leave the mail echoed
        // with ERROR and a non-zero exit, never lost.
        Ok(rt) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mode = Mode {
                origin: Some(&origin),
                ..mode
            };
            rt.block_on(handle(&config, &settings, &raw, &sink, mode, &mut out))
        }))
        .unwrap_or_else(|_| {
            error!("Error inesperat (panic) tractant el mail");
            Handled::failed(Status::Error, "error inesperat (panic)")
        }),
        Err(e) => {
            let e = error_chain(&e);
            error!("{e}");
            Handled::failed(Status::Error, e)
        }
    };
    info!("Ja he fet el que havia de fer. Surto!");
    if !mode.dry_run {
        if config.no_escriure_sortida {
            info!("no_escriure_sortida: no escric el mail a la sortida");
        } else if let Err(e) = echo(&mut out, &raw, handled.status) {
            warn!("No he pogut escriure el mail a la sortida: {e}");
        }
        info!(
            "Marco el mail com a tractat: X-Mailtoticket: {}",
            handled.status.as_header()
        );
    }
    info!("{SEPARATOR}");
    exit::exit_code_with(
        handled.status,
        config.exit_zero_when_reported,
        handled.reported,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_keeps_bytes_and_line_ending() {
        let mut out = Vec::new();
        echo(&mut out, b"A: b\r\n\r\nx\n", Status::Skip).unwrap();
        assert_eq!(out, b"X-Mailtoticket: SKIP\r\nA: b\r\n\r\nx\n");
        let mut out = Vec::new();
        echo(&mut out, b"A: b\n\n\xff", Status::Error).unwrap();
        assert_eq!(out, b"X-Mailtoticket: ERROR\nA: b\n\n\xff");
        let mut out = Vec::new();
        echo(&mut out, b"", Status::Unknown).unwrap();
        assert_eq!(out, b"X-Mailtoticket: UNKNOWN\n");
    }
}
