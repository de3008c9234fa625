//! Issue 14 end to end: a bounced GN6 notification of a sandbox ticket, run through the
//! real binary, shows up as a private, never-notified comment on that ticket; the ticket
//! is not reopened, no new ticket appears, and an out-of-office answer to the same
//! notification is skipped without a comment.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mailtoticket::sandbox::{list_tickets, load_ticket};

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");

fn write_config(dir: &Path) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "bus = \"sandbox\"\nsandbox_dir = \"{sandbox}\"\n\
             username_gn6 = \"gn6\"\ndomini = \"1234\"\nequip_resolutor_nous = \"98765\"\n\
             usuari_extern = \"extern\"\nfiltres = [\"reply_reobrint\", \"nou_extern\"]\n\
             max_tickets_per_hour = 0\nlog_file = \"{log}\"\nstate_dir = \"{state}\"\n",
            sandbox = dir.join("sandbox").display(),
            log = dir.join("m2t.log").display(),
            state = dir.join("state").display(),
        ),
    )
    .expect("config");
    cfg
}

fn run(cfg: &Path, args: &[&str], raw: &[u8]) -> (String, i32) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("-c")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = raw.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn bounce_of(ticket: u64) -> String {
    format!(
        "Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
To: suport@upc.edu\r\nSubject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <bounce-{ticket}@mx.example.net>\r\nDate: Mon, 3 Feb 2025 10:00:00 +0100\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
--B\r\nContent-Type: text/plain; charset=unicode-1-1-utf-7\r\n\r\n+AGQAZQBs-\r\n\
--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
Final-Recipient: rfc822; anna@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <anna@example.org>: User unknown\r\n\r\n\
--B\r\nContent-Type: text/rfc822-headers\r\n\r\n\
Message-ID: <0a1b-tiquet-id-{ticket}@gn6>\r\nFrom: suport@upc.edu\r\nTo: anna@example.org\r\n\
Subject: [Suport Unitat {ticket}] Impressora\r\n\r\n--B--\r\n"
    )
}

#[test]
fn a_bounced_notification_becomes_a_private_comment_on_its_ticket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write_config(dir.path());
    let sandbox = dir.path().join("sandbox");

    let new = b"From: Anna <anna@example.org>\r\nTo: suport@upc.edu\r\nSubject: Impressora\r\n\
Message-ID: <human-1@example.org>\r\nDate: Mon, 3 Feb 2025 09:00:00 +0100\r\n\r\nNo imprimeix.\r\n";
    let (out, code) = run(&cfg, &[], new);
    assert!(out.starts_with("X-Mailtoticket: SUCCESS"), "{out}");
    assert_eq!(code, 0);
    let tickets = list_tickets(&sandbox).expect("tickets");
    assert_eq!(tickets.len(), 1);
    let code_n = tickets[0].codi;

    // `classify` sees the same thing, without any bus.
    let (text, c) = run(&cfg, &["classify"], bounce_of(code_n).as_bytes());
    assert_eq!(c, 0);
    assert!(
        text.starts_with("class: bounce\nrule: delivery-status-report"),
        "{text}"
    );
    assert!(text.contains(&format!("of ticket {code_n}")), "{text}");
    assert!(
        text.contains("recipient: anna@example.org failed 5.1.1"),
        "{text}"
    );

    let (out, code) = run(&cfg, &[], bounce_of(code_n).as_bytes());
    assert!(out.starts_with("X-Mailtoticket: SUCCESS"), "{out}");
    assert_eq!(code, 0);
    let t = load_ticket(&sandbox, code_n)
        .expect("load")
        .expect("ticket");
    assert_eq!(t.comments.len(), 1, "{:?}", t.comments);
    let c = &t.comments[0];
    assert!(c.private && !c.notified, "{c:?}");
    assert_eq!(
        c.text,
        "La notificació a anna@example.org no s'ha pogut lliurar: 5.1.1 550 5.1.1 &lt;anna@example.org&gt;: User unknown"
    );
    assert_eq!(
        list_tickets(&sandbox).expect("tickets").len(),
        1,
        "no new ticket"
    );

    // The same bounce again (an MTA retry): the journal keeps it to one comment.
    let (out, _) = run(&cfg, &[], bounce_of(code_n).as_bytes());
    assert!(out.starts_with("X-Mailtoticket: SUCCESS"), "{out}");
    let t = load_ticket(&sandbox, code_n)
        .expect("load")
        .expect("ticket");
    assert_eq!(t.comments.len(), 1);

    // An out-of-office answer to the notification: skipped, no comment, no ticket.
    let oof = format!(
        "From: anna@example.org\r\nTo: suport@upc.edu\r\nSubject: Out of office: [Suport Unitat {code_n}] Impressora\r\n\
Auto-Submitted: auto-replied\r\nIn-Reply-To: <0a1b-tiquet-id-{code_n}@gn6>\r\n\
Message-ID: <oof-1@example.org>\r\n\r\nFins dilluns.\r\n"
    );
    let (out, code) = run(&cfg, &[], oof.as_bytes());
    assert!(out.starts_with("X-Mailtoticket: SKIP"), "{out}");
    assert_eq!(code, 0);
    let t = load_ticket(&sandbox, code_n)
        .expect("load")
        .expect("ticket");
    assert_eq!(t.comments.len(), 1);
    assert_eq!(list_tickets(&sandbox).expect("tickets").len(), 1);
    let (journal, _) = run(&cfg, &["journal", "show", "<oof-1@example.org>"], b"");
    assert!(journal.contains("auto-reply"), "{journal}");
}
