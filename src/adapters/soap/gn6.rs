//! SOAP adapter: `TicketSystem` over GN6 GestioTiquets v5 (+ v6 AfegirSolicitantTiquet),
//! using the xsd-parser bindings generated from `wsdl/GestioTiquetsv5.wsdl`.
//!
//! Requests list every child of their element, unused ones as `value("")`: GN6 expects
//! every element, empty when unused (an empty ModificarTiquet field means "leave
//! unchanged"). No `..Default::default()` on purpose: a child added to the WSDL is a
//! compile error here, never a silently omitted element.

use base64::Engine as _;
use tracing::info;

use super::envelope::call;
use super::generated::gestio_tiquets_v5::{self as g, ops};
use super::xml::{SoapOperation, present, scalar_fields, text, value};
use super::{BusCredentials, Gn6Credentials};
use crate::adapters::http::HttpTransport;
use crate::domain::ticket::{NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo};
use crate::ports::{PortError, TicketSystem};

/// GN6's success value of `codiRetorn`.
const CODI_OK: &str = "1";

/// `TicketSystem` over GN6 GestioTiquets v5 (+ v6 AfegirSolicitantTiquet).
#[derive(Debug, Clone)]
pub struct SoapTicketSystem<H> {
    http: H,
    endpoint: String,
    bus: BusCredentials,
    gn6: Gn6Credentials,
}

impl<H: HttpTransport> SoapTicketSystem<H> {
    pub fn new(http: H, endpoint: String, bus: BusCredentials, gn6: Gn6Credentials) -> Self {
        SoapTicketSystem {
            http,
            endpoint,
            bus,
            gn6,
        }
    }

    /// The transport (shared counters: requests, connections).
    pub fn transport(&self) -> &H {
        &self.http
    }

    async fn call<O: SoapOperation>(&self, request: &O::Request) -> Result<O::Response, PortError> {
        call::<O, H>(
            &self.http,
            &self.endpoint,
            &self.bus,
            request,
            &[&self.gn6.password],
        )
        .await
    }
}

/// Checks `codiRetorn` of a GN6 result; the result itself must be there (missing and
/// `xsi:nil` alike are an error).
/// GN6's `codiRetorn` for a wrong `username`/`password`/`domini`.
const CODI_BAD_CREDENTIALS: &str = "-1";

fn check<T>(
    op: &str,
    result: Option<T>,
    codi: impl Fn(&T) -> (String, String),
) -> Result<T, PortError> {
    let result =
        result.ok_or_else(|| PortError::Permanent(format!("{op}: resposta sense 'return'")))?;
    let (code, description) = codi(&result);
    // Our GN6 credentials are wrong: a fault of our configuration, the same status
    // (ERROR) as wrong bus credentials (a WS-Security Fault), not a refusal of the mail.
    if code.trim() == CODI_BAD_CREDENTIALS {
        return Err(PortError::Permanent(format!(
            "{op}: credencials GN6 incorrectes (codiRetorn {CODI_BAD_CREDENTIALS}: {description}); reviseu username_gn6/password_gn6"
        )));
    }
    if code.trim() != CODI_OK {
        return Err(PortError::Service {
            code: code.trim().to_string(),
            description,
        });
    }
    Ok(result)
}

fn ticket_info(t: &g::TiquetDadesType) -> TicketInfo {
    TicketInfo {
        codi_tiquet: text(&t.codi_tiquet),
        estat: text(&t.estat),
        solicitant: text(&t.solicitant),
        email_solicitant: text(&t.email_solicitant),
        assumpte: text(&t.assumpte),
        descripcio: text(&t.descripcio),
        equip_resolutor: text(&t.equip_resolutor),
        urgencia: text(&t.urgencia),
        data_creacio: text(&t.data_creacio),
        data_tancament: text(&t.data_tancament),
        fields: scalar_fields(t),
    }
}

impl<H: HttpTransport> TicketSystem for SoapTicketSystem<H> {
    async fn query_ticket(&self, codi_tiquet: &str) -> Result<Option<TicketInfo>, PortError> {
        let request = g::ConsultaTiquetsDades {
            username: value(&self.gn6.username),
            password: value(&self.gn6.password),
            domini: value(&self.gn6.domini),
            codi: value(codi_tiquet),
            estat: value(""),
            data_creacio_inici: value(""),
            data_creacio_fi: value(""),
            data_tancament_inici: value(""),
            data_tancament_fi: value(""),
            client: value(""),
            solicitant: value(""),
            ip: value(""),
        };
        let response = self.call::<ops::ConsultaTiquetsDades>(&request).await?;
        let result = check("ConsultaTiquetsDades", present(response.return_), |r| {
            (text(&r.codi_retorn), text(&r.descripcio_error))
        })?;
        // A nil list entry is no ticket.
        let tickets: Vec<&g::TiquetDadesType> = result
            .llista_tiquets
            .iter()
            .filter_map(|t| t.0.as_ref())
            .collect();
        let found = tickets
            .iter()
            .find(|t| text(&t.codi_tiquet).trim() == codi_tiquet.trim())
            .or_else(|| tickets.first());
        Ok(found.map(|t| ticket_info(t)))
    }

    async fn find_tickets(
        &self,
        solicitant: &str,
        created_from: &str,
    ) -> Result<Vec<TicketInfo>, PortError> {
        let request = g::ConsultaTiquetsDades {
            username: value(&self.gn6.username),
            password: value(&self.gn6.password),
            domini: value(&self.gn6.domini),
            codi: value(""),
            estat: value(""),
            data_creacio_inici: value(created_from),
            data_creacio_fi: value(""),
            data_tancament_inici: value(""),
            data_tancament_fi: value(""),
            client: value(""),
            solicitant: value(solicitant),
            ip: value(""),
        };
        let response = self.call::<ops::ConsultaTiquetsDades>(&request).await?;
        let result = check("ConsultaTiquetsDades", present(response.return_), |r| {
            (text(&r.codi_retorn), text(&r.descripcio_error))
        })?;
        Ok(result
            .llista_tiquets
            .iter()
            .filter_map(|t| t.0.as_ref())
            .map(ticket_info)
            .collect())
    }

    async fn create_ticket(&self, t: &NewTicket) -> Result<String, PortError> {
        let request = g::AltaTiquet {
            username: value(&self.gn6.username),
            password: value(&self.gn6.password),
            domini: value(&self.gn6.domini),
            solicitant: value(&t.solicitant),
            email_solicitant: value(&t.email_solicitant),
            client: value(&t.client),
            assumpte: value(&t.assumpte),
            descripcio: value(&t.descripcio),
            equip_resolutor: value(&t.equip_resolutor),
            assignat_a: value(&t.assignat_a),
            producte: value(&t.producte),
            subservei: value(&t.subservei),
            urgencia: value(&t.urgencia),
            impacte: value(&t.impacte),
            proces: value(&t.proces),
            proces_origen: value(&t.proces_origen),
            estat: value(&t.estat),
            ip: value(&t.ip),
            enviar_missatge_creacio: value(&t.enviar_missatge_creacio),
            enviar_missatge_tancament: value(&t.enviar_missatge_tancament),
            imputacio_automatica: value(&t.imputacio_automatica),
            infraestructura: value(&t.infraestructura),
        };
        let response = self.call::<ops::AltaTiquet>(&request).await?;
        let result = check("AltaTiquet", present(response.return_), |r| {
            (text(&r.codi_retorn), text(&r.descripcio_error))
        })?;
        let codi = text(&result.codi_tiquet).trim().to_string();
        if codi.is_empty() {
            return Err(PortError::Permanent(
                "AltaTiquet: resposta correcta sense codiTiquet".into(),
            ));
        }
        info!(codi_tiquet = %codi, "tiquet creat");
        Ok(codi)
    }

    async fn modify_ticket(&self, c: &TicketChanges) -> Result<(), PortError> {
        let request = g::ModificarTiquet {
            username: value(&self.gn6.username),
            password: value(&self.gn6.password),
            domini: value(&self.gn6.domini),
            codi_tiquet: value(&c.codi_tiquet),
            equip_resolutor: value(&c.equip_resolutor),
            assignat_a: value(&c.assignat_a),
            proces: value(&c.proces),
            estat: value(&c.estat),
            data_caducitat: value(&c.data_caducitat),
            codi_tancament: value(&c.codi_tancament),
            producte: value(&c.producte),
            subservei: value(&c.subservei),
            tipus: value(&c.tipus),
            data_resol: value(&c.data_resol),
            solicitant: value(&c.solicitant),
            client: value(&c.client),
            telefon_solicitant: value(&c.telefon_solicitant),
            email_solicitant: value(&c.email_solicitant),
            dades_contacte_solicitant: value(&c.dades_contacte_solicitant),
            num_inventari: value(&c.num_inventari),
            num_elements: value(&c.num_elements),
            ip: value(&c.ip),
            assumpte: value(&c.assumpte),
            descripcio: value(&c.descripcio),
            origen: value(&c.origen),
            urgencia: value(&c.urgencia),
            impacte: value(&c.impacte),
        };
        let response = self.call::<ops::ModificarTiquet>(&request).await?;
        check("ModificarTiquet", present(response.return_), |r| {
            (text(&r.codi_retorn), text(&r.descripcio_error))
        })?;
        Ok(())
    }

    async fn add_comment(&self, c: &NewComment) -> Result<(), PortError> {
        let request = g::AfegirComentariTiquet {
            username: value(&self.gn6.username),
            password: value(&self.gn6.password),
            domini: value(&self.gn6.domini),
            codi_tiquet: value(&c.codi_tiquet),
            usuari: value(&c.usuari),
            descripcio: value(&c.descripcio),
            tipus_comentari: value(c.tipus.wire()),
            es_notificat: value(if c.notificar { "S" } else { "N" }),
            destinataris_to: value(""),
            destinataris_cc: value(""),
            destinataris_bcc: value(""),
        };
        let response = self.call::<ops::AfegirComentariTiquet>(&request).await?;
        check("AfegirComentariTiquet", present(response.return_), |r| {
            (text(&r.codi_retorn), text(&r.descripcio_error))
        })?;
        Ok(())
    }

    async fn attach_file(&self, a: &NewAttachment<'_>) -> Result<String, PortError> {
        let request = g::AnnexarFitxerTiquet {
            username: value(&self.gn6.username),
            password: value(&self.gn6.password),
            domini: value(&self.gn6.domini),
            codi_tiquet: value(a.codi_tiquet),
            usuari: value(a.usuari),
            nom_fitxer: value(a.nom_fitxer),
            // One line: the v2 WSDL types it xs:string, not base64Binary.
            fitxer_base_64: value(&base64::engine::general_purpose::STANDARD.encode(a.content)),
        };
        let response = self.call::<ops::AnnexarFitxerTiquet>(&request).await?;
        let result = check("AnnexarFitxerTiquet", present(response.return_), |r| {
            (text(&r.codi_retorn), text(&r.descripcio_error))
        })?;
        Ok(text(&result.codi_annex).trim().to_string())
    }

    async fn add_requester(&self, codi_tiquet: &str, solicitant: &str) -> Result<(), PortError> {
        let request = g::AfegirSolicitantTiquet {
            username: value(&self.gn6.username),
            password: value(&self.gn6.password),
            domini: value(&self.gn6.domini),
            codi_tiquet: value(codi_tiquet),
            solicitant: value(solicitant),
        };
        let response = self.call::<ops::AfegirSolicitantTiquet>(&request).await?;
        check("AfegirSolicitantTiquet", present(response.return_), |r| {
            (text(&r.codi_retorn), text(&r.descripcio_error))
        })?;
        Ok(())
    }
}
