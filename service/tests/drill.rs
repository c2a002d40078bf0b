//! The console's drill-down views against a real server on loopback: the teams' product
//! and model mix, one team, one person, and the team `(no group)` wherever teams are
//! listed. The fixture is the dashboard tests' one; every answer is computed by hand.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use chrono::{TimeZone, Utc};
use common::http::send;
use common::server::{ADMIN, Server, start};
use serde_json::{Value, json};

/// 9.5 days into November 2026 (UTC).
const NOW: &str = "2026-11-10T12:00:00Z";
const NO_GROUP: &str = "%28no%20group%29";

fn get_as(s: &Server, token: &str, path: &str) -> common::http::Response {
    let sep = if path.contains('?') { '&' } else { '?' };
    send(s.addr, "GET", &format!("{path}{sep}now={NOW}"), Some(token), None)
}

fn get(s: &Server, path: &str) -> Value {
    let r = get_as(s, ADMIN, path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    r.json()
}

fn call(s: &Server, method: &str, path: &str, body: &str) -> Value {
    let r = send(s.addr, method, path, Some(ADMIN), Some(body));
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    r.json()
}

fn at(day: u32, hour: u32) -> i64 {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap().timestamp()
}

fn event(id: &str, ts: i64, user: &str, product: &str, model: &str, credits: &str) -> Value {
    json!({ "id": id, "time": ts, "user": user, "product": product, "model": model, "credits": credits })
}

/// a, b: 100 each in group `eng` (pool 150); c: 50 with a codex cap of 10, no group;
/// d: no limit; e: 20, no usage, no group; f: 5, used up, no group.
fn fixture() -> Server {
    let s = start();
    let csv = "email,cost_center\na@x.com,CC-1\nb@x.com,CC-1\nc@x.com,CC-2\nd@x.com,\n";
    call(&s, "POST", "/v1/users/import?format=csv", csv);
    let limits = json!({
        "commit": "c1",
        "limits": [
            { "user": "a@x.com", "credits": 100, "group": "eng" },
            { "user": "b@x.com", "credits": 100, "group": "eng" },
            { "user": "c@x.com", "credits": 50, "products": { "codex": 10 } },
            { "user": "e@x.com", "credits": 20 },
            { "user": "f@x.com", "credits": 5 },
        ],
        "pools": [{ "group": "eng", "credits": 150 }],
    });
    call(&s, "PUT", "/v1/limits", &limits.to_string());
    let events = json!([
        event("e1", at(1, 10), "a@x.com", "codex", "gpt-5", "30"),
        event("e2", at(2, 9), "a@x.com", "chatgpt", "gpt-5", "10.5"),
        event("e3", at(2, 15), "b@x.com", "codex", "gpt-5-codex", "85"),
        event("e4", at(3, 11), "c@x.com", "codex", "gpt-5-codex", "9"),
        event("e5", at(3, 16), "d@x.com", "chatgpt", "gpt-5", "2.25"),
        event("e6", at(4, 8), "f@x.com", "chatgpt", "o3", "5"),
        // October: another period, never counted
        event(
            "e0",
            Utc.with_ymd_and_hms(2026, 10, 31, 23, 59, 59).unwrap().timestamp(),
            "a@x.com",
            "codex",
            "gpt-5",
            "1000"
        ),
    ]);
    call(&s, "POST", "/v1/usage/events", &events.to_string());
    s
}

fn keys(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list].as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_mix_gives_each_team_its_credits_per_product_and_model() {
    let s = fixture();
    let mix = get(&s, "/v1/dashboard/mix?by=team&fresh=true");
    // sorted by codex: eng 30 + 85, then the ungrouped c's 9
    assert_eq!(
        (&mix["by"], &mix["product"], &mix["order"], &mix["products"]),
        (&json!("team"), &json!("codex"), &json!("desc"), &json!(["chatgpt", "codex"]))
    );
    assert_eq!(
        mix["data"],
        json!([
            { "team": "eng", "members": 2, "used": 125.5, "products": { "chatgpt": 10.5, "codex": 115 },
              "models": { "gpt-5": 40.5, "gpt-5-codex": 85 } },
            // c, e and f: a limit and no group; d has no limit and so no team
            { "team": "(no group)", "members": 3, "used": 14, "products": { "chatgpt": 5, "codex": 9 },
              "models": { "gpt-5-codex": 9, "o3": 5 } },
        ])
    );
    // by ChatGPT, smallest first: the ungrouped 5 before eng's 10.5
    let asc = get(&s, "/v1/dashboard/mix?product=chatgpt&order=asc");
    assert_eq!(keys(&asc, "data", "team"), ["(no group)", "eng"]);
    // a product nobody used sorts every team at zero, by name
    let none = get(&s, "/v1/dashboard/mix?product=sora");
    assert_eq!(keys(&none, "data", "team"), ["(no group)", "eng"]);
    assert_eq!(
        (&none["products"], &none["data"][1]["products"]["sora"]),
        (&json!(["chatgpt", "codex", "sora"]), &json!(0))
    );

    // new usage counts at once: the aggregates are read per request
    call(
        &s,
        "POST",
        "/v1/usage/events",
        &event("e7", at(5, 9), "e@x.com", "codex", "gpt-5", "200").to_string(),
    );
    let moved = get(&s, "/v1/dashboard/mix?fresh=true");
    assert_eq!(
        (keys(&moved, "data", "team"), &moved["data"][0]["products"]["codex"]),
        (vec!["(no group)".to_string(), "eng".into()], &json!(209))
    );

    let r = get_as(&s, ADMIN, "/v1/dashboard/mix?by=model");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("dashboard/bad-by")));
    let r = get_as(&s, ADMIN, "/v1/dashboard/mix?order=up");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("dashboard/bad-order")));
    let token = call(&s, "POST", "/v1/users/a%40x.com/tokens", "")["token"].as_str().unwrap().to_string();
    let r = get_as(&s, &token, "/v1/dashboard/mix");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("auth/forbidden")));
}

#[test]
fn no_group_is_listed_wherever_teams_are() {
    let s = fixture();
    // the summary's teams (the team gauges and the console's team filters)
    let summary = get(&s, "/v1/dashboard/summary?fresh=true");
    let teams: Vec<&str> =
        summary["teams"].as_array().unwrap().iter().map(|t| t["group"].as_str().unwrap()).collect();
    assert_eq!(teams, ["(no group)", "eng"]);
    // the breakdown by team: every team, with its members' usage
    let by_team = get(&s, "/v1/dashboard/breakdown?by=team&sort=key");
    assert_eq!(
        by_team["data"],
        json!([
            { "key": "(no group)", "used": 14, "events": 2, "users": 2, "share": 9.88 },
            { "key": "eng", "used": 125.5, "events": 3, "users": 2, "share": 88.54 },
        ])
    );
    // the users table's team column, and its filter
    let users = get(&s, "/v1/dashboard/users?sort=email");
    let team_of: Vec<(String, Value)> = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["user"].as_str().unwrap().to_string(), u["team"].clone()))
        .collect();
    assert_eq!(
        team_of,
        [
            ("a@x.com".to_string(), json!("eng")),
            ("b@x.com".into(), json!("eng")),
            ("c@x.com".into(), json!("(no group)")),
            ("d@x.com".into(), Value::Null),
            ("e@x.com".into(), json!("(no group)")),
            ("f@x.com".into(), json!("(no group)")),
        ]
    );
    let filtered = get(&s, &format!("/v1/dashboard/users?group={NO_GROUP}&sort=email"));
    assert_eq!(keys(&filtered, "data", "user"), ["c@x.com", "e@x.com", "f@x.com"]);
    // the activity list's team filter: the ungrouped users' events
    let recent = get(&s, &format!("/v1/usage/events/recent?group={NO_GROUP}&product=codex"));
    assert_eq!(keys(&recent, "data", "id"), ["e4"]);
    // the team page
    let team = get(&s, &format!("/v1/dashboard/teams/{NO_GROUP}"));
    assert_eq!(
        (&team["group"], &team["members"], &team["used"]),
        (&json!("(no group)"), &json!(3), &json!(14))
    );
}

#[test]
fn a_team_page_has_its_members_mix_trend_and_open_requests() {
    let s = fixture();
    let req = json!({ "user": "e@x.com", "credits": "5", "days": 3, "reason": "release week" });
    let made = call(&s, "POST", "/v1/requests", &req.to_string());
    let eng = get(&s, "/v1/dashboard/teams/eng?fresh=true");
    let mut daily = vec![json!(30), json!(95.5)];
    daily.extend((3..=10).map(|_| json!(0)));
    let days: Vec<String> = (1..=10).map(|d| format!("2026-11-{d:02}")).collect();
    assert_eq!(
        eng,
        json!({
            "group": "eng", "members": 2, "used": 125.5, "budget": 150, "budget_kind": "pool", "pool": 150,
            "exposure": 200, "remaining": 24.5, "percent": 83.67, "status": "warning",
            "products": { "chatgpt": 10.5, "codex": 115 }, "models": { "gpt-5": 40.5, "gpt-5-codex": 85 },
            "period": { "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "now": NOW, "timezone": "UTC" },
            "member_list": [
                { "user": "b@x.com", "limit": 100, "used": 85, "remaining": 15, "percent": 85.0, "status": "warning",
                  "blocked": false, "products": { "codex": 85 }, "models": { "gpt-5-codex": 85 } },
                { "user": "a@x.com", "limit": 100, "used": 40.5, "remaining": 24.5, "percent": 40.5, "status": "warning",
                  "blocked": false, "products": { "chatgpt": 10.5, "codex": 30 }, "models": { "gpt-5": 40.5 } },
            ],
            "daily": { "days": days, "values": daily },
            "proposals": [],
            "requests": [],
        })
    );
    let ungrouped = get(&s, &format!("/v1/dashboard/teams/{NO_GROUP}"));
    // by usage, then by email: e has used nothing
    assert_eq!(keys(&ungrouped, "member_list", "user"), ["c@x.com", "f@x.com", "e@x.com"]);
    assert_eq!(ungrouped["member_list"][1]["blocked"], json!(true));
    assert_eq!(
        (
            &ungrouped["requests"][0]["id"],
            &ungrouped["requests"][0]["user"],
            &ungrouped["requests"][0]["status"]
        ),
        (&made["id"], &json!("e@x.com"), &json!("pending"))
    );

    let r = get_as(&s, ADMIN, "/v1/dashboard/teams/ops");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("dashboard/unknown-team")));
}

#[test]
fn a_person_page_is_their_budget_with_provenance_and_requests() {
    let s = fixture();
    let req = json!({ "user": "c@x.com", "credits": "12.5", "days": 7, "reason": "codex migration", "product": "codex" });
    let made = call(&s, "POST", "/v1/requests", &req.to_string());
    let c = get(&s, "/v1/dashboard/people/c%40x.com?fresh=true");
    // the same budget as the person's own `/v1/me`
    let token = call(&s, "POST", "/v1/users/c%40x.com/tokens", "")["token"].as_str().unwrap().to_string();
    let me = get_as(&s, &token, "/v1/me").json();
    for field in [
        "user",
        "limit",
        "used",
        "remaining",
        "status",
        "products",
        "models",
        "daily",
        "forecast",
        "team",
        "caps",
    ] {
        assert_eq!(c[field], me[field], "{field}");
    }
    assert_eq!(
        (&c["used"], &c["limit"], &c["status"], &c["team_name"], &c["cost_center"]),
        (&json!(9), &json!(50), &json!("warning"), &json!("(no group)"), &json!("CC-2"))
    );
    assert_eq!((&c["applied"]["commit"], &c["applied"]["source"]), (&json!("c1"), &Value::Null));
    assert_eq!(
        (&c["requests"][0]["id"], &c["requests"][0]["credits"], &c["requests"][0]["product"]),
        (&made["id"], &json!(12.5), &json!("codex"))
    );
    assert!(c.get("role").is_none(), "{c}");

    // d has usage and no limit: no team, no applied limit
    let d = get(&s, "/v1/dashboard/people/D%40x.com");
    assert_eq!(
        (&d["user"], &d["used"], &d["team_name"], &d["applied"], &d["status"]),
        (&json!("d@x.com"), &json!(2.25), &Value::Null, &Value::Null, &json!("unlimited"))
    );
    let r = get_as(&s, ADMIN, "/v1/dashboard/people/nobody%40x.com");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("dashboard/unknown-user")));
    let r = get_as(&s, &token, "/v1/dashboard/people/c%40x.com");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("auth/forbidden")));
}
