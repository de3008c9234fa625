//! SOAP adapters: GN6 GestioTiquets and GestioIdentitat Persones over the generated
//! bindings and an `HttpTransport`.

pub mod envelope;
pub mod generated;
mod gn6;
mod persones;
pub mod tolerant;
pub mod xml;

pub use gn6::SoapTicketSystem;
pub use persones::SoapIdentityDirectory;

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
