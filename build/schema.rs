//! Schema table for the tolerant response reader (`src/adapters/soap/tolerant.rs`): per
//! complex type, its child elements in `xs:sequence` order (extensions flattened, base
//! first), and the type of each global element. The reader uses it to reorder children
//! and drop unknown ones before the xsd-parser deserializers see the payload.

use std::collections::HashMap;

use crate::WSDL_NS;
use crate::XS_NS;
use crate::dom::Node;

/// (namespace, local name).
pub type QName = (String, String);

/// A child element of a complex type: its qualified name and its type ("" = simple or
/// unknown: the reader passes it through unchanged).
#[derive(Clone)]
pub struct ChildDef {
    pub element: QName,
    pub ty: QName,
}

pub struct SchemaTable {
    pub elements: Vec<(QName, QName)>,
    pub types: std::collections::BTreeMap<QName, Vec<ChildDef>>,
}

pub struct SchemaCtx<'a> {
    pub tns: String,
    pub qualified: bool,
    pub node: &'a Node,
}

pub fn schema_table(defs: &Node) -> Result<SchemaTable, String> {
    let types_el = defs.elem(WSDL_NS, "types").ok_or("no wsdl:types")?;
    let mut named: HashMap<QName, SchemaCtx> = HashMap::new();
    let mut globals: Vec<(QName, SchemaCtx)> = Vec::new();
    for schema in types_el.elems(XS_NS, "schema") {
        let tns = schema
            .attr("targetNamespace")
            .unwrap_or_default()
            .to_string();
        let qualified = schema.attr("elementFormDefault") == Some("qualified");
        for ct in schema.elems(XS_NS, "complexType") {
            // Text content: the reader must pass such elements through unchanged.
            if ct.elem(XS_NS, "simpleContent").is_some() {
                continue;
            }
            if let Some(name) = ct.attr("name") {
                named.insert(
                    (tns.clone(), name.to_string()),
                    SchemaCtx {
                        tns: tns.clone(),
                        qualified,
                        node: ct,
                    },
                );
            }
        }
        for el in schema.elems(XS_NS, "element") {
            if let Some(name) = el.attr("name") {
                globals.push((
                    (tns.clone(), name.to_string()),
                    SchemaCtx {
                        tns: tns.clone(),
                        qualified,
                        node: el,
                    },
                ));
            }
        }
    }
    let mut table = SchemaTable {
        elements: Vec::new(),
        types: std::collections::BTreeMap::new(),
    };
    // Global elements first, so that `ref` children can look their type up.
    let mut global_types: HashMap<QName, QName> = HashMap::new();
    for (qn, ctx) in &globals {
        let ty = element_type(ctx, &qn.1)?;
        global_types.insert(qn.clone(), ty.clone());
        table.elements.push((qn.clone(), ty));
    }
    for (qn, ctx) in &named {
        let children =
            complex_children(ctx, ctx.node, &qn.1, &named, &global_types, &mut table, 0)?;
        table.types.insert(qn.clone(), children);
    }
    // Anonymous types of global elements: their children can only be computed once the
    // global element types are known (for `ref`).
    for (qn, ctx) in &globals {
        if let Some(ct) = ctx.node.elem(XS_NS, "complexType")
            && ct.elem(XS_NS, "simpleContent").is_none()
        {
            let key = (ctx.tns.clone(), format!("{}#", qn.1));
            let children = complex_children(ctx, ct, &key.1, &named, &global_types, &mut table, 0)?;
            table.types.insert(key, children);
        }
    }
    Ok(table)
}

/// The type of a global element: its `type` attribute, or a synthetic name `<element>#`
/// for an anonymous complex type, or none.
pub fn element_type(ctx: &SchemaCtx, name: &str) -> Result<QName, String> {
    if let Some(t) = ctx.node.attr("type") {
        return ctx.node.resolve_qname(t);
    }
    if ctx
        .node
        .elem(XS_NS, "complexType")
        .is_some_and(|ct| ct.elem(XS_NS, "simpleContent").is_none())
    {
        return Ok((ctx.tns.clone(), format!("{name}#")));
    }
    Ok((String::new(), String::new()))
}

/// The child elements of a complex type node (`xs:complexType`), base type first.
pub fn complex_children(
    ctx: &SchemaCtx,
    ct: &Node,
    type_name: &str,
    named: &HashMap<QName, SchemaCtx>,
    globals: &HashMap<QName, QName>,
    table: &mut SchemaTable,
    depth: usize,
) -> Result<Vec<ChildDef>, String> {
    if depth > 32 {
        return Err(format!("type {type_name}: derivation too deep"));
    }
    let mut out = Vec::new();
    for c in &ct.children {
        if c.ns != XS_NS {
            continue;
        }
        match c.local.as_str() {
            "sequence" | "all" | "choice" => {
                particles(ctx, c, type_name, named, globals, table, depth, &mut out)?
            }
            "complexContent" => {
                for d in &c.children {
                    if d.ns != XS_NS {
                        continue;
                    }
                    if d.local == "extension"
                        && let Some(base) = d.attr("base")
                    {
                        let base = d.resolve_qname(base)?;
                        if let Some(bctx) = named.get(&base) {
                            out.extend(complex_children(
                                bctx,
                                bctx.node,
                                &base.1,
                                named,
                                globals,
                                table,
                                depth + 1,
                            )?);
                        }
                    }
                    if d.local == "extension" || d.local == "restriction" {
                        for p in &d.children {
                            if p.ns == XS_NS
                                && matches!(p.local.as_str(), "sequence" | "all" | "choice")
                            {
                                particles(
                                    ctx, p, type_name, named, globals, table, depth, &mut out,
                                )?;
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The elements of a model group (nested groups flattened in document order).
#[allow(clippy::too_many_arguments)]
pub fn particles(
    ctx: &SchemaCtx,
    group: &Node,
    type_name: &str,
    named: &HashMap<QName, SchemaCtx>,
    globals: &HashMap<QName, QName>,
    table: &mut SchemaTable,
    depth: usize,
    out: &mut Vec<ChildDef>,
) -> Result<(), String> {
    for p in &group.children {
        if p.ns != XS_NS {
            continue;
        }
        match p.local.as_str() {
            "sequence" | "all" | "choice" => {
                particles(ctx, p, type_name, named, globals, table, depth, out)?
            }
            "element" => {
                if let Some(r) = p.attr("ref") {
                    let element = p.resolve_qname(r)?;
                    let ty = globals
                        .get(&element)
                        .cloned()
                        .unwrap_or((String::new(), String::new()));
                    out.push(ChildDef { element, ty });
                    continue;
                }
                let name = p.attr("name").ok_or("xs:element without name or ref")?;
                let qualified = match p.attr("form") {
                    Some(f) => f == "qualified",
                    None => ctx.qualified,
                };
                let ns = if qualified {
                    ctx.tns.clone()
                } else {
                    String::new()
                };
                let ty = if let Some(t) = p.attr("type") {
                    p.resolve_qname(t)?
                } else if let Some(inner) = p
                    .elem(XS_NS, "complexType")
                    .filter(|ct| ct.elem(XS_NS, "simpleContent").is_none())
                {
                    let key = (ctx.tns.clone(), format!("{type_name}/{name}#"));
                    let children =
                        complex_children(ctx, inner, &key.1, named, globals, table, depth + 1)?;
                    table.types.insert(key.clone(), children);
                    key
                } else {
                    (String::new(), String::new())
                };
                out.push(ChildDef {
                    element: (ns, name.to_string()),
                    ty,
                });
            }
            _ => {}
        }
    }
    Ok(())
}
