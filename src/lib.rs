//! mailtoticket: a mail delivery agent that turns mails into GN6 tickets.
//!
//! Hexagon: `domain` (pure), `ports` (traits in domain types), `app` (the use case),
//! `adapters` (SOAP/HTTP, mail parsing, sandbox, journal, reports), `config`, `exit`.

pub mod adapters;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod exit;
pub mod ports;
