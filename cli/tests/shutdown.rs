//! `budgit serve --log-format json` as a real process: every stderr line is one JSON
//! log event (one per request), and SIGTERM drains: a request whose body is half
//! sent when the signal arrives is answered and stored, a new connection is
//! refused, event streams end, and the process exits 0.

#![expect(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test helpers fail loudly")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::http;
use common::serve::Serve;
use serde_json::{Value, json};

const ADMIN: &str = "shutdown-test-admin-5d1e0b-0123456789abcdef";

/// Starts `budgit serve --log-format json` and reads its events up to the listening one.
fn serve(db: &Path) -> Serve {
    let mut cmd = common::serve::command(db);
    cmd.args(["--log-format", "json", "--drain-timeout", "30s"]).env("BUDGIT_ADMIN_TOKEN", ADMIN);
    let s = Serve::start(cmd);
    wait_for(&s.lines, |e| message(e).starts_with("budgit serve listening on http://"));
    s
}

fn message(event: &Value) -> &str {
    event["message"].as_str().unwrap_or_default()
}

/// A stderr line as its JSON log event; a line that is not JSON fails the test.
fn event(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("a stderr line is not JSON ({e}): {line}"))
}

/// Reads events until one matches; every event read must be a JSON log object.
fn wait_for(lines: &mpsc::Receiver<String>, matches: impl Fn(&Value) -> bool) -> Value {
    loop {
        let event = event(&lines.recv_timeout(Duration::from_secs(60)).expect("no such log event"));
        assert!(event["level"].is_string() && event["timestamp"].is_string(), "{event}");
        if matches(&event) {
            return event;
        }
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn every_stderr_line_is_a_json_event_with_one_event_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve(&dir.path().join("budgit.db"));
    assert_eq!(http::send(s.addr, "GET", "/healthz", None, None).status, 200);
    assert_eq!(http::send(s.addr, "GET", "/v1/users/someone@x.com", Some(ADMIN), None).status, 404);
    let health = wait_for(&s.lines, |e| e["route"] == "/healthz");
    assert_eq!((health["level"].as_str(), health["message"].as_str()), (Some("INFO"), Some("request")));
    assert_eq!((health["method"].as_str(), health["status"].as_u64()), (Some("GET"), Some(200)));
    assert!(health["duration_ms"].is_u64(), "{health}");
    // the route is the template: an email in the path never reaches the log
    let user =
        wait_for(&s.lines, |e| e["message"] == "request" && e["method"] == "GET" && e["status"] == 404);
    assert_eq!(user["route"], "/v1/users/{email}", "{user}");

    sigterm(&s.child);
    wait_for(&s.lines, |e| message(e).starts_with("shutting down"));
    wait_for(&s.lines, |e| message(e) == "stopped");
    assert_eq!(s.child.wait().unwrap().code(), Some(0));
    // the process wrote nothing else: every remaining line is JSON too
    for line in s.lines.iter() {
        event(&line);
    }
}

#[test]
fn sigterm_finishes_a_half_sent_write_refuses_new_connections_and_ends_streams() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("budgit.db");
    let mut s = serve(&db);

    // an event stream, open across the signal
    let mut stream = TcpStream::connect(s.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "GET /v1/usage/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\r\n")
        .unwrap();
    let mut streamed = BufReader::new(stream);
    let mut status = String::new();
    streamed.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    // a write: its head and half its body; `Expect: 100-continue` makes the server
    // say when the handler reads the body, so the request is in flight at the signal
    let body = json!({ "id": "in-flight-1", "time": chrono::Utc::now().timestamp(), "user": "a@x.com",
                       "product": "codex", "model": "m", "credits": 3 })
    .to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let mut write = TcpStream::connect(s.addr).unwrap();
    write.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        write,
        "POST /v1/usage/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut answer = BufReader::new(write.try_clone().unwrap());
    let mut line = String::new();
    answer.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    answer.read_line(&mut line).unwrap(); // the blank line after the interim answer
    write.write_all(first.as_bytes()).unwrap();

    sigterm(&s.child);
    let draining = wait_for(&s.lines, |e| message(e).starts_with("shutting down"));
    assert!(draining["open"].as_u64().unwrap() >= 2, "{draining}");
    // the listener is closed: a newcomer is refused, not queued
    let refused = TcpStream::connect_timeout(&s.addr, Duration::from_secs(5));
    assert!(refused.is_err(), "a connection after SIGTERM was accepted");

    write.write_all(rest.as_bytes()).unwrap();
    let mut head = String::new();
    answer.read_line(&mut head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "the in-flight write was not answered: {head}");
    let mut text = String::new();
    answer.read_to_string(&mut text).unwrap(); // the connection closes after the answer
    assert!(text.contains("\"accepted\":1"), "{text}");

    // the stream ends (its connection closes) instead of holding the drain to its deadline
    let started = Instant::now();
    let mut tail = Vec::new();
    streamed.read_to_end(&mut tail).unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));

    // drained, not cut at the deadline: the stream did not hold the shutdown up
    wait_for(&s.lines, |e| {
        assert!(!message(e).starts_with("the drain deadline passed"), "{e}");
        message(e) == "stopped"
    });
    assert_eq!(s.child.wait().unwrap().code(), Some(0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored: i64 = conn
        .query_row("SELECT micros FROM events WHERE id = 'in-flight-1'", [], |r| r.get(0))
        .expect("the write answered during the drain is in the database");
    assert_eq!(stored, 3_000_000);
}
