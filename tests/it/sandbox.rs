//! The sandbox simulator driven over real HTTP with hand-built SOAP envelopes (WIRE.md).

use std::net::SocketAddr;
use std::path::Path;

use base64::Engine as _;
use mailtoticket::sandbox::{self, RunningSandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const GN6_NS: &str = "http://service.psi.upcnet";
const DATA_NS: &str = "http://data.psi.upcnet/xsd";
const PERSONES_NS: &str = "http://soa.identitatdigital.upc.edu/Personesv6";

fn config(dir: &Path) -> SandboxConfig {
    SandboxConfig {
        dir: dir.to_path_buf(),
        username_soa: "bus.user".into(),
        password_soa: "bus&pass".into(),
        username_gn6: "gn6.user".into(),
        password_gn6: "gn6.pass".into(),
        domini: "1234".into(),
        reopen_period_days: 2,
    }
}

async fn sim() -> (RunningSandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let running = sandbox::start(config(dir.path()), 0).await.unwrap();
    (running, dir)
}

fn esc(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn security(user: &str, pass: &str) -> String {
    format!(
        r#"<SOAP-ENV:Header><wsse:Security mustUnderstand="true"><wsse:UsernameToken><wsse:Username>{}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">{}</wsse:Password></wsse:UsernameToken></wsse:Security></SOAP-ENV:Header>"#,
        esc(user),
        esc(pass)
    )
}

/// A GN6 request as the client sends it (prefixes as suds chooses them).
fn gn6_envelope(header: &str, op: &str, creds: [&str; 3], children: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in [
        ("username", creds[0]),
        ("password", creds[1]),
        ("domini", creds[2]),
    ]
    .iter()
    .chain(children.iter())
    {
        body.push_str(&format!("<ns1:{name}>{}</ns1:{name}>", esc(value)));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:wsse="{WSSE}" xmlns:ns0="{SOAP_ENV}" xmlns:ns1="{GN6_NS}">{header}<ns0:Body><ns1:{op}>{body}</ns1:{op}></ns0:Body></SOAP-ENV:Envelope>"#
    )
}

const GOOD_GN6: [&str; 3] = ["gn6.user", "gn6.pass", "1234"];

fn good_header() -> String {
    security("bus.user", "bus&pass")
}

fn persones_envelope(header: &str, op: &str, child: (&str, &str)) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:wsse="{WSSE}" xmlns:p="{PERSONES_NS}">{}<soapenv:Body><p:{op}><{n}>{v}</{n}></p:{op}></soapenv:Body></soapenv:Envelope>"#,
        header.replace("SOAP-ENV:", "soapenv:"),
        n = child.0,
        v = esc(child.1)
    )
}

struct HttpReply {
    status: u16,
    body: Vec<u8>,
}

impl HttpReply {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

/// One request on its own connection (`Connection: close`), read to the end.
async fn http(addr: SocketAddr, method: &str, target: &str, action: &str, body: &str) -> HttpReply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/xml; charset=utf-8\r\nSOAPAction: {action}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    HttpReply {
        status,
        body: raw[split + 4..].to_vec(),
    }
}

async fn gn6(s: &RunningSandbox, op: &str, children: &[(&str, &str)]) -> String {
    let env = gn6_envelope(&good_header(), op, GOOD_GN6, children);
    let r = http(
        s.addr,
        "POST",
        sandbox::GN6_PATH,
        &format!("\"urn:{op}\""),
        &env,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

async fn persones(s: &RunningSandbox, op: &str, child: (&str, &str)) -> String {
    let env = persones_envelope(&good_header(), op, child);
    let r = http(s.addr, "POST", sandbox::PERSONES_PATH, "\"\"", &env).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

/// Texts of every element named `local` in namespace `ns` (None = unqualified), in
/// document order; nil and empty elements give "".
fn texts(xml: &str, ns: Option<&str>, local: &str) -> Vec<String> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    let mut depth = 0usize;
    loop {
        let (res, ev) = reader.read_resolved_event().unwrap();
        let matches = |res: &ResolveResult, name: &[u8]| {
            let el_ns = match res {
                ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.as_ref()).into_owned()),
                _ => None,
            };
            name == local.as_bytes() && el_ns.as_deref() == ns
        };
        match ev {
            Event::Start(e) => {
                depth += 1;
                if current.is_none() && matches(&res, e.local_name().as_ref()) {
                    current = Some((depth, String::new()));
                }
            }
            Event::Empty(e) if current.is_none() && matches(&res, e.local_name().as_ref()) => {
                out.push(String::new());
            }
            Event::End(_) => {
                if current.as_ref().is_some_and(|(d, _)| *d == depth) {
                    out.push(current.take().unwrap().1);
                }
                depth -= 1;
            }
            Event::Text(t) => {
                if let Some((_, s)) = &mut current {
                    s.push_str(&t.xml10_content().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                if let Some((_, s)) = &mut current {
                    let name = r.decode().unwrap();
                    match r.resolve_char_ref().unwrap() {
                        Some(c) => s.push(c),
                        None => {
                            s.push_str(quick_xml::escape::resolve_predefined_entity(&name).unwrap())
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn data(xml: &str, local: &str) -> Vec<String> {
    texts(xml, Some(DATA_NS), local)
}

fn codi_retorn(xml: &str) -> String {
    data(xml, "codiRetorn")
        .into_iter()
        .next()
        .unwrap_or_default()
}

async fn alta(s: &RunningSandbox, solicitant: &str, assumpte: &str) -> u64 {
    let xml = gn6(
        s,
        "AltaTiquet",
        &[
            ("solicitant", solicitant),
            ("emailSolicitant", &format!("{solicitant}@upc.edu")),
            ("client", ""),
            ("assumpte", assumpte),
            ("descripcio", "Hola!"),
            ("equipResolutor", "98765"),
            ("assignatA", ""),
            ("producte", ""),
            ("subservei", ""),
            ("urgencia", "GRAVETAT_MITJA"),
            ("impacte", ""),
            ("proces", "PROCES_AUS"),
            ("procesOrigen", ""),
            ("estat", "TIQUET_STATUS_OBERT"),
            ("ip", ""),
            ("enviarMissatgeCreacio", "S"),
            ("enviarMissatgeTancament", "N"),
            ("imputacioAutomatica", "N"),
            ("infraestructura", ""),
        ],
    )
    .await;
    assert_eq!(codi_retorn(&xml), "1", "{xml}");
    data(&xml, "codiTiquet")[0].parse().unwrap()
}

fn consulta_children(codi: &str) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![("codi", codi.to_string())];
    for n in [
        "estat",
        "dataCreacioInici",
        "dataCreacioFi",
        "dataTancamentInici",
        "dataTancamentFi",
        "client",
        "solicitant",
        "ip",
    ] {
        v.push((n, String::new()));
    }
    v
}

async fn consulta(s: &RunningSandbox, op: &str, codi: &str) -> String {
    let children = consulta_children(codi);
    let refs: Vec<(&str, &str)> = children.iter().map(|(n, v)| (*n, v.as_str())).collect();
    gn6(s, op, &refs).await
}

#[tokio::test]
async fn wsdls_are_served_pointing_at_the_simulator() {
    let (s, _dir) = sim().await;
    for (path, marker) in [
        (sandbox::GN6_PATH, "GestioTiquetsv5"),
        (sandbox::PERSONES_PATH, "Personesv6"),
    ] {
        let r = http(s.addr, "GET", &format!("{path}?wsdl"), "\"\"", "").await;
        assert_eq!(r.status, 200);
        let text = r.text();
        assert!(text.contains("definitions") && text.contains(marker));
        assert!(
            text.contains(&format!("location=\"http://{}{path}\"", s.addr)),
            "soap:address not rewritten"
        );
    }
    assert_eq!(s.stats().operation("wsdl"), 2);
}

#[tokio::test]
async fn alta_tiquet_then_both_queries_return_every_field() {
    let (s, dir) = sim().await;
    let descripcio = "<p>Hola & adéu <b>\"món\"</b></p>\r\nlínia 2";
    let xml = gn6(
        &s,
        "AltaTiquet",
        &[
            ("solicitant", "nom.cognom"),
            ("emailSolicitant", "Nom.Cognom@upc.edu"),
            ("client", "client1"),
            ("assumpte", "Benvingut, mailtoticket! <>&"),
            ("descripcio", descripcio),
            ("equipResolutor", "98765"),
            ("assignatA", "tecnic.a"),
            ("producte", "UTIC-Z3.2"),
            ("subservei", "sub"),
            ("urgencia", "GRAVETAT_ALTA"),
            ("impacte", "II_ALT"),
            ("proces", "PROCES_RIN"),
            ("procesOrigen", "PROCES_AUS"),
            ("estat", "TIQUET_STATUS_OBERT"),
            ("ip", "10.0.0.1"),
            ("enviarMissatgeCreacio", "S"),
            ("enviarMissatgeTancament", "N"),
            ("imputacioAutomatica", "N"),
            ("infraestructura", "infra"),
        ],
    )
    .await;
    assert_eq!(codi_retorn(&xml), "1");
    assert_eq!(data(&xml, "codiTiquet"), vec!["1"]);
    assert_eq!(data(&xml, "descripcioError"), vec![""]);
    assert_eq!(alta(&s, "maria.garcia", "segon").await, 2);

    let xml = consulta(&s, "ConsultaTiquetsDades", "1").await;
    assert_eq!(codi_retorn(&xml), "1");
    assert_eq!(data(&xml, "llistaTiquets").len(), 1);
    assert_eq!(data(&xml, "codiTiquet"), vec!["1"]);
    assert_eq!(data(&xml, "solicitant"), vec!["nom.cognom"]);
    assert_eq!(data(&xml, "emailSolicitant"), vec!["Nom.Cognom@upc.edu"]);
    assert_eq!(data(&xml, "solicitantNom"), vec!["Nom Cognom"]);
    assert_eq!(data(&xml, "assumpte"), vec!["Benvingut, mailtoticket! <>&"]);
    // XML normalises CR LF to LF on the way in.
    assert_eq!(
        data(&xml, "descripcio"),
        vec![descripcio.replace("\r\n", "\n")]
    );
    assert_eq!(data(&xml, "estat"), vec!["TIQUET_STATUS_OBERT"]);
    assert_eq!(data(&xml, "urgencia"), vec!["GRAVETAT_ALTA"]);
    assert_eq!(data(&xml, "dataTancament"), vec![""]);
    let created = &data(&xml, "dataCreacio")[0];
    assert!(
        regex::Regex::new(r"^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d$")
            .unwrap()
            .is_match(created),
        "{created}"
    );

    let xml = consulta(&s, "ConsultaTiquets", "2").await;
    assert_eq!(data(&xml, "solicitant"), vec!["maria.garcia"]);
    assert!(xml.contains("ax21:Tiquet\""), "{xml}");
    assert!(data(&xml, "emailSolicitant").is_empty());

    // A search without code returns every ticket.
    let xml = consulta(&s, "ConsultaTiquets", "").await;
    assert_eq!(data(&xml, "codiTiquet"), vec!["1", "2"]);

    let t = sandbox::load_ticket(dir.path(), 1).unwrap().unwrap();
    assert_eq!(t.producte, "UTIC-Z3.2");
    assert_eq!(t.proces_origen, "PROCES_AUS");
    assert_eq!(t.infraestructura, "infra");
    assert_eq!(t.enviar_missatge_creacio, "S");
    assert_eq!(t.equip_resolutor, "98765");
    let list = sandbox::list_tickets(dir.path()).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].assumpte, "Benvingut, mailtoticket! <>&");
}

#[tokio::test]
async fn unknown_tickets_are_codi_retorn_errors() {
    let (s, _dir) = sim().await;
    let xml = consulta(&s, "ConsultaTiquetsDades", "99").await;
    assert_eq!(codi_retorn(&xml), "1");
    assert!(data(&xml, "llistaTiquets").is_empty());
    let xml = consulta(&s, "ConsultaTiquets", "99").await;
    assert_eq!(codi_retorn(&xml), "1");
    assert!(data(&xml, "llistaTiquets").is_empty());

    for (op, extra) in [
        ("ModificarTiquet", vec![("estat", "TIQUET_STATUS_OBERT")]),
        (
            "AfegirComentariTiquet",
            vec![("usuari", "nom.cognom"), ("descripcio", "x")],
        ),
        (
            "AnnexarFitxerTiquet",
            vec![
                ("usuari", "nom.cognom"),
                ("nomFitxer", "a.txt"),
                ("fitxerBase64", "YQ=="),
            ],
        ),
        (
            "AfegirSolicitantTiquet",
            vec![("solicitant", "maria.garcia")],
        ),
    ] {
        let mut children = vec![("codiTiquet", "99")];
        children.extend(extra);
        let xml = gn6(&s, op, &children).await;
        assert_eq!(codi_retorn(&xml), "-4", "{op}: {xml}");
        assert!(!data(&xml, "descripcioError")[0].is_empty());
    }
}

#[tokio::test]
async fn wrong_or_missing_ws_security_is_a_fault() {
    let (s, _dir) = sim().await;
    let cases = [
        security("bus.user", "wrong"),
        security("other", "bus&pass"),
        String::new(),
    ];
    for header in &cases {
        let env = gn6_envelope(header, "ConsultaTiquetsDades", GOOD_GN6, &[("codi", "1")]);
        let r = http(
            s.addr,
            "POST",
            sandbox::GN6_PATH,
            "\"urn:ConsultaTiquetsDades\"",
            &env,
        )
        .await;
        assert_eq!(r.status, 500);
        let text = r.text();
        assert_eq!(
            texts(&text, None, "faultstring"),
            vec!["Authentication failed"]
        );
        assert_eq!(texts(&text, None, "faultcode"), vec!["soapenv:Client"]);
        assert_eq!(texts(&text, Some(SOAP_ENV), "Fault").len(), 1);

        let env = persones_envelope(header, "llistaPersones", ("email", "nom.cognom@upc.edu"));
        let r = http(s.addr, "POST", sandbox::PERSONES_PATH, "\"\"", &env).await;
        assert_eq!(r.status, 500);
        assert!(r.text().contains("Authentication failed"));
    }
}

#[tokio::test]
async fn wrong_gn6_credentials_give_codi_retorn_minus_one() {
    let (s, dir) = sim().await;
    for creds in [
        ["gn6.user", "bad", "1234"],
        ["bad", "gn6.pass", "1234"],
        ["gn6.user", "gn6.pass", "9999"],
    ] {
        for op in [
            "AltaTiquet",
            "ConsultaTiquets",
            "ConsultaTiquetsDades",
            "AnnexarFitxerTiquet",
            "ModificarTiquet",
            "AfegirComentariTiquet",
            "AfegirSolicitantTiquet",
        ] {
            let env = gn6_envelope(&good_header(), op, creds, &[("solicitant", "nom.cognom")]);
            let r = http(s.addr, "POST", sandbox::GN6_PATH, "\"\"", &env).await;
            assert_eq!(r.status, 200);
            let xml = r.text();
            assert_eq!(codi_retorn(&xml), "-1", "{op}");
            assert_eq!(
                data(&xml, "descripcioError"),
                vec!["Usuari o contrasenya incorrectes"]
            );
            assert!(xml.contains(&format!("{op}Response")));
        }
    }
    assert!(sandbox::list_tickets(dir.path()).unwrap().is_empty());
}

#[tokio::test]
async fn modificar_tiquet_leaves_empty_fields_unchanged() {
    let (s, dir) = sim().await;
    let code = alta(&s, "nom.cognom", "Assumpte").await.to_string();
    let mut children: Vec<(&str, &str)> = vec![("codiTiquet", &code)];
    for n in [
        "equipResolutor",
        "assignatA",
        "proces",
        "estat",
        "dataCaducitat",
        "codiTancament",
        "producte",
        "subservei",
        "tipus",
    ] {
        children.push((n, ""));
    }
    children.push(("dataResol", "28-11-2026"));
    for n in [
        "solicitant",
        "client",
        "telefonSolicitant",
        "emailSolicitant",
        "dadesContacteSolicitant",
        "numInventari",
        "numElements",
        "ip",
        "assumpte",
    ] {
        children.push((n, ""));
    }
    children.push(("descripcio", "Nova <a href=\"/x?a=1&b=2\">descripció</a>"));
    children.extend([("origen", ""), ("urgencia", ""), ("impacte", "")]);
    let xml = gn6(&s, "ModificarTiquet", &children).await;
    assert_eq!(codi_retorn(&xml), "1", "{xml}");

    let t = sandbox::load_ticket(dir.path(), 1).unwrap().unwrap();
    assert_eq!(t.descripcio, "Nova <a href=\"/x?a=1&b=2\">descripció</a>");
    assert_eq!(t.data_resol, "28-11-2026");
    assert_eq!(t.assumpte, "Assumpte");
    assert_eq!(t.urgencia, "GRAVETAT_MITJA");
    assert_eq!(t.equip_resolutor, "98765");
    assert_eq!(t.estat, "TIQUET_STATUS_OBERT");
}

async fn add_comment(
    s: &RunningSandbox,
    code: &str,
    text: &str,
    tipus: &str,
    notif: &str,
) -> String {
    let xml = gn6(
        s,
        "AfegirComentariTiquet",
        &[
            ("codiTiquet", code),
            ("usuari", "maria.garcia"),
            ("descripcio", text),
            ("tipusComentari", tipus),
            ("esNotificat", notif),
            ("destinatarisTo", ""),
            ("destinatarisCc", ""),
            ("destinatarisBcc", ""),
        ],
    )
    .await;
    codi_retorn(&xml)
}

#[tokio::test]
async fn comments_are_stored_and_refused_on_closed_tickets() {
    let (s, dir) = sim().await;
    let code = alta(&s, "nom.cognom", "x").await.to_string();
    let public = add_comment(&s, &code, "Públic <br>", "COMENT_TIQUET_PUBLIC", "S").await;
    assert_eq!(public, "1");
    let private = add_comment(&s, &code, "Privat", "COMENT_TIQUET_PRIVAT", "N").await;
    assert_eq!(private, "1");
    let bad = add_comment(&s, &code, "x", "COMENT_TIQUET_INTERN", "N").await;
    assert_eq!(bad, "-7");

    let t = sandbox::load_ticket(dir.path(), 1).unwrap().unwrap();
    assert_eq!(t.comments.len(), 2);
    assert_eq!(t.comments[0].text, "Públic <br>");
    assert!(!t.comments[0].private && t.comments[0].notified);
    assert!(t.comments[1].private && !t.comments[1].notified);
    assert_eq!(t.comments[1].author, "maria.garcia");

    assert!(sandbox::close_ticket(dir.path(), 1, 0).unwrap());
    let late = add_comment(&s, &code, "tard", "COMENT_TIQUET_PUBLIC", "N").await;
    assert_eq!(late, "-5");
    let t = sandbox::load_ticket(dir.path(), 1).unwrap().unwrap();
    assert_eq!(t.comments.len(), 2);
}

async fn reopen(s: &RunningSandbox, code: &str) -> String {
    let xml = gn6(
        s,
        "ModificarTiquet",
        &[("codiTiquet", code), ("estat", "TIQUET_STATUS_OBERT")],
    )
    .await;
    assert_eq!(codi_retorn(&xml), "1");
    let xml = consulta(s, "ConsultaTiquetsDades", code).await;
    data(&xml, "estat").remove(0)
}

#[tokio::test]
async fn reopening_works_within_the_period_and_is_ignored_after_it() {
    let (s, dir) = sim().await;
    let recent = alta(&s, "nom.cognom", "recent").await;
    let old = alta(&s, "nom.cognom", "antic").await;
    sandbox::close_ticket(dir.path(), recent, 1).unwrap();
    sandbox::close_ticket(dir.path(), old, 3).unwrap();

    let xml = consulta(&s, "ConsultaTiquetsDades", &old.to_string()).await;
    assert_eq!(data(&xml, "estat"), vec!["TIQUET_STATUS_TANCAT"]);
    assert!(!data(&xml, "dataTancament")[0].is_empty());

    assert_eq!(reopen(&s, &recent.to_string()).await, "TIQUET_STATUS_OBERT");
    assert_eq!(reopen(&s, &old.to_string()).await, "TIQUET_STATUS_TANCAT");
    assert!(
        sandbox::load_ticket(dir.path(), recent)
            .unwrap()
            .unwrap()
            .closed_at
            .is_none()
    );

    // Closing through the service stamps today's date, so reopening works again.
    let xml = gn6(
        &s,
        "ModificarTiquet",
        &[
            ("codiTiquet", &recent.to_string()),
            ("estat", "TIQUET_STATUS_TANCAT"),
        ],
    )
    .await;
    assert_eq!(codi_retorn(&xml), "1");
    assert!(
        sandbox::load_ticket(dir.path(), recent)
            .unwrap()
            .unwrap()
            .is_closed()
    );
    assert_eq!(reopen(&s, &recent.to_string()).await, "TIQUET_STATUS_OBERT");
}

#[tokio::test]
async fn attachments_are_served_back_byte_identical() {
    let (s, dir) = sim().await;
    let code = alta(&s, "nom.cognom", "annexos").await.to_string();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    // Wrapped in 76-column lines, as MIME bodies come.
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n");
    let mut annexes = Vec::new();
    for (name, content) in [
        ("dades.bin", wrapped.as_str()),
        ("nota & <1>.txt", "aG9sYQ=="),
    ] {
        let xml = gn6(
            &s,
            "AnnexarFitxerTiquet",
            &[
                ("codiTiquet", &code),
                ("usuari", "nom.cognom"),
                ("nomFitxer", name),
                ("fitxerBase64", content),
            ],
        )
        .await;
        assert_eq!(codi_retorn(&xml), "1", "{xml}");
        annexes.push(data(&xml, "codiAnnex")[0].clone());
    }
    assert_ne!(annexes[0], annexes[1]);

    let r = http(
        s.addr,
        "GET",
        &format!("{}?fileId={}", sandbox::FILE_PATH, annexes[0]),
        "\"\"",
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes);
    let r = http(
        s.addr,
        "GET",
        &format!("{}?fileId={}", sandbox::FILE_PATH, annexes[1]),
        "\"\"",
        "",
    )
    .await;
    assert_eq!(r.body, b"hola");
    let r = http(
        s.addr,
        "GET",
        &format!("{}?fileId=999", sandbox::FILE_PATH),
        "\"\"",
        "",
    )
    .await;
    assert_eq!(r.status, 404);

    let t = sandbox::load_ticket(dir.path(), 1).unwrap().unwrap();
    assert_eq!(t.attachments.len(), 2);
    assert_eq!(t.attachments[1].name, "nota & <1>.txt");
    assert_eq!(t.attachments[0].size, 5000);
    let stored = sandbox::load_attachment(dir.path(), t.attachments[0].codi_annex).unwrap();
    assert_eq!(stored.unwrap(), bytes);

    let xml = gn6(
        &s,
        "AnnexarFitxerTiquet",
        &[
            ("codiTiquet", &code),
            ("usuari", "nom.cognom"),
            ("nomFitxer", "x"),
            ("fitxerBase64", "no és base64"),
        ],
    )
    .await;
    assert_eq!(codi_retorn(&xml), "-6");
}

#[tokio::test]
async fn additional_requesters_are_added_once() {
    let (s, dir) = sim().await;
    let code = alta(&s, "nom.cognom", "cc").await.to_string();
    for cn in ["maria.garcia", "cap.secretaria", "maria.garcia"] {
        let xml = gn6(
            &s,
            "AfegirSolicitantTiquet",
            &[("codiTiquet", &code), ("solicitant", cn)],
        )
        .await;
        assert_eq!(codi_retorn(&xml), "1");
    }
    let xml = gn6(
        &s,
        "AfegirSolicitantTiquet",
        &[("codiTiquet", &code), ("solicitant", "")],
    )
    .await;
    assert_eq!(codi_retorn(&xml), "-2");
    let t = sandbox::load_ticket(dir.path(), 1).unwrap().unwrap();
    assert_eq!(
        t.solicitants_addicionals,
        vec!["maria.garcia", "cap.secretaria"]
    );
}

#[tokio::test]
async fn persones_lists_and_describes_people() {
    let (s, dir) = sim().await;
    let xml = persones(&s, "llistaPersones", ("email", "Secretaria.Dept@upc.edu")).await;
    let mut cns = texts(&xml, None, "cn");
    cns.sort();
    assert_eq!(cns, vec!["aux.secretaria", "cap.secretaria"]);
    assert!(xml.contains("llistaPersonesResponse"));

    let xml = persones(&s, "obtenirDadesPersona", ("commonName", "cap.secretaria")).await;
    assert_eq!(texts(&xml, None, "ok"), vec!["true"]);
    assert_eq!(
        texts(&xml, None, "emailPreferent"),
        vec!["secretaria.dept@upc.edu"]
    );
    let xml = persones(&s, "obtenirDadesPersona", ("commonName", "aux.secretaria")).await;
    assert_eq!(
        texts(&xml, None, "emailPreferent"),
        vec!["aux.secretaria@upc.edu"]
    );
    assert_eq!(texts(&xml, None, "nom"), vec!["Aux"]);

    let xml = persones(&s, "obtenirDadesPersona", ("commonName", "ningu")).await;
    assert_eq!(texts(&xml, None, "ok"), vec!["false"]);
    assert!(texts(&xml, None, "commonName").is_empty());
    let xml = persones(&s, "llistaPersones", ("email", "ningu@example.com")).await;
    assert!(texts(&xml, None, "persona").is_empty());
    assert_eq!(texts(&xml, None, "llistaPersones").len(), 1);

    // People added through the library are seen by the running simulator.
    sandbox::add_person(dir.path(), "nou.usuari", &["nou@example.com".into()]).unwrap();
    let xml = persones(&s, "llistaPersones", ("email", "nou@example.com")).await;
    assert_eq!(texts(&xml, None, "cn"), vec!["nou.usuari"]);
}

#[tokio::test]
async fn two_simulators_on_one_folder_give_distinct_codes() {
    let dir = tempfile::tempdir().unwrap();
    let a = std::sync::Arc::new(sandbox::start(config(dir.path()), 0).await.unwrap());
    let b = std::sync::Arc::new(sandbox::start(config(dir.path()), 0).await.unwrap());
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            alta(&s, "nom.cognom", "concurrent").await
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, (1..=10).collect::<Vec<u64>>());
    assert_eq!(sandbox::list_tickets(dir.path()).unwrap().len(), 10);
    assert_eq!(a.stats().operation("AltaTiquet"), 5);
    assert_eq!(b.stats().operation("AltaTiquet"), 5);
}

#[tokio::test]
async fn stats_count_operations_and_connections() {
    let (s, _dir) = sim().await;
    alta(&s, "nom.cognom", "x").await;
    persones(&s, "llistaPersones", ("email", "nom.cognom@upc.edu")).await;
    let before = s.stats();
    assert_eq!(before.connections, 2);
    assert_eq!(before.http_requests, 2);
    assert_eq!(before.operation("AltaTiquet"), 1);
    assert_eq!(before.operation("llistaPersones"), 1);
    assert_eq!(before.soap_requests(), 2);

    // Two requests over one kept-alive connection count as one connection.
    let stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let env = persones_envelope(
            &good_header(),
            "obtenirDadesPersona",
            ("commonName", "nom.cognom"),
        );
        let req = hyper::Request::post(sandbox::PERSONES_PATH)
            .header("host", s.addr.to_string())
            .header("content-type", "text/xml; charset=utf-8")
            .header("soapaction", "\"\"")
            .body(http_body_util::Full::new(bytes::Bytes::from(env)))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        use http_body_util::BodyExt;
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("<ok>true</ok>"));
    }
    let delta = s.stats().since(&before);
    assert_eq!(delta.connections, 1);
    assert_eq!(delta.http_requests, 2);
    assert_eq!(delta.operation("obtenirDadesPersona"), 2);

    // The text endpoint reports the same numbers (plus its own connection).
    let remote = sandbox::fetch_stats(s.addr).await.unwrap();
    assert_eq!(remote.operations, s.stats().operations);
    assert_eq!(remote.connections, before.connections + 2);
    assert_eq!(remote.http_requests, 4);
}

#[tokio::test]
async fn malformed_requests_are_faults_and_unknown_paths_404() {
    let (s, _dir) = sim().await;
    let r = http(s.addr, "POST", sandbox::GN6_PATH, "\"\"", "<not xml").await;
    assert_eq!(r.status, 500);
    assert_eq!(texts(&r.text(), None, "faultcode"), vec!["soapenv:Client"]);

    let env = gn6_envelope(&good_header(), "EsborrarTiquet", GOOD_GN6, &[]);
    let r = http(s.addr, "POST", sandbox::GN6_PATH, "\"\"", &env).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("EsborrarTiquet"));

    // A Persones operation posted to the GN6 endpoint is not understood there.
    let env = persones_envelope(&good_header(), "llistaPersones", ("email", "a@b"));
    let r = http(s.addr, "POST", sandbox::GN6_PATH, "\"\"", &env).await;
    assert_eq!(r.status, 500);

    let r = http(s.addr, "GET", "/other", "\"\"", "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn default_namespaces_instead_of_prefixes_are_understood() {
    let (s, _dir) = sim().await;
    let env = format!(
        r#"<Envelope xmlns="{SOAP_ENV}"><Header><Security xmlns="{WSSE}"><UsernameToken><Username>bus.user</Username><Password>bus&amp;pass</Password></UsernameToken></Security></Header><Body><AltaTiquet xmlns="{GN6_NS}"><username>gn6.user</username><password>gn6.pass</password><domini>1234</domini><solicitant>nom.cognom</solicitant><assumpte><![CDATA[A <b>]]></assumpte></AltaTiquet></Body></Envelope>"#
    );
    let r = http(
        s.addr,
        "POST",
        sandbox::GN6_PATH,
        "\"urn:AltaTiquet\"",
        &env,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(codi_retorn(&r.text()), "1");
    let xml = consulta(&s, "ConsultaTiquetsDades", "1").await;
    assert_eq!(data(&xml, "assumpte"), vec!["A <b>"]);
}

#[test]
fn example_config_and_mails_are_what_the_demo_needs() {
    use mail_parser::{MessageParser, MimeHeaders};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let cfg = mailtoticket::config::Config::load(&root.join("sandbox.toml")).unwrap();
    assert_eq!(cfg.bus, mailtoticket::config::Bus::Sandbox);
    let sandbox_dir = cfg.sandbox_dir.clone().unwrap();
    assert!(Path::new(&cfg.log_file).starts_with(&sandbox_dir));
    assert!(!cfg.equip_resolutor_nous.is_empty() && !cfg.domini.is_empty());

    let read = |name: &str| std::fs::read(root.join("mail").join(name)).unwrap();

    let raw = read("benvingut.eml");
    let m = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(m.subject(), Some("Benvingut, mailtoticket!"));
    let from = m.from().unwrap().first().unwrap().address().unwrap();
    assert_eq!(from, "nom.cognom@upc.edu");

    let raw = read("resposta.eml");
    let m = MessageParser::default().parse(&raw).unwrap();
    let irt = m.in_reply_to().as_text().unwrap();
    let re = regex::Regex::new(&cfg.regex_message_id).unwrap();
    let bracketed = format!("<{irt}>");
    let caps = re.captures(&bracketed).unwrap();
    assert_eq!(&caps[1], "1");

    let raw = read("html-annexos.eml");
    let m = MessageParser::default().parse(&raw).unwrap();
    assert!(
        m.body_html(0)
            .unwrap()
            .contains("cid:logo.7c1d@example.org")
    );
    let names: Vec<String> = m
        .attachments()
        .map(|a| a.attachment_name().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        names,
        vec!["logo.png", "incidencies.csv", "fitxa-projector.pdf"]
    );
    let inline = m.attachments().filter(|a| a.content_id().is_some()).count();
    assert_eq!(inline, 1);
    assert!(m.attachments().all(|a| !a.contents().is_empty()));

    let raw = read("fora-oficina.eml");
    let m = MessageParser::default().parse(&raw).unwrap();
    assert!(m.header("Auto-Submitted").is_some());
    assert!(m.subject().unwrap().starts_with("Resposta automàtica"));
}

#[tokio::test]
async fn from_config_accepts_the_configurations_own_credentials() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut cfg = mailtoticket::config::Config::load(&root.join("sandbox.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    cfg.sandbox_dir = Some(dir.path().to_path_buf());
    let sc = SandboxConfig::from_config(&cfg);
    assert_eq!(sc.dir, dir.path());
    assert_eq!(sc.reopen_period_days, sandbox::DEFAULT_REOPEN_PERIOD_DAYS);
    let s = sandbox::start(sc, 0).await.unwrap();
    let env = gn6_envelope(
        &security(&cfg.username_soa, &cfg.password_soa),
        "AfegirSolicitantTiquet",
        [&cfg.username_gn6, &cfg.password_gn6, &cfg.domini],
        &[("codiTiquet", "1"), ("solicitant", "x")],
    );
    let r = http(s.addr, "POST", sandbox::GN6_PATH, "\"\"", &env).await;
    assert_eq!(codi_retorn(&r.text()), "-4");

    let addr = s.addr;
    s.shutdown();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn show_ticket_text_reflects_the_stored_ticket() {
    let dir = tempfile::tempdir().unwrap();
    assert!(sandbox::list_tickets(dir.path()).unwrap().is_empty());
    assert_eq!(sandbox::format_ticket_list(&[]), "(no tickets)\n");
    let people = sandbox::format_people(&sandbox::list_people(dir.path()).unwrap());
    assert!(people.contains("cap.secretaria  (Cap Secretaria)  secretaria.dept@upc.edu"));
    assert!(sandbox::load_ticket(dir.path(), 1).unwrap().is_none());
}

#[tokio::test]
async fn consulta_tiquets_filters_by_state_requester_and_dates() {
    let (s, dir) = sim().await;
    alta(&s, "nom.cognom", "a").await;
    alta(&s, "maria.garcia", "b").await;
    alta(&s, "nom.cognom", "c").await;
    sandbox::close_ticket(dir.path(), 3, 0).unwrap();
    let today = chrono::Local::now().format("%d-%m-%Y").to_string();
    let tomorrow = (chrono::Local::now() + chrono::Duration::days(1))
        .format("%d-%m-%Y")
        .to_string();
    let query = |filters: Vec<(&'static str, String)>| {
        let mut children = consulta_children("");
        for (n, v) in filters {
            children.iter_mut().find(|(k, _)| *k == n).unwrap().1 = v;
        }
        children
    };
    for (filters, expected) in [
        (
            vec![("solicitant", "nom.cognom".to_string())],
            vec!["1", "3"],
        ),
        (vec![("estat", "TIQUET_STATUS_TANCAT".into())], vec!["3"]),
        (
            vec![("estat", "ESTAT_OBERT_PENDENT".into())],
            vec!["1", "2"],
        ),
        (
            vec![("dataCreacioInici", today.clone())],
            vec!["1", "2", "3"],
        ),
        (vec![("dataCreacioInici", tomorrow.clone())], vec![]),
        (vec![("dataTancamentFi", today.clone())], vec!["3"]),
        (
            vec![
                ("solicitant", "nom.cognom".into()),
                ("estat", "TIQUET_STATUS_OBERT".into()),
            ],
            vec!["1"],
        ),
    ] {
        let children = query(filters.clone());
        let refs: Vec<(&str, &str)> = children.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let xml = gn6(&s, "ConsultaTiquets", &refs).await;
        assert_eq!(codi_retorn(&xml), "1");
        assert_eq!(data(&xml, "codiTiquet"), expected, "{filters:?}");
    }
}

const CHILD_ENV: &str = "MAILTOTICKET_SANDBOX_CHILD_DIR";

/// Helper process of `two_processes_share_one_folder`: does nothing unless that test
/// started it.
#[tokio::test]
#[ignore = "helper process of two_processes_share_one_folder"]
async fn sandbox_child_process_creates_tickets() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let s = sandbox::start(config(Path::new(&dir)), 0).await.unwrap();
    for _ in 0..10 {
        alta(&s, "maria.garcia", "fill").await;
    }
}

#[tokio::test]
async fn two_processes_share_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "sandbox::sandbox_child_process_creates_tickets",
                ])
                .env(CHILD_ENV, dir.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let s = sandbox::start(config(dir.path()), 0).await.unwrap();
    for _ in 0..10 {
        alta(&s, "nom.cognom", "pare").await;
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}");
        // The filter must have matched the helper, or nothing was tested.
        assert!(stdout.contains("1 passed"), "{stdout}");
    }
    let tickets = sandbox::list_tickets(dir.path()).unwrap();
    let codes: Vec<u64> = tickets.iter().map(|t| t.codi).collect();
    assert_eq!(codes, (1..=30).collect::<Vec<u64>>());
    assert_eq!(tickets.iter().filter(|t| t.assumpte == "fill").count(), 20);
}
