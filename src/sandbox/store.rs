//! Sandbox adapter, state side: the simulator's tickets, people and attachments in a
//! folder, shared safely by concurrent processes.
//!
//! Layout: `state.toml` (counters), `people.toml`, `tickets/<code>.toml`,
//! `files/<codiAnnex>` (attachment bytes) and `.lock`. Every read and every
//! read-modify-write holds an exclusive lock on `.lock` (attachments, written once and
//! never replaced, are read without it), and files are written through a temporary
//! file, so a crash never leaves half a file behind.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::adapters::atomic_file::{Durability, write_atomic};

pub const ESTAT_OBERT: &str = "TIQUET_STATUS_OBERT";
pub const ESTAT_PENDENT: &str = "TIQUET_STATUS_PEND";
pub const ESTAT_TANCAT: &str = "TIQUET_STATUS_TANCAT";

/// A ticket as the simulator keeps it. Field names follow GN6's (snake_case).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimTicket {
    pub codi: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; set while the ticket is closed.
    pub closed_at: Option<i64>,
    pub estat: String,
    pub solicitant: String,
    pub email_solicitant: String,
    pub client: String,
    pub assumpte: String,
    pub descripcio: String,
    pub equip_resolutor: String,
    pub assignat_a: String,
    pub producte: String,
    pub subservei: String,
    pub urgencia: String,
    pub impacte: String,
    pub proces: String,
    pub proces_origen: String,
    pub ip: String,
    pub enviar_missatge_creacio: String,
    pub enviar_missatge_tancament: String,
    pub imputacio_automatica: String,
    pub infraestructura: String,
    // Only settable through ModificarTiquet.
    pub data_caducitat: String,
    pub codi_tancament: String,
    pub tipus: String,
    pub data_resol: String,
    pub telefon_solicitant: String,
    pub dades_contacte_solicitant: String,
    pub num_inventari: String,
    pub num_elements: String,
    pub origen: String,
    /// AfegirSolicitantTiquet, in call order, without duplicates.
    pub solicitants_addicionals: Vec<String>,
    pub comments: Vec<SimComment>,
    pub attachments: Vec<SimAttachment>,
}

impl SimTicket {
    /// The stored field for a GN6 wire name (AltaTiquet / ModificarTiquet children),
    /// so both operations share one list of names.
    pub fn field_mut(&mut self, wire_name: &str) -> Option<&mut String> {
        Some(match wire_name {
            "estat" => &mut self.estat,
            "solicitant" => &mut self.solicitant,
            "emailSolicitant" => &mut self.email_solicitant,
            "client" => &mut self.client,
            "assumpte" => &mut self.assumpte,
            "descripcio" => &mut self.descripcio,
            "equipResolutor" => &mut self.equip_resolutor,
            "assignatA" => &mut self.assignat_a,
            "producte" => &mut self.producte,
            "subservei" => &mut self.subservei,
            "urgencia" => &mut self.urgencia,
            "impacte" => &mut self.impacte,
            "proces" => &mut self.proces,
            "procesOrigen" => &mut self.proces_origen,
            "ip" => &mut self.ip,
            "enviarMissatgeCreacio" => &mut self.enviar_missatge_creacio,
            "enviarMissatgeTancament" => &mut self.enviar_missatge_tancament,
            "imputacioAutomatica" => &mut self.imputacio_automatica,
            "infraestructura" => &mut self.infraestructura,
            "dataCaducitat" => &mut self.data_caducitat,
            "codiTancament" => &mut self.codi_tancament,
            "tipus" => &mut self.tipus,
            "dataResol" => &mut self.data_resol,
            "telefonSolicitant" => &mut self.telefon_solicitant,
            "dadesContacteSolicitant" => &mut self.dades_contacte_solicitant,
            "numInventari" => &mut self.num_inventari,
            "numElements" => &mut self.num_elements,
            "origen" => &mut self.origen,
            _ => return None,
        })
    }

    pub fn is_closed(&self) -> bool {
        self.estat == ESTAT_TANCAT
    }
}

/// A comment (AfegirComentariTiquet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimComment {
    /// Unix seconds.
    pub at: i64,
    /// `usuari`: the author's username.
    pub author: String,
    /// `descripcio` (HTML).
    pub text: String,
    /// `tipusComentari` was COMENT_TIQUET_PRIVAT.
    pub private: bool,
    /// `esNotificat` was `S`.
    pub notified: bool,
    pub destinataris_to: String,
    pub destinataris_cc: String,
    pub destinataris_bcc: String,
}

/// An attachment's metadata (AnnexarFitxerTiquet); bytes via [`load_attachment`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimAttachment {
    pub codi_annex: u64,
    pub name: String,
    /// `usuari`: who attached it.
    pub user: String,
    pub size: u64,
}

/// One line of [`list_tickets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketSummary {
    pub codi: u64,
    pub estat: String,
    pub assumpte: String,
    pub solicitant: String,
    pub email_solicitant: String,
    pub created_at: i64,
    pub closed_at: Option<i64>,
    pub comments: usize,
    pub attachments: usize,
}

/// A person of the identity directory (Persones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SimPerson {
    pub cn: String,
    pub nom: String,
    pub cognom1: String,
    pub cognom2: String,
    pub emails: Vec<String>,
    pub email_preferent: Option<String>,
}

impl SimPerson {
    /// "Nom Cognom1 Cognom2" without empty parts.
    pub fn full_name(&self) -> String {
        [&self.nom, &self.cognom1, &self.cognom2]
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn has_email(&self, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        self.emails.iter().any(|e| e.to_lowercase() == email)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Counters {
    next_ticket: u64,
    next_annex: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct People {
    persona: Vec<SimPerson>,
}

/// The folder used when none is configured: `$TMPDIR/mailtoticket-sandbox`.
pub fn default_dir() -> PathBuf {
    std::env::temp_dir().join("mailtoticket-sandbox")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Creates the folder and seeds it when new.
pub fn ensure(dir: &Path) -> io::Result<()> {
    locked(dir, || Ok(()))
}

/// Adds or replaces the person `cn`; the first address becomes `emailPreferent`.
pub fn add_person(dir: &Path, cn: &str, emails: &[String]) -> io::Result<()> {
    let cn = cn.trim();
    if cn.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty common name",
        ));
    }
    let person = person_from_cn(cn, emails);
    locked(dir, || {
        let mut people = read_people(dir)?;
        people.persona.retain(|p| p.cn != person.cn);
        people.persona.push(person);
        write_toml(&dir.join("people.toml"), &people)
    })
}

/// Everyone in the directory, in insertion order.
pub fn list_people(dir: &Path) -> io::Result<Vec<SimPerson>> {
    locked(dir, || Ok(read_people(dir)?.persona))
}

/// Every ticket, by code.
pub fn list_tickets(dir: &Path) -> io::Result<Vec<TicketSummary>> {
    Ok(all_tickets(dir)?
        .into_iter()
        .map(|t| TicketSummary {
            codi: t.codi,
            estat: t.estat,
            assumpte: t.assumpte,
            solicitant: t.solicitant,
            email_solicitant: t.email_solicitant,
            created_at: t.created_at,
            closed_at: t.closed_at,
            comments: t.comments.len(),
            attachments: t.attachments.len(),
        })
        .collect())
}

/// One ticket with its comments and attachment metadata.
pub fn load_ticket(dir: &Path, code: u64) -> io::Result<Option<SimTicket>> {
    locked(dir, || read_ticket(dir, code))
}

/// The bytes of an attachment.
pub fn load_attachment(dir: &Path, codi_annex: u64) -> io::Result<Option<Vec<u8>>> {
    match fs::read(dir.join("files").join(codi_annex.to_string())) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Closes a ticket as if it had been closed `closed_at_days_ago` days ago (to exercise
/// the reopening period). `Ok(false)` when there is no such ticket.
pub fn close_ticket(dir: &Path, code: u64, closed_at_days_ago: i64) -> io::Result<bool> {
    Ok(modify_ticket(dir, code, |t| {
        t.estat = ESTAT_TANCAT.into();
        t.closed_at = Some(now() - closed_at_days_ago.saturating_mul(86_400));
    })?
    .is_some())
}

/// Stores a new ticket under the next code and returns that code.
pub fn create_ticket(dir: &Path, mut ticket: SimTicket) -> io::Result<u64> {
    locked(dir, || {
        let mut counters = read_counters(dir)?;
        let code = counters.next_ticket.max(1);
        counters.next_ticket = code + 1;
        ticket.codi = code;
        write_toml(&ticket_path(dir, code), &ticket)?;
        write_toml(&dir.join("state.toml"), &counters)?;
        Ok(code)
    })
}

/// Applies `f` to ticket `code` and saves it; `Ok(None)` when there is no such ticket.
pub fn modify_ticket<T>(
    dir: &Path,
    code: u64,
    f: impl FnOnce(&mut SimTicket) -> T,
) -> io::Result<Option<T>> {
    locked(dir, || {
        let Some(mut ticket) = read_ticket(dir, code)? else {
            return Ok(None);
        };
        let out = f(&mut ticket);
        write_toml(&ticket_path(dir, code), &ticket)?;
        Ok(Some(out))
    })
}

/// Stores an attachment of ticket `code`; returns its codiAnnex, `Ok(None)` when there
/// is no such ticket.
pub fn add_attachment(
    dir: &Path,
    code: u64,
    user: &str,
    name: &str,
    bytes: &[u8],
) -> io::Result<Option<u64>> {
    locked(dir, || {
        let Some(mut ticket) = read_ticket(dir, code)? else {
            return Ok(None);
        };
        let mut counters = read_counters(dir)?;
        let annex = counters.next_annex.max(1);
        counters.next_annex = annex + 1;
        write_atomic(
            &dir.join("files").join(annex.to_string()),
            bytes,
            Durability::Consistent,
        )?;
        ticket.attachments.push(SimAttachment {
            codi_annex: annex,
            name: name.into(),
            user: user.into(),
            size: bytes.len() as u64,
        });
        write_toml(&ticket_path(dir, code), &ticket)?;
        write_toml(&dir.join("state.toml"), &counters)?;
        Ok(Some(annex))
    })
}

/// Every ticket in full, by code (for searches).
pub fn all_tickets(dir: &Path) -> io::Result<Vec<SimTicket>> {
    locked(dir, || {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir.join("tickets"))? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(code) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".toml"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if let Some(t) = read_ticket(dir, code)? {
                out.push(t);
            }
        }
        out.sort_by_key(|t| t.codi);
        Ok(out)
    })
}

/// Runs `f` holding the folder's exclusive lock, creating and seeding the folder first.
fn locked<T>(dir: &Path, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    fs::create_dir_all(dir)?;
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    lock.lock()?;
    let out = seed_if_new(dir).and_then(|()| f());
    // Closing the file releases the lock; unlocking explicitly keeps that visible.
    let _ = lock.unlock();
    out
}

fn seed_if_new(dir: &Path) -> io::Result<()> {
    if dir.join("state.toml").exists() {
        return Ok(());
    }
    fs::create_dir_all(dir.join("tickets"))?;
    fs::create_dir_all(dir.join("files"))?;
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let people = People {
        persona: vec![
            // The guide's test sender.
            person_from_cn("nom.cognom", &s(&["nom.cognom@upc.edu"])),
            // A UPC person known by an address outside upc.edu (llistaPersones path).
            person_from_cn("maria.garcia", &s(&["maria.garcia@example.org"])),
            // Two people sharing an address: only the one whose preferred address it is
            // should be chosen.
            person_from_cn(
                "cap.secretaria",
                &s(&["secretaria.dept@upc.edu", "cap.secretaria@upc.edu"]),
            ),
            person_from_cn(
                "aux.secretaria",
                &s(&["aux.secretaria@upc.edu", "secretaria.dept@upc.edu"]),
            ),
        ],
    };
    write_toml(&dir.join("people.toml"), &people)?;
    write_toml(
        &dir.join("state.toml"),
        &Counters {
            next_ticket: 1,
            next_annex: 1,
        },
    )
}

fn person_from_cn(cn: &str, emails: &[String]) -> SimPerson {
    let mut parts = cn.split('.').map(capitalise);
    let emails: Vec<String> = emails
        .iter()
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    SimPerson {
        cn: cn.into(),
        nom: parts.next().unwrap_or_default(),
        cognom1: parts.next().unwrap_or_default(),
        cognom2: parts.collect::<Vec<_>>().join(" "),
        email_preferent: emails.first().cloned(),
        emails,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn ticket_path(dir: &Path, code: u64) -> PathBuf {
    dir.join("tickets").join(format!("{code}.toml"))
}

fn read_ticket(dir: &Path, code: u64) -> io::Result<Option<SimTicket>> {
    read_toml(&ticket_path(dir, code))
}

fn read_counters(dir: &Path) -> io::Result<Counters> {
    Ok(read_toml(&dir.join("state.toml"))?.unwrap_or_default())
}

fn read_people(dir: &Path) -> io::Result<People> {
    Ok(read_toml(&dir.join("people.toml"))?.unwrap_or_default())
}

fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> io::Result<Option<T>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    toml::from_str(&text).map(Some).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

fn write_toml<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let text = toml::to_string(value).map_err(io::Error::other)?;
    // No fsync: the simulator needs consistency between processes, not durability
    // across power loss.
    write_atomic(path, text.as_bytes(), Durability::Consistent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_a_new_folder_and_adds_people() {
        let dir = tempfile::tempdir().unwrap();
        let people = list_people(dir.path()).unwrap();
        assert!(people.iter().any(|p| p.cn == "nom.cognom"));
        add_person(
            dir.path(),
            "joan.prat.vila",
            &["Joan@Example.com".into(), "jp@upc.edu".into()],
        )
        .unwrap();
        add_person(dir.path(), "joan.prat.vila", &["jp@upc.edu".into()]).unwrap();
        let people = list_people(dir.path()).unwrap();
        let joan: Vec<_> = people.iter().filter(|p| p.cn == "joan.prat.vila").collect();
        assert_eq!(joan.len(), 1);
        assert_eq!(joan[0].email_preferent.as_deref(), Some("jp@upc.edu"));
        assert_eq!(joan[0].full_name(), "Joan Prat Vila");
    }

    #[test]
    fn tickets_get_increasing_codes_and_close() {
        let dir = tempfile::tempdir().unwrap();
        let a = create_ticket(dir.path(), SimTicket::default()).unwrap();
        let b = create_ticket(dir.path(), SimTicket::default()).unwrap();
        assert_eq!((a, b), (1, 2));
        assert!(close_ticket(dir.path(), 2, 3).unwrap());
        assert!(!close_ticket(dir.path(), 9, 3).unwrap());
        let t = load_ticket(dir.path(), 2).unwrap().unwrap();
        assert!(t.is_closed());
        assert!(t.closed_at.unwrap() <= now() - 3 * 86_400);
        let list = list_tickets(dir.path()).unwrap();
        assert_eq!(list.iter().map(|t| t.codi).collect::<Vec<_>>(), vec![1, 2]);
    }
}
