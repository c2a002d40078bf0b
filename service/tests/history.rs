//! A user's limit history in `GET /v1/me` among many other users' audit rows: only the
//! user's own limit changes, newest first, with the commits that made them.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use common::http::send;
use common::server::{ADMIN, start};
use serde_json::{Value, json};

const USERS: usize = 1000;

fn call(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> Value {
    let r = send(addr, method, path, Some(ADMIN), Some(body));
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    r.json()
}

/// Sets every user's limit in one batch (one audit row each); `special` gets its own value.
fn apply(addr: std::net::SocketAddr, commit: &str, credits: u32, special: Option<(&str, u32)>) {
    let limits: Vec<Value> = (0..USERS)
        .map(|i| {
            let user = format!("u{i:04}@x.com");
            let credits = special.filter(|(u, _)| *u == user).map_or(credits, |(_, c)| c);
            json!({ "user": user, "credits": credits })
        })
        .collect();
    let body = json!({ "commit": commit, "actor": "reconciler", "limits": limits });
    call(addr, "PUT", "/v1/limits", &body.to_string());
}

#[test]
fn me_lists_only_the_users_own_limit_changes_among_many_others() {
    let s = start();
    let csv: String = std::iter::once("email\n".to_string())
        .chain((0..USERS).map(|i| format!("u{i:04}@x.com\n")))
        .collect();
    assert_eq!(send(s.addr, "POST", "/v1/users/import", Some(ADMIN), Some(&csv)).status, 200);
    let me = "u0500@x.com";
    apply(s.addr, "c1", 100, None);
    apply(s.addr, "c2", 200, Some((me, 150)));
    apply(s.addr, "c3", 300, Some((me, 150))); // unchanged for `me`: no audit row
    apply(s.addr, "c4", 400, None);
    let removal = json!({ "commit": "c5", "actor": "reconciler", "limits": [], "remove": ["u0499@x.com"] });
    call(s.addr, "PUT", "/v1/limits", &removal.to_string());
    let audit = call(s.addr, "GET", "/v1/audit?limit=1000", "");
    assert!(audit["data"].as_array().unwrap().len() >= 1000, "many audit rows of other users");

    let token =
        call(s.addr, "POST", "/v1/users/u0500%40x.com/tokens", "{}")["token"].as_str().unwrap().to_string();
    let r = send(s.addr, "GET", "/v1/me", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let history: Vec<Value> = r.json()["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| json!({ "action": h["action"], "old": h["old"], "new": h["new"], "commit": h["commit"] }))
        .collect();
    assert_eq!(
        history,
        [
            json!({ "action": "limit.set", "old": 150, "new": 400, "commit": "c4" }),
            json!({ "action": "limit.set", "old": 100, "new": 150, "commit": "c2" }),
            json!({ "action": "limit.set", "old": null, "new": 100, "commit": "c1" }),
        ]
    );

    // the neighbour whose limit was removed sees the removal first
    let token =
        call(s.addr, "POST", "/v1/users/u0499%40x.com/tokens", "{}")["token"].as_str().unwrap().to_string();
    let r = send(s.addr, "GET", "/v1/me", Some(&token), None);
    let history = r.json()["history"].clone();
    assert_eq!(history.as_array().unwrap().len(), 5, "{history}");
    assert_eq!((&history[0]["action"], &history[0]["new"]), (&json!("limit.remove"), &Value::Null));
    assert_eq!(history[1]["new"], 400);
}
