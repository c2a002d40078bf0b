//! Prometheus metrics in the text exposition format, written by hand.
//!
//! Counters are atomics; the per-route request counts and latency histograms
//! sit behind one mutex taken once per request, after the response is built.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Every metric the service exports.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Checks answered allowed.
    pub checks_allowed: AtomicU64,
    /// Checks answered denied.
    pub checks_denied: AtomicU64,
    /// Checks allowed past a limit under soft enforcement.
    pub checks_soft_over: AtomicU64,
    /// Usage events stored.
    pub events_ingested: AtomicU64,
    /// Usage events ignored as retries of a known id.
    pub events_duplicate: AtomicU64,
    /// Reservations committed.
    pub reservations_committed: AtomicU64,
    /// Reservations released.
    pub reservations_released: AtomicU64,
    /// Limits changed through the API.
    pub limits_changed: AtomicU64,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_string()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, open_reservations: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP budgit_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE budgit_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((method, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "budgit_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP budgit_http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE budgit_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                let route = escape(route);
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "budgit_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "budgit_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ =
                    writeln!(out, "budgit_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
                let _ = writeln!(
                    out,
                    "budgit_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        let counters: [(&str, &str, &AtomicU64, &str); 8] = [
            (
                "budgit_checks_total",
                "Spend checks by decision.",
                &self.checks_allowed,
                "decision=\"allowed\"",
            ),
            ("budgit_checks_total", "", &self.checks_denied, "decision=\"denied\""),
            ("budgit_checks_total", "", &self.checks_soft_over, "decision=\"allowed_over_limit\""),
            (
                "budgit_usage_events_total",
                "Usage events received, by outcome.",
                &self.events_ingested,
                "outcome=\"stored\"",
            ),
            ("budgit_usage_events_total", "", &self.events_duplicate, "outcome=\"duplicate\""),
            (
                "budgit_reservations_total",
                "Reservations closed, by outcome.",
                &self.reservations_committed,
                "outcome=\"committed\"",
            ),
            ("budgit_reservations_total", "", &self.reservations_released, "outcome=\"released\""),
            ("budgit_limits_changed_total", "Applied limits and pools changed.", &self.limits_changed, ""),
        ];
        for (name, help, value, labels) in counters {
            if !help.is_empty() {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            }
            let v = value.load(Ordering::Relaxed);
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
        out.push_str(
            "# HELP budgit_open_reservations Reservations held and not yet committed or released.\n",
        );
        out.push_str("# TYPE budgit_open_reservations gauge\n");
        let _ = writeln!(out, "budgit_open_reservations {open_reservations}");
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe("GET", "/v1/users", 200, 0.0003);
        Metrics::add(&m.checks_denied, 2);
        let text = m.render(1);
        assert!(
            text.contains("budgit_http_requests_total{method=\"GET\",route=\"/v1/users\",status=\"200\"} 1")
        );
        assert!(
            text.contains(
                "budgit_http_request_duration_seconds_bucket{route=\"/v1/users\",le=\"0.00025\"} 0"
            )
        );
        assert!(
            text.contains("budgit_http_request_duration_seconds_bucket{route=\"/v1/users\",le=\"0.0005\"} 1")
        );
        assert!(text.contains("budgit_checks_total{decision=\"denied\"} 2"));
        assert!(text.contains("budgit_open_reservations 1"));
    }
}
