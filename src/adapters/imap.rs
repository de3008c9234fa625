//! IMAP mailbox adapter (driven side, for the pull mode): connects over IMAPS,
//! STARTTLS or (loopback only) plain TCP with rustls, lists the mails of the
//! mailbox, reads them without marking them seen, moves them to a folder (MOVE, or
//! COPY + `\Deleted` + EXPUNGE when the server lacks MOVE) and waits with IDLE.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::{Client, Session};
use futures_util::TryStreamExt;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::config::imap::{ImapConfig, TlsMode};

/// The byte stream under the IMAP protocol (TLS or, on loopback, plain TCP).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

type Stream = Box<dyn Io>;

/// A failure talking to the server. The text never holds the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapError(pub String);

impl fmt::Display for ImapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ImapError {
    /// Whether the server refused the login (wrong user or password).
    pub fn is_login_refused(&self) -> bool {
        self.0.starts_with(LOGIN_REFUSED)
    }
}

const LOGIN_REFUSED: &str = "IMAP login refused";

impl std::error::Error for ImapError {}

fn err(what: &str, e: impl fmt::Display) -> ImapError {
    ImapError(format!("IMAP {what}: {e}"))
}

/// A mail of the mailbox, as read.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uid: u32,
    pub raw: Vec<u8>,
}

/// What ended a wait for new mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The server announced a change.
    NewData,
    /// `idle_secs` passed (renew IDLE and look again).
    Timeout,
}

/// A logged-in session with the mailbox selected.
pub struct Mailbox {
    session: Session<Stream>,
    cfg: ImapConfig,
    can_move: bool,
    can_idle: bool,
    uidplus: bool,
}

fn tls_connector(cfg: &ImapConfig) -> Result<tokio_rustls::TlsConnector, ImapError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &cfg.ca_file {
        let mut added = 0;
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(&format!("ca_file {}", path.display()), e))?;
        for cert in certs {
            let cert = cert.map_err(|e| err(&format!("ca_file {}", path.display()), e))?;
            roots
                .add(cert)
                .map_err(|e| err(&format!("ca_file {}", path.display()), e))?;
            added += 1;
        }
        if added == 0 {
            return Err(ImapError(format!(
                "IMAP ca_file {}: no certificate",
                path.display()
            )));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err("TLS", e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(tls)))
}

async fn within<T, E: fmt::Display>(
    secs: u64,
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    match timeout(Duration::from_secs(secs), f).await {
        Ok(r) => r.map_err(|e| err(what, e)),
        Err(_) => Err(ImapError(format!("IMAP {what}: no answer in {secs} s"))),
    }
}

async fn greeting<T: Io>(client: &mut Client<T>, secs: u64) -> Result<(), ImapError> {
    match timeout(Duration::from_secs(secs), client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(ImapError("IMAP greeting: connection closed".into())),
        Ok(Err(e)) => Err(err("greeting", e)),
        Err(_) => Err(ImapError(format!("IMAP greeting: no answer in {secs} s"))),
    }
}

impl Mailbox {
    /// Connects, logs in and selects `cfg.mailbox`. `cfg.problems()` must be empty.
    pub async fn open(cfg: &ImapConfig) -> Result<Mailbox, ImapError> {
        let secs = cfg.timeout_secs;
        let host = cfg.server.trim_matches(['[', ']']).to_string();
        let tcp = within(
            secs,
            &format!("connect {}:{}", cfg.server, cfg.port()),
            TcpStream::connect((host.as_str(), cfg.port())),
        )
        .await?;
        let _ = tcp.set_nodelay(true);
        let name =
            || ServerName::try_from(host.clone()).map_err(|e| err(&format!("server {host}"), e));
        let stream: Stream = match cfg.tls {
            TlsMode::Imaps => {
                let tls = within(secs, "TLS", tls_connector(cfg)?.connect(name()?, tcp)).await?;
                let mut client = Client::new(Box::new(tls) as Stream);
                greeting(&mut client, secs).await?;
                return Self::login(client, cfg).await;
            }
            TlsMode::Starttls => {
                let mut client = Client::new(tcp);
                greeting(&mut client, secs).await?;
                within(
                    secs,
                    "STARTTLS",
                    client.run_command_and_check_ok("STARTTLS", None),
                )
                .await?;
                let tcp = client.into_inner();
                Box::new(within(secs, "TLS", tls_connector(cfg)?.connect(name()?, tcp)).await?)
            }
            TlsMode::None => Box::new(tcp),
        };
        let mut client = Client::new(stream);
        if cfg.tls == TlsMode::None {
            greeting(&mut client, secs).await?;
        }
        Self::login(client, cfg).await
    }

    async fn login(client: Client<Stream>, cfg: &ImapConfig) -> Result<Mailbox, ImapError> {
        let secs = cfg.timeout_secs;
        let mut session = match timeout(
            Duration::from_secs(secs),
            client.login(&cfg.user, &cfg.password),
        )
        .await
        {
            Ok(Ok(s)) => s,
            // The server's answer, never what was sent.
            Ok(Err((
                e @ (async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_)),
                _,
            ))) => {
                return Err(ImapError(format!("{LOGIN_REFUSED} for {}: {e}", cfg.user)));
            }
            Ok(Err((e, _))) => return Err(err(&format!("login as {}", cfg.user), e)),
            Err(_) => return Err(ImapError(format!("IMAP login: no answer in {secs} s"))),
        };
        let caps = within(secs, "CAPABILITY", session.capabilities()).await?;
        let can_move = caps.has_str("MOVE");
        let can_idle = caps.has_str("IDLE");
        let uidplus = caps.has_str("UIDPLUS");
        if !can_move {
            tracing::info!(
                "IMAP: servidor sense MOVE: moc amb COPY + \\Deleted + {}",
                if uidplus { "UID EXPUNGE" } else { "EXPUNGE" }
            );
        }
        let mut mailbox = Mailbox {
            session,
            cfg: cfg.clone(),
            can_move,
            can_idle,
            uidplus,
        };
        mailbox.select().await?;
        Ok(mailbox)
    }

    async fn select(&mut self) -> Result<(), ImapError> {
        let name = self.cfg.mailbox.clone();
        within(
            self.cfg.timeout_secs,
            &format!("SELECT {name}"),
            self.session.select(&name),
        )
        .await?;
        Ok(())
    }

    /// Whether the server can IDLE (otherwise `--watch` polls every `idle_secs`).
    pub fn can_idle(&self) -> bool {
        self.can_idle
    }

    /// Creates the folders that do not exist yet.
    pub async fn ensure_folders(&mut self, names: &[&str]) -> Result<(), ImapError> {
        let secs = self.cfg.timeout_secs;
        let existing: Vec<String> = within(secs, "LIST", async {
            let list = self.session.list(Some(""), Some("*")).await?;
            list.map_ok(|n| n.name().to_string())
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        for name in names {
            if !existing.iter().any(|e| e == name) {
                within(secs, &format!("CREATE {name}"), self.session.create(name)).await?;
            }
        }
        Ok(())
    }

    /// UIDs of every mail in the mailbox that is not marked deleted, oldest first.
    pub async fn pending(&mut self) -> Result<Vec<u32>, ImapError> {
        let secs = self.cfg.timeout_secs;
        let set = within(secs, "SEARCH", self.session.uid_search("UNDELETED")).await?;
        let mut uids: Vec<u32> = set.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The raw mail of `uid` (BODY.PEEK: not marked seen), or None if it is gone.
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<Fetched>, ImapError> {
        let secs = self.cfg.timeout_secs;
        let fetched: Vec<_> = within(secs, "FETCH", async {
            let s = self
                .session
                .uid_fetch(uid.to_string(), "(UID BODY.PEEK[])")
                .await?;
            s.try_collect::<Vec<_>>().await
        })
        .await?;
        Ok(fetched
            .iter()
            .find(|f| f.uid == Some(uid))
            .and_then(|f| f.body())
            .map(|b| Fetched {
                uid,
                raw: b.to_vec(),
            }))
    }

    /// Moves `uid` to `folder`: MOVE (RFC 6851) or COPY + `\Deleted` + EXPUNGE.
    pub async fn move_to(&mut self, uid: u32, folder: &str) -> Result<(), ImapError> {
        let secs = self.cfg.timeout_secs;
        let set = uid.to_string();
        if self.can_move {
            return within(
                secs,
                &format!("MOVE {folder}"),
                self.session.uid_mv(&set, folder),
            )
            .await;
        }
        within(
            secs,
            &format!("COPY {folder}"),
            self.session.uid_copy(&set, folder),
        )
        .await?;
        within(secs, "STORE \\Deleted", async {
            let s = self
                .session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?;
            s.try_collect::<Vec<_>>().await
        })
        .await?;
        // UID EXPUNGE (UIDPLUS) leaves other clients' deleted mails alone; plain
        // EXPUNGE otherwise.
        let uidplus = self.uidplus;
        within(secs, "EXPUNGE", async {
            if uidplus {
                let s = self.session.uid_expunge(&set).await?;
                s.try_collect::<Vec<_>>().await.map(|_| ())
            } else {
                let s = self.session.expunge().await?;
                s.try_collect::<Vec<_>>().await.map(|_| ())
            }
        })
        .await
    }

    /// Waits for a change of the mailbox (IDLE), or `idle_secs` without IDLE support.
    pub async fn wait(self) -> Result<(Mailbox, Woken), ImapError> {
        let Mailbox {
            session,
            cfg,
            can_move,
            can_idle,
            uidplus,
        } = self;
        let idle_for = Duration::from_secs(cfg.idle_secs);
        if !can_idle {
            let mut mailbox = Mailbox {
                session,
                cfg,
                can_move,
                can_idle,
                uidplus,
            };
            tokio::time::sleep(idle_for).await;
            within(mailbox.cfg.timeout_secs, "NOOP", mailbox.session.noop()).await?;
            return Ok((mailbox, Woken::Timeout));
        }
        let mut handle = session.idle();
        within(cfg.timeout_secs, "IDLE", handle.init()).await?;
        let (fut, _stop) = handle.wait_with_timeout(idle_for);
        let woken = match fut.await.map_err(|e| err("IDLE", e))? {
            IdleResponse::NewData(_) => Woken::NewData,
            IdleResponse::Timeout | IdleResponse::ManualInterrupt => Woken::Timeout,
        };
        let session = within(cfg.timeout_secs, "DONE", handle.done()).await?;
        Ok((
            Mailbox {
                session,
                cfg,
                can_move,
                can_idle,
                uidplus,
            },
            woken,
        ))
    }

    /// Logs out (errors are of no interest any more).
    pub async fn close(mut self) {
        let _ = timeout(
            Duration::from_secs(self.cfg.timeout_secs),
            self.session.logout(),
        )
        .await;
    }
}
