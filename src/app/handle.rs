//! The whole life of one mail, from its raw bytes to its outcome: decode, classify
//! (once), the empty-mail and own-report checks, the journal (lock, duplicate check,
//! status), the delivery within its deadline, the summary line, the error report and
//! the quarantine. Everything outside goes through the ports of [`MailPorts`]; the
//! driving side (`crate::cli::mda`) only reads the mail, builds the ports, calls
//! [`handle`], echoes the mail and exits. The summary line is logged here, not by
//! the caller, because the error report carries the log of the run up to it.

use tracing::field::Empty;
use tracing::{Instrument, Span, error, info, warn};

use super::hourly::Budgets;
use super::{Delivery, Ports, ReportPolicy, Settings, decided_with_deadline};
use crate::domain::classify::{self, Decision};
use crate::domain::mail::Mail;
use crate::domain::outcome::{LOOP_HEADER, Status};
use crate::domain::trust::ReportVerdict;
use crate::ports::{
    Clock, ErrorReport, Journal, JournalStore, MailDecoder, MailQuarantine, Reporter, RunMeter,
    TicketSystem, error_chain,
};

/// The outside world of one mail.
pub struct MailPorts<'a, T, I> {
    /// Raw bytes → [`Mail`].
    pub decoder: &'a dyn MailDecoder,
    /// GN6 and the identity directory, or why they could not be set up (the mail is
    /// then ERROR, reported and quarantined like any other failure).
    pub services: Result<(&'a T, &'a I), &'a str>,
    pub clock: &'a dyn Clock,
    /// The delivery journal (a memory one for dry runs).
    pub journals: &'a dyn JournalStore,
    /// `None`: no report is ever sent (dry runs).
    pub reporter: Option<&'a dyn Reporter>,
    /// `None`: nothing is quarantined (dry runs).
    pub quarantine: Option<&'a dyn MailQuarantine>,
    /// SOAP calls and elapsed time, for the summary line.
    pub meter: &'a dyn RunMeter,
}

/// What happened to one mail, with what the summary line needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    pub status: Status,
    pub reason: String,
    /// The error report was sent or the mail quarantined (for `exit_zero_when_reported`).
    pub reported: bool,
    /// The filter that decided, if any.
    pub filter: Option<String>,
    /// The ticket created or commented, if any.
    pub ticket: Option<String>,
    /// `Message-ID`, `None` when missing (as the old program logged it).
    pub message_id: String,
    /// The sender's address, `-` when there is none.
    pub sender: String,
    /// The classification of §2 (`huma`, `mails_no_ticket`, `automatic:...`).
    pub class: String,
}

impl Handled {
    /// A mail that never reached the use case (a panic, no runtime).
    pub fn failed(status: Status, reason: impl Into<String>) -> Handled {
        Handled {
            status,
            reason: reason.into(),
            reported: false,
            filter: None,
            ticket: None,
            message_id: "None".into(),
            sender: "-".into(),
            class: "-".into(),
        }
    }
}

impl ReportPolicy {
    /// Whether an outcome triggers the error report mail. SKIP only on request
    /// (`notificar_errors_skip`), SUCCESS never.
    pub fn is_due(self, status: Status) -> bool {
        self.enabled
            && match status {
                Status::Error | Status::Reject | Status::TempFail | Status::Unknown => true,
                Status::Skip => self.on_skip,
                Status::Success => false,
            }
    }
}

/// The class of §2 as the summary line names it.
fn summary_class(decision: &Decision) -> String {
    match decision {
        Decision::Process { forced: false } => "huma".into(),
        Decision::Process { forced: true } => "huma (mails_sempre_ticket)".into(),
        Decision::SkipListed { .. } => "mails_no_ticket".into(),
        Decision::SkipAutomatic { class, .. } => format!("automatic:{class:?}"),
    }
}

/// Whether the mail carries our loop marker. The raw header block is scanned too,
/// so the guard holds even for a mail the decoder could not make sense of.
pub fn is_own_report(mail: &Mail, raw: &[u8]) -> bool {
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

/// The name of the span of one mail: every line logged inside it is about that mail
/// (the log adapter adds the span's fields and the time since it opened to them).
pub const MAIL_SPAN: &str = "mail";

/// The span of the mail being handled: the current one when it is already a mail's
/// (the driving side opened it earlier, to cover its own lines), a new one otherwise.
/// Its fields are recorded as they become known. ERROR level, so that it exists at
/// every `log_level` (a span carries no line of its own).
pub fn mail_span() -> Span {
    let current = Span::current();
    if current.metadata().is_some_and(|m| m.name() == MAIL_SPAN) {
        return current;
    }
    tracing::error_span!(
        "mail",
        journal_id = Empty,
        message_id = Empty,
        outcome = Empty,
        reason = Empty,
        ticket = Empty
    )
}

/// Handles one raw mail end to end (echoing it is the caller's job).
pub async fn handle<T, I>(raw: &[u8], settings: &Settings, ports: &MailPorts<'_, T, I>) -> Handled
where
    T: TicketSystem,
    I: super::identity::UserLookup,
{
    let span = mail_span();
    handle_in_span(raw, settings, ports, &span)
        .instrument(span.clone())
        .await
}

async fn handle_in_span<T, I>(
    raw: &[u8],
    settings: &Settings,
    ports: &MailPorts<'_, T, I>,
    span: &Span,
) -> Handled
where
    T: TicketSystem,
    I: super::identity::UserLookup,
{
    info!("Llegeixo mail");
    let mail = ports.decoder.decode(raw);
    span.record("message_id", mail.message_id.as_deref());
    let message_id = mail.message_id.clone().unwrap_or_else(|| "None".into());
    info!("Mail de {} llegit amb ID {}", mail.sender(), message_id);
    info!("Entro a mailtoticket{}", mail.subject);
    let decision = classify::classify(&mail, &settings.classify);
    let own_report = is_own_report(&mail, raw);
    let (d, repeat) = if raw.iter().all(u8::is_ascii_whitespace) {
        (Delivery::new(Status::Unknown, "el mail és buit"), false)
    } else if own_report {
        (
            Delivery::new(
                Status::Skip,
                format!("és un informe d'errors d'un mailtoticket ({LOOP_HEADER})"),
            ),
            false,
        )
    } else {
        journalled(&mail, raw, settings, ports, &decision).await
    };
    let (status, reason) = (d.status, d.reason);
    span.record("outcome", status.as_header());
    span.record("reason", reason.as_str());
    span.record("ticket", d.ticket.as_deref());
    match status {
        Status::Success | Status::Skip => info!("{}: {reason}", status.as_header()),
        Status::TempFail => warn!("{}: {reason}", status.as_header()),
        _ => error!("{}: {reason}", status.as_header()),
    }
    let sender = match mail.sender() {
        "" => "-".to_string(),
        s => s.to_string(),
    };
    let class = summary_class(&decision);
    // Before the report, so that the report's log has it too.
    info!(
        "Resum: message-id={} from={} classe={} filtre={} tiquet={} resultat={} durada_ms={} crides_soap={}",
        message_id,
        sender,
        class,
        d.filter.as_deref().unwrap_or("-"),
        d.ticket.as_deref().unwrap_or("-"),
        status.as_header(),
        ports.meter.elapsed_ms(),
        ports.meter.soap_calls()
    );
    // A repeated permanent outcome was reported (or quarantined) the first time.
    let mut reported = repeat;
    let to_quarantine = !repeat
        && matches!(status, Status::Error | Status::Reject | Status::Unknown)
        && ports.quarantine.is_some();
    // Never report a report: with `notificar_errors_skip` that would loop forever.
    let to_report =
        !own_report && !repeat && settings.reports.is_due(status) && ports.reporter.is_some();
    // Issue 10: reports and quarantined mails are capped per hour.
    let budgets = Budgets::new(
        (to_report || to_quarantine)
            .then(|| ports.journals.counters())
            .flatten(),
        ports.clock.now(),
    );
    let mut report_reason = reason.clone();
    let report_allowed =
        to_report && report_allowed(&budgets, &mail, status, settings, &mut report_reason);
    if report_allowed && let Some(reporter) = ports.reporter {
        let report = ErrorReport {
            status,
            reason: &report_reason,
            original: raw,
        };
        match reporter.report(report).await {
            Ok(to) => {
                reported = true;
                budgets.note_report(mail.sender());
                info!("Informe d'errors enviat a {to}");
            }
            Err(e) => error!(
                "No he pogut enviar l'informe d'errors: {}",
                error_chain(&*e)
            ),
        }
    }
    // A replayed entry stays where it is: it takes nothing from the hour's budget.
    let replaying = ports.quarantine.is_some_and(|q| q.already_kept());
    let quarantine_allowed = to_quarantine
        && (replaying
            || budgets.quarantine(settings.reports.max_quarantined_per_hour)
            || {
                warn!(
                    "Mail no desat a la quarantena: límit de {} per hora assolit ({} omesos en l'última hora)",
                    settings.reports.max_quarantined_per_hour,
                    budgets.quarantine_suppressed()
                );
                false
            });
    // A mail nobody will retry is kept for `reprocess`; TEMPFAIL stays with the MTA.
    if quarantine_allowed && let Some(quarantine) = ports.quarantine {
        match quarantine.keep(raw, status, &reason) {
            Ok(place) => {
                reported = true;
                info!("Mail desat a la quarantena: {place}");
            }
            Err(e) => error!(
                "No he pogut desar el mail a la quarantena: {}",
                error_chain(&*e)
            ),
        }
    }
    Handled {
        status,
        reason,
        reported,
        filter: d.filter,
        ticket: d.ticket,
        message_id,
        sender,
        class,
    }
}

/// Whether the report is sent (issue 10): one per sender and hour for REJECT, the
/// hourly cap in all; the reason of a report sent after omitted ones says how many.
fn report_allowed(
    budgets: &Budgets<'_>,
    mail: &Mail,
    status: Status,
    settings: &Settings,
    reason: &mut String,
) -> bool {
    let cap = settings.reports.max_per_hour;
    match budgets.report(mail.sender(), status == Status::Reject, cap) {
        ReportVerdict::Send => {
            let omitted = budgets.reports_suppressed();
            if omitted > 0 {
                reason.push_str(&format!(
                    " ({omitted} informes omesos en l'última hora per límit)"
                ));
            }
            true
        }
        ReportVerdict::AlreadyReported => {
            info!(
                "Informe no enviat: ja se n'ha enviat un sobre {} en l'última hora",
                mail.sender()
            );
            false
        }
        ReportVerdict::Capped => {
            warn!(
                "Informe no enviat: límit de {cap} informes per hora assolit ({} omesos en l'última hora)",
                budgets.reports_suppressed()
            );
            false
        }
    }
}

/// The delivery under the mail's journal: the per-mail lock is taken before any
/// SOAP work, so that a second process on the same mail waits here (or gives
/// TEMPFAIL) instead of racing. Without the journal a retry could duplicate a
/// ticket, so a journal that cannot be opened keeps the mail with the MTA.
///
/// Once is enough (issue 12 §2): a mail whose earlier run ended with a permanent
/// outcome gets it again at once; the second value says so (no new report, no new
/// quarantine copy).
async fn journalled<T, I>(
    mail: &Mail,
    raw: &[u8],
    settings: &Settings,
    ports: &MailPorts<'_, T, I>,
    decision: &Decision,
) -> (Delivery, bool)
where
    T: TicketSystem,
    I: super::identity::UserLookup,
{
    let journal = match ports.journals.begin(mail, raw) {
        Ok(j) => j,
        Err(e) => return (Delivery::new(Status::TempFail, e.to_string()), false),
    };
    Span::current().record("journal_id", journal.key());
    if let Some(status) = journal.previous_permanent() {
        info!(
            "El mail {} ja va acabar amb {}: no el torno a tractar, ni a desar ni a notificar",
            journal.key(),
            status.as_header()
        );
        if let Err(e) = journal.set_status(status) {
            warn!(
                "Journal: no he pogut desar l'estat {}: {e}",
                status.as_header()
            );
        }
        let d = Delivery::new(
            status,
            format!(
                "ja tractat amb resultat permanent ({}, journal {}; `reprocess` el torna a provar)",
                status.as_header(),
                journal.key()
            ),
        );
        return (d, true);
    }
    let d = match ports.services {
        Ok((tickets, identity)) => {
            let ports = Ports {
                tickets,
                identity,
                clock: ports.clock,
                journal: &*journal,
                rate: &*journal,
            };
            decided_with_deadline(mail, settings, &ports, decision, settings.limits.deadline).await
        }
        // Nothing to call, but a mail already handled is still a duplicate.
        Err(e) => super::already_done(&*journal as &dyn Journal).unwrap_or_else(|| {
            // Our configuration: permanent, reported once.
            if let Err(err) = journal.mark_permanent(e) {
                warn!("Journal: no he pogut marcar l'error com a permanent: {err}");
            }
            Delivery::new(Status::Error, e)
        }),
    };
    if d.status == Status::Error
        && super::permanent::is_configuration_fault(&d.reason)
        && let Err(e) = journal.mark_permanent(&d.reason)
    {
        warn!("Journal: no he pogut marcar l'error com a permanent: {e}");
    }
    keep_refused_parts(
        mail,
        &*journal as &dyn Journal,
        journal.key(),
        ports.quarantine,
    );
    // SUCCESS was recorded as the `Completed` step by the use case; any other outcome
    // is noted so that `journal show/list` tell what happened to the mail.
    if d.status != Status::Success
        && let Err(e) = journal.set_status(d.status)
    {
        warn!(
            "Journal: no he pogut desar l'estat {}: {e}",
            d.status.as_header()
        );
    }
    (d, false)
}

/// Quarantines, one file each, the parts the journal says were not attached (GN6
/// refused them, or the call cap left them out), issue 19 §2.
fn keep_refused_parts(
    mail: &Mail,
    journal: &dyn Journal,
    key: &str,
    quarantine: Option<&dyn MailQuarantine>,
) {
    let Some(quarantine) = quarantine else {
        return;
    };
    for (n, a) in mail.attachments.iter().enumerate() {
        let Some(why) = journal
            .done(&crate::ports::Step::Attachment(n))
            .and_then(|v| {
                v.strip_prefix(super::ATTACHMENT_FAILED_PREFIX)
                    .map(str::to_string)
            })
        else {
            continue;
        };
        match quarantine.keep_part(key, n, &a.name, &a.data, &why) {
            Ok(place) => info!("Part no annexada desada a la quarantena: {place}"),
            Err(e) => error!(
                "No he pogut desar la part no annexada a la quarantena: {}",
                error_chain(&*e)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reported_only_on_request() {
        let on = |on_skip| ReportPolicy {
            enabled: true,
            on_skip,
            max_per_hour: 0,
            max_quarantined_per_hour: 0,
        };
        assert!(!on(false).is_due(Status::Skip));
        assert!(on(true).is_due(Status::Skip));
        assert!(!on(true).is_due(Status::Success));
        assert!(on(false).is_due(Status::TempFail));
        let off = ReportPolicy {
            enabled: false,
            on_skip: true,
            max_per_hour: 0,
            max_quarantined_per_hour: 0,
        };
        assert!(!off.is_due(Status::Error));
    }

    #[test]
    fn own_report_is_seen_in_the_raw_header_block_too() {
        let mail = Mail::default();
        assert!(is_own_report(
            &mail,
            b"From: a@b\r\nx-mailtoticket-LOOP: m\r\n\r\nx"
        ));
        assert!(!is_own_report(
            &mail,
            b"From: a@b\n\nX-Mailtoticket-Loop: m\n"
        ));
    }
}
