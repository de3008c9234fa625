//! Hostile content (issue 9): stored XSS through the cleaning steps, foreign URLs, and
//! unbounded work. Every stored body is re-parsed with html5ever's full (browser) tree
//! builder and checked: no `on*` attribute, no `javascript:`/`data:` URL, no
//! script/style/iframe/object, no image other than our own attachments, no link other
//! than absolute http/https/mailto or our own attachments.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use html5ever::tendril::TendrilSink;
use mailtoticket::domain::html::{Body, DEFAULT_MAX_DEPTH};
use mailtoticket::domain::texts::Uploaded;
use markup5ever_rcdom::{Handle, NodeData, RcDom};
use proptest::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");
const OWN_FILE: &str = "/tiquetsusuaris/control/file?fileId=";

// ------------------------------------------------------------------ the checker

/// Every way the stored HTML could act on a technician's browser, as a browser parses it.
fn violations(stored: &str) -> Vec<String> {
    let dom = html5ever::parse_document(RcDom::default(), Default::default()).one(stored);
    let mut found = Vec::new();
    let mut stack: Vec<Handle> = vec![dom.document.clone()];
    while let Some(node) = stack.pop() {
        if let NodeData::Element { name, attrs, .. } = &node.data {
            let tag: String = name.local.to_string().to_ascii_lowercase();
            if [
                "script", "style", "iframe", "object", "embed", "svg", "math", "form", "input",
                "base", "link", "meta", "frame", "frameset", "video", "audio", "source",
            ]
            .contains(&tag.as_str())
            {
                found.push(format!("<{tag}>"));
            }
            for a in attrs.borrow().iter() {
                let an: String = a.name.local.to_string().to_ascii_lowercase();
                let v: String = a
                    .value
                    .chars()
                    .filter(|c| !c.is_whitespace() && !c.is_control())
                    .collect::<String>()
                    .to_ascii_lowercase();
                if an.starts_with("on") || an == "style" || an == "srcdoc" || an == "formaction" {
                    found.push(format!("attribute {an}"));
                }
                if v.contains("javascript:") || v.contains("vbscript:") || v.starts_with("data:") {
                    found.push(format!("{an}={v}"));
                }
                if an == "src" && !(tag == "img" && a.value.starts_with(OWN_FILE)) {
                    found.push(format!("foreign src {v}"));
                }
                if an == "href" {
                    let ok = a.value.starts_with(OWN_FILE)
                        || v.starts_with("http://")
                        || v.starts_with("https://")
                        || v.starts_with("mailto:");
                    if !ok {
                        found.push(format!("foreign href {v}"));
                    }
                }
                if [
                    "background",
                    "action",
                    "poster",
                    "xlink:href",
                    "lowsrc",
                    "dynsrc",
                ]
                .contains(&an.as_str())
                {
                    found.push(format!("url attribute {an}"));
                }
            }
        }
        stack.extend(node.children.borrow().iter().cloned());
    }
    found
}

fn assert_clean(label: &str, input: &str, stored: &str) {
    let v = violations(stored);
    assert!(
        v.is_empty(),
        "{label}: {v:?}\n input: {input}\nstored: {stored}"
    );
}

/// The attachments a hostile mail "uploaded", with hostile Content-IDs.
fn uploaded() -> Vec<Uploaded<'static>> {
    [
        ("x\"", "1"),
        ("x\">\" onerror=alert(1) x=\"", "2"),
        ("<y>", "3"),
        ("a b", "4"),
        ("' onload='alert(1)", "5"),
        ("z", "6\" onerror=\"alert(1)"),
    ]
    .into_iter()
    .map(|(cid, code)| Uploaded {
        name: "f\"<img src=x onerror=alert(1)>.png".to_string(),
        content_type: "image/png\"><script>alert(1)</script>",
        content_id: Some(cid),
        codi_annex: code.to_string(),
    })
    .collect()
}

/// The app's pipeline: parse, clean when `full`, resolve `cid:`, header, render.
fn store(html: &str, full: bool, reply: bool, uploaded: &[Uploaded<'_>]) -> String {
    let mut b = Body::parse(html, DEFAULT_MAX_DEPTH);
    if full {
        b.clean(reply);
    }
    b.link_attachments(uploaded);
    b.prepend_header("[Tiquet creat des del correu de \"x\" <a@b.c> a s@upc.edu]");
    b.render().into_string()
}

fn every_mode(label: &str, html: &str) {
    let up = uploaded();
    for full in [false, true] {
        for reply in [false, true] {
            let out = store(html, full, reply, &up);
            assert_clean(&format!("{label} full={full} reply={reply}"), html, &out);
        }
    }
}

// ------------------------------------------------------------ the three payloads

const PAYLOAD_PGP: &str = r#"<p>hello</p><img src="x" class="-----BEGIN PGP SIGNATURE-----"><p>-----END PGP SIGNATURE-----" onerror=alert(document.domain) x=</p>"#;
const PAYLOAD_QUOTE: &str =
    "<p>hello<img src=\"x\" class=\"\n>\">\n\" onerror=alert(document.domain) x=</p>";
const PAYLOAD_CID: &str = r#"<p>hi<img src="cid:x">" onerror=alert(document.domain) x=</p>"#;

#[test]
fn the_three_payloads_of_the_issue_store_no_handler() {
    every_mode("pgp", PAYLOAD_PGP);
    every_mode("quote", PAYLOAD_QUOTE);
    let up = [Uploaded {
        name: "x.png".into(),
        content_type: "image/png",
        content_id: Some("x\""),
        codi_annex: "77".into(),
    }];
    for full in [false, true] {
        let out = store(PAYLOAD_CID, full, false, &up);
        assert_clean("cid", PAYLOAD_CID, &out);
        // The text stays text, escaped.
        assert!(out.contains("onerror=alert(document.domain)"), "{out}");
        assert!(!out.contains("<img"), "cid x must not match id x\": {out}");
    }
    // With the Content-ID the body names, the image is ours.
    let up = [Uploaded {
        content_id: Some("x"),
        ..up[0].clone()
    }];
    let out = store(PAYLOAD_CID, true, false, &up);
    assert!(
        out.contains("<img src=\"/tiquetsusuaris/control/file?fileId=77\">"),
        "{out}"
    );
    assert_clean("cid resolved", PAYLOAD_CID, &out);
}

// ---------------------------------------------- every step × every splitting trick

/// Text that makes one cleaning step act.
const TRIGGERS: &[(&str, &str)] = &[
    ("pgp-begin", "-----BEGIN PGP SIGNATURE-----"),
    ("pgp-end", "-----END PGP SIGNATURE-----"),
    ("pgp-signed", "-----BEGIN PGP SIGNED MESSAGE-----"),
    ("gt-quote", "&gt; quoted"),
    ("gt-quote-raw", "> quoted"),
    ("dash-sig", "-- "),
    ("cite", "<blockquote type=\"cite\">"),
    ("gmail", "<div class=\"gmail_quote\">"),
    ("moz", "<div class=\"moz-cite-prefix\">"),
    ("android", "<div class=\"quote\">"),
    ("sig", "<div class=\"moz-signature\">"),
    ("outlook", "From: a<br>Sent: b<br>To: c<br>Subject: d"),
    ("br-run", "<br><br><br><br>"),
    ("address", "<joan@example.com>"),
    ("cid", "cid:x\""),
];

/// Ways to smuggle a handler across a step's cut, with `{T}` for the trigger.
const TRICKS: &[(&str, &str)] = &[
    (
        "attr-split",
        "<p>a</p><img src=\"x\" class=\"{T}\"><p>{T}\" onerror=alert(1) x=</p>",
    ),
    (
        "single-quote-split",
        "<p>a</p><img src='x' class='{T}'><p>{T}' onerror=alert(1) x='</p>",
    ),
    (
        "unquoted-split",
        "<p>a<img src=x class={T} onerror=alert(1)>\n{T}\n</p>",
    ),
    (
        "quote-lines",
        "<p>hello<img src=\"x\" class=\"\n{T}\n\" onerror=alert(1) x=</p>",
    ),
    (
        "cdata",
        "<p>a</p><![CDATA[{T}<img src=x onerror=alert(1)>]]><p>{T}</p>",
    ),
    (
        "comment",
        "<p>a</p><!-- {T} --><img src=x onerror=alert(1)><!-- {T} -->",
    ),
    (
        "comment-in-attr",
        "<p>a</p><img alt=\"<!--{T}-->\" src=\"x\" title=\"--><script>alert(1)</script>\">",
    ),
    (
        "href-split",
        "<a href=\"https://ok.example/{T}\">{T}</a><a href=\"javascript:alert(1)//{T}\">x</a>",
    ),
    (
        "cid-src",
        "<p>a</p><img src=\"cid:x\" alt=\"{T}\" onerror=alert(1)><img src=\"cid:{T}\">",
    ),
    (
        "nested-block",
        "<div>{T}<div>a<img src=x onerror=alert(1)>{T}</div><script>alert(1)</script></div>",
    ),
    (
        "entity",
        "<p>a&quot; onerror=alert(1) x=&quot;{T}</p><img src=&quot;x&quot; onerror&#61;alert(1)>",
    ),
];

#[test]
fn every_cleaning_step_times_every_splitting_trick() {
    let mut n = 0;
    for (tname, trigger) in TRIGGERS {
        for (kname, trick) in TRICKS {
            let html = trick.replace("{T}", trigger);
            every_mode(&format!("{tname}×{kname}"), &html);
            n += 1;
        }
    }
    assert!(n >= 60, "{n} cases");
}

/// Classic vectors, each through every mode.
const CLASSIC: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)>",
    "<a href=\"java\nscript:alert(1)\">x</a>",
    "<a href=\"&#x6A;avascript:alert(1)\">x</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD4=\">x</a>",
    "<svg/onload=alert(1)>",
    "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<xmp><script>alert(1)</script></xmp>",
    "<textarea><img src=x onerror=alert(1)></textarea>",
    "<title><img src=x onerror=alert(1)></title>",
    "<style><img src=x onerror=alert(1)></style>",
    "<template><img src=x onerror=alert(1)></template>",
    "<select><img src=x onerror=alert(1)></select>",
    "<table background=\"javascript:alert(1)\"><tr><td>x</td></tr></table>",
    "<form><button formaction=javascript:alert(1)>x</button></form>",
    "<plaintext><img src=x onerror=alert(1)>",
    "<img src=\"/tiquetsusuaris/control/esborrarTiquet?codi=1\">",
    "<img src=\"//evil.example/pixel.gif\" alt=\"pixel\">",
    "<img src=\"https://tracker.example/p.gif?u=1\">",
    "<a href=\"/tiquetsusuaris/control/esborrarTiquet?codi=1\">esborra</a>",
    "<a href=\"//evil.example/\">x</a>",
    "<a href=\"\\\\evil.example\\x\">x</a>",
    "<<img src=x onerror=alert(1)>",
    "<img \"\"\"><script>alert(1)</script>\">",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<base href=\"javascript:alert(1)//\">",
];

#[test]
fn classic_vectors_in_every_mode() {
    for v in CLASSIC {
        every_mode(v, v);
        every_mode(
            v,
            &format!("<p>hola</p>{v}<blockquote type=\"cite\">{v}</blockquote>"),
        );
    }
}

#[test]
fn foreign_images_keep_their_alt_text_and_links_their_text() {
    let out = store(
        "<img src=\"//evil.example/p.gif\" alt=\"logo UPC\"><a href=\"/rel\">enllaç</a>",
        false,
        false,
        &[],
    );
    assert!(out.ends_with("logo UPCenllaç"), "{out}");
}

// --------------------------------------------------------------- the property

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<p>".to_string()),
        Just("</p>".to_string()),
        Just("<div class=\"gmail_quote\">".to_string()),
        Just("<div class=\"moz-cite-prefix\">".to_string()),
        Just("<div class=\"quote\">".to_string()),
        Just("<blockquote type=\"cite\">".to_string()),
        Just("</blockquote>".to_string()),
        Just("</div>".to_string()),
        Just("<br>".to_string()),
        Just("\n".to_string()),
        Just("-- ".to_string()),
        Just("&gt; ".to_string()),
        Just("> ".to_string()),
        Just("-----BEGIN PGP SIGNATURE-----".to_string()),
        Just("-----END PGP SIGNATURE-----".to_string()),
        Just("From: a\nSent: b\nSubject: c\n".to_string()),
        Just("<img src=\"cid:x\"".to_string()),
        Just("<img src=x onerror=alert(1)>".to_string()),
        Just("<img src=\"/tiquetsusuaris/x\">".to_string()),
        Just("<a href=\"javascript:alert(1)\">".to_string()),
        Just("<a href=\"https://ok.example/\">".to_string()),
        Just("</a>".to_string()),
        Just("<script>alert(1)</script>".to_string()),
        Just("<style>x</style>".to_string()),
        Just("<iframe src=//e>".to_string()),
        Just("<object data=x>".to_string()),
        Just("<!--".to_string()),
        Just("-->".to_string()),
        Just("<![CDATA[".to_string()),
        Just("]]>".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just(" onerror=alert(1) ".to_string()),
        Just("class=\"".to_string()),
        Just("<".to_string()),
        Just(">".to_string()),
        Just("=".to_string()),
        Just("<a@b.c>".to_string()),
        "[a-z &;#0-9]{0,6}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn random_html_through_every_switch_stores_nothing_live(
        parts in proptest::collection::vec(fragment(), 0..40),
    ) {
        let html = parts.concat();
        let up = uploaded();
        for full in [false, true] {
            for reply in [false, true] {
                let out = store(&html, full, reply, &up);
                let v = violations(&out);
                prop_assert!(v.is_empty(), "full={} reply={} {:?}\n in: {}\nout: {}", full, reply, v, html, out);
            }
        }
    }
}

// ---------------------------------------------- no string edit of HTML outside the pipeline

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src dir") {
        let p = e.expect("entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The allow-list serialiser is the only code that writes description HTML: outside
/// `src/domain/html/`, the use case and the domain hold no HTML markup literal and never
/// build a description with `format!`/`push_str`/`replace`.
#[test]
fn only_the_serialiser_writes_description_html() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for area in ["app", "domain", "cli", "ports"] {
        rust_files(&root.join(area), &mut files);
    }
    let tag = regex::Regex::new(r#""[^"]*<(br|p|a|img|ul|li|div|b|blockquote|hr|table)[\s>/]"#)
        .expect("regex");
    let mut bad = Vec::new();
    for f in files {
        if f.starts_with(root.join("domain/html")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read");
        // Unit tests below `#[cfg(test)]` may hold markup as data.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            if tag.is_match(line) {
                bad.push(format!("{}:{}: {line}", f.display(), i + 1));
            }
            if l.contains("descripcio")
                && (l.contains("format!") || l.contains("push_str") || l.contains(".replace("))
            {
                bad.push(format!("{}:{}: {line}", f.display(), i + 1));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "HTML built outside the serialiser:\n{}",
        bad.join("\n")
    );
}

// --------------------------------------------------------------- resources

#[test]
fn depth_limit_at_and_past_its_edge() {
    let nest = |n: usize| format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
    let at = Body::parse(&nest(10), 10);
    assert_eq!(at.flattened(), 0);
    assert_eq!(at.render().matches("<div>").count(), 10);
    let past = Body::parse(&nest(11), 10);
    assert_eq!(past.flattened(), 1);
    assert_eq!(past.render().matches("<div>").count(), 10);
    assert!(past.render().contains('x'));
}

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "username_soa = \"h.soa\"\npassword_soa = \"h-soa-pw\"\n\
             username_gn6 = \"hgn6\"\npassword_gn6 = \"h-gn6-pw\"\n\
             domini = \"1234\"\nequip_resolutor_nous = \"98765\"\nusuari_extern = \"extern\"\n\
             filtres = [\"reply\", \"nou_extern\"]\nmax_tickets_per_hour = 0\n\
             log_file = \"{log}\"\nstate_dir = \"{state}\"\n\
             bus = \"sandbox\"\nsandbox_dir = \"{sandbox}\"\n{extra}",
            log = dir.join("m2t.log").display(),
            state = dir.join("state").display(),
            sandbox = dir.join("sandbox").display(),
        ),
    )
    .expect("config");
    cfg
}

fn run(cfg: &Path, args: &[&str], stdin: &[u8]) -> (String, i32, Duration) {
    use std::io::Write;
    let t = Instant::now();
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
        t.elapsed(),
    )
}

fn html_mail(id: &str, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Pep <pep@example.org>\r\nTo: suport@upc.edu\r\nSubject: {subject}\r\n\
         Message-ID: <{id}@example.org>\r\nDate: Tue, 20 Oct 2015 11:01:05 +0200\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

/// The stored ticket of the one mail sent to a fresh sandbox, as `show-ticket` prints it.
fn stored_ticket(cfg: &Path) -> String {
    let (list, code, _) = run(cfg, &["sandbox", "tickets"], b"");
    assert_eq!(code, 0, "{list}");
    let codi = list
        .split_whitespace()
        .next()
        .expect("a ticket")
        .to_string();
    let (shown, code, _) = run(cfg, &["show-ticket", &codi], b"");
    assert_eq!(code, 0, "{shown}");
    shown
}

fn field<'a>(shown: &'a str, name: &str) -> &'a str {
    shown
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {shown}"))
}

#[test]
fn payloads_through_the_binary_store_no_handler() {
    for (i, (body, extra)) in [
        (PAYLOAD_PGP, "netejar_mail_nou = true\n"),
        (PAYLOAD_PGP, "netejar_mail_nou = false\n"),
        (
            "<p>x</p><img src=\"/tiquetsusuaris/control/esborrarTiquet?codi=1\"><img src=\"//evil.example/p.gif\" alt=\"px\">",
            "",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = write_config(dir.path(), extra);
        let (out, code, _) = run(&cfg, &[], &html_mail(&format!("p{i}"), "Hola", body));
        assert_eq!(code, 0, "{out}");
        assert!(out.starts_with("X-Mailtoticket: SUCCESS"), "{out}");
        let shown = stored_ticket(&cfg);
        let descripcio = field(&shown, "descripcio");
        assert_clean("binary", body, descripcio);
        assert!(!descripcio.contains("esborrarTiquet") && !descripcio.contains("evil.example"));
    }
}

#[test]
fn deep_nesting_finishes_well_under_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "deadline_secs = 20\n");
    let n = 200_000;
    let body = format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
    let (out, code, took) = run(&cfg, &[], &html_mail("deep", "Deep", &body));
    assert_eq!(code, 0, "{}", &out[..out.len().min(300)]);
    assert!(out.starts_with("X-Mailtoticket: SUCCESS"));
    // Generous for a debug build on a shared 2-core machine; the benchmark has the figure.
    assert!(took < Duration::from_secs(15), "{took:?}");
    let shown = stored_ticket(&cfg);
    let descripcio = field(&shown, "descripcio");
    assert!(
        descripcio.contains("aplanat"),
        "the ticket says what was flattened"
    );
}

#[test]
fn huge_subject_is_cut_with_an_ellipsis() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let subject = "à".repeat(100_000);
    let (out, code, _) = run(&cfg, &[], &html_mail("subj", &subject, "<p>x</p>"));
    assert_eq!(code, 0, "{}", &out[..200]);
    let shown = stored_ticket(&cfg);
    let assumpte = field(&shown, "assumpte");
    assert_eq!(assumpte.chars().count(), 255);
    assert!(assumpte.ends_with('…'));
    let descripcio = field(&shown, "descripcio");
    assert!(
        descripcio.contains("tenia 100000 caràcters"),
        "the ticket says what was cut"
    );
    assert!(descripcio.contains(&subject), "and keeps the whole subject");
}

fn files_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.map(|e| e.expect("entry").path())
        .map(|p| if p.is_dir() { files_under(&p) } else { 1 })
        .sum()
}

#[test]
fn too_many_attachments_is_a_permanent_outcome_quarantined_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let mut raw = String::from(
        "From: pep@example.org\r\nTo: suport@upc.edu\r\nSubject: molts\r\n\
         Message-ID: <many@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain\r\n\r\nhola\r\n",
    );
    for i in 0..100_000 {
        raw.push_str(&format!(
            "--b\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"f{i}.bin\"\r\n\r\nx{i}\r\n"
        ));
    }
    raw.push_str("--b--\r\n");
    // REJECT (exit 2): the MTA bounces instead of retrying, so this one run is all.
    let (out, code, _) = run(&cfg, &[], raw.as_bytes());
    assert_eq!(code, 2, "{}", &out[..out.len().min(300)]);
    assert!(out.starts_with("X-Mailtoticket: REJECT"));
    // Nothing uploaded, nothing created; the mail kept once for `reprocess`, with
    // the reason beside it.
    let (list, _, _) = run(&cfg, &["sandbox", "tickets"], b"");
    assert!(list.contains("no tickets"), "{list}");
    assert_eq!(files_under(&dir.path().join("state/quarantine")), 2);
    let log = std::fs::read_to_string(dir.path().join("m2t.log")).expect("log");
    assert!(log.contains("massa fitxers adjunts: 100000"), "{log}");
}

/// A deadline that passes while the body is being prepared (pure CPU work on the
/// mail's own content) is permanent: REJECT, not TEMPFAIL, and nothing was created.
#[test]
fn a_cpu_bound_timeout_is_permanent() {
    use crate::app_support::*;
    use mailtoticket::app::{Ports, deliver_with_deadline};
    use mailtoticket::domain::outcome::Status;
    use mailtoticket::ports::NoRateLimit;

    let s = settings("filtres = [\"nou_extern\"]");
    let body = "<div><p>a&gt; b</p>\n-- \n<br><br><br>".repeat(40_000);
    let m = mail("pep@gmail.com", "Hola", &body);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // No expectation: any GN6 call would panic.
    let t = MockTickets::new();
    let start = Instant::now();
    let out = rt.block_on(deliver_with_deadline(
        &m,
        &s,
        &Ports {
            tickets: &t,
            identity: &MockDirectory::new(),
            clock: &clock(),
            journal: &journal(),
            rate: &NoRateLimit,
        },
        Duration::from_millis(30),
    ));
    let took = start.elapsed();
    assert_eq!(out.status, Status::Reject, "{out:?}");
    assert!(out.reason.contains("CPU"), "{}", out.reason);
    assert!(took < Duration::from_secs(2), "{took:?}");
    rt.shutdown_background();
}

/// A mail nested `levels` MIME levels deep around one text part.
fn nested_mail(id: &str, levels: usize) -> Vec<u8> {
    let mut m = format!(
        "From: pep@example.org\r\nTo: suport@upc.edu\r\nSubject: niu {id}\r\n\
         Message-ID: <{id}@example.org>\r\nMIME-Version: 1.0\r\n"
    );
    for i in 0..levels {
        m.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"n{i}\"\r\n\r\n--n{i}\r\n"
        ));
    }
    m.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\nBon dia, al fons.\r\n");
    for i in (0..levels).rev() {
        m.push_str(&format!("--n{i}--\r\n"));
    }
    m.into_bytes()
}

#[test]
fn mime_depth_at_the_limit_passes_and_past_it_is_rejected_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "[limits]\nmax_mime_depth = 6\n");
    // At the edge: a ticket with the innermost text.
    let (out, code, _) = run(&cfg, &[], &nested_mail("edge", 6));
    assert_eq!(code, 0, "{}", &out[..out.len().min(300)]);
    assert!(out.starts_with("X-Mailtoticket: SUCCESS"), "{out}");
    assert!(stored_ticket(&cfg).contains("al fons"));
    // One level past it: permanent, nothing created, quarantined once with its reason.
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "[limits]\nmax_mime_depth = 6\n");
    let (out, code, _) = run(&cfg, &[], &nested_mail("past", 7));
    assert_eq!(code, 2, "{}", &out[..out.len().min(300)]);
    assert!(out.starts_with("X-Mailtoticket: REJECT"), "{out}");
    assert!(
        out.contains("Message-ID: <past@example.org>"),
        "the mail comes back whole"
    );
    let (list, _, _) = run(&cfg, &["sandbox", "tickets"], b"");
    assert!(list.contains("no tickets"), "{list}");
    assert_eq!(files_under(&dir.path().join("state/quarantine")), 2);
    let log = std::fs::read_to_string(dir.path().join("m2t.log")).expect("log");
    assert!(log.contains("max_mime_depth = 6"), "{log}");
}

#[test]
fn a_hundred_thousand_nested_multiparts_are_rejected_by_the_default_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    // ~4.5 MB of nesting: the raw scan stops at level 21, mail-parser never sees it.
    let (out, code, took) = run(&cfg, &[], &nested_mail("deep100k", 100_000));
    assert_eq!(code, 2, "{}", &out[..out.len().min(300)]);
    assert!(out.starts_with("X-Mailtoticket: REJECT"));
    assert!(took < Duration::from_secs(30), "{took:?}");
    let log = std::fs::read_to_string(dir.path().join("m2t.log")).expect("log");
    assert!(log.contains("més de 20 nivells"), "{log}");
}

/// Terminal escapes in a mail's Subject and body never reach an admin's terminal
/// raw: `sandbox tickets`, `show-ticket` and `journal list` print them as visible
/// escapes (issue 18: what the companion commands print is mail text too).
#[test]
fn companion_commands_never_print_a_mails_terminal_escapes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path(), "");
    let raw = "From: pep@example.org\r\nTo: suport@upc.edu\r\n\
               Subject: =?utf-8?q?Hola_=1B]0;pwned=07_=1B[2J_=E2=80=AEtxt.exe?=\r\n\
               Message-ID: <esc@example.org>\r\nMIME-Version: 1.0\r\n\
               Content-Type: text/plain; charset=utf-8\r\n\r\nline \x1b[31mred\x1b[0m\r\n";
    let (out, code, _) = run(&cfg, &[], raw.as_bytes());
    assert_eq!(code, 0, "{out}");
    let (list, _, _) = run(&cfg, &["sandbox", "tickets"], b"");
    let ticket = list
        .lines()
        .find(|l| l.contains("Hola"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{list}"))
        .to_string();
    let (shown, _, _) = run(&cfg, &["show-ticket", &ticket], b"");
    let (journal, _, _) = run(&cfg, &["journal", "list"], b"");
    for text in [&list, &shown, &journal] {
        assert!(
            !text
                .chars()
                .any(|c| c == '\x1b' || c == '\x07' || c == '\u{202e}'),
            "{text:?}"
        );
    }
    // The decoder drops C0 controls from the Subject; the bidi override stays in the
    // ticket and is shown as an escape.
    assert!(list.contains("\\u{202e}txt.exe"), "{list}");
    assert!(shown.contains("\\u{202e}"), "{shown}");
}
