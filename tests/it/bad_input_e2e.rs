//! Bad input through the whole binary (issue 5, bad-input suite): every hostile mail
//! comes back on stdout byte for byte behind its `X-Mailtoticket` header, with an exit
//! code that matches the header, and XML specials reach the SOAP request escaped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::bad_input::cases;

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "username_soa = \"bad.soa\"\npassword_soa = \"bad-soa-pw\"\n\
             username_gn6 = \"badgn6\"\npassword_gn6 = \"bad-gn6-pw\"\n\
             domini = \"1234\"\nequip_resolutor_nous = \"98765\"\nusuari_extern = \"extern\"\n\
             filtres = [\"reply\", \"nou\", \"nou_extern\"]\nmax_tickets_per_hour = 0\n\
             log_file = \"{log}\"\nstate_dir = \"{state}\"\n{extra}",
            log = dir.join("m2t.log").display(),
            state = dir.join("state").display(),
        ),
    )
    .expect("config");
    cfg
}

fn expected_code(status: &str) -> i32 {
    match status {
        "SUCCESS" | "SKIP" => 0,
        "ERROR" => 1,
        "REJECT" => 2,
        "UNKNOWN" => 3,
        "TEMPFAIL" => 75,
        other => panic!("unknown status {other}"),
    }
}

fn run(cfg: &Path, raw: &[u8]) -> (Vec<u8>, i32) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = raw.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    (out.stdout, out.status.code().unwrap_or(-1))
}

#[test]
fn every_bad_input_is_echoed_with_its_header_and_a_matching_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        &format!(
            "bus = \"sandbox\"\nsandbox_dir = \"{}\"\n",
            dir.path().join("sandbox").display()
        ),
    );
    for case in cases() {
        let (stdout, code) = run(&cfg, &case.raw);
        let header_end = stdout
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or_else(|| panic!("{}: no header line in the output", case.name));
        let header = String::from_utf8_lossy(&stdout[..header_end]);
        let header = header.trim_end_matches('\r');
        let status = header
            .strip_prefix("X-Mailtoticket: ")
            .unwrap_or_else(|| panic!("{}: first line is {header:?}", case.name));
        assert_eq!(
            &stdout[header_end + 1..],
            &case.raw[..],
            "{}: the mail did not come back byte for byte",
            case.name
        );
        assert_eq!(
            code,
            expected_code(status),
            "{}: exit code does not match X-Mailtoticket: {status}",
            case.name
        );
        // Nothing on this list is a crash: a panic would be ERROR with "panic" logged.
        let log = std::fs::read_to_string(dir.path().join("m2t.log")).unwrap_or_default();
        assert!(!log.contains("panic"), "{}: {log}", case.name);
    }
}

fn soap_ok(op: &str, inner: &str) -> String {
    format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>\
         <ns:{op}Response xmlns:ns=\"http://service.psi.upcnet\"><ns:return xmlns:ax=\"http://data.psi.upcnet/xsd\">\
         {inner}</ns:return></ns:{op}Response></soapenv:Body></soapenv:Envelope>"
    )
}

#[tokio::test]
async fn xml_specials_and_control_characters_reach_the_soap_request_escaped() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("/GestioIdentitat/.*"))
        .respond_with(ResponseTemplate::new(200).set_body_string(
            "<S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body>\
             <ns2:obtenirDadesPersonaResponse xmlns:ns2=\"http://soa.identitatdigital.upc.edu/Personesv6\">\
             <return><ok>true</ok><commonName>joan.garcia</commonName></return>\
             </ns2:obtenirDadesPersonaResponse></S:Body></S:Envelope>",
        ))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex("/gN6/.*"))
        .respond_with(ResponseTemplate::new(200).set_body_string(soap_ok(
            "AltaTiquet",
            "<ax:codiRetorn>1</ax:codiRetorn><ax:codiTiquet>77</ax:codiTiquet>",
        )))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(
        dir.path(),
        &format!(
            "[endpoints]\ngn6 = \"{0}/gN6/GestioTiquetsv5\"\npersones = \"{0}/GestioIdentitat/Personesv6\"\n",
            server.uri()
        ),
    );
    let raw = b"From: Joan Garcia <joan.garcia@upc.edu>\r\nTo: suport@upc.edu\r\n\
        Message-ID: <specials@test>\r\nSubject: a < b & c > d ]]> e \x01\x08 f\r\n\r\n\
        cos: ]]> & &amp; <script>alert(1)</script> \x0b fi\r\n";
    let cfg2 = cfg.clone();
    let (stdout, code) = tokio::task::spawn_blocking(move || run(&cfg2, raw))
        .await
        .expect("join");
    let log = std::fs::read_to_string(dir.path().join("m2t.log")).unwrap_or_default();
    assert_eq!(code, 0, "{}\n{log}", String::from_utf8_lossy(&stdout));
    let requests = server.received_requests().await.expect("requests");
    let alta = requests
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .find(|b| b.contains("AltaTiquet"))
        .expect("an AltaTiquet request");
    // Well-formed XML from end to end (a raw `<`, `&` or control character would not be).
    let mut reader = quick_xml::Reader::from_str(&alta);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!("AltaTiquet is not well-formed XML ({e}): {alta}"),
        }
    }
    assert!(
        alta.contains("a &lt; b &amp; c &gt; d ]]&gt; e"),
        "assumpte not escaped once: {alta}"
    );
    assert!(!alta.contains('\u{1}') && !alta.contains('\u{8}') && !alta.contains('\u{b}'));
    // The body text is HTML-escaped once for GN6, then XML-escaped on the wire.
    assert!(alta.contains("&amp;lt;script&amp;gt;"), "{alta}");
    assert!(!alta.contains("<script"), "{alta}");
}
