//! The retry decorator (`adapters::retry::Retrying`): only read-only calls are
//! repeated, only on transient errors, with a bounded backoff through an injected
//! sleeper; and the overall deadline per mail (`app::deliver_with_deadline`).

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mailtoticket::adapters::journal::MemoryRateLimitStore;
use mailtoticket::adapters::retry::{DEFAULT_BACKOFF, Retrying, Sleep};
use mailtoticket::app::{Ports, deliver, deliver_with_deadline};
use mailtoticket::domain::identity::Person;
use mailtoticket::domain::outcome::Status;
use mailtoticket::domain::ticket::{
    CommentKind, ESTAT_OBERT, NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo,
};
use mailtoticket::ports::{IdentityDirectory, Journal, NoRateLimit, PortError, Step, TicketSystem};
use mockall::Sequence;

use crate::app_support::*;

fn block<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(f)
}

/// A sleeper that only records the pauses asked for.
#[derive(Clone, Default)]
struct Pauses(Rc<RefCell<Vec<Duration>>>);

impl Sleep for Pauses {
    fn sleep(&self, pause: Duration) -> impl Future<Output = ()> {
        self.0.borrow_mut().push(pause);
        std::future::ready(())
    }
}

impl Pauses {
    fn taken(&self) -> Vec<Duration> {
        self.0.borrow().clone()
    }
}

fn retrying<T>(inner: T) -> (Retrying<T, Pauses>, Pauses) {
    let pauses = Pauses::default();
    (Retrying::new(inner).with_sleep(pauses.clone()), pauses)
}

fn open_ticket(code: &str) -> TicketInfo {
    ticket_info(code, ESTAT_OBERT, "pep", "pep@upc.edu")
}

// ------------------------------------------------------------ read-only calls

#[test]
fn transient_then_success_gives_the_one_result() {
    let mut seq = Sequence::new();
    let mut t = MockTickets::new();
    t.expect_query_ticket()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(transient()));
    t.expect_query_ticket()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|c| Ok(Some(open_ticket(c))));
    let (r, pauses) = retrying(t);
    let got = block(r.query_ticket("42")).unwrap();
    assert_eq!(got, Some(open_ticket("42")));
    assert_eq!(pauses.taken(), vec![Duration::from_millis(100)]);
}

#[test]
fn three_transient_errors_give_up_with_the_transient_error() {
    let mut t = MockTickets::new();
    t.expect_query_ticket()
        .times(3)
        .returning(|_| Err(transient()));
    let (r, pauses) = retrying(t);
    let err = block(r.query_ticket("42")).unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert_eq!(pauses.taken(), DEFAULT_BACKOFF.to_vec());
    assert_eq!(
        DEFAULT_BACKOFF,
        [Duration::from_millis(100), Duration::from_millis(400)]
    );
}

#[test]
fn fault_service_and_not_found_are_not_retried() {
    for answer in [Err(fault()), Err(service()), Ok(None)] {
        let mut t = MockTickets::new();
        let a = answer.clone();
        t.expect_query_ticket()
            .times(1)
            .returning(move |_| a.clone());
        let (r, pauses) = retrying(t);
        assert_eq!(block(r.query_ticket("42")), answer);
        assert!(pauses.taken().is_empty());
    }
}

#[test]
fn directory_lookups_are_retried() {
    let mut seq = Sequence::new();
    let mut d = MockDirectory::new();
    d.expect_person()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(transient()));
    d.expect_person()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|c| Ok(Some(person(c, None))));
    d.expect_persons_by_email()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(transient()));
    d.expect_persons_by_email()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(transient()));
    d.expect_persons_by_email()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(vec!["pep".into()]));
    let (r, pauses) = retrying(d);
    assert_eq!(block(r.person("pep")).unwrap(), Some(person("pep", None)));
    assert_eq!(
        block(r.persons_by_email("pep@upc.edu")).unwrap(),
        vec!["pep".to_string()]
    );
    assert_eq!(pauses.taken().len(), 3);
}

#[test]
fn directory_fault_is_not_retried() {
    let mut d = MockDirectory::new();
    d.expect_person().times(1).returning(|_| Err(fault()));
    let (r, pauses) = retrying(d);
    assert_eq!(block(r.person("pep")), Err(fault()));
    assert!(pauses.taken().is_empty());
}

// ------------------------------------------------------------ mutating calls

#[test]
fn mutating_calls_are_never_retried() {
    let mut t = MockTickets::new();
    t.expect_create_ticket()
        .times(1)
        .returning(|_| Err(transient()));
    t.expect_modify_ticket()
        .times(1)
        .returning(|_| Err(transient()));
    t.expect_add_comment()
        .times(1)
        .returning(|_| Err(transient()));
    t.expect_attach_file()
        .times(1)
        .returning(|_| Err(transient()));
    t.expect_add_requester()
        .times(1)
        .returning(|_, _| Err(transient()));
    let (r, pauses) = retrying(t);
    assert!(block(r.create_ticket(&NewTicket::default())).is_err());
    assert!(block(r.modify_ticket(&TicketChanges::default())).is_err());
    let comment = NewComment {
        codi_tiquet: "1".into(),
        usuari: "pep".into(),
        descripcio: "x".into(),
        tipus: CommentKind::Public,
        notificar: false,
    };
    assert!(block(r.add_comment(&comment)).is_err());
    let attachment = NewAttachment {
        codi_tiquet: "1",
        usuari: "pep",
        nom_fitxer: "a.txt",
        content: b"x",
    };
    assert!(block(r.attach_file(&attachment)).is_err());
    assert!(block(r.add_requester("1", "pep")).is_err());
    assert!(pauses.taken().is_empty());
}

#[test]
fn mutating_calls_pass_their_answers_through() {
    let mut t = MockTickets::new();
    t.expect_create_ticket()
        .times(1)
        .returning(|_| Ok("77".into()));
    let (r, _) = retrying(t);
    assert_eq!(
        block(r.create_ticket(&NewTicket::default())),
        Ok("77".into())
    );
}

#[test]
fn the_real_sleeper_waits_between_attempts() {
    let mut seq = Sequence::new();
    let mut t = MockTickets::new();
    t.expect_query_ticket()
        .times(2)
        .in_sequence(&mut seq)
        .returning(|_| Err(transient()));
    t.expect_query_ticket()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|c| Ok(Some(open_ticket(c))));
    let r = Retrying::new(t).with_backoff(vec![Duration::from_millis(20); 2]);
    let start = Instant::now();
    assert!(block(r.query_ticket("1")).unwrap().is_some());
    assert!(start.elapsed() >= Duration::from_millis(40));
}

// ------------------------------------------------------------ through the use case

#[test]
fn a_reply_survives_one_transient_lookup() {
    let s = settings("");
    let mut seq = Sequence::new();
    let mut t = MockTickets::new();
    t.expect_query_ticket()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(transient()));
    t.expect_query_ticket()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|c| Ok(Some(open_ticket(c))));
    t.expect_add_comment()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(()));
    let mut d = MockDirectory::new();
    d.expect_person().returning(|c| Ok(Some(person(c, None))));
    d.expect_persons_by_email().returning(|_| Ok(vec![]));
    let (t, _) = retrying(t);
    let (d, _) = retrying(d);
    let m = mail("pep@upc.edu", "Re: [Suport Unitat 42] Hola", "x");
    let out = block(deliver(
        &m,
        &s,
        &Ports {
            tickets: &t,
            identity: &d,
            clock: &clock(),
            journal: &journal(),
            rate: &NoRateLimit,
        },
    ));
    assert_eq!(out.status, Status::Success, "{out:?}");
    assert_eq!(out.ticket.as_deref(), Some("42"));
}

#[test]
fn a_lookup_still_failing_after_the_retries_is_a_tempfail() {
    let s = settings("");
    let mut t = MockTickets::new();
    t.expect_query_ticket()
        .times(3)
        .returning(|_| Err(transient()));
    let (t, _) = retrying(t);
    let m = mail("pep@upc.edu", "Re: [Suport Unitat 42] Hola", "x");
    let out = block(deliver(
        &m,
        &s,
        &Ports {
            tickets: &t,
            identity: &MockDirectory::new(),
            clock: &clock(),
            journal: &journal(),
            rate: &NoRateLimit,
        },
    ));
    assert_eq!(out.status, Status::TempFail, "{out:?}");
}

#[test]
fn a_transient_altatiquet_is_a_tempfail_after_one_call() {
    let s = settings("filtres = [\"nou_extern\"]");
    let mut t = MockTickets::new();
    t.expect_create_ticket()
        .times(1)
        .returning(|_| Err(transient()));
    let (t, pauses) = retrying(t);
    let m = mail("pep@gmail.com", "Hola", "x");
    let out = block(deliver(
        &m,
        &s,
        &Ports {
            tickets: &t,
            identity: &MockDirectory::new(),
            clock: &clock(),
            journal: &journal(),
            rate: &MemoryRateLimitStore::default(),
        },
    ));
    assert_eq!(out.status, Status::TempFail, "{out:?}");
    assert!(pauses.taken().is_empty());
}

// ------------------------------------------------------------ the deadline

/// A bus that accepts every call and never answers.
struct Silent;

impl TicketSystem for Silent {
    async fn query_ticket(&self, _: &str) -> Result<Option<TicketInfo>, PortError> {
        std::future::pending().await
    }
    async fn find_tickets(&self, _: &str, _: &str) -> Result<Vec<TicketInfo>, PortError> {
        std::future::pending().await
    }
    async fn create_ticket(&self, _: &NewTicket) -> Result<String, PortError> {
        std::future::pending().await
    }
    async fn modify_ticket(&self, _: &TicketChanges) -> Result<(), PortError> {
        std::future::pending().await
    }
    async fn add_comment(&self, _: &NewComment) -> Result<(), PortError> {
        std::future::pending().await
    }
    async fn attach_file(&self, _: &NewAttachment<'_>) -> Result<String, PortError> {
        std::future::pending().await
    }
    async fn add_requester(&self, _: &str, _: &str) -> Result<(), PortError> {
        std::future::pending().await
    }
}

impl IdentityDirectory for Silent {
    async fn person(&self, _: &str) -> Result<Option<Person>, PortError> {
        std::future::pending().await
    }
    async fn persons_by_email(&self, _: &str) -> Result<Vec<String>, PortError> {
        std::future::pending().await
    }
}

#[test]
fn a_bus_that_never_answers_is_a_quick_tempfail() {
    let s = settings("");
    assert_eq!(
        s.limits.deadline,
        std::time::Duration::from_secs(120),
        "the default"
    );
    let m = mail("pep@upc.edu", "Hola", "x");
    let start = Instant::now();
    let out = block(deliver_with_deadline(
        &m,
        &s,
        &Ports {
            tickets: &Silent,
            identity: &Silent,
            clock: &clock(),
            journal: &journal(),
            rate: &NoRateLimit,
        },
        Duration::from_millis(50),
    ));
    let took = start.elapsed();
    assert_eq!(out.status, Status::TempFail, "{out:?}");
    assert_eq!(out.reason, "temps esgotat");
    assert!(took >= Duration::from_millis(50), "{took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn the_deadline_keeps_what_the_journal_has() {
    // AltaTiquet was done by an earlier run; the attachment upload hangs now.
    let s = settings("filtres = [\"nou_extern\"]");
    let mut m = mail("pep@gmail.com", "Hola", "x");
    m.attachments = vec![attachment("a.txt", "text/plain", None, b"hola")];
    let j = journal();
    j.record(&Step::TicketCreated, "31").unwrap();
    let out = block(deliver_with_deadline(
        &m,
        &s,
        &Ports {
            tickets: &Silent,
            identity: &Silent,
            clock: &clock(),
            journal: &j,
            rate: &NoRateLimit,
        },
        Duration::from_millis(50),
    ));
    assert_eq!(out.status, Status::TempFail, "{out:?}");
    assert_eq!(out.ticket.as_deref(), Some("31"));
    assert!(j.done(&Step::Completed).is_none());
}

#[test]
fn a_mail_inside_the_deadline_is_not_affected() {
    let s = settings("filtres = [\"nou_extern\"]");
    let mut t = MockTickets::new();
    t.expect_create_ticket()
        .times(1)
        .returning(|_| Ok("12".into()));
    let out = block(deliver_with_deadline(
        &mail("pep@gmail.com", "Hola", "x"),
        &s,
        &Ports {
            tickets: &t,
            identity: &MockDirectory::new(),
            clock: &clock(),
            journal: &journal(),
            rate: &NoRateLimit,
        },
        Duration::from_secs(5),
    ));
    assert_eq!(out.status, Status::Success, "{out:?}");
    assert_eq!(out.ticket.as_deref(), Some("12"));
}
