//! Sandbox adapter, service side: what the simulated GN6 GestioTiquets v5 (+ v6
//! AfegirSolicitantTiquet) and Persones v6 answer to a SOAP request, per WIRE.md.
//!
//! GN6 business errors are `codiRetorn` values (GN6's real codes where known, the rest
//! invented for the simulator): `-1` wrong GN6 credentials, `-2` no requester, `-4`
//! unknown ticket, `-5` comment on a closed ticket (GN6 refuses them by default), `-6`
//! unreadable attachment, `-7` unknown comment type. Bus errors (WS-Security) are HTTP
//! 500 SOAP Faults.

use std::path::Path;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{Local, NaiveDate, TimeZone};

use super::SandboxConfig;
use super::store::{self, ESTAT_OBERT, ESTAT_PENDENT, ESTAT_TANCAT, SimComment, SimTicket};
use super::xml::{self, Element, esc};

pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const GN6_NS: &str = "http://service.psi.upcnet";
pub const DATA_NS: &str = "http://data.psi.upcnet/xsd";
pub const PERSONES_NS: &str = "http://soa.identitatdigital.upc.edu/Personesv6";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Which of the two simulated services a request was posted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Gn6,
    Persones,
}

/// An HTTP answer: status code and XML body.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Handles one POSTed envelope. `on_operation` is told the operation's name once known
/// (for the request counters), before any credential check.
pub fn handle(
    config: &SandboxConfig,
    service: Service,
    body: &[u8],
    on_operation: impl FnOnce(&str),
) -> Reply {
    let Ok(text) = std::str::from_utf8(body) else {
        return fault("soapenv:Client", "El missatge no és UTF-8");
    };
    let envelope = match xml::parse(text) {
        Ok(e) => e,
        Err(e) => return fault("soapenv:Client", &e),
    };
    if envelope.ns.as_deref() != Some(SOAP_ENV) || envelope.local != "Envelope" {
        return fault("soapenv:VersionMismatch", "No és un sobre SOAP 1.1");
    }
    let Some(op) = envelope
        .child(SOAP_ENV, "Body")
        .and_then(|b| b.children.first())
    else {
        return fault("soapenv:Client", "Cos SOAP buit");
    };
    let service_ns = match service {
        Service::Gn6 => GN6_NS,
        Service::Persones => PERSONES_NS,
    };
    if op.ns.as_deref() != Some(service_ns) {
        return fault(
            "soapenv:Client",
            &format!(
                "Operació desconeguda: {{{}}}{}",
                op.ns.as_deref().unwrap_or(""),
                op.local
            ),
        );
    }
    on_operation(&op.local);
    if !ws_security_ok(config, &envelope) {
        tracing::warn!("sandbox: {}: WS-Security incorrecte", op.local);
        return fault("soapenv:Client", "Authentication failed");
    }
    tracing::debug!("sandbox: {}", op.local);
    let result = match service {
        Service::Gn6 => gn6(config, op),
        Service::Persones => persones(&config.dir, op),
    };
    match result {
        Ok(Some(body)) => Reply { status: 200, body },
        Ok(None) => fault(
            "soapenv:Client",
            &format!("Operació desconeguda: {}", op.local),
        ),
        Err(e) => {
            tracing::error!("sandbox: error d'estat: {e}");
            fault(
                "soapenv:Server",
                &format!("Error intern del simulador: {e}"),
            )
        }
    }
}

fn ws_security_ok(config: &SandboxConfig, envelope: &Element) -> bool {
    let Some(token) = envelope
        .child(SOAP_ENV, "Header")
        .and_then(|h| h.child(WSSE, "Security"))
        .and_then(|s| s.child(WSSE, "UsernameToken"))
    else {
        return false;
    };
    let user = token.child(WSSE, "Username").map(|e| e.text.as_str());
    let pass = token.child(WSSE, "Password").map(|e| e.text.as_str());
    user == Some(config.username_soa.as_str()) && pass == Some(config.password_soa.as_str())
}

/// A SOAP 1.1 Fault (HTTP 500).
pub fn fault(code: &str, message: &str) -> Reply {
    Reply {
        status: 500,
        body: format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><soapenv:Fault><faultcode>{}</faultcode><faultstring>{}</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#,
            esc(code),
            esc(message)
        ),
    }
}

// ---------------------------------------------------------------- GN6

/// A `return` being built: scalar fields (written in alphabetical order, as Axis2 does
/// for beans) and then the repeated `llistaTiquets` records.
struct Gn6Result {
    type_name: &'static str,
    fields: Vec<(&'static str, Option<String>)>,
    tickets: Vec<String>,
}

impl Gn6Result {
    fn ok(type_name: &'static str) -> Self {
        Gn6Result {
            type_name,
            fields: vec![("codiRetorn", Some("1".into())), ("descripcioError", None)],
            tickets: Vec::new(),
        }
    }

    fn error(type_name: &'static str, code: &str, description: &str) -> Self {
        Gn6Result {
            type_name,
            fields: vec![
                ("codiRetorn", Some(code.into())),
                ("descripcioError", Some(description.into())),
            ],
            tickets: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: Option<String>) -> Self {
        self.fields.push((name, value));
        self
    }

    fn render(mut self, op: &str) -> String {
        self.fields.sort_by_key(|(n, _)| *n);
        let mut inner = String::new();
        for (name, value) in &self.fields {
            data_field(&mut inner, name, value.as_deref());
        }
        for t in &self.tickets {
            inner.push_str(t);
        }
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{SOAP_ENV}"><soapenv:Body><ns:{op}Response xmlns:ns="{GN6_NS}"><ns:return xmlns:ax21="{DATA_NS}" xmlns:xsi="{XSI}" xsi:type="ax21:{}">{inner}</ns:return></ns:{op}Response></soapenv:Body></soapenv:Envelope>"#,
            self.type_name
        )
    }
}

/// One field of the data namespace; `None` is written as `xsi:nil`, as Axis2 does.
fn data_field(out: &mut String, name: &str, value: Option<&str>) {
    match value {
        Some(v) => {
            out.push_str("<ax21:");
            out.push_str(name);
            out.push('>');
            out.push_str(&esc(v));
            out.push_str("</ax21:");
            out.push_str(name);
            out.push('>');
        }
        None => {
            out.push_str("<ax21:");
            out.push_str(name);
            out.push_str(r#" xsi:nil="true"/>"#);
        }
    }
}

fn gn6(config: &SandboxConfig, op: &Element) -> std::io::Result<Option<String>> {
    let name = op.local.as_str();
    let type_name = match name {
        "AltaTiquet" => "ResultatAltaTiquet",
        "ConsultaTiquets" => "ResultatConsultaTiquets",
        "ConsultaTiquetsDades" => "ResultatConsultaTiquetsDades",
        "AnnexarFitxerTiquet" => "ResultatAnnexarFitxerTiquet",
        "ModificarTiquet" => "ResultatModificarTiquet",
        "AfegirComentariTiquet" => "ResultatAfegirComentariTiquet",
        "AfegirSolicitantTiquet" => "ResultatAfegirSolicitantTiquet",
        _ => return Ok(None),
    };
    let f = |n: &str| op.field_text(GN6_NS, n);
    if f("username") != config.username_gn6
        || f("password") != config.password_gn6
        || f("domini") != config.domini
    {
        return Ok(Some(
            Gn6Result::error(type_name, "-1", "Usuari o contrasenya incorrectes").render(name),
        ));
    }
    let dir = config.dir.as_path();
    let result = match name {
        "AltaTiquet" => alta_tiquet(dir, op)?,
        "ConsultaTiquets" => consulta(dir, op, type_name, false)?,
        "ConsultaTiquetsDades" => consulta(dir, op, type_name, true)?,
        "AnnexarFitxerTiquet" => annexar(dir, op)?,
        "ModificarTiquet" => modificar(config, op)?,
        "AfegirComentariTiquet" => comentari(dir, op)?,
        _ => afegir_solicitant(dir, op)?,
    };
    Ok(Some(result.render(name)))
}

/// Fields a request carries besides the credentials and the ticket code.
fn payload(op: &Element) -> impl Iterator<Item = (&str, &str)> {
    op.fields(GN6_NS)
        .filter(|(n, _)| !matches!(*n, "username" | "password" | "domini" | "codiTiquet"))
}

fn unknown_ticket(type_name: &'static str, code: &str) -> Gn6Result {
    Gn6Result::error(type_name, "-4", &format!("El tiquet {code} no existeix"))
}

fn ticket_code(op: &Element) -> (String, Option<u64>) {
    let raw = op.field_text(GN6_NS, "codiTiquet").trim().to_string();
    let code = raw.parse::<u64>().ok();
    (raw, code)
}

fn alta_tiquet(dir: &Path, op: &Element) -> std::io::Result<Gn6Result> {
    const T: &str = "ResultatAltaTiquet";
    let mut ticket = SimTicket {
        created_at: store::now(),
        estat: ESTAT_OBERT.into(),
        ..SimTicket::default()
    };
    for (name, value) in payload(op) {
        if name == "estat" && value.is_empty() {
            continue;
        }
        if let Some(field) = ticket.field_mut(name) {
            *field = value.to_string();
        }
    }
    if ticket.solicitant.trim().is_empty() {
        return Ok(Gn6Result::error(T, "-2", "No s'ha trobat el sol·licitant"));
    }
    if ticket.is_closed() {
        ticket.closed_at = Some(ticket.created_at);
    }
    let code = store::create_ticket(dir, ticket)?;
    Ok(Gn6Result::ok(T).with("codiTiquet", Some(code.to_string())))
}

fn consulta(
    dir: &Path,
    op: &Element,
    type_name: &'static str,
    dades: bool,
) -> std::io::Result<Gn6Result> {
    let f = |n: &str| op.field_text(GN6_NS, n).trim();
    let filter = Filter {
        codi: f("codi"),
        estat: f("estat"),
        creacio: (
            parse_date(f("dataCreacioInici")),
            parse_date(f("dataCreacioFi")),
        ),
        tancament: (
            parse_date(f("dataTancamentInici")),
            parse_date(f("dataTancamentFi")),
        ),
        client: f("client"),
        solicitant: f("solicitant"),
        ip: f("ip"),
    };
    let tickets: Vec<SimTicket> = if !filter.codi.is_empty() {
        // The common case (one ticket by code) reads one file, not the whole folder.
        match filter.codi.parse::<u64>() {
            Ok(code) => store::load_ticket(dir, code)?.into_iter().collect(),
            Err(_) => Vec::new(),
        }
    } else {
        store::all_tickets(dir)?
    };
    let people = if dades {
        store::list_people(dir)?
    } else {
        Vec::new()
    };
    let mut result = Gn6Result::ok(type_name);
    for t in tickets.iter().filter(|t| filter.matches(t)) {
        let mut fields: Vec<(&str, Option<String>)> = vec![
            ("assignatA", Some(t.assignat_a.clone())),
            ("assumpte", Some(t.assumpte.clone())),
            ("client", Some(t.client.clone())),
            ("codiTiquet", Some(t.codi.to_string())),
            ("dataCreacio", Some(format_time(t.created_at))),
            ("dataTancament", t.closed_at.map(format_time)),
            ("descripcio", Some(t.descripcio.clone())),
            ("equipResolutor", Some(t.equip_resolutor.clone())),
            ("estat", Some(t.estat.clone())),
            ("impacte", Some(t.impacte.clone())),
            ("ip", Some(t.ip.clone())),
            ("proces", Some(t.proces.clone())),
            ("producte", Some(t.producte.clone())),
            ("solicitant", Some(t.solicitant.clone())),
            ("urgencia", Some(t.urgencia.clone())),
        ];
        let record_type = if dades {
            let nom = people
                .iter()
                .find(|p| p.cn == t.solicitant)
                .map(|p| p.full_name());
            fields.push((
                "dadesContacteSolicitant",
                Some(t.dades_contacte_solicitant.clone()),
            ));
            fields.push(("emailSolicitant", Some(t.email_solicitant.clone())));
            fields.push(("solicitantNom", nom));
            "TiquetDades"
        } else {
            "Tiquet"
        };
        fields.sort_by_key(|(n, _)| *n);
        let mut rec = format!(r#"<ax21:llistaTiquets xsi:type="ax21:{record_type}">"#);
        for (name, value) in &fields {
            data_field(&mut rec, name, value.as_deref());
        }
        rec.push_str("</ax21:llistaTiquets>");
        result.tickets.push(rec);
    }
    Ok(result)
}

struct Filter<'a> {
    codi: &'a str,
    estat: &'a str,
    creacio: (Option<NaiveDate>, Option<NaiveDate>),
    tancament: (Option<NaiveDate>, Option<NaiveDate>),
    client: &'a str,
    solicitant: &'a str,
    ip: &'a str,
}

impl Filter<'_> {
    fn matches(&self, t: &SimTicket) -> bool {
        let eq = |want: &str, have: &str| want.is_empty() || want == have;
        let estat_ok = match self.estat {
            "" => true,
            "ESTAT_OBERT_PENDENT" => t.estat == ESTAT_OBERT || t.estat == ESTAT_PENDENT,
            e => t.estat == e,
        };
        let in_range = |range: &(Option<NaiveDate>, Option<NaiveDate>), at: Option<i64>| {
            if range.0.is_none() && range.1.is_none() {
                return true;
            }
            let Some(day) = at.and_then(local_date) else {
                return false;
            };
            range.0.is_none_or(|from| day >= from) && range.1.is_none_or(|to| day <= to)
        };
        (self.codi.is_empty() || self.codi == t.codi.to_string())
            && estat_ok
            && in_range(&self.creacio, Some(t.created_at))
            && in_range(&self.tancament, t.closed_at)
            && eq(self.client, &t.client)
            && eq(self.solicitant, &t.solicitant)
            && eq(self.ip, &t.ip)
    }
}

/// `dd-mm-yyyy` (also `d-m-yyyy`), as GN6 filters are written.
fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%d-%m-%Y").ok()
}

fn local_date(ts: i64) -> Option<NaiveDate> {
    Local.timestamp_opt(ts, 0).single().map(|d| d.date_naive())
}

/// Dates in responses: `dd-mm-yyyy HH:MM:SS`, local time (WIRE.md).
pub fn format_time(ts: i64) -> String {
    Local
        .timestamp_opt(ts, 0)
        .single()
        .map(|d| d.format("%d-%m-%Y %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn annexar(dir: &Path, op: &Element) -> std::io::Result<Gn6Result> {
    const T: &str = "ResultatAnnexarFitxerTiquet";
    let (raw, code) = ticket_code(op);
    let Some(code) = code else {
        return Ok(unknown_ticket(T, &raw));
    };
    let name = op.field_text(GN6_NS, "nomFitxer").trim();
    if name.is_empty() {
        return Ok(Gn6Result::error(T, "-6", "Falta el nom del fitxer"));
    }
    let Some(bytes) = decode_base64(op.field_text(GN6_NS, "fitxerBase64")) else {
        return Ok(Gn6Result::error(T, "-6", "El fitxer no és base64 vàlid"));
    };
    // GN6 refuses an empty file; the gateway must not lose the rest for it (issue 19).
    if bytes.is_empty() {
        return Ok(Gn6Result::error(T, "-6", "El fitxer és buit"));
    }
    let user = op.field_text(GN6_NS, "usuari");
    Ok(
        match store::add_attachment(dir, code, user, name, &bytes)? {
            Some(annex) => Gn6Result::ok(T).with("codiAnnex", Some(annex.to_string())),
            None => unknown_ticket(T, &raw).with("codiAnnex", None),
        },
    )
}

/// Base64 as mail clients produce it: possibly wrapped in lines, padding optional.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    // Copying a 13 MB text just to drop line breaks is worth avoiding when there are none.
    if !text.bytes().any(|b| b.is_ascii_whitespace()) {
        return engine.decode(text).ok();
    }
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    engine.decode(compact).ok()
}

fn modificar(config: &SandboxConfig, op: &Element) -> std::io::Result<Gn6Result> {
    const T: &str = "ResultatModificarTiquet";
    let (raw, code) = ticket_code(op);
    let Some(code) = code else {
        return Ok(unknown_ticket(T, &raw));
    };
    let period = config.reopen_period_days.saturating_mul(86_400);
    let changed = store::modify_ticket(&config.dir, code, |t| {
        let now = store::now();
        for (name, value) in payload(op) {
            // Empty = leave unchanged (INTERFACES.md 3.4).
            if value.is_empty() {
                continue;
            }
            if name == "estat" {
                set_estat(t, value, now, period);
            } else if let Some(field) = t.field_mut(name) {
                *field = value.to_string();
            }
        }
    })?;
    Ok(match changed {
        Some(()) => Gn6Result::ok(T),
        None => unknown_ticket(T, &raw),
    })
}

/// Closing stamps the date; reopening a ticket closed longer than the period is
/// silently ignored, as GN6 does (the caller must re-read the ticket to notice).
fn set_estat(t: &mut SimTicket, estat: &str, now: i64, period_secs: i64) {
    if estat == ESTAT_TANCAT {
        if !t.is_closed() {
            t.estat = ESTAT_TANCAT.into();
            t.closed_at = Some(now);
        }
        return;
    }
    if t.is_closed() {
        let closed_at = t.closed_at.unwrap_or(now);
        if now - closed_at > period_secs {
            tracing::info!(
                "sandbox: el tiquet {} es va tancar fa massa temps per reobrir-lo",
                t.codi
            );
            return;
        }
        t.closed_at = None;
    }
    t.estat = estat.into();
}

fn comentari(dir: &Path, op: &Element) -> std::io::Result<Gn6Result> {
    const T: &str = "ResultatAfegirComentariTiquet";
    let (raw, code) = ticket_code(op);
    let Some(code) = code else {
        return Ok(unknown_ticket(T, &raw));
    };
    let f = |n: &str| op.field_text(GN6_NS, n);
    let private = match f("tipusComentari").trim() {
        "COMENT_TIQUET_PRIVAT" => true,
        "COMENT_TIQUET_PUBLIC" | "" => false,
        other => {
            return Ok(Gn6Result::error(
                T,
                "-7",
                &format!("Tipus de comentari desconegut: {other}"),
            ));
        }
    };
    let comment = SimComment {
        at: store::now(),
        author: f("usuari").into(),
        text: f("descripcio").into(),
        private,
        notified: f("esNotificat").trim().eq_ignore_ascii_case("S"),
        destinataris_to: f("destinatarisTo").into(),
        destinataris_cc: f("destinatarisCc").into(),
        destinataris_bcc: f("destinatarisBcc").into(),
    };
    let added = store::modify_ticket(dir, code, |t| {
        if t.is_closed() {
            return false;
        }
        t.comments.push(comment);
        true
    })?;
    Ok(match added {
        Some(true) => Gn6Result::ok(T),
        Some(false) => {
            Gn6Result::error(T, "-5", "No es poden afegir comentaris a un tiquet tancat")
        }
        None => unknown_ticket(T, &raw),
    })
}

fn afegir_solicitant(dir: &Path, op: &Element) -> std::io::Result<Gn6Result> {
    const T: &str = "ResultatAfegirSolicitantTiquet";
    let (raw, code) = ticket_code(op);
    let Some(code) = code else {
        return Ok(unknown_ticket(T, &raw));
    };
    let solicitant = op.field_text(GN6_NS, "solicitant").trim().to_string();
    if solicitant.is_empty() {
        return Ok(Gn6Result::error(T, "-2", "No s'ha trobat el sol·licitant"));
    }
    let found = store::modify_ticket(dir, code, |t| {
        if !t.solicitants_addicionals.contains(&solicitant) {
            t.solicitants_addicionals.push(solicitant);
        }
    })?;
    Ok(match found {
        Some(()) => Gn6Result::ok(T),
        None => unknown_ticket(T, &raw),
    })
}

// ---------------------------------------------------------------- Persones

fn persones(dir: &Path, op: &Element) -> std::io::Result<Option<String>> {
    let name = op.local.as_str();
    let inner = match name {
        "llistaPersones" => {
            let email = op.field_text(PERSONES_NS, "email");
            let mut out = String::from("<llistaPersones>");
            for p in store::list_people(dir)?
                .iter()
                .filter(|p| p.has_email(email))
            {
                out.push_str("<persona>");
                plain_field(&mut out, "cn", &p.cn);
                plain_field(&mut out, "nom", &p.nom);
                plain_field(&mut out, "cognom1", &p.cognom1);
                plain_field(&mut out, "cognom2", &p.cognom2);
                out.push_str("</persona>");
            }
            out.push_str("</llistaPersones>");
            out
        }
        "obtenirDadesPersona" => {
            let cn = op.field_text(PERSONES_NS, "commonName").trim();
            let people = store::list_people(dir)?;
            match people.iter().find(|p| !cn.is_empty() && p.cn == cn) {
                None => "<ok>false</ok>".to_string(),
                Some(p) => {
                    let mut out = String::from("<ok>true</ok>");
                    plain_field(&mut out, "commonName", &p.cn);
                    plain_field(&mut out, "nom", &p.nom);
                    plain_field(&mut out, "cognom1", &p.cognom1);
                    plain_field(&mut out, "cognom2", &p.cognom2);
                    if let Some(e) = &p.email_preferent {
                        plain_field(&mut out, "emailPreferent", e);
                    }
                    out
                }
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><S:Envelope xmlns:S="{SOAP_ENV}"><S:Body><ns2:{name}Response xmlns:ns2="{PERSONES_NS}"><return>{inner}</return></ns2:{name}Response></S:Body></S:Envelope>"#
    )))
}

/// An unqualified field (JAX-WS style).
fn plain_field(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&esc(value));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_tolerates_line_breaks_and_missing_padding() {
        assert_eq!(decode_base64("aGVs\r\nbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert!(decode_base64("@@@").is_none());
    }

    #[test]
    fn reopening_respects_the_period() {
        let mut t = SimTicket {
            estat: ESTAT_TANCAT.into(),
            closed_at: Some(1_000),
            ..SimTicket::default()
        };
        set_estat(&mut t, ESTAT_OBERT, 1_000 + 86_400 * 3, 86_400 * 2);
        assert!(t.is_closed());
        set_estat(&mut t, ESTAT_OBERT, 1_000 + 86_400, 86_400 * 2);
        assert_eq!(t.estat, ESTAT_OBERT);
        assert_eq!(t.closed_at, None);
        set_estat(&mut t, ESTAT_TANCAT, 5_000, 0);
        assert_eq!(t.closed_at, Some(5_000));
    }

    #[test]
    fn results_are_alphabetical_with_nil() {
        let xml = Gn6Result::ok("ResultatAnnexarFitxerTiquet")
            .with("codiAnnex", Some("7".into()))
            .render("AnnexarFitxerTiquet");
        let a = xml.find("codiAnnex").unwrap();
        let r = xml.find("codiRetorn").unwrap();
        let d = xml.find("descripcioError").unwrap();
        assert!(a < r && r < d, "{xml}");
        assert!(xml.contains(r#"<ax21:descripcioError xsi:nil="true"/>"#));
    }
}
