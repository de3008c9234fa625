//! Delivery journal: resume, completion, keys, per-mail locking (threads and
//! processes), pruning, listing, rate counts and crash safety.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeDelta};
use mailtoticket::adapters::journal::{
    DB_FILE_NAME, DeliveryJournal, MemoryRateLimitStore, RateLimitStore, STATUS_IN_PROGRESS,
    mail_key,
};
use mailtoticket::ports::{Clock, Journal, Step};

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("test time")
}

struct FixedClock(DateTime<FixedOffset>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<FixedOffset> {
        self.0
    }
}

fn journal(dir: &Path) -> DeliveryJournal {
    DeliveryJournal::open(dir)
        .expect("open journal")
        .with_clock(Arc::new(FixedClock(t("2026-11-28T10:00:05+01:00"))))
}

#[test]
fn journal_types_can_cross_threads_and_await_points() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<DeliveryJournal>();
    send_sync::<mailtoticket::adapters::journal::MailRun>();
    send_sync::<MemoryRateLimitStore>();
}

#[test]
fn open_creates_the_database_file_in_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("nested/state");
    let j = DeliveryJournal::open(&state).unwrap();
    assert_eq!(j.db_path(), state.join(DB_FILE_NAME));
    assert!(state.join(DB_FILE_NAME).is_file());
    assert!(state.join("locks").is_dir());
}

#[test]
fn key_is_the_message_id_or_the_sha256_of_the_raw_mail() {
    assert_eq!(mail_key(Some("<a@b>"), b"whatever"), "<a@b>");
    assert_eq!(mail_key(Some("  <a@b>\r\n"), b"x"), "<a@b>");
    // Without Message-ID: the digest of what the sender wrote (issue 12 §1), not of
    // the raw bytes, so that a re-fetch with new trace headers keeps the key.
    assert_eq!(
        mail_key(None, b"abc"),
        format!(
            "sha256:{}",
            mailtoticket::domain::mail_key::content_digest(b"abc")
        )
    );
    assert_eq!(
        mail_key(None, b"Subject: x\n\nbody\n"),
        mail_key(None, b"Received: by fetchmail\nSubject: x\n\nbody\n")
    );
    assert_eq!(mail_key(Some("   "), b"abc"), mail_key(None, b"abc"));
    assert_ne!(mail_key(None, b"abc"), mail_key(None, b"abd"));
}

#[test]
fn an_overlong_message_id_is_keyed_by_its_hash_and_still_found() {
    let long_id = format!("<{}@x>", "a".repeat(2000));
    let key = mail_key(Some(&long_id), b"raw");
    assert!(key.starts_with("id-sha256:") && key.len() < 100, "{key}");
    assert_eq!(key, mail_key(Some(&long_id), b"other raw"));
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    j.begin(&key, t("2026-11-28T10:00:00Z")).unwrap();
    assert_eq!(j.show(&long_id).unwrap().expect("by id").key, key);
    assert_eq!(
        j.show(&long_id[1..long_id.len() - 1])
            .unwrap()
            .expect("bare")
            .key,
        key
    );
}

#[test]
fn a_new_process_resumes_after_the_ticket_step() {
    let dir = tempfile::tempdir().unwrap();
    let key = "<resume@test>";
    {
        let j = journal(dir.path());
        let run = j.begin(key, t("2026-11-28T10:00:00+01:00")).unwrap();
        assert_eq!(run.done(&Step::TicketCreated), None);
        run.record(&Step::TicketCreated, "T-123").unwrap();
        run.record(&Step::Attachment(0), "A-1").unwrap();
        // Crash here: no more steps, no Completed.
    }
    let j = journal(dir.path());
    let run = j.begin(key, t("2026-11-28T10:05:00+01:00")).unwrap();
    assert_eq!(run.done(&Step::TicketCreated).as_deref(), Some("T-123"));
    assert_eq!(run.done(&Step::Attachment(0)).as_deref(), Some("A-1"));
    assert_eq!(run.done(&Step::Attachment(1)), None);
    assert_eq!(run.done(&Step::CommentAdded), None);
    assert!(!run.is_completed());
}

#[test]
fn steps_of_one_mail_do_not_leak_into_another() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let a = j.begin("<a@x>", t("2026-11-28T10:00:00Z")).unwrap();
    a.record(&Step::TicketCreated, "T-1").unwrap();
    // "<a@x>" is a prefix of "<a@x>2" in the key order: must still stay apart.
    let b = j.begin("<a@x>2", t("2026-11-28T10:00:00Z")).unwrap();
    assert_eq!(b.done(&Step::TicketCreated), None);
    b.record(&Step::CommentAdded, "T-9").unwrap();
    drop((a, b));
    let a = j.begin("<a@x>", t("2026-11-28T10:01:00Z")).unwrap();
    assert_eq!(a.done(&Step::CommentAdded), None);
    assert_eq!(j.show("<a@x>").unwrap().unwrap().steps.len(), 1);
}

#[test]
fn completed_mail_is_detected_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let key = mail_key(None, b"From: a@b\r\n\r\nno id\r\n");
    {
        let j = journal(dir.path());
        let run = j.begin(&key, t("2026-11-28T10:00:00Z")).unwrap();
        assert!(!run.is_completed());
        run.record(&Step::CommentAdded, "T-7").unwrap();
        run.record(&Step::Completed, "SUCCESS").unwrap();
        assert!(run.is_completed());
    }
    let j = journal(dir.path());
    let run = j.begin(&key, t("2026-11-28T11:00:00Z")).unwrap();
    assert!(run.is_completed());
    drop(run);
    let rec = j.show(&key).unwrap().expect("record");
    assert_eq!(rec.status, "SUCCESS");
    assert!(rec.is_completed());
    assert_eq!(rec.runs, 2);
    assert_eq!(rec.first_seen, t("2026-11-28T10:00:00Z"));
    assert_eq!(rec.last_run, t("2026-11-28T11:00:00Z"));
}

#[test]
fn status_is_in_progress_until_set_or_completed() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let run = j.begin("<s@t>", t("2026-11-28T10:00:00Z")).unwrap();
    assert_eq!(j.show("<s@t>").unwrap().unwrap().status, STATUS_IN_PROGRESS);
    run.set_status("TEMPFAIL").unwrap();
    assert_eq!(j.show("<s@t>").unwrap().unwrap().status, "TEMPFAIL");
    assert!(!j.show("<s@t>").unwrap().unwrap().is_completed());
    drop(run);
    // A new run of an unfinished mail is in progress again.
    let _run = j.begin("<s@t>", t("2026-11-28T10:10:00Z")).unwrap();
    assert_eq!(j.show("<s@t>").unwrap().unwrap().status, STATUS_IN_PROGRESS);
}

#[test]
fn show_finds_a_message_id_with_or_without_brackets_and_lists_steps_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let run = j
        .begin("<id-1@upc.edu>", t("2026-11-28T10:00:00+01:00"))
        .unwrap();
    run.record(&Step::TicketCreated, "T-1").unwrap();
    run.record(&Step::Attachment(1), "A-2").unwrap();
    run.record(&Step::Attachment(0), "A-1").unwrap();
    run.record(&Step::RequesterAdded("joan.garcia".into()), "ok")
        .unwrap();
    drop(run);
    let with = j.show("<id-1@upc.edu>").unwrap().expect("with brackets");
    let without = j.show("id-1@upc.edu").unwrap().expect("without brackets");
    assert_eq!(with, without);
    let steps: Vec<(&str, &str)> = with
        .steps
        .iter()
        .map(|s| (s.step.as_str(), s.value.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("ticket", "T-1"),
            ("attachment:1", "A-2"),
            ("attachment:0", "A-1"),
            ("requester:joan.garcia", "ok")
        ]
    );
    assert_eq!(with.steps[0].at, t("2026-11-28T10:00:05+01:00"));
    assert_eq!(with.steps[0].at.offset().local_minus_utc(), 3600);
    let text = with.to_string();
    assert!(text.contains("ticket = T-1"), "{text}");
    assert!(j.show("<unknown@x>").unwrap().is_none());
}

#[test]
fn list_returns_mails_run_since_a_date_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    for (key, at) in [
        ("<c@x>", "2026-11-20T09:00:00Z"),
        ("<a@x>", "2026-11-10T09:00:00Z"),
        ("<b@x>", "2026-11-15T09:00:00Z"),
    ] {
        j.begin(key, t(at)).unwrap();
    }
    let keys: Vec<String> = j
        .list(t("2026-11-15T00:00:00Z"))
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, ["<b@x>", "<c@x>"]);
    assert_eq!(j.list(t("2026-11-01T00:00:00Z")).unwrap().len(), 3);
    assert!(j.list(t("2026-12-01T00:00:00Z")).unwrap().is_empty());
}

#[test]
fn prune_forgets_mails_older_than_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let now = t("2026-11-28T12:00:00Z");
    let old = j.begin("<old@x>", now - TimeDelta::days(91)).unwrap();
    old.record(&Step::TicketCreated, "T-old").unwrap();
    drop(old);
    let recent = j.begin("<recent@x>", now - TimeDelta::days(89)).unwrap();
    recent.record(&Step::TicketCreated, "T-new").unwrap();
    drop(recent);
    j.note_new_ticket("a@x", now - TimeDelta::days(100))
        .unwrap();
    j.note_new_ticket("a@x", now - TimeDelta::days(1)).unwrap();
    let locks = dir.path().join("locks");
    assert_eq!(std::fs::read_dir(&locks).unwrap().count(), 2);

    assert_eq!(purge_90(&j, now), 1);

    assert!(j.show("<old@x>").unwrap().is_none());
    assert!(j.show("<recent@x>").unwrap().is_some());
    assert_eq!(std::fs::read_dir(&locks).unwrap().count(), 1);
    let since = now - TimeDelta::days(365);
    assert_eq!(j.count_new_tickets("a@x", since).unwrap(), 1);
    // The pruned mail starts afresh: its old steps are gone too.
    let again = j.begin("<old@x>", now).unwrap();
    assert_eq!(again.done(&Step::TicketCreated), None);
    assert_eq!(purge_90(&j, now), 0);
}

/// `journal purge` with one age of 90 days and nothing quarantined: mails gone.
fn purge_90(j: &DeliveryJournal, now: DateTime<FixedOffset>) -> usize {
    let ages = mailtoticket::adapters::journal::Retention::days(90, 90);
    j.purge(&ages, &Default::default(), now, false)
        .unwrap()
        .mails()
}

/// The MDA's daily purge with the same ages.
fn purge_90_if_due(j: &DeliveryJournal, now: DateTime<FixedOffset>) -> Option<usize> {
    let ages = mailtoticket::adapters::journal::Retention::days(90, 90);
    j.purge_if_due(&ages, || Some(Default::default()), now)
        .unwrap()
        .map(|r| r.mails())
}

#[test]
fn prune_if_due_runs_at_most_once_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let now = t("2026-11-28T12:00:00Z");
    j.begin("<old@x>", now - TimeDelta::days(100)).unwrap();
    assert_eq!(purge_90_if_due(&j, now), Some(1));
    j.begin("<old2@x>", now - TimeDelta::days(100)).unwrap();
    assert_eq!(purge_90_if_due(&j, now + TimeDelta::hours(23)), None);
    assert!(j.show("<old2@x>").unwrap().is_some());
    assert_eq!(purge_90_if_due(&j, now + TimeDelta::hours(25)), Some(1));
    // The clock went back: prune rather than wait for it to catch up.
    assert_eq!(purge_90_if_due(&j, now - TimeDelta::days(10)), Some(0));
}

#[test]
fn prune_does_not_break_a_run_holding_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path()).with_lock_wait(Duration::from_millis(50));
    let now = t("2026-11-28T12:00:00Z");
    let run = j.begin("<held@x>", now - TimeDelta::days(200)).unwrap();
    // A run holding its lock is running now, however old its row: it stays (issue 18's
    // purge), and so does its lock file, so the mail stays exclusive.
    assert_eq!(purge_90(&j, now), 0);
    let err = j.begin("<held@x>", now).unwrap_err();
    assert!(err.is_busy(), "{err}");
    drop(run);
    j.begin("<held@x>", now).unwrap();
}

#[test]
fn rate_counts_new_tickets_per_sender_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let now = t("2026-11-28T12:00:00+01:00");
    for minutes in [5, 20, 59, 61, 120] {
        j.note_new_ticket("Joan@UPC.edu", now - TimeDelta::minutes(minutes))
            .unwrap();
    }
    // Same instant twice counts twice.
    j.note_new_ticket("joan@upc.edu", now).unwrap();
    j.note_new_ticket("joan@upc.edu", now).unwrap();
    j.note_new_ticket("other@upc.edu", now).unwrap();
    let hour_ago = now - TimeDelta::hours(1);
    assert_eq!(j.count_new_tickets("joan@upc.edu", hour_ago).unwrap(), 5);
    assert_eq!(j.count_new_tickets(" JOAN@upc.edu ", hour_ago).unwrap(), 5);
    assert_eq!(j.count_new_tickets("other@upc.edu", hour_ago).unwrap(), 1);
    assert_eq!(j.count_new_tickets("nobody@upc.edu", hour_ago).unwrap(), 0);
    // Durable: a new instance sees the same counts.
    let j2 = journal(dir.path());
    assert_eq!(j2.count_new_tickets("joan@upc.edu", hour_ago).unwrap(), 5);
    // A run exposes the same store.
    let run = j2.begin("<r@x>", now).unwrap();
    assert_eq!(run.count_new_tickets("joan@upc.edu", hour_ago).unwrap(), 5);
}

#[test]
fn memory_rate_limit_store_counts_like_the_durable_one() {
    let m = MemoryRateLimitStore::default();
    let now = t("2026-11-28T12:00:00Z");
    m.note_new_ticket("A@x", now - TimeDelta::minutes(90))
        .unwrap();
    m.note_new_ticket("a@x", now - TimeDelta::minutes(10))
        .unwrap();
    assert_eq!(
        m.count_new_tickets("a@X", now - TimeDelta::hours(1))
            .unwrap(),
        1
    );
}

#[test]
fn second_run_of_the_same_mail_is_busy_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path()).with_lock_wait(Duration::from_millis(100));
    let first = j.begin("<same@x>", t("2026-11-28T10:00:00Z")).unwrap();
    let other_instance = journal(dir.path()).with_lock_wait(Duration::from_millis(100));
    let started = Instant::now();
    let err = other_instance
        .begin("<same@x>", t("2026-11-28T10:00:01Z"))
        .unwrap_err();
    assert!(err.is_busy(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    let port: mailtoticket::ports::PortError = err.into();
    assert!(port.is_transient());
    drop(first);
    other_instance
        .begin("<same@x>", t("2026-11-28T10:00:02Z"))
        .unwrap();
}

#[test]
fn second_run_waits_and_then_sees_the_first_runs_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let first = journal(&path)
        .begin("<wait@x>", t("2026-11-28T10:00:00Z"))
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let j = journal(&path).with_lock_wait(Duration::from_secs(20));
        tx.send(()).unwrap();
        let run = j.begin("<wait@x>", t("2026-11-28T10:00:01Z")).unwrap();
        run.done(&Step::TicketCreated)
    });
    rx.recv().unwrap();
    // Give the waiter a moment to start polling the lock; correctness does not depend on it.
    std::thread::sleep(Duration::from_millis(30));
    first.record(&Step::TicketCreated, "T-55").unwrap();
    drop(first);
    assert_eq!(waiter.join().unwrap().as_deref(), Some("T-55"));
}

#[test]
fn different_mails_proceed_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                // Each thread is its own instance, as separate MDA processes would be.
                let j = journal(&path).with_lock_wait(Duration::from_millis(200));
                let key = format!("<mail-{i}@x>");
                let run = j.begin(&key, t("2026-11-28T10:00:00Z")).unwrap();
                for n in 0..10 {
                    run.record(&Step::Attachment(n), &format!("A-{i}-{n}"))
                        .unwrap();
                }
                run.record(&Step::Completed, "SUCCESS").unwrap();
                // All four runs hold their mail locks at the same time here.
                key
            })
        })
        .collect();
    let keys: Vec<String> = threads.into_iter().map(|h| h.join().unwrap()).collect();
    let j = journal(dir.path());
    for key in keys {
        let rec = j.show(&key).unwrap().expect("record");
        assert_eq!(rec.steps.len(), 11, "{rec}");
        assert_eq!(rec.status, "SUCCESS");
    }
}

#[test]
fn runs_of_different_mails_can_overlap_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path()).with_lock_wait(Duration::from_millis(50));
    let a = j.begin("<a@x>", t("2026-11-28T10:00:00Z")).unwrap();
    let b = j.begin("<b@x>", t("2026-11-28T10:00:00Z")).unwrap();
    a.record(&Step::TicketCreated, "T-a").unwrap();
    b.record(&Step::TicketCreated, "T-b").unwrap();
    assert_eq!(a.done(&Step::TicketCreated).as_deref(), Some("T-a"));
    assert_eq!(b.done(&Step::TicketCreated).as_deref(), Some("T-b"));
}

// ---------------------------------------------------------------------------------
// Cross-process tests: the test binary runs itself as a child with a filter and an
// environment variable naming the state directory and what to do.

const CHILD_ENV: &str = "MAILTOTICKET_JOURNAL_CHILD";
const CHILD_TEST: &str = "journal::child_process_entry";

const CHILD_DIR_ENV: &str = "MAILTOTICKET_JOURNAL_CHILD_DIR";
const CHILD_ARG_ENV: &str = "MAILTOTICKET_JOURNAL_CHILD_ARG";

/// Runs only as a child of the tests below; a no-op in a normal test run.
#[test]
fn child_process_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(CHILD_DIR_ENV).expect("dir"));
    let arg = std::env::var(CHILD_ARG_ENV).unwrap_or_default();
    let j = journal(&dir).with_lock_wait(Duration::from_secs(30));
    match mode.as_str() {
        // Die without running any destructor, as a killed MDA would.
        "crash" => {
            let run = j.begin("<child@x>", t("2026-11-28T10:00:00Z")).unwrap();
            run.record(&Step::TicketCreated, "T-child").unwrap();
            std::process::abort()
        }
        "hold" => {
            let run = j.begin("<child@x>", t("2026-11-28T10:00:00Z")).unwrap();
            run.record(&Step::TicketCreated, "T-child").unwrap();
            std::fs::write(dir.join("child-holds"), b"").unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !dir.join("release").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            run.record(&Step::Completed, "SUCCESS").unwrap();
        }
        // Many small committed writes on a mail of its own.
        "steps" => {
            let run = j.begin(&arg, t("2026-11-28T10:00:00Z")).unwrap();
            for n in 0..10 {
                run.record(&Step::Attachment(n), &format!("{arg}-{n}"))
                    .unwrap();
            }
            run.record(&Step::Completed, "SUCCESS").unwrap();
        }
        // What the use case does with a new mail: create the ticket unless done.
        "deliver" => {
            let run = j.begin("<same@x>", t("2026-11-28T10:00:00Z")).unwrap();
            if run.done(&Step::TicketCreated).is_none() {
                std::fs::write(dir.join(format!("created-by-{arg}")), b"").unwrap();
                run.record(&Step::TicketCreated, &arg).unwrap();
            }
            if !run.is_completed() {
                run.record(&Step::Completed, "SUCCESS").unwrap();
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn spawn_child(mode: &str, dir: &Path) -> Child {
    spawn_child_with(mode, dir, "")
}

fn spawn_child_with(mode: &str, dir: &Path, arg: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ARG_ENV, arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child")
}

#[test]
fn processes_on_different_mails_all_progress() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path()); // create the file before the race
    let keys: Vec<String> = (0..3).map(|i| format!("<proc-{i}@x>")).collect();
    let children: Vec<Child> = keys
        .iter()
        .map(|k| spawn_child_with("steps", dir.path(), k))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let j = journal(dir.path());
    for k in &keys {
        let rec = j.show(k).unwrap().expect("record");
        assert_eq!(rec.steps.len(), 11, "{rec}");
        assert_eq!(rec.steps[9].value, format!("{k}-9"));
        assert_eq!(rec.status, "SUCCESS");
    }
}

#[test]
fn processes_on_the_same_mail_create_one_ticket() {
    let dir = tempfile::tempdir().unwrap();
    journal(dir.path());
    let children: Vec<Child> = (0..3)
        .map(|i| spawn_child_with("deliver", dir.path(), &format!("T-{i}")))
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let created: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("created-by-").map(str::to_string)
        })
        .collect();
    assert_eq!(created.len(), 1, "{created:?}");
    let rec = journal(dir.path()).show("<same@x>").unwrap().unwrap();
    assert_eq!(rec.runs, 3);
    assert_eq!(rec.steps[0].value, created[0]);
}

#[test]
fn a_crashed_process_leaves_its_steps_and_frees_the_mail() {
    let dir = tempfile::tempdir().unwrap();
    let status = spawn_child("crash", dir.path()).wait().unwrap();
    assert!(!status.success(), "the child should have aborted");
    let j = journal(dir.path()).with_lock_wait(Duration::from_secs(5));
    let run = j.begin("<child@x>", t("2026-11-28T10:01:00Z")).unwrap();
    assert_eq!(run.done(&Step::TicketCreated).as_deref(), Some("T-child"));
    assert!(!run.is_completed());
}

#[test]
fn another_process_on_the_same_mail_is_busy_and_on_another_mail_proceeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child("hold", dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("child-holds").exists() {
        assert!(Instant::now() < deadline, "child never took the lock");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let j = journal(dir.path()).with_lock_wait(Duration::from_millis(100));
    let err = j.begin("<child@x>", t("2026-11-28T10:00:01Z")).unwrap_err();
    assert!(err.is_busy(), "{err}");
    // A different mail is not held up by the child's run.
    let other = j.begin("<parent@x>", t("2026-11-28T10:00:01Z")).unwrap();
    other.record(&Step::TicketCreated, "T-parent").unwrap();
    drop(other);

    std::fs::write(dir.path().join("release"), b"").unwrap();
    assert!(child.wait().unwrap().success());
    let j = journal(dir.path()).with_lock_wait(Duration::from_secs(5));
    let run = j.begin("<child@x>", t("2026-11-28T10:00:02Z")).unwrap();
    assert!(run.is_completed());
    assert_eq!(
        j.show("<parent@x>").unwrap().unwrap().steps[0].value,
        "T-parent"
    );
}

// ---------------------------------------------------------------------------------
// SQLite storage specifics.

#[test]
fn the_database_is_in_wal_mode_so_processes_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let run = j.begin("<wal@x>", t("2026-11-28T10:00:00Z")).unwrap();
    run.record(&Step::TicketCreated, "T-1").unwrap();
    // Another connection (as another MDA process would have) reads the committed step
    // while this journal keeps its own connection open.
    let other = rusqlite::Connection::open(j.db_path()).unwrap();
    let mode: String = other
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let value: String = other
        .query_row(
            "SELECT value FROM steps WHERE key = '<wal@x>' AND step = 'ticket'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(value, "T-1");
}

#[test]
fn a_writer_holding_the_database_past_the_wait_makes_writes_busy_but_not_reads() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path()).with_db_wait(Duration::from_millis(50));
    j.note_new_ticket("a@upc.edu", t("2026-11-28T10:00:00Z"))
        .unwrap();
    let other = rusqlite::Connection::open(j.db_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = Instant::now();
    let err = j
        .begin("<blocked@x>", t("2026-11-28T10:00:00Z"))
        .unwrap_err();
    assert!(err.is_busy(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(40));
    // WAL readers never wait for the writer.
    let since = t("2026-11-28T09:00:00Z");
    assert_eq!(j.count_new_tickets("a@upc.edu", since).unwrap(), 1);
    other.execute_batch("COMMIT").unwrap();
    // The failed begin left the mail free and unrecorded.
    assert!(j.show("<blocked@x>").unwrap().is_none());
    let run = j.begin("<blocked@x>", t("2026-11-28T10:00:01Z")).unwrap();
    run.record(&Step::TicketCreated, "T-2").unwrap();
}

/// Not a test of behaviour: prints the median cost of each journal operation of a
/// plain new mail, on the file system of the system temp dir. Run with
/// `cargo test --release --test it journal_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn journal_cost_per_operation() {
    const RUNS: usize = 50;
    // Enough mails first for the WAL to reach its checkpoint size and be reused, as
    // in steady use (a growing WAL file costs extra metadata writes per fsync).
    let warmup: usize = std::env::var("JOURNAL_COST_WARMUP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().unwrap();
    let now = t("2026-11-28T10:00:00Z");
    // An existing journal, as every MDA process but the first finds it.
    purge_90(&DeliveryJournal::open(dir.path()).unwrap(), now);
    let names = [
        "open",
        "prune_if_due",
        "begin",
        "count_new_tickets",
        "record ticket",
        "note_new_ticket",
        "record completed",
        "drop run+journal",
        "total",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for n in 0..warmup + RUNS {
        if n == warmup {
            samples.iter_mut().for_each(Vec::clear);
        }
        let mut lap = Instant::now();
        let mut take = |i: usize, samples: &mut Vec<Vec<Duration>>| {
            let now = Instant::now();
            samples[i].push(now - lap);
            lap = now;
        };
        let start = Instant::now();
        let j = DeliveryJournal::open(dir.path()).unwrap();
        take(0, &mut samples);
        assert!(purge_90_if_due(&j, now).is_none());
        take(1, &mut samples);
        let run = j.begin(&format!("<cost-{n}@x>"), now).unwrap();
        take(2, &mut samples);
        run.count_new_tickets("a@upc.edu", now - TimeDelta::hours(1))
            .unwrap();
        take(3, &mut samples);
        run.record(&Step::TicketCreated, "T-1").unwrap();
        take(4, &mut samples);
        run.note_new_ticket("a@upc.edu", now).unwrap();
        take(5, &mut samples);
        run.record(&Step::Completed, "SUCCESS").unwrap();
        take(6, &mut samples);
        drop(run);
        drop(j);
        take(7, &mut samples);
        samples[8].push(start.elapsed());
    }
    println!("{RUNS} mails after {warmup} warm-up mails:");
    for (name, mut s) in names.iter().zip(samples) {
        s.sort();
        println!(
            "{name:>18}: median {:>8.3} ms  (min {:.3}, max {:.3})",
            s[RUNS / 2].as_secs_f64() * 1e3,
            s[0].as_secs_f64() * 1e3,
            s[RUNS - 1].as_secs_f64() * 1e3
        );
    }
}

// ------------------------------------------------ identity of a mail (issues 12, 19)

fn identity(id: Option<&str>, body: &str) -> mailtoticket::domain::mail_key::MailIdentity {
    let raw = format!("From: a@b\nSubject: s\n\n{body}\n");
    mailtoticket::domain::mail_key::MailIdentity::of(id, raw.as_bytes())
}

#[test]
fn same_id_same_digest_is_one_record_and_a_clash_is_another() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let now = t("2026-11-28T10:00:00Z");
    let first = identity(Some("<x@y>"), "one");
    let (run, clash) = j.begin_mail(&first, now).unwrap();
    assert_eq!((run.key(), clash), ("<x@y>", None));
    run.record(&Step::Completed, "SUCCESS").unwrap();
    drop(run);
    assert!(j.lookup(&first).unwrap().is_completed());

    let other = identity(Some("<x@y>"), "two");
    let known = j.lookup(&other).unwrap();
    assert_eq!(known.clash_with.as_deref(), Some("<x@y>"));
    assert!(known.key.starts_with("<x@y> sha256:"), "{}", known.key);
    assert!(!known.is_completed());
    let (run, clash) = j.begin_mail(&other, now).unwrap();
    assert_eq!(clash.as_deref(), Some("<x@y>"));
    assert_eq!(run.key(), known.key);
    drop(run);
    // `journal show` by the id still finds the first mail.
    assert_eq!(j.show("<x@y>").unwrap().unwrap().key, "<x@y>");
}

#[test]
fn a_record_of_an_older_version_without_digest_is_the_same_mail() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let now = t("2026-11-28T10:00:00Z");
    // As the previous version wrote it: keyed by Message-ID, no digest step.
    let run = j.begin("<old@y>", now).unwrap();
    run.record(&Step::TicketCreated, "77").unwrap();
    run.record(&Step::Completed, "SUCCESS").unwrap();
    drop(run);
    let mail = identity(Some("<old@y>"), "whatever");
    let known = j.lookup(&mail).unwrap();
    assert_eq!(
        (known.key.as_str(), known.clash_with.as_deref()),
        ("<old@y>", None)
    );
    assert!(known.is_completed());
    assert_eq!(known.ticket(), Some("77"));
}

#[test]
fn reject_and_unknown_are_permanent_error_only_when_marked() {
    let dir = tempfile::tempdir().unwrap();
    let j = journal(dir.path());
    let now = t("2026-11-28T10:00:00Z");
    for (n, status, mark, permanent) in [
        (1, "REJECT", false, true),
        (2, "UNKNOWN", false, true),
        (3, "ERROR", false, false),
        (4, "ERROR", true, true),
        (5, "TEMPFAIL", false, false),
    ] {
        let mail = identity(Some(&format!("<p{n}@y>")), "b");
        let (run, _) = j.begin_mail(&mail, now).unwrap();
        run.set_status(status).unwrap();
        if mark {
            run.mark_permanent("credencials").unwrap();
        }
        drop(run);
        let known = j.lookup(&mail).unwrap();
        assert_eq!(
            known.permanent_status().is_some(),
            permanent,
            "{status} {mark}"
        );
    }
}
