//! The allow-list serialiser and the URL policy. [`render`] is the only code that makes
//! a [`SafeHtml`]: every description and comment GN6 stores comes out of here, once, at
//! the end of the pipeline.

use super::SafeHtml;
use super::tree::{Data, Doc, Link, NodeId, ROOT, VOID};
use crate::domain::texts::file_url;

/// The URL policy for links: only absolute `http`/`https` URLs with a host and `mailto`
/// addresses. Tabs and line breaks are removed first (browsers ignore them inside
/// URLs); any other control character, or anything else, drops the link.
pub(super) fn link_url(raw: &str) -> Option<String> {
    let url: String = raw
        .trim_matches(|c: char| c.is_ascii_whitespace() || c.is_control())
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    if url.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return None;
    }
    let colon = url.find(':')?;
    let scheme = url[..colon].to_ascii_lowercase();
    let rest = &url[colon + 1..];
    let ok = match scheme.as_str() {
        "http" | "https" => {
            let rest = rest.replace('\\', "/");
            rest.strip_prefix("//").is_some_and(|r| {
                r.chars()
                    .next()
                    .is_some_and(|c| !matches!(c, '/' | '?' | '#'))
            })
        }
        "mailto" => rest.contains('@'),
        _ => false,
    };
    ok.then_some(url)
}

/// The URL policy for images: only `cid:` references, later resolved to our own
/// uploaded attachments. Anything else (remote, relative, protocol-relative, `data:`)
/// would make the technician's browser fire a request we did not make.
pub(super) fn image_src(raw: &str) -> Option<Link> {
    let v = raw.trim_matches(|c: char| c.is_ascii_whitespace() || c.is_control());
    let scheme = v.get(..4)?;
    scheme
        .eq_ignore_ascii_case("cid:")
        .then(|| Link::Cid(v[4..].to_string()))
}

/// Bidi embedding, override and isolate controls, and the marks.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escape_into(out: &mut String, s: &str, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\u{a0}' => out.push_str("&nbsp;"),
            '\0' => {}
            c => out.push(c),
        }
    }
}

/// Escapes text for an HTML text node.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    escape_into(&mut out, s, false);
    out
}

/// Serialises the tree. Elements are the allow-listed ones the tree can hold;
/// attributes are written double-quoted and escaped; a link whose target did not pass
/// the URL policy is written as its content, an image that is not one of our
/// attachments as its alt text.
pub(super) fn render(doc: &Doc) -> SafeHtml {
    let mut out = String::with_capacity(doc.nodes.len() * 8);
    enum Step {
        Open(NodeId),
        Close(&'static str),
    }
    let mut stack: Vec<Step> = doc.nodes[ROOT]
        .children
        .iter()
        .rev()
        .map(|&c| Step::Open(c))
        .collect();
    while let Some(step) = stack.pop() {
        let id = match step {
            Step::Close(tag) => {
                out.push_str("</");
                out.push_str(tag);
                out.push('>');
                continue;
            }
            Step::Open(id) => id,
        };
        let node = &doc.nodes[id];
        let e = match &node.data {
            Data::Text(t) => {
                escape_into(&mut out, t, false);
                continue;
            }
            Data::Root => continue,
            Data::Elem(e) => e,
        };
        let href = match (&e.link, e.tag) {
            (Some(Link::Attachment(code)), "a" | "img") => Some(file_url(code)),
            (Some(Link::External(url)), "a") => Some(url.clone()),
            _ => None,
        };
        let written = match e.tag {
            "img" => href.is_some(),
            "a" => href.is_some(),
            _ => true,
        };
        if !written {
            if e.tag == "img" {
                escape_into(&mut out, &e.alt, false);
            }
            stack.extend(node.children.iter().rev().map(|&c| Step::Open(c)));
            continue;
        }
        out.push('<');
        out.push_str(e.tag);
        if let Some(url) = &href {
            out.push_str(if e.tag == "a" { " href=\"" } else { " src=\"" });
            escape_into(&mut out, url, true);
            out.push('"');
            if matches!(e.link, Some(Link::External(_))) {
                out.push_str(" rel=\"noopener noreferrer\"");
            }
        }
        if e.tag == "img" && !e.alt.is_empty() {
            out.push_str(" alt=\"");
            escape_into(&mut out, &e.alt, true);
            out.push('"');
        }
        for (name, value) in &e.attrs {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_into(&mut out, value, true);
            out.push('"');
        }
        out.push('>');
        if VOID.contains(&e.tag) {
            continue;
        }
        stack.push(Step::Close(e.tag));
        stack.extend(node.children.iter().rev().map(|&c| Step::Open(c)));
    }
    SafeHtml(out)
}
