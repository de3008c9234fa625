//! Use case (app): which outcomes are permanent for a mail (issue 12 §2, §7). REJECT
//! and UNKNOWN always are; an ERROR only when it is a fault of our own configuration
//! (wrong credentials of either service, a bad endpoint), since a new delivery would
//! fail the same way. Any other ERROR (a bus Fault, an unreadable answer) is resumed
//! by the next delivery. Pure.

/// An ERROR reason that names a fault of our configuration: wrong credentials,
/// whichever service said it (GN6's codiRetorn -1, a WS-Security Fault of the bus,
/// HTTP 401/403).
pub fn is_configuration_fault(reason: &str) -> bool {
    let r = reason.to_lowercase();
    [
        "credencials gn6 incorrectes",
        "authentication",
        "autenticaci",
        "failedauthentication",
        "invalidsecurity",
        "http 401",
        "http 403",
    ]
    .iter()
    .any(|m| r.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_credentials_of_either_service_are_a_configuration_fault() {
        for reason in [
            "AltaTiquet: AltaTiquet: credencials GN6 incorrectes (codiRetorn -1: x); reviseu username_gn6/password_gn6",
            "directori d'identitat: SOAP Fault soapenv:Client: Authentication failed",
            "ConsultaTiquetsDades: SOAP Fault wsse:FailedAuthentication: The security token could not be authenticated",
            "AltaTiquet: HTTP 401 (Unauthorized)",
        ] {
            assert!(is_configuration_fault(reason), "{reason}");
        }
        for reason in [
            "AltaTiquet: SOAP Fault soapenv:Server: NullPointerException",
            "AltaTiquet: resposta no vàlida: XML mal format",
            "AnnexarFitxerTiquet: HTTP 500",
        ] {
            assert!(!is_configuration_fault(reason), "{reason}");
        }
    }
}
