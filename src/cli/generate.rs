//! `mailtoticket generate man DIR | completions SHELL`: the package's manual pages
//! and shell completions, generated from the clap definition of [`super::Cli`] so they
//! never drift from the real command line (used by `.ci/package`).

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Writes `mailtoticket.1` and one page per subcommand (`mailtoticket-check.1`,
/// `mailtoticket-journal-show.1`, ...) into `dir`, created when missing; returns the
/// files written, sorted.
pub fn man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut written = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("mailtoticket") && name.ends_with(".1") {
            written.push(path);
        }
    }
    written.sort();
    Ok(written)
}

/// The completion script of `shell` for the `mailtoticket` command.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mailtoticket", &mut out);
    out
}

/// Runs `generate`; returns the exit code.
pub fn run(command: super::GenerateCommand) -> u8 {
    match command {
        super::GenerateCommand::Man { dir } => match man_pages(&dir) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                0
            }
            Err(e) => {
                eprintln!("mailtoticket: {}: {e}", dir.display());
                1
            }
        },
        super::GenerateCommand::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            match out
                .write_all(&completions(shell))
                .and_then(|()| out.flush())
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("mailtoticket: {e}");
                    1
                }
            }
        }
    }
}
