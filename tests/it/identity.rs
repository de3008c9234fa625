//! Identity chain (BEHAVIOUR §4) through a mocked `IdentityDirectory`: exact calls,
//! order, and "not found" kept apart from "the directory failed".

use mailtoticket::app::identity::{find_requester, find_username};
use mailtoticket::domain::mail::Mail;
use mailtoticket::ports::PortError;
use mockall::Sequence;
use mockall::predicate::eq;

use crate::app_support::*;

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn upc_address_is_tried_as_cn_first() {
    let s = settings("");
    let mut d = MockDirectory::new();
    d.expect_person()
        .with(eq("nom.cognom"))
        .times(1)
        .returning(|_| Ok(Some(person("nom.cognom", None))));
    let found = block(find_username("Nom.Cognom@UPC.EDU", &s, &d));
    assert_eq!(found, Ok(Some("nom.cognom".into())));
}

#[test]
fn upc_address_not_a_cn_goes_to_the_address_search() {
    let s = settings("");
    let mut seq = Sequence::new();
    let mut d = MockDirectory::new();
    d.expect_person()
        .with(eq("alias"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(None));
    d.expect_persons_by_email()
        .with(eq("alias@upc.edu"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(vec!["real.cn".into()]));
    assert_eq!(
        block(find_username("alias@upc.edu", &s, &d)),
        Ok(Some("real.cn".into()))
    );
}

#[test]
fn canonical_rewrites_apply_before_lookup() {
    let s = settings("");
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .with(eq("jo@cs.upc.edu"))
        .times(1)
        .returning(|_| Ok(vec!["jo.cs".into()]));
    assert_eq!(
        block(find_username("Jo@LSI.UPC.ES", &s, &d)),
        Ok(Some("jo.cs".into()))
    );
}

#[test]
fn configurable_rewrites_replace_the_defaults() {
    let s = settings(r#"canonical_rewrites = [["@old.example", "@new.example"]]"#);
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .with(eq("a@lsi.upc.es"))
        .times(1)
        .returning(|_| Ok(vec![]));
    d.expect_persons_by_email()
        .with(eq("b@new.example"))
        .times(1)
        .returning(|_| Ok(vec!["b".into()]));
    assert_eq!(block(find_username("a@lsi.upc.es", &s, &d)), Ok(None));
    assert_eq!(
        block(find_username("b@old.example", &s, &d)),
        Ok(Some("b".into()))
    );
}

#[test]
fn mails_addicionals_win_without_calling_the_directory() {
    let s = settings("[mails_addicionals]\n\"Suport@Lsi.upc.edu\" = \"suport.cs\"\n");
    let d = MockDirectory::new(); // any call panics
    assert_eq!(
        block(find_username("suport@cs.upc.edu", &s, &d)),
        Ok(Some("suport.cs".into()))
    );
}

#[test]
fn several_persons_pick_the_preferred_address() {
    let s = settings("");
    let mut seq = Sequence::new();
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .with(eq("shared@ac.upc.edu"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(vec!["a".into(), "b".into()]));
    d.expect_person()
        .with(eq("a"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(Some(person("a", Some("a@upc.edu")))));
    d.expect_person()
        .with(eq("b"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(Some(person("b", Some("Shared@AC.upc.es")))));
    assert_eq!(
        block(find_username("shared@ac.upc.edu", &s, &d)),
        Ok(Some("b".into()))
    );
}

#[test]
fn several_persons_none_preferred_is_not_found_then_patterns() {
    let s = settings("[patrons_mail_addicionals]\n'(.*)@ac\\.upc\\.edu' = \"ac.%s\"\n");
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .times(1)
        .returning(|_| Ok(vec!["a".into(), "b".into()]));
    d.expect_person()
        .times(2)
        .returning(|cn| Ok(Some(person(cn, Some("x@upc.edu")))));
    assert_eq!(
        block(find_username("shared@ac.upc.edu", &s, &d)),
        Ok(Some("ac.shared".into()))
    );
}

#[test]
fn patterns_in_file_order_match_at_start() {
    let s = settings(
        "[patrons_mail_addicionals]\n'.*@first\\.org' = \"first\"\n'x@.*' = \"second\"\n'ext' = \"never\"\n",
    );
    let mut d = MockDirectory::new();
    d.expect_persons_by_email().returning(|_| Ok(vec![]));
    assert_eq!(
        block(find_username("x@first.org", &s, &d)),
        Ok(Some("first".into()))
    );
    assert_eq!(
        block(find_username("x@other.org", &s, &d)),
        Ok(Some("second".into()))
    );
    assert_eq!(block(find_username("y@ext.org", &s, &d)), Ok(None));
}

#[test]
fn nobody_is_not_found() {
    let s = settings("");
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .with(eq("nobody@gmail.com"))
        .times(1)
        .returning(|_| Ok(vec![]));
    assert_eq!(block(find_username("nobody@gmail.com", &s, &d)), Ok(None));
}

#[test]
fn directory_failure_is_not_not_found() {
    let s = settings("[patrons_mail_addicionals]\n'.*' = \"catch.all\"\n");
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .times(1)
        .returning(|_| Err(transient()));
    assert_eq!(
        block(find_username("who@gmail.com", &s, &d)),
        Err(transient())
    );
    let mut d = MockDirectory::new();
    d.expect_person()
        .times(1)
        .returning(|_| Err(PortError::Permanent("resposta il·legible".into())));
    assert!(block(find_username("who@upc.edu", &s, &d)).is_err());
}

#[test]
fn failure_while_picking_among_several_propagates() {
    let s = settings("");
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .returning(|_| Ok(vec!["a".into(), "b".into()]));
    d.expect_person().with(eq("a")).returning(|_| Err(fault()));
    assert_eq!(block(find_username("s@x.org", &s, &d)), Err(fault()));
}

fn web_form_mail() -> Mail {
    let mut m = mail("noreply@web.upc.edu", "Formulari", "x");
    m.reply_to = vec!["pep@gmail.com".into()];
    m
}

#[test]
fn reply_to_first() {
    let s = settings("");
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .with(eq("pep@gmail.com"))
        .times(1)
        .returning(|_| Ok(vec!["pep".into()]));
    assert_eq!(
        block(find_requester(&web_form_mail(), &s, &d)),
        Ok(Some(("pep".into(), "pep@gmail.com".into())))
    );
}

#[test]
fn from_when_reply_to_gives_nothing() {
    let s = settings("");
    let mut seq = Sequence::new();
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .with(eq("pep@gmail.com"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(vec![]));
    d.expect_persons_by_email()
        .with(eq("noreply@web.upc.edu"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(vec!["web".into()]));
    assert_eq!(
        block(find_requester(&web_form_mail(), &s, &d)),
        Ok(Some(("web".into(), "noreply@web.upc.edu".into())))
    );
}

#[test]
fn failure_on_reply_to_stops_the_chain() {
    let s = settings("");
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .with(eq("pep@gmail.com"))
        .times(1)
        .returning(|_| Err(transient()));
    assert_eq!(
        block(find_requester(&web_form_mail(), &s, &d)),
        Err(transient())
    );
}

#[test]
fn same_reply_to_and_from_is_looked_up_once() {
    let s = settings("");
    let mut m = mail("pep@gmail.com", "x", "x");
    m.reply_to = vec!["pep@gmail.com".into()];
    let mut d = MockDirectory::new();
    d.expect_persons_by_email()
        .times(1)
        .returning(|_| Ok(vec![]));
    assert_eq!(block(find_requester(&m, &s, &d)), Ok(None));
}
