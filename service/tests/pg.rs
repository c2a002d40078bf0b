//! `budgit serve --store postgres://…`: replicas sharing one PostgreSQL database.
//!
//! Each test has a database of its own (on the server `BUDGIT_TEST_PG` names, or on a
//! cluster it starts: `common::pg`); replicas are servers started in this process, each
//! on its own runtime, sharing nothing but the database.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::http::send;
use common::pg;
use common::server::{ADMIN, Server, start_configured};
use serde_json::{Value, json};

/// A replica on the database at `url`.
fn replica(url: &str) -> Server {
    let url = url.to_string();
    start_configured(move |_, c| {
        c.postgres = Some(budgit_service::pg::PgConfig { url, pool_size: 8 });
    })
    .0
}

fn put_limits(addr: SocketAddr, batch: Value) -> Value {
    let r = send(addr, "PUT", "/v1/limits", Some(ADMIN), Some(&batch.to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// The users' committed usage in the database, as exact text.
fn committed_sum(url: &str) -> String {
    pg::query(url, "SELECT (COALESCE(SUM(micros), 0) / 1000000.0)::NUMERIC(20, 6)::TEXT FROM events")[0][0]
        .clone()
        .unwrap()
}

/// 60 concurrent check-then-commit sequences of 1 credit each, split across the two
/// replicas: how many were allowed.
fn sixty_sequences(replicas: [SocketAddr; 2], users: &[String], product: &str) -> usize {
    let allowed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..60 {
            let (allowed, addr, user) = (&allowed, replicas[i % 2], &users[i % users.len()]);
            s.spawn(move || {
                let body = json!({ "user": user, "product": product, "model": "gpt-5", "credits": 1 });
                let r = send(addr, "POST", "/v1/check", Some(ADMIN), Some(&body.to_string()));
                assert_eq!(r.status, 200, "{}", r.body);
                let v = r.json();
                if v["allowed"] == json!(true) {
                    allowed.fetch_add(1, Ordering::SeqCst);
                    let id = v["reservation_id"].as_str().unwrap().to_string();
                    // committed on the other replica: a hold is the database's, not a process's
                    let other = replicas[(i + 1) % 2];
                    let r = send(
                        other,
                        "POST",
                        &format!("/v1/reservations/{id}/commit"),
                        Some(ADMIN),
                        Some(r#"{"credits": 1}"#),
                    );
                    assert_eq!(r.status, 200, "{}", r.body);
                    assert_eq!(r.json()["duplicate_event"], json!(false));
                } else {
                    assert_eq!(v["reservation_id"], Value::Null);
                }
            });
        }
    });
    allowed.into_inner()
}

#[test]
fn migrations_run_once_when_replicas_start_together() {
    let db = pg::database();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = budgit_service::pg::PgConfig { url: db.url.clone(), pool_size: 2 };
    // eight replicas open the store at once: without the advisory lock, several would
    // run `CREATE TABLE meta` together and all but one fail
    let opened = rt.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let config = config.clone();
                tokio::spawn(async move { budgit_service::pg::Pg::open(&config).await.map(|_| ()) })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for o in &opened {
        assert!(o.is_ok(), "{o:?}");
    }
    let versions = pg::query(&db.url, "SELECT version::TEXT FROM schema_migrations ORDER BY version");
    let expected: Vec<Vec<Option<String>>> =
        budgit_service::pg::MIGRATIONS.iter().map(|(v, _)| vec![Some(v.to_string())]).collect();
    assert_eq!(versions, expected);
    // and a later start finds them applied
    rt.block_on(budgit_service::pg::Pg::open(&config)).unwrap();
    assert_eq!(
        pg::query(&db.url, "SELECT COUNT(*)::TEXT FROM schema_migrations")[0][0].as_deref(),
        Some("1")
    );
}

#[test]
fn two_replicas_never_together_pass_a_users_limit() {
    let db = pg::database();
    let (a, b) = (replica(&db.url), replica(&db.url));
    put_limits(a.addr, json!({ "commit": "c1", "limits": [{ "user": "ann@x.com", "credits": 10 }] }));
    let granted = sixty_sequences([a.addr, b.addr], &["ann@x.com".to_string()], "chatgpt");
    assert_eq!(granted, 10);
    assert_eq!(committed_sum(&db.url), "10.000000");
    // both replicas now refuse, on the user's total
    for addr in [a.addr, b.addr] {
        let r = send(
            addr,
            "POST",
            "/v1/check",
            Some(ADMIN),
            Some(r#"{"user":"ann@x.com","product":"chatgpt","model":"gpt-5","credits":1}"#),
        );
        let v = r.json();
        assert_eq!(
            (v["allowed"].clone(), v["deciding"].clone(), v["remaining"].clone()),
            (json!(false), json!("user"), json!(0))
        );
    }
}

#[test]
fn two_replicas_never_together_pass_a_pool() {
    let db = pg::database();
    let (a, b) = (replica(&db.url), replica(&db.url));
    let users: Vec<String> = (0..6).map(|i| format!("u{i}@x.com")).collect();
    let limits: Vec<Value> =
        users.iter().map(|u| json!({ "user": u, "credits": 100, "group": "eng" })).collect();
    put_limits(
        a.addr,
        json!({ "commit": "c1", "limits": limits, "pools": [{ "group": "eng", "credits": 10 }] }),
    );
    let granted = sixty_sequences([a.addr, b.addr], &users, "chatgpt");
    assert_eq!(granted, 10);
    assert_eq!(committed_sum(&db.url), "10.000000");
    let r = send(
        b.addr,
        "POST",
        "/v1/check",
        Some(ADMIN),
        Some(r#"{"user":"u5@x.com","product":"chatgpt","model":"gpt-5","credits":1}"#),
    );
    assert_eq!(r.json()["deciding"], json!("pool"));
}

#[test]
fn two_replicas_never_together_pass_a_product_cap() {
    let db = pg::database();
    let (a, b) = (replica(&db.url), replica(&db.url));
    put_limits(
        a.addr,
        json!({ "commit": "c1", "limits": [{ "user": "cap@x.com", "credits": 100, "products": { "codex": 10 } }] }),
    );
    let granted = sixty_sequences([a.addr, b.addr], &["cap@x.com".to_string()], "codex");
    assert_eq!(granted, 10);
    // the cap stops only its product
    let r = send(
        b.addr,
        "POST",
        "/v1/check",
        Some(ADMIN),
        Some(r#"{"user":"cap@x.com","product":"codex","model":"gpt-5","credits":1}"#),
    );
    assert_eq!(
        (r.json()["allowed"].clone(), r.json()["deciding"].clone()),
        (json!(false), json!("product_cap"))
    );
    let r = send(
        b.addr,
        "POST",
        "/v1/check",
        Some(ADMIN),
        Some(r#"{"user":"cap@x.com","product":"chatgpt","model":"gpt-5","credits":1}"#),
    );
    assert_eq!((r.json()["allowed"].clone(), r.json()["remaining"].clone()), (json!(true), json!(89)));
}

#[test]
fn a_hold_released_or_committed_on_one_replica_is_gone_on_the_other() {
    let db = pg::database();
    let (a, b) = (replica(&db.url), replica(&db.url));
    put_limits(a.addr, json!({ "commit": "c1", "limits": [{ "user": "bo@x.com", "credits": 5 }] }));
    let check = |addr, credits: &str| {
        let body =
            format!(r#"{{"user":"bo@x.com","product":"chatgpt","model":"gpt-5","credits":{credits}}}"#);
        send(addr, "POST", "/v1/check", Some(ADMIN), Some(&body)).json()
    };
    let v = check(a.addr, "5");
    assert_eq!((v["allowed"].clone(), v["remaining"].clone()), (json!(true), json!(0)));
    let id = v["reservation_id"].as_str().unwrap().to_string();
    assert_eq!(check(b.addr, "0.000001")["allowed"], json!(false));
    let r = send(b.addr, "POST", &format!("/v1/reservations/{id}/release"), Some(ADMIN), None);
    assert_eq!((r.status, r.json()["released"].clone()), (200, json!(5)));
    let r = send(a.addr, "POST", &format!("/v1/reservations/{id}/release"), Some(ADMIN), None);
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (404, json!("reservation/unknown")));
    // a commit of more than the hold is recorded (usage is a fact) and flagged
    let v = check(b.addr, "2");
    let id = v["reservation_id"].as_str().unwrap().to_string();
    let commit = |addr, id: &str, body: &str| {
        send(addr, "POST", &format!("/v1/reservations/{id}/commit"), Some(ADMIN), Some(body))
    };
    let r = commit(a.addr, &id, r#"{"credits": 3, "event_id": "e-1"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["committed"].clone(), v["reserved"].clone(), v["over_reservation"].clone()),
        (json!(3), json!(2), json!(true))
    );
    assert_eq!(commit(b.addr, &id, r#"{"credits": 3, "event_id": "e-1"}"#).status, 404);
    // an event id already used for another event is a conflict, and the hold stays open
    let v = check(a.addr, "1");
    let id2 = v["reservation_id"].as_str().unwrap().to_string();
    let r = commit(b.addr, &id2, r#"{"credits": 1, "event_id": "e-1"}"#);
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (409, json!("idempotency/conflict")));
    assert_eq!(commit(a.addr, &id2, r#"{"credits": 1}"#).status, 200);
    assert_eq!(committed_sum(&db.url), "4.000000");
    let audit = pg::query(&db.url, "SELECT action FROM audit WHERE action = 'usage.over_reservation'");
    assert_eq!(audit.len(), 1);
    let alerts = send(b.addr, "GET", "/v1/alerts", Some(ADMIN), None).json();
    assert_eq!(alerts["data"].as_array().unwrap().len(), 1, "{alerts}");
    assert_eq!(
        (alerts["data"][0]["kind"].clone(), alerts["data"][0]["user"].clone()),
        (json!("over_reservation"), json!("bo@x.com"))
    );
}

#[test]
fn limits_read_back_from_either_replica_and_unported_routes_answer_501() {
    let db = pg::database();
    let (a, b) = (replica(&db.url), replica(&db.url));
    let batch = json!({
        "commit": "c1",
        "limits": [
            { "user": "b@x.com", "credits": "12.5", "group": "eng", "per_hour": 2 },
            { "user": "a@x.com", "credits": 7, "models": { "gpt-5": 1 } }
        ],
        "pools": [{ "group": "eng", "credits": 100 }]
    });
    let v = put_limits(a.addr, batch.clone());
    assert_eq!((v["changed"].clone(), v["unchanged"].clone()), (json!(3), json!(0)));
    // the same batch again changes nothing
    let v = put_limits(b.addr, batch);
    assert_eq!((v["changed"].clone(), v["unchanged"].clone()), (json!(0), json!(3)));
    let r = send(b.addr, "GET", "/v1/limits?limit=1", Some(ADMIN), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let page = r.json();
    assert_eq!(page["data"][0]["user"], json!("a@x.com"));
    assert_eq!(page["data"][0]["models"], json!({ "gpt-5": 1 }));
    let next = page["next"].as_str().unwrap().to_string();
    let page = send(b.addr, "GET", &format!("/v1/limits?limit=1&after={next}"), Some(ADMIN), None).json();
    assert_eq!(
        (page["data"][0]["user"].clone(), page["data"][0]["credits"].clone()),
        (json!("b@x.com"), json!(12.5))
    );
    assert_eq!(page["data"][0]["per_hour"], json!(2));
    assert_eq!(send(a.addr, "GET", "/v1/limits", None, None).status, 401);
    let pools = send(a.addr, "GET", "/v1/pools", Some(ADMIN), None).json();
    assert_eq!(
        (pools["data"][0]["group"].clone(), pools["data"][0]["credits"].clone()),
        (json!("eng"), json!(100))
    );
    assert_eq!(pools["has_more"], json!(false));
    for (method, path) in [
        ("GET", "/v1/organization/costs"),
        ("GET", "/v1/audit"),
        ("GET", "/v1/dashboard/summary"),
        ("GET", "/console/"),
    ] {
        let r = send(a.addr, method, path, Some(ADMIN), Some("{}"));
        assert_eq!(r.status, 501, "{method} {path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], json!("store/not-supported"));
        assert!(r.body.contains("PostgreSQL"), "{}", r.body);
    }
    assert_eq!(send(a.addr, "GET", "/v1/nothing-here", Some(ADMIN), None).status, 404);
}

#[test]
fn a_rate_cap_counts_the_last_hours_spend_on_every_replica() {
    let db = pg::database();
    let (a, b) = (replica(&db.url), replica(&db.url));
    put_limits(
        a.addr,
        json!({ "commit": "c1", "limits": [{ "user": "r@x.com", "credits": 100, "per_hour": 3 }] }),
    );
    let check = |addr| {
        send(
            addr,
            "POST",
            "/v1/check",
            Some(ADMIN),
            Some(r#"{"user":"r@x.com","product":"chatgpt","model":"gpt-5","credits":1}"#),
        )
        .json()
    };
    for addr in [a.addr, b.addr, a.addr] {
        let v = check(addr);
        assert_eq!(v["allowed"], json!(true));
        let id = v["reservation_id"].as_str().unwrap().to_string();
        assert_eq!(
            send(
                addr,
                "POST",
                &format!("/v1/reservations/{id}/commit"),
                Some(ADMIN),
                Some(r#"{"credits":1}"#)
            )
            .status,
            200
        );
    }
    let v = check(b.addr);
    assert_eq!((v["allowed"].clone(), v["deciding"].clone()), (json!(false), json!("rate_cap")));
}

#[test]
fn while_the_database_is_down_checks_answer_a_retryable_503_and_service_resumes_by_itself() {
    let cluster = pg::Cluster::start();
    let a = replica(&cluster.url);
    put_limits(a.addr, json!({ "commit": "c1", "limits": [{ "user": "d@x.com", "credits": 10 }] }));
    let check = r#"{"user":"d@x.com","product":"chatgpt","model":"gpt-5","credits":1}"#;
    assert_eq!(send(a.addr, "GET", "/healthz", None, None).status, 200);
    cluster.halt();
    let started = Instant::now();
    let h = send(a.addr, "GET", "/healthz", None, None);
    assert_eq!(h.status, 503, "{}", h.body);
    let r = send(a.addr, "POST", "/v1/check", Some(ADMIN), Some(check));
    // never an allow without the database: a 503 the client retries
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (503, json!("store/unavailable")));
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());
    cluster.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = send(a.addr, "POST", "/v1/check", Some(ADMIN), Some(check));
        if r.status == 200 {
            assert_eq!(r.json()["allowed"], json!(true));
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(send(a.addr, "GET", "/healthz", None, None).status, 200);
}

#[test]
fn usage_ingested_on_one_replica_is_stored_once_and_counts_on_the_other() {
    let db = pg::database();
    let (a, b) = (replica(&db.url), replica(&db.url));
    put_limits(
        a.addr,
        json!({ "commit": "c1", "limits": [{ "user": "in@x.com", "credits": 10, "group": "eng" }] }),
    );
    let now = chrono::Utc::now().timestamp();
    let batch = json!({ "events": [
        { "id": "ev-1", "time": now - 60, "user": "in@x.com", "product": "chatgpt", "model": "gpt-5", "credits": 5 },
        { "id": "ev-2", "time": now - 30, "user": "IN@x.com", "product": "codex", "model": "gpt-5", "credits": "3.000001" }
    ] })
    .to_string();
    let r = send(a.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&batch));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!((v["accepted"].clone(), v["duplicates"].clone()), (json!(2), json!(0)));
    // the same batch retried on the other replica stores nothing again
    let v = send(b.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&batch)).json();
    assert_eq!((v["accepted"].clone(), v["duplicates"].clone()), (json!(0), json!(2)));
    assert_eq!(v["results"][0]["status"], json!("duplicate"));
    // an id reused for another event is refused, and nothing of its batch is stored
    let conflict = json!({ "events": [
        { "id": "ev-3", "time": now, "user": "in@x.com", "product": "chatgpt", "model": "gpt-5", "credits": 1 },
        { "id": "ev-1", "time": now - 60, "user": "in@x.com", "product": "chatgpt", "model": "gpt-5", "credits": 6 }
    ] });
    let r = send(b.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&conflict.to_string()));
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (409, json!("idempotency/conflict")));
    assert_eq!(committed_sum(&db.url), "8.000001");
    assert_eq!(
        pg::query(&db.url, "SELECT DISTINCT project FROM events"),
        vec![vec![Some("eng".to_string())]]
    );
    // the other replica's check counts it
    let v = send(
        b.addr,
        "POST",
        "/v1/check",
        Some(ADMIN),
        Some(r#"{"user":"in@x.com","product":"chatgpt","model":"gpt-5","credits":2}"#),
    )
    .json();
    assert_eq!((v["allowed"].clone(), v["remaining"].clone()), (json!(false), json!(1.999999)));
}

#[test]
fn the_stream_of_either_replica_carries_every_event_once_in_sequence_with_the_same_ids() {
    let db = pg::database();
    let (a, b) = (replica(&db.url), replica(&db.url));
    put_limits(
        a.addr,
        json!({ "commit": "c1", "limits": [{ "user": "s@x.com", "credits": 1000, "group": "eng" }] }),
    );
    let event = |id: &str| {
        json!({ "events": [{ "id": id, "time": chrono::Utc::now().timestamp(), "user": "s@x.com",
            "product": "chatgpt", "model": "gpt-5", "credits": 1 }] })
        .to_string()
    };
    let first = send(a.addr, "POST", "/v1/usage/events", Some(ADMIN), Some(&event("before"))).json();
    let first_seq = first["results"][0]["seq"].as_i64().unwrap();
    // from the start, on the other replica: the event stored on A, with A's sequence as its id
    let mut from_b = common::http::Sse::open(b.addr, "/v1/usage/stream", ADMIN, Some("0"));
    let ev = from_b.next();
    assert_eq!(ev.id.as_deref(), Some(first_seq.to_string().as_str()));
    let data: Value = serde_json::from_str(&ev.data).unwrap();
    assert_eq!((data["id"].clone(), data["project"].clone()), (json!("before"), json!("eng")));
    // writers on both replicas at once, commits included; the stream on A sees them all
    let mut from_a = common::http::Sse::open(a.addr, "/v1/usage/stream", ADMIN, Some(&first_seq.to_string()));
    std::thread::scope(|s| {
        for w in 0..4 {
            let (addr, event) = ([a.addr, b.addr][w % 2], &event);
            s.spawn(move || {
                for n in 0..15 {
                    let r = send(
                        addr,
                        "POST",
                        "/v1/usage/events",
                        Some(ADMIN),
                        Some(&event(&format!("w{w}-{n}"))),
                    );
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            });
        }
    });
    let stored =
        pg::query(&db.url, "SELECT seq::TEXT, id FROM events WHERE id <> 'before' ORDER BY events.seq");
    assert_eq!(stored.len(), 60);
    for stream in [&mut from_a, &mut from_b] {
        let mut got = Vec::new();
        while got.len() < 60 {
            let ev = stream.next();
            let data: Value = serde_json::from_str(&ev.data).unwrap();
            got.push(vec![ev.id, data["id"].as_str().map(str::to_string)]);
        }
        assert_eq!(got, stored);
    }
}

#[test]
fn a_database_name_replaces_the_servers_in_a_url() {
    assert_eq!(pg::with_database("postgres://u@h:5/postgres", "t_1"), "postgres://u@h:5/t_1");
    assert_eq!(pg::with_database("postgres://u@h:5/postgres?x=1", "t_1"), "postgres://u@h:5/t_1?x=1");
    assert_eq!(pg::with_database("postgres://u@h:5", "t_1"), "postgres://u@h:5/t_1");
}

/// The driver's round trip on loopback: a prepared `SELECT 1` on a pooled connection
/// (printed for the record; asserted only to be far from a timeout).
#[test]
fn a_pooled_round_trip_is_well_under_the_request_timeout() {
    let db = pg::database();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = budgit_service::pg::PgConfig { url: db.url.clone(), pool_size: 2 };
    let mut times = rt.block_on(async {
        let store = budgit_service::pg::Pg::open(&config).await.unwrap();
        let client = store.client().await.unwrap();
        let one = client.prepare_cached("SELECT 1").await.unwrap();
        let mut times = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let t = Instant::now();
            client.query_one(&one, &[]).await.unwrap();
            times.push(t.elapsed());
        }
        times
    });
    times.sort_unstable();
    let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    println!("tokio-postgres prepared SELECT 1 on loopback: p50 {p50:?} p99 {p99:?} over 2000");
    assert!(p50 < Duration::from_millis(100), "{p50:?}");
}
