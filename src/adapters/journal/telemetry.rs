//! Telemetry kept in the journal (issue 18): counters that survive restarts and the
//! one-process-per-mail MDA runs, read by `mailtoticket health` and `metrics`.
//!
//! Table `counters (name, labels, value)`: one row per counter and label set, bumped
//! with an upsert. Histograms are rows too: one per bucket (`le=<bound>`, *not*
//! cumulative: a mail adds one to the single bucket it falls in), plus the sum in
//! microseconds; the count is the sum of the buckets. Neither pruning nor
//! `journal purge` touches the table: it never shrinks, as Prometheus counters must not.
//! A few values live in `meta`: the time of the last mail and of the last SUCCESS,
//! the number of consecutive TEMPFAILs, the heartbeat of `imap --watch`.
//!
//! Everything a mail adds is written in ONE write transaction at its end, without
//! fsync (a power cut may lose the last counts, never a ticket).

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{OptionalExtension, params};

use super::{DB_FILE_NAME, DeliveryJournal, JournalError, db_error};
use crate::adapters::telemetry::{CALL_BUCKETS, MAIL_BUCKETS, MailSample, bucket_index};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counters (
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    value  INTEGER NOT NULL,
    PRIMARY KEY (name, labels)
) WITHOUT ROWID;
";

/// `meta` rows of the telemetry (unix milliseconds, or a count).
pub const META_LAST_MAIL: &str = "last_mail_ms";
pub const META_LAST_SUCCESS: &str = "last_success_ms";
pub const META_CONSECUTIVE_TEMPFAILS: &str = "consecutive_tempfails";
pub const META_IMAP_HEARTBEAT: &str = "imap_heartbeat_ms";

const MAILS: &str = "mails";
const MAIL_BUCKET: &str = "mail_duration_bucket";
const MAIL_SUM: &str = "mail_duration_sum_us";
const CALLS: &str = "soap_calls";
const CALL_BUCKET: &str = "soap_call_duration_bucket";
const CALL_SUM: &str = "soap_call_duration_sum_us";

/// A histogram as read back: non-cumulative counts per bucket of `bounds`, the last
/// one for `+Inf`, and the sum of the observed values.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    pub buckets: Vec<u64>,
    pub sum_seconds: f64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: vec![0; bounds.len() + 1],
            sum_seconds: 0.0,
        }
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// `(upper bound, count in that bucket alone)`, `+Inf` last: what
    /// `prometheus-client`'s encoder takes (it adds them up itself).
    pub fn per_bucket(&self) -> Vec<(f64, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, n)| (self.bounds.get(i).copied().unwrap_or(f64::INFINITY), *n))
            .collect()
    }

    /// `(upper bound, cumulative count)` per bound, `+Inf` last (Prometheus' form).
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, n)| {
                total += n;
                (self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total)
            })
            .collect()
    }

    fn add_bucket(&mut self, le: &str, n: u64) {
        let bound = if le == "+Inf" {
            f64::INFINITY
        } else {
            match le.parse::<f64>() {
                Ok(b) => b,
                Err(_) => return,
            }
        };
        // A bound of an older release folds into the first current one above it.
        let i = bucket_index(self.bounds, bound);
        self.buckets[i] += n;
    }
}

/// Everything the journal knows for `health` and `metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct Telemetry {
    /// Outcome label (`success`...) → mails.
    pub mails: BTreeMap<String, u64>,
    pub mail_duration: Histogram,
    /// (service, operation, result) → calls.
    pub calls: BTreeMap<(String, String, String), u64>,
    /// (service, operation) → latency histogram.
    pub call_duration: BTreeMap<(String, String), Histogram>,
    pub last_mail_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
    pub consecutive_tempfails: u64,
    /// Written by `imap --watch` at each turn of its loop; removed at a clean stop.
    pub imap_heartbeat_ms: Option<i64>,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            mails: BTreeMap::new(),
            mail_duration: Histogram::new(&MAIL_BUCKETS),
            calls: BTreeMap::new(),
            call_duration: BTreeMap::new(),
            last_mail_ms: None,
            last_success_ms: None,
            consecutive_tempfails: 0,
            imap_heartbeat_ms: None,
        }
    }
}

/// Label values come from fixed sets (outcomes, operation names); anything else is
/// made harmless for the `k=v,k=v` form and the exposition format.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn bound_label(bounds: &[f64], i: usize) -> String {
    bounds
        .get(i)
        .map_or_else(|| "+Inf".to_string(), |b| format!("{b}"))
}

fn labels_of(text: &str) -> BTreeMap<&str, &str> {
    text.split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl DeliveryJournal {
    /// Opens the journal of `state_dir` only when it exists (`Ok(None)` otherwise):
    /// `health` and `metrics` must not create one.
    pub fn open_existing(state_dir: &Path) -> Result<Option<DeliveryJournal>, JournalError> {
        let db = state_dir.join(DB_FILE_NAME);
        match std::fs::symlink_metadata(&db) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(JournalError::Io(e)),
            Ok(_) => DeliveryJournal::open(state_dir).map(Some),
        }
    }

    /// Adds what one mail did to the counters, in one (non-fsync'd) write transaction.
    pub fn record_mail(&self, sample: &MailSample) -> Result<(), JournalError> {
        // Aggregated first: one upsert per row, however many calls the mail made.
        let mut calls: BTreeMap<(String, String, &str), i64> = BTreeMap::new();
        let mut call_buckets: BTreeMap<(String, String, usize), i64> = BTreeMap::new();
        let mut call_sums: BTreeMap<(String, String), i64> = BTreeMap::new();
        for c in &sample.calls {
            let (service, op) = (clean(c.service), clean(c.operation));
            *calls
                .entry((service.clone(), op.clone(), c.result.label()))
                .or_default() += 1;
            let b = bucket_index(&CALL_BUCKETS, c.latency.as_secs_f64());
            *call_buckets
                .entry((service.clone(), op.clone(), b))
                .or_default() += 1;
            *call_sums.entry((service, op)).or_default() += micros(c.latency);
        }
        let outcome = clean(sample.outcome);
        let mail_bucket = bucket_index(&MAIL_BUCKETS, sample.duration.as_secs_f64());
        let tempfail = sample.outcome == "tempfail";
        let success = sample.outcome == "success";
        let at_ms = sample.at_ms;
        self.store.write(false, |tx| {
            let mut bump = tx.prepare_cached(
                "INSERT INTO counters (name, labels, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value",
            )?;
            bump.execute(params![MAILS, format!("outcome={outcome}"), 1])?;
            bump.execute(params![
                MAIL_BUCKET,
                format!("le={}", bound_label(&MAIL_BUCKETS, mail_bucket)),
                1
            ])?;
            bump.execute(params![MAIL_SUM, "", micros(sample.duration)])?;
            for ((service, op, result), n) in &calls {
                let labels = format!("service={service},operation={op},result={result}");
                bump.execute(params![CALLS, labels, n])?;
            }
            for ((service, op, b), n) in &call_buckets {
                let le = bound_label(&CALL_BUCKETS, *b);
                let labels = format!("service={service},operation={op},le={le}");
                bump.execute(params![CALL_BUCKET, labels, n])?;
            }
            for ((service, op), us) in &call_sums {
                let labels = format!("service={service},operation={op}");
                bump.execute(params![CALL_SUM, labels, us])?;
            }
            let mut set = tx.prepare_cached(
                "INSERT INTO meta (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )?;
            set.execute(params![META_LAST_MAIL, at_ms])?;
            if success {
                set.execute(params![META_LAST_SUCCESS, at_ms])?;
            }
            if tempfail {
                tx.prepare_cached(
                    "INSERT INTO meta (name, value) VALUES (?1, 1)
                     ON CONFLICT (name) DO UPDATE SET value = value + 1",
                )?
                .execute([META_CONSECUTIVE_TEMPFAILS])?;
            } else if sample.bus_answered() {
                // Only a mail that reached the bus ends a series of failures.
                set.execute(params![META_CONSECUTIVE_TEMPFAILS, 0])?;
            }
            Ok(())
        })
    }

    /// Everything recorded, in one read transaction (the tables are small: one row
    /// per counter, never per mail).
    pub fn telemetry(&self) -> Result<Telemetry, JournalError> {
        self.store.read(|tx| {
            let mut t = Telemetry::default();
            let rows = tx
                .prepare_cached("SELECT name, labels, value FROM counters")?
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (name, labels, value) in &rows {
                let n = u64::try_from(*value).unwrap_or(0);
                let l = labels_of(labels);
                let get = |k: &str| l.get(k).copied().unwrap_or_default().to_string();
                match name.as_str() {
                    MAILS => *t.mails.entry(get("outcome")).or_default() += n,
                    MAIL_BUCKET => t.mail_duration.add_bucket(&get("le"), n),
                    MAIL_SUM => t.mail_duration.sum_seconds += n as f64 / 1e6,
                    CALLS => {
                        *t.calls
                            .entry((get("service"), get("operation"), get("result")))
                            .or_default() += n;
                    }
                    CALL_BUCKET => t
                        .call_duration
                        .entry((get("service"), get("operation")))
                        .or_insert_with(|| Histogram::new(&CALL_BUCKETS))
                        .add_bucket(&get("le"), n),
                    CALL_SUM => {
                        t.call_duration
                            .entry((get("service"), get("operation")))
                            .or_insert_with(|| Histogram::new(&CALL_BUCKETS))
                            .sum_seconds += n as f64 / 1e6;
                    }
                    _ => {}
                }
            }
            let mut meta = tx.prepare_cached("SELECT value FROM meta WHERE name = ?1")?;
            let mut get = |name: &str| meta.query_row([name], |r| r.get::<_, i64>(0)).optional();
            t.last_mail_ms = get(META_LAST_MAIL)?;
            t.last_success_ms = get(META_LAST_SUCCESS)?;
            t.consecutive_tempfails = get(META_CONSECUTIVE_TEMPFAILS)?
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0);
            t.imap_heartbeat_ms = get(META_IMAP_HEARTBEAT)?;
            Ok(t)
        })
    }

    /// `imap --watch` is alive and connected at `at_ms` (unix milliseconds).
    pub fn heartbeat(&self, at_ms: i64) -> Result<(), JournalError> {
        self.set_meta(META_IMAP_HEARTBEAT, Some(at_ms))
    }

    /// `imap --watch` stopped cleanly: no heartbeat is expected any more.
    pub fn clear_heartbeat(&self) -> Result<(), JournalError> {
        self.set_meta(META_IMAP_HEARTBEAT, None)
    }

    /// Sets (or with `None` removes) one `meta` value.
    pub fn set_meta(&self, name: &str, value: Option<i64>) -> Result<(), JournalError> {
        self.store.write(false, |tx| {
            match value {
                Some(v) => tx
                    .prepare_cached(
                        "INSERT INTO meta (name, value) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    )?
                    .execute(params![name, v])?,
                None => tx
                    .prepare_cached("DELETE FROM meta WHERE name = ?1")?
                    .execute([name])?,
            };
            Ok(())
        })
    }

    /// Proves the journal can be written without changing it: takes the write lock,
    /// writes a row, rolls back. Also creates and removes a file in the lock folder,
    /// which every run needs too.
    pub fn probe_write(&self) -> Result<(), JournalError> {
        let store = &self.store;
        {
            let mut conn = store.lock_conn();
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| db_error(&store.db_path, e))?;
            tx.execute(
                "INSERT INTO meta (name, value) VALUES ('health_probe', 0)
                 ON CONFLICT (name) DO UPDATE SET value = value + 1",
                [],
            )
            .map_err(|e| db_error(&store.db_path, e))?;
            tx.rollback().map_err(|e| db_error(&store.db_path, e))?;
        }
        let probe = store
            .locks_dir
            .join(format!(".health-probe-{}", std::process::id()));
        std::fs::File::create(&probe)?;
        std::fs::remove_file(&probe)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::adapters::telemetry::{CallResult, CallSample};

    fn sample(outcome: &'static str, calls: Vec<CallSample>) -> MailSample {
        MailSample {
            outcome,
            duration: Duration::from_millis(40),
            calls,
            at_ms: 1_700_000_000_000,
        }
    }

    fn call(op: &'static str, result: CallResult, ms: u64) -> CallSample {
        CallSample {
            service: "gn6",
            operation: op,
            result,
            latency: Duration::from_millis(ms),
        }
    }

    #[test]
    fn counters_add_up_and_series_of_tempfails_end_only_on_the_bus_answering() {
        let dir = tempfile::tempdir().unwrap();
        let j = DeliveryJournal::open(dir.path()).unwrap();
        assert_eq!(j.telemetry().unwrap(), Telemetry::default());
        j.record_mail(&sample(
            "success",
            vec![
                call("AltaTiquet", CallResult::Ok, 3),
                call("AltaTiquet", CallResult::Ok, 300),
            ],
        ))
        .unwrap();
        let down = || {
            sample(
                "tempfail",
                vec![call("AltaTiquet", CallResult::Transient, 7)],
            )
        };
        j.record_mail(&down()).unwrap();
        j.record_mail(&down()).unwrap();
        // A skipped mail that never reached the bus says nothing about it, nor does a
        // duplicate answered SUCCESS from the journal alone.
        j.record_mail(&sample("skip", vec![])).unwrap();
        j.record_mail(&sample("success", vec![])).unwrap();
        let t = j.telemetry().unwrap();
        assert_eq!(t.consecutive_tempfails, 2);
        assert_eq!(t.mails["success"], 2);
        assert_eq!(t.mails["tempfail"], 2);
        assert_eq!(t.mails["skip"], 1);
        assert_eq!(t.mail_duration.count(), 5);
        assert!((t.mail_duration.sum_seconds - 0.2).abs() < 1e-9);
        let key = |r: &str| ("gn6".to_string(), "AltaTiquet".to_string(), r.to_string());
        assert_eq!(t.calls[&key("ok")], 2);
        assert_eq!(t.calls[&key("transient")], 2);
        let h = &t.call_duration[&("gn6".to_string(), "AltaTiquet".to_string())];
        assert_eq!(h.count(), 4);
        // 3 ms ≤ 0.005; 7 ms twice ≤ 0.01; 300 ms ≤ 0.5.
        let cumulative = h.cumulative();
        assert_eq!(cumulative[0], (0.005, 1));
        assert_eq!(cumulative[1], (0.01, 3));
        assert_eq!(cumulative[6], (0.5, 4));
        assert_eq!(cumulative.last().unwrap(), &(f64::INFINITY, 4));
        assert_eq!(t.last_success_ms, Some(1_700_000_000_000));
        // A REJECT after GN6 answered ends the series.
        j.record_mail(&sample(
            "reject",
            vec![call("AltaTiquet", CallResult::Ok, 1)],
        ))
        .unwrap();
        assert_eq!(j.telemetry().unwrap().consecutive_tempfails, 0);
        // Pruning every mail keeps the counters.
        j.purge(
            &super::super::Retention::uniform(chrono::TimeDelta::zero()),
            &Default::default(),
            chrono::Utc::now().fixed_offset() + chrono::TimeDelta::days(1),
            false,
        )
        .unwrap();
        assert_eq!(j.telemetry().unwrap().mails["success"], 2);
    }

    #[test]
    fn heartbeat_and_write_probe() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            DeliveryJournal::open_existing(dir.path())
                .unwrap()
                .is_none()
        );
        let j = DeliveryJournal::open(dir.path()).unwrap();
        j.heartbeat(42).unwrap();
        assert_eq!(j.telemetry().unwrap().imap_heartbeat_ms, Some(42));
        j.clear_heartbeat().unwrap();
        assert_eq!(j.telemetry().unwrap().imap_heartbeat_ms, None);
        j.probe_write().unwrap();
        assert_eq!(j.telemetry().unwrap(), Telemetry::default());
        assert!(
            DeliveryJournal::open_existing(dir.path())
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_journal_of_the_previous_schema_is_migrated_and_keeps_its_mails() {
        let dir = tempfile::tempdir().unwrap();
        {
            let j = DeliveryJournal::open(dir.path()).unwrap();
            let now = chrono::Utc::now().fixed_offset();
            let run = j.begin("<old@x>", now).unwrap();
            run.set_status("SUCCESS").unwrap();
            drop(run);
            // Back to what version 2 wrote: no counters table.
            j.store
                .with_conn(|c| c.execute_batch("DROP TABLE counters; PRAGMA user_version = 2;"))
                .unwrap();
        }
        let j = DeliveryJournal::open(dir.path()).unwrap();
        let version: i64 = j
            .store
            .with_conn(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(version, super::super::SCHEMA_VERSION);
        assert_eq!(j.show("<old@x>").unwrap().unwrap().status, "SUCCESS");
        j.record_mail(&sample("success", vec![])).unwrap();
        assert_eq!(j.telemetry().unwrap().mails["success"], 1);
    }
}
