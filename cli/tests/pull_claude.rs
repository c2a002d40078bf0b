//! `budgit usage pull --source claude-enterprise` against the fake Claude Enterprise
//! Admin API (the SDK-checked one) on loopback: the per-user cost report in ranges of
//! 31 days, many pages, fractional cents to exact credits, deleted users without an
//! email, incremental reruns, another currency, `evaluate` on the file, and `budgit serve`
//! pulling the report on a schedule.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use common::http;
use common::serve::Serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

const KEY: &str = "sk-ant-admin-pull-test-0123456789";
const REPORT: &str = "/v1/organizations/analytics/user_cost_report";

struct Setup {
    dir: tempfile::TempDir,
    addr: SocketAddr,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn post(&self, path: &str, body: &Value) {
        let r = http::try_send(
            self.addr,
            "POST",
            path,
            None,
            Some(&body.to_string()),
            &[("content-type", "application/json")],
        )
        .unwrap();
        assert!(r.status < 300, "{path}: {} {}", r.status, r.body);
    }

    /// The report calls made so far, with their queries.
    fn report_calls(&self) -> Vec<String> {
        let calls = http::try_send(self.addr, "GET", "/_fake/calls", None, None, &[]).unwrap().json();
        calls
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["path"] == REPORT)
            .map(|c| c["query"].as_str().unwrap().to_string())
            .collect()
    }

    /// Costs on the days `days` after 2026-11-01 (UTC): Alice $12.345678 of chat and
    /// half a cent of Claude Code a day, Bob ten cents, and a deleted account three cents.
    fn add_costs(&self, days: std::ops::Range<i64>) {
        let mut costs = Vec::new();
        for d in days {
            let date = (chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap() + chrono::Days::new(d as u64))
                .to_string();
            costs.push(json!({ "email": "alice@acme.com", "date": date, "product": "chat", "model": "claude-opus-4-5", "amount": "1234.5678" }));
            costs.push(json!({ "email": "alice@acme.com", "date": date, "product": "claude_code", "model": "claude-sonnet-4-5", "amount": "0.5" }));
            costs.push(json!({ "email": "bob@acme.com", "date": date, "product": "chat", "model": "claude-opus-4-5", "amount": "10" }));
            costs.push(json!({ "user_id": "user_gone", "date": date, "product": "chat", "model": "claude-opus-4-5", "amount": "3" }));
        }
        self.post("/_fake/costs", &Value::Array(costs));
    }
}

/// A policy repository whose Workspace says a credit is a cent, in `currency`.
fn setup(currency: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("workspace.yaml"),
        format!(
            "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: UTC\nperiod: month\n\
             default:\n  credits: 100000\nvendors:\n  claude-enterprise:\n    currency: {currency}\n    credit: \"0.01\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("directory.csv"), "email\nalice@acme.com\nbob@acme.com\n").unwrap();
    let addr = budgit_fakes::spawn(budgit_fakes::claude::router()).unwrap();
    let s = Setup { dir, addr };
    s.post("/_fake/members", &json!([{ "email": "Alice@acme.com" }, { "email": "bob@acme.com" }]));
    s
}

fn at(day: i64, hour: i64) -> String {
    chrono::DateTime::from_timestamp(1_793_491_200 + day * 86_400 + hour * 3600, 0).unwrap().to_rfc3339()
}

fn budgit(s: &Setup, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_budgit"))
        .current_dir(s.dir.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .env("ANTHROPIC_API_KEY", KEY)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn pull(s: &Setup, now: &str, extra: &[&str]) -> Output {
    let base = format!("http://{}", s.addr);
    let mut args = vec![
        "usage",
        "pull",
        "--source",
        "claude-enterprise",
        "--workspace",
        &base,
        "--since",
        "2026-11-01",
        "--out",
        "usage.csv",
        "--now",
        now,
    ];
    args.extend_from_slice(extra);
    budgit(s, &args)
}

fn ok(o: &Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "exit {:?}\n{stderr}", o.status.code());
    stderr
}

#[test]
fn the_cost_report_is_pulled_in_31_day_ranges_every_page_exact_credits() {
    let s = setup("usd");
    s.add_costs(0..40);
    let stderr = ok(&pull(&s, &at(40, 0), &["--page-size", "7"]));
    let calls = s.report_calls();
    // 40 days = a range of 31 days (124 rows, 18 pages of 7) and one of 9 (36 rows, 6 pages)
    assert_eq!(calls.len(), 24, "{calls:#?}\n{stderr}");
    assert!(calls[0].contains("starting_at=2026-11-01T00%3A00%3A00Z"), "{}", calls[0]);
    assert!(calls[0].contains("ending_at=2026-12-02T00%3A00%3A00Z"), "{}", calls[0]);
    assert!(calls[0].contains("bucket_width=1d"), "{}", calls[0]);
    assert!(calls[0].contains("group_by%5B%5D=product&group_by%5B%5D=model"), "{}", calls[0]);
    assert!(calls[18].contains("starting_at=2026-12-02T00%3A00%3A00Z"), "{}", calls[18]);
    assert!(calls[18].contains("ending_at=2026-12-11T00%3A00%3A00Z"), "{}", calls[18]);
    assert!(calls[1].contains("page=page_7"), "{}", calls[1]);
    // the deleted account keeps its id, and says so once
    assert!(
        stderr.contains("warning[pull/unmapped-user]: claude-enterprise user `user_gone` has no email address in the cost report (120 credits)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("wrote 160 rows to `usage.csv` (0 kept, 160 pulled from 40 buckets in 24 pages)"),
        "{stderr}"
    );

    let text = std::fs::read_to_string(s.path("usage.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 161);
    assert_eq!(lines[0], "date,user,product,model,credits,project,id");
    // in time order although the report ranks rows by amount; cents are credits, exactly
    let day0: Vec<&str> = lines[1..5].iter().map(|l| l.rsplit_once(',').unwrap().0).collect();
    let mut want = vec![
        "2026-11-01,alice@acme.com,chat,claude-opus-4-5,1234.5678,",
        "2026-11-01,alice@acme.com,claude_code,claude-sonnet-4-5,0.5,",
        "2026-11-01,bob@acme.com,chat,claude-opus-4-5,10,",
        "2026-11-01,user_gone,chat,claude-opus-4-5,3,",
    ];
    let mut got = day0.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    assert!(lines[160].starts_with("2026-12-10,"), "{}", lines[160]);
    let ids: std::collections::BTreeSet<&str> =
        lines[1..].iter().map(|l| l.rsplit_once(',').unwrap().1).collect();
    assert_eq!(ids.len(), 160, "every row has its own id");
    assert!(ids.iter().all(|id| id.starts_with("claude-enterprise:")), "{ids:?}");
}

#[test]
fn a_rerun_replaces_the_last_bucket_and_appends_only_new_ones() {
    let s = setup("usd");
    s.add_costs(0..3);
    ok(&pull(&s, &at(2, 12), &[]));
    let first = std::fs::read_to_string(s.path("usage.csv")).unwrap();
    assert_eq!(first.lines().count(), 1 + 12);

    // the same instant again: the last bucket is pulled again, the file stays byte for byte
    let stderr = ok(&pull(&s, &at(2, 12), &[]));
    assert!(stderr.contains("(8 kept, 4 pulled from 1 buckets in 1 pages)"), "{stderr}");
    assert_eq!(std::fs::read_to_string(s.path("usage.csv")).unwrap(), first);
    let rerun = s.report_calls().pop().unwrap();
    assert!(rerun.contains("starting_at=2026-11-03T00%3A00%3A00Z"), "{rerun}");

    // two more days: the old rows are kept as they were, only the new buckets are added
    s.add_costs(3..5);
    let stderr = ok(&pull(&s, &at(5, 0), &[]));
    assert!(stderr.contains("(8 kept, 12 pulled from 3 buckets in 1 pages)"), "{stderr}");
    let after = std::fs::read_to_string(s.path("usage.csv")).unwrap();
    assert!(after.starts_with(&first), "earlier rows are kept byte for byte");
    assert_eq!(after.lines().count(), 1 + 20);
}

#[test]
fn evaluate_reads_the_pulled_file() {
    let s = setup("usd");
    s.add_costs(0..7);
    ok(&pull(&s, &at(7, 0), &[]));
    let now = at(7, 0);
    let o = budgit(
        &s,
        &[
            "evaluate",
            "--directory",
            "directory.csv",
            "--usage",
            "usage.csv",
            "--now",
            &now,
            "--format",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    // the deleted account's rows name no one in the directory
    assert!(o.status.success(), "{stderr}");
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    let user =
        |email: &str| json["users"].as_array().unwrap().iter().find(|u| u["user"] == email).unwrap().clone();
    // 7 × (1234.5678 + 0.5) credits, summed exactly
    assert_eq!(user("alice@acme.com")["used"].to_string(), "8645.4746");
    assert_eq!(user("bob@acme.com")["used"].to_string(), "70");
}

#[test]
fn a_report_in_another_currency_stops_the_pull_and_writes_nothing() {
    let s = setup("eur");
    s.add_costs(0..2);
    let o = pull(&s, &at(2, 0), &[]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("the organisation reports `USD`, the Workspace declares `eur` for `claude-enterprise`"),
        "{stderr}"
    );
    assert!(!s.path("usage.csv").exists());
}

#[test]
fn serve_pulls_the_cost_report_on_a_schedule() {
    // the service takes the real clock: costs on the three days before today (closed)
    let s = setup("usd");
    let today = chrono::Utc::now().date_naive();
    let days: Vec<String> = (1..=3).map(|d| (today - chrono::Days::new(d)).to_string()).collect();
    let costs: Vec<Value> = days
        .iter()
        .map(|date| json!({ "email": "alice@acme.com", "date": date, "product": "chat", "model": "claude-opus-4-5", "amount": "150.25" }))
        .collect();
    s.post("/_fake/costs", &Value::Array(costs));
    let admin = "pull-claude-admin-0123456789abcdef01";
    let base = format!("http://{}", s.addr);
    let mut cmd = common::serve::command(&s.path("budgit.db"));
    cmd.current_dir(s.dir.path()).env("ANTHROPIC_API_KEY", KEY).env("BUDGIT_ADMIN_TOKEN", admin).args([
        "--policies",
        "policies",
        "--pull-source",
        "claude-enterprise",
        "--pull-url",
        &base,
        "--pull-since",
        &days[2],
        "--pull-every",
        "1s",
    ]);
    let serve = Serve::start(cmd);
    let line = serve.wait_for_line("usage pull from claude-enterprise:");
    assert_eq!(
        line,
        "usage pull from claude-enterprise: 3 new events, 0 already stored, 0 rows without a person"
    );
    // the service's own Costs API: three days of 150.25 cents at a cent a credit
    let start = (today - chrono::Days::new(3)).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp();
    let path = format!("/v1/organization/costs?start_time={start}&group_by=user_id&limit=31");
    let r = http::send(serve.addr, "GET", &path, Some(admin), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let amounts: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["results"].as_array().unwrap().clone())
        .map(|r| format!("{} {}", r["user_id"].as_str().unwrap(), r["amount"]["value"]))
        .collect();
    assert_eq!(amounts, ["alice@acme.com 150.25", "alice@acme.com 150.25", "alice@acme.com 150.25"]);
    // the fake refuses a call without `anthropic-version`, as the Admin API does: the
    // events above came through calls that carried it
    assert!(s.report_calls().iter().all(|q| q.contains("starting_at=")));
}
