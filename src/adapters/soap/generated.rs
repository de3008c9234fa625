//! SOAP adapter internals: the bindings `build.rs` generates from `wsdl/*.wsdl`.
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
