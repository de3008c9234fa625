//! Domain: the body GN6 stores (BEHAVIOUR §6), as one pipeline on a parsed tree.
//!
//! 1. [`Body::parse`] (an HTML part) or [`Body::from_text`] (a plain-text part) builds
//!    the tree. Only allow-listed elements and attributes enter it; a link enters only
//!    when its URL passes the policy (absolute `http`/`https`/`mailto`), an image only
//!    with a `cid:` source. Nesting deeper than the limit is flattened (text kept).
//! 2. Every edit happens on the tree: [`Body::clean`] (§6 clean-up, quotes, signatures,
//!    PGP, `<br>` runs), [`Body::link_attachments`] (the `cid:` images resolved to our
//!    uploaded attachments, the listing of the others), [`Body::prepend_header`].
//! 3. [`Body::render`] — the allow-list serialiser — runs last, once, and is the only
//!    code that makes a [`SafeHtml`]. Nothing edits HTML as a string anywhere.
//!
//! Images other than our own attachments are written as their alt text, links that
//! failed the policy as their text: opening a ticket fires no request we did not make.

mod clean;
mod render;
mod tree;

use std::fmt;

use crate::domain::texts::Uploaded;
pub use render::{escape_text, is_bidi_control};
use tree::{Data, Doc, Elem, Link, ROOT};

/// Default nesting depth kept as elements; deeper content is flattened into text.
pub const DEFAULT_MAX_DEPTH: usize = 100;

/// HTML made by the allow-list serialiser, and only by it (the field is private to this
/// module): the one type a ticket description or comment comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafeHtml(String);

impl SafeHtml {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Read-only access: a `SafeHtml` can be read as text but only made by the serialiser.
impl std::ops::Deref for SafeHtml {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SafeHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A body on its way to GN6: the parsed tree and what the limits left out.
#[derive(Debug, Clone)]
pub struct Body {
    doc: Doc,
}

impl Body {
    /// An HTML body. Linear in its size; nesting past `max_depth` is flattened.
    pub fn parse(html: &str, max_depth: usize) -> Body {
        Body {
            doc: tree::parse(html, max_depth),
        }
    }

    /// A plain-text body: its lines as text separated by line breaks.
    pub fn from_text(text: &str) -> Body {
        Body {
            doc: tree::from_text(text),
        }
    }

    /// How many elements nested past the depth limit were flattened into text.
    pub fn flattened(&self) -> usize {
        self.doc.flattened
    }

    /// The §6 clean-up (`netejar_mail_*`): quoted previous messages when `is_reply`,
    /// signatures, PGP blocks, `<user@host>` as `[user@host]`, runs of line breaks.
    pub fn clean(&mut self, is_reply: bool) {
        clean::clean(&mut self.doc, is_reply);
    }

    /// Points the `cid:` images at the uploaded attachments with that Content-ID and
    /// appends the listing of the attachments not shown inline. An image whose `cid:`
    /// matches nothing uploaded is written as its alt text.
    pub fn link_attachments(&mut self, uploaded: &[Uploaded<'_>]) {
        let mut inline = vec![false; uploaded.len()];
        for node in &mut self.doc.nodes {
            let Data::Elem(e) = &mut node.data else {
                continue;
            };
            let Some(Link::Cid(cid)) = &e.link else {
                continue;
            };
            let found = uploaded.iter().position(|u| {
                u.content_id
                    .is_some_and(|id| !id.is_empty() && same_content_id(cid, id))
            });
            if let Some(i) = found {
                e.link = Some(Link::Attachment(uploaded[i].codi_annex.clone()));
                inline[i] = true;
            }
        }
        let others: Vec<&Uploaded<'_>> = uploaded
            .iter()
            .zip(&inline)
            .filter(|(_, inline)| !**inline)
            .map(|(u, _)| u)
            .collect();
        if others.is_empty() {
            return;
        }
        let d = &mut self.doc;
        d.add(ROOT, Data::Elem(Elem::new("br")));
        d.add(ROOT, Data::Elem(Elem::new("br")));
        d.add_text(ROOT, "Attachments:");
        let ul = d.add(ROOT, Data::Elem(Elem::new("ul")));
        for u in others {
            let li = d.add(ul, Data::Elem(Elem::new("li")));
            let mut a = Elem::new("a");
            a.link = Some(Link::Attachment(u.codi_annex.clone()));
            let a = d.add(li, Data::Elem(a));
            d.add_text(a, &format!("{} ({})", u.name, u.content_type));
        }
    }

    /// Adds a titled list at the end (what was left out of this mail); nothing when
    /// `items` is empty.
    pub fn append_list(&mut self, title: &str, items: &[String]) {
        if items.is_empty() {
            return;
        }
        let d = &mut self.doc;
        d.add(ROOT, Data::Elem(Elem::new("br")));
        d.add(ROOT, Data::Elem(Elem::new("br")));
        d.add_text(ROOT, title);
        let ul = d.add(ROOT, Data::Elem(Elem::new("ul")));
        for item in items {
            let li = d.add(ul, Data::Elem(Elem::new("li")));
            d.add_text(li, item);
        }
    }

    /// Adds a block of plain text at the end, after an empty line: its lines as text
    /// separated by line breaks.
    pub fn append_text(&mut self, text: &str) {
        let d = &mut self.doc;
        d.add(ROOT, Data::Elem(Elem::new("br")));
        d.add(ROOT, Data::Elem(Elem::new("br")));
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                d.add(ROOT, Data::Elem(Elem::new("br")));
                d.add_text(ROOT, "\n");
            }
            d.add_text(ROOT, line.strip_suffix('\r').unwrap_or(line));
        }
    }

    /// Adds a note at the end (what a limit left out).
    pub fn append_note(&mut self, note: &str) {
        let d = &mut self.doc;
        d.add(ROOT, Data::Elem(Elem::new("br")));
        d.add(ROOT, Data::Elem(Elem::new("br")));
        d.add_text(ROOT, note);
    }

    /// Puts a header line (plain text) and an empty line before the body.
    pub fn prepend_header(&mut self, line: &str) {
        let d = &mut self.doc;
        let first = d.nodes.len();
        d.add(ROOT, Data::Text(line.to_string()));
        d.add(ROOT, Data::Elem(Elem::new("br")));
        d.add(ROOT, Data::Elem(Elem::new("br")));
        let len = d.nodes[ROOT].children.len();
        let added: Vec<_> = d.nodes[ROOT].children.split_off(len - 3);
        debug_assert_eq!(added[0], first);
        d.nodes[ROOT].children.splice(0..0, added);
    }

    /// The allow-list serialiser: the stored HTML.
    pub fn render(&self) -> SafeHtml {
        render::render(&self.doc)
    }
}

/// Whether a `cid:` reference names a Content-ID: equal as written, or once the
/// reference's `%XX` escapes are decoded (RFC 2392).
fn same_content_id(reference: &str, content_id: &str) -> bool {
    let id = content_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    reference == id || percent_decode(reference).as_deref() == Some(id)
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(h, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Sanitises an HTML fragment without any clean-up (tests, tools).
pub fn sanitize(html: &str) -> SafeHtml {
    Body::parse(html, DEFAULT_MAX_DEPTH).render()
}

/// Sanitises and, when `full`, cleans (§6) an HTML body; `cid:` images without an
/// attachment are written as their alt text.
pub fn clean(html: &str, full: bool, is_reply: bool) -> SafeHtml {
    let mut b = Body::parse(html, DEFAULT_MAX_DEPTH);
    if full {
        b.clean(is_reply);
    }
    b.render()
}

#[cfg(test)]
mod tests;
