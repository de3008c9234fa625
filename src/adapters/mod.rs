//! Adapters: the outside world behind the ports (SOAP over HTTP, mail parsing,
//! the journal, error reports). The sandbox bus is `crate::sandbox`.

pub mod atomic_file;
pub mod http;
pub mod identity_rest;
pub mod imap;
pub mod journal;
pub mod ldap;
pub mod logging;
pub mod mail;
pub mod planning;
pub mod private_files;
pub mod quarantine;
pub mod report;
pub mod retry;
pub mod soap;
pub mod systemd;
pub mod telemetry;
