//! `budgit serve` as a real process: durability across `kill -9`, tokens kept out of logs,
//! weak admin tokens refused, and slow or idle clients that cannot starve it.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::http::{Sse, send, try_send};
use common::serve::{Serve, with_serve_args};
use serde_json::{Value, json};

const ADMIN: &str = "serve-test-admin-7f3a9c-0123456789abcdef";

/// Starts `budgit serve` on a free loopback port and waits for its address.
fn serve(db: &Path, admin: Option<&str>) -> Serve {
    serve_with(Command::new(env!("CARGO_BIN_EXE_budgit")), db, admin, &[])
}

/// Starts `budgit serve` through `cmd` (the binary, or a shell that runs it) with extra flags.
fn serve_with(mut cmd: Command, db: &Path, admin: Option<&str>, flags: &[&str]) -> Serve {
    with_serve_args(&mut cmd, db);
    cmd.args(flags);
    if let Some(token) = admin {
        cmd.env("BUDGIT_ADMIN_TOKEN", token);
    }
    Serve::start(cmd)
}

/// An event of one credit, at one time for the whole run: a retry must send the same
/// payload, since the same id with another time is a conflict.
fn event(id: &str) -> String {
    static TIME: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let time = *TIME.get_or_init(|| chrono::Utc::now().timestamp());
    json!({ "id": id, "time": time, "user": "a@x.com", "product": "codex", "model": "m", "credits": 1 })
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

/// Every read endpoint answers 200 with no amount below zero (wrapped sums showed as
/// negative usage); returns the user's standing as `GET /v1/users/{email}` shows it.
fn read_everything(addr: SocketAddr, user_token: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    let midnight = now - now.rem_euclid(86_400);
    let reads = [
        "/healthz".to_string(),
        "/metrics".to_string(),
        "/v1/users".to_string(),
        "/v1/users/a%40x.com".to_string(),
        "/v1/limits".to_string(),
        "/v1/pools".to_string(),
        "/v1/audit".to_string(),
        "/v1/alerts".to_string(),
        "/v1/requests".to_string(),
        "/v1/usage/events/recent".to_string(),
        format!(
            "/v1/organization/costs?start_time={}&group_by=user_id&group_by=line_item",
            midnight - 86_400
        ),
        format!("/v1/organization/costs?start_time={}&group_by=project_id", now - 3600),
        format!("/v1/organization/costs?start_time={}&format=csv", midnight - 86_400),
        "/v1/dashboard/summary?fresh=true".to_string(),
        "/v1/dashboard/users?fresh=true".to_string(),
        "/v1/dashboard/users?fresh=true&format=csv".to_string(),
        "/v1/dashboard/trends".to_string(),
        "/v1/dashboard/trends?by=model".to_string(),
        "/v1/dashboard/breakdown?by=user".to_string(),
        "/v1/dashboard/breakdown?by=product".to_string(),
    ];
    for path in &reads {
        let r = send(addr, "GET", path, Some(ADMIN), None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        assert!(
            !r.body.contains(":-") && !r.body.contains(",-"),
            "GET {path} shows a negative amount: {}",
            r.body
        );
    }
    let me = send(addr, "GET", "/v1/me", Some(user_token), None);
    assert_eq!(me.status, 200, "{}", me.body);
    assert!(!me.body.contains(":-"), "{}", me.body);
    send(addr, "GET", "/v1/users/a%40x.com", Some(ADMIN), None).json()
}

#[test]
fn extreme_amounts_never_brick_the_store_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("budgit.db");
    let p = serve(&db, Some(ADMIN));
    let addr = p.addr;
    let call = |method: &str, path: &str, body: Value| {
        send(addr, method, path, Some(ADMIN), Some(&body.to_string()))
    };
    let limits = json!({ "commit": "c1",
        "limits": [
            { "user": "a@x.com", "credits": 9_223_372_036_854i64, "group": "eng" },
            { "user": "b@x.com", "credits": 1, "group": "eng" }
        ],
        "pools": [{ "group": "eng", "credits": 9_223_372_036_854i64 }],
        "workspace": { "period": "month", "timezone": "UTC", "enforcement": "soft" } });
    assert_eq!(call("PUT", "/v1/limits", limits).status, 200);
    let token =
        call("POST", "/v1/users/a%40x.com/tokens", Value::Null).json()["token"].as_str().unwrap().to_string();
    let now = chrono::Utc::now().timestamp();
    let ev = |id: &str, credits: Value| json!({ "id": id, "time": now, "user": "a@x.com", "product": "codex", "model": "m", "credits": credits });
    // the largest amount is taken, however often; past it, a 422 with a stable code
    for i in 0..3 {
        assert_eq!(call("POST", "/v1/usage/events", ev(&format!("max{i}"), json!(1_000_000))).status, 200);
    }
    for (credits, code) in [
        (json!(5_000_000_000_000i64), "credits/too-large"),
        (json!("1000000.000001"), "credits/too-large"),
        (json!(-990), "credits/negative"),
    ] {
        let r = call("POST", "/v1/usage/events", ev("bad", credits.clone()));
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (422, Some(code)),
            "{credits}: {}",
            r.body
        );
    }
    // a user token's commit of an extreme amount on a 1-credit hold under soft enforcement
    let hold =
        send(addr, "POST", "/v1/check", Some(&token), Some(r#"{"product":"codex","model":"m","credits":1}"#))
            .json();
    let id = hold["reservation_id"].as_str().unwrap().to_string();
    let commit = |credits: &str| {
        send(
            addr,
            "POST",
            &format!("/v1/reservations/{id}/commit"),
            Some(&token),
            Some(&format!(r#"{{"credits":{credits}}}"#)),
        )
    };
    let r = commit("9223372036854");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (422, Some("credits/too-large")));
    let r = commit("1000000");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((&r.json()["over_reservation"], &r.json()["committed"]), (&json!(true), &json!(1_000_000)));
    let r = send(
        addr,
        "POST",
        "/v1/check",
        Some(ADMIN),
        Some(r#"{"user":"a@x.com","product":"codex","model":"m","credits":9223372036854}"#),
    );
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (422, Some("credits/too-large")));
    // every acknowledged write is on disk: kill -9, then add what an older server let through
    assert_eq!(read_everything(addr, &token)["used"]["credits"], 4_000_000);
    p.kill9();
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for (i, micros) in [5_000_000_000_000_000_000i64, 5_000_000_000_000_000_000].into_iter().enumerate() {
            conn.execute(
                "INSERT INTO events (id, ts, email, product, model, micros, project) VALUES (?1, ?2, 'a@x.com', 'codex', 'm', ?3, 'eng')",
                (format!("old{i}"), now, micros),
            )
            .unwrap();
        }
        // the day's aggregate as the old server kept it: past what an integer holds
        conn.execute("UPDATE daily SET micros = 9223372036854775807 WHERE email = 'a@x.com'", []).unwrap();
    }
    // the server starts on its own database, and every endpoint reads it
    let p = serve(&db, Some(ADMIN));
    let standing = read_everything(p.addr, &token);
    // the sum saturates at the largest amount instead of wrapping or failing
    let largest = serde_json::to_value(budgit_engine::Credits::MAX).unwrap();
    assert_eq!(standing["used"]["credits"], largest, "{standing}");
    // the user is past every limit: under soft enforcement the next spend is allowed with an alert
    let d = send(
        p.addr,
        "POST",
        "/v1/check",
        Some(&token),
        Some(r#"{"product":"codex","model":"m","credits":1}"#),
    )
    .json();
    assert_eq!((&d["allowed"], &d["alert"]), (&json!(true), &json!("over_limit")), "{d}");
    // the day's total is full: a further event for that day is refused, not stored as a float
    let r = send(p.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&ev("more", json!(1)).to_string()));
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (422, Some("usage/total-too-large")),
        "{}",
        r.body
    );
    p.kill9();
}

#[test]
fn a_short_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("budgit.db"))
        .env_clear()
        .env("NO_COLOR", "1")
        .env("BUDGIT_ADMIN_TOKEN", "changeme-admin-token")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the admin token is 20 characters long; it needs at least 32"), "{stderr}");
    // the token itself is not printed
    assert!(!stderr.contains("changeme-admin-token"), "{stderr}");
}

/// Opens a connection that sends `bytes` and then nothing more.
fn stalled(addr: SocketAddr, bytes: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    s
}

/// Waits for the server to close a connection opened at `opened`; how long it stayed
/// open (`None`: still open `limit` after `opened`).
fn closed_within(s: &mut std::net::TcpStream, opened: Instant, limit: Duration) -> Option<Duration> {
    use std::io::Read;
    let started = opened;
    s.set_read_timeout(Some(limit.saturating_sub(opened.elapsed()).max(Duration::from_millis(1)))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(started.elapsed()),
            Err(_) => return None,
        }
    }
}

const HALF_SENT: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: budgit\r\nX-Slow: ";

#[test]
fn idle_and_half_sent_connections_cannot_starve_the_server() {
    let dir = tempfile::tempdir().unwrap();
    // 128 open files, as a small container allows: 400 held connections would exhaust them
    let mut shell = Command::new("sh");
    shell.args(["-c", "ulimit -n 128 && exec \"$0\" \"$@\"", env!("CARGO_BIN_EXE_budgit")]);
    let flags = ["--header-timeout", "1s", "--idle-timeout", "2s"];
    let p = serve_with(shell, &dir.path().join("budgit.db"), Some(ADMIN), &flags);

    // a half-sent request and a silent connection are closed after the header timeout
    let opened = Instant::now();
    let mut half = stalled(p.addr, HALF_SENT);
    let mut silent = stalled(p.addr, b"");
    for s in [&mut half, &mut silent] {
        let took = closed_within(s, opened, Duration::from_secs(10)).expect("closed by the server");
        assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(4), "{took:?}");
    }

    // 200 idle and 200 half-sent connections held open: /healthz still answers at once
    let held: Vec<_> = (0..400).map(|i| stalled(p.addr, if i % 2 == 0 { b"" } else { HALF_SENT })).collect();
    let started = Instant::now();
    let r = try_send(p.addr, "GET", "/healthz", None, None, &[]).expect("/healthz answers");
    assert_eq!(r.status, 200);
    assert!(started.elapsed() < Duration::from_secs(1), "/healthz took {:?}", started.elapsed());
    // and so does an authenticated read of the database
    assert_eq!(send(p.addr, "GET", "/v1/limits", Some(ADMIN), None).status, 200);
    drop(held);

    // an event stream outlives the idle timeout several times over: its keep-alive
    // comments and events are traffic
    let mut sse = Sse::open(p.addr, "/v1/usage/stream", ADMIN, None);
    let quiet_until = Instant::now() + Duration::from_secs(5);
    let r = send(p.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&event("before-quiet")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(sse.next().data.contains("before-quiet"));
    // nothing to send for 5 s (2.5 idle timeouts), then one more event arrives on the same stream
    while Instant::now() < quiet_until {
        std::thread::sleep(Duration::from_millis(250));
    }
    let r = send(p.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&event("after-quiet")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(sse.next().data.contains("after-quiet"));
    p.kill9();
}
