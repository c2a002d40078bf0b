//! Prometheus metrics in the text exposition format, written by hand.
//!
//! Counters are atomics; the per-route request counts and latency histograms
//! sit behind one mutex taken once per request, after the response is built.
//! Recording a request allocates only the first time a route is seen: the
//! map is looked up by the borrowed route, and the few (method, status) pairs
//! of a route are a short list scanned in place.

use std::collections::HashMap;
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

/// What one route has answered: counts by method and status, and its latency histogram.
#[derive(Debug, Default, Clone)]
struct Route {
    counts: Vec<(String, u16, u64)>,
    latency: Histogram,
}

/// Every metric the service exports.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<HashMap<String, Route>>,
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
        let Ok(mut routes) = self.routes.lock() else { return };
        let r = match routes.get_mut(route) {
            Some(r) => r,
            None => routes.entry(route.to_string()).or_default(),
        };
        match r.counts.iter_mut().find(|(m, s, _)| *s == status && m == method) {
            Some((_, _, n)) => *n += 1,
            None => r.counts.push((method.to_string(), status, 1)),
        }
        let h = &mut r.latency;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, open_reservations: usize) -> String {
        let mut out = String::new();
        // a copy, sorted, so the output is stable and the lock is short
        let mut routes: Vec<(String, Route)> = match self.routes.lock() {
            Ok(r) => r.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => Vec::new(),
        };
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        let mut requests: Vec<(&str, &str, u16, u64)> = routes
            .iter()
            .flat_map(|(route, r)| r.counts.iter().map(move |(m, s, n)| (m.as_str(), route.as_str(), *s, *n)))
            .collect();
        requests.sort_unstable();
        out.push_str("# HELP budgit_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE budgit_http_requests_total counter\n");
        for (method, route, status, n) in requests {
            let _ = writeln!(
                out,
                "budgit_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str("# HELP budgit_http_request_duration_seconds Time to answer a request, by route.\n");
        out.push_str("# TYPE budgit_http_request_duration_seconds histogram\n");
        for (route, r) in &routes {
            let h = &r.latency;
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
            let _ = writeln!(out, "budgit_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", h.sum);
            let _ =
                writeln!(out, "budgit_http_request_duration_seconds_count{{route=\"{route}\"}} {}", h.count);
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
