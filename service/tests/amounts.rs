//! Amounts, idempotency and spend records against a real server on loopback: what a
//! careless or hostile caller sends is refused with a stable code and loses nothing.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::time::{Duration, Instant};

use common::http::{Response, send};
use common::server::{ADMIN, Server, start, start_configured};
use serde_json::{Value, json};

fn call(s: &Server, method: &str, path: &str, body: &Value) -> Response {
    send(s.addr, method, path, Some(ADMIN), Some(&body.to_string()))
}

fn ok(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    let r = call(s, method, path, body);
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    r.json()
}

/// The status and error code of a response.
fn refused(r: &Response) -> (u16, String) {
    (r.status, r.json()["error"]["code"].as_str().unwrap_or("").to_string())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The time of every test event: one instant per test process, so two events built a
/// second apart are still the same payload.
fn event_time() -> i64 {
    static TIME: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *TIME.get_or_init(now)
}

fn event(id: &str, credits: Value) -> Value {
    json!({ "id": id, "time": event_time(), "user": "a@x.com", "product": "codex", "model": "m", "credits": credits })
}

fn used(s: &Server, user: &str) -> Value {
    ok(s, "GET", &format!("/v1/users/{}", user.replace('@', "%40")), &Value::Null)["used"]["credits"].clone()
}

fn limit(s: &Server, user: &str, credits: Value) {
    ok(s, "PUT", "/v1/limits", &json!({ "commit": "c1", "limits": [{ "user": user, "credits": credits }] }));
}

/// Resident memory of this process in KiB (the server runs in it).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_huge_exponent_is_refused_at_once_without_memory() {
    let s = start();
    limit(&s, "a@x.com", json!(10));
    // warm the connection path and the allocator first
    ok(&s, "POST", "/v1/check", &json!({ "user": "a@x.com", "product": "p", "model": "m", "credits": 1 }));
    let body =
        |credits: &str| format!(r#"{{"user":"a@x.com","product":"p","model":"m","credits":"{credits}"}}"#);
    let long = "9".repeat(100_000);
    for (credits, timed) in [("1e2147483647", true), ("1e2000000000", true), (long.as_str(), false)] {
        let before = rss_kib();
        // the best of three: the time is the service's, not the loaded machine's scheduling
        let mut took = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let r = send(s.addr, "POST", "/v1/check", Some(ADMIN), Some(&body(credits)));
            took = took.min(started.elapsed());
            assert_eq!(refused(&r), (400, "request/bad-json".to_string()), "{}", r.body);
            assert!(r.json()["error"]["message"].as_str().unwrap().contains("is too large"), "{}", r.body);
        }
        let grew = rss_kib().saturating_sub(before);
        assert!(!timed || took < Duration::from_millis(10), "{took:?}");
        assert!(grew < 10 * 1024, "resident memory grew by {grew} KiB");
    }
    let r = call(&s, "POST", "/v1/usage/events", &event("e", json!("1e2147483647")));
    assert_eq!(refused(&r), (400, "usage/bad-event".to_string()), "{}", r.body);
}

#[test]
fn negative_and_oversized_amounts_are_refused_by_one_rule() {
    let s = start();
    limit(&s, "a@x.com", json!(1000));
    ok(&s, "POST", "/v1/usage/events", &event("e1", json!(10)));
    // the issue's case: -1000 would have left `used` at -990 and let a 500-credit check through
    for (body, path, code) in [
        (event("neg", json!(-1000)), "/v1/usage/events", "credits/negative"),
        (event("big", json!(1_000_001)), "/v1/usage/events", "credits/too-large"),
        (
            json!({ "user": "a@x.com", "product": "p", "model": "m", "credits": "1000000.000001" }),
            "/v1/check",
            "credits/too-large",
        ),
        (
            json!({ "user": "a@x.com", "credits": 2_000_000, "days": 3, "reason": "x" }),
            "/v1/requests",
            "credits/too-large",
        ),
    ] {
        let r = call(&s, "POST", path, &body);
        assert_eq!(refused(&r), (422, code.to_string()), "{path} {body}: {}", r.body);
    }
    assert_eq!(used(&s, "a@x.com"), 10);
    let hold = ok(
        &s,
        "POST",
        "/v1/check",
        &json!({ "user": "a@x.com", "product": "p", "model": "m", "credits": 5 }),
    );
    let id = hold["reservation_id"].as_str().unwrap();
    let r = call(&s, "POST", &format!("/v1/reservations/{id}/commit"), &json!({ "credits": -1 }));
    assert_eq!(refused(&r), (422, "credits/negative".to_string()));
    // the largest amount itself is fine
    ok(&s, "POST", &format!("/v1/reservations/{id}/commit"), &json!({ "credits": 1_000_000 }));
    assert_eq!(used(&s, "a@x.com"), 1_000_010);
}

#[test]
fn an_idempotency_key_reused_for_another_payload_is_a_conflict() {
    let s = start();
    limit(&s, "a@x.com", json!(100));
    ok(&s, "POST", "/v1/usage/events", &event("e1", json!(2)));
    // the same payload again: a duplicate, counted once
    let again = ok(&s, "POST", "/v1/usage/events", &event("e1", json!(2)));
    assert_eq!(again["results"][0]["status"], "duplicate");
    // the same key for other credits, another user, another time: refused, and a batch
    // holding one such event stores none of it
    let mut other_user = event("e1", json!(2));
    other_user["user"] = json!("b@x.com");
    let mut other_time = event("e1", json!(2));
    other_time["time"] = json!(now() - 7200);
    for body in [
        event("e1", json!(50)),
        other_user,
        other_time,
        json!([event("e2", json!(1)), event("e1", json!(3))]),
    ] {
        let r = call(&s, "POST", "/v1/usage/events", &body);
        assert_eq!(refused(&r), (409, "idempotency/conflict".to_string()), "{body}: {}", r.body);
    }
    assert_eq!(used(&s, "a@x.com"), 2);
    // a commit naming an event id already used: refused, and the hold stays open
    let hold = ok(
        &s,
        "POST",
        "/v1/check",
        &json!({ "user": "a@x.com", "product": "codex", "model": "m", "credits": 5 }),
    );
    let id = hold["reservation_id"].as_str().unwrap();
    let r = call(
        &s,
        "POST",
        &format!("/v1/reservations/{id}/commit"),
        &json!({ "credits": 2, "event_id": "e1" }),
    );
    assert_eq!(refused(&r), (409, "idempotency/conflict".to_string()), "{}", r.body);
    let c =
        ok(&s, "POST", &format!("/v1/reservations/{id}/commit"), &json!({ "credits": 4, "event_id": "c1" }));
    assert_eq!((&c["committed"], &c["duplicate_event"]), (&json!(4), &json!(false)));
    assert_eq!(used(&s, "a@x.com"), 6);
}

#[test]
fn rows_stored_before_digests_are_compared_by_their_fields() {
    let (s, db) = start_configured(|dir, _| dir.join("budgit.db"));
    let t = now();
    // a row as the previous schema wrote it (no digest), with its daily aggregate
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(
        "INSERT INTO events (id, ts, email, product, model, micros, project) VALUES ('old', ?1, 'a@x.com', 'codex', 'm', 2000000, '')",
        [t],
    )
    .unwrap();
    let mut same = event("old", json!(2));
    same["time"] = json!(t);
    assert_eq!(ok(&s, "POST", "/v1/usage/events", &same)["results"][0]["status"], "duplicate");
    let mut other = same.clone();
    other["credits"] = json!(3);
    assert_eq!(
        refused(&call(&s, "POST", "/v1/usage/events", &other)),
        (409, "idempotency/conflict".to_string())
    );
}

#[test]
fn a_burst_of_commits_past_their_holds_records_every_credit_spent() {
    let s = start();
    limit(&s, "a@x.com", json!(10));
    let addr = s.addr;
    let threads: Vec<_> = (0..200)
        .map(|_| {
            std::thread::spawn(move || {
                let check = r#"{"user":"a@x.com","product":"codex","model":"m","credits":0.5}"#;
                let d = send(addr, "POST", "/v1/check", Some(ADMIN), Some(check)).json();
                let id = d["reservation_id"].as_str()?;
                let r = send(
                    addr,
                    "POST",
                    &format!("/v1/reservations/{id}/commit"),
                    Some(ADMIN),
                    Some(r#"{"credits":1.0}"#),
                );
                assert_eq!(r.status, 200, "{}", r.body);
                Some(r.json())
            })
        })
        .collect();
    let commits: Vec<Value> = threads.into_iter().filter_map(|t| t.join().unwrap()).collect();
    let committed: f64 = commits.iter().map(|c| c["committed"].as_f64().unwrap()).sum();
    assert!(commits.len() >= 10, "{} reservations", commits.len());
    assert_eq!(used(&s, "a@x.com").as_f64(), Some(committed));
    assert!(commits.iter().all(|c| c["over_reservation"] == true));
    // past the limit now: the next spend is stopped
    let d = ok(
        &s,
        "POST",
        "/v1/check",
        &json!({ "user": "a@x.com", "product": "codex", "model": "m", "credits": 0.5 }),
    );
    assert_eq!(d["allowed"], false);
}

#[test]
fn a_commit_after_the_hold_lapsed_is_still_recorded() {
    let s = start();
    limit(&s, "a@x.com", json!(10));
    let hold = ok(
        &s,
        "POST",
        "/v1/check",
        &json!({ "user": "a@x.com", "product": "codex", "model": "m", "credits": 3, "ttl_seconds": 1 }),
    );
    let id = hold["reservation_id"].as_str().unwrap().to_string();
    // the service's clock is the wall clock: wait out the one-second hold
    let lapse =
        chrono::DateTime::parse_from_rfc3339(hold["expires_at"].as_str().unwrap()).unwrap().timestamp();
    while now() <= lapse {
        std::thread::sleep(Duration::from_millis(50));
    }
    let d = ok(
        &s,
        "POST",
        "/v1/check",
        &json!({ "user": "a@x.com", "product": "codex", "model": "m", "credits": 10 }),
    );
    assert_eq!(d["allowed"], true, "the lapsed hold gave its credits back");
    ok(
        &s,
        "POST",
        &format!("/v1/reservations/{}/release", d["reservation_id"].as_str().unwrap()),
        &Value::Null,
    );
    let c = ok(&s, "POST", &format!("/v1/reservations/{id}/commit"), &json!({ "credits": 2.5 }));
    assert_eq!(
        (&c["committed"], &c["reserved"], &c["over_reservation"], &c["late"]),
        (&json!(2.5), &json!(3), &json!(true), &json!(true))
    );
    assert_eq!(used(&s, "a@x.com"), 2.5);
    let alerts = ok(&s, "GET", "/v1/alerts", &Value::Null);
    assert_eq!(alerts["data"][0]["kind"], "over_reservation");
    let audit = ok(&s, "GET", "/v1/audit?action=usage.over_reservation", &Value::Null);
    assert_eq!(audit["data"][0]["new"]["late"], true);
    // once recorded, the hold is gone for good
    let again = call(&s, "POST", &format!("/v1/reservations/{id}/commit"), &json!({ "credits": 2.5 }));
    assert_eq!(refused(&again), (404, "reservation/unknown".to_string()));
}

#[test]
fn bodies_with_nul_or_duplicate_keys_are_refused_on_every_endpoint() {
    let s = start();
    limit(&s, "a@x.com", json!(10));
    let cases = [
        (
            "POST",
            "/v1/check",
            r#"{"user":"a@x.com","product":"p","model":"m","credits":1,"credits":1000}"#,
            "request/duplicate-key",
        ),
        (
            "POST",
            "/v1/usage/events",
            r#"[{"id":"x","id":"y","time":0,"user":"a@x.com","product":"p","model":"m","credits":1}]"#,
            "request/duplicate-key",
        ),
        (
            "PUT",
            "/v1/limits",
            r#"{"commit":"c","limits":[{"user":"a@x.com","credits":1,"products":{"p":1,"p":2}}]}"#,
            "request/duplicate-key",
        ),
        (
            "POST",
            "/v1/requests",
            r#"{"user":"a@x.com","credits":1,"days":1,"reason":"a\u0000b"}"#,
            "request/nul",
        ),
        (
            "POST",
            "/v1/check",
            r#"{"user":"a@x.com","product":"p\u0000","model":"m","credits":1}"#,
            "request/nul",
        ),
        ("POST", "/v1/leases/l", r#"{"holder":"h\u0000","ttl_seconds":5}"#, "request/nul"),
        (
            "POST",
            "/v1/usage/events",
            r#"{"id":"x","time":0,"user":"a@x.com","product":"p","model":"m","credits":1,"context":{"k\u0000":1}}"#,
            "request/nul",
        ),
    ];
    for (method, path, body, code) in cases {
        let r = send(s.addr, method, path, Some(ADMIN), Some(body));
        assert_eq!(refused(&r), (400, code.to_string()), "{method} {path} {body}: {}", r.body);
    }
    assert_eq!(ok(&s, "GET", "/v1/requests", &Value::Null)["data"], json!([]));
    // an object of 300,000 distinct keys is walked in linear time, then refused as usual
    let keys: Vec<String> = (0..300_000).map(|i| format!("\"k{i}\":0")).collect();
    let wide = format!(
        r#"{{"user":"a@x.com","product":"p","model":"m","credits":1,"context":{{{}}}}}"#,
        keys.join(",")
    );
    let started = Instant::now();
    let r = send(s.addr, "POST", "/v1/check", Some(ADMIN), Some(&wide));
    assert_eq!(refused(&r), (400, "request/bad-json".to_string()), "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn event_times_must_lie_in_the_documented_window() {
    let s = start();
    for time in [json!(0), json!(now() + 2 * 86_400), json!("2019-12-31T23:59:59Z"), json!(1_577_836_799)] {
        let mut e = event("t", json!(1));
        e["time"] = time.clone();
        let r = call(&s, "POST", "/v1/usage/events", &e);
        assert_eq!(refused(&r), (422, "usage/time-out-of-window".to_string()), "{time}: {}", r.body);
    }
    // a backfill from the first day of the window and an event from a clock a little ahead are fine
    for time in [1_577_836_800, now() - 40 * 86_400, now() + 3600] {
        let mut e = event(&format!("t{time}"), json!(1));
        e["time"] = json!(time);
        ok(&s, "POST", "/v1/usage/events", &e);
    }
}

#[test]
fn open_holds_and_pending_requests_are_bounded_per_user() {
    let s = start();
    limit(&s, "a@x.com", json!(100_000));
    limit(&s, "b@x.com", json!(100_000));
    let check = |user: &str| {
        send(
            s.addr,
            "POST",
            "/v1/check",
            Some(ADMIN),
            Some(&format!(r#"{{"user":"{user}","product":"p","model":"m","credits":1}}"#)),
        )
    };
    for _ in 0..1000 {
        assert_eq!(check("a@x.com").status, 200);
    }
    assert_eq!(refused(&check("a@x.com")), (429, "check/too-many-holds".to_string()));
    assert_eq!(check("b@x.com").json()["allowed"], true, "another user is not affected");
    let ask = json!({ "user": "a@x.com", "credits": 5, "days": 3, "reason": "a deadline" });
    for _ in 0..20 {
        ok(&s, "POST", "/v1/requests", &ask);
    }
    assert_eq!(
        refused(&call(&s, "POST", "/v1/requests", &ask)),
        (429, "requests/too-many-pending".to_string())
    );
    ok(&s, "POST", "/v1/requests/1/decline", &json!({ "reason": "no" }));
    ok(&s, "POST", "/v1/requests", &ask);
}

#[test]
fn a_hold_of_most_of_a_team_pool_lapses_within_a_minute() {
    let s = start();
    ok(
        &s,
        "PUT",
        "/v1/limits",
        &json!({ "commit": "c1", "limits": [{ "user": "a@x.com", "credits": 1000, "group": "eng" }],
                 "pools": [{ "group": "eng", "credits": 100 }] }),
    );
    let expiry = |credits: f64| {
        let d = ok(
            &s,
            "POST",
            "/v1/check",
            &json!({ "user": "a@x.com", "product": "p", "model": "m", "credits": credits, "ttl_seconds": 3600 }),
        );
        let at = chrono::DateTime::parse_from_rfc3339(d["expires_at"].as_str().unwrap()).unwrap().timestamp();
        ok(
            &s,
            "POST",
            &format!("/v1/reservations/{}/release", d["reservation_id"].as_str().unwrap()),
            &Value::Null,
        );
        at - now()
    };
    assert!(expiry(25.0) > 3000, "a quarter of the pool keeps its asked life");
    assert!(expiry(25.5) <= 60, "more than a quarter lives at most a minute");
}

#[test]
fn api_answers_are_never_cached() {
    let s = start();
    for path in ["/v1/users", "/healthz", "/v1/nothing"] {
        let r = send(s.addr, "GET", path, Some(ADMIN), None);
        assert_eq!(r.header("cache-control"), Some("no-store"), "{path}");
    }
}
