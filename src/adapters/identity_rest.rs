//! The identity REST API the old program used from 2019 on ("identitat digital",
//! `../shared/reference/identity-rest/README.md`), as an [`IdentityDirectory`] over
//! the project's HTTPS client:
//! - `POST {base}/acls/processos` (form `idProces` = API key) → `{"tokenAcl": …}`;
//! - `GET {base}/externs/persones/{cn}/cn` (header `TOKEN`) → `{"commonName", "emailPreferent"}`;
//! - `GET {base}/externs/identitats/cn?email=ADDRESS` (header `TOKEN`) → `["cn", …]`.
//!
//! Unknown details are settings or tolerant readings: what "not found" looks like
//! (the HTTP statuses of [`RestSettings::not_found_statuses`], and any empty body,
//! `null`, `[]` or `{}`), and whether the token expires (it is asked once per run and
//! asked again once when an answer is 401/403).
//! Unlike the old client, a failure is never "not found".

use tokio::sync::Mutex;
use tracing::debug;

use super::http::{HttpRequest, HttpResponse, HttpTransport as _, HyperTransport};
use crate::domain::identity::Person;
use crate::ports::{IdentityDirectory, PortError};

/// Header that carries the token.
const TOKEN_HEADER: &str = "TOKEN";

/// Where the API is and how it answers.
#[derive(Clone)]
pub struct RestSettings {
    /// Base URL, e.g. `https://identitatdigital.upc.edu/gcontrol/rest`.
    pub base_url: String,
    /// `identitat_digital_apikey` (the `idProces` of the token request).
    pub api_key: String,
    /// HTTP statuses that mean "nobody" (default 404).
    pub not_found_statuses: Vec<u16>,
}

impl std::fmt::Debug for RestSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestSettings")
            .field("base_url", &self.base_url)
            .field("not_found_statuses", &self.not_found_statuses)
            .finish_non_exhaustive()
    }
}

/// The REST adapter. Keeps its token for the run.
pub struct RestIdentityDirectory {
    transport: HyperTransport,
    settings: RestSettings,
    token: Mutex<Option<String>>,
}

impl std::fmt::Debug for RestIdentityDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestIdentityDirectory")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

enum Answer {
    NotFound,
    Json(serde_json::Value),
}

impl RestIdentityDirectory {
    pub fn new(transport: HyperTransport, settings: RestSettings) -> RestIdentityDirectory {
        RestIdentityDirectory {
            transport,
            settings,
            token: Mutex::new(None),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    async fn new_token(&self) -> Result<String, PortError> {
        let req = HttpRequest {
            post: true,
            url: self.url("/acls/processos"),
            headers: vec![("Accept".into(), "application/json".into())],
            content_type: Some("application/x-www-form-urlencoded".into()),
            body: format!("idProces={}", percent_encode(&self.settings.api_key)).into_bytes(),
        };
        let resp = self.send(&req).await?;
        if !(200..300).contains(&resp.status) {
            return Err(PortError::Transient(format!(
                "identitat digital: el token s'ha denegat (HTTP {})",
                resp.status
            )));
        }
        let value: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
            PortError::Transient(format!(
                "identitat digital: resposta del token il·legible: {e}"
            ))
        })?;
        match value.get("tokenAcl").and_then(|t| t.as_str()) {
            Some(t) if !t.is_empty() => Ok(t.to_string()),
            _ => Err(PortError::Transient(
                "identitat digital: la resposta del token no té tokenAcl".into(),
            )),
        }
    }

    async fn send(&self, req: &HttpRequest) -> Result<HttpResponse, PortError> {
        let started = std::time::Instant::now();
        let result = self
            .transport
            .request(req)
            .await
            .map_err(|e| PortError::Transient(format!("identitat digital: {}", e.message)));
        // Issue 18: recorded with the SOAP calls (`token` or `persona` look-up).
        if let Some(recorder) = self.transport.recorder() {
            use crate::adapters::telemetry::{CallResult, CallSample};
            recorder.record(CallSample {
                service: "identitat_digital",
                operation: if req.post { "token" } else { "consulta" },
                result: match &result {
                    Ok(r) if r.status >= 500 => CallResult::Transient,
                    Ok(r) if r.status == 401 || r.status == 403 => CallResult::Permanent,
                    Ok(_) => CallResult::Ok,
                    Err(e) => CallResult::of::<()>(&Err(e.clone())),
                },
                latency: started.elapsed(),
            });
        }
        result
    }

    /// A GET with the run's token (asked for once, and again once on 401/403).
    async fn get(&self, path_and_query: &str) -> Result<Answer, PortError> {
        let mut token = self.token.lock().await;
        for attempt in 0..2 {
            let current = match token.as_ref() {
                Some(t) => t.clone(),
                None => {
                    let t = self.new_token().await?;
                    *token = Some(t.clone());
                    t
                }
            };
            let req = HttpRequest {
                post: false,
                url: self.url(path_and_query),
                headers: vec![
                    (TOKEN_HEADER.into(), current),
                    ("Accept".into(), "application/json".into()),
                ],
                content_type: None,
                body: Vec::new(),
            };
            let resp = self.send(&req).await?;
            if (resp.status == 401 || resp.status == 403) && attempt == 0 {
                debug!(
                    "identitat digital: token rebutjat (HTTP {}), en demano un altre",
                    resp.status
                );
                *token = None;
                continue;
            }
            return self.read(path_and_query, resp);
        }
        Err(PortError::Transient(
            "identitat digital: el token nou també s'ha rebutjat".into(),
        ))
    }

    fn read(&self, what: &str, resp: HttpResponse) -> Result<Answer, PortError> {
        if self.settings.not_found_statuses.contains(&resp.status) || resp.status == 204 {
            return Ok(Answer::NotFound);
        }
        if !(200..300).contains(&resp.status) {
            return Err(PortError::Transient(format!(
                "identitat digital: {what}: HTTP {}",
                resp.status
            )));
        }
        if resp.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Answer::NotFound);
        }
        let value: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
            PortError::Transient(format!(
                "identitat digital: {what}: resposta il·legible: {e}"
            ))
        })?;
        let empty = match &value {
            serde_json::Value::Null => true,
            serde_json::Value::Array(a) => a.is_empty(),
            serde_json::Value::Object(o) => o.is_empty(),
            _ => false,
        };
        Ok(if empty {
            Answer::NotFound
        } else {
            Answer::Json(value)
        })
    }
}

fn text_field<'a>(value: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    value
        .get(name)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl IdentityDirectory for RestIdentityDirectory {
    async fn person(&self, cn: &str) -> Result<Option<Person>, PortError> {
        let path = format!("/externs/persones/{}/cn", percent_encode(cn));
        match self.get(&path).await? {
            Answer::NotFound => Ok(None),
            Answer::Json(v) if v.is_object() => Ok(Some(Person {
                cn: text_field(&v, "commonName").unwrap_or(cn).to_string(),
                email_preferent: text_field(&v, "emailPreferent").map(str::to_string),
            })),
            Answer::Json(_) => Err(PortError::Transient(format!(
                "identitat digital: {path}: s'esperava un objecte JSON"
            ))),
        }
    }

    async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError> {
        let path = format!("/externs/identitats/cn?email={}", percent_encode(email));
        match self.get(&path).await? {
            Answer::NotFound => Ok(Vec::new()),
            Answer::Json(serde_json::Value::Array(items)) => {
                let mut cns = Vec::new();
                for item in &items {
                    // Documented: strings; an object with a cn is read too.
                    let cn = item
                        .as_str()
                        .map(str::trim)
                        .or_else(|| text_field(item, "commonName"))
                        .or_else(|| text_field(item, "cn"));
                    match cn {
                        Some(cn) if !cn.is_empty() => cns.push(cn.to_string()),
                        _ => {
                            return Err(PortError::Transient(format!(
                                "identitat digital: {path}: element inesperat {item}"
                            )));
                        }
                    }
                }
                Ok(cns)
            }
            Answer::Json(_) => Err(PortError::Transient(format!(
                "identitat digital: {path}: s'esperava una llista JSON"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved() {
        assert_eq!(percent_encode("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(percent_encode("x+y@z.org"), "x%2By%40z.org");
        assert_eq!(percent_encode("a&b=c d/é"), "a%26b%3Dc%20d%2F%C3%A9");
    }
}
