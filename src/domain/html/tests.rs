use super::*;

fn full(h: &str, reply: bool) -> String {
    clean(h, true, reply).into_string()
}

#[test]
fn escape_text_escapes_once() {
    assert_eq!(escape_text("a<b>&c"), "a&lt;b&gt;&amp;c");
    assert_eq!(escape_text("&lt;"), "&amp;lt;");
}

#[test]
fn sanitize_keeps_allowed_and_drops_the_rest() {
    let out = sanitize(
        r#"<div class="x" style="color:red" onclick="f()"><p>Hi <b>there</b></p><script>alert(1)</script><style>p{}</style><span>s</span></div>"#,
    );
    assert_eq!(
        out.as_str(),
        r#"<div class="x"><p>Hi <b>there</b></p>s</div>"#
    );
}

#[test]
fn sanitize_turns_address_tags_into_brackets() {
    assert_eq!(
        sanitize("Joan <joan@example.com> wrote").as_str(),
        "Joan [joan@example.com] wrote"
    );
}

#[test]
fn url_policy() {
    let out = sanitize(
        r#"<img src="cid:abc@x" alt="logo"><img src="/tiquetsusuaris/control/file?fileId=3" alt="rel"><img src="data:image/png;base64,AAA"><img src="https://evil.example/p.gif" alt="px"><a href="/x">rel</a><a href="//evil.example/">proto</a><a href="https://ok.example/a?b=1&amp;c">ok</a><a href="mailto:a@b.c">m</a><a href="ftp://x/">f</a>"#,
    );
    assert_eq!(
        out.as_str(),
        r#"logorelpxrelproto<a href="https://ok.example/a?b=1&amp;c" rel="noopener noreferrer">ok</a><a href="mailto:a@b.c" rel="noopener noreferrer">m</a>f"#
    );
}

#[test]
fn cid_images_point_at_uploaded_attachments_only() {
    let up = [
        Uploaded {
            name: "logo.png".into(),
            content_type: "image/png",
            content_id: Some("ab"),
            codi_annex: "1".into(),
        },
        Uploaded {
            name: "a&b.pdf".into(),
            content_type: "application/pdf",
            content_id: None,
            codi_annex: "3".into(),
        },
    ];
    let mut b = Body::parse(
        r#"<p>x</p><img src="cid:ab"><img src="cid:zz" alt="z">"#,
        10,
    );
    b.link_attachments(&up);
    assert_eq!(
        b.render().as_str(),
        "<p>x</p><img src=\"/tiquetsusuaris/control/file?fileId=1\">z<br><br>Attachments:<ul><li><a href=\"/tiquetsusuaris/control/file?fileId=3\">a&amp;b.pdf (application/pdf)</a></li></ul>"
    );
}

#[test]
fn header_prepended_as_text() {
    let mut b = Body::from_text("a <b>\nc");
    b.prepend_header("[De <x>]");
    assert_eq!(
        b.render().as_str(),
        "[De &lt;x&gt;]<br><br>a &lt;b&gt;<br>\nc"
    );
}

#[test]
fn blockquote_cite_removed_only_when_single() {
    let one = r#"<p>answer</p><blockquote type="cite"><p>old</p></blockquote>"#;
    assert_eq!(full(one, true), "<p>answer</p>");
    let two = r#"<p>a</p><blockquote type="cite">x</blockquote><p>b</p><blockquote type="cite">y</blockquote>"#;
    assert!(full(two, true).contains('x'));
    assert!(full(one, false).contains("old"));
    assert!(clean(one, false, true).as_str().contains("old"));
}

#[test]
fn step_kept_only_when_text_remains() {
    let only_quote = r#"<blockquote type="cite"><p>old</p></blockquote>"#;
    assert!(full(only_quote, true).contains("old"));
}

#[test]
fn gmail_quote_removed() {
    let h = r#"<div dir="ltr">Fet!</div><br><div class="gmail_quote"><div class="gmail_attr">El dl., X va escriure:</div><blockquote class="gmail_quote">old</blockquote></div>"#;
    let out = full(h, true);
    assert!(out.contains("Fet!"));
    assert!(!out.contains("old"));
    assert!(!out.contains("escriure"));
}

#[test]
fn android_quote_removed() {
    let h = r#"<div>Ok</div><div class="quote">-------- Missatge original --------<br>old</div>"#;
    assert!(!full(h, true).contains("old"));
}

#[test]
fn moz_cite_prefix_removed() {
    let h = r#"<p>Resposta</p><div class="moz-cite-prefix">El 1/2/2020, X va escriure:</div><blockquote type="cite">old</blockquote>"#;
    assert_eq!(full(h, true), "<p>Resposta</p>");
}

#[test]
fn moz_cite_prefix_keeps_text_typed_inside_it() {
    let h = r#"<div class="moz-cite-prefix">xxxx<br><br>El dia X va escriure:<br></div><blockquote type="cite">old</blockquote>"#;
    let out = full(h, true);
    assert!(out.contains("xxxx"), "{out}");
    assert!(!out.contains("escriure"), "{out}");
    assert!(!out.contains("old"), "{out}");
}

#[test]
fn gt_run_removed_only_when_single() {
    let h = "hola<br>\nEl dia X va escriure:<br>\n&gt; old<br>\n&gt; older<br>\n";
    let out = full(h, true);
    assert!(!out.contains("old"), "{out}");
    assert!(out.contains("hola"), "{out}");
    let two = "a<br>\n&gt; q1<br>\nb<br>\n&gt; q2<br>\n";
    assert!(full(two, true).contains("q1"));
}

#[test]
fn gt_run_in_a_text_body() {
    let mut b = Body::from_text("Fet\n\nEl dia X va escriure:\n> old\n> older\n");
    b.clean(true);
    assert_eq!(b.render().as_str(), "Fet");
}

#[test]
fn outlook_header_block_removed_in_three_languages() {
    for (from, sent, to, subject) in [
        ("From:", "Sent:", "To:", "Subject:"),
        ("De:", "Enviat:", "Per a:", "Tema:"),
        ("De:", "Enviado el:", "Para:", "Asunto:"),
    ] {
        let h = format!(
            "<div><p>Resposta nova</p></div><div><p><b>{from}</b> Joan &lt;j@x.es&gt;<br><b>{sent}</b> dilluns<br><b>{to}</b> suport<br><b>{subject}</b> Tema vell</p></div><p>missatge vell</p>"
        );
        let out = full(&h, true);
        assert_eq!(
            out, "<div><p>Resposta nova</p></div><div><p></p></div>",
            "{from}"
        );
        // Not on a new ticket, and not a lone "De:" line.
        assert!(full(&h, false).contains("missatge vell"));
    }
    let text =
        "Ok\n\n-----Original Message-----\nFrom: a@b.c\nSent: Monday\nTo: x@y.z\nSubject: s\n\nold";
    let mut b = Body::from_text(text);
    b.clean(true);
    assert_eq!(b.render().as_str(), "Ok");
    let lone = full("<p>De: casa</p><p>Tema: res</p>", true);
    assert!(lone.contains("casa"));
}

#[test]
fn dash_signature_removed() {
    let h = "Bon dia<br>\n-- <br>\nJoan Garcia<br>\nUPC";
    let out = full(h, false);
    assert!(out.contains("Bon dia"));
    assert!(!out.contains("Joan Garcia"));
    let two = "a<br>\n-- <br>\nb<br>\n-- <br>\nc";
    assert!(full(two, false).contains('c'));
}

#[test]
fn signature_blocks_removed() {
    let h = r#"<p>Text</p><div class="moz-signature">-- <br>Joan</div>"#;
    assert!(!full(h, false).contains("Joan"));
    let g = r#"<div>Text</div><div class="gmail_signature">Joan<br>UPC</div>"#;
    assert!(!full(g, false).contains("UPC"));
}

#[test]
fn pgp_blocks_removed() {
    let h = "-----BEGIN PGP SIGNED MESSAGE-----<br>\nHash: SHA256<br>\n<br>\nHola<br>\n-----BEGIN PGP SIGNATURE-----<br>\niQEz<br>\n-----END PGP SIGNATURE-----";
    let out = full(h, false);
    assert!(out.contains("Hola"));
    assert!(!out.contains("PGP"), "{out}");
    assert!(!out.contains("iQEz"));
}

#[test]
fn addresses_in_text_bodies_bracketed_when_cleaning() {
    let mut b = Body::from_text(
        "Escriu a <nom@domini.cat>\n-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----",
    );
    b.clean(false);
    assert_eq!(b.render().as_str(), "Escriu a [nom@domini.cat]");
}

#[test]
fn br_runs_collapsed() {
    assert_eq!(
        full("a<br><br><br><br>b<br/>\n<br>\n<br>c", false),
        "a<br><br>b<br><br>c"
    );
    assert_eq!(
        clean("a<br><br><br>b", false, false).as_str(),
        "a<br><br><br>b"
    );
}

#[test]
fn body_wrapper_removed() {
    let out = full(
        "<html><head><title>t</title></head><body><p>x</p></body></html>",
        false,
    );
    assert_eq!(out, "<p>x</p>");
}

#[test]
fn truncated_signature_leaves_balanced_html() {
    let h = "<div><p>Hola</p><p>-- <br>Joan<br>UPC</p><p>more</p></div>";
    assert_eq!(full(h, false), "<div><p>Hola</p><p></p></div>");
}

#[test]
fn deep_nesting_is_flattened_in_linear_time() {
    let n = 200_000;
    let h = format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
    let t = std::time::Instant::now();
    let b = Body::parse(&h, 100);
    let out = b.render();
    assert!(t.elapsed().as_secs() < 5);
    assert_eq!(b.flattened(), n - 100);
    assert_eq!(out.as_str().matches("<div>").count(), 100);
    assert!(out.as_str().contains('x'));
}

#[test]
fn a_head_without_its_end_tag_does_not_swallow_the_body() {
    let out = sanitize("<html><head><title>t</title><meta charset=utf-8><body><p>x</p>");
    assert_eq!(out.as_str(), "<p>x</p>");
}
