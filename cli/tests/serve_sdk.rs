//! The Costs API read by a client nobody here wrote: the official `openai` Python SDK
//! pages through `GET /v1/organization/costs` of a real `budgit serve` and parses
//! every result under its own strict response models.
//!
//! The interpreter is `BUDGIT_SDK_PYTHON` when set; otherwise the test makes a venv
//! under the target directory on first use (`python3 -m venv` + `pip install openai`,
//! about half a minute) and reuses it afterwards. Without python3 or the package index
//! the test fails and says how to set it up: it never passes without running the SDK.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::http::send;
use common::python::OPENAI;
use common::serve::serve;
use serde_json::{Value, json};

const ADMIN: &str = "sdk-test-admin-5d1e-0123456789abcdef";
/// 2026-11-01T00:00:00Z.
const DAY0: i64 = 1_793_491_200;
const DAY: i64 = 86_400;

fn event(id: &str, day: i64, user: &str, product: &str, model: &str, credits: f64) -> Value {
    json!({ "id": id, "time": DAY0 + day * DAY + 3600, "user": user, "product": product, "model": model, "credits": credits })
}

#[test]
fn the_openai_sdk_pages_through_costs_and_parses_every_result() {
    let py = OPENAI.executable();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(&dir.path().join("budgit.db"), ADMIN);
    let addr = server.addr;
    let events = json!([
        event("e1", 0, "a@x.com", "chatgpt", "gpt-5", 1.5),
        event("e2", 0, "b@x.com", "codex", "gpt-5-codex", 2.25),
        event("e3", 1, "a@x.com", "chatgpt", "gpt-5", 0.5),
        event("e4", 1, "a@x.com", "codex", "gpt-5-codex", 3.0),
        event("e5", 2, "c@x.com", "chatgpt", "gpt-5", 10.0),
        event("e6", 2, "b@x.com", "codex", "gpt-5-codex", 0.75),
        event("e7", 3, "a@x.com", "chatgpt", "gpt-5", 1.25),
        // a retry of e5: counted once
        event("e5", 2, "c@x.com", "chatgpt", "gpt-5", 10.0),
    ]);
    let r = send(addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&events.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.json()["accepted"].clone(), r.json()["duplicates"].clone()), (json!(7), json!(1)));

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sdk/costs_openai.py");
    // four daily buckets, three per page: the SDK must follow `next_page` once
    let out = Command::new(&py)
        .arg(&script)
        .arg(format!("http://{addr}/v1"))
        .arg(ADMIN)
        .arg(DAY0.to_string())
        .arg((DAY0 + 4 * DAY).to_string())
        .arg("3")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}` ({e}): {}", py.display(), OPENAI.setup()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK script failed:\n{stdout}\n{stderr}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(got["pages"], 2, "{got}");
    assert_eq!(got["buckets"], 4, "{got}");
    // distinct (day, user, line item): 2 + 2 + 2 + 1
    assert_eq!(got["results"], 7, "{got}");
    assert_eq!(got["by_user"], json!({ "a@x.com": 6.25, "b@x.com": 3.0, "c@x.com": 10.0 }), "{got}");
    assert_eq!(got["by_line_item"], json!({ "chatgpt, gpt-5": 13.25, "codex, gpt-5-codex": 6.0 }), "{got}");
    assert!(!stdout.contains(ADMIN) && !stderr.contains(ADMIN));
}

/// The OpenAI fake that `usage pull` is tested against, read and written by the
/// official SDK under strict response validation: if the fake's shapes drift from the
/// SDK's generated types, this fails.
#[test]
fn the_openai_sdk_accepts_every_answer_of_the_openai_fake() {
    use budgit_fakes::openai::{Cost, Fake, Project, User};
    const KEY: &str = "sk-admin-sdk-0123456789abcdef0123456789";
    let py = OPENAI.executable();
    let fake = Fake::new(KEY);
    fake.add_users([
        User { id: "user-ada".into(), email: "ada@acme.com".into(), name: "Ada".into() },
        User { id: "user-bob".into(), email: "bob@acme.com".into(), name: "Bob".into() },
        User { id: "user-cyd".into(), email: "cyd@acme.com".into(), name: "Cyd".into() },
    ]);
    fake.add_projects([
        Project { id: "proj_app".into(), name: "App".into() },
        Project { id: "proj_lab".into(), name: "Lab".into() },
    ]);
    for d in 0..10 {
        for (user, amount) in [("user-ada", "0.125"), ("user-bob", "0.0375")] {
            fake.add_costs([Cost {
                time: DAY0 + d * DAY + 60,
                user_id: Some(user.into()),
                project_id: Some("proj_app".into()),
                line_item: "gpt-5, input".into(),
                amount: amount.into(),
            }]);
        }
    }
    let addr = budgit_fakes::openai::start(fake.clone()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sdk/openai_fake.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(format!("http://{addr}/v1"))
        .arg(KEY)
        .arg(DAY0.to_string())
        .arg((DAY0 + 10 * DAY).to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}` ({e}): {}", py.display(), OPENAI.setup()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK script failed:\n{stdout}\n{stderr}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // ten daily buckets, seven a page
    assert_eq!((got["costs_pages"].clone(), got["buckets"].clone()), (json!(2), json!(10)), "{got}");
    assert_eq!(got["micro_usd_by_user"], json!({ "user-ada": 1_250_000, "user-bob": 375_000 }), "{got}");
    assert_eq!(
        got["users"],
        json!([["user-ada", "ada@acme.com"], ["user-bob", "bob@acme.com"], ["user-cyd", "cyd@acme.com"]]),
        "{got}"
    );
    assert_eq!(
        got["projects"],
        json!([["proj_app", "App", "organization.project"], ["proj_lab", "Lab", "organization.project"]])
    );
    assert_eq!(got["no_org_limit"], "404 No spend limit is set for this organization.");
    assert_eq!(got["org_limit"], json!([500_000, "inactive", "month"]));
    assert_eq!(got["org_limit_deleted"], true);
    assert_eq!(got["org_alerts"], json!([100_000, 450_000]));
    assert_eq!(got["org_alert_deleted"], "organization.spend_alert.deleted");
    assert_eq!(got["project_limit"], json!(["project.spend_limit", 1_000, "inactive"]));
    assert_eq!(got["project_alerts"], json!([900]));
    assert_eq!(got["project_alert_deleted"], true);
    assert_eq!(got["project_limit_deleted"], "project.spend_limit.deleted");
    assert_eq!(got["unknown_project"], "404 No project found with id 'proj_nope'.");
    assert_eq!(got["bad_request"], "400 Invalid value for 'bucket_width': only '1d' is supported.");
    assert_eq!(got["bad_key"], "401 Incorrect API key provided.");
    assert_eq!(got["rate_limited"], "429 Rate limit reached for requests.");
    assert_eq!(got["server_error"], "500 The server had an error.");
    assert_eq!(got["after_retries"], 3);
    assert!(!stdout.contains(KEY) && !stderr.contains(KEY));
}
