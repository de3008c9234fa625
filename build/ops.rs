//! The operation table: per operation of the WSDL binding, its soapAction and its
//! request and response elements (from portType and messages).

use crate::dom::Node;
use crate::{SOAP_BINDING_NS, WSDL_NS};

pub struct Op {
    pub name: String,
    pub soap_action: String,
    pub request: (String, String),
    pub response: (String, String),
}

pub fn operations(defs: &Node) -> Result<Vec<Op>, String> {
    let message_element = |qname: &str, at: &Node| -> Result<(String, String), String> {
        let (_, msg) = at.resolve_qname(qname)?;
        let m = defs
            .elems(WSDL_NS, "message")
            .find(|m| m.attr("name") == Some(msg.as_str()))
            .ok_or_else(|| format!("unknown message {msg}"))?;
        let part = m
            .elem(WSDL_NS, "part")
            .ok_or_else(|| format!("message {msg} without part"))?;
        let el = part
            .attr("element")
            .ok_or_else(|| format!("message {msg}: only element parts (document/literal)"))?;
        part.resolve_qname(el)
    };
    let port_type = defs.elem(WSDL_NS, "portType").ok_or("no portType")?;
    let binding = defs.elem(WSDL_NS, "binding").ok_or("no binding")?;
    let mut ops = Vec::new();
    for bop in binding.elems(WSDL_NS, "operation") {
        let name = bop.attr("name").ok_or("binding operation without name")?;
        let soap_action = bop
            .elem(SOAP_BINDING_NS, "operation")
            .and_then(|o| o.attr("soapAction"))
            .unwrap_or_default()
            .to_string();
        let pop = port_type
            .elems(WSDL_NS, "operation")
            .find(|o| o.attr("name") == Some(name))
            .ok_or_else(|| format!("operation {name} not in portType"))?;
        let input = pop
            .elem(WSDL_NS, "input")
            .ok_or("operation without input")?;
        let output = pop
            .elem(WSDL_NS, "output")
            .ok_or("operation without output")?;
        ops.push(Op {
            name: name.to_string(),
            soap_action,
            request: message_element(input.attr("message").unwrap_or_default(), input)?,
            response: message_element(output.attr("message").unwrap_or_default(), output)?,
        });
    }
    ops.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ops)
}

pub fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = true;
    for ch in name.chars() {
        if ch == '_' || ch == '-' || ch == '.' {
            upper = true;
            continue;
        }
        if upper {
            out.extend(ch.to_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

pub fn upper_snake(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for ch in name.chars() {
        if ch.is_uppercase() && prev_lower {
            out.push('_');
        }
        out.extend(ch.to_uppercase());
        prev_lower = ch.is_lowercase() || ch.is_ascii_digit();
    }
    out
}
