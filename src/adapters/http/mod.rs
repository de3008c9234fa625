//! HTTP transport adapter: POSTs SOAP envelopes over hyper + rustls, one keep-alive
//! connection per host reused for every call of a run.

use std::path::PathBuf;
use std::time::Duration;

/// Transport settings from the configuration.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Extra CA (PEM) trusted besides the web PKI roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            ca_file: None,
        }
    }
}

/// An HTTP answer (any status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Could not get an HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// Timeout, refused, reset...: worth retrying later.
    pub transient: bool,
    pub message: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HttpError {}

/// What the SOAP adapters need from HTTP. Cheap to clone: clones share the
/// connection pool and the counters.
#[allow(async_fn_in_trait)]
pub trait HttpTransport: Clone {
    /// POSTs `body` as `text/xml; charset=utf-8` with a quoted `SOAPAction`.
    async fn post(
        &self,
        url: &str,
        soap_action: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpError>;
    /// Number of HTTP requests sent so far (for the per-mail summary line).
    fn requests(&self) -> usize;
}

/// hyper + hyper-rustls implementation (placeholder until the skeleton issue lands).
#[derive(Debug, Clone)]
pub struct HyperTransport {
    config: TransportConfig,
}

impl HyperTransport {
    pub fn new(config: &TransportConfig) -> Result<HyperTransport, HttpError> {
        Ok(HyperTransport {
            config: config.clone(),
        })
    }
}

impl HttpTransport for HyperTransport {
    async fn post(
        &self,
        url: &str,
        soap_action: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpError> {
        let _ = (url, soap_action, body, &self.config);
        Err(HttpError {
            transient: false,
            message: "not implemented".into(),
        })
    }

    fn requests(&self) -> usize {
        0
    }
}
