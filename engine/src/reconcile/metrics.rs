//! The reconciler's Prometheus metrics: counters and gauges updated after each run, rendered as text.
//!
//! It owns the names and the text exposition format; serving them over HTTP
//! belongs to the daemon in the CLI.

use std::fmt::Write;
use std::time::Duration;

use super::{ReconcileError, Run};
use crate::reconcile::Drift;

/// Upper bounds of the run-duration histogram, in seconds.
const BUCKETS: [f64; 9] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];

/// Metrics across the runs of one daemon.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    runs_ok: u64,
    runs_failed: u64,
    changes: u64,
    apply_failures: u64,
    drift_unmanaged: u64,
    drift_expected: u64,
    duration_counts: [u64; BUCKETS.len()],
    duration_sum: f64,
    duration_count: u64,
    last_commit: Option<String>,
    last_success_unix: Option<i64>,
    alerting: bool,
}

impl Metrics {
    /// Records a run that took `took` and ended at `at_unix`.
    pub fn observe(&mut self, outcome: &Result<Run, ReconcileError>, took: Duration, at_unix: i64) {
        let secs = took.as_secs_f64();
        self.duration_sum += secs;
        self.duration_count += 1;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.duration_counts[i] += 1;
            }
        }
        match outcome {
            Ok(run) => {
                let r = &run.report;
                self.runs_ok += 1;
                self.changes += r.applied.len() as u64;
                self.apply_failures += r.failed.len() as u64;
                self.drift_unmanaged = r.drift.iter().filter(|d| d.kind == Drift::Unmanaged).count() as u64;
                self.drift_expected = r.drift.iter().filter(|d| d.kind == Drift::Expected).count() as u64;
                self.alerting = run.action.alert;
                if !r.dry_run && !r.incomplete() {
                    self.last_commit = Some(r.commit.clone());
                    self.last_success_unix = Some(at_unix);
                }
            }
            Err(e) => {
                self.runs_failed += 1;
                self.alerting = e.needs_new_commit();
            }
        }
    }

    /// Seconds since the last complete run, if there was one.
    pub fn last_success_unix(&self) -> Option<i64> {
        self.last_success_unix
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, lines: &[(String, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let mut hist = Vec::new();
        for (i, bound) in BUCKETS.iter().enumerate() {
            hist.push((format!("_bucket{{le=\"{bound}\"}}"), self.duration_counts[i].to_string()));
        }
        hist.push(("_bucket{le=\"+Inf\"}".to_string(), self.duration_count.to_string()));
        hist.push(("_sum".to_string(), format!("{}", self.duration_sum)));
        hist.push(("_count".to_string(), self.duration_count.to_string()));
        metric("budgit_reconcile_duration_seconds", "histogram", "Time a reconcile run took.", &hist);
        metric(
            "budgit_reconcile_runs_total",
            "counter",
            "Reconcile runs by outcome.",
            &[
                ("{outcome=\"ok\"}".to_string(), self.runs_ok.to_string()),
                ("{outcome=\"error\"}".to_string(), self.runs_failed.to_string()),
            ],
        );
        metric(
            "budgit_reconcile_changes_total",
            "counter",
            "Limit changes applied to the workspace.",
            &[(String::new(), self.changes.to_string())],
        );
        metric(
            "budgit_apply_failures_total",
            "counter",
            "Limit changes that failed to apply.",
            &[(String::new(), self.apply_failures.to_string())],
        );
        metric(
            "budgit_drift_items",
            "gauge",
            "Users whose live limit drifted, at the last run.",
            &[
                ("{kind=\"unmanaged\"}".to_string(), self.drift_unmanaged.to_string()),
                ("{kind=\"expected\"}".to_string(), self.drift_expected.to_string()),
            ],
        );
        metric(
            "budgit_reconcile_alerting",
            "gauge",
            "1 when the last run needs a person (refused ref, blast radius).",
            &[(String::new(), u8::from(self.alerting).to_string())],
        );
        if let Some(commit) = &self.last_commit {
            let safe: String = commit.chars().filter(char::is_ascii_alphanumeric).collect();
            metric(
                "budgit_reconcile_last_applied_commit_info",
                "gauge",
                "The commit of the last complete run.",
                &[(format!("{{commit=\"{safe}\"}}"), "1".to_string())],
            );
        }
        if let Some(at) = self.last_success_unix {
            metric(
                "budgit_reconcile_last_success_timestamp_seconds",
                "gauge",
                "When the last complete run ended.",
                &[(String::new(), at.to_string())],
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{Action, RunReport};

    #[test]
    fn runs_are_counted_and_rendered() {
        let mut m = Metrics::default();
        let report = RunReport { commit: "abc123".into(), ..RunReport::default() };
        let run = Run { action: Action::requeue(Duration::from_secs(60)), report };
        m.observe(&Ok(run), Duration::from_millis(700), 1_700_000_000);
        m.observe(&Err(ReconcileError::EmptyDesired { commit: "abc".into() }), Duration::from_secs(2), 0);
        let text = m.render();
        assert!(text.contains("budgit_reconcile_duration_seconds_bucket{le=\"0.5\"} 0"), "{text}");
        assert!(text.contains("budgit_reconcile_duration_seconds_bucket{le=\"1\"} 1"), "{text}");
        assert!(text.contains("budgit_reconcile_duration_seconds_count 2"), "{text}");
        assert!(text.contains("budgit_reconcile_runs_total{outcome=\"error\"} 1"), "{text}");
        assert!(text.contains("budgit_reconcile_last_applied_commit_info{commit=\"abc123\"} 1"), "{text}");
        assert!(text.contains("budgit_reconcile_alerting 1"), "{text}");
        assert!(text.contains("budgit_drift_items{kind=\"unmanaged\"} 0"), "{text}");
    }
}
