//! Logs a machine can read (issue 18), end to end: the built binary on the sandbox
//! bus with `log_format` text, json and journald (a fake journald: a datagram socket
//! in the test's folder, named by `MAILTOTICKET_JOURNALD_SOCKET`). A hostile mail
//! (forged log lines, terminal escapes, bidi overrides, NUL, line separators in its
//! Subject, From and Message-ID) must give one line per event and no raw control
//! character, in every format; JSON lines parse and carry the mail's fields.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use mailtoticket::adapters::logging::{is_dangerous, journald};
use mailtoticket::sandbox;

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");
static SEQ: AtomicU32 = AtomicU32::new(0);

/// What the attacker puts in the Subject: a forged second line, colours, a screen
/// clear, a right-to-left override, a NUL, DEL, a C1 CSI and a Unicode line separator.
const HOSTILE_SUBJECT: &str = "x\nINFO    forged line\r\n\u{1b}[31mred\u{1b}[2J \u{202e}gpj.exe\u{0} \u{7f}\u{9b}1m \u{2028}end";

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let w = World {
            dir: tempfile::tempdir().unwrap(),
        };
        sandbox::add_person(
            &w.path("sandbox"),
            "nom.cognom",
            &["nom.cognom@upc.edu".into()],
        )
        .unwrap();
        w
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log_path(&self) -> PathBuf {
        self.path("logs/m2t.log")
    }

    fn config(&self, format: &str, state_dir: &Path) -> PathBuf {
        self.config_with(format, state_dir, r#"["reply", "nou", "nou_extern"]"#)
    }

    fn config_with(&self, format: &str, state_dir: &Path, filtres: &str) -> PathBuf {
        let text = format!(
            "bus = \"sandbox\"\ndomini = \"1234\"\nequip_resolutor_nous = \"98765\"\n\
             usuari_extern = \"extern\"\nfiltres = {filtres}\n\
             log_format = \"{format}\"\nlog_file = \"{}\"\nstate_dir = \"{}\"\nsandbox_dir = \"{}\"\n",
            self.log_path().display(),
            state_dir.display(),
            self.path("sandbox").display(),
        );
        let p = self.path("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Runs the MDA on `raw`; `socket` is the fake journald's.
    fn deliver(&self, cfg: &Path, raw: &[u8], socket: Option<&Path>) -> (String, Output) {
        let mut cmd = Command::new(BIN);
        cmd.arg("-c").arg(cfg).env_remove("JOURNAL_STREAM");
        match socket {
            Some(s) => cmd.env("MAILTOTICKET_JOURNALD_SOCKET", s),
            None => cmd.env("MAILTOTICKET_JOURNALD_SOCKET", self.path("no-journald")),
        };
        let out = crate::bin_support::run_piped(&mut cmd, raw);
        (crate::bin_support::mda_status(&out), out)
    }
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A new-ticket mail from `nom.cognom@upc.edu` with the hostile Subject, a display
/// name with a forged line and a Message-ID with a raw ESC; its Message-ID's tag.
fn hostile_mail() -> (Vec<u8>, String) {
    let n = SEQ.fetch_add(1, Ordering::SeqCst);
    let tag = format!("logs-{n}-{}", std::process::id());
    let raw = format!(
        "From: =?utf-8?b?{}?= <nom.cognom@upc.edu>\nTo: suport@upc.edu\n\
         Subject: =?utf-8?b?{}?=\nDate: Tue, 05 Mar 2024 10:07:00 +0100\n\
         Message-ID: <{tag}\u{1b}[8m\rINFO forged id@test>\n\nNo va la impressora.\n",
        b64("Nom\r\nERROR forged from\u{1b}]0;title\u{7}"),
        b64(HOSTILE_SUBJECT),
    );
    (raw.into_bytes(), tag)
}

/// No raw control character (but the line ends) and no forged line start.
fn assert_clean(lines: &[&str], all: &str) {
    for l in lines {
        assert!(
            !l.chars().any(is_dangerous),
            "raw control character in {l:?}"
        );
        assert!(
            !l.starts_with("INFO") && !l.starts_with("ERROR"),
            "forged line {l:?}"
        );
    }
    assert!(all.contains("forged line"), "the Subject is logged: {all}");
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[test]
fn json_lines_of_a_hostile_success_parse_and_carry_the_mail_fields() {
    let w = World::new();
    let cfg = w.config("json", &w.path("state"));
    let (raw, tag) = hostile_mail();
    let (status, out) = w.deliver(&cfg, &raw, None);
    let log = w.log();
    assert_eq!(
        status,
        "SUCCESS",
        "{log}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = log.lines().collect();
    assert_clean(&lines, &log);
    let json = json_lines(&log);
    assert!(json.len() >= 8, "{log}");
    // Every line of the MDA run is about this mail; its Message-ID is known from
    // the decode on.
    let decoded = json
        .iter()
        .position(|j| j["message"].as_str().unwrap().starts_with("Mail de "))
        .expect("the decode line");
    for (i, j) in json.iter().enumerate() {
        for k in ["timestamp", "level", "message", "target"] {
            assert!(j[k].is_string(), "{k} in {j}");
        }
        assert!(j["duration_ms"].is_u64(), "{j}");
        if i >= decoded {
            assert!(j["message_id"].as_str().unwrap().contains(&tag), "{j}");
        } else {
            assert!(j["message_id"].is_null(), "{j}");
        }
        assert!(
            chrono::DateTime::parse_from_rfc3339(j["timestamp"].as_str().unwrap()).is_ok(),
            "{j}"
        );
    }
    // The first line knows nothing but the time; Message-ID comes with the decode.
    assert!(json[0]["journal_id"].is_null() && json[0]["outcome"].is_null());
    let resum = json
        .iter()
        .find(|j| j["message"].as_str().unwrap().starts_with("Resum: "))
        .expect("the summary line");
    assert_eq!(resum["outcome"], "SUCCESS");
    let ticket = resum["ticket"].as_str().unwrap();
    assert!(ticket.parse::<u64>().is_ok(), "{resum}");
    assert!(
        sandbox::load_ticket(&w.path("sandbox"), ticket.parse().unwrap())
            .unwrap()
            .is_some()
    );
    assert!(
        resum["journal_id"].as_str().is_some_and(|k| !k.is_empty()),
        "{resum}"
    );
    assert!(resum["reason"].is_string(), "{resum}");
    assert_eq!(
        resum["message_id"].as_str().unwrap(),
        format!("<{tag}\\x1b[8m\\rINFO forged id@test>"),
        "the Message-ID's ESC is escaped"
    );
    assert!(
        resum["message"]
            .as_str()
            .unwrap()
            .contains(&format!("tiquet={ticket}"))
    );
    // The last line (after the echo) still carries everything.
    let last = json.last().unwrap();
    assert_eq!(last["ticket"], ticket);
    assert!(last["duration_ms"].as_u64() >= resum["duration_ms"].as_u64());
    // The Subject's forged line stays inside the one line that logs it.
    let entro = json
        .iter()
        .find(|j| {
            j["message"]
                .as_str()
                .unwrap()
                .starts_with("Entro a mailtoticket")
        })
        .unwrap();
    assert_eq!(
        entro["message"].as_str().unwrap(),
        "Entro a mailtoticketxINFO    forged line\\x1b[31mred\\x1b[2J \\u{202e}gpj.exe\\x00 \\x7f\\u{9b}1m \\u{2028}end"
    );
}

#[test]
fn json_lines_of_a_tempfail_carry_the_outcome_and_nulls() {
    let w = World::new();
    // The journal cannot be opened (its folder would be under a regular file).
    std::fs::write(w.path("blocker"), "").unwrap();
    let cfg = w.config("json", &w.path("blocker/state"));
    let (raw, _) = hostile_mail();
    let (status, _) = w.deliver(&cfg, &raw, None);
    let log = w.log();
    assert_eq!(status, "TEMPFAIL", "{log}");
    assert_clean(&log.lines().collect::<Vec<_>>(), &log);
    let json = json_lines(&log);
    let resum = json
        .iter()
        .find(|j| j["message"].as_str().unwrap().starts_with("Resum: "))
        .expect("the summary line");
    assert_eq!(resum["outcome"], "TEMPFAIL");
    assert_eq!(resum["level"], "INFO");
    assert!(resum["journal_id"].is_null(), "no journal: {resum}");
    assert!(resum["ticket"].is_null(), "{resum}");
    assert!(!resum["reason"].as_str().unwrap().is_empty());
    assert!(resum["duration_ms"].is_u64());
    let status_line = json
        .iter()
        .find(|j| j["message"].as_str().unwrap().starts_with("TEMPFAIL: "))
        .unwrap();
    assert_eq!(status_line["level"], "WARNING");
}

#[test]
fn text_lines_of_a_hostile_mail_stay_one_per_event() {
    let w = World::new();
    let cfg = w.config("text", &w.path("state"));
    let (raw, tag) = hostile_mail();
    let (status, _) = w.deliver(&cfg, &raw, None);
    let log = w.log();
    assert_eq!(status, "SUCCESS", "{log}");
    let lines: Vec<&str> = log.lines().collect();
    assert_clean(&lines, &log);
    let shape = regex::Regex::new(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[\d+\] mailtoticket::[a-z0-9_:]+ (INFO |WARNING|ERROR|DEBUG|TRACE) ",
    )
    .unwrap();
    for l in &lines {
        assert!(shape.is_match(l), "{l:?}");
    }
    assert!(
        log.contains(&format!(
            "Mail de nom.cognom@upc.edu llegit amb ID <{tag}\\x1b[8m\\rINFO forged id@test>"
        )),
        "{log}"
    );
    assert!(
        log.contains("Entro a mailtoticketxINFO    forged line\\x1b[31mred\\x1b[2J \\u{202e}gpj"),
        "{log}"
    );
}

#[test]
fn journald_entries_of_a_hostile_mail_carry_structured_fields() {
    let w = World::new();
    let socket = w.path("journal.socket");
    let journal = UnixDatagram::bind(&socket).unwrap();
    // Like journald, read while the binary writes (the socket's queue is short).
    journal
        .set_read_timeout(Some(std::time::Duration::from_millis(100)))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut datagrams = Vec::new();
            let mut buf = vec![0u8; 1 << 18];
            loop {
                match journal.recv(&mut buf) {
                    Ok(n) => datagrams.push(buf[..n].to_vec()),
                    Err(_) if done.load(Ordering::SeqCst) => return datagrams,
                    Err(_) => {}
                }
            }
        })
    };
    let cfg = w.config("journald", &w.path("state"));
    let (raw, tag) = hostile_mail();
    let (status, out) = w.deliver(&cfg, &raw, Some(&socket));
    done.store(true, Ordering::SeqCst);
    let datagrams = reader.join().unwrap();
    assert_eq!(
        status,
        "SUCCESS",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!w.log_path().exists(), "journald replaces the log file");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<HashMap<String, String>> = datagrams
        .iter()
        .map(|d| {
            journald::decode(d)
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
                .collect()
        })
        .collect();
    assert!(entries.len() >= 8, "{entries:?}");
    for e in &entries {
        assert_eq!(e["SYSLOG_IDENTIFIER"], "mailtoticket");
        assert!(
            ["3", "4", "6", "7"].contains(&e["PRIORITY"].as_str()),
            "{e:?}"
        );
        assert!(e.values().all(|v| !v.chars().any(is_dangerous)), "{e:?}");
        assert!(
            e["MAILTOTICKET_DURATION_MS"].parse::<u64>().is_ok(),
            "{e:?}"
        );
    }
    let resum = entries
        .iter()
        .find(|e| e["MESSAGE"].starts_with("Resum: "))
        .expect("the summary entry");
    assert_eq!(
        resum["MAILTOTICKET_MESSAGE_ID"],
        format!("<{tag}\\x1b[8m\\rINFO forged id@test>")
    );
    assert_eq!(resum["MAILTOTICKET_OUTCOME"], "SUCCESS");
    assert!(
        resum["MAILTOTICKET_TICKET"].parse::<u64>().is_ok(),
        "{resum:?}"
    );
    assert!(!resum["MAILTOTICKET_JOURNAL_ID"].is_empty());
    assert!(resum.contains_key("MAILTOTICKET_REASON"));
    assert!(entries.iter().any(|e| e["MESSAGE"].contains("forged line")));
}

#[test]
fn journald_absent_falls_back_to_text_on_stderr_with_a_notice() {
    let w = World::new();
    let cfg = w.config("journald", &w.path("state"));
    let (raw, _) = hostile_mail();
    let (status, out) = w.deliver(&cfg, &raw, None);
    assert_eq!(status, "SUCCESS");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("no puc escriure al journal").count(),
        1,
        "{err}"
    );
    assert!(err.contains("Resum: "), "{err}");
    assert_clean(&err.lines().collect::<Vec<_>>(), &err);
}

#[test]
fn an_unknown_log_format_is_a_configuration_error() {
    let w = World::new();
    let cfg = w.config("syslog", &w.path("state"));
    let (raw, _) = hostile_mail();
    let (status, out) = w.deliver(&cfg, &raw, None);
    assert_eq!(status, "ERROR");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log_format") && err.contains("syslog"),
        "{err}"
    );
}

#[test]
fn reprocess_gives_each_mail_its_own_fields() {
    let w = World::new();
    // A stranger without `nou_extern`: REJECT, quarantined; twice.
    let cfg = w.config_with("json", &w.path("state"), r#"["reply", "nou"]"#);
    let mut ids = Vec::new();
    for n in 0..2 {
        let id = format!("<reprocess-{n}-{}@test>", std::process::id());
        let raw = format!(
            "From: stranger@example.com\nTo: suport@upc.edu\nSubject: prova {n}\n\
             Message-ID: {id}\n\nHola\n"
        );
        let (status, _) = w.deliver(&cfg, raw.as_bytes(), None);
        assert_eq!(status, "REJECT", "{}", w.log());
        ids.push(id);
    }
    std::fs::remove_file(w.log_path()).unwrap();
    let out = Command::new(BIN)
        .args(["-c", cfg.to_str().unwrap(), "reprocess", "--all"])
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    let log = w.log();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .matches("REJECT")
            .count()
            == 2,
        "{}\n{log}",
        String::from_utf8_lossy(&out.stdout)
    );
    let json = json_lines(&log);
    let resums: Vec<&serde_json::Value> = json
        .iter()
        .filter(|j| j["message"].as_str().unwrap().starts_with("Resum: "))
        .collect();
    assert_eq!(resums.len(), 2, "{log}");
    let mut seen: Vec<String> = Vec::new();
    for r in &resums {
        let id = r["message_id"].as_str().unwrap();
        assert!(ids.iter().any(|i| i == id), "{r}");
        assert!(
            r["message"]
                .as_str()
                .unwrap()
                .contains(&format!("message-id={id}"))
        );
        assert_eq!(r["outcome"], "REJECT");
        assert!(r["journal_id"].is_string(), "{r}");
        seen.push(id.to_string());
    }
    assert_ne!(seen[0], seen[1]);
    assert_ne!(resums[0]["journal_id"], resums[1]["journal_id"]);
    // Each mail's lines start with nothing known: the second mail's first line does
    // not carry the first one's fields.
    let starts: Vec<&serde_json::Value> = json
        .iter()
        .filter(|j| j["message"].as_str().unwrap().starts_with("-----"))
        .collect();
    assert_eq!(starts.len(), 2, "{log}");
    for s in starts {
        assert!(s["message_id"].is_null() && s["outcome"].is_null(), "{s}");
        assert!(s["duration_ms"].is_u64(), "{s}");
    }
}

#[test]
fn imap_pass_gives_each_mail_its_own_fields() {
    use crate::imap_pull::{imap, in_folder, set_up};
    if !crate::chain::tools_present() {
        return;
    }
    let _serial = crate::TIMING_SENSITIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let (c, dovecot) = set_up("auth_failure_delay = 0\n");
    let cfg = c.root().join("m2t.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("log_format = \"json\"\n{text}")).unwrap();
    c.deliver(&crate::chain::mail(
        1,
        "Message-ID: <imap-json-1@upc.edu>\n",
        "Impressora",
        "No imprimeix.",
    ));
    c.deliver(&crate::chain::mail(
        2,
        "Message-ID: <imap-json-2\u{1b}[2J\r@upc.edu>\n",
        "=?utf-8?b?eApJTkZPIGZvcmdlZCDigK4=?=",
        "Hola.",
    ));
    let _bus = c.serve_bus();
    let o = imap(&c, &[], &[]);
    let log = c.log();
    assert!(o.status.success(), "{log}");
    assert_eq!(in_folder(&c, "processats"), 2, "{log}");
    crate::imap_pull::stop(dovecot);
    let lines: Vec<&str> = log.lines().collect();
    assert_clean_lines(&lines);
    let json = json_lines(&log);
    let moved: Vec<&serde_json::Value> = json
        .iter()
        .filter(|j| j["message"].as_str().unwrap().contains(") mogut a "))
        .collect();
    assert_eq!(moved.len(), 2, "{log}");
    let mut ids = Vec::new();
    for m in &moved {
        // The move line comes after the handling: it knows everything of its mail.
        assert_eq!(m["outcome"], "SUCCESS", "{m}");
        assert!(m["ticket"].as_str().unwrap().parse::<u64>().is_ok(), "{m}");
        assert!(m["journal_id"].is_string(), "{m}");
        ids.push(m["message_id"].as_str().unwrap().to_string());
    }
    assert_eq!(
        ids,
        ["<imap-json-1@upc.edu>", "<imap-json-2\\x1b[2J\\r@upc.edu>"],
        "{log}"
    );
    assert_ne!(moved[0]["ticket"], moved[1]["ticket"]);
    // The first line of the second mail knows nothing of the first.
    let second = json
        .iter()
        .filter(|j| {
            j["message"]
                .as_str()
                .unwrap()
                .starts_with("IMAP: mail UID ")
        })
        .filter(|j| j["message"].as_str().unwrap().ends_with(" de INBOX"))
        .nth(1)
        .expect("the second mail's first line");
    assert!(
        second["message_id"].is_null() && second["ticket"].is_null(),
        "{second}"
    );
    // The pass summary is about no mail.
    let pass = json
        .iter()
        .find(|j| {
            j["message"]
                .as_str()
                .unwrap()
                .contains("2 mails, 2 processats")
        })
        .expect("the pass line");
    assert!(pass.get("outcome").is_none(), "{pass}");
}

/// No raw control character in any line.
fn assert_clean_lines(lines: &[&str]) {
    for l in lines {
        assert!(
            !l.chars().any(is_dangerous),
            "raw control character in {l:?}"
        );
    }
}
