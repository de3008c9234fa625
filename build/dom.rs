//! A minimal namespace-aware DOM of the WSDL, for the operation table and the schema
//! table (xsd-parser does not read messages, portType or binding).

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

#[derive(Debug, Clone)]
pub struct Node {
    pub ns: String,
    pub local: String,
    pub attrs: Vec<(String, String)>,
    /// Prefix → namespace URI in scope at this node ("" = default namespace).
    pub scope: HashMap<String, String>,
    pub children: Vec<Node>,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn elems(&self, ns: &str, local: &str) -> std::vec::IntoIter<&Node> {
        self.children
            .iter()
            .filter(|c| c.ns == ns && c.local == local)
            .collect::<Vec<_>>()
            .into_iter()
    }

    pub fn elem(&self, ns: &str, local: &str) -> Option<&Node> {
        self.elems(ns, local).next()
    }

    /// Resolves a `prefix:local` attribute value (a QName) in this node's scope.
    pub fn resolve_qname(&self, qname: &str) -> Result<(String, String), String> {
        let (prefix, local) = match qname.split_once(':') {
            Some((p, l)) => (p, l),
            None => ("", qname),
        };
        let ns = self
            .scope
            .get(prefix)
            .cloned()
            .ok_or_else(|| format!("undeclared prefix '{prefix}' in '{qname}'"))?;
        Ok((ns, local.to_string()))
    }
}

pub fn parse_dom(text: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    loop {
        let ev = reader.read_event().map_err(|e| format!("XML error: {e}"))?;
        let (start, empty) = match &ev {
            Event::Start(s) => (Some(s.clone()), false),
            Event::Empty(s) => (Some(s.clone()), true),
            _ => (None, false),
        };
        if let Some(s) = start {
            let mut scope = stack.last().map(|n| n.scope.clone()).unwrap_or_default();
            let mut attrs = Vec::new();
            for a in s.attributes() {
                let a = a.map_err(|e| format!("attribute error: {e}"))?;
                let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                let value = a
                    .decode_and_unescape_value(reader.decoder())
                    .map_err(|e| format!("attribute error: {e}"))?
                    .into_owned();
                if key == "xmlns" {
                    scope.insert(String::new(), value);
                } else if let Some(p) = key.strip_prefix("xmlns:") {
                    scope.insert(p.to_string(), value);
                } else {
                    attrs.push((key, value));
                }
            }
            let qname = String::from_utf8_lossy(s.name().as_ref()).into_owned();
            let (prefix, local) = match qname.split_once(':') {
                Some((p, l)) => (p.to_string(), l.to_string()),
                None => (String::new(), qname.clone()),
            };
            let ns = scope.get(&prefix).cloned().unwrap_or_default();
            let node = Node {
                ns,
                local,
                attrs,
                scope,
                children: Vec::new(),
            };
            if empty {
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            } else {
                stack.push(node);
            }
            continue;
        }
        match ev {
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    root.ok_or_else(|| "empty document".to_string())
}
