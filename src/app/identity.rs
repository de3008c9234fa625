//! Use-case side of the identity chain (BEHAVIOUR §4): the pure rules of
//! `crate::domain::identity` around calls to the `IdentityDirectory` port.

use tracing::{debug, info};

use super::Settings;
use crate::domain::identity::{Person, upc_username};
use crate::domain::mail::Mail;
use crate::ports::{IdentityDirectory, PortError};

/// Which step of the chain found a username (shown by `lookup-user`, the old
/// `buscamail`).
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
    Pattern,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Found::MailsAddicionals => "mails_addicionals",
            Found::UpcCommonName => "Persones obtenirDadesPersona (usuari @upc.edu)",
            Found::UniqueEmail => "Persones llistaPersones (una sola persona)",
            Found::PreferredEmail => "Persones llistaPersones + emailPreferent (diverses persones)",
            Found::Pattern => "patrons_mail_addicionals",
        })
    }
}

/// The username for one address, or `Ok(None)` when nobody is found. A directory
/// failure is an `Err`, never a silent "not found": routing a known person to the
/// external user because the bus hiccupped is worse than retrying later.
pub async fn find_username<I: IdentityDirectory>(
    address: &str,
    settings: &Settings,
    directory: &I,
) -> Result<Option<String>, PortError> {
    Ok(find_username_and_step(address, settings, directory)
        .await?
        .map(|(user, _)| user))
}

/// As [`find_username`], also telling which step of the chain found it.
pub async fn find_username_and_step<I: IdentityDirectory>(
    address: &str,
    settings: &Settings,
    directory: &I,
) -> Result<Option<(String, Found)>, PortError> {
    let rules = &settings.identity;
    let canonical = rules.canonical(address);
    if canonical.is_empty() {
        return Ok(None);
    }
    // 1. mails_addicionals.
    if let Some(user) = rules.alias(&canonical) {
        debug!("{canonical} és a mails_addicionals: {user}");
        return Ok(Some((user.to_string(), Found::MailsAddicionals)));
    }
    // 2. Personesv6.
    if let Some(found) = directory_lookup(&canonical, settings, directory).await? {
        return Ok(Some(found));
    }
    // 2b. External LDAP.
    if let Some(user) = ldap_lookup(&canonical, settings).await? {
        return Ok(Some((user, Found::UniqueEmail)));
    }
    // 3. patrons_mail_addicionals.
    if let Some(user) = rules.pattern(&canonical) {
        debug!("{canonical} coincideix amb patrons_mail_addicionals: {user}");
        return Ok(Some((user, Found::Pattern)));
    }
    debug!("No trobo cap usuari per {canonical}");
    Ok(None)
}

/// The Personesv6 step: a `@upc.edu` local part that is a person's cn; else the
/// persons listed for the address (one → it; several → the one whose preferred
/// address is this one). A `@upc.edu` address whose local part is not a cn (an
/// alias such as `nom.cognom2@upc.edu`) still goes through the address search.
async fn directory_lookup<I: IdentityDirectory>(
    canonical: &str,
    settings: &Settings,
    directory: &I,
) -> Result<Option<(String, Found)>, PortError> {
    if let Some(cn) = upc_username(canonical)
        && directory.person(cn).await?.is_some()
    {
        debug!("{canonical}: usuari UPC {cn}");
        return Ok(Some((cn.to_string(), Found::UpcCommonName)));
    }
    let cns = directory.persons_by_email(canonical).await?;
    match cns.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((one.clone(), Found::UniqueEmail))),
        several => {
            let mut persons: Vec<Person> = Vec::with_capacity(several.len());
            for cn in several {
                if let Some(p) = directory.person(cn).await? {
                    persons.push(p);
                }
            }
            let picked = settings.identity.pick(canonical, &persons);
            if picked.is_none() {
                info!(
                    "{canonical} correspon a {} persones i cap no la té com a adreça preferent",
                    several.len()
                );
            }
            Ok(picked.map(|p| (p.cn.clone(), Found::PreferredEmail)))
        }
    }
}

/// Hook for the optional external LDAP directory (`LDAP_SERVER_URL`, search
/// `(mail=ADDRESS)` under `LDAP_BASE_SEARCH`, cn + `@` + the DN's ou).
/// NOT IMPLEMENTED: there is no LDAP client among the crate's dependencies yet, so
/// this step finds nobody and says so in the log when LDAP is configured. An
/// `LdapIdentityDirectory` adapter would plug in here.
async fn ldap_lookup(canonical: &str, settings: &Settings) -> Result<Option<String>, PortError> {
    if settings.ldap_configured {
        debug!("LDAP configurat però no implementat: no busco {canonical}");
    }
    Ok(None)
}

/// The requester of a mail: the username of its Reply-To address, else of its From
/// address, with the address that gave it.
pub async fn find_requester<I: IdentityDirectory>(
    mail: &Mail,
    settings: &Settings,
    directory: &I,
) -> Result<Option<(String, String)>, PortError> {
    let mut tried: Vec<&str> = Vec::new();
    for address in [mail.reply_to.first(), mail.from.first()]
        .into_iter()
        .flatten()
    {
        if address.is_empty() || tried.contains(&address.as_str()) {
            continue;
        }
        tried.push(address);
        if let Some(user) = find_username(address, settings, directory).await? {
            info!("Sol·licitant de {address}: {user}");
            return Ok(Some((user, address.clone())));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// (cn, preferred e-mail, other e-mails); `down` makes every call fail.
    struct Dir {
        people: Vec<(&'static str, &'static str, Vec<&'static str>)>,
        down: bool,
    }

    impl IdentityDirectory for Dir {
        async fn person(&self, cn: &str) -> Result<Option<Person>, PortError> {
            if self.down {
                return Err(PortError::Transient("down".into()));
            }
            Ok(self.people.iter().find(|p| p.0 == cn).map(|p| Person {
                cn: p.0.into(),
                email_preferent: Some(p.1.into()),
            }))
        }
        async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError> {
            if self.down {
                return Err(PortError::Transient("down".into()));
            }
            Ok(self
                .people
                .iter()
                .filter(|p| p.1 == email || p.2.contains(&email))
                .map(|p| p.0.to_string())
                .collect())
        }
    }

    fn config() -> Config {
        Config::from_toml(
            "bus = \"sandbox\"\nequip_resolutor_nous = \"1\"\n\
             [mails_addicionals]\n\"a@gmail.com\" = \"anna\"\n\
             [patrons_mail_addicionals]\n\"^(.*)@estudiant\\\\.upc\\\\.edu$\" = \"%s\"\n\
             \"^.*@extern\\\\.org$\" = \"extern\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    fn run(dir: &Dir, addr: &str) -> Result<Option<(String, Found)>, PortError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(find_username_and_step(
                addr,
                &crate::config::Settings::build(&config()).unwrap().app,
                dir,
            ))
    }

    fn dir() -> Dir {
        Dir {
            people: vec![
                ("joan.puig", "joan.puig@upc.edu", vec![]),
                ("maria", "maria@cs.upc.edu", vec!["shared@upc.edu"]),
                (
                    "pere",
                    "pere@upc.edu",
                    vec!["shared@upc.edu", "pere@gmail.com"],
                ),
            ],
            down: false,
        }
    }

    #[test]
    fn each_step_is_named() {
        let d = dir();
        assert_eq!(
            run(&d, "A@Gmail.com").unwrap().unwrap(),
            ("anna".into(), Found::MailsAddicionals)
        );
        assert_eq!(
            run(&d, "joan.puig@upc.edu").unwrap().unwrap(),
            ("joan.puig".into(), Found::UpcCommonName)
        );
        assert_eq!(
            run(&d, "pere@gmail.com").unwrap().unwrap(),
            ("pere".into(), Found::UniqueEmail)
        );
        // .upc.es → .upc.edu and @lsi → @cs before looking up
        assert_eq!(
            run(&d, "maria@lsi.upc.es").unwrap().unwrap(),
            ("maria".into(), Found::UniqueEmail)
        );
        assert_eq!(
            run(&d, "x.y@estudiant.upc.edu").unwrap().unwrap().0,
            "x.y",
            "%s takes the first group"
        );
        assert_eq!(run(&d, "z@extern.org").unwrap().unwrap().0, "extern");
        assert_eq!(run(&d, "nobody@example.org").unwrap(), None);
    }

    #[test]
    fn several_persons_resolved_by_preferred_email_or_none() {
        let mut d = dir();
        d.people.push(("shared", "shared@upc.edu", vec![]));
        // "shared" the person is found first as an @upc.edu common name
        assert_eq!(
            run(&d, "shared@upc.edu").unwrap().unwrap().1,
            Found::UpcCommonName
        );
        let d = dir();
        // two persons list the address, neither prefers it: nobody
        assert_eq!(run(&d, "shared@upc.edu").unwrap(), None);
        let d = Dir {
            people: vec![
                ("a1", "other@x.org", vec!["dup@x.org"]),
                ("a2", "dup@x.org", vec![]),
            ],
            down: false,
        };
        assert_eq!(
            run(&d, "dup@x.org").unwrap().unwrap(),
            ("a2".into(), Found::PreferredEmail)
        );
    }

    #[test]
    fn directory_failure_is_not_not_found() {
        let d = Dir {
            people: vec![],
            down: true,
        };
        assert!(run(&d, "someone@example.org").unwrap_err().is_transient());
        // the static map needs no directory
        assert_eq!(run(&d, "a@gmail.com").unwrap().unwrap().0, "anna");
    }
}
