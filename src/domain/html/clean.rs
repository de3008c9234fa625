//! The optional clean-up of BEHAVIOUR §6, on the tree: quoted previous messages (replies
//! only), signatures, PGP blocks, runs of line breaks. Each step works on elements or on
//! *lines* of text (never on markup), and is kept only when some text remains.
//!
//! Lines: the document in order is a sequence of atoms (element starts and ends, text
//! pieces, newlines, `<br>`, `<hr>`, images). Block element edges, `<br>`, `<hr>` and
//! newlines end a line (a newline right after another break adds no empty line). Removing
//! a range of atoms removes its text, its breaks and images, and every element whose
//! start and end are both inside the range.

use std::sync::LazyLock;

use regex::Regex;

use super::tree::{Data, Doc, NodeId, ROOT, visible};

const BLOCK: &[&str] = &[
    "p",
    "div",
    "pre",
    "blockquote",
    "li",
    "ul",
    "ol",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "tr",
    "td",
    "th",
];

#[derive(Debug, Clone, Copy)]
enum Atom {
    Open(NodeId, bool),
    Close(NodeId, bool),
    /// Bytes `start..end` of a text node (no newline inside).
    Text(NodeId, usize, usize),
    /// The newline at a byte of a text node.
    Newline(NodeId, usize),
    /// `br`, `hr` or `img`.
    Void(NodeId, &'static str),
}

impl Atom {
    fn is_break(self) -> bool {
        match self {
            Atom::Open(_, block) | Atom::Close(_, block) => block,
            Atom::Newline(..) => true,
            Atom::Void(_, tag) => tag != "img",
            Atom::Text(..) => false,
        }
    }
}

struct Lines {
    atoms: Vec<Atom>,
    /// Atom ranges of the lines, in order; a line's break is the atom at its end.
    lines: Vec<(usize, usize)>,
}

impl Lines {
    fn new(doc: &Doc) -> Lines {
        let mut atoms = Vec::new();
        enum W {
            Enter(NodeId),
            Leave(NodeId, bool),
        }
        let mut stack = vec![W::Enter(ROOT)];
        while let Some(w) = stack.pop() {
            match w {
                W::Leave(id, block) => atoms.push(Atom::Close(id, block)),
                W::Enter(id) => match &doc.nodes[id].data {
                    Data::Text(t) => {
                        let mut start = 0;
                        for (i, _) in t.match_indices('\n') {
                            if i > start {
                                atoms.push(Atom::Text(id, start, i));
                            }
                            atoms.push(Atom::Newline(id, i));
                            start = i + 1;
                        }
                        if t.len() > start {
                            atoms.push(Atom::Text(id, start, t.len()));
                        }
                    }
                    Data::Elem(e) if super::tree::VOID.contains(&e.tag) => {
                        atoms.push(Atom::Void(id, e.tag));
                    }
                    data => {
                        let block = match data {
                            Data::Elem(e) => BLOCK.contains(&e.tag),
                            _ => false,
                        };
                        if id != ROOT {
                            atoms.push(Atom::Open(id, block));
                            stack.push(W::Leave(id, block));
                        }
                        stack.extend(doc.nodes[id].children.iter().rev().map(|&c| W::Enter(c)));
                    }
                },
            }
        }
        let mut lines = Vec::new();
        let mut start = 0;
        // Whether only breaks and white space were seen since the last break.
        let mut after_break = true;
        for (i, a) in atoms.iter().enumerate() {
            let brk = match a {
                Atom::Newline(..) => !after_break,
                a => a.is_break(),
            };
            if brk {
                lines.push((start, i));
                start = i + 1;
                after_break = true;
            } else if let Atom::Text(n, s, e) = a {
                if visible_or_space(&text(doc, *n)[*s..*e]) {
                    after_break = false;
                }
            } else if !matches!(a, Atom::Newline(..)) {
                after_break = false;
            }
        }
        lines.push((start, atoms.len()));
        Lines { atoms, lines }
    }

    fn line_text(&self, doc: &Doc, k: usize) -> String {
        let (s, e) = self.lines[k];
        let mut out = String::new();
        for a in &self.atoms[s..e] {
            if let Atom::Text(n, a, b) = a {
                out.push_str(&text(doc, *n)[*a..*b]);
            }
        }
        out
    }

    /// Atom range of lines `a..=b` with the break ending `b`.
    fn span(&self, a: usize, b: usize) -> (usize, usize) {
        (self.lines[a].0, (self.lines[b].1 + 1).min(self.atoms.len()))
    }
}

fn visible_or_space(t: &str) -> bool {
    visible(t)
}

fn text(doc: &Doc, id: NodeId) -> &str {
    match &doc.nodes[id].data {
        Data::Text(t) => t,
        _ => "",
    }
}

/// Removes the atoms of the ranges (see the module docs).
fn remove_ranges(doc: &mut Doc, atoms: &[Atom], ranges: &[(usize, usize)]) {
    let mut inside = vec![false; atoms.len()];
    for &(s, e) in ranges {
        for f in &mut inside[s..e] {
            *f = true;
        }
    }
    let mut opened: Vec<Option<usize>> = vec![None; doc.nodes.len()];
    let mut gone = Vec::new();
    let mut cuts: Vec<(NodeId, usize, usize)> = Vec::new();
    for (i, a) in atoms.iter().enumerate() {
        match *a {
            Atom::Open(id, _) => opened[id] = Some(i),
            Atom::Close(id, _) => {
                if inside[i] && opened[id].is_some_and(|o| inside[o]) {
                    gone.push(id);
                }
            }
            _ if !inside[i] => {}
            Atom::Text(id, s, e) => cuts.push((id, s, e)),
            Atom::Newline(id, at) => cuts.push((id, at, at + 1)),
            Atom::Void(id, _) => gone.push(id),
        }
    }
    // Cuts of one node are in increasing order: rebuild each text once.
    let mut k = 0;
    while k < cuts.len() {
        let id = cuts[k].0;
        let old = text(doc, id).to_string();
        let mut new = String::with_capacity(old.len());
        let mut last = 0;
        while k < cuts.len() && cuts[k].0 == id {
            new.push_str(&old[last..cuts[k].1]);
            last = cuts[k].2;
            k += 1;
        }
        new.push_str(&old[last..]);
        doc.nodes[id].data = Data::Text(new);
    }
    doc.remove(&gone);
}

/// Runs a step on a copy; keeps the copy when the step changed something and text remains.
fn apply(doc: &mut Doc, step: fn(&mut Doc) -> bool) -> bool {
    let mut copy = doc.clone();
    if step(&mut copy) && copy.has_text() {
        *doc = copy;
        true
    } else {
        false
    }
}

/// The §6 clean-up. `is_reply` adds the removal of quoted previous messages.
pub(super) fn clean(doc: &mut Doc, is_reply: bool) {
    if is_reply {
        for step in [
            remove_cited_blockquote as fn(&mut Doc) -> bool,
            remove_gmail_quote,
            remove_android_quote,
            remove_moz_cite_prefix,
            remove_outlook_header_block,
            remove_gt_quote_run,
        ] {
            apply(doc, step);
        }
    }
    apply(doc, remove_dash_signature);
    apply(doc, remove_signature_block);
    apply(doc, remove_pgp);
    apply(doc, bracket_addresses);
    apply(doc, collapse_br);
    apply(doc, trim_breaks);
}

/// A single outermost `<blockquote type="cite">` (Thunderbird, Apple Mail).
fn remove_cited_blockquote(doc: &mut Doc) -> bool {
    let cited: Vec<_> = doc
        .outermost(|e| e.tag == "blockquote")
        .into_iter()
        .filter(|&id| doc.elem(id).and_then(|e| e.attr("type")) == Some("cite"))
        .collect();
    if cited.len() != 1 {
        return false;
    }
    doc.remove(&cited);
    true
}

/// Gmail's quote container (`<div class="gmail_quote">`, also on a blockquote).
fn remove_gmail_quote(doc: &mut Doc) -> bool {
    let mut found = doc.outermost(|e| {
        e.tag == "div" && (e.has_class("gmail_quote") || e.has_class("gmail_quote_container"))
    });
    if found.is_empty() {
        found = doc.outermost(|e| e.tag == "blockquote" && e.has_class("gmail_quote"));
    }
    doc.remove(&found);
    !found.is_empty()
}

/// Android mail clients' quote div (`<div class="quote">`).
fn remove_android_quote(doc: &mut Doc) -> bool {
    let found = doc.outermost(|e| e.tag == "div" && e.has_class("quote"));
    doc.remove(&found);
    !found.is_empty()
}

/// Thunderbird's "On ..., X wrote:" prefix (`<div class="moz-cite-prefix">`): its last
/// line with text is the attribution; text typed above it inside the div stays.
fn remove_moz_cite_prefix(doc: &mut Doc) -> bool {
    let divs = doc.outermost(|e| e.tag == "div" && e.has_class("moz-cite-prefix"));
    if divs.is_empty() {
        return false;
    }
    let lines = Lines::new(doc);
    let mut ranges = Vec::new();
    let mut empty = Vec::new();
    for div in divs {
        let open = lines
            .atoms
            .iter()
            .position(|a| matches!(a, Atom::Open(id, _) if *id == div));
        let close = lines
            .atoms
            .iter()
            .position(|a| matches!(a, Atom::Close(id, _) if *id == div));
        let (Some(open), Some(close)) = (open, close) else {
            continue;
        };
        let last = (0..lines.lines.len()).rev().find(|&k| {
            let (s, e) = lines.lines[k];
            s > open && e <= close && visible(&lines.line_text(doc, k))
        });
        let Some(last) = last else {
            empty.push(div);
            continue;
        };
        let before = (0..last).any(|k| {
            let (s, e) = lines.lines[k];
            s > open && e <= close && visible(&lines.line_text(doc, k))
        });
        if before {
            ranges.push((lines.lines[last].0, close));
        } else {
            empty.push(div);
        }
    }
    remove_ranges(doc, &lines.atoms, &ranges);
    doc.remove(&empty);
    true
}

/// Whether a line is quoted (`> ...`).
fn quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// A single run of lines starting with `>` (a plain-text reply's quote), with the
/// attribution line just above it ("On ..., X wrote:").
fn remove_gt_quote_run(doc: &mut Doc) -> bool {
    let lines = Lines::new(doc);
    let texts: Vec<String> = (0..lines.lines.len())
        .map(|k| lines.line_text(doc, k))
        .collect();
    let mut runs = Vec::new();
    let mut k = 0;
    while k < texts.len() {
        if quoted(&texts[k]) {
            let s = k;
            while k < texts.len() && quoted(&texts[k]) {
                k += 1;
            }
            runs.push((s, k - 1));
        } else {
            k += 1;
        }
    }
    let [(mut s, e)] = runs[..] else {
        return false;
    };
    if s > 0 && texts[s - 1].trim_end().ends_with(':') {
        s -= 1;
    }
    let span = lines.span(s, e);
    remove_ranges(doc, &lines.atoms, &[span]);
    true
}

/// Keys of Outlook's quoted header block, in English, Catalan and Spanish.
const OUTLOOK_FROM: &[&str] = &["From:", "De:"];
const OUTLOOK_SENT: &[&str] = &[
    "Sent:",
    "Date:",
    "Enviat:",
    "Enviat el:",
    "Data:",
    "Enviado el:",
    "Enviado:",
    "Fecha:",
];
const OUTLOOK_TO: &[&str] = &["To:", "Per a:", "Para:", "Cc:", "A:"];
const OUTLOOK_SUBJECT: &[&str] = &["Subject:", "Tema:", "Assumpte:", "Asunto:"];

fn starts_with_key(line: &str, keys: &[&str]) -> bool {
    let t = line.trim_start();
    keys.iter()
        .any(|k| t.get(..k.len()).is_some_and(|p| p.eq_ignore_ascii_case(k)))
}

/// Outlook's quoted header block ("From:/Sent:/To:/Subject:" and its Catalan and
/// Spanish forms) and everything after it: the previous message.
fn remove_outlook_header_block(doc: &mut Doc) -> bool {
    let lines = Lines::new(doc);
    let texts: Vec<String> = (0..lines.lines.len())
        .map(|k| lines.line_text(doc, k))
        .collect();
    let nonempty: Vec<usize> = (0..texts.len()).filter(|&k| visible(&texts[k])).collect();
    for (p, &k) in nonempty.iter().enumerate() {
        if !starts_with_key(&texts[k], OUTLOOK_FROM) {
            continue;
        }
        let (mut sent, mut subject) = (false, false);
        for &j in nonempty[p + 1..].iter().take(6) {
            let t = &texts[j];
            if starts_with_key(t, OUTLOOK_SENT) {
                sent = true;
            } else if starts_with_key(t, OUTLOOK_SUBJECT) {
                subject = true;
            } else if !starts_with_key(t, OUTLOOK_TO) {
                break;
            }
        }
        if !(sent && subject) {
            continue;
        }
        let mut start = k;
        if p > 0 {
            let above = texts[nonempty[p - 1]].trim();
            let separator = (above.len() >= 10 && above.chars().all(|c| c == '_'))
                || (above.starts_with("---") && above.ends_with("---"));
            if separator {
                start = nonempty[p - 1];
            }
        }
        let from = lines.lines[start].0;
        remove_ranges(doc, &lines.atoms, &[(from, lines.atoms.len())]);
        return true;
    }
    false
}

/// A single `-- ` line and everything after it.
fn remove_dash_signature(doc: &mut Doc) -> bool {
    let lines = Lines::new(doc);
    let hits: Vec<usize> = (0..lines.lines.len())
        .filter(|&k| {
            let t = lines.line_text(doc, k);
            let t = t.trim_end_matches('\r');
            t == "-- " || t == "--\u{a0}"
        })
        .collect();
    let [k] = hits[..] else {
        return false;
    };
    let from = lines.lines[k].0;
    remove_ranges(doc, &lines.atoms, &[(from, lines.atoms.len())]);
    true
}

/// The last Thunderbird (`moz-signature`, a div or a pre) or Gmail (`gmail_signature`)
/// signature block.
fn remove_signature_block(doc: &mut Doc) -> bool {
    let found = doc.outermost(|e| {
        matches!(e.tag, "div" | "pre")
            && (e.has_class("moz-signature") || e.has_class("gmail_signature"))
    });
    match found.last() {
        Some(&last) => {
            doc.remove(&[last]);
            true
        }
        None => false,
    }
}

const PGP_KINDS: &[&str] = &[
    "SIGNATURE",
    "PUBLIC KEY BLOCK",
    "PRIVATE KEY BLOCK",
    "MESSAGE",
];

/// PGP signature, key and message blocks (armour lines included), and the armour
/// header of a clear-signed message with its `Hash:` line.
fn remove_pgp(doc: &mut Doc) -> bool {
    let lines = Lines::new(doc);
    let texts: Vec<String> = (0..lines.lines.len())
        .map(|k| lines.line_text(doc, k))
        .collect();
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < texts.len() {
        let t = &texts[k];
        if t.contains("-----BEGIN PGP SIGNED MESSAGE-----") {
            let mut e = k;
            while e + 1 < texts.len()
                && (!visible(&texts[e + 1]) || texts[e + 1].trim_start().starts_with("Hash:"))
            {
                e += 1;
            }
            ranges.push(lines.span(k, e));
            k = e + 1;
            continue;
        }
        let kind = PGP_KINDS
            .iter()
            .find(|kind| t.contains(&format!("-----BEGIN PGP {kind}-----")));
        if let Some(kind) = kind {
            let end = format!("-----END PGP {kind}-----");
            if let Some(e) = (k..texts.len()).find(|&e| texts[e].contains(&end)) {
                ranges.push(lines.span(k, e));
                k = e + 1;
                continue;
            }
        }
        k += 1;
    }
    if ranges.is_empty() {
        return false;
    }
    remove_ranges(doc, &lines.atoms, &ranges);
    true
}

static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<([A-Za-z0-9._%+=!#$'*/?^`{|}~-]+@[A-Za-z0-9.-]+)>").expect("static regex")
});

/// `<user@host>` in text (a plain-text mail's address) shown as `[user@host]`.
fn bracket_addresses(doc: &mut Doc) -> bool {
    let mut changed = false;
    for n in &mut doc.nodes {
        if let Data::Text(t) = &mut n.data
            && t.contains('@')
            && let std::borrow::Cow::Owned(new) = ADDRESS.replace_all(t, "[$1]")
        {
            *t = new;
            changed = true;
        }
    }
    changed
}

/// Runs of three or more line breaks (with only white space between) become two.
fn collapse_br(doc: &mut Doc) -> bool {
    let lines = Lines::new(doc);
    let atoms = &lines.atoms;
    let space = |a: &Atom| match *a {
        Atom::Newline(..) => true,
        Atom::Text(n, s, e) => {
            !visible(&text(doc, n)[s..e]) && !text(doc, n)[s..e].contains('\u{a0}')
        }
        _ => false,
    };
    let is_br = |a: &Atom| matches!(a, Atom::Void(_, "br"));
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < atoms.len() {
        if !is_br(&atoms[i]) {
            i += 1;
            continue;
        }
        let mut brs = vec![i];
        let mut j = i + 1;
        while j < atoms.len() && (space(&atoms[j]) || is_br(&atoms[j])) {
            if is_br(&atoms[j]) {
                brs.push(j);
            }
            j += 1;
        }
        if brs.len() >= 3 {
            // Keep the first two breaks, drop the rest of the run.
            ranges.push((i + 1, brs[1]));
            ranges.push((brs[1] + 1, j));
        }
        i = j;
    }
    if ranges.is_empty() {
        return false;
    }
    remove_ranges(doc, atoms, &ranges);
    true
}

/// Leading and trailing line breaks and white space left over by the removed parts.
fn trim_breaks(doc: &mut Doc) -> bool {
    let lines = Lines::new(doc);
    let atoms = &lines.atoms;
    let blank = |a: &Atom| match *a {
        Atom::Newline(..) | Atom::Void(_, "br") => true,
        Atom::Text(n, s, e) => text(doc, n)[s..e].trim().is_empty(),
        _ => false,
    };
    let head = atoms.iter().take_while(|a| blank(a)).count();
    let tail = atoms[head..].iter().rev().take_while(|a| blank(a)).count();
    if head == 0 && tail == 0 {
        return false;
    }
    remove_ranges(doc, atoms, &[(0, head), (atoms.len() - tail, atoms.len())]);
    true
}
