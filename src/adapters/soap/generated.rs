//! SOAP adapter internals: the bindings `build/` generates with xsd-parser from
//! `wsdl/*.wsdl` (types, quick-xml serializers/deserializers, operation table).
#![allow(
    dead_code,
    unused_mut,
    clippy::all,
    clippy::pedantic,
    unused_imports,
    non_camel_case_types,
    missing_docs
)]

// What the generated code refers to (`super::…`): it names no crate path itself.
pub use super::tolerant::{Schema, SchemaChild, SchemaType};
pub use super::xml::{Operation, SoapOperation};

include!(concat!(env!("OUT_DIR"), "/soap_bindings.rs"));
