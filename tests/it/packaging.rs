//! The Debian package's inputs (issue 18): the man pages and shell completions
//! generated from the clap definition (`mailtoticket generate`), and the package
//! metadata of Cargo.toml against the files of `debian/` and the command line the
//! systemd units run. The package round trip itself runs in `.ci/package`.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mailtoticket");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Commands the units run that other parts of issue 18 add (`metrics` by the
/// telemetry work, `journal purge` by the quarantine work). Once the command exists
/// the test fails until its entry is removed here, so the list empties itself.
const COMMANDS_ADDED_ELSEWHERE: &[&str] = &[];

/// The visible subcommands, as the binary's help lists them.
fn subcommands() -> Vec<String> {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
        } else if in_commands {
            match line
                .strip_prefix("  ")
                .and_then(|l| l.split_whitespace().next())
            {
                Some(name) if !line.starts_with("   ") => names.push(name.to_string()),
                Some(_) => {}
                None => break,
            }
        }
    }
    names.retain(|n| n != "help");
    names
}

#[test]
fn the_man_pages_render_and_cover_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["generate", "man"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let main = std::fs::read_to_string(dir.path().join("mailtoticket.1")).unwrap();
    assert!(main.starts_with(".ie \\n(.g .ds Aq") || main.contains(".TH mailtoticket 1"));
    let subs = subcommands();
    assert!(subs.len() >= 8, "{subs:?}");
    assert!(subs.iter().any(|s| s == "imap") && subs.iter().any(|s| s == "journal"));
    for sub in &subs {
        assert!(
            main.contains(&format!("mailtoticket\\-{}(1)", sub.replace('-', "\\-"))),
            "{sub} missing from the main page"
        );
        assert!(
            dir.path().join(format!("mailtoticket-{sub}.1")).is_file(),
            "no page for {sub}"
        );
    }
    // Nested ones too, and no page for the hidden `generate`.
    assert!(dir.path().join("mailtoticket-journal-show.1").is_file());
    assert!(!dir.path().join("mailtoticket-generate.1").exists());
    assert!(!main.contains("generate"));
    // The printed list is what was written.
    let listed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        listed.lines().count(),
        std::fs::read_dir(dir.path()).unwrap().count()
    );

    // Rendered by groff (as man does) without a warning, where groff is installed.
    if Command::new("groff").arg("--version").output().is_ok() {
        let r = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(dir.path().join("mailtoticket.1"))
            .output()
            .unwrap();
        assert!(r.status.success(), "{r:?}");
        assert_eq!(String::from_utf8_lossy(&r.stderr), "");
        let r = Command::new("groff")
            .args(["-man", "-Tascii", "-P-cbou"])
            .arg(dir.path().join("mailtoticket-imap.1"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&r.stdout);
        assert!(text.contains("--watch") && text.contains("IDLE"), "{text}");
    }
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _mailtoticket"),
        ("zsh", "#compdef mailtoticket"),
        ("fish", "complete -c mailtoticket"),
    ] {
        let out = Command::new(BIN)
            .args(["generate", "completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {script}");
        for word in ["imap", "journal", "watch", "config"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
        // The option of a subcommand is offered under that subcommand.
        assert!(
            shell != "fish"
                || script
                    .lines()
                    .any(|l| l.contains("imap") && l.contains("watch")),
            "{shell}: {script}"
        );
    }
    let out = Command::new(BIN)
        .args(["generate", "completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn the_package_metadata_matches_the_files_and_the_units_run_real_commands() {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap())
            .unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets = deb["assets"].as_array().unwrap();
    let mut dests = Vec::new();
    for a in assets {
        let a = a.as_array().unwrap();
        let (src, dest) = (a[0].as_str().unwrap(), a[1].as_str().unwrap());
        dests.push(dest.to_string());
        // Built files are made by `.ci/package`; every other source is in the repo.
        if !src.starts_with("target/") {
            assert!(Path::new(ROOT).join(src).is_file(), "missing asset {src}");
        }
    }
    for script in ["postinst", "prerm", "postrm", "changelog"] {
        assert!(Path::new(ROOT).join("debian").join(script).is_file());
    }
    // The configuration: a conffile readable by the group only.
    assert!(
        assets
            .iter()
            .any(|a| a[1].as_str() == Some("etc/mailtoticket/default.toml")
                && a[2].as_str() == Some("640"))
    );

    let units = Path::new(ROOT).join("debian/systemd");
    let mut seen = 0;
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(
            dests.iter().any(|d| d == "usr/lib/systemd/system/"),
            "units not installed"
        );
        assert!(
            assets
                .iter()
                .any(|a| a[0].as_str() == Some(&format!("debian/systemd/{name}"))),
            "{name} is not an asset"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            let Some(cmd) = line.strip_prefix("ExecStart=") else {
                continue;
            };
            seen += 1;
            let args: Vec<&str> = cmd.split_whitespace().collect();
            assert_eq!(args[0], "/usr/bin/mailtoticket", "{name}");
            let words = args[1..].join(" ");
            let out = Command::new(BIN)
                .args(&args[1..])
                .arg("--help")
                .output()
                .unwrap();
            let known = out.status.success();
            let elsewhere = COMMANDS_ADDED_ELSEWHERE.contains(&words.as_str());
            assert!(
                known != elsewhere,
                "{name}: `mailtoticket {words}` {} (update COMMANDS_ADDED_ELSEWHERE)",
                if known { "exists now" } else { "is no command" }
            );
        }
        if name.ends_with(".service") {
            for key in [
                "User=mailtoticket",
                "ProtectSystem=strict",
                "NoNewPrivileges=yes",
                "SystemCallFilter=@system-service",
                "StateDirectory=mailtoticket",
            ] {
                assert!(text.lines().any(|l| l == key), "{name} lacks {key}");
            }
        }
    }
    assert_eq!(seen, 4);
}
