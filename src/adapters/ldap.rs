//! LDAP identity directory (BEHAVIOUR §4, the optional step): ldap3 over tokio,
//! `ldap://` (optionally upgraded with StartTLS) or `ldaps://`, both on rustls with the
//! same roots as the HTTPS client. One connection per look-up: a mail needs at most a
//! few, and the use case caches the answers of one run.

use std::sync::Arc;
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use tracing::debug;

use crate::domain::identity::DirectoryEntry;
use crate::ports::{MailDirectory, PortError};

/// How to reach and query the directory (from `LDAP_*` and the timeouts).
#[derive(Clone)]
pub struct LdapSettings {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Bind DN; `None` = anonymous (no bind request).
    pub bind_dn: Option<String>,
    pub password: Option<String>,
    /// Search base (`LDAP_BASE_SEARCH`).
    pub base: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    pub starttls: bool,
    pub connect_timeout: Duration,
    /// Limit of each operation (bind, search).
    pub operation_timeout: Duration,
    /// TLS settings for `ldaps://` and StartTLS.
    pub tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for LdapSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("LdapSettings")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("base", &self.base)
            .field("starttls", &self.starttls)
            .finish_non_exhaustive()
    }
}

/// Most entries read for one address: §4 takes the first, a few more only show that
/// the address is shared.
const MAX_ENTRIES: i32 = 10;

/// LDAP result codes this adapter names in its messages.
const RC_SIZE_LIMIT_EXCEEDED: u32 = 4;
const RC_INVALID_CREDENTIALS: u32 = 49;

/// The LDAP adapter.
#[derive(Debug, Clone)]
pub struct LdapDirectory {
    settings: LdapSettings,
    /// Where each look-up is recorded for the metrics (issue 18), when the run keeps them.
    recorder: Option<crate::adapters::telemetry::CallRecorder>,
}

impl LdapDirectory {
    pub fn new(settings: LdapSettings) -> LdapDirectory {
        LdapDirectory {
            settings,
            recorder: None,
        }
    }

    /// Records every look-up (`service="ldap"`, `operation="search"`) with the run's
    /// other bus calls.
    pub fn with_recorder(
        mut self,
        recorder: Option<crate::adapters::telemetry::CallRecorder>,
    ) -> LdapDirectory {
        self.recorder = recorder;
        self
    }

    /// A connected, bound handle.
    async fn connect(&self) -> Result<ldap3::Ldap, PortError> {
        let s = &self.settings;
        let starttls = s.starttls && s.url.to_ascii_lowercase().starts_with("ldap://");
        let conn_settings = LdapConnSettings::new()
            .set_conn_timeout(s.connect_timeout)
            .set_starttls(starttls)
            .set_config(s.tls.clone());
        let (conn, mut ldap) = LdapConnAsync::with_settings(conn_settings, &s.url)
            .await
            .map_err(|e| failed(&format!("no puc connectar amb {}", s.url), &e))?;
        ldap3::drive!(conn);
        if let Some(dn) = s.bind_dn.as_deref().filter(|d| !d.is_empty()) {
            let result = ldap
                .with_timeout(s.operation_timeout)
                .simple_bind(dn, s.password.as_deref().unwrap_or(""))
                .await
                .map_err(|e| failed(&format!("bind a {}", s.url), &e))?;
            if result.rc != 0 {
                let what = if result.rc == RC_INVALID_CREDENTIALS {
                    "credencials refusades"
                } else {
                    "refusat"
                };
                return Err(PortError::Transient(format!(
                    "LDAP {}: bind com a {dn} {what} (rc={} {})",
                    s.url, result.rc, result.text
                )));
            }
        }
        Ok(ldap)
    }
}

/// Every LDAP failure is "the directory failed" (a temporary failure for the MTA):
/// never an empty answer.
fn failed(what: &str, e: &LdapError) -> PortError {
    PortError::Transient(format!("LDAP: {what}: {e}"))
}

impl MailDirectory for LdapDirectory {
    async fn entries_by_mail(&self, address: &str) -> Result<Vec<DirectoryEntry>, PortError> {
        let started = std::time::Instant::now();
        let result = self.search_by_mail(address).await;
        if let Some(recorder) = &self.recorder {
            use crate::adapters::telemetry::{CallResult, CallSample};
            recorder.record(CallSample {
                service: "ldap",
                operation: "search",
                result: CallResult::of(&result),
                latency: started.elapsed(),
            });
        }
        result
    }

    async fn probe(&self) -> Result<(), PortError> {
        let mut ldap = self.connect().await?;
        let _ = ldap.unbind().await;
        Ok(())
    }
}

impl LdapDirectory {
    /// Connect, bind, search `(mail=…)`, unbind.
    async fn search_by_mail(&self, address: &str) -> Result<Vec<DirectoryEntry>, PortError> {
        let s = &self.settings;
        let mut ldap = self.connect().await?;
        // RFC 4515: `*`, `(`, `)`, `\` and NUL in the value are escaped, so an address
        // like `*)(mail=*` is looked up literally and matches nobody.
        let filter = format!("(mail={})", ldap3::ldap_escape(address));
        let answer = ldap
            .with_timeout(s.operation_timeout)
            .with_search_options(SearchOptions::new().sizelimit(MAX_ENTRIES))
            .search(&s.base, Scope::Subtree, &filter, vec!["cn"])
            .await
            .map_err(|e| failed(&format!("cerca {filter} a {}", s.base), &e));
        let _ = ldap.unbind().await;
        let ldap3::SearchResult(entries, result) = answer?;
        if result.rc != 0 && result.rc != RC_SIZE_LIMIT_EXCEEDED {
            return Err(PortError::Transient(format!(
                "LDAP {}: la cerca {filter} a {} ha fallat (rc={} {})",
                s.url, s.base, result.rc, result.text
            )));
        }
        let entries: Vec<DirectoryEntry> = entries
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(|e| {
                let e = SearchEntry::construct(e);
                let cn = e
                    .attrs
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("cn"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                DirectoryEntry { dn: e.dn, cn }
            })
            .collect();
        debug!("LDAP {filter}: {} entrades", entries.len());
        Ok(entries)
    }
}
