//! Whole-process benchmark: the built binary, one process per mail, against the
//! standalone sandbox simulator on loopback. Prints, per mail kind: wall time median
//! and spread, CPU time, peak RSS, HTTP requests and TCP connections per mail.
//!
//! Run: `cargo bench --bench bench` (add `-- --quick` for fewer iterations,
//! `-- --core-only` for the in-process part only, `-- --case TEXT` (repeatable) to run
//! only the rows whose name contains TEXT, case-insensitive; the 1,000-mail batch is
//! then skipped; `--case health` or `--case metrics` runs the issue 18 section:
//! `health` and `metrics` on a journal of 100,000 mails).

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mailtoticket::sandbox::{self, SandboxConfig, SandboxStats};

mod inproc;
mod observe;

#[global_allocator]
static ALLOC: inproc::Counting = inproc::Counting;

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

struct Sample {
    wall: Duration,
    cpu: Duration,
    max_rss_kib: i64,
    code: i32,
}

/// Runs the binary once with `mail` on stdin and measures it.
///
/// The measuring is done by a fresh copy of this bench binary (`--spawn`): a child
/// forked from this big process would count our own pages in its peak RSS until it
/// execs, so the process under test must be forked from a small one.
fn run_once(config: &Path, mail: &Path) -> Sample {
    let out = Command::new(std::env::current_exe().expect("current exe"))
        .arg("--spawn")
        .arg(config)
        .arg(mail)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn runner");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<i64> = text
        .split_whitespace()
        .map(|x| x.parse().expect("runner output"))
        .collect();
    assert_eq!(f.len(), 4, "runner said: {text}");
    Sample {
        wall: Duration::from_nanos(f[0] as u64),
        cpu: Duration::from_nanos(f[1] as u64),
        max_rss_kib: f[2],
        code: f[3] as i32,
    }
}

/// The `--spawn CONFIG MAIL` mode: runs mailtoticket once, measures it with wait4(2)
/// and prints `wall_ns cpu_ns max_rss_kib exit_code`.
fn spawn_and_measure(config: &str, mail: &str) {
    let stdin = File::open(mail).expect("mail file");
    let start = Instant::now();
    let child = Command::new(BIN)
        .arg("-c")
        .arg(config)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mailtoticket");
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own unreaped child; both out-pointers are valid locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(r, pid, "wait4 failed");
    // The child was reaped by wait4: std must not wait for it again.
    // Dropping a `Child` neither waits nor kills, it only closes its pipes (none here:
    // all three are null or inherited), so forgetting it leaks nothing.
    #[allow(clippy::mem_forget)]
    std::mem::forget(child);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    let code = std::process::ExitStatus::from_raw(status)
        .code()
        .unwrap_or(-1);
    println!(
        "{} {} {} {}",
        wall.as_nanos(),
        (tv(usage.ru_utime) + tv(usage.ru_stime)).as_nanos(),
        usage.ru_maxrss,
        code
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Case {
    name: &'static str,
    iterations: usize,
    /// Builds the mail of iteration `i` (each one a distinct Message-ID, so the
    /// delivery journal does not short-circuit repeated runs).
    mail: Box<dyn Fn(usize) -> Vec<u8>>,
    expect_code: i32,
}

fn plain(i: usize) -> Vec<u8> {
    format!(
        "From: <nom.cognom@upc.edu>\r\nTo: <suport.unitat@upc.edu>\r\n\
         Date: Tue, 20 Oct 2015 11:01:05 +0200\r\nMessage-ID: <bench-plain-{i}@example.org>\r\n\
         Subject: Benvingut, mailtoticket! {i}\r\n\r\nHola!\r\n\r\nMailtoticket ja pot crear tickets!\r\n"
    )
    .into_bytes()
}

fn reply(ticket: String) -> impl Fn(usize) -> Vec<u8> {
    move |i| {
        format!(
            "From: <nom.cognom@upc.edu>\r\nTo: <suport.unitat@upc.edu>\r\n\
             Date: Tue, 20 Oct 2015 12:01:05 +0200\r\nMessage-ID: <bench-reply-{i}@example.org>\r\n\
             In-Reply-To: <4b3b6b9c-bd31-tiquet-id-{ticket}@gn6>\r\n\
             Subject: Re: [Suport Unitat {ticket}] Benvingut\r\n\r\nGracies, ja funciona ({i}).\r\n"
        )
        .into_bytes()
    }
}

fn b64(data: &[u8]) -> String {
    use base64::Engine as _;
    let s = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(s.len() + s.len() / 76 * 2);
    for chunk in s.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or(""));
        out.push_str("\r\n");
    }
    out
}

fn html_with_attachments(i: usize) -> Vec<u8> {
    let png = [
        0x89u8, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    let pdf = b"%PDF-1.4\n% bench attachment\n".repeat(200);
    let csv = b"a,b,c\n1,2,3\n".repeat(300);
    format!(
        "From: <nom.cognom@upc.edu>\r\nTo: <suport.unitat@upc.edu>\r\n\
         Date: Tue, 20 Oct 2015 11:01:05 +0200\r\nMessage-ID: <bench-html-{i}@example.org>\r\n\
         Subject: Captura de pantalla {i}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"MIX\"\r\n\r\n\
         --MIX\r\nContent-Type: multipart/related; boundary=\"REL\"\r\n\r\n\
         --REL\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><body><p>Mireu la <b>captura</b>:</p><img src=\"cid:logo@x\"><p>Gr&agrave;cies</p></body></html>\r\n\
         --REL\r\nContent-Type: image/png\r\nContent-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\
         --REL--\r\n\
         --MIX\r\nContent-Type: application/pdf; name=\"informe.pdf\"\r\nContent-Disposition: attachment; filename=\"informe.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\
         --MIX\r\nContent-Type: text/csv; name=\"dades.csv\"\r\nContent-Disposition: attachment; filename=\"dades.csv\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\
         --MIX--\r\n",
        b64(&png),
        b64(&pdf),
        b64(&csv)
    )
    .into_bytes()
}

fn big_attachment(size: usize) -> impl Fn(usize) -> Vec<u8> {
    // Pseudo-random bytes so that nothing along the way can shortcut them.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let encoded = b64(&data);
    move |i| {
        let mut m = format!(
            "From: <nom.cognom@upc.edu>\r\nTo: <suport.unitat@upc.edu>\r\n\
             Date: Tue, 20 Oct 2015 11:01:05 +0200\r\nMessage-ID: <bench-big-{i}@example.org>\r\n\
             Subject: Fitxer gran {i}\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nUs envio el fitxer.\r\n\
             --B\r\nContent-Type: application/octet-stream; name=\"dades.bin\"\r\n\
             Content-Disposition: attachment; filename=\"dades.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        )
        .into_bytes();
        m.extend_from_slice(encoded.as_bytes());
        m.extend_from_slice(b"--B--\r\n");
        m
    }
}

/// A text/html mail with `body` (issue 9's hostile mails).
fn html_body(kind: &'static str, subject: String, body: String) -> impl Fn(usize) -> Vec<u8> {
    move |i| {
        format!(
            "From: <nom.cognom@upc.edu>\r\nTo: <suport.unitat@upc.edu>\r\n\
             Date: Tue, 20 Oct 2015 11:01:05 +0200\r\nMessage-ID: <bench-{kind}-{i}@example.org>\r\n\
             Subject: {subject} {i}\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{body}\r\n"
        )
        .into_bytes()
    }
}

/// 100,000 tiny attachments: past `max_attachments`, a REJECT before any upload.
fn many_attachments(i: usize) -> Vec<u8> {
    let mut m = format!(
        "From: <nom.cognom@upc.edu>\r\nTo: <suport.unitat@upc.edu>\r\n\
         Date: Tue, 20 Oct 2015 11:01:05 +0200\r\nMessage-ID: <bench-many-{i}@example.org>\r\n\
         Subject: Molts fitxers {i}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: text/plain\r\n\r\nHola\r\n"
    );
    for n in 0..100_000 {
        let _ = write!(
            m,
            "--B\r\nContent-Type: application/octet-stream\r\n\
             Content-Disposition: attachment; filename=\"f{n}.bin\"\r\n\r\nx{n}\r\n"
        );
    }
    m.push_str("--B--\r\n");
    m.into_bytes()
}

fn automatic(i: usize) -> Vec<u8> {
    format!(
        "From: <nom.cognom@upc.edu>\r\nTo: <suport.unitat@upc.edu>\r\n\
         Date: Tue, 20 Oct 2015 11:01:05 +0200\r\nMessage-ID: <bench-auto-{i}@example.org>\r\n\
         Auto-Submitted: auto-replied\r\nSubject: Fora de l'oficina {i}\r\n\r\nTornaré dilluns.\r\n"
    )
    .into_bytes()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "--spawn" {
        spawn_and_measure(&args[2], &args[3]);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let filters: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--case")
        .map(|w| w[1].to_lowercase())
        .collect();
    println!("\nIn-process core (parse + classify + plan + clean, in-memory ports):\n");
    println!("{}", inproc::run(quick));
    if std::env::args().any(|a| a == "--core-only") {
        return;
    }
    let scale = |n: usize| if quick { n.div_ceil(10).max(3) } else { n };
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().to_path_buf();

    // Issue 18: `health` and `metrics` on a journal of 100,000 mails.
    if filters.is_empty()
        || filters
            .iter()
            .any(|f| "health metrics observe".contains(f.as_str()))
    {
        println!("\nhealth and metrics (the binary, warm cache):\n");
        println!("{}", observe::run(BIN, &dir, quick));
    }

    // The simulator runs in this process, on its own thread and runtime, so that its
    // counters can be read directly; the binary under test is a separate process.
    let sandbox_cfg = SandboxConfig {
        dir: dir.join("sandbox"),
        username_soa: "bench.soa".into(),
        password_soa: "bench-bus-secret".into(),
        username_gn6: "benchgn6".into(),
        password_gn6: "bench-gn6-secret".into(),
        domini: "1234".into(),
        reopen_period_days: 30,
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let running = sandbox::start(sandbox_cfg, 0).await.expect("sandbox");
            tx.send(running).expect("send");
            std::future::pending::<()>().await;
        });
    });
    let running = rx.recv().expect("sandbox started");

    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "username_soa = \"bench.soa\"\npassword_soa = \"bench-bus-secret\"\n\
             username_gn6 = \"benchgn6\"\npassword_gn6 = \"bench-gn6-secret\"\n\
             domini = \"1234\"\nequip_resolutor_nous = \"98765\"\nusuari_extern = \"extern\"\n\
             bus = \"test\"\nlog_file = \"{log}\"\nstate_dir = \"{state}\"\n\
             filtres = [\"reply\", \"nou\"]\nmax_tickets_per_hour = 0\n\n[endpoints]\ngn6 = \"{gn6}\"\npersones = \"{persones}\"\n",
            log = dir.join("bench.log").display(),
            state = dir.join("state").display(),
            gn6 = running.gn6_url(),
            persones = running.persones_url(),
        ),
    )
    .expect("config");

    // One ticket to reply to.
    let first = dir.join("first.eml");
    std::fs::write(&first, plain(usize::MAX)).expect("mail");
    let s = run_once(&config, &first);
    assert_eq!(s.code, 0, "creating the first ticket failed");
    let ticket = sandbox::list_tickets(&dir.join("sandbox"))
        .expect("tickets")
        .last()
        .map(|t| t.codi.to_string())
        .expect("a ticket");

    let cases = vec![
        Case {
            name: "plain new ticket",
            iterations: scale(50),
            mail: Box::new(plain),
            expect_code: 0,
        },
        Case {
            name: "reply (comment)",
            iterations: scale(30),
            mail: Box::new(reply(ticket)),
            expect_code: 0,
        },
        Case {
            name: "HTML, 2 attachments + inline image",
            iterations: scale(30),
            mail: Box::new(html_with_attachments),
            expect_code: 0,
        },
        Case {
            name: "10 MB attachment (14 MB mail)",
            iterations: scale(8),
            mail: Box::new(big_attachment(10 * 1024 * 1024)),
            expect_code: 0,
        },
        Case {
            name: "750 KiB attachment (1 MB mail)",
            iterations: scale(8),
            mail: Box::new(big_attachment(750 * 1024)),
            expect_code: 0,
        },
        Case {
            name: "36 MiB attachment (50 MB mail, just under max_mail_bytes)",
            iterations: scale(3).min(3),
            mail: Box::new(big_attachment(36 * 1024 * 1024)),
            expect_code: 0,
        },
        Case {
            name: "hostile: 200k nested divs (2.2 MB HTML)",
            iterations: scale(8),
            mail: Box::new(html_body(
                "deep",
                "Deep".into(),
                format!("{}x{}", "<div>".repeat(200_000), "</div>".repeat(200_000)),
            )),
            expect_code: 0,
        },
        Case {
            name: "hostile: 100k attachments (REJECT)",
            iterations: scale(5),
            mail: Box::new(many_attachments),
            expect_code: 2,
        },
        Case {
            name: "hostile: 1 MB subject (cut to 255 chars)",
            iterations: scale(8),
            mail: Box::new(html_body("subject", "s".repeat(1_000_000), "<p>x</p>".into())),
            expect_code: 0,
        },
        Case {
            name: "hostile: attribute-splitting PGP payload",
            iterations: scale(30),
            mail: Box::new(html_body(
                "pgp",
                "PGP".into(),
                r#"<p>hello</p><img src="x" class="-----BEGIN PGP SIGNATURE-----"><p>-----END PGP SIGNATURE-----" onerror=alert(document.domain) x=</p>"#.into(),
            )),
            expect_code: 0,
        },
        Case {
            name: "automatic mail (skipped)",
            iterations: scale(50),
            mail: Box::new(automatic),
            expect_code: 0,
        },
    ];

    let mut table = String::new();
    let _ = writeln!(
        table,
        "| mail | runs | size | wall median | wall p10–p90 | CPU median | peak RSS max | peak RSS / size | HTTP req/mail | TCP conn/mail |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|---|---|---|---|");
    for case in cases.iter().filter(|c| {
        filters.is_empty()
            || filters
                .iter()
                .any(|f| c.name.to_lowercase().contains(f.as_str()))
    }) {
        let row = measure(case, &config, &dir, &|| running.stats());
        eprintln!("{row}");
        let _ = writeln!(table, "{row}");
    }

    // 1,000 mails, one process each, back to back.
    let n = if filters.is_empty() { scale(1000) } else { 0 };
    let before = running.stats();
    let mut files = Vec::with_capacity(n);
    for i in 0..n {
        let p = dir.join(format!("batch-{i}.eml"));
        let mut f = File::create(&p).expect("mail");
        f.write_all(&plain(1_000_000 + i)).expect("write");
        files.push(p);
    }
    let t0 = Instant::now();
    let mut worst_rss: i64 = 0;
    let mut failures = 0;
    for p in &files {
        let s = run_once(&config, p);
        worst_rss = worst_rss.max(s.max_rss_kib);
        if s.code != 0 {
            failures += 1;
        }
    }
    let total = t0.elapsed();
    let after = running.stats();
    if n > 0 {
        let _ = writeln!(
            table,
            "| batch of {n} plain mails, one process each | {n} | — | {:.2} ms/mail | total {:.2} s | — | {:.1} MiB | — | {:.2} | {:.2} |",
            ms(total) / n as f64,
            total.as_secs_f64(),
            worst_rss as f64 / 1024.0,
            (after.http_requests - before.http_requests) as f64 / n as f64,
            (after.connections - before.connections) as f64 / n as f64,
        );
    }
    println!("\nmailtoticket whole-process benchmark (binary: {BIN})\n");
    println!("{table}");
    let all = running.stats();
    println!(
        "WSDL downloads during the whole run: {}; SOAP requests by operation: {:?}",
        all.operation("wsdl"),
        all.operations
    );
    if failures > 0 {
        eprintln!("{failures} batch runs did not exit 0");
        std::process::exit(1);
    }
}

fn measure(case: &Case, config: &Path, dir: &Path, stats: &dyn Fn() -> SandboxStats) -> String {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    let mut rss = 0;
    let mut size = 0;
    let mut paths: Vec<PathBuf> = Vec::new();
    for i in 0..case.iterations {
        let mail = (case.mail)(i);
        size = mail.len();
        let p = dir.join(format!("{}-{i}.eml", case.name.len()));
        std::fs::write(&p, &mail).expect("mail");
        paths.push(p);
    }
    let before = stats();
    for p in &paths {
        let s = run_once(config, p);
        assert_eq!(
            s.code, case.expect_code,
            "{}: unexpected exit code",
            case.name
        );
        walls.push(s.wall);
        cpus.push(s.cpu);
        rss = rss.max(s.max_rss_kib);
    }
    let after = stats();
    for p in &paths {
        let _ = std::fs::remove_file(p);
    }
    let n = case.iterations as f64;
    let mut sorted = walls.clone();
    sorted.sort();
    let p10 = sorted[sorted.len() / 10];
    let p90 = sorted[(sorted.len() * 9 / 10).min(sorted.len() - 1)];
    format!(
        "| {} | {} | {:.1} KiB | {:.2} ms | {:.2}–{:.2} ms | {:.2} ms | {:.1} MiB | {:.2}× | {:.2} | {:.2} |",
        case.name,
        case.iterations,
        size as f64 / 1024.0,
        ms(median(walls)),
        ms(p10),
        ms(p90),
        ms(median(cpus)),
        rss as f64 / 1024.0,
        (rss as f64 * 1024.0) / size.max(1) as f64,
        (after.http_requests - before.http_requests) as f64 / n,
        (after.connections - before.connections) as f64 / n,
    )
}
