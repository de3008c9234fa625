//! Issue 13 §2 behaviours through the use case with mocked ports: local time across
//! daylight saving time (the server zone's rules for the mail's own date, not the
//! clock's offset), and a requester replying from another spelling of the address
//! the ticket has.

use chrono::{DateTime, FixedOffset};
use mailtoticket::app::{Ports, Settings, deliver};
use mailtoticket::config::Config;
use mailtoticket::domain::outcome::Status;
use mailtoticket::domain::ticket::{CommentKind, ESTAT_OBERT, NewComment};
use mailtoticket::ports::NoRateLimit;
use mockall::predicate::eq;

use crate::app_support::*;

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn date(rfc3339: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap()
}

/// Settings without `zona_horaria`, on a server whose zone is `zone` (what
/// `Config::load` reads from `TZ` or the system).
fn server_settings(zone: Option<&str>) -> Settings {
    let text = BASE.replace("zona_horaria = \"Europe/Madrid\"", "");
    let mut config = Config::from_toml(&text, std::path::Path::new("t.toml")).unwrap();
    config.set_server_time_zone(zone.map(str::to_string));
    mailtoticket::config::Settings::build(&config).unwrap().app
}

/// The "a les HH:MM" the new ticket's header gets for a mail sent at `sent`, with
/// the clock fixed in winter (+01:00).
fn written_time(s: &Settings, sent: &str) -> String {
    let mut m = mail("pep@upc.edu", "x", "x");
    m.date = Some(date(sent));
    let mut t = MockTickets::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let keep = seen.clone();
    t.expect_create_ticket().times(1).returning(move |n| {
        *keep.lock().unwrap() = n.descripcio.clone();
        Ok("1".into())
    });
    let winter = FixedClock(date("2025-12-03T10:00:00+01:00"));
    let d = block(deliver(
        &m,
        s,
        &Ports {
            tickets: &t,
            identity: &directory_of_pep(),
            clock: &winter,
            journal: &journal(),
            rate: &NoRateLimit,
        },
    ));
    assert_eq!(d.status, Status::Success, "{d:?}");
    let text = seen.lock().unwrap().clone();
    // "[Tiquet creat des del correu de … del DD/MM/YYYY a les HH:MM]"
    let end = text.find(']').expect("header");
    text[end - 22..end].to_string()
}

fn directory_of_pep() -> MockDirectory {
    let mut d = MockDirectory::new();
    d.expect_person()
        .returning(|c| Ok((c == "pep").then(|| person(c, None))));
    d.expect_persons_by_email().returning(|_| Ok(vec![]));
    d
}

#[test]
fn local_time_uses_the_server_zone_rules_for_the_mails_own_date() {
    let s = server_settings(Some("Europe/Madrid"));
    for (sent, expected) in [
        // the example: summer time although the clock is in winter
        ("2025-04-02T10:18:40+02:00", "02/04/2025 a les 10:18"),
        ("2025-04-02T08:18:40+00:00", "02/04/2025 a les 10:18"),
        // spring transition day (30 March 2025, 02:00 → 03:00)
        ("2025-03-30T00:59:00+00:00", "30/03/2025 a les 01:59"),
        ("2025-03-30T01:00:00+00:00", "30/03/2025 a les 03:00"),
        // autumn transition day (26 October 2025, 03:00 → 02:00)
        ("2025-10-26T00:59:00+00:00", "26/10/2025 a les 02:59"),
        ("2025-10-26T01:00:00+00:00", "26/10/2025 a les 02:00"),
        // winter, as before
        ("2025-12-01T09:07:00+00:00", "01/12/2025 a les 10:07"),
    ] {
        assert_eq!(written_time(&s, sent), expected, "{sent}");
    }
    // zona_horaria still wins over the server's zone
    let text = BASE.replace("Europe/Madrid", "America/New_York");
    let mut config = Config::from_toml(&text, std::path::Path::new("t.toml")).unwrap();
    config.set_server_time_zone(Some("Europe/Madrid".into()));
    let ny = mailtoticket::config::Settings::build(&config).unwrap().app;
    assert_eq!(
        written_time(&ny, "2025-04-02T10:18:40+02:00"),
        "02/04/2025 a les 04:18"
    );
    // a server whose zone cannot be told keeps the clock's offset (the old behaviour)
    let unknown = server_settings(None);
    assert_eq!(
        written_time(&unknown, "2025-04-02T10:18:40+02:00"),
        "02/04/2025 a les 09:18"
    );
}

#[test]
fn server_zone_is_read_from_tz() {
    use mailtoticket::config::detect_server_time_zone;
    for tz in [
        "Europe/Madrid",
        ":Europe/Madrid",
        "/usr/share/zoneinfo/Europe/Madrid",
    ] {
        assert_eq!(
            detect_server_time_zone(|k| (k == "TZ").then(|| tz.to_string())).as_deref(),
            Some("Europe/Madrid"),
            "{tz}"
        );
    }
    // a POSIX rule string names no zone: not guessed
    assert_eq!(
        detect_server_time_zone(|k| (k == "TZ").then(|| "CET-1CEST,M3.5.0,M10.5.0/3".into())),
        None
    );
}

/// A reply from `from` to a ticket whose requester is pep.garcia with
/// emailSolicitant `on_ticket`; `from` resolves to nobody in the directory.
fn reply_author(from: &'static str, on_ticket: &'static str) -> (String, bool, CommentKind) {
    let s = settings("");
    let mut t = MockTickets::new();
    t.expect_query_ticket()
        .with(eq("657421"))
        .returning(move |c| Ok(Some(ticket_info(c, ESTAT_OBERT, "pep.garcia", on_ticket))));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None::<NewComment>));
    let keep = seen.clone();
    t.expect_add_comment().times(1).returning(move |c| {
        *keep.lock().unwrap() = Some(c.clone());
        Ok(())
    });
    let mut m = mail(from, "Re: el vostre tiquet", "<p>Gràcies</p>");
    m.in_reply_to = vec!["<4b3b6b9c-bd31-tiquet-id-657421@gn6>".into()];
    let mut d = MockDirectory::new();
    d.expect_person().returning(|_| Ok(None));
    d.expect_persons_by_email().returning(|_| Ok(vec![]));
    let out = block(deliver(
        &m,
        &s,
        &Ports {
            tickets: &t,
            identity: &d,
            clock: &clock(),
            journal: &journal(),
            rate: &NoRateLimit,
        },
    ));
    assert_eq!(out.status, Status::Success, "{out:?}");
    let c = seen.lock().unwrap().clone().unwrap();
    (c.usuari, c.notificar, c.tipus)
}

#[test]
fn requester_replying_from_another_spelling_is_the_ticket_requester_not_notified() {
    for (from, on_ticket) in [
        // case and surrounding spaces
        ("pep.garcia@gmail.com", "  Pep.Garcia@GMAIL.com "),
        // the configured rewrites (.upc.es → .upc.edu, @lsi → @cs), both ways
        ("pep.garcia@ac.upc.es", "pep.garcia@ac.upc.edu"),
        ("Pep.Garcia@AC.UPC.EDU", "pep.garcia@ac.upc.es"),
        ("pep.garcia@lsi.upc.edu", "pep.garcia@cs.upc.edu"),
    ] {
        assert_eq!(
            reply_author(from, on_ticket),
            ("pep.garcia".to_string(), false, CommentKind::Public),
            "{from} vs {on_ticket}"
        );
    }
    // anyone else who resolves to nobody is the external user; not a participant of
    // the ticket, so (issue 10, `respostes_no_participants = "privat"`) a private,
    // never-notified comment
    assert_eq!(
        reply_author("altre@gmail.com", "pep.garcia@gmail.com"),
        ("extern".to_string(), false, CommentKind::Private)
    );
}

/// The directory keys are validated with the key named.
#[test]
fn directory_keys_are_validated() {
    let problems = |text: &str| -> Vec<(String, String)> {
        let c = Config::from_toml(
            &format!("bus = \"sandbox\"\nequip_resolutor_nous = \"1\"\n{text}"),
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        mailtoticket::config::Settings::build(&c)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.key, p.what))
            .filter(|(k, _)| {
                k.starts_with("director") || k.starts_with("LDAP") || k.starts_with("identitat")
            })
            .collect()
    };
    assert!(problems("").is_empty());
    let p = problems("directoris = [\"persones\", \"ldpa\", \"persones\"]");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].1.contains("unknown directory `ldpa`"), "{p:?}");
    assert!(p[1].1.contains("listed twice"), "{p:?}");
    let p = problems("directoris = [\"ldap\", \"identitat_digital\"]");
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "LDAP_SERVER_URL",
            "LDAP_BASE_SEARCH",
            "identitat_digital_apikey"
        ]
    );
    // the old keys alone turn LDAP on, in the old place of the chain
    let c = Config::from_toml(
        "LDAP_SERVER_URL = \"ldaps://l.example\"\nLDAP_BASE_SEARCH = \"dc=x\"\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(
        c.directory_order(),
        ["mails_addicionals", "persones", "ldap", "patrons"]
    );
    assert!(c.ldap_starttls, "StartTLS is on by default");
    let p = problems("identitat_digital_url = \"ftp://x\"\ndirectoris_opcionals = [\"x\"]");
    assert_eq!(p.len(), 2, "{p:?}");
}
