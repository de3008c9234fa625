//! MDA mode (driving side): one mail on stdin → the use case → the mail echoed on
//! stdout byte for byte behind `X-Mailtoticket: STATUS`, the exit code of the table,
//! the log summary line and, when due, the error report.

use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{error, info, warn};

use super::wiring;
use crate::adapters::journal::budget::Budgets;
use crate::adapters::journal::{DeliveryJournal, MailRun, mail_key};
use crate::adapters::logging::{LogSink, SEPARATOR};
use crate::adapters::mail::{self as mail_adapter, AttachmentFilters};
use crate::adapters::planning::{PlannedCall, PlanningTicketSystem};
use crate::adapters::report::{ErrorReporter, LOOP_HEADER, Report, SmtpReporter, SmtpSettings};
use crate::app::{self, Settings};
use crate::config::Config;
use crate::domain::classify::{ClassifyOptions, Decision, classify};
use crate::domain::mail::Mail;
use crate::domain::outcome::Status;
use crate::domain::trust::ReportVerdict;
use crate::exit;
use crate::ports::{Clock, Journal, MemoryJournal, NoRateLimit, RateLimit, SystemClock};

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

/// What happened to one mail, with what the summary line needs.
#[derive(Debug, Clone)]
pub struct Handled {
    pub status: Status,
    pub reason: String,
    /// The error report was sent or the mail quarantined (for `exit_zero_when_reported`).
    pub reported: bool,
}

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mode {
    /// Plan only: read-only calls go out, mutating ones are printed.
    pub dry_run: bool,
}

fn attachment_filters(config: &Config) -> AttachmentFilters {
    AttachmentFilters {
        per_nom: config
            .filtrar_attachments_per_nom
            .iter()
            .filter_map(|r| crate::domain::regex_cache::compile(r).ok())
            .collect(),
        per_hash: config
            .filtrar_attachments_per_hash
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
    }
}

fn class_of(mail: &Mail, config: &Config) -> String {
    let opts = ClassifyOptions {
        mails_sempre_ticket: config.mails_sempre_ticket.clone(),
        mails_no_ticket: config.mails_no_ticket.clone(),
        skip_list_mail: config.skip_list_mail,
    };
    match classify(mail, &opts) {
        Decision::Process { forced: false } => "huma".into(),
        Decision::Process { forced: true } => "huma (mails_sempre_ticket)".into(),
        Decision::SkipListed { .. } => "mails_no_ticket".into(),
        Decision::SkipAutomatic { class, .. } => format!("automatic:{class:?}"),
    }
}

/// Handles one raw mail end to end (without echoing it): parse, deliver with the
/// deadline, summary line, error report. `plan_out` receives the dry-run plan.
pub async fn handle(
    config: &Config,
    raw: &[u8],
    sink: &LogSink,
    mode: Mode,
    plan_out: &mut dyn Write,
) -> Handled {
    let started = Instant::now();
    let mark = sink.mark();
    info!("Llegeixo mail");
    let mail = mail_adapter::parse(raw, &attachment_filters(config));
    let message_id = mail.message_id.clone().unwrap_or_else(|| "None".into());
    info!("Mail de {} llegit amb ID {}", mail.sender(), message_id);
    info!("Entro a mailtoticket{}", mail.subject);
    let class = class_of(&mail, config);
    let mut soap_calls = 0;
    let mut plan = Vec::new();
    let (status, filter, ticket, reason) = if raw.iter().all(u8::is_ascii_whitespace) {
        (Status::Unknown, None, None, "el mail és buit".to_string())
    } else if is_own_report(&mail, raw) {
        (
            Status::Skip,
            None,
            None,
            format!("és un informe d'errors d'un mailtoticket ({LOOP_HEADER})"),
        )
    } else {
        match run_use_case(config, &mail, raw, mode).await {
            Ok((d, calls, planned)) => {
                soap_calls = calls;
                plan = planned;
                (d.status, d.filter, d.ticket, d.reason)
            }
            Err((status, reason, calls)) => {
                soap_calls = calls;
                (status, None, None, reason)
            }
        }
    };
    match status {
        Status::Success | Status::Skip => info!("{}: {reason}", status.as_header()),
        Status::TempFail => warn!("{}: {reason}", status.as_header()),
        _ => error!("{}: {reason}", status.as_header()),
    }
    info!(
        "Resum: message-id={} from={} classe={} filtre={} tiquet={} resultat={} durada_ms={} crides_soap={}",
        message_id,
        if mail.sender().is_empty() {
            "-"
        } else {
            mail.sender()
        },
        class,
        filter.as_deref().unwrap_or("-"),
        ticket.as_deref().unwrap_or("-"),
        status.as_header(),
        started.elapsed().as_millis(),
        soap_calls
    );
    if mode.dry_run {
        let _ = write_plan(plan_out, config, status, filter.as_deref(), &reason, &plan);
    }
    let mut reported = false;
    // Never report a report: with `notificar_errors_skip` that would loop forever.
    let is_report = is_own_report(&mail, raw);
    // Issue 10: reports and quarantined mails are capped per hour.
    let to_quarantine = matches!(status, Status::Error | Status::Reject | Status::Unknown);
    let to_report = config.notificar_errors
        && !is_report
        && exit::is_reportable(status, config.notificar_errors_skip);
    let budgets = (!mode.dry_run && (to_quarantine || to_report))
        .then(|| Budgets::open(&config.state_dir(), SystemClock.now()));
    let mut report_reason = reason.clone();
    let verdict = match &budgets {
        Some(b) if to_report => {
            let v = b.report(
                mail.sender(),
                status == Status::Reject,
                config.max_informes_per_hora,
            );
            match v {
                ReportVerdict::Send => {
                    let omitted = b.reports_suppressed();
                    if omitted > 0 {
                        report_reason.push_str(&format!(
                            " ({omitted} informes omesos en l'última hora per límit)"
                        ));
                    }
                }
                ReportVerdict::AlreadyReported => info!(
                    "Informe no enviat: ja se n'ha enviat un sobre {} en l'última hora",
                    mail.sender()
                ),
                ReportVerdict::Capped => warn!(
                    "Informe no enviat: límit de {} informes per hora assolit ({} omesos en l'última hora)",
                    config.max_informes_per_hora,
                    b.reports_suppressed()
                ),
            }
            v
        }
        _ => ReportVerdict::Send,
    };
    if !mode.dry_run
        && !is_report
        && config.notificar_errors
        && exit::is_reportable(status, config.notificar_errors_skip)
        && verdict == ReportVerdict::Send
    {
        let reporter = SmtpReporter::new(SmtpSettings::from_config(config));
        let log = sink.captured_since(mark);
        let report = Report {
            status,
            reason: &report_reason,
            log: &log,
            original: raw,
        };
        match reporter.send(&report).await {
            Ok(()) => {
                reported = true;
                if let Some(b) = &budgets {
                    b.note_report(mail.sender());
                }
                info!("Informe d'errors enviat a {}", config.notificar_errors_to);
            }
            Err(e) => error!("No he pogut enviar l'informe d'errors: {e}"),
        }
    }
    // A mail nobody will retry is kept for `reprocess`; TEMPFAIL stays with the MTA.
    let quarantine_allowed = !to_quarantine
        || budgets
            .as_ref()
            .is_none_or(|b| b.quarantine(config.max_quarantena_per_hora));
    if !mode.dry_run && to_quarantine && !quarantine_allowed {
        warn!(
            "Mail no desat a la quarantena: límit de {} per hora assolit ({} omesos en l'última hora)",
            config.max_quarantena_per_hora,
            budgets.as_ref().map_or(0, Budgets::quarantine_suppressed)
        );
    }
    if !mode.dry_run && quarantine_allowed && to_quarantine {
        match super::journal_api::quarantine(config, raw, status, &reason) {
            Ok(Some(path)) => {
                reported = true;
                info!("Mail desat a la quarantena: {}", path.display());
            }
            Ok(None) => {}
            Err(e) => error!("No he pogut desar el mail a la quarantena: {e}"),
        }
    }
    Handled {
        status,
        reason,
        reported,
    }
}

/// Whether the mail carries our loop marker. The raw header block is scanned too,
/// so the guard holds even for a mail the parser could not make sense of.
fn is_own_report(mail: &Mail, raw: &[u8]) -> bool {
    if mail.header(LOOP_HEADER).is_some() {
        return true;
    }
    let prefix = format!("{}:", LOOP_HEADER.to_ascii_lowercase());
    raw.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .take_while(|l| !l.is_empty())
        .any(|l| {
            l.len() >= prefix.len() && l[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
        })
}

type UseCaseResult = Result<(app::Delivery, usize, Vec<PlannedCall>), (Status, String, usize)>;

async fn run_use_case(config: &Config, mail: &Mail, raw: &[u8], mode: Mode) -> UseCaseResult {
    let settings = Settings::from_config(config).map_err(|e| (Status::Error, e.0, 0))?;
    // The journal's per-mail lock is taken before any SOAP work, so that a second
    // process on the same mail waits here (or gives TEMPFAIL) instead of racing.
    let durable = if mode.dry_run {
        None
    } else {
        Some(open_journal_run(config, mail, raw)?)
    };
    if let Some(run) = &durable
        && run.is_completed()
    {
        info!("Entrega duplicada: el mail {} ja es va tractar", run.key());
        return Ok((
            app::Delivery {
                status: Status::Success,
                filter: None,
                ticket: None,
                reason: "entrega duplicada: ja tractat abans (journal)".into(),
                class: None,
                requester: None,
            },
            0,
            Vec::new(),
        ));
    }
    let services = wiring::connect(config)
        .await
        .map_err(|e| (Status::Error, e, 0))?;
    let memory = MemoryJournal::default();
    let journal: &dyn Journal = match &durable {
        Some(run) => run,
        None => &memory,
    };
    let rate: &dyn RateLimit = match &durable {
        Some(run) => run,
        None => &NoRateLimit,
    };
    let deadline = Duration::from_secs(config.deadline_secs);
    if mode.dry_run {
        let planner = PlanningTicketSystem::new(services.tickets.clone());
        let d = app::deliver_with_deadline(
            mail,
            &settings,
            &planner,
            &services.identity,
            &SystemClock,
            &journal,
            &NoRateLimit,
            deadline,
        )
        .await;
        return Ok((d, services.soap_calls(), planner.plan()));
    }
    let d = app::deliver_with_deadline(
        mail,
        &settings,
        &services.tickets,
        &services.identity,
        &SystemClock,
        &journal,
        &rate,
        deadline,
    )
    .await;
    // SUCCESS was recorded as the `Completed` step by the use case; any other outcome
    // is noted so that `journal show/list` tell what happened to the mail.
    if let Some(run) = &durable
        && d.status != Status::Success
        && let Err(e) = run.set_status(d.status.as_header())
    {
        warn!(
            "Journal: no he pogut desar l'estat {}: {e}",
            d.status.as_header()
        );
    }
    Ok((d, services.soap_calls(), Vec::new()))
}

/// Opens the durable journal and takes this mail's lock; prunes old records at most
/// once a day. Any failure is a temporary one: without the journal a retry could
/// duplicate a ticket, so the MTA keeps the mail.
fn open_journal_run(
    config: &Config,
    mail: &Mail,
    raw: &[u8],
) -> Result<MailRun, (Status, String, usize)> {
    let now = SystemClock.now();
    let temp = |e: String| (Status::TempFail, e, 0);
    let journal = DeliveryJournal::open(&config.state_dir())
        .map_err(|e| temp(format!("no puc obrir el journal: {e}")))?;
    match journal.prune_if_due(config.journal_retention_days, now) {
        Ok(Some(n)) if n > 0 => info!("Journal: {n} registres antics esborrats"),
        Ok(_) => {}
        Err(e) => warn!("Journal: no he pogut esborrar registres antics: {e}"),
    }
    let key = mail_key(mail.message_id.as_deref(), raw);
    journal
        .begin(&key, now)
        .map_err(|e| temp(format!("journal ({key}): {e}")))
}

fn write_plan(
    out: &mut dyn Write,
    config: &Config,
    status: Status,
    filter: Option<&str>,
    reason: &str,
    plan: &[PlannedCall],
) -> io::Result<()> {
    let mut text = String::new();
    text.push_str("Dry run: nothing was changed.\n");
    text.push_str(&format!(
        "Outcome: {} (filter: {}) — {}\n",
        status.as_header(),
        filter.unwrap_or("none"),
        reason
    ));
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
    config: Result<(Config, std::path::PathBuf), String>,
    raw: Vec<u8>,
    read_error: Option<io::Error>,
    mode: Mode,
) -> u8 {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if let Some(e) = read_error {
        eprintln!("mailtoticket: cannot read the mail from standard input: {e}");
        let _ = echo(&mut out, &raw, Status::Unknown);
        return exit::exit_code(Status::Unknown);
    }
    let (config, origin) = match config {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mailtoticket: {e}");
            if !mode.dry_run {
                let _ = echo(&mut out, &raw, Status::Error);
            }
            return exit::exit_code(Status::Error);
        }
    };
    let sink = super::start_logging(&config, &origin);
    info!("{SEPARATOR}");
    let handled = match wiring::runtime() {
        // Last line of defence: a bug that panics must still leave the mail echoed
        // with ERROR and a non-zero exit, never lost.
        Ok(rt) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(handle(&config, &raw, &sink, mode, &mut out))
        }))
        .unwrap_or_else(|_| {
            error!("Error inesperat (panic) tractant el mail");
            Handled {
                status: Status::Error,
                reason: "error inesperat (panic)".into(),
                reported: false,
            }
        }),
        Err(e) => {
            error!("{e}");
            Handled {
                status: Status::Error,
                reason: e,
                reported: false,
            }
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

/// `reprocess`: each file through the whole path again (no echo); prints one line
/// per file; handled ones leave the quarantine.
pub fn reprocess(
    config: &Config,
    origin: &Path,
    files: &[std::path::PathBuf],
    release: impl Fn(&Path) -> Result<(), String>,
) -> u8 {
    let sink = super::start_logging(config, origin);
    let rt = match wiring::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailtoticket: {e}");
            return 1;
        }
    };
    let mut worst = 0u8;
    for f in files {
        info!("{SEPARATOR}");
        let raw = match std::fs::read(f) {
            Ok(r) => r,
            Err(e) => {
                println!("{}: ERROR cannot read: {e}", f.display());
                worst = worst.max(1);
                continue;
            }
        };
        let h = rt.block_on(handle(
            config,
            &raw,
            &sink,
            Mode::default(),
            &mut io::sink(),
        ));
        println!("{}: {} {}", f.display(), h.status.as_header(), h.reason);
        if matches!(h.status, Status::Success | Status::Skip)
            && let Err(e) = release(f)
        {
            eprintln!("mailtoticket: {e}");
        }
        worst = worst.max(exit::exit_code(h.status));
    }
    worst
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
