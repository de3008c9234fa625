//! Pure core of the hexagon: mail model, classification, identity rules, filters,
//! HTML cleaning and outcomes. No I/O, no clock, no transport or parser types.

pub mod bounce;
pub mod bus_text;
pub mod classify;
pub mod dsn;
pub mod filters;
pub mod html;
pub mod identity;
pub mod limits;
pub mod mail;
pub mod mail_key;
pub mod outcome;
pub mod rules;
pub mod texts;
pub mod ticket;
pub mod trust;
