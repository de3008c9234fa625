//! The quarantine as a tool and the journal's retention (issue 18), through the real
//! binary: `quarantine list/show/export/import/reprocess/delete/purge` and `journal
//! purge`, with the in-process sandbox bus (or a bus that is down).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use mailtoticket::adapters::journal::{DeliveryJournal, DurableJournals, Retention};
use mailtoticket::adapters::quarantine::{
    FIELD_CONFIG, FIELD_JOURNAL_KEY, FIELD_LAST_ERROR, FIELD_LAST_RETRY_AT, FIELD_RETRIES,
    Quarantine, Sidecar,
};
use mailtoticket::config::Config;
use mailtoticket::ports::{JournalStore, Step};

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

/// One of our own error reports: SKIP without any bus call.
const LOOP_MAIL: &[u8] = b"From: mailtoticket@unitat.example\nTo: suport@unitat.example\nSubject: Informe d'errors\nX-Mailtoticket-Loop: mailtoticket@unitat.example\nMessage-ID: <loop-1@unitat.example>\n\nCos\n";

fn mail(id: &str, from: &str, subject: &str) -> Vec<u8> {
    format!(
        "From: <{from}>\nTo: <suport.unitat@upc.edu>\nDate: Tue, 20 Oct 2015 11:01:05 +0200\n\
         Message-ID: <{id}@upc.edu>\nSubject: {subject}\n\nHola!\n"
    )
    .into_bytes()
}

fn now() -> DateTime<FixedOffset> {
    Utc::now().fixed_offset()
}

/// A folder with configurations sharing one state folder (and sandbox).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A sandbox configuration `name.toml` (state in `state`), only `nou`, new tickets
    /// to `team`.
    fn sandbox_config(&self, name: &str, team: &str, extra: &str) -> PathBuf {
        self.config(
            name,
            &format!(
                "bus = \"sandbox\"\nsandbox_dir = \"{}\"\nequip_resolutor_nous = \"{team}\"\n\
                 filtres = [\"nou\"]\n{extra}",
                self.path("sandbox").display()
            ),
        )
    }

    /// A configuration whose bus refuses every connection (TEMPFAIL).
    fn down_config(&self, name: &str) -> PathBuf {
        self.config(
            name,
            "bus = \"test\"\nequip_resolutor_nous = \"1\"\nconnect_timeout_secs = 1\n\
             request_timeout_secs = 1\n\
             [endpoints]\ngn6 = \"http://127.0.0.1:9/gN6/GestioTiquetsv5\"\n\
             persones = \"http://127.0.0.1:9/GestioIdentitat/Personesv6\"\n",
        )
    }

    fn config(&self, name: &str, body: &str) -> PathBuf {
        let text = format!(
            "username_soa = \"usu.soa\"\npassword_soa = \"Soa-Pw-4f1c9e\"\n\
             username_gn6 = \"usugn6\"\npassword_gn6 = \"Gn6-Pw-77ab20\"\n\
             domini = \"1234\"\nusuari_extern = \"extern\"\n\
             log_file = \"{log}\"\nstate_dir = \"{state}\"\n{body}\n",
            log = self.path("logs/m2t.log").display(),
            state = self.path("state").display(),
        );
        let p = self.path(&format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    }

    fn quarantine(&self) -> Quarantine {
        Quarantine::new(self.path("state/quarantine"))
    }

    fn run(&self, config: &Path, args: &[&str], stdin: &[u8]) -> Output {
        crate::bin_support::run_piped(
            Command::new(BIN)
                .arg("-c")
                .arg(config)
                .args(args)
                .env("HOME", self.dir.path())
                .env_remove("MAILTOTICKET_CONFIG_DIR")
                .env_remove("MAILTOTICKET_PASSWORD_SOA")
                .env_remove("MAILTOTICKET_PASSWORD_GN6"),
            stdin,
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("logs/m2t.log")).unwrap_or_default()
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn id_of(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

/// An entry as the MDA would have written it, with the given configuration.
fn put(
    q: &Quarantine,
    raw: &[u8],
    status: &str,
    config: &Path,
    at: DateTime<FixedOffset>,
) -> PathBuf {
    let mut s = Sidecar {
        status: status.into(),
        quarantined_at: at.to_rfc3339(),
        fields: Vec::new(),
        reason: format!("motiu de prova\nsegona línia ({status})"),
    };
    s.set(FIELD_CONFIG, &config.display().to_string());
    q.put_sidecar(raw, &s, at, None).unwrap()
}

#[test]
fn list_show_export_import_round_trip_is_byte_identical() {
    let env = Env::new();
    let cfg = env.sandbox_config("a", "11111", "");
    let q = env.quarantine();
    // Hostile bytes: an escape sequence in the subject, a bare CR, a lone 0xFF.
    let hostile = b"From: =?utf-8?q?Mall=1B[31m?= <x@ex.com>\r\nSubject: Hola \x1b[2J\x07 bona\r\nMessage-ID: <h1@ex.com>\r\n\r\nCos \xff\r amb\x00 res\r\n".to_vec();
    let long = mail("llarg", "joan@upc.edu", &"molt llarg ".repeat(40));
    let a = put(&q, &hostile, "REJECT", &cfg, now() - TimeDelta::hours(2));
    let b = put(&q, &long, "ERROR", &cfg, now() - TimeDelta::hours(1));

    let o = env.run(&cfg, &["quarantine", "list"], b"");
    assert_eq!(code(&o), 0, "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with(&id_of(&a)), "oldest first: {text}");
    assert!(lines[1].starts_with(&id_of(&b)), "{text}");
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
    assert!(text.contains("\\u{1b}[2J"), "escaped, not dropped: {text}");
    assert!(lines[0].contains("REJECT") && lines[0].contains("retries=0"));
    assert!(
        lines[1].contains('…'),
        "long subject truncated: {}",
        lines[1]
    );
    assert!(
        lines[0].contains("reason=motiu de prova") && !lines[0].contains("segona"),
        "the reason on one line: {}",
        lines[0]
    );

    let o = env.run(&cfg, &["quarantine", "list", "--json"], b"");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mails = doc["mails"].as_array().unwrap();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0]["id"], id_of(&a));
    assert_eq!(mails[0]["status"], "REJECT");
    assert_eq!(mails[0]["message_id"], "<h1@ex.com>");
    assert_eq!(mails[1]["size"], long.len());
    assert!(doc["refused_parts"].as_array().unwrap().is_empty());

    // show: by a hash prefix; --raw gives the bytes back exactly.
    let hash = id_of(&a).rsplit('-').next().unwrap()[..6].to_string();
    let o = env.run(&cfg, &["quarantine", "show", &hash], b"");
    assert_eq!(code(&o), 0, "{}", err(&o));
    let shown = out(&o);
    assert!(
        shown.contains(&format!("id:             {}", id_of(&a))),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("config:         {}", cfg.display())),
        "{shown}"
    );
    assert!(shown.contains("  segona línia (REJECT)"), "{shown}");
    assert!(shown.contains("Message-ID: <h1@ex.com>"), "{shown}");
    assert!(!shown.contains('\x1b'), "{shown:?}");
    let o = env.run(&cfg, &["quarantine", "show", "--raw", &id_of(&a)], b"");
    assert_eq!(o.stdout, hostile);

    // export → import on "another host" (another state folder).
    let exported = env.path("export");
    let o = env.run(
        &cfg,
        &[
            "quarantine",
            "export",
            "--all",
            "--to",
            exported.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(out(&o).contains("2 mail(s) exported"), "{}", out(&o));
    let other = tempfile::tempdir().unwrap();
    let other_cfg = other.path().join("o.toml");
    std::fs::write(
        &other_cfg,
        format!(
            "bus = \"sandbox\"\nequip_resolutor_nous = \"1\"\nlog_file = \"{}\"\nstate_dir = \"{}\"\n",
            other.path().join("m.log").display(),
            other.path().join("state").display()
        ),
    )
    .unwrap();
    let o = env.run(
        &other_cfg,
        &["quarantine", "import", exported.to_str().unwrap()],
        b"",
    );
    assert_eq!(code(&o), 0, "{} {}", out(&o), err(&o));
    assert!(
        out(&o).contains("2 imported, 0 already there"),
        "{}",
        out(&o)
    );
    let there = Quarantine::new(other.path().join("state/quarantine"));
    let entries = there.entries().unwrap();
    assert_eq!(entries.len(), 2);
    for (orig, copy) in [&a, &b].into_iter().zip(&entries) {
        assert_eq!(copy.id, id_of(orig), "the ID travels");
        assert_eq!(
            std::fs::read(&copy.path).unwrap(),
            std::fs::read(orig).unwrap()
        );
        let before = q.sidecar(orig).unwrap();
        assert_eq!(copy.sidecar.status, before.status);
        assert_eq!(copy.sidecar.quarantined_at, before.quarantined_at);
        assert_eq!(copy.sidecar.reason, before.reason);
        // The exporting host's configuration is recorded, never loaded here.
        assert!(before.get(FIELD_CONFIG).is_some());
        assert_eq!(copy.sidecar.get(FIELD_CONFIG), None);
        assert_eq!(
            copy.sidecar.get("exported-config"),
            before.get(FIELD_CONFIG)
        );
        assert!(copy.sidecar.get("imported-from").is_some());
    }
    // Idempotent: the same export, or the same bytes as a plain file, add nothing.
    let o = env.run(
        &other_cfg,
        &[
            "quarantine",
            "import",
            exported.to_str().unwrap(),
            exported
                .join(format!("{}.eml", id_of(&a)))
                .to_str()
                .unwrap(),
        ],
        b"",
    );
    assert!(
        out(&o).contains("0 imported, 3 already there"),
        "{}",
        out(&o)
    );
    assert_eq!(there.list().unwrap().len(), 2);

    // A Maildir's mails come in as plain mails, with where they came from.
    let maildir = env.path("Maildir");
    std::fs::create_dir_all(maildir.join("new")).unwrap();
    std::fs::create_dir_all(maildir.join("cur")).unwrap();
    std::fs::create_dir_all(maildir.join("tmp")).unwrap();
    std::fs::write(maildir.join("new/1.host"), mail("md1", "a@upc.edu", "u")).unwrap();
    std::fs::write(
        maildir.join("cur/2.host:2,S"),
        mail("md2", "b@upc.edu", "d"),
    )
    .unwrap();
    std::fs::write(maildir.join("tmp/3.host"), mail("md3", "c@upc.edu", "t")).unwrap();
    let o = env.run(
        &other_cfg,
        &["quarantine", "import", maildir.to_str().unwrap()],
        b"",
    );
    assert!(out(&o).contains("2 imported"), "{}", out(&o));
    let entries = there.entries().unwrap();
    assert_eq!(entries.len(), 4);
    let imported = entries
        .iter()
        .find(|e| std::fs::read(&e.path).unwrap() == mail("md1", "a@upc.edu", "u"))
        .expect("the Maildir mail is there");
    assert!(
        imported.sidecar.reason.starts_with("imported from ")
            && imported.sidecar.reason.ends_with("new/1.host"),
        "{}",
        imported.sidecar.reason
    );
    assert_eq!(
        imported.sidecar.get(FIELD_JOURNAL_KEY),
        Some("<md1@upc.edu>")
    );
}

#[test]
fn reprocess_keeps_the_configuration_the_mail_first_ran_with() {
    let env = Env::new();
    let a = env.sandbox_config("a", "11111", "");
    let b = env.sandbox_config("b", "22222", "");
    // An unknown sender: `nou` does not apply → REJECT, quarantined, with config a.
    let first = mail("cfg-1", "nou.usuari@upc.edu", "Primera");
    let second = mail("cfg-2", "nou.usuari@upc.edu", "Segona");
    for raw in [&first, &second] {
        let o = env.run(&a, &[], raw);
        assert_eq!(code(&o), 2, "{}", env.log());
    }
    let q = env.quarantine();
    let entries = q.entries().unwrap();
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert_eq!(e.sidecar.get(FIELD_CONFIG), Some(a.to_str().unwrap()));
        assert_eq!(e.sidecar.get("source"), Some("mda (stdin)"));
        assert!(e.sidecar.get(FIELD_JOURNAL_KEY).is_some());
    }
    // The admin fixes the cause: the person now exists.
    let o = env.run(
        &a,
        &[
            "sandbox",
            "people",
            "add",
            "nou.usuari",
            "nou.usuari@upc.edu",
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", err(&o));

    // Run with -c b: the mail still goes with a (team 11111).
    let o = env.run(
        &b,
        &["quarantine", "reprocess", "--pace", "0", &entries[0].id],
        b"",
    );
    assert_eq!(code(&o), 0, "{} {}", out(&o), err(&o));
    assert!(
        out(&o).contains("SUCCESS") && out(&o).contains("removed from the quarantine"),
        "{}",
        out(&o)
    );
    // Unless told to use -c's.
    let o = env.run(
        &b,
        &[
            "quarantine",
            "reprocess",
            "--pace",
            "0",
            "--use-config",
            &entries[1].id,
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{} {}", out(&o), err(&o));
    assert!(q.list().unwrap().is_empty());
    let sandbox = env.path("sandbox");
    let teams: Vec<(String, String)> = mailtoticket::sandbox::list_tickets(&sandbox)
        .unwrap()
        .into_iter()
        .map(|t| {
            let full = mailtoticket::sandbox::load_ticket(&sandbox, t.codi)
                .unwrap()
                .unwrap();
            (full.assumpte, full.equip_resolutor)
        })
        .collect();
    assert!(
        teams.contains(&("Primera".into(), "11111".into())),
        "{teams:?}"
    );
    assert!(
        teams.contains(&("Segona".into(), "22222".into())),
        "{teams:?}"
    );
}

#[test]
fn a_recorded_configuration_that_cannot_load_is_never_replaced_silently() {
    let env = Env::new();
    let cfg = env.sandbox_config("a", "11111", "");
    let q = env.quarantine();
    let e = put(&q, LOOP_MAIL, "ERROR", &env.path("gone.toml"), now());
    let o = env.run(
        &cfg,
        &["quarantine", "reprocess", "--all", "--pace", "0"],
        b"",
    );
    assert_eq!(code(&o), 1);
    assert!(out(&o).contains("--use-config"), "{}", out(&o));
    assert!(e.exists(), "kept");
    let o = env.run(
        &cfg,
        &[
            "quarantine",
            "reprocess",
            "--all",
            "--pace",
            "0",
            "--use-config",
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert!(!e.exists());
}

#[test]
fn skip_counts_as_done_and_the_old_reprocess_command_still_works() {
    let env = Env::new();
    let cfg = env.sandbox_config("a", "11111", "");
    let q = env.quarantine();
    let e = put(&q, LOOP_MAIL, "ERROR", &cfg, now());
    let o = env.run(
        &cfg,
        &["quarantine", "reprocess", "--all", "--pace", "0"],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(
        out(&o).contains(&format!("{}: SKIP", id_of(&e)))
            && out(&o).contains("done: removed from the quarantine"),
        "{}",
        out(&o)
    );
    assert!(q.list().unwrap().is_empty());
    // `reprocess ID` (the older command) takes an ID too.
    let e = put(&q, LOOP_MAIL, "ERROR", &cfg, now());
    let o = env.run(&cfg, &["reprocess", &id_of(&e)], b"");
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(out(&o).contains("SKIP"), "{}", out(&o));
    assert!(q.list().unwrap().is_empty());
}

#[test]
fn failing_retries_are_recorded_and_consecutive_tempfails_stop_the_replay() {
    let env = Env::new();
    let down = env.down_config("down");
    let q = env.quarantine();
    let t0 = now() - TimeDelta::hours(5);
    let paths: Vec<PathBuf> = (0..4)
        .map(|i| {
            put(
                &q,
                &mail(&format!("tf-{i}"), "joan@upc.edu", "x"),
                "ERROR",
                &down,
                t0 + TimeDelta::minutes(i),
            )
        })
        .collect();
    let o = env.run(
        &down,
        &[
            "quarantine",
            "reprocess",
            "--all",
            "--pace",
            "0",
            "--max-tempfails",
            "2",
        ],
        b"",
    );
    assert_eq!(code(&o), 75, "{} {}", out(&o), err(&o));
    let text = out(&o);
    assert!(
        text.contains("stopped after 2 TEMPFAILs in a row"),
        "{text}"
    );
    assert!(text.contains("2 mail(s) left untried"), "{text}");
    assert_eq!(text.matches("TEMPFAIL ").count(), 2, "{text}");
    for (i, p) in paths.iter().enumerate() {
        assert!(p.exists(), "nothing leaves the quarantine");
        let s = q.sidecar(p).unwrap();
        if i < 2 {
            assert_eq!(s.get(FIELD_RETRIES), Some("1"), "{s:?}");
            assert!(
                s.get(FIELD_LAST_ERROR).unwrap().starts_with("TEMPFAIL: "),
                "{s:?}"
            );
            let at = DateTime::parse_from_rfc3339(s.get(FIELD_LAST_RETRY_AT).unwrap()).unwrap();
            assert!(now() - at < TimeDelta::minutes(5));
            // The first fields and the reason are untouched.
            assert_eq!(s.status, "ERROR");
            assert!(s.reason.starts_with("motiu de prova\n"));
        } else {
            assert_eq!(s.get(FIELD_RETRIES), None, "not tried: {s:?}");
        }
    }
    // A second failing retry counts up.
    let o = env.run(
        &down,
        &["quarantine", "reprocess", "--pace", "0", &id_of(&paths[0])],
        b"",
    );
    assert_eq!(code(&o), 75);
    assert!(out(&o).contains("retry 2"), "{}", out(&o));
    assert_eq!(q.sidecar(&paths[0]).unwrap().retries(), 2);
    // `list` shows it.
    let o = env.run(&down, &["quarantine", "list"], b"");
    assert!(
        out(&o).lines().next().unwrap().contains("retries=2"),
        "{}",
        out(&o)
    );
}

#[test]
fn delete_and_purge_only_ever_remove_quarantine_entries() {
    let env = Env::new();
    let cfg = env.sandbox_config("a", "11111", "");
    let q = env.quarantine();
    let old = put(
        &q,
        &mail("old", "a@upc.edu", "o"),
        "REJECT",
        &cfg,
        now() - TimeDelta::days(40),
    );
    let mid = put(
        &q,
        &mail("mid", "a@upc.edu", "m"),
        "REJECT",
        &cfg,
        now() - TimeDelta::days(10),
    );
    let young = put(&q, &mail("young", "a@upc.edu", "y"), "ERROR", &cfg, now());
    // Files outside the quarantine that an ID must never reach.
    let victim = env.path("state/victim.eml");
    std::fs::write(&victim, b"x").unwrap();
    let outside_q = env.path("elsewhere.eml");
    std::fs::write(&outside_q, b"y").unwrap();

    let o = env.run(
        &cfg,
        &["quarantine", "purge", "--older-than", "30d", "--dry-run"],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(
        out(&o).contains(&format!("would delete {}", id_of(&old))),
        "{}",
        out(&o)
    );
    assert!(!out(&o).contains(&id_of(&mid)), "{}", out(&o));
    assert!(old.exists(), "a dry run deletes nothing");
    // `--dry-run` before the subcommand is a dry run too, never a real purge.
    let o = env.run(
        &cfg,
        &["--dry-run", "quarantine", "purge", "--older-than", "2w"],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(out(&o).contains("would delete"), "{}", out(&o));
    assert!(old.exists());
    let o = env.run(
        &cfg,
        &["--dry-run", "quarantine", "delete", &id_of(&old)],
        b"",
    );
    assert_eq!(code(&o), 64);
    assert!(old.exists());
    let o = env.run(&cfg, &["quarantine", "purge", "--older-than", "2w"], b"");
    assert_eq!(code(&o), 0);
    assert!(
        out(&o).contains(&format!("deleted {}", id_of(&old))),
        "{}",
        out(&o)
    );
    assert!(!old.exists() && mid.exists() && young.exists());
    let o = env.run(
        &cfg,
        &["quarantine", "purge", "--older-than", "2 fortnights"],
        b"",
    );
    assert_eq!(code(&o), 64);
    assert!(
        err(&o).contains("expected a number and a unit"),
        "{}",
        err(&o)
    );

    for hostile in [
        "../victim.eml",
        "../victim",
        "../../elsewhere.eml",
        victim.to_str().unwrap(),
        outside_q.to_str().unwrap(),
        "/etc/passwd",
        "..",
        ".",
        "",
    ] {
        let o = env.run(&cfg, &["quarantine", "delete", hostile], b"");
        assert_ne!(code(&o), 0, "{hostile:?}: {}", out(&o));
    }
    assert!(victim.exists() && outside_q.exists());
    assert!(mid.exists() && young.exists());
    // A symlink planted in the quarantine is removed as a link, never its target.
    #[cfg(unix)]
    {
        let link = q.dir().join("20260101T000000.000Z-aaaaaaaaaaaa.eml");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let o = env.run(&cfg, &["quarantine", "delete", "aaaaaaaa"], b"");
        assert_eq!(code(&o), 0, "{}", out(&o));
        assert!(victim.exists() && !link.exists());
    }
    // Ambiguous prefixes are refused; IDs and paths inside work.
    let o = env.run(&cfg, &["quarantine", "delete", "2"], b"");
    assert_eq!(code(&o), 1);
    assert!(out(&o).contains("more than one entry"), "{}", out(&o));
    let o = env.run(
        &cfg,
        &[
            "quarantine",
            "delete",
            &id_of(&mid),
            young.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_eq!(out(&o).matches("deleted ").count(), 2, "{}", out(&o));
    assert!(q.list().unwrap().is_empty());
    assert!(victim.exists() && outside_q.exists());
}

/// Seeds a journal row with the given status and last run.
fn seed(j: &DeliveryJournal, key: &str, status: &str, at: DateTime<FixedOffset>) {
    let run = j.begin(key, at).unwrap();
    if status == "SUCCESS" {
        mailtoticket::ports::Journal::record(&run, &Step::Completed, "SUCCESS").unwrap();
    } else {
        run.set_status(status).unwrap();
    }
}

#[test]
fn journal_purge_defaults_keep_quarantined_mails_and_running_ones() {
    let env = Env::new();
    let cfg = env.sandbox_config("a", "11111", "");
    let state = env.path("state");
    let j = DeliveryJournal::open(&state).unwrap();
    let n = now();
    seed(&j, "<delivered-old@x>", "SUCCESS", n - TimeDelta::days(31));
    seed(&j, "<delivered-new@x>", "SUCCESS", n - TimeDelta::days(29));
    seed(&j, "<reject-mid@x>", "REJECT", n - TimeDelta::days(60));
    seed(&j, "<reject-old@x>", "REJECT", n - TimeDelta::days(91));
    seed(
        &j,
        "<quarantined@upc.edu>",
        "REJECT",
        n - TimeDelta::days(200),
    );
    // A run that began 10 s ago (inside the lock wait), one that holds its lock for
    // two days (a stuck MDA), and one that crashed two days ago (lock free).
    let running = j.begin("<running@x>", n - TimeDelta::seconds(10)).unwrap();
    let stuck = j.begin("<stuck@x>", n - TimeDelta::days(2)).unwrap();
    drop(j.begin("<crashed@x>", n - TimeDelta::days(2)).unwrap());
    // The quarantined mail's file.
    let q = env.quarantine();
    let kept = put(
        &q,
        &mail("quarantined", "a@upc.edu", "q"),
        "REJECT",
        &cfg,
        n - TimeDelta::days(200),
    );

    let o = env.run(&cfg, &["journal", "purge", "--dry-run"], b"");
    assert_eq!(code(&o), 0, "{}", err(&o));
    let text = out(&o);
    assert!(text.contains("would forget <delivered-old@x>"), "{text}");
    assert!(text.contains("would forget <reject-old@x>"), "{text}");
    assert!(
        text.contains(
            "would forget 2 mail(s): 1 delivered (older than 30 days), 1 other (older than 90 days)"
        ),
        "{text}"
    );
    assert!(text.contains("kept: 1 still in the quarantine"), "{text}");
    assert!(j.show("<delivered-old@x>").unwrap().is_some(), "dry run");

    let o = env.run(&cfg, &["journal", "purge"], b"");
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(out(&o).contains("forgot 2 mail(s)"), "{}", out(&o));
    for (key, present) in [
        ("<delivered-old@x>", false),
        ("<delivered-new@x>", true),
        ("<reject-mid@x>", true),
        ("<reject-old@x>", false),
        ("<quarantined@upc.edu>", true),
        ("<running@x>", true),
    ] {
        assert_eq!(j.show(key).unwrap().is_some(), present, "{key}");
    }
    assert!(kept.exists(), "journal purge never touches the quarantine");

    // One age for all: even that spares the quarantined mail and the running one.
    let o = env.run(&cfg, &["journal", "purge", "--older-than", "1s"], b"");
    assert_eq!(code(&o), 0, "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("forgot 3 mail(s): 1 delivered (older than 1 s), 2 other"),
        "{text}"
    );
    assert!(
        text.contains("kept: 1 still in the quarantine, 2 possibly running"),
        "{text}"
    );
    assert!(j.show("<delivered-new@x>").unwrap().is_none());
    assert!(j.show("<reject-mid@x>").unwrap().is_none());
    assert!(j.show("<crashed@x>").unwrap().is_none());
    assert!(j.show("<quarantined@upc.edu>").unwrap().is_some());
    assert!(j.show("<running@x>").unwrap().is_some());
    assert!(j.show("<stuck@x>").unwrap().is_some());
    drop((running, stuck));
    assert!(kept.exists());
    // Once the admin deletes the entry, its row can go.
    let o = env.run(&cfg, &["quarantine", "delete", &id_of(&kept)], b"");
    assert_eq!(code(&o), 0);
    let o = env.run(&cfg, &["journal", "purge", "--older-than", "1s"], b"");
    assert!(
        out(&o).contains("kept: 0 still in the quarantine"),
        "{}",
        out(&o)
    );
    assert!(j.show("<quarantined@upc.edu>").unwrap().is_none());
}

#[test]
fn the_daily_prune_of_the_mda_follows_the_same_policy() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let j = DeliveryJournal::open(&state).unwrap();
    let n = now();
    seed(&j, "<d-old@x>", "SUCCESS", n - TimeDelta::days(31));
    seed(&j, "<r-mid@x>", "REJECT", n - TimeDelta::days(60));
    seed(&j, "<q@upc.edu>", "UNKNOWN", n - TimeDelta::days(120));
    let q = Quarantine::new(state.join("quarantine"));
    q.put(
        &mail("q", "a@upc.edu", "q"),
        "UNKNOWN",
        "r",
        n - TimeDelta::days(120),
    )
    .unwrap();
    let journals = DurableJournals {
        state_dir: state.clone(),
        retention: Retention::default(),
        quarantine_dir: q.dir().to_path_buf(),
        retry_permanent: false,
    };
    let raw = mail("new", "a@upc.edu", "n");
    let parsed = mailtoticket::adapters::mail::parse(&raw, &Default::default());
    let run = journals.begin(&parsed, &raw).unwrap();
    drop(run);
    assert!(j.show("<d-old@x>").unwrap().is_none(), "delivered, 31 days");
    assert!(j.show("<r-mid@x>").unwrap().is_some(), "other, 60 days");
    assert!(
        j.show("<q@upc.edu>").unwrap().is_some(),
        "in the quarantine (key derived from the mail: an old sidecar has none)"
    );
}

#[test]
fn retention_keys_map_and_validate() {
    let origin = Path::new("/x/c.toml");
    let c = |text: &str| Config::from_toml(text, origin).unwrap();
    assert_eq!(c("").journal_retention(), Retention::days(30, 90));
    // The older top-level key is the age of everything but delivered mails, and
    // delivered ones never outlive it.
    assert_eq!(
        c("journal_retention_days = 365").journal_retention(),
        Retention::days(30, 365)
    );
    assert_eq!(
        c("journal_retention_days = 10").journal_retention(),
        Retention::days(10, 10)
    );
    assert_eq!(
        c("[journal]\ndelivered_retention_days = 7\nretention_days = 60").journal_retention(),
        Retention::days(7, 60)
    );
    let problems = |text: &str| -> Vec<&'static str> {
        c(text)
            .journal_retention_problems()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert!(problems("journal_retention_days = 120\n[journal]\nretention_days = 120").is_empty());
    assert_eq!(
        problems("journal_retention_days = 120\n[journal]\nretention_days = 60"),
        ["journal.retention_days"]
    );
    assert_eq!(
        problems("[journal]\ndelivered_retention_days = 0"),
        ["journal.delivered_retention_days"]
    );
    assert_eq!(
        problems("journal_retention_days = 0"),
        ["journal_retention_days"]
    );
    assert!(
        Config::from_toml("[journal]\nretention = 3", origin).is_err(),
        "typo refused"
    );
}

#[test]
fn a_replay_that_still_fails_takes_nothing_from_the_hourly_quarantine_cap() {
    let env = Env::new();
    let cfg = env.sandbox_config("a", "11111", "max_quarantena_per_hora = 1");
    let q = env.quarantine();
    // Unknown senders: REJECT again on every replay.
    let entries: Vec<PathBuf> = (0..2)
        .map(|i| {
            put(
                &q,
                &mail(&format!("cap-{i}"), "ningu@upc.edu", "x"),
                "REJECT",
                &cfg,
                now() - TimeDelta::minutes(10 - i),
            )
        })
        .collect();
    let o = env.run(
        &cfg,
        &["quarantine", "reprocess", "--all", "--pace", "0"],
        b"",
    );
    assert_eq!(code(&o), 2, "{}", out(&o));
    assert_eq!(
        out(&o).matches("kept in the quarantine, retry 1").count(),
        2,
        "{}",
        out(&o)
    );
    assert_eq!(q.list().unwrap(), entries, "no copies");
    // The hour's one quarantine place is still free for a new failing mail.
    let o = env.run(&cfg, &[], &mail("cap-new", "ningu@upc.edu", "y"));
    assert_eq!(code(&o), 2);
    assert_eq!(q.list().unwrap().len(), 3, "{}", env.log());
}

/// Cost of `journal purge` on a journal of 100,000 mails (3 steps each), 70 % of them
/// old enough to go. Run with `cargo test --release --test it journal_purge_cost --
/// --ignored --nocapture`.
#[test]
#[ignore = "measurement"]
fn journal_purge_cost_on_100k_mails() {
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let j = DeliveryJournal::open(dir.path()).unwrap();
    drop(j);
    let n = now();
    let db = dir
        .path()
        .join(mailtoticket::adapters::journal::DB_FILE_NAME);
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..100_000i64 {
        let age = if i % 10 < 7 { 100 } else { 1 };
        let at = (n - TimeDelta::days(age)).timestamp_millis();
        let status = if i % 2 == 0 { "SUCCESS" } else { "REJECT" };
        let key = format!("<m{i}@x>");
        tx.execute(
            "INSERT INTO mails VALUES (?1, ?2, 0, ?2, 0, 1, ?3)",
            rusqlite::params![key, at, status],
        )
        .unwrap();
        for (seq, step) in ["digest", "ticket", "completed"].iter().enumerate() {
            tx.execute(
                "INSERT INTO steps VALUES (?1, ?2, ?3, 'v', ?4, 0)",
                rusqlite::params![key, step, seq as i64, at],
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(conn);
    let j = DeliveryJournal::open(dir.path()).unwrap();
    let keep = std::collections::HashSet::new();
    let t = Instant::now();
    let dry = j.purge(&Retention::default(), &keep, n, true).unwrap();
    let dry_ms = t.elapsed().as_millis();
    let t = Instant::now();
    let real = j.purge(&Retention::default(), &keep, n, false).unwrap();
    let real_ms = t.elapsed().as_millis();
    assert_eq!(dry.mails(), 70_000);
    assert_eq!(real.mails(), 70_000);
    assert_eq!(j.list(n - TimeDelta::days(365)).unwrap().len(), 30_000);
    println!("journal purge, 100k mails, 70k old: dry run {dry_ms} ms, purge {real_ms} ms");
}

#[test]
fn new_sidecar_fields_stay_readable_and_cannot_be_forged() {
    let dir = tempfile::tempdir().unwrap();
    let q = Quarantine::new(dir.path());
    let cfg = dir.path().join("real.toml");
    let p = put(&q, LOOP_MAIL, "REJECT", &cfg, now());
    // A failing retry whose reason tries to add fields of its own.
    q.record_retry(
        &p,
        "REJECT",
        "no\nconfig: /tmp/evil.toml\nreason: forged\rstatus: SUCCESS",
        now(),
    )
    .unwrap();
    let s = q.sidecar(&p).unwrap();
    assert_eq!(s.get(FIELD_CONFIG), Some(cfg.to_str().unwrap()));
    assert_eq!(s.status, "REJECT");
    assert_eq!(s.reason, "motiu de prova\nsegona línia (REJECT)");
    assert!(
        s.get(FIELD_LAST_ERROR)
            .unwrap()
            .starts_with("REJECT: no config: /tmp/evil.toml")
    );
    // The reader that only knows status, quarantined-at and reason still reads it.
    let old = q.read(&p).unwrap();
    assert_eq!(old.status, "REJECT");
    assert_eq!(old.reason, "motiu de prova\nsegona línia (REJECT)");
    assert_eq!(old.raw, LOOP_MAIL);
    // And a sidecar written by the old writer reads with no fields.
    let plain = q.put(b"From: a@b\n\nx\n", "ERROR", "vell", now()).unwrap();
    let s = q.sidecar(&plain).unwrap();
    assert!(
        s.fields.is_empty() && s.reason == "vell" && s.retries() == 0,
        "{s:?}"
    );
}
