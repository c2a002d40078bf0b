//! Two `budgit serve --store postgres://…` processes on one database, one killed with
//! SIGKILL in the middle of a burst of usage events and check-then-commit sequences:
//! the other keeps answering, and no acknowledged event is lost or stored twice.
//!
//! The database is on the server `BUDGIT_TEST_PG` names (`.ci/run` starts one), or on
//! a throwaway cluster this test starts with `.ci/pg-cluster`.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::http::try_send;
use common::pg::{database, psql};
use common::serve::Serve;
use serde_json::{Value, json};

const ADMIN: &str = "serve-pg-admin-token-0123456789abcdef0123";

fn replica(url: &str) -> Serve {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--store", url, "--store-pool", "4"]);
    cmd.env_clear().env("NO_COLOR", "1").env("BUDGIT_ADMIN_TOKEN", ADMIN);
    Serve::start(cmd)
}

/// POST with the admin token; `None` when the connection failed (the replica is gone).
fn post(addr: SocketAddr, path: &str, body: &Value) -> Option<(u16, Value)> {
    let r = try_send(addr, "POST", path, Some(ADMIN), Some(&body.to_string()), &[]).ok()?;
    let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    Some((r.status, v))
}

#[test]
fn a_replica_killed_mid_burst_loses_no_acknowledged_event_and_the_other_keeps_answering() {
    let (url, _cluster) = database("t_serve_pg");
    let a = replica(&url);
    let b = replica(&url);
    let limits = json!({ "commit": "c1", "limits": [{ "user": "k@x.com", "credits": 1000000 }] });
    let r = try_send(a.addr, "PUT", "/v1/limits", Some(ADMIN), Some(&limits.to_string()), &[]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    let (a_addr, b_addr) = (a.addr, b.addr);
    let a_down = AtomicBool::new(false);
    let acked = Mutex::new(BTreeSet::new());
    let attempted = Mutex::new(BTreeSet::new());
    let b_failures = AtomicUsize::new(0);
    let progress = AtomicUsize::new(0);
    let after_kill = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..4 {
            let (a_down, acked, attempted, b_failures, progress, after_kill) =
                (&a_down, &acked, &attempted, &b_failures, &progress, &after_kill);
            s.spawn(move || {
                for n in 0..60 {
                    // even workers go to the replica that will die first (as a load balancer
                    // that has not noticed yet), then to the other when it fails
                    let first = if w % 2 == 0 { a_addr } else { b_addr };
                    let id = format!("w{w}-{n}");
                    attempted.lock().unwrap().insert(id.clone());
                    if first == a_addr && a_down.load(Ordering::SeqCst) {
                        after_kill.fetch_add(1, Ordering::SeqCst);
                    }
                    let outcome = if n % 2 == 0 {
                        let ev = json!({ "events": [{ "id": id, "time": chrono_now(), "user": "k@x.com",
                            "product": "chatgpt", "model": "gpt-5", "credits": 1 }] });
                        // a failed attempt is retried on the other replica, as a client would
                        post(first, "/v1/usage/events", &ev).or_else(|| post(b_addr, "/v1/usage/events", &ev))
                    } else {
                        let check = json!({ "user": "k@x.com", "product": "chatgpt", "model": "gpt-5", "credits": 1 });
                        let checked = post(first, "/v1/check", &check).or_else(|| post(b_addr, "/v1/check", &check));
                        let Some((200, v)) = checked else {
                            b_failures.fetch_add(1, Ordering::SeqCst);
                            continue;
                        };
                        let rid = v["reservation_id"].as_str().unwrap().to_string();
                        let path = format!("/v1/reservations/{rid}/commit");
                        let body = json!({ "credits": 1, "event_id": id });
                        match post(first, &path, &body) {
                            Some(answer) => Some(answer),
                            // the replica died during the commit: it committed or it did not;
                            // the retry on the other either commits or finds the hold gone
                            None => match post(b_addr, &path, &body) {
                                Some((404, _)) => None,
                                other => other,
                            },
                        }
                    };
                    match outcome {
                        Some((200, _)) => {
                            acked.lock().unwrap().insert(id);
                        }
                        None => {}
                        Some((status, v)) => {
                            b_failures.fetch_add(1, Ordering::SeqCst);
                            panic!("{id}: {status} {v}");
                        }
                    }
                    progress.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        // the kill, once a third of the burst is through
        while progress.load(Ordering::SeqCst) < 80 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        a.kill9();
        a_down.store(true, Ordering::SeqCst);
        assert!(progress.load(Ordering::SeqCst) < 200, "the burst ended before the kill");
    });
    assert_eq!(b_failures.load(Ordering::SeqCst), 0);
    // the dead replica was still being sent requests, which the other then took
    assert!(after_kill.load(Ordering::SeqCst) > 0);
    let acked = acked.into_inner().unwrap();
    let attempted = attempted.into_inner().unwrap();
    assert!(acked.len() >= 230, "only {} of 240 acknowledged", acked.len());
    let stored: Vec<String> =
        psql(&url, "SELECT id FROM events ORDER BY id").lines().map(str::to_string).collect();
    let unique: BTreeSet<String> = stored.iter().cloned().collect();
    assert_eq!(unique.len(), stored.len(), "an event was stored twice");
    for id in &acked {
        assert!(unique.contains(id), "acknowledged event `{id}` was lost");
    }
    assert!(unique.is_subset(&attempted));
    // the usage the survivor counts is what is stored: its next check sees every event
    let used: i64 = psql(&url, "SELECT COALESCE(SUM(micros), 0) FROM events").parse().unwrap();
    assert_eq!(used, i64::try_from(stored.len()).unwrap() * 1_000_000);
    let (status, v) = post(
        b_addr,
        "/v1/check",
        &json!({ "user": "k@x.com", "product": "chatgpt", "model": "gpt-5", "credits": 1 }),
    )
    .unwrap();
    assert_eq!(status, 200);
    let open: i64 = psql(
        &url,
        "SELECT COALESCE(SUM(micros), 0) FROM reservations WHERE expires_at > EXTRACT(EPOCH FROM now())",
    )
    .parse()
    .unwrap();
    // (the open holds include the one this check just made)
    let remaining = 1_000_000_000_000 - used - open;
    assert_eq!(v["remaining"].as_f64(), Some(remaining as f64 / 1e6), "{v}");
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
