//! SOAP adapters against recorded-style exchanges (fixtures/soap) replayed by wiremock over
//! real HTTP: the request actually sent (XML-aware), its headers, and the decoded result.

use std::path::PathBuf;
use std::time::Duration;

use mailtoticket::adapters::http::{HttpTransport, HyperTransport, TransportConfig};
use mailtoticket::adapters::soap::envelope::call;
use mailtoticket::adapters::soap::generated::gestio_tiquets_v5 as g;
use mailtoticket::adapters::soap::xml::{present, text, value};
use mailtoticket::adapters::soap::{
    BusCredentials, Gn6Credentials, SoapIdentityDirectory, SoapTicketSystem,
};
use mailtoticket::domain::identity::Person;
use mailtoticket::domain::ticket::{
    CommentKind, NewAttachment, NewComment, NewTicket, TicketChanges,
};
use mailtoticket::ports::{IdentityDirectory, PortError, TicketSystem};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const GN6_PATH: &str = "/gN6/GestioTiquetsv5";
const PERSONES_PATH: &str = "/GestioIdentitat/Personesv6";

// ------------------------------------------------------------------------------------------
// XML-aware comparison: (namespace, local name, attributes, trimmed text, children) trees.

#[derive(Debug, PartialEq, Eq)]
struct Canon {
    ns: String,
    name: String,
    attrs: Vec<(String, String, String)>,
    text: String,
    children: Vec<Canon>,
}

fn ns_of(r: ResolveResult) -> String {
    match r {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        ResolveResult::Unbound => String::new(),
        ResolveResult::Unknown(p) => panic!("undeclared prefix {}", String::from_utf8_lossy(&p)),
    }
}

fn canon(xml: &str) -> Canon {
    let mut reader = NsReader::from_str(xml);
    let mut stack: Vec<Canon> = Vec::new();
    loop {
        let (res, ev) = reader.read_resolved_event().expect("well-formed XML");
        let ev_ns = ns_of(res);
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let mut attrs = Vec::new();
                for a in s.attributes() {
                    let a = a.unwrap();
                    let key = a.key.as_ref();
                    if key == b"xmlns" || key.starts_with(b"xmlns:") {
                        continue;
                    }
                    let (ans, local) = reader.resolve_attribute(a.key);
                    attrs.push((
                        ns_of(ans),
                        String::from_utf8_lossy(local.as_ref()).into_owned(),
                        a.decode_and_unescape_value(reader.decoder())
                            .unwrap()
                            .into_owned(),
                    ));
                }
                attrs.sort();
                let el = Canon {
                    ns: ev_ns,
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    attrs,
                    text: String::new(),
                    children: Vec::new(),
                };
                if matches!(ev, Event::Empty(_)) {
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => return el,
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let mut el = stack.pop().unwrap();
                el.text = el.text.trim().to_string();
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => return el,
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.decode().unwrap());
                }
            }
            Event::GeneralRef(r) => {
                let s = if r.is_char_ref() {
                    r.resolve_char_ref().unwrap().unwrap().to_string()
                } else {
                    match r.decode().unwrap().as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        other => panic!("unknown entity {other}"),
                    }
                    .to_string()
                };
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&s);
                }
            }
            Event::Eof => panic!("truncated XML"),
            _ => {}
        }
    }
}

fn assert_same_xml(actual: &str, expected: &str) {
    let (a, e) = (canon(actual), canon(expected));
    assert!(
        a == e,
        "XML differs.\n--- sent:\n{actual}\n--- expected:\n{expected}\n--- trees:\n{a:#?}\n{e:#?}"
    );
}

#[test]
fn canonicaliser_ignores_prefixes_and_whitespace_but_not_order_or_namespaces() {
    let a = r#"<a:x xmlns:a="urn:1"><a:y>v</a:y><a:z/></a:x>"#;
    let b = "<x xmlns=\"urn:1\">\n  <y> v </y>\n  <z></z>\n</x>";
    assert_eq!(canon(a), canon(b));
    assert_ne!(
        canon(a),
        canon(r#"<a:x xmlns:a="urn:1"><a:z/><a:y>v</a:y></a:x>"#)
    );
    assert_ne!(
        canon(a),
        canon(r#"<a:x xmlns:a="urn:2"><a:y>v</a:y><a:z/></a:x>"#)
    );
    assert_ne!(
        canon(a),
        canon(r#"<a:x xmlns:a="urn:1"><y>v</y><a:z/></a:x>"#)
    );
}

// ------------------------------------------------------------------------------------------
// Harness.

fn fixture(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/soap")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn bus() -> BusCredentials {
    BusCredentials {
        username: "BUS_USER".into(),
        password: "BUS_PASSWORD".into(),
    }
}

fn gn6_creds() -> Gn6Credentials {
    Gn6Credentials {
        username: "GN6_USER".into(),
        password: "GN6_PASSWORD".into(),
        domini: "1234".into(),
    }
}

fn transport(timeout: Duration) -> HyperTransport {
    HyperTransport::new(&TransportConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: timeout,
        ca_file: None,
    })
    .unwrap()
}

/// What the mock server answers.
enum Answer {
    Fixture(u16, &'static str),
    Empty(u16),
    Slow(&'static str),
}

/// Every operation, driven through the public adapters (ConsultaTiquets, which no port
/// uses, through the generic typed call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ConsultaTiquetsDades,
    ConsultaTiquets,
    AltaTiquet,
    ModificarTiquet,
    AfegirComentariTiquet,
    AnnexarFitxerTiquet,
    AfegirSolicitantTiquet,
    ObtenirDadesPersona,
    LlistaPersones,
}

const ALL_OPS: [Op; 9] = [
    Op::ConsultaTiquetsDades,
    Op::ConsultaTiquets,
    Op::AltaTiquet,
    Op::ModificarTiquet,
    Op::AfegirComentariTiquet,
    Op::AnnexarFitxerTiquet,
    Op::AfegirSolicitantTiquet,
    Op::ObtenirDadesPersona,
    Op::LlistaPersones,
];

impl Op {
    fn dir(self) -> &'static str {
        match self {
            Op::ConsultaTiquetsDades => "gn6/ConsultaTiquetsDades",
            Op::ConsultaTiquets => "gn6/ConsultaTiquets",
            Op::AltaTiquet => "gn6/AltaTiquet",
            Op::ModificarTiquet => "gn6/ModificarTiquet",
            Op::AfegirComentariTiquet => "gn6/AfegirComentariTiquet",
            Op::AnnexarFitxerTiquet => "gn6/AnnexarFitxerTiquet",
            Op::AfegirSolicitantTiquet => "gn6/AfegirSolicitantTiquet",
            Op::ObtenirDadesPersona => "persones/obtenirDadesPersona",
            Op::LlistaPersones => "persones/llistaPersones",
        }
    }

    fn is_gn6(self) -> bool {
        self.dir().starts_with("gn6/")
    }

    fn path(self) -> &'static str {
        if self.is_gn6() {
            GN6_PATH
        } else {
            PERSONES_PATH
        }
    }

    fn soap_action(self) -> String {
        if self.is_gn6() {
            format!("\"urn:{}\"", self.dir().trim_start_matches("gn6/"))
        } else {
            "\"\"".to_string()
        }
    }
}

fn new_ticket() -> NewTicket {
    NewTicket {
        solicitant: "nom.cognom".into(),
        email_solicitant: "nom.cognom@upc.edu".into(),
        assumpte: "No funciona la impressora".into(),
        descripcio: "<p>La impressora de la sala 3 & la 4 no imprimeix.</p>".into(),
        equip_resolutor: "98765".into(),
        urgencia: "GRAVETAT_MITJA".into(),
        proces: "PROCES_AUS".into(),
        estat: "TIQUET_STATUS_OBERT".into(),
        enviar_missatge_creacio: "S".into(),
        enviar_missatge_tancament: "N".into(),
        imputacio_automatica: "N".into(),
        ..NewTicket::default()
    }
}

/// Runs one operation with the fixtures' input; the result is rendered with `Debug`.
async fn invoke(op: Op, http: HyperTransport, base: &str) -> Result<String, PortError> {
    let gn6 = SoapTicketSystem::new(
        http.clone(),
        format!("{base}{GN6_PATH}"),
        bus(),
        gn6_creds(),
    );
    let persones =
        SoapIdentityDirectory::new(http.clone(), format!("{base}{PERSONES_PATH}"), bus());
    match op {
        Op::ConsultaTiquetsDades => gn6.query_ticket("657421").await.map(|v| format!("{v:?}")),
        Op::ConsultaTiquets => {
            let req = g::ConsultaTiquets {
                username: value("GN6_USER"),
                password: value("GN6_PASSWORD"),
                domini: value("1234"),
                codi: value("657421"),
                estat: value(""),
                data_creacio_inici: value(""),
                data_creacio_fi: value(""),
                data_tancament_inici: value(""),
                data_tancament_fi: value(""),
                client: value(""),
                solicitant: value(""),
                ip: value(""),
            };
            let resp = call::<g::ops::ConsultaTiquets, _>(
                &http,
                &format!("{base}{GN6_PATH}"),
                &bus(),
                &req,
                &["GN6_PASSWORD"],
            )
            .await?;
            let r =
                present(resp.return_).ok_or_else(|| PortError::Permanent("no return".into()))?;
            if text(&r.codi_retorn) != "1" {
                return Err(PortError::Service {
                    code: text(&r.codi_retorn),
                    description: text(&r.descripcio_error),
                });
            }
            let tickets: Vec<String> = r
                .llista_tiquets
                .iter()
                .filter_map(|t| t.0.as_ref())
                .map(|t| {
                    format!(
                        "Tiquet {{ assignat_a: {:?}, assumpte: {:?}, codi_tiquet: {:?} }}",
                        text(&t.assignat_a),
                        text(&t.assumpte),
                        text(&t.codi_tiquet)
                    )
                })
                .collect();
            Ok(format!("[{}]", tickets.join(", ")))
        }
        Op::AltaTiquet => gn6.create_ticket(&new_ticket()).await,
        Op::ModificarTiquet => gn6
            .modify_ticket(&TicketChanges {
                codi_tiquet: "657421".into(),
                estat: "TIQUET_STATUS_OBERT".into(),
                ..TicketChanges::default()
            })
            .await
            .map(|()| "ok".into()),
        Op::AfegirComentariTiquet => gn6
            .add_comment(&NewComment {
                codi_tiquet: "657421".into(),
                usuari: "nom.cognom".into(),
                descripcio: "<p>Gràcies!</p>".into(),
                tipus: CommentKind::Public,
                notificar: false,
            })
            .await
            .map(|()| "ok".into()),
        Op::AnnexarFitxerTiquet => {
            gn6.attach_file(&NewAttachment {
                codi_tiquet: "657421",
                usuari: "nom.cognom",
                nom_fitxer: "foto.png",
                content: b"\x89PNG\r\n\x1a\n",
            })
            .await
        }
        Op::AfegirSolicitantTiquet => gn6
            .add_requester("657421", "altre.usuari")
            .await
            .map(|()| "ok".into()),
        Op::ObtenirDadesPersona => persones
            .person("nom.cognom")
            .await
            .map(|p| format!("{p:?}")),
        Op::LlistaPersones => persones
            .persons_by_email("nom.cognom@upc.edu")
            .await
            .map(|v| format!("{v:?}")),
    }
}

/// Mounts the answer, runs the operation, checks the one request sent (body XML-aware,
/// Content-Type, quoted SOAPAction) and returns the result.
async fn exchange(op: Op, answer: Answer, timeout: Duration) -> Result<String, PortError> {
    let server = MockServer::start().await;
    let template = match answer {
        Answer::Fixture(status, case) => ResponseTemplate::new(status).set_body_raw(
            fixture(&format!("{}/{case}.response.xml", op.dir())),
            "text/xml; charset=utf-8",
        ),
        Answer::Empty(status) => ResponseTemplate::new(status),
        Answer::Slow(case) => ResponseTemplate::new(200)
            .set_body_raw(
                fixture(&format!("{}/{case}.response.xml", op.dir())),
                "text/xml; charset=utf-8",
            )
            .set_delay(timeout * 3),
    };
    Mock::given(method("POST"))
        .and(path(op.path()))
        .respond_with(template)
        .mount(&server)
        .await;
    let http = transport(timeout);
    let result = invoke(op, http.clone(), &server.uri()).await;

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1, "{op:?}: exactly one request");
    assert_eq!(http.requests(), 1);
    let req = &received[0];
    let header = |name: &str| {
        req.headers
            .get(name)
            .unwrap_or_else(|| panic!("{op:?}: no {name} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(header("content-type"), "text/xml; charset=utf-8", "{op:?}");
    assert_eq!(header("soapaction"), op.soap_action(), "{op:?}");
    let body = String::from_utf8(req.body.clone()).unwrap();
    assert_same_xml(
        &body,
        &fixture(&format!("{}/success.request.xml", op.dir())),
    );
    result
}

const T: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------------------------------
// Success, one per operation, with the decoded value.

#[tokio::test]
async fn consulta_tiquets_dades_success_decodes_ticket_with_requester_data() {
    let http = transport(T);
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GN6_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("gn6/ConsultaTiquetsDades/success.response.xml"),
            "text/xml",
        ))
        .mount(&server)
        .await;
    let gn6 = SoapTicketSystem::new(
        http,
        format!("{}{GN6_PATH}", server.uri()),
        bus(),
        gn6_creds(),
    );
    let t = gn6.query_ticket("657421").await.unwrap().expect("ticket");
    assert_eq!(t.codi_tiquet, "657421");
    assert_eq!(t.estat, "TIQUET_STATUS_TANCAT");
    assert!(t.is_closed());
    assert_eq!(t.solicitant, "nom.cognom");
    assert_eq!(t.email_solicitant, "nom.cognom@upc.edu");
    assert_eq!(t.assumpte, "No funciona la impressora");
    assert_eq!(t.descripcio, "<p>La impressora no imprimeix.</p>");
    assert_eq!(t.equip_resolutor, "98765");
    assert_eq!(t.urgencia, "GRAVETAT_MITJA");
    assert_eq!(t.data_creacio, "27-11-2026 10:15:00");
    assert_eq!(t.data_tancament, "");
    assert_eq!(
        t.fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [
            "assumpte",
            "codiTiquet",
            "dadesContacteSolicitant",
            "dataCreacio",
            "descripcio",
            "emailSolicitant",
            "equipResolutor",
            "estat",
            "proces",
            "solicitant",
            "solicitantNom",
            "urgencia"
        ]
    );
    assert!(
        t.fields
            .contains(&("solicitantNom".into(), "Nom Cognom".into()))
    );
}

#[tokio::test]
async fn every_operation_sends_the_expected_request_and_decodes_success() {
    let expected = [
        (
            Op::ConsultaTiquetsDades,
            "Some(TicketInfo { codi_tiquet: \"657421\"",
        ),
        (
            Op::ConsultaTiquets,
            "[Tiquet { assignat_a: \"\", assumpte: \"No funciona la impressora\"",
        ),
        (Op::AltaTiquet, "657421"),
        (Op::ModificarTiquet, "ok"),
        (Op::AfegirComentariTiquet, "ok"),
        (Op::AnnexarFitxerTiquet, "4455"),
        (Op::AfegirSolicitantTiquet, "ok"),
        (
            Op::ObtenirDadesPersona,
            "Some(Person { cn: \"nom.cognom\", email_preferent: Some(\"nom.cognom@upc.edu\") })",
        ),
        (Op::LlistaPersones, "[\"nom.cognom\", \"nom.cognom2\"]"),
    ];
    for (op, want) in expected {
        let got = exchange(op, Answer::Fixture(200, "success"), T)
            .await
            .unwrap_or_else(|e| panic!("{op:?}: {e:?}"));
        assert!(got.starts_with(want), "{op:?}: {got}");
    }
}

#[tokio::test]
async fn consulta_tiquets_dades_without_tickets_is_none() {
    let got = exchange(
        Op::ConsultaTiquetsDades,
        Answer::Fixture(200, "not_found"),
        T,
    )
    .await;
    assert_eq!(got, Ok("None".to_string()));
}

#[tokio::test]
async fn obtenir_dades_persona_ok_false_is_none() {
    let got = exchange(Op::ObtenirDadesPersona, Answer::Fixture(200, "unknown"), T).await;
    assert_eq!(got, Ok("None".to_string()));
}

#[tokio::test]
async fn llista_persones_empty_list() {
    let got = exchange(Op::LlistaPersones, Answer::Fixture(200, "none"), T).await;
    assert_eq!(got, Ok("[]".to_string()));
}

#[tokio::test]
async fn person_without_email_preferent() {
    let server = MockServer::start().await;
    let body = fixture("persones/obtenirDadesPersona/success.response.xml")
        .replace("<emailPreferent>nom.cognom@upc.edu</emailPreferent>", "");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/xml"))
        .mount(&server)
        .await;
    let dir = SoapIdentityDirectory::new(
        transport(T),
        format!("{}{PERSONES_PATH}", server.uri()),
        bus(),
    );
    assert_eq!(
        dir.person("nom.cognom").await,
        Ok(Some(Person {
            cn: "nom.cognom".into(),
            email_preferent: None
        }))
    );
}

// ------------------------------------------------------------------------------------------
// Failures, for every operation.

#[tokio::test]
async fn codi_retorn_other_than_1_is_a_service_error() {
    for op in ALL_OPS.into_iter().filter(|o| o.is_gn6()) {
        let got = exchange(op, Answer::Fixture(200, "service_error"), T).await;
        match got {
            Err(PortError::Service { code, description }) => {
                assert!(code.starts_with('-'), "{op:?}: {code}");
                assert!(!description.is_empty(), "{op:?}");
            }
            // codiRetorn -1 (wrong GN6 credentials) is a fault of our configuration.
            Err(PortError::Permanent(m)) if m.contains("credencials GN6 incorrectes") => {}
            other => panic!("{op:?}: {other:?}"),
        }
    }
    let got = exchange(Op::AltaTiquet, Answer::Fixture(200, "service_error"), T).await;
    assert_eq!(
        got,
        Err(PortError::Service {
            code: "-2".into(),
            description: "No s'ha trobat el sol·licitant nom.cognom".into()
        })
    );
}

#[tokio::test]
async fn soap_fault_with_http_500_is_a_fault() {
    for op in ALL_OPS {
        let got = exchange(op, Answer::Fixture(500, "fault"), T).await;
        assert_eq!(
            got,
            Err(PortError::Fault {
                code: "soapenv:Client".into(),
                message: "Authentication failed".into()
            }),
            "{op:?}"
        );
    }
}

#[tokio::test]
async fn http_503_without_body_is_transient() {
    for op in ALL_OPS {
        let got = exchange(op, Answer::Empty(503), T).await;
        assert!(
            matches!(got, Err(PortError::Transient(_))),
            "{op:?}: {got:?}"
        );
    }
}

#[tokio::test]
async fn http_500_without_fault_is_transient() {
    let got = exchange(Op::AltaTiquet, Answer::Empty(500), T).await;
    assert!(matches!(got, Err(PortError::Transient(_))), "{got:?}");
}

#[tokio::test]
async fn malformed_xml_is_permanent() {
    for op in ALL_OPS {
        let got = exchange(op, Answer::Fixture(200, "malformed"), T).await;
        assert!(
            matches!(got, Err(PortError::Permanent(_))),
            "{op:?}: {got:?}"
        );
    }
}

#[tokio::test]
async fn response_slower_than_the_timeout_is_transient() {
    for op in ALL_OPS {
        let got = exchange(op, Answer::Slow("success"), Duration::from_millis(150)).await;
        assert!(
            matches!(got, Err(PortError::Transient(_))),
            "{op:?}: {got:?}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Transport.

#[tokio::test]
async fn one_keep_alive_connection_is_reused_across_calls() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GN6_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("gn6/AfegirSolicitantTiquet/success.response.xml"),
            "text/xml",
        ))
        .mount(&server)
        .await;
    let http = transport(T);
    let gn6 = SoapTicketSystem::new(
        http.clone(),
        format!("{}{GN6_PATH}", server.uri()),
        bus(),
        gn6_creds(),
    );
    for _ in 0..4 {
        gn6.add_requester("657421", "altre.usuari").await.unwrap();
    }
    assert_eq!(http.requests(), 4);
    assert_eq!(gn6.transport().connections(), 1);
    let by_peer = http.connections_by_peer();
    assert_eq!(by_peer.len(), 1);
    assert_eq!(by_peer.get(server.address()), Some(&1));
}

#[tokio::test]
async fn https_to_a_plain_http_server_fails_in_tls_not_as_transient() {
    // The transport really speaks TLS on https:// URLs: the handshake with a plain HTTP
    // server fails, and a TLS failure is not worth retrying.
    let server = MockServer::start().await;
    let url = server.uri().replace("http://", "https://");
    let http = transport(T);
    let e = http
        .post(&url, "urn:X", b"<x/>".to_vec())
        .await
        .unwrap_err();
    assert!(!e.transient, "{e}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_host_is_refused() {
    let gn6 = SoapTicketSystem::new(
        transport(T),
        "http://bus-soa.upc.edu/gN6/GestioTiquetsv5".into(),
        bus(),
        gn6_creds(),
    );
    let e = gn6.add_requester("1", "x").await.unwrap_err();
    assert!(matches!(e, PortError::Permanent(_)), "{e:?}");
    assert_eq!(gn6.transport().requests(), 0);
}

#[test]
fn operation_tables_come_from_the_wsdl_bindings() {
    use mailtoticket::adapters::soap::generated::persones_v6 as p;
    let names: Vec<&str> = g::ops::ALL.iter().map(|o| o.name).collect();
    assert_eq!(
        names,
        [
            "AfegirComentariTiquet",
            "AfegirSolicitantTiquet",
            "AltaTiquet",
            "AnnexarFitxerTiquet",
            "ConsultaTiquets",
            "ConsultaTiquetsDades",
            "ModificarTiquet"
        ]
    );
    for o in g::ops::ALL {
        assert_eq!(o.soap_action, format!("urn:{}", o.name));
        assert_eq!(o.request_element, o.name);
        assert_eq!(o.response_element, format!("{}Response", o.name));
        assert_eq!(o.request_namespace, "http://service.psi.upcnet");
        assert_eq!(o.response_namespace, "http://service.psi.upcnet");
    }
    let names: Vec<&str> = p::ops::ALL.iter().map(|o| o.name).collect();
    assert_eq!(names, ["llistaPersones", "obtenirDadesPersona"]);
    for o in p::ops::ALL {
        assert_eq!(o.soap_action, "");
        assert_eq!(
            o.request_namespace,
            "http://soa.identitatdigital.upc.edu/Personesv6"
        );
    }
    // v5 AltaTiquet: emailSolicitant right after solicitant, 22 children in all. The struct
    // literals below list every generated field (a missing or extra one does not compile);
    // the serialised element shows the wire order.
    macro_rules! every_child_empty {
        ($t:ident { $($f:ident),* $(,)? }) => {
            $t { $($f: value("")),* }
        };
    }
    use g::{AltaTiquet, ModificarTiquet};
    let alta = every_child_empty!(AltaTiquet {
        username,
        password,
        domini,
        solicitant,
        email_solicitant,
        client,
        assumpte,
        descripcio,
        equip_resolutor,
        assignat_a,
        producte,
        subservei,
        urgencia,
        impacte,
        proces,
        proces_origen,
        estat,
        ip,
        enviar_missatge_creacio,
        enviar_missatge_tancament,
        imputacio_automatica,
        infraestructura,
    });
    let names = child_names(&alta);
    assert_eq!(names.len(), 22);
    assert_eq!(&names[3..5], ["solicitant", "emailSolicitant"]);
    let modificar = every_child_empty!(ModificarTiquet {
        username,
        password,
        domini,
        codi_tiquet,
        equip_resolutor,
        assignat_a,
        proces,
        estat,
        data_caducitat,
        codi_tancament,
        producte,
        subservei,
        tipus,
        data_resol,
        solicitant,
        client,
        telefon_solicitant,
        email_solicitant,
        dades_contacte_solicitant,
        num_inventari,
        num_elements,
        ip,
        assumpte,
        descripcio,
        origen,
        urgencia,
        impacte,
    });
    assert_eq!(child_names(&modificar).len(), 27);
}

/// Wire names of the children of a generated element, as serialised.
fn child_names<T: xsd_parser_types::quick_xml::WithSerializer>(v: &T) -> Vec<String> {
    let mut out = Vec::new();
    mailtoticket::adapters::soap::xml::write_element(v, None, &mut out).unwrap();
    let tree = canon(&String::from_utf8(out).unwrap());
    tree.children.into_iter().map(|c| c.name).collect()
}

#[derive(Clone, Default)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_log_has_the_bodies_without_passwords() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let got = exchange(Op::AltaTiquet, Answer::Fixture(200, "success"), T).await;
    assert_eq!(got, Ok("657421".to_string()));
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("AltaTiquet"), "{text}");
    assert!(
        text.contains("GN6_USER") && text.contains("BUS_USER"),
        "{text}"
    );
    assert!(
        text.contains("ResultatAltaTiquet"),
        "response body logged: {text}"
    );
    assert!(!text.contains("GN6_PASSWORD"), "{text}");
    assert!(!text.contains("BUS_PASSWORD"), "{text}");
}

/// An AltaTiquet answer whose `return` has these children, with the namespace prefixes
/// declared on the Envelope only and an unknown SOAP header.
fn alta_tiquet_answer(children: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/" xmlns:s="http://service.psi.upcnet" xmlns:d="http://data.psi.upcnet/xsd" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <e:Header><x:Trace xmlns:x="urn:x">1</x:Trace></e:Header>
  <e:Body>
    <s:AltaTiquetResponse>
      <s:return xsi:type="d:ResultatAltaTiquet">{children}</s:return>
    </s:AltaTiquetResponse>
  </e:Body>
</e:Envelope>"#
    )
}

async fn create_ticket_answered_with(body: String) -> Result<String, PortError> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/xml"))
        .mount(&server)
        .await;
    let gn6 = SoapTicketSystem::new(
        transport(T),
        format!("{}{GN6_PATH}", server.uri()),
        bus(),
        gn6_creds(),
    );
    gn6.create_ticket(&new_ticket()).await
}

/// The tolerant reader (wsdl/README.md, "Reading responses"): `xsi:nil` like a missing
/// element, `xsi:type`, envelope-level prefixes and unknown SOAP headers; children in any
/// order; elements the WSDL does not define ignored with their whole subtree.
#[tokio::test]
async fn reader_treats_nil_as_missing_and_accepts_any_order_and_unknown_children() {
    let nil_and_missing = "<d:codiRetorn>1</d:codiRetorn><d:codiTiquet>777</d:codiTiquet>\
                           <d:descripcioError xsi:nil=\"true\"/>";
    let missing = "<d:codiRetorn>1</d:codiRetorn><d:codiTiquet>777</d:codiTiquet>";
    let out_of_order = "<d:descripcioError xsi:nil=\"true\"/><d:codiTiquet>777</d:codiTiquet>\
                        <d:codiRetorn>1</d:codiRetorn>";
    let unknown_in_between = "<d:codiRetorn>1</d:codiRetorn><d:novetat>x</d:novetat>\
                              <d:codiTiquet>777</d:codiTiquet>";
    let unknown_at_the_end = "<d:codiRetorn>1</d:codiRetorn><d:codiTiquet>777</d:codiTiquet>\
                              <d:novetat>x</d:novetat>";
    // Known names inside an unknown subtree, or in another namespace, are not fields.
    let unknown_subtree = "<d:historial><d:codiTiquet>999</d:codiTiquet>\
                           <d:entrada><d:codiRetorn>0</d:codiRetorn></d:entrada></d:historial>\
                           <d:codiTiquet>777</d:codiTiquet>\
                           <z:codiRetorn xmlns:z=\"urn:z\">0</z:codiRetorn><d:codiRetorn>1</d:codiRetorn>";
    let unknown_attribute =
        "<d:codiRetorn>1</d:codiRetorn><d:codiTiquet origen=\"gn6\">777</d:codiTiquet>";
    for children in [
        nil_and_missing,
        missing,
        out_of_order,
        unknown_in_between,
        unknown_at_the_end,
        unknown_subtree,
        unknown_attribute,
    ] {
        assert_eq!(
            create_ticket_answered_with(alta_tiquet_answer(children)).await,
            Ok("777".to_string()),
            "{children}"
        );
    }
    // A nil codiTiquet reads as an empty one, in any position.
    for nil_code in [
        "<d:codiRetorn>1</d:codiRetorn><d:codiTiquet xsi:nil=\"true\"/>",
        "<d:codiTiquet xsi:nil=\"true\"/><d:nou/><d:codiRetorn>1</d:codiRetorn>",
    ] {
        assert!(matches!(
            create_ticket_answered_with(alta_tiquet_answer(nil_code)).await,
            Err(PortError::Permanent(m)) if m.contains("sense codiTiquet")
        ));
    }
    // Tolerance is about structure, not values: a known element still has to be readable.
    let twice = "<d:codiRetorn>1</d:codiRetorn><d:codiTiquet>777</d:codiTiquet>\
                 <d:codiTiquet>778</d:codiTiquet>";
    let got = create_ticket_answered_with(alta_tiquet_answer(twice)).await;
    assert!(
        matches!(&got, Err(PortError::Permanent(m)) if m.contains("resposta no vàlida")),
        "{got:?}"
    );
}

/// Text survives the rewrite: entities, CDATA, `]]>` and CR (the generated
/// deserializer itself trims leading and trailing ASCII whitespace).
#[test]
fn reader_keeps_text_exactly_through_the_rewrite() {
    use mailtoticket::adapters::soap::envelope::decode;
    let children = "<d:descripcioError>a &amp; b &lt;c&gt; ]]&gt; x&#13;\ny\
                    <![CDATA[ <z> & ]]>fi</d:descripcioError><d:codiRetorn>1</d:codiRetorn>\
                    <d:codiTiquet>7&#39;7</d:codiTiquet>";
    let r: g::AltaTiquetResponse = decode(
        &g::ops::ALTA_TIQUET,
        200,
        alta_tiquet_answer(children).as_bytes(),
    )
    .unwrap();
    let ret = present(r.return_).unwrap();
    assert_eq!(text(&ret.descripcio_error), "a & b <c> ]]> x\r\ny <z> & fi");
    assert_eq!(text(&ret.codi_tiquet), "7'7");
    assert_eq!(text(&ret.codi_retorn), "1");
}

/// A ConsultaTiquetsDades answer with two tickets, each with fields the WSDL lacks (one a
/// nested record), shuffled children, and unknown elements between the list items.
fn consulta_dades_answer() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <soapenv:Body xmlns:ax23="http://data.psi.upcnet/xsd">
    <ns:ConsultaTiquetsDadesResponse xmlns:ns="http://service.psi.upcnet">
      <ns:return xsi:type="ax23:ResultatConsultaTiquetsDades">
        <ax23:llistaTiquets xsi:type="ax23:TiquetDades">
          <ax23:estat>TIQUET_STATUS_OBERT</ax23:estat>
          <ax23:prioritatInterna>3</ax23:prioritatInterna>
          <ax23:codiTiquet>111</ax23:codiTiquet>
          <ax23:historial>
            <ax23:entrada><ax23:estat>TIQUET_STATUS_TANCAT</ax23:estat><ax23:codiTiquet>999</ax23:codiTiquet></ax23:entrada>
          </ax23:historial>
          <ax23:solicitant>nom.cognom</ax23:solicitant>
          <ax23:assumpte xsi:nil="true"/>
        </ax23:llistaTiquets>
        <ax23:totalResultats>2</ax23:totalResultats>
        <ax23:llistaTiquets>
          <ax23:codiTiquet>222</ax23:codiTiquet>
          <ax23:campNou/>
          <ax23:estat>TIQUET_STATUS_TANCAT</ax23:estat>
        </ax23:llistaTiquets>
        <ax23:descripcioError xsi:nil="true"/>
        <ax23:codiRetorn>1</ax23:codiRetorn>
      </ns:return>
    </ns:ConsultaTiquetsDadesResponse>
  </soapenv:Body>
</soapenv:Envelope>"#
        .to_string()
}

#[test]
fn consulta_tiquets_dades_ignores_unknown_fields_and_keeps_the_list_order() {
    use mailtoticket::adapters::soap::envelope::decode;
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let r: g::ConsultaTiquetsDadesResponse = decode(
        &g::ops::CONSULTA_TIQUETS_DADES,
        200,
        consulta_dades_answer().as_bytes(),
    )
    .unwrap();
    let ret = present(r.return_).unwrap();
    assert_eq!(text(&ret.codi_retorn), "1");
    assert_eq!(text(&ret.descripcio_error), "");
    let tickets: Vec<_> = ret
        .llista_tiquets
        .into_iter()
        .map(|t| {
            let t = present(Some(t)).unwrap();
            (text(&t.codi_tiquet), text(&t.estat), text(&t.solicitant))
        })
        .collect();
    assert_eq!(
        tickets,
        [
            (
                "111".to_string(),
                "TIQUET_STATUS_OBERT".to_string(),
                "nom.cognom".to_string()
            ),
            (
                "222".to_string(),
                "TIQUET_STATUS_TANCAT".to_string(),
                String::new()
            )
        ]
    );
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for path in [
        "ConsultaTiquetsDadesResponse/return/llistaTiquets/prioritatInterna",
        "ConsultaTiquetsDadesResponse/return/llistaTiquets/historial",
        "ConsultaTiquetsDadesResponse/return/llistaTiquets/campNou",
        "ConsultaTiquetsDadesResponse/return/totalResultats",
    ] {
        let line = format!("Element desconegut ignorat: {path}");
        assert_eq!(text.matches(&line).count(), 1, "{path}: {text}");
    }
    assert!(!text.contains("entrada"), "{text}");
}

#[tokio::test]
async fn query_ticket_reads_a_record_with_unknown_fields() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GN6_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(consulta_dades_answer(), "text/xml"))
        .mount(&server)
        .await;
    let gn6 = SoapTicketSystem::new(
        transport(T),
        format!("{}{GN6_PATH}", server.uri()),
        bus(),
        gn6_creds(),
    );
    let t = gn6.query_ticket("111").await.unwrap().expect("ticket");
    assert_eq!(t.codi_tiquet, "111");
    assert_eq!(t.estat, "TIQUET_STATUS_OBERT");
    assert_eq!(t.assumpte, "");
    assert!(
        !t.fields
            .iter()
            .any(|(k, _)| k == "prioritatInterna" || k == "historial")
    );
}

async fn persones_answered_with(
    body: String,
) -> (MockServer, SoapIdentityDirectory<HyperTransport>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/xml"))
        .mount(&server)
        .await;
    let uri = format!("{}{PERSONES_PATH}", server.uri());
    (server, SoapIdentityDirectory::new(transport(T), uri, bus()))
}

#[tokio::test]
async fn obtenir_dades_persona_ignores_unknown_fields_and_order() {
    let body = |email: &str| {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <S:Body>
    <ns2:obtenirDadesPersonaResponse xmlns:ns2="http://soa.identitatdigital.upc.edu/Personesv6">
      <return>
        {email}
        <llistaColectius>
          <colectiu><codi>PAS</codi><nom>Personal</nom><commonName>altra.persona</commonName></colectiu>
          <colectiu><codi>PDI</codi></colectiu>
        </llistaColectius>
        <commonName>nom.cognom</commonName>
        <dni>00000000T</dni>
        <nom>Nom</nom>
        <ok>true</ok>
        <emailsAlternatius><email>alt@upc.edu</email></emailsAlternatius>
      </return>
    </ns2:obtenirDadesPersonaResponse>
  </S:Body>
</S:Envelope>"#
        )
    };
    for (email, want) in [
        (
            "<emailPreferent>nom.cognom@upc.edu</emailPreferent>",
            Some("nom.cognom@upc.edu".to_string()),
        ),
        ("<emailPreferent xsi:nil=\"true\"/>", None),
        ("", None),
    ] {
        let (_server, dir) = persones_answered_with(body(email)).await;
        assert_eq!(
            dir.person("nom.cognom").await,
            Ok(Some(Person {
                cn: "nom.cognom".into(),
                email_preferent: want
            })),
            "{email}"
        );
    }
    // A known element with an unreadable value is still an error.
    let bad = body("").replace("<ok>true</ok>", "<ok>potser</ok>");
    let (_server, dir) = persones_answered_with(bad).await;
    let got = dir.person("nom.cognom").await;
    assert!(
        matches!(&got, Err(PortError::Permanent(m)) if m.contains("resposta no vàlida")),
        "{got:?}"
    );
}

#[tokio::test]
async fn llista_persones_ignores_unknown_person_fields_and_keeps_order() {
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">
  <S:Body>
    <ns2:llistaPersonesResponse xmlns:ns2="http://soa.identitatdigital.upc.edu/Personesv6">
      <return>
        <totalPersones>3</totalPersones>
        <llistaPersones>
          <persona><uid>1</uid><cn>primer</cn><colectius><colectiu><cn>no</cn></colectiu></colectius></persona>
          <persona><nom>Nom</nom><cn>segon</cn></persona>
          <paginacio><pagina>1</pagina></paginacio>
          <persona><cognom2>X</cognom2><emailPreferent>t@upc.edu</emailPreferent><cn>tercer</cn></persona>
        </llistaPersones>
      </return>
    </ns2:llistaPersonesResponse>
  </S:Body>
</S:Envelope>"#;
    let (_server, dir) = persones_answered_with(body.to_string()).await;
    assert_eq!(
        dir.persons_by_email("t@upc.edu").await,
        Ok(vec![
            "primer".to_string(),
            "segon".to_string(),
            "tercer".to_string()
        ])
    );
}

#[tokio::test]
async fn find_tickets_filters_by_requester_and_creation_date_only() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GN6_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            fixture("gn6/ConsultaTiquetsDades/success.response.xml"),
            "text/xml",
        ))
        .mount(&server)
        .await;
    let gn6 = SoapTicketSystem::new(
        transport(T),
        format!("{}{GN6_PATH}", server.uri()),
        bus(),
        gn6_creds(),
    );
    let found = gn6.find_tickets("nom.cognom", "04-03-2024").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].codi_tiquet, "657421");
    assert_eq!(found[0].assumpte, "No funciona la impressora");
    let requests = server.received_requests().await.unwrap();
    let body = String::from_utf8_lossy(&requests[0].body).into_owned();
    let element = |name: &str| {
        let re =
            regex::Regex::new(&format!(r"<(?:\w+:)?{name}(?:\s[^>]*)?(?:/>|>([^<]*)</)")).unwrap();
        re.captures(&body)
            .map(|c| c.get(1).map_or("", |m| m.as_str()).to_string())
            .unwrap_or_else(|| panic!("no {name} in {body}"))
    };
    assert_eq!(element("solicitant"), "nom.cognom");
    assert_eq!(element("dataCreacioInici"), "04-03-2024");
    for empty in [
        "codi",
        "estat",
        "dataCreacioFi",
        "dataTancamentInici",
        "dataTancamentFi",
        "client",
        "ip",
    ] {
        assert_eq!(element(empty), "", "{empty}");
    }
}

// ---------------------------------------------------------------------------------------
// The build-time schema table (build/schema.rs, guides the tolerant reader) against the
// types xsd-parser generated (decode the values): for every operation of every vendored
// WSDL, a response holding every element the table knows, in the table's order, must be
// accepted by the strict generated deserializer (no reorder) and by the tolerant reader,
// and come back whole when it is serialised again.
// A child, an order or a namespace the two interpret differently fails here.

mod schema_table_vs_xsd_parser {
    use std::collections::BTreeMap;

    use mailtoticket::adapters::soap::envelope::{SOAP_ENV_NS, decode};
    use mailtoticket::adapters::soap::generated::{
        Schema, SchemaType, gestio_tiquets_v5 as g, persones_v6 as p,
    };
    use mailtoticket::adapters::soap::xml::{BodyReader, Operation, SoapOperation, write_element};
    use quick_xml::events::Event;
    use quick_xml::reader::Reader;
    use xsd_parser_types::quick_xml::{DeserializeSync, WithSerializer, XmlReader};

    /// A sample value for a simple type.
    fn sample(type_name: &str) -> &'static str {
        match type_name {
            "boolean" => "true",
            "int" | "integer" | "long" | "short" | "byte" | "decimal" => "1",
            "dateTime" => "2024-01-02T03:04:05",
            "date" => "2024-01-02",
            _ => "x",
        }
    }

    /// Every child the table lists for `ty`, recursively (complex children `depth` deep).
    fn fill(schema: &Schema, ty: &SchemaType, depth: usize, out: &mut String, n: &mut usize) {
        for (i, c) in ty.children.iter().enumerate() {
            if ty.children[..i]
                .iter()
                .any(|p| p.ns == c.ns && p.name == c.name)
            {
                continue;
            }
            *n += 1;
            let (open, close) = if c.ns.is_empty() {
                (c.name.to_string(), c.name.to_string())
            } else {
                (
                    format!("q{n}:{} xmlns:q{n}=\"{}\"", c.name, c.ns),
                    format!("q{n}:{}", c.name),
                )
            };
            out.push_str(&format!("<{open}>"));
            match schema.complex_type(c.type_ns, c.type_name) {
                Some(inner) if depth > 0 => fill(schema, inner, depth - 1, out, n),
                Some(_) => {}
                None => out.push_str(sample(c.type_name)),
            }
            out.push_str(&format!("</{close}>"));
        }
    }

    /// Local names of every element below the root, counted.
    fn names(xml: &[u8]) -> BTreeMap<String, usize> {
        let mut reader = Reader::from_reader(xml);
        let mut out = BTreeMap::new();
        let mut depth = 0;
        loop {
            let ev = reader.read_event().expect("XML");
            if let Event::Start(s) | Event::Empty(s) = &ev
                && depth > 0
            {
                let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
                *out.entry(name).or_insert(0) += 1;
            }
            match ev {
                Event::Start(_) => depth += 1,
                Event::End(_) => depth -= 1,
                Event::Eof => break,
                _ => {}
            }
        }
        out
    }

    fn check<O: SoapOperation>() -> Result<(), String>
    where
        O::Response: WithSerializer,
    {
        let op: Operation = O::OPERATION;
        let schema = op.schema;
        let ty = schema
            .element_type(op.response_namespace, op.response_element)
            .ok_or_else(|| format!("{}: response element not in the table", op.name))?;
        let mut inner = String::new();
        fill(schema, ty, 3, &mut inner, &mut 0);
        let payload = format!(
            "<r:{e} xmlns:r=\"{ns}\">{inner}</r:{e}>",
            e = op.response_element,
            ns = op.response_namespace
        );
        let doc = format!(
            "<s:Envelope xmlns:s=\"{SOAP_ENV_NS}\"><s:Body>{payload}</s:Body></s:Envelope>"
        );
        // Strict: the generated deserializer itself, without the tolerant reorder.
        let value =
            O::Response::deserialize(&mut BodyReader::new(doc.as_bytes()).with_error_info())
                .map_err(|e| {
                    format!(
                        "{}: the generated type rejects the table's shape: {e}\n{payload}",
                        op.name
                    )
                })?;
        // And through the tolerant reader, which must keep everything.
        decode::<O::Response>(&op, 200, doc.as_bytes())
            .map_err(|e| format!("{}: the tolerant reader rejects it: {e}", op.name))?;
        let mut back = Vec::new();
        write_element(
            &value,
            Some((op.response_namespace, op.response_element)),
            &mut back,
        )
        .map_err(|e| format!("{}: {e}", op.name))?;
        let (sent, got) = (names(payload.as_bytes()), names(&back));
        if sent != got {
            return Err(format!(
                "{}: the generated type lost or added elements\n table: {sent:?}\n  type: {got:?}",
                op.name
            ));
        }
        if inner.is_empty() && !ty.children.is_empty() {
            return Err(format!("{}: nothing was filled", op.name));
        }
        Ok(())
    }

    #[test]
    fn every_operation_of_every_wsdl_agrees() {
        let results = [
            check::<g::ops::AfegirComentariTiquet>(),
            check::<g::ops::AfegirSolicitantTiquet>(),
            check::<g::ops::AltaTiquet>(),
            check::<g::ops::AnnexarFitxerTiquet>(),
            check::<g::ops::ConsultaTiquets>(),
            check::<g::ops::ConsultaTiquetsDades>(),
            check::<g::ops::ModificarTiquet>(),
            check::<p::ops::LlistaPersones>(),
            check::<p::ops::ObtenirDadesPersona>(),
        ];
        // A new operation in a WSDL must be added above.
        assert_eq!(results.len(), g::ops::ALL.len() + p::ops::ALL.len());
        let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        assert!(errors.is_empty(), "{}", errors.join("\n\n"));
    }
}
