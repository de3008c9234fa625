//! The one table from outcome to `X-Mailtoticket` header and process exit code
//! (driving side of the hexagon: what the MTA sees).

use crate::domain::outcome::Status;

/// EX_TEMPFAIL of sysexits.h: MTAs and fetchmail keep the mail and retry.
pub const EX_TEMPFAIL: u8 = 75;

/// Every outcome with its header value, exit code and meaning, in README order.
pub const TABLE: &[(Status, u8, &str)] = &[
    (
        Status::Success,
        0,
        "a filter handled the mail (ticket created or commented)",
    ),
    (
        Status::Skip,
        0,
        "deliberately not processed (automatic mail, mails_no_ticket, loop)",
    ),
    (
        Status::Reject,
        2,
        "no filter applied, or the applicable filter failed cleanly",
    ),
    (
        Status::Error,
        1,
        "an unexpected failure (bad configuration, SOAP Fault, bug)",
    ),
    (
        Status::Unknown,
        3,
        "never got as far as deciding (the mail could not be read)",
    ),
    (
        Status::TempFail,
        EX_TEMPFAIL,
        "transient fault (bus down, timeout, 5xx): retry later",
    ),
];

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

/// Exit code with the `exit_zero_when_reported` setting: for MTAs that bounce every
/// code but 75, REJECT and ERROR exit 0 once the mail is safely reported (error
/// report sent) or quarantined, since nobody would gain from a bounce.
pub fn exit_code_with(status: Status, exit_zero_when_reported: bool, reported: bool) -> u8 {
    match status {
        Status::Reject | Status::Error if exit_zero_when_reported && reported => 0,
        s => exit_code(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_agrees_with_exit_code() {
        for (status, code, _) in TABLE {
            assert_eq!(exit_code(*status), *code, "{status:?}");
        }
        assert_eq!(TABLE.len(), 6);
    }

    #[test]
    fn exit_zero_only_when_reported_and_only_for_reject_and_error() {
        assert_eq!(exit_code_with(Status::Reject, true, true), 0);
        assert_eq!(exit_code_with(Status::Error, true, true), 0);
        assert_eq!(exit_code_with(Status::Error, true, false), 1);
        assert_eq!(exit_code_with(Status::Error, false, true), 1);
        assert_eq!(exit_code_with(Status::TempFail, true, true), 75);
        assert_eq!(exit_code_with(Status::Unknown, true, true), 3);
    }
}
