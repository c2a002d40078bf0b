//! Team budget controls against a real server and real git repositories: groups read at
//! the approved ref, proposals committed on new branches (never in the work tree),
//! credit requests turned into Override proposals, and the reconciler's status.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::time::Duration;

use budgit_engine::workspace::http::HttpWorkspace;
use budgit_engine::workspace::{RunSummary, Target};
use common::http::send;
use common::repo::{RepoServer, ada, blob_at, changed_paths, commit};
use common::server::ADMIN;
use serde_json::{Value, json};

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default:
  credits: 2000
enforcement: hard
alerts: [80, 100]
attributes:
  department: string
overrides:
  max_days: 30
  require_reason: true
";

const ENGINEERING: &str = "# Product engineering: the leads review changes (CODEOWNERS)
apiVersion: budgit/v1
kind: Group
name: engineering
description: Product engineering
selector: 'user.department == \"Engineering\"'
priority: 20
limit:
  credits: 10000  # per person and month
  products: { codex: 8000 }

# who reviews
owners: ['@acme/eng-leads']
";

const SALES: &str = "apiVersion: budgit/v1
kind: Group
name: sales
selector: 'user.department == \"Sales\"'
priority: 10
limit:
  credits: 500
pool:
  credits: 9000
";

const GUARDRAILS: &str = "apiVersion: budgit/v1
kind: Guardrail
name: groups-stay-modest
applies_to: group
rule: 'group.limit.credits <= 20000.0'
message: 'a group limit may be at most 20000 credits'
severity: error
---
apiVersion: budgit/v1
kind: Guardrail
name: overrides-stay-modest
applies_to: override
rule: '!has(override.add) || override.add.credits <= 4.0 * workspace.default.credits'
message: 'an override may add at most four times the default'
severity: error
";

/// A work tree with one commit of the policies (and a file outside them); users a, b in
/// engineering and c in sales with their applied limits, and usage by a and b.
fn start() -> RepoServer {
    let s = common::repo::start(|root| {
        common::repo::init(
            root,
            &[
                ("README.md", "policies of acme\n"),
                ("policies/workspace.yaml", WORKSPACE),
                ("policies/groups/engineering.yaml", ENGINEERING),
                ("policies/groups/sales.yaml", SALES),
                ("policies/guardrails.yaml", GUARDRAILS),
            ],
        )
    });
    s.import("email,department\na@acme.com,Engineering\nb@acme.com,Engineering\nc@acme.com,Sales\n");
    let source = |name: &str, file: &str| json!({ "kind": "group", "name": name, "file": file, "line": 4 });
    call(
        &s,
        "PUT",
        "/v1/limits",
        json!({
            "commit": s.head.to_string(),
            "actor": "reconciler",
            "limits": [
                { "user": "a@acme.com", "credits": 10000, "group": "engineering", "source": source("engineering", "groups/engineering.yaml") },
                { "user": "b@acme.com", "credits": 10000, "group": "engineering", "source": source("engineering", "groups/engineering.yaml") },
                { "user": "c@acme.com", "credits": 500, "group": "sales", "source": source("sales", "groups/sales.yaml") },
            ],
            "pools": [{ "group": "sales", "credits": 9000 }],
        }),
    );
    let now = chrono::Utc::now().timestamp();
    call(
        &s,
        "POST",
        "/v1/usage/events",
        json!({ "events": [
            { "id": "e1", "time": now, "user": "a@acme.com", "product": "codex", "model": "gpt-5", "credits": 3000 },
            { "id": "e2", "time": now, "user": "b@acme.com", "product": "chatgpt", "model": "gpt-5", "credits": 12.5 },
        ]}),
    );
    s
}

/// A write as the admin, which must succeed with JSON.
fn call(s: &RepoServer, method: &str, path: &str, body: Value) -> Value {
    let r = send(s.addr, method, path, Some(ADMIN), Some(&body.to_string()));
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    r.json()
}

/// The repository's local branches, by name.
fn branches(s: &RepoServer) -> Vec<String> {
    let repo = s.git();
    let mut names: Vec<String> = repo
        .branches(Some(git2::BranchType::Local))
        .unwrap()
        .map(|b| b.unwrap().0.name().unwrap().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The work tree and HEAD are exactly as committed, the group's file included.
fn assert_work_tree_untouched(s: &RepoServer) {
    s.assert_untouched();
    assert_eq!(
        std::fs::read_to_string(s.repo.join("policies/groups/engineering.yaml")).unwrap(),
        ENGINEERING
    );
}

#[test]
fn groups_come_from_the_approved_ref_with_file_line_commit_and_ledger_usage() {
    let s = start();
    let out = s.get("/v1/groups");
    assert_eq!(
        (&out["commit"], &out["policies"], &out["errors"]),
        (&json!(s.head.to_string()), &json!("policies"), &json!(0))
    );
    let names: Vec<&str> =
        out["data"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["engineering", "sales"], "by priority");
    let eng = &out["data"][0];
    assert_eq!(eng["file"], "policies/groups/engineering.yaml");
    assert_eq!((eng["line"].as_u64(), eng["limit_line"].as_u64()), (Some(4), Some(9)));
    assert_eq!(eng["commit"], s.head.to_string());
    assert_eq!(eng["limit"], json!({ "credits": 10000, "products": { "codex": 8000 }, "models": {} }));
    assert_eq!(
        (&eng["pool"], &eng["owners"], &eng["priority"]),
        (&Value::Null, &json!(["@acme/eng-leads"]), &json!(20))
    );
    assert_eq!((&eng["members"], &eng["used"]), (&json!(2), &json!(3012.5)));
    let sales = &out["data"][1];
    assert_eq!((&sales["pool"], &sales["members"], &sales["used"]), (&json!(9000), &json!(1), &json!(0)));

    // A commit on the approved branch shows at once: the cache is per commit.
    let raised = SALES.replace("credits: 500", "credits: 700");
    let second = commit(&s.git(), &ada(100), &[("policies/groups/sales.yaml", &raised)], &[], "raise sales");
    let out = s.get("/v1/groups");
    assert_eq!(
        (&out["commit"], &out["data"][1]["limit"]["credits"]),
        (&json!(second.to_string()), &json!(700))
    );
}

#[test]
fn a_proposal_is_one_commit_on_a_new_branch_touching_only_the_group_file() {
    let s = start();
    let r = send(
        s.addr,
        "POST",
        "/v1/proposals",
        Some(ADMIN),
        Some(&json!({ "group": "engineering", "credits": "2500", "pool": "60000", "reason": "Q4 budget cut (FIN-12)" }).to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.json();
    let branch = p["branch"].as_str().unwrap();
    assert!(branch.starts_with("budgit/proposal/engineering-2"), "{branch}");
    assert_eq!(branch.len(), "budgit/proposal/engineering-20261128-010203".len(), "{branch}");
    assert_eq!(branches(&s).iter().filter(|b| b.starts_with("budgit/")).collect::<Vec<_>>(), [branch]);
    let commit = p["commit"].as_str().unwrap();
    let repo = s.git();
    let tip = repo.find_branch(branch, git2::BranchType::Local).unwrap().get().target().unwrap();
    assert_eq!(tip.to_string(), commit);
    assert_eq!(
        repo.find_commit(tip).unwrap().parent_id(0).unwrap(),
        s.head,
        "one commit on the approved ref"
    );
    assert_eq!(
        changed_paths(&repo, commit),
        [("policies/groups/engineering.yaml".to_string(), git2::Delta::Modified)]
    );
    // Only the values changed: comments and layout stay.
    let expected = ENGINEERING
        .replace("credits: 10000  #", "credits: 2500  #")
        .replace("codex: 8000 }\n", "codex: 8000 }\npool:\n  credits: 60000\n");
    assert_eq!(blob_at(&repo, commit, "policies/groups/engineering.yaml"), expected);
    let message = repo.find_commit(tip).unwrap().message().unwrap().to_string();
    assert!(
        message.starts_with("Propose engineering: limit.credits: 10000 → 2500, pool.credits: none → 60000\n"),
        "{message}"
    );
    assert!(
        message.contains("Q4 budget cut (FIN-12)") && message.contains("Proposed in the console by admin:"),
        "{message}"
    );
    // the admin is named by the token they hold: `admin:` and 12 hex digits of its SHA-256
    let by = message.split("Proposed in the console by ").nth(1).unwrap().trim_end().trim_end_matches('.');
    assert!(by.len() == 18 && by[6..].chars().all(|c| c.is_ascii_hexdigit()), "{by}");
    assert_work_tree_untouched(&s);

    // The plan: both engineers lowered, the one who used 3000 is now blocked.
    assert_eq!(p["plan"]["summary"]["lowered"], 2);
    assert_eq!(p["plan"]["summary"]["newly_blocked"], 1);
    assert_eq!(
        (&p["plan"]["summary"]["exposure_before"], &p["plan"]["summary"]["exposure_after"]),
        (&json!(20500), &json!(5500))
    );
    let markdown = p["plan"]["markdown"].as_str().unwrap();
    assert!(markdown.contains("engineering") && markdown.contains("a@acme.com"), "{markdown}");
    assert_eq!(p["base"], json!({ "ref": "HEAD", "commit": s.head.to_string() }));
    assert_eq!(p["changes"][0], json!({ "field": "limit.credits", "before": 10000, "after": 2500 }));

    let listed = s.get("/v1/proposals");
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!((&listed["data"][0]["id"], &listed["data"][0]["commit"]), (&p["id"], &p["commit"]));

    // The same values again are no change; a pool removal is one.
    let r = send(
        s.addr,
        "POST",
        "/v1/proposals",
        Some(ADMIN),
        Some(&json!({ "group": "engineering", "credits": "10000", "reason": "x" }).to_string()),
    );
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (422, Some("proposals/no-change")));
    let removed = call(
        &s,
        "POST",
        "/v1/proposals",
        json!({ "group": "sales", "pool": null, "reason": "no team budget" }),
    );
    let sales = blob_at(&repo, removed["commit"].as_str().unwrap(), "policies/groups/sales.yaml");
    assert_eq!(sales, SALES.replace("pool:\n  credits: 9000\n", ""));
    // Nobody's limit changes, but a team loses its bound: the plan says so.
    assert_eq!(removed["plan"]["summary"]["pools_removed"], 1);
    let markdown = removed["plan"]["markdown"].as_str().unwrap();
    assert!(!markdown.contains("No effective change"), "{markdown}");
    assert!(markdown.contains("| `sales` | removed | 9000 → no pool |"), "{markdown}");
    assert_eq!(s.get("/v1/proposals")["data"][0]["id"], removed["id"], "newest first");
    assert_work_tree_untouched(&s);
}

#[test]
fn an_invalid_proposal_commits_nothing_and_says_why() {
    let s = start();
    let before = branches(&s);
    let r = send(
        s.addr,
        "POST",
        "/v1/proposals",
        Some(ADMIN),
        Some(
            &json!({ "group": "engineering", "credits": "50000", "reason": "everyone gets more" })
                .to_string(),
        ),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let out = r.json();
    assert_eq!(out["error"]["code"], "proposals/invalid");
    let d = out["diagnostics"].as_array().unwrap().iter().find(|d| d["severity"] == "error").unwrap();
    assert!(d["code"].as_str().unwrap().starts_with("guardrail/"), "{d}");
    assert_eq!(d["file"], "policies/groups/engineering.yaml");
    assert_eq!(branches(&s), before);
    assert!(s.get("/v1/proposals")["data"].as_array().unwrap().is_empty());
    assert_work_tree_untouched(&s);

    let unknown = send(
        s.addr,
        "POST",
        "/v1/proposals",
        Some(ADMIN),
        Some(&json!({ "group": "nope", "credits": "1", "reason": "x" }).to_string()),
    );
    assert_eq!((unknown.status, unknown.json()["error"]["code"].as_str()), (404, Some("groups/unknown")));
    let cap = send(
        s.addr,
        "POST",
        "/v1/proposals",
        Some(ADMIN),
        Some(&json!({ "group": "engineering", "models": { "o3": null }, "reason": "x" }).to_string()),
    );
    assert_eq!((cap.status, cap.json()["error"]["code"].as_str()), (422, Some("proposals/no-such-cap")));
    let empty = send(
        s.addr,
        "POST",
        "/v1/proposals",
        Some(ADMIN),
        Some(&json!({ "group": "engineering", "reason": "x" }).to_string()),
    );
    assert_eq!(empty.status, 400);
    assert_eq!(branches(&s), before);
}

/// Proposes `body` and answers the created proposal (201 expected).
fn propose(s: &RepoServer, body: Value) -> Value {
    let r = send(s.addr, "POST", "/v1/proposals", Some(ADMIN), Some(&body.to_string()));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

#[test]
fn a_proposal_adds_a_new_cap_and_removes_an_old_one() {
    let s = start();
    let p = propose(
        &s,
        json!({
            "group": "engineering",
            "products": { "chatgpt": "3000", "codex": null },
            "models": { "gpt-5-pro": "400.5" },
            "reason": "cap ChatGPT instead of Codex (FIN-31)",
        }),
    );
    let commit = p["commit"].as_str().unwrap();
    let repo = s.git();
    assert_eq!(
        changed_paths(&repo, commit),
        [("policies/groups/engineering.yaml".to_string(), git2::Delta::Modified)]
    );
    // The caps mapping is rewritten in its own style; a missing one is created under the limit.
    let expected = ENGINEERING.replace(
        "  products: { codex: 8000 }\n",
        "  products: { chatgpt: 3000 }\n  models: { gpt-5-pro: 400.5 }\n",
    );
    assert_eq!(blob_at(&repo, commit, "policies/groups/engineering.yaml"), expected);
    assert_eq!(
        p["changes"],
        json!([
            { "field": "limit.products.chatgpt", "before": null, "after": 3000 },
            { "field": "limit.products.codex", "before": 8000, "after": null },
            { "field": "limit.models.gpt-5-pro", "before": null, "after": 400.5 },
        ])
    );
    assert_eq!(
        p["title"],
        "engineering: limit.products.chatgpt: none → 3000, limit.products.codex: 8000 → none, \
         limit.models.gpt-5-pro: none → 400.5"
    );
    // The plan: the two engineers' caps change, their totals do not.
    let summary = &p["plan"]["summary"];
    assert_eq!(
        (&summary["caps_changed"], &summary["raised"], &summary["lowered"]),
        (&json!(2), &json!(0), &json!(0))
    );
    // Each engineer gains two caps and loses one.
    assert_eq!(
        (&summary["caps_added"], &summary["caps_removed"], &summary["caps_raised"], &summary["caps_lowered"]),
        (&json!(2), &json!(2), &json!(0), &json!(0))
    );
    let markdown = p["plan"]["markdown"].as_str().unwrap();
    assert!(markdown.contains("gpt-5-pro 400.5"), "{markdown}");
    assert!(markdown.contains("| product `codex` | 8000 | none | removed | 2 |"), "{markdown}");
    assert_work_tree_untouched(&s);

    // A group without caps gets its first one, above the pool.
    let p = propose(&s, json!({ "group": "sales", "models": { "o3": "100" }, "reason": "o3 is costly" }));
    let sales = blob_at(&repo, p["commit"].as_str().unwrap(), "policies/groups/sales.yaml");
    assert_eq!(sales, SALES.replace("  credits: 500\n", "  credits: 500\n  models: { o3: 100 }\n"));

    // Removing the last cap of a kind removes its mapping.
    let p = propose(
        &s,
        json!({ "group": "engineering", "products": { "codex": null }, "reason": "no Codex cap" }),
    );
    let eng = blob_at(&repo, p["commit"].as_str().unwrap(), "policies/groups/engineering.yaml");
    assert_eq!(eng, ENGINEERING.replace("  products: { codex: 8000 }\n", ""));
    assert_eq!(p["plan"]["summary"]["caps_changed"], 2);
    assert_work_tree_untouched(&s);
}

#[test]
fn an_invalid_cap_commits_nothing() {
    let s = start();
    // A guardrail on a model cap, committed on the approved branch.
    let repo = s.git();
    let rule = "apiVersion: budgit/v1
kind: Guardrail
name: pro-caps-stay-small
applies_to: group
rule: '!(\"gpt-5-pro\" in group.limit.models) || group.limit.models[\"gpt-5-pro\"] <= 1000.0'
message: 'a gpt-5-pro cap may be at most 1000 credits'
severity: error
";
    commit(&repo, &ada(100), &[("policies/caps.yaml", rule)], &[], "guard model caps");
    let before = branches(&s);
    let refused = |body: Value| {
        let r = send(s.addr, "POST", "/v1/proposals", Some(ADMIN), Some(&body.to_string()));
        let code = r.json()["error"]["code"].as_str().map(str::to_string);
        (r.status, code, r.json())
    };

    // Validated like CI: the guardrail fails at the group's file.
    let (status, code, out) =
        refused(json!({ "group": "engineering", "models": { "gpt-5-pro": "5000" }, "reason": "x" }));
    assert_eq!((status, code.as_deref()), (422, Some("proposals/invalid")), "{out}");
    let d = out["diagnostics"].as_array().unwrap().iter().find(|d| d["severity"] == "error").unwrap();
    assert_eq!(
        (&d["code"], &d["file"]),
        (&json!("guardrail/failed"), &json!("policies/groups/engineering.yaml"))
    );
    assert!(d["message"].as_str().unwrap().contains("at most 1000 credits"), "{d}");
    // The same cap within the rule passes.
    let ok = propose(&s, json!({ "group": "engineering", "models": { "gpt-5-pro": "900" }, "reason": "x" }));
    assert_eq!(ok["changes"][0]["after"], 900);
    let after_ok = branches(&s);
    assert_eq!(after_ok.len(), before.len() + 1);

    for (body, want) in [
        (
            json!({ "group": "engineering", "products": { "chatgpt": "-5" }, "reason": "x" }),
            (400, "proposals/bad-credits"),
        ),
        (
            json!({ "group": "engineering", "models": { "gpt 5": "1" }, "reason": "x" }),
            (400, "proposals/bad-cap"),
        ),
        (json!({ "group": "engineering", "models": { "": "1" }, "reason": "x" }), (400, "proposals/bad-cap")),
        (
            json!({ "group": "engineering", "products": { "chatgpt": "1.0000001" }, "reason": "x" }),
            (400, "request/bad-json"),
        ),
        (
            json!({ "group": "sales", "products": { "codex": null }, "reason": "x" }),
            (422, "proposals/no-such-cap"),
        ),
        (
            json!({ "group": "engineering", "products": { "codex": "8000" }, "reason": "x" }),
            (422, "proposals/no-change"),
        ),
    ] {
        let (status, code, out) = refused(body.clone());
        assert_eq!((status, code.as_deref()), (want.0, Some(want.1)), "{body}: {out}");
    }
    assert_eq!(branches(&s), after_ok, "nothing committed");
}

#[test]
fn statuses_warn_from_the_workspaces_alert_levels_at_the_approved_ref() {
    let s = start();
    // c@acme.com at 88% of 500: past the workspace's 80, short of a 90
    let now = chrono::Utc::now().timestamp();
    call(
        &s,
        "POST",
        "/v1/usage/events",
        json!({ "events": [
            { "id": "e3", "time": now, "user": "c@acme.com", "product": "chatgpt", "model": "gpt-5", "credits": 440 },
        ]}),
    );
    let warned = |summary: &Value| {
        let w = &summary["workspace"];
        (w["alerts"].clone(), w["warning_threshold"].clone(), w["status_counts"]["warning"].clone())
    };
    let summary = s.get("/v1/dashboard/summary?fresh=true");
    assert_eq!(warned(&summary), (json!([80, 100]), json!(80), json!(1)), "{summary}");

    // a merge that moves the warning level to 90 shows without a restart
    let workspace = WORKSPACE.replace("alerts: [80, 100]", "alerts: [100, 50, 90]");
    commit(&s.git(), &ada(100), &[("policies/workspace.yaml", &workspace)], &[], "alert at 90");
    // the levels and the applied limits are copied about once a second: wait for the next copy
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let summary = loop {
        let summary = s.get("/v1/dashboard/summary?fresh=true");
        if summary["workspace"]["warning_threshold"] == 90 || std::time::Instant::now() > deadline {
            break summary;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(warned(&summary), (json!([50, 90, 100]), json!(90), json!(0)), "{summary}");
    let users = s.get("/v1/dashboard/users?status=warning&fresh=true");
    assert_eq!(users["data"], json!([]), "{users}");
}

#[test]
fn a_request_becomes_an_override_proposal_with_one_new_file() {
    let s = start();
    let request = call(
        &s,
        "POST",
        "/v1/requests",
        json!({ "user": "b@acme.com", "credits": 5000, "days": 14, "reason": "payments migration (PAY-1234)" }),
    );
    let id = request["id"].as_i64().unwrap();
    let r = send(s.addr, "POST", &format!("/v1/requests/{id}/propose"), Some(ADMIN), None);
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.json();
    let branch = p["branch"].as_str().unwrap();
    assert!(branch.starts_with("budgit/request/b-"), "{branch}");
    let repo = s.git();
    let changed = changed_paths(&repo, p["commit"].as_str().unwrap());
    assert_eq!(changed.len(), 1, "{changed:?}");
    let (path, kind) = &changed[0];
    assert!(path.starts_with("policies/overrides/b-") && path.ends_with(".yaml"), "{path}");
    assert_eq!(*kind, git2::Delta::Added);
    let text = blob_at(&repo, p["commit"].as_str().unwrap(), path);
    assert!(text.contains("user: b@acme.com") && text.contains("credits: 5000"), "{text}");
    assert_eq!((&p["kind"], &p["request_id"], &p["file"]), (&json!("request"), &json!(id), &json!(path)));
    assert_eq!(p["plan"]["summary"]["raised"], 1);
    assert_work_tree_untouched(&s);

    let listed = s.get("/v1/requests");
    let row = &listed["data"][0];
    assert_eq!(
        (&row["status"], &row["proposal"]["branch"], &row["proposal"]["commit"]),
        (&json!("proposed"), &json!(branch), &p["commit"])
    );
    let again = send(s.addr, "POST", &format!("/v1/requests/{id}/propose"), Some(ADMIN), None);
    assert_eq!(again.status, 409);

    // Over the override guardrail: refused, nothing committed, the request still pending.
    let big = call(
        &s,
        "POST",
        "/v1/requests",
        json!({ "user": "c@acme.com", "credits": 50000, "days": 7, "reason": "a big demo" }),
    );
    let before = branches(&s);
    let r = send(s.addr, "POST", &format!("/v1/requests/{}/propose", big["id"]), Some(ADMIN), None);
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (422, Some("proposals/invalid")),
        "{}",
        r.body
    );
    assert_eq!(branches(&s), before);
    let pending = s.get("/v1/requests?status=pending");
    assert_eq!(pending["data"][0]["id"], big["id"]);
    assert_eq!(pending["data"][0]["proposal"], Value::Null);
}

#[test]
fn the_reconciler_still_reads_the_audit_log_after_a_proposal() {
    // A proposal's audit row records a branch, not a limit: the client must skip it.
    let s = start();
    let ws = HttpWorkspace::new(&format!("http://{}", s.addr), ADMIN.to_string(), Duration::from_secs(10));
    let before = ws.last_applied("reconciler").unwrap();
    let r = send(
        s.addr,
        "POST",
        "/v1/proposals",
        Some(ADMIN),
        Some(&json!({ "group": "engineering", "credits": "2500", "reason": "budget cut" }).to_string()),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let audit = s.get("/v1/audit");
    assert!(
        audit["data"].as_array().unwrap().iter().any(|row| row["action"].as_str() != Some("limit.set")),
        "the proposal left a non-limit audit row: {audit}"
    );
    assert_eq!(ws.last_applied("reconciler").unwrap(), before);
}

#[test]
fn reconciler_status_round_trips_through_the_engine_client() {
    let s = start();
    assert_eq!(s.get("/v1/reconciler/status"), json!({ "last": null, "runs": [] }));
    let ws = HttpWorkspace::new(&format!("http://{}", s.addr), ADMIN.to_string(), Duration::from_secs(10));
    let run = RunSummary {
        ok: false,
        commit: Some(s.head.to_string()),
        applied: 3,
        unchanged: 97,
        drift: 2,
        drift_unmanaged: 1,
        failures: vec!["c@acme.com: the workspace failed (500)".to_string()],
        duration_ms: 420,
        ..RunSummary::default()
    };
    ws.report_run(&run).unwrap();
    ws.report_run(&RunSummary { ok: true, applied: 1, ..run.clone() }).unwrap();
    let status = s.get("/v1/reconciler/status");
    let last = &status["last"];
    assert_eq!((&last["ok"], &last["applied"], &last["unchanged"]), (&json!(true), &json!(1), &json!(97)));
    assert_eq!(
        (&last["commit"], &last["drift"], &last["duration_ms"]),
        (&json!(s.head.to_string()), &json!(2), &json!(420))
    );
    assert!(last["at"].as_str().unwrap().ends_with('Z'), "the client stamps the time");
    let runs = status["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1]["failures"], json!(["c@acme.com: the workspace failed (500)"]));

    let bad = send(s.addr, "PUT", "/v1/reconciler/status", Some(ADMIN), Some("{\"ok\": \"yes\"}"));
    assert_eq!(bad.status, 400);
}

#[test]
fn a_user_token_gets_403_everywhere_here() {
    let s = start();
    let token =
        call(&s, "POST", "/v1/users/a@acme.com/tokens", json!({}))["token"].as_str().unwrap().to_string();
    let request = call(
        &s,
        "POST",
        "/v1/requests",
        json!({ "user": "a@acme.com", "credits": 10, "days": 1, "reason": "x" }),
    );
    let propose = format!("/v1/requests/{}/propose", request["id"]);
    let calls: [(&str, &str, Option<String>); 6] = [
        ("GET", "/v1/groups", None),
        ("GET", "/v1/proposals", None),
        ("POST", "/v1/proposals", Some(json!({ "group": "engineering", "credits": "1", "reason": "x" }).to_string())),
        ("POST", &propose, None),
        ("GET", "/v1/reconciler/status", None),
        ("PUT", "/v1/reconciler/status", Some(json!({ "ok": true, "applied": 0, "unchanged": 0, "drift": 0, "failures": [], "duration_ms": 1 }).to_string())),
    ];
    for (method, path, body) in &calls {
        let r = send(s.addr, method, path, Some(&token), body.as_deref());
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        let r = send(s.addr, method, path, None, body.as_deref());
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
    }
    assert_eq!(branches(&s).iter().filter(|b| b.starts_with("budgit/")).count(), 0);
    assert_eq!(s.get("/v1/reconciler/status")["last"], Value::Null);
}

#[test]
fn without_a_repository_the_team_controls_say_how_to_get_one() {
    let s = common::server::start();
    let r = send(s.addr, "GET", "/v1/groups", Some(ADMIN), None);
    assert_eq!(r.status, 404);
    let out = r.json();
    assert_eq!(out["error"]["code"], "repo/not-configured");
    assert!(out["error"]["message"].as_str().unwrap().contains("--repo"));
}

#[test]
fn a_request_for_a_differently_spelled_email_names_the_user_as_the_directory_does() {
    let s = start();
    let request = call(
        &s,
        "POST",
        "/v1/requests",
        json!({ "user": "B@Acme.COM", "credits": 500, "days": 7, "reason": "payments migration (PAY-1234)" }),
    );
    assert_eq!(request["user"], "b@acme.com", "{request}");
    let r = send(s.addr, "POST", &format!("/v1/requests/{}/propose", request["id"]), Some(ADMIN), None);
    assert_eq!(r.status, 201, "{}", r.body);
    let p = r.json();
    let repo = s.git();
    let changed = changed_paths(&repo, p["commit"].as_str().unwrap());
    let text = blob_at(&repo, p["commit"].as_str().unwrap(), &changed[0].0);
    assert!(text.contains("\nuser: b@acme.com\n"), "{text}");
    // The override reaches the person: the plan raises exactly one limit.
    assert_eq!(p["plan"]["summary"]["raised"], 1, "{}", p["plan"]);
}

#[test]
fn requests_from_odd_emails_and_twice_for_one_person_get_valid_branches_and_distinct_files() {
    let s = start();
    let csv = "email,department\na..b@acme.com,Engineering\n";
    assert_eq!(send(s.addr, "POST", "/v1/users/import", Some(ADMIN), Some(csv)).status, 200);
    let mut files = Vec::new();
    for (user, reason) in [("a..b@acme.com", "first"), ("a..b@acme.com", "second"), ("b@acme.com", "third")] {
        let request = call(
            &s,
            "POST",
            "/v1/requests",
            json!({ "user": user, "credits": 50, "days": 3, "reason": reason }),
        );
        let r = send(s.addr, "POST", &format!("/v1/requests/{}/propose", request["id"]), Some(ADMIN), None);
        assert_eq!(r.status, 201, "{user}: {}", r.body);
        let p = r.json();
        let branch = p["branch"].as_str().unwrap().to_string();
        assert!(git2::Reference::is_valid_name(&format!("refs/heads/{branch}")), "{branch}");
        let file = p["file"].as_str().unwrap().to_string();
        let text = blob_at(&s.git(), p["commit"].as_str().unwrap(), &file);
        assert!(text.contains(&format!("reason: \"{reason}\"")), "{text}");
        files.push(file);
    }
    // two requests for one person while the first waits for review: two files, not one
    let distinct: std::collections::BTreeSet<_> = files.iter().collect();
    assert_eq!(distinct.len(), 3, "{files:?}");
    assert!(files[0].starts_with("policies/overrides/a.b-"), "{files:?}");
}

#[test]
fn a_request_names_one_product_or_model_with_a_name_a_policy_can_hold() {
    let s = start();
    for (body, code) in [
        (
            json!({ "user": "a@acme.com", "credits": 10, "days": 1, "reason": "x", "product": "codex", "model": "gpt-5" }),
            "requests/bad-need",
        ),
        (
            json!({ "user": "a@acme.com", "credits": 10, "days": 1, "reason": "x", "product": "co dex" }),
            "requests/bad-need",
        ),
        (
            json!({ "user": "a@acme.com", "credits": 10, "days": 1, "reason": "x", "model": "" }),
            "requests/bad-need",
        ),
        (
            json!({ "user": "a@acme.com", "credits": 10, "days": 1, "reason": "x", "product": 7 }),
            "request/bad-json",
        ),
    ] {
        let r = send(s.addr, "POST", "/v1/requests", Some(ADMIN), Some(&body.to_string()));
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some(code)), "{body}: {}", r.body);
    }
    let made = call(
        &s,
        "POST",
        "/v1/requests",
        json!({ "user": "b@acme.com", "credits": 300, "days": 2, "reason": "eval", "model": "gpt-5-pro" }),
    );
    assert_eq!(
        (&made["product"], &made["model"], &made["lifecycle"]),
        (&Value::Null, &json!("gpt-5-pro"), &json!({}))
    );
    let p = call(&s, "POST", &format!("/v1/requests/{}/propose", made["id"]), json!({}));
    let text = blob_at(&s.git(), p["commit"].as_str().unwrap(), p["file"].as_str().unwrap());
    assert!(text.contains("add:\n  credits: 300\n  models:\n    gpt-5-pro: 300\n"), "{text}");
    assert_eq!(p["changes"][0]["caps"], json!({ "kind": "models", "name": "gpt-5-pro" }));
}

#[test]
fn a_proposed_request_is_merged_applied_and_done_by_itself_and_the_admin_is_named() {
    let s = start();
    let asked = call(
        &s,
        "POST",
        "/v1/requests",
        json!({ "user": "a@acme.com", "credits": 2000, "days": 7, "reason": "codex migration",
            "product": "codex", "context": { "note": "blocked on codex", "used": "8000" } }),
    );
    let id = asked["id"].as_i64().unwrap();
    let p = call(&s, "POST", &format!("/v1/requests/{id}/propose"), json!({}));
    let commit = p["commit"].as_str().unwrap().to_string();
    let repo = s.git();
    let text = blob_at(&repo, &commit, p["file"].as_str().unwrap());
    assert!(
        text.contains("  products:\n    codex: 2000\n") && text.contains("# Context: blocked on codex\n"),
        "{text}"
    );
    let message =
        repo.find_commit(git2::Oid::from_str(&commit).unwrap()).unwrap().message().unwrap().to_string();
    assert!(message.contains("Context: blocked on codex") && message.contains("for codex"), "{message}");
    let row = |s: &RepoServer| {
        s.get("/v1/requests")["data"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone()
    };
    let proposed = row(&s);
    let admin = proposed["decided_by"].as_str().unwrap().to_string();
    assert!(admin.starts_with("admin:") && admin.len() == 18, "{admin}");
    assert_eq!(proposed["lifecycle"]["proposed"]["by"], json!(admin));
    assert_eq!(proposed["lifecycle"]["proposed"]["commit"], json!(commit));
    assert!(proposed["lifecycle"]["proposed"]["plan_summary"].is_object(), "{proposed}");

    // A run at the approved commit does not contain the proposal: nothing moves.
    let run = |s: &RepoServer, at: &str| {
        call(
            s,
            "PUT",
            "/v1/reconciler/status",
            json!({ "ok": true, "commit": at, "applied": 1, "unchanged": 2, "drift": 0, "failures": [], "duration_ms": 5 }),
        )
    };
    run(&s, &s.head.to_string());
    assert_eq!(row(&s)["status"], "proposed");

    // Merged: the approved branch fast-forwards to the proposal (as a merge button would).
    let head_ref = repo.head().unwrap().name().unwrap().to_string();
    repo.reference(&head_ref, git2::Oid::from_str(&commit).unwrap(), true, "merge the request").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let merged = loop {
        let r = row(&s);
        if r["status"] != "proposed" || std::time::Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(merged["status"], "merged", "the periodic check never saw the merge: {merged}");
    assert_eq!(merged["lifecycle"]["merged"]["commit"], json!(commit));

    // The reconciler applies the merged commit: its limits, then its run report.
    let name = p["changes"][0]["name"].as_str().unwrap();
    call(
        &s,
        "PUT",
        "/v1/limits",
        json!({ "commit": commit, "actor": "reconciler", "limits": [{ "user": "a@acme.com", "credits": 12000,
            "products": { "codex": 10000 }, "group": "engineering",
            "source": { "kind": "override", "name": name, "file": p["file"], "line": 6 } }] }),
    );
    let reported = run(&s, &commit);
    let done = row(&s);
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["lifecycle"]["applied"]["run"], reported["seq"]);
    assert_eq!(done["lifecycle"]["applied"]["commit"], json!(commit));
    assert_eq!(done["lifecycle"]["done"]["override"], json!(name));
    // Each step is in the audit log, by the server.
    let audit = s.get("/v1/audit?limit=1000");
    let steps: Vec<(&str, &str)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["subject"] == format!("request:{id}"))
        .map(|a| (a["action"].as_str().unwrap(), a["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("request.proposed", admin.as_str()),
            ("request.merged", "budgit serve"),
            ("request.applied", "budgit serve"),
            ("request.done", "budgit serve")
        ]
    );
    // The person sees the same steps.
    let token =
        call(&s, "POST", "/v1/users/a@acme.com/tokens", json!({}))["token"].as_str().unwrap().to_string();
    let mine = send(s.addr, "GET", "/v1/requests?status=done", Some(&token), None).json();
    assert_eq!(mine["data"][0]["lifecycle"], done["lifecycle"]);
}

#[test]
fn a_proposed_request_can_be_declined_with_a_reason_and_stays_declined_when_merged() {
    let s = start();
    let asked = call(
        &s,
        "POST",
        "/v1/requests",
        json!({ "user": "b@acme.com", "credits": 100, "days": 3, "reason": "demo" }),
    );
    let id = asked["id"].as_i64().unwrap();
    let p = call(&s, "POST", &format!("/v1/requests/{id}/propose"), json!({}));
    let r = send(s.addr, "POST", &format!("/v1/requests/{id}/decline"), Some(ADMIN), Some("{}"));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("requests/missing-reason")));
    let declined =
        call(&s, "POST", &format!("/v1/requests/{id}/decline"), json!({ "reason": "the pool covers it" }));
    assert_eq!(
        (&declined["status"], &declined["decision_reason"]),
        (&json!("declined"), &json!("the pool covers it"))
    );
    assert_eq!(declined["lifecycle"]["declined"]["reason"], "the pool covers it");
    assert!(declined["lifecycle"]["declined"]["by"].as_str().unwrap().starts_with("admin:"));
    assert_eq!(declined["proposal"]["branch"], p["branch"], "the declined proposal keeps naming its branch");
    let again = send(
        s.addr,
        "POST",
        &format!("/v1/requests/{id}/decline"),
        Some(ADMIN),
        Some(&json!({ "reason": "x" }).to_string()),
    );
    assert_eq!(again.status, 409);
    // merged anyway: a declined request does not move
    let repo = s.git();
    let head_ref = repo.head().unwrap().name().unwrap().to_string();
    repo.reference(&head_ref, git2::Oid::from_str(p["commit"].as_str().unwrap()).unwrap(), true, "merge")
        .unwrap();
    call(
        &s,
        "PUT",
        "/v1/reconciler/status",
        json!({ "ok": true, "commit": p["commit"], "applied": 1, "unchanged": 0, "drift": 0, "failures": [], "duration_ms": 5 }),
    );
    let listed = s.get("/v1/requests?status=declined");
    assert_eq!(listed["data"][0]["id"], json!(id));
}
