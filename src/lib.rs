//! mailtoticket: a mail delivery agent that turns mails into GN6 tickets.
//!
//! Hexagon: `domain` (pure), `ports` (traits in domain types), `app` (the use case),
//! `adapters` (SOAP/HTTP, mail parsing, sandbox, journal, reports), `config`, `exit`.

#![forbid(unsafe_code)]

pub mod adapters;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod exit;
pub mod ports;
/// The GN6 + Persones simulator (an HTTP server): left out of a production build
/// (`--no-default-features`).
#[cfg(feature = "sandbox")]
pub mod sandbox;
