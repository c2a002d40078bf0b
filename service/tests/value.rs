//! Outcomes and the value view against a real server on loopback: usage per context
//! value and per team, credits per outcome computed by hand, and the upload's
//! idempotency, conflicts, bounds and authorisation.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use common::http::send;
use common::seeded::{Seeded, at, event, start_seeded};
use common::server::ADMIN;
use serde_json::{Value, json};

/// The seeded fixture plus Codex work with a context: a and b are in `eng`, c in no group.
fn with_context() -> Seeded {
    let s = start_seeded();
    let e = |id: &str, day: u32, user: &str, credits: &str, context: Value| {
        let mut v = event(id, at(day, 10), user, "codex", "gpt-5-codex", credits);
        v["context"] = context;
        v
    };
    let events = json!([
        e(
            "v1",
            5,
            "a@x.com",
            "12",
            json!({ "repo": "acme/api", "ticket": "ENG-1", "workflow": "ci-review", "kind": "task" })
        ),
        e("v2", 5, "b@x.com", "8", json!({ "repo": "acme/api", "ticket": "ENG-2" })),
        e("v3", 6, "c@x.com", "4", json!({ "repo": "acme/web" })),
        // not text: counted as usage without a repository
        e("v4", 6, "a@x.com", "1", json!({ "repo": 7 })),
        e("v5", 6, "a@x.com", "0.5", json!("a note")),
    ]);
    s.call("POST", "/v1/usage/events", &events.to_string());
    s
}

fn upload(s: &Seeded, body: &str) -> common::http::Response {
    send(s.addr, "POST", "/v1/outcomes?format=csv", Some(ADMIN), Some(body))
}

const OUTCOMES: &str = "time,kind,id,repo,user,team\n\
    2026-11-05T12:00:00Z,pull_request,acme/api#1,acme/api,A@x.com,\n\
    2026-11-06T12:00:00Z,pull_request,acme/api#2,acme/api,b@x.com,\n\
    2026-11-07,pull_request,acme/api#3,acme/api,,eng\n\
    2026-11-07,ticket,ENG-1,,a@x.com,\n\
    2026-11-08T09:00:00Z,pull_request,acme/web#1,acme/web,c@x.com,\n\
    2026-10-30T09:00:00Z,pull_request,acme/api#0,acme/api,a@x.com,\n";

fn row<'a>(v: &'a Value, key: Option<&str>) -> &'a Value {
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"].as_str() == key)
        .unwrap_or_else(|| panic!("no row {key:?} in {v}"))
}

fn team<'a>(v: &'a Value, name: Option<&str>) -> &'a Value {
    v["teams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["team"].as_str() == name)
        .unwrap_or_else(|| panic!("no team {name:?} in {v}"))
}

#[test]
fn usage_per_repository_and_credits_per_outcome_per_team_are_computed_exactly() {
    let s = with_context();
    let r = upload(&s, OUTCOMES);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({ "received": 6, "stored": 6, "unchanged": 0 }));
    // the period of `now`: November; the October outcome is not counted
    let v = s.get("/v1/dashboard/value");
    assert_eq!(v["by"], "context.repo");
    assert_eq!(v["since"], "2026-11-01T00:00:00Z");
    // 141.75 seeded + 25.5 with a context
    assert_eq!(v["used"], json!(167.25));
    assert_eq!(v["outcomes"], 5);
    let keys: Vec<Option<&str>> = v["rows"].as_array().unwrap().iter().map(|r| r["key"].as_str()).collect();
    assert_eq!(keys, vec![None, Some("acme/api"), Some("acme/web")]);
    // acme/api: 12 + 8 over 3 pull requests = 6.666666 (rounded down)
    let api = row(&v, Some("acme/api"));
    assert_eq!(api["used"], json!(20));
    assert_eq!(api["outcomes"], 3);
    assert_eq!(api["credits_per_outcome"], json!(6.666666));
    assert_eq!(api["teams"], json!([{ "team": "eng", "used": 20 }]));
    assert_eq!(row(&v, Some("acme/web"))["teams"], json!([{ "team": null, "used": 4 }]));
    // a repository that is not text, and a context that is not an object, count as none
    let none = row(&v, None);
    assert_eq!(none["used"], json!(143.25));
    assert_eq!(none["outcomes"], Value::Null);
    // eng: 125.5 seeded + 21.5; three pull requests (two by its members, one named eng)
    // and one ticket: 147 / 4 = 36.75 per outcome, 147 / 3 = 49 per pull request
    let eng = team(&v, Some("eng"));
    assert_eq!(eng["used"], json!(147));
    assert_eq!(eng["kinds"], json!({ "pull_request": 3, "ticket": 1 }));
    assert_eq!(eng["credits_per_outcome"], json!(36.75));
    assert_eq!(eng["credits_per_pull_request"], json!(49));
    // people with no group: 9 + 2.25 + 5 seeded + 4; c's pull request
    let none = team(&v, None);
    assert_eq!((none["used"].clone(), none["outcomes"].clone()), (json!(20.25), json!(1)));
    // tickets: a ticket's outcome is the `ticket` outcome of that id
    let t = s.get("/v1/dashboard/value?by=context.ticket");
    assert_eq!(row(&t, Some("ENG-1"))["outcomes"], 1);
    assert_eq!(row(&t, Some("ENG-1"))["credits_per_outcome"], json!(12));
    assert_eq!(row(&t, Some("ENG-2"))["credits_per_outcome"], Value::Null);
    let w = s.get("/v1/dashboard/value?by=context.workflow");
    assert_eq!(row(&w, Some("ci-review"))["used"], json!(12));
    assert_eq!(row(&w, Some("ci-review"))["outcomes"], Value::Null);
    // a window of its own: October alone
    let oct = s.get("/v1/dashboard/value?since=2026-10-01T00:00:00Z&until=2026-11-01T00:00:00Z");
    assert_eq!((oct["used"].clone(), oct["outcomes"].clone()), (json!(1000), json!(1)));
    assert_eq!(row(&oct, None)["used"], json!(1000));
    // `limit` keeps the largest values and says how many are left out
    let one = s.get("/v1/dashboard/value?limit=1");
    assert_eq!((one["rows"].as_array().unwrap().len(), one["more"].clone()), (1, json!(2)));
}

#[test]
fn an_upload_is_idempotent_all_or_nothing_and_refuses_a_changed_outcome() {
    let s = with_context();
    assert_eq!(upload(&s, OUTCOMES).status, 200);
    // the same outcomes again change nothing
    let again = upload(&s, OUTCOMES);
    assert_eq!(again.json(), json!({ "received": 6, "stored": 0, "unchanged": 6 }));
    // JSON Lines, by content: a repeated row with the same values is one outcome
    let line = r#"{"time":"2026-11-09T00:00:00Z","kind":"ticket","id":"ENG-9","team":"eng"}"#;
    let r = send(s.addr, "POST", "/v1/outcomes", Some(ADMIN), Some(&format!("{line}\n{line}\n")));
    assert_eq!(r.json(), json!({ "received": 1, "stored": 1, "unchanged": 0 }));
    // a known id with another repository: 409, and the new outcome beside it is not stored
    let changed = "time,kind,id,repo\n2026-11-09T00:00:00Z,pull_request,acme/api#99,acme/api\n\
                   2026-11-05T12:00:00Z,pull_request,acme/api#1,acme/web\n";
    let r = upload(&s, changed);
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "outcomes/conflict");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("acme/api#1"), "{}", r.body);
    let v = s.get("/v1/dashboard/value");
    assert_eq!(v["outcomes"], 6, "the refused upload stored something");
    // bad rows: 422 with every row's line and column, nothing stored
    let bad = "time,kind,id,repo,user\n2026-11-09T00:00:00Z,pull_request,acme/api#98,acme/api,\n\
               2026-11-09,Merged,x,,\n2026-13-01,ticket,y,,\n2026-11-09,ticket,z,,not-an-email\n";
    let r = upload(&s, bad);
    assert_eq!(r.status, 422, "{}", r.body);
    let found: Vec<(u64, u64)> = r.json()["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["line"].as_u64().unwrap(), d["column"].as_u64().unwrap()))
        .collect();
    assert_eq!(found, vec![(3, 12), (4, 1), (5, 22)]);
    assert_eq!(s.get("/v1/dashboard/value")["outcomes"], 6);
    // a time outside the window events may have
    let r = upload(&s, "time,kind,id\n2019-12-31,ticket,old\n");
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (422, json!("outcomes/time-out-of-window")));
    // nothing, an unknown format, a header without `id`
    assert_eq!(upload(&s, "  \n").status, 400);
    let r = send(s.addr, "POST", "/v1/outcomes?format=xml", Some(ADMIN), Some("a"));
    assert_eq!(r.json()["error"]["code"], "outcomes/bad-format");
    assert_eq!(upload(&s, "time,kind\n2026-11-01,ticket\n").json()["error"]["code"], "outcomes/bad-file");
}

#[test]
fn uploads_are_bounded() {
    let s = start_seeded();
    // more rows than a file may hold: refused whole, the limit named
    let mut many = String::from("time,kind,id\n");
    for k in 0..100_001 {
        many.push_str(&format!("2026-11-02,ticket,T-{k}\n"));
    }
    let r = upload(&s, &many);
    assert_eq!(r.status, 422);
    assert!(r.body.contains("more than 100000 outcomes"), "{}", &r.body[..r.body.len().min(400)]);
    assert_eq!(s.get("/v1/dashboard/value")["outcomes"], 0);
    // a body past 8 MiB: 413 before anything is read
    let big = format!("time,kind,id\n{}", "x".repeat(8 * 1024 * 1024 + 1));
    assert_eq!(upload(&s, &big).status, 413);
    // a field past 256 bytes
    let r = upload(&s, &format!("time,kind,id\n2026-11-02,ticket,{}\n", "y".repeat(257)));
    assert_eq!(r.status, 422);
    assert!(r.body.contains("longer than 256 bytes"), "{}", r.body);
}

#[test]
fn only_the_admin_uploads_outcomes_or_reads_the_value_view() {
    let s = start_seeded();
    let token = s.call("POST", "/v1/users/a@x.com/tokens", "")["token"].as_str().unwrap().to_string();
    for (who, status) in [(None, 401), (Some(token.as_str()), 403)] {
        let r = send(s.addr, "POST", "/v1/outcomes?format=csv", who, Some(OUTCOMES));
        assert_eq!(r.status, status, "{}", r.body);
        let r = send(s.addr, "GET", "/v1/dashboard/value", who, None);
        assert_eq!(r.status, status, "{}", r.body);
    }
    assert_eq!(s.get("/v1/dashboard/value")["outcomes"], 0);
    // bad queries
    for q in
        ["by=user", "since=yesterday", "since=2026-11-05T00:00:00Z&until=2026-11-01T00:00:00Z", "limit=0"]
    {
        let r = s.get_as(ADMIN, &format!("/v1/dashboard/value?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.body);
    }
}
