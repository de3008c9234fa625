//! The four filters of BEHAVIOUR §5 as steps of the use case: pure decisions from
//! `crate::domain`, side effects through the ports, each one journalled.

use tracing::{info, warn};

use super::budget::CallBudget;
use super::identity::{
    SenderIdentity, email_without_lookup, find_username, resolve_sender, sender_authenticity,
};
use super::{Delivery, Ports, Settings, port_status};
use crate::domain::bus_text::{is_xml_char, safe_file_name};
use crate::domain::filters::{
    FilterKind, choose_author, find_ticket_id, is_private, new_ticket_defaults, notify,
};
use crate::domain::html;
use crate::domain::limits;
use crate::domain::mail::Mail;
use crate::domain::outcome::Status;
use crate::domain::rules;
use crate::domain::texts::{self, Uploaded};
use crate::domain::ticket::{
    CommentKind, ESTAT_OBERT, NewAttachment, NewComment, TicketChanges, TicketInfo,
};
use crate::domain::trust::{self, Authenticity, CcRequester, NonParticipantReplies, keys};
use crate::ports::{Clock, Journal, PortError, RateLimit, Step, TicketSystem};

/// Why a filter did not finish.
#[derive(Debug)]
enum Failure {
    /// A GN6 call failed; `what` names the operation.
    Ticket { what: &'static str, err: PortError },
    /// The identity directory failed: never a silent "not found".
    Directory(PortError),
    /// The journal could not record a done step: stop before anything else is done,
    /// or the next run would repeat it.
    Journal(PortError),
    /// The sender reached `max_tickets_per_hour` (loop protection).
    RateLimited { sender: String, limit: u32 },
    /// The rate-limit store could not be read: retry later rather than risk a flood.
    RateStore(PortError),
    /// The ticket reached `max_comentaris_per_tiquet_hora`.
    CommentLimit { code: String, limit: u32 },
    /// The body's CPU-bound preparation failed (a panic in the blocking task).
    Cpu(String),
}

impl Failure {
    fn status(&self) -> Status {
        match self {
            Failure::Ticket { err, .. } => port_status(err),
            Failure::Directory(err) if err.is_transient() => Status::TempFail,
            Failure::Directory(_) => Status::Error,
            Failure::Journal(_) => Status::TempFail,
            Failure::RateLimited { .. } | Failure::CommentLimit { .. } => Status::Reject,
            Failure::RateStore(_) => Status::TempFail,
            Failure::Cpu(_) => Status::Error,
        }
    }

    fn reason(&self) -> String {
        match self {
            Failure::Ticket { what, err } => format!("{what}: {err}"),
            Failure::Directory(err) => format!("directori d'identitat: {err}"),
            Failure::Journal(err) => format!("diari: {err}"),
            Failure::RateLimited { sender, limit } => {
                format!("límit de tiquets nous per hora superat: {sender} ({limit} per hora)")
            }
            Failure::RateStore(err) => format!("comptador de tiquets nous: {err}"),
            Failure::CommentLimit { code, limit } => {
                format!("límit de comentaris per hora superat al tiquet {code} ({limit} per hora)")
            }
            Failure::Cpu(err) => format!("preparació del cos del mail: {err}"),
        }
    }
}

/// The body as GN6 gets it, through the one HTML pipeline (`crate::domain::html`):
/// parsed into the allow-listed tree, cleaned when `full`, `cid:` images pointed at the
/// uploaded attachments and the others listed, the header line put first, and only then
/// serialised. No string edit of HTML happens before or after.
fn description(
    body: &html::Body,
    header: &str,
    uploaded: &[Uploaded<'_>],
    left_out: &[String],
) -> String {
    let mut body = body.clone();
    body.link_attachments(uploaded);
    body.append_list("No lliurat amb aquest correu:", left_out);
    body.prepend_header(header);
    body.render().into_string()
}

/// The mail's body parsed and, when `full`, cleaned (§6): the costly part, done once
/// per mail even when the description is written twice. It runs as a blocking task so
/// that the mail's deadline holds against it (an async timeout cannot stop code that
/// never yields); while it runs, a deadline that passes is a pure-CPU timeout, which a
/// retry would only repeat (see [`super::deliver_with_deadline`]).
async fn parsed_body(
    mail: &Mail,
    settings: &Settings,
    full: bool,
    is_reply: bool,
) -> Result<html::Body, Failure> {
    let source = mail.body_html.clone();
    // Attached messages of a mail without text of its own (issue 17), as text.
    let forwarded = mail.forwarded_text();
    let max_depth = settings.limits.mail.html_max_depth;
    let cpu = super::CpuStage::enter();
    let body = tokio::task::spawn_blocking(move || {
        let mut body = html::Body::parse(&source, max_depth);
        drop(source);
        if full {
            body.clean(is_reply);
        }
        for block in &forwarded {
            body.append_text(block);
        }
        if body.flattened() > 0 {
            body.append_note(&format!(
                "[mailtoticket: {} elements HTML niats més enllà del límit de {max_depth} nivells s'han aplanat a text]",
                body.flattened()
            ));
        }
        body
    })
    .await
    .map_err(|e| Failure::Cpu(e.to_string()))?;
    cpu.leave();
    Ok(body)
}

/// What one filter did.
enum Outcome {
    NotApplicable(String),
    Done {
        ticket: String,
        requester: String,
        what: &'static str,
    },
}

type FilterResult = Result<Outcome, Failure>;

fn gn6(what: &'static str) -> impl FnOnce(PortError) -> Failure {
    move |err| Failure::Ticket { what, err }
}

/// One delivery in progress.
pub(super) struct Run<'a, T, I> {
    mail: &'a Mail,
    settings: &'a Settings,
    tickets: &'a T,
    identity: &'a I,
    clock: &'a dyn Clock,
    journal: &'a dyn Journal,
    rate: &'a dyn RateLimit,
    automatic: bool,
    /// What our MTA says of the From (issue 10), computed once.
    authenticity: Authenticity,
    /// The sender's identity (§4, issue 10), resolved at most once per mail.
    sender: Option<SenderIdentity>,
    /// Bus calls left for look-ups, requesters and uploads (issue 19 §3).
    budget: &'a CallBudget,
    /// What this mail could not deliver (a refused file, what the call cap left out),
    /// one Catalan line each: listed in the ticket and in the outcome.
    left_out: std::cell::RefCell<Vec<String>>,
}

/// Value of an `attachment:N` step for a part that was not attached (refused by GN6
/// for a reason of its own, or left out by the call cap): never tried again.
pub const ATTACHMENT_FAILED_PREFIX: &str = "error:";

impl<'a, T, I> Run<'a, T, I>
where
    T: TicketSystem,
    I: super::identity::UserLookup,
{
    pub(super) fn new(
        mail: &'a Mail,
        settings: &'a Settings,
        ports: &Ports<'a, T, I>,
        automatic: bool,
        budget: &'a CallBudget,
    ) -> Self {
        let authenticity = sender_authenticity(mail, settings);
        if authenticity != Authenticity::Off {
            info!(
                "Autenticació del remitent {}: {}",
                mail.sender(),
                authenticity.describe()
            );
        }
        Run {
            mail,
            settings,
            tickets: ports.tickets,
            identity: ports.identity,
            clock: ports.clock,
            journal: ports.journal,
            rate: ports.rate,
            automatic,
            authenticity,
            sender: None,
            budget,
            left_out: std::cell::RefCell::default(),
        }
    }

    /// The ticket's note of what could not be delivered (empty when all was).
    fn leave_out(&self, what: String) {
        warn!("No lliurat: {what}");
        self.left_out.borrow_mut().push(what);
    }

    /// The filters in order; the first applicable one decides.
    pub(super) async fn run_filters(&mut self) -> Delivery {
        // A previous run of this mail already went one way: resume that way only, so
        // that a reply never also becomes a new ticket, nor the reverse.
        let created = self.journal.done(&Step::TicketCreated).is_some();
        let commented = self.journal.done(&Step::CommentAdded).is_some();
        for kind in self.settings.filters.clone() {
            if (created && kind.is_reply()) || (commented && !kind.is_reply()) {
                info!(
                    "Filtre {} no aplicable: una entrega anterior ja va seguir un altre camí",
                    kind.name()
                );
                continue;
            }
            let result = match kind {
                FilterKind::Reply | FilterKind::ReplyReobrint => self.reply(kind).await,
                FilterKind::Nou => self.nou().await,
                FilterKind::NouExtern => self.nou_extern().await,
            };
            match result {
                Ok(Outcome::NotApplicable(why)) => {
                    info!("Filtre {} no aplicable: {why}", kind.name());
                }
                Ok(Outcome::Done {
                    ticket,
                    requester,
                    what,
                }) => {
                    info!("Filtre {} aplicat: {what} {ticket}", kind.name());
                    let left = self.left_out.borrow();
                    let reason = if left.is_empty() {
                        format!("{what} {ticket}")
                    } else {
                        // A partial success: what was delivered stays, the rest is
                        // said in the ticket and never retried as a whole.
                        format!("{what} {ticket} (lliurament parcial: {})", left.join("; "))
                    };
                    return Delivery {
                        status: Status::Success,
                        filter: Some(kind.name().to_string()),
                        reason,
                        ticket: Some(ticket),
                        class: None,
                        requester: Some(requester),
                    };
                }
                Err(failure) => {
                    let status = failure.status();
                    let reason = failure.reason();
                    match status {
                        Status::Reject => warn!("Filtre {} ha fallat: {reason}", kind.name()),
                        _ => tracing::error!("Error al filtre {}: {reason}", kind.name()),
                    }
                    return Delivery {
                        status,
                        filter: Some(kind.name().to_string()),
                        ticket: self
                            .journal
                            .done(&Step::TicketCreated)
                            .or_else(|| self.journal.done(&Step::CommentAdded)),
                        reason,
                        class: None,
                        requester: self.sender.as_ref().and_then(|s| s.user.clone()),
                    };
                }
            }
        }
        info!("Cap filtre aplicable");
        Delivery::new(Status::Reject, "cap filtre aplicable")
    }

    async fn sender(&mut self) -> Result<SenderIdentity, Failure> {
        if let Some(found) = &self.sender {
            return Ok(found.clone());
        }
        let found = resolve_sender(self.mail, self.settings, self.identity, &self.authenticity)
            .await
            .map_err(Failure::Directory)?;
        self.sender = Some(found.clone());
        Ok(found)
    }

    async fn requester(&mut self) -> Result<Option<String>, Failure> {
        Ok(self.sender().await?.user)
    }

    /// emailSolicitant of a new ticket: the resolved sender's when known, else
    /// decided without the directory.
    fn requester_email(&self) -> String {
        match &self.sender {
            Some(s) => s.email.clone(),
            None => email_without_lookup(self.mail, self.settings, &self.authenticity),
        }
    }

    fn record(&self, step: &Step, value: &str) -> Result<(), Failure> {
        self.journal.record(step, value).map_err(Failure::Journal)
    }

    /// The mail's date in the texts' zone; the clock when the mail has none.
    fn when(&self) -> chrono::NaiveDateTime {
        let now = self.clock.now();
        let when = self.mail.date.unwrap_or(now);
        self.settings.local_time(&when, &now)
    }

    /// FROM of the texts: the From addresses, joined by commas (§3).
    fn sender_text(&self) -> String {
        self.mail.from.join(",")
    }

    /// ConsultaTiquetsDades: `Ok(None)` = no such ticket.
    async fn query(&self, code: &str) -> Result<Option<TicketInfo>, Failure> {
        self.tickets
            .query_ticket(code)
            .await
            .map_err(gn6("ConsultaTiquetsDades"))
    }

    /// §5.1 and §5.2.
    async fn reply(&mut self, kind: FilterKind) -> FilterResult {
        let s = self.settings;
        let Some((code, source)) = find_ticket_id(self.mail, &s.regex_message_id, &s.regex_reply)
        else {
            return Ok(Outcome::NotApplicable(
                "no és una resposta a cap tiquet".into(),
            ));
        };
        info!("Resposta al tiquet {code} (trobat a {})", source.label());
        if source != crate::domain::filters::IdSource::Subject {
            // GN6's notification ids carry no prefix derivable from the ticket: the
            // number is all that can be checked (issue 10 §2).
            info!(
                "Referència {}: només se n'ha fet servir el número de tiquet",
                source.label()
            );
        }
        let Some(mut ticket) = self.query(&code).await? else {
            return Ok(Outcome::NotApplicable(format!(
                "el tiquet {code} no existeix"
            )));
        };
        let sender = self.sender().await?;
        let cc = self.rate.cc_requesters(&code).map_err(Failure::RateStore)?;
        let addresses: Vec<&str> = sender.addresses.iter().map(String::as_str).collect();
        let participant = trust::participant(
            sender.user.as_deref(),
            &addresses,
            &sender.authenticity,
            &ticket.solicitant,
            &s.identity.canonical(&ticket.email_solicitant),
            &cc,
            &s.trust.agents,
        );
        let mode = s.trust.non_participants;
        match &participant {
            Some(p) => info!("El remitent és participant del tiquet {code} ({p:?})"),
            None => info!(
                "El remitent {} no és participant del tiquet {code} (respostes_no_participants: {mode:?})",
                self.mail.sender()
            ),
        }
        if participant.is_none() && mode == NonParticipantReplies::Nou {
            return Ok(Outcome::NotApplicable(format!(
                "el remitent no és participant del tiquet {code}: es tracta com a mail nou"
            )));
        }
        // Only a participant (or anyone, with the old `public`) reopens a ticket.
        let may_reopen = participant.is_some() || mode == NonParticipantReplies::Public;
        if kind == FilterKind::ReplyReobrint && ticket.is_closed() && !may_reopen {
            return Ok(Outcome::NotApplicable(format!(
                "el tiquet {code} està tancat i un no participant no el reobre"
            )));
        }
        if kind == FilterKind::ReplyReobrint && ticket.is_closed() && may_reopen {
            if self.automatic {
                return Ok(Outcome::NotApplicable(format!(
                    "el tiquet {code} està tancat i un mail automàtic no el reobre"
                )));
            }
            if self.journal.done(&Step::Reopened).is_none() {
                info!("Reobro el tiquet {code}");
                let changes = TicketChanges {
                    codi_tiquet: code.clone(),
                    estat: ESTAT_OBERT.into(),
                    ..TicketChanges::default()
                };
                self.tickets
                    .modify_ticket(&changes)
                    .await
                    .map_err(gn6("ModificarTiquet"))?;
                self.record(&Step::Reopened, &code)?;
            }
            match self.query(&code).await? {
                Some(t) if !t.is_closed() => ticket = t,
                Some(_) => {
                    return Ok(Outcome::NotApplicable(format!(
                        "el tiquet {code} continua tancat (ja no es pot reobrir)"
                    )));
                }
                None => {
                    return Ok(Outcome::NotApplicable(format!(
                        "el tiquet {code} no existeix"
                    )));
                }
            }
        }

        let found = sender.user.clone();
        // Compared in canonical form, so that `x@ac.upc.es` written by an old client
        // still matches the `x@ac.upc.edu` GN6 stored. A failed From speaks for nobody.
        let senders: Vec<&str> = if sender.authenticity.failed() {
            Vec::new()
        } else {
            addresses.clone()
        };
        let on_ticket = TicketInfo {
            email_solicitant: s.identity.canonical(&ticket.email_solicitant),
            ..ticket.clone()
        };
        let author = choose_author(found.as_deref(), &senders, &on_ticket, &s.usuari_extern);
        let author = author.username().to_string();
        let policy = trust::comment_policy(
            participant.is_some(),
            is_private(&self.mail.subject, &s.regex_privat),
            mode,
        );
        let private = policy.private;
        let notificar = policy.may_notify
            && notify(
                &author,
                &ticket,
                private,
                s.notificar_comentaris_afegits,
                self.automatic,
            );
        info!(
            "Autor del comentari: {author}; {}; notificar: {}",
            if private { "privat" } else { "públic" },
            if notificar { "S" } else { "N" }
        );

        let uploaded = self.upload_attachments(&code, &author).await?;
        let mut body = parsed_body(self.mail, s, s.netejar_mail_reply, true).await?;
        if policy.marked {
            body.prepend_header(&trust::non_participant_line(
                &self.sender_text(),
                &sender.authenticity,
            ));
        }
        let descripcio = description(
            &body,
            &texts::comment_header(&self.sender_text(), &self.when()),
            &uploaded,
            &self.left_out.borrow(),
        );
        if self.journal.done(&Step::CommentAdded).is_some() {
            info!("El comentari ja es va afegir en una entrega anterior");
        } else {
            let comment = NewComment {
                codi_tiquet: code.clone(),
                usuari: author.clone(),
                descripcio,
                tipus: if private {
                    CommentKind::Private
                } else {
                    CommentKind::Public
                },
                notificar,
            };
            let step = Step::CommentAdded;
            self.warn_if_unknown(
                &step,
                "AfegirComentariTiquet",
                &format!("comentari al tiquet {code}"),
            );
            self.check_comment_limit(&code)?;
            self.record_intent(&step)?;
            self.tickets
                .add_comment(&comment)
                .await
                .map_err(gn6("AfegirComentariTiquet"))?;
            self.record(&Step::CommentAdded, &code)?;
            self.note_event(&keys::ticket_comments(&code));
            info!("Comentari afegit al tiquet {code}");
        }
        Ok(Outcome::Done {
            ticket: code,
            requester: author,
            what: "comentari afegit al tiquet",
        })
    }

    /// §5.3.
    async fn nou(&mut self) -> FilterResult {
        if self.authenticity.failed() {
            return Ok(Outcome::NotApplicable(format!(
                "el remitent {} no ha superat l'autenticació",
                self.mail.sender()
            )));
        }
        let Some(user) = self.requester().await? else {
            return Ok(Outcome::NotApplicable(format!(
                "no trobo l'usuari de {}",
                self.requester_email()
            )));
        };
        self.create(&user, false).await
    }

    /// §5.4.
    async fn nou_extern(&mut self) -> FilterResult {
        let user = self.settings.usuari_extern.trim().to_string();
        self.create(&user, true).await
    }

    /// Creates the ticket (or resumes its creation) for `user`.
    async fn create(&mut self, user: &str, external: bool) -> FilterResult {
        let s = self.settings;
        let mail = self.mail;
        let mut ticket =
            new_ticket_defaults(user, &self.requester_email(), &s.equip_resolutor_nous);
        let applied = rules::apply(&s.rules, mail, &mut ticket);
        if !applied.is_empty() {
            info!("Regles de valors_defecte aplicades: {applied:?}");
        }
        if external || self.automatic {
            ticket.enviar_missatge_creacio = "N".into();
        }
        // Checked against what the bus carries before the first call: a subject made
        // only of characters XML 1.0 cannot carry gets the default, as an empty one.
        let subject: String = mail.subject.chars().filter(|&c| is_xml_char(c)).collect();
        ticket.assumpte = limits::truncate_chars(
            &texts::subject_or_default(&subject, user),
            s.limits.mail.max_subject_chars,
        );
        let header = texts::ticket_header(&self.sender_text(), mail.template_to(), &self.when());
        let full = s.netejar_mail_nou;
        // Cleaned once: the description is written before the upload and again after.
        let mut body = parsed_body(mail, s, full, false).await?;
        let subject_chars = mail.subject.chars().count();
        if subject_chars > s.limits.mail.max_subject_chars {
            // Not silently dropped: the whole subject goes into the description.
            body.append_note(&format!(
                "[mailtoticket: l'assumpte tenia {subject_chars} caràcters i s'ha tallat a {} (max_subject_chars); l'assumpte sencer és: {}]",
                s.limits.mail.max_subject_chars, mail.subject
            ));
        }
        if self.authenticity.failed() {
            body.prepend_header(&trust::failed_auth_line(&self.sender_text()));
        }
        ticket.descripcio = description(&body, &header, &[], &[]);

        let code = match self.journal.done(&Step::TicketCreated) {
            Some(code) => {
                info!("El tiquet {code} ja es va crear en una entrega anterior");
                code
            }
            None => match self
                .adopt_lost_ticket(user, &ticket.assumpte, &header)
                .await?
            {
                Some(code) => code,
                None => {
                    self.check_rate_limit(user, external)?;
                    self.record_intent(&Step::TicketCreated)?;
                    let code = self
                        .tickets
                        .create_ticket(&ticket)
                        .await
                        .map_err(gn6("AltaTiquet"))?;
                    self.record(&Step::TicketCreated, &code)?;
                    info!("Ticket creat: {code}");
                    self.note_new_ticket(user, external);
                    code
                }
            },
        };

        let uploaded = self.upload_attachments(&code, user).await?;
        // Before the description update, so that the ticket can say which requesters
        // the call cap left out.
        self.add_cc_requesters(&code, user).await?;
        let descripcio = description(&body, &header, &uploaded, &self.left_out.borrow());
        let changed = descripcio != ticket.descripcio;
        let data_resol = if s.assignar_data_resolucio_amb_data_creacio {
            let now = self.clock.now();
            texts::resolution_date(&s.local_time(&now, &now))
        } else {
            String::new()
        };
        if (changed || !data_resol.is_empty())
            && self.journal.done(&Step::DescriptionUpdated).is_none()
        {
            let changes = TicketChanges {
                codi_tiquet: code.clone(),
                descripcio: if changed { descripcio } else { String::new() },
                data_resol,
                ..TicketChanges::default()
            };
            self.tickets
                .modify_ticket(&changes)
                .await
                .map_err(gn6("ModificarTiquet"))?;
            self.record(&Step::DescriptionUpdated, &code)?;
            info!("Descripció del tiquet {code} actualitzada");
        }

        Ok(Outcome::Done {
            ticket: code,
            requester: user.to_string(),
            what: "tiquet creat",
        })
    }

    /// Records the intent of `step` before its non-idempotent call (kept when one is
    /// already there: the oldest date bounds the search of [`Self::adopt_lost_ticket`]).
    fn record_intent(&self, step: &Step) -> Result<(), Failure> {
        let intent = step.intent();
        if self.journal.done(&intent).is_some() {
            return Ok(());
        }
        let now = self.clock.now();
        let day = self.settings.local_time(&now, &now).date();
        self.record(&intent, &day.format("%d-%m-%Y").to_string())
    }

    /// An AltaTiquet of an earlier run whose outcome is unknown (intent recorded, no
    /// code): GN6 may have created the ticket and the answer been lost. Looks for it
    /// before creating again — same requester, same subject, and a description that
    /// starts with this mail's own header — and adopts it. A failed search stops the
    /// run (TEMPFAIL or error): creating blindly could make a second ticket.
    async fn adopt_lost_ticket(
        &self,
        user: &str,
        assumpte: &str,
        header: &str,
    ) -> Result<Option<String>, Failure> {
        let Some(day) = self.journal.done(&Step::TicketCreated.intent()) else {
            return Ok(None);
        };
        // One day earlier: GN6's day of creation may be in another zone than ours.
        let from = chrono::NaiveDate::parse_from_str(day.trim(), "%d-%m-%Y")
            .map(|d| {
                (d - chrono::TimeDelta::days(1))
                    .format("%d-%m-%Y")
                    .to_string()
            })
            .unwrap_or_default();
        warn!(
            "Resultat desconegut d'AltaTiquet en una entrega anterior: busco si el tiquet de {user} ja existeix (des del {from})"
        );
        let found = self
            .tickets
            .find_tickets(user, &from)
            .await
            .map_err(gn6("ConsultaTiquetsDades"))?;
        // The header as the pipeline writes it, up to its closing bracket: what follows
        // it may have been rewritten.
        let header = description(&html::Body::from_text(""), header, &[], &[]);
        let fingerprint = header.rfind(']').map_or(header.as_str(), |i| &header[..=i]);
        let mut matching = found.iter().filter(|t| {
            t.solicitant.trim() == user.trim()
                && t.assumpte.trim() == assumpte.trim()
                && t.descripcio.trim_start().starts_with(fingerprint)
        });
        let Some(ticket) = matching.next() else {
            info!("No hi ha cap tiquet d'aquest correu: el creo");
            return Ok(None);
        };
        if matching.next().is_some() {
            warn!("Més d'un tiquet coincideix amb aquest correu: adopto el primer");
        }
        let code = ticket.codi_tiquet.trim().to_string();
        self.record(&Step::TicketCreated, &code)?;
        info!(
            "El tiquet {code} ja es va crear en una entrega anterior (resposta perduda): l'adopto"
        );
        self.note_new_ticket(user, false);
        Ok(Some(code))
    }

    /// Before a call GN6 gives no way to check afterwards (AnnexarFitxerTiquet,
    /// AfegirComentariTiquet): an intent left by an earlier run means its outcome is
    /// unknown. Policy "never lost" first: the call is made again, at the risk of a
    /// duplicate, and said so in the log.
    fn warn_if_unknown(&self, step: &Step, what: &str, detail: &str) {
        if self.journal.done(&step.intent()).is_some() {
            warn!(
                "Resultat desconegut de {what} ({detail}): es torna a enviar (possible duplicat)"
            );
        }
    }

    /// Who the per-hour limit counts: the From address, else the requester address;
    /// a From that failed authentication is counted apart (issue 10), so that forged
    /// mail cannot lock the real owner of the address out.
    fn rate_sender(&self) -> String {
        let sender = if self.mail.sender().is_empty() {
            self.mail.requester_email()
        } else {
            self.mail.sender()
        };
        let sender = self.settings.identity.canonical(sender);
        if self.authenticity.failed() {
            keys::unauthenticated(&sender)
        } else {
            keys::sender(&sender)
        }
    }

    /// The counters a new ticket for `user` goes to: the sender address and, for a
    /// resolved requester (not the shared external user), the requester too, so that
    /// rotating From addresses with one Reply-To gains nothing.
    fn ticket_keys(&self, user: &str, external: bool) -> Vec<String> {
        let mut out = vec![self.rate_sender()];
        let user = user.trim();
        if !external && !user.is_empty() && user != self.settings.usuari_extern.trim() {
            out.push(keys::requester(user));
        }
        out
    }

    /// Loop protection: a sender (or requester) that already has `max_tickets_per_hour`
    /// new tickets in the last hour gets no more (an auto-responder answering our
    /// notices would otherwise open tickets without end). Only asked before a real
    /// AltaTiquet, so a resumed run of a ticket already created is never refused.
    fn check_rate_limit(&self, user: &str, external: bool) -> Result<(), Failure> {
        let limit = self.settings.limits.max_tickets_per_hour;
        if limit == 0 {
            return Ok(());
        }
        let since = self.clock.now() - chrono::TimeDelta::hours(1);
        for key in self.ticket_keys(user, external) {
            let count = self.rate.count(&key, since).map_err(Failure::RateStore)?;
            if !trust::within(count, limit) {
                warn!(
                    "Límit de tiquets nous superat: {key} ja té {count} tiquets nous en l'última hora (màxim {limit}); no en creo cap més"
                );
                return Err(Failure::RateLimited { sender: key, limit });
            }
        }
        Ok(())
    }

    /// Counts the ticket just created. A failure here only loses one count: the
    /// ticket exists and is journalled, so the run goes on.
    fn note_new_ticket(&self, user: &str, external: bool) {
        if self.settings.limits.max_tickets_per_hour == 0 {
            return;
        }
        for key in self.ticket_keys(user, external) {
            self.note_event(&key);
        }
    }

    /// `max_comentaris_per_tiquet_hora`: a flood of replies into one ticket (and of
    /// the notices GN6 would send for them) stops at the limit.
    fn check_comment_limit(&self, code: &str) -> Result<(), Failure> {
        let limit = self.settings.limits.max_comments_per_ticket_hour;
        if limit == 0 {
            return Ok(());
        }
        let since = self.clock.now() - chrono::TimeDelta::hours(1);
        let count = self
            .rate
            .count(&keys::ticket_comments(code), since)
            .map_err(Failure::RateStore)?;
        if !trust::within(count, limit) {
            warn!(
                "Límit de comentaris superat: el tiquet {code} ja té {count} comentaris en l'última hora (màxim {limit})"
            );
            return Err(Failure::CommentLimit {
                code: code.to_string(),
                limit,
            });
        }
        Ok(())
    }

    fn note_event(&self, key: &str) {
        if let Err(e) = self.rate.note(key, self.clock.now()) {
            warn!("No puc comptar {key}: {e}");
        }
    }

    /// §5.5: every kept attachment, uploaded as `user`, each at most once, under a
    /// name the bus accepts. A part GN6 refuses (codiRetorn) does not stop the others: it is recorded as failed (never
    /// tried again), listed in the ticket and kept by the caller (quarantine of the
    /// part). Past the call cap the remaining parts are left out the same way.
    async fn upload_attachments(
        &self,
        code: &str,
        user: &str,
    ) -> Result<Vec<Uploaded<'a>>, Failure> {
        let mut uploaded = Vec::with_capacity(self.mail.attachments.len());
        for (n, a) in self.mail.attachments.iter().enumerate() {
            let step = Step::Attachment(n);
            let name = limits::clean_file_name(&safe_file_name(&a.name, n, &a.content_type));
            let codi_annex = match self.journal.done(&step) {
                Some(c) => match c.strip_prefix(ATTACHMENT_FAILED_PREFIX) {
                    Some(why) => {
                        self.leave_out(format!("fitxer {name}: {why}"));
                        continue;
                    }
                    None => c,
                },
                None if self.budget.exhausted() => {
                    let why = format!(
                        "no annexat, límit de {} crides al bus per correu (max_calls_per_mail)",
                        self.budget.limit()
                    );
                    self.record(&step, &format!("{ATTACHMENT_FAILED_PREFIX}{why}"))?;
                    self.leave_out(format!("fitxer {name}: {why}"));
                    continue;
                }
                None => {
                    self.warn_if_unknown(
                        &step,
                        "AnnexarFitxerTiquet",
                        &format!("fitxer {name} al tiquet {code}"),
                    );
                    self.record_intent(&step)?;
                    self.budget.spend();
                    let result = self
                        .tickets
                        .attach_file(&NewAttachment {
                            codi_tiquet: code,
                            usuari: user,
                            nom_fitxer: &name,
                            content: &a.data,
                        })
                        .await;
                    match result {
                        Ok(c) => {
                            self.record(&step, &c)?;
                            info!("Fitxer {name} annexat al tiquet {code} ({c})");
                            c
                        }
                        // Only GN6's own refusal (codiRetorn) is about this part; a
                        // Fault or an unreadable answer stops the mail as before, to
                        // be resumed.
                        Err(e) if !e.is_service() => {
                            return Err(gn6("AnnexarFitxerTiquet")(e));
                        }
                        Err(e) => {
                            let why = format!("GN6 no l'ha acceptat ({e})");
                            self.record(&step, &format!("{ATTACHMENT_FAILED_PREFIX}{why}"))?;
                            self.leave_out(format!("fitxer {name}: {why}"));
                            continue;
                        }
                    }
                }
            };
            uploaded.push(Uploaded {
                name,
                content_type: &a.content_type,
                content_id: a.content_id.as_deref(),
                codi_annex,
            });
        }
        Ok(uploaded)
    }

    /// Whether the Cc addresses become additional requesters (§5.3).
    fn cc_wanted(&self) -> bool {
        let s = self.settings;
        if self.mail.cc.is_empty() {
            return false;
        }
        if s.afegir_solicitants_addicionals_en_cc {
            return true;
        }
        let Some(via) = &s.cc_via else {
            return false;
        };
        let to = if self.mail.resent_to.is_empty() {
            &self.mail.to
        } else {
            &self.mail.resent_to
        };
        to.iter()
            .any(|a| crate::domain::filters::match_at_start(via, a).is_some())
    }

    /// Adds the resolved Cc addresses as requesters, in Cc order. Failures are logged,
    /// not fatal (BEHAVIOUR §5.3), except transient ones (issue 5 §2): a bus that is
    /// down or slow says nothing about the requester, so the mail is TEMPFAIL and the
    /// MTA's retry resumes at the requester still missing. A journal failure stops too.
    async fn add_cc_requesters(&self, code: &str, requester: &str) -> Result<(), Failure> {
        if !self.cc_wanted() {
            return Ok(());
        }
        // The requester is already on the ticket, and one person written twice in Cc
        // is one requester: GN6 would answer the repeat with an error.
        let mut added: Vec<String> = vec![requester.to_string()];
        for (i, address) in self.mail.cc.iter().enumerate() {
            if self.budget.exhausted() {
                let rest = &self.mail.cc[i..];
                let shown: Vec<&str> = rest.iter().take(20).map(String::as_str).collect();
                let more = rest.len().saturating_sub(shown.len());
                self.leave_out(format!(
                    "{} sol·licitants en Cc no afegits, límit de {} crides al bus per correu (max_calls_per_mail): {}{}",
                    rest.len(),
                    self.budget.limit(),
                    shown.join(", "),
                    if more > 0 { format!(" i {more} més") } else { String::new() }
                ));
                break;
            }
            let user = match find_username(address, self.settings, self.identity).await {
                Ok(Some(u)) => u,
                Ok(None) => {
                    info!("Cc {address}: no trobo l'usuari, no l'afegeixo");
                    continue;
                }
                Err(e) if e.is_transient() => return Err(Failure::Directory(e)),
                Err(e) => {
                    warn!("Cc {address}: el directori ha fallat ({e}), no l'afegeixo");
                    continue;
                }
            };
            if added.contains(&user) {
                continue;
            }
            added.push(user.clone());
            let step = Step::RequesterAdded(user.clone());
            if self.journal.done(&step).is_some() {
                continue;
            }
            self.budget.spend();
            match self.tickets.add_requester(code, &user).await {
                Ok(()) => {
                    self.record(&step, &user)?;
                    info!("Sol·licitant {user} afegit al tiquet {code}");
                    // A participant of the ticket from now on (issue 10).
                    let cc = CcRequester {
                        address: self.settings.identity.canonical(address),
                        username: user.clone(),
                    };
                    if let Err(e) = self.rate.note_cc_requester(code, &cc) {
                        warn!("No puc desar {address} com a participant del tiquet {code}: {e}");
                    }
                }
                Err(e) if e.is_transient() => {
                    return Err(gn6("AfegirSolicitantTiquet")(e));
                }
                Err(e) => warn!("No he pogut afegir el sol·licitant {user} al tiquet {code}: {e}"),
            }
        }
        Ok(())
    }
}
