//! `budgit serve` as a real process: durability across `kill -9`, and tokens kept out of logs.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

#[path = "../../console/tests/common/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use http::{Sse, send, try_send};
use serde_json::{Value, json};

const ADMIN: &str = "serve-test-admin-7f3a9c";

struct Process {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

/// Starts `budgit serve` on a free loopback port and waits for its address.
fn serve(db: &Path, admin: Option<&str>) -> Process {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"]).arg(db);
    cmd.env_clear().env("NO_COLOR", "1").stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(token) = admin {
        cmd.env("BUDGIT_ADMIN_TOKEN", token);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    let log = stderr.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("budgit serve listening on http://") {
                let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
            }
            log.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let addr = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("the server did not start");
    Process { child, addr, stderr }
}

impl Process {
    fn kill9(mut self) -> String {
        self.child.kill().unwrap(); // SIGKILL: no shutdown path runs
        self.child.wait().unwrap();
        self.stderr.lock().unwrap().clone()
    }
}

fn event(id: &str) -> String {
    json!({ "id": id, "time": chrono::Utc::now().timestamp(), "user": "a@x.com", "product": "codex", "model": "m", "credits": 1 })
        .to_string()
}

#[test]
fn every_acknowledged_event_survives_kill_9_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("budgit.db");
    let p = serve(&db, Some(ADMIN));
    let addr = p.addr;
    // two writers ingesting one event per request; each acknowledgement is reported
    let (acks, acked) = mpsc::channel::<String>();
    let attempted = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (acks, attempted) = (acks.clone(), attempted.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    let id = format!("w{w}-{i}");
                    attempted.lock().unwrap().push(id.clone());
                    match try_send(addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&event(&id)), &[]) {
                        Ok(r) if r.status == 200 => {
                            assert_eq!(r.json()["accepted"], 1);
                            if acks.send(id).is_err() {
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    drop(acks);
    let mut confirmed: Vec<String> = acked.iter().take(60).collect();
    let log = p.kill9();
    for w in writers {
        w.join().unwrap();
    }
    confirmed.extend(acked.try_iter());
    let attempted = attempted.lock().unwrap().clone();
    assert!(confirmed.len() >= 60);

    let p = serve(&db, Some(ADMIN));
    // the stream from the start lists every stored event once, in sequence order
    let total = count_events(p.addr);
    let mut sse = Sse::open(p.addr, "/v1/usage/stream", ADMIN, Some("0"));
    let mut stored = Vec::new();
    let mut last_seq = 0;
    while stored.len() < total {
        let ev = sse.next();
        let seq: i64 = ev.id.unwrap().parse().unwrap();
        assert!(seq > last_seq, "sequences increase");
        last_seq = seq;
        let data: Value = serde_json::from_str(&ev.data).unwrap();
        stored.push(data["id"].as_str().unwrap().to_string());
    }
    let mut unique = stored.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), stored.len(), "no event is stored twice");
    for id in &confirmed {
        assert!(stored.contains(id), "acknowledged event `{id}` was lost");
    }
    for id in &stored {
        assert!(attempted.contains(id));
    }
    assert!(total <= confirmed.len() + 2, "at most the two in-flight events beyond the acknowledged ones");
    // retrying every acknowledged event after the restart stores nothing new
    for id in &confirmed {
        let r = send(p.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&event(id)));
        assert_eq!(r.json()["duplicates"], 1, "{id}");
    }
    assert!(!log.contains(ADMIN));
    p.kill9();
}

/// Events stored, counted through the Costs API (each event is one credit).
fn count_events(addr: SocketAddr) -> usize {
    let page = send(
        addr,
        "GET",
        "/v1/organization/costs?start_time=0&end_time=4102444800&limit=180",
        Some(ADMIN),
        None,
    )
    .json();
    let mut n = 0.0;
    let mut page = page;
    loop {
        for b in page["data"].as_array().unwrap() {
            for r in b["results"].as_array().unwrap() {
                n += r["amount"]["value"].as_f64().unwrap();
            }
        }
        match page["next_page"].as_str() {
            Some(next) => {
                page = send(
                    addr,
                    "GET",
                    &format!("/v1/organization/costs?start_time=0&end_time=4102444800&limit=180&page={next}"),
                    Some(ADMIN),
                    None,
                )
                .json();
            }
            None => break,
        }
    }
    n as usize
}

#[test]
fn tokens_never_reach_logs_or_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("budgit.db");
    // first start without a token: one is generated and printed once
    let p = serve(&db, None);
    let first_log = p.kill9();
    let generated = first_log
        .lines()
        .find_map(|l| l.split("): ").nth(1).filter(|t| t.starts_with("bgt_admin_")))
        .expect("the generated admin token is printed at first start")
        .to_string();
    let p = serve(&db, None);
    assert_eq!(
        send(p.addr, "GET", "/v1/limits", Some(&generated), None).status,
        200,
        "the stored hash is kept"
    );
    let r = send(
        p.addr,
        "PUT",
        "/v1/limits",
        Some(&generated),
        Some(r#"{"commit":"c","limits":[{"user":"a@x.com","credits":5}]}"#),
    );
    assert_eq!(r.status, 200);
    let issued = send(p.addr, "POST", "/v1/users/a%40x.com/tokens", Some(&generated), None).json();
    let user_token = issued["token"].as_str().unwrap().to_string();
    let mut bodies = Vec::new();
    for (token, method, path, body) in [
        (user_token.as_str(), "GET", "/v1/audit", None),
        (user_token.as_str(), "GET", "/v1/users/b%40x.com", None),
        ("bgt_user_wrong", "GET", "/v1/limits", None),
        (user_token.as_str(), "POST", "/v1/check", Some("{not json")),
        (
            generated.as_str(),
            "PUT",
            "/v1/limits",
            Some(r#"{"commit":"c","limits":[{"user":"nope","credits":1}]}"#),
        ),
        (user_token.as_str(), "POST", "/v1/check", Some(r#"{"product":"p","model":"m","credits":1}"#)),
    ] {
        let r = send(p.addr, method, path, Some(token), body);
        bodies.push(r.body);
    }
    let log = p.kill9();
    assert!(!log.contains(&generated), "the admin token is printed only at first start:\n{log}");
    for text in bodies.iter().chain([&log]) {
        assert!(
            !text.contains(&user_token) && !text.contains(&generated) && !text.contains("bgt_user_wrong"),
            "{text}"
        );
    }
}
