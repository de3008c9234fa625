//! Thin entry point: arguments → configuration → adapters → use case → exit code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(3)
}
