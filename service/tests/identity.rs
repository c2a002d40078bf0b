//! One person, one key: every spelling of an email reaches the same limit, usage and
//! token scope on a real server on loopback, and hidden characters are refused.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use chrono::Utc;
use common::http::send;
use common::server::{ADMIN, Server, start};
use serde_json::{Value, json};

fn call(s: &Server, token: &str, method: &str, path: &str, body: Value) -> Value {
    let r = send(s.addr, method, path, Some(token), Some(&body.to_string()));
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    r.json()
}

fn refused(s: &Server, method: &str, path: &str, body: Value) -> (u16, String) {
    let r = send(s.addr, method, path, Some(ADMIN), Some(&body.to_string()));
    (r.status, r.json()["error"]["code"].as_str().unwrap_or_default().to_string())
}

fn check(s: &Server, token: &str, user: &str, credits: u32) -> Value {
    call(
        s,
        token,
        "POST",
        "/v1/check",
        json!({ "user": user, "product": "codex", "model": "m", "credits": credits }),
    )
}

#[test]
fn two_spellings_of_one_person_share_one_limit() {
    let s = start();
    call(
        &s,
        ADMIN,
        "PUT",
        "/v1/limits",
        json!({ "commit": "c1", "limits": [{ "user": "Zoe@Acme.com", "credits": 10 }] }),
    );
    // Byte for byte these are different users; as people they are one, with one limit.
    let first = check(&s, ADMIN, "zoe@acme.com", 6);
    assert_eq!((&first["allowed"], &first["remaining"]), (&json!(true), &json!(4)), "{first}");
    let id = first["reservation_id"].as_str().unwrap();
    call(&s, ADMIN, "POST", &format!("/v1/reservations/{id}/commit"), json!({ "credits": 6 }));
    for spelling in ["Zoe@Acme.com", " ZOE@ACME.COM ", "zoe@Acme.com"] {
        let again = check(&s, ADMIN, spelling, 6);
        assert_eq!(
            (&again["allowed"], &again["remaining"], &again["deciding"]),
            (&json!(false), &json!(4), &json!("user")),
            "{spelling}: {again}"
        );
    }
    let limits = call(&s, ADMIN, "GET", "/v1/limits?user=ZOE%40acme.com", Value::Null);
    assert_eq!(limits["data"].as_array().map(Vec::len), Some(1), "{limits}");
    assert_eq!(limits["data"][0]["user"], "zoe@acme.com");

    // A token issued to one spelling acts for every spelling, and for nobody else.
    let token = call(&s, ADMIN, "POST", "/v1/users/ZOE@acme.com/tokens", Value::Null)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let own = check(&s, &token, "Zoe@ACME.com", 4);
    assert_eq!(own["allowed"], true, "{own}");
    let other = send(s.addr, "GET", "/v1/limits?user=bob%40acme.com", Some(&token), None);
    assert_eq!(other.status, 403, "{}", other.body);

    // A directory import keeps one row per person and names both lines of a collision.
    let csv = "email,department\nZoe@acme.com,Eng\nzoe@ACME.com,Sales\nbob@acme.com,Eng\n";
    let r = send(s.addr, "POST", "/v1/users/import", Some(ADMIN), Some(csv));
    assert_eq!(r.status, 200, "{}", r.body);
    let imported = r.json();
    assert_eq!(imported["users"], 2, "{imported}");
    let finding = &imported["diagnostics"][0];
    assert_eq!(
        (&finding["code"], &finding["line"]),
        (&json!("directory/duplicate-user"), &json!(3)),
        "{imported}"
    );
    assert!(
        finding["message"].as_str().unwrap().contains("`Zoe@acme.com` on line 2 and `zoe@ACME.com`"),
        "{finding}"
    );
    let listed = call(&s, ADMIN, "GET", "/v1/users", Value::Null);
    assert_eq!(listed["data"][1]["email"], "zoe@acme.com", "{listed}");

    // Removing the limit under another spelling removes the person's one limit.
    let removed = call(&s, ADMIN, "PUT", "/v1/limits", json!({ "commit": "c2", "remove": ["ZOE@acme.com"] }));
    assert_eq!(removed["results"][0]["status"], "removed", "{removed}");
    let left = call(&s, ADMIN, "GET", "/v1/limits", Value::Null);
    assert_eq!(left["data"], json!([]), "{left}");
}

#[test]
fn usage_under_any_spelling_counts_and_hidden_characters_are_refused() {
    let s = start();
    call(
        &s,
        ADMIN,
        "PUT",
        "/v1/limits",
        json!({ "commit": "c1", "limits": [{ "user": "eve@acme.com", "credits": 10 }] }),
    );
    let now = Utc::now().timestamp();
    let events = json!({ "events": [
        { "id": "e1", "time": now, "user": "Eve@acme.com", "product": "codex", "model": "m", "credits": 4 },
        { "id": "e2", "time": now, "user": "EVE@ACME.COM", "product": "codex", "model": "m", "credits": 2 },
    ]});
    call(&s, ADMIN, "POST", "/v1/usage/events", events);
    let d = check(&s, ADMIN, "eve@acme.com", 5);
    assert_eq!((&d["allowed"], &d["remaining"]), (&json!(false), &json!(4)), "{d}");
    let one = call(&s, ADMIN, "GET", "/v1/users/Eve@Acme.com", Value::Null);
    assert_eq!(one["email"], "eve@acme.com", "{one}");

    // Invisible and bidirectional characters could hide a second person: refused.
    for user in
        ["eve\u{200B}@acme.com", "eve@acme.com\u{202E}", "\u{FEFF}eve@acme.com", "eve\u{2060}@acme.com"]
    {
        let event = json!({ "events": [
            { "id": "e9", "time": now, "user": user, "product": "codex", "model": "m", "credits": 1 }
        ]});
        assert_eq!(refused(&s, "POST", "/v1/usage/events", event), (400, "identity/hidden-character".into()));
        let ask = json!({ "user": user, "product": "codex", "model": "m", "credits": 1 });
        assert_eq!(refused(&s, "POST", "/v1/check", ask), (400, "identity/hidden-character".into()));
        let limits = json!({ "commit": "c2", "limits": [{ "user": user, "credits": 10 }] });
        assert_eq!(refused(&s, "PUT", "/v1/limits", limits), (400, "identity/hidden-character".into()));
        let request = json!({ "user": user, "credits": 5, "days": 3, "reason": "more" });
        assert_eq!(refused(&s, "POST", "/v1/requests", request), (400, "identity/hidden-character".into()));
    }
    // Two spellings of one person in one batch of limits are a duplicate.
    let twice = json!({ "commit": "c3", "limits": [
        { "user": "eve@acme.com", "credits": 10 }, { "user": "Eve@acme.com", "credits": 20 }
    ]});
    assert_eq!(refused(&s, "PUT", "/v1/limits", twice), (400, "limits/duplicate-user".into()));
    // A credit request is stored under the canonical email.
    let request = call(
        &s,
        ADMIN,
        "POST",
        "/v1/requests",
        json!({ "user": "Eve@ACME.com", "credits": 5, "days": 3, "reason": "more" }),
    );
    assert_eq!(request["user"], "eve@acme.com", "{request}");
}
