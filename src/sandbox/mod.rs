//! The sandbox bus: a stateful GN6 + Persones simulator speaking the same SOAP over
//! HTTP, used as `bus = "sandbox"`, by `mailtoticket sandbox serve`, tests and benchmarks.
//!
//! Routes (all on 127.0.0.1):
//! - `POST /gN6/GestioTiquetsv5`, `POST /GestioIdentitat/Personesv6`: SOAP 1.1 (WIRE.md);
//! - `GET <endpoint>?wsdl`: the vendored WSDL, its `soap:address` pointing here;
//! - `GET /tiquetsusuaris/control/file?fileId=N`: an attachment's bytes;
//! - `GET /sandbox/stats`: the counters as text (not counted themselves), for
//!   benchmarks that run the simulator in another process.
//!
//! State lives in [`SandboxConfig::dir`] (see `store`), so several simulators and the
//! CLI may share one folder.

mod identitat;
mod show;
mod soap;
mod store;
mod xml;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use show::{format_people, format_ticket, format_ticket_list};
pub use soap::format_time;
pub use store::{
    SimAttachment, SimComment, SimPerson, SimTicket, TicketSummary, add_person, close_ticket,
    default_dir, list_people, list_tickets, load_attachment, load_ticket,
};

/// Path of the GN6 endpoint.
pub const GN6_PATH: &str = "/gN6/GestioTiquetsv5";
/// Path of the Persones endpoint.
pub const PERSONES_PATH: &str = "/GestioIdentitat/Personesv6";
/// Path of attachment downloads (`?fileId=N`), as in GN6's web.
pub const FILE_PATH: &str = "/tiquetsusuaris/control/file";
/// Path of the counters (text).
pub const STATS_PATH: &str = "/sandbox/stats";

const GN6_WSDL: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/wsdl/GestioTiquetsv5.wsdl"
));
const PERSONES_WSDL: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/wsdl/Personesv6.wsdl"));

/// What the simulator accepts and how it behaves.
#[derive(Clone)]
pub struct SandboxConfig {
    /// State folder (tickets, people, attachments); safe for concurrent processes.
    pub dir: PathBuf,
    /// Credentials the simulator accepts (as GN6 and the bus would check them).
    pub username_soa: String,
    pub password_soa: String,
    pub username_gn6: String,
    pub password_gn6: String,
    pub domini: String,
    /// A closed ticket stays closed when reopened after this many days.
    pub reopen_period_days: i64,
}

/// Reopening period of the simulator: a closed ticket stays closed when a reply
/// comes after this many days.
pub const DEFAULT_REOPEN_PERIOD_DAYS: i64 = 30;

impl SandboxConfig {
    /// The simulator a configuration talks to with `bus = "sandbox"` (the one
    /// constructor, used by the binary and the tests): it accepts that configuration's
    /// own credentials, keeps its state in `sandbox_dir` (default: `sandbox` in the
    /// state folder) and uses [`DEFAULT_REOPEN_PERIOD_DAYS`].
    pub fn from_config(config: &crate::config::Config) -> SandboxConfig {
        SandboxConfig {
            dir: config.sandbox_dir(),
            username_soa: config.username_soa.clone(),
            password_soa: config.password_soa.clone(),
            username_gn6: config.username_gn6.clone(),
            password_gn6: config.password_gn6.clone(),
            domini: config.domini.clone(),
            reopen_period_days: DEFAULT_REOPEN_PERIOD_DAYS,
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("dir", &self.dir)
            .field("username_soa", &self.username_soa)
            .field("username_gn6", &self.username_gn6)
            .field("domini", &self.domini)
            .field("reopen_period_days", &self.reopen_period_days)
            .finish_non_exhaustive()
    }
}

/// What the simulator has seen since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxStats {
    /// TCP connections accepted.
    pub connections: u64,
    /// HTTP requests of any kind (except `GET /sandbox/stats`).
    pub http_requests: u64,
    /// Requests by SOAP operation name (`AltaTiquet`, `llistaPersones`...), plus `wsdl`
    /// for WSDL downloads and `file` for attachment downloads.
    pub operations: BTreeMap<String, u64>,
}

impl SandboxStats {
    /// Count of one operation (0 when never seen).
    pub fn operation(&self, name: &str) -> u64 {
        self.operations.get(name).copied().unwrap_or(0)
    }

    /// SOAP requests of every operation (downloads excluded).
    pub fn soap_requests(&self) -> u64 {
        self.operations
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "wsdl" | "file"))
            .map(|(_, v)| v)
            .sum()
    }

    /// `self - earlier`, to measure one run against a long-lived simulator.
    pub fn since(&self, earlier: &SandboxStats) -> SandboxStats {
        let mut operations = BTreeMap::new();
        for (k, v) in &self.operations {
            let d = v.saturating_sub(earlier.operation(k));
            if d > 0 {
                operations.insert(k.clone(), d);
            }
        }
        SandboxStats {
            connections: self.connections.saturating_sub(earlier.connections),
            http_requests: self.http_requests.saturating_sub(earlier.http_requests),
            operations,
        }
    }

    /// Text form served at `/sandbox/stats`: `name count` lines.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "connections {}\nhttp_requests {}\n",
            self.connections, self.http_requests
        );
        for (k, v) in &self.operations {
            out.push_str(&format!("op.{k} {v}\n"));
        }
        out
    }

    /// Parses [`SandboxStats::to_text`]; unknown lines are ignored.
    pub fn from_text(text: &str) -> SandboxStats {
        let mut stats = SandboxStats::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once(' ') else {
                continue;
            };
            let Ok(v) = v.trim().parse::<u64>() else {
                continue;
            };
            match k {
                "connections" => stats.connections = v,
                "http_requests" => stats.http_requests = v,
                _ => {
                    if let Some(op) = k.strip_prefix("op.") {
                        stats.operations.insert(op.to_string(), v);
                    }
                }
            }
        }
        stats
    }
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    http_requests: AtomicU64,
    operations: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    fn count_operation(&self, name: &str) {
        if let Ok(mut ops) = self.operations.lock() {
            *ops.entry(name.to_string()).or_insert(0) += 1;
        }
    }

    fn snapshot(&self) -> SandboxStats {
        SandboxStats {
            connections: self.connections.load(Ordering::Relaxed),
            http_requests: self.http_requests.load(Ordering::Relaxed),
            operations: self
                .operations
                .lock()
                .map(|o| o.clone())
                .unwrap_or_default(),
        }
    }
}

struct Shared {
    config: SandboxConfig,
    counters: Counters,
    gn6_wsdl: String,
    persones_wsdl: String,
}

/// A running simulator. It keeps serving until [`RunningSandbox::shutdown`] or the end
/// of the runtime; dropping this handle does not stop it.
pub struct RunningSandbox {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSandbox {
    /// SOAP endpoint of GN6 GestioTiquets (WSDL at `?wsdl`).
    pub fn gn6_url(&self) -> String {
        format!("http://{}{GN6_PATH}", self.addr)
    }
    /// SOAP endpoint of Persones (WSDL at `?wsdl`).
    pub fn persones_url(&self) -> String {
        format!("http://{}{PERSONES_PATH}", self.addr)
    }
    /// Base URL of the identity REST API simulator (`identitat`).
    pub fn identitat_url(&self) -> String {
        format!("http://{}{}", self.addr, identitat::IDENTITAT_PATH)
    }
    /// Base URL (`http://127.0.0.1:PORT`), e.g. for attachment links.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Counters since start.
    pub fn stats(&self) -> SandboxStats {
        self.shared.counters.snapshot()
    }
    /// The configuration it runs with.
    pub fn config(&self) -> &SandboxConfig {
        &self.shared.config
    }
    /// Stops accepting connections (connections already open finish on their own).
    pub fn shutdown(self) {
        self.task.abort();
    }
    /// Serves until the runtime shuts down (for `mailtoticket sandbox serve`).
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// Starts the simulator on 127.0.0.1:`port` (0 = ephemeral) as a task of the current
/// tokio runtime; returns once it is listening. Creates and seeds the state folder.
pub async fn start(config: SandboxConfig, port: u16) -> io::Result<RunningSandbox> {
    store::ensure(&config.dir)?;
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let shared = Arc::new(Shared {
        gn6_wsdl: point_wsdl_at(GN6_WSDL, &format!("{base}{GN6_PATH}")),
        persones_wsdl: point_wsdl_at(PERSONES_WSDL, &format!("{base}{PERSONES_PATH}")),
        config,
        counters: Counters::default(),
    });
    let task = tokio::spawn(accept_loop(listener, shared.clone()));
    tracing::info!("sandbox: escoltant a {base}");
    Ok(RunningSandbox { addr, shared, task })
}

/// Fetches the counters of a simulator running elsewhere (e.g. `sandbox serve`), over
/// a plain HTTP/1.0 request so that the caller needs no client stack.
pub async fn fetch_stats(addr: SocketAddr) -> io::Result<SandboxStats> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {STATS_PATH} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no HTTP body"))?;
    Ok(SandboxStats::from_text(body))
}

/// Rewrites every `…:address location="…"` of a WSDL to this simulator's endpoint.
fn point_wsdl_at(wsdl: &str, endpoint: &str) -> String {
    match regex::Regex::new(r#"(<(?:[A-Za-z_][\w.-]*:)?address\b[^>]*?\blocation=")[^"]*(")"#) {
        Ok(re) => re
            .replace_all(wsdl, |c: &regex::Captures<'_>| {
                format!("{}{}{}", &c[1], xml::esc(endpoint), &c[2])
            })
            .into_owned(),
        Err(_) => wsdl.to_string(),
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Running out of descriptors is transient; do not spin on it.
                tracing::warn!("sandbox: error acceptant una connexió: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.counters.connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| route(req, shared.clone()));
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("sandbox: connexió acabada amb error: {e}");
            }
        });
    }
}

fn response(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn not_found() -> Response<Full<Bytes>> {
    response(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "Not found\n",
    )
}

async fn route(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if req.method() == Method::GET && path == STATS_PATH {
        let text = shared.counters.snapshot().to_text();
        return Ok(response(StatusCode::OK, "text/plain; charset=utf-8", text));
    }
    shared
        .counters
        .http_requests
        .fetch_add(1, Ordering::Relaxed);
    if path.starts_with(identitat::IDENTITAT_PATH) {
        let method = req.method().clone();
        let token = req
            .headers()
            .get("TOKEN")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let (op, r) = identitat::handle(
            &method,
            &path,
            &query,
            token.as_deref(),
            &body,
            &shared.config.dir,
        );
        shared.counters.count_operation(op);
        return Ok(r);
    }
    let service = match path.as_str() {
        GN6_PATH => Some(soap::Service::Gn6),
        PERSONES_PATH => Some(soap::Service::Persones),
        _ => None,
    };
    match (req.method().clone(), service) {
        (Method::GET, Some(service)) if query.eq_ignore_ascii_case("wsdl") => {
            shared.counters.count_operation("wsdl");
            let wsdl = match service {
                soap::Service::Gn6 => shared.gn6_wsdl.clone(),
                soap::Service::Persones => shared.persones_wsdl.clone(),
            };
            Ok(response(StatusCode::OK, "text/xml; charset=utf-8", wsdl))
        }
        (Method::POST, Some(service)) => {
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    let r = soap::fault("soapenv:Client", &format!("Cos il·legible: {e}"));
                    return Ok(soap_response(r));
                }
            };
            let worker = shared.clone();
            // Parsing a large attachment and writing the state is blocking work.
            let reply = tokio::task::spawn_blocking(move || {
                soap::handle(&worker.config, service, &body, |op| {
                    worker.counters.count_operation(op)
                })
            })
            .await
            .unwrap_or_else(|e| soap::fault("soapenv:Server", &format!("Error intern: {e}")));
            Ok(soap_response(reply))
        }
        (Method::GET, None) if path == FILE_PATH => {
            shared.counters.count_operation("file");
            let id = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "fileId")
                .and_then(|(_, v)| v.parse::<u64>().ok());
            let Some(id) = id else {
                return Ok(not_found());
            };
            let dir = shared.config.dir.clone();
            let bytes = tokio::task::spawn_blocking(move || store::load_attachment(&dir, id))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)));
            Ok(match bytes {
                Ok(Some(b)) => response(StatusCode::OK, "application/octet-stream", b),
                Ok(None) => not_found(),
                Err(e) => response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    format!("{e}\n"),
                ),
            })
        }
        _ => Ok(not_found()),
    }
}

fn soap_response(reply: soap::Reply) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response(status, "text/xml; charset=utf-8", reply.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsdl_address_is_rewritten() {
        let w = r#"<wsdl:port><soap:address location="https://x/y"/></wsdl:port><address location="z"/>"#;
        let out = point_wsdl_at(w, "http://127.0.0.1:9/a?b&c");
        assert_eq!(
            out,
            r#"<wsdl:port><soap:address location="http://127.0.0.1:9/a?b&amp;c"/></wsdl:port><address location="http://127.0.0.1:9/a?b&amp;c"/>"#
        );
    }

    #[test]
    fn stats_text_round_trips() {
        let mut s = SandboxStats {
            connections: 2,
            http_requests: 5,
            ..SandboxStats::default()
        };
        s.operations.insert("AltaTiquet".into(), 1);
        s.operations.insert("wsdl".into(), 2);
        assert_eq!(SandboxStats::from_text(&s.to_text()), s);
        assert_eq!(s.soap_requests(), 1);
        let later = SandboxStats {
            connections: 3,
            ..s.clone()
        };
        assert_eq!(later.since(&s).connections, 1);
        assert!(later.since(&s).operations.is_empty());
    }
}
