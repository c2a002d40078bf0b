//! `budgit reconcile --target claude-enterprise` as a real process against the fake Admin API.
//!
//! The fake (`budgit-fakes`, checked against the official SDK's types by
//! `claude_sdk.rs`) serves on loopback from this process; each test makes a git
//! repository of policies and runs the reconciler binary with a cleared
//! environment. Faults (429 with `Retry-After`, 500, slow answers) are queued on
//! the fake; the audit is read back from the repository's audit ref.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

#[path = "../../engine/tests/common/git_repo.rs"]
mod git_repo;
#[path = "../../service/tests/common/http.rs"]
mod http;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use git_repo::{git, repo};
use http::try_send;
use serde_json::{Value, json};

const KEY: &str = "sk-ant-admin-test-0123456789";
const NOW: &str = "2026-11-10T12:00:00Z";

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
period: month
default:
  credits: 100
attributes:
  department: string
vendors:
  claude-enterprise:
    currency: usd
    credit: \"0.01\"
";

const ENG: &str = "apiVersion: budgit/v1
kind: Group
name: engineering
selector: 'user.department == \"Engineering\"'
priority: 10
limit:
  credits: 500
";

const PEOPLE: &str = "email,department\nalice@acme.com,Engineering\nbob@acme.com,Sales\ncarol@acme.com,Sales\ndave@acme.com,Sales\n";

fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let text = body.map(Value::to_string);
    let r = try_send(
        addr,
        method,
        path,
        Some(KEY),
        text.as_deref(),
        &[("anthropic-version", "2026-10-21"), ("content-type", "application/json")],
    )
    .unwrap();
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    if r.body.is_empty() { Value::Null } else { r.json() }
}

fn fake(members: &[&str]) -> (SocketAddr, BTreeMap<String, String>) {
    let addr = budgit_fakes::spawn(budgit_fakes::claude::router()).unwrap();
    let new: Vec<Value> = members.iter().map(|m| json!({ "email": m })).collect();
    let ids = call(addr, "POST", "/_fake/members", Some(&Value::Array(new)));
    let ids = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap().to_string(), m["id"].as_str().unwrap().to_string()))
        .collect();
    (addr, ids)
}

fn reconcile_cmd(repo: &Path, addr: SocketAddr, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    cmd.current_dir(repo)
        .args([
            "reconcile",
            "--target",
            "claude-enterprise",
            "--ref",
            "main",
            "--now",
            NOW,
            "--format",
            "json",
        ])
        .arg("--workspace")
        .arg(format!("http://{addr}"))
        .args(extra)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("ANTHROPIC_API_KEY", KEY);
    cmd
}

fn reconcile(repo: &Path, addr: SocketAddr, extra: &[&str]) -> (i32, Value) {
    let out = reconcile_cmd(repo, addr, extra).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key leaked");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), v)
}

/// Each member's own monthly limit, by email, from the effective report.
fn live(addr: SocketAddr) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut page = String::new();
    loop {
        let v = call(
            addr,
            "GET",
            &format!("/v1/organizations/spend_limits/effective?limit=1000&page={page}"),
            None,
        );
        for row in v["data"].as_array().unwrap() {
            if row["source"]["type"] == "user" && row["period"] == "monthly" {
                out.insert(
                    row["actor"]["email_address"].as_str().unwrap().to_string(),
                    row["amount"].as_str().unwrap().to_string(),
                );
            }
        }
        match v["next_page"].as_str() {
            Some(p) => page = p.to_string(),
            None => return out,
        }
    }
}

fn calls(addr: SocketAddr, method: &str) -> Vec<Value> {
    let r = try_send(addr, "GET", "/_fake/calls", None, None, &[]).unwrap();
    r.json().as_array().unwrap().iter().filter(|c| c["method"] == method).cloned().collect()
}

fn fault(addr: SocketAddr, f: Value) {
    let r = try_send(
        addr,
        "POST",
        "/_fake/faults",
        None,
        Some(&f.to_string()),
        &[("content-type", "application/json")],
    )
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);
}

/// The audit log in the repository, oldest first.
fn audit(repo: &Path) -> Vec<Value> {
    let revs = git(repo, &["rev-list", "--reverse", "refs/budgit/audit/claude-enterprise"]);
    let mut out = Vec::new();
    for rev in revs.lines() {
        let text = git(repo, &["show", &format!("{rev}:audit.jsonl")]);
        out.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    out
}

fn sets_per_user(entries: &[Value]) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for e in entries.iter().filter(|e| e["action"] == "limit.set") {
        *n.entry(e["user"].as_str().unwrap().to_string()).or_default() += 1;
    }
    n
}

fn users_of(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().map(|i| i["user"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_full_loop_applies_then_reverts_drift_by_hand_and_leaves_what_is_not_ours() {
    let (addr, ids) = fake(&["alice@acme.com", "bob@acme.com", "carol@acme.com", "erin@acme.com"]);
    let repo = repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG)]);
    let root = repo.path();
    std::fs::write(root.join("people.csv"), PEOPLE).unwrap();
    let dir = ["--directory", "people.csv"];

    // a dry run lists the exact calls and writes nothing, the audit included
    let (code, r) = reconcile(root, addr, &dir.iter().copied().chain(["--dry-run"]).collect::<Vec<_>>());
    assert_eq!(code, 0, "{r}");
    assert_eq!(
        r["vendor_calls"],
        json!([
            { "method": "POST", "path": "/v1/organizations/spend_limits", "body": { "amount": "500", "scope": { "type": "user", "user_id": ids["alice@acme.com"] }, "period": "monthly" } },
            { "method": "POST", "path": "/v1/organizations/spend_limits", "body": { "amount": "100", "scope": { "type": "user", "user_id": ids["bob@acme.com"] }, "period": "monthly" } },
            { "method": "POST", "path": "/v1/organizations/spend_limits", "body": { "amount": "100", "scope": { "type": "user", "user_id": ids["carol@acme.com"] }, "period": "monthly" } },
        ]),
        "{r}"
    );
    assert_eq!(r["membership"]["not_in_org"], json!(["dave@acme.com"]));
    assert_eq!(r["membership"]["not_in_directory"], json!(["erin@acme.com"]));
    assert!(calls(addr, "POST").is_empty());
    assert!(live(addr).is_empty());
    assert!(
        Command::new("git")
            .current_dir(root)
            .args(["rev-parse", "--verify", "-q", "refs/budgit/audit/claude-enterprise"])
            .output()
            .unwrap()
            .stdout
            .is_empty()
    );

    // the real run writes them, each audited once with the commit
    let head = git(root, &["rev-parse", "HEAD"]);
    let (code, r) = reconcile(root, addr, &dir);
    assert_eq!(code, 0, "{r}");
    assert_eq!(users_of(&r["applied"]), ["alice@acme.com", "bob@acme.com", "carol@acme.com"]);
    let want: BTreeMap<String, String> =
        [("alice@acme.com", "500"), ("bob@acme.com", "100"), ("carol@acme.com", "100")]
            .map(|(a, b)| (a.into(), b.into()))
            .into();
    assert_eq!(live(addr), want);
    let entries = audit(root);
    assert_eq!(sets_per_user(&entries).values().copied().collect::<Vec<_>>(), [1, 1, 1]);
    assert!(entries.iter().filter(|e| e["action"] == "limit.set").all(|e| e["commit"] == head.as_str()));

    // nothing to do the second time
    let posts = calls(addr, "POST").len();
    let (_, r) = reconcile(root, addr, &dir);
    assert_eq!((r["applied"].as_array().unwrap().len(), r["unchanged"].as_u64()), (0, Some(3)), "{r}");
    assert_eq!(calls(addr, "POST").len(), posts);

    // changed by hand in the vendor console: unmanaged drift, left with --no-revert…
    call(
        addr,
        "POST",
        "/v1/organizations/spend_limits",
        Some(
            &json!({ "amount": "999", "scope": { "type": "user", "user_id": ids["bob@acme.com"] }, "period": "monthly" }),
        ),
    );
    // …and a hand-set limit for someone policy does not cover is never touched
    call(
        addr,
        "POST",
        "/v1/organizations/spend_limits",
        Some(
            &json!({ "amount": "7", "scope": { "type": "user", "user_id": ids["erin@acme.com"] }, "period": "monthly" }),
        ),
    );
    let (code, r) = reconcile(root, addr, &dir.iter().copied().chain(["--no-revert"]).collect::<Vec<_>>());
    assert_eq!(code, 0, "{r}");
    assert_eq!(users_of(&r["skipped"]), ["bob@acme.com"]);
    assert_eq!(r["drift"][0]["kind"], "unmanaged");
    assert_eq!(r["membership"]["unmanaged_left"], json!(["erin@acme.com"]));
    assert_eq!(live(addr)["bob@acme.com"], "999");

    // …and reverted without it (lowering one of three is past the default guard)
    let (_, r) =
        reconcile(root, addr, &dir.iter().copied().chain(["--max-lower-share", "0.5"]).collect::<Vec<_>>());
    assert_eq!(users_of(&r["applied"]), ["bob@acme.com"], "{r}");
    assert_eq!(r["drift"][0]["kind"], "unmanaged");
    assert_eq!(live(addr)["bob@acme.com"], "100");
    assert_eq!(live(addr)["erin@acme.com"], "7");

    // carol leaves the directory: her budgit-managed limit is deleted
    std::fs::write(root.join("people.csv"), PEOPLE.replace("carol@acme.com,Sales\n", "")).unwrap();
    let (_, r) =
        reconcile(root, addr, &dir.iter().copied().chain(["--allow-mass-change"]).collect::<Vec<_>>());
    assert_eq!(users_of(&r["applied"]), ["carol@acme.com"], "{r}");
    assert!(!live(addr).contains_key("carol@acme.com"));
    assert_eq!(calls(addr, "DELETE").len(), 1);
    assert_eq!(audit(root).iter().filter(|e| e["action"] == "limit.remove").count(), 1);
}

#[test]
fn many_pages_of_members_and_limits_are_read_whole() {
    let emails: Vec<String> = (0..2500).map(|i| format!("u{i:05}@acme.com")).collect();
    let (addr, _) = fake(&emails.iter().map(String::as_str).collect::<Vec<_>>());
    let repo = repo(&[("workspace.yaml", WORKSPACE)]);
    let (code, r) = reconcile(repo.path(), addr, &["--max-changes", "5000"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["applied"].as_array().unwrap().len(), 2500);
    let user_pages = calls(addr, "GET").iter().filter(|c| c["path"] == "/v1/organizations/users").count();
    let effective: Vec<Value> = calls(addr, "GET")
        .into_iter()
        .filter(|c| c["path"] == "/v1/organizations/spend_limits/effective")
        .collect();
    assert_eq!((user_pages, effective.len()), (3, 3));
    assert!(effective[1]["query"].as_str().unwrap().contains("page="), "{effective:?}");
    // the second run reads all three pages of limits and finds nothing to do
    let (_, r) = reconcile(repo.path(), addr, &["--max-changes", "5000"]);
    assert_eq!((r["applied"].as_array().unwrap().len(), r["unchanged"].as_u64()), (0, Some(2500)), "{r}");
}

#[test]
fn rate_limits_server_errors_and_timeouts_are_retried_and_each_write_audited_once() {
    let (addr, _) = fake(&["alice@acme.com", "bob@acme.com", "carol@acme.com"]);
    let repo = repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG)]);
    fault(addr, json!({ "status": 500, "path": "/v1/organizations/spend_limits/effective" }));
    fault(addr, json!({ "status": 429, "retry_after": 1, "method": "POST", "times": 2 }));
    // the third write answers after the client gave up; the write still lands
    fault(addr, json!({ "delay_ms": 2500, "method": "POST" }));
    let started = Instant::now();
    // One write at a time, so each failure is its own retry; the concurrent writers'
    // shared pause is `a_rate_limit_pauses_every_writer`.
    let (code, r) = reconcile(repo.path(), addr, &["--timeout", "1s", "--concurrency", "1"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["applied"].as_array().unwrap().len(), 3, "{r}");
    assert!(r["retries"].as_u64().unwrap() >= 3, "{r}");
    // Retry-After was honoured twice
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(live(addr).len(), 3);
    assert_eq!(sets_per_user(&audit(repo.path())).values().copied().collect::<Vec<_>>(), [1, 1, 1]);
}

#[test]
fn a_run_killed_mid_apply_is_finished_by_the_next_with_each_write_audited_once() {
    let emails: Vec<String> = (0..60).map(|i| format!("p{i:03}@acme.com")).collect();
    let (addr, _) = fake(&emails.iter().map(String::as_str).collect::<Vec<_>>());
    let repo = repo(&[("workspace.yaml", WORKSPACE)]);
    fault(addr, json!({ "delay_ms": 100, "method": "POST", "times": 1000 }));
    let mut child = reconcile_cmd(repo.path(), addr, &["--holder", "reconciler-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Killed once some writes have landed: with many connections the first wave of
    // writes is all in flight at once, so counting calls that arrived says nothing.
    while live(addr).len() < 5 {
        assert!(Instant::now() < deadline, "the run made no writes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup, the audit of the batch never written
    child.wait().unwrap();
    // let a call that was in flight finish (or not) on the fake's side
    std::thread::sleep(Duration::from_millis(300));
    let landed = live(addr).len();
    assert!((5..60).contains(&landed), "{landed}");
    assert_eq!(audit(repo.path()).iter().filter(|e| e["action"] == "limit.set").count(), 0);

    try_send(addr, "DELETE", "/_fake/faults", None, None, &[]).unwrap();
    // restarted under the same name, it takes its own lease back at once
    let (code, r) = reconcile(repo.path(), addr, &["--holder", "reconciler-1"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["applied"].as_array().unwrap().len(), 60 - landed, "{r}");
    assert_eq!(live(addr).len(), 60);
    let entries = audit(repo.path());
    let sets = sets_per_user(&entries);
    assert_eq!(sets.len(), 60);
    assert!(sets.values().all(|n| *n == 1), "{sets:?}");
    let recovered = entries.iter().filter(|e| e["action"] == "limit.set" && e["recovered"] == true).count();
    assert_eq!(recovered, landed);
}

/// A server that accepts connections and never answers.
fn silent() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in listener.incoming().flatten() {
            open.push(stream); // held open, never read or written
        }
    });
    addr
}

#[test]
fn a_vendor_that_never_answers_fails_the_run_on_the_timeout_and_the_next_run_finishes() {
    let repo = repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG)]);
    let started = Instant::now();
    let (code, r) = reconcile(repo.path(), silent(), &["--timeout", "1s"]);
    assert_ne!(code, 0, "{r}");
    assert!(r["error"].as_str().unwrap().contains("did not answer in time"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(git(repo.path(), &["for-each-ref", "refs/budgit/audit/"]).is_empty());

    // every write answers after the client gave up: each attempt fails on the timeout
    // until the attempts run out, and what landed is settled by the next run
    let (addr, _) = fake(&["alice@acme.com", "bob@acme.com", "carol@acme.com"]);
    fault(addr, json!({ "delay_ms": 3000, "method": "POST", "times": 1000 }));
    let started = Instant::now();
    let (code, r) = reconcile(repo.path(), addr, &["--timeout", "1s"]);
    assert_ne!(code, 0, "{r}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let failed = r["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 3, "{r}");
    assert!(failed.iter().all(|f| f["reason"].as_str().unwrap().contains("did not answer in time")), "{r}");
    assert!(sets_per_user(&audit(repo.path())).is_empty());

    try_send(addr, "DELETE", "/_fake/faults", None, None, &[]).unwrap();
    let (code, r) = reconcile(repo.path(), addr, &["--timeout", "1s"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(live(addr).len(), 3);
    let sets = sets_per_user(&audit(repo.path()));
    assert_eq!(sets.values().copied().collect::<Vec<_>>(), [1, 1, 1], "{sets:?}");
}

/// When each call reached the fake (its own clock, microseconds), all methods, in order.
fn call_times(addr: SocketAddr) -> Vec<(String, u64)> {
    let r = try_send(addr, "GET", "/_fake/calls", None, None, &[]).unwrap();
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["method"].as_str().unwrap().to_string(), c["at_us"].as_u64().unwrap()))
        .collect()
}

#[test]
fn max_rps_is_a_total_over_all_concurrent_writers() {
    let emails: Vec<String> = (0..200).map(|i| format!("w{i:03}@acme.com")).collect();
    let (addr, _) = fake(&emails.iter().map(String::as_str).collect::<Vec<_>>());
    let repo = repo(&[("workspace.yaml", WORKSPACE)]);
    // Each write takes 100 ms at the vendor: one connection could make at most 10 a
    // second, eight connections 80, so 40 a second is reached only by several
    // connections at once, and exceeded if each connection were paced on its own.
    fault(addr, json!({ "delay_ms": 100, "method": "POST", "times": 1000 }));
    let rps = 40.0;
    let (code, r) =
        reconcile(repo.path(), addr, &["--max-changes", "5000", "--max-rps", "40", "--concurrency", "8"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["applied"].as_array().unwrap().len(), 200, "{r}");
    assert_eq!(sets_per_user(&audit(repo.path())).len(), 200);

    let times: Vec<u64> = call_times(addr).into_iter().map(|(_, at)| at).collect();
    assert_eq!(times.len() as u64, r["calls_made"].as_u64().unwrap(), "{r}");
    // Any two seconds hold at most 80 call starts, with 5 to spare for the time a
    // call takes from its slot to the fake on a busy machine.
    let window = 2_000_000u64;
    let most = (0..times.len())
        .map(|i| times[i..].iter().take_while(|t| **t < times[i] + window).count())
        .max()
        .unwrap();
    assert!(most <= 85, "{most} calls in 2 s at --max-rps 40");
    // The rate is reached: the writes took about 200 / 40 = 5 s, not 200 / 10 = 20 s.
    let posts: Vec<u64> =
        call_times(addr).into_iter().filter(|(m, _)| m == "POST").map(|(_, at)| at).collect();
    let span = (posts[posts.len() - 1] - posts[0]) as f64 / 1e6;
    let achieved = (posts.len() - 1) as f64 / span;
    assert!(achieved <= rps * 1.02, "{achieved:.1} writes/s at --max-rps 40");
    assert!(achieved >= rps * 0.75, "{achieved:.1} writes/s at --max-rps 40 on 8 connections");
}

#[test]
fn a_rate_limit_pauses_every_writer() {
    let emails: Vec<String> = (0..100).map(|i| format!("r{i:03}@acme.com")).collect();
    let (addr, _) = fake(&emails.iter().map(String::as_str).collect::<Vec<_>>());
    let repo = repo(&[("workspace.yaml", WORKSPACE)]);
    // The 21st write is refused with a 2 s Retry-After while other writers are busy.
    fault(addr, json!({ "delay_ms": 20, "method": "POST", "times": 20 }));
    fault(addr, json!({ "status": 429, "retry_after": 2, "method": "POST" }));
    fault(addr, json!({ "delay_ms": 20, "method": "POST", "times": 1000 }));
    let (code, r) = reconcile(repo.path(), addr, &["--max-changes", "5000", "--concurrency", "8"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["applied"].as_array().unwrap().len(), 100, "{r}");
    assert!(r["retries"].as_u64().unwrap() >= 1, "{r}");
    let sets = sets_per_user(&audit(repo.path()));
    assert_eq!(sets.len(), 100);
    assert!(sets.values().all(|n| *n == 1), "{sets:?}");

    let times = call_times(addr);
    let posts: Vec<u64> = times.iter().filter(|(m, _)| m == "POST").map(|(_, at)| *at).collect();
    let refused = posts[20];
    // Calls already sent when the 429 came back (at most the seven other writers)
    // may arrive just after it; then nothing, on any connection, until Retry-After.
    let after: Vec<u64> = times.iter().map(|(_, at)| *at).filter(|at| *at > refused).collect();
    let in_flight = after.iter().filter(|at| **at < refused + 200_000).count();
    assert!(in_flight <= 7, "{in_flight} calls within 200 ms of the 429");
    let paused = after.iter().filter(|at| (refused + 200_000..refused + 2_000_000).contains(*at)).count();
    assert_eq!(paused, 0, "calls during the Retry-After pause");
    assert!(after.iter().any(|at| *at >= refused + 2_000_000), "the run went on after the pause");
}
