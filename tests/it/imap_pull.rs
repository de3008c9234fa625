//! Pull mode (issue 12 §3) against a real Dovecot (STARTTLS on loopback, the
//! chain test's set-up) and the sandbox bus: `mailtoticket imap` one pass with
//! several kinds of mail, TEMPFAIL kept in the INBOX while the bus is down, a process
//! killed between the processing and the move (test fault hook), and `--watch` with
//! a mail delivered while it idles.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mailtoticket::sandbox;

use crate::chain::{BIN, Chain, Guard, IMAP_PASSWORD, free_port, mail, sh, start, tools_present};

/// Mails in a Dovecot maildir++ folder of the test user (INBOX when `folder` is "").
pub(crate) fn in_folder(c: &Chain, folder: &str) -> usize {
    let dir = if folder.is_empty() {
        c.maildir()
    } else {
        c.maildir().join(format!(".{folder}"))
    };
    ["new", "cur"]
        .iter()
        .map(|d| std::fs::read_dir(dir.join(d)).map_or(0, |r| r.count()))
        .sum()
}

pub(crate) fn imap(c: &Chain, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["-c", c.root().join("m2t.toml").to_str().unwrap(), "imap"])
        .args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{:?}\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Polls `cond` every 20 ms for at most `secs` seconds.
fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// A test CA and a server certificate it signed (rustls refuses a self-signed CA
/// certificate used as the server's own), written where `start` looks for them.
fn server_certificate(root: &Path) {
    let p = |f: &str| root.join(f).to_str().unwrap().to_string();
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
            "/CN=mailtoticket test CA",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
        ],
    );
    sh(
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            &p("key.pem"),
            "-out",
            &p("leaf.csr"),
        ],
    );
    std::fs::write(
        root.join("leaf.ext"),
        "basicConstraints=CA:FALSE
subjectAltName=DNS:localhost,IP:127.0.0.1
",
    )
    .unwrap();
    sh(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &p("leaf.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("leaf.ext"),
            "-out",
            &p("cert.pem"),
        ],
    );
}

fn write_config(c: &Chain) {
    let r = c.root();
    std::fs::write(r.join("imap.pw"), format!("{IMAP_PASSWORD}\n")).unwrap();
    std::fs::write(
        r.join("m2t.toml"),
        format!(
            "bus = \"test\"\nequip_resolutor_nous = \"98765\"\ndomini = \"1234\"\n\
             username_soa = \"usu.soa\"\npassword_soa = \"Soa-Pw-4f1c9e\"\n\
             username_gn6 = \"usugn6\"\npassword_gn6 = \"Gn6-Pw-77ab20\"\n\
             connect_timeout_secs = 2\nrequest_timeout_secs = 2\n\
             log_file = \"logs/m2t.log\"\nstate_dir = \"state\"\nsandbox_dir = \"sandbox\"\n\
             [endpoints]\ngn6 = \"http://127.0.0.1:{p}{}\"\npersones = \"http://127.0.0.1:{p}{}\"\n\
             [imap]\nserver = \"127.0.0.1\"\nport = {ip}\ntls = \"starttls\"\nuser = \"u\"\n\
             password_file = \"imap.pw\"\nca_file = \"ca.pem\"\ntimeout_secs = 5\n\
             idle_secs = 60\nbackoff_max_secs = 2\n\
             [health]\nlisten = \"{hp}\"\n",
            sandbox::GN6_PATH,
            sandbox::PERSONES_PATH,
            p = c.bus_port,
            ip = c.imap_port,
            hp = free_port(),
        ),
    )
    .unwrap();
    sandbox::add_person(
        &r.join("sandbox"),
        "nom.cognom",
        &["nom.cognom@upc.edu".to_string()],
    )
    .unwrap();
}

/// Stops Dovecot abruptly: its master and every process it started (the IMAP
/// processes holding the connections) are killed, so clients see the connection drop
/// at once and the port refuses connections until it is started again.
pub(crate) fn stop(mut dovecot: Guard) {
    let master = dovecot.0.id().to_string();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid ...`: the fields after the last `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid == Some(master.as_str())
            && let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>()
        {
            // SAFETY: a plain kill(2) of a process our own child started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    let _ = dovecot.0.kill();
    let _ = dovecot.0.wait();
}

/// Dovecot (with `extra` settings) and the gateway's configuration.
pub(crate) fn set_up(extra: &str) -> (Chain, Guard) {
    let root = tempfile::tempdir().unwrap();
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
    server_certificate(c.root());
    std::fs::write(c.root().join("dovecot-extra.conf"), extra).unwrap();
    let dovecot = start(&c);
    write_config(&c);
    (c, dovecot)
}

#[test]
fn imap_pull_mode_moves_each_mail_once_to_its_folder() {
    if !tools_present() {
        return;
    }
    let _serial = crate::TIMING_SENSITIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let (c, dovecot) = set_up("auth_failure_delay = 0\n");

    c.deliver(&mail(
        1,
        "Message-ID: <p1@upc.edu>\n",
        "Impressora",
        "No imprimeix.",
    ));
    c.deliver(&mail(
        2,
        "Message-ID: <p2@upc.edu>\nMIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n",
        "HTML",
        "<p>Hola <b>món</b></p>",
    ));
    c.deliver(&mail(3, "", "Sense Message-ID", "No tinc identificador."));
    c.deliver(&mail(
        4,
        "Message-ID: <p4@upc.edu>\nAuto-Submitted: auto-replied\n",
        "Fora de l'oficina",
        "Torno dilluns.",
    ));
    c.deliver(b"From: <desconegut@example.org>\nTo: <suport.unitat@upc.edu>\nDate: Mon, 7 Dec 2026 10:05:00 +0100\nMessage-ID: <p5@example.org>\nSubject: Qui soc\n\nHola\n");

    // Bus down: the automatic mail is SKIP (moved), the rest TEMPFAIL stays in INBOX.
    let o = imap(&c, &[], &[]);
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    assert_eq!(in_folder(&c, ""), 4, "{}", c.log());
    assert_eq!(in_folder(&c, "descartats"), 1);
    assert_eq!(in_folder(&c, "processats"), 0);
    assert!(c.tickets().is_empty());
    assert!(
        c.log()
            .contains("5 mails, 0 processats, 1 descartats, 0 amb error, 4 pendents"),
        "{}",
        c.log()
    );

    // Bus up: three tickets, the REJECT to `errors`, nothing left in INBOX.
    let _bus = c.serve_bus();
    let o = imap(&c, &[], &[]);
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    assert_eq!(in_folder(&c, ""), 0, "{}", c.log());
    assert_eq!(in_folder(&c, "processats"), 3);
    assert_eq!(in_folder(&c, "errors"), 1);
    assert_eq!(in_folder(&c, "descartats"), 1);
    assert_eq!(c.tickets().len(), 3);
    assert_eq!(c.quarantined(), 1);
    // The quarantined copy says how it came and which configuration it ran with, for
    // `quarantine reprocess` (issue 18).
    let sidecar = std::fs::read_dir(c.root().join("state/quarantine"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "reason"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap();
    assert!(sidecar.contains("\nsource: imap INBOX\n"), "{sidecar}");
    assert!(sidecar.contains("m2t.toml\n"), "{sidecar}");

    // Killed between the journal record and the move: the next pass only moves it.
    c.deliver(&mail(
        6,
        "Message-ID: <p6@upc.edu>\n",
        "Tall",
        "Abans de moure.",
    ));
    let o = imap(
        &c,
        &[],
        &[(mailtoticket::cli::imap::ENV_EXIT_BEFORE_MOVE, "1")],
    );
    assert_eq!(o.status.code(), Some(75), "{}", text(&o));
    assert_eq!(c.tickets().len(), 4);
    assert_eq!(in_folder(&c, ""), 1);
    let o = imap(&c, &[], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(in_folder(&c, ""), 0);
    assert_eq!(in_folder(&c, "processats"), 4);
    assert_eq!(c.tickets().len(), 4, "{}", c.log());
    assert!(c.log().contains("només el moc"));

    // --watch: a mail delivered while it idles is handled without a new run.
    let log_before = c.log().len();
    let child = Command::new(BIN)
        .args([
            "-c",
            c.root().join("m2t.toml").to_str().unwrap(),
            "imap",
            "--watch",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut watch = Guard(child);
    assert!(
        wait_until(20, || c.log()[log_before..].contains("Passada IMAP")),
        "{}",
        c.log()
    );
    c.deliver(&mail(
        7,
        "Message-ID: <p7@upc.edu>\n",
        "En directe",
        "Mentre espera.",
    ));
    assert!(
        wait_until(20, || in_folder(&c, "processats") == 5
            && in_folder(&c, "") == 0),
        "{}",
        c.log()
    );
    assert_eq!(c.tickets().len(), 5);
    assert_eq!(in_folder(&c, ""), 0);

    // The server goes away and comes back: --watch reconnects (backoff at most 2 s).
    stop(dovecot);
    assert!(
        wait_until(10, || std::net::TcpStream::connect((
            "127.0.0.1",
            c.imap_port
        ))
        .is_err()),
        "the old Dovecot still listens"
    );
    assert!(
        wait_until(20, || c.log().contains("torno a connectar")),
        "{}",
        c.log()
    );
    let _dovecot = start(&c);
    c.deliver(&mail(
        8,
        "Message-ID: <p8@upc.edu>\n",
        "Tornada",
        "Ja hi sou?",
    ));
    assert!(
        wait_until(20, || in_folder(&c, "processats") == 6
            && in_folder(&c, "") == 0),
        "{}",
        c.log()
    );
    assert_eq!(c.tickets().len(), 6);
    // Issue 18: the watcher's endpoint and heartbeat; SIGTERM stops it cleanly and
    // removes the heartbeat.
    let health = |args: &[&str]| {
        let o = Command::new(BIN)
            .args(["-c", c.root().join("m2t.toml").to_str().unwrap(), "health"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(health(&[]).contains("heartbeat_age_s="), "{}", health(&[]));
    let config = mailtoticket::config::Config::load(&c.root().join("m2t.toml")).unwrap();
    let addr = config.health.listen_addr().unwrap();
    let get = |path: &str| {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let metrics = get("/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("mailtoticket_mails_total{outcome=\"success\"} 6"),
        "{metrics}"
    );
    assert!(metrics.contains("mailtoticket_imap_heartbeat_timestamp_seconds "));
    assert!(get("/healthz").contains("MAILTOTICKET "));
    // SAFETY: a plain kill(2) of our own child.
    unsafe {
        libc::kill(watch.0.id() as i32, libc::SIGTERM);
    }
    let status = watch.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", c.log());
    assert!(!health(&[]).contains("heartbeat_age_s="), "{}", health(&[]));
    // Last (Dovecot then slows down logins from the address for a while): a wrong
    // password is a configuration fault (1), nothing touched, no secret logged.
    let o = imap(
        &c,
        &[],
        &[("MAILTOTICKET_PASSWORD_IMAP", "Wrong-imap-Pw-5e")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("login refused"), "{}", text(&o));
    assert_eq!(in_folder(&c, ""), 0);

    let log = c.log();
    assert!(!log.contains(IMAP_PASSWORD) && !log.contains("Wrong-imap-Pw-5e"));
}

#[test]
fn without_move_the_mail_is_copied_flagged_and_expunged() {
    if !tools_present() {
        return;
    }
    let _serial = crate::TIMING_SENSITIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    // A server that announces neither MOVE nor UIDPLUS: COPY + \Deleted + EXPUNGE.
    let (c, _dovecot) = set_up(
        "auth_failure_delay = 0\nimap_capability = IMAP4rev1 LITERAL+ SASL-IR IDLE STARTTLS\n",
    );
    let _bus = c.serve_bus();
    c.deliver(&mail(
        1,
        "Message-ID: <m1@upc.edu>\n",
        "Sense MOVE",
        "Hola.",
    ));
    c.deliver(&mail(
        2,
        "Message-ID: <m2@upc.edu>\nAuto-Submitted: auto-generated\n",
        "Avís",
        "Res.",
    ));
    let out = Command::new(BIN)
        .args(["-c", c.root().join("m2t.toml").to_str().unwrap(), "check"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("logged in and selected"),
        "{}",
        text(&out)
    );
    let o = imap(&c, &[], &[]);
    assert!(o.status.success(), "{}\n{}", text(&o), c.log());
    assert!(wait_until(5, || in_folder(&c, "") == 0), "{}", c.log());
    assert_eq!(in_folder(&c, "processats"), 1);
    assert_eq!(in_folder(&c, "descartats"), 1);
    assert_eq!(c.tickets().len(), 1);
    assert!(c.log().contains("sense MOVE"), "{}", c.log());
}

/// The datagrams a fake service manager received so far (`KEY=VALUE` lines each).
fn notifications(sock: &std::os::unix::net::UnixDatagram, got: &mut Vec<String>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
}

#[test]
fn watch_mode_tells_systemd_ready_pings_the_watchdog_and_stops_on_sigterm() {
    if !tools_present() {
        return;
    }
    let _serial = crate::TIMING_SENSITIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let (c, _dovecot) = set_up("auth_failure_delay = 0\n");
    let _bus = c.serve_bus();
    // A fake systemd: the NOTIFY_SOCKET datagram socket, and a 4 s watchdog, so the
    // loop must ping at least every 2 s while IDLE waits (idle_secs is 60 here).
    let path = c.root().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "-c",
            c.root().join("m2t.toml").to_str().unwrap(),
            "imap",
            "--watch",
        ])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "4000000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    let mut got = Vec::new();
    assert!(
        wait_until(20, || {
            notifications(&sock, &mut got);
            got.iter()
                .any(|m| m.starts_with("READY=1\nSTATUS=IMAP: connectat"))
        }),
        "{got:?}\n{}",
        c.log()
    );
    // Pinged from the loop while IDLE waits: two pings at least 1 s apart.
    let first = got.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(
        wait_until(10, || {
            notifications(&sock, &mut got);
            got.iter().filter(|m| *m == "WATCHDOG=1").count() >= first + 2
        }),
        "{got:?}\n{}",
        c.log()
    );
    // Still handling mail, the pass reported in STATUS=.
    c.deliver(&mail(
        1,
        "Message-ID: <sd1@upc.edu>\n",
        "Vigilat",
        "Amb systemd.",
    ));
    assert!(
        wait_until(20, || in_folder(&c, "processats") == 1),
        "{}",
        c.log()
    );
    assert!(
        wait_until(5, || {
            notifications(&sock, &mut got);
            got.iter()
                .any(|m| m.starts_with("STATUS=Passada IMAP de INBOX: 1 mails, 1 processats"))
        }),
        "{got:?}"
    );
    // SIGTERM while idling: STOPPING=1, then exit 0.
    // SAFETY: a plain kill(2) of our own child process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let mut status = None;
    assert!(
        wait_until(15, || {
            status = child.try_wait().unwrap();
            status.is_some()
        }),
        "no exit after SIGTERM"
    );
    let _ = child.kill();
    assert_eq!(status.unwrap().code(), Some(0));
    notifications(&sock, &mut got);
    assert!(got.iter().any(|m| m.starts_with("STOPPING=1\n")), "{got:?}");
    assert_eq!(c.tickets().len(), 1);
}
