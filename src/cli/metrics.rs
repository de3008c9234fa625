//! `mailtoticket metrics` (issue 18): the Prometheus text exposition format (0.0.4),
//! for node_exporter's textfile collector or the watch-mode `/metrics`. Counters and
//! histograms come from the journal (they survive restarts and the one-process-per-
//! mail runs); the gauges from the quarantine folder and the journal's `meta` values.
//! The format is written by `prometheus-client`'s encoder, fed by a [`Collector`]
//! over one snapshot.

use chrono::Utc;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::health::{QuarantineState, journal_telemetry, quarantine_state};
use crate::adapters::journal::telemetry::{Histogram, Telemetry};
use crate::config::Config;
use crate::ports::error_chain;

/// Every outcome label, so that each series exists from the first scrape on.
pub const OUTCOMES: [&str; 6] = ["success", "skip", "reject", "error", "tempfail", "unknown"];

/// One snapshot of everything exposed.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub telemetry: Telemetry,
    pub quarantine: QuarantineState,
}

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn encode_histogram(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    h: &Histogram,
) -> Result<(), std::fmt::Error> {
    encoder.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count(), &h.per_bucket(), None)
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = &self.telemetry;

        // Counters: `encode_counter` adds the `_total` suffix.
        let mut m = encoder.encode_descriptor(
            "mailtoticket_mails",
            "Mails handled, by outcome.",
            None,
            MetricType::Counter,
        )?;
        for outcome in OUTCOMES {
            let n = t.mails.get(outcome).copied().unwrap_or(0);
            let l = labels(&[("outcome", outcome)]);
            ConstCounter::new(n).encode(m.encode_family(&l)?)?;
        }

        let mut m = encoder.encode_descriptor(
            "mailtoticket_soap_calls",
            "Bus calls, by service, operation and result (ok, fault, transient, permanent).",
            None,
            MetricType::Counter,
        )?;
        for ((service, operation, result), n) in &t.calls {
            let l = labels(&[
                ("service", service),
                ("operation", operation),
                ("result", result),
            ]);
            ConstCounter::new(*n).encode(m.encode_family(&l)?)?;
        }

        let mut m = encoder.encode_descriptor(
            "mailtoticket_soap_call_duration_seconds",
            "Latency of the bus calls.",
            None,
            MetricType::Histogram,
        )?;
        for ((service, operation), h) in &t.call_duration {
            let l = labels(&[("service", service), ("operation", operation)]);
            encode_histogram(&mut m.encode_family(&l)?, h)?;
        }

        let mut m = encoder.encode_descriptor(
            "mailtoticket_mail_duration_seconds",
            "Time from reading a mail to its outcome.",
            None,
            MetricType::Histogram,
        )?;
        encode_histogram(&mut m, &t.mail_duration)?;

        // Gauges.
        let mut gauge = |name: &str, help: &str, value: i64| -> Result<(), std::fmt::Error> {
            let m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(m)
        };
        let secs = |ms: i64| ms / 1000;
        gauge(
            "mailtoticket_quarantined_mails",
            "Mails in the quarantine folder.",
            i64::try_from(self.quarantine.mails).unwrap_or(i64::MAX),
        )?;
        gauge(
            "mailtoticket_quarantine_oldest_age_seconds",
            "Age of the oldest quarantined mail (0 when empty).",
            self.quarantine
                .oldest_age_s
                .map_or(0, |a| i64::try_from(a).unwrap_or(i64::MAX)),
        )?;
        if let Some(ms) = t.last_success_ms {
            gauge(
                "mailtoticket_last_delivery_timestamp_seconds",
                "Unix time of the last SUCCESS.",
                secs(ms),
            )?;
        }
        gauge(
            "mailtoticket_consecutive_tempfails",
            "Mails in a row that ended TEMPFAIL (a mail the bus answered ends the series).",
            i64::try_from(t.consecutive_tempfails).unwrap_or(i64::MAX),
        )?;
        if let Some(ms) = t.imap_heartbeat_ms {
            gauge(
                "mailtoticket_imap_heartbeat_timestamp_seconds",
                "Unix time of the last heartbeat of imap --watch.",
                secs(ms),
            )?;
        }
        Ok(())
    }
}

/// Reads the snapshot of a configuration's state (creates nothing).
pub fn snapshot(config: &Config) -> Result<Snapshot, String> {
    let quarantine = quarantine_state(&config.quarantine_dir(), Utc::now())
        .map_err(|e| format!("quarantine_dir {}: {e}", config.quarantine_dir().display()))?;
    let telemetry = match journal_telemetry(config) {
        Ok(Some((_, t))) => t,
        Ok(None) => Telemetry::default(),
        Err(e) => return Err(error_chain(&e)),
    };
    Ok(Snapshot {
        telemetry,
        quarantine,
    })
}

/// The exposition text of a snapshot.
pub fn render(snapshot: Snapshot) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(snapshot));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

/// The exposition text of a configuration's state.
pub fn text(config: &Config) -> Result<String, String> {
    render(snapshot(config)?).map_err(|e| format!("cannot encode the metrics: {e}"))
}

/// `mailtoticket metrics`: prints the exposition text; 1 when the state cannot be read.
pub fn run(config: &Config) -> u8 {
    match text(config) {
        Ok(t) => {
            print!("{t}");
            0
        }
        Err(e) => {
            eprintln!("mailtoticket: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_outcome_and_cumulative_buckets() {
        let mut telemetry = Telemetry::default();
        telemetry.mails.insert("success".into(), 3);
        telemetry.mail_duration.buckets[2] = 3;
        telemetry.mail_duration.sum_seconds = 0.12;
        telemetry.last_success_ms = Some(1_700_000_000_500);
        let text = render(Snapshot {
            telemetry,
            quarantine: QuarantineState {
                mails: 2,
                oldest_age_s: Some(60),
            },
        })
        .unwrap();
        assert!(
            text.contains("mailtoticket_mails_total{outcome=\"success\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("mailtoticket_mails_total{outcome=\"unknown\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("mailtoticket_mail_duration_seconds_bucket{le=\"0.05\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("mailtoticket_mail_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("mailtoticket_mail_duration_seconds_count 3\n"),
            "{text}"
        );
        assert!(
            text.contains("mailtoticket_quarantined_mails 2\n"),
            "{text}"
        );
        assert!(
            text.contains("mailtoticket_last_delivery_timestamp_seconds 1700000000\n"),
            "{text}"
        );
        assert!(!text.contains("heartbeat"), "{text}");
    }
}
