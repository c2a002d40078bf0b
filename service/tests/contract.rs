//! The OpenAPI document against what the service really answers: every operation of
//! `/openapi.json` is called on a real server (SQLite store, git policy repository) and
//! every answer, success or error, must be declared there: its status, its content type
//! (CSV and event streams included) and a JSON body matching the declared schema
//! (required fields, `additionalProperties`, enums, bounds). A request body schema that
//! allows other fields must belong to an endpoint that accepts them, and one that
//! refuses them must say `additionalProperties: false`.
//!
//! The schema check is a small JSON Schema reader for the keywords the document uses;
//! a keyword it does not know fails the test, so the document cannot outgrow it quietly.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;

use common::http::{Sse, send, try_send};
use common::repo::{RepoServer, ada, commit};
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

const SALES: &str = "apiVersion: budgit/v1
kind: Group
name: sales
selector: 'user.department == \"Sales\"'
priority: 10
limit:
  credits: 500
  products: { codex: 400 }
pool:
  credits: 9000
";

/// Schema keywords the reader below understands (annotations included).
const KNOWN: &[&str] = &[
    "$ref",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "oneOf",
    "minimum",
    "maximum",
    "minLength",
    "maxItems",
    "pattern",
    "format",
    "description",
    "anyOf",
    "default",
    "title",
];

/// Where a value breaks `schema`, as `path: what` lines (empty when it conforms).
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        out.push(format!("{at}: the schema is not an object"));
        return;
    };
    for key in s.keys() {
        if !KNOWN.contains(&key.as_str()) {
            out.push(format!("{at}: the schema keyword `{key}` is not understood by this test"));
        }
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        match doc["components"]["schemas"].get(name) {
            Some(target) => check(doc, target, v, at, out),
            None => out.push(format!("{at}: `{r}` is not defined")),
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| is_type(v, t)) {
            out.push(format!("{at}: {} is not of type {t}", short(v)));
            return;
        }
    }
    if let Some(c) = s.get("const")
        && !same(c, v)
    {
        out.push(format!("{at}: {} is not the constant {c}", short(v)));
    }
    if let Some(Value::Array(options)) = s.get("enum")
        && !options.iter().any(|o| same(o, v))
    {
        out.push(format!("{at}: {} is not one of {}", short(v), Value::Array(options.clone())));
    }
    if let Some(Value::Array(options)) = s.get("oneOf") {
        let matching = options
            .iter()
            .filter(|o| {
                let mut e = Vec::new();
                check(doc, o, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            out.push(format!("{at}: {} matches {matching} of the `oneOf` schemas, not one", short(v)));
        }
    }
    if let Some(Value::Array(options)) = s.get("anyOf")
        && !options.iter().any(|o| {
            let mut e = Vec::new();
            check(doc, o, v, at, &mut e);
            e.is_empty()
        })
    {
        out.push(format!("{at}: {} matches none of the `anyOf` schemas", short(v)));
    }
    if let (Some(n), Some(min)) = (v.as_f64(), s.get("minimum").and_then(Value::as_f64))
        && n < min
    {
        out.push(format!("{at}: {n} is below the minimum {min}"));
    }
    if let (Some(n), Some(max)) = (v.as_f64(), s.get("maximum").and_then(Value::as_f64))
        && n > max
    {
        out.push(format!("{at}: {n} is above the maximum {max}"));
    }
    if let (Some(text), Some(pattern)) = (v.as_str(), s.get("pattern").and_then(Value::as_str)) {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(text) => {}
            Ok(_) => out.push(format!("{at}: {} does not match the pattern {pattern}", short(v))),
            Err(e) => out.push(format!("{at}: the pattern {pattern} does not compile: {e}")),
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for name in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = name.as_str()
                && !obj.contains_key(name)
            {
                out.push(format!("{at}: the required field `{name}` is missing"));
            }
        }
        for (k, field) in obj {
            let here = format!("{at}.{k}");
            match props.and_then(|p| p.get(k)) {
                Some(sub) => check(doc, sub, field, &here, out),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => out.push(format!("{here}: not a declared field")),
                    Some(sub @ Value::Object(_)) => check(doc, sub, field, &here, out),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(schema)) = (v.as_array(), s.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(doc, schema, item, &format!("{at}[{i}]"), out);
        }
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        _ => false,
    }
}

/// JSON equality that reads numbers by value (`1` and `1.0` are one number).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.len() > 120 { format!("{}…", &t[..t.floor_char_boundary(120)]) } else { t }
}

/// The document's path template a concrete path falls under.
fn template<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    doc["paths"].as_object()?.keys().map(String::as_str).find(|t| {
        let tparts: Vec<&str> = t.split('/').collect();
        tparts.len() == parts.len()
            && tparts.iter().zip(&parts).all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
    })
}

/// A server with a policy repository, and the calls made to it, checked as they go.
struct Contract {
    addr: SocketAddr,
    doc: Value,
    /// Operations answered with a success, as `METHOD template`.
    covered: BTreeSet<String>,
    /// Every mismatch found, reported together at the end.
    problems: Vec<String>,
    /// The current admin token (rotated near the end).
    admin: String,
    /// The server and the policy repository it reads.
    server: RepoServer,
}

impl Contract {
    /// Checks one answer against the document; returns its JSON body when it is declared JSON.
    fn verify(
        &mut self,
        method: &str,
        path: &str,
        status: u16,
        content_type: Option<&str>,
        body: &str,
    ) -> Value {
        let Some(t) = template(&self.doc, path) else {
            self.problems.push(format!("{method} {path}: no such path in the document"));
            return Value::Null;
        };
        let t = t.to_string();
        let op = self.doc["paths"][&t][method.to_lowercase()].clone();
        if op.is_null() {
            self.problems.push(format!("{method} {t}: the method is not in the document"));
            return Value::Null;
        }
        let name = format!("{method} {t}");
        let Some(response) = op["responses"].get(status.to_string()) else {
            self.problems.push(format!("{name}: status {status} is not declared ({})", short_text(body)));
            return Value::Null;
        };
        if (200..300).contains(&status) {
            self.covered.insert(name.clone());
        }
        let declared = response.get("content").and_then(Value::as_object);
        let media = content_type.map(|c| c.split(';').next().unwrap_or(c).trim().to_string());
        match (declared, media.as_deref()) {
            (None, None) => Value::Null,
            (None, Some(m)) if body.is_empty() => {
                self.problems.push(format!("{name} {status}: an empty `{m}` body where none is declared"));
                Value::Null
            }
            (None, Some(m)) => {
                self.problems.push(format!("{name} {status}: a `{m}` body where none is declared"));
                Value::Null
            }
            (Some(_), None) => {
                self.problems.push(format!("{name} {status}: no content type, one is declared"));
                Value::Null
            }
            (Some(declared), Some(m)) => {
                let Some(entry) = declared.get(m) else {
                    self.problems.push(format!(
                        "{name} {status}: `{m}` is not a declared content type ({:?})",
                        declared.keys().collect::<Vec<_>>()
                    ));
                    return Value::Null;
                };
                if m != "application/json" {
                    return Value::Null;
                }
                let value: Value = match serde_json::from_str(body) {
                    Ok(v) => v,
                    Err(e) => {
                        self.problems.push(format!("{name} {status}: not JSON ({e})"));
                        return Value::Null;
                    }
                };
                let schema = entry.get("schema").cloned().unwrap_or(json!({}));
                let mut found = Vec::new();
                check(&self.doc, &schema, &value, "body", &mut found);
                for f in found {
                    self.problems.push(format!("{name} {status}: {f}"));
                }
                value
            }
        }
    }

    /// Sends a request with the admin token (or `token`) and checks the answer.
    fn call_as(&mut self, token: Option<&str>, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let r = send(self.addr, method, path, token, body);
        self.verify(method, path, r.status, r.header("content-type"), &r.body);
        // the body as read, so that a mismatch is reported at the end, not by a later step
        (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
    }

    fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let admin = self.admin.clone();
        let body = body.map(|b| b.to_string());
        self.call_as(Some(&admin), method, path, body.as_deref())
    }

    /// Calls an operation that must succeed; returns its JSON body.
    fn ok(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body);
        assert!((200..300).contains(&status), "{method} {path}: {status} {v}");
        v
    }

    /// Sends `body` plus a field no endpoint knows, and checks that the request body
    /// schema says whether such a field is refused. Returns the answer's JSON.
    fn probe_unknown_field(&mut self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let mut with_extra = body;
        with_extra["zz_not_a_field"] = json!(1);
        let (status, v) = self.call(method, path, Some(with_extra));
        let refused =
            status == 400 && v["error"]["message"].as_str().is_some_and(|m| m.contains("unknown field"));
        let t = template(&self.doc, path).unwrap_or_default().to_string();
        let schema = &self.doc["paths"][&t][method.to_lowercase()]["requestBody"]["content"]["application/json"]
            ["schema"];
        let schema = match schema.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                self.doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")].clone()
            }
            None => schema.clone(),
        };
        let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
        if refused != closed {
            self.problems.push(format!(
                "{method} {t}: the server {} unknown fields but the request schema {}",
                if refused { "refuses" } else { "accepts" },
                if closed {
                    "has `additionalProperties: false`"
                } else {
                    "does not say `additionalProperties: false`"
                }
            ));
        }
        (status, v)
    }

    /// [`Contract::probe_unknown_field`], then the call itself when the probe was refused:
    /// the body of the successful answer.
    fn probe_then_ok(&mut self, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = self.probe_unknown_field(method, path, body.clone());
        if (200..300).contains(&status) { v } else { self.ok(method, path, Some(body)) }
    }
}

fn short_text(s: &str) -> String {
    if s.len() > 160 { format!("{}…", &s[..s.floor_char_boundary(160)]) } else { s.to_string() }
}

#[test]
fn every_operation_answers_as_the_openapi_document_says() {
    // a policy repository with one commit: the workspace and a group with a pool
    let server = common::repo::start(|root| {
        common::repo::init(
            root,
            &[("policies/workspace.yaml", WORKSPACE), ("policies/groups/sales.yaml", SALES)],
        )
    });
    let (addr, head) = (server.addr, server.head);
    let doc = serde_json::from_str(&send(addr, "GET", "/openapi.json", None, None).body).unwrap();
    let mut c = Contract {
        addr,
        doc,
        covered: BTreeSet::new(),
        problems: Vec::new(),
        admin: ADMIN.to_string(),
        server,
    };

    // operations
    c.call_as(None, "GET", "/healthz", None);
    c.call_as(None, "GET", "/metrics", None);
    c.call_as(None, "GET", "/openapi.json", None);

    // the directory
    let csv = "email,department\na@acme.com,Sales\nb@acme.com,Sales\ngone@acme.com,Sales\n";
    let (status, _) = c.call_as(Some(ADMIN), "POST", "/v1/users/import?format=csv", Some(csv));
    assert_eq!(status, 200);
    c.probe_unknown_field("POST", "/v1/users/remove", json!({ "users": ["gone@acme.com"] }));
    c.ok("GET", "/v1/users?limit=1", None);
    c.ok("GET", "/v1/users/a@acme.com", None);
    c.call("GET", "/v1/users/nobody@acme.com", None);
    let token = c.ok("POST", "/v1/users/b@acme.com/tokens", None);
    c.ok("DELETE", "/v1/users/b@acme.com/tokens", None);
    let user_token = c.ok("POST", "/v1/users/a@acme.com/tokens", None)["token"].as_str().unwrap().to_string();
    assert!(token["token"].is_string(), "{token}");

    // limits, pools, audit
    let source = json!({ "kind": "group", "name": "sales", "file": "groups/sales.yaml", "line": 4 });
    c.probe_unknown_field(
        "PUT",
        "/v1/limits",
        json!({
            "commit": head.to_string(),
            "limits": [
                { "user": "a@acme.com", "credits": 500, "products": { "codex": 400 }, "group": "sales", "source": source },
                { "user": "b@acme.com", "credits": 500.25, "group": "sales", "source": source },
            ],
            "pools": [{ "group": "sales", "credits": 9000 }],
            "workspace": { "period": "month", "timezone": "UTC", "enforcement": "hard" },
        }),
    );
    c.ok(
        "PUT",
        "/v1/limits",
        Some(json!({
            "commit": head.to_string(),
            "limits": [
                { "user": "a@acme.com", "credits": 500, "products": { "codex": 400 }, "group": "sales", "source": source },
                { "user": "b@acme.com", "credits": 500.25, "group": "sales", "source": source },
            ],
            "pools": [{ "group": "sales", "credits": 9000 }],
        })),
    );
    c.ok("GET", "/v1/limits?limit=1", None);
    c.call_as(Some(&user_token), "GET", "/v1/limits", None);
    c.ok("GET", "/v1/pools", None);
    c.ok("GET", "/v1/audit?limit=2", None);
    c.ok("GET", "/v1/audit?format=csv", None);

    // usage
    let now = chrono::Utc::now().timestamp();
    c.probe_unknown_field(
        "POST",
        "/v1/usage/events",
        json!({ "events": [{ "id": "e1", "time": now, "user": "a@acme.com", "product": "codex", "model": "gpt-5", "credits": 30.5 }] }),
    );
    c.ok(
        "POST",
        "/v1/usage/events",
        Some(json!({ "id": "e2", "time": now, "user": "b@acme.com", "product": "chatgpt", "model": "gpt-5", "credits": 12 })),
    );
    c.ok("GET", "/v1/usage/events/recent?limit=5", None);
    let day = now - now % 86_400;
    c.ok(
        "GET",
        &format!("/v1/organization/costs?start_time={}&group_by=user_id&limit=1", day - 86_400),
        None,
    );
    c.ok("GET", &format!("/v1/organization/costs?start_time={day}&format=csv"), None);
    c.call("GET", "/v1/organization/costs", None);
    {
        // the stream never ends: its status and content type are checked as it opens
        let _open = Sse::open(addr, "/v1/usage/stream?after=0", ADMIN, None);
        c.verify("GET", "/v1/usage/stream", 200, Some("text/event-stream"), "");
    }

    // checks and reservations
    let check = json!({ "user": "a@acme.com", "product": "codex", "model": "gpt-5", "credits": 10 });
    let id =
        c.probe_then_ok("POST", "/v1/check", check.clone())["reservation_id"].as_str().unwrap().to_string();
    c.probe_then_ok("POST", &format!("/v1/reservations/{id}/commit"), json!({ "credits": 4.5 }));
    let id = c.ok("POST", "/v1/check", Some(check))["reservation_id"].as_str().unwrap().to_string();
    c.ok("POST", &format!("/v1/reservations/{id}/release"), None);
    c.call("POST", "/v1/reservations/nope/release", None);
    c.ok(
        "POST",
        "/v1/check",
        Some(json!({ "user": "b@acme.com", "product": "chatgpt", "model": "gpt-5", "credits": 100000 })),
    );
    c.ok("GET", "/v1/alerts", None);

    // credit requests and leases
    let ask = json!({ "user": "a@acme.com", "credits": 100, "days": 7, "reason": "a launch" });
    let r1 = c.probe_then_ok("POST", "/v1/requests", ask.clone())["id"].clone();
    let r2 = c.ok("POST", "/v1/requests", Some(ask.clone()))["id"].clone();
    let r3 = c.ok("POST", "/v1/requests", Some(ask))["id"].clone();
    c.ok("GET", "/v1/requests?status=pending&limit=1", None);
    c.ok("POST", &format!("/v1/requests/{r1}/approve"), None);
    c.call("POST", &format!("/v1/requests/{r1}/approve"), None);
    c.probe_then_ok("POST", &format!("/v1/requests/{r2}/decline"), json!({ "reason": "not now" }));
    c.ok("POST", &format!("/v1/requests/{r3}/propose"), None);
    c.probe_then_ok("POST", "/v1/leases/reconciler", json!({ "holder": "h1", "ttl_seconds": 60 }));
    c.call("POST", "/v1/leases/reconciler", Some(json!({ "holder": "h2", "ttl_seconds": 60 })));
    c.ok("DELETE", "/v1/leases/reconciler?holder=h1", None);

    // the policy repository
    c.ok("GET", "/v1/groups", None);
    c.probe_unknown_field(
        "POST",
        "/v1/proposals",
        json!({ "group": "sales", "credits": 600, "reason": "more" }),
    );
    c.ok("POST", "/v1/proposals", Some(json!({ "group": "sales", "pool": 9500, "reason": "a bigger pool" })));
    c.ok("GET", "/v1/proposals?limit=1", None);
    let run = json!({ "ok": true, "commit": head.to_string(), "applied": 2, "unchanged": 0, "drift": 0, "failures": [], "duration_ms": 12 });
    c.probe_unknown_field("PUT", "/v1/reconciler/status", run.clone());
    c.ok("PUT", "/v1/reconciler/status", Some(run));
    c.ok("GET", "/v1/reconciler/status", None);
    c.ok("GET", "/v1/reconciler/runs?limit=1", None);

    // overrides under review (one committed for b@acme.com), the default limit
    let expires = (chrono::Utc::now() + chrono::Duration::days(10)).format("%Y-%m-%d");
    let launch = format!(
        "apiVersion: budgit/v1\nkind: Override\nname: b-launch\nuser: b@acme.com\nadd:\n  credits: 100\nexpires: {expires}\nreason: a launch\n"
    );
    commit(&c.server.git(), &ada(0), &[("policies/overrides/b-launch.yaml", &launch)], &[], "an override");
    c.ok("GET", "/v1/overrides?status=active&expiring_within=30&limit=1", None);
    c.ok("GET", "/v1/overrides/review", None);
    c.probe_then_ok("POST", "/v1/overrides/b-launch/lapse", json!({ "reason": "the launch is over" }));
    c.probe_then_ok("POST", "/v1/overrides/b-launch/move", json!({ "group": "sales", "reason": "for good" }));
    c.ok("GET", "/v1/workspace/default", None);
    c.probe_then_ok("POST", "/v1/workspace/default/propose", json!({ "credits": 2100, "reason": "more" }));

    // the console's views
    c.ok("GET", "/v1/dashboard/summary", None);
    c.ok("GET", "/v1/dashboard/users?limit=1&fresh=true", None);
    c.ok("GET", "/v1/dashboard/users?format=csv", None);
    c.ok("GET", "/v1/dashboard/trends?by=model", None);
    c.ok("GET", "/v1/dashboard/breakdown?by=product", None);
    c.ok("GET", "/v1/dashboard/breakdown?format=csv", None);
    c.ok("GET", "/v1/dashboard/mix?by=team&product=codex", None);
    c.ok("GET", "/v1/dashboard/runaway", None);
    c.ok("GET", "/v1/dashboard/teams/sales?fresh=true", None);
    c.call("GET", "/v1/dashboard/teams/nobody-here", None);
    c.ok("GET", "/v1/dashboard/people/a%40acme.com", None);
    c.call("GET", "/v1/dashboard/people/nobody%40acme.com", None);
    c.ok("GET", "/v1/me", None);
    c.call_as(Some(&user_token), "GET", "/v1/me", None);

    // outcomes and the value view
    let outcomes =
        "time,kind,id,repo,user,team\n2026-11-02T10:00:00Z,pull_request,acme/api#1,acme/api,a@acme.com,\n";
    let (status, _) = c.call_as(Some(ADMIN), "POST", "/v1/outcomes?format=csv", Some(outcomes));
    assert_eq!(status, 200);
    c.call_as(Some(ADMIN), "POST", "/v1/outcomes?format=csv", Some("time,kind,id\n2026-11-02,Ticket,x\n"));
    let changed = "time,kind,id,repo\n2026-11-02T10:00:00Z,pull_request,acme/api#1,acme/web\n";
    c.call_as(Some(ADMIN), "POST", "/v1/outcomes?format=csv", Some(changed));
    c.ok("GET", "/v1/dashboard/value?since=2020-01-01T00:00:00Z", None);
    c.ok("GET", "/v1/dashboard/value?by=context.ticket&limit=1", None);
    c.call("GET", "/v1/dashboard/value?by=user", None);

    // the browser session
    let console = [("X-Budgit-Console", "1")];
    let body = json!({ "token": user_token }).to_string();
    let r = try_send(addr, "POST", "/console/session", None, Some(&body), &console).unwrap();
    c.verify("POST", "/console/session", r.status, r.header("content-type"), &r.body);
    let cookie = r.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let r =
        try_send(addr, "DELETE", "/console/session", None, None, &[console[0], ("Cookie", &cookie)]).unwrap();
    c.verify("DELETE", "/console/session", r.status, r.header("content-type"), &r.body);

    // errors that every endpoint may give
    c.call_as(None, "GET", "/v1/limits", None);
    c.call_as(Some(&user_token), "GET", "/v1/pools", None);
    c.call("PUT", "/v1/limits", Some(json!({ "commit": 1 })));
    c.call_as(Some(ADMIN), "POST", "/v1/check", Some("{\"user\": 1, \"user\": 2}"));

    // last: the admin token changes
    c.probe_unknown_field(
        "POST",
        "/v1/admin/token",
        json!({ "token": "a-new-admin-token-0123456789abcdef-xyz" }),
    );
    c.ok("POST", "/v1/admin/token", Some(json!({ "token": "a-new-admin-token-0123456789abcdef-xyz" })));
    c.admin = "a-new-admin-token-0123456789abcdef-xyz".into();
    c.ok("POST", "/v1/admin/token", None);

    assert!(
        c.problems.is_empty(),
        "{} answers differ from the document:\n{}",
        c.problems.len(),
        c.problems.join("\n")
    );
    let mut missing = Vec::new();
    for (path, item) in c.doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let name = format!("{} {path}", method.to_uppercase());
            if !c.covered.contains(&name) {
                missing.push(name);
            }
        }
    }
    assert!(missing.is_empty(), "operations never answered with a success here: {missing:#?}");
}
