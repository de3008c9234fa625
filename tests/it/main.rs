//! The one integration test binary. Each module is one area.

mod app_support;
mod architecture;
mod bad_input;
mod bad_input_e2e;
mod cli;
mod faults;
mod filters;
mod hostile_html;
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
