//! The one integration test binary. Each module is one area.

mod app_support;
mod architecture;
mod auto_corpus;
mod bad_input;
mod bad_input_e2e;
mod bounce_e2e;
mod bounces;
mod cli;
mod faults;
mod filters;
mod identity;
mod journal;
mod loop_protection;
mod mail_corpus;
mod mail_props;
mod quarantine;
mod retry;
mod sandbox;
mod soap;
mod xss;
