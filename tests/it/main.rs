//! The one integration test binary. Each module is one area.

mod app_support;
mod architecture;
mod bad_input;
mod bad_input_e2e;
mod cli;
mod directories_e2e;
mod faults;
mod filters;
mod identity;
mod identity_behaviours;
mod identity_rest;
mod journal;
mod ldap;
mod loop_protection;
mod mail_corpus;
mod mail_props;
mod quarantine;
mod retry;
mod sandbox;
mod soap;
mod xss;
