//! `budgit requests sync --source claude-enterprise`: a member's spend-limit increase
//! request at the vendor, round-tripped through a real `budgit serve`'s credit requests,
//! a proposal branch merged with git2, the reconciler, and back to the vendor. The
//! full loop starts from `budgit import` of the limits set by hand at the vendor.
//!
//! The fake Admin API (`budgit-fakes`, checked against the official SDK by
//! `claude_sdk.rs`) serves on loopback from this process; `budgit serve`, `budgit
//! reconcile` and `budgit requests sync` run as real processes on one policy repository.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::try_send;
use common::serve::Serve;
use serde_json::{Value, json};

const KEY: &str = "sk-ant-admin-test-0123456789";
const ADMIN: &str = "requests-test-admin-5d1e0c-0123456789abcdef";

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
period: month
default:
  credits: 100
vendors:
  claude-enterprise:
    currency: usd
    credit: \"0.01\"
";

fn vendor(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
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

fn fake_post(addr: SocketAddr, path: &str, body: &Value) -> Value {
    let r =
        try_send(addr, "POST", path, None, Some(&body.to_string()), &[("content-type", "application/json")])
            .unwrap();
    assert!(r.status < 300, "{path}: {} {}", r.status, r.body);
    if r.body.is_empty() { Value::Null } else { r.json() }
}

fn fake(members: &[&str]) -> (SocketAddr, BTreeMap<String, String>) {
    let addr = budgit_fakes::spawn(budgit_fakes::claude::router()).unwrap();
    let new: Vec<Value> = members.iter().map(|m| json!({ "email": m })).collect();
    let ids = fake_post(addr, "/_fake/members", &Value::Array(new));
    let ids = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap().to_string(), m["id"].as_str().unwrap().to_string()))
        .collect();
    (addr, ids)
}

/// A pending increase request at the vendor, as a member would make in its console.
fn ask(addr: SocketAddr, member: &str) -> String {
    let made = fake_post(addr, "/_fake/increase_requests", &json!([{ "user_id": member }]));
    made[0]["id"].as_str().unwrap().to_string()
}

fn calls(addr: SocketAddr, method: &str) -> Vec<Value> {
    let r = try_send(addr, "GET", "/_fake/calls", None, None, &[]).unwrap();
    r.json().as_array().unwrap().iter().filter(|c| c["method"] == method).cloned().collect()
}

fn decisions(addr: SocketAddr) -> Vec<Value> {
    calls(addr, "POST")
        .into_iter()
        .filter(|c| {
            c["path"].as_str().unwrap().starts_with("/v1/organizations/spend_limit_increase_requests/")
        })
        .collect()
}

/// Each member's own monthly limit, by email.
fn live(addr: SocketAddr) -> BTreeMap<String, String> {
    let v = vendor(addr, "GET", "/v1/organizations/spend_limits/effective?limit=1000", None);
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["source"]["type"] == "user" && r["period"] == "monthly")
        .map(|r| {
            (
                r["actor"]["email_address"].as_str().unwrap().to_string(),
                r["amount"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_at_vendor(addr: SocketAddr, id: &str) -> String {
    vendor(addr, "GET", &format!("/v1/organizations/spend_limit_increase_requests/{id}"), None)["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn repo() -> (tempfile::TempDir, git2::Repository) {
    let tmp = tempfile::tempdir().unwrap();
    let repo =
        git2::Repository::init_opts(tmp.path(), git2::RepositoryInitOptions::new().initial_head("main"))
            .unwrap();
    std::fs::create_dir_all(tmp.path().join("policies")).unwrap();
    std::fs::write(tmp.path().join("policies/workspace.yaml"), WORKSPACE).unwrap();
    {
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("policies/workspace.yaml")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let who = git2::Signature::now("Policy Bot", "bot@acme.com").unwrap();
        repo.commit(Some("refs/heads/main"), &who, &who, "policies", &tree, &[]).unwrap();
    }
    (tmp, repo)
}

/// The policy repository `budgit import` writes from the vendor's limits as they are,
/// committed on `main` with git2.
fn imported_repo(vendor: SocketAddr) -> (tempfile::TempDir, git2::Repository) {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{vendor}");
    let out =
        bin(tmp.path(), &["import", "--source", "claude-enterprise", "--workspace", &url, "--out", "."])
            .args(["--name", "acme"])
            .output()
            .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("wrote 2 files to `./policies`"), "{stderr}");
    let repo =
        git2::Repository::init_opts(tmp.path(), git2::RepositoryInitOptions::new().initial_head("main"))
            .unwrap();
    {
        let mut index = repo.index().unwrap();
        index.add_all(["policies"], git2::IndexAddOption::DEFAULT, None).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let who = git2::Signature::now("Policy Bot", "bot@acme.com").unwrap();
        repo.commit(Some("refs/heads/main"), &who, &who, "limits as they are", &tree, &[]).unwrap();
    }
    (tmp, repo)
}

/// Merges `branch` into `main` with a merge commit, as a forge's merge button does.
fn merge(repo: &git2::Repository, branch: &str) {
    let main = repo.find_reference("refs/heads/main").unwrap().peel_to_commit().unwrap();
    let theirs = repo.find_reference(&format!("refs/heads/{branch}")).unwrap().peel_to_commit().unwrap();
    let mut index = repo.merge_commits(&main, &theirs, None).unwrap();
    assert!(!index.has_conflicts());
    let tree = repo.find_tree(index.write_tree_to(repo).unwrap()).unwrap();
    let who = git2::Signature::now("Reviewer", "reviewer@acme.com").unwrap();
    repo.commit(Some("refs/heads/main"), &who, &who, &format!("Merge {branch}"), &tree, &[&main, &theirs])
        .unwrap();
}

/// `budgit serve` on the policy repository at `root`, approving from `main`.
fn serve(root: &Path) -> Serve {
    let mut cmd = common::serve::command(&root.join("serve.db"));
    cmd.current_dir(root).args(["--repo", ".", "--approved-ref", "main"]).env("BUDGIT_ADMIN_TOKEN", ADMIN);
    Serve::start(cmd)
}

fn budgit(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Value {
    let text = body.map(Value::to_string);
    let r =
        try_send(addr, method, path, Some(ADMIN), text.as_deref(), &[("content-type", "application/json")])
            .unwrap();
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    r.json()
}

fn credit_requests(addr: SocketAddr) -> Vec<Value> {
    budgit(addr, "GET", "/v1/requests?limit=1000", None)["data"].as_array().unwrap().clone()
}

fn bin(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    cmd.current_dir(root)
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("ANTHROPIC_API_KEY", KEY)
        .env("BUDGIT_TOKEN", ADMIN);
    cmd
}

fn json_of(cmd: &mut Command) -> (i32, Value) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY), "the key leaked");
    assert!(!stdout.contains(ADMIN) && !stderr.contains(ADMIN), "the token leaked");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (out.status.code().unwrap_or(-1), v)
}

fn reconcile(root: &Path, vendor: SocketAddr, extra: &[&str]) -> Value {
    let url = format!("http://{vendor}");
    let mut args = vec![
        "reconcile",
        "--target",
        "claude-enterprise",
        "--ref",
        "main",
        "--format",
        "json",
        "--workspace",
        &url,
    ];
    args.extend_from_slice(extra);
    let (code, r) = json_of(&mut bin(root, &args));
    assert_eq!(code, 0, "{r}");
    r
}

fn sync_cmd(root: &Path, vendor: SocketAddr, serve: SocketAddr, extra: &[&str]) -> Command {
    let (v, s) = (format!("http://{vendor}"), format!("http://{serve}"));
    let mut args = vec![
        "requests",
        "sync",
        "--source",
        "claude-enterprise",
        "--vendor",
        &v,
        "--workspace",
        &s,
        "--ref",
        "main",
        "--add",
        "200",
        "--days",
        "14",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    bin(root, &args)
}

fn sync(root: &Path, vendor: SocketAddr, serve: SocketAddr) -> Value {
    sync_as(root, vendor, serve, &[])
}

fn sync_as(root: &Path, vendor: SocketAddr, serve: SocketAddr, extra: &[&str]) -> Value {
    let (code, r) = json_of(&mut sync_cmd(root, vendor, serve, extra));
    assert_eq!(code, 0, "{r}");
    matches_schema(&r);
    r
}

/// The output passes its checked-in schema, `schemas/requests-sync-output.schema.json`.
fn matches_schema(output: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/requests-sync-output.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(output).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "the output fails its schema: {errors:?}\n{output}");
}

/// budgit's audit of its vendor writes, oldest first.
fn audit(repo: &git2::Repository) -> Vec<Value> {
    let Ok(tip) = repo.find_reference("refs/budgit/audit/claude-enterprise") else { return Vec::new() };
    let mut commits = Vec::new();
    let mut next = tip.target();
    while let Some(id) = next {
        let c = repo.find_commit(id).unwrap();
        next = c.parent_ids().next();
        commits.push(c);
    }
    let mut out = Vec::new();
    for c in commits.iter().rev() {
        let entry = c.tree().unwrap().get_name("audit.jsonl").unwrap().id();
        let blob = repo.find_blob(entry).unwrap();
        out.extend(
            String::from_utf8_lossy(blob.content())
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()),
        );
    }
    out
}

fn count(entries: &[Value], action: &str, vendor_request: &str) -> usize {
    entries.iter().filter(|e| e["action"] == action && e["vendor_request"] == vendor_request).count()
}

#[test]
fn an_increase_request_is_approved_at_the_applied_amount_once_merged_and_reconciled_and_a_declined_one_denied()
 {
    let (vendor_addr, ids) = fake(&["alice@acme.com", "bob@acme.com", "carol@acme.com"]);
    // limits set by hand: $1.00 a month for everyone, $5.00 for bob
    fake_post(vendor_addr, "/_fake/org_limit", &json!({ "period": "monthly", "amount": "100" }));
    let bob_limit = |amount: &str| {
        let scope = json!({ "type": "user", "user_id": ids["bob@acme.com"] });
        let body = json!({ "amount": amount, "scope": scope, "period": "monthly" });
        vendor(vendor_addr, "POST", "/v1/organizations/spend_limits", Some(&body));
    };
    bob_limit("500");

    // imported and committed: the policies hold what the vendor holds, nothing to write
    let (tmp, git) = imported_repo(vendor_addr);
    let root = tmp.path();
    let bob_group = std::fs::read_to_string(root.join("policies/groups/limit-500.yaml")).unwrap();
    assert!(bob_group.contains("members:\n  - \"bob@acme.com\"\n"), "{bob_group}");
    let server = serve(root);
    let srv = server.addr;
    let r = reconcile(root, vendor_addr, &[]);
    assert_eq!((r["applied"].clone(), r["unchanged"].clone()), (json!([]), json!(3)), "{r}");
    assert!(audit(&git).is_empty());

    // a hand edit at the vendor is reverted to the policy's value
    bob_limit("999");
    let r = reconcile(root, vendor_addr, &["--max-lower-share", "1"]);
    assert_eq!(r["applied"][0]["user"], "bob@acme.com", "{r}");
    assert_eq!(live(vendor_addr)["bob@acme.com"], "500");

    // alice and carol ask the vendor for more
    let alice_req = ask(vendor_addr, &ids["alice@acme.com"]);
    let carol_req = ask(vendor_addr, &ids["carol@acme.com"]);

    // the sync makes one credit request each, the vendor's id and spend summary in
    // context (alice's limit is still the organisation's, which the import kept)
    let r = sync(root, vendor_addr, srv);
    assert_eq!(r["created"].as_array().unwrap().len(), 2, "{r}");
    let made = credit_requests(srv);
    assert_eq!(made.len(), 2);
    let alice = made.iter().find(|q| q["user"] == "alice@acme.com").unwrap().clone();
    let carol = made.iter().find(|q| q["user"] == "carol@acme.com").unwrap().clone();
    assert_eq!((alice["credits"].clone(), alice["days"].clone()), (json!(200), json!(14)), "{alice}");
    assert_eq!(alice["context"]["source"], "claude-enterprise");
    assert_eq!(alice["context"]["vendor_request"], alice_req.as_str());
    assert_eq!(alice["context"]["spend_summary"]["amount"], "100");
    assert_eq!(
        alice["context"]["text"],
        "alice@acme.com asked Claude Enterprise for a higher monthly spend limit: 0.00 USD spent this period of \
         1.00 USD (100 credits), from the organization scope"
    );

    // a rerun creates nothing twice, writes nothing at the vendor, and says what waits
    let r = sync(root, vendor_addr, srv);
    assert_eq!(r["created"], json!([]), "{r}");
    assert_eq!(r["waiting"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(credit_requests(srv).len(), 2);
    assert!(decisions(vendor_addr).is_empty());

    // the reviewer proposes alice's (a branch with the Override) and declines carol's
    let proposed = budgit(srv, "POST", &format!("/v1/requests/{}/propose", alice["id"]), None);
    let branch = proposed["branch"].as_str().unwrap().to_string();
    budgit(
        srv,
        "POST",
        &format!("/v1/requests/{}/decline", carol["id"]),
        Some(&json!({ "reason": "over the team's quarterly budget" })),
    );

    // carol's is denied at the vendor; alice's waits on the merge
    let r = sync(root, vendor_addr, srv);
    assert_eq!(r["denied"][0]["vendor_request"], carol_req.as_str(), "{r}");
    assert_eq!(r["waiting"][0]["vendor_request"], alice_req.as_str(), "{r}");
    assert!(r["waiting"][0]["on"].as_str().unwrap().contains(&branch), "{r}");
    assert_eq!(status_at_vendor(vendor_addr, &carol_req), "denied");
    assert_eq!(status_at_vendor(vendor_addr, &alice_req), "pending");

    // merged, not yet reconciled: still waiting, nothing approved
    merge(&git, &branch);
    let r = sync(root, vendor_addr, srv);
    assert_eq!(r["waiting"][0]["on"], "the reconciler to apply the merged override", "{r}");
    assert_eq!(status_at_vendor(vendor_addr, &alice_req), "pending");

    // reconciled: 100 + 200 credits is $3.00; the sync approves at exactly that
    let r = reconcile(root, vendor_addr, &[]);
    assert_eq!(r["applied"][0]["user"], "alice@acme.com", "{r}");
    assert_eq!(live(vendor_addr)["alice@acme.com"], "300");
    let r = sync(root, vendor_addr, srv);
    assert_eq!(r["approved"][0]["vendor_request"], alice_req.as_str(), "{r}");
    assert_eq!(
        (r["approved"][0]["amount"].clone(), r["approved"][0]["credits"].clone()),
        (json!("300"), json!(300))
    );
    assert_eq!(status_at_vendor(vendor_addr, &alice_req), "approved");
    let writes = decisions(vendor_addr);
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(
        writes[1]["path"],
        format!("/v1/organizations/spend_limit_increase_requests/{alice_req}/approve")
    );
    assert_eq!(writes[1]["body"]["amount"], "300");
    assert_eq!(writes[1]["body"]["period"], "monthly");

    // every vendor write audited once; the decline's reason kept
    let entries = audit(&git);
    assert_eq!(count(&entries, "request.approved", &alice_req), 1);
    assert_eq!(count(&entries, "request.denied", &carol_req), 1);
    let denied = entries.iter().find(|e| e["action"] == "request.denied").unwrap();
    assert_eq!(denied["reason"], "over the team's quarterly budget");
    assert_eq!(denied["request"], carol["id"]);

    // nothing left to do: no vendor writes, and the vendor's own write is no drift
    let r = sync(root, vendor_addr, srv);
    assert_eq!(
        (r["approved"].clone(), r["denied"].clone(), r["waiting"].clone()),
        (json!([]), json!([]), json!([]))
    );
    assert_eq!(decisions(vendor_addr).len(), 2);
    let r = reconcile(root, vendor_addr, &[]);
    assert_eq!((r["applied"].as_array().unwrap().len(), r["drift"].as_array().unwrap().len()), (0, 0), "{r}");
}

#[test]
fn a_sync_killed_mid_write_is_finished_by_the_next_without_writing_twice() {
    let emails: Vec<String> = (0..12).map(|i| format!("p{i:02}@acme.com")).collect();
    let (vendor_addr, ids) = fake(&emails.iter().map(String::as_str).collect::<Vec<_>>());
    let (tmp, git) = repo();
    let root = tmp.path();
    let server = serve(root);
    let srv = server.addr;
    reconcile(root, vendor_addr, &["--max-changes", "100"]);
    let asked: Vec<String> = emails.iter().map(|e| ask(vendor_addr, &ids[e])).collect();
    let r = sync(root, vendor_addr, srv);
    assert_eq!(r["created"].as_array().unwrap().len(), 12, "{r}");
    for q in credit_requests(srv) {
        budgit(
            srv,
            "POST",
            &format!("/v1/requests/{}/decline", q["id"]),
            Some(&json!({ "reason": "not this month" })),
        );
    }

    // each write is held 500 ms at the fake: the kill, within a poll of the fourth call
    // arriving, lands while that call is in flight and its outcome is not yet audited
    fake_post(vendor_addr, "/_fake/faults", &json!({ "delay_ms": 500, "method": "POST", "times": 1000 }));
    let mut child = sync_cmd(root, vendor_addr, srv, &["--holder", "syncer-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while decisions(vendor_addr).len() < 4 {
        assert!(Instant::now() < deadline, "the sync made no writes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: the outcome of the write in flight is never audited
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let denied_before: Vec<&String> =
        asked.iter().filter(|id| status_at_vendor(vendor_addr, id) == "denied").collect();
    assert!((3..12).contains(&denied_before.len()), "{}", denied_before.len());
    let open = audit(&git).iter().filter(|e| e["action"] == "request.intent").count()
        - audit(&git).iter().filter(|e| e["action"] == "request.denied").count();
    assert_eq!(open, 1, "one intent is open after the kill");

    try_send(vendor_addr, "DELETE", "/_fake/faults", None, None, &[]).unwrap();
    try_send(vendor_addr, "DELETE", "/_fake/calls", None, None, &[]).unwrap();
    // restarted under the same name, it takes the killed sync's lease back at once
    let r = sync_as(root, vendor_addr, srv, &["--holder", "syncer-1"]);
    assert_eq!(r["created"], json!([]), "{r}");
    assert_eq!(r["recovered"].as_array().unwrap().len(), 1, "{r}");
    // no vendor request denied before the kill is written again
    let again: Vec<String> =
        decisions(vendor_addr).iter().map(|c| c["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(again.len(), 12 - denied_before.len(), "{again:?}");
    assert!(denied_before.iter().all(|id| !again.iter().any(|p| p.contains(id.as_str()))), "{again:?}");
    assert!(asked.iter().all(|id| status_at_vendor(vendor_addr, id) == "denied"));
    // each audited once as denied, and no credit request made twice
    let entries = audit(&git);
    assert!(asked.iter().all(|id| count(&entries, "request.denied", id) == 1), "{entries:?}");
    assert_eq!(credit_requests(srv).len(), 12);
}

#[test]
fn two_syncs_started_together_make_one_credit_request_per_vendor_request() {
    let emails: Vec<String> = (0..6).map(|i| format!("t{i:02}@acme.com")).collect();
    let (vendor_addr, ids) = fake(&emails.iter().map(String::as_str).collect::<Vec<_>>());
    let (tmp, git) = repo();
    let root = tmp.path();
    let server = serve(root);
    let srv = server.addr;
    let asked: Vec<String> = emails.iter().map(|e| ask(vendor_addr, &ids[e])).collect();
    // Both syncs list the vendor's requests slowly, so without a lease each would read
    // "no credit request yet" for every one of them before either made any.
    fake_post(
        vendor_addr,
        "/_fake/faults",
        &json!({ "delay_ms": 1000, "method": "GET", "path": "/v1/organizations/spend_limit_increase_requests", "times": 2 }),
    );
    let children: Vec<_> = ["sync-a", "sync-b"]
        .map(|holder| {
            sync_cmd(root, vendor_addr, srv, &["--holder", holder])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .into_iter()
        .collect();
    let outs: Vec<_> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let won: Vec<&std::process::Output> = outs.iter().filter(|o| o.status.success()).collect();
    let lost: Vec<&std::process::Output> = outs.iter().filter(|o| !o.status.success()).collect();
    assert_eq!((won.len(), lost.len()), (1, 1), "{outs:?}");
    let r: Value = serde_json::from_slice(&won[0].stdout).unwrap();
    matches_schema(&r);
    assert_eq!(r["created"].as_array().unwrap().len(), 6, "{r}");
    let stderr = String::from_utf8_lossy(&lost[0].stderr);
    assert_eq!(lost[0].status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("another sync is running: lease `budgit-requests-sync` is held by `sync-"),
        "{stderr}"
    );
    assert!(lost[0].stdout.is_empty(), "{}", String::from_utf8_lossy(&lost[0].stdout));

    // one credit request per vendor request, and the lease given back
    let made = credit_requests(srv);
    let mut by_vendor: Vec<&str> =
        made.iter().map(|q| q["context"]["vendor_request"].as_str().unwrap()).collect();
    by_vendor.sort_unstable();
    let mut want: Vec<&str> = asked.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(by_vendor, want);
    assert!(git.find_reference("refs/budgit/leases/budgit-requests-sync").is_err());
    // the next sync finds them all and makes none
    let r = sync(root, vendor_addr, srv);
    assert_eq!(r["created"], json!([]), "{r}");
    assert_eq!(credit_requests(srv).len(), 6);
}
