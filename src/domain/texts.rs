//! The texts the gateway writes into GN6 (BEHAVIOUR §5.1, §5.3, §5.5), in Catalan as
//! the old program wrote them: header lines, default subject, attachment links.
//! Pure: dates come in already converted to the configured time zone.

use chrono::NaiveDateTime;

/// (DD/MM/YYYY, HH:MM) of a local date.
pub fn day_and_time(when: &NaiveDateTime) -> (String, String) {
    (
        when.format("%d/%m/%Y").to_string(),
        when.format("%H:%M").to_string(),
    )
}

/// ModificarTiquet's dataResol format (DD-MM-YYYY).
pub fn resolution_date(when: &NaiveDateTime) -> String {
    when.format("%d-%m-%Y").to_string()
}

/// First line of a comment added from a reply (§5.1), as plain text: the HTML
/// pipeline (`crate::domain::html::Body::prepend_header`) escapes it and adds the
/// empty line after it.
pub fn comment_header(from: &str, when: &NaiveDateTime) -> String {
    let (day, time) = day_and_time(when);
    format!("[Comentari afegit des del correu de {from} del {day} a les {time}]")
}

/// First line of a ticket created from a mail (§5.3), as plain text (see
/// [`comment_header`]).
pub fn ticket_header(from: &str, to: &str, when: &NaiveDateTime) -> String {
    let (day, time) = day_and_time(when);
    format!("[Tiquet creat des del correu de {from} a {to} del {day} a les {time}]")
}

/// assumpte of a new ticket: the subject as plain text, or `Ticket de USERNAME`.
pub fn subject_or_default(subject: &str, username: &str) -> String {
    if subject.trim().is_empty() {
        format!("Ticket de {username}")
    } else {
        subject.to_string()
    }
}

/// The GN6 download link of an attachment (INTERFACES §4.10).
pub fn file_url(codi_annex: &str) -> String {
    format!("/tiquetsusuaris/control/file?fileId={codi_annex}")
}

/// An attachment once uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded<'a> {
    /// The name as stored (controls and bidi controls removed).
    pub name: String,
    pub content_type: &'a str,
    pub content_id: Option<&'a str>,
    pub codi_annex: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn when() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2024, 3, 5)
            .unwrap()
            .and_hms_opt(9, 7, 0)
            .unwrap()
    }

    #[test]
    fn headers_exact() {
        assert_eq!(
            comment_header("a@b.c", &when()),
            "[Comentari afegit des del correu de a@b.c del 05/03/2024 a les 09:07]"
        );
        assert_eq!(
            ticket_header("a@b.c", "s@upc.edu", &when()),
            "[Tiquet creat des del correu de a@b.c a s@upc.edu del 05/03/2024 a les 09:07]"
        );
        assert_eq!(resolution_date(&when()), "05-03-2024");
    }

    #[test]
    fn default_subject() {
        assert_eq!(subject_or_default("", "pep"), "Ticket de pep");
        assert_eq!(subject_or_default("  ", "pep"), "Ticket de pep");
        assert_eq!(subject_or_default("a <b>", "pep"), "a <b>");
    }
}
