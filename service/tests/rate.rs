//! The rate cap and runaway spend against a real server on loopback: `/v1/check`
//! refuses what would take the last sliding hour over `per_hour` (by the events' own
//! times), concurrent checks never pass it together, the window survives a restart,
//! and a burst far above a person's baseline is listed and alerted once.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::time::{Duration, Instant};

use common::http::{Response, send};
use common::server::{ADMIN, Server, start};
use serde_json::{Value, json};

fn call(s: &Server, method: &str, path: &str, body: &Value) -> Response {
    let body = (!body.is_null()).then(|| body.to_string());
    send(s.addr, method, path, Some(ADMIN), body.as_deref())
}

fn ok(s: &Server, method: &str, path: &str, body: &Value) -> Value {
    let r = call(s, method, path, body);
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    r.json()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Sets `user`'s limit: 2000 credits a period, at most `per_hour` an hour.
fn rate_cap(s: &Server, user: &str, per_hour: Value) {
    let body = json!({ "commit": "c1", "limits": [{ "user": user, "credits": 2000, "per_hour": per_hour }] });
    ok(s, "PUT", "/v1/limits", &body);
}

/// A usage event of `credits` at unix second `time`.
fn spend(s: &Server, id: &str, user: &str, model: &str, credits: i64, time: i64) {
    let e = json!({ "id": id, "time": time, "user": user, "product": "codex", "model": model, "credits": credits });
    ok(s, "POST", "/v1/usage/events", &e);
}

fn check(s: &Server, user: &str, credits: i64) -> Value {
    let body =
        json!({ "user": user, "product": "codex", "model": "m", "credits": credits, "ttl_seconds": 3600 });
    ok(s, "POST", "/v1/check", &body)
}

#[test]
fn a_check_over_the_last_hours_spend_is_refused_with_when_it_frees() {
    let s = start();
    rate_cap(&s, "r@x.com", json!(150));
    let limits = ok(&s, "GET", "/v1/limits", &Value::Null);
    assert_eq!(limits["data"][0]["per_hour"], json!(150));
    let t = now();
    spend(&s, "old", "r@x.com", "m", 500, t - 7200); // two hours ago: outside the window
    spend(&s, "e1", "r@x.com", "m", 100, t - 3000); // leaves the window in 600 s
    spend(&s, "e2", "r@x.com", "m", 30, t - 600);

    let d = check(&s, "r@x.com", 21);
    assert_eq!(
        (&d["allowed"], &d["deciding"], &d["remaining"]),
        (&json!(false), &json!("rate_cap"), &json!(20))
    );
    let retry = d["retry_after"].as_i64().unwrap();
    assert!((590..=600).contains(&retry), "{d}");

    let d = check(&s, "r@x.com", 20);
    assert_eq!(
        (&d["allowed"], &d["deciding"], &d["remaining"]),
        (&json!(true), &json!("rate_cap"), &json!(0))
    );
    assert!(d.get("retry_after").is_none(), "{d}");

    // a user without a rate cap is decided by the period's total as before
    ok(
        &s,
        "PUT",
        "/v1/limits",
        &json!({ "commit": "c2", "limits": [{ "user": "p@x.com", "credits": 2000 }] }),
    );
    spend(&s, "p1", "p@x.com", "m", 1000, t - 60);
    let d = check(&s, "p@x.com", 900);
    assert_eq!((&d["allowed"], &d["deciding"]), (&json!(true), &json!("user")));

    // a rate cap of zero is refused on the wire
    let r = call(
        &s,
        "PUT",
        "/v1/limits",
        &json!({ "commit": "c3", "limits": [{ "user": "r@x.com", "credits": 10, "per_hour": 0 }] }),
    );
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (400, json!("limits/bad-rate-cap")));
}

#[test]
fn concurrent_checks_against_room_for_k_grant_exactly_k() {
    let s = start();
    rate_cap(&s, "r@x.com", json!(150));
    spend(&s, "e1", "r@x.com", "m", 50, now() - 120);
    // room for exactly 5 checks of 20 (100 left); 24 at once
    let addr = s.addr;
    let threads: Vec<_> = (0..24)
        .map(|_| {
            std::thread::spawn(move || {
                let body =
                    json!({ "user": "r@x.com", "product": "codex", "model": "m", "credits": 20 }).to_string();
                let r = send(addr, "POST", "/v1/check", Some(ADMIN), Some(&body));
                assert_eq!(r.status, 200, "{}", r.body);
                r.json()["allowed"] == json!(true)
            })
        })
        .collect();
    let granted = threads.into_iter().map(|h| h.join().unwrap()).filter(|a| *a).count();
    assert_eq!(granted, 5);
}

#[test]
fn the_window_is_read_back_from_the_store_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::server::config(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = rt.block_on(budgit_service::start(config.clone())).unwrap();
    let addr = running.addr;
    let put = json!({ "commit": "c1", "limits": [{ "user": "r@x.com", "credits": 2000, "per_hour": 150 }] });
    assert_eq!(send(addr, "PUT", "/v1/limits", Some(ADMIN), Some(&put.to_string())).status, 200);
    let e = json!({ "id": "e1", "time": now() - 1800, "user": "r@x.com", "product": "codex", "model": "m", "credits": 140 });
    assert_eq!(send(addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&e.to_string())).status, 200);
    // writes are applied in order: once this one is back, the detached ones before it are done
    let lease = r#"{"holder":"h","ttl_seconds":60}"#;
    assert_eq!(send(addr, "POST", "/v1/leases/barrier", Some(ADMIN), Some(lease)).status, 200);
    running.abort();
    drop(rt);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = rt.block_on(budgit_service::start(config)).unwrap();
    let body = json!({ "user": "r@x.com", "product": "codex", "model": "m", "credits": 11 }).to_string();
    let d = send(running.addr, "POST", "/v1/check", Some(ADMIN), Some(&body)).json();
    assert_eq!(
        (&d["allowed"], &d["deciding"], &d["remaining"]),
        (&json!(false), &json!("rate_cap"), &json!(10))
    );
}

/// The runaway alerts written so far.
fn runaway_alerts(s: &Server) -> Vec<Value> {
    let alerts = ok(s, "GET", "/v1/alerts", &Value::Null);
    alerts["data"].as_array().unwrap().iter().filter(|a| a["kind"] == "runaway").cloned().collect()
}

#[test]
fn a_burst_is_runaway_listed_and_alerted_once_and_a_steady_person_is_not() {
    let s = start();
    let t = now();
    // a steady person: a few credits now and then; the burst: a loop of 12 credits a minute
    for i in 0..6 {
        spend(&s, &format!("s{i}"), "steady@x.com", "m", 3, t - 3000 + i * 500);
    }
    for i in 0..10 {
        spend(&s, &format!("b{i}"), "loop@x.com", "loop-model", 12, t - 600 + i * 60);
    }
    let r = ok(&s, "GET", "/v1/dashboard/runaway", &Value::Null);
    assert_eq!(r["people"], json!([{ "name": "loop@x.com", "last_hour": 120, "baseline": 0 }]), "{r}");
    assert_eq!(r["models"][0]["name"], "loop-model", "{r}");
    assert_eq!((&r["rule"]["factor"], &r["rule"]["floor"]), (&json!(5), &json!(50)));

    // one alert for the person, however many events the burst had (written after the answer)
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut alerts = runaway_alerts(&s);
    while alerts.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        alerts = runaway_alerts(&s);
    }
    spend(&s, "b10", "loop@x.com", "loop-model", 12, t);
    // the next event is in the same hour: no second alert (give a wrongly written one time to land)
    std::thread::sleep(Duration::from_millis(200));
    let alerts = runaway_alerts(&s);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["user"], "loop@x.com");
    assert!(
        alerts[0]["message"].as_str().unwrap().contains("spent 60 credits in the last hour"),
        "{alerts:?}"
    );

    // a user token cannot read it
    let r = send(s.addr, "GET", "/v1/dashboard/runaway", Some("not-a-token"), None);
    assert_eq!(r.status, 401);
}
