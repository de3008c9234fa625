//! The identity REST API in the sandbox (`/gcontrol/rest`), answering from the same
//! people as the simulated Persones service, so the `identitat_digital` directory can
//! be tried without an account. Shapes as in `reference/identity-rest/README.md`:
//! - `POST …/acls/processos` (form `idProces`, any non-empty key) → `{"tokenAcl"}`;
//! - `GET …/externs/persones/{cn}/cn` → `{"commonName", "emailPreferent"}` or 404;
//! - `GET …/externs/identitats/cn?email=A` → `["cn", …]` or 404 when none;
//! - `GET …/externs/identitats?cn=X` → `{"commonName"}` or 404.
//!
//! Every GET needs a `TOKEN` header this simulator handed out (else 401).

use std::path::Path;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use sha2::{Digest, Sha256};

use super::{response, store};

/// Base path of the API (as in UPC's URL).
pub const IDENTITAT_PATH: &str = "/gcontrol/rest";

const TOKEN_PREFIX: &str = "sandbox-";

fn token_for(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{TOKEN_PREFIX}{hex}")
}

fn valid_token(token: &str) -> bool {
    token
        .strip_prefix(TOKEN_PREFIX)
        .is_some_and(|h| h.len() == 24 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `application/x-www-form-urlencoded` / query-string decoding of one value.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(v) => {
                    out.push(v);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<Full<Bytes>> {
    response(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "error": message }))
}

/// Answers one request under [`IDENTITAT_PATH`]; also returns the operation name
/// for the counters.
pub fn handle(
    method: &Method,
    path: &str,
    query: &str,
    token: Option<&str>,
    body: &[u8],
    dir: &Path,
) -> (&'static str, Response<Full<Bytes>>) {
    let rest = path.strip_prefix(IDENTITAT_PATH).unwrap_or("");
    if *method == Method::POST && rest == "/acls/processos" {
        let form = String::from_utf8_lossy(body);
        return (
            "identitat:token",
            match param(&form, "idProces").filter(|k| !k.trim().is_empty()) {
                Some(key) => json(
                    StatusCode::OK,
                    serde_json::json!({ "tokenAcl": token_for(&key) }),
                ),
                None => error(StatusCode::FORBIDDEN, "idProces absent"),
            },
        );
    }
    if *method != Method::GET {
        return (
            "identitat:other",
            error(StatusCode::METHOD_NOT_ALLOWED, "method"),
        );
    }
    if !token.is_some_and(valid_token) {
        return (
            "identitat:unauthorised",
            error(StatusCode::UNAUTHORIZED, "token"),
        );
    }
    let people = match store::list_people(dir) {
        Ok(p) => p,
        Err(e) => {
            return (
                "identitat:error",
                error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            );
        }
    };
    if let Some(cn) = rest
        .strip_prefix("/externs/persones/")
        .and_then(|r| r.strip_suffix("/cn"))
    {
        let cn = percent_decode(cn);
        return (
            "identitat:persona",
            match people.iter().find(|p| p.cn == cn) {
                Some(p) => json(
                    StatusCode::OK,
                    serde_json::json!({
                        "commonName": p.cn,
                        "emailPreferent": p.email_preferent.clone().unwrap_or_default(),
                    }),
                ),
                None => error(StatusCode::NOT_FOUND, "persona"),
            },
        );
    }
    if rest == "/externs/identitats/cn" {
        let email = param(query, "email").unwrap_or_default();
        let cns: Vec<&str> = people
            .iter()
            .filter(|p| !email.trim().is_empty() && p.has_email(&email))
            .map(|p| p.cn.as_str())
            .collect();
        return (
            "identitat:cn_per_email",
            if cns.is_empty() {
                error(StatusCode::NOT_FOUND, "email")
            } else {
                json(StatusCode::OK, serde_json::json!(cns))
            },
        );
    }
    if rest == "/externs/identitats" {
        let cn = param(query, "cn").unwrap_or_default();
        return (
            "identitat:identitat",
            match people.iter().find(|p| p.cn == cn) {
                Some(p) => json(StatusCode::OK, serde_json::json!({ "commonName": p.cn })),
                None => error(StatusCode::NOT_FOUND, "cn"),
            },
        );
    }
    ("identitat:other", error(StatusCode::NOT_FOUND, "path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_decoding() {
        assert!(valid_token(&token_for("clau")));
        assert!(!valid_token("sandbox-xyz"));
        assert_eq!(percent_decode("a%40b.org+x%2"), "a@b.org x%2");
        assert_eq!(param("a=1&email=x%2By%40z", "email").unwrap(), "x+y@z");
    }
}
