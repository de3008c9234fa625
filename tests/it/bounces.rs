//! Issue 14 in the use case: what a bounce may and may not do.

use mailtoticket::app::{Delivery, Ports, Settings, deliver};
use mailtoticket::domain::mail::Mail;
use mailtoticket::domain::outcome::Status;
use mailtoticket::domain::ticket::CommentKind;
use mailtoticket::ports::{Journal, MemoryJournal, NoRateLimit, PortError, Step};

use crate::app_support::{MockDirectory, MockTickets, clock, journal, mail, settings};

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn run(m: &Mail, s: &Settings, t: &MockTickets, j: &MemoryJournal) -> Delivery {
    block(deliver(
        m,
        s,
        &Ports {
            tickets: t,
            identity: &MockDirectory::new(),
            clock: &clock(),
            journal: j,
            rate: &NoRateLimit,
        },
    ))
}

/// A bounce (null Return-Path, a DSN part) returning the message with `returned_id`.
fn bounce(returned: &[(&str, &str)]) -> Mail {
    let mut m = mail(
        "mailer-daemon@mx.example.net",
        "Undelivered Mail Returned to Sender",
        "",
    );
    m.headers.push(("Return-Path".into(), "<>".into()));
    m.structure.part_types = vec![
        "multipart/report".into(),
        "text/plain".into(),
        "message/delivery-status".into(),
        "message/rfc822".into(),
    ];
    m.structure.delivery_status = vec![
        "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; anna@example.org\nAction: failed\nStatus: 5.2.2\nDiagnostic-Code: smtp; 552 5.2.2 mailbox full\n".into(),
    ];
    m.structure.returned_headers = returned
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    m
}

#[test]
fn bounce_of_a_notification_is_one_private_unnotified_comment() {
    let s = settings("");
    let m = bounce(&[("Message-ID", "<9f-tiquet-id-321@gn6>")]);
    let mut t = MockTickets::new();
    t.expect_add_comment().times(1).returning(|c| {
        assert_eq!(c.codi_tiquet, "321");
        assert_eq!(c.tipus, CommentKind::Private);
        assert!(!c.notificar);
        assert_eq!(c.usuari, "extern");
        assert_eq!(
            c.descripcio,
            "La notificació a anna@example.org no s'ha pogut lliurar: 5.2.2 552 5.2.2 mailbox full"
        );
        Ok(())
    });
    let j = journal();
    let out = run(&m, &s, &t, &j);
    assert_eq!(out.status, Status::Success, "{out:?}");
    assert_eq!(out.ticket.as_deref(), Some("321"));
    assert_eq!(out.filter.as_deref(), Some("bounce"));
    assert_eq!(j.done(&Step::CommentAdded).as_deref(), Some("321"));
    assert!(j.done(&Step::Completed).is_some());
}

#[test]
fn a_failed_comment_is_retried_by_the_mta() {
    let s = settings("");
    let m = bounce(&[("Message-ID", "<9f-tiquet-id-321@gn6>")]);
    let mut t = MockTickets::new();
    t.expect_add_comment()
        .times(1)
        .returning(|_| Err(PortError::Transient("GN6 no respon".into())));
    let out = run(&m, &s, &t, &journal());
    assert_eq!(out.status, Status::TempFail, "{out:?}");
}

#[test]
fn bounce_of_our_own_report_or_of_anything_else_is_only_skipped() {
    let s = settings("notificar_errors_from = 'mailtoticket@upc.edu'");
    for returned in [
        vec![
            ("X-Mailtoticket-Loop", "1"),
            ("Message-ID", "<9f-tiquet-id-321@gn6>"),
        ],
        vec![("From", "Mailtoticket <MailToTicket@upc.edu>")],
        vec![("Message-ID", "<someone@example.org>")],
    ] {
        let out = run(&bounce(&returned), &s, &MockTickets::new(), &journal());
        assert_eq!(out.status, Status::Skip, "{returned:?}: {out:?}");
        assert_eq!(out.class.as_deref(), Some("bounce"));
    }
}

#[test]
fn no_list_forces_a_bounce_into_a_ticket() {
    let s = settings("mails_sempre_ticket = ['mailer-daemon@mx.example.net']\nfiltres = ['nou']");
    // MockTickets without expectations: any create, modify or comment call panics.
    let out = run(&bounce(&[]), &s, &MockTickets::new(), &journal());
    assert_eq!(out.status, Status::Skip, "{out:?}");
}

#[test]
fn an_out_of_office_answer_to_a_notification_is_counted_not_commented() {
    let s = settings("");
    let mut m = mail(
        "anna@example.org",
        "Out of office: [Suport Unitat 321] Impressora",
        "",
    );
    m.in_reply_to = vec!["<9f-tiquet-id-321@gn6>".into()];
    let j = journal();
    let out = run(&m, &s, &MockTickets::new(), &j);
    assert_eq!(out.status, Status::Skip);
    assert_eq!(out.ticket.as_deref(), Some("321"));
    assert_eq!(j.done(&Step::AutoReplyTo).as_deref(), Some("321"));
    // One that answers nothing of GN6 is not counted.
    let m = mail("anna@example.org", "Out of office", "");
    let j = journal();
    run(&m, &s, &MockTickets::new(), &j);
    assert_eq!(j.done(&Step::AutoReplyTo), None);
}
