//! The mailbox chain of issue 12, with real servers: Debian's Dovecot (IMAP with
//! STARTTLS on a loopback port, a passwd-file user, its own temporary configuration)
//! and fetchmail 6.4 calling the binary as its MDA, against the sandbox bus served by
//! `mailtoticket sandbox serve` on another loopback port (stopped for the first poll).
//!
//! Needs `dovecot`, `fetchmail` and `openssl` (`.ci/run` installs them when missing).
//! Without them the test says so and passes, except under CI (`CI` set), where it fails.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailtoticket::sandbox;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");
pub(crate) const DOVECOT: &str = "/usr/sbin/dovecot";
pub(crate) const FETCHMAIL: &str = "/usr/bin/fetchmail";
pub(crate) const IMAP_PASSWORD: &str = "imap-Pw-3c91d7";

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn wait_for_port(port: u16, what: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < end, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn sh(cmd: &str, args: &[&str]) -> String {
    let o = Command::new(cmd).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Kills the child when dropped (a failed assertion must not leave servers behind).
pub(crate) struct Guard(pub(crate) Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) struct Chain {
    pub(crate) root: tempfile::TempDir,
    pub(crate) imap_port: u16,
    pub(crate) bus_port: u16,
    /// uid:gid owning the mailbox, when running as root (Dovecot never serves mail as root).
    pub(crate) mail_owner: Option<(u32, u32)>,
    pub(crate) seq: std::cell::Cell<u32>,
}

impl Chain {
    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn maildir(&self) -> PathBuf {
        self.root().join("mail/u")
    }

    pub(crate) fn own(&self, p: &Path) {
        if let Some((uid, gid)) = self.mail_owner {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        }
    }

    /// Drops a mail into the INBOX as the MTA would.
    pub(crate) fn deliver(&self, raw: &[u8]) {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let tmp = self.maildir().join(format!("tmp/{n}.m2t"));
        std::fs::write(&tmp, raw).unwrap();
        self.own(&tmp);
        std::fs::rename(&tmp, self.maildir().join(format!("new/{n}.m2t"))).unwrap();
    }

    /// Mails still on the server.
    pub(crate) fn on_server(&self) -> usize {
        ["new", "cur"]
            .iter()
            .map(|d| std::fs::read_dir(self.maildir().join(d)).unwrap().count())
            .sum()
    }

    /// One fetchmail poll; returns its output.
    fn poll(&self) -> String {
        let o = Command::new(FETCHMAIL)
            .args([
                "-f",
                self.root().join("fetchmailrc").to_str().unwrap(),
                "--nosyslog",
            ])
            .env("FETCHMAILHOME", self.root().join("fetchmail"))
            .env("HOME", self.root())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        // 0 = mail fetched, 1 = no mail; anything else is a failed poll.
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "fetchmail: {:?}\n{text}",
            o.status
        );
        text
    }

    pub(crate) fn serve_bus(&self) -> Guard {
        let mut child = Command::new(BIN)
            .args(["-c", self.root().join("m2t.toml").to_str().unwrap()])
            .args(["sandbox", "serve", "--port", &self.bus_port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Its three lines (GN6, Persones, State) read in full: closing the pipe
        // earlier would kill it on the next print.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut lines = String::new();
        for _ in 0..3 {
            out.read_line(&mut lines).unwrap();
        }
        assert!(lines.starts_with("GN6:"), "{lines}");
        wait_for_port(self.bus_port, "the sandbox bus");
        Guard(child)
    }

    pub(crate) fn tickets(&self) -> Vec<sandbox::TicketSummary> {
        sandbox::list_tickets(&self.root().join("sandbox")).unwrap_or_default()
    }

    pub(crate) fn quarantined(&self) -> usize {
        std::fs::read_dir(self.root().join("state/quarantine"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "eml")
                })
                .count()
            })
            .unwrap_or(0)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.root().join("logs/m2t.log")).unwrap_or_default()
    }
}

pub(crate) fn tools_present() -> bool {
    let present = [DOVECOT, FETCHMAIL].iter().all(|p| Path::new(p).exists())
        && Command::new("openssl").arg("version").output().is_ok();
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "dovecot, fetchmail and openssl are required under CI (.ci/run installs them)"
        );
        eprintln!("chain test skipped: dovecot, fetchmail or openssl missing");
    }
    present
}

pub(crate) fn start(c: &Chain) -> Guard {
    let root = c.root();
    let uid = sh("id", &["-u"]);
    let user = sh("id", &["-un"]);
    let (internal, login, mail_uid, mail_gid) = if uid == "0" {
        ("dovecot".to_string(), "dovenull".to_string(), 65534, 65534)
    } else {
        let gid: u32 = sh("id", &["-g"]).parse().unwrap();
        (user.clone(), user.clone(), uid.parse().unwrap(), gid)
    };
    // A caller may have put its own key.pem and cert.pem there first.
    if !root.join("cert.pem").exists() {
        sh(
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
                root.join("key.pem").to_str().unwrap(),
                "-out",
                root.join("cert.pem").to_str().unwrap(),
            ],
        );
    }
    std::fs::write(
        root.join("passwd"),
        format!("u:{{PLAIN}}{IMAP_PASSWORD}::::::\n"),
    )
    .unwrap();
    let r = root.display();
    // A fresh base_dir per start: after a kill, the old instance's helper processes
    // (anvil, log) may still hold their sockets for a moment, and Dovecot refuses to
    // start over existing sockets.
    static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let conf = format!(
        "base_dir = {r}/run{run}\nstate_dir = {r}/dstate\nlog_path = {r}/dovecot.log\n\
         protocols = imap\nlisten = 127.0.0.1\n\
         ssl = required\nssl_cert = <{r}/cert.pem\nssl_key = <{r}/key.pem\n\
         auth_mechanisms = plain login\n\
         default_internal_user = {internal}\ndefault_login_user = {login}\n\
         mail_location = maildir:{r}/mail/%u\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
         userdb {{\n  driver = static\n  args = uid={mail_uid} gid={mail_gid} home={r}/mail/%u\n}}\n\
         service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
         service anvil {{\n  chroot =\n}}\n\
         service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n",
        port = c.imap_port
    );
    // A caller's extra settings (e.g. a capability list), appended.
    let extra = std::fs::read_to_string(root.join("dovecot-extra.conf")).unwrap_or_default();
    std::fs::write(root.join("dovecot.conf"), conf + &extra).unwrap();
    for d in [
        "",
        "mail",
        "mail/u",
        "mail/u/new",
        "mail/u/cur",
        "mail/u/tmp",
    ] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).unwrap();
        if !d.is_empty() {
            c.own(&p);
        }
    }
    let child = Command::new(DOVECOT)
        .args(["-F", "-c", root.join("dovecot.conf").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("dovecot.stderr")).unwrap())
        .spawn()
        .unwrap();
    let mut guard = Guard(child);
    let end = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", c.imap_port)).is_err() {
        let exited = guard.0.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() >= end {
            panic!(
                "dovecot did not listen on {} (exit: {exited:?}); its log:\n{}\n{}",
                c.imap_port,
                std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default(),
                std::fs::read_to_string(root.join("dovecot.stderr")).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    guard
}

pub(crate) fn mail(n: u32, extra_headers: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Nom Cognom <nom.cognom@upc.edu>\nTo: <suport.unitat@upc.edu>\n\
         Date: Mon, 7 Dec 2026 10:{n:02}:00 +0100\n{extra_headers}Subject: {subject}\n\n{body}\n"
    )
    .into_bytes()
}

#[test]
fn fetchmail_and_dovecot_deliver_each_mail_once_and_keep_what_failed() {
    if !tools_present() {
        return;
    }
    let _serial = crate::TIMING_SENSITIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let root = tempfile::tempdir().unwrap();
    // Dovecot's unprivileged processes must reach the mailbox and the certificate.
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let is_root = sh("id", &["-u"]) == "0";
    let c = Chain {
        root,
        imap_port: free_port(),
        bus_port: free_port(),
        mail_owner: is_root.then_some((65534, 65534)),
        seq: std::cell::Cell::new(0),
    };
    let _dovecot = start(&c);
    let r = c.root().display();
    std::fs::write(
        c.root().join("m2t.toml"),
        format!(
            "bus = \"test\"\nequip_resolutor_nous = \"98765\"\ndomini = \"1234\"\n\
             username_soa = \"usu.soa\"\npassword_soa = \"Soa-Pw-4f1c9e\"\n\
             username_gn6 = \"usugn6\"\npassword_gn6 = \"Gn6-Pw-77ab20\"\n\
             connect_timeout_secs = 2\nrequest_timeout_secs = 2\n\
             log_file = \"logs/m2t.log\"\nstate_dir = \"state\"\nsandbox_dir = \"sandbox\"\n\
             [endpoints]\ngn6 = \"http://127.0.0.1:{p}{}\"\npersones = \"http://127.0.0.1:{p}{}\"\n",
            sandbox::GN6_PATH,
            sandbox::PERSONES_PATH,
            p = c.bus_port
        ),
    )
    .unwrap();
    sandbox::add_person(
        &c.root().join("sandbox"),
        "nom.cognom",
        &["nom.cognom@upc.edu".to_string()],
    )
    .unwrap();
    let user = sh("id", &["-un"]);
    // The README's recipe, with the test's own certificate as trust anchor. No
    // `set invisible` on purpose: fetchmail's own Received line must not matter.
    let rc = c.root().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "set no bouncemail\n\
             poll localhost service {port} proto imap auth password\n\
             \x20 user \"u\" there with password \"{IMAP_PASSWORD}\" is \"{user}\" here\n\
             \x20 mda \"{BIN} -c {r}/m2t.toml >/dev/null\"\n\
             \x20 sslcertfile {r}/cert.pem\n  sslproto tls1.2+\n  nokeep\n",
            port = c.imap_port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::create_dir_all(c.root().join("fetchmail")).unwrap();

    let no_id = mail(4, "", "Sense Message-ID", "No tinc identificador.");
    let mails: Vec<Vec<u8>> = vec![
        mail(1, "Message-ID: <c1@upc.edu>\n", "Impressora", "No imprimeix."),
        mail(
            2,
            "Message-ID: <c2@upc.edu>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n",
            "HTML",
            "<p>Hola <b>món</b></p>",
        ),
        mail(
            3,
            "Message-ID: <c3@upc.edu>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n",
            "Adjunt",
            "--B\nContent-Type: text/plain\n\nMireu l'adjunt\n--B\nContent-Type: text/plain; name=\"a.txt\"\n\
             Content-Disposition: attachment; filename=\"a.txt\"\n\ncontingut\n--B--",
        ),
        no_id.clone(),
        String::from_utf8(mail(5, "Message-ID: <c5@upc.edu>\n", "CRLF", "Línies\nCRLF"))
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes(),
        mail(
            6,
            "Message-ID: <c6@upc.edu>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n",
            "Latin-1",
            "Adre=E7a i acc=E8nts",
        ),
        mail(7, "Message-ID: <c7@upc.edu>\nAuto-Submitted: auto-replied\n", "Fora de l'oficina", "Torno dilluns."),
        mail(8, "Message-ID: <c8@upc.edu>\nAuto-Submitted: auto-generated\n", "Avís automàtic", "Res."),
        // Nobody the directory knows, and no `nou_extern`: REJECT, kept on the server.
        b"From: <desconegut@example.org>\nTo: <suport.unitat@upc.edu>\nDate: Mon, 7 Dec 2026 10:09:00 +0100\nMessage-ID: <c9@example.org>\nSubject: Qui soc\n\nHola\n".to_vec(),
        mail(10, "Message-ID: <c10@upc.edu>\n", "Desè", "El desè correu."),
    ];
    for m in &mails {
        c.deliver(m);
    }

    // Poll 1, bus down: the automatic mails are SKIP (flushed), the rest TEMPFAIL (kept).
    let out = c.poll();
    assert_eq!(c.on_server(), 8, "{out}\n{}", c.log());
    assert!(c.tickets().is_empty());

    // Poll 2, bus up: every mail handled once; the REJECT stays, quarantined once.
    let bus = c.serve_bus();
    let out = c.poll();
    assert_eq!(c.tickets().len(), 7, "{out}\n{}", c.log());
    assert_eq!(c.on_server(), 1, "{out}");
    assert!(out.contains("nonzero status 2"), "{out}");
    // Polls 3 to 6: the REJECTed mail is answered from the journal, nothing new.
    for _ in 0..4 {
        c.poll();
    }
    assert_eq!(c.on_server(), 1);
    assert_eq!(c.quarantined(), 1);
    assert_eq!(c.log().matches("Mail desat a la quarantena").count(), 1);
    assert_eq!(c.log().matches("ja va acabar amb REJECT").count(), 4);
    assert_eq!(c.tickets().len(), 7);

    // The mail without Message-ID delivered (and fetched) again: no second ticket.
    c.deliver(&no_id);
    c.poll();
    assert_eq!(c.on_server(), 1);
    assert_eq!(c.tickets().len(), 7);

    // A reply to the first ticket becomes a comment.
    let first = c
        .tickets()
        .into_iter()
        .find(|t| t.assumpte == "Impressora")
        .expect("ticket of mail 1");
    c.deliver(&mail(
        11,
        "Message-ID: <c11@upc.edu>\n",
        &format!("RE: [Suport Unitat {}] Impressora", first.codi),
        "Ja funciona.",
    ));
    let out = c.poll();
    assert_eq!(c.on_server(), 1, "{out}");
    let after: Vec<_> = c.tickets();
    assert_eq!(after.len(), 7);
    let first = after.iter().find(|t| t.codi == first.codi).unwrap();
    assert_eq!(first.comments, 1, "{}", c.log());

    // The bus stops again: a new mail is kept (TEMPFAIL), and completes once it is back.
    drop(bus);
    c.deliver(&mail(
        12,
        "Message-ID: <c12@upc.edu>\n",
        "Bus aturat",
        "Espero.",
    ));
    c.poll();
    assert_eq!(c.on_server(), 2);
    let _bus = c.serve_bus();
    c.poll();
    assert_eq!(c.on_server(), 1);
    assert_eq!(c.tickets().len(), 8);
}
