//! The `valors_defecte` rule engine (BEHAVIOUR §5.3): routes and classifies new
//! tickets by header values. Pure; rules are compiled once by the use case settings.

use regex::{Regex, RegexBuilder};

use super::mail::Mail;
use super::ticket::NewTicket;

/// One compiled rule: for every header in `order`, for every value of it, a
/// case-insensitive match at the start applies `defaults`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub order: Vec<String>,
    pub regex: Regex,
    /// (AltaTiquet wire name, value) in configuration order.
    pub defaults: Vec<(String, String)>,
}

impl Rule {
    /// Compiles a rule; the error says which part is wrong (the caller adds the key).
    pub fn new(
        order: &[String],
        pattern: &str,
        defaults: &[(String, String)],
    ) -> Result<Rule, String> {
        // Anchored like Python's re.match, case-insensitive like the old engine.
        let regex = RegexBuilder::new(&format!("^(?:{pattern})"))
            .case_insensitive(true)
            .build()
            .map_err(|e| format!("match {pattern:?}: {e}"))?;
        for (field, _) in defaults {
            if NewTicket::default().get(field).is_none() {
                return Err(format!(
                    "defaults: {field:?} is not an AltaTiquet field (valid: {})",
                    NewTicket::WIRE_NAMES.join(", ")
                ));
            }
        }
        if order.is_empty() {
            return Err("order: empty".into());
        }
        Ok(Rule {
            order: order.to_vec(),
            regex,
            defaults: defaults.to_vec(),
        })
    }

    /// Whether any value of any header in `order` matches.
    pub fn matches(&self, mail: &Mail) -> bool {
        self.order.iter().any(|h| {
            header_values(mail, h)
                .iter()
                .any(|v| self.regex.is_match(v))
        })
    }
}

/// The values a rule sees for a header: each address of an address header (To being
/// Resent-To when present, as for templates), else every comma-separated piece of
/// every occurrence of the header, trimmed.
pub fn header_values<'a>(mail: &'a Mail, header: &str) -> Vec<&'a str> {
    let name = header.trim();
    if name.eq_ignore_ascii_case("to") && !mail.resent_to.is_empty() {
        return mail.resent_to.iter().map(String::as_str).collect();
    }
    if let Some(addrs) = mail.addresses(name) {
        return addrs.iter().map(String::as_str).collect();
    }
    if name.eq_ignore_ascii_case("subject") && mail.header("subject").is_none() {
        return mail.subject.split(',').map(str::trim).collect();
    }
    mail.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .collect()
}

/// Applies every matching rule in order (later ones override earlier ones) and
/// returns the indices of the rules that applied, for the log.
pub fn apply(rules: &[Rule], mail: &Mail, ticket: &mut NewTicket) -> Vec<usize> {
    let mut applied = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if rule.matches(mail) {
            for (field, value) in &rule.defaults {
                ticket.set(field, value);
            }
            applied.push(i);
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(order: &[&str], pattern: &str, defaults: &[(&str, &str)]) -> Rule {
        Rule::new(
            &order.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            pattern,
            &defaults
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    fn mail() -> Mail {
        Mail {
            headers: vec![
                ("Subject".into(), "Hola, és URGENT".into()),
                ("X-Grup".into(), "alfa, beta".into()),
            ],
            subject: "Hola, és URGENT".into(),
            to: vec![
                "mail.qualsevol1@gmail.com".into(),
                "mail.concret1@mail.com".into(),
            ],
            cc: vec![
                "mail.qualsevol2@mail.com".into(),
                "mail.concret2@mail.com".into(),
            ],
            from: vec!["pep@upc.edu".into()],
            ..Mail::default()
        }
    }

    #[test]
    fn second_cc_value_matches() {
        let r = rule(&["Cc"], "mail.concret2", &[("equipResolutor", "7")]);
        let mut t = NewTicket::default();
        assert_eq!(apply(&[r], &mail(), &mut t), vec![0]);
        assert_eq!(t.equip_resolutor, "7");
    }

    #[test]
    fn urgent_subject_case_insensitive() {
        let r = rule(&["Subject"], ".*urgent", &[("urgencia", "GRAVETAT_ALTA")]);
        let mut t = NewTicket {
            urgencia: "GRAVETAT_MITJA".into(),
            ..NewTicket::default()
        };
        apply(&[r], &mail(), &mut t);
        assert_eq!(t.urgencia, "GRAVETAT_ALTA");
    }

    #[test]
    fn match_is_at_start() {
        let r = rule(&["To"], "concret1", &[("producte", "P")]);
        let mut t = NewTicket::default();
        assert!(apply(&[r], &mail(), &mut t).is_empty());
        assert_eq!(t.producte, "");
    }

    #[test]
    fn every_rule_applies_later_overrides() {
        let rules = vec![
            rule(
                &["From"],
                "pep@",
                &[("equipResolutor", "1"), ("producte", "A")],
            ),
            rule(&["To", "Cc"], "mail.concret", &[("equipResolutor", "2")]),
            rule(&["X-Grup"], "beta", &[("subservei", "S")]),
            rule(&["X-Absent"], ".*", &[("impacte", "II_ALT")]),
        ];
        let mut t = NewTicket::default();
        assert_eq!(apply(&rules, &mail(), &mut t), vec![0, 1, 2]);
        assert_eq!(t.equip_resolutor, "2");
        assert_eq!(t.producte, "A");
        assert_eq!(t.subservei, "S");
        assert_eq!(t.impacte, "");
    }

    #[test]
    fn resent_to_replaces_to() {
        let mut m = mail();
        m.resent_to = vec!["suport@upc.edu".into()];
        assert_eq!(header_values(&m, "to"), vec!["suport@upc.edu"]);
        assert_eq!(
            header_values(&m, "Cc"),
            vec!["mail.qualsevol2@mail.com", "mail.concret2@mail.com"]
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(Rule::new(&["To".into()], "(", &[]).is_err());
        let e = Rule::new(&["To".into()], "x", &[("nope".into(), "v".into())]).unwrap_err();
        assert!(e.contains("nope"));
        assert!(Rule::new(&[], "x", &[]).is_err());
    }
}
