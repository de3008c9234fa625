//! HTTP transport adapter: POSTs SOAP envelopes over hyper + rustls, one keep-alive
//! connection per host reused for every call of a run.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Uri;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::HttpInfo;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

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

impl HttpError {
    fn permanent(message: impl Into<String>) -> HttpError {
        HttpError {
            transient: false,
            message: message.into(),
        }
    }

    fn transient(message: impl Into<String>) -> HttpError {
        HttpError {
            transient: true,
            message: message.into(),
        }
    }
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
    /// Number of TCP connections opened so far (0 when the transport cannot tell).
    fn connections(&self) -> usize {
        0
    }
    /// Where the bus calls of the run are recorded (issue 18), if anywhere.
    fn recorder(&self) -> Option<&crate::adapters::telemetry::CallRecorder> {
        None
    }
}

/// Largest SOAP answer accepted; GN6 answers are small, this only stops a runaway server.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

type HyperClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// hyper + hyper-rustls (ring) implementation.
#[derive(Clone)]
pub struct HyperTransport {
    client: HyperClient,
    request_timeout: Duration,
    requests: Arc<AtomicUsize>,
    /// Each bus call of the run: service, operation, result, latency (issue 18).
    calls: crate::adapters::telemetry::CallRecorder,
    /// (local, remote) socket addresses seen in answers: one per TCP connection that
    /// carried a request.
    connections: Arc<Mutex<HashSet<(SocketAddr, SocketAddr)>>>,
}

impl std::fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperTransport")
            .field("request_timeout", &self.request_timeout)
            .field("requests", &self.requests())
            .field("connections", &self.connections())
            .finish()
    }
}

impl HyperTransport {
    /// TCP connections opened so far, per server address.
    pub fn connections_by_peer(&self) -> std::collections::BTreeMap<SocketAddr, usize> {
        let mut out = std::collections::BTreeMap::new();
        if let Ok(seen) = self.connections.lock() {
            for (_, remote) in seen.iter() {
                *out.entry(*remote).or_insert(0) += 1;
            }
        }
        out
    }

    /// Builds the client: TLS verified against the web PKI roots plus `ca_file`, HTTP/1.1
    /// keep-alive with at most one idle connection per host.
    pub fn new(config: &TransportConfig) -> Result<HyperTransport, HttpError> {
        let tls = tls_client_config(config.ca_file.as_deref())?;

        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(HyperTransport {
            client,
            request_timeout: config.request_timeout,
            requests: Arc::new(AtomicUsize::new(0)),
            calls: Default::default(),
            connections: Arc::new(Mutex::new(HashSet::new())),
        })
    }

    async fn send(
        &self,
        uri: Uri,
        soap_action: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpError> {
        let action = HeaderValue::from_str(&format!("\"{soap_action}\""))
            .map_err(|_| HttpError::permanent(format!("SOAPAction invàlida: {soap_action}")))?;
        let request = hyper::Request::post(uri)
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", action)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| HttpError::permanent(format!("petició HTTP invàlida: {e}")))?;
        self.exchange(request).await
    }
}

/// The TLS client settings of every outgoing connection (HTTPS, LDAPS/StartTLS):
/// ring, the web PKI roots plus the PEM certificates of `ca_file`.
pub fn tls_client_config(
    ca_file: Option<&std::path::Path>,
) -> Result<rustls::ClientConfig, HttpError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| {
            HttpError::permanent(format!("no es pot llegir ca_file {}: {e}", path.display()))
        })? {
            let cert = cert.map_err(|e| {
                HttpError::permanent(format!("ca_file {} invàlid: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                HttpError::permanent(format!("ca_file {} invàlid: {e}", path.display()))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(HttpError::permanent(format!(
                "ca_file {} no conté cap certificat",
                path.display()
            )));
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| HttpError::permanent(format!("configuració TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Plain HTTP carries the bus password in clear: only allowed to this machine (tests,
/// the local sandbox).
fn check_url(url: &str) -> Result<Uri, HttpError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| HttpError::permanent(format!("URL invàlida '{url}': {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| HttpError::permanent(format!("URL sense host: '{url}'")))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") => {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(uri)
            } else {
                Err(HttpError::permanent(format!(
                    "http:// només es permet cap a localhost; feu servir https:// per a '{url}'"
                )))
            }
        }
        _ => Err(HttpError::permanent(format!(
            "esquema no suportat a '{url}' (cal https://)"
        ))),
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> HttpError {
    let message = error_chain(&e);
    if has_tls_error(&e) {
        return HttpError::permanent(message);
    }
    if e.is_connect() || chain_is_transient(&e) {
        return HttpError::transient(message);
    }
    HttpError::permanent(message)
}

fn classify_hyper(e: &hyper::Error) -> HttpError {
    let message = error_chain(e);
    if e.is_incomplete_message() || e.is_closed() || e.is_canceled() || chain_is_transient(e) {
        HttpError::transient(message)
    } else {
        HttpError::permanent(message)
    }
}

/// The error and its causes. `io::Error` hides a wrapped error from `source()` (it returns
/// the wrapped error's own source), so descend through `get_ref()` for it.
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        out.push(err);
        if out.len() > 16 {
            break;
        }
        cur = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    out
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in causes(e) {
        let s = c.to_string();
        if parts.last() != Some(&s) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

fn has_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e)
        .iter()
        .any(|c| c.downcast_ref::<rustls::Error>().is_some())
}

fn chain_is_transient(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    causes(e).iter().any(|err| {
        let io_transient = err.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | BrokenPipe
                    | TimedOut
                    | UnexpectedEof
                    | NotConnected
                    | AddrNotAvailable
                    | HostUnreachable
                    | NetworkUnreachable
                    | Interrupted
            )
        });
        io_transient
            || err
                .downcast_ref::<hyper::Error>()
                .is_some_and(|h| h.is_incomplete_message() || h.is_closed() || h.is_canceled())
    })
}

impl HttpTransport for HyperTransport {
    async fn post(
        &self,
        url: &str,
        soap_action: &str,
        body: Vec<u8>,
    ) -> Result<HttpResponse, HttpError> {
        let uri = check_url(url)?;
        match tokio::time::timeout(self.request_timeout, self.send(uri, soap_action, body)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::transient(format!(
                "temps d'espera esgotat ({} ms) per a {url}",
                self.request_timeout.as_millis()
            ))),
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }

    fn connections(&self) -> usize {
        self.connections.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn recorder(&self) -> Option<&crate::adapters::telemetry::CallRecorder> {
        Some(&self.calls)
    }
}

/// A plain (non-SOAP) HTTP request, for the REST identity directory.
#[derive(Debug, Clone, Default)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub post: bool,
    pub url: String,
    /// Extra headers (name, value).
    pub headers: Vec<(String, String)>,
    /// `Content-Type` of `body` (POST only).
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl HyperTransport {
    /// Sends any request over the same pool, TLS settings, URL rules and request
    /// timeout as the SOAP calls (counted with them).
    pub async fn request(&self, req: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let uri = check_url(&req.url)?;
        let mut builder = if req.post {
            hyper::Request::post(uri)
        } else {
            hyper::Request::get(uri)
        };
        if let Some(ct) = &req.content_type {
            builder = builder.header(CONTENT_TYPE, ct.as_str());
        }
        for (name, value) in &req.headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| HttpError::permanent(format!("capçalera HTTP invàlida: {name}")))?;
            builder = builder.header(name.as_str(), value);
        }
        let request = builder
            .body(Full::new(Bytes::from(req.body.clone())))
            .map_err(|e| HttpError::permanent(format!("petició HTTP invàlida: {e}")))?;
        let url = &req.url;
        match tokio::time::timeout(self.request_timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(HttpError::transient(format!(
                "temps d'espera esgotat ({} ms) per a {url}",
                self.request_timeout.as_millis()
            ))),
        }
    }

    async fn exchange(
        &self,
        request: hyper::Request<Full<Bytes>>,
    ) -> Result<HttpResponse, HttpError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self.client.request(request).await.map_err(classify)?;
        if let (Some(info), Ok(mut seen)) = (
            response.extensions().get::<HttpInfo>(),
            self.connections.lock(),
        ) {
            seen.insert((info.local_addr(), info.remote_addr()));
        }
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| match e.downcast::<hyper::Error>() {
                Ok(h) => classify_hyper(&h),
                Err(other) => HttpError::permanent(format!("resposta HTTP rebutjada: {other}")),
            })?
            .to_bytes()
            .to_vec();
        Ok(HttpResponse { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://[::1]:9/x",
            "https://bus-soa.upc.edu/gN6/GestioTiquetsv5",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://bus-soa.upc.edu/gN6/GestioTiquetsv5",
            "http://10.0.0.1/x",
            "ftp://localhost/x",
            "not a url",
        ] {
            let e = check_url(bad).unwrap_err();
            assert!(!e.transient, "{bad}");
        }
    }

    #[test]
    fn https_client_builds_with_web_roots() {
        let t = HyperTransport::new(&TransportConfig::default()).unwrap();
        assert_eq!(t.requests(), 0);
        assert_eq!(t.connections(), 0);
    }

    #[test]
    fn missing_ca_file_is_a_config_error() {
        let cfg = TransportConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..TransportConfig::default()
        };
        let e = HyperTransport::new(&cfg).unwrap_err();
        assert!(!e.transient);
        assert!(e.message.contains("/nonexistent/ca.pem"));
    }

    #[tokio::test]
    async fn refused_connection_is_transient() {
        // Bind then drop a listener to get a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let t = HyperTransport::new(&TransportConfig::default()).unwrap();
        let e = t
            .post(&format!("http://127.0.0.1:{port}/x"), "urn:X", Vec::new())
            .await
            .unwrap_err();
        assert!(e.transient, "{e}");
        assert_eq!(t.requests(), 1);
    }

    #[tokio::test]
    async fn plain_http_to_remote_host_is_refused_before_sending() {
        let t = HyperTransport::new(&TransportConfig::default()).unwrap();
        let e = t
            .post(
                "http://bus-soa.upc.edu/gN6/GestioTiquetsv5",
                "urn:X",
                Vec::new(),
            )
            .await
            .unwrap_err();
        assert!(!e.transient);
        assert_eq!(t.requests(), 0);
    }

    #[tokio::test]
    async fn connection_closed_mid_answer_is_transient() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            // Promise 1000 bytes, send 5, hang up.
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nhello")
                .await;
        });
        let t = HyperTransport::new(&TransportConfig::default()).unwrap();
        let e = t
            .post(&format!("http://{addr}/x"), "urn:X", b"<x/>".to_vec())
            .await
            .unwrap_err();
        assert!(e.transient, "{e}");
    }

    #[test]
    fn ca_file_without_certificates_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let cfg = TransportConfig {
            ca_file: Some(path),
            ..TransportConfig::default()
        };
        let e = HyperTransport::new(&cfg).unwrap_err();
        assert!(e.message.contains("ca.pem"), "{e}");
    }
}
