//! Fuzz target (outside the hexagon): the mail adapter alone, raw bytes → `Mail`, then
//! the HTML cleaner and plain-text conversion. Faster than `deliver`, so it reaches
//! deeper into the MIME parser in the same time.

#![no_main]

mod contain;

use libfuzzer_sys::fuzz_target;
use mailtoticket::adapters::mail::{AttachmentFilters, parse, text_to_html};
use mailtoticket::domain::html;

fuzz_target!(|data: &[u8]| {
    contain::mail_parser_panics();
    let mail = parse(data, &AttachmentFilters::default());
    let _ = html::clean(&mail.body_html, true, true);
    let _ = html::has_text(&mail.body_html);
    let _ = text_to_html(&mail.body_text);
    let _ = mail.requester_email();
});
