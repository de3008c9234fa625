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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::identity::Person;

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
            "[mails_addicionals]\n\"a@gmail.com\" = \"anna\"\n\
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
            .block_on(lookup_user(&config(), dir, addr))
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
