//! Error report adapter (driven side): mails the run's log and the original mail to
//! the administrators when a mail was not handled (BEHAVIOUR §1), over SMTP (lettre).

use std::time::Duration;

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::Config;
use crate::domain::outcome::Status;

/// Header that marks our own reports (one spelling, in the domain).
pub use crate::domain::outcome::LOOP_HEADER;
/// Subject of every report (the old program's).
pub const SUBJECT: &str = "Informe d'errors de MailToTicket";

/// One report: what happened, this run's log and the mail as received.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub status: Status,
    /// One line: why the mail was not handled.
    pub reason: &'a str,
    pub log: &'a str,
    pub original: &'a [u8],
}

/// Could not send the report (the SMTP or address error is the `source()`).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("TLS per a {host}")]
    Tls {
        host: String,
        #[source]
        source: lettre::transport::smtp::Error,
    },
    #[error("el servidor no respon")]
    NoAnswer,
    #[error("SMTP")]
    Smtp(#[source] lettre::transport::smtp::Error),
    #[error("notificar_errors_from `{address}`")]
    From {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("notificar_errors_to `{address}`")]
    To {
        address: String,
        #[source]
        source: lettre::address::AddressError,
    },
    #[error("sobre")]
    Envelope(#[source] lettre::error::Error),
    /// SMTP AUTH over a connection without TLS (issue 10).
    #[error("{0}")]
    AuthWithoutTls(String),
}

/// Sends error reports.
#[allow(async_fn_in_trait)]
pub trait ErrorReporter {
    async fn send(&self, report: &Report<'_>) -> Result<(), ReportError>;
}

/// SMTP settings of the reports (from the configuration).
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub starttls: bool,
    pub credentials: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
    /// Value of the `X-Mailtoticket-Loop` header (the instance's sender address).
    pub loop_marker: String,
    pub timeout: Duration,
    /// `smtp_permetre_auth_sense_tls`: allow AUTH on a connection without TLS.
    pub allow_auth_without_tls: bool,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SmtpSettings({}:{}, starttls={}, user={:?}, from={}, to={:?})",
            self.host,
            self.port,
            self.starttls,
            self.credentials.as_ref().map(|c| &c.0),
            self.from,
            self.to
        )
    }
}

impl SmtpSettings {
    pub fn from_config(config: &Config) -> SmtpSettings {
        let to = config
            .notificar_errors_to
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let credentials = match (&config.smtp_user, &config.smtp_password) {
            (Some(u), Some(p)) if !u.is_empty() => Some((u.clone(), p.clone())),
            (Some(u), None) if !u.is_empty() => Some((u.clone(), String::new())),
            _ => None,
        };
        SmtpSettings {
            host: config.servidor_mail.clone(),
            port: config.smtp_port(),
            starttls: config.smtp_starttls,
            credentials,
            from: config.notificar_errors_from.clone(),
            to,
            loop_marker: config.notificar_errors_from.clone(),
            timeout: Duration::from_secs(config.connect_timeout_secs.max(1) * 3),
            allow_auth_without_tls: config.smtp_permetre_auth_sense_tls,
        }
    }
}

/// `ErrorReporter` over SMTP.
#[derive(Debug, Clone)]
pub struct SmtpReporter {
    settings: SmtpSettings,
}

impl SmtpReporter {
    pub fn new(settings: SmtpSettings) -> SmtpReporter {
        SmtpReporter { settings }
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, ReportError> {
        let s = &self.settings;
        // Issue 10: the password never crosses the wire in clear unless allowed.
        if let Some(problem) = auth_without_tls(
            s.credentials.is_some(),
            s.starttls,
            s.allow_auth_without_tls,
        ) {
            return Err(ReportError::AuthWithoutTls(problem));
        }
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
            .port(s.port)
            .timeout(Some(s.timeout));
        if s.starttls {
            let params = TlsParameters::new(s.host.clone()).map_err(|source| ReportError::Tls {
                host: s.host.clone(),
                source,
            })?;
            b = b.tls(Tls::Required(params));
        }
        if let Some((u, p)) = &s.credentials {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(b.build())
    }

    /// Asks the server for a greeting and EHLO (used by `check`).
    pub async fn test_connection(&self) -> Result<(), ReportError> {
        match self.transport()?.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(ReportError::NoAnswer),
            Err(e) => Err(ReportError::Smtp(e)),
        }
    }
}

impl ErrorReporter for SmtpReporter {
    async fn send(&self, report: &Report<'_>) -> Result<(), ReportError> {
        let s = &self.settings;
        let from: Address = s.from.parse().map_err(|source| ReportError::From {
            address: s.from.clone(),
            source,
        })?;
        let mut to = Vec::new();
        for t in &s.to {
            to.push(t.parse::<Address>().map_err(|source| ReportError::To {
                address: t.clone(),
                source,
            })?);
        }
        let envelope = Envelope::new(Some(from), to).map_err(ReportError::Envelope)?;
        let now = chrono::Local::now();
        let message = build_message(s, report, &now.to_rfc2822(), &message_id(&s.from, now));
        self.transport()?
            .send_raw(&envelope, &message)
            .await
            .map(|_| ())
            .map_err(ReportError::Smtp)
    }
}

/// The reporter port of the use case: the SMTP reporter plus this run's log, taken
/// from the log sink since `mark` (the start of the mail).
pub struct SmtpReports<'a> {
    pub smtp: SmtpReporter,
    pub sink: &'a crate::adapters::logging::LogSink,
    pub mark: usize,
    /// `notificar_errors_to` as written, for the log line.
    pub to: String,
}

impl crate::ports::Reporter for SmtpReports<'_> {
    fn report<'a>(
        &'a self,
        report: crate::ports::ErrorReport<'a>,
    ) -> crate::ports::PortFuture<'a, Result<String, crate::ports::BoxError>> {
        Box::pin(async move {
            let log = self.sink.captured_since(self.mark);
            let full = Report {
                status: report.status,
                reason: report.reason,
                log: &log,
                original: report.original,
            };
            match self.smtp.send(&full).await {
                Ok(()) => Ok(self.to.clone()),
                Err(e) => Err(Box::new(e) as crate::ports::BoxError),
            }
        })
    }
}

/// Why SMTP AUTH must not be used: credentials over a connection without TLS
/// (`smtp_starttls = false`) and `smtp_permetre_auth_sense_tls` not set.
pub fn auth_without_tls(has_credentials: bool, tls: bool, allowed: bool) -> Option<String> {
    (has_credentials && !tls && !allowed).then(|| {
        "SMTP AUTH sense TLS refusat: la contrasenya aniria en clar (cal smtp_starttls = true, o smtp_permetre_auth_sense_tls = true)".to_string()
    })
}

fn message_id(from: &str, now: chrono::DateTime<chrono::Local>) -> String {
    let domain = from.rsplit_once('@').map_or("localhost", |(_, d)| d);
    format!(
        "<{}.{}.mailtoticket-report@{domain}>",
        now.timestamp_nanos_opt().unwrap_or_default(),
        std::process::id()
    )
}

/// Builds the report: multipart/mixed with the log (text/plain, base64 so that any
/// charset and line length survive any relay) and the original mail untouched as
/// message/rfc822 (RFC 2046 allows only 7bit/8bit there, so it is sent as is with
/// CRLF line ends).
///
/// Why by hand and not lettre's `MultiPart` builder: lettre's `Body` picks a transfer
/// encoding from the content, and for a mail from the internet (lines over 998 bytes,
/// bytes that are not UTF-8) it either re-encodes it (base64/quoted-printable, which
/// RFC 2046 §5.2.1 forbids for message/rfc822 and which would alter the evidence) or
/// refuses `8bit`. The original must reach the administrators byte for byte, so the
/// message is assembled here and handed to lettre's transport as raw bytes.
pub fn build_message(s: &SmtpSettings, r: &Report<'_>, date: &str, message_id: &str) -> Vec<u8> {
    use base64::Engine;
    let boundary = format!(
        "=_mailtoticket_{:x}",
        md5_of(message_id.as_bytes()).wrapping_add(r.original.len() as u128)
    );
    let mut m = String::new();
    let mut h = |name: &str, value: &str| {
        m.push_str(name);
        m.push_str(": ");
        m.push_str(&value.replace(['\r', '\n'], " "));
        m.push_str("\r\n");
    };
    h("From", &s.from);
    h("To", &s.to.join(", "));
    h("Subject", SUBJECT);
    h("Date", date);
    h("Message-ID", message_id);
    h("MIME-Version", "1.0");
    h("Auto-Submitted", "auto-generated");
    h("Precedence", "bulk");
    h("X-Auto-Response-Suppress", "All");
    h(LOOP_HEADER, &s.loop_marker);
    h("X-Mailtoticket", r.status.as_header());
    h(
        "Content-Type",
        &format!("multipart/mixed; boundary=\"{boundary}\""),
    );
    m.push_str("\r\nThis is a multi-part message in MIME format.\r\n");
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: base64\r\n");
    m.push_str("Content-Disposition: inline\r\n\r\n");
    let text = format!(
        "Resultat: {}\r\nMotiu: {}\r\n\r\n{}",
        r.status.as_header(),
        r.reason,
        r.log.replace("\r\n", "\n").replace('\n', "\r\n")
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    for chunk in b64.as_bytes().chunks(76) {
        m.push_str(&String::from_utf8_lossy(chunk));
        m.push_str("\r\n");
    }
    m.push_str(&format!("--{boundary}\r\n"));
    m.push_str("Content-Type: message/rfc822\r\n");
    let eightbit = r.original.iter().any(|b| *b >= 0x80);
    m.push_str(if eightbit {
        "Content-Transfer-Encoding: 8bit\r\n"
    } else {
        "Content-Transfer-Encoding: 7bit\r\n"
    });
    m.push_str("Content-Disposition: attachment; filename=\"mail.eml\"\r\n\r\n");
    let mut out = m.into_bytes();
    out.extend_from_slice(&to_crlf(r.original));
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

fn md5_of(data: &[u8]) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(data).into())
}

/// LF and lone CR → CRLF (SMTP's line end), leaving CRLF alone.
fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 40);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "localhost".into(),
            port: 25,
            starttls: false,
            credentials: None,
            from: "m2t@example.org".into(),
            to: vec!["admin@example.org".into()],
            loop_marker: "m2t@example.org".into(),
            timeout: Duration::from_secs(5),
            allow_auth_without_tls: false,
        }
    }

    #[test]
    fn auth_without_tls_is_refused_before_connecting() {
        let mut s = settings();
        s.credentials = Some(("u".into(), "p".into()));
        let e = SmtpReporter::new(s.clone()).transport().unwrap_err();
        assert!(e.to_string().contains("sense TLS"), "{e}");
        s.allow_auth_without_tls = true;
        assert!(SmtpReporter::new(s.clone()).transport().is_ok());
        assert!(auth_without_tls(true, true, false).is_none());
        assert!(auth_without_tls(false, false, false).is_none());
    }

    #[test]
    fn message_has_loop_headers_and_both_parts() {
        let r = Report {
            status: Status::Reject,
            reason: "cap filtre",
            log: "línia 1\nlínia 2\n",
            original: b"From: a@b\nSubject: x\n\nhola\n",
        };
        let m = String::from_utf8(build_message(&settings(), &r, "d", "<id@x>")).unwrap();
        for h in [
            "Auto-Submitted: auto-generated\r\n",
            "Precedence: bulk\r\n",
            "X-Auto-Response-Suppress: All\r\n",
            "X-Mailtoticket-Loop: m2t@example.org\r\n",
            "Subject: Informe d'errors de MailToTicket\r\n",
            "Content-Type: message/rfc822\r\n",
        ] {
            assert!(m.contains(h), "{h} missing in {m}");
        }
        assert!(m.contains("From: a@b\r\nSubject: x\r\n\r\nhola\r\n--"));
        assert!(!m.replace("\r\n", "").contains('\n'), "bare LF");
    }

    #[test]
    fn crlf_conversion_keeps_crlf() {
        assert_eq!(to_crlf(b"a\r\nb\nc\rd"), b"a\r\nb\r\nc\r\nd");
    }
}
