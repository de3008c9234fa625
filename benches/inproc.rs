//! In-process benchmark of the pure path: parse + classify + plan (the use case with
//! in-memory ports) + HTML cleaning, with a counting allocator for peak heap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use mailtoticket::adapters::mail::{AttachmentFilters, parse};
use mailtoticket::app::{Ports, Settings, deliver};
use mailtoticket::config::Config;
use mailtoticket::domain::identity::Person;
use mailtoticket::domain::outcome::Status;
use mailtoticket::domain::ticket::{
    NewAttachment, NewComment, NewTicket, TicketChanges, TicketInfo,
};
use mailtoticket::ports::{
    Clock, IdentityDirectory, MemoryJournal, NoRateLimit, PortError, TicketSystem,
};

/// Counts live heap bytes and remembers the peak since the last reset.
pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// plain atomics and never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as our caller's (a non-zero-size `layout`).
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this `layout` (we allocate only there).
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

/// Heap bytes currently live, and resets the peak to it.
pub fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Ports that answer at once: the person exists, tickets get increasing codes.
struct Instant0;

impl TicketSystem for Instant0 {
    async fn query_ticket(&self, codi: &str) -> Result<Option<TicketInfo>, PortError> {
        Ok(Some(TicketInfo {
            codi_tiquet: codi.into(),
            estat: "TIQUET_STATUS_OBERT".into(),
            solicitant: "nom.cognom".into(),
            email_solicitant: "nom.cognom@upc.edu".into(),
            ..TicketInfo::default()
        }))
    }
    async fn find_tickets(&self, _: &str, _: &str) -> Result<Vec<TicketInfo>, PortError> {
        Ok(Vec::new())
    }
    async fn create_ticket(&self, _: &NewTicket) -> Result<String, PortError> {
        Ok("1".into())
    }
    async fn modify_ticket(&self, _: &TicketChanges) -> Result<(), PortError> {
        Ok(())
    }
    async fn add_comment(&self, _: &NewComment) -> Result<(), PortError> {
        Ok(())
    }
    async fn attach_file(&self, a: &NewAttachment<'_>) -> Result<String, PortError> {
        Ok(a.content.len().to_string())
    }
    async fn add_requester(&self, _: &str, _: &str) -> Result<(), PortError> {
        Ok(())
    }
}

impl IdentityDirectory for Instant0 {
    async fn person(&self, cn: &str) -> Result<Option<Person>, PortError> {
        Ok(Some(Person {
            cn: cn.into(),
            email_preferent: Some(format!("{cn}@upc.edu")),
        }))
    }
    async fn persons_by_email(&self, _: &str) -> Result<Vec<String>, PortError> {
        Ok(vec!["nom.cognom".into()])
    }
}

struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2026-11-28T10:00:00+01:00").unwrap_or_default()
    }
}

fn html_mail(target: usize) -> Vec<u8> {
    let mut body = String::from("<html><head><style>p{color:red}</style></head><body>");
    let mut i = 0;
    while body.len() < target {
        body.push_str(&format!(
            "<div class=\"x\"><p>Paràgraf {i} amb <b>negreta</b>, un <a href=\"https://www.upc.edu/{i}\">enllaç</a> \
             i &lt;text&gt; escapat.</p><table><tr><td>{i}</td><td>cel·la</td></tr></table></div>\r\n"
        ));
        i += 1;
    }
    body.push_str("<blockquote type=\"cite\"><p>missatge anterior</p></blockquote><div>-- <br>Signatura</div></body></html>");
    format!(
        "From: <nom.cognom@upc.edu>\r\nTo: <suport@upc.edu>\r\nSubject: HTML gran\r\n\
         Date: Tue, 20 Oct 2015 11:01:05 +0200\r\nMessage-ID: <core-html@x>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

fn big_mail(size: usize) -> Vec<u8> {
    use base64::Engine as _;
    let data: Vec<u8> = (0..size)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8)
        .collect();
    let enc = base64::engine::general_purpose::STANDARD.encode(&data);
    let mut m = b"From: <nom.cognom@upc.edu>\r\nTo: <suport@upc.edu>\r\nSubject: Fitxer\r\n\
        Message-ID: <core-big@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n\
        --B\r\nContent-Type: text/plain\r\n\r\nAdjunto.\r\n--B\r\nContent-Type: application/octet-stream; name=\"d.bin\"\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    for chunk in enc.as_bytes().chunks(76) {
        m.extend_from_slice(chunk);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--B--\r\n");
    m
}

/// One pass: parse, classify (inside `deliver`), plan with in-memory ports, clean.
fn one_pass(rt: &tokio::runtime::Runtime, raw: &[u8], settings: &Settings) -> Status {
    let mail = parse(raw, &AttachmentFilters::default());
    let journal = MemoryJournal::default();
    let d = rt.block_on(deliver(
        &mail,
        settings,
        &Ports {
            tickets: &Instant0,
            identity: &Instant0,
            clock: &Fixed,
            journal: &journal,
            rate: &NoRateLimit,
        },
    ));
    d.status
}

/// The value after `--case`, lowercased, if given.
fn case_filter() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let i = args.iter().position(|a| a == "--case")?;
    args.get(i + 1).map(|s| s.to_lowercase())
}

pub fn run(quick: bool) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = Config::from_toml(
        "username_soa = \"u\"\npassword_soa = \"p\"\nusername_gn6 = \"g\"\npassword_gn6 = \"q\"\n\
         domini = \"1\"\nequip_resolutor_nous = \"2\"\nusuari_extern = \"ext\"\n",
        std::path::Path::new("core-bench.toml"),
    )
    .expect("config");
    let settings = mailtoticket::config::Settings::build(&config)
        .expect("settings")
        .app;
    let mut out = String::from(
        "| in-process case | mail size | runs | median | p90 | peak heap | peak / size |\n|---|---|---|---|---|---|---|\n",
    );
    for (name, raw, runs) in [
        (
            "20 KB HTML mail (new ticket)",
            html_mail(20 * 1024),
            if quick { 50 } else { 500 },
        ),
        (
            "10 MB attachment (new ticket)",
            big_mail(10 * 1024 * 1024),
            if quick { 3 } else { 15 },
        ),
    ] {
        // `--case html` / `--case big` runs one case only (for profilers).
        if let Some(only) = case_filter()
            && !name.to_lowercase().contains(&only)
        {
            continue;
        }
        assert_eq!(one_pass(&rt, &raw, &settings), Status::Success, "{name}");
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        let mut worst_peak = 0;
        for _ in 0..runs {
            let base = reset_peak();
            let t = Instant::now();
            let s = one_pass(&rt, &raw, &settings);
            times.push(t.elapsed());
            worst_peak = worst_peak.max(peak().saturating_sub(base));
            assert_eq!(s, Status::Success);
        }
        times.sort();
        let med = times[times.len() / 2];
        let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
        out.push_str(&format!(
            "| {name} | {:.1} KiB | {runs} | {:.3} ms | {:.3} ms | {:.1} MiB | {:.2}× |\n",
            raw.len() as f64 / 1024.0,
            med.as_secs_f64() * 1000.0,
            p90.as_secs_f64() * 1000.0,
            worst_peak as f64 / 1_048_576.0,
            worst_peak as f64 / raw.len() as f64,
        ));
    }
    out
}
