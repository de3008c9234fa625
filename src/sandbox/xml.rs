//! Sandbox adapter, XML side: a tiny namespace-aware element tree for the SOAP requests
//! the simulator receives, and escaping helpers for the responses it writes.
//!
//! Requests are small (except base64 attachments, kept as one text), so a tree is the
//! simplest way to be tolerant: any prefix, any child order, unknown elements ignored.

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// One element: namespace URI (None = unqualified), local name, its own text and children.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub local: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// First child with this namespace and local name.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.local == local && c.ns.as_deref() == Some(ns))
    }

    /// First child with this local name in `ns` or unqualified: request children are
    /// qualified for GN6 and unqualified for Persones, and a lenient peer may mix them.
    pub fn field(&self, ns: &str, local: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.local == local && (c.ns.is_none() || c.ns.as_deref() == Some(ns)))
    }

    /// Text of [`Element::field`], empty when missing (missing and nil are alike).
    pub fn field_text(&self, ns: &str, local: &str) -> &str {
        self.field(ns, local).map(|e| e.text.as_str()).unwrap_or("")
    }

    /// Children that are elements of `ns` or unqualified, as (local name, text).
    pub fn fields<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns.is_none() || c.ns.as_deref() == Some(ns))
            .map(|c| (c.local.as_str(), c.text.as_str()))
    }
}

/// Parses a whole document into its root element.
pub fn parse(input: &str) -> Result<Element, String> {
    let mut reader = NsReader::from_str(input);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (res, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("XML mal format: {e}"))?;
        let ns = match res {
            ResolveResult::Bound(ns) => Some(String::from_utf8_lossy(ns.as_ref()).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(format!(
                    "prefix desconegut: {}",
                    String::from_utf8_lossy(&p)
                ));
            }
        };
        match event {
            Event::Start(e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Element {
                    ns,
                    local,
                    ..Element::default()
                });
            }
            Event::Empty(e) => {
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let el = Element {
                    ns,
                    local,
                    ..Element::default()
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err("XML mal format: etiqueta de tancament sobrant".into());
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t
                        .xml10_content()
                        .map_err(|e| format!("XML mal codificat: {e}"))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.decode().map_err(|e| format!("XML mal codificat: {e}"))?;
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let Some(top) = stack.last_mut() else {
                    continue;
                };
                if let Some(ch) = r
                    .resolve_char_ref()
                    .map_err(|e| format!("referència invàlida: {e}"))?
                {
                    top.text.push(ch);
                } else {
                    let name = r.decode().map_err(|e| format!("XML mal codificat: {e}"))?;
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(v) => top.text.push_str(v),
                        None => return Err(format!("entitat desconeguda: &{name};")),
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("XML mal format: document incomplet".into());
    }
    root.ok_or_else(|| "XML buit".into())
}

/// Escapes text for element content and attribute values.
pub fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_namespaces_entities_and_cdata() {
        let doc = r#"<?xml version="1.0"?><a:Env xmlns:a="urn:a" xmlns="urn:d">
            <b>x &amp; y &#233;<![CDATA[<z>]]></b><c xmlns=""/></a:Env>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.ns.as_deref(), Some("urn:a"));
        assert_eq!(root.local, "Env");
        let b = root.child("urn:d", "b").unwrap();
        assert_eq!(b.text, "x & y é<z>");
        assert!(root.children[1].ns.is_none());
        assert_eq!(root.field_text("urn:zz", "c"), "");
    }

    #[test]
    fn rejects_unknown_prefix_and_truncation() {
        assert!(parse("<x:a/>").is_err());
        assert!(parse("<a><b></b>").is_err());
    }
}
