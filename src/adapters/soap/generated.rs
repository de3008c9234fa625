//! SOAP adapter internals: the bindings `build.rs` generates with xsd-parser from
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
include!(concat!(env!("OUT_DIR"), "/soap_bindings.rs"));
