//! The console's read views' fixture: a server with a small directory, applied limits
//! and usage whose sums, standings and forecasts the tests compute by hand. Every read
//! fixes `now` at [`NOW`], so the period and the forecasts do not depend on the clock.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::http::{Response, send};
use super::server::{ADMIN, Server, start};

/// 9.5 days into November 2026 (UTC): forecasts scale usage by 30 / 9.5 = 60 / 19.
pub const NOW: &str = "2026-11-10T12:00:00Z";

/// `day` November 2026 at `hour`:00 UTC.
pub fn at(day: u32, hour: u32) -> i64 {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap().timestamp()
}

/// A usage event as `POST /v1/usage/events` takes it.
pub fn event(id: &str, ts: i64, user: &str, product: &str, model: &str, credits: &str) -> Value {
    json!({ "id": id, "time": ts, "user": user, "product": product, "model": model, "credits": credits })
}

/// a, b: 100 each in group `eng` (pool 150); c: 50 with a codex cap of 10, no group;
/// d: no limit; e: 20, no usage, no group; f: 5, used up, no group. a, b in CC-1, c in
/// CC-2, d without one, e and f not in the directory.
pub fn start_seeded() -> Seeded {
    let server = start();
    let s = Seeded { addr: server.addr, _server: server };
    let csv = "email,cost_center\na@x.com,CC-1\nb@x.com,CC-1\nc@x.com,CC-2\nd@x.com,\n";
    s.call("POST", "/v1/users/import?format=csv", csv);
    let limits = json!({
        "commit": "c1",
        "limits": [
            { "user": "a@x.com", "credits": 100, "group": "eng" },
            { "user": "b@x.com", "credits": 100, "group": "eng" },
            { "user": "c@x.com", "credits": 50, "products": { "codex": 10 } },
            { "user": "e@x.com", "credits": 20 },
            { "user": "f@x.com", "credits": 5 },
        ],
        "pools": [{ "group": "eng", "credits": 150 }],
    });
    s.call("PUT", "/v1/limits", &limits.to_string());
    let events = json!([
        event("e1", at(1, 10), "a@x.com", "codex", "gpt-5", "30"),
        event("e2", at(2, 9), "a@x.com", "chatgpt", "gpt-5", "10.5"),
        event("e3", at(2, 15), "b@x.com", "codex", "gpt-5-codex", "85"),
        event("e4", at(3, 11), "c@x.com", "codex", "gpt-5-codex", "9"),
        event("e5", at(3, 16), "d@x.com", "chatgpt", "gpt-5", "2.25"),
        event("e6", at(4, 8), "f@x.com", "chatgpt", "o3", "5"),
        // October: another period, never counted
        event(
            "e0",
            Utc.with_ymd_and_hms(2026, 10, 31, 23, 59, 59).unwrap().timestamp(),
            "a@x.com",
            "codex",
            "gpt-5",
            "1000"
        ),
    ]);
    s.call("POST", "/v1/usage/events", &events.to_string());
    s
}

/// The seeded server, with its reads at [`NOW`].
pub struct Seeded {
    pub addr: SocketAddr,
    _server: Server,
}

impl Seeded {
    /// `GET path` with `now` fixed at [`NOW`], as `token`.
    pub fn get_as(&self, token: &str, path: &str) -> Response {
        let sep = if path.contains('?') { '&' } else { '?' };
        send(self.addr, "GET", &format!("{path}{sep}now={NOW}"), Some(token), None)
    }

    /// `GET path` at [`NOW`] as the admin, which must answer 200 with JSON.
    pub fn get(&self, path: &str) -> Value {
        let r = self.get_as(ADMIN, path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }

    /// `GET path` at [`NOW`] as the admin, which must answer 200 with CSV.
    pub fn csv(&self, path: &str) -> String {
        let r = self.get_as(ADMIN, path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
        r.body
    }

    /// A write as the admin, which must succeed with JSON.
    pub fn call(&self, method: &str, path: &str, body: &str) -> Value {
        let r = send(self.addr, method, path, Some(ADMIN), Some(body));
        assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
        r.json()
    }
}
