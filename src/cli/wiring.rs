//! Composition root (driving side): builds the adapters from the configuration —
//! one HTTP transport shared by both SOAP adapters, and for `bus = "sandbox"` the
//! simulator started in-process on a loopback port.

use std::path::PathBuf;
use std::time::Duration;

use crate::adapters::http::{HttpError, HttpTransport, HyperTransport, TransportConfig};
use crate::adapters::identity_rest::{RestIdentityDirectory, RestSettings};
use crate::adapters::ldap::{LdapDirectory, LdapSettings};
use crate::adapters::mail::AttachmentFilters;
use crate::adapters::retry::Retrying;
use crate::adapters::soap::{
    BusCredentials, Gn6Credentials, SoapIdentityDirectory, SoapTicketSystem,
};
use crate::config::{Bus, Config};
use crate::domain::mail::Mail;
use crate::ports::MailDecoder;
#[cfg(feature = "sandbox")]
use crate::sandbox::{self, RunningSandbox, SandboxConfig};

/// A build without the `sandbox` feature has no simulator: no value of this type exists.
#[cfg(not(feature = "sandbox"))]
#[derive(Debug)]
pub enum RunningSandbox {}

/// GN6 as the MDA reaches it.
pub type Tickets = Retrying<SoapTicketSystem<HyperTransport>>;
/// Persones as the MDA reaches it.
pub type Identity = Retrying<SoapIdentityDirectory<HyperTransport>>;

/// The mail decoder port over the mail adapter, with the configured attachment filters
/// and `[limits] max_mime_depth`.
pub struct Decoder<'a>(pub &'a AttachmentFilters, pub usize);

impl MailDecoder for Decoder<'_> {
    fn decode(&self, raw: &[u8]) -> Mail {
        crate::adapters::mail::parse_limited(raw, self.0, self.1)
    }
}

/// The adapters of one run.
pub struct Services {
    pub transport: HyperTransport,
    /// Read-only calls are retried with backoff on transient faults; mutating calls
    /// never are (the journal and the MTA's retry cover them).
    pub tickets: Tickets,
    pub identity: Identity,
    /// Kept alive while the run lasts (its server is a task of the runtime).
    pub sandbox: Option<RunningSandbox>,
    /// The identity REST API, when the chain uses it.
    pub rest: Option<Retrying<RestIdentityDirectory>>,
    /// The LDAP directory, when the chain uses it.
    pub ldap: Option<LdapDirectory>,
    /// The endpoint URLs in use (for `check`).
    pub gn6_url: String,
    pub persones_url: String,
}

/// The identity chain of one mail (a fresh per-run cache).
pub type Chain<'a> = crate::app::identity::Directories<
    'a,
    Retrying<SoapIdentityDirectory<HyperTransport>>,
    Retrying<RestIdentityDirectory>,
    LdapDirectory,
>;

impl Services {
    /// SOAP calls made so far (for the summary line).
    pub fn soap_calls(&self) -> usize {
        self.transport.requests()
    }

    /// The bus calls made since the last take: service, operation, result, latency
    /// (issue 18; the transport records them, shared by every adapter of the run).
    pub fn take_calls(&self) -> Vec<crate::adapters::telemetry::CallSample> {
        use crate::adapters::http::HttpTransport as _;
        self.transport
            .recorder()
            .map(crate::adapters::telemetry::CallRecorder::take)
            .unwrap_or_default()
    }

    /// The identity directories in the configured order, with an empty cache.
    pub fn directories(&self) -> Chain<'_> {
        crate::app::identity::Directories::new(
            &self.identity,
            self.rest.as_ref(),
            self.ldap.as_ref(),
        )
    }
}

/// The adapters could not be built; the message names the key, the cause is the
/// `source()`.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error("key `bus`: cannot start the sandbox in {}", dir.display())]
    Sandbox {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key `ca_file`")]
    Transport(#[source] HttpError),
    #[error(
        "key `bus`: \"sandbox\" is not available: this build was made without the `sandbox` feature"
    )]
    NoSandbox,
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
}

/// Builds the adapters (must run inside a tokio runtime). Errors name the key.
pub async fn connect(config: &Config) -> Result<Services, WiringError> {
    let (sandbox, gn6_url, persones_url) = match config.bus {
        #[cfg(not(feature = "sandbox"))]
        Bus::Sandbox => {
            return Err(WiringError::NoSandbox);
        }
        #[cfg(feature = "sandbox")]
        Bus::Sandbox => {
            let sb = sandbox::start(SandboxConfig::from_config(config), 0)
                .await
                .map_err(|source| WiringError::Sandbox {
                    dir: config.sandbox_dir(),
                    source,
                })?;
            let (g, p) = (
                config.endpoints.gn6.clone().unwrap_or_else(|| sb.gn6_url()),
                config
                    .endpoints
                    .persones
                    .clone()
                    .unwrap_or_else(|| sb.persones_url()),
            );
            (Some(sb), g, p)
        }
        _ => (None, config.gn6_endpoint(), config.persones_endpoint()),
    };
    let transport = HyperTransport::new(&TransportConfig {
        connect_timeout: Duration::from_secs(config.connect_timeout_secs),
        request_timeout: Duration::from_secs(config.request_timeout_secs),
        ca_file: config.ca_file.clone(),
    })
    .map_err(WiringError::Transport)?;
    let bus = BusCredentials {
        username: config.username_soa.clone(),
        password: config.password_soa.clone(),
    };
    let gn6 = Gn6Credentials {
        username: config.username_gn6.clone(),
        password: config.password_gn6.clone(),
        domini: config.domini.clone(),
    };
    let order = config.directory_order();
    let rest = if order.iter().any(|d| d == "identitat_digital") {
        #[cfg(feature = "sandbox")]
        let simulated = sandbox.as_ref().map(RunningSandbox::identitat_url);
        #[cfg(not(feature = "sandbox"))]
        let simulated: Option<String> = None;
        let base_url = match (&config.identitat_digital_url, simulated) {
            (Some(url), _) => url.clone(),
            (None, Some(url)) => url,
            (None, None) => crate::config::IDENTITAT_DIGITAL_URL.to_string(),
        };
        Some(Retrying::new(RestIdentityDirectory::new(
            transport.clone(),
            RestSettings {
                base_url,
                api_key: config.identitat_digital_apikey.clone().unwrap_or_default(),
                not_found_statuses: config.identitat_digital_no_trobat.clone(),
            },
        )))
    } else {
        None
    };
    let ldap = if order.iter().any(|d| d == "ldap") {
        let tls = crate::adapters::http::tls_client_config(config.ca_file.as_deref())
            .map_err(WiringError::Transport)?;
        Some(
            LdapDirectory::new(LdapSettings {
                url: config.ldap_server_url.clone().unwrap_or_default(),
                bind_dn: config.ldap_bind_user.clone(),
                password: config.ldap_password.clone(),
                base: config.ldap_base_search.clone().unwrap_or_default(),
                starttls: config.ldap_starttls,
                connect_timeout: Duration::from_secs(config.connect_timeout_secs),
                operation_timeout: Duration::from_secs(config.request_timeout_secs),
                tls: std::sync::Arc::new(tls),
            })
            .with_recorder(crate::adapters::http::HttpTransport::recorder(&transport).cloned()),
        )
    } else {
        None
    };
    Ok(Services {
        rest,
        ldap,
        gn6_url: gn6_url.clone(),
        persones_url: persones_url.clone(),
        tickets: Retrying::new(SoapTicketSystem::new(
            transport.clone(),
            gn6_url,
            bus.clone(),
            gn6,
        )),
        identity: Retrying::new(SoapIdentityDirectory::new(
            transport.clone(),
            persones_url,
            bus,
        )),
        transport,
        sandbox,
    })
}

/// A current-thread tokio runtime (one mail, one connection: no threads needed).
pub fn runtime() -> Result<tokio::runtime::Runtime, WiringError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WiringError::Runtime)
}
