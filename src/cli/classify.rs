//! `mailtoticket classify < mail` (issue 14): the class of a mail and the rule that
//! decided, for admins tuning `mails_no_ticket`. No bus, no journal, no log file: the
//! configuration is read only for the sender lists and `regex_message_id`, and the
//! defaults stand in when there is none.

use std::fmt::Write as _;

use crate::adapters::mail::{AttachmentFilters, parse};
use crate::config::Config;
use crate::domain::bounce::{self, Returned};
use crate::domain::classify::{self, ClassifyOptions, Context, Decision};
use crate::domain::dsn;
use crate::domain::filters::find_ticket_id;

/// The report printed for one raw mail.
pub fn report(raw: &[u8], config: &Config) -> Result<String, String> {
    let mail = parse(raw, &AttachmentFilters::default());
    let opts = ClassifyOptions::new(
        config.mails_sempre_ticket.clone(),
        config.mails_no_ticket.clone(),
        config.skip_list_mail,
    )?;
    let message_id = regex::Regex::new(&config.regex_message_id)
        .map_err(|e| format!("regex_message_id: {e}"))?;
    let mut out = String::new();
    let hit = classify::detect(
        &mail,
        Context {
            skip_list_mail: config.skip_list_mail,
        },
    );
    match classify::classify(&mail, &opts) {
        Decision::Process { forced } => {
            let _ = writeln!(out, "class: process");
            if forced {
                let _ = writeln!(out, "rule: mails_sempre_ticket");
            } else {
                let _ = writeln!(out, "rule: -");
            }
        }
        Decision::SkipListed { item } => {
            let _ = writeln!(out, "class: skip-listed");
            let _ = writeln!(out, "rule: mails_no_ticket ({item})");
        }
        Decision::SkipAutomatic { .. } => {}
    }
    if let Some((hit, detail)) = hit {
        if out.is_empty() {
            let _ = writeln!(out, "class: {}", hit.class.as_str());
            let _ = writeln!(out, "rule: {} ({detail})", hit.signal.name);
        } else {
            let _ = writeln!(
                out,
                "automatic: {} by rule {} ({detail})",
                hit.class.as_str(),
                hit.signal.name
            );
        }
        if hit.class == classify::AutoClass::Bounce {
            match bounce::returned(&mail, &message_id, |_| false) {
                Returned::Notification { ticket, id } => {
                    let _ = writeln!(out, "returns: GN6 notification {id} of ticket {ticket}");
                }
                Returned::OwnReport => {
                    let _ = writeln!(out, "returns: an error report of this gateway");
                }
                Returned::Unknown => {
                    let _ = writeln!(out, "returns: nothing of GN6");
                }
            }
            for r in dsn::recipients(&mail) {
                let _ = writeln!(
                    out,
                    "recipient: {} {} {} {}",
                    r.recipient, r.action, r.status, r.diagnostic
                );
            }
        } else if let Some((code, source)) = find_ticket_id(&mail, &message_id, &never_matching()) {
            let _ = writeln!(out, "answers: ticket {code} (found in {})", source.label());
        }
    }
    Ok(out)
}

fn never_matching() -> regex::Regex {
    regex::Regex::new(r"[^\s\S]").expect("static regex")
}
