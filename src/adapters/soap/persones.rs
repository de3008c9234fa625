//! SOAP adapter: `IdentityDirectory` over GestioIdentitat Personesv6, using the xsd-parser
//! bindings generated from `wsdl/Personesv6.wsdl`.

use super::BusCredentials;
use super::envelope::call;
use super::generated::persones_v6::{self as p, ops};
use crate::adapters::http::HttpTransport;
use crate::domain::identity::Person;
use crate::ports::{IdentityDirectory, PortError};

/// `IdentityDirectory` over Personesv6.
#[derive(Debug, Clone)]
pub struct SoapIdentityDirectory<H> {
    http: H,
    endpoint: String,
    bus: BusCredentials,
}

impl<H: HttpTransport> SoapIdentityDirectory<H> {
    pub fn new(http: H, endpoint: String, bus: BusCredentials) -> Self {
        SoapIdentityDirectory {
            http,
            endpoint,
            bus,
        }
    }

    /// The transport (shared counters: requests, connections).
    pub fn transport(&self) -> &H {
        &self.http
    }
}

impl<H: HttpTransport> IdentityDirectory for SoapIdentityDirectory<H> {
    async fn person(&self, cn: &str) -> Result<Option<Person>, PortError> {
        let request = p::ObtenirDadesPersona {
            common_name: Some(cn.to_string()),
        };
        let response = call::<ops::ObtenirDadesPersona, H>(
            &self.http,
            &self.endpoint,
            &self.bus,
            &request,
            &[],
        )
        .await?;
        let Some(data) = response.return_ else {
            return Ok(None);
        };
        if data.ok != Some(true) {
            return Ok(None);
        }
        let email = data.email_preferent.as_deref().unwrap_or_default().trim();
        let common_name = data.common_name.as_deref().unwrap_or_default().trim();
        Ok(Some(Person {
            cn: if common_name.is_empty() {
                cn.to_string()
            } else {
                common_name.to_string()
            },
            email_preferent: (!email.is_empty()).then(|| email.to_string()),
        }))
    }

    async fn persons_by_email(&self, email: &str) -> Result<Vec<String>, PortError> {
        let request = p::LlistaPersones {
            email: Some(email.to_string()),
        };
        let response =
            call::<ops::LlistaPersones, H>(&self.http, &self.endpoint, &self.bus, &request, &[])
                .await?;
        Ok(response
            .return_
            .and_then(|r| r.llista_persones)
            .map(|l| {
                l.persona
                    .into_iter()
                    .filter_map(|p| p.cn)
                    .map(|cn| cn.trim().to_string())
                    .filter(|cn| !cn.is_empty())
                    .collect()
            })
            .unwrap_or_default())
    }
}
