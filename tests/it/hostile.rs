//! Hostile senders (issue 10), end to end: the built binary against the sandbox bus
//! (its state folder shared with the test, which reads the tickets back), each attack
//! of the issue with the default configuration, plus the settings that keep the old
//! behaviour reachable.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mailtoticket::sandbox::{self, SimTicket};

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

struct World {
    dir: tempfile::TempDir,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl World {
    /// A sandbox world knowing `nom.cognom@upc.edu`, `maria.garcia@upc.edu` and
    /// `tecnic@upc.edu`.
    fn new() -> World {
        let w = World {
            dir: tempfile::tempdir().unwrap(),
        };
        for (cn, mail) in [
            ("nom.cognom", "nom.cognom@upc.edu"),
            ("maria.garcia", "maria.garcia@upc.edu"),
            ("tecnic", "tecnic@upc.edu"),
        ] {
            sandbox::add_person(&w.sandbox(), cn, &[mail.to_string()]).unwrap();
        }
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn sandbox(&self) -> PathBuf {
        self.path("sandbox")
    }

    /// The configuration: `filtres` reply, nou, nou_extern unless `extra` sets them.
    fn config(&self, extra: &str) -> PathBuf {
        let filtres = if extra.contains("filtres") {
            ""
        } else {
            "filtres = [\"reply\", \"nou\", \"nou_extern\"]\n"
        };
        let text = format!(
            "bus = \"sandbox\"\ndomini = \"1234\"\nequip_resolutor_nous = \"98765\"\n\
             usuari_extern = \"extern\"\n{filtres}\
             log_file = \"{}\"\nstate_dir = \"{}\"\nsandbox_dir = \"{}\"\n{extra}\n",
            self.path("logs/m2t.log").display(),
            self.path("state").display(),
            self.sandbox().display(),
        );
        let p = self.path("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("logs/m2t.log")).unwrap_or_default()
    }

    /// Runs the MDA on `raw` with `cfg`, through `sh` with umask 022.
    fn deliver(&self, cfg: &Path, raw: &[u8]) -> (String, Output) {
        let out = crate::bin_support::run_piped(
            Command::new("sh")
                .arg("-c")
                .arg("umask 022; exec \"$0\" -c \"$1\"")
                .arg(BIN)
                .arg(cfg),
            raw,
        );
        (crate::bin_support::mda_status(&out), out)
    }

    fn ticket(&self, code: u64) -> SimTicket {
        sandbox::load_ticket(&self.sandbox(), code)
            .unwrap()
            .unwrap()
    }

    fn ticket_count(&self) -> usize {
        sandbox::list_tickets(&self.sandbox()).unwrap().len()
    }

    /// A new ticket from `nom.cognom@upc.edu` (Cc `cc` when given): its code.
    fn first_ticket(&self, cfg: &Path, cc: Option<&str>) -> u64 {
        let extra = cc.map(|c| format!("Cc: {c}\n")).unwrap_or_default();
        let (status, out) = self.deliver(
            cfg,
            &mail("nom.cognom@upc.edu", &extra, "No va la impressora", "Hola"),
        );
        assert_eq!(status, "SUCCESS", "{}\n{}", self.log(), err(&out));
        sandbox::list_tickets(&self.sandbox())
            .unwrap()
            .last()
            .unwrap()
            .codi
    }
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A mail with a unique Message-ID; `extra` = more header lines (each ending `\n`).
fn mail(from: &str, extra: &str, subject: &str, body: &str) -> Vec<u8> {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    format!(
        "{extra}From: {from}\nTo: suport@upc.edu\nSubject: {subject}\n\
         Date: Tue, 05 Mar 2024 10:07:00 +0100\nMessage-ID: <hostile-{n}-{}@test>\n\n{body}\n",
        std::process::id()
    )
    .into_bytes()
}

fn reply(from: &str, extra: &str, code: u64, body: &str) -> Vec<u8> {
    mail(
        from,
        &format!("{extra}In-Reply-To: <0-tiquet-id-{code}@gn6>\n"),
        &format!("Re: [Suport Unitat {code}] No va la impressora"),
        body,
    )
}

// ------------------------------------------------------------- participants

#[test]
fn stranger_reply_is_a_private_unnotified_marked_comment() {
    let w = World::new();
    let cfg = w.config("");
    let code = w.first_ticket(&cfg, None);
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "mallory@evil.example",
            &format!("In-Reply-To: <0-tiquet-id-{code}@gn6>\n"),
            &format!("Re: [Suport Unitat {code}] x (comentari privat)"),
            "Paga aquí",
        ),
    );
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let t = w.ticket(code);
    let c = t.comments.last().expect("a comment");
    assert!(c.private && !c.notified, "{c:?}");
    assert_eq!(c.author, "extern");
    assert!(c.text.contains("no és participant"), "{}", c.text);
    // Even a subject line alone reaches no more than that.
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "mallory@evil.example",
            "",
            &format!("Re: [Suport Unitat {code}] x"),
            "Paga aquí",
        ),
    );
    assert_eq!(status, "SUCCESS");
    let c = w.ticket(code).comments.last().unwrap().clone();
    assert!(c.private && !c.notified, "{c:?}");
}

#[test]
fn stranger_reply_public_and_nou_settings() {
    let w = World::new();
    let cfg = w.config("respostes_no_participants = \"public\"");
    let code = w.first_ticket(&cfg, None);
    let (status, _) = w.deliver(&cfg, &reply("mallory@evil.example", "", code, "x"));
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let c = w.ticket(code).comments.last().unwrap().clone();
    assert!(!c.private && c.notified, "the old behaviour: {c:?}");

    let cfg = w.config("respostes_no_participants = \"nou\"");
    let before = w.ticket_count();
    let comments = w.ticket(code).comments.len();
    let (status, _) = w.deliver(&cfg, &reply("mallory@evil.example", "", code, "x"));
    assert_eq!(status, "SUCCESS", "{}", w.log());
    assert_eq!(w.ticket_count(), before + 1, "a new ticket");
    assert_eq!(w.ticket(code).comments.len(), comments, "no comment");
    let new = w.ticket(
        sandbox::list_tickets(&w.sandbox())
            .unwrap()
            .last()
            .unwrap()
            .codi,
    );
    assert_eq!(new.solicitant, "extern");
}

#[test]
fn participant_reply_by_address_and_by_username_is_public() {
    let w = World::new();
    let cfg = w.config("");
    let code = w.first_ticket(&cfg, None);
    // by address: the ticket's emailSolicitant
    let (status, _) = w.deliver(&cfg, &reply("Nom.Cognom@upc.edu", "", code, "gràcies"));
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let c = w.ticket(code).comments.last().unwrap().clone();
    assert!(!c.private, "{c:?}");
    assert_eq!(c.author, "nom.cognom");
    // by username: another address of the same person
    sandbox::add_person(
        &w.sandbox(),
        "nom.cognom",
        &["nom.cognom@upc.edu".into(), "nom@gmail.com".into()],
    )
    .unwrap();
    let (status, _) = w.deliver(&cfg, &reply("nom@gmail.com", "", code, "des de casa"));
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let c = w.ticket(code).comments.last().unwrap().clone();
    assert!(!c.private && !c.text.contains("no és participant"), "{c:?}");
    assert_eq!(c.author, "nom.cognom");
    // an agent, notified to the requester
    let cfg = w.config("agents = [\"tecnic\"]");
    let (status, _) = w.deliver(&cfg, &reply("tecnic@upc.edu", "", code, "fet"));
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let c = w.ticket(code).comments.last().unwrap().clone();
    assert!(!c.private && c.notified, "{c:?}");
}

#[test]
fn cc_added_requester_reply_is_a_participant() {
    let w = World::new();
    let cfg = w.config("afegir_solicitants_addicionals_en_cc = true");
    let code = w.first_ticket(&cfg, Some("maria.garcia@upc.edu"));
    assert_eq!(w.ticket(code).solicitants_addicionals, ["maria.garcia"]);
    let (status, _) = w.deliver(&cfg, &reply("maria.garcia@upc.edu", "", code, "jo també"));
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let c = w.ticket(code).comments.last().unwrap().clone();
    assert!(!c.private && c.notified, "{c:?}");
    assert_eq!(c.author, "maria.garcia");
    // the private marker is honoured from a participant
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "maria.garcia@upc.edu",
            &format!("In-Reply-To: <0-tiquet-id-{code}@gn6>\n"),
            "Re: x (comentari privat)",
            "nota",
        ),
    );
    assert_eq!(status, "SUCCESS");
    let c = w.ticket(code).comments.last().unwrap().clone();
    assert!(c.private && !c.text.contains("no és participant"), "{c:?}");
}

// ------------------------------------------------------------- authenticity

const OURS: &str = "autenticacio_servidor = [\"mx.upc.edu\"]";

#[test]
fn forged_from_failing_our_authentication_is_external() {
    let w = World::new();
    let cfg = w.config(OURS);
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "nom.cognom@upc.edu",
            "Authentication-Results: mx.upc.edu; dmarc=fail (p=reject) header.from=upc.edu; spf=fail\n",
            "Canvieu-me la contrasenya",
            "x",
        ),
    );
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let t = w.ticket(w.ticket_count() as u64);
    assert_eq!(t.solicitant, "extern", "never a UPC identity");
    assert!(
        t.descripcio.contains("nom.cognom@upc.edu"),
        "claimed address kept"
    );
    assert!(t.descripcio.contains("no ha superat l'autenticació"));
    // and as a reply it is no participant, even with the requester's own address
    let code = w.first_ticket(&cfg, None);
    let (status, _) = w.deliver(
        &cfg,
        &reply(
            "nom.cognom@upc.edu",
            "Authentication-Results: mx.upc.edu; dmarc=fail header.from=upc.edu\n",
            code,
            "tanqueu-lo",
        ),
    );
    assert_eq!(status, "SUCCESS");
    let c = w.ticket(code).comments.last().unwrap().clone();
    assert!(c.private && !c.notified && c.author == "extern", "{c:?}");
}

#[test]
fn foreign_authentication_results_are_ignored() {
    let w = World::new();
    let cfg = w.config(OURS);
    // A header written by someone else (or a look-alike id) says nothing.
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "nom.cognom@upc.edu",
            "Authentication-Results: mx.upc.edu.evil.example; dmarc=fail\n\
             Authentication-Results: evil.example; dmarc=fail\n",
            "Hola",
            "x",
        ),
    );
    assert_eq!(status, "SUCCESS", "{}", w.log());
    assert_eq!(w.ticket(w.ticket_count() as u64).solicitant, "nom.cognom");
    // ... nor can a foreign pass make a Reply-To trusted
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "nom.cognom@upc.edu",
            "Authentication-Results: evil.example; dmarc=pass header.from=upc.edu\n\
             Reply-To: maria.garcia@upc.edu\n",
            "Hola",
            "x",
        ),
    );
    assert_eq!(status, "SUCCESS");
    assert_eq!(w.ticket(w.ticket_count() as u64).solicitant, "nom.cognom");
}

// ------------------------------------------------------------- Reply-To

#[test]
fn reply_to_impersonation_refused_and_web_form_accepted() {
    let w = World::new();
    let cfg = w.config("remitents_formulari = [\"web@upc.edu\"]");
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "mallory@evil.example",
            "Reply-To: maria.garcia@upc.edu\n",
            "Soc la Maria",
            "x",
        ),
    );
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let t = w.ticket(w.ticket_count() as u64);
    assert_eq!(t.solicitant, "extern");
    assert_eq!(t.email_solicitant, "mallory@evil.example");
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "web@upc.edu",
            "Reply-To: maria.garcia@upc.edu\n",
            "Formulari",
            "x",
        ),
    );
    assert_eq!(status, "SUCCESS", "{}", w.log());
    let t = w.ticket(w.ticket_count() as u64);
    assert_eq!(t.solicitant, "maria.garcia");
    assert_eq!(t.email_solicitant, "maria.garcia@upc.edu");
    // the old behaviour, by configuration
    let cfg = w.config("confiar_sempre_reply_to = true");
    w.deliver(
        &cfg,
        &mail(
            "x@evil.example",
            "Reply-To: maria.garcia@upc.edu\n",
            "x",
            "x",
        ),
    );
    assert_eq!(w.ticket(w.ticket_count() as u64).solicitant, "maria.garcia");
}

// ------------------------------------------------------------- limits

#[test]
fn rotating_from_addresses_hit_the_requester_limit() {
    let w = World::new();
    let cfg =
        w.config("max_tickets_per_hour = 2\nremitents_formulari = [\"^form[0-9]+@upc\\\\.edu$\"]");
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (status, _) = w.deliver(
            &cfg,
            &mail(
                &format!("form{i}@upc.edu"),
                "Reply-To: maria.garcia@upc.edu\n",
                "Formulari",
                "x",
            ),
        );
        statuses.push(status);
    }
    assert_eq!(statuses, ["SUCCESS", "SUCCESS", "REJECT"], "{}", w.log());
    assert_eq!(w.ticket_count(), 2);
    assert!(w.log().contains("usuari:maria.garcia"), "{}", w.log());
}

#[test]
fn forged_mail_does_not_lock_out_the_real_user() {
    let w = World::new();
    let cfg = w.config(&format!("{OURS}\nmax_tickets_per_hour = 1"));
    let forged = "Authentication-Results: mx.upc.edu; dmarc=fail header.from=upc.edu\n";
    let (s1, _) = w.deliver(&cfg, &mail("nom.cognom@upc.edu", forged, "a", "x"));
    let (s2, _) = w.deliver(&cfg, &mail("nom.cognom@upc.edu", forged, "b", "x"));
    assert_eq!((s1.as_str(), s2.as_str()), ("SUCCESS", "REJECT"));
    let real = "Authentication-Results: mx.upc.edu; dmarc=pass header.from=upc.edu\n";
    let (s3, _) = w.deliver(&cfg, &mail("nom.cognom@upc.edu", real, "c", "x"));
    assert_eq!(s3, "SUCCESS", "{}", w.log());
}

#[test]
fn comments_per_ticket_and_hour_are_limited() {
    let w = World::new();
    let cfg = w.config("max_comentaris_per_tiquet_hora = 2");
    let code = w.first_ticket(&cfg, None);
    let mut statuses = Vec::new();
    for i in 0..3 {
        let (s, _) = w.deliver(
            &cfg,
            &reply("nom.cognom@upc.edu", "", code, &format!("{i}")),
        );
        statuses.push(s);
    }
    assert_eq!(statuses, ["SUCCESS", "SUCCESS", "REJECT"], "{}", w.log());
    assert_eq!(w.ticket(code).comments.len(), 2);
}

// ------------------------------------------------------------- reports and SMTP

/// A loopback SMTP server offering AUTH PLAIN: every command line and every DATA.
fn smtp_server() -> (u16, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(sock) = sock else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut w = sock.try_clone().unwrap();
                let mut r = BufReader::new(sock);
                let _ = w.write_all(b"220 sink ESMTP\r\n");
                let mut line = String::new();
                let mut in_data = false;
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            let _ = tx.send("DATA-END".into());
                            let _ = w.write_all(b"250 queued\r\n");
                        }
                        continue;
                    }
                    let cmd = line.trim().to_string();
                    let _ = tx.send(cmd.clone());
                    let up = cmd.to_ascii_uppercase();
                    let reply: &[u8] = if up.starts_with("EHLO") {
                        b"250-sink\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"
                    } else if up.starts_with("AUTH") {
                        b"235 ok\r\n"
                    } else if up.starts_with("DATA") {
                        in_data = true;
                        b"354 go\r\n"
                    } else if up.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n");
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(reply);
                }
            });
        }
    });
    (port, rx)
}

fn drain(rx: &std::sync::mpsc::Receiver<String>, wait: Duration) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(l) = rx.recv_timeout(wait) {
        out.push(l);
    }
    out
}

fn report_config(port: u16) -> String {
    format!(
        "notificar_errors = true\nnotificar_errors_from = \"m2t@upc.edu\"\n\
         notificar_errors_to = \"admin@upc.edu\"\nservidor_mail = \"127.0.0.1\"\nsmtp_port = {port}\n"
    )
}

#[test]
fn one_report_per_sender_and_hour() {
    let (port, rx) = smtp_server();
    let w = World::new();
    // Without nou_extern a stranger's new mail is REJECT.
    let cfg = w.config(&format!(
        "filtres = [\"reply\", \"nou\"]\n{}",
        report_config(port)
    ));
    for i in 0..3 {
        let (s, _) = w.deliver(&cfg, &mail("spam@evil.example", "", &format!("{i}"), "x"));
        assert_eq!(s, "REJECT", "{}", w.log());
    }
    let lines = drain(&rx, Duration::from_millis(500));
    let reports = lines.iter().filter(|l| *l == "DATA-END").count();
    assert_eq!(reports, 1, "{lines:?}");
    assert!(
        w.log()
            .contains("ja se n'ha enviat un sobre spam@evil.example")
    );
    // another sender still gets its report
    let (s, _) = w.deliver(&cfg, &mail("other@evil.example", "", "x", "x"));
    assert_eq!(s, "REJECT");
    let lines = drain(&rx, Duration::from_millis(500));
    assert_eq!(lines.iter().filter(|l| *l == "DATA-END").count(), 1);
}

#[test]
fn smtp_auth_is_refused_on_a_plain_connection() {
    let (port, rx) = smtp_server();
    let w = World::new();
    let cfg = w.config(&format!(
        "filtres = [\"nou\"]\n{}smtp_user = \"m2t\"\nsmtp_password = \"Smtp-Clear-77\"\n",
        report_config(port)
    ));
    let (s, _) = w.deliver(&cfg, &mail("spam@evil.example", "", "x", "x"));
    assert_eq!(s, "REJECT");
    let lines = drain(&rx, Duration::from_millis(500));
    assert!(
        !lines
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("AUTH")),
        "{lines:?}"
    );
    assert!(
        w.log().contains("SMTP AUTH sense TLS refusat"),
        "{}",
        w.log()
    );
    assert!(!w.log().contains("Smtp-Clear-77"));
    // check says FAIL
    let o = Command::new(BIN)
        .args(["-c", cfg.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL smtp_user: SMTP AUTH sense TLS"), "{out}");
    assert_ne!(o.status.code(), Some(0));
    // allowed on purpose: AUTH goes out
    let cfg = w.config(&format!(
        "filtres = [\"nou\"]\n{}smtp_user = \"m2t\"\nsmtp_password = \"Smtp-Clear-77\"\nsmtp_permetre_auth_sense_tls = true\n",
        report_config(port)
    ));
    let (s, _) = w.deliver(&cfg, &mail("spam2@evil.example", "", "x", "x"));
    assert_eq!(s, "REJECT");
    let lines = drain(&rx, Duration::from_millis(500));
    assert!(
        lines
            .iter()
            .any(|l| l.to_ascii_uppercase().starts_with("AUTH")),
        "{lines:?}"
    );
}

// ------------------------------------------------------------- file modes

#[cfg(unix)]
#[test]
fn state_files_are_private_under_umask_022() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let cfg = w.config("filtres = [\"nou\"]");
    let (s, _) = w.deliver(&cfg, &mail("spam@evil.example", "", "x", "x"));
    assert_eq!(s, "REJECT", "{}", w.log());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let state = w.path("state");
    assert_eq!(mode(&state), 0o700, "state folder");
    assert_eq!(mode(&w.path("logs/m2t.log")), 0o600, "log");
    for name in [
        "journal.sqlite3",
        "journal.sqlite3-wal",
        "journal.sqlite3-shm",
    ] {
        let p = state.join(name);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{name}");
        }
    }
    assert!(state.join("journal.sqlite3").exists());
    let q = state.join("quarantine");
    assert_eq!(mode(&q), 0o700, "quarantine folder");
    let files: Vec<_> = std::fs::read_dir(&q)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty());
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    // check warns about a wider existing file
    std::fs::set_permissions(
        w.path("logs/m2t.log"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["-c", cfg.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("m2t.log is 644"), "{out}");
}

#[test]
fn reply_to_of_an_authenticated_upc_sender_or_of_the_same_person_is_trusted() {
    let w = World::new();
    let cfg = w.config(OURS);
    // an authenticated From in a trusted domain vouches for its Reply-To
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "nom.cognom@upc.edu",
            "Authentication-Results: mx.upc.edu; dmarc=pass header.from=upc.edu\n\
             Reply-To: maria.garcia@upc.edu\n",
            "De part de la Maria",
            "x",
        ),
    );
    assert_eq!(status, "SUCCESS", "{}", w.log());
    assert_eq!(w.ticket(w.ticket_count() as u64).solicitant, "maria.garcia");
    // not without the pass (no header of ours: unverified)
    let (status, _) = w.deliver(
        &cfg,
        &mail(
            "nom.cognom@upc.edu",
            "Reply-To: maria.garcia@upc.edu\n",
            "x",
            "x",
        ),
    );
    assert_eq!(status, "SUCCESS");
    assert_eq!(w.ticket(w.ticket_count() as u64).solicitant, "nom.cognom");
    // From and Reply-To are one person: the Reply-To is the ticket's address
    sandbox::add_person(
        &w.sandbox(),
        "nom.cognom",
        &["nom.cognom@upc.edu".into(), "nom@gmail.com".into()],
    )
    .unwrap();
    let (status, _) = w.deliver(
        &cfg,
        &mail("nom@gmail.com", "Reply-To: nom.cognom@upc.edu\n", "x", "x"),
    );
    assert_eq!(status, "SUCCESS");
    let t = w.ticket(w.ticket_count() as u64);
    assert_eq!(t.solicitant, "nom.cognom");
    assert_eq!(t.email_solicitant, "nom.cognom@upc.edu");
}
