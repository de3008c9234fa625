//! Command line (driving side of the hexagon): the MDA mode and the companion
//! commands, over the configuration, the adapters and the use case.

pub mod classify;
pub mod endpoint;
pub mod generate;
pub mod health;
pub mod imap;
pub mod import_settings;
pub mod journal_api;
pub mod mda;
pub mod metrics;
pub mod quarantine;
pub mod wiring;

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::adapters::logging::{self, LogSink};
use crate::adapters::report::{SmtpReporter, SmtpSettings};
use crate::config::{self, Bus, Config, ConfigError, Settings};
use crate::ports::error_chain;
use crate::ports::{IdentityDirectory, TicketSystem};

/// EX_USAGE of sysexits.h: the command line itself is wrong.
pub const EX_USAGE: u8 = 64;

/// Mail gateway (MDA) for UPC's GN6 ticket system: reads one mail on standard input,
/// turns it into a GN6 ticket or comment, and echoes it on standard output with an
/// `X-Mailtoticket: STATUS` header.
#[derive(Debug, Parser)]
#[command(name = "mailtoticket", bin_name = "mailtoticket", version, about, long_about = None)]
pub struct Cli {
    /// Configuration: a path, or a NAME looked up as NAME.toml in
    /// $MAILTOTICKET_CONFIG_DIR, ~/.config/mailtoticket/, /etc/mailtoticket/
    /// (default: default.toml there).
    #[arg(short = 'c', long = "config", value_name = "CONFIG", global = true)]
    pub config: Option<String>,

    /// Read the mail, decide, resolve identities with read-only calls and print the
    /// plan (filter and every mutating SOAP call); change nothing.
    #[arg(long)]
    pub dry_run: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the username found for an address and which identity step found it.
    LookupUser { address: String },
    /// Print a GN6 ticket's fields.
    ShowTicket { id: String },
    /// Validate the configuration, then make one read-only call to each service.
    Check,
    /// Convert an old settings_default.py to TOML (on stdout; problems on stderr).
    ImportSettings { path: PathBuf },
    /// The embedded GN6 + Persones simulator.
    #[cfg(feature = "sandbox")]
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// The delivery journal.
    Journal {
        #[command(subcommand)]
        command: JournalCommand,
    },
    /// Pull mode: read the `[imap]` mailbox once, handle each mail and move it to a
    /// folder per outcome (TEMPFAIL mails stay for the next pass).
    Imap {
        /// Keep running: wait for new mail with IDLE, reconnect with backoff.
        #[arg(long)]
        watch: bool,
    },
    /// Read a mail on stdin and print its class and the rule that decided (no bus).
    Classify,
    /// Run quarantined mails through the gateway again (the same as `quarantine
    /// reprocess`, unpaced).
    Reprocess {
        /// A mail file to reprocess (or a quarantine ID).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        path: Option<PathBuf>,
        /// Every mail of the quarantine folder.
        #[arg(long)]
        all: bool,
    },
    /// The quarantine: mails that ended in ERROR, REJECT or UNKNOWN, kept for
    /// `reprocess`, and the refused attachment parts of delivered mails.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Generate the manual pages or a shell completion script from this command line
    /// (used to build the Debian package).
    #[command(hide = true)]
    Generate {
        #[command(subcommand)]
        command: GenerateCommand,
    },
    /// State for a monitor (Nagios plugin conventions): exit 0 OK, 1 WARNING,
    /// 2 CRITICAL, 3 UNKNOWN; one status line with perfdata.
    Health {
        /// Print one JSON object (status, checks, perfdata) instead of the line.
        #[arg(long)]
        json: bool,
        /// Also make one read-only call to each service, like `check`.
        #[arg(long)]
        probe: bool,
    },
    /// Print the counters and gauges in the Prometheus text format.
    Metrics,
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write mailtoticket.1 and one page per subcommand into DIR.
    Man { dir: PathBuf },
    /// Print the completion script for SHELL on standard output.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `mailtoticket quarantine …`. An ID is an entry's file stem as `list` prints it
/// (`20261206T101500.123Z-abcdef012345`), a unique prefix of it or of its 12-digit
/// hash, or the path of its `.eml` inside the quarantine folder.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// One line per quarantined mail (ID, time, status, retries, size, sender,
    /// subject, reason), then the refused attachment parts.
    List {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The recorded data of one mail and a summary of its headers.
    Show {
        /// ID (a unique prefix of the ID or of its hash, or the path of the `.eml`).
        id: String,
        /// Write the mail's bytes, exactly as received, to standard output instead.
        #[arg(long)]
        raw: bool,
    },
    /// Copy mails with their recorded data to a folder (`ID.eml` + `ID.reason`
    /// pairs) that `import` reads back on any host.
    Export {
        /// IDs (a unique prefix of the ID or of its hash, or the path of the `.eml`).
        ids: Vec<String>,
        /// Every mail of the quarantine.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// The folder to write to (created when missing).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Add mails to the quarantine: export folders, mail files, Maildirs (cur/,
    /// new/). A mail already there (same bytes) is not added twice.
    Import {
        /// Export folders, mail files or Maildirs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run mails through the gateway again, with the configuration they first ran
    /// with. SUCCESS and SKIP take a mail out of the quarantine; other outcomes are
    /// recorded as a retry.
    Reprocess {
        /// IDs (a unique prefix of the ID or of its hash, or the path of the `.eml`).
        ids: Vec<String>,
        /// Every mail of the quarantine, oldest first.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Pause between two mails after the first `--burst` (e.g. 1s, 200ms; 0 = none).
        #[arg(long, default_value = quarantine::DEFAULT_PACE)]
        pace: String,
        /// Mails run without a pause first.
        #[arg(long, default_value_t = quarantine::DEFAULT_BURST)]
        burst: usize,
        /// Stop after this many TEMPFAILs in a row, leaving the rest (0 = never).
        #[arg(long, default_value_t = quarantine::DEFAULT_MAX_TEMPFAILS)]
        max_tempfails: u32,
        /// Run every mail with the -c configuration, not the one it first ran with.
        #[arg(long)]
        use_config: bool,
    },
    /// Delete mails from the quarantine (asks nothing; prints what went).
    Delete {
        /// IDs (a unique prefix of the ID or of its hash, or the path of the `.eml`).
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Delete the mails (and refused parts) quarantined more than D ago.
    Purge {
        /// An age: 30d, 12h, 2w, 90m...
        #[arg(long, value_name = "D")]
        older_than: String,
        /// Only print what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve the simulator until interrupted.
    Serve {
        /// TCP port on 127.0.0.1 (0 = any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Manage the simulated people.
    People {
        #[command(subcommand)]
        command: PeopleCommand,
    },
    /// List the simulated tickets.
    Tickets,
}

#[derive(Debug, Subcommand)]
pub enum PeopleCommand {
    /// Add a person: common name and e-mail addresses (the first is the preferred).
    Add {
        cn: String,
        #[arg(required = true)]
        emails: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Show what was done for one mail.
    Show {
        /// The mail's Message-ID (with or without its angle brackets), or its journal
        /// key as `journal list` prints it: `sha256:<hex>` for a mail without
        /// Message-ID (digest of its sender-written content), `<id> sha256:<hex>` for
        /// a mail whose Message-ID clashed with another mail's, `id-sha256:<hex>` for
        /// an overlong Message-ID.
        id: String,
    },
    /// List the mails handled.
    List {
        /// Only since this date (YYYY-MM-DD).
        #[arg(long)]
        since: Option<String>,
    },
    /// Forget old mails: delivered ones after `[journal] delivered_retention_days`
    /// (30), the others after `[journal] retention_days` (90). Mails still in the
    /// quarantine keep their rows; quarantine files are never touched.
    Purge {
        /// One age for every mail instead (30d, 12h, 2w...).
        #[arg(long, value_name = "D")]
        older_than: Option<String>,
        /// Only print what would be forgotten.
        #[arg(long)]
        dry_run: bool,
    },
}

/// A configuration located, loaded and validated: the raw file (for the adapters'
/// parameters), the settings built from it once, and where it came from.
pub struct Loaded {
    pub config: Config,
    pub settings: Settings,
    pub origin: PathBuf,
}

/// Locates, loads and validates the configuration; the error names the file and key.
pub fn load_config(arg: Option<&str>) -> Result<Loaded, ConfigError> {
    let env = |k: &str| std::env::var(k).ok();
    let origin = config::locate(arg, env)?;
    let config = Config::load(&origin)?;
    match Settings::build(&config) {
        Ok(settings) => Ok(Loaded {
            config,
            settings,
            origin,
        }),
        Err(problems) => Err(ConfigError::Invalid { origin, problems }),
    }
}

/// Environment variable naming journald's socket instead of
/// [`logging::journald::SOCKET`] (for tests: a fake journald).
pub const ENV_JOURNALD_SOCKET: &str = "MAILTOTICKET_JOURNALD_SOCKET";

/// The log format of the run: `log_format`, or the automatic choice of
/// [`logging::LogFormat::automatic`] when it is not set.
pub fn log_format(config: &Config) -> logging::LogFormat {
    match config
        .log_format
        .as_deref()
        .and_then(logging::LogFormat::parse)
    {
        Some(f) => f,
        None => logging::LogFormat::automatic(
            std::env::var("JOURNAL_STREAM").ok().as_deref(),
            logging::stderr_identity(),
            config.log_file_is_default(),
        ),
    }
}

/// journald's socket: [`ENV_JOURNALD_SOCKET`] or [`logging::journald::SOCKET`].
fn journald_socket() -> std::path::PathBuf {
    std::env::var_os(ENV_JOURNALD_SOCKET).map_or_else(
        || logging::journald::SOCKET.into(),
        std::path::PathBuf::from,
    )
}

/// Opens the log of the run (see `adapters::logging`) and installs it.
pub fn start_logging(config: &Config, origin: &Path) -> LogSink {
    let socket = journald_socket();
    let (sink, warning) = LogSink::open_as(
        log_format(config),
        Path::new(&config.log_file),
        &socket,
        config.secrets(),
    );
    let level = config::parse_log_level(&config.log_level).unwrap_or(tracing::Level::INFO);
    logging::install(&sink, level);
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    tracing::debug!("configuració {}", origin.display());
    sink
}

/// Parses the command line and runs; returns the process exit code.
pub fn run() -> u8 {
    let mut cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EX_USAGE } else { 0 };
        }
    };
    if let Err(e) = top_level_dry_run(&mut cli) {
        eprintln!("mailtoticket: {e}");
        return EX_USAGE;
    }
    match cli.command {
        None => {
            // Read stdin fully first: whatever happens next, the mail is echoed.
            let mut raw = Vec::new();
            let read_error = io::stdin().lock().read_to_end(&mut raw).err();
            let config = load_config(cli.config.as_deref());
            mda::run(
                config,
                raw,
                read_error,
                mda::Mode {
                    dry_run: cli.dry_run,
                    ..Default::default()
                },
            )
        }
        Some(Command::ImportSettings { path }) => import(&path),
        Some(Command::Check) => check(cli.config.as_deref()),
        Some(Command::Imap { watch }) => match load_config(cli.config.as_deref()) {
            Ok(loaded) => imap::run(&loaded, watch),
            Err(e) => {
                eprintln!("mailtoticket: {}", error_chain(&e));
                1
            }
        },
        Some(Command::Classify) => classify_stdin(cli.config.as_deref()),
        Some(Command::Generate { command }) => generate::run(command),
        // Reprocess needs the whole loaded configuration (it may load others).
        Some(Command::Reprocess { path, all }) => {
            let ids: Vec<String> = path
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let replay = quarantine::Replay {
                pace: std::time::Duration::ZERO,
                burst: usize::MAX,
                max_tempfails: 0,
                use_current_config: false,
            };
            reprocess(cli.config.as_deref(), &ids, all, replay)
        }
        Some(Command::Quarantine {
            command:
                QuarantineCommand::Reprocess {
                    ids,
                    all,
                    pace,
                    burst,
                    max_tempfails,
                    use_config,
                },
        }) => match quarantine::Replay::parse(&pace, burst, max_tempfails, use_config) {
            Ok(replay) => reprocess(cli.config.as_deref(), &ids, all, replay),
            Err(e) => {
                eprintln!("mailtoticket: {e}");
                EX_USAGE
            }
        },
        Some(Command::Health { json, probe }) => health::run(cli.config.as_deref(), json, probe),
        Some(Command::Metrics) => {
            let env = |k: &str| std::env::var(k).ok();
            match config::locate(cli.config.as_deref(), env).and_then(|p| Config::load(&p)) {
                Ok(config) => metrics::run(&config),
                Err(e) => {
                    eprintln!("mailtoticket: {}", error_chain(&e));
                    1
                }
            }
        }
        Some(command) => {
            #[cfg(feature = "sandbox")]
            let needs_config = !matches!(command, Command::Sandbox { .. });
            #[cfg(not(feature = "sandbox"))]
            let needs_config = true;
            match load_config(cli.config.as_deref()) {
                Ok(loaded) => {
                    let _sink = start_logging(&loaded.config, &loaded.origin);
                    companion(
                        command,
                        &loaded.config,
                        Some(&loaded.settings),
                        &loaded.origin,
                    )
                }
                // A configuration that was asked for must load, even for the sandbox.
                Err(e) if needs_config || cli.config.is_some() => {
                    eprintln!("mailtoticket: {}", error_chain(&e));
                    1
                }
                // The sandbox runs without a configuration file (empty credentials).
                Err(_) => {
                    let origin = Path::new("(defaults)");
                    match Config::from_toml("bus = \"sandbox\"", origin) {
                        Ok(config) => {
                            let _sink = start_logging(&config, origin);
                            companion(command, &config, None, origin)
                        }
                        Err(e) => {
                            eprintln!("mailtoticket: {}", error_chain(&e));
                            1
                        }
                    }
                }
            }
        }
    }
}

/// `--dry-run` written before a subcommand: the purges take it as their own; the
/// other commands that change the quarantine refuse it rather than run for real.
fn top_level_dry_run(cli: &mut Cli) -> Result<(), String> {
    if !cli.dry_run {
        return Ok(());
    }
    match &mut cli.command {
        Some(Command::Quarantine {
            command: QuarantineCommand::Purge { dry_run, .. },
        })
        | Some(Command::Journal {
            command: JournalCommand::Purge { dry_run, .. },
        }) => {
            *dry_run = true;
            Ok(())
        }
        Some(Command::Reprocess { .. })
        | Some(Command::Quarantine {
            command:
                QuarantineCommand::Reprocess { .. }
                | QuarantineCommand::Delete { .. }
                | QuarantineCommand::Import { .. },
        }) => Err("--dry-run: this command has no dry run (it would change the quarantine)".into()),
        _ => Ok(()),
    }
}

/// `classify`: the configuration when one is found (or asked for), else the defaults.
fn classify_stdin(config_arg: Option<&str>) -> u8 {
    let config = match load_config(config_arg) {
        Ok(loaded) => loaded.config,
        Err(e) if config_arg.is_some() => {
            eprintln!("mailtoticket: {e}");
            return 1;
        }
        Err(_) => match Config::from_toml("", Path::new("(defaults)")) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("mailtoticket: {e}");
                return 1;
            }
        },
    };
    let mut raw = Vec::new();
    if let Err(e) = io::stdin().lock().read_to_end(&mut raw) {
        eprintln!("mailtoticket: cannot read the mail: {e}");
        return 1;
    }
    match classify::report(&raw, &config) {
        Ok(text) => {
            print!("{}", logging::for_terminal(&text));
            0
        }
        Err(e) => {
            eprintln!("mailtoticket: {e}");
            1
        }
    }
}

fn import(path: &Path) -> u8 {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mailtoticket: {}: cannot read: {e}", path.display());
            return 1;
        }
    };
    match import_settings::import(&text) {
        Ok(out) => {
            print!("{}", out.toml);
            for n in &out.notes {
                eprintln!("not converted: {n}");
            }
            0
        }
        Err(e) => {
            eprintln!("mailtoticket: {}: {e}", path.display());
            1
        }
    }
}

fn companion(command: Command, config: &Config, settings: Option<&Settings>, origin: &Path) -> u8 {
    let rt = match wiring::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mailtoticket: {}", error_chain(&e));
            return 1;
        }
    };
    match command {
        Command::LookupUser { address } => rt.block_on(async {
            let services = match wiring::connect(config).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("mailtoticket: {}: {}", origin.display(), error_chain(&e));
                    return 1;
                }
            };
            let Some(settings) = settings else {
                eprintln!("mailtoticket: lookup-user needs a configuration");
                return 1;
            };
            // Every directory tried, in order, with its answer and time.
            let canonical = settings.app.identity.canonical(&address);
            let (attempts, result) = if canonical.is_empty() {
                (Vec::new(), Ok(None))
            } else {
                services
                    .directories()
                    .lookup_traced(&canonical, &settings.app)
                    .await
            };
            for a in &attempts {
                let answer = match &a.answer {
                    Ok(Some(user)) => format!("found {user}"),
                    Ok(None) => "not found".to_string(),
                    Err(e) => format!("FAILED: {e}"),
                };
                println!(
                    "{:<18} {answer} ({} ms)",
                    a.source.name(),
                    a.elapsed.as_millis()
                );
            }
            match result {
                Ok(Some((user, step))) => {
                    println!("{user}\t(found by {step})");
                    0
                }
                Ok(None) => {
                    println!("{address}: not found");
                    1
                }
                Err(e) => {
                    eprintln!("mailtoticket: identity directory failed: {e}");
                    if e.is_transient() {
                        crate::exit::EX_TEMPFAIL
                    } else {
                        1
                    }
                }
            }
        }),
        Command::ShowTicket { id } => rt.block_on(async {
            let services = match wiring::connect(config).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("mailtoticket: {}: {}", origin.display(), error_chain(&e));
                    return 1;
                }
            };
            match services.tickets.query_ticket(&id).await {
                Ok(Some(t)) => {
                    print_ticket(&t);
                    0
                }
                Ok(None) => {
                    println!("ticket {id}: not found");
                    1
                }
                Err(e) => {
                    eprintln!("mailtoticket: GN6 failed: {e}");
                    if e.is_transient() {
                        crate::exit::EX_TEMPFAIL
                    } else {
                        1
                    }
                }
            }
        }),
        #[cfg(feature = "sandbox")]
        Command::Sandbox { command } => sandbox(command, config, &rt),
        // `run` starts it (it needs the whole loaded configuration); never reached.
        Command::Imap { .. } => 1,
        Command::Journal {
            command:
                JournalCommand::Purge {
                    older_than,
                    dry_run,
                },
        } => print_outcome(quarantine::journal_purge(
            config,
            older_than.as_deref(),
            dry_run,
        )),
        Command::Journal { command } => {
            let r = match command {
                JournalCommand::Show { id } => journal_api::show(config, &id),
                JournalCommand::List { since } => journal_api::list(config, since.as_deref()),
                // Answered above.
                JournalCommand::Purge { .. } => return 1,
            };
            match r {
                Ok(text) => {
                    print!("{}", logging::for_terminal(&text));
                    0
                }
                Err(e) => {
                    eprintln!("mailtoticket: {}", error_chain(&e));
                    1
                }
            }
        }
        Command::Quarantine { command } => {
            drop(rt);
            quarantine_command(command, config)
        }
        Command::Check
        | Command::ImportSettings { .. }
        | Command::Classify
        | Command::Reprocess { .. }
        | Command::Generate { .. }
        | Command::Health { .. }
        | Command::Metrics => 0,
    }
}

/// `reprocess` and `quarantine reprocess`: loads the configuration, picks the mails,
/// runs them.
fn reprocess(
    config_arg: Option<&str>,
    ids: &[String],
    all: bool,
    replay: quarantine::Replay,
) -> u8 {
    let loaded = match load_config(config_arg) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mailtoticket: {}", error_chain(&e));
            return 1;
        }
    };
    match quarantine::reprocess_targets(&loaded.config, ids, all) {
        Ok(files) => quarantine::reprocess(&loaded, &files, replay),
        Err(e) => {
            eprintln!("mailtoticket: {}", error_chain(&e));
            e.exit_code()
        }
    }
}

/// The `quarantine` subcommands but `reprocess`.
fn quarantine_command(command: QuarantineCommand, config: &Config) -> u8 {
    let done = match command {
        QuarantineCommand::List { json } => quarantine::list(config, json),
        QuarantineCommand::Show { id, raw } => {
            return quarantine::show(config, &id, raw, &mut io::stdout().lock());
        }
        QuarantineCommand::Export { ids, all, to } => quarantine::export(config, &ids, all, &to),
        QuarantineCommand::Import { paths } => quarantine::import(config, &paths),
        QuarantineCommand::Delete { ids } => quarantine::delete(config, &ids),
        QuarantineCommand::Purge {
            older_than,
            dry_run,
        } => quarantine::purge(config, &older_than, dry_run),
        // Run by `run` with the whole loaded configuration.
        QuarantineCommand::Reprocess { .. } => return 1,
    };
    print_outcome(done)
}

/// Prints what a quarantine command did (stdout) or why it failed (stderr, with the
/// per-item report on stdout); returns the exit code.
fn print_outcome(done: Result<String, quarantine::ToolError>) -> u8 {
    match done {
        Ok(text) => {
            print!("{}", logging::for_terminal(&text));
            0
        }
        Err(e) => {
            if let quarantine::ToolError::Partial(report) = &e {
                print!("{}", logging::for_terminal(report));
            }
            eprintln!("mailtoticket: {}", error_chain(&e));
            e.exit_code()
        }
    }
}

fn print_ticket(t: &crate::domain::ticket::TicketInfo) {
    if t.fields.is_empty() {
        for (k, v) in [
            ("codiTiquet", &t.codi_tiquet),
            ("estat", &t.estat),
            ("solicitant", &t.solicitant),
            ("emailSolicitant", &t.email_solicitant),
            ("assumpte", &t.assumpte),
            ("equipResolutor", &t.equip_resolutor),
            ("urgencia", &t.urgencia),
            ("dataCreacio", &t.data_creacio),
            ("dataTancament", &t.data_tancament),
            ("descripcio", &t.descripcio),
        ] {
            println!("{k}: {}", logging::for_terminal(v));
        }
    } else {
        for (k, v) in &t.fields {
            println!("{k}: {}", logging::for_terminal(v));
        }
    }
}

#[cfg(feature = "sandbox")]
fn sandbox(command: SandboxCommand, config: &Config, rt: &tokio::runtime::Runtime) -> u8 {
    use crate::sandbox as sb;
    let dir = config.sandbox_dir();
    match command {
        SandboxCommand::Serve { port } => rt.block_on(async {
            match sb::start(sb::SandboxConfig::from_config(config), port).await {
                Ok(running) => {
                    println!("GN6:      {}", running.gn6_url());
                    println!("Persones: {}", running.persones_url());
                    println!("State:    {}", dir.display());
                    let _ = io::Write::flush(&mut io::stdout());
                    running.wait().await;
                    0
                }
                Err(e) => {
                    eprintln!("mailtoticket: cannot start the sandbox: {e}");
                    1
                }
            }
        }),
        SandboxCommand::People {
            command: PeopleCommand::Add { cn, emails },
        } => match sb::add_person(&dir, &cn, &emails) {
            Ok(()) => {
                println!("{cn}: {}", emails.join(", "));
                0
            }
            Err(e) => {
                eprintln!("mailtoticket: {}: {e}", dir.display());
                1
            }
        },
        SandboxCommand::Tickets => match sb::list_tickets(&dir) {
            Ok(tickets) => {
                print!(
                    "{}",
                    logging::for_terminal(&sb::format_ticket_list(&tickets))
                );
                0
            }
            Err(e) => {
                eprintln!("mailtoticket: {}: {e}", dir.display());
                1
            }
        },
    }
}

/// Secrets shorter than this are warned about by `check`: log redaction only hides
/// whole values, and a short one is easy to guess.
pub const MIN_SECRET_LEN: usize = 8;

fn short_secret_warnings(config: &Config) -> Vec<String> {
    [
        ("password_soa", Some(&config.password_soa)),
        ("password_gn6", Some(&config.password_gn6)),
        ("LDAP_PASSWORD", config.ldap_password.as_ref()),
        ("smtp_password", config.smtp_password.as_ref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        let n = v?.chars().count();
        (n > 0 && n < MIN_SECRET_LEN).then(|| {
            format!("`{k}` is shorter than {MIN_SECRET_LEN} characters: use a longer secret")
        })
    })
    .collect()
}

/// `check`: one line per item, `ok`, `warn` or `FAIL`; non-zero on any FAIL.
fn check(arg: Option<&str>) -> u8 {
    let mut failed = false;
    let mut line = |ok: Option<bool>, what: &str| {
        let tag = match ok {
            Some(true) => "ok  ",
            None => "warn",
            Some(false) => "FAIL",
        };
        failed |= ok == Some(false);
        println!("{tag} {what}");
    };
    let env = |k: &str| std::env::var(k).ok();
    let path = match config::locate(arg, env) {
        Ok(p) => p,
        Err(e) => {
            line(Some(false), &error_chain(&e));
            return 1;
        }
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            line(Some(false), &error_chain(&e));
            return 1;
        }
    };
    line(Some(true), &format!("{}: parsed", path.display()));
    // The very builder the MDA runs with: what passes here is what the run compiles.
    let problems = Settings::build(&config).err().unwrap_or_default();
    for p in &problems {
        line(Some(false), &format!("{}: {p}", path.display()));
    }
    if problems.is_empty() {
        line(
            Some(true),
            "configuration: required keys, regexes, endpoints, levels",
        );
    }
    for w in config.warnings(&path) {
        line(None, &w);
    }
    // Issue 10: hostile senders and secrets.
    let smtp = SmtpSettings::from_config(&config);
    if let Some(problem) = crate::adapters::report::auth_without_tls(
        smtp.credentials.is_some(),
        smtp.starttls,
        smtp.allow_auth_without_tls,
    ) {
        line(Some(false), &format!("smtp_user: {problem}"));
    }
    if config
        .autenticacio_servidor
        .iter()
        .all(|s| s.trim().is_empty())
    {
        line(
            None,
            "autenticacio_servidor is empty: sender authenticity is not checked (forged From addresses are believed)",
        );
    }
    for w in crate::adapters::private_files::mode_warnings(
        Path::new(&config.log_file),
        &config.state_dir(),
        &config.quarantine_dir(),
    ) {
        line(None, &w);
    }
    for w in short_secret_warnings(&config) {
        line(None, &w);
    }
    match logging::check_writable(Path::new(&config.log_file)) {
        Ok(()) => line(
            Some(true),
            &format!("log_file {}: writable", config.log_file),
        ),
        // Not fatal: the log then goes to stderr and the mail is still handled.
        Err(e) => line(
            None,
            &format!("log_file not writable (stderr instead): {e}"),
        ),
    }
    match log_format(&config) {
        logging::LogFormat::Journald => {
            let socket = journald_socket();
            match logging::journald::Journald::connect(&socket) {
                Ok(_) => line(
                    Some(true),
                    &format!("log_format journald: {} reachable", socket.display()),
                ),
                Err(e) => line(
                    None,
                    &format!(
                        "log_format journald: {} not reachable (text on stderr instead): {e}",
                        socket.display()
                    ),
                ),
            }
        }
        f => line(Some(true), &format!("log_format: {}", f.name())),
    }
    // Every folder a run writes to, absolute (relative ones are from the config's folder).
    let state = config.state_dir();
    line(
        Some(true),
        &format!(
            "state_dir {} (journal {})",
            state.display(),
            state.join(crate::adapters::journal::DB_FILE_NAME).display()
        ),
    );
    line(
        Some(true),
        &format!("quarantine_dir {}", config.quarantine_dir().display()),
    );
    if config.bus == Bus::Sandbox {
        line(
            Some(true),
            &format!("sandbox_dir {}", config.sandbox_dir().display()),
        );
    }
    // Issue 18: the thresholds `health` applies (its problems are listed above).
    let public = config
        .health
        .listen_addr()
        .is_some_and(|a| !a.ip().is_loopback());
    line(
        if public { None } else { Some(true) },
        &health_summary(&config.health),
    );
    let imap_ok = match &config.imap {
        Some(imap) => {
            let p = imap.problems();
            for p in &p {
                line(Some(false), &format!("{}: {p}", path.display()));
            }
            p.is_empty()
        }
        None => true,
    };
    if !problems.is_empty() || !imap_ok {
        return 1;
    }
    let _sink = start_logging(&config, &path);
    let rt = match wiring::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            line(Some(false), &error_chain(&e));
            return 1;
        }
    };
    rt.block_on(async {
        let services = match wiring::connect(&config).await {
            Ok(s) => s,
            Err(e) => {
                line(
                    Some(false),
                    &format!("{}: {}", path.display(), error_chain(&e)),
                );
                return;
            }
        };
        let bus = format!("{:?}", config.bus).to_lowercase();
        // The label says where the URL came from: the bus default or `[endpoints]`.
        let origin_of = |overridden: bool| {
            if overridden {
                "[endpoints]".to_string()
            } else {
                format!("bus = \"{bus}\"")
            }
        };
        let gn6 = format!(
            "GN6 {} ({})",
            services.gn6_url,
            origin_of(config.endpoints.gn6.is_some())
        );
        let persones = format!(
            "Persones {} ({})",
            services.persones_url,
            origin_of(config.endpoints.persones.is_some())
        );
        match services.tickets.query_ticket("1").await {
            Ok(_) => line(Some(true), &format!("{gn6}: ConsultaTiquetsDades answered")),
            Err(e) => line(Some(false), &format!("{gn6}: {e}")),
        }
        let order = config.directory_order();
        if order.iter().any(|d| d == "persones") {
            match services.identity.person("mailtoticket").await {
                Ok(_) => line(
                    Some(true),
                    &format!("{persones}: obtenirDadesPersona answered"),
                ),
                Err(e) => line(Some(false), &format!("{persones}: {e}")),
            }
        }
        if let Some(rest) = &services.rest {
            use crate::ports::IdentityDirectory as _;
            match rest.person("mailtoticket").await {
                Ok(_) => line(
                    Some(true),
                    "identitat_digital: token and person look-up answered",
                ),
                Err(e) => line(Some(false), &format!("identitat_digital: {e}")),
            }
        }
        if let Some(ldap) = &services.ldap {
            use crate::ports::MailDirectory as _;
            let url = config.ldap_server_url.as_deref().unwrap_or("");
            match ldap.probe().await {
                Ok(()) => line(Some(true), &format!("LDAP {url}: bind accepted")),
                Err(e) => line(Some(false), &format!("LDAP {url}: {e}")),
            }
        }
        if config.notificar_errors {
            let r = SmtpReporter::new(SmtpSettings::from_config(&config));
            match r.test_connection().await {
                Ok(()) => line(
                    Some(true),
                    &format!(
                        "SMTP {}:{}: answered",
                        config.servidor_mail,
                        config.smtp_port()
                    ),
                ),
                Err(e) => line(
                    Some(false),
                    &format!(
                        "SMTP {}:{}: {}",
                        config.servidor_mail,
                        config.smtp_port(),
                        error_chain(&e)
                    ),
                ),
            }
        }
        if let Some(cfg) = &config.imap {
            let what = format!(
                "IMAP {}:{} ({:?}) as {}, mailbox {}",
                cfg.server,
                cfg.port(),
                cfg.tls,
                cfg.user,
                cfg.mailbox
            );
            match crate::adapters::imap::Mailbox::open(cfg).await {
                Ok(m) => {
                    m.close().await;
                    line(Some(true), &format!("{what}: logged in and selected"));
                }
                Err(e) => line(Some(false), &format!("{what}: {e}")),
            }
        }
    });
    u8::from(failed)
}

/// The `[health]` line of `check`.
fn health_summary(h: &config::health::HealthConfig) -> String {
    let every = h
        .expect_mail_every_hours
        .map_or_else(|| "not checked".to_string(), |n| format!("{n} h"));
    let listen = match (h.listen.as_deref(), h.listen_addr()) {
        (None, _) => "no endpoint".to_string(),
        (Some(_), Some(a)) if a.ip().is_loopback() => format!("endpoint http://{a}"),
        (Some(_), Some(a)) => format!("endpoint http://{a} (NOT loopback)"),
        (Some(l), None) => format!("endpoint {l} (invalid)"),
    };
    format!(
        "[health] quarantine {}/{} mails, {}/{} h old; TEMPFAIL in a row {}/{}; expect mail every: {every}; \
         watch {}; heartbeat {}/{} s; {listen}",
        h.quarantine_warning,
        h.quarantine_critical,
        h.quarantine_age_warning_hours,
        h.quarantine_age_critical_hours,
        h.tempfail_warning,
        h.tempfail_critical,
        if h.watch { "expected" } else { "if running" },
        h.heartbeat_warning_secs,
        h.heartbeat_critical_secs,
    )
}
