//! Automatic mail that refers to a ticket (issue 14): a bounce of a GN6 notification
//! becomes a private, never-notified comment on that ticket; a bounce of our own error
//! report is only logged; an automatic reply to a notification is only counted in the
//! journal. None of them ever creates, reopens or notifies anything.

use tracing::{info, warn};

use super::{Delivery, Ports, Settings, bare_address, port_status};
use crate::domain::bounce::{self, Returned};
use crate::domain::dsn;
use crate::domain::filters::find_ticket_id;
use crate::domain::mail::Mail;
use crate::domain::outcome::Status;
use crate::domain::ticket::{CommentKind, NewComment};
use crate::ports::{Journal, Step, TicketSystem};

/// Handles a mail classified as a bounce (`rule` is the classifier's).
pub(super) async fn bounce<T: TicketSystem, I: super::identity::UserLookup>(
    mail: &Mail,
    settings: &Settings,
    ports: &Ports<'_, T, I>,
    rule: &str,
) -> Delivery {
    let (tickets, clock, journal) = (ports.tickets, ports.clock, ports.journal);
    let skipped = |why: String| {
        let mut d = Delivery::new(
            Status::Skip,
            format!("mail automàtic: bounce ({rule}){why}"),
        );
        d.class = Some("bounce".into());
        d
    };
    let returned = bounce::returned(mail, &settings.regex_message_id, |a| {
        settings
            .own_addresses
            .contains(&settings.identity.canonical(&bare_address(a)))
    });
    let (code, id) = match returned {
        Returned::Unknown => {
            info!(
                "Mail automàtic (bounce, regla {rule}): no torna cap notificació de GN6, no el tracto"
            );
            return skipped(String::new());
        }
        Returned::OwnReport => {
            warn!(
                "Rebot d'un informe d'error propi (regla {rule}): {}; no es respon",
                summary(&dsn::recipients(mail))
            );
            return skipped(": rebot d'un informe d'error propi".into());
        }
        Returned::Notification { ticket, id } => (ticket, id),
    };
    let recipients = dsn::recipients(mail);
    info!(
        "Rebot de la notificació {id} del tiquet {code}: {}",
        summary(&recipients)
    );
    let mut done = Delivery::new(
        Status::Success,
        format!("rebot de notificació: comentari privat al tiquet {code}"),
    );
    done.filter = Some("bounce".into());
    done.ticket = Some(code.clone());
    done.class = Some("bounce".into());
    if journal.done(&Step::CommentAdded).is_some() {
        info!("El comentari del rebot ja es va afegir en una entrega anterior");
        return done;
    }
    let author = settings.usuari_extern.trim().to_string();
    let comment = NewComment {
        codi_tiquet: code.clone(),
        usuari: author.clone(),
        descripcio: bounce::comment_html(&recipients, &mail.subject),
        tipus: CommentKind::Private,
        notificar: false,
    };
    done.requester = Some(author);
    let step = Step::CommentAdded;
    let pending = journal.done(&step.intent()).is_some();
    if pending {
        warn!(
            "Resultat desconegut de AfegirComentariTiquet (rebot al tiquet {code}): es torna a enviar (possible duplicat)"
        );
    }
    let fail = |status: Status, reason: String| {
        let mut d = Delivery::new(status, reason);
        d.filter = Some("bounce".into());
        d.ticket = Some(code.clone());
        d.class = Some("bounce".into());
        d
    };
    let now = clock.now();
    let day = settings
        .local_time(&now, &now)
        .date()
        .format("%d-%m-%Y")
        .to_string();
    if !pending && let Err(e) = journal.record(&step.intent(), &day) {
        return fail(Status::TempFail, format!("diari: {e}"));
    }
    if let Err(e) = tickets.add_comment(&comment).await {
        let status = port_status(&e);
        warn!("No puc afegir el comentari del rebot al tiquet {code}: {e}");
        return fail(status, format!("AfegirComentariTiquet: {e}"));
    }
    if let Err(e) = journal.record(&step, &code) {
        return fail(Status::TempFail, format!("diari: {e}"));
    }
    info!("Comentari privat del rebot afegit al tiquet {code}");
    done
}

/// An automatic reply (out of office, auto-reply) to a GN6 notification: still skipped,
/// counted in the journal as `auto-reply` with the ticket. Returns that ticket.
pub(super) fn note_reply_to_notification(
    mail: &Mail,
    settings: &Settings,
    journal: &dyn Journal,
) -> Option<String> {
    // Only the thread headers: a subject naming a ticket is no proof of a notification.
    let (code, _) = find_ticket_id(mail, &settings.regex_message_id, &never())?;
    info!("Resposta automàtica a una notificació del tiquet {code}: no es comenta, es compta");
    if let Err(e) = journal.record(&Step::AutoReplyTo, &code) {
        warn!("No puc registrar la resposta automàtica al diari: {e}");
    }
    Some(code)
}

/// A regex that matches nothing.
fn never() -> regex::Regex {
    regex::Regex::new(r"[^\s\S]").expect("static regex")
}

fn summary(recipients: &[dsn::RecipientStatus]) -> String {
    if recipients.is_empty() {
        return "destinatari desconegut".into();
    }
    recipients
        .iter()
        .map(|r| format!("{} {} {}", r.recipient, r.status, r.diagnostic))
        .collect::<Vec<_>>()
        .join("; ")
}
