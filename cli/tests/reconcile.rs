//! `budgit reconcile` as a real process against a real `budgit serve` on loopback.
//!
//! Each test makes a git repository of policies, starts the server, imports a
//! directory and runs the reconciler binary with a cleared environment. Faults
//! are injected by a small proxy between the two.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::git_repo::commit;
use common::http::send;
use common::serve::Serve;
use serde_json::{Value, json};

const ADMIN: &str = "reconcile-test-admin-52c1e8-0123456789abcdef";

/// A running service with three people imported; its database in a directory of its own.
struct Server {
    _serve: Serve,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let serve = common::serve::serve(&dir.path().join("budgit.db"), ADMIN);
    let s = Server { addr: serve.addr, _serve: serve, _dir: dir };
    let csv = "email,department\nalice@acme.com,Engineering\nbob@acme.com,Sales\ncarol@acme.com,Sales\n";
    assert_eq!(send(s.addr, "POST", "/v1/users/import?format=csv", Some(ADMIN), Some(csv)).status, 200);
    s
}

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default:
  credits: 100
attributes:
  department: string
";

const ENG: &str = "apiVersion: budgit/v1
kind: Group
name: engineering
selector: 'user.department == \"Engineering\"'
priority: 10
limit:
  credits: 500
pool:
  credits: 10000
";

const OVERRIDE: &str = "apiVersion: budgit/v1
kind: Override
name: bob-migration
user: bob@acme.com
add: { credits: 50 }
starts: 2026-11-01
expires: 2026-11-20
reason: a migration
";

const NOW: &str = "2026-11-10T12:00:00Z";

/// The repository of the workspace, its group and bob's override.
fn repo() -> tempfile::TempDir {
    common::git_repo::repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG), ("bob.yaml", OVERRIDE)])
}

fn reconcile_cmd(repo: &Path, url: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    cmd.current_dir(repo)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("BUDGIT_TOKEN", ADMIN)
        .args(["reconcile", "--workspace", url, "--ref", "main", "--policies", "policies"])
        .args(extra);
    cmd
}

fn reconcile(repo: &Path, url: &str, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let out: Output = reconcile_cmd(repo, url, &args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stdout.contains(ADMIN) && !stderr.contains(ADMIN), "the token leaked");
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

fn users_of(items: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        items.as_array().unwrap().iter().map(|i| i["user"].as_str().unwrap().to_string()).collect();
    v.sort();
    v
}

fn limit_of(s: &Server, user: &str) -> Value {
    let r = send(s.addr, "GET", &format!("/v1/limits?user={}", user.replace('@', "%40")), Some(ADMIN), None)
        .json();
    r["data"][0]["credits"].clone()
}

fn audit(s: &Server) -> Vec<Value> {
    send(s.addr, "GET", "/v1/audit?limit=1000", Some(ADMIN), None).json()["data"].as_array().unwrap().clone()
}

fn check(s: &Server, user: &str, credits: u32) -> bool {
    let body =
        json!({ "user": user, "product": "chatgpt", "model": "gpt-5", "credits": credits }).to_string();
    let r = send(s.addr, "POST", "/v1/check", Some(ADMIN), Some(&body)).json();
    if let Some(id) = r["reservation_id"].as_str() {
        send(s.addr, "POST", &format!("/v1/reservations/{id}/release"), Some(ADMIN), Some("{}"));
    }
    r["allowed"].as_bool().unwrap_or(false)
}

#[test]
fn the_full_loop_applies_the_policy_then_exactly_the_difference_then_nothing() {
    let s = serve();
    let r = repo();
    let (code, first, err) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(code, 0, "{first}\n{err}");
    assert_eq!(users_of(&first["applied"]), ["alice@acme.com", "bob@acme.com", "carol@acme.com"]);
    assert_eq!(first["pools_applied"], 1);
    assert_eq!(limit_of(&s, "alice@acme.com"), json!(500));
    assert_eq!(limit_of(&s, "bob@acme.com"), json!(150));
    // The workspace now enforces the policy.
    assert!(check(&s, "carol@acme.com", 100));
    assert!(!check(&s, "carol@acme.com", 101));
    assert!(check(&s, "alice@acme.com", 400));

    let head = commit(r.path(), &[("eng.yaml", &ENG.replace("credits: 500", "credits: 800"))]);
    let (code, second, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(code, 0);
    assert_eq!(users_of(&second["applied"]), ["alice@acme.com"]);
    assert_eq!(second["unchanged"], 2);
    assert_eq!(second["commit"], json!(head));
    assert!(check(&s, "alice@acme.com", 700));

    let (code, third, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(code, 0);
    assert_eq!(third["applied"], json!([]));
    assert_eq!(third["unchanged"], 3);

    // The audit log holds exactly the changes, each with its commit and plan digest.
    let sets: Vec<Value> = audit(&s).into_iter().filter(|a| a["action"] == "limit.set").collect();
    assert_eq!(sets.len(), 4);
    let last = sets.last().unwrap();
    assert_eq!(last["subject"], "alice@acme.com");
    assert_eq!(last["commit"], json!(head));
    assert_eq!(last["plan_digest"], second["plan_digest"]);
    assert_eq!(last["old"]["limit"]["credits"], json!(500));
    assert_eq!(last["new"]["limit"]["credits"], json!(800));
}

#[test]
fn dry_run_writes_nothing_and_an_invalid_ref_is_refused() {
    let s = serve();
    let r = repo();
    let (code, dry, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW, "--dry-run"]);
    assert_eq!(code, 0);
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["not_attempted"].as_array().unwrap().len(), 3);
    assert!(audit(&s).is_empty());

    commit(r.path(), &[("workspace.yaml", &WORKSPACE.replace("credits: 100", "credit: 100"))]);
    let (code, refused, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["status"], "refused");
    assert!(refused["error"].as_str().unwrap().contains("fail validation"), "{refused}");
    assert!(audit(&s).is_empty());
}

#[test]
fn a_directory_file_replaces_the_workspace_users_and_an_empty_one_is_refused() {
    let s = serve();
    let r = repo();
    reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    std::fs::write(
        r.path().join("dir.csv"),
        "email,department\nalice@acme.com,Engineering\nbob@acme.com,Sales\n",
    )
    .unwrap();
    let (code, dry, _) = reconcile(
        r.path(),
        &url(s.addr),
        &["--now", NOW, "--directory", "dir.csv", "--dry-run", "--allow-mass-change"],
    );
    assert_eq!(code, 0, "{dry}");
    assert_eq!(
        dry["not_attempted"],
        json!([{
            "user": "carol@acme.com", "before": { "credits": 100 }, "after": null,
            "direction": "remove", "drift": "none"
        }])
    );
    std::fs::write(r.path().join("empty.csv"), "email,department\n").unwrap();
    let (code, refused, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW, "--directory", "empty.csv"]);
    assert_eq!(code, 1);
    assert!(refused["error"].as_str().unwrap().contains("holds no user"), "{refused}");
}

fn people(s: &Server) -> Vec<(String, Value)> {
    let page = send(s.addr, "GET", "/v1/users?limit=100", Some(ADMIN), None).json();
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["email"].as_str().unwrap().to_string(), u["attributes"].clone()))
        .collect()
}

#[test]
fn a_directory_file_keeps_the_workspace_people_in_sync_under_the_guard() {
    let s = serve();
    let r = repo();
    reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    // alice moves to Sales, carol left, dave joined.
    std::fs::write(
        r.path().join("dir.csv"),
        "email,department\nalice@acme.com,Sales\nbob@acme.com,Sales\ndave@acme.com,Engineering\n",
    )
    .unwrap();
    let before = people(&s);
    // Lowering alice and removing carol is two of three limits: the guard refuses, and
    // a refused run changes no one.
    let (code, refused, stderr) =
        reconcile(r.path(), &url(s.addr), &["--now", NOW, "--directory", "dir.csv"]);
    assert_eq!(code, 1, "{refused}\n{stderr}");
    assert_eq!(refused["status"], "refused", "{refused}");
    assert_eq!(people(&s), before);
    // A dry run neither.
    reconcile(
        r.path(),
        &url(s.addr),
        &["--now", NOW, "--directory", "dir.csv", "--dry-run", "--allow-mass-change"],
    );
    assert_eq!(people(&s), before);

    let (code, run, stderr) =
        reconcile(r.path(), &url(s.addr), &["--now", NOW, "--directory", "dir.csv", "--allow-mass-change"]);
    assert_eq!(code, 0, "{run}\n{stderr}");
    assert!(
        stderr.contains("people from `dir.csv`: 1 created, 1 updated, 1 unchanged, 1 removed"),
        "{stderr}"
    );
    let emails: Vec<String> = people(&s).into_iter().map(|(e, _)| e).collect();
    assert_eq!(emails, ["alice@acme.com", "bob@acme.com", "dave@acme.com"]);
    assert_eq!(people(&s)[0].1["department"], "Sales");
    assert_eq!(limit_of(&s, "dave@acme.com"), json!(500));
    assert_eq!(limit_of(&s, "alice@acme.com"), json!(100));

    // The next run, without the file, works from the workspace's people and finds nothing to do.
    let (code, next, stderr) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(code, 0, "{next}\n{stderr}");
    assert_eq!(next["applied"], json!([]), "{next}");
    assert_eq!(next["unchanged"], 3, "{next}");
    assert!(audit(&s).iter().any(|a| a["action"] == "user.remove" && a["subject"] == "carol@acme.com"));
}

#[test]
fn a_limit_changed_by_hand_is_unmanaged_drift_and_reverted() {
    let s = serve();
    let r = repo();
    reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    let by_hand = json!({ "commit": "manual", "limits": [{ "user": "carol@acme.com", "credits": 9999 }] });
    assert_eq!(send(s.addr, "PUT", "/v1/limits", Some(ADMIN), Some(&by_hand.to_string())).status, 200);

    let (_, kept, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW, "--no-revert"]);
    assert_eq!(kept["drift"][0]["kind"], "unmanaged");
    assert_eq!(kept["drift"][0]["reverted"], false);
    assert_eq!(limit_of(&s, "carol@acme.com"), json!(9999));

    // Reverting lowers one limit in three: more than the default share of 20%.
    let (code, refused, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(code, 1, "{refused}");
    assert_eq!(refused["status"], "refused");
    assert!(refused["error"].as_str().unwrap().contains("--max-lower-share"), "{refused}");
    let (code, reverted, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW, "--max-lower-share", "0.5"]);
    assert_eq!(code, 0);
    assert_eq!(reverted["drift"][0]["user"], "carol@acme.com");
    assert_eq!(reverted["drift"][0]["kind"], "unmanaged");
    assert_eq!(reverted["drift"][0]["reverted"], true);
    assert_eq!(users_of(&reverted["applied"]), ["carol@acme.com"]);
    assert_eq!(limit_of(&s, "carol@acme.com"), json!(100));
}

#[test]
fn an_override_expiring_between_runs_is_expected_drift() {
    let s = serve();
    let r = repo();
    reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(limit_of(&s, "bob@acme.com"), json!(150));
    let (code, later, _) =
        reconcile(r.path(), &url(s.addr), &["--now", "2026-11-21T00:00:00Z", "--allow-mass-change"]);
    assert_eq!(code, 0);
    assert_eq!(
        later["drift"],
        json!([{
            "user": "bob@acme.com", "kind": "expected", "live": { "credits": 150 },
            "last_applied": { "credits": 150 }, "desired": { "credits": 100 }, "reverted": true
        }])
    );
    assert_eq!(limit_of(&s, "bob@acme.com"), json!(100));
}

#[test]
fn a_held_lease_is_reported_and_the_run_exits_cleanly() {
    let s = serve();
    let r = repo();
    let hold = json!({ "holder": "other-host/1", "ttl_seconds": 600 }).to_string();
    assert_eq!(send(s.addr, "POST", "/v1/leases/budgit-reconcile", Some(ADMIN), Some(&hold)).status, 200);
    let (code, out, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(code, 0);
    assert_eq!(out["status"], "lease-held");
    assert!(out["error"].as_str().unwrap().contains("other-host/1"));
    assert!(audit(&s).is_empty());

    let human = reconcile_cmd(r.path(), &url(s.addr), &["--now", NOW]).output().unwrap();
    assert!(String::from_utf8_lossy(&human.stdout).contains("holds the lease"));
}

#[test]
fn two_reconcilers_at_once_never_write_twice() {
    let s = serve();
    let r = repo();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            reconcile_cmd(r.path(), &url(s.addr), &["--now", NOW, "--format", "json"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Value> = runs
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(0));
            serde_json::from_slice(&o.stdout).unwrap()
        })
        .collect();
    let applied: usize = outs.iter().map(|o| o["applied"].as_array().map_or(0, Vec::len)).sum();
    assert_eq!(applied, 3, "{outs:?}");
    let sets = audit(&s).into_iter().filter(|a| a["action"] == "limit.set").count();
    assert_eq!(sets, 3);
}

// ---- faults through a proxy ----

/// What the proxy does with the next `PUT /v1/limits`.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Pass,
    Status500,
    TooMany,
    DropAfterForward,
    /// Forward (the write lands), then hold the answer back for a long time.
    HangAfterForward,
}

/// A proxy that forwards every request, except that `PUT /v1/limits` meets the scripted faults first.
fn proxy(upstream: SocketAddr, faults: Vec<Fault>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let faults = Arc::new(Mutex::new(faults));
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let faults = faults.clone();
            std::thread::spawn(move || handle(conn, upstream, &faults));
        }
    });
    addr
}

fn handle(mut conn: TcpStream, upstream: SocketAddr, faults: &Mutex<Vec<Fault>>) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    loop {
        let mut head = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if !line.to_ascii_lowercase().starts_with("connection:") {
                head.push(line);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let fault = if head[0].starts_with("PUT /v1/limits") {
            let mut f = faults.lock().unwrap();
            if f.is_empty() { None } else { Some(f.remove(0)) }
        } else {
            None
        };
        let canned = |status: &str, extra: &str| {
            let body = r#"{"error":{"code":"test/fault","message":"injected"}}"#;
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let reply = match fault {
            Some(Fault::Status500) => canned("500 Internal Server Error", ""),
            Some(Fault::TooMany) => canned("429 Too Many Requests", "retry-after: 1\r\n"),
            _ => {
                let mut up = TcpStream::connect(upstream).unwrap();
                let mut request = head.concat();
                request.push_str("connection: close\r\n\r\n");
                up.write_all(request.as_bytes()).unwrap();
                up.write_all(&body).unwrap();
                let mut answer = Vec::new();
                up.read_to_end(&mut answer).unwrap();
                if matches!(fault, Some(Fault::HangAfterForward)) {
                    std::thread::sleep(Duration::from_secs(30));
                }
                if matches!(fault, Some(Fault::DropAfterForward)) {
                    // The write landed; the client never hears about it.
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return;
                }
                // The upstream closes; the client must not reuse this connection.
                let text = String::from_utf8_lossy(&answer).replacen("\r\n", "\r\nconnection: close\r\n", 1);
                let _ = conn.write_all(text.as_bytes());
                return;
            }
        };
        let _ = conn.write_all(reply.as_bytes());
    }
}

#[test]
fn faults_on_the_way_are_retried_and_nothing_is_applied_twice() {
    let s = serve();
    let r = repo();
    let faults = vec![Fault::Status500, Fault::TooMany, Fault::DropAfterForward, Fault::HangAfterForward];
    let via = proxy(s.addr, faults);
    let started = std::time::Instant::now();
    let (code, out, err) =
        reconcile(r.path(), &url(via), &["--now", NOW, "--batch-size", "2", "--timeout", "2s"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
    assert!(out["retries"].as_u64().unwrap() >= 4, "{out}");
    assert_eq!(users_of(&out["applied"]), ["alice@acme.com", "bob@acme.com", "carol@acme.com"]);
    let sets = audit(&s).into_iter().filter(|a| a["action"] == "limit.set").count();
    assert_eq!(sets, 3, "each change audited exactly once");
    let (_, again, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(again["applied"], json!([]));
}

#[test]
fn a_reconciler_killed_mid_apply_is_finished_by_the_next_run() {
    let s = serve();
    let r = repo();
    // Batches of one: the first lands and answers, the second lands and hangs.
    let hang = proxy(s.addr, vec![Fault::Pass, Fault::HangAfterForward]);
    let mut child = reconcile_cmd(
        r.path(),
        &url(hang),
        &["--now", NOW, "--batch-size", "1", "--holder", "reconciler-a", "--format", "json"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let sets = |s: &Server| audit(s).into_iter().filter(|a| a["action"] == "limit.set").count();
    for _ in 0..200 {
        if sets(&s) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sets(&s), 2, "two changes landed before the kill");
    child.kill().unwrap(); // SIGKILL: no cleanup, the lease stays held
    child.wait().unwrap();

    // The same reconciler identity (a restarted pod, a re-run unit) takes its lease back.
    let (code, out, err) = reconcile(r.path(), &url(s.addr), &["--now", NOW, "--holder", "reconciler-a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(users_of(&out["applied"]), ["carol@acme.com"], "{out}");
    assert_eq!(out["unchanged"], 2);
    assert_eq!(sets(&s), 3, "every change audited exactly once");
    let (_, again, _) = reconcile(r.path(), &url(s.addr), &["--now", NOW]);
    assert_eq!(again["applied"], json!([]));
}

#[test]
fn the_daemon_serves_health_and_metrics_and_stops_on_sigterm() {
    let s = serve();
    let r = repo();
    let mut child = reconcile_cmd(
        r.path(),
        &url(s.addr),
        &["--now", NOW, "--every", "1s", "--metrics-listen", "127.0.0.1:0", "--format", "json"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(rest) = line.strip_prefix("metrics on http://") {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };
    assert_eq!(send(addr, "GET", "/healthz", None, None).status, 200);
    // Wait for the first run to land (polling the workspace, not sleeping blindly).
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = send(addr, "GET", "/metrics", None, None).body;
        if metrics.contains("budgit_reconcile_changes_total 3") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metrics.contains("budgit_reconcile_changes_total 3"), "{metrics}");
    assert!(metrics.contains("budgit_reconcile_duration_seconds_count"), "{metrics}");
    assert!(metrics.contains("budgit_drift_items{kind=\"unmanaged\"} 0"), "{metrics}");
    assert!(metrics.contains("budgit_reconcile_last_applied_commit_info"), "{metrics}");
    assert!(metrics.contains("budgit_apply_failures_total 0"), "{metrics}");

    let term = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
}

#[test]
fn the_daemon_logs_json_lines_and_stops_after_max_runs() {
    let s = serve();
    let r = repo();
    let out = reconcile_cmd(
        r.path(),
        &url(s.addr),
        &["--now", NOW, "--every", "200ms", "--max-runs", "2", "--format", "json", "--log-format", "json"],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // the report: one JSON object per run, one per line
    let runs: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(runs.len(), 2, "{stdout}");
    assert_eq!(users_of(&runs[0]["applied"]), ["alice@acme.com", "bob@acme.com", "carol@acme.com"]);
    assert_eq!((runs[1]["status"].as_str(), runs[1]["applied"].clone()), (Some("ok"), json!([])));
    // the log: every stderr line is one JSON event
    let events: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let finished: Vec<&Value> = events.iter().filter(|e| e["message"] == "reconcile run finished").collect();
    assert_eq!(finished.len(), 2, "{stderr}");
    for (i, e) in finished.iter().enumerate() {
        assert_eq!((e["level"].as_str(), e["outcome"].as_str()), (Some("INFO"), Some("ok")), "{e}");
        assert_eq!(e["run"], i + 1);
        assert_eq!(e["commit"], runs[i]["commit"]);
        assert!(e["took_ms"].is_u64() && e["timestamp"].is_string(), "{e}");
    }
    // three people and the engineering pool
    assert_eq!((finished[0]["applied"].as_u64(), finished[1]["applied"].as_u64()), (Some(4), Some(0)));
    assert!(finished[0]["next_run_in_ms"].as_u64().is_some_and(|ms| (200..=220).contains(&ms)), "{stderr}");
    assert!(finished[1].get("next_run_in_ms").is_none(), "no run follows the last: {stderr}");
    let stopped = events.iter().find(|e| e["message"] == "reconcile loop stopped").expect("no stop event");
    assert_eq!((stopped["runs"].as_u64(), stopped["reason"].as_str()), (Some(2), Some("max runs reached")));

    // RUST_LOG filters: at `warn`, a clean run logs nothing
    let quiet = reconcile_cmd(r.path(), &url(s.addr), &["--now", NOW, "--every", "1s", "--max-runs", "1"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(quiet.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "reconcile: stopped\n");
    // a filter that does not parse is refused, not ignored
    let bad = reconcile_cmd(r.path(), &url(s.addr), &["--now", NOW, "--every", "1s"])
        .env("RUST_LOG", "budgit=loud")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`RUST_LOG` is not a valid filter"), "{bad:?}");
}
