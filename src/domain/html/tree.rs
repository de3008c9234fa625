//! The parsed body: a small arena tree that holds only what the allow-list keeps, built
//! from html5ever's tokenizer by a linear tree builder with a depth cap.
//!
//! Why not html5ever's tree builder: its open-element scans are quadratic on deep
//! nesting (200k `<div>` took minutes), and a full browser tree is more than we need.
//! Safety does not depend on reproducing a browser's tree: the serialiser
//! ([`super::render`]) writes only allow-listed elements with checked attributes and
//! escaped text, so whatever a browser makes of it, it contains nothing else.

use std::cell::RefCell;

use html5ever::TokenizerResult;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

pub(super) type NodeId = usize;
pub(super) const ROOT: NodeId = 0;

/// Elements kept (their tag); everything else is unwrapped (its content stays).
const ALLOWED: &[&str] = &[
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
];

/// Elements without content.
pub(super) const VOID: &[&str] = &["br", "hr", "img"];

/// Elements whose content is dropped with them, and the tokenizer state their content
/// is read in (as a browser reads it, so that their end is found where a browser finds it).
const DROP_CONTENT: &[(&str, Raw)] = &[
    ("script", Raw::Script),
    ("style", Raw::Text),
    ("xmp", Raw::Text),
    ("iframe", Raw::Text),
    ("noembed", Raw::Text),
    ("noframes", Raw::Text),
    ("noscript", Raw::Text),
    ("title", Raw::Rc),
    ("textarea", Raw::Rc),
    ("template", Raw::None),
    ("svg", Raw::None),
    ("math", Raw::None),
    ("object", Raw::None),
    ("select", Raw::None),
    ("head", Raw::None),
];

#[derive(Clone, Copy)]
enum Raw {
    Script,
    Text,
    Rc,
    /// Ordinary markup whose content is dropped up to the matching end tag.
    None,
}

/// Where a link or an image points. Only [`Link::External`] comes from the mail (and
/// only after the URL policy accepted it); [`Link::Attachment`] is made by our code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Link {
    /// An absolute `http`, `https` or `mailto` URL (links only).
    External(String),
    /// A `cid:` reference not yet resolved (images only).
    Cid(String),
    /// One of our own uploaded attachments, by GN6 file code.
    Attachment(String),
}

#[derive(Debug, Clone)]
pub(super) struct Elem {
    pub tag: &'static str,
    /// Allowed plain attributes: `class`, `type` (blockquote), `colspan`/`rowspan`.
    pub attrs: Vec<(&'static str, String)>,
    /// `href` of `a`, `src` of `img`.
    pub link: Option<Link>,
    /// `alt` of an image: shown as text when the image cannot be.
    pub alt: String,
}

impl Elem {
    pub fn new(tag: &'static str) -> Elem {
        Elem {
            tag,
            attrs: Vec::new(),
            link: None,
            alt: String::new(),
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_ascii_whitespace().any(|c| c == class))
    }
}

#[derive(Debug, Clone)]
pub(super) enum Data {
    Root,
    Elem(Elem),
    Text(String),
}

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub data: Data,
    pub children: Vec<NodeId>,
}

/// The tree. Node 0 is the root; removed nodes stay in the arena, unlinked.
#[derive(Debug, Clone)]
pub(super) struct Doc {
    pub nodes: Vec<Node>,
    /// Start tags over the depth cap whose content was flattened into their ancestor.
    pub flattened: usize,
}

impl Default for Doc {
    fn default() -> Self {
        Doc {
            nodes: vec![Node {
                data: Data::Root,
                children: Vec::new(),
            }],
            flattened: 0,
        }
    }
}

impl Doc {
    pub fn add(&mut self, parent: NodeId, data: Data) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(Node {
            data,
            children: Vec::new(),
        });
        self.nodes[parent].children.push(id);
        id
    }

    /// Appends text to `parent`, merged with a preceding text node.
    pub fn add_text(&mut self, parent: NodeId, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(&last) = self.nodes[parent].children.last()
            && let Data::Text(t) = &mut self.nodes[last].data
        {
            t.push_str(text);
            return;
        }
        self.add(parent, Data::Text(text.to_string()));
    }

    pub fn elem(&self, id: NodeId) -> Option<&Elem> {
        match &self.nodes[id].data {
            Data::Elem(e) => Some(e),
            _ => None,
        }
    }

    pub fn tag(&self, id: NodeId) -> Option<&'static str> {
        self.elem(id).map(|e| e.tag)
    }

    /// Every linked node in document order (pre-order), with its depth.
    pub fn preorder(&self) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            out.push(id);
            stack.extend(self.nodes[id].children.iter().rev());
        }
        out
    }

    /// The outermost elements (not inside another match) satisfying `pred`, in order.
    pub fn outermost(&self, pred: impl Fn(&Elem) -> bool) -> Vec<NodeId> {
        let mut out = Vec::new();
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            if let Some(e) = self.elem(id)
                && pred(e)
            {
                out.push(id);
                continue;
            }
            stack.extend(self.nodes[id].children.iter().rev());
        }
        out
    }

    /// Unlinks the nodes of `ids` (and so their subtrees).
    pub fn remove(&mut self, ids: &[NodeId]) {
        if ids.is_empty() {
            return;
        }
        let mut gone = vec![false; self.nodes.len()];
        for &i in ids {
            gone[i] = true;
        }
        for n in &mut self.nodes {
            n.children.retain(|c| !gone[*c]);
        }
    }

    /// Whether something visible remains: text other than white space, or an image.
    pub fn has_text(&self) -> bool {
        self.preorder()
            .into_iter()
            .any(|id| match &self.nodes[id].data {
                Data::Text(t) => visible(t),
                Data::Elem(e) => e.tag == "img",
                Data::Root => false,
            })
    }
}

/// Text that shows something (no-break spaces do not).
pub(super) fn visible(t: &str) -> bool {
    t.chars().any(|c| !c.is_whitespace() && c != '\u{a0}')
}

// ------------------------------------------------------------------ the builder

struct Builder {
    doc: Doc,
    /// Open elements; `ROOT` at the bottom.
    open: Vec<NodeId>,
    max_depth: usize,
    /// Start tags ignored because of the depth cap, still open.
    overflow: usize,
    /// Inside an element whose content is dropped: its name and the nesting of that name.
    dropping: Option<(String, usize)>,
}

struct Sink(RefCell<Builder>);

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        self.0.borrow_mut().token(token)
    }
}

impl Builder {
    fn current(&self) -> NodeId {
        *self.open.last().unwrap_or(&ROOT)
    }

    fn token(&mut self, token: Token) -> TokenSinkResult<()> {
        if let Some((name, depth)) = &mut self.dropping {
            // A `<body>` ends a `<head>` whose end tag was left out (common in mail).
            if let Token::TagToken(tag) = &token
                && name == "head"
                && tag.kind == TagKind::StartTag
                && &*tag.name == "body"
            {
                self.dropping = None;
                return TokenSinkResult::Continue;
            }
            if let Token::TagToken(tag) = &token
                && &*tag.name == name.as_str()
            {
                match tag.kind {
                    TagKind::StartTag if !tag.self_closing => *depth += 1,
                    TagKind::EndTag => {
                        *depth -= 1;
                        if *depth == 0 {
                            self.dropping = None;
                        }
                    }
                    TagKind::StartTag => {}
                }
            }
            return TokenSinkResult::Continue;
        }
        match token {
            Token::CharacterTokens(t) => {
                let cur = self.current();
                self.doc.add_text(cur, &t);
            }
            Token::TagToken(tag) => {
                let name: &str = &tag.name;
                match tag.kind {
                    TagKind::StartTag => {
                        if let Some((_, raw)) = DROP_CONTENT.iter().find(|(n, _)| *n == name) {
                            if tag.self_closing && matches!(raw, Raw::None) {
                                return TokenSinkResult::Continue;
                            }
                            self.dropping = Some((name.to_string(), 1));
                            return match raw {
                                Raw::Script => TokenSinkResult::RawData(RawKind::ScriptData),
                                Raw::Text => TokenSinkResult::RawData(RawKind::Rawtext),
                                Raw::Rc => TokenSinkResult::RawData(RawKind::Rcdata),
                                Raw::None => TokenSinkResult::Continue,
                            };
                        }
                        if name == "plaintext" {
                            // Everything after it is text, as in a browser.
                            return TokenSinkResult::Plaintext;
                        }
                        if name.contains('@') && !name.contains(['"', '\'', '<', '=']) {
                            // `<user@host>` written in HTML: an address, not a tag.
                            let cur = self.current();
                            self.doc.add_text(cur, &format!("[{name}]"));
                            return TokenSinkResult::Continue;
                        }
                        self.start(name, &tag.attrs, tag.self_closing);
                    }
                    TagKind::EndTag => self.end(name),
                }
            }
            Token::NullCharacterToken
            | Token::CommentToken(_)
            | Token::DoctypeToken(_)
            | Token::ParseError(_)
            | Token::EOFToken => {}
        }
        TokenSinkResult::Continue
    }

    fn start(&mut self, name: &str, attrs: &[html5ever::Attribute], self_closing: bool) {
        let Some(&tag) = ALLOWED.iter().find(|t| **t == name) else {
            return;
        };
        // The implied end tags a browser applies to the most common cases.
        let cur_tag = self.doc.tag(self.current());
        let closes = match tag {
            "p" | "li" | "tr" => cur_tag == Some(tag),
            "td" | "th" => matches!(cur_tag, Some("td" | "th")),
            _ => false,
        };
        if closes && self.overflow == 0 {
            self.open.pop();
        }
        let mut e = Elem::new(tag);
        for a in attrs {
            let an: &str = &a.name.local;
            let v: &str = &a.value;
            match (tag, an) {
                (_, "class") => e.attrs.push(("class", v.to_string())),
                ("blockquote", "type") => e.attrs.push(("type", v.to_ascii_lowercase())),
                ("td" | "th", "colspan" | "rowspan") => {
                    if let Ok(n) = v.trim().parse::<u16>() {
                        let an = if an == "colspan" {
                            "colspan"
                        } else {
                            "rowspan"
                        };
                        e.attrs.push((an, n.to_string()));
                    }
                }
                ("a", "href") => e.link = super::render::link_url(v).map(Link::External),
                ("img", "src") => e.link = super::render::image_src(v),
                ("img", "alt") => e.alt = v.to_string(),
                _ => {}
            }
        }
        let void = VOID.contains(&tag);
        if !void && !self_closing && self.open.len() > self.max_depth {
            // Over the cap: the content goes to the current element, flattened.
            self.overflow += 1;
            self.doc.flattened += 1;
            return;
        }
        let cur = self.current();
        let id = self.doc.add(cur, Data::Elem(e));
        if !void && !self_closing {
            self.open.push(id);
        }
    }

    fn end(&mut self, name: &str) {
        if self.overflow > 0 {
            if ALLOWED.contains(&name) {
                self.overflow -= 1;
            }
            return;
        }
        if name == "br" {
            // `</br>` is a line break in browsers.
            let cur = self.current();
            self.doc.add(cur, Data::Elem(Elem::new("br")));
            return;
        }
        if let Some(pos) = self
            .open
            .iter()
            .rposition(|&id| self.doc.tag(id) == Some(name))
        {
            self.open.truncate(pos);
        }
    }
}

/// Parses an HTML body into the allow-listed tree. Linear in the input; elements nested
/// deeper than `max_depth` are flattened into their ancestor (their text stays).
pub(super) fn parse(html: &str, max_depth: usize) -> Doc {
    let sink = Sink(RefCell::new(Builder {
        doc: Doc::default(),
        open: vec![ROOT],
        max_depth: max_depth.max(1),
        overflow: 0,
        dropping: None,
    }));
    let tok = Tokenizer::new(sink, TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(StrTendril::from_slice(html));
    while let TokenizerResult::Script(()) | TokenizerResult::EncodingIndicator(_) = tok.feed(&queue)
    {
    }
    tok.end();
    tok.sink.0.into_inner().doc
}

/// A tree holding `text` (a plain-text body: lines become line breaks).
pub(super) fn from_text(text: &str) -> Doc {
    let mut doc = Doc::default();
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            doc.add(ROOT, Data::Elem(Elem::new("br")));
            doc.add_text(ROOT, "\n");
        }
        doc.add_text(ROOT, line.strip_suffix('\r').unwrap_or(line));
    }
    doc
}
