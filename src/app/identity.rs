//! Use-case side of the identity chain (BEHAVIOUR §4): the pure rules of
//! `crate::domain::identity` around calls to the `IdentityDirectory` port.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::Settings;
use crate::domain::identity::{DirectoryEntry, Person, ldap_username, upc_username};
use crate::domain::mail::Mail;
use crate::domain::trust::{self, Authenticity, ReplyToTrust};
use crate::ports::{IdentityDirectory, MailDirectory, PortError};

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
    /// The identity REST API: the `@upc.edu` local part is a cn.
    RestCommonName,
    /// The identity REST API: the only cn with that e-mail.
    RestUniqueEmail,
    /// The identity REST API: one of several cns, by preferred e-mail.
    RestPreferredEmail,
    /// The LDAP directory (first entry's cn + `@` + its DN's ou).
    Ldap,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Found::MailsAddicionals => "mails_addicionals",
            Found::UpcCommonName => "Persones obtenirDadesPersona (usuari @upc.edu)",
            Found::UniqueEmail => "Persones llistaPersones (una sola persona)",
            Found::PreferredEmail => "Persones llistaPersones + emailPreferent (diverses persones)",
            Found::Pattern => "patrons_mail_addicionals",
            Found::RestCommonName => "identitat digital (usuari @upc.edu)",
            Found::RestUniqueEmail => "identitat digital (una sola identitat)",
            Found::RestPreferredEmail => "identitat digital + emailPreferent (diverses identitats)",
            Found::Ldap => "LDAP (cn@ou de la primera entrada)",
        })
    }
}

/// One directory of the chain (`directoris`, BEHAVIOUR §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    MailsAddicionals,
    Persones,
    IdentitatDigital,
    Ldap,
    Patrons,
}

impl Source {
    /// The configuration name (`directoris`).
    pub fn parse(name: &str) -> Option<Source> {
        Some(match name {
            "mails_addicionals" => Source::MailsAddicionals,
            "persones" => Source::Persones,
            "identitat_digital" => Source::IdentitatDigital,
            "ldap" => Source::Ldap,
            "patrons" => Source::Patrons,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Source::MailsAddicionals => "mails_addicionals",
            Source::Persones => "persones",
            Source::IdentitatDigital => "identitat_digital",
            Source::Ldap => "ldap",
            Source::Patrons => "patrons",
        }
    }
}

/// One directory tried for an address (shown by `lookup-user`).
#[derive(Debug, Clone)]
pub struct Attempt {
    pub source: Source,
    /// The username found, nobody, or why the directory failed.
    pub answer: Result<Option<String>, PortError>,
    pub elapsed: Duration,
}

/// The identity chain as the use case asks it: the username of one canonical
/// address, with the step that found it. A failure is an `Err`, never "nobody".
#[allow(async_fn_in_trait)]
pub trait UserLookup {
    async fn lookup(
        &self,
        canonical: &str,
        settings: &Settings,
    ) -> Result<Option<(String, Found)>, PortError>;
}

/// A Personesv6-shaped directory alone is a chain without the optional directories
/// (they are skipped with a warning when configured): what tests and callers that
/// only have the SOAP directory get.
impl<T: IdentityDirectory> UserLookup for T {
    async fn lookup(
        &self,
        canonical: &str,
        settings: &Settings,
    ) -> Result<Option<(String, Found)>, PortError> {
        let chain: Directories<'_, T, NoDirectory, NoDirectory> =
            Directories::new(self, None, None);
        chain.lookup(canonical, settings).await
    }
}

/// Stands for a directory that is not wired (never called).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDirectory;

impl IdentityDirectory for NoDirectory {
    async fn person(&self, _cn: &str) -> Result<Option<Person>, PortError> {
        Err(PortError::Permanent("directori no configurat".into()))
    }
    async fn persons_by_email(&self, _email: &str) -> Result<Vec<String>, PortError> {
        Err(PortError::Permanent("directori no configurat".into()))
    }
}

impl MailDirectory for NoDirectory {
    async fn entries_by_mail(&self, _address: &str) -> Result<Vec<DirectoryEntry>, PortError> {
        Err(PortError::Permanent("directori no configurat".into()))
    }
    async fn probe(&self) -> Result<(), PortError> {
        Err(PortError::Permanent("directori no configurat".into()))
    }
}

/// The directories of one run, composed in the configured order, with a per-run
/// cache: one address is looked up once (the requester, the reply's sender and the
/// Cc additional requesters often repeat it).
pub struct Directories<'a, P, R, L> {
    persones: &'a P,
    rest: Option<&'a R>,
    ldap: Option<&'a L>,
    cache: RefCell<HashMap<String, Option<(String, Found)>>>,
}

impl<'a, P, R, L> Directories<'a, P, R, L>
where
    P: IdentityDirectory,
    R: IdentityDirectory,
    L: MailDirectory,
{
    pub fn new(persones: &'a P, rest: Option<&'a R>, ldap: Option<&'a L>) -> Self {
        Directories {
            persones,
            rest,
            ldap,
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// Every directory tried for `canonical`, in order, up to the first that knows
    /// it (or fails), and the chain's result. Not cached.
    pub async fn lookup_traced(
        &self,
        canonical: &str,
        settings: &Settings,
    ) -> (Vec<Attempt>, Result<Option<(String, Found)>, PortError>) {
        let mut attempts = Vec::new();
        let optional = &settings.optional_directories;
        for &source in &settings.directories {
            let started = Instant::now();
            let answer = match source {
                Source::MailsAddicionals => Ok(settings
                    .identity
                    .alias(canonical)
                    .map(|u| (u.to_string(), Found::MailsAddicionals))),
                Source::Persones => {
                    directory_lookup(canonical, settings, self.persones, false).await
                }
                Source::IdentitatDigital => match self.rest {
                    Some(rest) => directory_lookup(canonical, settings, rest, true).await,
                    None => {
                        warn!("El directori identitat_digital no està disponible: el salto");
                        continue;
                    }
                },
                Source::Ldap => match self.ldap {
                    Some(ldap) => ldap_lookup(canonical, ldap).await,
                    None => {
                        warn!("El directori ldap no està disponible: el salto");
                        continue;
                    }
                },
                Source::Patrons => Ok(settings
                    .identity
                    .pattern(canonical)
                    .map(|u| (u, Found::Pattern))),
            };
            attempts.push(Attempt {
                source,
                answer: answer
                    .as_ref()
                    .map(|found| found.as_ref().map(|(u, _)| u.clone()))
                    .map_err(Clone::clone),
                elapsed: started.elapsed(),
            });
            match answer {
                Ok(Some(found)) => {
                    debug!("{canonical}: {} ({})", found.0, source.name());
                    return (attempts, Ok(Some(found)));
                }
                Ok(None) => {}
                Err(e) if optional.contains(&source) => {
                    warn!(
                        "El directori {} ha fallat per {canonical} i és opcional: el salto ({e})",
                        source.name()
                    );
                }
                Err(e) => return (attempts, Err(e)),
            }
        }
        debug!("No trobo cap usuari per {canonical}");
        (attempts, Ok(None))
    }
}

impl<P, R, L> UserLookup for Directories<'_, P, R, L>
where
    P: IdentityDirectory,
    R: IdentityDirectory,
    L: MailDirectory,
{
    async fn lookup(
        &self,
        canonical: &str,
        settings: &Settings,
    ) -> Result<Option<(String, Found)>, PortError> {
        if let Some(known) = self.cache.borrow().get(canonical) {
            debug!("{canonical}: resposta ja coneguda en aquesta execució");
            return Ok(known.clone());
        }
        let (_, result) = self.lookup_traced(canonical, settings).await;
        // A failure is not remembered: it ends the mail anyway (or is retried by a
        // caller that can go on without the answer).
        if let Ok(found) = &result {
            self.cache
                .borrow_mut()
                .insert(canonical.to_string(), found.clone());
        }
        result
    }
}

/// The username for one address, or `Ok(None)` when nobody is found. A directory
/// failure is an `Err`, never a silent "not found": routing a known person to the
/// external user because the bus hiccupped is worse than retrying later.
pub async fn find_username<I: UserLookup>(
    address: &str,
    settings: &Settings,
    directory: &I,
) -> Result<Option<String>, PortError> {
    Ok(find_username_and_step(address, settings, directory)
        .await?
        .map(|(user, _)| user))
}

/// As [`find_username`], also telling which step of the chain found it.
pub async fn find_username_and_step<I: UserLookup>(
    address: &str,
    settings: &Settings,
    directory: &I,
) -> Result<Option<(String, Found)>, PortError> {
    let canonical = settings.identity.canonical(address);
    if canonical.is_empty() {
        return Ok(None);
    }
    directory.lookup(&canonical, settings).await
}

/// The LDAP step: the first entry with that mail gives cn + `@` + the ou of its DN.
async fn ldap_lookup<L: MailDirectory>(
    canonical: &str,
    ldap: &L,
) -> Result<Option<(String, Found)>, PortError> {
    let entries = ldap.entries_by_mail(canonical).await?;
    if entries.len() > 1 {
        info!(
            "{canonical} és a {} entrades LDAP: faig servir la primera",
            entries.len()
        );
    }
    let Some(first) = entries.first() else {
        return Ok(None);
    };
    match ldap_username(first) {
        Some(user) => Ok(Some((user, Found::Ldap))),
        None => {
            warn!(
                "L'entrada LDAP {} de {canonical} no té cn o el seu DN no té ou",
                first.dn
            );
            Ok(None)
        }
    }
}

/// The Personesv6 step: a `@upc.edu` local part that is a person's cn; else the
/// persons listed for the address (one → it; several → the one whose preferred
/// address is this one). A `@upc.edu` address whose local part is not a cn (an
/// alias such as `nom.cognom2@upc.edu`) still goes through the address search.
async fn directory_lookup<I: IdentityDirectory>(
    canonical: &str,
    settings: &Settings,
    directory: &I,
    rest: bool,
) -> Result<Option<(String, Found)>, PortError> {
    let (by_cn, unique, preferred) = if rest {
        (
            Found::RestCommonName,
            Found::RestUniqueEmail,
            Found::RestPreferredEmail,
        )
    } else {
        (
            Found::UpcCommonName,
            Found::UniqueEmail,
            Found::PreferredEmail,
        )
    };
    if let Some(cn) = upc_username(canonical)
        && directory.person(cn).await?.is_some()
    {
        debug!("{canonical}: usuari UPC {cn}");
        return Ok(Some((cn.to_string(), by_cn)));
    }
    let cns = directory.persons_by_email(canonical).await?;
    match cns.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some((one.clone(), unique))),
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
            Ok(picked.map(|p| (p.cn.clone(), preferred)))
        }
    }
}

/// The requester of a mail: the username of its Reply-To address, else of its From
/// address, with the address that gave it.
pub async fn find_requester<I: UserLookup>(
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

/// Who the sender of a mail is, for identity, participants and limits (issue 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderIdentity {
    /// The resolved username; `None` when unknown or when authentication failed.
    pub user: Option<String>,
    /// emailSolicitant of a new ticket: the Reply-To when trusted, else the From.
    pub email: String,
    /// Canonical addresses that speak for the sender: the From, and the Reply-To
    /// when it is trusted.
    pub addresses: Vec<String>,
    pub authenticity: Authenticity,
    /// Why the Reply-To was trusted, when it was.
    pub reply_to: Option<ReplyToTrust>,
}

/// The From's authenticity according to our own MTA (`autenticacio_servidor`).
pub fn sender_authenticity(mail: &Mail, settings: &Settings) -> Authenticity {
    let t = &settings.trust;
    trust::authenticity(
        mail.sender(),
        mail.header_all("Authentication-Results"),
        &t.servers,
        t.required,
    )
}

/// The Reply-To that differs from the From (canonical forms compared), if any.
fn distinct_reply_to<'m>(mail: &'m Mail, settings: &Settings) -> Option<&'m str> {
    let from = settings.identity.canonical(mail.sender());
    mail.reply_to
        .first()
        .map(String::as_str)
        .filter(|r| !r.trim().is_empty() && settings.identity.canonical(r) != from)
}

/// emailSolicitant without asking the directory: the Reply-To when trusted for a
/// reason that needs no lookup, else the From (else the Reply-To of a mail without From).
pub fn email_without_lookup(mail: &Mail, settings: &Settings, auth: &Authenticity) -> String {
    let from = mail.sender();
    match distinct_reply_to(mail, settings) {
        Some(rt)
            if from.is_empty()
                || settings
                    .trust
                    .reply_to
                    .trusted_without_lookup(&settings.identity.canonical(from), auth)
                    .is_some() =>
        {
            rt.to_string()
        }
        _ if from.is_empty() => mail.requester_email().to_string(),
        _ => from.to_string(),
    }
}

/// The sender's identity (issue 10): a From that failed authentication is an unknown
/// sender; the Reply-To gives the identity only when trusted (a form sender, an
/// authenticated From of a trusted domain, the same person as the From, or
/// `confiar_sempre_reply_to`); otherwise the From alone does.
pub async fn resolve_sender<I: UserLookup>(
    mail: &Mail,
    settings: &Settings,
    directory: &I,
    authenticity: &Authenticity,
) -> Result<SenderIdentity, PortError> {
    let canon = |a: &str| settings.identity.canonical(a);
    let from = mail.sender();
    let authenticity = authenticity.clone();
    if authenticity.failed() {
        info!(
            "Autenticació del remitent {from} {}: el tracto com a remitent desconegut",
            authenticity.describe()
        );
        return Ok(SenderIdentity {
            user: None,
            email: from.to_string(),
            addresses: vec![canon(from)],
            authenticity,
            reply_to: None,
        });
    }
    let Some(rt) = distinct_reply_to(mail, settings) else {
        let found = find_requester(mail, settings, directory).await?;
        return Ok(SenderIdentity {
            user: found.map(|(u, _)| u),
            email: mail.requester_email().to_string(),
            addresses: vec![canon(mail.requester_email())],
            authenticity,
            reply_to: None,
        });
    };
    let trusted = |why, user| SenderIdentity {
        user,
        email: rt.to_string(),
        addresses: vec![canon(rt), canon(from)],
        authenticity: authenticity.clone(),
        reply_to: Some(why),
    };
    if let Some(why) = settings
        .trust
        .reply_to
        .trusted_without_lookup(&canon(from), &authenticity)
        .or_else(|| from.is_empty().then_some(ReplyToTrust::Always))
    {
        debug!("Reply-To {rt} de confiança ({why:?})");
        let found = find_requester(mail, settings, directory).await?;
        return Ok(trusted(why, found.map(|(u, _)| u)));
    }
    let from_user = find_username(from, settings, directory).await?;
    if from_user.is_some() {
        let rt_user = find_username(rt, settings, directory).await?;
        if trust::same_person(from_user.as_deref(), rt_user.as_deref()) {
            return Ok(trusted(ReplyToTrust::SamePerson, from_user));
        }
    }
    info!("Reply-To {rt} no és de confiança per a la identitat: faig servir el From {from}");
    if let Some(user) = &from_user {
        info!("Sol·licitant de {from}: {user}");
    }
    Ok(SenderIdentity {
        user: from_user,
        email: from.to_string(),
        addresses: vec![canon(from)],
        authenticity,
        reply_to: None,
    })
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

    /// Counts the calls it gets; knows "ldap@x.org" as an LDAP entry.
    #[derive(Default)]
    struct Counting {
        calls: std::cell::Cell<usize>,
        down: bool,
    }

    impl MailDirectory for Counting {
        async fn entries_by_mail(&self, address: &str) -> Result<Vec<DirectoryEntry>, PortError> {
            self.calls.set(self.calls.get() + 1);
            if self.down {
                return Err(PortError::Transient("ldap down".into()));
            }
            Ok(if address.ends_with("@x.org") {
                vec![DirectoryEntry {
                    dn: "cn=l,ou=unitat,dc=x".into(),
                    cn: vec!["l".into()],
                }]
            } else {
                Vec::new()
            })
        }
        async fn probe(&self) -> Result<(), PortError> {
            Ok(())
        }
    }

    fn settings_with(extra: &str) -> Settings {
        let text = format!(
            "{extra}\nbus = \"sandbox\"\nequip_resolutor_nous = \"1\"\n\
             LDAP_SERVER_URL = \"ldap://127.0.0.1:1\"\nLDAP_BASE_SEARCH = \"dc=x\"\n\
             [mails_addicionals]\n\"a@x.org\" = \"alias\"\n\
             [patrons_mail_addicionals]\n\"^.*@x\\\\.org$\" = \"patro\"\n"
        );
        crate::config::Settings::build(
            &Config::from_toml(&text, std::path::Path::new("t.toml")).unwrap(),
        )
        .unwrap()
        .app
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn chain_follows_the_configured_order() {
        let persones = dir();
        let ldap = Counting::default();
        let chain: Directories<'_, Dir, NoDirectory, Counting> =
            Directories::new(&persones, None, Some(&ldap));
        // old keys only: mails_addicionals, persones, ldap (configured), patrons
        let s = settings_with("");
        assert_eq!(
            s.directories,
            [
                Source::MailsAddicionals,
                Source::Persones,
                Source::Ldap,
                Source::Patrons
            ]
        );
        assert_eq!(
            block(chain.lookup("a@x.org", &s)).unwrap().unwrap().1,
            Found::MailsAddicionals
        );
        assert_eq!(
            block(chain.lookup("b@x.org", &s)).unwrap().unwrap(),
            ("l@unitat".into(), Found::Ldap)
        );
        // patterns first: LDAP is never asked
        let s = settings_with("directoris = [\"patrons\", \"ldap\"]");
        let before = ldap.calls.get();
        let chain: Directories<'_, Dir, NoDirectory, Counting> =
            Directories::new(&persones, None, Some(&ldap));
        assert_eq!(
            block(chain.lookup("c@x.org", &s)).unwrap().unwrap().1,
            Found::Pattern
        );
        assert_eq!(ldap.calls.get(), before);
        // a directory left out is not asked: joan.puig is in Persones only
        assert_eq!(block(chain.lookup("joan.puig@upc.edu", &s)).unwrap(), None);
        let (attempts, _) = block(chain.lookup_traced("joan.puig@upc.edu", &s));
        let names: Vec<&str> = attempts.iter().map(|a| a.source.name()).collect();
        assert_eq!(names, ["patrons", "ldap"]);
    }

    #[test]
    fn one_lookup_per_address_per_run_and_failures_are_not_cached() {
        let persones = dir();
        let ldap = Counting::default();
        let s = settings_with("directoris = [\"ldap\"]");
        let chain: Directories<'_, Dir, NoDirectory, Counting> =
            Directories::new(&persones, None, Some(&ldap));
        for _ in 0..3 {
            assert_eq!(
                block(chain.lookup("b@x.org", &s)).unwrap().unwrap().0,
                "l@unitat"
            );
            assert_eq!(block(chain.lookup("nobody@y.org", &s)).unwrap(), None);
        }
        assert_eq!(ldap.calls.get(), 2, "one call per address");
        // a new run (a new chain) asks again
        let chain: Directories<'_, Dir, NoDirectory, Counting> =
            Directories::new(&persones, None, Some(&ldap));
        block(chain.lookup("b@x.org", &s)).unwrap();
        assert_eq!(ldap.calls.get(), 3);
        let down = Counting {
            down: true,
            ..Counting::default()
        };
        let chain: Directories<'_, Dir, NoDirectory, Counting> =
            Directories::new(&persones, None, Some(&down));
        assert!(
            block(chain.lookup("b@x.org", &s))
                .unwrap_err()
                .is_transient()
        );
        assert!(block(chain.lookup("b@x.org", &s)).is_err());
        assert_eq!(down.calls.get(), 2);
    }
}
