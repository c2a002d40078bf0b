//! The workspace API against a real server on loopback (started in-process on `127.0.0.1:0`).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use common::http::{Sse, send, try_send};
use common::server::{ADMIN, Server, start, start_configured};
use serde_json::{Value, json};

fn start_with(policies: Option<&str>) -> Server {
    start_configured(|dir, config| {
        config.policies = policies.map(|yaml| {
            let p = dir.join("policies");
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("workspace.yaml"), yaml).unwrap();
            p
        });
    })
    .0
}

impl Server {
    fn get(&self, path: &str) -> Value {
        let r = send(self.addr, "GET", path, Some(ADMIN), None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }

    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let r = send(self.addr, method, path, Some(ADMIN), Some(&body.to_string()));
        assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
        r.json()
    }
}

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default:
  credits: 100
enforcement: hard
alerts: [80, 100]
attributes:
  department: string
  idp_groups: list
overrides:
  max_days: 30
  require_reason: true
";

#[test]
fn directory_import_types_attributes_and_pages() {
    let s = start_with(Some(WORKSPACE));
    let csv = "email,department,idp_groups,shoe_size\n\
               a@x.com,Engineering,eng;all,42\n\
               b@x.com,Sales,all,40\n\
               c@x.com,Engineering,,41\n\
               not-an-email,Sales,all,1\n";
    let r = send(s.addr, "POST", "/v1/users/import", Some(ADMIN), Some(csv));
    assert_eq!(r.status, 200, "{}", r.body);
    let out = r.json();
    assert_eq!((out["created"].as_u64(), out["users"].as_u64()), (Some(3), Some(3)));
    let codes: Vec<&str> =
        out["diagnostics"].as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"directory/bad-row") && codes.contains(&"directory/unknown-column"), "{codes:?}");
    let bad =
        out["diagnostics"].as_array().unwrap().iter().find(|d| d["code"] == "directory/bad-row").unwrap();
    assert_eq!(bad["line"], 5);

    // list attributes are lists; filters match list members and strings
    let page = s.get("/v1/users?idp_groups=eng");
    assert_eq!(
        page["data"],
        json!([{ "email": "a@x.com", "attributes": { "department": "Engineering", "idp_groups": ["eng", "all"] } }])
    );
    let eng = s.get("/v1/users?department=Engineering");
    let emails: Vec<&str> =
        eng["data"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["a@x.com", "c@x.com"]);

    // paging by email
    let p1 = s.get("/v1/users?limit=2");
    assert_eq!(
        (p1["data"].as_array().unwrap().len(), &p1["has_more"], &p1["next"]),
        (2, &json!(true), &json!("b@x.com"))
    );
    let p2 = s.get("/v1/users?limit=2&after=b%40x.com");
    assert_eq!((p2["data"][0]["email"].as_str(), &p2["has_more"]), (Some("c@x.com"), &json!(false)));

    // the same directory again changes nothing; JSON Lines updates one user
    let again = send(s.addr, "POST", "/v1/users/import", Some(ADMIN), Some(csv)).json();
    assert_eq!((again["unchanged"].as_u64(), again["created"].as_u64()), (Some(3), Some(0)));
    let jsonl = "{\"email\":\"b@x.com\",\"department\":\"Finance\",\"idp_groups\":[\"all\"]}\n";
    let upd = send(s.addr, "POST", "/v1/users/import?format=jsonl", Some(ADMIN), Some(jsonl)).json();
    assert_eq!(upd["updated"], 1);
    assert_eq!(s.get("/v1/users/b%40x.com")["attributes"]["department"], "Finance");
}

#[test]
fn directory_without_policies_keeps_strings() {
    let s = start();
    let r = send(s.addr, "POST", "/v1/users/import", Some(ADMIN), Some("email,team\nz@x.com,core\n"));
    assert_eq!(r.json()["created"], 1);
    assert_eq!(s.get("/v1/users?team=core")["data"][0]["attributes"], json!({ "team": "core" }));
}

fn limits_body(credits: f64, commit: &str) -> Value {
    json!({
        "commit": commit,
        "plan_digest": format!("sha256:{commit}"),
        "actor": "reconciler",
        "limits": [
            { "user": "a@x.com", "credits": credits, "products": { "codex": 50 }, "group": "eng",
              "source": { "kind": "group", "name": "eng", "file": "groups/eng.yaml", "line": 4, "commit": "abc123" } },
            { "user": "b@x.com", "credits": 200, "group": null,
              "source": { "kind": "default", "name": "acme", "file": "workspace.yaml", "line": 9 } }
        ],
        "pools": [{ "group": "eng", "credits": 1000 }]
    })
}

#[test]
fn limits_set_twice_are_unchanged_and_every_change_is_audited() {
    let s = start();
    let first = s.call("PUT", "/v1/limits", limits_body(100.0, "c1"));
    assert_eq!(first["changed"], 3);
    assert_eq!(
        first["results"],
        json!([{ "user": "a@x.com", "status": "created" }, { "user": "b@x.com", "status": "created" }])
    );
    let second = s.call("PUT", "/v1/limits", limits_body(100.0, "c2"));
    assert_eq!((second["changed"].as_u64(), second["unchanged"].as_u64()), (Some(0), Some(3)));
    assert_eq!(second["pools"][0]["status"], "unchanged");
    assert_eq!(
        s.get("/v1/audit")["data"].as_array().unwrap().len(),
        3,
        "an unchanged value writes no audit row"
    );

    let third = s.call("PUT", "/v1/limits", limits_body(120.5, "c3"));
    assert_eq!(third["results"][0], json!({ "user": "a@x.com", "status": "updated" }));
    assert_eq!(third["changed"], 1);

    let limits = s.get("/v1/limits");
    let a = &limits["data"][0];
    assert_eq!(
        (&a["user"], &a["credits"], &a["products"], &a["group"]),
        (&json!("a@x.com"), &json!(120.5), &json!({"codex": 50}), &json!("eng"))
    );
    assert_eq!(
        a["source"],
        json!({ "kind": "group", "name": "eng", "file": "groups/eng.yaml", "line": 4, "commit": "abc123" })
    );
    assert_eq!((&a["commit"], &a["plan_digest"]), (&json!("c3"), &json!("sha256:c3")));

    let audit = s.get("/v1/audit?subject=a%40x.com");
    let rows = audit["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let last = &rows[1];
    assert_eq!(
        (&last["action"], &last["actor"], &last["commit"]),
        (&json!("limit.set"), &json!("admin (reconciler)"), &json!("c3"))
    );
    assert_eq!(
        (&last["old"]["limit"]["credits"], &last["new"]["limit"]["credits"]),
        (&json!(100), &json!(120.5))
    );
    assert_eq!(s.get("/v1/audit?actor=reconciler&action=pool.set")["data"].as_array().unwrap().len(), 1);

    let csv = send(s.addr, "GET", "/v1/audit?format=csv", Some(ADMIN), None);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines[0], "seq,at,actor,action,subject,old,new,commit,plan_digest");
    assert_eq!(lines.len(), 5);
    assert!(lines[4].starts_with("4,") && lines[4].ends_with(",c3,sha256:c3"), "{}", lines[4]);

    // removal, and a batch over the bound
    let removed = s.call("PUT", "/v1/limits", json!({ "commit": "c4", "remove": ["b@x.com"] }));
    assert_eq!(removed["results"][0]["status"], "removed");
    let too_many: Vec<Value> =
        (0..1001).map(|i| json!({ "user": format!("u{i}@x.com"), "credits": 1 })).collect();
    let r = send(
        s.addr,
        "PUT",
        "/v1/limits",
        Some(ADMIN),
        Some(&json!({ "commit": "c5", "limits": too_many }).to_string()),
    );
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (413, Some("request/too-large")));
}

/// The engine's client (the reconciler's side) reads every answer of the limits endpoints
/// into the shared wire types, and the server's JSON keeps its exact form.
#[test]
fn the_engine_client_reads_what_the_server_writes() {
    use budgit_engine::Credits;
    use budgit_engine::model::Limit;
    use budgit_engine::workspace::http::HttpWorkspace;
    use budgit_engine::workspace::{AppliedSource, Batch, ItemStatus, LimitSet, PoolSet, Target};

    let s = start();
    let ws = HttpWorkspace::new(
        &format!("http://{}", s.addr),
        ADMIN.to_string(),
        std::time::Duration::from_secs(10),
    );
    let source = AppliedSource {
        kind: "group".into(),
        name: "eng".into(),
        file: "groups/eng.yaml".into(),
        line: 4,
        commit: None,
    };
    let a = LimitSet {
        user: "a@x.com".into(),
        limit: Limit {
            credits: Credits::from_micros(12_500_000),
            products: BTreeMap::from([("codex".to_string(), Credits::from_micros(10_000_000))]),
            models: BTreeMap::new(),
            // the rate cap goes through the service and back, so a second run finds nothing to do
            per_hour: Some(Credits::from_micros(2_500_000)),
        },
        group: Some("eng".into()),
        source: Some(source.clone()),
    };
    let b = LimitSet {
        user: "b@x.com".into(),
        limit: Limit { credits: Credits::from_micros(5_000_000), ..Limit::default() },
        group: None,
        source: Some(AppliedSource { commit: Some("abc123".into()), ..source }),
    };
    let batch = Batch {
        commit: "c1".into(),
        plan_digest: "sha256:c1".into(),
        actor: "reconciler".into(),
        limits: vec![a.clone(), b.clone()],
        remove: vec!["z@x.com".into()],
        pools: vec![PoolSet { group: "eng".into(), credits: Some(Credits::from_micros(150_000_000)) }],
        settings: None,
    };
    let done = ws.apply(&batch).unwrap();
    assert_eq!(
        done.users,
        [
            ("a@x.com".to_string(), ItemStatus::Created),
            ("b@x.com".to_string(), ItemStatus::Created),
            ("z@x.com".to_string(), ItemStatus::Unchanged),
        ]
    );
    assert_eq!(done.pools, [("eng".to_string(), ItemStatus::Created)]);
    let again = ws.apply(&batch).unwrap();
    assert!(again.users.iter().chain(&again.pools).all(|(_, st)| *st == ItemStatus::Unchanged), "{again:?}");

    let live = ws.limits().unwrap();
    let read: Vec<_> = live.iter().map(|l| (&l.user, &l.limit, &l.group, &l.source)).collect();
    assert_eq!(read, [(&a.user, &a.limit, &a.group, &a.source), (&b.user, &b.limit, &b.group, &b.source)]);
    assert_eq!(live[0].commit.as_deref(), Some("c1"));
    assert_eq!(ws.pools().unwrap(), BTreeMap::from([("eng".to_string(), Credits::from_micros(150_000_000))]));

    // the exact text: a stored source names `commit` even when the writer sent none
    let body = ws_text(
        &s,
        "PUT",
        "/v1/limits",
        &json!({ "commit": "c2", "remove": ["b@x.com"], "pools": [{ "group": "eng", "credits": null }] }),
    );
    assert_eq!(
        body,
        r#"{"changed":2,"unchanged":0,"results":[{"user":"b@x.com","status":"removed"}],"pools":[{"group":"eng","status":"removed"}]}"#
    );
    let row = send(s.addr, "GET", "/v1/limits", Some(ADMIN), None).body;
    assert!(
        row.starts_with(
            r#"{"object":"list","data":[{"user":"a@x.com","credits":12.5,"products":{"codex":10},"models":{},"group":"eng","source":{"kind":"group","name":"eng","file":"groups/eng.yaml","line":4,"commit":null},"commit":"c1","plan_digest":"sha256:c1","updated_at":""#
        ),
        "{row}"
    );
    s.call("PUT", "/v1/limits", json!({ "commit": "c3", "pools": [{ "group": "ops", "credits": 7.25 }] }));
    let pools = send(s.addr, "GET", "/v1/pools", Some(ADMIN), None).body;
    assert!(pools.starts_with(r#"{"object":"list","data":[{"group":"ops","credits":7.25,"commit":"c3","plan_digest":null,"updated_at":""#), "{pools}");
}

fn ws_text(s: &Server, method: &str, path: &str, body: &Value) -> String {
    let r = send(s.addr, method, path, Some(ADMIN), Some(&body.to_string()));
    assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    r.body
}

fn day(d: u32) -> i64 {
    Utc.with_ymd_and_hms(2026, 11, d, 0, 0, 0).unwrap().timestamp()
}

fn event(id: &str, ts: i64, user: &str, product: &str, model: &str, credits: impl serde::Serialize) -> Value {
    json!({ "id": id, "time": ts, "user": user, "product": product, "model": model, "credits": credits })
}

#[test]
fn usage_retries_count_once_and_costs_match_a_hand_computed_answer() {
    let s = start();
    let batch = json!({ "events": [
        event("e1", day(1) + 10, "a@x.com", "codex", "gpt-5", 1.25),
        event("e2", day(1) + 20, "a@x.com", "codex", "gpt-5", 0.75),
        event("e3", day(1) + 30, "b@x.com", "chatgpt", "gpt-5", 3),
        event("e4", day(2) + 40, "a@x.com", "chatgpt", "o3", 0.1),
        event("e5", day(3) + 50, "b@x.com", "codex", "gpt-5-pro", 10),
        event("e1", day(1) + 10, "a@x.com", "codex", "gpt-5", 1.25),
    ]});
    let out = s.call("POST", "/v1/usage/events", batch.clone());
    assert_eq!((out["accepted"].as_u64(), out["duplicates"].as_u64()), (Some(5), Some(1)));
    assert_eq!(out["results"][5], json!({ "id": "e1", "status": "duplicate", "seq": null }));
    // a retried batch is all duplicates; a single event with a new id is stored
    let retry = s.call("POST", "/v1/usage/events", batch);
    assert_eq!((retry["accepted"].as_u64(), retry["duplicates"].as_u64()), (Some(0), Some(6)));
    let single =
        s.call("POST", "/v1/usage/events", event("e6", day(3) + 60, "a@x.com", "chatgpt", "o3", 0.2));
    assert_eq!(single["accepted"], 1);

    // three days, grouped by user, product and model, two buckets a page
    let mut got: BTreeMap<(i64, String, String, String), Value> = BTreeMap::new();
    let mut path = format!(
        "/v1/organization/costs?start_time={}&end_time={}&bucket_width=1d&group_by=user_id&group_by[]=product&group_by=model&limit=2",
        day(1),
        day(4)
    );
    let mut pages = 0;
    loop {
        let page = s.get(&path);
        pages += 1;
        assert_eq!(page["object"], "page");
        for bucket in page["data"].as_array().unwrap() {
            assert_eq!(bucket["object"], "bucket");
            assert_eq!(bucket["end_time"].as_i64().unwrap() - bucket["start_time"].as_i64().unwrap(), 86_400);
            for r in bucket["results"].as_array().unwrap() {
                assert_eq!(
                    (&r["object"], &r["amount"]["currency"]),
                    (&json!("organization.costs.result"), &json!("credits"))
                );
                let key = (
                    bucket["start_time"].as_i64().unwrap(),
                    r["user_id"].as_str().unwrap().to_string(),
                    r["product"].as_str().unwrap().to_string(),
                    r["model"].as_str().unwrap().to_string(),
                );
                got.insert(key, r["amount"]["value"].clone());
            }
        }
        match page["next_page"].as_str() {
            Some(next) => {
                assert_eq!(page["has_more"], true);
                path = format!("{}&page={next}", path.split("&page=").next().unwrap());
            }
            None => break,
        }
    }
    assert_eq!(pages, 2);
    let k = |d: u32, u: &str, p: &str, m: &str| (day(d), u.to_string(), p.to_string(), m.to_string());
    let expected: BTreeMap<_, _> = [
        (k(1, "a@x.com", "codex", "gpt-5"), json!(2)),
        (k(1, "b@x.com", "chatgpt", "gpt-5"), json!(3)),
        (k(2, "a@x.com", "chatgpt", "o3"), json!(0.1)),
        (k(3, "a@x.com", "chatgpt", "o3"), json!(0.2)),
        (k(3, "b@x.com", "codex", "gpt-5-pro"), json!(10)),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, expected);

    // ungrouped totals, an unaligned window read from the raw events, and CSV
    let total = s.get(&format!("/v1/organization/costs?start_time={}&limit=3&end_time={}", day(1), day(4)));
    let sums: Vec<&Value> =
        total["data"].as_array().unwrap().iter().map(|b| &b["results"][0]["amount"]["value"]).collect();
    assert_eq!(sums, [&json!(5), &json!(0.1), &json!(10.2)]);
    let shifted = s.get(&format!(
        "/v1/organization/costs?start_time={}&end_time={}&group_by=line_item",
        day(1) + 15,
        day(1) + 86_400 + 15
    ));
    assert_eq!(
        shifted["data"][0]["results"],
        json!([
            { "object": "organization.costs.result", "amount": { "value": 3, "currency": "credits" }, "line_item": "chatgpt, gpt-5", "project_id": null, "user_id": null, "product": null, "model": null },
            { "object": "organization.costs.result", "amount": { "value": 0.75, "currency": "credits" }, "line_item": "codex, gpt-5", "project_id": null, "user_id": null, "product": null, "model": null },
        ])
    );
    let csv = send(
        s.addr,
        "GET",
        &format!(
            "/v1/organization/costs?start_time={}&end_time={}&group_by=user_id&format=csv",
            day(2),
            day(3)
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(
        csv.body,
        "start_time,end_time,user_id,project_id,line_item,product,model,amount,currency\n2026-11-02T00:00:00Z,2026-11-03T00:00:00Z,a@x.com,,,,,0.1,credits\n"
    );
    let only = s.get(&format!(
        "/v1/organization/costs?start_time={}&end_time={}&line_items[]=codex%2C%20gpt-5&line_items[]=codex%2C%20gpt-5-pro",
        day(1),
        day(4)
    ));
    let sums: Vec<Value> =
        only["data"].as_array().unwrap().iter().map(|b| b["results"][0]["amount"]["value"].clone()).collect();
    assert_eq!(sums, [json!(2), Value::Null, json!(10)]);
    let none =
        s.get(&format!("/v1/organization/costs?start_time={}&end_time={}&project_ids=eng", day(1), day(4)));
    assert!(none["data"].as_array().unwrap().iter().all(|b| b["results"] == json!([])));
    let bad = send(s.addr, "GET", "/v1/organization/costs?start_time=1&group_by=team", Some(ADMIN), None);
    assert_eq!((bad.status, bad.json()["error"]["code"].as_str()), (400, Some("costs/bad-group-by")));
}

/// Any events with up to six decimals, ingested through the real server, come back
/// from the Costs API as the exact sums, written as exact decimal JSON numbers.
#[test]
fn costs_sum_any_events_exactly() {
    use proptest::test_runner::{Config, TestRunner};
    let s = start();
    let mut runner = TestRunner::new(Config { cases: 24, ..Config::default() });
    let case = std::cell::Cell::new(0u32);
    // (user, day, product, micro-credits): up to the largest usage amount, often a tiny
    // one (a float would print `0.000001` as `1e-6`), 30 events
    let largest = budgit_engine::credits::MAX_USAGE_AMOUNT.micros();
    let micros = proptest::prop_oneof![0i64..100, 0i64..=largest];
    let rows = proptest::collection::vec((0usize..3, 1u32..4, 0usize..2, micros), 1..30);
    runner
        .run(&rows, |rows| {
            let n = case.get();
            case.set(n + 1);
            // each case has its own users, so earlier cases' events are told apart
            let users: Vec<String> = (0..3).map(|u| format!("u{u}-case{n}@x.com")).collect();
            let product = |p: usize| ["chatgpt", "codex"][p];
            let events: Vec<String> = rows
                .iter()
                .enumerate()
                .map(|(i, &(u, d, p, m))| {
                    format!(
                        r#"{{"id":"c{n}-{i}","time":{},"user":"{}","product":"{}","model":"gpt-5","credits":{}.{:06}}}"#,
                        day(d) + 60,
                        users[u],
                        product(p),
                        m / 1_000_000,
                        m % 1_000_000
                    )
                })
                .collect();
            let r = send(s.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&format!(r#"{{"events":[{}]}}"#, events.join(","))));
            assert_eq!(r.status, 200, "{}", r.body);
            let mut want: BTreeMap<(i64, String, String), i64> = BTreeMap::new();
            for &(u, d, p, m) in &rows {
                *want.entry((day(d), users[u].clone(), format!("{}, gpt-5", product(p)))).or_default() += m;
            }
            let want: BTreeMap<_, String> =
                want.into_iter().map(|(k, m)| (k, budgit_engine::Credits::from_micros(m).to_string())).collect();
            let page = s.get(&format!(
                "/v1/organization/costs?start_time={}&end_time={}&group_by=user_id&group_by=line_item",
                day(1),
                day(4)
            ));
            let mut got = BTreeMap::new();
            for bucket in page["data"].as_array().unwrap() {
                for r in bucket["results"].as_array().unwrap() {
                    let user = r["user_id"].as_str().unwrap().to_string();
                    if users.contains(&user) {
                        let key = (bucket["start_time"].as_i64().unwrap(), user, r["line_item"].as_str().unwrap().into());
                        got.insert(key, r["amount"]["value"].to_string());
                    }
                }
            }
            proptest::prop_assert_eq!(got, want);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_stream_delivers_events_and_resumes_after_a_reconnect() {
    let s = start();
    let mut stream = Sse::open(s.addr, "/v1/usage/stream", ADMIN, None);
    let now = Utc::now().timestamp();
    for i in 1..=3 {
        s.call(
            "POST",
            "/v1/usage/events",
            event(&format!("s{i}"), now, "a@x.com", "codex", "m", f64::from(i)),
        );
    }
    let mut ids = Vec::new();
    for i in 1..=3 {
        let ev = stream.next();
        assert_eq!(ev.event.as_deref(), Some("usage"));
        let data: Value = serde_json::from_str(&ev.data).unwrap();
        assert_eq!(
            (data["id"].as_str(), data["credits"].as_i64()),
            (Some(format!("s{i}").as_str()), Some(i64::from(i)))
        );
        ids.push(ev.id.unwrap());
    }
    drop(stream);
    for i in 4..=5 {
        s.call("POST", "/v1/usage/events", event(&format!("s{i}"), now, "b@x.com", "chatgpt", "m", 1.0));
    }
    // reconnect after the second event: the third, fourth and fifth arrive, in order, once
    let mut resumed = Sse::open(s.addr, "/v1/usage/stream", ADMIN, Some(&ids[1]));
    let got: Vec<String> = (0..3)
        .map(|_| {
            serde_json::from_str::<Value>(&resumed.next().data).unwrap()["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(got, ["s3", "s4", "s5"]);
    s.call("POST", "/v1/usage/events", event("s6", now, "a@x.com", "codex", "m", 1.0));
    assert_eq!(serde_json::from_str::<Value>(&resumed.next().data).unwrap()["id"], "s6");

    // a user token's stream carries only that user's events
    assert_eq!(send(s.addr, "POST", "/v1/users/import", Some(ADMIN), Some("email\nb@x.com\n")).status, 200);
    let token = issue_token(&s, "b@x.com");
    let mut mine = Sse::open(s.addr, "/v1/usage/stream", &token, Some("0"));
    let first = serde_json::from_str::<Value>(&mine.next().data).unwrap();
    assert_eq!((first["id"].as_str(), first["user"].as_str()), (Some("s4"), Some("b@x.com")));
}

fn issue_token(s: &Server, user: &str) -> String {
    let r = send(s.addr, "POST", &format!("/v1/users/{user}/tokens"), Some(ADMIN), None);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["token"].as_str().unwrap().to_string()
}

#[test]
fn concurrent_checks_never_overspend_a_user_or_a_pool() {
    let s = Arc::new(start());
    s.call(
        "PUT",
        "/v1/limits",
        json!({
            "commit": "c1",
            "limits": [
                { "user": "solo@x.com", "credits": 100 },
                { "user": "p1@x.com", "credits": 1000, "models": { "gpt-5-pro": 500 }, "group": "team" },
                { "user": "p2@x.com", "credits": 1000, "group": "team" },
                { "user": "p3@x.com", "credits": 1000, "group": "team" },
            ],
            "pools": [{ "group": "team", "credits": 150 }]
        }),
    );
    let now = Utc::now().timestamp();
    s.call(
        "POST",
        "/v1/usage/events",
        json!([
            event("u1", now, "solo@x.com", "codex", "m", 90),
            event("u2", now, "p1@x.com", "codex", "m", 100),
            event("u3", now, "p2@x.com", "chatgpt", "m", 40),
        ]),
    );
    // 10 credits left for solo, 10 left in the pool: 30 callers each, all at once
    let barrier = Arc::new(std::sync::Barrier::new(60));
    let mut handles = Vec::new();
    for i in 0..60 {
        let (s, barrier) = (s.clone(), barrier.clone());
        handles.push(std::thread::spawn(move || {
            let (user, credits) = if i % 2 == 0 {
                ("solo@x.com".to_string(), 1.0)
            } else {
                (format!("p{}@x.com", i % 3 + 1), 2.0)
            };
            barrier.wait();
            let body =
                json!({ "user": user, "product": "codex", "model": "m", "credits": credits }).to_string();
            let r = try_send(s.addr, "POST", "/v1/check", Some(ADMIN), Some(&body), &[]).unwrap();
            assert_eq!(r.status, 200, "{}", r.body);
            let d = r.json();
            if d["allowed"] != true {
                assert!(d["deciding"] == "user" || d["deciding"] == "pool", "{d}");
                return (user, 0.0);
            }
            let id = d["reservation_id"].as_str().unwrap();
            let c = try_send(
                s.addr,
                "POST",
                &format!("/v1/reservations/{id}/commit"),
                Some(ADMIN),
                Some(&json!({ "credits": credits }).to_string()),
                &[],
            )
            .unwrap();
            assert_eq!(c.status, 200, "{}", c.body);
            (user, credits)
        }));
    }
    let mut committed: BTreeMap<String, f64> = BTreeMap::new();
    for h in handles {
        let (user, c) = h.join().unwrap();
        *committed.entry(user).or_default() += c;
    }
    let used = |u: &str| s.get(&format!("/v1/users/{u}"))["used"]["credits"].as_f64().unwrap();
    assert_eq!(committed["solo@x.com"], 10.0, "exactly the 10 credits left were granted");
    assert_eq!(used("solo@x.com"), 100.0, "the user is at the limit, not past it");
    let pool_committed: f64 = committed.iter().filter(|(u, _)| u.starts_with('p')).map(|(_, c)| c).sum();
    assert_eq!(pool_committed, 10.0);
    assert_eq!(
        used("p1@x.com") + used("p2@x.com") + used("p3@x.com"),
        150.0,
        "the pool is at its total, not past it"
    );

    // now both are exhausted: a check is denied and names the deciding limit
    let d = s.call(
        "POST",
        "/v1/check",
        json!({ "user": "p3@x.com", "product": "codex", "model": "m", "credits": 0.5 }),
    );
    assert_eq!((&d["allowed"], &d["deciding"], &d["remaining"]), (&json!(false), &json!("pool"), &json!(0)));
    let metrics = send(s.addr, "GET", "/metrics", None, None).body;
    assert!(metrics.contains("budgit_checks_total{decision=\"allowed\"} 15"), "{metrics}");
    assert!(metrics.contains("budgit_checks_total{decision=\"denied\"} 46"));
}

#[test]
fn reservations_release_and_record_overcommit() {
    let s = start();
    s.call(
        "PUT",
        "/v1/limits",
        json!({ "commit": "c1", "limits": [{ "user": "a@x.com", "credits": 10, "models": { "big": 4 } }] }),
    );
    let d = s.call(
        "POST",
        "/v1/check",
        json!({ "user": "a@x.com", "product": "codex", "model": "big", "credits": 5 }),
    );
    assert_eq!(
        (&d["allowed"], &d["deciding"], &d["remaining"]),
        (&json!(false), &json!("model_cap"), &json!(4))
    );
    let d = s.call(
        "POST",
        "/v1/check",
        json!({ "user": "a@x.com", "product": "codex", "model": "small", "credits": 6 }),
    );
    let id = d["reservation_id"].as_str().unwrap().to_string();
    assert_eq!(d["remaining"], 4);
    // released: the hold comes back
    s.call("POST", &format!("/v1/reservations/{id}/release"), json!(null));
    let gone = send(s.addr, "POST", &format!("/v1/reservations/{id}/release"), Some(ADMIN), None);
    assert_eq!(gone.status, 404);
    let d = s.call(
        "POST",
        "/v1/check",
        json!({ "user": "a@x.com", "product": "codex", "model": "small", "credits": 6 }),
    );
    assert_eq!(d["allowed"], true, "the released hold came back");
    // 11 spent on a hold of 6 with 10 credits: usage is a fact, so it is all recorded,
    // marked, and the next spend is refused
    let id = d["reservation_id"].as_str().unwrap().to_string();
    let over = s.call("POST", &format!("/v1/reservations/{id}/commit"), json!({ "credits": 11 }));
    assert_eq!(
        (&over["committed"], &over["reserved"], &over["over_reservation"], &over["late"]),
        (&json!(11), &json!(6), &json!(true), &json!(false))
    );
    assert_eq!(s.get("/v1/users/a%40x.com")["used"]["credits"], 11);
    let d = s.call(
        "POST",
        "/v1/check",
        json!({ "user": "a@x.com", "product": "codex", "model": "small", "credits": 0.1 }),
    );
    assert_eq!((&d["allowed"], &d["remaining"]), (&json!(false), &json!(0)));
    let alerts = s.get("/v1/alerts");
    assert_eq!(alerts["data"][0]["kind"], "over_reservation");
    assert_eq!(alerts["data"][0]["message"], format!("committed 11 credits on a hold of 6 (`{id}`)"));
    let audit = s.get("/v1/audit?action=usage.over_reservation");
    assert_eq!(
        (
            &audit["data"][0]["subject"],
            &audit["data"][0]["old"]["credits"],
            &audit["data"][0]["new"]["credits"]
        ),
        (&json!("a@x.com"), &json!(6), &json!(11))
    );
}

#[test]
fn user_tokens_see_only_their_own_data() {
    let s = start();
    s.call("PUT", "/v1/limits", json!({ "commit": "c1", "limits": [{ "user": "a@x.com", "credits": 10 }, { "user": "b@x.com", "credits": 10 }] }));
    let token = issue_token(&s, "a@x.com");
    let mut bodies = Vec::new();
    let mut as_a = |method: &str, path: &str, body: Option<&str>| {
        let r = send(s.addr, method, path, Some(&token), body);
        bodies.push(r.body.clone());
        r
    };
    for (method, path, body) in [
        ("GET", "/v1/users/b%40x.com", None),
        ("GET", "/v1/limits?user=b%40x.com", None),
        ("GET", "/v1/audit", None),
        ("GET", "/v1/pools", None),
        ("PUT", "/v1/limits", Some(r#"{"commit":"x","limits":[{"user":"a@x.com","credits":1000}]}"#)),
        (
            "POST",
            "/v1/usage/events",
            Some(r#"{"id":"x","time":0,"user":"a@x.com","product":"p","model":"m","credits":1}"#),
        ),
        ("POST", "/v1/check", Some(r#"{"user":"b@x.com","product":"p","model":"m","credits":1}"#)),
        ("POST", "/v1/users/b%40x.com/tokens", None),
        ("GET", "/v1/organization/costs?start_time=0&user_id=b%40x.com", None),
        ("POST", "/v1/requests", Some(r#"{"user":"b@x.com","credits":5,"days":3,"reason":"x"}"#)),
        ("POST", "/v1/leases/reconcile", Some(r#"{"holder":"h","ttl_seconds":5}"#)),
    ] {
        let r = as_a(method, path, body);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "auth/forbidden");
    }
    let own = as_a("GET", "/v1/limits", None).json();
    assert_eq!(own["data"].as_array().unwrap().len(), 1);
    assert_eq!(own["data"][0]["user"], "a@x.com");
    let check = as_a("POST", "/v1/check", Some(r#"{"product":"p","model":"m","credits":1}"#));
    assert_eq!(check.json()["allowed"], true);
    let request = as_a(
        "POST",
        "/v1/requests",
        Some(r#"{"credits":500,"days":14,"reason":"payments migration","context":{"ticket":"PAY-1"}}"#),
    );
    assert_eq!(request.status, 201, "{}", request.body);
    let id = request.json()["id"].as_i64().unwrap();
    let approve = as_a("POST", &format!("/v1/requests/{id}/approve"), None);
    assert_eq!(approve.status, 403);
    let bad = send(s.addr, "GET", "/v1/users", Some("bgt_user_0000"), None);
    assert_eq!(bad.status, 401);
    for body in &bodies {
        assert!(!body.contains(&token) && !body.contains(ADMIN), "a token leaked into {body}");
    }

    // the admin sees every request, approves into an override proposal, cannot decide twice
    s.call("POST", "/v1/requests", json!({ "user": "b@x.com", "credits": 5, "days": 3, "reason": "demo" }));
    assert_eq!(s.get("/v1/requests?status=pending")["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        send(s.addr, "GET", "/v1/requests", Some(&token), None).json()["data"].as_array().unwrap().len(),
        1
    );
    let approved = s.call("POST", &format!("/v1/requests/{id}/approve"), json!(null));
    assert_eq!(approved["status"], "approved");
    let p = &approved["proposal"];
    assert_eq!(
        (&p["kind"], &p["user"], &p["add"]["credits"], &p["reason"]),
        (&json!("Override"), &json!("a@x.com"), &json!(500), &json!("payments migration"))
    );
    let again =
        send(s.addr, "POST", &format!("/v1/requests/{id}/decline"), Some(ADMIN), Some(r#"{"reason":"no"}"#));
    assert_eq!((again.status, again.json()["error"]["code"].as_str()), (409, Some("requests/decided")));
    let declined =
        s.call("POST", &format!("/v1/requests/{}/decline", id + 1), json!({ "reason": "not this quarter" }));
    assert_eq!(
        (&declined["status"], &declined["decision_reason"]),
        (&json!("declined"), &json!("not this quarter"))
    );
}

#[test]
fn leases_exclude_other_holders() {
    let s = start();
    let a = s.call("POST", "/v1/leases/reconcile", json!({ "holder": "one", "ttl_seconds": 60 }));
    assert_eq!(a["holder"], "one");
    let held = send(
        s.addr,
        "POST",
        "/v1/leases/reconcile",
        Some(ADMIN),
        Some(r#"{"holder":"two","ttl_seconds":60}"#),
    );
    assert_eq!(held.status, 409);
    let body = held.json();
    assert_eq!((&body["error"]["code"], &body["holder"]), (&json!("lease/held"), &json!("one")));
    assert!(body["expires_at"].is_string());
    s.call("POST", "/v1/leases/reconcile", json!({ "holder": "one", "ttl_seconds": 120 }));
    assert_eq!(send(s.addr, "DELETE", "/v1/leases/reconcile?holder=two", Some(ADMIN), None).status, 409);
    assert_eq!(send(s.addr, "DELETE", "/v1/leases/reconcile?holder=one", Some(ADMIN), None).status, 204);
    assert_eq!(
        s.call("POST", "/v1/leases/reconcile", json!({ "holder": "two", "ttl_seconds": 5 }))["holder"],
        "two"
    );
}

#[test]
fn malformed_requests_get_json_errors() {
    let s = start();
    let cases: Vec<(&str, &str, Option<String>, u16, &str)> = vec![
        ("PUT", "/v1/limits", Some("{".into()), 400, "request/bad-json"),
        (
            "PUT",
            "/v1/limits",
            Some(r#"{"commit":"c","limits":[{"user":"a@x.com","credit":1}]}"#.into()),
            400,
            "request/bad-json",
        ),
        (
            "PUT",
            "/v1/limits",
            Some(r#"{"commit":"c","limits":[{"user":"a@x.com","credits":-1}]}"#.into()),
            400,
            "limits/negative",
        ),
        (
            "POST",
            "/v1/usage/events",
            Some(
                r#"{"id":"x","time":"yesterday","user":"a@x.com","product":"p","model":"m","credits":1}"#
                    .into(),
            ),
            400,
            "usage/bad-time",
        ),
        ("POST", "/v1/usage/events", Some("[]".into()), 400, "usage/empty"),
        (
            "POST",
            "/v1/check",
            Some(r#"{"user":"a@x.com","product":"p","model":"m","credits":0}"#.into()),
            400,
            "check/bad-credits",
        ),
        ("GET", "/v1/users?limit=0", None, 400, "request/bad-limit"),
        ("GET", "/v1/organization/costs", None, 400, "costs/missing-start"),
        ("GET", "/v1/nothing", None, 404, "request/no-route"),
        ("DELETE", "/v1/users", None, 405, "request/method"),
        ("POST", "/v1/usage/events", Some("x".repeat(9 * 1024 * 1024)), 413, "request/too-large"),
    ];
    for (method, path, body, status, code) in cases {
        let r = send(s.addr, method, path, Some(ADMIN), body.as_deref());
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], code, "{method} {path}");
    }
    let r = send(s.addr, "GET", "/v1/users", None, None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("auth/unauthorized")));
    assert_eq!(send(s.addr, "GET", "/healthz", None, None).json()["status"], "ok");
}

/// What the document refuses, the server refuses: each of these is outside a bound the
/// document states (schemathesis sends such requests and expects a 4xx).
#[test]
fn requests_outside_the_documents_bounds_are_refused() {
    let s = start();
    let long = |n: usize| "é".repeat(n);
    let cases: Vec<(&str, String, Option<String>, u16, &str)> = vec![
        ("GET", "/v1/audit?format=xml".into(), None, 400, "request/bad-format"),
        ("GET", "/v1/dashboard/users?format=null".into(), None, 400, "request/bad-format"),
        ("GET", "/v1/requests?status=nope".into(), None, 400, "requests/bad-status"),
        ("GET", "/v1/alerts?after=99999999999999999999".into(), None, 400, "request/bad-query"),
        ("GET", "/v1/me?now=".into(), None, 400, "dashboard/bad-now"),
        ("POST", "/v1/users/import".into(), Some(" \n".into()), 400, "users/empty"),
        ("DELETE", "/v1/leases/l1?holder=%01h".into(), None, 400, "request/bad-name"),
        (
            "POST",
            "/v1/check".into(),
            Some(json!({ "user": "a@x.com", "product": long(201), "model": "m", "credits": 1 }).to_string()),
            400,
            "request/bad-name",
        ),
        (
            "POST",
            "/v1/leases/l1".into(),
            Some(r#"{"holder":"h","ttl_seconds":60.5}"#.into()),
            400,
            "request/bad-json",
        ),
        (
            "POST",
            "/v1/requests/1/decline".into(),
            Some(r#"{"reason":" "}"#.into()),
            400,
            "requests/missing-reason",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let r = send(s.addr, method, &path, Some(ADMIN), body.as_deref());
        assert_eq!(r.status, status, "{method} {path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], code, "{method} {path}");
    }
    // a name is counted in characters, as the document's `maxLength` counts them: 200
    // two-byte characters are a name
    let r = send(
        s.addr,
        "POST",
        "/v1/check",
        Some(ADMIN),
        Some(&json!({ "user": "a@x.com", "product": long(200), "model": "m", "credits": 1 }).to_string()),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // a whole number may be written with a zero fraction (JSON does not tell them apart)
    let r = send(s.addr, "POST", "/v1/leases/l1", Some(ADMIN), Some(r#"{"holder":"h","ttl_seconds":60.0}"#));
    assert_eq!((r.status, r.json()["holder"].as_str()), (200, Some("h")), "{}", r.body);
}

#[test]
fn the_checked_in_openapi_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let current =
        format!("{}\n", serde_json::to_string_pretty(&budgit_service::openapi::document()).unwrap());
    if std::env::var_os("BUDGIT_BLESS").is_some() {
        std::fs::write(&path, &current).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == current,
        "docs/openapi.json is stale: run `BUDGIT_BLESS=1 cargo test -p budgit-service --test api openapi`"
    );
    let s = start();
    assert_eq!(s.get("/openapi.json"), budgit_service::openapi::document());
}

#[test]
fn limits_and_open_reservations_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::server::config(dir.path());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = rt.block_on(budgit_service::start(config.clone())).unwrap();
    let addr = running.addr;
    let put = json!({ "commit": "c1", "limits": [{ "user": "a@x.com", "credits": 10 }] }).to_string();
    assert_eq!(send(addr, "PUT", "/v1/limits", Some(ADMIN), Some(&put)).status, 200);
    let check = r#"{"user":"a@x.com","product":"codex","model":"m","credits":7}"#;
    let held = send(addr, "POST", "/v1/check", Some(ADMIN), Some(check)).json();
    let id = held["reservation_id"].as_str().unwrap().to_string();
    // writes are applied in order: once this acknowledged write is back, the reservation is stored too
    let lease = r#"{"holder":"h","ttl_seconds":60}"#;
    assert_eq!(send(addr, "POST", "/v1/leases/barrier", Some(ADMIN), Some(lease)).status, 200);
    running.abort();
    drop(rt);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = rt.block_on(budgit_service::start(config)).unwrap();
    let addr = running.addr;
    assert_eq!(send(addr, "GET", "/v1/limits", Some(ADMIN), None).json()["data"][0]["credits"], 10);
    let denied = send(addr, "POST", "/v1/check", Some(ADMIN), Some(check)).json();
    assert_eq!(
        (&denied["allowed"], &denied["remaining"]),
        (&json!(false), &json!(3)),
        "the hold outlived the restart"
    );
    let commit =
        send(addr, "POST", &format!("/v1/reservations/{id}/commit"), Some(ADMIN), Some(r#"{"credits":6.5}"#));
    assert_eq!(commit.status, 200, "{}", commit.body);
    assert_eq!(send(addr, "GET", "/v1/users/a%40x.com", Some(ADMIN), None).json()["used"]["credits"], 6.5);
}

#[test]
fn soft_enforcement_allows_past_the_limit_and_records_an_alert() {
    let s = start();
    s.call(
        "PUT",
        "/v1/limits",
        json!({
            "commit": "c1",
            "limits": [{ "user": "a@x.com", "credits": 5 }],
            "workspace": { "period": "month", "timezone": "Europe/Paris", "enforcement": "soft" }
        }),
    );
    let d = s.call(
        "POST",
        "/v1/check",
        json!({ "user": "a@x.com", "product": "codex", "model": "m", "credits": 8 }),
    );
    assert_eq!(
        (&d["allowed"], &d["alert"], &d["enforcement"]),
        (&json!(true), &json!("over_limit"), &json!("soft"))
    );
    // the alert is written after the answer: an acknowledged write behind it means it is stored
    s.call("POST", "/v1/leases/barrier", json!({ "holder": "h", "ttl_seconds": 5 }));
    let alerts = s.get("/v1/alerts");
    assert_eq!(
        (&alerts["data"][0]["user"], &alerts["data"][0]["kind"]),
        (&json!("a@x.com"), &json!("over_limit"))
    );
    let audit = s.get("/v1/audit?action=settings.set");
    assert_eq!(audit["data"][0]["new"]["enforcement"], "soft");
    let metrics = send(s.addr, "GET", "/metrics", None, None).body;
    assert!(metrics.contains("budgit_checks_total{decision=\"allowed_over_limit\"} 1"));
}

#[test]
fn removing_users_reads_its_body_as_every_endpoint_does() {
    let s = start();
    let r = send(s.addr, "POST", "/v1/users/import", Some(ADMIN), Some("email\na@x.com\n"));
    assert_eq!(r.status, 200, "{}", r.body);
    // a key twice: a reader keeping the last `users` would remove nobody and say so
    let body = r#"{"users": ["a@x.com"], "users": []}"#;
    let r = send(s.addr, "POST", "/v1/users/remove", Some(ADMIN), Some(body));
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (400, Some("request/duplicate-key")),
        "{}",
        r.body
    );
    let r = send(s.addr, "POST", "/v1/users/remove", Some(ADMIN), Some("{\"users\": [\"a\\u0000@x.com\"]}"));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("request/nul")), "{}", r.body);
    // the shape is still this endpoint's own error
    let r = send(s.addr, "POST", "/v1/users/remove", Some(ADMIN), Some("{\"users\": 1}"));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("users/bad-remove")), "{}", r.body);
    assert_eq!(s.get("/v1/users/a@x.com")["email"], "a@x.com");
}
