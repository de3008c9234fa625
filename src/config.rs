//! Configuration: one TOML file with the old program's key names (BEHAVIOUR §7) plus
//! the new settings. The only module that reads the environment.

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
    /// The embedded simulator (`crate::adapters::sandbox`), started in-process.
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
fn d_max_tickets_per_hour() -> u32 {
    20
}
fn d_deadline_secs() -> u64 {
    120
}

/// The whole configuration, as read from the TOML file.
#[derive(Debug, Clone, Deserialize)]
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

    // Sandbox.
    #[serde(default)]
    pub sandbox_dir: Option<PathBuf>,
}

/// A configuration error, naming the file and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses a configuration from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| {
            ConfigError(format!(
                "{}: {}",
                origin.display(),
                e.to_string().replace('\n', " ").trim()
            ))
        })
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        Config::from_toml(&text, path)
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
