//! Stored-XSS defence (BEHAVIOUR §6): classic vectors through `sanitize`, and through
//! `clean` with cleaning on and off, as a new ticket and as a reply. None may survive.

use mailtoticket::adapters::mail::{AttachmentFilters, parse};
use mailtoticket::domain::html::{clean, sanitize};

const VECTORS: &[&str] = &[
    "<script>alert(1)</script>",
    "<SCRIPT SRC=http://xss.example/xss.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
    "<a href=\"javascript:alert(1)\">x</a>",
    "<a href=\"  JAVASCRIPT:alert(1)\">x</a>",
    "<a href=\"java\nscript:alert(1)\">x</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
    "<img src=\"data:image/svg+xml,<svg onload=alert(1)>\">",
    "<a href=\"vbscript:msgbox(1)\">x</a>",
    "<body onload=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
    "<iframe src=\"http://evil.example/\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<object data=\"javascript:alert(1)\"></object>",
    "<embed src=\"javascript:alert(1)\">",
    "<form action=\"javascript:alert(1)\"><button>x</button></form>",
    "<input onfocus=alert(1) autofocus>",
    "<details open ontoggle=alert(1)>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<div style=\"width: expression(alert(1));\">x</div>",
    "<style>@import 'http://evil.example/x.css';</style>",
    "<link rel=stylesheet href=\"http://evil.example/x.css\">",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
    "<base href=\"javascript:alert(1)//\">",
    "<table background=\"javascript:alert(1)\"><tr><td>x</td></tr></table>",
    "<td onmouseover=alert(1)>x</td>",
    "<blockquote type=\"cite\" onclick=alert(1)>x</blockquote>",
    "<p class=\"x\" id=\"y\" onmouseover=\"alert(1)\">x</p>",
    "<a href=\"http://ok.example/\" onclick=\"alert(1)\">ok</a>",
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
    "<xmp><script>alert(1)</script></xmp>",
    "<video><source onerror=\"alert(1)\"></video>",
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    "<isindex action=javascript:alert(1) type=image>",
    "<img src=\"x\" style=\"x:expression(alert(1))\">",
    "<<script>script>alert(1)<</script>/script>",
    "<img \"\"\"><script>alert(1)</script>\">",
];

/// What must never appear in the output, case-insensitively.
const FORBIDDEN: &[&str] = &[
    "<script",
    "javascript:",
    "vbscript:",
    "data:",
    "<iframe",
    "<object",
    "<embed",
    "<form",
    "<input",
    "<button",
    "<style",
    "style=",
    "<svg",
    "<math",
    "<link",
    "<meta",
    "<base",
    "<video",
    "<audio",
    "<source",
    "<marquee",
    "<details",
    "srcdoc",
    "expression(",
    "background=",
];

fn assert_safe(label: &str, input: &str, out: &str) {
    let lower = out.to_ascii_lowercase();
    for f in FORBIDDEN {
        assert!(
            !lower.contains(f),
            "{label}: {f:?} survived\n input: {input}\noutput: {out}"
        );
    }
    // Event handlers: any ` on<letters>=` attribute inside a tag.
    let re = regex::Regex::new(r"(?i)<[^>]*\son[a-z]+\s*=").expect("regex");
    assert!(
        !re.is_match(out),
        "{label}: event handler survived\n input: {input}\noutput: {out}"
    );
}

#[test]
fn at_least_thirty_vectors() {
    assert!(VECTORS.len() >= 30);
}

#[test]
fn sanitize_neutralises_every_vector() {
    for v in VECTORS {
        assert_safe("sanitize", v, &sanitize(v));
        // Wrapped in ordinary content too.
        let wrapped = format!("<p>hola</p>{v}<p>adeu</p>");
        assert_safe("sanitize(wrapped)", &wrapped, &sanitize(&wrapped));
    }
}

#[test]
fn clean_neutralises_every_vector_in_every_mode() {
    for v in VECTORS {
        let html = format!("<div>Bon dia</div>{v}<blockquote type=\"cite\">old {v}</blockquote>");
        for full in [false, true] {
            for is_reply in [false, true] {
                let out = clean(&html, full, is_reply);
                assert_safe(&format!("clean(full={full}, reply={is_reply})"), v, &out);
            }
        }
    }
}

#[test]
fn sanitize_is_idempotent_on_vectors() {
    for v in VECTORS {
        let once = sanitize(v);
        assert_eq!(sanitize(&once), once, "{v}");
    }
}

#[test]
fn plain_text_vectors_stay_text() {
    // A text/plain mail carrying markup: escaped exactly once, never live.
    let re = regex::Regex::new(r"(?i)<[^>]*\son[a-z]+\s*=").expect("regex");
    for v in VECTORS {
        let raw =
            format!("From: a@b.c\nSubject: x\nContent-Type: text/plain; charset=utf-8\n\n{v}\n");
        let mail = parse(raw.as_bytes(), &AttachmentFilters::default());
        let out = clean(&mail.body_html, true, false);
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("&amp;lt;"), "escaped twice: {out}");
        assert!(!re.is_match(&out), "{out}");
    }
}

#[test]
fn safe_markup_survives() {
    let html = r#"<p class="x">Hola <b>món</b> <a href="https://upc.edu/">upc</a></p><table><tr><td colspan="2">c</td></tr></table>"#;
    let out = sanitize(html);
    for keep in [
        r#"<p class="x">"#,
        "<b>món</b>",
        r#"href="https://upc.edu/""#,
        r#"colspan="2""#,
    ] {
        assert!(out.contains(keep), "{keep} missing in {out}");
    }
}
