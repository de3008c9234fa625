//! Loop protection in the use case (issue 5 §4): our own error reports, GN6's own
//! notifications, the gateway's own addresses, and the per-sender limit of new
//! tickets per hour, with mocked ports (a mock with no expectation panics on any call,
//! so "no call" is asserted by construction).

use std::cell::{Cell, RefCell};

use chrono::{DateTime, FixedOffset, TimeDelta};
use mailtoticket::adapters::journal::{DeliveryJournal, MemoryRateLimitStore};
use mailtoticket::app::{Delivery, Ports, Settings, deliver};
use mailtoticket::domain::mail::Mail;
use mailtoticket::domain::outcome::Status;
use mailtoticket::ports::{Clock, Journal, MemoryJournal, NoRateLimit, PortError, RateLimit, Step};

use crate::app_support::*;

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// A clock the test moves forward.
struct StepClock(Cell<DateTime<FixedOffset>>);

impl StepClock {
    fn start() -> Self {
        StepClock(Cell::new(clock().0))
    }
    fn advance(&self, by: TimeDelta) {
        self.0.set(self.0.get() + by);
    }
}

impl Clock for StepClock {
    fn now(&self) -> DateTime<FixedOffset> {
        self.0.get()
    }
}

fn run_with<R: RateLimit, C: Clock>(
    m: &Mail,
    s: &Settings,
    t: &MockTickets,
    c: &C,
    j: &MemoryJournal,
    r: &R,
) -> Delivery {
    block(deliver(
        m,
        s,
        &Ports {
            tickets: t,
            identity: &MockDirectory::new(),
            clock: c,
            journal: j,
            rate: r,
        },
    ))
}

fn run_untouched(m: &Mail, s: &Settings) -> Delivery {
    run_with(
        m,
        s,
        &MockTickets::new(),
        &clock(),
        &journal(),
        &MemoryRateLimitStore::default(),
    )
}

fn assert_loop(out: &Delivery, rule: &str) {
    assert_eq!(out.status, Status::Skip, "{out:?}");
    assert_eq!(out.class.as_deref(), Some("loop"), "{out:?}");
    assert!(
        out.reason.contains(rule),
        "{rule:?} not in {:?}",
        out.reason
    );
    assert!(out.ticket.is_none());
}

// ------------------------------------------------------- our own error reports

#[test]
fn own_error_report_is_skipped_as_loop() {
    let s = settings("");
    let mut m = mail("pep@upc.edu", "Error a mailtoticket", "x");
    m.headers.push(("X-Mailtoticket-Loop".into(), "1".into()));
    assert_loop(&run_untouched(&m, &s), "X-Mailtoticket-Loop");
}

#[test]
fn own_error_report_is_skipped_even_when_its_sender_is_always_processed() {
    let s = settings("mails_sempre_ticket = ['pep@upc.edu']");
    let mut m = mail("pep@upc.edu", "Error a mailtoticket", "x");
    m.headers.push(("X-Mailtoticket-Loop".into(), "1".into()));
    assert_loop(&run_untouched(&m, &s), "X-Mailtoticket-Loop");
}

// ------------------------------------------------- GN6's own notifications

fn gn6_notification() -> Mail {
    let mut m = mail(
        "gn6@upc.edu",
        "[Suport Unitat 657421] Tiquet creat",
        "S'ha creat el tiquet",
    );
    m.message_id = Some("<0a1b-2c3d-tiquet-id-657421@gn6>".into());
    m
}

#[test]
fn gn6_notification_that_is_no_reply_is_skipped_as_loop() {
    let s = settings("");
    assert_loop(&run_untouched(&gn6_notification(), &s), "Message-ID de GN6");
}

#[test]
fn gn6_message_id_on_a_reply_is_not_this_rule() {
    // Answering something makes it a conversation, not GN6 talking to itself: the
    // filters decide (here nou_extern creates a ticket).
    let s = settings("filtres = [\"nou_extern\"]\nmax_tickets_per_hour = 0");
    let mut m = gn6_notification();
    m.in_reply_to = vec!["<other@example.org>".into()];
    let mut t = MockTickets::new();
    t.expect_create_ticket()
        .times(1)
        .returning(|_| Ok("7".into()));
    let out = run_with(&m, &s, &t, &clock(), &journal(), &NoRateLimit);
    assert_eq!(out.status, Status::Success, "{out:?}");
    assert_eq!(out.ticket.as_deref(), Some("7"));
}

#[test]
fn ordinary_message_id_is_processed() {
    let s = settings("filtres = [\"nou_extern\"]");
    let m = mail("pep@gmail.com", "Hola", "x");
    let mut t = MockTickets::new();
    t.expect_create_ticket()
        .times(1)
        .returning(|_| Ok("8".into()));
    let out = run_with(
        &m,
        &s,
        &t,
        &clock(),
        &journal(),
        &MemoryRateLimitStore::default(),
    );
    assert_eq!(out.status, Status::Success, "{out:?}");
    assert!(out.class.is_none());
}

// ---------------------------------------------------- the gateway's own addresses

#[test]
fn mail_from_an_own_address_is_skipped_as_loop() {
    let s = settings("adreces_propies = ['Suport <Suport@UPC.edu>', 'altres@upc.edu']");
    let m = mail("suport@upc.edu", "Re: el vostre tiquet", "x");
    assert_loop(&run_untouched(&m, &s), "adreça pròpia suport@upc.edu");
}

#[test]
fn own_address_compares_in_canonical_form() {
    let s = settings("adreces_propies = ['suport@ac.upc.edu']");
    let m = mail("suport@ac.upc.es", "Hola", "x");
    assert_loop(&run_untouched(&m, &s), "adreça pròpia");
}

#[test]
fn error_report_sender_counts_as_own_address() {
    let s = settings("notificar_errors_from = 'mailtoticket@upc.edu'");
    let m = mail("mailtoticket@upc.edu", "Qualsevol cosa", "x");
    assert_loop(&run_untouched(&m, &s), "mailtoticket@upc.edu");
}

#[test]
fn own_address_wins_over_mails_sempre_ticket() {
    let s =
        settings("adreces_propies = ['suport@upc.edu']\nmails_sempre_ticket = ['suport@upc.edu']");
    let m = mail("suport@upc.edu", "Hola", "x");
    assert_loop(&run_untouched(&m, &s), "adreça pròpia");
}

#[test]
fn other_senders_are_not_own_addresses() {
    let s = settings("adreces_propies = ['suport@upc.edu']\nfiltres = [\"nou_extern\"]");
    let m = mail("suport2@upc.edu", "Hola", "x");
    let mut t = MockTickets::new();
    t.expect_create_ticket()
        .times(1)
        .returning(|_| Ok("9".into()));
    let out = run_with(&m, &s, &t, &clock(), &journal(), &NoRateLimit);
    assert_eq!(out.status, Status::Success, "{out:?}");
}

// ---------------------------------------------------- new tickets per hour

/// A ticket system that creates tickets numbered from 1, counting them.
fn counting_tickets(created: &'static std::sync::atomic::AtomicU32) -> MockTickets {
    let mut t = MockTickets::new();
    t.expect_create_ticket().returning(move |_| {
        let n = created.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok(n.to_string())
    });
    t
}

fn numbered(from: &str, n: usize) -> Mail {
    let mut m = mail(from, &format!("Consulta {n}"), "x");
    m.message_id = Some(format!("<m{n}-{from}>"));
    m
}

#[test]
fn twenty_new_tickets_pass_and_the_twenty_first_is_rejected() {
    static CREATED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let s = settings("filtres = [\"nou_extern\"]");
    assert_eq!(s.limits.max_tickets_per_hour, 20, "the default");
    let t = counting_tickets(&CREATED);
    let c = StepClock::start();
    let rate = MemoryRateLimitStore::default();
    for n in 0..20 {
        let out = run_with(
            &numbered("robot@example.org", n),
            &s,
            &t,
            &c,
            &journal(),
            &rate,
        );
        assert_eq!(out.status, Status::Success, "mail {n}: {out:?}");
        c.advance(TimeDelta::minutes(2));
    }
    let out = run_with(
        &numbered("robot@example.org", 20),
        &s,
        &t,
        &c,
        &journal(),
        &rate,
    );
    assert_eq!(out.status, Status::Reject, "{out:?}");
    assert!(out.reason.contains("robot@example.org"), "{}", out.reason);
    assert!(out.reason.contains("20"), "{}", out.reason);
    assert!(out.ticket.is_none());
    assert_eq!(CREATED.load(std::sync::atomic::Ordering::SeqCst), 20);

    // Another sender is not affected.
    let out = run_with(&numbered("pep@gmail.com", 0), &s, &t, &c, &journal(), &rate);
    assert_eq!(out.status, Status::Success, "{out:?}");

    // The first ticket was created 40 minutes ago: 20 minutes and a bit later it has
    // left the window, so exactly one more fits.
    c.advance(TimeDelta::minutes(20) + TimeDelta::seconds(1));
    let out = run_with(
        &numbered("robot@example.org", 21),
        &s,
        &t,
        &c,
        &journal(),
        &rate,
    );
    assert_eq!(out.status, Status::Success, "{out:?}");
    let out = run_with(
        &numbered("robot@example.org", 22),
        &s,
        &t,
        &c,
        &journal(),
        &rate,
    );
    assert_eq!(out.status, Status::Reject, "{out:?}");

    // An hour after the last one, the sender starts afresh.
    c.advance(TimeDelta::hours(1));
    let out = run_with(
        &numbered("robot@example.org", 23),
        &s,
        &t,
        &c,
        &journal(),
        &rate,
    );
    assert_eq!(out.status, Status::Success, "{out:?}");
}

#[test]
fn the_limit_counts_the_sender_case_insensitively() {
    static CREATED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let s = settings("filtres = [\"nou_extern\"]\nmax_tickets_per_hour = 1");
    let t = counting_tickets(&CREATED);
    let rate = MemoryRateLimitStore::default();
    let out = run_with(
        &numbered("Robot@Example.org", 0),
        &s,
        &t,
        &clock(),
        &journal(),
        &rate,
    );
    assert_eq!(out.status, Status::Success);
    let out = run_with(
        &numbered("robot@example.org", 1),
        &s,
        &t,
        &clock(),
        &journal(),
        &rate,
    );
    assert_eq!(out.status, Status::Reject, "{out:?}");
}

#[test]
fn zero_means_unlimited() {
    static CREATED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let s = settings("filtres = [\"nou_extern\"]\nmax_tickets_per_hour = 0");
    let t = counting_tickets(&CREATED);
    let rate = MemoryRateLimitStore::default();
    for n in 0..25 {
        let out = run_with(
            &numbered("robot@example.org", n),
            &s,
            &t,
            &clock(),
            &journal(),
            &rate,
        );
        assert_eq!(out.status, Status::Success, "mail {n}: {out:?}");
    }
    // Nothing counted either.
    let since = clock().0 - TimeDelta::hours(1);
    assert_eq!(
        rate.count_new_tickets("robot@example.org", since).unwrap(),
        0
    );
}

#[test]
fn the_limit_applies_to_nou_too() {
    let s = settings("max_tickets_per_hour = 1");
    let mut d = MockDirectory::new();
    d.expect_person()
        .returning(|c| Ok((c == "pep").then(|| person(c, None))));
    d.expect_persons_by_email().returning(|_| Ok(vec![]));
    let mut t = MockTickets::new();
    t.expect_create_ticket()
        .times(1)
        .returning(|_| Ok("1".into()));
    let rate = MemoryRateLimitStore::default();
    let first = block(deliver(
        &numbered("pep@upc.edu", 0),
        &s,
        &Ports {
            tickets: &t,
            identity: &d,
            clock: &clock(),
            journal: &journal(),
            rate: &rate,
        },
    ));
    assert_eq!(first.status, Status::Success, "{first:?}");
    let second = block(deliver(
        &numbered("pep@upc.edu", 1),
        &s,
        &Ports {
            tickets: &t,
            identity: &d,
            clock: &clock(),
            journal: &journal(),
            rate: &rate,
        },
    ));
    assert_eq!(second.status, Status::Reject, "{second:?}");
    assert_eq!(second.filter.as_deref(), Some("nou"));
}

#[test]
fn a_resumed_creation_is_not_refused_by_the_limit() {
    let s = settings("filtres = [\"nou_extern\"]\nmax_tickets_per_hour = 1");
    let rate = MemoryRateLimitStore::default();
    rate.note_new_ticket("robot@example.org", clock().0)
        .unwrap();
    // The previous run of this very mail created ticket 5 and then was cut.
    let j = journal();
    j.record(&Step::TicketCreated, "5").unwrap();
    let out = run_with(
        &numbered("robot@example.org", 0),
        &s,
        &MockTickets::new(),
        &clock(),
        &j,
        &rate,
    );
    assert_eq!(out.status, Status::Success, "{out:?}");
    assert_eq!(out.ticket.as_deref(), Some("5"));
}

#[test]
fn replies_are_not_limited() {
    let s = settings("max_tickets_per_hour = 1");
    let rate = MemoryRateLimitStore::default();
    rate.note_new_ticket("pep@upc.edu", clock().0).unwrap();
    let mut m = mail("pep@upc.edu", "Re: [Suport Unitat 42] Hola", "x");
    m.message_id = Some("<r1@upc.edu>".into());
    let mut t = MockTickets::new();
    t.expect_query_ticket().times(1).returning(|c| {
        Ok(Some(ticket_info(
            c,
            mailtoticket::domain::ticket::ESTAT_OBERT,
            "pep",
            "pep@upc.edu",
        )))
    });
    t.expect_add_comment().times(1).returning(|_| Ok(()));
    let mut d = MockDirectory::new();
    d.expect_person().returning(|c| Ok(Some(person(c, None))));
    d.expect_persons_by_email().returning(|_| Ok(vec![]));
    let out = block(deliver(
        &m,
        &s,
        &Ports {
            tickets: &t,
            identity: &d,
            clock: &clock(),
            journal: &journal(),
            rate: &rate,
        },
    ));
    assert_eq!(out.status, Status::Success, "{out:?}");
    assert_eq!(out.ticket.as_deref(), Some("42"));
}

/// A rate store that cannot be read, and counts the notes it is asked for.
#[derive(Default)]
struct BrokenRate(RefCell<u32>);

impl RateLimit for BrokenRate {
    fn count_new_tickets(
        &self,
        _sender: &str,
        _since: DateTime<FixedOffset>,
    ) -> Result<u32, PortError> {
        Err(PortError::Transient("base de dades ocupada".into()))
    }
    fn note_new_ticket(&self, _sender: &str, _at: DateTime<FixedOffset>) -> Result<(), PortError> {
        *self.0.borrow_mut() += 1;
        Ok(())
    }
}

#[test]
fn an_unreadable_count_is_a_tempfail_before_any_ticket() {
    let s = settings("filtres = [\"nou_extern\"]");
    let rate = BrokenRate::default();
    let out = run_with(
        &numbered("robot@example.org", 0),
        &s,
        &MockTickets::new(),
        &clock(),
        &journal(),
        &rate,
    );
    assert_eq!(out.status, Status::TempFail, "{out:?}");
    assert_eq!(*rate.0.borrow(), 0);
}

#[test]
fn the_delivery_journal_keeps_the_count_across_processes() {
    static CREATED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let dir = tempfile::tempdir().unwrap();
    let s = settings("filtres = [\"nou_extern\"]\nmax_tickets_per_hour = 2");
    let t = counting_tickets(&CREATED);
    for n in 0..3 {
        // A fresh handle each time, as a new MDA process would open it.
        let rate = DeliveryJournal::open(dir.path()).unwrap();
        let out = run_with(
            &numbered("robot@example.org", n),
            &s,
            &t,
            &clock(),
            &journal(),
            &rate,
        );
        let want = if n < 2 {
            Status::Success
        } else {
            Status::Reject
        };
        assert_eq!(out.status, want, "mail {n}: {out:?}");
    }
    assert_eq!(CREATED.load(std::sync::atomic::Ordering::SeqCst), 2);
}

// ---------------------------------------------------- automatic mail

#[test]
fn automatic_mail_is_skipped_before_the_limit_is_asked() {
    // An auto-reply never reaches AltaTiquet, so it neither counts nor is counted.
    let s = settings("filtres = [\"nou_extern\"]");
    let mut m = numbered("robot@example.org", 0);
    m.headers
        .push(("Auto-Submitted".into(), "auto-replied".into()));
    let rate = BrokenRate::default();
    let out = run_with(&m, &s, &MockTickets::new(), &clock(), &journal(), &rate);
    assert_eq!(out.status, Status::Skip, "{out:?}");
    assert_eq!(out.class.as_deref(), Some("auto-reply"));
}

// ---------------------------------------------------- settings

#[test]
fn loop_settings_defaults_and_own_address_list() {
    let s = settings("");
    assert!(s.own_addresses.is_empty(), "{:?}", s.own_addresses);
    assert_eq!(s.limits.max_tickets_per_hour, 20);
    assert_eq!(s.limits.deadline, std::time::Duration::from_secs(120));
    let s = settings(
        "adreces_propies = ['Suport <SUPORT@ac.upc.es>', ' ']\nnotificar_errors_from = 'gw@upc.edu'\nmax_tickets_per_hour = 5\ndeadline_secs = 30",
    );
    assert_eq!(s.own_addresses, vec!["suport@ac.upc.edu", "gw@upc.edu"]);
    assert_eq!(s.limits.max_tickets_per_hour, 5);
    assert_eq!(s.limits.deadline, std::time::Duration::from_secs(30));
}

#[test]
fn parsed_gn6_notification_is_skipped_and_a_parsed_reply_to_it_is_not() {
    use mailtoticket::adapters::mail::{AttachmentFilters, parse};
    let s = settings("");
    let notification = b"From: GN6 <gn6@upc.edu>\r\nTo: suport@upc.edu\r\n\
Message-ID: <3f2a-9b-tiquet-id-657421@gn6>\r\nSubject: Tiquet 657421 actualitzat\r\n\
Content-Type: text/plain\r\n\r\nS'ha afegit un comentari.\r\n";
    let m = parse(notification, &AttachmentFilters::default());
    assert_loop(&run_untouched(&m, &s), "Message-ID de GN6");

    let reply = b"From: pep@upc.edu\r\nTo: suport@upc.edu\r\n\
Message-ID: <3f2a-9c-tiquet-id-657421@gn6>\r\nIn-Reply-To: <3f2a-9b-tiquet-id-657421@gn6>\r\n\
Subject: Re: Tiquet 657421 actualitzat\r\nContent-Type: text/plain\r\n\r\nGracies\r\n";
    let m = parse(reply, &AttachmentFilters::default());
    assert!(mailtoticket::app::loop_rule(&m, &s).is_none());
}
