//! `budgit reconcile --target openai` as a real process against the fake OpenAI Admin API.
//!
//! The fake (`budgit-fakes`, checked against the official `openai` SDK's types by
//! `serve_sdk.rs`) serves on loopback from this process; each test makes a git
//! repository of policies and runs the reconciler binary with a cleared
//! environment. Faults (429 with `Retry-After`, 500) are queued on the fake, its
//! pages can be capped small, and its writes held (parked without an answer) so a
//! run can be killed or timed out at an exact write; the audit is read back from
//! the repository's audit ref.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

#[path = "../../engine/tests/common/git_repo.rs"]
mod git_repo;
#[path = "../../service/tests/common/http.rs"]
mod http;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use budgit_fakes::openai::{Fake, Fault, Project, User};
use git_repo::{commit, git, repo};
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

fn budgit_cmd(repo: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    cmd.current_dir(repo).args(args).env_clear().env("NO_COLOR", "1").env("OPENAI_ADMIN_KEY", KEY);
    cmd
}

fn budgit(repo: &Path, args: &[&str]) -> std::process::Output {
    budgit_cmd(repo, &args.iter().map(|a| a.to_string()).collect::<Vec<_>>()).output().unwrap()
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
    // two reads, the write three times, and the scope read again before each retry
    // of the write (twice refused, then answered)
    assert_eq!(fake.calls("/v1/organization/spend_limit"), 2 + 3 + 2, "{r}");
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

/// A scope's alerts as the fake holds them, every page: id → threshold (cents).
fn alert_ids(addr: SocketAddr, base: &str) -> std::collections::BTreeMap<String, i64> {
    let mut out = std::collections::BTreeMap::new();
    let mut after = String::new();
    loop {
        let (status, page) = call(addr, "GET", &format!("/v1{base}/spend_alerts?limit=100{after}"), None);
        assert_eq!(status, 200, "{page}");
        for a in page["data"].as_array().unwrap() {
            out.insert(a["id"].as_str().unwrap().to_string(), a["threshold_amount"].as_i64().unwrap());
        }
        match (page["has_more"].as_bool(), page["last_id"].as_str()) {
            (Some(true), Some(last)) => after = format!("&after={last}"),
            _ => return out,
        }
    }
}

/// The calls of every outcome in the audit (what budgit says it did), sorted.
fn audited_calls(entries: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .filter(|e| ["scope.set", "scope.remove", "intent.lapsed"].contains(&e["action"].as_str().unwrap()))
        .flat_map(|e| e["calls"].as_array().cloned().unwrap_or_default())
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The writes the fake applied, as the audit names them (without `/v1`), sorted.
fn sorted_writes(writes: &[String]) -> Vec<String> {
    let mut out: Vec<String> = writes.iter().map(|w| w.replacen(" /v1/", " /", 1)).collect();
    out.sort();
    out
}

/// Kills a reconcile with `kill -9` while the fake holds its write after `after` more
/// (applied or not), then lets a second run finish, and checks what each left.
fn killed_then_finished(after: u64, applied: bool) {
    let (addr, fake) = fake();
    let repo = repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG)]);
    let root = repo.path();
    let (code, r) = reconcile(root, addr, &[]);
    assert_eq!(code, 0, "{r}");
    let mut by_budgit = fake.writes();
    // by hand in the OpenAI console: an alert in the project, which policy does not want
    assert_eq!(call(addr, "POST", &format!("/v1{ENG_PROJECT}/spend_alerts"), Some(&alert(999))).0, 200);
    let hand = fake.writes().len();
    let org_before = alert_ids(addr, ORG);
    let eng_before = alert_ids(addr, ENG_PROJECT);

    // a third alert level, and the project's pool raised: the organisation gets one
    // alert (1 write); the project its limit, two alerts updated, one created and the
    // one set by hand deleted (5 writes, in that order)
    commit(
        root,
        &[
            ("workspace.yaml", &WORKSPACE.replace("alerts: [50, 80]", "alerts: [50, 80, 95]")),
            ("eng.yaml", &ENG.replace("credits: 4000", "credits: 5000")),
        ],
    );
    fake.hold_writes(after, applied);
    let args = reconcile_args(addr, &["--allow-mass-change", "--holder", "reconciler-1"]);
    let mut child = budgit_cmd(root, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert!(fake.wait_held(1, Duration::from_secs(60)), "the run never reached the held write");
    child.kill().unwrap(); // SIGKILL while the vendor holds the write: no cleanup
    child.wait().unwrap();
    fake.release();
    let killed = audit(root);
    let last = killed.last().unwrap();
    assert_eq!((last["action"].as_str(), last["item"].as_str()), (Some("intent"), Some("project proj_eng")));
    let org_killed = alert_ids(addr, ORG);
    let eng_killed = alert_ids(addr, ENG_PROJECT);

    // restarted under the same name, it takes its own lease back and finishes
    let (code, r) = reconcile(root, addr, &["--allow-mass-change", "--holder", "reconciler-1"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(scope(addr, ORG), (Some(700), vec![350, 560, 665]));
    assert_eq!(scope(addr, ENG_PROJECT), (Some(5000), vec![2500, 4000, 4750]));
    // the organisation was finished by the killed run: its alerts keep their ids; the
    // project's alerts are those the killed run left (the one it created adopted),
    // less the one set by hand
    assert_eq!(alert_ids(addr, ORG), org_killed);
    assert!(org_killed.keys().collect::<Vec<_>>().starts_with(&org_before.keys().collect::<Vec<_>>()));
    let mut eng_left = eng_killed.clone();
    eng_left.retain(|_, cents| *cents != 999);
    assert_eq!(alert_ids(addr, ENG_PROJECT), eng_left);
    assert!(eng_before.keys().filter(|id| eng_before[*id] != 999).all(|id| eng_left.contains_key(id)));

    // every write budgit made is audited exactly once, whichever run audited it
    let writes = fake.writes();
    by_budgit.extend_from_slice(&writes[hand..]);
    let entries = audit(root);
    assert_eq!(audited_calls(&entries), sorted_writes(&by_budgit), "{entries:#?}");
    let recovered: Vec<&Value> = entries.iter().filter(|e| e["recovered"] == true).collect();
    assert_eq!(recovered.len(), 1, "{entries:#?}");
    assert_eq!(recovered[0]["item"], "project proj_eng");
    // nothing more to do
    let (_, r) = reconcile(root, addr, &[]);
    assert_eq!((r["applied"].as_array().unwrap().len(), r["unchanged"].as_u64()), (0, Some(2)), "{r}");
    assert_eq!(fake.writes().len(), writes.len());
    // what the recovered entry says, for the caller's case
    let calls = recovered[0]["calls"].as_array().unwrap().len();
    match (after, applied) {
        // the deletion of the alert set by hand landed and was never answered: all five
        // of the project's writes landed, and are audited then, none made again
        (5, true) => {
            assert_eq!(recovered[0]["action"], "scope.set", "{entries:#?}");
            assert_eq!(calls, 5);
            assert_eq!(r["calls_made"], 6, "{r}");
        }
        // the alert created landed and was never answered, the deletion never made: four
        // landed, the alert is adopted by its threshold and recipients, the deletion made
        (4, true) => {
            assert_eq!(recovered[0]["action"], "intent.lapsed", "{entries:#?}");
            assert_eq!(calls, 4);
            let last = entries.iter().rev().find(|e| e["action"] == "scope.set").unwrap();
            assert_eq!(last["calls"].as_array().unwrap().len(), 1, "{last}");
            assert!(last["calls"][0].as_str().unwrap().starts_with("DELETE "), "{last}");
        }
        _ => unreachable!(),
    }
}

#[test]
fn a_run_killed_after_the_vendor_wrote_is_finished_as_recovered_without_writing_again() {
    // the last write of the project is applied, and its answer never comes
    killed_then_finished(5, true);
}

#[test]
fn a_run_killed_mid_scope_is_finished_by_the_next_adopting_the_alert_it_created() {
    // the project's new alert is created, its answer (and id) never comes, and the
    // deletion after it is never made
    killed_then_finished(4, true);
}

#[test]
fn many_pages_of_projects_alerts_users_and_costs_are_read_whole() {
    let fake = Fake::new(KEY);
    fake.add_users((0..3).map(|i| User {
        id: format!("user-{i}"),
        email: format!("u{i}@acme.com"),
        name: String::new(),
    }));
    fake.add_projects((0..25).map(|i| Project { id: format!("proj_{i:02}"), name: format!("Team {i}") }));
    // a cent a day for each person, ten days
    fake.add_costs((0..10).flat_map(|d| {
        (0..3).map(move |i| budgit_fakes::openai::Cost {
            time: 1_793_491_200 + d * 86_400 + 60,
            user_id: Some(format!("user-{i}")),
            project_id: Some("proj_00".into()),
            line_item: "gpt-5, input".into(),
            amount: "0.01".into(),
        })
    }));
    // every list answers two rows a page, whatever the client asks for
    fake.set_page_size(2);
    let addr = budgit_fakes::openai::start(fake.clone()).unwrap();
    let ws = WORKSPACE.replace("alerts: [50, 80]", "alerts: [25, 50, 75, 90, 100]");
    let groups: Vec<(String, String)> = (0..25)
        .map(|i| {
            let doc = format!(
                "apiVersion: budgit/v1\nkind: Group\nname: team{i:02}\nlimit:\n  credits: 100\npool:\n  credits: {}\nvendors:\n  openai:\n    project: proj_{i:02}\n",
                1000 + 100 * i
            );
            (format!("team{i:02}.yaml"), doc)
        })
        .collect();
    let mut files: Vec<(&str, &str)> = vec![("workspace.yaml", &ws)];
    files.extend(groups.iter().map(|(n, d)| (n.as_str(), d.as_str())));
    let repo = repo(&files);
    let root = repo.path();

    let (code, r) = reconcile(root, addr, &["--allow-mass-change"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["applied"].as_array().unwrap().len(), 26, "{r}");
    // five alerts in each scope: three pages of them
    let mut amounts: Vec<i64> = alert_ids(addr, "/organization/projects/proj_24").into_values().collect();
    amounts.sort_unstable();
    assert_eq!(amounts, [850, 1700, 2550, 3060, 3400]);

    // the second run reads every page of everything and finds nothing to do: had it
    // missed a page of projects it would refuse a group's project, and a page of
    // alerts, it would create the alerts again
    let before = |p: &str| fake.calls(p);
    let (projects, users, alerts) = (
        before("/v1/organization/projects"),
        before("/v1/organization/users"),
        before("/v1/organization/projects/proj_13/spend_alerts"),
    );
    let org_alerts = before("/v1/organization/spend_alerts");
    let (code, r) = reconcile(root, addr, &[]);
    assert_eq!(code, 0, "{r}");
    assert_eq!((r["applied"].as_array().unwrap().len(), r["unchanged"].as_u64()), (0, Some(26)), "{r}");
    assert_eq!(fake.calls("/v1/organization/projects") - projects, 13); // 25 projects, 2 a page
    assert_eq!(fake.calls("/v1/organization/users") - users, 2); // 3 members
    assert_eq!(fake.calls("/v1/organization/projects/proj_13/spend_alerts") - alerts, 3);
    assert_eq!(fake.calls("/v1/organization/spend_alerts") - org_alerts, 3);

    // usage pull reads ten daily buckets two a page, and every page of members
    let users = fake.calls("/v1/organization/users");
    let base = format!("http://{addr}/v1");
    let out = budgit(
        root,
        &[
            "usage",
            "pull",
            "--source",
            "openai",
            "--workspace",
            &base,
            "--since",
            "2026-11-01",
            "--out",
            "usage.csv",
            "--now",
            "2026-11-11T00:00:00Z",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(fake.calls("/v1/organization/costs"), 5, "{stderr}");
    assert_eq!(fake.calls("/v1/organization/users") - users, 2, "{stderr}");
    let text = std::fs::read_to_string(root.join("usage.csv")).unwrap();
    assert_eq!(text.lines().count(), 1 + 30, "{text}");
    assert!(text.contains("\n2026-11-10,u2@acme.com,gpt-5,input,1,proj_00,openai:"), "{text}");
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
    let root = repo.path();
    let started = Instant::now();
    let (code, r) = reconcile(root, silent(), &["--timeout", "1s"]);
    assert_ne!(code, 0, "{r}");
    assert!(r["error"].as_str().unwrap().contains("did not answer in time"), "{r}");
    // five attempts of a second each, and their backoff
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(git(root, &["for-each-ref", "refs/budgit/audit/"]).is_empty());

    // writes applied but never answered: each attempt re-reads the scope, settles what
    // landed and writes only the rest, until the attempts run out
    let (addr, fake) = fake();
    fake.hold_writes(0, true);
    let started = Instant::now();
    let (code, r) = reconcile(root, addr, &["--timeout", "1s"]);
    assert_ne!(code, 0, "{r}");
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let failed = r["failed"].as_array().unwrap();
    assert!(!failed.is_empty(), "{r}");
    assert!(failed.iter().all(|f| f["reason"].as_str().unwrap().contains("did not answer in time")), "{r}");
    fake.release();
    let written = fake.writes();
    assert!((2..6).contains(&written.len()), "{written:?}");
    // nothing written twice, and nothing written that no audit entry names
    let entries = audit(root);
    let named: Vec<String> = entries
        .iter()
        .flat_map(|e| e["calls"].as_array().cloned().unwrap_or_default())
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    for w in sorted_writes(&written) {
        assert!(named.contains(&w), "{w} is not in the audit: {entries:#?}");
    }
    assert_eq!(
        alert_ids(addr, ORG).len() + alert_ids(addr, ENG_PROJECT).len(),
        written.iter().filter(|w| w.starts_with("POST") && w.ends_with("/spend_alerts")).count()
    );

    // the scope left half written reads as lowered (alerts it lacks), hence the flag
    let (code, r) = reconcile(root, addr, &["--timeout", "1s", "--allow-mass-change"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(scope(addr, ORG), (Some(700), vec![350, 560]));
    assert_eq!(scope(addr, ENG_PROJECT), (Some(4000), vec![2000, 3200]));
    assert_eq!(fake.writes().len(), 6, "{:?}", fake.writes());
    assert_eq!(audited_calls(&audit(root)), sorted_writes(&fake.writes()));
}
