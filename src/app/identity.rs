//! Use-case side of the identity chain (BEHAVIOUR §4): the pure rules of
//! `crate::domain::identity` around calls to the `IdentityDirectory` port.

use tracing::{debug, info};

use super::Settings;
use crate::domain::identity::{Person, upc_username};
use crate::domain::mail::Mail;
use crate::ports::{IdentityDirectory, PortError};

/// The username for one address, or `Ok(None)` when nobody is found. A directory
/// failure is an `Err`, never a silent "not found": routing a known person to the
/// external user because the bus hiccupped is worse than retrying later.
pub async fn find_username<I: IdentityDirectory>(
    address: &str,
    settings: &Settings,
    directory: &I,
) -> Result<Option<String>, PortError> {
    let rules = &settings.identity;
    let canonical = rules.canonical(address);
    if canonical.is_empty() {
        return Ok(None);
    }
    // 1. mails_addicionals.
    if let Some(user) = rules.alias(&canonical) {
        debug!("{canonical} és a mails_addicionals: {user}");
        return Ok(Some(user.to_string()));
    }
    // 2. Personesv6.
    if let Some(user) = directory_lookup(&canonical, settings, directory).await? {
        return Ok(Some(user));
    }
    // 2b. External LDAP.
    if let Some(user) = ldap_lookup(&canonical, settings).await? {
        return Ok(Some(user));
    }
    // 3. patrons_mail_addicionals.
    if let Some(user) = rules.pattern(&canonical) {
        debug!("{canonical} coincideix amb patrons_mail_addicionals: {user}");
        return Ok(Some(user));
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
) -> Result<Option<String>, PortError> {
    if let Some(cn) = upc_username(canonical)
        && directory.person(cn).await?.is_some()
    {
        debug!("{canonical}: usuari UPC {cn}");
        return Ok(Some(cn.to_string()));
    }
    let cns = directory.persons_by_email(canonical).await?;
    match cns.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
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
            Ok(picked.map(|p| p.cn.clone()))
        }
    }
}

/// Hook for the optional external LDAP directory (`LDAP_SERVER_URL`, search
/// `(mail=ADDRESS)` under `LDAP_BASE_SEARCH`, cn + `@` + the DN's ou).
/// NOT IMPLEMENTED: there is no LDAP client among the crate's dependencies yet, so
/// this step finds nobody and says so in the log when LDAP is configured. An
/// `LdapIdentityDirectory` adapter would plug in here.
async fn ldap_lookup(canonical: &str, settings: &Settings) -> Result<Option<String>, PortError> {
    if settings.config.ldap_server_url.is_some() {
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
