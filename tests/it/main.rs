//! The one integration test binary. Each module is one area.

mod mail_corpus;
mod mail_props;
mod xss;
