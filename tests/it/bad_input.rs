//! Bad input against the mail parser: hostile or broken mails must not panic, must give
//! a `Mail`, and must keep memory proportional to the input. The generators are shared
//! (`cases`, `huge_mail`) so that the end-to-end suite can feed the same inputs to the
//! binary.
//!
//! The placeholder parser returns an almost empty `Mail`; checks that need a real parse
//! run only once `parse` fills in headers (see `parser_is_real`), so that this suite is
//! green now and bites as soon as the real parser lands.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mailtoticket::adapters::mail::{AttachmentFilters, parse};
use mailtoticket::domain::mail::Mail;

/// One named bad input.
pub struct Case {
    pub name: &'static str,
    pub raw: Vec<u8>,
}

fn case(name: &'static str, raw: impl Into<Vec<u8>>) -> Case {
    Case {
        name,
        raw: raw.into(),
    }
}

const HEAD: &str = "From: Joan Garcia <joan.garcia@upc.edu>\r\nTo: suport@upc.edu\r\n\
                    Message-ID: <bad-input@test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0100\r\n";

/// Every bad input except the 50 MB one (see [`huge_mail`]).
pub fn cases() -> Vec<Case> {
    let mut v = vec![
        case("empty", Vec::new()),
        case("only_newlines", "\r\n\r\n\n\n"),
        case(
            "not_a_mail_binary",
            (0..=255u8).cycle().take(4096).collect::<Vec<u8>>(),
        ),
        case(
            "not_a_mail_text",
            "Hola, això no és un correu.\nNo té capçaleres.\n",
        ),
        case(
            "header_without_colon",
            "This is not a header\r\n\r\nbody\r\n",
        ),
        case("header_without_body_separator", format!("{HEAD}Subject: x")),
        case("ten_thousand_headers", ten_thousand_headers()),
        case("one_megabyte_header_line", one_megabyte_header_line()),
        case("one_megabyte_folded_header", one_megabyte_folded_header()),
        case(
            "boundary_never_appears",
            format!(
                "{HEAD}Subject: b\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\nno parts here\r\n"
            ),
        ),
        case(
            "boundary_never_closed",
            format!(
                "{HEAD}Subject: b\r\nContent-Type: multipart/mixed; boundary=\"XYZ\"\r\n\r\n\
                 --XYZ\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--XYZ\r\n\
                 Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                 AAAA"
            ),
        ),
        case(
            "boundary_missing_parameter",
            format!("{HEAD}Subject: b\r\nContent-Type: multipart/mixed\r\n\r\n--\r\nx\r\n--\r\n"),
        ),
        case(
            "boundary_empty",
            format!(
                "{HEAD}Subject: b\r\nContent-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n\r\nx\r\n----\r\n"
            ),
        ),
        case("nested_same_boundary", nested_same_boundary(200)),
        case("deeply_nested_multiparts", deeply_nested(2000)),
        case(
            "truncated_base64_and_qp",
            format!(
                "{HEAD}Subject: t\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
                 --B\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                 caf=C3=A9 =\r\n=Z=\r\n--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                 iVBORw0KGgo=!!==$$\r\n--B--\r\n"
            ),
        ),
        case(
            "unknown_charset",
            format!(
                "{HEAD}Subject: =?x-klingon?Q?hello?=\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nhello world\r\n"
            ),
        ),
        case("lying_charset_utf8_with_latin1", {
            let mut m = format!(
                "{HEAD}Subject: =?utf-8?B?{}?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
                "/+j/" // invalid UTF-8 once base64-decoded
            )
            .into_bytes();
            m.extend_from_slice(b"caf\xe9 cr\xe8me\r\n");
            m
        }),
        case("lying_charset_ascii_with_utf8", {
            let mut m = format!(
                "{HEAD}Subject: plain\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            )
            .into_bytes();
            m.extend_from_slice("això és UTF-8 de veritat\r\n".as_bytes());
            m
        }),
        case(
            "lying_charset_utf16_odd_length",
            format!(
                "{HEAD}Subject: =?utf-16?B?AGE=?=\r\nContent-Type: text/plain; charset=utf-16\r\n\r\nabc\r\n"
            ),
        ),
        case("nul_bytes", {
            let mut m = HEAD.as_bytes().to_vec();
            m.extend_from_slice(b"Subject: a\0b\r\nX-Nul: \0\0\0\r\n\r\nbody\0with\0nuls\r\n\0");
            m
        }),
        case(
            "bare_cr",
            format!("{HEAD}Subject: first\rX-Injected: yes\r\n\r\nline one\rline two\r\n"),
        ),
        case(
            "bare_lf_only",
            format!("{HEAD}Subject: lf\n\nline one\nline two\n").replace("\r\n", "\n"),
        ),
        case(
            "crlf_injection_encoded_in_subject",
            format!(
                "{HEAD}Subject: =?utf-8?Q?hello=0D=0AX-Injected:_yes=0D=0A=0D=0Abody?=\r\n\r\nreal body\r\n"
            ),
        ),
        case(
            "crlf_injection_base64_in_subject",
            format!(
                // "hola\r\nBcc: evil@x.com"
                "{HEAD}Subject: =?utf-8?B?aG9sYQ0KQmNjOiBldmlsQHguY29t?=\r\n\r\nbody\r\n"
            ),
        ),
        case(
            "xml_specials_in_subject_and_body",
            format!(
                "{HEAD}Subject: a < b & c > d ]]> e \"q\" 'a'\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                 <![CDATA[ x ]]> & &amp; <script>alert(1)</script> ]]>\r\n"
            ),
        ),
        case(
            "xml_specials_in_html_body",
            format!(
                "{HEAD}Subject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
                 <html><body><p>a &lt; b & c ]]> <![CDATA[x]]></p><script>alert(1)</script></body></html>\r\n"
            ),
        ),
        case("control_chars_in_subject_and_body", {
            let ctl: String = (1u8..32)
                .filter(|c| *c != b'\r' && *c != b'\n')
                .map(char::from)
                .collect();
            format!(
                "{HEAD}Subject: ctl{ctl}end\x7f\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbody{ctl}\x7fend\r\n"
            )
        }),
        case(
            "encoded_control_chars_in_subject",
            format!("{HEAD}Subject: =?utf-8?Q?a=00b=01c=1Bd=7F?=\r\n\r\nx\r\n"),
        ),
        case("non_utf8_attachment_name_raw", {
            let mut m = format!(
                "{HEAD}Subject: att\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
                 --B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\n\
                 Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\""
            )
            .into_bytes();
            m.extend_from_slice(b"caf\xe9\xff\xfe.txt");
            m.extend_from_slice(
                b"\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--B--\r\n",
            );
            m
        }),
        case(
            "non_utf8_attachment_name_rfc2231",
            format!(
                "{HEAD}Subject: att\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
                 --B\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--B\r\n\
                 Content-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename*=iso-8859-1''caf%E9%FF.txt\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--B--\r\n"
            ),
        ),
        case(
            "attachment_name_with_path_and_specials",
            format!(
                "{HEAD}Subject: att\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
                 --B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\n\
                 Content-Type: application/octet-stream\r\n\
                 Content-Disposition: attachment; filename=\"../../etc/<a&b>]]>.txt\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--B--\r\n"
            ),
        ),
        case(
            "attachment_encoded_word_name_bad_charset",
            format!(
                "{HEAD}Subject: att\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n\
                 --B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B\r\n\
                 Content-Type: application/pdf; name=\"=?x-unknown?B?/////w==?=\"\r\n\
                 Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--B--\r\n"
            ),
        ),
        case(
            "address_headers_garbage",
            "From: <<<@>>>, \"unterminated\r\nTo: ,,,;;;@@@\r\nCc: =?utf-8?Q?=FF?= <\0@\0>\r\n\
             Reply-To: \r\nSubject: x\r\n\r\nbody\r\n",
        ),
        case(
            "message_id_garbage",
            "Message-ID: <<>>\r\nIn-Reply-To: <\r\nReferences: > < <a@b\r\nSubject: x\r\n\r\nb\r\n",
        ),
        case(
            "date_garbage",
            "Date: Feb 30 99999 25:61:61 +9999\r\nSubject: x\r\n\r\nb\r\n",
        ),
        case(
            "report_without_parts",
            format!(
                "{HEAD}Subject: Undelivered\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n--R--\r\n"
            ),
        ),
    ];
    // Every case again with bare LF line endings, the other form MTAs hand over.
    let lf: Vec<Case> = v
        .iter()
        .filter(|c| c.raw.windows(2).any(|w| w == b"\r\n"))
        .map(|c| Case {
            name: c.name,
            raw: replace_crlf(&c.raw),
        })
        .collect();
    v.extend(lf);
    v
}

fn replace_crlf(raw: &[u8]) -> Vec<u8> {
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

fn ten_thousand_headers() -> String {
    let mut m = String::from(HEAD);
    for i in 0..10_000 {
        m.push_str(&format!("X-Filler-{i}: value number {i}\r\n"));
    }
    m.push_str("Subject: after ten thousand headers\r\n\r\nbody\r\n");
    m
}

fn one_megabyte_header_line() -> String {
    let mut m = String::from(HEAD);
    m.push_str("Subject: ");
    m.push_str(&"A".repeat(1 << 20));
    m.push_str("\r\n\r\nbody\r\n");
    m
}

fn one_megabyte_folded_header() -> String {
    let mut m = String::from(HEAD);
    m.push_str("Subject: start");
    for _ in 0..(1 << 20) / 16 {
        m.push_str("\r\n folded-word ");
    }
    m.push_str("\r\n\r\nbody\r\n");
    m
}

fn nested_same_boundary(depth: usize) -> String {
    let mut m =
        format!("{HEAD}Subject: nested\r\nContent-Type: multipart/mixed; boundary=S\r\n\r\n");
    for _ in 0..depth {
        m.push_str("--S\r\nContent-Type: multipart/mixed; boundary=S\r\n\r\n");
    }
    m.push_str("--S\r\nContent-Type: text/plain\r\n\r\ninner\r\n--S--\r\n");
    m
}

fn deeply_nested(depth: usize) -> String {
    let mut m =
        format!("{HEAD}Subject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n");
    for i in 0..depth {
        m.push_str(&format!(
            "--b{i}\r\nContent-Type: multipart/mixed; boundary=b{}\r\n\r\n",
            i + 1
        ));
    }
    m.push_str(&format!(
        "--b{depth}\r\nContent-Type: text/plain\r\n\r\ninner\r\n--b{depth}--\r\n"
    ));
    for i in (0..depth).rev() {
        m.push_str(&format!("--b{i}--\r\n"));
    }
    m
}

/// Size in bytes of the decoded content of the attachment in [`huge_mail`].
pub const HUGE_ATTACHMENT_LEN: usize = 38 * 1024 * 1024;

/// A mail of about 50 MB: a short text part and a base64 attachment, built in memory.
pub fn huge_mail() -> Vec<u8> {
    use base64::Engine as _;
    let data: Vec<u8> = (0..HUGE_ATTACHMENT_LEN).map(|i| (i % 251) as u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    drop(data);
    let mut m = Vec::with_capacity(b64.len() + b64.len() / 38 + 1024);
    m.extend_from_slice(HEAD.as_bytes());
    m.extend_from_slice(
        b"Subject: huge\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=H\r\n\r\n\
          --H\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbig attachment\r\n--H\r\n\
          Content-Type: application/octet-stream\r\n\
          Content-Disposition: attachment; filename=\"big.bin\"\r\n\
          Content-Transfer-Encoding: base64\r\n\r\n",
    );
    for line in b64.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--H--\r\n");
    m
}

/// Bytes the parsed mail holds on to: a proxy for its memory, independent of timing and
/// of the allocator (tests share one process, so process-wide figures would be noise).
fn footprint(m: &Mail) -> usize {
    let strings = |v: &[String]| v.iter().map(String::len).sum::<usize>();
    m.headers
        .iter()
        .map(|(n, v)| n.len() + v.len())
        .sum::<usize>()
        + strings(&m.from)
        + strings(&m.reply_to)
        + strings(&m.to)
        + strings(&m.cc)
        + strings(&m.bcc)
        + strings(&m.resent_from)
        + strings(&m.resent_to)
        + strings(&m.in_reply_to)
        + strings(&m.references)
        + m.subject.len()
        + m.body_html.len()
        + m.body_text.len()
        + m.attachments
            .iter()
            .map(|a| a.name.len() + a.content_type.len() + a.data.len())
            .sum::<usize>()
}

/// The body may grow when escaped to HTML (`<` → `&lt;`, line break → `<br>`), by a
/// bounded factor; anything beyond that is a leak or a blow-up.
fn assert_bounded(name: &str, raw: &[u8], m: &Mail) {
    let limit = 12 * raw.len() + 64 * 1024;
    assert!(
        footprint(m) <= limit,
        "{name}: parsed mail holds {} bytes for {} raw bytes",
        footprint(m),
        raw.len()
    );
}

fn parse_case(name: &str, raw: &[u8]) -> Mail {
    match catch_unwind(AssertUnwindSafe(|| {
        parse(raw, &AttachmentFilters::default())
    })) {
        Ok(m) => m,
        Err(_) => panic!("parse panicked on bad input `{name}`"),
    }
}

/// Whether `parse` is the real parser rather than the placeholder.
fn parser_is_real() -> bool {
    !parse(
        b"Subject: probe\r\nFrom: a@b.c\r\n\r\nx\r\n",
        &AttachmentFilters::default(),
    )
    .headers
    .is_empty()
}

fn find<'a>(cases: &'a [Case], name: &str) -> &'a Case {
    cases.iter().find(|c| c.name == name).expect("case exists")
}

#[test]
fn every_bad_input_parses_without_panic_into_a_bounded_mail() {
    let cases = cases();
    assert!(cases.len() > 50, "CRLF and LF variants of every case");
    for c in &cases {
        let m = parse_case(c.name, &c.raw);
        assert_eq!(m.raw_len, c.raw.len(), "{}: raw_len", c.name);
        assert!(
            !m.subject.contains(['\r', '\n']),
            "{}: line break left in the subject {:?}",
            c.name,
            m.subject
        );
        for a in &m.attachments {
            assert!(!a.name.is_empty(), "{}: attachment without a name", c.name);
        }
        assert_bounded(c.name, &c.raw, &m);
    }
}

#[test]
fn a_fifty_megabyte_mail_parses_with_bounded_memory() {
    let raw = huge_mail();
    assert!(raw.len() >= 50 * 1_000_000, "{} bytes", raw.len());
    let m = parse_case("huge_mail", &raw);
    assert_eq!(m.raw_len, raw.len());
    assert_bounded("huge_mail", &raw, &m);
    if parser_is_real() {
        // The attachment once, decoded; not a copy per MIME level.
        assert_eq!(m.attachments.len(), 1, "{:?}", m.attachments.len());
        assert_eq!(m.attachments[0].data.len(), HUGE_ATTACHMENT_LEN);
        assert!(footprint(&m) < raw.len() + raw.len() / 4);
    }
}

#[test]
fn subject_injection_does_not_create_headers_or_line_breaks() {
    let cases = cases();
    for name in [
        "bare_cr",
        "crlf_injection_encoded_in_subject",
        "crlf_injection_base64_in_subject",
    ] {
        let c = find(&cases, name);
        let m = parse_case(name, &c.raw);
        assert!(!m.subject.contains(['\r', '\n']), "{name}: {:?}", m.subject);
        assert!(m.header("X-Injected").is_none(), "{name}: injected header");
        assert!(m.bcc.is_empty(), "{name}: injected Bcc {:?}", m.bcc);
    }
}

#[test]
fn xml_specials_reach_the_mail_unescaped_for_the_soap_layer_to_escape() {
    if !parser_is_real() {
        return;
    }
    let cases = cases();
    let c = find(&cases, "xml_specials_in_subject_and_body");
    let m = parse_case(c.name, &c.raw);
    assert_eq!(m.subject, "a < b & c > d ]]> e \"q\" 'a'");
    assert!(
        m.body_text.contains("]]> & &amp; <script>"),
        "{:?}",
        m.body_text
    );
}

#[test]
fn unknown_and_lying_charsets_keep_the_ascii_text() {
    if !parser_is_real() {
        return;
    }
    let cases = cases();
    for (name, needle) in [
        ("unknown_charset", "hello world"),
        ("lying_charset_utf8_with_latin1", "caf"),
        ("lying_charset_ascii_with_utf8", "UTF-8 de veritat"),
    ] {
        let c = find(&cases, name);
        let m = parse_case(name, &c.raw);
        assert!(m.body_text.contains(needle), "{name}: {:?}", m.body_text);
    }
}

#[test]
fn non_utf8_attachment_names_become_valid_names() {
    if !parser_is_real() {
        return;
    }
    let cases = cases();
    for name in [
        "non_utf8_attachment_name_raw",
        "non_utf8_attachment_name_rfc2231",
    ] {
        let c = find(&cases, name);
        let m = parse_case(name, &c.raw);
        assert_eq!(m.attachments.len(), 1, "{name}");
        let a = &m.attachments[0];
        assert_eq!(a.data, b"hello", "{name}");
        assert!(a.name.ends_with(".txt"), "{name}: {:?}", a.name);
    }
}

#[test]
fn many_and_huge_headers_keep_the_subject() {
    if !parser_is_real() {
        return;
    }
    let cases = cases();
    let m = parse_case(
        "ten_thousand_headers",
        &find(&cases, "ten_thousand_headers").raw,
    );
    assert_eq!(m.subject, "after ten thousand headers");
    let m = parse_case(
        "one_megabyte_header_line",
        &find(&cases, "one_megabyte_header_line").raw,
    );
    assert_eq!(m.subject.len(), 1 << 20);
}

#[test]
fn empty_and_non_mail_inputs_give_an_empty_subject_and_no_attachments() {
    let cases = cases();
    for name in ["empty", "only_newlines"] {
        let m = parse_case(name, &find(&cases, name).raw);
        assert_eq!(m.subject, "", "{name}");
        assert!(m.attachments.is_empty(), "{name}");
        assert!(m.from.is_empty(), "{name}");
    }
}

// ---------------------------------------------------------------------------------
// Peak memory, measured in a child process of its own (the test binary run with a
// filter), where the kernel's peak-RSS figure is not shared with other tests.

#[cfg(target_os = "linux")]
const RSS_CHILD_ENV: &str = "MAILTOTICKET_BAD_INPUT_RSS_CHILD";

#[cfg(target_os = "linux")]
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs only as a child of the test below: parses the 50 MB mail and prints the raw
/// size, the resident set before parsing and the peak during it.
#[cfg(target_os = "linux")]
#[test]
fn rss_child_entry() {
    if std::env::var_os(RSS_CHILD_ENV).is_none() {
        return;
    }
    let raw = huge_mail();
    let before = status_kib("VmRSS:").expect("VmRSS");
    // "5" resets the peak (VmHWM) to the current resident set (Linux ≥ 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
    let mail = parse(&raw, &AttachmentFilters::default());
    let peak = status_kib("VmHWM:").expect("VmHWM");
    println!(
        "RSS raw_kib={} before_kib={before} peak_kib={peak}",
        raw.len() / 1024
    );
    drop(mail);
}

#[cfg(target_os = "linux")]
#[test]
fn a_fifty_megabyte_mail_peaks_below_a_few_times_its_size() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "bad_input::rss_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(RSS_CHILD_ENV, "1")
        .output()
        .expect("spawn child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}");
    // libtest may print "test name ... " on the same line before our output.
    let line = stdout
        .lines()
        .find_map(|l| l.find("RSS raw_kib=").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no RSS line in: {stdout}"));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in {line}"))
    };
    let (raw, before, peak) = (field("raw_kib"), field("before_kib"), field("peak_kib"));
    let growth = peak.saturating_sub(before);
    // The decoded attachment is needed (about 0.75 × raw) and may exist twice while it
    // is moved into the domain Mail; four times the raw size means copies per level.
    assert!(
        growth <= 4 * raw,
        "parse grew the resident set by {growth} KiB for a {raw} KiB mail"
    );
}
