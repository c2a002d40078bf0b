//! `budgit reconcile --target openai` as a real process against the fake OpenAI Admin API.
//!
//! The fake (`budgit-fakes`, checked against the official `openai` SDK's types by
//! `serve_sdk.rs`) serves on loopback from this process; each test makes a git
//! repository of policies and runs the reconciler binary with a cleared
//! environment. Faults (429 with `Retry-After`, 500) are queued on the fake; the
//! audit is read back from the repository's audit ref.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

#[path = "../../console/tests/common/http.rs"]
mod http;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use budgit_fakes::openai::{Fake, Fault, Project, User};
use http::try_send;
use serde_json::{Value, json};

const KEY: &str = "sk-admin-test-0123456789";
const NOW: &str = "2026-11-10T12:00:00Z";

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
default:
  credits: 100
alerts: [50, 80]
vendors:
  openai:
    currency: usd
    credit: \"0.01\"
    reconcile:
      alert_recipients: [finance@acme.com]
";

const ENG: &str = "apiVersion: budgit/v1
kind: Group
name: engineering
members: [alice@acme.com]
priority: 10
limit:
  credits: 500
pool:
  credits: 4000
vendors:
  openai:
    project: proj_eng
";

fn call(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let text = body.map(Value::to_string);
    let r = try_send(addr, method, path, Some(KEY), text.as_deref(), &[("content-type", "application/json")])
        .unwrap();
    let v = if r.body.is_empty() { Value::Null } else { r.json() };
    (r.status, v)
}

fn fake() -> (SocketAddr, Fake) {
    let fake = Fake::new(KEY);
    let user = |id: &str, email: &str| User { id: id.into(), email: email.into(), name: String::new() };
    fake.add_users([
        user("user-a", "alice@acme.com"),
        user("user-b", "Bob@Acme.com"),
        user("user-c", "carol@acme.com"),
    ]);
    fake.add_projects([
        Project { id: "proj_eng".into(), name: "Engineering".into() },
        Project { id: "proj_other".into(), name: "Not ours".into() },
    ]);
    let addr = budgit_fakes::openai::start(fake.clone()).unwrap();
    (addr, fake)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "user.name=Policy Bot", "-c", "user.email=bot@acme.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(root: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(root.join("policies")).unwrap();
    for (name, text) in files {
        std::fs::write(root.join("policies").join(name), text).unwrap();
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "policies"]);
    git(root, &["rev-parse", "HEAD"])
}

fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    git(tmp.path(), &["init", "-q", "-b", "main"]);
    commit(tmp.path(), files);
    tmp
}

fn budgit(repo: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_budgit"))
        .current_dir(repo)
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("OPENAI_ADMIN_KEY", KEY)
        .output()
        .unwrap()
}

fn reconcile_args(addr: SocketAddr, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["reconcile", "--target", "openai", "--ref", "main", "--now", NOW].map(String::from).into();
    args.push("--workspace".into());
    args.push(format!("http://{addr}/v1"));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn reconcile(repo: &Path, addr: SocketAddr, extra: &[&str]) -> (i32, Value) {
    let mut extra = extra.to_vec();
    extra.extend(["--format", "json"]);
    let args = reconcile_args(addr, &extra);
    let out = budgit(repo, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key leaked");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), v)
}

/// A scope's spend limit (cents) and its alerts' thresholds (cents, sorted), as the fake holds them.
fn scope(addr: SocketAddr, base: &str) -> (Option<i64>, Vec<i64>) {
    let (status, limit) = call(addr, "GET", &format!("/v1{base}/spend_limit"), None);
    let limit = (status == 200).then(|| limit["threshold_amount"].as_i64().unwrap());
    let (status, alerts) = call(addr, "GET", &format!("/v1{base}/spend_alerts?limit=100"), None);
    assert_eq!(status, 200, "{alerts}");
    let mut amounts: Vec<i64> =
        alerts["data"].as_array().unwrap().iter().map(|a| a["threshold_amount"].as_i64().unwrap()).collect();
    amounts.sort_unstable();
    (limit, amounts)
}

const ORG: &str = "/organization";
const ENG_PROJECT: &str = "/organization/projects/proj_eng";

/// The audit log in the repository, oldest first.
fn audit(repo: &Path) -> Vec<Value> {
    let revs = git(repo, &["rev-list", "--reverse", "refs/budgit/audit/openai"]);
    let mut out = Vec::new();
    for rev in revs.lines() {
        let text = git(repo, &["show", &format!("{rev}:audit.jsonl")]);
        out.extend(text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    out
}

fn items(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|i| i["user"].as_str().unwrap().to_string()).collect()
}

fn alert(threshold: i64) -> Value {
    json!({
        "currency": "USD",
        "interval": "month",
        "threshold_amount": threshold,
        "notification_channel": { "type": "email", "recipients": ["someone@acme.com"] },
    })
}

#[test]
fn the_full_loop_writes_limits_and_alerts_then_is_a_no_op_and_reverts_drift_by_hand() {
    let (addr, _fake) = fake();
    let repo = repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG)]);
    let root = repo.path();

    // a dry run lists the exact calls and writes nothing, the audit included
    let (code, r) = reconcile(root, addr, &["--dry-run"]);
    assert_eq!(code, 0, "{r}");
    let channel = json!({ "type": "email", "recipients": ["finance@acme.com"] });
    let money = |cents: i64| json!({ "currency": "USD", "interval": "month", "threshold_amount": cents });
    let with_channel = |cents: i64| {
        let mut b = money(cents);
        b["notification_channel"] = channel.clone();
        b
    };
    // three members: alice 500 (engineering), bob and carol 100 → 700 credits = 700 cents
    assert_eq!(
        r["vendor_calls"],
        json!([
            { "method": "POST", "path": "/organization/spend_limit", "body": money(700) },
            { "method": "POST", "path": "/organization/spend_alerts", "body": with_channel(350) },
            { "method": "POST", "path": "/organization/spend_alerts", "body": with_channel(560) },
            { "method": "POST", "path": "/organization/projects/proj_eng/spend_limit", "body": money(4000) },
            { "method": "POST", "path": "/organization/projects/proj_eng/spend_alerts", "body": with_channel(2000) },
            { "method": "POST", "path": "/organization/projects/proj_eng/spend_alerts", "body": with_channel(3200) },
        ]),
        "{r}"
    );
    assert_eq!(scope(addr, ORG), (None, vec![]));
    assert_eq!(scope(addr, ENG_PROJECT), (None, vec![]));
    assert!(git(root, &["for-each-ref", "refs/budgit/"]).is_empty());

    // the real run writes them, each scope audited with the commit and its calls
    let head = git(root, &["rev-parse", "HEAD"]);
    let (code, r) = reconcile(root, addr, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(items(&r["applied"]), ["organization", "project proj_eng"]);
    assert_eq!(scope(addr, ORG), (Some(700), vec![350, 560]));
    assert_eq!(scope(addr, ENG_PROJECT), (Some(4000), vec![2000, 3200]));
    assert_eq!(scope(addr, "/organization/projects/proj_other"), (None, vec![]));
    let sets: Vec<Value> = audit(root).into_iter().filter(|e| e["action"] == "scope.set").collect();
    assert_eq!(sets.len(), 2);
    assert!(sets.iter().all(|e| e["commit"] == head.as_str()), "{sets:?}");
    assert_eq!(sets[1]["calls"].as_array().unwrap().len(), 3);
    assert_eq!(sets[1]["group"], "engineering");

    // nothing to do the second time, and no write
    let (code, r) = reconcile(root, addr, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!((r["applied"].as_array().unwrap().len(), r["unchanged"].as_u64()), (0, Some(2)), "{r}");
    assert_eq!(r["calls_made"], 6, "{r}"); // users, projects, and a limit and alerts read per scope
    assert_eq!(audit(root).len(), 4);

    // by hand in the OpenAI console: the project limit lowered, an alert added, an org alert deleted
    assert_eq!(
        call(addr, "POST", "/v1/organization/projects/proj_eng/spend_limit", Some(&money(1000))).0,
        200
    );
    assert_eq!(
        call(addr, "POST", "/v1/organization/projects/proj_eng/spend_alerts", Some(&alert(999))).0,
        200
    );
    let (_, org_alerts) = call(addr, "GET", "/v1/organization/spend_alerts", None);
    let first = org_alerts["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(call(addr, "DELETE", &format!("/v1/organization/spend_alerts/{first}"), None).0, 200);

    // unmanaged drift, reported and left with --no-revert
    let (code, r) = reconcile(root, addr, &["--no-revert"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(items(&r["skipped"]), ["organization", "project proj_eng"], "{r}");
    assert!(r["drift"].as_array().unwrap().iter().all(|d| d["kind"] == "unmanaged"), "{r}");
    assert_eq!(scope(addr, ENG_PROJECT), (Some(1000), vec![999, 2000, 3200]));

    // and reverted without it: the limit back, the stray alert gone, the deleted one back
    let (code, r) = reconcile(root, addr, &["--allow-mass-change"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(items(&r["applied"]), ["organization", "project proj_eng"], "{r}");
    assert_eq!(scope(addr, ORG), (Some(700), vec![350, 560]));
    assert_eq!(scope(addr, ENG_PROJECT), (Some(4000), vec![2000, 3200]));
    let (_, r) = reconcile(root, addr, &[]);
    assert_eq!((r["applied"].as_array().unwrap().len(), r["unchanged"].as_u64()), (0, Some(2)), "{r}");

    // the group gives up its project: budgit's limit and alerts there are removed,
    // and a declared cap becomes the organisation limit
    let ws = WORKSPACE.replace("    reconcile:\n", "    reconcile:\n      org_limit: 2500\n");
    let eng = ENG.replace("pool:\n  credits: 4000\nvendors:\n  openai:\n    project: proj_eng\n", "");
    let head = commit(root, &[("workspace.yaml", &ws), ("eng.yaml", &eng)]);
    let (code, r) = reconcile(root, addr, &["--allow-mass-change"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(items(&r["applied"]), ["organization", "project proj_eng"], "{r}");
    assert_eq!(scope(addr, ORG), (Some(2500), vec![1250, 2000]));
    assert_eq!(scope(addr, ENG_PROJECT), (None, vec![]));
    let last = audit(root).into_iter().last().unwrap();
    assert_eq!(
        (last["action"].as_str(), last["commit"].as_str()),
        (Some("scope.remove"), Some(head.as_str()))
    );
    let (_, r) = reconcile(root, addr, &[]);
    assert_eq!((r["applied"].as_array().unwrap().len(), r["unchanged"].as_u64()), (0, Some(1)), "{r}");
}

#[test]
fn rate_limits_and_server_errors_are_retried_honouring_retry_after() {
    let (addr, fake) = fake();
    let repo = repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG)]);
    // Faults meet the calls in order: members and projects pass, the first read of
    // the live limits fails (the four reads are retried), then the first write is
    // rate limited twice and fails once.
    let pass = Fault::Slow { millis: 0 };
    fake.push_faults([
        pass,
        pass,
        Fault::ServerError,
        pass,
        pass,
        pass,
        pass,
        Fault::TooMany { retry_after: 1 },
        Fault::TooMany { retry_after: 1 },
        Fault::ServerError,
    ]);
    let started = Instant::now();
    let (code, r) = reconcile(repo.path(), addr, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(items(&r["applied"]), ["organization", "project proj_eng"], "{r}");
    assert!(started.elapsed() >= Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!(r["retries"], 3, "{r}");
    assert_eq!(fake.calls("/v1/organization/spend_limit"), 2 + 3 + 1, "{r}");
    assert_eq!(scope(addr, ORG), (Some(700), vec![350, 560]));
    assert_eq!(scope(addr, ENG_PROJECT), (Some(4000), vec![2000, 3200]));
    // each scope's write is audited once, however often it was tried
    let sets = audit(repo.path()).into_iter().filter(|e| e["action"] == "scope.set").count();
    assert_eq!(sets, 2);
}

#[test]
fn an_unknown_project_and_a_policy_openai_cannot_express_are_refused_before_any_write() {
    let (addr, fake) = fake();
    let repo = repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", &ENG.replace("proj_eng", "proj_gone"))]);
    let (code, r) = reconcile(repo.path(), addr, &[]);
    assert_eq!(code, 1, "{r}");
    assert!(r["error"].as_str().unwrap().contains("[vendor/unknown-project]"), "{r}");
    assert_eq!(fake.calls("/v1/organization/spend_limit"), 0);

    // a pool without a project: `validate` says where, and reconcile refuses the commit
    let no_project = ENG.replace("vendors:\n  openai:\n    project: proj_eng\n", "");
    commit(repo.path(), &[("eng.yaml", &no_project)]);
    let out = budgit(repo.path(), &["validate", "--policies", "policies"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("error[vendor/pool-without-project]"), "{stdout}");
    assert!(stdout.contains("--> policies/eng.yaml:9:3"), "{stdout}");
    let (code, r) = reconcile(repo.path(), addr, &[]);
    assert_eq!(code, 1, "{r}");
    assert!(r["error"].as_str().unwrap().contains("vendor/pool-without-project"), "{r}");
    assert_eq!(fake.calls("/v1/organization/spend_limit"), 0);
}
