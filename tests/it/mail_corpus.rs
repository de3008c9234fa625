//! Data-driven corpus: `fixtures/mail/*.eml` through the mail adapter, classification and
//! HTML cleaning, against `<name>.expected`. Each mail runs with LF and with CRLF line
//! endings. A mismatch writes `<name>.actual` next to the fixture; `UPDATE_FIXTURES=1`
//! rewrites the computed keys of the expectation (the snippet keys are kept as written).
//!
//! Expectation keys (one `key: value` a line, `#` comments):
//! - computed, compared exactly: `class` (process, forced, skip-listed, or an AutoClass
//!   name), `rule`, `subject`, `from`, `to`, `cc`, `message-id`, `in-reply-to`,
//!   `references`, `date`, `content-type`, `attachments` (`name [type] <cid>` joined by ` | `);
//! - snippets, repeatable: `body-has` / `body-lacks` (body_html), `text-has` (body_text),
//!   `clean-has` / `clean-lacks` (after `clean(full = true)` and `remove_cid_images`,
//!   as a reply when the subject starts with `Re:`), `safe-lacks` (after `sanitize`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use mailtoticket::adapters::mail::{AttachmentFilters, parse};
use mailtoticket::domain::classify::{ClassifyOptions, Decision, classify};
use mailtoticket::domain::html;
use mailtoticket::domain::mail::Mail;

const COMPUTED: &[&str] = &[
    "class",
    "rule",
    "subject",
    "from",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "date",
    "content-type",
    "attachments",
];
const SNIPPETS: &[&str] = &[
    "body-has",
    "body-lacks",
    "text-has",
    "clean-has",
    "clean-lacks",
    "safe-lacks",
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mail")
}

fn filters() -> AttachmentFilters {
    // The corpus has a signature logo (`logo-signatura.png`) and an `image001.gif`-style
    // spacer dropped by name; and a tracking pixel dropped by hash (MD5 of "GIF89a-pixel").
    AttachmentFilters::new(
        &["^image0\\d\\d\\.gif$".to_string()],
        &["039f89e61a86dfb5e5cf09436f294875".to_string()],
    )
    .expect("filters")
}

fn is_reply(subject: &str) -> bool {
    let s = subject.trim_start().to_ascii_lowercase();
    s.starts_with("re:") || s.starts_with("re :")
}

fn computed(mail: &Mail) -> Vec<(&'static str, String)> {
    let (class, rule) = match classify(mail, &ClassifyOptions::default()) {
        Decision::Process { forced: false } => ("process".to_string(), String::new()),
        Decision::Process { forced: true } => ("forced".to_string(), String::new()),
        Decision::SkipListed { item } => ("skip-listed".to_string(), item),
        Decision::SkipAutomatic { class, rule } => (class.as_str().to_string(), rule),
    };
    let attachments = mail
        .attachments
        .iter()
        .map(|a| {
            let mut s = format!("{} [{}]", a.name, a.content_type);
            if let Some(cid) = &a.content_id {
                let _ = write!(s, " <{cid}>");
            }
            s
        })
        .collect::<Vec<_>>()
        .join(" | ");
    vec![
        ("class", class),
        ("rule", rule),
        ("subject", mail.subject.clone()),
        ("from", mail.from.join(", ")),
        ("to", mail.to.join(", ")),
        ("cc", mail.cc.join(", ")),
        ("message-id", mail.message_id.clone().unwrap_or_default()),
        ("in-reply-to", mail.in_reply_to.join(" ")),
        ("references", mail.references.join(" ")),
        (
            "date",
            mail.date.map(|d| d.to_rfc3339()).unwrap_or_default(),
        ),
        ("content-type", mail.content_type.clone()),
        ("attachments", attachments),
    ]
}

struct Expectation {
    computed: Vec<(String, String)>,
    snippets: Vec<(String, String)>,
}

fn read_expectation(path: &Path) -> Expectation {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut e = Expectation {
        computed: Vec::new(),
        snippets: Vec::new(),
    };
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(':') else {
            panic!("{}: bad line {line:?}", path.display());
        };
        let (k, v) = (
            k.trim().to_string(),
            v.strip_prefix(' ').unwrap_or(v).to_string(),
        );
        if SNIPPETS.contains(&k.as_str()) {
            e.snippets.push((k, v));
        } else if COMPUTED.contains(&k.as_str()) {
            e.computed.push((k, v));
        } else {
            panic!("{}: unknown key {k:?}", path.display());
        }
    }
    e
}

fn render(computed: &[(&str, String)], snippets: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in computed {
        let _ = writeln!(out, "{k}: {v}");
    }
    for (k, v) in snippets {
        let _ = writeln!(out, "{k}: {v}");
    }
    out
}

/// Checks one mail in one line-ending variant; returns the problems found.
fn check(mail: &Mail, exp: &Expectation) -> Vec<String> {
    let mut problems = Vec::new();
    let got = computed(mail);
    for (k, v) in &got {
        let want = exp
            .computed
            .iter()
            .find(|(ek, _)| ek == k)
            .map(|(_, ev)| ev.as_str())
            .unwrap_or("");
        if want != v.as_str() {
            problems.push(format!("{k}: expected {want:?}, got {v:?}"));
        }
    }
    let cleaned =
        html::remove_cid_images(&html::clean(&mail.body_html, true, is_reply(&mail.subject)));
    let safe = html::sanitize(&mail.body_html);
    for (k, v) in &exp.snippets {
        let (hay, want_present) = match k.as_str() {
            "body-has" => (&mail.body_html, true),
            "body-lacks" => (&mail.body_html, false),
            "text-has" => (&mail.body_text, true),
            "clean-has" => (&cleaned, true),
            "clean-lacks" => (&cleaned, false),
            "safe-lacks" => (&safe, false),
            _ => unreachable!(),
        };
        if hay.contains(v.as_str()) != want_present {
            problems.push(format!(
                "{k}: {v:?} {} in:\n{hay}",
                if want_present { "missing" } else { "present" }
            ));
        }
    }
    problems
}

fn lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\r' && raw.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

fn crlf(raw: &[u8]) -> Vec<u8> {
    let lf = lf(raw);
    let mut out = Vec::with_capacity(lf.len() + lf.len() / 20);
    for &b in &lf {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[test]
fn corpus() {
    let dir = fixtures_dir();
    let mut emls: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/mail")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    emls.sort();
    assert!(emls.len() >= 46, "corpus has {} mails", emls.len());
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let mut failures = Vec::new();
    for eml in &emls {
        let raw = std::fs::read(eml).expect("read fixture");
        let exp_path = eml.with_extension("expected");
        let actual_path = eml.with_extension("actual");
        let exp = read_expectation(&exp_path);
        let mut problems = Vec::new();
        let mut first = None;
        for (variant, bytes) in [("LF", lf(&raw)), ("CRLF", crlf(&raw))] {
            let mail = parse(&bytes, &filters());
            for p in check(&mail, &exp) {
                problems.push(format!("[{variant}] {p}"));
            }
            first.get_or_insert(mail);
        }
        let Some(mail) = first else { continue };
        let rendered = render(&computed(&mail), &exp.snippets);
        if update {
            std::fs::write(&exp_path, &rendered).expect("write expectation");
            continue;
        }
        if problems.is_empty() {
            let _ = std::fs::remove_file(&actual_path);
        } else {
            std::fs::write(&actual_path, &rendered).expect("write actual");
            failures.push(format!(
                "{}:\n  {}",
                eml.file_name().unwrap_or_default().to_string_lossy(),
                problems.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus mails differ (see *.actual):\n{}",
        failures.len(),
        emls.len(),
        failures.join("\n")
    );
}
