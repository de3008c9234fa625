//! Outcomes of one delivery, as the MTA and the mailbox filters see them.

/// What happened to a mail. The `X-Mailtoticket` header and the exit code follow from
/// it in one place (`crate::exit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A filter handled the mail.
    Success,
    /// Deliberately not processed (automatic mail, `mails_no_ticket`, duplicate...).
    Skip,
    /// No filter applied, or the applicable filter failed cleanly.
    Reject,
    /// An unexpected failure.
    Error,
    /// Never got as far as deciding.
    Unknown,
    /// A transient fault (bus unreachable, timeout, 5xx): the MTA should retry.
    TempFail,
}

impl Status {
    /// The value of the `X-Mailtoticket` header.
    pub fn as_header(self) -> &'static str {
        match self {
            Status::Success => "SUCCESS",
            Status::Skip => "SKIP",
            Status::Reject => "REJECT",
            Status::Error => "ERROR",
            Status::Unknown => "UNKNOWN",
            Status::TempFail => "TEMPFAIL",
        }
    }
}

/// The header every error report of ours carries (value: the reporting instance's
/// address). A mail with it is one of our own reports coming back: it is never
/// processed nor reported again, whatever the lists say. The one spelling of it.
pub const LOOP_HEADER: &str = "X-Mailtoticket-Loop";
