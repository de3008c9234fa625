//! Thin entry point (driving side): everything happens in `mailtoticket::cli::run`.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(mailtoticket::cli::run())
}
