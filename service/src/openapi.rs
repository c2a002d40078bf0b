//! The OpenAPI document describing the API, served at `/openapi.json`.
//!
//! The schemas of the bodies the engine's client shares with the service (limits,
//! pools, reconciler runs: `budgit_engine::workspace::wire`), of every request body the
//! handlers read and of the answers (the dashboard's read views, `/v1/me` and the
//! overrides' included) are generated from those types with schemars, so the document
//! and the code that reads and writes them cannot drift apart; a request's bounds are
//! `#[schemars(...)]` attributes next to the fields the handler checks. What is written
//! here is the paths table (methods, summaries, parameters, statuses, CSV and
//! event-stream alternatives), the error body's schema and the console session's answer.
//! `docs/openapi.json` is this document, checked in, and a test fails when the two
//! differ; `tests/contract.rs` holds the document to the server's real answers and
//! `cli/tests/schemathesis.rs` to what the server accepts and refuses.

use serde_json::{Map, Value, json};

use budgit_engine::workspace::RunSummary;
use budgit_engine::workspace::wire::{PoolRow, SetLimits, SetLimitsAnswer};
use schemars::generate::SchemaSettings;

use crate::api::MAX_PAGE;

/// The schemas of the shared wire types, generated from them, as components.
///
/// One generator, with the deserialize contract: it describes what a reader of the
/// JSON accepts, which is the service for requests and the engine's client for
/// answers (both read these types), and it keeps one schema per type name.
fn wire_schemas() -> serde_json::Map<String, Value> {
    let mut settings = SchemaSettings::draft2020_12().for_deserialize();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    // each type becomes a named component (its `$ref` is what the paths use)
    generator.subschema_for::<SetLimits>();
    generator.subschema_for::<SetLimitsAnswer>();
    generator.subschema_for::<PoolRow>();
    generator.subschema_for::<RunSummary>();
    // the request bodies the service reads, with the bounds its handlers enforce
    generator.subschema_for::<crate::api::check::CheckIn>();
    generator.subschema_for::<crate::api::check::CommitIn>();
    generator.subschema_for::<crate::api::requests::RequestIn>();
    generator.subschema_for::<crate::api::requests::DeclineIn>();
    generator.subschema_for::<crate::api::requests::LeaseIn>();
    generator.subschema_for::<crate::console::proposals::ProposalIn>();
    generator.subschema_for::<crate::console::overrides::LapseIn>();
    generator.subschema_for::<crate::console::overrides::MoveIn>();
    generator.subschema_for::<crate::console::overrides::DefaultIn>();
    generator.subschema_for::<crate::api::events::EventIn>();
    generator.take_definitions(true)
}

/// The schemas of the answers typed in the handlers, as components.
///
/// A generator of its own, with the serialize contract (a field left out when empty is
/// not required): a type both read and answered (`Credits`: zero or more in a request,
/// any amount in an answer) gets a second component, `<name>Answer`, when the two differ.
fn answer_schemas(requests: &Map<String, Value>) -> Map<String, Value> {
    use crate::api::Page;
    use crate::api::check::{AlertRow, CheckOut, CommitOut, ReleaseOut};
    let mut settings = SchemaSettings::draft2020_12().for_serialize();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    generator.subschema_for::<CheckOut<'static>>();
    generator.subschema_for::<CommitOut<'static>>();
    generator.subschema_for::<ReleaseOut>();
    generator.subschema_for::<Page<AlertRow, i64>>();
    generator.subschema_for::<Page<crate::api::limits::LimitOut, String>>();
    generator.subschema_for::<Page<crate::api::limits::AuditOut, i64>>();
    generator.subschema_for::<Page<crate::api::users::UserRow, String>>();
    generator.subschema_for::<crate::api::users::ImportResult>();
    generator.subschema_for::<crate::api::users::Removed>();
    generator.subschema_for::<crate::api::users::Issued>();
    generator.subschema_for::<crate::api::users::Revoked>();
    generator.subschema_for::<crate::api::requests::LeaseOut>();
    generator.subschema_for::<crate::api::events::Ingested>();
    generator.subschema_for::<crate::api::events::CostsPage>();
    generator.subschema_for::<crate::api::users::UserDetail>();
    generator.subschema_for::<Page<PoolRow, ()>>();
    generator.subschema_for::<crate::console::proposals::GroupsOut>();
    generator.subschema_for::<crate::console::overrides::DefaultLimitOut>();
    generator.subschema_for::<crate::console::dashboard::recent::RecentOut<'static>>();
    generator.subschema_for::<Page<crate::console::proposals::ProposalOut, i64>>();
    generator.subschema_for::<crate::api::Health>();
    generator.subschema_for::<crate::api::admin::Rotated>();
    generator.subschema_for::<Page<crate::api::requests::CreditRequestOut, i64>>();
    generator.subschema_for::<crate::console::proposals::StatusOut>();
    generator.subschema_for::<Page<crate::console::proposals::RunOut, i64>>();
    generator.subschema_for::<crate::console::dashboard::runaway::RunawayOut>();
    generator.subschema_for::<Page<crate::console::overrides::OverrideRow, String>>();
    generator.subschema_for::<crate::console::overrides::ReviewOut>();
    generator.subschema_for::<crate::console::dashboard::drill::MixOut>();
    generator.subschema_for::<crate::console::dashboard::drill::TeamOut>();
    generator.subschema_for::<crate::console::dashboard::drill::PersonOut>();
    generator.subschema_for::<crate::console::dashboard::MeOut>();
    generator.subschema_for::<Page<crate::console::dashboard::UserOut, String>>();
    generator.subschema_for::<crate::console::dashboard::SummaryOut>();
    generator.subschema_for::<crate::console::dashboard::TrendOut>();
    generator.subschema_for::<Page<crate::console::dashboard::BreakdownRow, String>>();
    generator.subschema_for::<crate::console::value::Uploaded>();
    generator.subschema_for::<crate::console::value::ValueOut>();
    let mut answers = generator.take_definitions(true);
    let clashes: Vec<String> = answers
        .iter()
        .filter(|(name, schema)| requests.get(*name).is_some_and(|other| other != *schema))
        .map(|(name, _)| name.clone())
        .collect();
    for name in clashes {
        if let Some(schema) = answers.remove(&name) {
            answers.insert(format!("{name}Answer"), schema);
        }
        let (from, to) =
            (format!("#/components/schemas/{name}"), format!("#/components/schemas/{name}Answer"));
        for schema in answers.values_mut() {
            rename_ref(schema, &from, &to);
        }
    }
    answers
}

/// Points every `$ref` to `from` at `to`.
fn rename_ref(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key == "$ref" && v.as_str() == Some(from) {
                    *v = Value::String(to.to_string());
                } else {
                    rename_ref(v, from, to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_ref(v, from, to)),
        _ => {}
    }
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// A request object whose reader refuses fields it does not know (`deny_unknown_fields`).
fn closed(mut schema: Value) -> Value {
    schema["additionalProperties"] = Value::Bool(false);
    schema
}

/// Declares that a successful answer may also be CSV (`format=csv`).
fn with_csv(mut operation: Value, status: &str) -> Value {
    operation["responses"][status]["content"]["text/csv"] =
        json!({ "schema": { "type": "string", "description": "a header row, then one row per item" } });
    operation
}

/// Moves an operation's success answer from 200 to `status` (201 Created, 204 No Content).
fn answers(mut operation: Value, status: &str) -> Value {
    if let Some(responses) = operation["responses"].as_object_mut()
        && let Some(ok) = responses.remove("200")
    {
        responses.insert(status.to_string(), ok);
    }
    operation
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": schema })
}

fn path(name: &str, description: &str) -> Value {
    path_of(name, description, json!({ "type": "string" }))
}

fn path_of(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

/// A user key as the service reads it (`api::canonical_user`): an email, at most 320 bytes.
fn email() -> Value {
    json!({ "type": "string", "format": "email", "maxLength": crate::api::MAX_EMAIL })
}

/// A short name as the service reads it (`api::check_name`).
fn name() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": crate::api::MAX_NAME, "pattern": crate::api::NAME_PATTERN })
}

/// A sequence or id: any 64-bit integer.
fn int64() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": i64::MIN, "maximum": i64::MAX })
}

fn op(
    tag: &str,
    summary: &str,
    params: Vec<Value>,
    request: Option<Value>,
    response: Value,
    errors: &[(&str, &str)],
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert("200".into(), response);
    for (status, description) in errors {
        responses.insert((*status).to_string(), error_response(description));
    }
    let mut o = json!({ "tags": [tag], "summary": summary, "parameters": params, "responses": responses });
    if let Some(r) = request {
        o["requestBody"] = r;
    }
    o
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

const AUTH: &[(&str, &str)] = &[("401", "missing or unknown token"), ("403", "the token may not do this")];

fn errors(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut all = vec![(
        "400",
        "malformed request (also `request/duplicate-key`: a key twice in one object; `request/nul`: a NUL character in a string)",
    )];
    all.extend_from_slice(AUTH);
    all.extend_from_slice(extra);
    all
}

use crate::api::requests::STATUSES as REQUEST_STATUSES;

/// The policy repository's part of the API: groups, proposals, reconciler status.
///
/// Kept out of the main literal, which is already near `json!`'s recursion limit.
fn repository_paths() -> Value {
    let repo_errors = [
        ("404", "no policy repository (`budgit serve --repo DIR`), or no such group or request"),
        ("409", "the approved ref is unknown, or the request is already decided"),
        (
            "422",
            "the change does not pass validation (`diagnostics` in the body), changes nothing, removes a cap the group lacks, or cannot be edited in place: nothing was committed",
        ),
    ];
    let paths = json!({
        "/v1/groups": { "get": op("proposals", "the groups of the policy repository at the approved ref (admin), with members and usage from the applied limits",
            vec![], None, ok("the groups", r("Groups")),
            &errors(&repo_errors[..2])) },
        "/v1/proposals": {
            "post": op("proposals", "propose a group's limit, caps or pool (admin): edits only those values in the group's file, validates the tree as CI does, commits on a new branch `budgit/proposal/<group>-<yyyymmdd-hhmmss>` from the approved ref (the work tree never changes) and returns the plan of that branch",
                vec![], Some(body(r("ProposalIn"))),
                ok("the proposal", r("Proposal")), &errors(&repo_errors)),
            "get": op("proposals", "proposals made, newest first (admin)", paging_params(50, MAX_PAGE, true), None, ok("a page of proposals", r("PageOfProposal")), &errors(&[]))
        },
        "/v1/requests/{id}/propose": { "post": op("requests", "turn a pending credit request into an Override proposal (admin): drafts and checks the Override as `budgit request` does, commits it on a branch and marks the request `proposed`",
            vec![path_of("id", "the request", int64())], None, ok("the proposal", r("Proposal")), &errors(&repo_errors)) },
        "/v1/reconciler/status": {
            "get": op("reconciler", "the reconciler's last run and the 20 before it, newest first (admin)", vec![], None,
                ok("the status", r("ReconcilerStatus")), &errors(&[])),
            "put": op("reconciler", "record a run (admin; `budgit reconcile` sends one after every run)", vec![], Some(body(r("RunSummary"))), ok("stored", r("ReconcilerRun")), &errors(&[("413", "too many failures")]))
        }
    });
    let mut paths = paths;
    // These answer 201 Created.
    for (path, method) in
        [("/v1/proposals", "post"), ("/v1/requests/{id}/propose", "post"), ("/v1/reconciler/status", "put")]
    {
        paths[path][method] = answers(paths[path][method].take(), "201");
    }
    paths
}

/// The `limit` and `after` of a list: its default and largest page, and whether its
/// cursor (`next`) is a whole number (a sequence or id) or a string (a user key).
fn paging_params(default: usize, max: usize, integer_cursor: bool) -> Vec<Value> {
    let cursor = if integer_cursor { int64() } else { json!({ "type": "string" }) };
    vec![
        query(
            "limit",
            &format!("page size (default {default})"),
            json!({ "type": "integer", "minimum": 1, "maximum": max }),
        ),
        query("after", "cursor from `next` of the previous page", cursor),
    ]
}

/// `from` and `to`: a range to show instead of the current budget period, compared with
/// the range of equal length before it.
fn range_params() -> Vec<Value> {
    let bound = json!({ "anyOf": [{ "type": "string", "format": "date" }, { "type": "string", "format": "date-time" }] });
    vec![
        query(
            "from",
            "show this range instead of the current period, from this instant (RFC 3339) or the start of this local date (YYYY-MM-DD, the workspace's time zone); with `to`, at most 400 days, between 2000 and 2100",
            bound.clone(),
        ),
        query(
            "to",
            "the range's end: an instant (exclusive), or a local date (included); with `from`",
            bound,
        ),
    ]
}

/// The console's read views (`/v1/dashboard/*`, `/v1/me`).
///
/// Kept out of the main literal, which is near `json!`'s recursion limit.
fn dashboard_paths() -> Value {
    let now = query(
        "now",
        "evaluate at this instant (RFC 3339) instead of the clock; a user token may only fix it inside the period being shown",
        json!({ "type": "string", "format": "date-time" }),
    );
    let fresh = query(
        "fresh",
        "true: wait for a view holding every write answered before this request; by default the latest view is read at once, at most about a second behind (usage and forecasts in the summary are always current)",
        json!({ "type": "boolean" }),
    );
    let page = |extra: Vec<Value>| -> Vec<Value> {
        let mut all = vec![
            fresh.clone(),
            query(
                "limit",
                "page size (default 50)",
                json!({ "type": "integer", "minimum": 1, "maximum": 1000 }),
            ),
            query(
                "after",
                "cursor from `next` of the previous page",
                json!({ "type": "string", "pattern": "^([-+]?[0-9]{1,38}:[\\s\\S]*)?$" }),
            ),
            query(
                "order",
                "asc or desc (default: desc, asc when sorting by name)",
                json!({ "enum": ["asc", "desc"] }),
            ),
            query("q", "only keys containing this text (case-insensitive)", json!({ "type": "string" })),
            query(
                "format",
                "json (default) or csv: every match, no paging",
                json!({ "enum": ["json", "csv"] }),
            ),
            now.clone(),
        ];
        all.extend(range_params());
        all.extend(extra);
        all
    };
    let with_range = |mut params: Vec<Value>| -> Vec<Value> {
        params.extend(range_params());
        params
    };
    let paths = json!({
        "/v1/dashboard/summary": { "get": op("dashboard", "the workspace gauge (used vs the sum of applied limits), status counts, usage per product and each team's budget (its pool, else the sum of its members' limits; users with a limit and no group are the team `(no group)`) this period (admin); `forecast` is linear: usage so far at the period's burn rate so far, projected to its end; with `from` and `to`, the same figures for that range; the workspace's, each team's and each model's usage stand beside the previous period's (`previous_period`: the range of equal length before a range, else the previous budget period) with the change in percent",
            with_range(vec![now.clone(), fresh.clone()]), None, ok("the summary", r("DashboardSummary")), &errors(&[])) },
        "/v1/dashboard/users": { "get": with_csv(op("dashboard", "every user with a limit or usage this period, filtered, sorted and paged in memory (admin)",
            page(vec![
                query("group", "only members of this group; `(no group)`: users with a limit and no group", json!({ "type": "string" })),
                query("status", "only these statuses (repeatable or comma-separated)", json!({ "type": "array", "items": { "enum": ["ok", "warning", "exceeded", "unlimited"] } })),
                query("sort", "used (default), percent, remaining or email", json!({ "enum": ["used", "percent", "remaining", "email"] })),
            ]), None, ok("a page of users (CSV: one row per match, a column per product)", r("PageOfDashboardUser")), &errors(&[])), "200") },
        "/v1/dashboard/trends": { "get": op("dashboard", "daily credits per product or model over the period so far (local days), and the cumulative forecast from today to the period's last day at the burn rate so far (admin)",
            with_range(vec![query("by", "product (default) or model", json!({ "enum": ["product", "model"] })), now.clone(), fresh.clone()]), None,
            ok("the trend", r("DashboardTrends")),
            &errors(&[])) },
        "/v1/dashboard/breakdown": { "get": with_csv(op("dashboard", "usage this period per user, team, product, model or cost center (the directory's `cost_center` attribute; `(none)` without one, `(not in directory)` for users the directory does not know), sorted and paged (admin)",
            page(vec![
                query("by", "user (default), team (`(no group)`: users with a limit and no group; every team, used or not), product, model or cost_center", json!({ "enum": ["user", "team", "product", "model", "cost_center"] })),
                query("sort", "used (default), events or key", json!({ "enum": ["used", "events", "key"] })),
            ]), None, ok("a page of rows", r("PageOfDashboardBreakdownRow")), &errors(&[])), "200") },
        "/v1/me": { "get": op("dashboard", "the caller: `{\"role\": \"admin\"}` for the admin token; for a user token, that user's budget this period: limit, usage by product and model, forecast (linear, at the burn rate so far), daily usage and the history of the limit from the audit log",
            vec![now, fresh.clone()], None, ok("the caller", r("Me")), &[("400", "`dashboard/bad-now`: `now` is not an RFC 3339 instant; `dashboard/bad-fresh`: `fresh` is not `true` or `false`"), ("401", "missing or unknown token"), ("403", "a user token fixing `now` outside the period being shown")]) }
    });
    let mut paths = paths;
    paths["/v1/usage/events/recent"] = json!({ "get": op("usage", "the latest events, newest first, from the last 500 held in memory (admin): what the console's activity list shows before the stream has sent anything; open `/v1/usage/stream?after=<last_seq>` to continue without a gap",
        vec![
            query("limit", "how many (default 50)", json!({ "type": "integer", "minimum": 1, "maximum": 500 })),
            query("product", "only this product", json!({ "type": "string" })),
            query("group", "only events whose project (the user's group at ingest) is this; `(no group)`: events without one", json!({ "type": "string" })),
        ], None,
        ok("the latest events", r("RecentEvents")),
        &errors(&[])) });
    paths
}

/// The console's drill-down views (`/v1/dashboard/mix`, `/teams/{group}`, `/people/{email}`,
/// `/runaway`); their answers' schemas are generated (`answer_schemas`).
fn drill_paths() -> Map<String, Value> {
    let now = query(
        "now",
        "evaluate at this instant (RFC 3339) instead of the clock",
        json!({ "type": "string", "format": "date-time" }),
    );
    let fresh = query(
        "fresh",
        "true: wait for a view holding every write answered before this request",
        json!({ "type": "boolean" }),
    );
    let paths = json!({
        "/v1/dashboard/mix": { "get": op("dashboard", "credits per product and per model of every team this period (users with a limit and no group are the team `(no group)`), sorted by one product's credits (admin)",
            vec![
                query("by", "team (the only grouping so far)", json!({ "enum": ["team"] })),
                query("product", "the product to sort by (default codex)", json!({ "type": "string" })),
                query("order", "desc (default) or asc", json!({ "enum": ["asc", "desc"] })),
                now.clone(), fresh.clone(), range_params()[0].clone(), range_params()[1].clone(),
            ], None, ok("the mix", r("DashboardMix")), &errors(&[])) },
        "/v1/dashboard/teams/{group}": { "get": op("dashboard", "one team this period (admin): its budget and standing, its members with theirs, usage by product and model, daily usage so far, the proposals for it not merged yet and its members' open credit requests; `(no group)` is the users with a limit and no group",
            vec![path("group", "the group, or `(no group)`"), now.clone(), fresh.clone(), range_params()[0].clone(), range_params()[1].clone()], None, ok("the team", r("DashboardTeamDetail")), &errors(&[("404", "`dashboard/unknown-team`: no such team this period")])) },
        "/v1/dashboard/people/{email}": { "get": op("dashboard", "one person this period (admin): their budget as `/v1/me` answers them, their team and cost center, the applied limit's provenance and their credit requests",
            vec![path_of("email", "the person", email()), now, fresh, range_params()[0].clone(), range_params()[1].clone()], None, ok("the person", r("DashboardPerson")), &errors(&[("404", "`dashboard/unknown-user`: no limit and no usage this period")])) },
        "/v1/dashboard/runaway": { "get": op("dashboard", "runaway spend (admin): people and models whose spend in the last sliding hour is at least `rule.floor` credits and at least `rule.factor` times their hourly baseline (the average hour of the period before it, over at least `rule.min_baseline_hours`), a person's over at least `rule.min_spends` separate spends; largest last hour first",
            vec![], None, ok("the runaway people and models", r("DashboardRunaway")), &errors(&[])) }
    });
    match paths {
        Value::Object(p) => p,
        _ => Map::new(),
    }
}

/// The console's browser session (`/console/session`): a random session id in an HttpOnly cookie.
fn console_session_path() -> Value {
    let session = json!({
        "type": "object",
        "properties": {
            "role": { "enum": ["admin", "user"] },
            "user": { "type": ["string", "null"], "description": "the user of a user token; null for the admin" }
        }
    });
    let header = json!({ "name": "X-Budgit-Console", "in": "header", "required": true, "description": "must be `1`: a cross-site page cannot send it without a CORS preflight, which this service never grants", "schema": { "const": "1" } });
    let mut post = op(
        "console",
        "sign the browser in: checks a token and opens a session: a new random id (stored hashed; never the token) in the `budgit_session` cookie (HttpOnly, SameSite=Strict, Path=/, Max-Age the session's lifetime, Secure with `--cookie-secure` or `X-Forwarded-Proto: https`). The session ends after the idle timeout (default 1 h), at its lifetime (default 12 h), at sign-out, when its token is revoked or the admin token rotated; an expired session answers 401 `auth/session-expired`. Without an `Authorization` header, every endpoint accepts that cookie; a cookie-authenticated request other than GET must also send `X-Budgit-Console: 1`",
        vec![header.clone()],
        Some(body(closed(
            json!({ "type": "object", "required": ["token"], "properties": { "token": { "type": "string" } } }),
        ))),
        ok("who the token belongs to", session),
        &[("400", "malformed request"), ("401", "unknown token"), ("403", "no `X-Budgit-Console: 1` header")],
    );
    post["security"] = json!([]);
    let mut delete = op(
        "console",
        "sign the browser out: ends the session on the server (a copy of the cookie opens nothing afterwards) and clears the cookie",
        vec![header],
        None,
        json!({ "description": "signed out" }),
        &[("403", "no `X-Budgit-Console: 1` header")],
    );
    delete["security"] = json!([]);
    json!({ "post": post, "delete": answers(delete, "204") })
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let dashboard = dashboard_paths();
    let repository = repository_paths();
    let mut document = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "budgit workspace API",
            "version": "1",
            "description": "Applied limits, usage, spend checks with reservations, an OpenAI Costs API compatible view, credit requests, leases and an audit log. Bearer tokens: the admin token sees everything; a user token sees only its own user's usage, limits, checks and requests. Errors are `{\"error\": {\"code\", \"message\"}}`. Bodies are limited to 8 MiB (64 MiB for directory imports), batches to 1000 items."
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/healthz": { "get": { "tags": ["operations"], "summary": "liveness", "security": [], "responses": { "200": ok("up", r("Health")) } } },
            "/metrics": { "get": { "tags": ["operations"], "summary": "Prometheus metrics (text format); with `serve --metrics-token`, only for that bearer token", "security": [], "responses": { "200": { "description": "metrics", "content": { "text/plain": {} } } } } },
            "/openapi.json": { "get": { "tags": ["operations"], "summary": "this document", "security": [], "responses": { "200": ok("the document", json!({ "type": "object" })) } } },
            "/v1/users/import": { "post": op("users", "import a directory (CSV or JSON Lines; `format=csv|jsonl`, else by content type or content); upserts users; bad rows come back as diagnostics",
                vec![query("format", "csv or jsonl", json!({ "enum": ["csv", "jsonl"] }))],
                Some(json!({ "required": true, "content": { "text/csv": {}, "application/x-ndjson": {} } })),
                ok("counts and diagnostics", r("ImportResult")), &errors(&[("413", "body too large")])) },
            "/v1/users/remove": { "post": op("users", "remove people who left the directory, with their tokens (usage and audit stay)",
                vec![], Some(json!({ "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["users"], "properties": { "users": { "type": "array", "items": email() } } } } } })),
                ok("how many were removed", r("RemovedUsers")), &errors(&[])) },
            "/v1/users": { "get": op("users", "list users by email; any other query parameter filters on an attribute (list attributes match a member)",
                paging_params(100, MAX_PAGE, false), None, ok("a page of users", r("PageOfUser")), &errors(&[])) },
            "/v1/users/{email}": { "get": op("users", "one user with the applied limit and this period's usage",
                vec![path_of("email", "the user", email())], None, ok("the user", r("UserDetail")), &errors(&[("404", "unknown user")])) },
            "/v1/users/{email}/tokens": {
                "post": answers(op("users", "issue a user token (admin); the token is shown once, only its hash is stored",
                    vec![path_of("email", "the user", email())], None, ok("the token", r("IssuedToken")), &errors(&[("404", "unknown user")])), "201"),
                "delete": op("users", "revoke every token of a user (admin), and the console sessions signed in with them; a key that cannot be an email is revoked as written, so a revocation is never refused", vec![path("email", "the user")], None, ok("how many", r("RevokedTokens")), &errors(&[]))
            },
            "/v1/admin/token": {
                "post": op("users", "rotate the admin token (admin), without a restart: the old token stops working and every console session signed in with it ends; a restart that still configures the old token refuses to start. Without a body a token is generated and shown once",
                    vec![], Some(body(closed(json!({ "type": "object", "properties": { "token": { "type": "string", "minLength": 32, "description": "the new token, chosen by the caller (not echoed)" } } })))),
                    ok("rotated", r("RotatedToken")),
                    &errors(&[("400", "the new token is shorter than 32 characters (`auth/weak-token`)"), ("409", "the new token is the current one or a rotated-out one (`auth/token-reused`)")]))
            },
            "/v1/limits": {
                "get": op("limits", "applied per-user limits with provenance; a user token sees its own",
                    [paging_params(1000, 10_000, false), vec![query("user", "one user", email()), query("group", "one group", json!({ "type": "string" }))]].concat(),
                    None, ok("a page of limits", r("PageOfAppliedLimit")), &errors(&[])),
                "put": op("limits", "set, remove and report limits, pools and settings in one batch (admin); a value already applied is `unchanged` and writes nothing; each change is audited with the commit and plan digest",
                    vec![], Some(body(r("LimitBatch"))), ok("per-item status", r("LimitBatchResult")), &errors(&[("413", "batch too large")]))
            },
            "/v1/pools": { "get": op("limits", "group pools (admin), in one page", vec![], None, ok("pools", r("PageOfPoolRow")), &errors(&[])) },
            "/v1/audit": { "get": with_csv(op("limits", "the audit log, oldest first (admin); `format=csv` exports it (then `limit` defaults to and may be up to 100000)",
                [paging_params(100, MAX_PAGE, true), vec![
                    query("subject", "a user, group or `request:ID`", json!({ "type": "string" })),
                    query("action", "`limit.set`, `limit.remove`, `pool.set`, `pool.remove`, `settings.set`, `token.issue`, `token.revoke`, `admin_token.rotate`, `request.approved`, `request.declined`", json!({ "type": "string" })),
                    query("actor", "the writer, or the label it gave", json!({ "type": "string" })),
                    query("format", "json (default) or csv", json!({ "enum": ["json", "csv"] }))
                ]].concat(), None, ok("a page of audit rows", r("PageOfAuditRow")), &errors(&[])), "200") },
            "/v1/usage/events": { "post": op("usage", "ingest one event, an array, or `{\"events\": [...]}` (admin); `id` is the idempotency key: a retried event is stored once and reported as a duplicate, the same id for a different payload is 409 `idempotency/conflict`; `credits` from 0 to 1000000, `time` from 2020-01-01 to a day from now",
                vec![], Some(body(json!({ "oneOf": [r("UsageEvent"), { "type": "array", "items": r("UsageEvent"), "minItems": 1, "maxItems": 1000 }, { "type": "object", "required": ["events"], "additionalProperties": false, "properties": { "events": { "type": "array", "items": r("UsageEvent"), "minItems": 1, "maxItems": 1000 } } }] }))),
                ok("per-event status", r("IngestResult")),
                &errors(&[("409", "`idempotency/conflict`: an id already used for a different event (nothing of the batch is stored)"), ("413", "batch too large"), ("422", "`credits/negative`, `credits/too-large`, `usage/time-out-of-window`, `usage/total-too-large` (nothing of the batch is stored)")])) },
            "/v1/usage/stream": { "get": {
                "tags": ["usage"],
                "summary": "server-sent events (`event: usage`) of new usage; `id` is a monotonic sequence; reconnect with `Last-Event-ID` (or `after`) to resume; a user token streams its own events",
                "parameters": [
                    { "name": "Last-Event-ID", "in": "header", "schema": { "type": "string" } },
                    query("after", "resume after this sequence", json!({ "type": "integer" })),
                    query("user", "only this user's events", json!({ "type": "string" })),
                    query("product", "only this product's events", json!({ "type": "string" }))
                ],
                "responses": { "200": { "description": "the stream", "content": { "text/event-stream": {} } }, "401": error_response("missing or unknown token"), "403": error_response("another user's events") }
            } },
            "/v1/organization/costs": { "get": with_csv(op("usage", "OpenAI Costs API compatible daily buckets, amounts in credits; `format=csv` for CSV",
                vec![
                    json!({ "name": "start_time", "in": "query", "required": true, "description": "unix seconds, inclusive", "schema": { "type": "integer" } }),
                    query("end_time", "unix seconds, exclusive (default: now)", json!({ "type": "integer" })),
                    query("bucket_width", "only `1d`", json!({ "const": "1d" })),
                    query("group_by", "repeatable (also `group_by[]`): user_id, project_id (the group), line_item (`product, model`), product, model", json!({ "type": "array", "items": { "enum": ["user_id", "project_id", "line_item", "product", "model"] } })),
                    query("limit", "buckets per page (default 7, at most 180)", json!({ "type": "integer", "minimum": 1, "maximum": 180 })),
                    query("page", "cursor from `next_page`", json!({ "type": "string" })),
                    query("user_id", "only this user", json!({ "type": "string" })),
                    query("project_ids", "repeatable (also `project_ids[]`): only these groups", json!({ "type": "array", "items": { "type": "string" } })),
                    query("line_items", "repeatable (also `line_items[]`): only these exact line items (`product, model`)", json!({ "type": "array", "items": { "type": "string" } })),
                    query("format", "json (default) or csv", json!({ "enum": ["json", "csv"] }))
                ], None, ok("a page of buckets", r("CostsPage")), &errors(&[])), "200") },
            "/v1/check": { "post": op("check", "may this user spend this much on this product and model now? when allowed, the worst case is reserved until committed, released or expired; concurrent checks never overspend a user, a cap or a pool; soft enforcement allows and records an alert; a hold of more than a quarter of the user's pool lives at most 60 seconds",
                vec![], Some(body(r("CheckRequest"))), ok("the decision", r("CheckResponse")), &errors(&[("422", "`credits/too-large`: more than 1000000 credits"), ("429", "`check/too-many-holds`: the user already has 1000 open reservations")])) },
            "/v1/alerts": { "get": op("check", "alerts: `over_limit` (soft enforcement let a spend past a limit) and `over_reservation` (a commit of more than its hold, or after it lapsed); a user token sees its own",
                paging_params(100, MAX_PAGE, true), None, ok("a page of alerts", r("PageOfAlert")), &errors(&[])) },
            "/v1/reservations/{id}/commit": { "post": op("check", "record the actual spend as usage and close the reservation; usage is a fact: more than reserved is recorded even past a limit, and so is a commit up to a day after the hold lapsed (`over_reservation`, with an alert and an audit row `usage.over_reservation`); the limit passed stops the next check",
                vec![path("id", "the reservation")], Some(body(r("CommitRequest"))),
                ok("committed", r("CommitResponse")),
                &errors(&[("404", "unknown reservation, or lapsed more than a day ago"), ("409", "`reservation/busy`: being committed; `idempotency/conflict`: `event_id` already used for another event (the hold stays open)"), ("422", "`credits/negative`, `credits/too-large`")])) },
            "/v1/reservations/{id}/release": { "post": op("check", "give the held credits back", vec![path("id", "the reservation")], None, ok("released", r("ReleaseResponse")), &errors(&[("404", "unknown or expired reservation")])) },
            "/v1/requests": {
                "post": answers(op("requests", "ask for more credits for some days, with a reason and context (a user token asks for itself); for a `product` or `model`, its cap is raised with the total when proposed",
                    vec![], Some(body(r("CreditRequestIn"))),
                    ok("the request", r("CreditRequest")), &errors(&[("400", "malformed request (also `request/duplicate-key`: a key twice in one object; `request/nul`: a NUL character in a string; `requests/bad-need`: both `product` and `model`, or a name a policy cannot hold)"), ("422", "`credits/too-large`: more than 1000000 credits"), ("429", "`requests/too-many-pending`: the user already has 20 pending requests")])), "201"),
                "get": op("requests", "credit requests (admin: all; user: own); open ones move along by themselves (merged, applied, done)", [paging_params(100, MAX_PAGE, true), vec![query("status", "a step of the lifecycle", json!({ "enum": REQUEST_STATUSES }))]].concat(), None, ok("a page of requests", r("PageOfCreditRequest")), &errors(&[]))
            },
            "/v1/requests/{id}/approve": { "post": op("requests", "approve a pending request (admin): status `approved` with the Override it proposes", vec![path_of("id", "the request", int64())], None, ok("the request", r("CreditRequest")), &errors(&[("404", "unknown request"), ("409", "already decided")])) },
            "/v1/requests/{id}/decline": { "post": op("requests", "decline a pending or proposed request with a reason (admin; a proposed request's branch is left for the admin to delete)", vec![path_of("id", "the request", int64())], Some(body(r("DeclineIn"))), ok("the request", r("CreditRequest")), &errors(&[("404", "unknown request"), ("409", "already decided")])) },
            "/v1/groups": repository["/v1/groups"].clone(),
            "/v1/proposals": repository["/v1/proposals"].clone(),
            "/v1/requests/{id}/propose": repository["/v1/requests/{id}/propose"].clone(),
            "/v1/reconciler/status": repository["/v1/reconciler/status"].clone(),
            "/v1/usage/events/recent": dashboard["/v1/usage/events/recent"].clone(),
            "/v1/dashboard/summary": dashboard["/v1/dashboard/summary"].clone(),
            "/v1/dashboard/users": dashboard["/v1/dashboard/users"].clone(),
            "/v1/dashboard/trends": dashboard["/v1/dashboard/trends"].clone(),
            "/v1/dashboard/breakdown": dashboard["/v1/dashboard/breakdown"].clone(),
            "/v1/me": dashboard["/v1/me"].clone(),
            "/console/session": console_session_path(),
            "/v1/leases/{name}": {
                "post": op("leases", "acquire or renew a lease (admin)", vec![path_of("name", "the lease", name())],
                    Some(body(r("LeaseIn"))),
                    ok("held", r("Lease")), &errors(&[("409", "held by another holder (`holder` and `expires_at` in the body)")])),
                "delete": answers(op("leases", "release a lease held by `holder` (admin)",
                    vec![path_of("name", "the lease", name()), json!({ "name": "holder", "in": "query", "required": true, "schema": name() })],
                    None, json!({ "description": "released" }), &errors(&[("404", "no such lease"), ("409", "held by another holder")])), "204")
            }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "object", "required": ["code", "message"], "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
            }
        }
    });
    if let Some(schemas) = document["components"]["schemas"].as_object_mut() {
        let requests = wire_schemas();
        let answers = answer_schemas(&requests);
        schemas.extend(requests);
        schemas.extend(answers);
    }
    if let Some(paths) = document["paths"].as_object_mut() {
        paths.extend(drill_paths());
    }
    if let (Some(paths), Value::Object(more)) = (document["paths"].as_object_mut(), overrides_paths()) {
        paths.extend(more);
    }
    if let (Some(paths), Value::Object(more)) = (document["paths"].as_object_mut(), value_paths()) {
        paths.extend(more);
    }
    document
}

/// Outcomes and the value view (`console/value.rs`).
fn value_paths() -> Value {
    let instant = json!({ "type": "string", "format": "date-time" });
    json!({
        "/v1/outcomes": { "post": op("outcomes", "store outcomes (admin): merged pull requests, resolved tickets, as CSV (header `time,kind,id,repo,user,team`; `repo`, `user`, `team` optional) or JSON Lines (`format=csv|jsonl`, else by content type or content), at most 8 MiB and 100000 outcomes; all or nothing: a bad row refuses the upload with its line and column (`diagnostics`), an id stored with other values is 409, the same outcome again is `unchanged`",
            vec![query("format", "csv or jsonl", json!({ "enum": ["csv", "jsonl"] }))],
            Some(json!({ "required": true, "content": { "text/csv": {}, "application/x-ndjson": {} } })),
            ok("how many were stored", r("OutcomesUploaded")),
            &errors(&[("409", "`outcomes/conflict`: an outcome id is stored with other values"), ("413", "body too large"), ("422", "`outcomes/bad-rows`: rows that cannot be read (`diagnostics`: code, message, file, line, column); `outcomes/time-out-of-window`: a time before 2020 or more than a day ahead")])) },
        "/v1/dashboard/value": { "get": op("dashboard", "where credits go and what they produce (admin): usage per value of an event context key (`context.repo`, `context.ticket`, `context.workflow`; `key: null` for events without it) and per team within each, outcomes per value (a repository's outcomes; a ticket's `ticket` outcomes) and each team's usage, outcomes and credits per outcome, from `since` (default: the start of the period) to `until`",
            vec![
                query("by", "context.repo (default), context.ticket or context.workflow", json!({ "enum": ["context.repo", "context.ticket", "context.workflow"] })),
                query("since", "the first instant counted (default: the start of the current period)", instant.clone()),
                query("until", "the first instant not counted (default: none)", instant.clone()),
                query("now", "the instant whose period `since` defaults to (default: the clock)", instant),
                query("limit", "values shown, largest first (default 50)", json!({ "type": "integer", "minimum": 1, "maximum": 1000 })),
            ], None, ok("the value view", r("DashboardValue")), &errors(&[])) }
    })
}

/// Overrides under review, the default limit and the reconciler's runs
/// (`console/overrides.rs`).
fn overrides_paths() -> Value {
    let status = json!({ "enum": ["active", "upcoming", "expired"] });
    let repo_errors = [
        ("404", "no policy repository (`budgit serve --repo DIR`), or no such override or group"),
        ("409", "the approved ref is unknown"),
        (
            "422",
            "the change does not pass validation (`diagnostics` in the body), changes nothing, concerns an expired override, or cannot be edited in place: nothing was committed",
        ),
    ];
    let mut paths = json!({
        "/v1/overrides": { "get": op("overrides", "every override at the approved ref (admin) with its status and the days left, counted in the Workspace's time zone at the service's clock; soonest expiry first",
            [paging_params(100, MAX_PAGE, false), vec![
                query("status", "only overrides with this status", status.clone()),
                query("expiring_within", "only overrides in force or upcoming that expire within this many days", json!({ "type": "integer", "minimum": 0, "maximum": 3660 })),
                query("user", "only this user's overrides", email())
            ]].concat(), None, ok("a page of overrides", r("PageOfOverrideRow")), &errors(&repo_errors[..2])) },
        "/v1/overrides/review": { "get": op("overrides", "the drift review of the approved ref (admin): people whose overrides were renewed back to back `overrides.review_renewals` times or more, or have been in force without a break for longer than `overrides.review_after_days`, found through the repository's history",
            vec![], None, ok("the review", r("OverrideReview")), &errors(&repo_errors[..2])) },
        "/v1/overrides/{name}/lapse": { "post": op("overrides", "let an override lapse (admin): a proposal removing its file (`how: remove`, the default) or setting its `expires` to today (`how: expire`), committed on a new branch `budgit/lapse/<name>-<yyyymmdd-hhmmss>` from the approved ref with its plan",
            vec![path_of("name", "the override", name())], Some(body(r("LapseIn"))),
            ok("the proposal", r("Proposal")), &errors(&repo_errors)) },
        "/v1/overrides/{name}/move": { "post": op("overrides", "move an override's person into a group (admin): a proposal adding them to the group's `members:` and removing the override, on a new branch `budgit/move/<name>-<yyyymmdd-hhmmss>` with its plan",
            vec![path_of("name", "the override", name())], Some(body(r("MoveIn"))),
            ok("the proposal", r("Proposal")), &errors(&repo_errors)) },
        "/v1/workspace/default": { "get": op("overrides", "the Workspace's default limit at the approved ref (admin), with its period, file and line",
            vec![], None, ok("the default limit", r("DefaultLimit")), &errors(&repo_errors[..2])) },
        "/v1/workspace/default/propose": { "post": op("overrides", "propose the default limit's credits or caps (admin), as a group's limit is proposed: edited in place, validated, committed on a new branch `budgit/proposal/default-<yyyymmdd-hhmmss>` with its plan",
            vec![], Some(body(r("DefaultProposalIn"))),
            ok("the proposal", r("Proposal")), &errors(&repo_errors)) },
        "/v1/reconciler/runs": { "get": op("reconciler", "the reconciler's runs kept (the last 1000), newest first (admin): time, the commit applied, writes and errors",
            [paging_params(50, MAX_PAGE, true), vec![query("ok", "only successful (`true`) or failed (`false`) runs", json!({ "enum": ["true", "false"] }))]].concat(),
            None, ok("a page of runs", r("PageOfReconcilerRun")), &errors(&[])) }
    });
    for path in ["/v1/overrides/{name}/lapse", "/v1/overrides/{name}/move", "/v1/workspace/default/propose"] {
        paths[path]["post"] = answers(paths[path]["post"].take(), "201");
    }
    paths
}
