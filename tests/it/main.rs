//! The one integration test binary. Each module is one area.

mod app_support;
mod architecture;
mod auto_corpus;
mod bad_input;
mod bad_input_e2e;
mod bin_support;
mod bounce_e2e;
mod bounces;
mod chain;
mod cli;
mod directories_e2e;
mod faults;
mod filters;
mod hostile;
mod hostile_html;
mod identity;
mod identity_behaviours;
mod identity_rest;
mod imap_pull;
mod journal;
mod ldap;
mod logs;
mod loop_protection;
mod mail_corpus;
mod mail_fidelity;
mod mail_identity;
mod mail_props;
mod observe;
mod packaging;
mod quarantine;
mod quarantine_tool;
mod retry;
mod sandbox;
mod soap;
mod xss;

/// Held by the tests whose assertions depend on short timeouts (the faults table, with
/// 200 ms client timeouts) and by the one that loads the machine most (the mailbox
/// chain: Dovecot, fetchmail and some forty runs of the binary), so that they never
/// run at the same time on a two-core machine.
pub static TIMING_SENSITIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());
