//! A fake of the Claude Enterprise Admin API: members and per-member spend limits.
//!
//! The endpoints budgit calls, with the shapes of the official `anthropic` SDK's
//! beta organization types (`BetaOrganizationUser`, `BetaSpendLimit`,
//! `BetaSpendSummary`, `SpendLimitDeleteResponse`) and its two page shapes
//! (`SyncPage`: `first_id`/`last_id`/`has_more`; `SyncPageCursor`: `next_page`):
//!
//! - `GET /v1/organizations/users` (`limit`, `after_id`, `before_id`, `email`)
//! - `GET /v1/organizations/spend_limits/effective` (`limit`, `page`, `period[]`, `user_ids[]`)
//! - `GET /v1/organizations/spend_limits` (`limit`, `page`, `scope_type[]`; needs the
//!   `spend-limit-reads-2026-09-26` beta header, as the SDK sends it)
//! - `GET`/`DELETE /v1/organizations/spend_limits/{id}`
//! - `POST /v1/organizations/spend_limits` (upsert by scope and period)
//! - `GET /v1/organizations/spend_limit_increase_requests` (`limit`, `page`, `status[]`,
//!   `actor_ids[]`; most recent first) and `GET …/{id}`, with the SDK's
//!   `BetaSpendLimitIncreaseRequest` shape (a pending one carries the member's live
//!   `spend_summary`)
//! - `POST …/{id}/approve` (`{amount, period?, suppress_notification?}`): writes the
//!   member's user-scope limit at `amount`, as the vendor does, and answers the request
//!   with that `spend_limit`; only a pending request can be approved
//! - `POST …/{id}/deny` (`{suppress_notification?}`): idempotent on a denied request,
//!   400 on an approved one
//! - `GET /v1/organizations/analytics/user_cost_report` (`cost_report`)
//!
//! Every `/v1` call needs a key (`x-api-key` or `Authorization: Bearer`) and an
//! `anthropic-version` header. The `/_fake` routes seed members and organisation
//! limits, create pending increase requests (`/_fake/increase_requests`: only
//! members ask for increases in the vendor's console, there is no API for it), queue faults (a status with `Retry-After`, or a delay) and list the
//! calls made, so tests can count and inspect them (each with `at_us`, when it arrived in
//! microseconds of a monotonic clock, so a test can count calls per time window).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

mod cost_report;

/// The beta a spend-limit list needs, as the SDK sends it.
pub const READS_BETA: &str = "spend-limit-reads-2026-09-26";
/// The periods the API knows.
const PERIODS: [&str; 3] = ["daily", "weekly", "monthly"];
/// Default and largest page sizes.
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 1000;

#[derive(Debug, Clone)]
struct Member {
    id: String,
    email: String,
    name: String,
    added_at: String,
}

#[derive(Debug, Clone)]
struct Limit {
    id: String,
    /// `Some` for a user-scope limit, `None` for the organisation's.
    user_id: Option<String>,
    period: String,
    amount: Option<String>,
    created_at: String,
    updated_at: String,
}

/// A fault to inject: answer `status` (with `Retry-After`) or wait `delay_ms` first.
#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    /// The status to answer instead of the real one; `0` or absent answers normally.
    #[serde(default)]
    pub status: u16,
    /// Seconds for `Retry-After`.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// Milliseconds to wait before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// How many matching calls it hits (default 1).
    #[serde(default = "one")]
    pub times: u32,
    /// Only calls with this method (`GET`, `POST`, `DELETE`).
    #[serde(default)]
    pub method: Option<String>,
    /// Only calls whose path starts with this.
    #[serde(default)]
    pub path: Option<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default)]
struct Org {
    members: BTreeMap<String, Member>,
    limits: BTreeMap<String, Limit>,
    /// (user id or empty for the organisation, period) → limit id.
    by_scope: BTreeMap<(String, String), String>,
    /// Increase requests by id; ids grow with creation, so the newest is last.
    requests: BTreeMap<String, IncreaseRequest>,
    faults: VecDeque<Fault>,
    calls: Vec<Value>,
    next: u64,
    /// Seeded costs, for the cost report.
    costs: Vec<cost_report::Stored>,
}

#[derive(Debug, Clone)]
struct IncreaseRequest {
    id: String,
    user_id: String,
    period: String,
    status: String,
    created_at: String,
    resolved_at: Option<String>,
    /// The key that resolved it (the Admin API acts as a scoped key).
    resolved_by: Option<String>,
}

impl Org {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_{:024}", self.next)
    }
}

type Shared = Arc<Mutex<Org>>;

/// The router of a fresh, empty organisation.
pub fn router() -> Router {
    let state: Shared = Arc::default();
    Router::new()
        .route("/v1/organizations/users", get(users))
        .route("/v1/organizations/spend_limits/effective", get(effective))
        .route("/v1/organizations/spend_limits", get(list_limits).post(set_limit))
        .route("/v1/organizations/spend_limits/{id}", get(get_limit).delete(delete_limit))
        .route("/v1/organizations/spend_limit_increase_requests", get(list_requests))
        .route("/v1/organizations/spend_limit_increase_requests/{id}", get(get_request))
        .route("/v1/organizations/spend_limit_increase_requests/{id}/approve", post(approve_request))
        .route("/v1/organizations/spend_limit_increase_requests/{id}/deny", post(deny_request))
        .route("/_fake/members", post(add_members))
        .route("/_fake/increase_requests", post(add_requests))
        .route("/v1/organizations/analytics/user_cost_report", get(cost_report::user_cost_report))
        .route("/_fake/costs", post(cost_report::add_costs))
        .route("/_fake/org_limit", post(set_org_limit))
        .route("/_fake/faults", post(add_fault).delete(clear_faults))
        .route("/_fake/calls", get(calls).delete(clear_calls))
        .with_state(state)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({
        "type": "error",
        "error": { "type": kind, "message": message },
        "request_id": "req_fake",
    });
    (status, axum::Json(body)).into_response()
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, Org> {
    // A panicked handler must not take the fake down with it.
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The origin of the calls' `at_us`: monotonic, so the spacing of calls is exact.
fn clock_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Records the call, checks the headers, then applies the first matching fault.
async fn gate(
    state: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let fault = {
        let mut org = lock(state);
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let at_us = u64::try_from(clock_start().elapsed().as_micros()).unwrap_or(u64::MAX);
        org.calls.push(
            json!({ "method": method.as_str(), "path": path, "query": query, "body": body, "at_us": at_us }),
        );
        let hit = org.faults.iter().position(|f| {
            f.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method.as_str()))
                && f.path.as_deref().is_none_or(|p| path.starts_with(p))
        });
        hit.and_then(|i| {
            let f = org.faults.get_mut(i)?;
            f.times = f.times.saturating_sub(1);
            let out = f.clone();
            if f.times == 0 {
                org.faults.remove(i);
            }
            Some(out)
        })
    };
    let keyed = headers.get("x-api-key").is_some()
        || headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("Bearer "));
    if !keyed {
        return Some(error(StatusCode::UNAUTHORIZED, "authentication_error", "x-api-key header is required"));
    }
    if headers.get("anthropic-version").is_none() {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version header is required",
        ));
    }
    let fault = fault?;
    if fault.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
    }
    let status = StatusCode::from_u16(fault.status).ok().filter(|s| s.as_u16() >= 400)?;
    let kind = match status.as_u16() {
        429 => "rate_limit_error",
        529 => "overloaded_error",
        s if s >= 500 => "api_error",
        _ => "invalid_request_error",
    };
    let mut response = error(status, kind, "injected fault");
    if let Some(secs) = fault.retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        response.headers_mut().insert("retry-after", v);
    }
    Some(response)
}

/// Query pairs; `key[]` and `key` are the same key (the SDK writes arrays with brackets).
fn pairs(query: &Option<String>) -> Vec<(String, String)> {
    let raw = query.as_deref().unwrap_or("");
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.trim_end_matches("[]").to_string(), v))
        .collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn all<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

fn page_size(pairs: &[(String, String)]) -> Result<usize, Response> {
    match first(pairs, "limit") {
        None => Ok(DEFAULT_PAGE),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(error(StatusCode::BAD_REQUEST, "invalid_request_error", "limit must be from 1 to 1000")),
        },
    }
}

fn user_json(m: &Member) -> Value {
    json!({ "id": m.id, "type": "user", "email": m.email, "name": m.name, "role": "user", "added_at": m.added_at })
}

fn scope_json(user_id: &Option<String>) -> Value {
    match user_id {
        Some(id) => json!({ "type": "user", "user_id": id }),
        None => json!({ "type": "organization" }),
    }
}

fn limit_json(l: &Limit) -> Value {
    json!({
        "id": l.id,
        "type": "spend_limit",
        "amount": l.amount,
        "currency": "USD",
        "is_enabled": true,
        "period": l.period,
        "scope": scope_json(&l.user_id),
        "created_at": l.created_at,
        "updated_at": l.updated_at,
    })
}

async fn users(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let path = "/v1/organizations/users";
    if let Some(r) = gate(&state, &method, path, q.as_deref().unwrap_or(""), &headers, b"").await {
        return r;
    }
    let p = pairs(&q);
    let size = match page_size(&p) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let org = lock(&state);
    let email = first(&p, "email");
    let matching = org.members.values().filter(|m| email.is_none_or(|e| m.email.eq_ignore_ascii_case(e)));
    let rows: Vec<&Member> = match (first(&p, "after_id"), first(&p, "before_id")) {
        (Some(after), _) => matching.filter(|m| m.id.as_str() > after).take(size + 1).collect(),
        (None, Some(before)) => {
            let mut v: Vec<&Member> = matching.filter(|m| m.id.as_str() < before).collect();
            let start = v.len().saturating_sub(size + 1);
            v.drain(..start);
            v
        }
        (None, None) => matching.take(size + 1).collect(),
    };
    let has_more = rows.len() > size;
    let rows: Vec<&Member> = if first(&p, "before_id").is_some() && first(&p, "after_id").is_none() {
        rows.into_iter().rev().take(size).collect::<Vec<_>>().into_iter().rev().collect()
    } else {
        rows.into_iter().take(size).collect()
    };
    axum::Json(json!({
        "data": rows.iter().map(|m| user_json(m)).collect::<Vec<_>>(),
        "has_more": has_more,
        "first_id": rows.first().map(|m| m.id.clone()),
        "last_id": rows.last().map(|m| m.id.clone()),
    }))
    .into_response()
}

async fn effective(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let path = "/v1/organizations/spend_limits/effective";
    if let Some(r) = gate(&state, &method, path, q.as_deref().unwrap_or(""), &headers, b"").await {
        return r;
    }
    let p = pairs(&q);
    let size = match page_size(&p) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let periods = all(&p, "period");
    if let Some(bad) = periods.iter().find(|x| !PERIODS.contains(x)) {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", &format!("unknown period {bad}"));
    }
    let user_ids = all(&p, "user_ids");
    let after = first(&p, "page").unwrap_or("");
    let org = lock(&state);
    let members: Vec<&Member> = org
        .members
        .values()
        .filter(|m| m.id.as_str() > after && (user_ids.is_empty() || user_ids.contains(&m.id.as_str())))
        .take(size + 1)
        .collect();
    let more = members.len() > size;
    let members = &members[..members.len().min(size)];
    let mut data = Vec::new();
    for m in members {
        for period in PERIODS {
            if !periods.is_empty() && !periods.contains(&period) {
                continue;
            }
            if let Some(row) = summary_json(&org, m, period) {
                data.push(row);
            }
        }
    }
    let next = if more { members.last().map(|m| m.id.clone()) } else { None };
    axum::Json(json!({ "data": data, "next_page": next })).into_response()
}

/// The member's row of the effective report for `period`: their own limit, else the
/// organisation's; `None` when no limit applies.
fn summary_json(org: &Org, m: &Member, period: &str) -> Option<Value> {
    let own = org.by_scope.get(&(m.id.clone(), period.to_string()));
    let inherited = org.by_scope.get(&(String::new(), period.to_string()));
    let limit = own.or(inherited).and_then(|id| org.limits.get(id))?;
    Some(json!({
        "actor": { "type": "user_actor", "user_id": m.id, "email_address": m.email, "name": m.name, "deleted": false },
        "amount": limit.amount,
        "currency": "USD",
        "period": period,
        "period_to_date_spend": "0",
        "scope": { "type": "user", "user_id": m.id },
        "source": scope_json(&limit.user_id),
        "spend_limit_id": limit.id,
    }))
}

async fn list_limits(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let path = "/v1/organizations/spend_limits";
    if let Some(r) = gate(&state, &method, path, q.as_deref().unwrap_or(""), &headers, b"").await {
        return r;
    }
    let beta = headers.get("anthropic-beta").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !beta.split(',').any(|b| b.trim() == READS_BETA) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            &format!("this endpoint needs the `{READS_BETA}` beta"),
        );
    }
    let p = pairs(&q);
    let size = match page_size(&p) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let scopes = all(&p, "scope_type");
    let after = first(&p, "page").unwrap_or("");
    let org = lock(&state);
    let rows: Vec<&Limit> = org
        .limits
        .values()
        .filter(|l| l.id.as_str() > after)
        .filter(|l| {
            scopes.is_empty() || scopes.contains(&if l.user_id.is_some() { "user" } else { "organization" })
        })
        .take(size + 1)
        .collect();
    let more = rows.len() > size;
    let rows = &rows[..rows.len().min(size)];
    let next = if more { rows.last().map(|l| l.id.clone()) } else { None };
    axum::Json(json!({ "data": rows.iter().map(|l| limit_json(l)).collect::<Vec<_>>(), "next_page": next }))
        .into_response()
}

async fn get_limit(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/organizations/spend_limits/{id}");
    if let Some(r) = gate(&state, &method, &path, "", &headers, b"").await {
        return r;
    }
    match lock(&state).limits.get(&id) {
        Some(l) => axum::Json(limit_json(l)).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found_error", "spend limit not found"),
    }
}

async fn delete_limit(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let path = format!("/v1/organizations/spend_limits/{id}");
    if let Some(r) = gate(&state, &method, &path, "", &headers, b"").await {
        return r;
    }
    let mut org = lock(&state);
    match org.limits.remove(&id) {
        Some(l) => {
            org.by_scope.remove(&(l.user_id.clone().unwrap_or_default(), l.period.clone()));
            axum::Json(json!({ "id": id, "type": "spend_limit_deleted" })).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "not_found_error", "spend limit not found"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    amount: Option<String>,
    scope: Value,
    #[serde(default)]
    period: Option<String>,
}

async fn set_limit(State(state): State<Shared>, method: Method, headers: HeaderMap, body: Bytes) -> Response {
    let path = "/v1/organizations/spend_limits";
    if let Some(r) = gate(&state, &method, path, "", &headers, &body).await {
        return r;
    }
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, "invalid_request_error", m);
    let Ok(set) = serde_json::from_slice::<SetBody>(&body) else {
        return bad("the body must be {amount, scope, period}");
    };
    let period = set.period.unwrap_or_else(|| "monthly".to_string());
    if !PERIODS.contains(&period.as_str()) {
        return bad("period must be daily, weekly or monthly");
    }
    if let Some(a) = &set.amount
        && (a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) || a.len() > 18)
    {
        return bad("amount must be a non-negative integer decimal string in minor units");
    }
    if set.scope.get("type").and_then(Value::as_str) != Some("user") {
        return bad("Claude Enterprise organizations set user limits");
    }
    let Some(user_id) = set.scope.get("user_id").and_then(Value::as_str).map(str::to_string) else {
        return bad("a user scope needs user_id");
    };
    let mut org = lock(&state);
    if !org.members.contains_key(&user_id) {
        return error(StatusCode::NOT_FOUND, "not_found_error", "no such member");
    }
    let l = upsert(&mut org, &user_id, &period, set.amount);
    axum::Json(limit_json(&l)).into_response()
}

/// Writes the member's own limit for `period` (an upsert by scope and period) and answers it.
fn upsert(org: &mut Org, user_id: &str, period: &str, amount: Option<String>) -> Limit {
    let key = (user_id.to_string(), period.to_string());
    let stamp = now();
    let id = match org.by_scope.get(&key).cloned() {
        Some(id) => id,
        None => {
            let id = org.id("spl");
            org.by_scope.insert(key, id.clone());
            id
        }
    };
    let limit = org.limits.entry(id.clone()).or_insert_with(|| Limit {
        id,
        user_id: Some(user_id.to_string()),
        period: period.to_string(),
        amount: None,
        created_at: stamp.clone(),
        updated_at: stamp.clone(),
    });
    limit.amount = amount;
    limit.updated_at = stamp;
    limit.clone()
}

fn request_json(org: &Org, r: &IncreaseRequest) -> Value {
    let member = org.members.get(&r.user_id);
    let actor = json!({
        "type": "user_actor",
        "user_id": r.user_id,
        "email_address": member.map(|m| m.email.clone()),
        "name": member.map(|m| m.name.clone()),
        "deleted": member.is_none(),
    });
    // Only a pending request carries the member's live row, as the vendor documents.
    let summary = match (&r.status[..], member) {
        ("pending", Some(m)) => summary_json(org, m, &r.period),
        _ => None,
    };
    json!({
        "id": r.id,
        "type": "spend_limit_increase_request",
        "actor": actor,
        "created_at": r.created_at,
        "period": r.period,
        "status": r.status,
        "resolved_at": r.resolved_at,
        "resolved_by": r.resolved_by.as_ref().map(|k| json!({ "type": "scoped_api_key_actor", "scoped_api_key_id": k })),
        "spend_summary": summary,
    })
}

const REQUESTS: &str = "/v1/organizations/spend_limit_increase_requests";
/// The id the fake's Admin API key answers to in `resolved_by`.
pub const FAKE_KEY_ID: &str = "apikey_fake_admin";

async fn list_requests(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if let Some(r) = gate(&state, &method, REQUESTS, q.as_deref().unwrap_or(""), &headers, b"").await {
        return r;
    }
    let p = pairs(&q);
    let size = match page_size(&p) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let statuses = all(&p, "status");
    if let Some(bad) = statuses.iter().find(|s| !["pending", "approved", "denied"].contains(s)) {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", &format!("unknown status {bad}"));
    }
    let actors = all(&p, "actor_ids");
    let before = first(&p, "page");
    let org = lock(&state);
    // Most recent first; the cursor is the last id of the previous page.
    let rows: Vec<&IncreaseRequest> = org
        .requests
        .values()
        .rev()
        .filter(|r| before.is_none_or(|b| r.id.as_str() < b))
        // requests of people who left the organisation are not listed
        .filter(|r| org.members.contains_key(&r.user_id))
        .filter(|r| statuses.is_empty() || statuses.contains(&r.status.as_str()))
        .filter(|r| actors.is_empty() || actors.contains(&r.user_id.as_str()))
        .take(size + 1)
        .collect();
    let more = rows.len() > size;
    let rows = &rows[..rows.len().min(size)];
    let next = if more { rows.last().map(|r| r.id.clone()) } else { None };
    let data: Vec<Value> = rows.iter().map(|r| request_json(&org, r)).collect();
    axum::Json(json!({ "data": data, "next_page": next })).into_response()
}

async fn get_request(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(r) = gate(&state, &method, &format!("{REQUESTS}/{id}"), "", &headers, b"").await {
        return r;
    }
    let org = lock(&state);
    match org.requests.get(&id) {
        Some(r) => axum::Json(request_json(&org, r)).into_response(),
        None => error(StatusCode::NOT_FOUND, "not_found_error", "spend limit increase request not found"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    amount: String,
    #[serde(default)]
    period: Option<String>,
    #[serde(default)]
    suppress_notification: Option<bool>,
}

async fn approve_request(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = gate(&state, &method, &format!("{REQUESTS}/{id}/approve"), "", &headers, &body).await {
        return r;
    }
    let bad = |m: &str| error(StatusCode::BAD_REQUEST, "invalid_request_error", m);
    let Ok(approve) = serde_json::from_slice::<ApproveBody>(&body) else {
        return bad("the body must be {amount, period?, suppress_notification?}");
    };
    let _ = approve.suppress_notification;
    let a = &approve.amount;
    if a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()) || a.len() > 18 {
        return bad("amount must be a non-negative integer decimal string in minor units");
    }
    if approve.period.as_deref().is_some_and(|p| !PERIODS.contains(&p)) {
        return bad("period must be daily, weekly or monthly");
    }
    let mut org = lock(&state);
    let Some(request) = org.requests.get(&id).cloned() else {
        return error(StatusCode::NOT_FOUND, "not_found_error", "spend limit increase request not found");
    };
    if request.status != "pending" {
        return bad(&format!("the request is already {}", request.status));
    }
    // The period defaults to the one the member was blocked on.
    let period = approve.period.unwrap_or_else(|| request.period.clone());
    let limit = upsert(&mut org, &request.user_id, &period, Some(approve.amount));
    let Some(r) = org.requests.get_mut(&id) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "lost the request");
    };
    r.status = "approved".into();
    r.resolved_at = Some(now());
    r.resolved_by = Some(FAKE_KEY_ID.into());
    let r = r.clone();
    let mut out = request_json(&org, &r);
    out["spend_limit"] = limit_json(&limit);
    axum::Json(out).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    #[serde(default)]
    suppress_notification: Option<bool>,
}

async fn deny_request(
    State(state): State<Shared>,
    method: Method,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(r) = gate(&state, &method, &format!("{REQUESTS}/{id}/deny"), "", &headers, &body).await {
        return r;
    }
    // The SDK sends `{}` when nothing is set; an empty body is the same.
    let parsed = if body.is_empty() {
        Ok(DenyBody { suppress_notification: None })
    } else {
        serde_json::from_slice::<DenyBody>(&body)
    };
    let Ok(deny) = parsed else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "the body must be {suppress_notification?}",
        );
    };
    let _ = deny.suppress_notification;
    let mut org = lock(&state);
    let Some(r) = org.requests.get_mut(&id) else {
        return error(StatusCode::NOT_FOUND, "not_found_error", "spend limit increase request not found");
    };
    match r.status.as_str() {
        "approved" => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "the request is already approved",
            );
        }
        "pending" => {
            r.status = "denied".into();
            r.resolved_at = Some(now());
            r.resolved_by = Some(FAKE_KEY_ID.into());
        }
        // denying a denied request is idempotent
        _ => {}
    }
    let r = r.clone();
    axum::Json(request_json(&org, &r)).into_response()
}

#[derive(Deserialize)]
struct NewMember {
    email: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /_fake/members`: adds members (a JSON array of `{email, name}`); answers their ids.
async fn add_members(State(state): State<Shared>, axum::Json(new): axum::Json<Vec<NewMember>>) -> Response {
    let mut org = lock(&state);
    let stamp = now();
    let mut out = Vec::with_capacity(new.len());
    for m in new {
        let id = org.id("user");
        let name = m.name.unwrap_or_else(|| m.email.split('@').next().unwrap_or("").to_string());
        out.push(json!({ "id": id, "email": m.email }));
        org.members.insert(id.clone(), Member { id, email: m.email, name, added_at: stamp.clone() });
    }
    axum::Json(Value::Array(out)).into_response()
}

#[derive(Deserialize)]
struct NewRequest {
    user_id: String,
    #[serde(default)]
    period: Option<String>,
}

/// `POST /_fake/increase_requests` (fake only: members ask in the vendor's console, the
/// Admin API cannot create requests): adds pending requests (a JSON array of `{user_id,
/// period}`, `monthly` by default) and answers them in the API's shape.
async fn add_requests(State(state): State<Shared>, axum::Json(new): axum::Json<Vec<NewRequest>>) -> Response {
    let mut org = lock(&state);
    let mut out = Vec::with_capacity(new.len());
    for n in new {
        let period = n.period.unwrap_or_else(|| "monthly".to_string());
        if !org.members.contains_key(&n.user_id) || !PERIODS.contains(&period.as_str()) {
            return error(StatusCode::BAD_REQUEST, "invalid_request_error", "a member's id and a period");
        }
        let id = org.id("slir");
        let r = IncreaseRequest {
            id: id.clone(),
            user_id: n.user_id,
            period,
            status: "pending".into(),
            created_at: now(),
            resolved_at: None,
            resolved_by: None,
        };
        out.push(request_json(&org, &r));
        org.requests.insert(id, r);
    }
    axum::Json(Value::Array(out)).into_response()
}

#[derive(Deserialize)]
struct OrgLimit {
    period: String,
    amount: Option<String>,
}

/// `POST /_fake/org_limit`: sets the organisation's limit for a period, which members inherit.
async fn set_org_limit(State(state): State<Shared>, axum::Json(set): axum::Json<OrgLimit>) -> Response {
    let mut org = lock(&state);
    let key = (String::new(), set.period.clone());
    let id = match org.by_scope.get(&key).cloned() {
        Some(id) => id,
        None => org.id("spl"),
    };
    org.by_scope.insert(key, id.clone());
    let stamp = now();
    org.limits.insert(
        id.clone(),
        Limit {
            id: id.clone(),
            user_id: None,
            period: set.period,
            amount: set.amount,
            created_at: stamp.clone(),
            updated_at: stamp,
        },
    );
    axum::Json(json!({ "id": id })).into_response()
}

async fn add_fault(State(state): State<Shared>, axum::Json(fault): axum::Json<Fault>) -> StatusCode {
    lock(&state).faults.push_back(fault);
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(state): State<Shared>) -> StatusCode {
    lock(&state).faults.clear();
    StatusCode::NO_CONTENT
}

/// `GET /_fake/calls`: every `/v1` call so far, in order (`method`, `path`, `query`, `body`, `at_us`).
async fn calls(State(state): State<Shared>) -> Response {
    axum::Json(Value::Array(lock(&state).calls.clone())).into_response()
}

async fn clear_calls(State(state): State<Shared>) -> StatusCode {
    lock(&state).calls.clear();
    StatusCode::NO_CONTENT
}
