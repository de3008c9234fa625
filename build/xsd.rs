//! WSDL → XSD files: xsd-parser reads XML Schema, not WSDL, so every `xs:schema` of
//! `wsdl:types` is copied to `OUT_DIR/xsd/<wsdl>-<n>.xsd`, with the `xmlns:*`
//! declarations of `wsdl:definitions` it relies on and a `schemaLocation` on every
//! `xs:import` of a sibling schema (a bare import between two schemas of one WSDL does
//! not resolve in xsd-parser).

use std::fs;
use std::path::{Path, PathBuf};

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use quick_xml::writer::Writer;

use crate::{WSDL_NS, XS_NS};

/// Copies the schemas of `wsdl:types` to `OUT_DIR/xsd/<stem>-<n>.xsd`; returns their paths.
pub fn extract_schemas(text: &str, stem: &str, out_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let xml_err = |e: &dyn std::fmt::Display| format!("XML error: {e}");
    // Pass 1: the definitions' namespace declarations and each schema's targetNamespace.
    let mut reader = NsReader::from_str(text);
    let mut defs_xmlns: Vec<(String, String)> = Vec::new();
    let mut tns_list: Vec<String> = Vec::new();
    let mut depth = 0usize;
    loop {
        let (res, ev) = reader.read_resolved_event().map_err(|e| xml_err(&e))?;
        match ev {
            Event::Start(ref s) | Event::Empty(ref s) => {
                let ns = ns_of(&res);
                let local = s.local_name();
                if depth == 0 && ns == WSDL_NS && local.as_ref() == b"definitions" {
                    for a in s.attributes() {
                        let a = a.map_err(|e| xml_err(&e))?;
                        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                        if key == "xmlns" || key.starts_with("xmlns:") {
                            let v = unescape_attr(&a.value)?;
                            defs_xmlns.push((key, v));
                        }
                    }
                }
                if depth == 2 && ns == XS_NS && local.as_ref() == b"schema" {
                    tns_list.push(attr(s, "targetNamespace")?.unwrap_or_default());
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
    }
    if tns_list.is_empty() {
        return Err("no xs:schema in wsdl:types".into());
    }
    let file_of = |i: usize| format!("{stem}-{}.xsd", i + 1);
    let dir = out_dir.join("xsd");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;

    // Pass 2: copy each schema's events, completing its start tag and its imports.
    let mut reader = NsReader::from_str(text);
    let mut depth = 0usize;
    let mut index = 0usize;
    let mut paths = Vec::new();
    loop {
        let (res, ev) = reader.read_resolved_event().map_err(|e| xml_err(&e))?;
        match ev {
            Event::Start(ref s)
                if depth == 2 && ns_of(&res) == XS_NS && s.local_name().as_ref() == b"schema" =>
            {
                let mut w = Writer::new(Vec::new());
                let mut start = s.to_owned();
                for (key, value) in &defs_xmlns {
                    if s.try_get_attribute(key.as_str())
                        .map_err(|e| xml_err(&e))?
                        .is_none()
                    {
                        start.push_attribute((key.as_str(), value.as_str()));
                    }
                }
                w.write_event(Event::Start(start))
                    .map_err(|e| xml_err(&e))?;
                let mut inner = 1usize;
                while inner > 0 {
                    let (res, ev) = reader.read_resolved_event().map_err(|e| xml_err(&e))?;
                    let ev = match ev {
                        Event::Start(_) => {
                            inner += 1;
                            ev
                        }
                        Event::End(_) => {
                            inner -= 1;
                            ev
                        }
                        Event::Empty(ref e)
                            if ns_of(&res) == XS_NS && e.local_name().as_ref() == b"import" =>
                        {
                            Event::Empty(with_location(e, &tns_list, &file_of)?)
                        }
                        Event::Eof => return Err("unterminated xs:schema".into()),
                        ev => ev,
                    };
                    w.write_event(ev).map_err(|e| xml_err(&e))?;
                }
                let path = dir.join(file_of(index));
                let mut bytes = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n".to_vec();
                bytes.extend(w.into_inner());
                fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                paths.push(path);
                index += 1;
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(paths)
}

/// An `xs:import` of a sibling schema, with `schemaLocation` pointing at its file.
pub fn with_location(
    e: &BytesStart,
    tns_list: &[String],
    file_of: &dyn Fn(usize) -> String,
) -> Result<BytesStart<'static>, String> {
    let mut out = e.to_owned();
    if attr(e, "schemaLocation")?.is_some() {
        return Ok(out);
    }
    let ns = attr(e, "namespace")?.unwrap_or_default();
    let i = tns_list
        .iter()
        .position(|t| *t == ns)
        .ok_or_else(|| format!("xs:import of '{ns}', which no schema of wsdl:types defines"))?;
    out.push_attribute(("schemaLocation", file_of(i).as_str()));
    Ok(out)
}

pub fn attr(e: &BytesStart, name: &str) -> Result<Option<String>, String> {
    match e.try_get_attribute(name).map_err(|e| e.to_string())? {
        Some(a) => Ok(Some(unescape_attr(&a.value)?)),
        None => Ok(None),
    }
}

pub fn unescape_attr(raw: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(raw).map_err(|e| e.to_string())?;
    Ok(quick_xml::escape::unescape(text)
        .map_err(|e| e.to_string())?
        .into_owned())
}

pub fn ns_of(r: &ResolveResult) -> String {
    match r {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        _ => String::new(),
    }
}
