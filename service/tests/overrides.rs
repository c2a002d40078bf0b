//! Overrides under review against a real server and a real git repository with
//! history: statuses and days left at the service's clock, the drift review through
//! git, one-click proposals (let it lapse, move into a group) and the default limit as
//! branches with one commit, and the reconciler's runs as a list.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::path::Path;

use chrono::{Days, NaiveDate, Utc};
use common::http::send;
use common::repo::{RepoServer, blob_at, changed_paths, commit};
use common::server::ADMIN;
use git2::{Repository, Signature};
use serde_json::{Value, json};

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default:
  credits: 2000
  products: { codex: 1500 }
attributes:
  department: string
overrides:
  max_days: 60
  review_after_days: 60
";

const ENGINEERING: &str = "apiVersion: budgit/v1
kind: Group
name: engineering
selector: 'user.department == \"Engineering\"'
members:
  - bob@acme.com   # on loan from sales
limit:
  credits: 10000
";

fn over(name: &str, user: &str, starts: NaiveDate, expires: NaiveDate) -> String {
    format!(
        "apiVersion: budgit/v1\nkind: Override\nname: {name}\nuser: {user}\nadd:\n  credits: 500\n\
         starts: {starts}\nexpires: {expires}\nreason: sprint\n"
    )
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(offset: i64) -> NaiveDate {
    let t = today();
    if offset >= 0 { t + Days::new(offset.unsigned_abs()) } else { t - Days::new(offset.unsigned_abs()) }
}

/// Ann renewed twice (each old file removed), Bob's next one upcoming, Cid's expired,
/// Dee's ending in three days. Committed at the clock's time, as the overrides' dates
/// are relative to today.
fn make_repo(root: &Path) -> git2::Oid {
    let repo = Repository::init(root).unwrap();
    let sig = Signature::now("Ada", "ada@acme.com").unwrap();
    commit(
        &repo,
        &sig,
        &[
            ("policies/workspace.yaml", WORKSPACE),
            ("policies/groups/engineering.yaml", ENGINEERING),
            ("policies/overrides/ann-1.yaml", &over("ann-1", "ann@acme.com", day(-70), day(-40))),
        ],
        &[],
        "acme policies",
    );
    commit(
        &repo,
        &sig,
        &[("policies/overrides/ann-2.yaml", &over("ann-2", "ann@acme.com", day(-40), day(-10)))],
        &["policies/overrides/ann-1.yaml"],
        "renew ann",
    );
    commit(
        &repo,
        &sig,
        &[
            ("policies/overrides/ann-3.yaml", &over("ann-3", "ann@acme.com", day(-10), day(20))),
            ("policies/overrides/bob-soon.yaml", &over("bob-soon", "bob@acme.com", day(5), day(15))),
            ("policies/overrides/cid-old.yaml", &over("cid-old", "cid@acme.com", day(-30), day(-20))),
            ("policies/overrides/dee.yaml", &over("dee", "dee@acme.com", day(-2), day(3))),
        ],
        &["policies/overrides/ann-2.yaml"],
        "renew ann again, and others",
    )
}

fn start() -> RepoServer {
    let s = common::repo::start(make_repo);
    s.import("email,department\nann@acme.com,Engineering\nbob@acme.com,Sales\ncid@acme.com,Sales\ndee@acme.com,Sales\n");
    s
}

/// A write as the admin: its status and JSON body.
fn call(s: &RepoServer, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = send(s.addr, method, path, Some(ADMIN), Some(&body.to_string()));
    (r.status, r.json())
}

/// The `name`s of a list's page.
fn names(s: &RepoServer, path: &str) -> Vec<String> {
    s.get(path)["data"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn overrides_are_listed_with_status_days_left_file_and_line_and_filter_and_page() {
    let s = start();
    let all = s.get("/v1/overrides");
    let rows = all["data"].as_array().unwrap();
    let got: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|r| {
            (r["name"].as_str().unwrap(), r["status"].as_str().unwrap(), r["days_left"].as_i64().unwrap())
        })
        .collect();
    // soonest expiry first
    assert_eq!(
        got,
        [
            ("cid-old", "expired", -20),
            ("dee", "active", 3),
            ("bob-soon", "upcoming", 15),
            ("ann-3", "active", 20)
        ]
    );
    let bob = &rows[2];
    assert_eq!(bob["starts_in"], json!(5));
    assert_eq!((&bob["file"], &bob["line"]), (&json!("policies/overrides/bob-soon.yaml"), &json!(3)));
    assert_eq!(bob["commit"], json!(s.head.to_string()));
    assert_eq!(bob["add"]["credits"], json!(500));
    assert_eq!(names(&s, "/v1/overrides?status=active"), ["dee", "ann-3"]);
    assert_eq!(names(&s, "/v1/overrides?status=expired"), ["cid-old"]);
    // expiring within a week: in force or upcoming and ending in at most 7 days
    assert_eq!(names(&s, "/v1/overrides?expiring_within=7"), ["dee"]);
    assert_eq!(names(&s, "/v1/overrides?user=Ann@acme.com"), ["ann-3"]);
    let first = s.get("/v1/overrides?limit=3");
    assert_eq!((&first["has_more"], &first["next"]), (&json!(true), &json!("bob-soon")));
    assert_eq!(names(&s, "/v1/overrides?limit=3&after=bob-soon"), ["ann-3"]);
    for bad in ["/v1/overrides?status=gone", "/v1/overrides?expiring_within=-1", "/v1/overrides?limit=0"] {
        assert_eq!(send(s.addr, "GET", bad, Some(ADMIN), None).status, 400, "{bad}");
    }
}

#[test]
fn the_review_finds_renewals_through_history_and_a_lapse_is_a_proposal_removing_exactly_that_file() {
    let s = start();
    let review = s.get("/v1/overrides/review");
    assert_eq!(review["commit"], json!(s.head.to_string()));
    assert_eq!((&review["review_after_days"], &review["review_renewals"]), (&json!(60), &json!(3)));
    let findings = review["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{review:#}");
    let f = &findings[0];
    assert_eq!(
        (&f["user"], &f["name"], &f["file"]),
        (&json!("ann@acme.com"), &json!("ann-3"), &json!("policies/overrides/ann-3.yaml"))
    );
    assert_eq!(f["days"], json!(70));
    let codes: Vec<&str> =
        f["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["review/long-running", "review/renewed"]);
    let run: Vec<&str> = f["run"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(run, ["ann-1", "ann-2", "ann-3"]);

    let (status, p) = call(
        &s,
        "POST",
        "/v1/overrides/ann-3/lapse",
        &json!({ "reason": "renewed three times: time for a group" }),
    );
    assert_eq!(status, 201, "{p}");
    assert!(p["branch"].as_str().unwrap().starts_with("budgit/lapse/ann-3-"), "{p}");
    assert_eq!(p["kind"], json!("lapse"));
    let repo = s.git();
    assert_eq!(
        changed_paths(&repo, p["commit"].as_str().unwrap()),
        [("policies/overrides/ann-3.yaml".to_string(), git2::Delta::Deleted)]
    );
    assert!(p["plan"]["markdown"].as_str().unwrap().contains("ann@acme.com"), "{}", p["plan"]["markdown"]);
    s.assert_untouched();

    // expiring today instead: only the `expires:` line changes
    let (status, p) =
        call(&s, "POST", "/v1/overrides/dee/lapse", &json!({ "reason": "done early", "how": "expire" }));
    assert_eq!(status, 201, "{p}");
    let text = blob_at(&repo, p["commit"].as_str().unwrap(), "policies/overrides/dee.yaml");
    assert_eq!(text, over("dee", "dee@acme.com", day(-2), today()));
    // what cannot be done is said, and nothing is committed
    let branches = repo.branches(None).unwrap().count();
    let refused = [
        ("/v1/overrides/cid-old/lapse", json!({ "reason": "x" }), 422, "overrides/expired"),
        (
            "/v1/overrides/bob-soon/lapse",
            json!({ "reason": "x", "how": "expire" }),
            422,
            "overrides/upcoming",
        ),
        ("/v1/overrides/nobody/lapse", json!({ "reason": "x" }), 404, "overrides/unknown"),
        ("/v1/overrides/dee/lapse", json!({ "reason": " " }), 400, "proposals/bad-reason"),
        ("/v1/overrides/dee/lapse", json!({ "reason": "x", "how": "later" }), 400, "overrides/bad-how"),
        ("/v1/overrides/dee/move", json!({ "reason": "x", "group": "nope" }), 404, "groups/unknown"),
    ];
    for (path, body, want, code) in refused {
        let (status, e) = call(&s, "POST", path, &body);
        assert_eq!((status, e["error"]["code"].as_str()), (want, Some(code)), "{path} {body}: {e}");
    }
    assert_eq!(repo.branches(None).unwrap().count(), branches);
}

#[test]
fn moving_a_person_into_a_group_adds_them_to_members_and_removes_the_override() {
    let s = start();
    let (status, p) = call(
        &s,
        "POST",
        "/v1/overrides/ann-3/move",
        &json!({ "group": "engineering", "reason": "permanent" }),
    );
    assert_eq!(status, 201, "{p}");
    let repo = s.git();
    let commit = p["commit"].as_str().unwrap();
    assert_eq!(
        changed_paths(&repo, commit),
        [
            ("policies/groups/engineering.yaml".to_string(), git2::Delta::Modified),
            ("policies/overrides/ann-3.yaml".to_string(), git2::Delta::Deleted),
        ]
    );
    assert_eq!(
        blob_at(&repo, commit, "policies/groups/engineering.yaml"),
        ENGINEERING.replace("from sales\n", "from sales\n  - ann@acme.com\n")
    );
    // bob is a member already
    let (status, e) =
        call(&s, "POST", "/v1/overrides/bob-soon/move", &json!({ "group": "engineering", "reason": "x" }));
    assert_eq!(status, 422, "{e}");
    s.assert_untouched();
}

#[test]
fn the_default_limit_is_shown_and_proposed_like_a_groups() {
    let s = start();
    let d = s.get("/v1/workspace/default");
    assert_eq!((&d["credits"], &d["products"]), (&json!(2000), &json!({ "codex": 1500 })));
    assert_eq!(
        (&d["period"], &d["file"], &d["line"]),
        (&json!("month"), &json!("policies/workspace.yaml"), &json!(7))
    );
    assert_eq!(d["commit"], json!(s.head.to_string()));
    let (status, p) = call(
        &s,
        "POST",
        "/v1/workspace/default/propose",
        &json!({ "credits": 2500, "products": { "codex": 1800 }, "reason": "more for everyone" }),
    );
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["kind"], json!("default"));
    let text = blob_at(&s.git(), p["commit"].as_str().unwrap(), "policies/workspace.yaml");
    assert_eq!(
        text,
        WORKSPACE.replace("credits: 2000", "credits: 2500").replace("codex: 1500", "codex: 1800")
    );
    let changes: Vec<&str> =
        p["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap()).collect();
    assert_eq!(changes, ["default.credits", "default.products.codex"]);
    let (status, e) =
        call(&s, "POST", "/v1/workspace/default/propose", &json!({ "credits": 2000, "reason": "same" }));
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("proposals/no-change")));
    let (status, _) = call(&s, "POST", "/v1/workspace/default/propose", &json!({ "pool": 1, "reason": "x" }));
    assert_eq!(status, 400);
    // The rules a group's proposal follows hold for the default's too.
    for (body, code) in [
        (json!({ "credits": "-1", "reason": "x" }), "proposals/bad-credits"),
        (json!({ "models": { "gpt 5": 1 }, "reason": "x" }), "proposals/bad-cap"),
        (json!({ "reason": "x" }), "proposals/nothing"),
        (json!({ "credits": 2500, "reason": " " }), "proposals/bad-reason"),
    ] {
        let (status, e) = call(&s, "POST", "/v1/workspace/default/propose", &body);
        assert_eq!((status, e["error"]["code"].as_str()), (400, Some(code)), "{body}: {e}");
    }
    s.assert_untouched();
}

#[test]
fn the_reconcilers_runs_are_listed_newest_first_with_writes_and_errors() {
    let s = start();
    let head = s.head.to_string();
    for (ok, applied, failures) in
        [(true, 3, json!([])), (false, 1, json!(["a@acme.com: 503"])), (true, 0, json!([]))]
    {
        let run = json!({ "ok": ok, "commit": head, "applied": applied, "unchanged": 2, "drift": 0, "failures": failures, "duration_ms": 12 });
        assert_eq!(call(&s, "PUT", "/v1/reconciler/status", &run).0, 201);
    }
    let page = s.get("/v1/reconciler/runs?limit=2");
    let rows = page["data"].as_array().unwrap();
    let got: Vec<(i64, i64, &str)> = rows
        .iter()
        .map(|r| {
            (r["writes"].as_i64().unwrap(), r["errors"].as_i64().unwrap(), r["commit"].as_str().unwrap())
        })
        .collect();
    assert_eq!(got, [(0, 0, head.as_str()), (1, 1, head.as_str())]);
    assert_eq!(page["has_more"], json!(true));
    let rest = s.get(&format!("/v1/reconciler/runs?after={}", page["next"]));
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["writes"], json!(3));
    let failed = s.get("/v1/reconciler/runs?ok=false");
    assert_eq!(failed["data"].as_array().unwrap().len(), 1);
    assert_eq!(failed["data"][0]["failures"], json!(["a@acme.com: 503"]));
}
