//! Adapters: the outside world behind the ports (SOAP over HTTP, mail parsing,
//! the sandbox bus, the journal, error reports).

pub mod mail;
