//! The fake Claude Enterprise Admin API read and written by a client nobody here wrote:
//! the official `anthropic` Python SDK, with strict response validation, pages
//! through members, limits and the effective report, upserts and deletes limits.
//! The reconciler's tests (`claude.rs`) run against the same fake, so the shapes
//! budgit relies on are the SDK's.
//!
//! The interpreter is `BUDGIT_SDK_PYTHON` when set (it must have `anthropic`);
//! otherwise the test makes a venv under the target directory on first use
//! (`python3 -m venv` + `pip install anthropic`) and reuses it afterwards. Without
//! python3 or the package index the test fails and says how to set it up: it never
//! passes without running the SDK.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::path::Path;
use std::process::Command;

use common::http;
use common::python::ANTHROPIC;
use serde_json::{Value, json};

const KEY: &str = "sk-ant-admin-sdk-test-0123456789";

#[test]
fn the_anthropic_sdk_reads_and_writes_the_fake_under_strict_validation() {
    let py = ANTHROPIC.executable();
    let addr = budgit_fakes::spawn(budgit_fakes::claude::router()).unwrap();
    let members =
        json!([{ "email": "alice@acme.com" }, { "email": "bob@acme.com" }, { "email": "carol@acme.com" }]);
    let r = http::try_send(
        addr,
        "POST",
        "/_fake/members",
        None,
        Some(&members.to_string()),
        &[("content-type", "application/json")],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // carol inherits the organisation's monthly limit
    let org = json!({ "period": "monthly", "amount": "2000" });
    let r = http::try_send(
        addr,
        "POST",
        "/_fake/org_limit",
        None,
        Some(&org.to_string()),
        &[("content-type", "application/json")],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);

    // one pending increase request per member, carol's the newest
    let users = http::try_send(
        addr,
        "GET",
        "/v1/organizations/users",
        Some(KEY),
        None,
        &[("anthropic-version", "2026-10-21")],
    )
    .unwrap()
    .json();
    let asks: Vec<Value> =
        users["data"].as_array().unwrap().iter().map(|u| json!({ "user_id": u["id"] })).collect();
    let r = http::try_send(
        addr,
        "POST",
        "/_fake/increase_requests",
        None,
        Some(&Value::Array(asks).to_string()),
        &[("content-type", "application/json")],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    // a day of costs for alice (two products) and a deleted account, and one outside the range
    let costs = json!([
        { "email": "alice@acme.com", "date": "2026-11-01", "product": "chat", "model": "claude-opus-4-5", "amount": "1234.5678" },
        { "email": "alice@acme.com", "date": "2026-11-02", "product": "claude_code", "model": "claude-sonnet-4-5", "amount": "0.5" },
        { "user_id": "user_gone", "date": "2026-11-02", "product": "chat", "model": "claude-opus-4-5", "amount": "3" },
        { "email": "bob@acme.com", "date": "2026-11-03", "product": "chat", "model": "claude-opus-4-5", "amount": "10" },
    ]);
    let r = http::try_send(
        addr,
        "POST",
        "/_fake/costs",
        None,
        Some(&costs.to_string()),
        &[("content-type", "application/json")],
    )
    .unwrap();
    assert_eq!(r.status, 204, "{}", r.body);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/sdk/claude_admin.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(format!("http://{addr}"))
        .arg(KEY)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}` ({e}): {}", py.display(), ANTHROPIC.setup()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK script failed:\n{stdout}\n{stderr}");
    let got: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // three members at two per page: the SDK followed `last_id` once
    assert_eq!((got["members"].clone(), got["user_pages"].clone()), (json!(3), json!(2)), "{got}");
    // alice's and bob's own limits and the organisation's, one per page
    assert_eq!(got["listed"], 3, "{got}");
    assert_eq!(
        got["effective"],
        json!([
            ["alice@acme.com", "monthly", "750", "user"],
            ["bob@acme.com", "monthly", "2000", "organization"],
            ["bob@acme.com", "weekly", "100", "user"],
            ["carol@acme.com", "monthly", "2000", "organization"],
        ]),
        "{got}"
    );
    assert_eq!(got["deleted_again_is_404"], true, "{got}");
    // increase requests: most recent first across three cursor pages, each pending one
    // with the member's live row of the effective report
    assert_eq!(got["requests_order"], json!(["carol@acme.com", "bob@acme.com", "alice@acme.com"]), "{got}");
    assert_eq!(
        got["request_summaries"],
        json!([
            ["alice@acme.com", "750", "user"],
            ["bob@acme.com", "2000", "organization"],
            ["carol@acme.com", "2000", "organization"],
        ]),
        "{got}"
    );
    // approving wrote alice's own limit at the approved amount, as the vendor does
    assert_eq!(got["alice_after_approve"], json!(["900"]), "{got}");
    assert_eq!(
        got["request_statuses"],
        json!([["alice@acme.com", "approved"], ["bob@acme.com", "denied"], ["carol@acme.com", "pending"]]),
        "{got}"
    );
    assert_eq!(got["resolved_twice_refused"], json!([true, true, true]), "{got}");
    // the cost report, one row a page, read whole through `next_page`
    assert_eq!(
        got["costs"],
        json!([
            [
                "alice@acme.com",
                false,
                "2026-11-01T00:00:00+00:00",
                "chat",
                "claude-opus-4-5",
                "1234.5678",
                "USD"
            ],
            [null, true, "2026-11-02T00:00:00+00:00", "chat", "claude-opus-4-5", "3", "USD"],
            [
                "alice@acme.com",
                false,
                "2026-11-02T00:00:00+00:00",
                "claude_code",
                "claude-sonnet-4-5",
                "0.5",
                "USD"
            ],
        ]),
        "{got}"
    );
    // the SDK sent what budgit sends: the key, the version, the reads beta on the list
    let calls = http::try_send(addr, "GET", "/_fake/calls", None, None, &[]).unwrap().json();
    assert!(calls.as_array().unwrap().len() >= 10, "{calls}");
}
