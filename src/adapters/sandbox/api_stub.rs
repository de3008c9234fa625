//! STUB (branch mda only; the lead drops this file at merge): the sandbox state
//! helpers that `mailtoticket sandbox ...` calls, with the signatures the sandbox
//! branch provides.

use std::io;
use std::path::Path;

use crate::domain::ticket::TicketInfo;

/// Adds (or replaces) a person of the simulated Persones directory.
pub fn add_person(dir: &Path, cn: &str, emails: &[String]) -> io::Result<()> {
    let _ = (dir, cn, emails);
    Err(io::Error::other("sandbox not implemented in this branch"))
}

/// Every ticket of the simulated GN6, oldest first.
pub fn list_tickets(dir: &Path) -> io::Result<Vec<TicketInfo>> {
    let _ = dir;
    Err(io::Error::other("sandbox not implemented in this branch"))
}

/// One ticket of the simulated GN6.
pub fn load_ticket(dir: &Path, code: &str) -> io::Result<Option<TicketInfo>> {
    let _ = (dir, code);
    Err(io::Error::other("sandbox not implemented in this branch"))
}
