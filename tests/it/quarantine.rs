//! Quarantine folder: byte-identical mails, sidecar reasons, order, removal.

use chrono::{DateTime, FixedOffset};
use mailtoticket::adapters::quarantine::{Quarantine, reason_path};

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("test time")
}

#[test]
fn put_keeps_the_mail_byte_identical_and_the_reason_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let q = Quarantine::new(dir.path().join("quarantine"));
    // Bytes that any text round trip would damage.
    let raw: Vec<u8> =
        b"From: a@b\r\nSubject: \xff\xfe\x00 x\r\n\r\nbody\rbare CR\n\x00\x80".to_vec();
    let path = q
        .put(
            &raw,
            "ERROR",
            "Cap filtre ha acceptat el correu\nsegona línia",
            t("2026-11-28T10:00:00+01:00"),
        )
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), raw);
    assert!(reason_path(&path).is_file());
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("20261128T090000.000Z-"), "{name}");
    assert!(name.ends_with(".eml"), "{name}");

    let read = q.read(&path).unwrap();
    assert_eq!(read.raw, raw);
    assert_eq!(read.status, "ERROR");
    assert_eq!(
        read.reason,
        "Cap filtre ha acceptat el correu\nsegona línia"
    );
    assert_eq!(read.quarantined_at, "2026-11-28T10:00:00+01:00");
    assert_eq!(read.path, path);
}

#[test]
fn list_is_sorted_by_time_and_ignores_sidecars_and_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let q = Quarantine::new(dir.path());
    let late = q
        .put(b"late", "REJECT", "r", t("2026-11-28T12:00:00Z"))
        .unwrap();
    let early = q
        .put(b"early", "UNKNOWN", "r", t("2026-11-27T12:00:00Z"))
        .unwrap();
    let same_time = q
        .put(b"other", "ERROR", "r", t("2026-11-27T12:00:00Z"))
        .unwrap();
    assert_ne!(early, same_time, "different mails, different names");
    std::fs::write(dir.path().join(".x.eml.123.tmp"), b"partial").unwrap();
    std::fs::write(dir.path().join(".hidden.eml"), b"partial").unwrap();
    let listed = q.list().unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed.last(), Some(&late));
    assert!(listed[..2].contains(&early) && listed[..2].contains(&same_time));
}

#[test]
fn a_missing_folder_lists_empty() {
    let dir = tempfile::tempdir().unwrap();
    let q = Quarantine::new(dir.path().join("never-created"));
    assert!(q.list().unwrap().is_empty());
}

#[test]
fn remove_deletes_mail_and_sidecar_and_tolerates_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let q = Quarantine::new(dir.path());
    let path = q
        .put(b"x", "ERROR", "r", t("2026-11-28T10:00:00Z"))
        .unwrap();
    q.remove(&path).unwrap();
    assert!(!path.exists());
    assert!(!reason_path(&path).exists());
    assert!(q.list().unwrap().is_empty());
    q.remove(&path).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn read_works_on_a_mail_without_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let q = Quarantine::new(dir.path());
    let p = dir.path().join("hand-made.eml");
    std::fs::write(&p, b"Subject: x\r\n\r\n").unwrap();
    let m = q.read(&p).unwrap();
    assert_eq!(m.raw, b"Subject: x\r\n\r\n");
    assert_eq!((m.status.as_str(), m.reason.as_str()), ("", ""));
    assert!(q.read(&dir.path().join("absent.eml")).is_err());
}

#[test]
fn status_with_line_breaks_cannot_forge_sidecar_fields() {
    let dir = tempfile::tempdir().unwrap();
    let q = Quarantine::new(dir.path());
    let p = q
        .put(
            b"x",
            "ERROR\nreason: forged",
            "real",
            t("2026-11-28T10:00:00Z"),
        )
        .unwrap();
    let m = q.read(&p).unwrap();
    assert_eq!(m.reason, "real");
    assert_eq!(m.status, "ERROR reason: forged");
}
