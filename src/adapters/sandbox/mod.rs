//! The sandbox bus: a stateful GN6 + Persones simulator speaking the same SOAP over
//! HTTP, used as `bus = "sandbox"`, by `mailtoticket sandbox serve`, tests and benchmarks.

use std::net::SocketAddr;
use std::path::PathBuf;

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

/// A running simulator (placeholder until the sandbox issue lands).
pub struct RunningSandbox {
    pub addr: SocketAddr,
}

impl RunningSandbox {
    /// SOAP endpoint of GN6 GestioTiquets (WSDL at `?wsdl`).
    pub fn gn6_url(&self) -> String {
        format!("http://{}/gN6/GestioTiquetsv5", self.addr)
    }
    /// SOAP endpoint of Persones (WSDL at `?wsdl`).
    pub fn persones_url(&self) -> String {
        format!("http://{}/GestioIdentitat/Personesv6", self.addr)
    }
}

/// Starts the simulator on 127.0.0.1:`port` (0 = ephemeral) as a task of the current
/// tokio runtime.
pub async fn start(config: SandboxConfig, port: u16) -> std::io::Result<RunningSandbox> {
    let _ = config;
    Err(std::io::Error::other(format!(
        "sandbox not implemented (port {port})"
    )))
}

// STUB module for branch mda (dropped at merge): the state helpers.
mod api_stub;
pub use api_stub::{add_person, list_tickets, load_ticket};
