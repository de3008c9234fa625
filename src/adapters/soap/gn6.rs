//! SOAP adapter: `TicketSystem` over GN6 GestioTiquets v5 (+ v6 AfegirSolicitantTiquet),
//! using the bindings generated from `wsdl/GestioTiquetsv5.wsdl`.

use base64::Engine as _;
use tracing::info;

use super::envelope::call;
use super::generated::gestio_tiquets_v5::{self as g, ops};
use super::xml::SoapOperation;
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

/// Checks `codiRetorn` of a GN6 result; the result itself must be there.
fn check<T>(
    op: &str,
    result: Option<T>,
    codi: impl Fn(&T) -> (&str, &str),
) -> Result<T, PortError> {
    let result =
        result.ok_or_else(|| PortError::Permanent(format!("{op}: resposta sense 'return'")))?;
    let (code, description) = codi(&result);
    if code.trim() != CODI_OK {
        return Err(PortError::Service {
            code: code.trim().to_string(),
            description: description.to_string(),
        });
    }
    Ok(result)
}

fn ticket_info(t: &g::TiquetDades) -> TicketInfo {
    TicketInfo {
        codi_tiquet: t.codi_tiquet.clone(),
        estat: t.estat.clone(),
        solicitant: t.solicitant.clone(),
        email_solicitant: t.email_solicitant.clone(),
        assumpte: t.assumpte.clone(),
        descripcio: t.descripcio.clone(),
        equip_resolutor: t.equip_resolutor.clone(),
        urgencia: t.urgencia.clone(),
        data_creacio: t.data_creacio.clone(),
        data_tancament: t.data_tancament.clone(),
        fields: t
            .scalar_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

impl<H: HttpTransport> TicketSystem for SoapTicketSystem<H> {
    async fn query_ticket(&self, codi_tiquet: &str) -> Result<Option<TicketInfo>, PortError> {
        let request = g::ConsultaTiquetsDades {
            username: self.gn6.username.clone(),
            password: self.gn6.password.clone(),
            domini: self.gn6.domini.clone(),
            codi: codi_tiquet.to_string(),
            ..Default::default()
        };
        let response = self.call::<ops::ConsultaTiquetsDades>(&request).await?;
        let result = check("ConsultaTiquetsDades", response.return_, |r| {
            (&r.codi_retorn, &r.descripcio_error)
        })?;
        let found = result
            .llista_tiquets
            .iter()
            .find(|t| t.codi_tiquet.trim() == codi_tiquet.trim())
            .or_else(|| result.llista_tiquets.first());
        Ok(found.map(ticket_info))
    }

    async fn create_ticket(&self, t: &NewTicket) -> Result<String, PortError> {
        let request = g::AltaTiquet {
            username: self.gn6.username.clone(),
            password: self.gn6.password.clone(),
            domini: self.gn6.domini.clone(),
            solicitant: t.solicitant.clone(),
            email_solicitant: t.email_solicitant.clone(),
            client: t.client.clone(),
            assumpte: t.assumpte.clone(),
            descripcio: t.descripcio.clone(),
            equip_resolutor: t.equip_resolutor.clone(),
            assignat_a: t.assignat_a.clone(),
            producte: t.producte.clone(),
            subservei: t.subservei.clone(),
            urgencia: t.urgencia.clone(),
            impacte: t.impacte.clone(),
            proces: t.proces.clone(),
            proces_origen: t.proces_origen.clone(),
            estat: t.estat.clone(),
            ip: t.ip.clone(),
            enviar_missatge_creacio: t.enviar_missatge_creacio.clone(),
            enviar_missatge_tancament: t.enviar_missatge_tancament.clone(),
            imputacio_automatica: t.imputacio_automatica.clone(),
            infraestructura: t.infraestructura.clone(),
        };
        let response = self.call::<ops::AltaTiquet>(&request).await?;
        let result = check("AltaTiquet", response.return_, |r| {
            (&r.codi_retorn, &r.descripcio_error)
        })?;
        let codi = result.codi_tiquet.trim().to_string();
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
            username: self.gn6.username.clone(),
            password: self.gn6.password.clone(),
            domini: self.gn6.domini.clone(),
            codi_tiquet: c.codi_tiquet.clone(),
            equip_resolutor: c.equip_resolutor.clone(),
            assignat_a: c.assignat_a.clone(),
            proces: c.proces.clone(),
            estat: c.estat.clone(),
            data_caducitat: c.data_caducitat.clone(),
            codi_tancament: c.codi_tancament.clone(),
            producte: c.producte.clone(),
            subservei: c.subservei.clone(),
            tipus: c.tipus.clone(),
            data_resol: c.data_resol.clone(),
            solicitant: c.solicitant.clone(),
            client: c.client.clone(),
            telefon_solicitant: c.telefon_solicitant.clone(),
            email_solicitant: c.email_solicitant.clone(),
            dades_contacte_solicitant: c.dades_contacte_solicitant.clone(),
            num_inventari: c.num_inventari.clone(),
            num_elements: c.num_elements.clone(),
            ip: c.ip.clone(),
            assumpte: c.assumpte.clone(),
            descripcio: c.descripcio.clone(),
            origen: c.origen.clone(),
            urgencia: c.urgencia.clone(),
            impacte: c.impacte.clone(),
        };
        let response = self.call::<ops::ModificarTiquet>(&request).await?;
        check("ModificarTiquet", response.return_, |r| {
            (&r.codi_retorn, &r.descripcio_error)
        })?;
        Ok(())
    }

    async fn add_comment(&self, c: &NewComment) -> Result<(), PortError> {
        let request = g::AfegirComentariTiquet {
            username: self.gn6.username.clone(),
            password: self.gn6.password.clone(),
            domini: self.gn6.domini.clone(),
            codi_tiquet: c.codi_tiquet.clone(),
            usuari: c.usuari.clone(),
            descripcio: c.descripcio.clone(),
            tipus_comentari: c.tipus.wire().to_string(),
            es_notificat: if c.notificar { "S" } else { "N" }.to_string(),
            ..Default::default()
        };
        let response = self.call::<ops::AfegirComentariTiquet>(&request).await?;
        check("AfegirComentariTiquet", response.return_, |r| {
            (&r.codi_retorn, &r.descripcio_error)
        })?;
        Ok(())
    }

    async fn attach_file(&self, a: &NewAttachment<'_>) -> Result<String, PortError> {
        let request = g::AnnexarFitxerTiquet {
            username: self.gn6.username.clone(),
            password: self.gn6.password.clone(),
            domini: self.gn6.domini.clone(),
            codi_tiquet: a.codi_tiquet.to_string(),
            usuari: a.usuari.to_string(),
            nom_fitxer: a.nom_fitxer.to_string(),
            // One line: the v2 WSDL types it xs:string, not base64Binary.
            fitxer_base64: base64::engine::general_purpose::STANDARD.encode(a.content),
        };
        let response = self.call::<ops::AnnexarFitxerTiquet>(&request).await?;
        let result = check("AnnexarFitxerTiquet", response.return_, |r| {
            (&r.codi_retorn, &r.descripcio_error)
        })?;
        Ok(result.codi_annex.trim().to_string())
    }

    async fn add_requester(&self, codi_tiquet: &str, solicitant: &str) -> Result<(), PortError> {
        let request = g::AfegirSolicitantTiquet {
            username: self.gn6.username.clone(),
            password: self.gn6.password.clone(),
            domini: self.gn6.domini.clone(),
            codi_tiquet: codi_tiquet.to_string(),
            solicitant: solicitant.to_string(),
        };
        let response = self.call::<ops::AfegirSolicitantTiquet>(&request).await?;
        check("AfegirSolicitantTiquet", response.return_, |r| {
            (&r.codi_retorn, &r.descripcio_error)
        })?;
        Ok(())
    }
}
