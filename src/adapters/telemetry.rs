//! Telemetry of one run, in memory (issue 18): what each bus call did and how long it
//! took, recorded by the HTTP transport at the one place every SOAP call goes through
//! ([`crate::adapters::soap::envelope::call`]) and by the identity REST adapter. The
//! CLI hands the samples of a mail, with its outcome and duration, to the journal
//! ([`crate::adapters::journal::telemetry`]) in one write at the end of the mail.
//!
//! Nothing here reads a clock: the adapters measure, this only holds the numbers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::ports::PortError;

/// Upper bounds (seconds) of the bus-call latency histogram
/// (`mailtoticket_soap_call_duration_seconds`); `+Inf` is implicit.
pub const CALL_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds (seconds) of the per-mail time histogram
/// (`mailtoticket_mail_duration_seconds`); `+Inf` is implicit.
pub const MAIL_BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// How a bus call ended, as the `result` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallResult {
    /// An answer the adapter could read (a GN6 `codiRetorn` ≠ 1 included: the bus
    /// worked, GN6 said no).
    Ok,
    /// A SOAP Fault.
    Fault,
    /// Could not reach the service, timeout, 502/503/504...: retried later.
    Transient,
    /// Anything else: an unreadable answer, a refused request.
    Permanent,
}

impl CallResult {
    pub fn of<T>(result: &Result<T, PortError>) -> CallResult {
        match result {
            Ok(_) | Err(PortError::Service { .. }) => CallResult::Ok,
            Err(PortError::Fault { .. }) => CallResult::Fault,
            Err(PortError::Transient(_)) => CallResult::Transient,
            Err(PortError::Permanent(_)) => CallResult::Permanent,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CallResult::Ok => "ok",
            CallResult::Fault => "fault",
            CallResult::Transient => "transient",
            CallResult::Permanent => "permanent",
        }
    }

    pub fn parse(label: &str) -> Option<CallResult> {
        [
            CallResult::Ok,
            CallResult::Fault,
            CallResult::Transient,
            CallResult::Permanent,
        ]
        .into_iter()
        .find(|r| r.label() == label)
    }
}

/// One bus call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSample {
    /// `gn6`, `persones` or `identitat_digital`.
    pub service: &'static str,
    /// The SOAP operation (`AltaTiquet`...) or the REST request kind (`token`, `persona`...).
    pub operation: &'static str,
    pub result: CallResult,
    pub latency: Duration,
}

/// The calls of one run, shared by the clones of a transport. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CallRecorder {
    calls: Arc<Mutex<Vec<CallSample>>>,
}

impl CallRecorder {
    pub fn record(&self, sample: CallSample) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        // A runaway run cannot grow this without bound (each mail has a call budget).
        if calls.len() < 100_000 {
            calls.push(sample);
        }
    }

    /// The calls recorded since the last take (the recorder is left empty).
    pub fn take(&self) -> Vec<CallSample> {
        std::mem::take(&mut *self.calls.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Index of the histogram bucket `value` (seconds) falls in: the first bound ≥ value,
/// or `bounds.len()` for `+Inf`.
pub fn bucket_index(bounds: &[f64], value: f64) -> usize {
    bounds
        .iter()
        .position(|b| value <= *b)
        .unwrap_or(bounds.len())
}

/// What the end of one mail adds to the journal's telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSample {
    /// The outcome as the `outcome` label says it (`success`, `tempfail`...).
    pub outcome: &'static str,
    /// From reading the mail to the outcome.
    pub duration: Duration,
    pub calls: Vec<CallSample>,
    /// Unix time (ms) the mail ended.
    pub at_ms: i64,
}

impl MailSample {
    /// Whether this mail says anything about the bus being up: one of its calls got
    /// an answer. A mail that never reached the bus (an automatic mail skipped, a
    /// duplicate, a loop) neither counts as a temporary failure nor ends a series.
    pub fn bus_answered(&self) -> bool {
        self.calls.iter().any(|c| c.result == CallResult::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_take_the_first_bound_at_or_above() {
        assert_eq!(bucket_index(&CALL_BUCKETS, 0.0), 0);
        assert_eq!(bucket_index(&CALL_BUCKETS, 0.005), 0);
        assert_eq!(bucket_index(&CALL_BUCKETS, 0.0051), 1);
        assert_eq!(bucket_index(&CALL_BUCKETS, 30.0), 11);
        assert_eq!(bucket_index(&CALL_BUCKETS, 31.0), 12);
    }

    #[test]
    fn results_of_port_errors() {
        assert_eq!(CallResult::of::<()>(&Ok(())), CallResult::Ok);
        let service = PortError::Service {
            code: "0".into(),
            description: "no".into(),
        };
        assert_eq!(CallResult::of::<()>(&Err(service)), CallResult::Ok);
        let t = PortError::Transient("x".into());
        assert_eq!(CallResult::of::<()>(&Err(t)), CallResult::Transient);
        for r in ["ok", "fault", "transient", "permanent"] {
            assert_eq!(CallResult::parse(r).map(CallResult::label), Some(r));
        }
        let recorder = CallRecorder::default();
        recorder.clone().record(CallSample {
            service: "gn6",
            operation: "AltaTiquet",
            result: CallResult::Ok,
            latency: Duration::from_millis(3),
        });
        assert_eq!(recorder.take().len(), 1);
        assert!(recorder.take().is_empty());
    }
}
