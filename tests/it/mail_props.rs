//! Property tests: arbitrary bytes through parse + classify + clean never panic, and the
//! cleaned HTML never carries script or event handlers.

use mailtoticket::adapters::mail::{AttachmentFilters, parse};
use mailtoticket::domain::classify::{ClassifyOptions, classify};
use mailtoticket::domain::html::{clean, sanitize};
use proptest::prelude::*;

fn run(bytes: &[u8]) {
    let filters =
        AttachmentFilters::new(&["^image0".to_string()], &["00".repeat(16)]).expect("filters");
    let mail = parse(bytes, &filters);
    assert_eq!(mail.raw_len, bytes.len());
    let opts = ClassifyOptions {
        mails_sempre_ticket: vec!["^x.*@upc\\.edu$".into()],
        mails_no_ticket: vec!["no@upc.edu".into()],
        skip_list_mail: false,
    };
    let _ = classify(&mail, &opts);
    for full in [false, true] {
        let out = clean(&mail.body_html, full, true);
        assert!(!out.to_ascii_lowercase().contains("<script"));
    }
}

/// Mail-shaped input: headers and MIME pieces shuffled with noise.
fn mailish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("From: a@b.c\r\n".to_string()),
        Just("Subject: =?utf-8?B?w6Ez?= =?utf-8?Q?=C3?=\n".to_string()),
        Just("Content-Type: multipart/mixed; boundary=\"b\"\n".to_string()),
        Just("Content-Type: multipart/report; report-type=delivery-status\n".to_string()),
        Just("Content-Type: text/html; charset=koi8-r\n".to_string()),
        Just("Content-Transfer-Encoding: base64\n".to_string()),
        Just("Content-Transfer-Encoding: quoted-printable\n".to_string()),
        Just("Content-Disposition: attachment; filename*0*=utf-8''a%; filename*1=b\n".to_string()),
        Just("Date: Mon, 32 Foo 99999 25:61:61 +9999\n".to_string()),
        Just("References: <a> <b\n".to_string()),
        Just("\n".to_string()),
        Just("--b\n".to_string()),
        Just("--b--\n".to_string()),
        Just("<script>x</script><blockquote type=\"cite\">q</blockquote>\n".to_string()),
        Just("=C3=\n=A9 \u{0}\u{ff}\n".to_string()),
        "[ -~]{0,40}\n",
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        run(&bytes);
    }

    #[test]
    fn mail_shaped_bytes_never_panic(bytes in mailish()) {
        run(&bytes);
    }

    #[test]
    fn clean_of_any_string_never_panics(s in "\\PC{0,300}") {
        let _ = sanitize(&s);
        let _ = clean(&s, true, true);
    }
}
