//! Dry-run adapter (driven side): a `TicketSystem` decorator that forwards the
//! read-only calls to the real one and records the mutating calls instead of making
//! them, answering with placeholder ids, so `--dry-run` can print the plan.

use std::cell::RefCell;

use crate::domain::ticket::{NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo};
use crate::ports::{PortError, TicketSystem};

/// Placeholder ticket code answered for a planned AltaTiquet.
pub const PLANNED_TICKET: &str = "DRY-RUN";

/// One mutating call that would have been made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCall {
    /// SOAP operation name, e.g. `AltaTiquet`.
    pub operation: &'static str,
    /// (wire name, value) pairs; the GN6 credentials are never part of them.
    pub params: Vec<(String, String)>,
}

impl std::fmt::Display for PlannedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.operation)?;
        for (k, v) in &self.params {
            writeln!(f, "    {k}: {}", v.replace('\n', "\n      "))?;
        }
        Ok(())
    }
}

/// Forwards reads to `inner`, records writes.
#[derive(Debug)]
pub struct PlanningTicketSystem<T> {
    inner: T,
    calls: RefCell<Vec<PlannedCall>>,
}

impl<T> PlanningTicketSystem<T> {
    pub fn new(inner: T) -> Self {
        PlanningTicketSystem {
            inner,
            calls: RefCell::new(Vec::new()),
        }
    }

    /// The mutating calls recorded so far, in order.
    pub fn plan(&self) -> Vec<PlannedCall> {
        self.calls.borrow().clone()
    }

    fn record(&self, operation: &'static str, params: Vec<(String, String)>) -> usize {
        let mut calls = self.calls.borrow_mut();
        calls.push(PlannedCall { operation, params });
        calls.iter().filter(|c| c.operation == operation).count()
    }
}

fn owned(pairs: Vec<(&'static str, &str)>) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl<T: TicketSystem> TicketSystem for PlanningTicketSystem<T> {
    async fn query_ticket(&self, codi_tiquet: &str) -> Result<Option<TicketInfo>, PortError> {
        if codi_tiquet.starts_with(PLANNED_TICKET) {
            // A ticket this plan "created": GN6 has never heard of it.
            return Ok(None);
        }
        self.inner.query_ticket(codi_tiquet).await
    }

    async fn find_tickets(
        &self,
        solicitant: &str,
        created_from: &str,
    ) -> Result<Vec<TicketInfo>, PortError> {
        // Read-only: a dry run may look (a planned ticket is never among them).
        self.inner.find_tickets(solicitant, created_from).await
    }

    async fn create_ticket(&self, ticket: &NewTicket) -> Result<String, PortError> {
        let n = self.record("AltaTiquet", owned(ticket.pairs()));
        Ok(if n == 1 {
            PLANNED_TICKET.to_string()
        } else {
            format!("{PLANNED_TICKET}-{n}")
        })
    }

    async fn modify_ticket(&self, changes: &TicketChanges) -> Result<(), PortError> {
        self.record("ModificarTiquet", owned(changes.pairs()));
        Ok(())
    }

    async fn add_comment(&self, comment: &NewComment) -> Result<(), PortError> {
        let notify = if comment.notificar { "S" } else { "N" };
        self.record(
            "AfegirComentariTiquet",
            owned(vec![
                ("codiTiquet", &comment.codi_tiquet),
                ("usuari", &comment.usuari),
                ("tipusComentari", comment.tipus.wire()),
                ("esNotificat", notify),
                ("descripcio", &comment.descripcio),
            ]),
        );
        Ok(())
    }

    async fn attach_file(&self, a: &NewAttachment<'_>) -> Result<String, PortError> {
        use md5::{Digest, Md5};
        let digest = format!("{:x}", Md5::digest(a.content));
        let size = format!("{} bytes, md5 {digest}", a.content.len());
        let n = self.record(
            "AnnexarFitxerTiquet",
            owned(vec![
                ("codiTiquet", a.codi_tiquet),
                ("usuari", a.usuari),
                ("nomFitxer", a.nom_fitxer),
                ("fitxer", &size),
            ]),
        );
        Ok(format!("{PLANNED_TICKET}-ANNEX-{n}"))
    }

    async fn add_requester(&self, codi_tiquet: &str, solicitant: &str) -> Result<(), PortError> {
        self.record(
            "AfegirSolicitantTiquet",
            owned(vec![
                ("codiTiquet", codi_tiquet),
                ("solicitant", solicitant),
            ]),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reads;
    impl TicketSystem for Reads {
        async fn query_ticket(&self, c: &str) -> Result<Option<TicketInfo>, PortError> {
            Ok(Some(TicketInfo {
                codi_tiquet: c.into(),
                ..TicketInfo::default()
            }))
        }
        async fn find_tickets(&self, s: &str, _: &str) -> Result<Vec<TicketInfo>, PortError> {
            Ok(vec![TicketInfo {
                solicitant: s.into(),
                ..TicketInfo::default()
            }])
        }
        async fn create_ticket(&self, _: &NewTicket) -> Result<String, PortError> {
            panic!("mutating call forwarded")
        }
        async fn modify_ticket(&self, _: &TicketChanges) -> Result<(), PortError> {
            panic!("mutating call forwarded")
        }
        async fn add_comment(&self, _: &NewComment) -> Result<(), PortError> {
            panic!("mutating call forwarded")
        }
        async fn attach_file(&self, _: &NewAttachment<'_>) -> Result<String, PortError> {
            panic!("mutating call forwarded")
        }
        async fn add_requester(&self, _: &str, _: &str) -> Result<(), PortError> {
            panic!("mutating call forwarded")
        }
    }

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn forwards_reads_and_records_writes() {
        let p = PlanningTicketSystem::new(Reads);
        block(async {
            assert_eq!(p.query_ticket("7").await.unwrap().unwrap().codi_tiquet, "7");
            let found = p.find_tickets("u", "05-03-2024").await.unwrap();
            assert_eq!(found[0].solicitant, "u");
            let mut t = NewTicket::default();
            t.set("assumpte", "Hola");
            let code = p.create_ticket(&t).await.unwrap();
            assert_eq!(code, PLANNED_TICKET);
            assert_eq!(p.query_ticket(&code).await.unwrap(), None);
            let annex = p
                .attach_file(&NewAttachment {
                    codi_tiquet: &code,
                    usuari: "u",
                    nom_fitxer: "a.txt",
                    content: b"abc",
                })
                .await
                .unwrap();
            assert_eq!(annex, "DRY-RUN-ANNEX-1");
        });
        let plan = p.plan();
        assert_eq!(plan.len(), 2);
        assert_eq!(plan[0].operation, "AltaTiquet");
        assert_eq!(
            plan[0].params,
            [("assumpte".to_string(), "Hola".to_string())]
        );
        assert!(
            plan[1]
                .to_string()
                .contains("fitxer: 3 bytes, md5 900150983cd24fb0d6963f7d28e17f72")
        );
    }
}
