//! Adapter decorator: bounded retries with backoff, inside one run, for the read-only
//! calls of the ticket system and the identity directory (issue 5 §2).
//!
//! Only calls that change nothing are repeated (ConsultaTiquetsDades, obtenirDadesPersona,
//! llistaPersones). A mutating call that failed transiently may still have happened on
//! the server (the answer, not the request, may be what was lost), so it is passed
//! through untouched: the delivery journal and the MTA's retry of the whole mail handle
//! it, and GN6 is asked again only after the journal says the step is not done.

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use crate::domain::identity::Person;
use crate::domain::ticket::{NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo};
use crate::ports::{IdentityDirectory, PortError, TicketSystem};

/// How the decorator waits between attempts; injectable so tests do not sleep.
pub trait Sleep {
    fn sleep(&self, pause: Duration) -> impl Future<Output = ()>;
}

/// The real pause, on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, pause: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(pause)
    }
}

/// Default pauses between attempts: 3 attempts in all, at most half a second spent
/// waiting, well inside the per-mail deadline.
pub const DEFAULT_BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

/// A [`TicketSystem`] and/or [`IdentityDirectory`] that retries the read-only calls of
/// `inner` on transient errors.
#[derive(Debug, Clone)]
pub struct Retrying<T, S = TokioSleep> {
    inner: T,
    sleep: S,
    backoff: Vec<Duration>,
}

impl<T> Retrying<T, TokioSleep> {
    /// `inner` with the default backoff ([`DEFAULT_BACKOFF`]) on the tokio timer.
    pub fn new(inner: T) -> Self {
        Retrying {
            inner,
            sleep: TokioSleep,
            backoff: DEFAULT_BACKOFF.to_vec(),
        }
    }
}

impl<T, S> Retrying<T, S> {
    /// The same decorator waiting through `sleep` instead.
    pub fn with_sleep<S2: Sleep>(self, sleep: S2) -> Retrying<T, S2> {
        Retrying {
            inner: self.inner,
            sleep,
            backoff: self.backoff,
        }
    }

    /// The pauses between attempts: `backoff.len() + 1` attempts in all.
    pub fn with_backoff(mut self, backoff: Vec<Duration>) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    pub fn into_inner(self) -> T {
        self.inner
    }
}

impl<T, S: Sleep> Retrying<T, S> {
    /// Runs `call` until it succeeds, fails for good, or the attempts run out; the
    /// last error is returned as it came (a transient one still means TEMPFAIL).
    async fn read<R, F, Fut>(&self, what: &str, mut call: F) -> Result<R, PortError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<R, PortError>>,
    {
        let mut pauses = self.backoff.iter();
        let mut attempt = 1usize;
        loop {
            match call().await {
                Err(e) if e.is_transient() => match pauses.next() {
                    Some(pause) => {
                        warn!(
                            "{what}: {e}; reintent {attempt} de {} d'aquí a {} ms",
                            self.backoff.len(),
                            pause.as_millis()
                        );
                        self.sleep.sleep(*pause).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
                other => return other,
            }
        }
    }
}

impl<T: TicketSystem, S: Sleep> TicketSystem for Retrying<T, S> {
    async fn query_ticket(&self, codi_tiquet: &str) -> Result<Option<TicketInfo>, PortError> {
        self.read("ConsultaTiquetsDades", || {
            self.inner.query_ticket(codi_tiquet)
        })
        .await
    }

    async fn find_tickets(
        &self,
        solicitant: &str,
        created_from: &str,
    ) -> Result<Vec<TicketInfo>, PortError> {
        self.read("ConsultaTiquetsDades", || {
            self.inner.find_tickets(solicitant, created_from)
        })
        .await
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<String, PortError> {
        self.inner.create_ticket(ticket).await
    }

    async fn modify_ticket(&self, changes: &TicketChanges) -> Result<(), PortError> {
        self.inner.modify_ticket(changes).await
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<(), PortError> {
        self.inner.add_comment(comment).await
    }

    async fn attach_file(&self, attachment: &NewAttachment<'_>) -> Result<String, PortError> {
        self.inner.attach_file(attachment).await
    }

    async fn add_requester(&self, codi_tiquet: &str, solicitant: &str) -> Result<(), PortError> {
        self.inner.add_requester(codi_tiquet, solicitant).await
    }
}

impl<T: IdentityDirectory, S: Sleep> IdentityDirectory for Retrying<T, S> {
    async fn person(&self, cn: &str) -> Result<Option<Person>, PortError> {
        self.read("obtenirDadesPersona", || self.inner.person(cn))
            .await
    }

    async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError> {
        self.read("llistaPersones", || self.inner.persons_by_email(email))
            .await
    }
}
