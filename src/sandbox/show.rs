//! Sandbox adapter, inspection side: plain-text views of the simulator's state for the
//! `mailtoticket sandbox tickets / show-ticket / people` commands. Field labels are GN6's
//! wire names, so what an admin reads here is what the SOAP messages carry.

use std::fmt::Write as _;

use super::FILE_PATH;
use super::soap::format_time;
use super::store::{SimPerson, SimTicket, TicketSummary};

/// One line per ticket: code, state, comments/attachments, requester, subject.
pub fn format_ticket_list(tickets: &[TicketSummary]) -> String {
    if tickets.is_empty() {
        return "(no tickets)\n".into();
    }
    let mut out = String::new();
    for t in tickets {
        let _ = writeln!(
            out,
            "{:>6}  {:<20}  {}  {:>2} comments  {:>2} attachments  {} <{}>  {}",
            t.codi,
            t.estat,
            format_time(t.created_at),
            t.comments,
            t.attachments,
            t.solicitant,
            t.email_solicitant,
            t.assumpte
        );
    }
    out
}

/// Every non-empty field, then additional requesters, comments and attachments.
pub fn format_ticket(t: &SimTicket) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "codiTiquet: {}", t.codi);
    let _ = writeln!(out, "dataCreacio: {}", format_time(t.created_at));
    if let Some(c) = t.closed_at {
        let _ = writeln!(out, "dataTancament: {}", format_time(c));
    }
    let fields: [(&str, &str); 28] = [
        ("estat", &t.estat),
        ("solicitant", &t.solicitant),
        ("emailSolicitant", &t.email_solicitant),
        ("client", &t.client),
        ("assumpte", &t.assumpte),
        ("equipResolutor", &t.equip_resolutor),
        ("assignatA", &t.assignat_a),
        ("producte", &t.producte),
        ("subservei", &t.subservei),
        ("urgencia", &t.urgencia),
        ("impacte", &t.impacte),
        ("proces", &t.proces),
        ("procesOrigen", &t.proces_origen),
        ("ip", &t.ip),
        ("enviarMissatgeCreacio", &t.enviar_missatge_creacio),
        ("enviarMissatgeTancament", &t.enviar_missatge_tancament),
        ("imputacioAutomatica", &t.imputacio_automatica),
        ("infraestructura", &t.infraestructura),
        ("dataCaducitat", &t.data_caducitat),
        ("codiTancament", &t.codi_tancament),
        ("tipus", &t.tipus),
        ("dataResol", &t.data_resol),
        ("telefonSolicitant", &t.telefon_solicitant),
        ("dadesContacteSolicitant", &t.dades_contacte_solicitant),
        ("numInventari", &t.num_inventari),
        ("numElements", &t.num_elements),
        ("origen", &t.origen),
        ("descripcio", &t.descripcio),
    ];
    for (name, value) in fields {
        if !value.is_empty() {
            let _ = writeln!(out, "{name}: {}", indent(value));
        }
    }
    if !t.solicitants_addicionals.is_empty() {
        let _ = writeln!(
            out,
            "solicitantsAddicionals: {}",
            t.solicitants_addicionals.join(", ")
        );
    }
    for (i, c) in t.comments.iter().enumerate() {
        let _ = writeln!(
            out,
            "comentari {}: {} by {}, {}, {}",
            i + 1,
            format_time(c.at),
            c.author,
            if c.private { "private" } else { "public" },
            if c.notified {
                "notified"
            } else {
                "not notified"
            }
        );
        let _ = writeln!(out, "  {}", indent(&c.text));
    }
    for a in &t.attachments {
        let _ = writeln!(
            out,
            "annex {}: {} ({} bytes, by {}) {FILE_PATH}?fileId={}",
            a.codi_annex, a.name, a.size, a.user, a.codi_annex
        );
    }
    out
}

/// One line per person: cn, name, preferred address first.
pub fn format_people(people: &[SimPerson]) -> String {
    let mut out = String::new();
    for p in people {
        let others: Vec<&str> = p
            .emails
            .iter()
            .map(String::as_str)
            .filter(|e| Some(*e) != p.email_preferent.as_deref())
            .collect();
        let _ = writeln!(
            out,
            "{}  ({})  {}{}",
            p.cn,
            p.full_name(),
            p.email_preferent.as_deref().unwrap_or("-"),
            if others.is_empty() {
                String::new()
            } else {
                format!("  also: {}", others.join(", "))
            }
        );
    }
    out
}

/// Continuation lines of a multi-line value, indented under their label.
fn indent(s: &str) -> String {
    s.trim_end().replace('\n', "\n  ")
}

#[cfg(test)]
mod tests {
    use super::super::store::{SimAttachment, SimComment};
    use super::*;

    #[test]
    fn ticket_text_lists_fields_comments_and_attachments() {
        let t = SimTicket {
            codi: 7,
            estat: "TIQUET_STATUS_OBERT".into(),
            assumpte: "Hola".into(),
            descripcio: "línia 1\nlínia 2".into(),
            solicitants_addicionals: vec!["a.b".into()],
            comments: vec![SimComment {
                author: "nom.cognom".into(),
                text: "ok".into(),
                private: true,
                ..SimComment::default()
            }],
            attachments: vec![SimAttachment {
                codi_annex: 3,
                name: "a.pdf".into(),
                user: "nom.cognom".into(),
                size: 10,
            }],
            ..SimTicket::default()
        };
        let text = format_ticket(&t);
        assert!(text.contains("codiTiquet: 7\n"));
        assert!(text.contains("descripcio: línia 1\n  línia 2\n"));
        assert!(text.contains("by nom.cognom, private, not notified"));
        assert!(text.contains("/tiquetsusuaris/control/file?fileId=3"));
        assert!(!text.contains("urgencia"));
        assert!(text.contains("solicitantsAddicionals: a.b"));
    }
}
