//! The watch-mode HTTP endpoint (issue 18): `imap --watch` with `[health] listen`
//! serves `GET /healthz` (200 when OK or WARNING, 503 when CRITICAL or UNKNOWN; the
//! body is the status line) and `GET /metrics` (the Prometheus text format). Anything
//! else is 404 (405 for another method on those paths).
//!
//! Small on purpose: no routing framework, HTTP/1.1 only, at most
//! [`MAX_CONNECTIONS`] connections at once (more are closed at once), each closed
//! after [`CONNECTION_TIME`] whatever it does, and request bodies are never read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::health::{self, Level};
use super::metrics;
use crate::config::Config;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;
/// Longest life of one connection.
pub const CONNECTION_TIME: Duration = Duration::from_secs(10);

/// The answer to one request (status, content type, body).
pub fn answer(method: &Method, path: &str, config: &Config) -> (StatusCode, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let known = matches!(path, "/healthz" | "/metrics");
    if !known {
        return (StatusCode::NOT_FOUND, TEXT, "not found\n".into());
    }
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            "method not allowed\n".into(),
        );
    }
    if path == "/healthz" {
        // The configuration was validated when the watcher started.
        let report = health::assess(config, &[], false);
        let status = match report.status() {
            Level::Ok | Level::Warning => StatusCode::OK,
            Level::Critical | Level::Unknown => StatusCode::SERVICE_UNAVAILABLE,
        };
        return (status, TEXT, format!("{}\n", report.line()));
    }
    match metrics::text(config) {
        Ok(text) => (
            StatusCode::OK,
            prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            text,
        ),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{e}\n")),
    }
}

/// Answers one request. The checks read the journal and the quarantine folder
/// (blocking, and the journal may be busy for up to its wait): they run on the
/// blocking pool, never on the thread that drives the IMAP loop.
async fn respond(req: Request<Incoming>, config: Arc<Config>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let head = method == Method::HEAD;
    let answered = tokio::task::spawn_blocking(move || answer(&method, &path, &config)).await;
    let (status, content_type, body) = answered.unwrap_or_else(|_| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "internal error\n".to_string(),
        )
    });
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Binds `addr` (the caller logs a failure).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, config: Arc<Config>) {
    serve_bounded(listener, config, MAX_CONNECTIONS, CONNECTION_TIME).await;
}

/// [`serve`] with other bounds: at most `max_connections` at once, each closed after
/// `connection_time`.
pub async fn serve_bounded(
    listener: TcpListener,
    config: Arc<Config>,
    max_connections: usize,
    connection_time: Duration,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("health: error acceptant una connexió: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Over the limit: the connection is closed without an answer.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let config = Arc::clone(&config);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let config = Arc::clone(&config);
                async move { Ok::<_, std::convert::Infallible>(respond(req, config).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .max_buf_size(16 * 1024)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(connection_time, conn).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "bus = \"sandbox\"\nstate_dir = \"{}\"\n",
            dir.path().display()
        );
        let config = Config::from_toml(&toml, std::path::Path::new("t.toml")).unwrap();
        let (s, _, body) = answer(&Method::GET, "/healthz", &config);
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(body.starts_with("MAILTOTICKET OK - "), "{body}");
        let (s, ct, body) = answer(&Method::GET, "/metrics", &config);
        assert_eq!(s, StatusCode::OK);
        assert!(ct.starts_with("text/plain; version=0.0.4"));
        assert!(body.contains("mailtoticket_mails_total{outcome=\"success\"} 0"));
        assert_eq!(answer(&Method::GET, "/", &config).0, StatusCode::NOT_FOUND);
        assert_eq!(
            answer(&Method::POST, "/metrics", &config).0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        // Nothing was created by looking.
        assert!(!dir.path().join("journal.sqlite3").exists());
    }
}
