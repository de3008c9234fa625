//! Pull mode (driving side): `mailtoticket imap` reads the configured mailbox once
//! (for cron); `--watch` keeps reading it with IDLE and reconnects with exponential
//! backoff. Each mail goes through the same use case as the MDA ([`mda::handle`]),
//! then to a folder per outcome; TEMPFAIL stays for the next pass.
//!
//! Exactly once: before a mail is processed, the journal is asked what it knows of
//! it. A mail a previous run completed (or ended permanently) is only moved, so a
//! crash between the processing and the move never makes a second ticket.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use tracing::{Instrument, error, info, warn};

use super::{Loaded, journal_api, mda};
use crate::adapters::imap::{ImapError, Mailbox, Woken};
use crate::adapters::logging::{LogSink, SEPARATOR};
use crate::adapters::systemd;
use crate::config::imap::ImapConfig;
use crate::domain::outcome::Status;
use crate::exit;

/// Test-only fault hook (sandbox builds): the process exits right after the journal
/// recorded the outcome of a mail and before the mail is moved.
#[cfg(feature = "sandbox")]
pub const ENV_EXIT_BEFORE_MOVE: &str = "MAILTOTICKET_TEST_EXIT_BEFORE_MOVE";

/// Where a mail goes after it was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Destination {
    Success,
    Skip,
    Errors,
    /// Left in the mailbox for the next pass.
    Stay,
}

impl Destination {
    fn of(status: Status) -> Destination {
        match status {
            Status::Success => Destination::Success,
            Status::Skip => Destination::Skip,
            Status::Reject | Status::Error | Status::Unknown => Destination::Errors,
            Status::TempFail => Destination::Stay,
        }
    }

    /// From a journal record's status text.
    fn of_recorded(status: &str) -> Destination {
        match status {
            "SKIP" => Destination::Skip,
            "REJECT" | "ERROR" | "UNKNOWN" => Destination::Errors,
            _ => Destination::Success,
        }
    }

    fn folder(self, cfg: &ImapConfig) -> Option<&str> {
        match self {
            Destination::Success => Some(&cfg.folders.success),
            Destination::Skip => Some(&cfg.folders.skip),
            Destination::Errors => Some(&cfg.folders.errors),
            Destination::Stay => None,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassSummary {
    pub mails: usize,
    pub success: usize,
    pub skip: usize,
    pub errors: usize,
    pub tempfail: usize,
    /// Mails the journal already knew: only moved.
    pub only_moved: usize,
}

impl PassSummary {
    fn count(&mut self, d: Destination) {
        match d {
            Destination::Success => self.success += 1,
            Destination::Skip => self.skip += 1,
            Destination::Errors => self.errors += 1,
            Destination::Stay => self.tempfail += 1,
        }
    }

    /// The log line of the pass (Catalan, like the other log lines).
    pub fn line(&self, mailbox: &str) -> String {
        format!(
            "Passada IMAP de {mailbox}: {} mails, {} processats, {} descartats, {} amb error, \
             {} pendents (TEMPFAIL), {} ja tractats abans (només moguts)",
            self.mails, self.success, self.skip, self.errors, self.tempfail, self.only_moved
        )
    }
}

/// The configuration's `[imap]` table, checked; the message says what is wrong.
fn imap_config(loaded: &Loaded) -> Result<&ImapConfig, String> {
    let Some(cfg) = loaded.config.imap.as_ref() else {
        return Err(format!(
            "{}: no [imap] table (needed by `mailtoticket imap`)",
            loaded.origin.display()
        ));
    };
    let problems = cfg.problems();
    if problems.is_empty() {
        Ok(cfg)
    } else {
        Err(format!(
            "{}: {}",
            loaded.origin.display(),
            problems.join("; ")
        ))
    }
}

/// `mailtoticket imap [--watch]`: returns the exit code (one pass: 0 when it ran, 75
/// when the server could not be used, 1 for a configuration fault, refused login
/// included: our credentials are wrong, as for the bus).
pub fn run(loaded: &Loaded, watch: bool) -> u8 {
    let cfg = match imap_config(loaded) {
        Ok(c) => c.clone(),
        Err(e) => {
            eprintln!("mailtoticket: {e}");
            return 1;
        }
    };
    let sink = super::start_logging(&loaded.config, &loaded.origin);
    let rt = match super::wiring::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailtoticket: {e}");
            return 1;
        }
    };
    if watch {
        return rt.block_on(watch_until_stopped(loaded, &cfg, &sink));
    }
    rt.block_on(async {
        let mut mailbox = match open(&cfg).await {
            Ok(m) => m,
            Err(e) => {
                error!("{e}");
                eprintln!("mailtoticket: {e}");
                return if e.is_login_refused() {
                    1
                } else {
                    exit::EX_TEMPFAIL
                };
            }
        };
        let r = pass(&mut mailbox, loaded, &cfg, &sink).await;
        mailbox.close().await;
        match r {
            Ok(_) => 0,
            Err(e) => {
                error!("{e}");
                eprintln!("mailtoticket: {e}");
                exit::EX_TEMPFAIL
            }
        }
    })
}

async fn open(cfg: &ImapConfig) -> Result<Mailbox, ImapError> {
    let mut mailbox = Mailbox::open(cfg).await?;
    let f = &cfg.folders;
    mailbox
        .ensure_folders(&[&f.success, &f.skip, &f.errors])
        .await?;
    Ok(mailbox)
}

/// `--watch` with its heartbeat and, with `[health] listen`, the `/healthz` and
/// `/metrics` endpoint beside it; SIGTERM or SIGINT stop it cleanly (the heartbeat
/// is removed: a watcher the admin stopped is not a stale one).
async fn watch_until_stopped(loaded: &Loaded, cfg: &ImapConfig, sink: &LogSink) -> u8 {
    let _endpoint = match &loaded.config.health.listen {
        None => None,
        Some(listen) => {
            let addr = match crate::config::health::parse_listen(listen) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("mailtoticket: [health] listen: {e}");
                    return 1;
                }
            };
            match super::endpoint::bind(addr).await {
                Ok(listener) => {
                    info!("Health: /healthz i /metrics a http://{addr}");
                    let config = std::sync::Arc::new(loaded.config.clone());
                    Some(AbortOnDrop(tokio::spawn(super::endpoint::serve(
                        listener, config,
                    ))))
                }
                Err(e) => {
                    error!("[health] listen {addr}: {e}");
                    eprintln!("mailtoticket: [health] listen {addr}: {e}");
                    return 1;
                }
            }
        }
    };
    let heartbeat = Heartbeat::new(&loaded.config);
    // SIGTERM/SIGINT (adapters::systemd) let the mail in hand finish, then the loop
    // returns: never cut a mail in the middle.
    watch_forever(loaded, cfg, sink, &heartbeat).await;
    info!("IMAP: senyal d'aturada rebut, surto");
    heartbeat.clear();
    0
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The watcher's heartbeat in the journal (`imap_heartbeat_ms`), read by `health`.
struct Heartbeat {
    state_dir: std::path::PathBuf,
    journal: std::sync::Mutex<Option<crate::adapters::journal::DeliveryJournal>>,
}

impl Heartbeat {
    fn new(config: &crate::config::Config) -> Self {
        Heartbeat {
            state_dir: config.state_dir(),
            journal: std::sync::Mutex::new(None),
        }
    }

    fn with_journal(
        &self,
        f: impl FnOnce(
            &crate::adapters::journal::DeliveryJournal,
        ) -> Result<(), crate::adapters::journal::JournalError>,
    ) {
        let mut slot = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            match crate::adapters::journal::DeliveryJournal::open(&self.state_dir) {
                Ok(j) => *slot = Some(j),
                Err(e) => {
                    warn!("IMAP: no puc obrir el diari per al senyal de vida: {e}");
                    return;
                }
            }
        }
        if let Some(j) = slot.as_ref()
            && let Err(e) = f(j)
        {
            warn!("IMAP: no he pogut desar el senyal de vida: {e}");
        }
    }

    /// The loop is alive and connected now.
    fn beat(&self) {
        self.with_journal(|j| j.heartbeat(chrono::Utc::now().timestamp_millis()));
    }

    /// The watcher stops cleanly.
    fn clear(&self) {
        self.with_journal(|j| j.clear_heartbeat());
    }
}

/// `--watch`: connect, pass, IDLE, pass... On any IMAP failure, reconnect after 1,
/// 2, 4... seconds (at most `backoff_max_secs`); a working connection resets the wait.
///
/// Under systemd (`Type=notify`, see `adapters::systemd`): `READY=1` once the first
/// connection attempt ended (connected, or the error in `STATUS=`), `WATCHDOG=1` from
/// the loop's own progress (each mail, each pass, each IDLE return, each reconnection
/// attempt; IDLE and the backoff wait are cut to a quarter of the watchdog time), and on SIGTERM
/// the mail being handled is finished, `STOPPING=1` sent, and the loop returns.
async fn watch_forever(loaded: &Loaded, cfg: &ImapConfig, sink: &LogSink, heartbeat: &Heartbeat) {
    let (notify, problem) = systemd::notifier();
    if let Some(p) = problem {
        warn!("No puc avisar systemd: {p}");
    }
    tokio::spawn(async {
        if let Err(e) = systemd::stop_signal().await {
            warn!("No puc capturar SIGTERM: {e}");
        }
    });
    let mut backoff = Duration::from_secs(1);
    let mut max = Duration::from_secs(cfg.backoff_max_secs.max(1));
    let capped;
    // Pings at least every half watchdog time: IDLE (then DONE and a search, each up
    // to `timeout_secs`) and the backoff wait take at most a quarter of it.
    let cfg = match notify.ping_interval() {
        Some(interval) => {
            let quarter = (interval / 2).max(Duration::from_secs(1));
            max = max.min(quarter);
            capped = ImapConfig {
                idle_secs: cfg.idle_secs.min(quarter.as_secs()),
                ..cfg.clone()
            };
            &capped
        }
        None => cfg,
    };
    let stopping = || notify.stopping("Aturant: el mail en curs s'ha acabat");
    loop {
        notify.status(&format!("Connectant a {}:{}", cfg.server, cfg.port()));
        let e = match open(cfg).await {
            Ok(mut mailbox) => {
                let line = format!(
                    "IMAP: connectat a {}:{} com a {}, esperant mails a {}",
                    cfg.server,
                    cfg.port(),
                    cfg.user,
                    cfg.mailbox
                );
                info!("{line}");
                notify.up(&line);
                systemd::watchdog();
                backoff = Duration::from_secs(1);
                loop {
                    heartbeat.beat();
                    match pass(&mut mailbox, loaded, cfg, sink).await {
                        Ok(summary) => notify.status(&summary.line(&cfg.mailbox)),
                        Err(e) => break e,
                    }
                    heartbeat.beat();
                    systemd::watchdog();
                    if systemd::stop_requested() {
                        stopping();
                        mailbox.close().await;
                        return;
                    }
                    let woken = tokio::select! {
                        w = mailbox.wait() => w,
                        () = systemd::stopped() => {
                            stopping();
                            return;
                        }
                    };
                    match woken {
                        Ok((m, woken)) => {
                            mailbox = m;
                            if woken == Woken::Timeout {
                                tracing::debug!("IMAP: IDLE renovat");
                            }
                        }
                        Err(e) => break e,
                    }
                    systemd::watchdog();
                }
            }
            Err(e) => e,
        };
        let line = format!("{e}; torno a connectar d'aquí a {} s", backoff.as_secs());
        warn!("{line}");
        notify.up(&line);
        systemd::watchdog();
        if systemd::stop_requested() {
            stopping();
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = systemd::stopped() => {
                stopping();
                return;
            }
        }
        backoff = (backoff * 2).min(max);
    }
}

/// One pass over the mailbox: every mail handled and moved (TEMPFAIL stays).
pub async fn pass(
    mailbox: &mut Mailbox,
    loaded: &Loaded,
    cfg: &ImapConfig,
    sink: &LogSink,
) -> Result<PassSummary, ImapError> {
    let uids = mailbox.pending().await?;
    let mut summary = PassSummary::default();
    let progress = std::io::stderr().is_terminal();
    let total = uids.len();
    for (i, uid) in uids.into_iter().enumerate() {
        // A SIGTERM in watch mode: the mail before this one was finished; stop here.
        if systemd::stop_requested() {
            break;
        }
        systemd::watchdog();
        let Some(fetched) = mailbox.fetch(uid).await? else {
            continue;
        };
        summary.mails += 1;
        // Each mail its own span: its lines carry its fields (see `app::mail_span`).
        let span = crate::app::mail_span();
        span.in_scope(|| {
            info!("{SEPARATOR}");
            info!("IMAP: mail UID {uid} de {}", cfg.mailbox);
        });
        let known = journal_api::known_mail(&loaded.config, &fetched.raw);
        let recorded = match &known {
            Ok(k) if k.is_completed() => k.record.as_ref().map(|r| r.status.clone()),
            Ok(k) => k.permanent_status().map(str::to_string),
            Err(e) => {
                warn!("No he pogut consultar el diari: {e}");
                None
            }
        };
        let (destination, status_text) = match recorded {
            Some(status) => {
                span.in_scope(|| info!("El diari ja té aquest mail ({status}): només el moc"));
                summary.only_moved += 1;
                (Destination::of_recorded(&status), status)
            }
            None => {
                let source = format!("imap {}", cfg.mailbox);
                let handled = mda::handle(
                    &loaded.config,
                    &loaded.settings,
                    &fetched.raw,
                    sink,
                    mda::Mode {
                        origin: Some(&loaded.origin),
                        source: Some(&source),
                        ..Default::default()
                    },
                    &mut std::io::sink(),
                )
                .instrument(span.clone())
                .await;
                (
                    Destination::of(handled.status),
                    handled.status.as_header().to_string(),
                )
            }
        };
        #[cfg(feature = "sandbox")]
        if std::env::var_os(ENV_EXIT_BEFORE_MOVE).is_some() {
            #[allow(clippy::exit, reason = "test-only fault hook: a crash before the move")]
            std::process::exit(i32::from(exit::EX_TEMPFAIL));
        }
        summary.count(destination);
        match destination.folder(cfg) {
            Some(folder) => {
                mailbox.move_to(uid, folder).await?;
                span.in_scope(|| info!("IMAP: mail UID {uid} ({status_text}) mogut a {folder}"));
            }
            None => span.in_scope(|| {
                info!(
                    "IMAP: mail UID {uid} ({status_text}) es queda a {}",
                    cfg.mailbox
                )
            }),
        }
        if progress {
            eprint!("\r{}/{total} {status_text:<8}", i + 1);
            let _ = std::io::stderr().flush();
        }
    }
    if progress && total > 0 {
        eprintln!();
    }
    info!("{}", summary.line(&cfg.mailbox));
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_destination() {
        assert_eq!(Destination::of(Status::Success), Destination::Success);
        assert_eq!(Destination::of(Status::Skip), Destination::Skip);
        for s in [Status::Reject, Status::Error, Status::Unknown] {
            assert_eq!(Destination::of(s), Destination::Errors);
        }
        assert_eq!(Destination::of(Status::TempFail), Destination::Stay);
        assert_eq!(Destination::of_recorded("SKIP"), Destination::Skip);
        assert_eq!(Destination::of_recorded("REJECT"), Destination::Errors);
        assert_eq!(Destination::of_recorded("SUCCESS"), Destination::Success);
    }

    #[test]
    fn the_summary_line_counts_each_kind() {
        let mut s = PassSummary::default();
        for d in [
            Destination::Success,
            Destination::Success,
            Destination::Stay,
        ] {
            s.count(d);
        }
        s.mails = 3;
        assert_eq!(
            s.line("INBOX"),
            "Passada IMAP de INBOX: 3 mails, 2 processats, 0 descartats, 0 amb error, \
             1 pendents (TEMPFAIL), 0 ja tractats abans (només moguts)"
        );
    }
}
