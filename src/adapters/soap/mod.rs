//! SOAP adapters: GN6 GestioTiquets and GestioIdentitat Persones over the generated
//! bindings and an `HttpTransport`.

pub mod generated;
pub mod xml;

use crate::adapters::http::HttpTransport;
use crate::domain::identity::Person;
use crate::domain::ticket::{NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo};
use crate::ports::{IdentityDirectory, PortError, TicketSystem};

/// Bus account (WS-Security UsernameToken): `username_soa` / `password_soa`.
#[derive(Clone, PartialEq, Eq)]
pub struct BusCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BusCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BusCredentials({}, ***)", self.username)
    }
}

/// GN6 instance account carried in every GN6 request body.
#[derive(Clone, PartialEq, Eq)]
pub struct Gn6Credentials {
    pub username: String,
    pub password: String,
    pub domini: String,
}

impl std::fmt::Debug for Gn6Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Gn6Credentials({}, ***, {})", self.username, self.domini)
    }
}

/// `TicketSystem` over GN6 GestioTiquets v5 (+ v6 AfegirSolicitantTiquet).
#[derive(Debug, Clone)]
pub struct SoapTicketSystem<H> {
    http: H,
    endpoint: String,
    bus: BusCredentials,
    gn6: Gn6Credentials,
}

impl<H: HttpTransport> SoapTicketSystem<H> {
    pub fn new(http: H, endpoint: String, bus: BusCredentials, gn6: Gn6Credentials) -> Self {
        SoapTicketSystem {
            http,
            endpoint,
            bus,
            gn6,
        }
    }
}

fn todo_err() -> PortError {
    PortError::Permanent("not implemented".into())
}

impl<H: HttpTransport> TicketSystem for SoapTicketSystem<H> {
    async fn query_ticket(&self, codi_tiquet: &str) -> Result<Option<TicketInfo>, PortError> {
        let _ = (
            codi_tiquet,
            &self.http,
            &self.endpoint,
            &self.bus,
            &self.gn6,
        );
        Err(todo_err())
    }
    async fn create_ticket(&self, ticket: &NewTicket) -> Result<String, PortError> {
        let _ = ticket;
        Err(todo_err())
    }
    async fn modify_ticket(&self, changes: &TicketChanges) -> Result<(), PortError> {
        let _ = changes;
        Err(todo_err())
    }
    async fn add_comment(&self, comment: &NewComment) -> Result<(), PortError> {
        let _ = comment;
        Err(todo_err())
    }
    async fn attach_file(&self, attachment: &NewAttachment<'_>) -> Result<String, PortError> {
        let _ = attachment;
        Err(todo_err())
    }
    async fn add_requester(&self, codi_tiquet: &str, solicitant: &str) -> Result<(), PortError> {
        let _ = (codi_tiquet, solicitant);
        Err(todo_err())
    }
}

/// `IdentityDirectory` over Personesv6.
#[derive(Debug, Clone)]
pub struct SoapIdentityDirectory<H> {
    http: H,
    endpoint: String,
    bus: BusCredentials,
}

impl<H: HttpTransport> SoapIdentityDirectory<H> {
    pub fn new(http: H, endpoint: String, bus: BusCredentials) -> Self {
        SoapIdentityDirectory {
            http,
            endpoint,
            bus,
        }
    }
}

impl<H: HttpTransport> IdentityDirectory for SoapIdentityDirectory<H> {
    async fn person(&self, cn: &str) -> Result<Option<Person>, PortError> {
        let _ = (cn, &self.http, &self.endpoint, &self.bus);
        Err(todo_err())
    }
    async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError> {
        let _ = email;
        Err(todo_err())
    }
}
