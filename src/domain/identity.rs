//! Identity data as the domain sees it (a UPC person) and the pure parts of the
//! identity chain (canonicalisation, static maps, patterns).

/// A person of the UPC identity directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// Username (common name, cn).
    pub cn: String,
    /// Preferred e-mail, when the directory gives one.
    pub email_preferent: Option<String>,
}
