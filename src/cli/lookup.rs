//! `lookup-user` (driving side; the old `buscamail`): the identity chain of
//! BEHAVIOUR §4 for one address, telling which step found the username.
//! Interim home until the use case exposes its own chain (`app::identity`).

use crate::config::Config;
use crate::ports::{IdentityDirectory, PortError};

/// Which step of the chain found the username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// `mails_addicionals` map.
    MailsAddicionals,
    /// `@upc.edu` local part is a UPC common name (obtenirDadesPersona).
    UpcCommonName,
    /// The only person with that e-mail (llistaPersones).
    UniqueEmail,
    /// One of several persons, by preferred e-mail (obtenirDadesPersona).
    PreferredEmail,
    /// A `patrons_mail_addicionals` regex.
    Pattern(String),
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::MailsAddicionals => f.write_str("mails_addicionals"),
            Found::UpcCommonName => f.write_str("Persones obtenirDadesPersona (usuari @upc.edu)"),
            Found::UniqueEmail => f.write_str("Persones llistaPersones (una sola persona)"),
            Found::PreferredEmail => {
                f.write_str("Persones llistaPersones + emailPreferent (diverses persones)")
            }
            Found::Pattern(re) => write!(f, "patrons_mail_addicionals `{re}`"),
        }
    }
}

/// Lower case plus the configured rewrites (`.upc.es` → `.upc.edu`, `@lsi` → `@cs`).
pub fn canonical(config: &Config, address: &str) -> String {
    let mut a = address.trim().trim_matches(['<', '>']).to_lowercase();
    for [from, to] in &config.canonical_rewrites {
        if !from.is_empty() {
            a = a.replace(from.as_str(), to);
        }
    }
    a
}

/// Runs the chain. `Ok(None)`: nobody; `Err`: the directory failed (not "not found").
pub async fn lookup_user<I: IdentityDirectory>(
    config: &Config,
    identity: &I,
    address: &str,
) -> Result<Option<(String, Found)>, PortError> {
    let addr = canonical(config, address);
    if let Some(user) = config
        .mails_addicionals
        .iter()
        .find(|(k, _)| canonical(config, k) == addr)
        .map(|(_, v)| v.clone())
    {
        return Ok(Some((user, Found::MailsAddicionals)));
    }
    if let Some(local) = addr.strip_suffix("@upc.edu")
        && !local.is_empty()
        && let Some(p) = identity.person(local).await?
    {
        return Ok(Some((p.cn, Found::UpcCommonName)));
    }
    let cns = identity.persons_by_email(&addr).await?;
    match cns.as_slice() {
        [] => {}
        [one] => return Ok(Some((one.clone(), Found::UniqueEmail))),
        several => {
            for cn in several {
                if let Some(p) = identity.person(cn).await?
                    && p.email_preferent
                        .as_deref()
                        .is_some_and(|e| canonical(config, e) == addr)
                {
                    return Ok(Some((p.cn, Found::PreferredEmail)));
                }
            }
        }
    }
    for (re, value) in config.patterns() {
        let Ok(regex) = regex::Regex::new(&re) else {
            continue;
        };
        if let Some(caps) = regex.captures(&addr) {
            let user = match caps.get(1) {
                Some(g) => value.replace("%s", g.as_str()),
                None => value,
            };
            return Ok(Some((user, Found::Pattern(re))));
        }
    }
    Ok(None)
}
