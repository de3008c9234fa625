//! Domain: HTML cleaning (BEHAVIOUR §6). Pure string work, no I/O.
//!
//! Three entry points, so the caller can order them around the inline-image rewrite:
//! - [`sanitize`]: the allow-list. ALWAYS applied; it is the defence against stored XSS in
//!   GN6's pages (no script, no event handlers, no `javascript:`/`data:` URLs, no style,
//!   iframe, object, embed or form), whatever `netejar_mail_*` says.
//! - [`clean`]: `sanitize`, then — when `full` — the optional clean-up steps (quoted
//!   message for replies, signature, PGP blocks, runs of `<br>`), each kept only when some
//!   text remains. It does NOT remove `cid:` images: the attachment step must first rewrite
//!   `cid:ID` to GN6 file URLs.
//! - [`remove_cid_images`]: drops images still pointing at `cid:`, to be called AFTER the
//!   rewrite and only when cleaning is on. Its output stays sanitised.
//!
//! So the caller does: `clean(html, full, is_reply)` → rewrite `cid:` → if `full`
//! `remove_cid_images`. [`escape_text`] escapes text that came from a header or a
//! plain-text part, exactly once.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;

/// The one escaper of text for HTML (text and attribute values alike).
pub use super::texts::escape_text;

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let tags: HashSet<&str> = [
        "a",
        "abbr",
        "acronym",
        "b",
        "blockquote",
        "code",
        "em",
        "i",
        "li",
        "ol",
        "strong",
        "ul",
        "pre",
        "table",
        "tr",
        "td",
        "th",
        "tbody",
        "thead",
        "tfoot",
        "div",
        "br",
        "hr",
        "img",
        "p",
    ]
    .into_iter()
    .collect();
    let mut tag_attrs: HashMap<&str, HashSet<&str>> = HashMap::new();
    tag_attrs.insert("img", ["src"].into_iter().collect());
    tag_attrs.insert("a", ["href"].into_iter().collect());
    tag_attrs.insert("td", ["colspan", "rowspan"].into_iter().collect());
    tag_attrs.insert("blockquote", ["type"].into_iter().collect());
    let mut b = ammonia::Builder::empty();
    b.tags(tags)
        .tag_attributes(tag_attrs)
        .generic_attributes(["class"].into_iter().collect())
        .clean_content_tags(
            ["script", "style", "title", "noscript", "template"]
                .into_iter()
                .collect(),
        )
        // `cid:` must survive until the inline images are rewritten to GN6 file URLs;
        // relative URLs (GN6's own `/tiquetsusuaris/...`) pass through.
        .url_schemes(
            ["http", "https", "mailto", "ftp", "tel", "cid"]
                .into_iter()
                .collect(),
        )
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(Some("noopener noreferrer"))
        // Defence in depth: a URL that merely contains a script scheme (a relative URL
        // such as `` `javascript:... `` that some old browsers executed) is dropped too.
        .attribute_filter(|_, attr, value| {
            if matches!(attr, "href" | "src") {
                let squashed: String = value
                    .chars()
                    .filter(|c| !c.is_whitespace() && !c.is_control())
                    .collect::<String>()
                    .to_ascii_lowercase();
                if ["javascript:", "vbscript:"]
                    .iter()
                    .any(|s| squashed.contains(s))
                {
                    return None;
                }
            }
            Some(value.into())
        })
        .strip_comments(true);
    b
});

static ADDRESS_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<([A-Za-z0-9._%+=!#$'*/?^`{|}~-]+@[A-Za-z0-9.-]+)>").expect("static regex")
});
static TAGS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<[^>]*>").expect("static regex"));
static BR_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(?:<br\s*/?>\s*){3,}").expect("static regex"));
static PGP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?s)-----BEGIN PGP (SIGNATURE|PUBLIC KEY BLOCK|PRIVATE KEY BLOCK|MESSAGE)-----.*?-----END PGP (SIGNATURE|PUBLIC KEY BLOCK|PRIVATE KEY BLOCK|MESSAGE)-----",
    )
    .expect("static regex")
});
static PGP_SIGNED_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-----BEGIN PGP SIGNED MESSAGE-----(?:\s|<br\s*/?>)*(?:Hash:[^<\n]*)?")
        .expect("static regex")
});
static CID_IMG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)<img\b[^>]*\bsrc\s*=\s*["']?cid:[^>]*>"#).expect("static regex")
});

/// The allow-list of §6. Always safe to call; idempotent on its own output.
pub fn sanitize(html: &str) -> String {
    // An address in angle brackets written in HTML (`<user@host>`) would otherwise be
    // parsed as an unknown tag and vanish.
    let html = ADDRESS_TAG.replace_all(html, "[$1]");
    SANITIZER.clean(&html).to_string()
}

/// Sanitises and, when `full`, removes quotes (replies only), signatures, PGP blocks and
/// runs of `<br>`, each step kept only when text remains. The body wrapper (`html`,
/// `head`, `body`) always goes with the sanitiser. Does not touch `cid:` images (see the
/// module docs).
pub fn clean(html: &str, full: bool, is_reply: bool) -> String {
    let mut out = sanitize(html);
    if !full {
        return out;
    }
    let mut restructured = false;
    if is_reply {
        for step in [
            remove_cited_blockquote as fn(&str) -> Option<String>,
            remove_gmail_quote,
            remove_android_quote,
            remove_moz_cite_prefix,
            remove_gt_quote_run,
        ] {
            restructured |= apply(&mut out, step);
        }
    }
    restructured |= apply(&mut out, remove_dash_signature);
    restructured |= apply(&mut out, remove_signature_block);
    apply(&mut out, remove_pgp);
    apply(&mut out, collapse_br);
    if restructured {
        // Cutting at a line may leave elements open.
        close_open_tags(&mut out);
    }
    trim_breaks(&out).to_string()
}

/// Tags that end a visual line.
const LINE_TAGS: &[&str] = &[
    "br",
    "p",
    "div",
    "pre",
    "blockquote",
    "li",
    "ul",
    "ol",
    "table",
    "tr",
    "td",
    "th",
    "hr",
];

const VOID: &[&str] = &["br", "hr", "img"];

/// Appends the closing tags of elements left open (sanitised HTML: only allow-listed,
/// lower-case tags, so a simple stack suffices).
fn close_open_tags(html: &mut String) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html.as_str();
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let name = name.trim();
            if let Some(pos) = stack.iter().rposition(|t| t == name) {
                stack.truncate(pos);
            }
        } else {
            let name: String = tag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if !name.is_empty() && !VOID.contains(&name.as_str()) && !tag.ends_with('/') {
                stack.push(name);
            }
        }
    }
    for name in stack.iter().rev() {
        html.push_str("</");
        html.push_str(name);
        html.push('>');
    }
}

/// Leading and trailing line breaks and whitespace, left over by the removed parts.
fn trim_breaks(html: &str) -> &str {
    let mut s = html.trim();
    loop {
        let before = s.len();
        s = s.strip_prefix("<br>").unwrap_or(s).trim_start();
        s = s.strip_suffix("<br>").unwrap_or(s).trim_end();
        if s.len() == before {
            return s;
        }
    }
}

/// Drops `<img>` whose `src` still points at `cid:` (inline images without an uploaded
/// file), unless nothing would remain.
pub fn remove_cid_images(html: &str) -> String {
    // Every match contains `cid:` (any case): without it there is nothing to drop, and
    // the regex (whose Unicode `\b` is slow on non-ASCII text) need not run.
    if !html
        .as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"cid:"))
    {
        return html.to_string();
    }
    let out = CID_IMG.replace_all(html, "").into_owned();
    if has_text(&out) {
        out
    } else {
        html.to_string()
    }
}

/// Byte ranges of the `<...>` tags, as the `TAGS` regex finds them (leftmost, each up to
/// the next `>`; a `<` without a later `>` is text), without the regex engine: it runs
/// over whole documents.
fn tag_spans(html: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let lt = pos + html[pos..].find('<')?;
        let gt = lt + html[lt..].find('>')?;
        pos = gt + 1;
        Some((lt, gt + 1))
    })
}

/// Whether some visible text remains.
pub fn has_text(html: &str) -> bool {
    let mut last = 0;
    for (s, e) in tag_spans(html) {
        if visible(&html[last..s]) {
            return true;
        }
        last = e;
    }
    visible(&html[last..])
}

/// Whether text between tags shows something: `&nbsp;` and white space do not.
fn visible(mut text: &str) -> bool {
    while let Some(c) = text.chars().next() {
        if let Some(rest) = text.strip_prefix("&nbsp;") {
            text = rest;
            continue;
        }
        if !c.is_whitespace() && c != '\u{a0}' {
            return true;
        }
        text = &text[c.len_utf8()..];
    }
    false
}

/// Runs one step; keeps the result only when text remains. True when it changed.
fn apply(html: &mut String, step: fn(&str) -> Option<String>) -> bool {
    match step(html) {
        Some(new) if new != *html && has_text(&new) => {
            *html = new;
            true
        }
        _ => false,
    }
}

// ------------------------------------------------------------- element scanning

/// Byte ranges of every `<tag ...>...</tag>` element whose opening tag satisfies `pred`,
/// outermost only. Works on sanitised (well-formed, lower-case) HTML.
fn elements(html: &str, tag: &str, pred: impl Fn(&str) -> bool) -> Vec<(usize, usize)> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(rel) = html[pos..].find(&open) {
        let start = pos + rel;
        let after = start + open.len();
        let next = html[after..].chars().next();
        if !matches!(next, Some(' ' | '>' | '/')) {
            pos = after;
            continue;
        }
        let Some(gt) = html[start..].find('>') else {
            break;
        };
        let open_tag = &html[start..start + gt + 1];
        if pred(open_tag) {
            let end = match_close(html, start + gt + 1, &open, &close);
            found.push((start, end));
            pos = end;
        } else {
            pos = start + gt + 1;
        }
    }
    found
}

/// End (exclusive) of the element whose content starts at `from`, counting nesting.
fn match_close(html: &str, from: usize, open: &str, close: &str) -> usize {
    let mut depth = 1usize;
    let mut pos = from;
    loop {
        let next_close = html[pos..].find(close).map(|i| pos + i);
        let next_open = html[pos..]
            .find(open)
            .map(|i| pos + i)
            .filter(|&i| matches!(html[i + open.len()..].chars().next(), Some(' ' | '>' | '/')));
        match (next_open, next_close) {
            (Some(o), Some(c)) if o < c => {
                depth += 1;
                pos = o + open.len();
            }
            (_, Some(c)) => {
                depth -= 1;
                pos = c + close.len();
                if depth == 0 {
                    return pos;
                }
            }
            (_, None) => return html.len(),
        }
    }
}

fn has_class(open_tag: &str, class: &str) -> bool {
    let Some(i) = open_tag.find("class=\"") else {
        return false;
    };
    let rest = &open_tag[i + 7..];
    let end = rest.find('"').unwrap_or(rest.len());
    rest[..end].split_whitespace().any(|c| c == class)
}

fn cut(html: &str, ranges: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(html.len());
    let mut last = 0;
    for &(s, e) in ranges {
        out.push_str(&html[last..s]);
        last = e;
    }
    out.push_str(&html[last..]);
    out
}

// ------------------------------------------------------------- the steps

/// A single top-level `<blockquote type="cite">` (Thunderbird, Apple Mail).
pub fn remove_cited_blockquote(html: &str) -> Option<String> {
    let outer = elements(html, "blockquote", |_| true);
    let cited: Vec<_> = outer
        .into_iter()
        .filter(|&(s, _)| {
            let tag_end = html[s..].find('>').map(|i| s + i).unwrap_or(s);
            html[s..tag_end].contains("type=\"cite\"")
        })
        .collect();
    (cited.len() == 1).then(|| cut(html, &cited))
}

/// Gmail's quote container (`<div class="gmail_quote">`, also on a blockquote).
pub fn remove_gmail_quote(html: &str) -> Option<String> {
    if !html.contains("gmail_quote") {
        return None;
    }
    let mut ranges = elements(html, "div", |t| {
        has_class(t, "gmail_quote") || has_class(t, "gmail_quote_container")
    });
    if ranges.is_empty() {
        ranges = elements(html, "blockquote", |t| has_class(t, "gmail_quote"));
    }
    (!ranges.is_empty()).then(|| cut(html, &ranges))
}

/// Android mail clients' quote div (`<div class="quote">`).
pub fn remove_android_quote(html: &str) -> Option<String> {
    if !html.contains("quote") {
        return None;
    }
    let ranges = elements(html, "div", |t| has_class(t, "quote"));
    (!ranges.is_empty()).then(|| cut(html, &ranges))
}

/// Thunderbird's "On ..., X wrote:" prefix (`<div class="moz-cite-prefix">`). Only its
/// last line is the attribution: text typed above it inside the div (it happens when
/// the user writes at the very top) is kept.
pub fn remove_moz_cite_prefix(html: &str) -> Option<String> {
    if !html.contains("moz-cite-prefix") {
        return None;
    }
    let ranges = elements(html, "div", |t| has_class(t, "moz-cite-prefix"));
    if ranges.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(html.len());
    let mut last = 0;
    for (s, e) in ranges {
        out.push_str(&html[last..s]);
        last = e;
        let open_end = html[s..e].find('>').map_or(e, |i| s + i + 1);
        let close_start = html[..e]
            .rfind("</div>")
            .filter(|&c| c >= open_end)
            .unwrap_or(e);
        let inner = &html[open_end..close_start];
        let segments: Vec<&str> = inner.split("<br>").collect();
        let Some(attr) = segments.iter().rposition(|seg| has_text(seg)) else {
            continue;
        };
        let kept = segments[..attr].join("<br>");
        if has_text(&kept) {
            out.push_str(&html[s..open_end]);
            out.push_str(&kept);
            out.push_str("</div>");
        }
    }
    out.push_str(&html[last..]);
    Some(out)
}

/// The line without leading tags and whitespace.
fn skip_leading_tags(mut line: &str) -> &str {
    loop {
        line = line.trim_start();
        match line
            .strip_prefix('<')
            .and_then(|r| r.find('>').map(|i| &r[i + 1..]))
        {
            Some(rest) => line = rest,
            None => return line,
        }
    }
}

fn line_is_quoted(line: &str) -> bool {
    let t = skip_leading_tags(line);
    t.starts_with("&gt;") || t.starts_with('>')
}

/// A single run of lines starting with `>` (a plain-text reply's quote).
pub fn remove_gt_quote_run(html: &str) -> Option<String> {
    if !html.contains("&gt;") {
        return None;
    }
    let lines: Vec<&str> = html.split('\n').collect();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if line_is_quoted(lines[i]) {
            let s = i;
            while i < lines.len() && line_is_quoted(lines[i]) {
                i += 1;
            }
            runs.push((s, i));
        } else {
            i += 1;
        }
    }
    if runs.len() != 1 {
        return None;
    }
    let (mut s, e) = runs[0];
    // The attribution line just above the quote ("On ..., X wrote:") goes with it.
    if s > 0 {
        let above = TAGS.replace_all(lines[s - 1], "");
        if above.trim_end().ends_with(':') {
            s -= 1;
        }
    }
    let mut kept: Vec<&str> = lines[..s].to_vec();
    kept.extend_from_slice(&lines[e..]);
    Some(kept.join("\n"))
}

fn is_dash_signature_line(line: &str) -> bool {
    if !line.contains("--") {
        return false;
    }
    let t = TAGS.replace_all(line, "");
    let t = t.trim_end_matches(['\r', '\n']);
    t == "-- " || t == "--&nbsp;" || t == "--\u{a0}"
}

/// A single `-- ` line and everything after it.
pub fn remove_dash_signature(html: &str) -> Option<String> {
    if !html.contains("--") {
        return None;
    }
    // Lines end at newlines, <br> and block boundaries.
    let mut starts = vec![0usize];
    for (i, _) in html.match_indices('\n') {
        starts.push(i + 1);
    }
    for (s, e) in tag_spans(html) {
        let inner = html[s + 1..].trim_start_matches('/');
        let len = inner.bytes().take_while(u8::is_ascii_alphanumeric).count();
        if LINE_TAGS.contains(&&inner[..len]) {
            starts.push(e);
        }
    }
    starts.sort_unstable();
    starts.dedup();
    let mut hits = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let e = starts.get(k + 1).copied().unwrap_or(html.len());
        let line = &html[s..e];
        let line = line.strip_suffix('\n').unwrap_or(line);
        let line = line.strip_suffix("<br>").unwrap_or(line);
        if is_dash_signature_line(line) {
            hits.push(s);
        }
    }
    (hits.len() == 1).then(|| html[..hits[0]].to_string())
}

/// The last Thunderbird (`moz-signature`, a div or a pre) or Gmail (`gmail_signature`)
/// signature block.
pub fn remove_signature_block(html: &str) -> Option<String> {
    if !html.contains("signature") {
        return None;
    }
    let is_sig = |t: &str| has_class(t, "moz-signature") || has_class(t, "gmail_signature");
    let mut ranges = elements(html, "div", is_sig);
    ranges.extend(elements(html, "pre", is_sig));
    let last = ranges.into_iter().max_by_key(|r| r.0)?;
    Some(cut(html, &[last]))
}

/// PGP signature and key blocks, and the armour header of a clear-signed message.
pub fn remove_pgp(html: &str) -> Option<String> {
    if !html.contains("-----BEGIN PGP") {
        return None;
    }
    let out = PGP.replace_all(html, "");
    Some(PGP_SIGNED_HEADER.replace_all(&out, "").into_owned())
}

/// Runs of three or more line breaks become two.
pub fn collapse_br(html: &str) -> Option<String> {
    // A run needs three disjoint `<br` (ASCII case-insensitive: b and r have no other
    // case foldings); most bodies have fewer, and then the regex is never compiled.
    let brs = html
        .as_bytes()
        .windows(3)
        .filter(|w| {
            w[0] == b'<' && w[1].eq_ignore_ascii_case(&b'b') && w[2].eq_ignore_ascii_case(&b'r')
        })
        .take(3)
        .count();
    if brs < 3 {
        return Some(html.to_string());
    }
    Some(BR_RUN.replace_all(html, "<br><br>").into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_br_prefilter_agrees_with_the_regex() {
        for h in [
            "",
            "a<br>b",
            "a<br><BR>b",
            "a<br><Br />\n<bR/>b",
            "x<br>\u{a0}<br>\u{2003}<br>y<br><br><br><br>z",
            "<br><p><br><br>",
            "<bra><br><br>",
        ] {
            let want = BR_RUN.replace_all(h, "<br><br>").into_owned();
            assert_eq!(collapse_br(h).as_deref(), Some(want.as_str()), "{h:?}");
        }
        assert_eq!(
            collapse_br("a<br><BR><br/>b").as_deref(),
            Some("a<br><br>b")
        );
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
        assert_eq!(out, r#"<div class="x"><p>Hi <b>there</b></p>s</div>"#);
    }

    #[test]
    fn sanitize_turns_address_tags_into_brackets() {
        assert_eq!(
            sanitize("Joan <joan@example.com> wrote"),
            "Joan [joan@example.com] wrote"
        );
    }

    #[test]
    fn sanitize_keeps_cid_and_relative_urls_but_not_data() {
        let out = sanitize(
            r#"<img src="cid:abc@x"><img src="/tiquetsusuaris/control/file?fileId=3"><img src="data:image/png;base64,AAA">"#,
        );
        assert!(out.contains("cid:abc@x"));
        assert!(out.contains("fileId=3"));
        assert!(!out.contains("data:"));
    }

    #[test]
    fn blockquote_cite_removed_only_when_single() {
        let one = r#"<p>answer</p><blockquote type="cite"><p>old</p></blockquote>"#;
        assert_eq!(clean(one, true, true), "<p>answer</p>");
        let two = r#"<p>a</p><blockquote type="cite">x</blockquote><p>b</p><blockquote type="cite">y</blockquote>"#;
        assert!(clean(two, true, true).contains('x'));
        // Not for a new ticket.
        assert!(clean(one, true, false).contains("old"));
        // Not when cleaning is off.
        assert!(clean(one, false, true).contains("old"));
    }

    #[test]
    fn step_kept_only_when_text_remains() {
        let only_quote = r#"<blockquote type="cite"><p>old</p></blockquote>"#;
        assert!(clean(only_quote, true, true).contains("old"));
    }

    #[test]
    fn gmail_quote_removed() {
        let h = r#"<div dir="ltr">Fet!</div><br><div class="gmail_quote"><div class="gmail_attr">El dl., X va escriure:</div><blockquote class="gmail_quote">old</blockquote></div>"#;
        let out = clean(h, true, true);
        assert!(out.contains("Fet!"));
        assert!(!out.contains("old"));
        assert!(!out.contains("escriure"));
    }

    #[test]
    fn android_quote_removed() {
        let h =
            r#"<div>Ok</div><div class="quote">-------- Missatge original --------<br>old</div>"#;
        assert!(!clean(h, true, true).contains("old"));
    }

    #[test]
    fn moz_cite_prefix_removed() {
        let h = r#"<p>Resposta</p><div class="moz-cite-prefix">El 1/2/2020, X va escriure:</div><blockquote type="cite">old</blockquote>"#;
        let out = clean(h, true, true);
        assert_eq!(out, "<p>Resposta</p>");
    }

    #[test]
    fn gt_run_removed_only_when_single() {
        let h = "hola<br>\nEl dia X va escriure:<br>\n&gt; old<br>\n&gt; older<br>\n";
        let out = clean(h, true, true);
        assert!(!out.contains("old"), "{out}");
        let two = "a<br>\n&gt; q1<br>\nb<br>\n&gt; q2<br>\n";
        assert!(clean(two, true, true).contains("q1"));
    }

    #[test]
    fn dash_signature_removed() {
        let h = "Bon dia<br>\n-- <br>\nJoan Garcia<br>\nUPC";
        let out = clean(h, true, false);
        assert!(out.contains("Bon dia"));
        assert!(!out.contains("Joan Garcia"));
        // Two separators: ambiguous, keep.
        let two = "a<br>\n-- <br>\nb<br>\n-- <br>\nc";
        assert!(clean(two, true, false).contains('c'));
    }

    #[test]
    fn signature_blocks_removed() {
        let h = r#"<p>Text</p><div class="moz-signature">-- <br>Joan</div>"#;
        assert!(!clean(h, true, false).contains("Joan"));
        let g = r#"<div>Text</div><div class="gmail_signature">Joan<br>UPC</div>"#;
        assert!(!clean(g, true, false).contains("UPC"));
    }

    #[test]
    fn pgp_blocks_removed() {
        let h = "-----BEGIN PGP SIGNED MESSAGE-----<br>\nHash: SHA256<br>\n<br>\nHola<br>\n-----BEGIN PGP SIGNATURE-----<br>\niQEz<br>\n-----END PGP SIGNATURE-----";
        let out = clean(h, true, false);
        assert!(out.contains("Hola"));
        assert!(!out.contains("PGP"), "{out}");
        assert!(!out.contains("iQEz"));
    }

    #[test]
    fn br_runs_collapsed() {
        let out = clean("a<br><br><br><br>b<br/>\n<br>\n<br>c", true, false);
        assert_eq!(out, "a<br><br>b<br><br>c");
        assert_eq!(clean("a<br><br><br>b", false, false), "a<br><br><br>b");
    }

    #[test]
    fn body_wrapper_removed() {
        let out = clean(
            "<html><head><title>t</title></head><body><p>x</p></body></html>",
            true,
            false,
        );
        assert_eq!(out, "<p>x</p>");
    }

    #[test]
    fn cid_images_removed_separately() {
        let h = r#"<p>x</p><img src="cid:a@b"><img src="/tiquetsusuaris/control/file?fileId=1">"#;
        let c = clean(h, true, false);
        assert!(
            c.contains("cid:a@b"),
            "clean must keep cid: for the rewrite"
        );
        let r = remove_cid_images(&c);
        assert!(!r.contains("cid:"));
        assert!(r.contains("fileId=1"));
        // Only an image: nothing would remain, keep it.
        assert!(remove_cid_images(r#"<img src="cid:a">"#).contains("cid:a"));
    }

    #[test]
    fn truncated_signature_leaves_balanced_html() {
        let h = "<div><p>Hola</p><p>-- <br>Joan<br>UPC</p><p>more</p></div>";
        let out = clean(h, true, false);
        assert_eq!(out, "<div><p>Hola</p><p></p></div>");
    }

    #[test]
    fn moz_cite_prefix_keeps_text_typed_inside_it() {
        let h = r#"<div class="moz-cite-prefix">xxxx<br><br>El dia X va escriure:<br></div><blockquote type="cite">old</blockquote>"#;
        let out = clean(h, true, true);
        assert!(out.contains("xxxx"), "{out}");
        assert!(!out.contains("escriure"), "{out}");
        assert!(!out.contains("old"), "{out}");
    }
}

#[cfg(test)]
mod equivalence {
    //! The hand-written scanners must agree with the regexes they replaced.
    use super::*;
    use proptest::prelude::*;

    fn has_text_by_regex(html: &str) -> bool {
        TAGS.split(html).any(|chunk| {
            chunk
                .replace("&nbsp;", " ")
                .chars()
                .any(|c| !c.is_whitespace() && c != '\u{a0}')
        })
    }

    proptest! {
        #[test]
        fn tag_spans_match_the_regex(s in "[<>/a-z &;nbsp\u{a0}\n-]{0,60}") {
            let by_regex: Vec<_> = TAGS.find_iter(&s).map(|m| (m.start(), m.end())).collect();
            prop_assert_eq!(tag_spans(&s).collect::<Vec<_>>(), by_regex);
            prop_assert_eq!(has_text(&s), has_text_by_regex(&s));
        }
    }
}
