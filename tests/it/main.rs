//! The one integration test binary. Each module is one area.
mod sandbox;
