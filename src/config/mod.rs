//! Configuration: one TOML file with the old program's key names (BEHAVIOUR §7) plus
//! the new settings. The only module that reads the environment.
//!
//! - this file: the raw file as serde reads it ([`Config`]), secrets resolved;
//! - [`locate`]: which file `-c` means;
//! - [`validate`]: the one builder ([`Settings::build`]) that validates and compiles
//!   everything the run uses; `check` prints its problems, the run uses its result.

pub mod health;
pub mod imap;
mod locate;
mod validate;

pub use locate::{config_dirs, locate};
pub use validate::{Problem, Settings, Warning, check_url, parse_log_level};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Which service bus the default endpoints point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Bus {
    #[default]
    Production,
    Test,
    /// The embedded simulator (`crate::sandbox`), started in-process.
    Sandbox,
}

/// Endpoint overrides (`[endpoints]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoints {
    pub gn6: Option<String>,
    pub persones: Option<String>,
}

/// One `valors_defecte` rule: for every header in `order`, every value of it, a
/// case-insensitive match at the start applies `defaults`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DefaultsRule {
    pub order: Vec<String>,
    #[serde(rename = "match")]
    pub pattern: String,
    pub defaults: BTreeMap<String, String>,
}

fn d_filtres() -> Vec<String> {
    vec!["reply".into(), "nou".into()]
}
fn d_regex_reply() -> String {
    r".*?R[eEvV]:.*?\[Suport Unitat ([\d]+)\]".into()
}
fn d_regex_privat() -> String {
    r"(?i)\(comentari privat\)".into()
}
fn d_regex_message_id() -> String {
    r"^<[-a-f0-9]+-tiquet-id-([0-9]+)@gn6>$".into()
}
fn d_true() -> bool {
    true
}
fn d_log_file() -> String {
    std::env::temp_dir()
        .join("mailtoticket.log")
        .to_string_lossy()
        .into_owned()
}
fn d_log_level() -> String {
    "INFO".into()
}
fn d_servidor_mail() -> String {
    "localhost".into()
}
fn d_rewrites() -> Vec<[String; 2]> {
    vec![
        [".upc.es".into(), ".upc.edu".into()],
        ["@lsi".into(), "@cs".into()],
    ]
}
fn d_connect_timeout() -> u64 {
    10
}
fn d_request_timeout() -> u64 {
    60
}
fn d_journal_retention_days() -> u32 {
    90
}
fn d_deadline_secs() -> u64 {
    120
}
fn d_max_calls_per_mail() -> u32 {
    300
}
fn d_max_tickets_per_hour() -> u32 {
    20
}
fn d_respostes_no_participants() -> String {
    "privat".into()
}
fn d_autenticacio_requerida() -> String {
    "dmarc".into()
}
fn d_dominis_confiats() -> Vec<String> {
    vec!["upc.edu".into()]
}
fn d_max_comentaris_per_tiquet_hora() -> u32 {
    10
}
fn d_max_informes_per_hora() -> u32 {
    30
}
fn d_max_quarantena_per_hora() -> u32 {
    100
}

/// The whole configuration, as read from the TOML file. Unknown keys are refused
/// so that a typo in a key name is reported instead of silently ignored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    // Credentials (§7). `*_file` variants and environment variables are resolved by
    // `Config::load`.
    #[serde(default)]
    pub username_soa: String,
    #[serde(default)]
    pub password_soa: String,
    #[serde(default)]
    pub username_gn6: String,
    #[serde(default)]
    pub password_gn6: String,
    /// File whose content (trailing newline removed) is `password_soa`.
    #[serde(default)]
    pub password_soa_file: Option<PathBuf>,
    /// File whose content (trailing newline removed) is `password_gn6`.
    #[serde(default)]
    pub password_gn6_file: Option<PathBuf>,
    #[serde(default)]
    pub domini: String,
    #[serde(default)]
    pub equip_resolutor_nous: String,
    #[serde(default)]
    pub usuari_extern: String,

    // Bus.
    #[serde(default)]
    pub bus: Bus,
    #[serde(default)]
    pub endpoints: Endpoints,
    /// Extra CA certificate (PEM) trusted besides the web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default = "d_connect_timeout")]
    pub connect_timeout_secs: u64,
    #[serde(default = "d_request_timeout")]
    pub request_timeout_secs: u64,

    // Filters and rules.
    #[serde(default = "d_filtres")]
    pub filtres: Vec<String>,
    #[serde(default)]
    pub valors_defecte: Vec<DefaultsRule>,
    #[serde(default = "d_true")]
    pub notificar_comentaris_afegits: bool,
    #[serde(default = "d_regex_reply")]
    pub regex_reply: String,
    #[serde(default = "d_regex_privat")]
    pub regex_privat: String,
    #[serde(default = "d_regex_message_id")]
    pub regex_message_id: String,
    #[serde(default)]
    pub afegir_solicitants_addicionals_en_cc: bool,
    #[serde(default)]
    pub afegir_solicitants_addicionals_en_cc_nomes_via: String,
    #[serde(default)]
    pub assignar_data_resolucio_amb_data_creacio: bool,
    #[serde(default = "d_true")]
    pub netejar_mail_nou: bool,
    #[serde(default = "d_true")]
    pub netejar_mail_reply: bool,
    /// Time zone for the dates written in ticket texts (e.g. `Europe/Madrid`);
    /// default: the server's local time zone.
    #[serde(default)]
    pub zona_horaria: Option<String>,

    // Identity.
    /// address → username.
    #[serde(default)]
    pub mails_addicionals: BTreeMap<String, String>,
    /// regex → value (`%s` = first capture group), tried in file order.
    #[serde(default)]
    pub patrons_mail_addicionals: toml::Table,
    /// Rewrites applied to every address before looking it up: [from, to] pairs.
    #[serde(default = "d_rewrites")]
    pub canonical_rewrites: Vec<[String; 2]>,
    #[serde(default, rename = "LDAP_SERVER_URL")]
    pub ldap_server_url: Option<String>,
    #[serde(default, rename = "LDAP_BIND_USER")]
    pub ldap_bind_user: Option<String>,
    #[serde(default, rename = "LDAP_PASSWORD")]
    pub ldap_password: Option<String>,
    /// File whose content is `LDAP_PASSWORD`.
    #[serde(default, rename = "LDAP_PASSWORD_FILE")]
    pub ldap_password_file: Option<PathBuf>,
    #[serde(default, rename = "LDAP_BASE_SEARCH")]
    pub ldap_base_search: Option<String>,

    // Which mails to process.
    #[serde(default)]
    pub mails_no_ticket: Vec<String>,
    #[serde(default)]
    pub mails_sempre_ticket: Vec<String>,
    /// Skip mailing-list posts (Precedence: list, List-Id). Default: process them.
    #[serde(default)]
    pub skip_list_mail: bool,
    #[serde(default)]
    pub filtrar_attachments_per_nom: Vec<String>,
    #[serde(default)]
    pub filtrar_attachments_per_hash: Vec<String>,

    // Output, logs, reports.
    #[serde(default = "d_log_file")]
    pub log_file: String,
    #[serde(default = "d_log_level")]
    pub log_level: String,
    #[serde(default)]
    pub no_escriure_sortida: bool,
    #[serde(default)]
    pub notificar_errors: bool,
    #[serde(default)]
    pub notificar_errors_from: String,
    #[serde(default)]
    pub notificar_errors_to: String,
    #[serde(default = "d_servidor_mail")]
    pub servidor_mail: String,
    /// SMTP port of `servidor_mail` (default 25).
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// Upgrade the SMTP connection with STARTTLS (required when true).
    #[serde(default)]
    pub smtp_starttls: bool,
    #[serde(default)]
    pub smtp_user: Option<String>,
    #[serde(default)]
    pub smtp_password: Option<String>,
    #[serde(default)]
    pub smtp_password_file: Option<PathBuf>,
    /// Also send the error report for SKIP (the old program did; default false).
    #[serde(default)]
    pub notificar_errors_skip: bool,
    /// For MTAs that bounce every exit code but 75 (Postfix pipe): REJECT and ERROR
    /// exit 0 once the mail has been reported or quarantined.
    #[serde(default)]
    pub exit_zero_when_reported: bool,

    // Durable state (journal, quarantine) and limits.
    /// Folder of the delivery journal and other state; default
    /// `mailtoticket-state` beside the log file.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Folder where mails that could not be handled are kept; default `STATE_DIR/quarantine`.
    #[serde(default)]
    pub quarantine_dir: Option<PathBuf>,
    #[serde(default = "d_journal_retention_days")]
    pub journal_retention_days: u32,

    // Loop protection and limits (issue 5).
    /// The gateway's own addresses: mail from them is never processed (loop).
    /// `notificar_errors_from` counts as one too.
    #[serde(default)]
    pub adreces_propies: Vec<String>,
    /// New tickets per sender and hour before REJECT; 0 = unlimited.
    #[serde(default = "d_max_tickets_per_hour")]
    pub max_tickets_per_hour: u32,
    /// Overall deadline of one mail, in seconds, below common MTA command limits.
    #[serde(default = "d_deadline_secs")]
    pub deadline_secs: u64,
    /// Bus calls one mail may make for identity look-ups, additional requesters and
    /// uploads (issue 19 §3); past it the mail is delivered as far as it got and the
    /// ticket says what was left out. At least 10.
    #[serde(default = "d_max_calls_per_mail")]
    pub max_calls_per_mail: u32,

    /// `[limits]`: what one mail may make the gateway do (issue 9).
    #[serde(default)]
    pub limits: crate::domain::limits::Limits,

    // Sandbox.
    #[serde(default)]
    pub sandbox_dir: Option<PathBuf>,

    // Pull mode (`mailtoticket imap`, issue 12 §3).
    #[serde(default)]
    pub imap: Option<imap::ImapConfig>,
    // Identity directories (issue 13).
    /// The identity chain, in order (names in [`KNOWN_DIRECTORIES`]); default: the
    /// old order, `mails_addicionals`, `persones`, then `identitat_digital` and `ldap`
    /// when configured, then `patrons`.
    #[serde(default)]
    pub directoris: Option<Vec<String>>,
    /// Directories whose failure counts as "not found" (logged) instead of a
    /// temporary failure of the mail.
    #[serde(default)]
    pub directoris_opcionals: Vec<String>,
    /// Upgrade an `ldap://` `LDAP_SERVER_URL` with StartTLS before binding (default
    /// true: the bind password never travels in clear).
    #[serde(default = "d_true", rename = "LDAP_STARTTLS")]
    pub ldap_starttls: bool,
    /// Base URL of the identity REST API; default UPC's (the sandbox's own with
    /// `bus = "sandbox"`).
    #[serde(default)]
    pub identitat_digital_url: Option<String>,
    /// API key of the identity REST API (`idProces` of its token request).
    #[serde(default)]
    pub identitat_digital_apikey: Option<String>,
    /// File whose content is `identitat_digital_apikey`.
    #[serde(default)]
    pub identitat_digital_apikey_file: Option<PathBuf>,
    /// HTTP statuses of the REST API that mean "nobody" (not documented: default 404).
    #[serde(default = "d_not_found_statuses")]
    pub identitat_digital_no_trobat: Vec<u16>,
    /// The server's time zone (IANA name) read from `TZ` or the system by
    /// [`Config::load`]; not a key of the file (see [`Config::server_time_zone`]).
    #[serde(skip)]
    server_zone: Option<String>,

    // Hostile senders (issue 10).
    /// Usernames (or `^regex`) of the agents: participants of every ticket.
    #[serde(default)]
    pub agents: Vec<String>,
    /// A reply from a non-participant: `privat` (default), `public` or `nou`.
    #[serde(default = "d_respostes_no_participants")]
    pub respostes_no_participants: String,
    /// authserv-id(s) of our own MTA's `Authentication-Results`; empty = not checked.
    #[serde(default)]
    pub autenticacio_servidor: Vec<String>,
    /// `dmarc` (default) or `cap`.
    #[serde(default = "d_autenticacio_requerida")]
    pub autenticacio_requerida: String,
    /// From addresses (or `^regex`) of the web forms whose Reply-To is the user's.
    #[serde(default)]
    pub remitents_formulari: Vec<String>,
    /// Domains (and subdomains) whose authenticated From vouches for its Reply-To.
    #[serde(default = "d_dominis_confiats")]
    pub dominis_confiats: Vec<String>,
    /// The old behaviour: Reply-To always gives the identity.
    #[serde(default)]
    pub confiar_sempre_reply_to: bool,
    /// Comments added to one ticket per hour before REJECT; 0 = unlimited.
    #[serde(default = "d_max_comentaris_per_tiquet_hora")]
    pub max_comentaris_per_tiquet_hora: u32,
    /// Error reports per hour in all; 0 = unlimited.
    #[serde(default = "d_max_informes_per_hora")]
    pub max_informes_per_hora: u32,
    /// Mails written to the quarantine per hour; 0 = unlimited.
    #[serde(default = "d_max_quarantena_per_hora")]
    pub max_quarantena_per_hora: u32,
    /// Allow SMTP AUTH over a connection without TLS (refused by default).
    #[serde(default)]
    pub smtp_permetre_auth_sense_tls: bool,

    /// `[journal]`: how long the delivery journal remembers mails (issue 18); see
    /// [`Config::journal_retention`].
    #[serde(default)]
    pub journal: JournalConfig,
    // Machine-readable logs (issue 18).
    /// `text`, `json` or `journald`; unset: journald when systemd connected stderr to
    /// the journal and `log_file` is left at its default, text otherwise (see
    /// `adapters::logging::LogFormat::automatic`).
    #[serde(default)]
    pub log_format: Option<String>,
    /// `[health]`: thresholds of `mailtoticket health`, the watch-mode endpoint (issue 18).
    #[serde(default)]
    pub health: health::HealthConfig,
}

/// `[journal]` (issue 18).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    /// Days a delivered mail (SUCCESS) is remembered; default 30, or
    /// `retention_days` when that is shorter.
    #[serde(default)]
    pub delivered_retention_days: Option<u32>,
    /// Days every other mail is remembered; default the top-level
    /// `journal_retention_days` (90), which is the older name of this key.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

impl Config {
    /// The ages of `journal purge` and of the daily prune: `[journal]
    /// retention_days` (else the top-level `journal_retention_days`, 90) for every
    /// mail but the delivered ones, `[journal] delivered_retention_days` (else 30,
    /// or the other age when shorter) for those.
    pub fn journal_retention(&self) -> crate::adapters::journal::Retention {
        let other = self
            .journal
            .retention_days
            .unwrap_or(self.journal_retention_days);
        let delivered = self
            .journal
            .delivered_retention_days
            .unwrap_or(crate::adapters::journal::DEFAULT_DELIVERED_DAYS.min(other));
        crate::adapters::journal::Retention::days(delivered, other)
    }

    /// What is wrong with the retention keys: (key, problem).
    pub fn journal_retention_problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (key, value) in [
            ("journal_retention_days", Some(self.journal_retention_days)),
            ("journal.retention_days", self.journal.retention_days),
            (
                "journal.delivered_retention_days",
                self.journal.delivered_retention_days,
            ),
        ] {
            if value == Some(0) {
                out.push((
                    key,
                    "must be at least 1 (0 would forget every mail, and with it the duplicate check)"
                        .to_string(),
                ));
            }
        }
        if let Some(days) = self.journal.retention_days
            && self.journal_retention_days != d_journal_retention_days()
            && days != self.journal_retention_days
        {
            out.push((
                "journal.retention_days",
                format!(
                    "{days} conflicts with the top-level `journal_retention_days` = {} (its older name): set only one",
                    self.journal_retention_days
                ),
            ));
        }
        out
    }
}

fn d_not_found_statuses() -> Vec<u16> {
    vec![404]
}

/// The identity directories `directoris` may list.
pub const KNOWN_DIRECTORIES: &[&str] = &[
    "mails_addicionals",
    "persones",
    "identitat_digital",
    "ldap",
    "patrons",
];

/// Default base URL of the identity REST API.
pub const IDENTITAT_DIGITAL_URL: &str = "https://identitatdigital.upc.edu/gcontrol/rest";

/// Environment variable that overrides `identitat_digital_apikey`.
pub const ENV_IDENTITAT_APIKEY: &str = "MAILTOTICKET_IDENTITAT_APIKEY";

/// The IANA name of the server's time zone: `TZ` (`Europe/Madrid` or
/// `:Europe/Madrid`), else `/etc/timezone`, else the target of `/etc/localtime`.
/// `None` when none names a zone chrono-tz knows.
pub fn detect_server_time_zone(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    let known = |name: &str| {
        let name = name.trim().trim_start_matches(':');
        let name = name.rsplit_once("zoneinfo/").map_or(name, |(_, zone)| zone);
        name.parse::<chrono_tz::Tz>().ok().map(|_| name.to_string())
    };
    if let Some(tz) = env("TZ").filter(|t| !t.trim().is_empty()) {
        // A TZ that names no zone (a POSIX rule string) is not second-guessed.
        return known(&tz);
    }
    if let Some(zone) = std::fs::read_to_string("/etc/timezone")
        .ok()
        .and_then(|t| known(&t))
    {
        return Some(zone);
    }
    std::fs::read_link("/etc/localtime")
        .ok()
        .and_then(|p| known(&p.to_string_lossy()))
}
/// A configuration that cannot be used. `Display` is one line naming the file (and
/// the key when there is one); the underlying I/O error, if any, is the `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, an unknown key or a value of the wrong type (already one line:
    /// `FILE: key `K` (line N): what is wrong`).
    #[error("{0}")]
    Syntax(String),
    /// A `*_file` secret could not be read.
    #[error("{}: key `{key}`: cannot read {}", origin.display(), file.display())]
    SecretFile {
        origin: PathBuf,
        key: &'static str,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A bare `-c NAME` found in none of the configuration folders.
    #[error("{file}: not found in {searched} (use -c PATH or set {ENV_CONFIG_DIR})")]
    NotFound { file: String, searched: String },
    /// Values that do not validate (see [`Settings::build`]); the first one is shown.
    #[error("{}: {}", origin.display(), first_problem(problems))]
    Invalid {
        origin: PathBuf,
        problems: Vec<Problem>,
    },
}

fn first_problem(problems: &[Problem]) -> String {
    problems
        .first()
        .map_or_else(|| "invalid".to_string(), Problem::to_string)
}

/// Environment variables that override the passwords of the file.
pub const ENV_PASSWORD_SOA: &str = "MAILTOTICKET_PASSWORD_SOA";
pub const ENV_PASSWORD_GN6: &str = "MAILTOTICKET_PASSWORD_GN6";
pub const ENV_PASSWORD_LDAP: &str = "MAILTOTICKET_PASSWORD_LDAP";
pub const ENV_PASSWORD_SMTP: &str = "MAILTOTICKET_PASSWORD_SMTP";
/// Folder searched first for `-c NAME`.
pub const ENV_CONFIG_DIR: &str = "MAILTOTICKET_CONFIG_DIR";

impl Config {
    /// Parses a configuration from TOML text; `origin` names the file in errors.
    /// Errors are one line: `FILE: key `K` (line N): what is wrong`.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax(describe_toml_error(&e, text, origin)))
    }

    /// Reads, parses and resolves a configuration file: secrets come from the
    /// `*_file` keys and the environment (`MAILTOTICKET_PASSWORD_*`), which win over
    /// the values written in the file. Does not validate: see [`Settings::build`].
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_toml(&text, path)?;
        config.resolve_paths(path);
        config.resolve_secrets(path, |k| std::env::var(k).ok())?;
        config.server_zone = detect_server_time_zone(|k| std::env::var(k).ok());
        Ok(config)
    }

    /// Makes every relative path of the configuration (`log_file`, `state_dir`,
    /// `quarantine_dir`, `sandbox_dir`, `ca_file` and the `*_file` secrets) relative
    /// to the folder of the configuration file `origin`, not to the working directory
    /// (issue 12 §4): the MDA, `journal` and the sandbox find the same state from
    /// anywhere.
    pub fn resolve_paths(&mut self, origin: &Path) {
        let origin = std::path::absolute(origin).unwrap_or_else(|_| origin.to_path_buf());
        let base = origin.parent().unwrap_or(Path::new("/")).to_path_buf();
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        };
        for p in [
            &mut self.state_dir,
            &mut self.quarantine_dir,
            &mut self.sandbox_dir,
            &mut self.ca_file,
            &mut self.password_soa_file,
            &mut self.password_gn6_file,
            &mut self.ldap_password_file,
            &mut self.smtp_password_file,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        if let Some(imap) = &mut self.imap {
            for p in [&mut imap.password_file, &mut imap.ca_file]
                .into_iter()
                .flatten()
            {
                fix(p);
            }
        }
        let trimmed = self.log_file.trim();
        if !trimmed.is_empty() && Path::new(trimmed).is_relative() {
            self.log_file = base.join(trimmed).to_string_lossy().into_owned();
        }
    }

    /// Whether `log_file` is the built-in default (not set, or set to that same path).
    pub fn log_file_is_default(&self) -> bool {
        self.log_file == d_log_file()
    }

    /// Fills the passwords from `*_file` keys and then from the environment.
    pub fn resolve_secrets(
        &mut self,
        origin: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let base = origin.parent().unwrap_or(Path::new("."));
        let read =
            |key: &'static str, file: &Option<PathBuf>| -> Result<Option<String>, ConfigError> {
                let Some(file) = file else { return Ok(None) };
                let file = base.join(file);
                let text =
                    std::fs::read_to_string(&file).map_err(|source| ConfigError::SecretFile {
                        origin: origin.to_path_buf(),
                        key,
                        file: file.clone(),
                        source,
                    })?;
                Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()))
            };
        if let Some(p) = read("password_soa_file", &self.password_soa_file)? {
            self.password_soa = p;
        }
        if let Some(p) = read("password_gn6_file", &self.password_gn6_file)? {
            self.password_gn6 = p;
        }
        if let Some(p) = read("LDAP_PASSWORD_FILE", &self.ldap_password_file)? {
            self.ldap_password = Some(p);
        }
        if let Some(p) = read("smtp_password_file", &self.smtp_password_file)? {
            self.smtp_password = Some(p);
        }
        if let Some(imap) = &mut self.imap
            && let Some(p) = read("[imap] password_file", &imap.password_file)?
        {
            imap.password = p;
        }
        if let Some(p) = read(
            "identitat_digital_apikey_file",
            &self.identitat_digital_apikey_file,
        )? {
            self.identitat_digital_apikey = Some(p);
        }
        let nonempty = |k: &str| env(k).filter(|v| !v.is_empty());
        if let Some(imap) = &mut self.imap
            && let Some(p) = nonempty(imap::ENV_PASSWORD_IMAP)
        {
            imap.password = p;
        }
        if let Some(p) = nonempty(ENV_PASSWORD_SOA) {
            self.password_soa = p;
        }
        if let Some(p) = nonempty(ENV_PASSWORD_GN6) {
            self.password_gn6 = p;
        }
        if let Some(p) = nonempty(ENV_PASSWORD_LDAP) {
            self.ldap_password = Some(p);
        }
        if let Some(p) = nonempty(ENV_PASSWORD_SMTP) {
            self.smtp_password = Some(p);
        }
        if let Some(p) = nonempty(ENV_IDENTITAT_APIKEY) {
            self.identitat_digital_apikey = Some(p);
        }
        Ok(())
    }

    /// Every secret value of the configuration (for log redaction).
    pub fn secrets(&self) -> Vec<String> {
        [
            Some(self.password_soa.clone()),
            Some(self.password_gn6.clone()),
            self.ldap_password.clone(),
            self.smtp_password.clone(),
            self.imap.as_ref().map(|i| i.password.clone()),
            self.identitat_digital_apikey.clone(),
        ]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect()
    }

    /// Problems of the identity directory keys (issue 13).
    pub fn directory_problems(&self, bad: &mut impl FnMut(&str, String)) {
        let known = KNOWN_DIRECTORIES.join(", ");
        if let Some(list) = &self.directoris {
            for (i, name) in list.iter().enumerate() {
                if !KNOWN_DIRECTORIES.contains(&name.as_str()) {
                    bad(
                        "directoris",
                        format!("unknown directory `{name}` (known: {known})"),
                    );
                } else if list[..i].contains(name) {
                    bad("directoris", format!("`{name}` listed twice"));
                }
            }
        }
        for name in &self.directoris_opcionals {
            if !KNOWN_DIRECTORIES.contains(&name.as_str()) {
                bad(
                    "directoris_opcionals",
                    format!("unknown directory `{name}` (known: {known})"),
                );
            }
        }
        let order = self.directory_order();
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        if order.iter().any(|d| d == "ldap") {
            if !set(&self.ldap_server_url) {
                bad(
                    "LDAP_SERVER_URL",
                    "required when `directoris` has `ldap`".into(),
                );
            }
            if !set(&self.ldap_base_search) {
                bad(
                    "LDAP_BASE_SEARCH",
                    "required when LDAP is used (LDAP_SERVER_URL)".into(),
                );
            }
        }
        if order.iter().any(|d| d == "identitat_digital") && !set(&self.identitat_digital_apikey) {
            bad(
                "identitat_digital_apikey",
                "required when `directoris` has `identitat_digital`".into(),
            );
        }
        if let Some(url) = &self.identitat_digital_url
            && let Err(e) = check_url(url)
        {
            bad("identitat_digital_url", e);
        }
    }

    /// The server's time zone found by [`Config::load`] (`None` for a configuration
    /// parsed from text, or when the zone cannot be told).
    pub fn server_time_zone(&self) -> Option<&str> {
        self.server_zone.as_deref()
    }

    /// Sets the server's time zone (what [`Config::load`] reads from `TZ`).
    pub fn set_server_time_zone(&mut self, zone: Option<String>) {
        self.server_zone = zone;
    }

    /// The identity chain in order: `directoris`, else the old order with the
    /// optional directories that are configured.
    pub fn directory_order(&self) -> Vec<String> {
        if let Some(list) = &self.directoris {
            return list.clone();
        }
        let set = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        let mut out = vec!["mails_addicionals".to_string(), "persones".to_string()];
        if set(&self.identitat_digital_apikey) {
            out.push("identitat_digital".into());
        }
        if set(&self.ldap_server_url) {
            out.push("ldap".into());
        }
        out.push("patrons".into());
        out
    }

    /// Folder of the durable state.
    pub fn state_dir(&self) -> PathBuf {
        if let Some(d) = &self.state_dir {
            return d.clone();
        }
        // Beside the log, so that one folder holds what an admin needs to look at.
        Path::new(&self.log_file)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir)
            .join("mailtoticket-state")
    }

    /// Folder of the quarantined mails (default: `quarantine` in the state folder).
    pub fn quarantine_dir(&self) -> PathBuf {
        self.quarantine_dir
            .clone()
            .unwrap_or_else(|| self.state_dir().join("quarantine"))
    }

    /// Folder of the sandbox bus state.
    pub fn sandbox_dir(&self) -> PathBuf {
        self.sandbox_dir
            .clone()
            .unwrap_or_else(|| self.state_dir().join("sandbox"))
    }

    /// SMTP port of the error reports.
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port.unwrap_or(25)
    }

    /// `patrons_mail_addicionals` as (regex, value) pairs in file order.
    pub fn patterns(&self) -> Vec<(String, String)> {
        self.patrons_mail_addicionals
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// GN6 endpoint: `[endpoints] gn6`, else the bus default (INTERFACES.md §1).
    pub fn gn6_endpoint(&self) -> String {
        self.endpoints
            .gn6
            .clone()
            .unwrap_or_else(|| match self.bus {
                Bus::Test => "https://bus-soades.upc.edu/gN6/GestioTiquetsv5".into(),
                _ => "https://bus-soa.upc.edu/gN6/GestioTiquetsv5".into(),
            })
    }

    /// Persones endpoint: `[endpoints] persones`, else the bus default.
    pub fn persones_endpoint(&self) -> String {
        self.endpoints
            .persones
            .clone()
            .unwrap_or_else(|| match self.bus {
                Bus::Test => "https://bus-soades.upc.edu/GestioIdentitat/Personesv6".into(),
                _ => "https://bus-soa.upc.edu/GestioIdentitat/Personesv6".into(),
            })
    }
}

/// One line from a TOML error: the file, the key (read from the offending line),
/// the line number and toml's message without its long list of expected keys.
fn describe_toml_error(e: &toml::de::Error, text: &str, origin: &Path) -> String {
    let mut msg = e.message().replace('\n', " ").trim().to_string();
    // The list of every known key is too long for one line; short lists (enum
    // variants) help and stay.
    if let Some(i) = msg.find(", expected one of")
        && msg.len() - i > 80
    {
        msg.truncate(i);
    }
    let Some(span) = e.span() else {
        return format!("{}: {msg}", origin.display());
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let key = key.or_else(|| {
        // unknown-field errors name the key in backquotes
        msg.split('`').nth(1).map(str::to_string)
    });
    match key {
        Some(k) => format!("{}: key `{k}` (line {line_no}): {msg}", origin.display()),
        None => format!("{}: line {line_no}: {msg}", origin.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/m/x.toml"))
    }

    #[test]
    fn unknown_key_is_named_with_file_and_line() {
        let e = parse("domini = \"1\"\nusername_sao = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/m/x.toml: key `username_sao` (line 2)"),
            "{e}"
        );
        assert!(!e.contains('\n'));
        assert!(!e.contains("expected one of"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = parse("connect_timeout_secs = \"ten\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("key `connect_timeout_secs` (line 1)"),
            "{e}"
        );
    }

    #[test]
    fn env_overrides_file_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("soa.pw"), "from-file\n").unwrap();
        let mut c = parse("password_soa = \"inline\"\npassword_soa_file = \"soa.pw\"\n").unwrap();
        let origin = dir.path().join("c.toml");
        c.resolve_secrets(&origin, |_| None).unwrap();
        assert_eq!(c.password_soa, "from-file");
        c.resolve_secrets(&origin, |k| {
            (k == ENV_PASSWORD_SOA).then(|| "env".to_string())
        })
        .unwrap();
        assert_eq!(c.password_soa, "env");
        assert_eq!(c.secrets(), ["env"]);
    }

    #[test]
    fn unreadable_secret_file_keeps_the_io_error_as_source() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = parse("password_soa_file = \"missing.pw\"\n").unwrap();
        let e = c
            .resolve_secrets(&dir.path().join("c.toml"), |_| None)
            .unwrap_err();
        assert!(e.to_string().contains("key `password_soa_file`"), "{e}");
        let source = std::error::Error::source(&e).expect("source");
        assert!(source.downcast_ref::<std::io::Error>().is_some());
    }
}
