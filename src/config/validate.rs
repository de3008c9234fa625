//! The one settings builder: the raw file in, everything the run uses out — each
//! regex compiled once, with the flags the run matches with — or every problem found.
//! `check` prints these problems; the MDA refuses to start on the first one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use regex::Regex;

use super::{Bus, Config};
use crate::adapters::mail::{AttachmentFilters, MailError};
use crate::app::{self, Limits, ReportPolicy};
use crate::domain::classify::{ClassifyOptions, SenderItem};
use crate::domain::filters::FilterKind;
use crate::domain::identity::IdentityRules;
use crate::domain::rules::Rule;
use crate::domain::trust::{NameList, NonParticipantReplies, ReplyToPolicy, Requirement};

/// One thing wrong in the configuration: the key (as written in the file) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "key `{}`: {}", self.key, self.what)
    }
}

/// A non-fatal finding printed by `check`.
pub type Warning = String;

/// Everything a run needs, validated and compiled once from the raw [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// What the use case reads (it never sees the file's struct).
    pub app: app::Settings,
    /// `filtrar_attachments_per_nom` / `_per_hash`, for the mail decoder.
    pub attachments: AttachmentFilters,
    /// `log_level`.
    pub log_level: tracing::Level,
}

impl Settings {
    /// Validates everything that can be checked without the network and compiles
    /// what the run uses; the problems come in the key order of the reference.
    pub fn build(raw: &Config) -> Result<Settings, Vec<Problem>> {
        let mut out: Vec<Problem> = Vec::new();
        let mut bad = |k: &str, w: String| {
            out.push(Problem {
                key: k.to_string(),
                what: w,
            })
        };
        #[cfg(not(feature = "sandbox"))]
        if raw.bus == Bus::Sandbox {
            bad(
                "bus",
                "\"sandbox\" is not available: this build was made without the `sandbox` feature"
                    .to_string(),
            );
        }
        if raw.bus != Bus::Sandbox {
            for (key, value) in [
                ("username_soa", &raw.username_soa),
                ("password_soa", &raw.password_soa),
                ("username_gn6", &raw.username_gn6),
                ("password_gn6", &raw.password_gn6),
                ("domini", &raw.domini),
            ] {
                if value.trim().is_empty() {
                    bad(key, "required (empty or missing)".into());
                }
            }
        }
        let mut filters = Vec::new();
        for f in &raw.filtres {
            match FilterKind::ALL.into_iter().find(|k| k.name() == f) {
                Some(kind) if filters.contains(&kind) => {
                    bad("filtres", format!("`{f}` listed twice"));
                }
                Some(kind) => filters.push(kind),
                None => {
                    let known: Vec<&str> = FilterKind::ALL.iter().map(|k| k.name()).collect();
                    bad(
                        "filtres",
                        format!("unknown filter `{f}` (known: {})", known.join(", ")),
                    );
                }
            }
        }
        if raw.filtres.is_empty() {
            bad("filtres", "no filter listed".into());
        }
        if filters.contains(&FilterKind::Nou) && raw.equip_resolutor_nous.trim().is_empty() {
            bad(
                "equip_resolutor_nous",
                "required when `filtres` has `nou`".into(),
            );
        }
        if filters.contains(&FilterKind::NouExtern) && raw.usuari_extern.trim().is_empty() {
            bad(
                "usuari_extern",
                "required when `filtres` has `nou_extern`".into(),
            );
        }
        for (key, url) in [
            ("endpoints.gn6", raw.endpoints.gn6.as_deref()),
            ("endpoints.persones", raw.endpoints.persones.as_deref()),
        ] {
            if let Some(url) = url
                && let Err(e) = check_url(url)
            {
                bad(key, e);
            }
        }
        if let Some(url) = &raw.ldap_server_url
            && !url.is_empty()
            && !(url.starts_with("ldap://") || url.starts_with("ldaps://"))
        {
            bad(
                "LDAP_SERVER_URL",
                format!("`{url}` is not an ldap:// or ldaps:// URL"),
            );
        }
        let mut compile = |key: &str, re: &str| match Regex::new(re) {
            Ok(r) => Some(r),
            Err(e) => {
                bad(key, regex_error(re, &e));
                None
            }
        };
        let regex_reply = compile("regex_reply", &raw.regex_reply);
        let regex_privat = compile("regex_privat", &raw.regex_privat);
        let regex_message_id = compile("regex_message_id", &raw.regex_message_id);
        let via = raw.afegir_solicitants_addicionals_en_cc_nomes_via.trim();
        let cc_via = if via.is_empty() {
            Some(None)
        } else {
            compile("afegir_solicitants_addicionals_en_cc_nomes_via", via).map(Some)
        };
        // The rules compile their pattern anchored and case-insensitive: that exact
        // regex is what is validated here and what the run uses.
        let mut rules = Vec::new();
        for (i, r) in raw.valors_defecte.iter().enumerate() {
            let defaults: Vec<(String, String)> = r
                .defaults
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            match Rule::new(&r.order, &r.pattern, &defaults) {
                Ok(rule) => rules.push(rule),
                Err(e) => bad(&format!("valors_defecte[{i}]"), one_line(&e)),
            }
        }
        let rewrites: Vec<(String, String)> = raw
            .canonical_rewrites
            .iter()
            .map(|[a, b]| (a.to_lowercase(), b.to_lowercase()))
            .collect();
        let identity = match IdentityRules::new(&rewrites, &raw.mails_addicionals, &raw.patterns())
        {
            Ok(i) => i,
            Err(e) => {
                bad("patrons_mail_addicionals", one_line(&e));
                IdentityRules::default()
            }
        };
        // The sender lists, compiled as the classifier matches them (`(?i)`).
        let mut sender_list = |key: &str, items: &[String]| -> Vec<SenderItem> {
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                match SenderItem::parse(item) {
                    Ok(i) => list.push(i),
                    Err(e) => bad(key, regex_message(item, &e)),
                }
            }
            list
        };
        let mails_no_ticket = sender_list("mails_no_ticket", &raw.mails_no_ticket);
        let mails_sempre_ticket = sender_list("mails_sempre_ticket", &raw.mails_sempre_ticket);
        let classify = ClassifyOptions {
            mails_sempre_ticket,
            mails_no_ticket,
            skip_list_mail: raw.skip_list_mail,
        };
        let attachments = match AttachmentFilters::new(
            &raw.filtrar_attachments_per_nom,
            &raw.filtrar_attachments_per_hash,
        ) {
            Ok(f) => f,
            Err(MailError::FilterRegex { pattern, source }) => {
                let what = format!("regex invàlida {pattern:?}: {source}");
                bad("filtrar_attachments_per_nom", one_line(&what));
                AttachmentFilters::default()
            }
        };
        for h in &raw.filtrar_attachments_per_hash {
            if h.len() != 32 || !h.chars().all(|c| c.is_ascii_hexdigit()) {
                bad(
                    "filtrar_attachments_per_hash",
                    format!("`{h}` is not an MD5 hex digest"),
                );
            }
        }
        let log_level = parse_log_level(&raw.log_level);
        if log_level.is_none() {
            bad(
                "log_level",
                format!(
                    "`{}` is not one of TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL",
                    raw.log_level
                ),
            );
        }
        if raw.log_file.trim().is_empty() {
            bad("log_file", "empty".into());
        }
        if let Some(f) = &raw.log_format
            && crate::adapters::logging::LogFormat::parse(f).is_none()
        {
            bad(
                "log_format",
                format!(
                    "`{f}` is not one of {}",
                    crate::adapters::logging::LogFormat::NAMES.join(", ")
                ),
            );
        }
        let time_zone = match raw.zona_horaria.as_deref().map(str::trim) {
            // The server's own zone rules (TZ / the system zone database), so a mail
            // dated in summer is written in summer time in December too.
            None | Some("") => raw
                .server_time_zone()
                .and_then(|name| name.parse::<Tz>().ok()),
            Some(tz) => match tz.parse::<Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    bad("zona_horaria", format!("`{tz}` is not a known time zone"));
                    None
                }
            },
        };
        if raw.notificar_errors {
            for (key, value) in [
                ("notificar_errors_from", &raw.notificar_errors_from),
                ("notificar_errors_to", &raw.notificar_errors_to),
            ] {
                if !looks_like_address(value) {
                    bad(key, format!("`{value}` is not an e-mail address"));
                }
            }
            if raw.servidor_mail.trim().is_empty() {
                bad(
                    "servidor_mail",
                    "empty while `notificar_errors` is true".into(),
                );
            }
        }
        if raw.smtp_port == Some(0) {
            bad("smtp_port", "0 is not a port".into());
        }
        if raw.connect_timeout_secs == 0 {
            bad("connect_timeout_secs", "must be at least 1".into());
        }
        if raw.request_timeout_secs == 0 {
            bad("request_timeout_secs", "must be at least 1".into());
        }
        if raw.deadline_secs == 0 {
            bad("deadline_secs", "must be at least 1".into());
        }
        if raw.max_calls_per_mail < 10 {
            bad(
                "max_calls_per_mail",
                format!("{} is below the minimum of 10", raw.max_calls_per_mail),
            );
        }
        for (i, pair) in raw.canonical_rewrites.iter().enumerate() {
            if pair[0].is_empty() {
                bad(&format!("canonical_rewrites[{i}]"), "empty pattern".into());
            }
        }
        raw.directory_problems(&mut bad);
        // Hostile senders (issue 10).
        let non_participants = NonParticipantReplies::parse(&raw.respostes_no_participants);
        if non_participants.is_none() {
            bad(
                "respostes_no_participants",
                format!(
                    "`{}` is not one of privat, public, nou",
                    raw.respostes_no_participants
                ),
            );
        }
        let required = Requirement::parse(&raw.autenticacio_requerida);
        if required.is_none() {
            bad(
                "autenticacio_requerida",
                format!("`{}` is not one of dmarc, cap", raw.autenticacio_requerida),
            );
        }
        let mut list = |key: &str, items: &[String]| match NameList::new(items) {
            Ok(l) => l,
            Err(e) => {
                bad(key, one_line(&e));
                NameList::default()
            }
        };
        let agents = list("agents", &raw.agents);
        let forms = list("remitents_formulari", &raw.remitents_formulari);
        for (key, problem) in raw.journal_retention_problems() {
            bad(key, problem);
        }
        // Issue 18: `[health]`.
        for (key, what) in raw.health.problems(raw.imap.as_ref()) {
            out.push(Problem {
                key: key.to_string(),
                what,
            });
        }
        let (
            true,
            Some(regex_reply),
            Some(regex_privat),
            Some(regex_message_id),
            Some(cc_via),
            Some(log_level),
            Some(non_participants),
            Some(required),
        ) = (
            out.is_empty(),
            regex_reply,
            regex_privat,
            regex_message_id,
            cc_via,
            log_level,
            non_participants,
            required,
        )
        else {
            return Err(out);
        };
        let own_addresses = raw
            .adreces_propies
            .iter()
            .chain(std::iter::once(&raw.notificar_errors_from))
            .map(|a| identity.canonical(&app::bare_address(a)))
            .filter(|a| !a.is_empty())
            .collect();
        Ok(Settings {
            app: app::Settings {
                filters,
                classify,
                rules,
                identity,
                regex_reply,
                regex_privat,
                regex_message_id,
                cc_via,
                time_zone,
                own_addresses,
                equip_resolutor_nous: raw.equip_resolutor_nous.clone(),
                usuari_extern: raw.usuari_extern.trim().to_string(),
                notificar_comentaris_afegits: raw.notificar_comentaris_afegits,
                netejar_mail_nou: raw.netejar_mail_nou,
                netejar_mail_reply: raw.netejar_mail_reply,
                assignar_data_resolucio_amb_data_creacio: raw
                    .assignar_data_resolucio_amb_data_creacio,
                afegir_solicitants_addicionals_en_cc: raw.afegir_solicitants_addicionals_en_cc,
                directories: raw
                    .directory_order()
                    .iter()
                    .filter_map(|d| app::identity::Source::parse(d))
                    .collect(),
                optional_directories: raw
                    .directoris_opcionals
                    .iter()
                    .filter_map(|d| app::identity::Source::parse(d))
                    .collect(),
                limits: Limits {
                    max_tickets_per_hour: raw.max_tickets_per_hour,
                    deadline: Duration::from_secs(raw.deadline_secs),
                    max_comments_per_ticket_hour: raw.max_comentaris_per_tiquet_hora,
                    mail: raw.limits,
                    max_calls_per_mail: raw.max_calls_per_mail as usize,
                },
                reports: ReportPolicy {
                    enabled: raw.notificar_errors,
                    on_skip: raw.notificar_errors_skip,
                    max_per_hour: raw.max_informes_per_hora,
                    max_quarantined_per_hour: raw.max_quarantena_per_hora,
                },
                trust: app::TrustSettings {
                    agents,
                    non_participants,
                    servers: raw
                        .autenticacio_servidor
                        .iter()
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                    required,
                    reply_to: ReplyToPolicy {
                        forms,
                        trusted_domains: raw.dominis_confiats.clone(),
                        always: raw.confiar_sempre_reply_to,
                    },
                },
            },
            attachments,
            log_level,
        })
    }
}

impl Config {
    /// Non-fatal findings: password-holding files readable by other users.
    pub fn warnings(&self, origin: &Path) -> Vec<Warning> {
        let mut out = Vec::new();
        let base = origin.parent().unwrap_or(Path::new("."));
        let inline_secret = !self.password_soa.is_empty() && self.password_soa_file.is_none()
            || !self.password_gn6.is_empty() && self.password_gn6_file.is_none();
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        if inline_secret {
            files.push(("the configuration".into(), origin.to_path_buf()));
        }
        for (key, f) in [
            ("password_soa_file", &self.password_soa_file),
            ("password_gn6_file", &self.password_gn6_file),
            ("LDAP_PASSWORD_FILE", &self.ldap_password_file),
            ("smtp_password_file", &self.smtp_password_file),
        ] {
            if let Some(f) = f {
                files.push((format!("`{key}`"), base.join(f)));
            }
        }
        for (what, path) in files {
            if readable_by_others(&path) {
                out.push(format!(
                    "{} ({}) holds passwords and is readable by other users: chmod 600 it",
                    path.display(),
                    what
                ));
            }
        }
        out
    }
}

/// A multi-line error (the regex crate's) as one line: its first and last lines.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines.as_slice() {
        [] => "invalid".into(),
        [one] => (*one).to_string(),
        [first, .., last] => format!("{first} {last}"),
    }
}

/// Log level names of the old program (Python `logging`) and of tracing.
pub fn parse_log_level(level: &str) -> Option<tracing::Level> {
    let l = level
        .trim()
        .trim_start_matches("logging.")
        .to_ascii_uppercase();
    Some(match l.as_str() {
        "TRACE" => tracing::Level::TRACE,
        "DEBUG" => tracing::Level::DEBUG,
        "INFO" => tracing::Level::INFO,
        "WARN" | "WARNING" => tracing::Level::WARN,
        "ERROR" | "CRITICAL" | "FATAL" => tracing::Level::ERROR,
        _ => return None,
    })
}

fn regex_error(re: &str, e: &regex::Error) -> String {
    regex_message(re, &e.to_string())
}

/// `regex `RE` does not compile: WHY`, with the last line of the regex crate's text.
fn regex_message(re: &str, msg: &str) -> String {
    let last = msg
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid");
    format!("regex `{re}` does not compile: {}", last.trim())
}

fn looks_like_address(s: &str) -> bool {
    let s = s.trim();
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Checks that an endpoint is an absolute http(s) URL with a host.
pub fn check_url(url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("`{url}` is not an http:// or https:// URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{url}` has no host"));
    }
    Ok(())
}

#[cfg(unix)]
fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o004 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn readable_by_others(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::from_toml(text, Path::new("/etc/m/x.toml")).unwrap()
    }

    fn keys(c: &Config) -> Vec<String> {
        Settings::build(c)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.key)
            .collect()
    }

    #[test]
    fn validation_names_bad_regex_and_url() {
        let c = parse(
            "bus = \"sandbox\"\nequip_resolutor_nous = \"1\"\nregex_reply = \"([\"\n[endpoints]\ngn6 = \"ftp://x\"\n",
        );
        let k = keys(&c);
        assert!(k.iter().any(|k| k == "regex_reply"), "{k:?}");
        assert!(k.iter().any(|k| k == "endpoints.gn6"), "{k:?}");
        let p = &Settings::build(&c).unwrap_err()[0];
        assert!(p.to_string().starts_with("key `"), "{p}");
        assert!(!p.to_string().contains('\n'), "{p}");
    }

    #[test]
    fn production_requires_credentials() {
        let c = parse("equip_resolutor_nous = \"1\"\n");
        assert_eq!(
            keys(&c),
            [
                "username_soa",
                "password_soa",
                "username_gn6",
                "password_gn6",
                "domini"
            ]
        );
    }

    #[test]
    fn checks_use_the_flags_of_the_run() {
        let base = "bus = \"sandbox\"\nequip_resolutor_nous = \"1\"\n";
        assert_eq!(
            keys(&parse(&format!("{base}mails_no_ticket = ['^(']\n"))),
            ["mails_no_ticket"]
        );
        // `valors_defecte` patterns run as `^(?:PATTERN)`, case-insensitive: the check
        // judges that regex, not the bare pattern (which would not compile here).
        let c = parse(&format!(
            "{base}[[valors_defecte]]\norder = ['To']\nmatch = 'a)(b'\ndefaults = {{}}\n"
        ));
        assert!(keys(&c).is_empty(), "{:?}", keys(&c));
        let c = parse(&format!(
            "{base}[[valors_defecte]]\norder = ['To']\nmatch = '('\ndefaults = {{}}\n"
        ));
        assert_eq!(keys(&c), ["valors_defecte[0]"]);
        // A bad attachment-name regex is refused, not dropped.
        let c = parse(&format!("{base}filtrar_attachments_per_nom = ['(']\n"));
        assert_eq!(keys(&c), ["filtrar_attachments_per_nom"]);
    }

    #[test]
    fn log_levels_of_python() {
        assert_eq!(
            parse_log_level("logging.WARNING"),
            Some(tracing::Level::WARN)
        );
        assert_eq!(parse_log_level("debug"), Some(tracing::Level::DEBUG));
        assert_eq!(parse_log_level("LOUD"), None);
    }
}
