//! Fidelity corpus (issue 17): every `fixtures/fidelity/*.eml` goes through the real binary
//! against the sandbox bus, and the ticket it leaves must be the one in `<case>.expected`
//! (subject, requester, description snippets, every attachment's name and MD5, in order).
//! The mails and expectations are written by `fixtures/fidelity/generate.py` from the
//! inputs it encodes, not from this program's output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use md5::{Digest, Md5};

use mailtoticket::sandbox::{list_tickets, load_attachment, load_ticket};

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

#[derive(Debug, Default)]
struct Expected {
    subject: String,
    requester: String,
    texts: Vec<String>,
    attachments: Vec<String>,
}

fn read_expected(path: &Path) -> Expected {
    let mut e = Expected::default();
    let text = std::fs::read_to_string(path).expect("expected file");
    for line in text.lines() {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        match key {
            "subject" => e.subject = value.to_string(),
            "requester" => e.requester = value.to_string(),
            "text" => e.texts.push(value.to_string()),
            "attachment" => e.attachments.push(value.to_string()),
            other => panic!("{}: unknown key {other}", path.display()),
        }
    }
    e
}

fn write_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "username_soa = \"soa\"\npassword_soa = \"soa-pw\"\n\
             username_gn6 = \"gn6\"\npassword_gn6 = \"gn6-pw\"\n\
             domini = \"1234\"\nequip_resolutor_nous = \"98765\"\nusuari_extern = \"extern\"\n\
             filtres = [\"nou\", \"nou_extern\"]\nmax_tickets_per_hour = 0\n\
             log_file = \"{log}\"\nstate_dir = \"{state}\"\n\
             bus = \"sandbox\"\nsandbox_dir = \"{sandbox}\"\n",
            log = dir.join("m2t.log").display(),
            state = dir.join("state").display(),
            sandbox = dir.join("sandbox").display(),
        ),
    )
    .expect("config");
    cfg
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

/// Runs one case; the differences found (empty when it passes).
fn run_case(eml: &Path) -> Vec<String> {
    let expected = read_expected(&eml.with_extension("expected"));
    let raw = std::fs::read(eml).expect("eml");
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path());
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(&cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&raw).expect("write mail");
    }
    let out = child.wait_with_output().expect("wait");
    let mut diffs = Vec::new();
    let head = String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(80)]).to_string();
    if !head.starts_with("X-Mailtoticket: SUCCESS") {
        let log = std::fs::read_to_string(dir.path().join("m2t.log")).unwrap_or_default();
        return vec![format!("status line {head:?}; log:\n{log}")];
    }
    let sandbox = dir.path().join("sandbox");
    let list = list_tickets(&sandbox).expect("list");
    if list.len() != 1 {
        return vec![format!("{} tickets instead of 1", list.len())];
    }
    let t = load_ticket(&sandbox, list[0].codi)
        .expect("load")
        .expect("ticket");
    if t.assumpte != expected.subject {
        diffs.push(format!(
            "subject: expected {:?}, got {:?}",
            expected.subject, t.assumpte
        ));
    }
    if t.email_solicitant != expected.requester {
        diffs.push(format!(
            "requester: expected {:?}, got {:?}",
            expected.requester, t.email_solicitant
        ));
    }
    let description = unescape(&t.descripcio);
    for snippet in &expected.texts {
        if !description.contains(snippet.as_str()) {
            diffs.push(format!("text: {snippet:?} not in {description:?}"));
        }
    }
    let got: Vec<String> = t
        .attachments
        .iter()
        .map(|a| {
            let bytes = load_attachment(&sandbox, a.codi_annex)
                .expect("attachment")
                .unwrap_or_default();
            let hex: String = Md5::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("{} {hex}", a.name)
        })
        .collect();
    if got != expected.attachments {
        diffs.push(format!(
            "attachments:\n  expected {:?}\n  got      {:?}",
            expected.attachments, got
        ));
    }
    diffs
}

#[test]
fn fidelity_corpus_through_the_binary_and_the_sandbox() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fidelity");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("fixtures/fidelity")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "only {} cases", cases.len());
    let mut failed = Vec::new();
    for case in &cases {
        let diffs = run_case(case);
        if !diffs.is_empty() {
            let name = case.file_name().unwrap_or_default().to_string_lossy();
            failed.push(format!("{name}:\n  {}", diffs.join("\n  ")));
        }
    }
    eprintln!(
        "fidelity corpus: {} of {} cases pass",
        cases.len() - failed.len(),
        cases.len()
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
