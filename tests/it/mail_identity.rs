//! Issues 19 and 12 on the built binary against the sandbox bus: a mail's identity
//! (Message-ID + digest), permanent outcomes once, one refused part among others,
//! the call cap, config-relative paths, dry run after delivery, import round trip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mailtoticket::sandbox;

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

struct Box_ {
    dir: tempfile::TempDir,
}

impl Box_ {
    fn new(extra: &str) -> Box_ {
        let dir = tempfile::tempdir().unwrap();
        // Relative paths on purpose: they resolve against the config's folder.
        let text = format!(
            "bus = \"sandbox\"\nequip_resolutor_nous = \"98765\"\ndomini = \"1234\"\n\
             username_soa = \"usu.soa\"\npassword_soa = \"Soa-Pw-4f1c9e\"\n\
             username_gn6 = \"usugn6\"\npassword_gn6 = \"Gn6-Pw-77ab20\"\n\
             log_file = \"logs/m2t.log\"\nstate_dir = \"state\"\nsandbox_dir = \"sandbox\"\n{extra}"
        );
        std::fs::write(dir.path().join("m2t.toml"), text).unwrap();
        sandbox::add_person(
            &dir.path().join("sandbox"),
            "nom.cognom",
            &["nom.cognom@upc.edu".to_string()],
        )
        .unwrap();
        Box_ { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("m2t.toml")
    }

    /// Runs the MDA from an unrelated working directory: (exit, header, stdout).
    fn run(&self, args: &[&str], raw: &[u8]) -> (i32, String, String) {
        let cwd = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .current_dir(cwd.path())
            .args(["-c", self.config().to_str().unwrap()])
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("MAILTOTICKET_PASSWORD_SOA")
            .env_remove("MAILTOTICKET_PASSWORD_GN6")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = raw.to_vec();
        let w = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        let _ = w.join();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let header = stdout
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("X-Mailtoticket: "))
            .unwrap_or("")
            .to_string();
        (out.status.code().unwrap_or(-1), header, stdout)
    }

    fn mda(&self, raw: &[u8]) -> (i32, String) {
        let (c, h, _) = self.run(&[], raw);
        (c, h)
    }

    fn tickets(&self) -> Vec<sandbox::SimTicket> {
        let dir = self.dir.path().join("sandbox");
        sandbox::list_tickets(&dir)
            .unwrap_or_default()
            .into_iter()
            .map(|t| sandbox::load_ticket(&dir, t.codi).unwrap().unwrap())
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("logs/m2t.log")).unwrap_or_default()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

fn mail(id: Option<&str>, subject: &str, body: &str) -> Vec<u8> {
    let id = id.map(|i| format!("Message-ID: {i}\n")).unwrap_or_default();
    format!(
        "From: <nom.cognom@upc.edu>\nTo: <suport.unitat@upc.edu>\nDate: Mon, 7 Dec 2026 10:00:00 +0100\n{id}Subject: {subject}\n\n{body}\n"
    )
    .into_bytes()
}

fn refetched(raw: &[u8], n: u32) -> Vec<u8> {
    let mut out = format!(
        "Received: from imap.example.org by fetchmail-6.4.37 (single-drop) for <x>; Mon, 7 Dec 2026 10:0{n}:00 +0100\n\
         Delivered-To: suport.unitat@upc.edu\nReturn-Path: <nom.cognom@upc.edu>\nX-Original-To: suport.unitat@upc.edu\n"
    )
    .into_bytes();
    out.extend_from_slice(raw);
    out
}

#[test]
fn a_message_id_clash_is_two_tickets_and_a_refetch_is_one() {
    let b = Box_::new("");
    let victim = mail(
        Some("<predictable-1@upc.edu>"),
        "Impressora",
        "No imprimeix.",
    );
    let attacker = mail(Some("<predictable-1@upc.edu>"), "Spam", "Primer!");
    assert_eq!(b.mda(&attacker), (0, "SUCCESS".into()));
    assert_eq!(b.mda(&victim), (0, "SUCCESS".into()));
    assert_eq!(b.tickets().len(), 2, "the victim's mail must not vanish");
    let log = b.log();
    let clash: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Message-ID repetit"))
        .collect();
    assert_eq!(clash.len(), 1, "{log}");
    assert!(
        clash[0].contains("<predictable-1@upc.edu> sha256:"),
        "{}",
        clash[0]
    );
    // Both re-fetched with new trace headers: duplicates, no third ticket.
    assert_eq!(b.mda(&refetched(&victim, 1)), (0, "SUCCESS".into()));
    assert_eq!(b.mda(&refetched(&attacker, 2)), (0, "SUCCESS".into()));
    assert_eq!(b.tickets().len(), 2);
}

#[test]
fn a_mail_without_message_id_fetched_again_is_one_ticket() {
    let b = Box_::new("");
    let raw = mail(None, "Sense id", "Hola");
    assert_eq!(b.mda(&refetched(&raw, 1)), (0, "SUCCESS".into()));
    assert_eq!(b.mda(&refetched(&raw, 2)), (0, "SUCCESS".into()));
    assert_eq!(
        b.mda(&refetched(&refetched(&raw, 3), 4)),
        (0, "SUCCESS".into())
    );
    assert_eq!(b.tickets().len(), 1);
    // Another body is another mail.
    assert_eq!(
        b.mda(&mail(None, "Sense id", "Adéu")),
        (0, "SUCCESS".into())
    );
    assert_eq!(b.tickets().len(), 2);
}

fn with_parts(parts: &[(&str, &str)]) -> Vec<u8> {
    let mut s = String::from(
        "From: <nom.cognom@upc.edu>\nTo: <suport.unitat@upc.edu>\nDate: Mon, 7 Dec 2026 10:00:00 +0100\n\
         Message-ID: <parts-1@upc.edu>\nSubject: Tres fitxers\nMIME-Version: 1.0\n\
         Content-Type: multipart/mixed; boundary=\"XX\"\n\n--XX\nContent-Type: text/plain\n\nMireu els fitxers.\n",
    );
    for (name, b64) in parts {
        s.push_str(&format!(
            "--XX\nContent-Type: application/octet-stream; name=\"{name}\"\n\
             Content-Disposition: attachment; filename=\"{name}\"\nContent-Transfer-Encoding: base64\n\n{b64}\n"
        ));
    }
    s.push_str("--XX--\n");
    s.into_bytes()
}

#[test]
fn one_refused_attachment_among_three_costs_only_itself() {
    let b = Box_::new("");
    // The empty file is refused by GN6 (codiRetorn -6) after the ticket exists.
    let raw = with_parts(&[("a.txt", "YWFh"), ("buit.txt", ""), ("c.txt", "Y2Nj")]);
    let (code, header) = b.mda(&raw);
    assert_eq!((code, header.as_str()), (0, "SUCCESS"), "{}", b.log());
    let t = b.tickets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].attachments.len(), 2, "{:?}", t[0].attachments);
    assert!(
        t[0].descripcio.contains("No lliurat"),
        "{}",
        t[0].descripcio
    );
    assert!(t[0].descripcio.contains("buit.txt"), "{}", t[0].descripcio);
    let parts: Vec<_> = std::fs::read_dir(b.path("state/quarantine/parts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(parts.len(), 2, "the part and its note: {parts:?}");
    assert!(parts.iter().any(|p| p.ends_with("buit.txt")), "{parts:?}");
    // The whole mail is not quarantined, and a new delivery is a duplicate.
    let mails = std::fs::read_dir(b.path("state/quarantine"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count();
    assert_eq!(mails, 0);
    assert_eq!(b.mda(&raw), (0, "SUCCESS".into()));
    assert_eq!(b.tickets()[0].attachments.len(), 2);
}

#[test]
fn past_the_call_cap_the_mail_is_delivered_and_says_what_was_left_out() {
    let b = Box_::new("max_calls_per_mail = 10\nafegir_solicitants_addicionals_en_cc = true\n");
    let cc: Vec<String> = (0..200)
        .map(|i| format!("persona{i}@example.org"))
        .collect();
    let raw = format!(
        "From: <nom.cognom@upc.edu>\nTo: <suport.unitat@upc.edu>\nCc: {}\nDate: Mon, 7 Dec 2026 10:00:00 +0100\n\
         Message-ID: <cap-1@upc.edu>\nSubject: Molts Cc\n\nHola\n",
        cc.join(", ")
    );
    let (code, header) = b.mda(raw.as_bytes());
    assert_eq!((code, header.as_str()), (0, "SUCCESS"), "{}", b.log());
    let log = b.log();
    let calls: usize = log
        .lines()
        .find_map(|l| l.split("crides_soap=").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .expect("summary line");
    assert!(calls <= 25, "bounded calls: {calls}");
    let t = b.tickets();
    assert_eq!(t.len(), 1);
    assert!(
        t[0].descripcio.contains("sol·licitants en Cc no afegits"),
        "{}",
        t[0].descripcio
    );
    // Permanent: a new delivery repeats nothing.
    assert_eq!(b.mda(raw.as_bytes()), (0, "SUCCESS".into()));
}

#[test]
fn a_rejected_mail_delivered_five_times_is_quarantined_once() {
    // Only the reply filter: a new mail is REJECT ("cap filtre aplicable").
    let b = Box_::new("filtres = [\"reply\"]\n");
    let raw = mail(Some("<rej-1@upc.edu>"), "Hola", "Res");
    for i in 0..5 {
        assert_eq!(b.mda(&refetched(&raw, i)), (2, "REJECT".into()), "run {i}");
    }
    let eml = std::fs::read_dir(b.path("state/quarantine"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "eml")
        })
        .count();
    assert_eq!(eml, 1);
    assert_eq!(b.log().matches("Mail desat a la quarantena").count(), 1);
    // With exit_zero_when_reported the repeats exit 0 so that fetchmail flushes it.
    let text = std::fs::read_to_string(b.config()).unwrap() + "exit_zero_when_reported = true\n";
    std::fs::write(b.config(), text).unwrap();
    assert_eq!(b.mda(&raw), (0, "REJECT".into()));
}

#[test]
fn relative_paths_resolve_against_the_config_folder_and_dry_run_reads_the_journal() {
    let b = Box_::new("");
    let raw = mail(Some("<dry-1@upc.edu>"), "Dry", "Cos");
    assert_eq!(b.mda(&raw), (0, "SUCCESS".into()));
    assert!(b.path("logs/m2t.log").is_file());
    assert!(b.path("state/journal.sqlite3").is_file());
    let (code, _, out) = b.run(&["--dry-run"], &raw);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already delivered: ticket 1"), "{out}");
    assert!(!out.contains("AltaTiquet"), "{out}");
    // `journal show` from elsewhere finds the same journal.
    let (code, _, out) = b.run(&["journal", "show", "dry-1@upc.edu"], b"");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("status:     SUCCESS"), "{out}");
    // check prints the URLs it called and the absolute paths it writes.
    let (code, _, out) = b.run(&["check"], b"");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("state_dir {}", b.path("state").display())),
        "{out}"
    );
    assert!(out.contains("GN6 http://127.0.0.1:"), "{out}");
}

#[test]
fn import_settings_maps_old_filter_classes_and_the_result_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let old = std::fs::read_to_string(root.join("fixtures/settings/settings_sample.py")).unwrap();
    let old = old.replace(
        "\"filtres\": [\"reply\", \"nou\", ],",
        "\"filtres\": [\"filtres.reply.FiltreReply\", \"filtres.nou.FiltreNou\", \"filtres.altre.FiltreAltre\"],",
    );
    assert!(old.contains("FiltreReply"));
    let out = mailtoticket::cli::import_settings::import(&old).unwrap();
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("filtres.altre.FiltreAltre")),
        "{:?}",
        out.notes
    );
    let config = mailtoticket::config::Config::from_toml(&out.toml, Path::new("x")).unwrap();
    assert_eq!(config.filtres, ["reply", "nou"]);
    // The configuration part of `check`: every key validates.
    if let Err(problems) = mailtoticket::config::Settings::build(&config) {
        panic!("{problems:?}\n{}", out.toml);
    }
}
