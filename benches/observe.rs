//! Issue 18: `mailtoticket health` and `mailtoticket metrics` on a journal of 100,000
//! mails (their records and their counters) and a quarantine of 200 mails: the real
//! binary, warm cache, median of N runs. Goal: ≤ 20 ms each.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use mailtoticket::adapters::journal::DeliveryJournal;
use mailtoticket::adapters::quarantine::Quarantine;
use mailtoticket::adapters::telemetry::{CallResult, CallSample, MailSample};

pub const MAILS: usize = 100_000;
pub const QUARANTINED: usize = 200;

/// Builds the state folder once: `MAILS` mail records with two steps each (as the
/// MDA leaves them), the counters of `MAILS` mails with their bus calls, and
/// `QUARANTINED` quarantined mails. Returns the time it took.
pub fn build_state(state: &Path) -> Duration {
    let t0 = Instant::now();
    let journal = DeliveryJournal::open(state).expect("journal");
    drop(journal);
    // The records, in one transaction straight into the tables (begin() per mail would
    // take the per-mail lock files too, which is not what is measured here).
    let conn = rusqlite::Connection::open(state.join("journal.sqlite3")).expect("sqlite");
    conn.execute_batch("BEGIN").expect("begin");
    {
        let now = Utc::now();
        let mut mail = conn
            .prepare(
                "INSERT INTO mails (key, first_seen_ms, first_seen_off, last_run_ms, last_run_off, runs, status)
                 VALUES (?1, ?2, 3600, ?2, 3600, 1, ?3)",
            )
            .expect("prepare");
        let mut step = conn
            .prepare(
                "INSERT INTO steps (key, step, seq, value, at_ms, at_off) VALUES (?1, ?2, ?3, ?4, ?5, 3600)",
            )
            .expect("prepare");
        for i in 0..MAILS {
            let key = format!("<bench-{i}@upc.edu>");
            let at = (now - TimeDelta::seconds((MAILS - i) as i64 * 20)).timestamp_millis();
            let status = if i % 10 == 0 { "SKIP" } else { "SUCCESS" };
            mail.execute(rusqlite::params![key, at, status])
                .expect("mail");
            step.execute(rusqlite::params![key, "ticket", 0, format!("T-{i}"), at])
                .expect("step");
            step.execute(rusqlite::params![key, "completed", 1, status, at])
                .expect("step");
        }
    }
    conn.execute_batch("COMMIT").expect("commit");
    drop(conn);
    // The counters, the way the MDA bumps them: one write per mail.
    let journal = DeliveryJournal::open(state).expect("journal");
    let ops = [
        ("persones", "obtenirDadesPersona"),
        ("gn6", "AltaTiquet"),
        ("gn6", "ConsultaTiquetsDades"),
        ("gn6", "AfegirComentariTiquet"),
    ];
    for i in 0..MAILS {
        let calls = (0..2)
            .map(|k| {
                let (service, operation) = ops[(i + k) % ops.len()];
                CallSample {
                    service,
                    operation,
                    result: if i % 97 == 0 {
                        CallResult::Transient
                    } else {
                        CallResult::Ok
                    },
                    latency: Duration::from_micros(500 + (i as u64 * 37) % 400_000),
                }
            })
            .collect();
        journal
            .record_mail(&MailSample {
                outcome: if i % 10 == 0 { "skip" } else { "success" },
                duration: Duration::from_micros(2_000 + (i as u64 * 53) % 2_000_000),
                calls,
                at_ms: Utc::now().timestamp_millis(),
            })
            .expect("record");
    }
    let q = Quarantine::new(state.join("quarantine"));
    for i in 0..QUARANTINED {
        let at = (Utc::now() - TimeDelta::minutes(i as i64 * 7)).fixed_offset();
        q.put(
            format!("Subject: q{i}\n\nx\n").as_bytes(),
            "ERROR",
            "bench",
            at,
        )
        .expect("quarantine");
    }
    t0.elapsed()
}

/// Median, p90 and exit code of `runs` runs of `BIN -c config args`.
pub fn time(bin: &str, config: &Path, args: &[&str], runs: usize) -> (Duration, Duration, i32) {
    let once = || {
        let t = Instant::now();
        let status = Command::new(bin)
            .arg("-c")
            .arg(config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run");
        (t.elapsed(), status.code().unwrap_or(-1))
    };
    // Warm the page cache and the binary.
    for _ in 0..3 {
        once();
    }
    let mut walls = Vec::with_capacity(runs);
    let mut code = 0;
    for _ in 0..runs {
        let (w, c) = once();
        walls.push(w);
        code = c;
    }
    walls.sort();
    (walls[runs / 2], walls[runs * 9 / 10], code)
}

/// The section of the report.
pub fn run(bin: &str, dir: &Path, quick: bool) -> String {
    let state = dir.join("observe-state");
    let built = build_state(&state);
    let config = dir.join("observe.toml");
    std::fs::write(
        &config,
        format!(
            "username_soa = \"bench.soa\"\npassword_soa = \"bench-bus-secret\"\n\
             username_gn6 = \"benchgn6\"\npassword_gn6 = \"bench-gn6-secret\"\n\
             domini = \"1234\"\nequip_resolutor_nous = \"98765\"\nusuari_extern = \"extern\"\n\
             bus = \"test\"\nlog_file = \"{log}\"\nstate_dir = \"{state}\"\n\
             [health]\nquarantine_critical = 1000\n",
            log = dir.join("observe.log").display(),
            state = state.display(),
        ),
    )
    .expect("config");
    let runs = if quick { 11 } else { 51 };
    // What the end of one mail adds in the MDA. A mail's own journal work (begin, the
    // ticket step fsync'd, completed) in a fresh connection, as one MDA process does
    // it, without and with the telemetry connection (opened first, kept, one write).
    let sample = MailSample {
        outcome: "success",
        duration: Duration::from_millis(8),
        calls: vec![
            CallSample {
                service: "persones",
                operation: "obtenirDadesPersona",
                result: CallResult::Ok,
                latency: Duration::from_micros(900),
            },
            CallSample {
                service: "gn6",
                operation: "AltaTiquet",
                result: CallResult::Ok,
                latency: Duration::from_micros(1500),
            },
        ],
        at_ms: Utc::now().timestamp_millis(),
    };
    let mail_work = |k: usize| {
        use mailtoticket::ports::{Journal as _, Step};
        let j = DeliveryJournal::open(&state).expect("journal");
        let run = j
            .begin(&format!("<write-{k}@bench>"), Utc::now().fixed_offset())
            .expect("begin");
        run.record(&Step::TicketCreated, "T-1").expect("step");
        run.record(&Step::Completed, "SUCCESS").expect("step");
    };
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for k in 0..if quick { 100 } else { 500 } {
        let t = Instant::now();
        mail_work(2 * k);
        without.push(t.elapsed());
        let t = Instant::now();
        let telemetry = DeliveryJournal::open(&state).expect("journal");
        mail_work(2 * k + 1);
        telemetry.record_mail(&sample).expect("record");
        drop(telemetry);
        with.push(t.elapsed());
    }
    without.sort();
    with.sort();
    let writes = with.clone();
    let base_median = without[without.len() / 2];
    let write_median = writes[writes.len() / 2];
    let write_p90 = writes[writes.len() * 9 / 10];
    let mut out = format!(
        "State: {MAILS} mail records, counters of {MAILS} mails, {QUARANTINED} quarantined mails \
         (built in {:.1} s)\n\n| command | runs | wall median | wall p90 | exit |\n|---|---|---|---|---|\n",
        built.as_secs_f64()
    );
    for args in [&["health"][..], &["health", "--json"], &["metrics"]] {
        let (median, p90, code) = time(bin, &config, args, runs);
        out.push_str(&format!(
            "| `mailtoticket {}` | {runs} | {:.2} ms | {:.2} ms | {code} |\n",
            args.join(" "),
            median.as_secs_f64() * 1000.0,
            p90.as_secs_f64() * 1000.0,
        ));
    }
    out.push_str(&format!(
        "\nA mail's journal work (begin, ticket step fsync'd, completed), {} runs each: median \
         {:.3} ms without telemetry, {:.3} ms with it (p90 {:.3} ms): +{:.3} ms per mail\n",
        writes.len(),
        base_median.as_secs_f64() * 1000.0,
        write_median.as_secs_f64() * 1000.0,
        write_p90.as_secs_f64() * 1000.0,
        (write_median.as_secs_f64() - base_median.as_secs_f64()) * 1000.0,
    ));
    out
}
