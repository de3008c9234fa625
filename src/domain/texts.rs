//! The texts the gateway writes into GN6 (BEHAVIOUR §5.1, §5.3, §5.5), in Catalan as
//! the old program wrote them: header lines, default subject, attachment links.
//! Pure: dates come in already converted to the configured time zone.

use chrono::NaiveDateTime;

/// Escapes text that came from a header or a plain-text part for HTML element content,
/// exactly once: `&`, `<` and `>` (quotes need no escaping in text, and plain-text
/// bodies keep them as they were). The one attribute value written here, the `href` of
/// an attachment link, goes through [`href_value`].
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A URL as the value of a double-quoted attribute: escaped as text, and a `"` (which
/// a URL does not need literally) percent-encoded so it cannot end the attribute.
fn href_value(url: &str) -> String {
    escape_text(url).replace('"', "%22")
}

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

/// First line of a comment added from a reply (§5.1).
pub fn comment_header(from: &str, when: &NaiveDateTime) -> String {
    let (day, time) = day_and_time(when);
    format!(
        "[Comentari afegit des del correu de {} del {day} a les {time}]<br><br>",
        escape_text(from)
    )
}

/// First line of a ticket created from a mail (§5.3).
pub fn ticket_header(from: &str, to: &str, when: &NaiveDateTime) -> String {
    let (day, time) = day_and_time(when);
    format!(
        "[Tiquet creat des del correu de {} a {} del {day} a les {time}]<br><br>",
        escape_text(from),
        escape_text(to)
    )
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
    pub name: &'a str,
    pub content_type: &'a str,
    pub content_id: Option<&'a str>,
    pub codi_annex: String,
}

/// Rewrites `cid:ID` references of inline images to their GN6 links and returns the
/// body plus the listing of the attachments not shown inline (empty when none).
/// An attachment counts as inline only when the body references its Content-ID:
/// some clients give every part a Content-ID, and those must still be listed.
pub fn link_attachments(body: &str, uploaded: &[Uploaded<'_>]) -> (String, String) {
    let mut body = body.to_string();
    let mut inline = vec![false; uploaded.len()];
    // Longest ids first, so that `cid:ab` never eats the prefix of `cid:abc`.
    let mut order: Vec<usize> = (0..uploaded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(uploaded[i].content_id.map_or(0, str::len)));
    for i in order {
        let Some(cid) = uploaded[i].content_id.filter(|c| !c.is_empty()) else {
            continue;
        };
        let reference = format!("cid:{cid}");
        if body.contains(&reference) {
            body = body.replace(&reference, &file_url(&uploaded[i].codi_annex));
            inline[i] = true;
        }
    }
    let listed: Vec<String> = uploaded
        .iter()
        .zip(&inline)
        .filter(|(_, inline)| !**inline)
        .map(|(u, _)| {
            format!(
                "<li><a href=\"{}\">{} ({})</a></li>",
                href_value(&file_url(&u.codi_annex)),
                escape_text(u.name),
                escape_text(u.content_type)
            )
        })
        .collect();
    let listing = if listed.is_empty() {
        String::new()
    } else {
        format!("<br><br>Attachments:<ul>{}</ul>", listed.concat())
    };
    (body, listing)
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_escaper_for_text_and_a_safe_href() {
        assert_eq!(escape_text("a<b>&c \"q\""), "a&lt;b&gt;&amp;c \"q\"");
        assert_eq!(escape_text("&lt;"), "&amp;lt;");
        assert_eq!(href_value("/f?id=1\"><x&y"), "/f?id=1%22&gt;&lt;x&amp;y");
    }

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
            "[Comentari afegit des del correu de a@b.c del 05/03/2024 a les 09:07]<br><br>"
        );
        assert_eq!(
            ticket_header("a@b.c", "s@upc.edu", &when()),
            "[Tiquet creat des del correu de a@b.c a s@upc.edu del 05/03/2024 a les 09:07]<br><br>"
        );
        assert_eq!(resolution_date(&when()), "05-03-2024");
    }

    #[test]
    fn header_text_escaped_once() {
        assert_eq!(
            comment_header("<x>&amp;", &when()),
            "[Comentari afegit des del correu de &lt;x&gt;&amp;amp; del 05/03/2024 a les 09:07]<br><br>"
        );
    }

    #[test]
    fn default_subject() {
        assert_eq!(subject_or_default("", "pep"), "Ticket de pep");
        assert_eq!(subject_or_default("  ", "pep"), "Ticket de pep");
        assert_eq!(subject_or_default("a <b>", "pep"), "a <b>");
    }

    #[test]
    fn links_inline_and_lists_others() {
        let up = vec![
            Uploaded {
                name: "logo.png",
                content_type: "image/png",
                content_id: Some("ab"),
                codi_annex: "1".into(),
            },
            Uploaded {
                name: "big.png",
                content_type: "image/png",
                content_id: Some("abc"),
                codi_annex: "2".into(),
            },
            Uploaded {
                name: "a&b.pdf",
                content_type: "application/pdf",
                content_id: None,
                codi_annex: "3".into(),
            },
            Uploaded {
                name: "unref.png",
                content_type: "image/png",
                content_id: Some("zz"),
                codi_annex: "4".into(),
            },
        ];
        let (body, list) = link_attachments(r#"<img src="cid:abc"><img src="cid:ab">"#, &up);
        assert_eq!(
            body,
            r#"<img src="/tiquetsusuaris/control/file?fileId=2"><img src="/tiquetsusuaris/control/file?fileId=1">"#
        );
        assert_eq!(
            list,
            "<br><br>Attachments:<ul><li><a href=\"/tiquetsusuaris/control/file?fileId=3\">a&amp;b.pdf (application/pdf)</a></li><li><a href=\"/tiquetsusuaris/control/file?fileId=4\">unref.png (image/png)</a></li></ul>"
        );
    }

    #[test]
    fn no_attachments_no_listing() {
        assert_eq!(link_attachments("x", &[]), ("x".to_string(), String::new()));
    }
}
