//! The one table from outcome to `X-Mailtoticket` header and process exit code.

use crate::domain::outcome::Status;

/// EX_TEMPFAIL of sysexits.h: MTAs and fetchmail keep the mail and retry.
pub const EX_TEMPFAIL: u8 = 75;

/// Exit code of a status (compatible with the old gateway, plus TEMPFAIL).
pub fn exit_code(status: Status) -> u8 {
    match status {
        Status::Success | Status::Skip => 0,
        Status::Error => 1,
        Status::Reject => 2,
        Status::Unknown => 3,
        Status::TempFail => EX_TEMPFAIL,
    }
}
