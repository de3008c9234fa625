//! Issue 18: `health` through the journal states to each exit code, `metrics` parsed
//! with a Prometheus parser and checked against what was run, the watch-mode endpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{TimeDelta, Utc};
use mailtoticket::adapters::journal::DeliveryJournal;
use mailtoticket::adapters::journal::telemetry::{
    META_CONSECUTIVE_TEMPFAILS, META_IMAP_HEARTBEAT, META_LAST_SUCCESS,
};
use mailtoticket::adapters::quarantine::Quarantine;

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

/// Nothing listens there: every bus call is refused (TEMPFAIL).
const NO_BUS: &str = "http://127.0.0.1:9";

fn new_mail(n: usize) -> Vec<u8> {
    format!(
        "From: <nom.cognom@upc.edu>\nTo: <suport.unitat@upc.edu>\nDate: Tue, 20 Oct 2015 11:01:05 +0200\n\
         Message-ID: <observe-{n}@upc.edu>\nSubject: Prova {n}\n\nHola!\n"
    )
    .into_bytes()
}

/// One of our own error reports: SKIP without any bus call.
const LOOP_MAIL: &[u8] = b"From: mailtoticket@unitat.example\nTo: suport@unitat.example\nSubject: Informe d'errors de MailToTicket\nX-Mailtoticket-Loop: mailtoticket@unitat.example\nMessage-ID: <observe-loop@unitat.example>\n\nCos\n";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// `bus = "sandbox"` (in-process simulator) or, with `bus_url`, the test bus there.
    fn config(&self, bus_url: Option<&str>, health: &str) -> PathBuf {
        let (bus, endpoints) = match bus_url {
            None => (
                format!(
                    "bus = \"sandbox\"\nsandbox_dir = \"{}\"\n",
                    self.path("sandbox").display()
                ),
                String::new(),
            ),
            Some(url) => (
                "bus = \"test\"\nconnect_timeout_secs = 2\nrequest_timeout_secs = 5\n".to_string(),
                format!(
                    "[endpoints]\ngn6 = \"{url}/gN6/GestioTiquetsv5\"\npersones = \"{url}/GestioIdentitat/Personesv6\"\n"
                ),
            ),
        };
        let text = format!(
            "username_soa = \"usu.soa\"\npassword_soa = \"Soa-Pw-4f1c9e\"\n\
             username_gn6 = \"usugn6\"\npassword_gn6 = \"Gn6-Pw-77ab20\"\n\
             domini = \"1234\"\nequip_resolutor_nous = \"98765\"\nusuari_extern = \"extern\"\n\
             log_file = \"{log}\"\nstate_dir = \"{state}\"\n{bus}\
             [health]\n{health}\n{endpoints}",
            log = self.path("mailtoticket.log").display(),
            state = self.state().display(),
        );
        let p = self.path("config.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn run(&self, cfg: &Path, args: &[&str], stdin: &[u8]) -> Output {
        crate::bin_support::run_piped(
            Command::new(BIN)
                .arg("-c")
                .arg(cfg)
                .args(args)
                .env("HOME", self.dir.path())
                .env_remove("MAILTOTICKET_CONFIG_DIR")
                .current_dir(self.dir.path()),
            stdin,
        )
    }

    /// `health`: (exit code, status line).
    fn health(&self, cfg: &Path) -> (i32, String) {
        let o = self.run(cfg, &["health"], b"");
        let line = String::from_utf8_lossy(&o.stdout).trim_end().to_string();
        assert!(!line.contains('\n'), "one line: {line}");
        (o.status.code().unwrap(), line)
    }

    fn metrics(&self, cfg: &Path) -> prometheus_parse::Scrape {
        let o = self.run(cfg, &["metrics"], b"");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        parse(&String::from_utf8(o.stdout).unwrap())
    }

    fn journal(&self) -> DeliveryJournal {
        DeliveryJournal::open(&self.state()).unwrap()
    }

    fn quarantine(&self) -> Quarantine {
        Quarantine::new(self.state().join("quarantine"))
    }
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The value of the sample `metric` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(b) => b.last().map_or(0.0, |c| c.count),
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
}

fn ago(d: TimeDelta) -> i64 {
    (Utc::now() - d).timestamp_millis()
}

#[test]
fn delivered_and_skipped_mails_are_counted_and_health_is_ok() {
    let env = Env::new();
    let cfg = env.config(None, "");
    // Nothing handled yet: OK, and looking creates no journal.
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("MAILTOTICKET OK - "), "{line}");
    assert!(!env.state().join("journal.sqlite3").exists());
    let empty = env.metrics(&cfg);
    assert_eq!(
        value(
            &empty,
            "mailtoticket_mails_total",
            &[("outcome", "success")]
        ),
        Some(0.0)
    );

    let o = env.run(
        &cfg,
        &[
            "sandbox",
            "people",
            "add",
            "nom.cognom",
            "nom.cognom@upc.edu",
        ],
        b"",
    );
    assert_eq!(o.status.code(), Some(0));
    // A dry run records nothing.
    let o = env.run(&cfg, &["--dry-run"], &new_mail(0));
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for n in 1..=2 {
        let o = env.run(&cfg, &[], &new_mail(n));
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = env.run(&cfg, &[], LOOP_MAIL);
    assert!(o.stdout.starts_with(b"X-Mailtoticket: SKIP"));

    let m = env.metrics(&cfg);
    assert_eq!(
        value(&m, "mailtoticket_mails_total", &[("outcome", "success")]),
        Some(2.0)
    );
    assert_eq!(
        value(&m, "mailtoticket_mails_total", &[("outcome", "skip")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "mailtoticket_mails_total", &[("outcome", "tempfail")]),
        Some(0.0)
    );
    let alta = [("service", "gn6"), ("operation", "AltaTiquet")];
    assert_eq!(
        value(
            &m,
            "mailtoticket_soap_calls_total",
            &[alta[0], alta[1], ("result", "ok")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&m, "mailtoticket_soap_call_duration_seconds_count", &alta),
        Some(2.0)
    );
    assert_eq!(
        value(&m, "mailtoticket_soap_call_duration_seconds", &alta),
        Some(2.0)
    );
    assert!(
        value(
            &m,
            "mailtoticket_soap_calls_total",
            &[("service", "persones"), ("result", "ok")]
        )
        .is_some_and(|n| n >= 2.0),
        "{:?}",
        m.samples
    );
    assert_eq!(
        value(&m, "mailtoticket_mail_duration_seconds_count", &[]),
        Some(3.0)
    );
    let last = value(&m, "mailtoticket_last_delivery_timestamp_seconds", &[]).unwrap();
    assert!(
        (Utc::now().timestamp() as f64 - last).abs() < 120.0,
        "{last}"
    );
    assert_eq!(
        value(&m, "mailtoticket_consecutive_tempfails", &[]),
        Some(0.0)
    );
    assert_eq!(value(&m, "mailtoticket_quarantined_mails", &[]), Some(0.0));
    assert_eq!(
        value(&m, "mailtoticket_imap_heartbeat_timestamp_seconds", &[]),
        None
    );

    let (code, line) = env.health(&cfg);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("| quarantined=0;1;10;0 "), "{line}");
    assert!(line.contains("consecutive_tempfails=0;3;10;0"), "{line}");
    assert!(line.contains("last_delivery_age_s="), "{line}");

    // Pruning every mail record keeps the counters.
    let every = mailtoticket::adapters::journal::Retention::uniform(TimeDelta::zero());
    let purged = env
        .journal()
        .purge(
            &every,
            &Default::default(),
            (Utc::now() + TimeDelta::days(1)).fixed_offset(),
            false,
        )
        .unwrap();
    assert!(purged.mails() > 0);
    let m = env.metrics(&cfg);
    assert_eq!(
        value(&m, "mailtoticket_mails_total", &[("outcome", "success")]),
        Some(2.0)
    );
}

#[test]
fn bus_down_walks_health_from_ok_to_warning_to_critical() {
    let env = Env::new();
    let cfg = env.config(Some(NO_BUS), "tempfail_warning = 2\ntempfail_critical = 3");
    let mut codes = Vec::new();
    for n in 1..=3 {
        let o = env.run(&cfg, &[], &new_mail(n));
        assert_eq!(
            o.status.code(),
            Some(75),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        codes.push(env.health(&cfg));
    }
    assert_eq!(codes[0].0, 0, "{}", codes[0].1);
    assert_eq!(codes[1].0, 1, "{}", codes[1].1);
    assert!(
        codes[1]
            .1
            .starts_with("MAILTOTICKET WARNING - 2 TEMPFAIL in a row"),
        "{}",
        codes[1].1
    );
    assert_eq!(codes[2].0, 2, "{}", codes[2].1);
    assert!(
        codes[2].1.contains("consecutive_tempfails=3;2;3;0"),
        "{}",
        codes[2].1
    );
    let m = env.metrics(&cfg);
    assert_eq!(
        value(&m, "mailtoticket_mails_total", &[("outcome", "tempfail")]),
        Some(3.0)
    );
    assert_eq!(
        value(&m, "mailtoticket_consecutive_tempfails", &[]),
        Some(3.0)
    );
    let transient = value(
        &m,
        "mailtoticket_soap_calls_total",
        &[("service", "persones"), ("result", "transient")],
    );
    assert!(transient.is_some_and(|n| n >= 3.0), "{:?}", m.samples);
    // A mail that never reaches the bus does not end the series...
    let o = env.run(&cfg, &[], LOOP_MAIL);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(env.health(&cfg).0, 2);
    // ...a delivered one does (here: as the journal records it).
    env.journal()
        .set_meta(META_CONSECUTIVE_TEMPFAILS, Some(0))
        .unwrap();
    assert_eq!(env.health(&cfg).0, 0);
}

#[test]
fn quarantine_piling_up_is_a_warning_then_critical() {
    let env = Env::new();
    let cfg = env.config(None, "");
    let q = env.quarantine();
    let now = Utc::now().fixed_offset();
    q.put(b"Subject: 1\n\nx", "ERROR", "r", now).unwrap();
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("MAILTOTICKET WARNING - 1 in quarantine"),
        "{line}"
    );
    for n in 2..=10 {
        q.put(format!("Subject: {n}\n\nx").as_bytes(), "REJECT", "r", now)
            .unwrap();
    }
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("quarantined=10;1;10;0"), "{line}");
    let m = env.metrics(&cfg);
    assert_eq!(value(&m, "mailtoticket_quarantined_mails", &[]), Some(10.0));

    // Age alone: counts never alarm here, an old mail does.
    let env = Env::new();
    let cfg = env.config(None, "quarantine_warning = 0\nquarantine_critical = 0");
    let q = env.quarantine();
    q.put(
        b"Subject: old\n\nx",
        "ERROR",
        "r",
        (Utc::now() - TimeDelta::hours(30)).fixed_offset(),
    )
    .unwrap();
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("oldest 30 h"), "{line}");
    q.put(
        b"Subject: older\n\nx",
        "ERROR",
        "r",
        (Utc::now() - TimeDelta::days(8)).fixed_offset(),
    )
    .unwrap();
    assert_eq!(env.health(&cfg).0, 2);
    let m = env.metrics(&cfg);
    let oldest = value(&m, "mailtoticket_quarantine_oldest_age_seconds", &[]).unwrap();
    assert!((oldest - 8.0 * 86400.0).abs() < 120.0, "{oldest}");
}

#[test]
fn no_mail_for_n_hours_is_a_warning_then_critical() {
    let env = Env::new();
    let cfg = env.config(None, "expect_mail_every_hours = 2");
    // Expected mail, none ever delivered.
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("no delivery recorded yet"), "{line}");
    let j = env.journal();
    for (hours, expected) in [(1, 0), (3, 1), (5, 2)] {
        j.set_meta(META_LAST_SUCCESS, Some(ago(TimeDelta::hours(hours))))
            .unwrap();
        let (code, line) = env.health(&cfg);
        assert_eq!(code, expected, "{hours} h: {line}");
        assert!(line.contains(";7200;14400;0"), "{line}");
    }
}

#[test]
fn the_heartbeat_of_watch_mode_is_checked_while_a_watcher_left_one() {
    let env = Env::new();
    let cfg = env.config(None, "");
    let j = env.journal();
    assert_eq!(env.health(&cfg).0, 0);
    j.set_meta(META_IMAP_HEARTBEAT, Some(ago(TimeDelta::seconds(10))))
        .unwrap();
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains("heartbeat_age_s="), "{line}");
    let m = env.metrics(&cfg);
    assert!(value(&m, "mailtoticket_imap_heartbeat_timestamp_seconds", &[]).is_some());
    j.set_meta(META_IMAP_HEARTBEAT, Some(ago(TimeDelta::seconds(2000))))
        .unwrap();
    assert_eq!(env.health(&cfg).0, 1);
    j.set_meta(META_IMAP_HEARTBEAT, Some(ago(TimeDelta::seconds(4000))))
        .unwrap();
    assert_eq!(env.health(&cfg).0, 2);
    // A watcher stopped cleanly removes it: no longer checked...
    j.clear_heartbeat().unwrap();
    assert_eq!(env.health(&cfg).0, 0);
    // ...unless watch mode is expected.
    let cfg = env.config(None, "watch = true");
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("imap --watch is not running"), "{line}");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn a_journal_that_cannot_be_written_is_critical() {
    // A corrupt file (fails for root too).
    let env = Env::new();
    let cfg = env.config(None, "");
    std::fs::create_dir_all(env.state()).unwrap();
    std::fs::write(env.state().join("journal.sqlite3"), vec![0x5a; 8192]).unwrap();
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("journal cannot be opened"), "{line}");
    assert_eq!(env.run(&cfg, &["metrics"], b"").status.code(), Some(1));

    // The state folder is a file (fails for root too).
    let env = Env::new();
    let cfg = env.config(None, "");
    std::fs::write(env.state(), b"not a folder").unwrap();
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 2, "{line}");

    // A read-only journal: chmod does not stop root, so only checked for others.
    if !is_root() {
        use std::os::unix::fs::PermissionsExt;
        let env = Env::new();
        let cfg = env.config(None, "");
        drop(env.journal());
        for f in [
            "journal.sqlite3",
            "journal.sqlite3-wal",
            "journal.sqlite3-shm",
        ] {
            let p = env.state().join(f);
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
            }
        }
        let (code, line) = env.health(&cfg);
        assert_eq!(code, 2, "{line}");
    }
}

#[test]
fn configuration_faults_have_their_codes_and_json_has_the_checks() {
    let env = Env::new();
    // Not found: UNKNOWN.
    let missing = env.path("absent.toml");
    let (code, line) = env.health(&missing);
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("MAILTOTICKET UNKNOWN - "), "{line}");
    // Does not parse: CRITICAL.
    let cfg = env.config(None, "quarantine_warning = \"many\"");
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 2, "{line}");
    assert!(line.contains("invalid configuration"), "{line}");
    // Parses but does not validate: CRITICAL, the other checks still run.
    let cfg = env.config(None, "quarantine_warning = 5\nquarantine_critical = 2");
    let o = env.run(&cfg, &["health", "--json"], b"");
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "CRITICAL");
    assert_eq!(v["code"], 2);
    let checks = v["checks"].as_array().unwrap();
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "config" && c["status"] == "CRITICAL"),
        "{v}"
    );
    assert!(checks.iter().any(|c| c["name"] == "quarantine"), "{v}");
    let perf = v["perfdata"].as_array().unwrap();
    assert!(
        perf.iter()
            .any(|p| p["label"] == "quarantined" && p["critical"] == 2),
        "{v}"
    );
    // And `check` shows the same problem.
    let o = env.run(&cfg, &["check"], b"");
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("[health] quarantine_critical"));
}

#[test]
fn health_probe_calls_each_service() {
    let env = Env::new();
    let cfg = env.config(None, "");
    let o = env.run(&cfg, &["health", "--probe", "--json"], b"");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{v}");
    let names: Vec<_> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert!(
        names.contains(&"gn6".into()) && names.contains(&"persones".into()),
        "{v}"
    );
    // `check` shows the thresholds in force.
    let o = env.run(&cfg, &["check"], b"");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ok   [health] quarantine 1/10 mails, 24/168 h old"),
        "{out}"
    );
    let cfg = env.config(Some(NO_BUS), "");
    let (code, line) = env.health(&cfg);
    assert_eq!(code, 0, "local state only: {line}");
    let o = env.run(&cfg, &["health", "--probe"], b"");
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// One HTTP/1.1 request on a fresh connection: (status, body).
async fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_watch_mode_endpoint_serves_healthz_and_metrics() {
    use mailtoticket::cli::endpoint;
    let env = Env::new();
    let cfg_path = env.config(None, "");
    let config = mailtoticket::config::Config::load(&cfg_path).unwrap();
    let q = env.quarantine();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = endpoint::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(endpoint::serve(listener, std::sync::Arc::new(config)));
        let (status, body) = get(addr, "GET", "/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("MAILTOTICKET OK - "), "{body}");
        // A WARNING is still 200; a CRITICAL is 503.
        q.put(b"Subject: 1\n\nx", "ERROR", "r", Utc::now().fixed_offset())
            .unwrap();
        let (status, body) = get(addr, "GET", "/healthz").await;
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("MAILTOTICKET WARNING"), "{body}");
        for n in 2..=10 {
            q.put(
                format!("Subject: {n}\n\nx").as_bytes(),
                "ERROR",
                "r",
                Utc::now().fixed_offset(),
            )
            .unwrap();
        }
        let (status, body) = get(addr, "GET", "/healthz").await;
        assert_eq!(status, 503, "{body}");
        let (status, body) = get(addr, "GET", "/metrics").await;
        assert_eq!(status, 200);
        let m = parse(&body);
        assert_eq!(value(&m, "mailtoticket_quarantined_mails", &[]), Some(10.0));
        assert_eq!(get(addr, "GET", "/").await.0, 404);
        assert_eq!(get(addr, "GET", "/metrics/../healthz").await.0, 404);
        assert_eq!(get(addr, "DELETE", "/metrics").await.0, 405);
        server.abort();
    });
}

#[test]
fn the_endpoint_bounds_its_connections() {
    use mailtoticket::cli::endpoint;
    use tokio::io::AsyncReadExt;
    let env = Env::new();
    let config = mailtoticket::config::Config::load(&env.config(None, "")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = endpoint::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(endpoint::serve_bounded(
            listener,
            std::sync::Arc::new(config),
            1,
            std::time::Duration::from_millis(300),
        ));
        // A client that connects and says nothing holds the only slot...
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // ...so another is closed unanswered...
        let (status, _) = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            use tokio::io::AsyncWriteExt;
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            (out.len(), ())
        })
        .await
        .expect("closed at once");
        assert_eq!(status, 0, "no answer over the limit");
        // ...and the silent one is dropped after the connection time.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), idle.read(&mut buf))
            .await
            .expect("closed by the server")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // The slot is free again.
        let (status, body) = get(addr, "GET", "/healthz").await;
        assert_eq!(status, 200, "{body}");
        server.abort();
    });
}
