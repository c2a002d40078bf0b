//! `budgit serve --demo` started in-process: what a newcomer sees must hold, checked through the API.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

#[path = "../../service/tests/common/http.rs"]
mod http;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use budgit_demo::{DemoOptions, repo::EMBEDDED, start_demo};
use http::{Sse, send};
use serde_json::{Value, json};

const ADMIN: &str = "test-admin-token-demo-81c2-0123456789abcdef";

fn credits(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => n.as_f64().unwrap(),
        other => panic!("not credits: {other}"),
    }
}

/// Every page of a paged admin list.
fn all(addr: std::net::SocketAddr, path: &str, cursor: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = send(addr, "GET", &format!("{path}{sep}limit=1000&after={after}"), Some(ADMIN), None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        let page = r.json();
        out.extend(page["data"].as_array().unwrap().iter().cloned());
        if page["has_more"] != json!(true) {
            return out;
        }
        after = match &page["next"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("no cursor in {cursor}: {other}"),
        };
    }
}

#[test]
fn the_embedded_policies_are_the_files_under_policies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let mut on_disk = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
                on_disk.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    on_disk.sort();
    let mut embedded: Vec<(String, Vec<u8>)> =
        EMBEDDED.iter().map(|(p, t)| ((*p).to_string(), t.as_bytes().to_vec())).collect();
    embedded.sort();
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&embedded), names(&on_disk), "add or remove the file in demo/src/repo.rs");
    for ((path, a), (_, b)) in embedded.iter().zip(&on_disk) {
        assert!(a == b, "the embedded `{path}` differs from policies/{path}");
    }
}

#[test]
fn the_demo_seeds_a_live_organisation() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let demo = rt
        .block_on(start_demo(DemoOptions {
            // the embedded copy, so the test does not depend on the working directory
            policies: None,
            users: 400,
            listen: "127.0.0.1:0".into(),
            data_dir: Some(dir.path().join("demo")),
            seed: 42,
            admin_token: Some(ADMIN.into()),
            ..DemoOptions::default()
        }))
        .unwrap();
    let addr = demo.addr;

    // the repository: `main` holds the policies, with a real commit
    let repo = git2::Repository::open(&demo.repo).unwrap();
    let head = repo.revparse_single("main").unwrap().peel_to_commit().unwrap();
    assert_eq!(head.id().to_string(), demo.head);
    assert!(head.author().name().is_ok_and(|n| !n.is_empty()));
    assert!(demo.repo.join("policies/workspace.yaml").is_file());

    // users imported
    let users = all(addr, "/v1/users", "users");
    assert_eq!(users.len(), 400);
    assert_eq!(demo.users, 400);

    // limits applied by the reconciler, from main's head
    let limits = all(addr, "/v1/limits", "limits");
    assert_eq!(limits.len(), 400, "every user has a limit");
    let commits: BTreeMap<String, usize> = limits.iter().fold(BTreeMap::new(), |mut m, l| {
        let c = l["commit"].as_str().unwrap_or("none").to_string();
        *m.entry(c).or_default() += 1;
        m
    });
    assert_eq!(commits.keys().collect::<Vec<_>>(), vec![&demo.head], "{commits:?}");
    let groups: std::collections::BTreeSet<&str> =
        limits.iter().filter_map(|l| l["group"].as_str()).collect();
    for g in [
        "engineering",
        "customer-support",
        "data-science",
        "executives",
        "finance-legal",
        "go-to-market",
        "interns",
        "ml-platform",
        "platform-infra",
        "product-design",
        "security",
    ] {
        assert!(groups.contains(g), "group `{g}` has no member: {groups:?}");
    }

    // usage for both products, per team, over the period (every page of daily buckets)
    let user = send(addr, "GET", &format!("/v1/users/{}", demo.user), Some(ADMIN), None).json();
    let start = chrono::DateTime::parse_from_rfc3339(user["period"]["start"].as_str().unwrap()).unwrap();
    let mut by_product: BTreeMap<String, f64> = BTreeMap::new();
    let mut by_team: BTreeMap<String, f64> = BTreeMap::new();
    let mut page = String::new();
    loop {
        let costs = send(
            addr,
            "GET",
            &format!(
                "/v1/organization/costs?start_time={}&bucket_width=1d&limit=31&group_by=product&group_by=project_id{page}",
                start.timestamp()
            ),
            Some(ADMIN),
            None,
        );
        assert_eq!(costs.status, 200, "{}", costs.body);
        let costs = costs.json();
        for bucket in costs["data"].as_array().unwrap() {
            for r in bucket["results"].as_array().unwrap() {
                let v = credits(&r["amount"]["value"]);
                *by_product.entry(r["product"].as_str().unwrap_or("").to_string()).or_default() += v;
                *by_team.entry(r["project_id"].as_str().unwrap_or("").to_string()).or_default() += v;
            }
        }
        match costs["next_page"].as_str() {
            Some(next) if costs["has_more"] == json!(true) => page = format!("&page={next}"),
            _ => break,
        }
    }
    assert!(by_product.get("chatgpt").is_some_and(|v| *v > 0.0), "{by_product:?}");
    assert!(by_product.get("codex").is_some_and(|v| *v > 0.0), "{by_product:?}");

    // a team at 85% or more of its pool
    let pools: BTreeMap<String, f64> = send(addr, "GET", "/v1/pools", Some(ADMIN), None).json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["group"].as_str().unwrap().to_string(), credits(&p["credits"])))
        .collect();
    let near = demo.near_team.clone().expect("a team near its pool");
    let share = by_team[&near] / pools[&near];
    assert!((0.85..1.0).contains(&share), "`{near}` uses {share:.3} of its pool");

    // one person's last hour is an agent loop: the runaway list has them, and nobody else
    // of the backfill (live spend is too small and too spread to be runaway)
    let runaway = send(addr, "GET", "/v1/dashboard/runaway", Some(ADMIN), None).json();
    let people = runaway["people"].as_array().unwrap();
    assert_eq!(people.len(), 1, "{runaway}");
    assert!(credits(&people[0]["last_hour"]) >= 50.0, "{runaway}");

    // the value view tells a story: Codex work names its team's repositories, and the
    // outcomes show one repository burning credits for few merged pull requests while
    // platform-infra merges many for little
    let value = send(addr, "GET", "/v1/dashboard/value", Some(ADMIN), None).json();
    assert!(value["outcomes"].as_u64().unwrap() > 0, "{value}");
    let named: Vec<&Value> =
        value["rows"].as_array().unwrap().iter().filter(|r| r["key"].is_string()).collect();
    assert!(named.len() >= 5, "{value}");
    let worst = named
        .iter()
        .filter(|r| !r["credits_per_outcome"].is_null())
        .max_by(|a, b| credits(&a["credits_per_outcome"]).total_cmp(&credits(&b["credits_per_outcome"])))
        .unwrap();
    assert_eq!(worst["key"], budgit_demo::value::BURNING_REPO, "{value}");
    let per_pr = |team: &str| {
        let t = value["teams"].as_array().unwrap().iter().find(|t| t["team"] == team).unwrap();
        credits(&t["credits_per_pull_request"])
    };
    assert!(per_pr("platform-infra") * 2.0 < per_pr("engineering"), "{value}");
    let workflows = send(addr, "GET", "/v1/dashboard/value?by=context.workflow", Some(ADMIN), None).json();
    let keys: Vec<&str> =
        workflows["rows"].as_array().unwrap().iter().filter_map(|r| r["key"].as_str()).collect();
    assert!(keys.contains(&"migration-retry") && keys.contains(&"ci-review"), "{keys:?}");

    // the user at their limit is denied, with their own token too
    let check = json!({ "user": demo.user, "product": "chatgpt", "model": "gpt-5", "credits": "1" });
    let r = send(addr, "POST", "/v1/check", Some(ADMIN), Some(&check.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["allowed"], json!(false), "{}", r.body);
    let own = json!({ "product": "codex", "model": "gpt-5-codex", "credits": "0.5" });
    let r = send(addr, "POST", "/v1/check", Some(&demo.user_token), Some(&own.to_string()));
    assert_eq!(r.json()["allowed"], json!(false), "{}", r.body);
    let me = send(addr, "GET", &format!("/v1/users/{}", demo.user), Some(&demo.user_token), None);
    assert_eq!(me.status, 200, "{}", me.body);

    // new events keep arriving: read the live stream for a bounded time
    let mut sse = Sse::open(addr, "/v1/usage/stream", ADMIN, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut products = std::collections::BTreeSet::new();
    let mut seen = 0;
    while seen < 3 && Instant::now() < deadline {
        let ev = sse.next();
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        assert!(v["context"]["kind"].is_string(), "{v}");
        products.insert(v["product"].as_str().unwrap().to_string());
        seen += 1;
    }
    assert_eq!(seen, 3, "live events within 30 s");
    demo.stop();
}
