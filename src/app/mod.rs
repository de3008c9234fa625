//! The use case: one decoded mail in, one delivery outcome out, through the ports.

use crate::config::{Config, ConfigError};
use crate::domain::mail::Mail;
use crate::domain::outcome::Status;
use crate::ports::{Clock, IdentityDirectory, Journal, TicketSystem};

/// Settings of the use case, validated and compiled once from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<Settings, ConfigError> {
        Ok(Settings {
            config: config.clone(),
        })
    }
}

/// What happened to one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub status: Status,
    /// The filter that decided, if any.
    pub filter: Option<String>,
    /// The ticket created or commented, if any.
    pub ticket: Option<String>,
    /// One line for the log and the error report.
    pub reason: String,
}

/// Handles one mail (placeholder until the core issue lands).
pub async fn deliver<T: TicketSystem, I: IdentityDirectory, C: Clock, J: Journal>(
    mail: &Mail,
    settings: &Settings,
    tickets: &T,
    identity: &I,
    clock: &C,
    journal: &J,
) -> Delivery {
    let _ = (mail, settings, tickets, identity, clock, journal);
    Delivery {
        status: Status::Unknown,
        filter: None,
        ticket: None,
        reason: "not implemented".into(),
    }
}
