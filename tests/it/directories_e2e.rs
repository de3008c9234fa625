//! The identity directories end to end through the binary on the sandbox bus: LDAP
//! against a real slapd and the identity REST API of the simulator find people, so
//! tickets get the right requester; `lookup-user` prints the chain; `check` fails
//! when a directory cannot be reached.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mailtoticket::sandbox::{add_person, list_tickets, load_ticket};

use crate::ldap::{ADMIN_DN, ADMIN_PW, SUFFIX, Slapd};

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "equip_resolutor_nous = \"98765\"\nusuari_extern = \"extern\"\n\
             filtres = [\"reply\", \"nou\", \"nou_extern\"]\nmax_tickets_per_hour = 0\n\
             connect_timeout_secs = 2\nrequest_timeout_secs = 5\n\
             bus = \"sandbox\"\nsandbox_dir = \"{sb}\"\n\
             log_file = \"{log}\"\nstate_dir = \"{state}\"\n{extra}",
            sb = dir.join("sandbox").display(),
            log = dir.join("m2t.log").display(),
            state = dir.join("state").display(),
        ),
    )
    .unwrap();
    cfg
}

fn run(cfg: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(cfg)
        .args(args)
        .env_remove("MAILTOTICKET_PASSWORD_LDAP")
        .env_remove("MAILTOTICKET_IDENTITAT_APIKEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mail(from: &str, id: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\nTo: <suport@upc.edu>\nDate: Tue, 20 Oct 2025 11:01:05 +0200\n\
         Message-ID: <{id}@example.org>\nSubject: No em funciona la impressora\n\n\
         Bon dia,\nla impressora no imprimeix.\n"
    )
    .into_bytes()
}

fn requester_of_only_ticket(dir: &Path, subject_id: usize) -> String {
    let tickets = list_tickets(&dir.join("sandbox")).unwrap();
    assert_eq!(tickets.len(), subject_id, "{tickets:?}");
    tickets.last().unwrap().solicitant.clone()
}

#[test]
fn ldap_finds_the_requester_through_the_binary() {
    let Some(mut server) = Slapd::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "directoris = [\"mails_addicionals\", \"persones\", \"ldap\", \"patrons\"]\n\
             LDAP_SERVER_URL = \"{}\"\nLDAP_STARTTLS = false\n\
             LDAP_BIND_USER = \"{ADMIN_DN}\"\nLDAP_PASSWORD = \"{ADMIN_PW}\"\n\
             LDAP_BASE_SEARCH = \"{SUFFIX}\"\n",
            server.url()
        ),
    );
    let o = run(&cfg, &[], &mail("joan.puig@gmail.com", "ldap-1"));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("X-Mailtoticket: SUCCESS"),
        "{out}\n{}",
        text(&o.stderr)
    );
    assert_eq!(requester_of_only_ticket(dir.path(), 1), "joan.puig@eetac");

    // lookup-user: every directory tried, in order, with its answer and time
    let o = run(&cfg, &["lookup-user", "Joan.Puig@gmail.com"], b"");
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("mails_addicionals") && lines[0].contains("not found"));
    assert!(lines[1].starts_with("persones") && lines[1].contains("not found"));
    assert!(lines[2].starts_with("ldap") && lines[2].contains("found joan.puig@eetac"));
    assert!(lines[2].ends_with(" ms)"), "{out}");
    assert_eq!(
        lines[3],
        "joan.puig@eetac\t(found by LDAP (cn@ou de la primera entrada))"
    );

    let o = run(&cfg, &["check"], b"");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(
        text(&o.stdout).contains("bind accepted"),
        "{}",
        text(&o.stdout)
    );

    // the directory goes away: the mail is TEMPFAIL (kept by the MTA), check FAILs
    server.stop();
    let o = run(&cfg, &[], &mail("joan.puig@gmail.com", "ldap-2"));
    assert!(
        text(&o.stdout).starts_with("X-Mailtoticket: TEMPFAIL"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(o.status.code(), Some(75));
    assert_eq!(list_tickets(&dir.path().join("sandbox")).unwrap().len(), 1);
    let o = run(&cfg, &["check"], b"");
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("LDAP"), "{}", text(&o.stdout));
    let o = run(&cfg, &["lookup-user", "joan.puig@gmail.com"], b"");
    assert_eq!(o.status.code(), Some(75));
    assert!(text(&o.stdout).contains("ldap"), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("FAILED"), "{}", text(&o.stdout));
    // the password never reaches the log
    let log = std::fs::read_to_string(dir.path().join("m2t.log")).unwrap_or_default();
    assert!(!log.contains(ADMIN_PW));

    // The metrics count the look-ups of the two mails: answered, then unreachable.
    let o = run(&cfg, &["metrics"], b"");
    let metrics = text(&o.stdout);
    let count = |result: &str| {
        let head = format!(
            "mailtoticket_soap_calls_total{{service=\"ldap\",operation=\"search\",result=\"{result}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(head.as_str()))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(count("ok") >= 1.0, "{metrics}");
    assert!(count("transient") >= 1.0, "{metrics}");
}

#[test]
fn identity_rest_api_of_the_sandbox_finds_the_requester() {
    let dir = tempfile::tempdir().unwrap();
    add_person(
        &dir.path().join("sandbox"),
        "maria.soler",
        &["maria.soler@upc.edu".into(), "maria.soler@gmail.com".into()],
    )
    .unwrap();
    // Persones is left out of the chain: only the REST API can know her.
    let cfg = write_config(
        dir.path(),
        "directoris = [\"mails_addicionals\", \"identitat_digital\", \"patrons\"]\n\
         identitat_digital_apikey = \"Api-Key-0c7e\"\n",
    );
    let o = run(&cfg, &[], &mail("Maria.Soler@gmail.com", "rest-1"));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("X-Mailtoticket: SUCCESS"),
        "{out}\n{}",
        text(&o.stderr)
    );
    assert_eq!(requester_of_only_ticket(dir.path(), 1), "maria.soler");
    // nobody: the external user
    let o = run(&cfg, &[], &mail("ningu@example.org", "rest-2"));
    assert!(text(&o.stdout).starts_with("X-Mailtoticket: SUCCESS"));
    assert_eq!(requester_of_only_ticket(dir.path(), 2), "extern");

    let o = run(&cfg, &["lookup-user", "maria.soler@gmail.com"], b"");
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("identitat_digital  found maria.soler"),
        "{out}"
    );
    assert!(!out.contains("persones"), "{out}");
    let o = run(&cfg, &["check"], b"");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("identitat_digital"));
}

#[test]
fn ticket_time_follows_the_tz_rules_of_the_mails_date() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let raw = b"From: <nom.cognom@upc.edu>\nTo: <suport@upc.edu>\n\
Date: Wed, 2 Apr 2025 10:18:40 +0200\nMessage-ID: <dst-1@upc.edu>\nSubject: Hora d'estiu\n\nHola\n";
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&cfg)
        .env("TZ", "Europe/Madrid")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        text(&o.stdout).starts_with("X-Mailtoticket: SUCCESS"),
        "{}",
        text(&o.stderr)
    );
    let sandbox = dir.path().join("sandbox");
    let code = list_tickets(&sandbox).unwrap().last().unwrap().codi;
    let ticket = load_ticket(&sandbox, code).unwrap().unwrap();
    // whatever today's offset is, the mail's own date is in summer time (+02:00)
    assert!(
        ticket.descripcio.contains("del 02/04/2025 a les 10:18]"),
        "{}",
        ticket.descripcio
    );
}
