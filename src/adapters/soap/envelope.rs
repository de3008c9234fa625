//! SOAP adapter internals: the SOAP 1.1 envelope with the WS-Security UsernameToken,
//! one typed call over an `HttpTransport`, and the mapping of answers to `PortError`.

use tracing::{debug, trace};

use super::BusCredentials;
use super::xml::{self, SoapElement, SoapOperation, XmlElement, XmlWriter, escape};
use crate::adapters::http::HttpTransport;
use crate::ports::PortError;

pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const PASSWORD_TEXT: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";

/// The request envelope: WS-Security header with the bus account, then the payload.
/// `mustUnderstand` is unqualified, as the suds clients the bus accepted for years sent it.
pub fn request_envelope<R: SoapElement>(bus: &BusCredentials, payload: &R) -> String {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    w.raw(&format!(
        "<soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV_NS}\" xmlns:wsse=\"{WSSE_NS}\">"
    ));
    w.raw("<soapenv:Header><wsse:Security mustUnderstand=\"true\"><wsse:UsernameToken>");
    w.raw(&format!(
        "<wsse:Username>{}</wsse:Username><wsse:Password Type=\"{PASSWORD_TEXT}\">{}</wsse:Password>",
        escape(&bus.username),
        escape(&bus.password)
    ));
    w.raw("</wsse:UsernameToken></wsse:Security></soapenv:Header><soapenv:Body>");
    w.declare(SOAP_ENV_NS, "soapenv");
    payload.write_element(&mut w);
    w.raw("</soapenv:Body></soapenv:Envelope>");
    w.finish()
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
    let envelope = request_envelope(bus, request);
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
    decode::<O::Response>(op.name, response.status, &response.body)
}

/// Maps an HTTP answer to the payload or an error:
/// - 502/503/504, or another 5xx without a SOAP Fault: transient;
/// - a SOAP Fault (any status): `Fault`;
/// - anything unreadable or unexpected: permanent.
pub fn decode<R: SoapElement>(op: &str, status: u16, body: &[u8]) -> Result<R, PortError> {
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
    let payload = body_el
        .children
        .iter()
        .find(|c| c.is(R::NAMESPACE, R::NAME))
        .ok_or_else(|| {
            PortError::Permanent(format!(
                "{op}: la resposta no conté {{{}}}{}",
                R::NAMESPACE,
                R::NAME
            ))
        })?;
    R::from_xml(payload).map_err(|e| PortError::Permanent(format!("{op}: {e}")))
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
    use crate::adapters::soap::generated::gestio_tiquets_v5::{AltaTiquet, AltaTiquetResponse};

    fn bus() -> BusCredentials {
        BusCredentials {
            username: "bus.user".into(),
            password: "s3cr<t".into(),
        }
    }

    #[test]
    fn envelope_has_security_header_and_every_child() {
        let req = AltaTiquet {
            username: "gn6".into(),
            password: "pw".into(),
            domini: "1234".into(),
            assumpte: "Hola & adéu".into(),
            ..AltaTiquet::default()
        };
        let env = request_envelope(&bus(), &req);
        assert!(env.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope"));
        assert!(env.contains("<wsse:Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText\">s3cr&lt;t</wsse:Password>"));
        assert!(env.contains(
            "<m1:AltaTiquet xmlns:m1=\"http://service.psi.upcnet\"><m1:username>gn6</m1:username>"
        ));
        assert!(env.contains("<m1:assumpte>Hola &amp; adéu</m1:assumpte>"));
        assert!(env.contains("<m1:infraestructura></m1:infraestructura></m1:AltaTiquet>"));
        let parsed = xml::parse(env.as_bytes()).unwrap();
        let alta = &parsed.child(SOAP_ENV_NS, "Body").unwrap().children[0];
        assert_eq!(alta.children.len(), AltaTiquet::FIELD_NAMES.len());
        let redacted = redact(&env, &["s3cr<t", "pw"]);
        assert!(!redacted.contains("s3cr"));
        assert!(redacted.contains("<m1:password>***</m1:password>"));
    }

    #[test]
    fn fault_and_status_mapping() {
        let fault = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>Authentication failed</faultstring></s:Fault></s:Body></s:Envelope>"#;
        assert_eq!(
            decode::<AltaTiquetResponse>("AltaTiquet", 500, fault),
            Err(PortError::Fault {
                code: "s:Client".into(),
                message: "Authentication failed".into()
            })
        );
        assert!(
            decode::<AltaTiquetResponse>("AltaTiquet", 503, fault)
                .unwrap_err()
                .is_transient()
        );
        assert!(
            decode::<AltaTiquetResponse>("AltaTiquet", 500, b"")
                .unwrap_err()
                .is_transient()
        );
        assert!(matches!(
            decode::<AltaTiquetResponse>("AltaTiquet", 200, b"<oops"),
            Err(PortError::Permanent(_))
        ));
        assert!(matches!(
            decode::<AltaTiquetResponse>("AltaTiquet", 404, b"not found"),
            Err(PortError::Permanent(_))
        ));
    }
}
