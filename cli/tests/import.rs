//! `budgit import` against the fake vendor admin APIs on loopback: the policies it
//! writes validate, and reconciling them against the same organisation has nothing
//! to do (Claude Enterprise, OpenAI).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

#[path = "../../service/tests/common/http.rs"]
mod http;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const KEY: &str = "sk-ant-admin-import-test-0123456789";
const OPENAI_KEY: &str = "sk-admin-import-test-0123456789abcdef";

fn call(addr: SocketAddr, method: &str, path: &str, key: Option<&str>, body: &Value) -> Value {
    let r = http::try_send(
        addr,
        method,
        path,
        key,
        Some(&body.to_string()),
        &[("anthropic-version", "2026-10-21"), ("content-type", "application/json")],
    )
    .unwrap();
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    if r.body.is_empty() { Value::Null } else { r.json() }
}

fn budgit(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_budgit"))
        .current_dir(dir)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("ANTHROPIC_API_KEY", KEY)
        .env("OPENAI_ADMIN_KEY", OPENAI_KEY)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Every file under `policies/`, committed on `main` of a new repository (git2).
fn commit_all(root: &Path) {
    let repo = git2::Repository::init(root).unwrap();
    let mut index = repo.index().unwrap();
    index.add_all(["policies"], git2::IndexAddOption::DEFAULT, None).unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Policy Bot", "bot@acme.com").unwrap();
    let commit = repo.commit(None, &sig, &sig, "policies imported from the vendor", &tree, &[]).unwrap();
    repo.reference("refs/heads/main", commit, true, "import").unwrap();
    repo.set_head("refs/heads/main").unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An organisation whose limits were set by hand: $20 a month for everyone, $5 for
/// alice and bob, $123.45 for carol, dave's own limit equal to everyone's, erin
/// inheriting it, and a weekly limit for bob.
fn claude_org() -> SocketAddr {
    let addr = budgit_fakes::spawn(budgit_fakes::claude::router()).unwrap();
    let people = ["alice@acme.com", "bob@acme.com", "Carol@Acme.com", "dave@acme.com", "erin@acme.com"];
    let new: Vec<Value> = people.iter().map(|m| json!({ "email": m })).collect();
    let ids = call(addr, "POST", "/_fake/members", None, &Value::Array(new));
    let id = |i: usize| ids[i]["id"].as_str().unwrap().to_string();
    call(addr, "POST", "/_fake/org_limit", None, &json!({ "period": "monthly", "amount": "2000" }));
    for (i, amount, period) in [
        (0, "500", "monthly"),
        (1, "500", "monthly"),
        (2, "12345", "monthly"),
        (3, "2000", "monthly"),
        (1, "100", "weekly"),
    ] {
        let body =
            json!({ "amount": amount, "scope": { "type": "user", "user_id": id(i) }, "period": period });
        call(addr, "POST", "/v1/organizations/spend_limits", Some(KEY), &body);
    }
    addr
}

#[test]
fn a_claude_import_validates_and_reconciling_it_has_nothing_to_do() {
    let addr = claude_org();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let url = format!("http://{addr}");
    let o = budgit(root, &["import", "--source", "claude-enterprise", "--workspace", &url, "--out", "."]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "not imported: 1 weekly limits: a Workspace has one period, and most limits are monthly"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("wrote 3 files to `./policies`"), "{stderr}");

    // the organisation's limit is the default, a credit is a cent; each other amount a group
    assert_eq!(
        read(&root.join("policies/workspace.yaml")),
        "# Imported with `budgit import`. Not carried over:\n\
         #   - 1 weekly limits: a Workspace has one period, and most limits are monthly\n\
         apiVersion: budgit/v1\nkind: Workspace\nname: \"imported\"\ntimezone: UTC\nperiod: month\n\
         default:\n  credits: 2000\nvendors:\n  claude-enterprise:\n    currency: usd\n    credit: \"0.01\"\n"
    );
    let five = read(&root.join("policies/groups/limit-500.yaml"));
    assert!(
        five.contains(
            "members:\n  - \"alice@acme.com\"\n  - \"bob@acme.com\"\npriority: 10\nlimit:\n  credits: 500\n"
        ),
        "{five}"
    );
    let carol = read(&root.join("policies/groups/limit-12345.yaml"));
    assert!(carol.contains("members:\n  - \"carol@acme.com\"\n"), "{carol}");

    let o = budgit(root, &["validate", "--policies", "policies"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // committed, reconciled against the same organisation: no call to make, nothing written
    commit_all(root);
    let reconcile = |extra: &[&str]| {
        let mut args = vec![
            "reconcile",
            "--target",
            "claude-enterprise",
            "--workspace",
            &url,
            "--ref",
            "main",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let o = budgit(root, &args);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str::<Value>(&stdout).unwrap()
    };
    let r = reconcile(&["--dry-run"]);
    assert_eq!(r["vendor_calls"], json!([]), "{r}");
    assert_eq!(r["unchanged"], 5, "{r}");
    assert_eq!(r["not_attempted"], json!([]), "{r}");
    let r = reconcile(&[]);
    assert_eq!(r["unchanged"], 5, "{r}");
    let calls = http::try_send(addr, "GET", "/_fake/calls", None, None, &[]).unwrap().json();
    let writes: Vec<&Value> = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["method"] != "GET" && c["path"] != "/_fake/calls")
        .collect();
    // the five limits set by hand above, and nothing since
    assert_eq!(writes.len(), 5, "{writes:#?}");

    // a second import into the same place refuses to overwrite it
    let o = budgit(root, &["import", "--source", "claude-enterprise", "--workspace", &url, "--out", "."]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds files"));
}

/// Every limit and alert of the scopes an OpenAI import maps, as the fake holds them
/// (alert ids included, so a delete and re-create shows).
fn openai_state(addr: SocketAddr) -> Value {
    openai_state_of(addr, &["/v1/organization", "/v1/organization/projects/proj_app"])
}

fn openai_state_of(addr: SocketAddr, scopes: &[&str]) -> Value {
    let get = |path: &str| call(addr, "GET", path, Some(OPENAI_KEY), &Value::Null);
    let mut out = serde_json::Map::new();
    for base in scopes {
        out.insert(format!("{base}/spend_limit"), get(&format!("{base}/spend_limit")));
        out.insert(
            format!("{base}/spend_alerts"),
            get(&format!("{base}/spend_alerts?limit=100"))["data"].clone(),
        );
    }
    Value::Object(out)
}

#[test]
fn an_openai_import_is_what_the_openai_target_writes_and_reconciling_it_has_nothing_to_do() {
    let fake = budgit_fakes::openai::Fake::new(OPENAI_KEY);
    fake.add_projects([
        budgit_fakes::openai::Project { id: "proj_app".into(), name: "App".into() },
        budgit_fakes::openai::Project { id: "proj_lab".into(), name: "Lab".into() },
    ]);
    fake.add_users(["alice@acme.com", "bob@acme.com"].map(|e| budgit_fakes::openai::User {
        id: format!("user-{}", &e[..3]),
        email: e.into(),
        name: String::new(),
    }));
    let addr = budgit_fakes::openai::start(fake.clone()).unwrap();
    let money = |cents: i64| json!({ "currency": "USD", "interval": "month", "threshold_amount": cents });
    let alert = |cents: i64, to: &[&str]| {
        let mut b = money(cents);
        b["notification_channel"] = json!({ "type": "email", "recipients": to });
        b
    };
    // set by hand: $5,000 for the organization and $1,200 for App, alerts at 50% and 80%
    // of each; an alert in Lab, which has no limit
    let post = |path: &str, body: &Value| call(addr, "POST", path, Some(OPENAI_KEY), body);
    post("/v1/organization/spend_limit", &money(500_000));
    post("/v1/organization/spend_alerts", &alert(250_000, &["Finance@Acme.com"]));
    post("/v1/organization/spend_alerts", &alert(400_000, &["finance@acme.com"]));
    post("/v1/organization/projects/proj_app/spend_limit", &money(120_000));
    post("/v1/organization/projects/proj_app/spend_alerts", &alert(60_000, &["finance@acme.com"]));
    post("/v1/organization/projects/proj_app/spend_alerts", &alert(96_000, &["finance@acme.com"]));
    post("/v1/organization/projects/proj_lab/spend_alerts", &alert(1_000, &["lab@acme.com"]));

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let url = format!("http://{addr}/v1");
    let o =
        budgit(root, &["import", "--source", "openai", "--workspace", &url, "--out", ".", "--name", "acme"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let lab = "project `proj_lab` (Lab): alert `spend_alert_000005` at 1000 cents in a project without a spend limit (budgit's alert levels are percentages of a limit)";
    assert!(stderr.contains(&format!("not imported: {lab}")), "{stderr}");
    assert!(stderr.contains("wrote 2 files to `./policies`"), "{stderr}");
    assert_eq!(
        read(&root.join("policies/workspace.yaml")),
        format!(
            "# Imported with `budgit import`. Not carried over:\n#   - {lab}\n\
             apiVersion: budgit/v1\nkind: Workspace\nname: \"acme\"\ntimezone: UTC\nperiod: month\n\
             default:\n  credits: 500000\nenforcement: hard\nalerts: [50, 80]\nvendors:\n  openai:\n    currency: usd\n    credit: \"0.01\"\n\
             \x20   reconcile:\n      org_limit: 500000\n      alert_recipients:\n        - \"finance@acme.com\"\n"
        )
    );
    let app = read(&root.join("policies/groups/openai-proj_app.yaml"));
    assert!(app.contains("selector: \"false\"\n"), "{app}");
    assert!(
        app.ends_with("pool:\n  credits: 120000\nvendors:\n  openai:\n    project: \"proj_app\"\n"),
        "{app}"
    );
    let o = budgit(root, &["validate", "--policies", "policies"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // committed, reconciled against the same organisation: no call to make, nothing written
    commit_all(root);
    let before = openai_state(addr);
    let reconcile = |extra: &[&str]| {
        let mut args =
            vec!["reconcile", "--target", "openai", "--workspace", &url, "--ref", "main", "--format", "json"];
        args.extend_from_slice(extra);
        let o = budgit(root, &args);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str::<Value>(&stdout).unwrap()
    };
    let r = reconcile(&["--dry-run"]);
    assert_eq!(r["vendor_calls"], json!([]), "{r}");
    assert_eq!(r["unchanged"], 2, "{r}");
    assert_eq!(r["not_attempted"], json!([]), "{r}");
    let r = reconcile(&[]);
    assert_eq!(r["unchanged"], 2, "{r}");
    assert_eq!(r["applied"], json!([]), "{r}");
    assert_eq!(openai_state(addr), before);
    // nothing updated or deleted an alert at its id
    for id in 1..=5 {
        let path = format!("spend_alerts/spend_alert_{id:06}");
        assert_eq!(fake.calls(&format!("/v1/organization/{path}")), 0);
        assert_eq!(fake.calls(&format!("/v1/organization/projects/proj_app/{path}")), 0);
    }
}

#[test]
fn an_openai_import_keeps_every_alert_recipient_and_validates_with_more_than_ten() {
    let fake = budgit_fakes::openai::Fake::new(OPENAI_KEY);
    fake.add_projects([budgit_fakes::openai::Project { id: "proj_app".into(), name: "App".into() }]);
    let addr = budgit_fakes::openai::start(fake.clone()).unwrap();
    let money = |cents: i64| json!({ "currency": "USD", "interval": "month", "threshold_amount": cents });
    // 14 people on the organization's alerts, more than any fixed bound of ten
    let to: Vec<String> = (0..14).map(|i| format!("finance{i:02}@acme.com")).collect();
    let alert = |cents: i64| {
        let mut b = money(cents);
        b["notification_channel"] = json!({ "type": "email", "recipients": to });
        b
    };
    let post = |path: &str, body: &Value| call(addr, "POST", path, Some(OPENAI_KEY), body);
    post("/v1/organization/spend_limit", &money(500_000));
    post("/v1/organization/spend_alerts", &alert(250_000));
    post("/v1/organization/spend_alerts", &alert(400_000));

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let url = format!("http://{addr}/v1");
    let o =
        budgit(root, &["import", "--source", "openai", "--workspace", &url, "--out", ".", "--name", "acme"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(!stderr.contains("not imported"), "{stderr}");
    let ws = read(&root.join("policies/workspace.yaml"));
    assert!(!ws.contains("Not carried over"), "{ws}");
    let listed: String = to.iter().map(|r| format!("        - \"{r}\"\n")).collect();
    assert!(ws.ends_with(&format!("      alert_recipients:\n{listed}")), "{ws}");
    let o = budgit(root, &["validate", "--policies", "policies"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // reconciling the import writes nothing: every alert already emails those 14
    commit_all(root);
    let before = openai_state_of(addr, &["/v1/organization"]);
    let o = budgit(
        root,
        &["reconcile", "--target", "openai", "--workspace", &url, "--ref", "main", "--format", "json"],
    );
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    let r: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r["applied"], json!([]), "{r}");
    assert_eq!(openai_state_of(addr, &["/v1/organization"]), before);
}

#[test]
fn an_organisation_without_limits_or_a_key_is_refused_clearly() {
    let addr = budgit_fakes::spawn(budgit_fakes::claude::router()).unwrap();
    call(addr, "POST", "/_fake/members", None, &json!([{ "email": "alice@acme.com" }]));
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}");
    let o =
        budgit(tmp.path(), &["import", "--source", "claude-enterprise", "--workspace", &url, "--out", "x"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("the organisation has no spend limits: there is nothing to import"), "{stderr}");
    assert!(!tmp.path().join("x/policies").exists());

    let o = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .current_dir(tmp.path())
        .env_clear()
        .args(["import", "--source", "claude-enterprise", "--workspace", &url, "--out", "x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no key: set `ANTHROPIC_API_KEY`"));
}
