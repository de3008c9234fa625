//! SOAP adapter internals: the SOAP 1.1 envelope with the WS-Security UsernameToken,
//! one typed call over an `HttpTransport`, and the mapping of answers to `PortError`.

use tracing::{debug, trace};

use xsd_parser_types::quick_xml::{
    DeserializeSync, SliceReader, WithDeserializer, WithSerializer, XmlReader,
};

use super::BusCredentials;
use super::tolerant;
use super::xml::{self, DecodeError, Operation, SoapOperation, XmlElement, escape};
use crate::adapters::http::HttpTransport;
use crate::adapters::telemetry::{CallResult, CallSample};
use crate::ports::PortError;

pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";

/// The request envelope: WS-Security header with the bus account, then the generated
/// request element (which declares its own namespace).
/// `mustUnderstand` is unqualified, as the suds clients the bus accepted for years sent it.
pub fn request_envelope<R: WithSerializer>(
    operation: &Operation,
    bus: &BusCredentials,
    payload: &R,
) -> Result<String, DecodeError> {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV_NS}\" xmlns:wsse=\"{WSSE_NS}\">\
         <soapenv:Header><wsse:Security mustUnderstand=\"true\"><wsse:UsernameToken>\
         <wsse:Username>{}</wsse:Username><wsse:Password Type=\"{PASSWORD_TEXT}\">{}</wsse:Password>\
         </wsse:UsernameToken></wsse:Security></soapenv:Header><soapenv:Body>",
        escape(&bus.username),
        escape(&bus.password)
    )
    .into_bytes();
    let root = (operation.request_namespace, operation.request_element);
    xml::write_element(payload, Some(root), &mut out)?;
    out.extend_from_slice(b"</soapenv:Body></soapenv:Envelope>");
    String::from_utf8(out).map_err(|e| DecodeError(format!("XML no UTF-8: {e}")))
}

/// The body for the trace log: element contents equal to a secret become `***`.
pub fn redact(envelope: &str, secrets: &[&str]) -> String {
    let mut out = envelope.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(&format!(">{}</", escape(s)), ">***</");
    }
    out
}

/// Sends one operation and decodes its response element. `secrets` are redacted from the
/// trace log of the bodies.
pub async fn call<O: SoapOperation, H: HttpTransport>(
    http: &H,
    endpoint: &str,
    bus: &BusCredentials,
    request: &O::Request,
    secrets: &[&str],
) -> Result<O::Response, PortError> {
    let op = O::OPERATION;
    let started = std::time::Instant::now();
    let result = exchange::<O, H>(http, endpoint, bus, request, secrets).await;
    if let Some(recorder) = http.recorder() {
        recorder.record(CallSample {
            service: service_label(&op),
            operation: op.name,
            result: CallResult::of(&result),
            latency: started.elapsed(),
        });
    }
    result
}

/// The `service` label of an operation's metrics, by the namespace of its request.
pub fn service_label(op: &Operation) -> &'static str {
    if op.request_namespace.contains("identitatdigital") {
        "persones"
    } else if op.request_namespace.contains("psi.upcnet") {
        "gn6"
    } else {
        "soap"
    }
}

async fn exchange<O: SoapOperation, H: HttpTransport>(
    http: &H,
    endpoint: &str,
    bus: &BusCredentials,
    request: &O::Request,
    secrets: &[&str],
) -> Result<O::Response, PortError> {
    let op = O::OPERATION;
    let envelope = request_envelope(&op, bus, request)
        .map_err(|e| PortError::Permanent(format!("{}: petició no serialitzable: {e}", op.name)))?;
    if tracing::enabled!(tracing::Level::TRACE) {
        let mut all = secrets.to_vec();
        all.push(&bus.password);
        trace!(
            operacio = op.name,
            "petició SOAP: {}",
            redact(&envelope, &all)
        );
    }
    debug!(operacio = op.name, endpoint, "crida SOAP");
    let response = http
        .post(endpoint, op.soap_action, envelope.into_bytes())
        .await
        .map_err(|e| {
            let message = format!("{}: {}", op.name, e.message);
            if e.transient {
                PortError::Transient(message)
            } else {
                PortError::Permanent(message)
            }
        })?;
    if tracing::enabled!(tracing::Level::TRACE) {
        trace!(
            operacio = op.name,
            status = response.status,
            "resposta SOAP: {}",
            redact(&String::from_utf8_lossy(&response.body), secrets)
        );
    }
    decode::<O::Response>(&op, response.status, &response.body)
}

/// Maps an HTTP answer to the payload or an error:
/// - 502/503/504, or another 5xx without a SOAP Fault: transient;
/// - a SOAP Fault (any status): `Fault`;
/// - anything unreadable or unexpected: permanent.
pub fn decode<R: WithDeserializer>(
    operation: &Operation,
    status: u16,
    body: &[u8],
) -> Result<R, PortError> {
    let op = operation.name;
    if matches!(status, 502..=504) {
        return Err(PortError::Transient(format!(
            "{op}: el servidor ha respost HTTP {status}"
        )));
    }
    let envelope = match xml::parse(body) {
        Ok(e) => e,
        Err(e) if status >= 500 => {
            return Err(PortError::Transient(format!(
                "{op}: HTTP {status} sense SOAP Fault ({e})"
            )));
        }
        Err(e) if status != 200 => {
            return Err(PortError::Permanent(format!("{op}: HTTP {status} ({e})")));
        }
        Err(e) => {
            return Err(PortError::Permanent(format!(
                "{op}: resposta il·legible: {e}"
            )));
        }
    };
    let body_el = envelope
        .is(SOAP_ENV_NS, "Envelope")
        .then(|| envelope.child(SOAP_ENV_NS, "Body"))
        .flatten();
    let Some(body_el) = body_el else {
        let message = format!("{op}: HTTP {status}, la resposta no és un sobre SOAP 1.1");
        return Err(if status >= 500 {
            PortError::Transient(message)
        } else {
            PortError::Permanent(message)
        });
    };
    if let Some(fault) = body_el.child(SOAP_ENV_NS, "Fault") {
        return Err(fault_error(fault));
    }
    if status >= 500 {
        return Err(PortError::Transient(format!(
            "{op}: HTTP {status} sense SOAP Fault"
        )));
    }
    if status != 200 {
        return Err(PortError::Permanent(format!("{op}: HTTP {status}")));
    }
    // The generated deserializer does not check the root element's name: do it here.
    let (ns, name) = (operation.response_namespace, operation.response_element);
    if !body_el.children.first().is_some_and(|c| c.is(ns, name)) {
        return Err(PortError::Permanent(format!(
            "{op}: la resposta no conté {{{ns}}}{name}"
        )));
    }
    // The WSDLs are reconstructed: reorder and prune the payload by the schema first, so
    // that the strict generated deserializer accepts any field order and unknown fields.
    let mut inherited = envelope.xmlns.clone();
    for (k, v) in &body_el.xmlns {
        inherited.retain(|(ik, _)| ik != k);
        inherited.push((k.clone(), v.clone()));
    }
    let normalised = tolerant::normalise(operation.schema, &body_el.children[0], &inherited);
    for path in &normalised.ignored {
        debug!(operacio = op, "Element desconegut ignorat: {path}");
    }
    // The rewritten payload is a standalone element (the inherited declarations are on
    // its root): the generated deserializer reads it as it is.
    R::deserialize(&mut SliceReader::new(&normalised.xml).with_error_info())
        .map_err(|e| PortError::Permanent(format!("{op}: resposta no vàlida: {e}")))
}

/// SOAP 1.1 Fault: `faultcode` and `faultstring` are unqualified children.
fn fault_error(fault: &XmlElement) -> PortError {
    let text = |name: &str| {
        fault
            .children
            .iter()
            .find(|c| c.name == name && (c.ns.is_empty() || c.ns == SOAP_ENV_NS))
            .map(|c| c.text.trim().to_string())
            .unwrap_or_default()
    };
    PortError::Fault {
        code: text("faultcode"),
        message: text("faultstring"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::soap::generated::gestio_tiquets_v5::{
        AltaTiquet, AltaTiquetResponse, ops,
    };
    use crate::adapters::soap::xml::value;

    fn bus() -> BusCredentials {
        BusCredentials {
            username: "bus.user".into(),
            password: "s3cr<t".into(),
        }
    }

    #[test]
    fn envelope_has_security_header_and_the_request_element() {
        let req = AltaTiquet {
            username: value("gn6"),
            password: value("pw"),
            domini: value("1234"),
            assumpte: value("Hola & adéu\u{1}\r\n"),
            infraestructura: value(""),
            ..AltaTiquet::default()
        };
        let env = request_envelope(&ops::ALTA_TIQUET, &bus(), &req).unwrap();
        assert!(env.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope"));
        assert!(env.contains("<wsse:Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText\">s3cr&lt;t</wsse:Password>"));
        assert!(env.contains("Hola &amp; adéu&#13;\n<"), "{env}");
        let parsed = xml::parse(env.as_bytes()).unwrap();
        let body = parsed.child(SOAP_ENV_NS, "Body").unwrap();
        assert_eq!(body.children.len(), 1);
        let alta = &body.children[0];
        assert!(alta.is("http://service.psi.upcnet", "AltaTiquet"), "{env}");
        let names: Vec<&str> = alta.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "username",
                "password",
                "domini",
                "assumpte",
                "infraestructura"
            ]
        );
        assert!(
            alta.children
                .iter()
                .all(|c| c.ns == "http://service.psi.upcnet" && !c.is_nil())
        );
        assert_eq!(alta.children[3].text, "Hola & adéu\r\n");
        assert_eq!(alta.children[4].text, "");
        let redacted = redact(&env, &["s3cr<t", "pw"]);
        assert!(!redacted.contains("s3cr"));
        assert!(redacted.contains("password>***</"), "{redacted}");
    }

    #[test]
    fn fault_and_status_mapping() {
        let fault = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>Authentication failed</faultstring></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(
            decode::<AltaTiquetResponse>(&ops::ALTA_TIQUET, 500, fault),
            Err(PortError::Fault {
                code: "s:Client".into(),
                message: "Authentication failed".into()
            })
        );
        assert!(
            decode::<AltaTiquetResponse>(&ops::ALTA_TIQUET, 503, fault)
                .unwrap_err()
                .is_transient()
        );
        assert!(
            decode::<AltaTiquetResponse>(&ops::ALTA_TIQUET, 500, b"")
                .unwrap_err()
                .is_transient()
        );
        assert!(matches!(
            decode::<AltaTiquetResponse>(&ops::ALTA_TIQUET, 200, b"<oops"),
            Err(PortError::Permanent(_))
        ));
        assert!(matches!(
            decode::<AltaTiquetResponse>(&ops::ALTA_TIQUET, 404, b"not found"),
            Err(PortError::Permanent(_))
        ));
    }
}
