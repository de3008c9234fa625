//! The one integration test binary. Each module is one area.

mod app_support;
mod filters;
mod identity;
mod soap;
