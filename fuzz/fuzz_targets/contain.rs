//! Shared by the fuzz targets (outside the hexagon): which panics count as crashes.

use std::sync::OnceLock;

/// libFuzzer's panic hook aborts on every panic, even one that is caught. The mail
/// adapter contains panics from inside mail-parser on purpose (`parse` falls back to the
/// header block), so those are let through to that `catch_unwind`; any other panic
/// still aborts and is reported.
pub fn mail_parser_panics() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !in_mail_parser {
                fuzzer_hook(info);
            }
        }));
    });
}
