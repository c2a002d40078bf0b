//! `budgit usage pull` against the OpenAI fake (the SDK-checked one) on loopback: many
//! pages, incremental reruns, kill -9 mid-pull, 429/500/timeouts, unmapped users, and
//! `evaluate` on the file it writes; and `budgit serve` pulling on a schedule.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use budgit_fakes::openai::{self, Cost, Fake, Fault, User};
use common::serve::Serve;
use serde_json::Value;

const KEY: &str = "sk-admin-test-0123456789abcdef0123456789";
/// 2026-11-01T00:00:00Z.
const DAY0: i64 = 1_793_491_200;
const DAY: i64 = 86_400;

struct Setup {
    dir: tempfile::TempDir,
    fake: Fake,
    addr: SocketAddr,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

/// A policy repository (a credit is one cent, 100 credits a month), a directory of
/// two people, and a fake organization where both spend every day.
fn setup(days: i64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("workspace.yaml"),
        "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: UTC\nperiod: month\n\
         default:\n  credits: 100\nvendors:\n  openai:\n    currency: usd\n    credit: \"0.01\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("directory.csv"), "email\nada@acme.com\nbob@acme.com\n").unwrap();
    let fake = Fake::new(KEY);
    fake.add_users([
        User { id: "user-ada".into(), email: "Ada@acme.com".into(), name: "Ada".into() },
        User { id: "user-bob".into(), email: "bob@acme.com".into(), name: "Bob".into() },
    ]);
    fake.add_costs(costs(0..days));
    let addr = openai::start(fake.clone()).unwrap();
    Setup { dir, fake, addr }
}

/// Ada spends $0.125 of gpt-5 input and $0.0375 of output a day in one project, Bob $0.01.
fn costs(days: std::ops::Range<i64>) -> Vec<Cost> {
    let mut out = Vec::new();
    for d in days {
        let t = DAY0 + d * DAY + 3600;
        let cost = |user: &str, item: &str, amount: &str| Cost {
            time: t,
            user_id: Some(user.into()),
            project_id: Some("proj_app".into()),
            line_item: item.into(),
            amount: amount.into(),
        };
        out.push(cost("user-ada", "gpt-5, input", "0.125"));
        out.push(cost("user-ada", "gpt-5, output", "0.0375"));
        out.push(cost("user-bob", "gpt-5, input", "0.01"));
    }
    out
}

fn at(day: i64, hour: i64) -> String {
    chrono::DateTime::from_timestamp(DAY0 + day * DAY + hour * 3600, 0).unwrap().to_rfc3339()
}

fn budgit(s: &Setup, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    cmd.current_dir(s.dir.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .env("OPENAI_ADMIN_KEY", KEY)
        .args(args)
        .stdin(Stdio::null());
    cmd
}

/// `usage pull` into `out` at `now` with extra flags.
fn pull(s: &Setup, out: &str, now: &str, extra: &[&str]) -> Output {
    let base = s.base();
    let mut args = vec![
        "usage",
        "pull",
        "--source",
        "openai",
        "--workspace",
        &base,
        "--since",
        "2026-11-01",
        "--out",
        out,
        "--now",
        now,
    ];
    args.extend_from_slice(extra);
    budgit(s, &args).output().unwrap()
}

fn ok(o: &Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "exit {:?}\n{stderr}", o.status.code());
    stderr
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn a_pull_follows_every_page_and_writes_exact_credits_per_person() {
    let s = setup(40);
    let o = pull(&s, "usage.csv", &at(40, 0), &["--page-size", "7"]);
    let stderr = ok(&o);
    // 40 daily buckets, 7 a page: 6 pages, after one users list page
    assert_eq!(s.fake.calls("/v1/organization/costs"), 6, "{stderr}");
    assert_eq!(s.fake.calls("/v1/organization/users"), 1);
    assert!(stderr.contains("page 6: 120 rows, through 2026-12-11"), "{stderr}");
    let text = read(&s.path("usage.csv"));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "date,user,product,model,credits,project,id");
    assert_eq!(lines.len(), 1 + 40 * 3);
    // $0.125 at a cent a credit is exactly 12.5 credits; the email is canonical
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("2026-11-01,ada@acme.com,gpt-5,input,12.5,proj_app,openai:1793491200:"))
    );
    assert!(lines.iter().any(|l| l.starts_with("2026-12-10,bob@acme.com,gpt-5,input,1,proj_app,openai:")));
    let ids: std::collections::BTreeSet<&str> =
        lines[1..].iter().map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(ids.len(), 120, "row ids are unique");
    // no finding: every user mapped, every amount exact
    assert!(!stderr.contains("warning["), "{stderr}");
}

#[test]
fn unmapped_and_unattributed_costs_are_reported_and_still_counted() {
    let s = setup(2);
    s.fake.add_costs([
        Cost {
            time: DAY0 + 60,
            user_id: Some("user-gone".into()),
            project_id: None,
            line_item: "gpt-5, input".into(),
            amount: "0.5".into(),
        },
        Cost {
            time: DAY0 + 60,
            user_id: None,
            project_id: Some("proj_batch".into()),
            line_item: "gpt-5, batch".into(),
            amount: "2".into(),
        },
        // a millionth of a credit: the smallest amount that converts exactly
        Cost {
            time: DAY0 + DAY + 60,
            user_id: Some("user-bob".into()),
            project_id: None,
            line_item: "gpt-5, cached".into(),
            amount: "0.00000001".into(),
        },
    ]);
    let stderr = ok(&pull(&s, "usage.csv", &at(2, 0), &[]));
    assert!(
        stderr.contains("warning[pull/unmapped-user]: openai user `user-gone` is not in the organization's users list (50 credits)"),
        "{stderr}"
    );
    assert!(stderr.contains("warning[pull/unattributed]: 200 credits of costs carry no user id"), "{stderr}");
    let text = read(&s.path("usage.csv"));
    assert!(text.contains("\n2026-11-01,user-gone,gpt-5,input,50,,openai:"), "{text}");
    assert!(text.contains("\n2026-11-01,unattributed,gpt-5,batch,200,proj_batch,openai:"), "{text}");
    assert!(text.contains("\n2026-11-02,bob@acme.com,gpt-5,cached,0.000001,,openai:"), "{text}");
}

#[test]
fn an_amount_that_does_not_convert_exactly_is_a_finding() {
    let s = setup(0);
    let policies = s.path("policies/workspace.yaml");
    std::fs::write(&policies, read(&policies).replace("\"0.01\"", "\"0.03\"")).unwrap();
    s.fake.add_costs([Cost {
        time: DAY0 + 60,
        user_id: Some("user-ada".into()),
        project_id: None,
        line_item: "gpt-5, input".into(),
        amount: "0.01".into(),
    }]);
    let stderr = ok(&pull(&s, "usage.csv", &at(1, 0), &[]));
    assert!(
        stderr.contains("warning[pull/inexact-conversion]: 1 amount did not convert to whole micro-credits (first: 0.01 usd on 2026-11-01) and was rounded half to even"),
        "{stderr}"
    );
    assert!(read(&s.path("usage.csv")).contains(",ada@acme.com,gpt-5,input,0.333333,"));
}

#[test]
fn a_rerun_appends_new_buckets_and_replaces_the_open_one() {
    let s = setup(10);
    // day 9 is still open at 12:00: pulled with what it has so far
    s.fake.add_costs(costs(9..10));
    ok(&pull(&s, "usage.csv", &at(9, 12), &[]));
    let first = read(&s.path("usage.csv"));
    assert!(first.contains("\n2026-11-10,ada@acme.com,gpt-5,input,25,"), "{first}");
    // day 9 goes on, day 10 and 11 happen
    s.fake.add_costs(costs(9..12));
    let calls = s.fake.calls("/v1/organization/costs");
    ok(&pull(&s, "usage.csv", &at(12, 1), &["--page-size", "1"]));
    // restarted at day 9: days 9, 10, 11 and the open day 12, one bucket a page
    assert_eq!(s.fake.calls("/v1/organization/costs") - calls, 4);
    let second = read(&s.path("usage.csv"));
    // every row before day 9 is kept byte for byte
    let day9 = first.find("\n2026-11-10,").unwrap();
    assert_eq!(&second[..day9], &first[..day9]);
    // day 9 replaced, not added to: three pushes of day 9's costs in total
    assert!(second.contains("\n2026-11-10,ada@acme.com,gpt-5,input,37.5,"), "{second}");
    assert_eq!(second.matches("\n2026-11-10,").count(), 3);
    assert_eq!(second.lines().count(), 1 + 12 * 3);
    // the same as one uninterrupted pull at the later instant
    ok(&pull(&s, "fresh.csv", &at(12, 1), &[]));
    assert_eq!(second, read(&s.path("fresh.csv")));
    // and a rerun with nothing new changes nothing
    ok(&pull(&s, "usage.csv", &at(12, 1), &[]));
    assert_eq!(second, read(&s.path("usage.csv")));
}

#[test]
fn a_pull_killed_mid_run_leaves_the_file_whole_and_the_next_run_finishes_it() {
    let s = setup(30);
    ok(&pull(&s, "usage.csv", &at(10, 0), &[]));
    let before = read(&s.path("usage.csv"));
    // every call of the next run answers slowly: kill it after its second page
    s.fake.push_faults((0..40).map(|_| Fault::Slow { millis: 150 }));
    let base = s.base();
    let now = at(30, 0);
    let mut child = budgit(
        &s,
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
            &now,
            "--page-size",
            "2",
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        seen.push(line.clone());
        if line.starts_with("page 2:") {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(seen.iter().any(|l| l.starts_with("page 2:")), "{seen:?}");
    assert_eq!(read(&s.path("usage.csv")), before, "a killed pull leaves the previous file");
    // a stray temporary file and a last line cut short (a copy interrupted elsewhere)
    std::fs::write(s.path(".usage.csv.pulling"), "date,user\npartial").unwrap();
    let cut = &before[..before.len() - 20];
    std::fs::write(s.path("usage.csv"), cut).unwrap();
    let stderr = ok(&pull(&s, "usage.csv", &now, &[]));
    assert!(stderr.contains("note: usage.csv: removed `"), "{stderr}");
    assert!(stderr.contains("note: usage.csv: dropped a last line cut short"), "{stderr}");
    assert!(!s.path(".usage.csv.pulling").exists());
    ok(&pull(&s, "fresh.csv", &now, &[]));
    assert_eq!(read(&s.path("usage.csv")), read(&s.path("fresh.csv")));
}

#[test]
fn rate_limits_server_errors_and_timeouts_are_retried() {
    let s = setup(3);
    s.fake.push_faults([Fault::TooMany { retry_after: 1 }, Fault::ServerError, Fault::Slow { millis: 3000 }]);
    let started = std::time::Instant::now();
    let stderr = ok(&pull(&s, "usage.csv", &at(3, 0), &["--timeout", "1s", "--backoff", "10ms"]));
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
    assert!(
        stderr.contains("429 Rate limit reached for requests.; retrying in 1.0 s (attempt 2)"),
        "{stderr}"
    );
    assert!(stderr.contains("500 The server had an error.; retrying in 0.0 s (attempt 3)"), "{stderr}");
    assert!(stderr.contains("timeout") || stderr.contains("Timeout"), "{stderr}");
    // the users list took the three faults; then one costs page
    assert_eq!(s.fake.calls("/v1/organization/users"), 4);
    assert_eq!(read(&s.path("usage.csv")).lines().count(), 1 + 3 * 3);

    s.fake.push_faults([Fault::ServerError, Fault::ServerError]);
    let o = pull(&s, "other.csv", &at(3, 0), &["--attempts", "2", "--backoff", "10ms"]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("still failing after 2 attempts: 500 The server had an error."), "{stderr}");
    assert!(!s.path("other.csv").exists());
    assert!(!stderr.contains(KEY));
}

#[test]
fn a_wrong_key_a_missing_rate_or_another_currency_stop_the_pull() {
    let s = setup(1);
    let o = budgit(
        &s,
        &[
            "usage",
            "pull",
            "--source",
            "openai",
            "--workspace",
            &s.base(),
            "--since",
            "2026-11-01",
            "--out",
            "u.csv",
        ],
    )
    .env("OPENAI_ADMIN_KEY", "sk-wrong")
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("/v1/organization/users` answered 401: Incorrect API key provided."), "{stderr}");

    let policies = s.path("policies/workspace.yaml");
    let text = read(&policies);
    std::fs::write(&policies, text.replace("    currency: usd\n", "    currency: eur\n")).unwrap();
    let o = pull(&s, "u.csv", &at(1, 0), &[]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("the workspace reports `usd`, the Workspace declares `eur` for `openai`"),
        "{stderr}"
    );

    std::fs::write(&policies, &text[..text.find("vendors:").unwrap()]).unwrap();
    let o = pull(&s, "u.csv", &at(1, 0), &[]);
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("the Workspace declares no credit rate for `openai`"), "{stderr}");
    assert!(!s.path("u.csv").exists());
}

#[test]
fn evaluate_reads_the_pulled_file() {
    // Ada: 16.25 credits a day, Bob 1: after 7 days Ada is past 100, Bob at 7
    let s = setup(7);
    ok(&pull(&s, "usage.csv", &at(7, 0), &[]));
    let o = budgit(
        &s,
        &[
            "evaluate",
            "--directory",
            "directory.csv",
            "--usage",
            "usage.csv",
            "--now",
            &at(7, 0),
            "--format",
            "json",
        ],
    )
    .output()
    .unwrap();
    let stderr = ok(&o);
    assert!(stderr.is_empty(), "no finding on a pulled file: {stderr}");
    let json: Value = serde_json::from_slice(&o.stdout).unwrap();
    let user =
        |email: &str| json["users"].as_array().unwrap().iter().find(|u| u["user"] == email).unwrap().clone();
    assert_eq!(user("ada@acme.com")["used"].to_string(), "113.75");
    assert_eq!(user("ada@acme.com")["status"], "exceeded");
    assert_eq!(user("bob@acme.com")["used"].to_string(), "7");
    assert_eq!(user("bob@acme.com")["status"], "ok");
}

const ADMIN: &str = "pull-test-admin-0123456789abcdef0123";

/// A `budgit serve` pulling from the fake every second.
fn serve_pulling(s: &Setup, since: &str) -> Serve {
    let base = s.base();
    let mut cmd = budgit(
        s,
        &[
            "serve",
            "--db",
            "budgit.db",
            "--listen",
            "127.0.0.1:0",
            "--policies",
            "policies",
            "--pull-source",
            "openai",
            "--pull-url",
            &base,
            "--pull-since",
            since,
            "--pull-every",
            "1s",
        ],
    );
    cmd.env("BUDGIT_ADMIN_TOKEN", ADMIN);
    Serve::start(cmd)
}

/// Credits per user in the service's Costs API over `[start, end)`.
fn served_credits(addr: SocketAddr, start: i64, end: i64) -> Value {
    let path = format!("/v1/organization/costs?start_time={start}&end_time={end}&group_by=user_id&limit=31");
    let r = common::http::send(addr, "GET", &path, Some(ADMIN), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let mut by_user = serde_json::Map::new();
    for bucket in r.json()["data"].as_array().unwrap() {
        for result in bucket["results"].as_array().unwrap() {
            let user = result["user_id"].as_str().unwrap().to_string();
            let credits: f64 = result["amount"]["value"].to_string().parse().unwrap();
            let total = by_user.get(&user).and_then(Value::as_f64).unwrap_or(0.0) + credits;
            by_user.insert(user, Value::from(total));
        }
    }
    Value::Object(by_user)
}

#[test]
fn serve_pulls_closed_days_on_a_schedule_and_never_counts_them_twice() {
    // the service takes the real clock: costs on the last three closed days and today
    let today = chrono::Utc::now().timestamp().div_euclid(DAY) * DAY;
    let s = setup(0);
    for d in -3..=0 {
        s.fake.add_costs(costs(0..1).into_iter().map(|mut c| {
            c.time = today + d * DAY + 60;
            c
        }));
    }
    let since = chrono::DateTime::from_timestamp(today - 3 * DAY, 0).unwrap().date_naive().to_string();
    let serve = serve_pulling(&s, &since);
    let addr = serve.addr;
    let line = serve.wait_for_line("usage pull from openai:");
    assert_eq!(line, "usage pull from openai: 9 new events, 0 already stored, 0 rows without a person");
    // three closed days of 16.25 and 1 credits; today is not stored until it closes
    let expected = serde_json::json!({ "ada@acme.com": 48.75, "bob@acme.com": 3.0 });
    assert_eq!(served_credits(addr, today - 3 * DAY, today + DAY), expected);
    serve.kill9();

    // a restart pulls again from `--pull-since`: every event is already there
    let calls = s.fake.calls("/v1/organization/costs");
    let serve = serve_pulling(&s, &since);
    let addr = serve.addr;
    let line = serve.wait_for_line("usage pull from openai:");
    assert_eq!(line, "usage pull from openai: 0 new events, 9 already stored, 0 rows without a person");
    assert!(s.fake.calls("/v1/organization/costs") > calls);
    assert_eq!(served_credits(addr, today - 3 * DAY, today + DAY), expected);
    serve.kill9();
}
