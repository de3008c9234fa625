//! Running the real binary from a test: the one way to feed it a mail and collect what
//! it printed, shared by the end-to-end modules.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` with `stdin` piped in and stdout/stderr captured. The input is written
/// from its own thread, so that a large mail cannot deadlock against a child that
/// writes (or exits) before it has read all of it.
pub fn run_piped(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut input = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The child may exit without reading everything (a refused mail): not an error.
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("the binary's output");
    writer.join().expect("stdin writer");
    out
}

/// The status of the `X-Mailtoticket:` line the MDA puts first on stdout (the whole
/// first line when it is something else).
pub fn mda_status(out: &Output) -> String {
    let first = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    first
        .strip_prefix("X-Mailtoticket: ")
        .unwrap_or(&first)
        .to_string()
}
