//! HTML cleaning (BEHAVIOUR §6): allow-list sanitising always, optional clean-up.

/// Sanitises and, when `full` is set, cleans an HTML body (placeholder).
pub fn clean(html: &str, full: bool, is_reply: bool) -> String {
    let _ = (full, is_reply);
    html.to_string()
}
