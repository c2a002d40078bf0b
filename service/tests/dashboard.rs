//! The console's read API against a real server on loopback: summary, users, trends,
//! breakdowns and `/v1/me` over a small fixture whose answers are computed by hand.
//! Every call fixes `now`, so the period and the forecasts do not depend on the clock.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use common::http::send;
use common::seeded::{NOW, at, event, start_seeded};
use common::server::ADMIN;
use serde_json::{Value, json};

fn keys(page: &Value, field: &str) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_string()).collect()
}

#[test]
fn summary_matches_hand_computed_sums() {
    let s = start_seeded();
    let sum = s.get("/v1/dashboard/summary");
    assert_eq!(
        sum["period"],
        json!({ "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "now": NOW, "timezone": "UTC" })
    );
    // used 30 + 10.5 + 85 + 9 + 2.25 + 5 = 141.75 of 100 + 100 + 50 + 20 + 5 = 275;
    // forecast 141.75 * 60 / 19 = 447.631578… (micro-credits, rounded down)
    assert_eq!(
        sum["workspace"],
        json!({
            "used": 141.75,
            // October's 1000: (141.75 - 1000) / 1000 = -85.825%
            "previous": 1000,
            "change": -85.83,
            "exposure": 275,
            "users": 5,
            "percent": 51.55,
            "status": "ok",
            "forecast": 447.631578,
            "status_counts": { "ok": 1, "warning": 3, "exceeded": 1, "unlimited": 1 },
            "blocked": 1,
            // no policy repository: the workspace's alert levels are unknown, 80 applies
            "warning_threshold": 80,
            "alerts": null,
        })
    );
    assert_eq!(sum["products"], json!({ "chatgpt": 17.75, "codex": 124 }));
    // c, e and f have a limit and no group: a team of their own, 9 + 5 of 50 + 20 + 5;
    // eng: 40.5 + 85 of its 150 pool
    assert_eq!(
        sum["teams"],
        json!([{
            "group": "(no group)", "members": 3, "used": 14, "previous": 0, "change": null, "budget": 75, "budget_kind": "members",
            "exposure": 75, "remaining": 61, "percent": 18.67, "status": "ok",
        }, {
            "group": "eng", "members": 2, "used": 125.5, "previous": 1000, "change": -87.45, "budget": 150, "budget_kind": "pool",
            "exposure": 200, "remaining": 24.5, "percent": 83.67, "status": "warning",
        }])
    );
    // every model of either period, this period's largest first
    assert_eq!(
        sum["models"],
        json!([
            { "model": "gpt-5-codex", "used": 94, "previous": 0, "change": null },
            { "model": "gpt-5", "used": 42.75, "previous": 1000, "change": -95.73 },
            { "model": "o3", "used": 5, "previous": 0, "change": null },
        ])
    );
    assert_eq!(
        sum["previous_period"],
        json!({ "start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z", "products": { "codex": 1000 } })
    );

    // usage is read from the aggregates: a read sees the write before it at once
    s.call(
        "POST",
        "/v1/usage/events",
        &event("e7", at(5, 9), "e@x.com", "codex", "gpt-5", "0.25").to_string(),
    );
    let sum = s.get("/v1/dashboard/summary");
    assert_eq!((&sum["workspace"]["used"], &sum["products"]["codex"]), (&json!(142), &json!(124.25)));

    // e reaches its limit of 20: the status counts come from the view, which a read
    // with `fresh=true` waits for, and which the background brings up within its bound
    s.call(
        "POST",
        "/v1/usage/events",
        &event("e8", at(5, 10), "e@x.com", "codex", "gpt-5", "19.75").to_string(),
    );
    let counts = |sum: &Value| sum["workspace"]["status_counts"].clone();
    let exceeded = json!({ "ok": 0, "warning": 3, "exceeded": 2, "unlimited": 1 });
    assert_eq!(counts(&s.get("/v1/dashboard/summary?fresh=true")), exceeded);
    s.call(
        "POST",
        "/v1/usage/events",
        &event("e9", at(5, 11), "c@x.com", "chatgpt", "gpt-5", "41").to_string(),
    );
    let caught_up = eventually(|| {
        let c = counts(&s.get("/v1/dashboard/summary"));
        (c["exceeded"] == json!(3)).then_some(c)
    });
    assert_eq!(caught_up, json!({ "ok": 0, "warning": 2, "exceeded": 3, "unlimited": 1 }));
    let r = s.get_as(ADMIN, "/v1/dashboard/summary?fresh=yes");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("dashboard/bad-fresh")));
}

/// Polls `f` until it answers, for at most the view's staleness bound with a margin (3 s).
fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "not within the view's staleness bound");
        std::thread::yield_now();
    }
}

#[test]
fn users_page_sort_filter_and_export() {
    let s = start_seeded();
    let first = s.get("/v1/dashboard/users?limit=2");
    assert_eq!(
        (keys(&first, "user"), &first["has_more"]),
        (vec!["b@x.com".to_string(), "a@x.com".into()], &json!(true))
    );
    let a = &first["data"][1];
    assert_eq!(
        *a,
        json!({
            "user": "a@x.com", "group": "eng", "team": "eng", "cost_center": "CC-1", "limit": 100, "used": 40.5,
            // bounded by the pool: 150 - 125.5
            "remaining": 24.5, "percent": 40.5, "status": "warning", "blocked": false, "events": 2,
            "products": { "chatgpt": 10.5, "codex": 30 }, "models": { "gpt-5": 40.5 },
        })
    );
    let next = first["next"].as_str().unwrap().replace('@', "%40");
    let second = s.get(&format!("/v1/dashboard/users?limit=2&after={next}"));
    assert_eq!(keys(&second, "user"), ["c@x.com", "f@x.com"]);
    let next = second["next"].as_str().unwrap().replace('@', "%40");
    let last = s.get(&format!("/v1/dashboard/users?limit=2&after={next}"));
    assert_eq!(
        (keys(&last, "user"), &last["has_more"], &last["next"]),
        (vec!["d@x.com".to_string(), "e@x.com".into()], &json!(false), &Value::Null)
    );

    let all = |q: &str| keys(&s.get(&format!("/v1/dashboard/users?{q}")), "user");
    assert_eq!(all("status=warning&sort=email"), ["a@x.com", "b@x.com", "c@x.com"]);
    assert_eq!(all("status=exceeded,unlimited&sort=email"), ["d@x.com", "f@x.com"]);
    assert_eq!(all("group=eng&sort=used&order=asc"), ["a@x.com", "b@x.com"]);
    // the team without a group lists who has a limit and no group (d has no limit)
    assert_eq!(all("group=%28no+group%29&sort=email"), ["c@x.com", "e@x.com", "f@x.com"]);
    assert_eq!(all("q=A%40X"), ["a@x.com"]);
    // f is at 100%; d has no limit and so no percent
    assert_eq!(all("sort=percent"), ["f@x.com", "b@x.com", "a@x.com", "c@x.com", "e@x.com", "d@x.com"]);
    assert_eq!(
        all("sort=remaining&order=asc"),
        ["f@x.com", "b@x.com", "e@x.com", "a@x.com", "c@x.com", "d@x.com"]
    );
    let c = &s.get("/v1/dashboard/users?q=c%40")["data"][0];
    // 9 of a codex cap of 10 warns, though the total is at 18%
    assert_eq!((&c["status"], &c["percent"], &c["remaining"]), (&json!("warning"), &json!(18.0), &json!(41)));

    assert_eq!(
        s.csv("/v1/dashboard/users?format=csv&status=exceeded,unlimited&sort=email"),
        "user,group,cost_center,limit,used,remaining,percent,status,blocked,events,chatgpt,codex\n\
         d@x.com,,(none),,2.25,,,unlimited,false,1,2.25,0\n\
         f@x.com,,(not in directory),5,5,0,100,exceeded,true,1,5,0\n"
    );
    for (q, code) in [
        ("sort=size", "dashboard/bad-sort"),
        ("status=fine", "dashboard/bad-status"),
        ("order=up", "dashboard/bad-order"),
        ("after=x", "dashboard/bad-cursor"),
    ] {
        let r = s.get_as(ADMIN, &format!("/v1/dashboard/users?{q}"));
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some(code)), "{q}");
    }
}

#[test]
fn trends_give_days_series_and_the_forecast() {
    let s = start_seeded();
    let t = s.get("/v1/dashboard/trends?by=product");
    let days: Vec<String> = (1..=10).map(|d| format!("2026-11-{d:02}")).collect();
    assert_eq!(t["days"], json!(days));
    let zeros = |n: usize| vec![json!(0); n];
    let mut codex = vec![json!(30), json!(85), json!(9)];
    codex.extend(zeros(7));
    let mut chatgpt = vec![json!(0), json!(10.5), json!(2.25), json!(5)];
    chatgpt.extend(zeros(6));
    assert_eq!(
        t["series"],
        json!([
            { "key": "codex", "total": 124, "values": codex },
            { "key": "chatgpt", "total": 17.75, "values": chatgpt },
        ])
    );
    // from today to the last day: 141.75 + 141.75 * (hours ahead / 228 hours elapsed)
    let f = &t["forecast"];
    assert_eq!(f["days"].as_array().unwrap().len(), 21);
    assert_eq!((&f["days"][0], &f["days"][20]), (&json!("2026-11-10"), &json!("2026-11-30")));
    assert_eq!((&f["values"][0], &f["values"][20]), (&json!(149.210526), &json!(447.631578)));

    let m = s.get("/v1/dashboard/trends?by=model");
    let totals: Vec<(String, String)> = m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["key"].as_str().unwrap().to_string(), x["total"].to_string()))
        .collect();
    assert_eq!(
        totals,
        [
            ("gpt-5-codex".to_string(), "94".to_string()),
            ("gpt-5".into(), "42.75".into()),
            ("o3".into(), "5".into())
        ]
    );
    let r = s.get_as(ADMIN, "/v1/dashboard/trends?by=team");
    assert_eq!(r.status, 400);
}

#[test]
fn breakdowns_by_cost_center_model_and_user() {
    let s = start_seeded();
    let cc = s.get("/v1/dashboard/breakdown?by=cost_center");
    assert_eq!(
        cc["data"],
        json!([
            { "key": "CC-1", "used": 125.5, "events": 3, "users": 2, "share": 88.54 },
            { "key": "CC-2", "used": 9, "events": 1, "users": 1, "share": 6.35 },
            { "key": "(not in directory)", "used": 5, "events": 1, "users": 1, "share": 3.53 },
            { "key": "(none)", "used": 2.25, "events": 1, "users": 1, "share": 1.59 },
        ])
    );
    let models = s.get("/v1/dashboard/breakdown?by=model&sort=events&limit=1");
    assert_eq!((keys(&models, "key"), &models["has_more"]), (vec!["gpt-5".to_string()], &json!(true)));
    assert_eq!((&models["data"][0]["events"], &models["data"][0]["users"]), (&json!(3), &json!(2)));
    let rest = s.get(&format!(
        "/v1/dashboard/breakdown?by=model&sort=events&after={}",
        models["next"].as_str().unwrap()
    ));
    assert_eq!(keys(&rest, "key"), ["gpt-5-codex", "o3"]);
    let users = s.get("/v1/dashboard/breakdown?by=user&sort=key&q=x.com");
    assert_eq!(keys(&users, "key"), ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "f@x.com"]);
    assert_eq!(
        s.csv("/v1/dashboard/breakdown?by=product&format=csv&sort=key"),
        "product,used,events,users,share\nchatgpt,17.75,3,3,12.52\ncodex,124,3,3,87.48\n"
    );

    // a new directory moves c to CC-3: at once for a fresh read, within the bound for any
    s.call("POST", "/v1/users/import?format=csv", "email,cost_center\nc@x.com,CC-3\n");
    let cc = s.get("/v1/dashboard/breakdown?by=cost_center&sort=key&fresh=true");
    assert_eq!(keys(&cc, "key"), ["(none)", "(not in directory)", "CC-1", "CC-3"]);
    s.call("POST", "/v1/users/import?format=csv", "email,cost_center\nc@x.com,CC-4\n");
    let moved = eventually(|| {
        let keys = keys(&s.get("/v1/dashboard/breakdown?by=cost_center&sort=key"), "key");
        keys.contains(&"CC-4".to_string()).then_some(keys)
    });
    assert_eq!(moved, ["(none)", "(not in directory)", "CC-1", "CC-4"]);
}

#[test]
fn recent_events_fill_the_activity_list_newest_first() {
    let s = start_seeded();
    let seqs = |page: &Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
    };
    // ingested e1..e6 then e0 (sequences 1 to 7), whatever their event times
    let page = s.get("/v1/usage/events/recent?limit=3");
    assert_eq!(
        (seqs(&page), &page["last_seq"]),
        (vec!["e0".to_string(), "e6".into(), "e5".into()], &json!(7))
    );
    // the same JSON as the stream sends
    assert_eq!(
        page["data"][1],
        json!({ "seq": 6, "id": "e6", "time": "2026-11-04T08:00:00Z", "user": "f@x.com", "product": "chatgpt",
                "model": "o3", "credits": 5, "project": null, "context": null })
    );
    assert_eq!(seqs(&s.get("/v1/usage/events/recent?product=codex")), ["e0", "e4", "e3", "e1"]);
    // a and b are in group eng: their events carry it as their project
    assert_eq!(seqs(&s.get("/v1/usage/events/recent?group=eng&product=chatgpt")), ["e2"]);
    s.call("POST", "/v1/usage/events", &event("e7", at(5, 9), "b@x.com", "codex", "gpt-5", "1").to_string());
    let page = s.get("/v1/usage/events/recent?limit=2&group=eng");
    assert_eq!((seqs(&page), &page["last_seq"]), (vec!["e7".to_string(), "e0".into()], &json!(8)));

    let token = s.call("POST", "/v1/users/a%40x.com/tokens", "")["token"].as_str().unwrap().to_string();
    let r = s.get_as(&token, "/v1/usage/events/recent");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("auth/forbidden")));
    let r = s.get_as(ADMIN, "/v1/usage/events/recent?limit=501");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("request/bad-limit")));
}

#[test]
fn me_shows_a_user_only_their_own_budget() {
    let s = start_seeded();
    let token = s.call("POST", "/v1/users/a%40x.com/tokens", "")["token"].as_str().unwrap().to_string();
    // the admin's view loads November; a user token may fix `now` inside it
    assert_eq!(s.get("/v1/me"), json!({ "role": "admin" }));
    s.get("/v1/dashboard/summary");
    let r = s.get_as(&token, "/v1/me");
    assert_eq!(r.status, 200, "{}", r.body);
    let me = r.json();
    let mut daily =
        vec![json!({ "day": "2026-11-01", "credits": 30 }), json!({ "day": "2026-11-02", "credits": 10.5 })];
    daily.extend((3..=10).map(|d| json!({ "day": format!("2026-11-{d:02}"), "credits": 0 })));
    assert_eq!(
        me,
        json!({
            "role": "user",
            "user": "a@x.com",
            "period": { "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "now": NOW, "timezone": "UTC" },
            "group": "eng",
            "team": { "group": "eng", "members": 2, "used": 125.5, "budget": 150, "budget_kind": "pool", "status": "warning" },
            "limit": 100,
            "caps": { "products": {}, "models": {} },
            "used": 40.5,
            "remaining": 24.5,
            "percent": 40.5,
            "status": "warning",
            "blocked": false,
            "enforcement": "hard",
            "products": { "chatgpt": 10.5, "codex": 30 },
            "models": { "gpt-5": 40.5 },
            // 40.5 * 60 / 19 = 127.89 at the burn rate, but hard enforcement stops a at
            // what the eng pool leaves her: 40.5 + 24.5; her own 59.5 left at 40.5 per
            // 228 hours takes 334.96 hours: the 24th
            "forecast": { "used_at_end": 65, "limit_reached_on": "2026-11-24" },
            "daily": daily,
            "history": [{ "at": me["history"][0]["at"], "action": "limit.set", "old": null, "new": 100, "commit": "c1" }],
        })
    );
    for path in
        ["/v1/dashboard/summary", "/v1/dashboard/users", "/v1/dashboard/trends", "/v1/dashboard/breakdown"]
    {
        let r = s.get_as(&token, path);
        assert_eq!((r.status, r.json()["error"]["code"].as_str()), (403, Some("auth/forbidden")), "{path}");
        assert!(!r.body.contains("b@x.com"));
    }
    // f is blocked at 5: at the burn rate 15.79 by the period's end, but nothing more is spent
    let f = s.call("POST", "/v1/users/f%40x.com/tokens", "")["token"].as_str().unwrap().to_string();
    let me_f = s.get_as(&f, "/v1/me").json();
    assert_eq!(
        (&me_f["blocked"], &me_f["forecast"]["used_at_end"], &me_f["team"]["group"]),
        (&json!(true), &json!(5), &json!("(no group)"))
    );
    let other = send(s.addr, "GET", "/v1/me?now=2025-01-15T00:00:00Z", Some(&token), None);
    assert_eq!(other.status, 403);
    assert_eq!(send(s.addr, "GET", "/v1/me", None, None).status, 401);
}

#[test]
fn a_range_answers_its_own_figures_beside_the_range_before_it() {
    let s = start_seeded();
    // dates are whole local days, `to` included: the 2nd and the 3rd
    let range = "from=2026-11-02&to=2026-11-03";
    let sum = s.get(&format!("/v1/dashboard/summary?{range}"));
    assert_eq!(
        (&sum["period"]["start"], &sum["period"]["end"]),
        (&json!("2026-11-02T00:00:00Z"), &json!("2026-11-04T00:00:00Z"))
    );
    // e2 10.5 + e3 85 + e4 9 + e5 2.25; before it, Oct 31 and Nov 1: e0 1000 + e1 30
    assert_eq!(
        (&sum["workspace"]["used"], &sum["workspace"]["previous"], &sum["workspace"]["change"]),
        (&json!(106.75), &json!(1030), &json!(-89.64))
    );
    assert_eq!(sum["products"], json!({ "chatgpt": 12.75, "codex": 94 }));
    assert_eq!(
        sum["previous_period"],
        json!({ "start": "2026-10-31T00:00:00Z", "end": "2026-11-02T00:00:00Z", "products": { "codex": 1030 } })
    );
    let eng = sum["teams"].as_array().unwrap().iter().find(|t| t["group"] == "eng").unwrap();
    assert_eq!((&eng["used"], &eng["previous"]), (&json!(95.5), &json!(1030)));

    // the lists, trends and drill-downs read the same range
    let users = s.get(&format!("/v1/dashboard/users?{range}&sort=email&limit=2"));
    assert_eq!(keys(&users, "user"), ["a@x.com", "b@x.com"]);
    assert_eq!(
        (&users["data"][0]["used"], &users["total"], &users["has_more"]),
        (&json!(10.5), &json!(6), &json!(true))
    );
    let trends = s.get(&format!("/v1/dashboard/trends?{range}"));
    assert_eq!(trends["days"], json!(["2026-11-02", "2026-11-03"]));
    assert_eq!(trends["series"][0], json!({ "key": "codex", "total": 94, "values": [85, 9] }));
    let by_model = s.get(&format!("/v1/dashboard/breakdown?by=model&{range}"));
    assert_eq!(keys(&by_model, "key"), ["gpt-5-codex", "gpt-5"]);
    let team = s.get(&format!("/v1/dashboard/teams/eng?{range}"));
    assert_eq!((&team["used"], &team["daily"]["values"]), (&json!(95.5), &json!([95.5, 0])));
    let person = s.get(&format!("/v1/dashboard/people/a%40x.com?{range}"));
    assert_eq!((&person["used"], &person["products"]), (&json!(10.5), &json!({ "chatgpt": 10.5 })));

    // a range held is kept current from the stream: a write inside it counts at once
    s.call("POST", "/v1/usage/events", &event("e7", at(3, 12), "a@x.com", "codex", "gpt-5", "1").to_string());
    let sum = s.get(&format!("/v1/dashboard/summary?{range}&fresh=true"));
    assert_eq!(sum["workspace"]["used"], json!(107.75));

    // instants are exact: the 24 hours from the 2nd at 12:00 hold e3 (15:00) and e4 (the 3rd, 11:00)
    let day = s.get("/v1/dashboard/summary?from=2026-11-02T12:00:00Z&to=2026-11-03T12:00:00Z");
    assert_eq!(day["workspace"]["used"], json!(94));

    for bad in [
        "from=2026-11-02",
        "from=2026-11-05&to=2026-11-01",
        "from=soon&to=2026-11-01",
        "from=2025-01-01&to=2026-11-01",
    ] {
        let r = s.get_as(ADMIN, &format!("/v1/dashboard/users?{bad}"));
        assert_eq!(
            (r.status, r.json()["error"]["code"].as_str()),
            (400, Some("dashboard/bad-range")),
            "{bad}"
        );
    }
}
