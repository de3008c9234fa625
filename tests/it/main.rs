//! The one integration test binary. Each module is one area.

mod bad_input;
mod journal;
mod quarantine;
