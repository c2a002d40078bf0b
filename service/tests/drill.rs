//! The console's drill-down views against a real server on loopback: the teams' product
//! and model mix, one team, one person, and the team `(no group)` wherever teams are
//! listed. The fixture is the dashboard tests' one (`common::seeded`); every answer is
//! computed by hand.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use common::seeded::{NOW, at, event, start_seeded};
use common::server::ADMIN;
use serde_json::{Value, json};

const NO_GROUP: &str = "%28no%20group%29";

fn keys(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list].as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_mix_gives_each_team_its_credits_per_product_and_model() {
    let s = start_seeded();
    let mix = s.get("/v1/dashboard/mix?by=team&fresh=true");
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
    let asc = s.get("/v1/dashboard/mix?product=chatgpt&order=asc");
    assert_eq!(keys(&asc, "data", "team"), ["(no group)", "eng"]);
    // a product nobody used sorts every team at zero, by name
    let none = s.get("/v1/dashboard/mix?product=sora");
    assert_eq!(keys(&none, "data", "team"), ["(no group)", "eng"]);
    assert_eq!(
        (&none["products"], &none["data"][1]["products"]["sora"]),
        (&json!(["chatgpt", "codex", "sora"]), &json!(0))
    );

    // new usage counts at once: the aggregates are read per request
    s.call(
        "POST",
        "/v1/usage/events",
        &event("e7", at(5, 9), "e@x.com", "codex", "gpt-5", "200").to_string(),
    );
    let moved = s.get("/v1/dashboard/mix?fresh=true");
    assert_eq!(
        (keys(&moved, "data", "team"), &moved["data"][0]["products"]["codex"]),
        (vec!["(no group)".to_string(), "eng".into()], &json!(209))
    );

    let r = s.get_as(ADMIN, "/v1/dashboard/mix?by=model");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("dashboard/bad-by")));
    let r = s.get_as(ADMIN, "/v1/dashboard/mix?order=up");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("dashboard/bad-order")));
    let token = s.call("POST", "/v1/users/a%40x.com/tokens", "")["token"].as_str().unwrap().to_string();
    let r = s.get_as(&token, "/v1/dashboard/mix");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("auth/forbidden")));
}

#[test]
fn no_group_is_listed_wherever_teams_are() {
    let s = start_seeded();
    // the summary's teams (the team gauges and the console's team filters)
    let summary = s.get("/v1/dashboard/summary?fresh=true");
    let teams: Vec<&str> =
        summary["teams"].as_array().unwrap().iter().map(|t| t["group"].as_str().unwrap()).collect();
    assert_eq!(teams, ["(no group)", "eng"]);
    // the breakdown by team: every team, with its members' usage
    let by_team = s.get("/v1/dashboard/breakdown?by=team&sort=key");
    assert_eq!(
        by_team["data"],
        json!([
            { "key": "(no group)", "used": 14, "events": 2, "users": 2, "share": 9.88 },
            { "key": "eng", "used": 125.5, "events": 3, "users": 2, "share": 88.54 },
        ])
    );
    // the users table's team column, and its filter
    let users = s.get("/v1/dashboard/users?sort=email");
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
    let filtered = s.get(&format!("/v1/dashboard/users?group={NO_GROUP}&sort=email"));
    assert_eq!(keys(&filtered, "data", "user"), ["c@x.com", "e@x.com", "f@x.com"]);
    // the activity list's team filter: the ungrouped users' events
    let recent = s.get(&format!("/v1/usage/events/recent?group={NO_GROUP}&product=codex"));
    assert_eq!(keys(&recent, "data", "id"), ["e4"]);
    // the team page
    let team = s.get(&format!("/v1/dashboard/teams/{NO_GROUP}"));
    assert_eq!(
        (&team["group"], &team["members"], &team["used"]),
        (&json!("(no group)"), &json!(3), &json!(14))
    );
}

#[test]
fn a_team_page_has_its_members_mix_trend_and_open_requests() {
    let s = start_seeded();
    let req = json!({ "user": "e@x.com", "credits": "5", "days": 3, "reason": "release week" });
    let made = s.call("POST", "/v1/requests", &req.to_string());
    let eng = s.get("/v1/dashboard/teams/eng?fresh=true");
    let mut daily = vec![json!(30), json!(95.5)];
    daily.extend((3..=10).map(|_| json!(0)));
    let days: Vec<String> = (1..=10).map(|d| format!("2026-11-{d:02}")).collect();
    fn per_day(first: &[Value]) -> Vec<Value> {
        let mut v = first.to_vec();
        v.extend((v.len()..10).map(|_| json!(0)));
        v
    }
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
            // a's codex 30 on the 1st; her chatgpt 10.5 and b's codex 85 on the 2nd
            "daily": { "days": days, "values": daily, "products": [
                { "product": "codex", "total": 115, "values": per_day(&[json!(30), json!(85)]) },
                { "product": "chatgpt", "total": 10.5, "values": per_day(&[json!(0), json!(10.5)]) },
            ] },
            "proposals": [],
            "requests": [],
        })
    );
    let ungrouped = s.get(&format!("/v1/dashboard/teams/{NO_GROUP}"));
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

    let r = s.get_as(ADMIN, "/v1/dashboard/teams/ops");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("dashboard/unknown-team")));
}

#[test]
fn a_person_page_is_their_budget_with_provenance_and_requests() {
    let s = start_seeded();
    let req = json!({ "user": "c@x.com", "credits": "12.5", "days": 7, "reason": "codex migration", "product": "codex" });
    let made = s.call("POST", "/v1/requests", &req.to_string());
    let c = s.get("/v1/dashboard/people/c%40x.com?fresh=true");
    // the same budget as the person's own `/v1/me`
    let token = s.call("POST", "/v1/users/c%40x.com/tokens", "")["token"].as_str().unwrap().to_string();
    let me = s.get_as(&token, "/v1/me").json();
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
    let d = s.get("/v1/dashboard/people/D%40x.com");
    assert_eq!(
        (&d["user"], &d["used"], &d["team_name"], &d["applied"], &d["status"]),
        (&json!("d@x.com"), &json!(2.25), &Value::Null, &Value::Null, &json!("unlimited"))
    );
    let r = s.get_as(ADMIN, "/v1/dashboard/people/nobody%40x.com");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("dashboard/unknown-user")));
    let r = s.get_as(&token, "/v1/dashboard/people/c%40x.com");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("auth/forbidden")));
}
