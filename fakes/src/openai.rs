//! A fake OpenAI Admin API: the Costs API, organization users and projects, and the
//! organization and project spend limits and spend alerts.
//!
//! Shapes follow the official `openai` SDK's generated types
//! (`openai.types.admin.organization`): `UsageCostsResponse` pages with daily
//! buckets and an opaque `next_page` cursor; `SyncConversationCursorPage` lists
//! (`data`, `first_id`, `last_id`, `has_more`, paged with `after`);
//! `OrganizationSpendLimit`, `ProjectSpendLimit` (amounts in cents, monthly);
//! spend alerts and their `*.deleted` answers; errors as
//! `{"error":{"message","type","param","code"}}`. Every `/v1` call needs
//! `Authorization: Bearer <admin key>`.
//!
//! A test seeds the fake through [`Fake`]'s methods (in process) or the `/_fake/*`
//! endpoints (out of process), and scripts faults that apply to the next API calls
//! in order: 429 with `Retry-After`, 500, or an answer delayed by some milliseconds.
//! In process a test can also cap every page at a small size ([`Fake::set_page_size`]),
//! and hold writes ([`Fake::hold_writes`]): after some writes, each further write
//! is parked without an answer (applied first, or never applied) until the test
//! lets it go, and the test learns through [`Fake::wait_held`] that one is parked,
//! so it can kill the client at exactly that point.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

/// The environment variable the official SDK reads the admin key from.
pub const ADMIN_KEY_ENV: &str = "OPENAI_ADMIN_KEY";

const DAY: i64 = 86_400;

/// One cost line the fake reports: booked in the daily bucket holding `time`.
#[derive(Debug, Clone, Deserialize)]
pub struct Cost {
    /// Unix seconds within the day the cost belongs to.
    pub time: i64,
    /// The OpenAI user id (`user-…`), absent for costs no user is attributed.
    #[serde(default)]
    pub user_id: Option<String>,
    /// The project id (`proj_…`).
    #[serde(default)]
    pub project_id: Option<String>,
    /// The line item (`gpt-5, input`).
    pub line_item: String,
    /// The amount in US dollars as exact decimal text (`0.125`).
    pub amount: String,
}

/// An organization member.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// `user-…`.
    pub id: String,
    /// The member's email.
    pub email: String,
    /// A display name.
    #[serde(default)]
    pub name: String,
}

/// A project.
#[derive(Debug, Clone, Deserialize)]
pub struct Project {
    /// `proj_…`.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// A scripted fault, applied to the next API call.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// 429 with `Retry-After: seconds`.
    TooMany {
        /// The `Retry-After` value.
        retry_after: u64,
    },
    /// 500.
    ServerError,
    /// The answer is delayed.
    Slow {
        /// How long.
        millis: u64,
    },
}

#[derive(Debug, Default)]
struct Data {
    admin_key: String,
    users: Vec<User>,
    projects: Vec<Project>,
    costs: Vec<Cost>,
    org_limit: Option<Value>,
    project_limits: BTreeMap<String, Value>,
    /// Alerts by scope: `""` for the organization, else a project id.
    alerts: BTreeMap<String, Vec<Value>>,
    next_id: u64,
    faults: VecDeque<Fault>,
    calls: BTreeMap<String, u64>,
    /// The largest page any list or the Costs API answers, whatever `limit` asks.
    page_size: Option<usize>,
    /// Writes are held after this many more.
    hold: Option<Hold>,
    /// The writes applied, `METHOD path`, in order.
    writes: Vec<String>,
    held: Arc<Held>,
}

/// Which writes are held, and how.
#[derive(Debug, Clone, Copy)]
struct Hold {
    /// Writes still let through before holding starts.
    after: u64,
    /// A held write is applied before it is parked (the answer is what is lost).
    applied: bool,
}

/// Parked writes, and the signals between them and the test.
#[derive(Debug, Default)]
struct Held {
    parked: Mutex<u64>,
    changed: Condvar,
    release: tokio::sync::Notify,
}

/// The fake's state, shared by the server and the test that drives it.
#[derive(Debug, Clone, Default)]
pub struct Fake(Arc<Mutex<Data>>);

impl Fake {
    /// A fake accepting `admin_key` as the bearer token.
    pub fn new(admin_key: &str) -> Fake {
        let fake = Fake::default();
        fake.lock().admin_key = admin_key.to_string();
        fake
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        // a test that panicked while holding the lock leaves data that is still usable
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds members.
    pub fn add_users(&self, users: impl IntoIterator<Item = User>) {
        self.lock().users.extend(users);
    }

    /// Adds projects.
    pub fn add_projects(&self, projects: impl IntoIterator<Item = Project>) {
        self.lock().projects.extend(projects);
    }

    /// Adds cost lines.
    pub fn add_costs(&self, costs: impl IntoIterator<Item = Cost>) {
        self.lock().costs.extend(costs);
    }

    /// Queues faults for the next API calls, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.lock().faults.extend(faults);
    }

    /// How many API calls reached `path` (`/v1/organization/costs`), faults included.
    pub fn calls(&self, path: &str) -> u64 {
        self.lock().calls.get(path).copied().unwrap_or(0)
    }

    /// Caps every page the lists and the Costs API answer at `size` items (or buckets),
    /// whatever `limit` asks: the cursors then carry a client through many pages.
    pub fn set_page_size(&self, size: usize) {
        self.lock().page_size = Some(size.max(1));
    }

    /// After the next `after` writes (POST or DELETE), holds every write: parked with
    /// no answer until [`Fake::release`]. When `applied`, a held write is applied
    /// first (the vendor did it, the client never hears); otherwise it is never
    /// applied, and is refused with a 503 when let go.
    pub fn hold_writes(&self, after: u64, applied: bool) {
        self.lock().hold = Some(Hold { after, applied });
    }

    /// Waits until `n` writes in all have been parked, at most `timeout`; true if they were.
    pub fn wait_held(&self, n: u64, timeout: std::time::Duration) -> bool {
        let held = self.lock().held.clone();
        let parked = held.parked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (parked, _) = held
            .changed
            .wait_timeout_while(parked, timeout, |p| *p < n)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *parked >= n
    }

    /// Stops holding writes, and lets every parked one go.
    pub fn release(&self) {
        let held = {
            let mut data = self.lock();
            data.hold = None;
            data.held.clone()
        };
        held.release.notify_waiters();
    }

    /// The writes applied (a 2xx answer to a POST or DELETE), `METHOD path`, in order.
    pub fn writes(&self) -> Vec<String> {
        self.lock().writes.clone()
    }
}

/// Serves the fake on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, fake: Fake) -> std::io::Result<()> {
    axum::serve(listener, router(fake)).await
}

/// Starts the fake on a loopback port in a thread of its own, for in-process tests;
/// it serves until the process ends.
pub fn start(fake: Fake) -> std::io::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                let _ = serve(listener, fake).await;
            }
        });
    });
    Ok(addr)
}

/// The fake's routes.
pub fn router(fake: Fake) -> Router {
    let api = Router::new()
        .route("/v1/organization/costs", get(costs))
        .route("/v1/organization/users", get(users))
        .route("/v1/organization/projects", get(projects))
        .route(
            "/v1/organization/spend_limit",
            get(org_limit_get).post(org_limit_set).delete(org_limit_delete),
        )
        .route("/v1/organization/spend_alerts", get(org_alerts_list).post(org_alert_create))
        .route(
            "/v1/organization/spend_alerts/{alert}",
            get(org_alert_get).post(org_alert_update).delete(org_alert_delete),
        )
        .route(
            "/v1/organization/projects/{project}/spend_limit",
            get(project_limit_get).post(project_limit_set).delete(project_limit_delete),
        )
        .route(
            "/v1/organization/projects/{project}/spend_alerts",
            get(project_alerts_list).post(project_alert_create),
        )
        .route(
            "/v1/organization/projects/{project}/spend_alerts/{alert}",
            get(project_alert_get).post(project_alert_update).delete(project_alert_delete),
        )
        .layer(axum::middleware::from_fn_with_state(fake.clone(), gate));
    Router::new()
        .route("/_fake/users", post(seed_users))
        .route("/_fake/projects", post(seed_projects))
        .route("/_fake/costs", post(seed_costs))
        .route("/_fake/faults", post(seed_faults))
        .merge(api)
        .with_state(fake)
}

/// An error in the shape the SDK raises from.
fn error(status: StatusCode, kind: &str, code: Option<&str>, message: &str) -> Response {
    let body = json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    (status, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", None, message)
}

fn not_found(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "invalid_request_error", None, message)
}

/// Counts the call, checks the admin key, then applies the next scripted fault.
async fn gate(State(fake): State<Fake>, headers: HeaderMap, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().clone();
    let write = method == axum::http::Method::POST || method == axum::http::Method::DELETE;
    let (key_ok, fault) = {
        let mut data = fake.lock();
        *data.calls.entry(path.clone()).or_default() += 1;
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let key_ok =
            matches!(given, Some(k) if !k.is_empty() && (data.admin_key.is_empty() || k == data.admin_key));
        (key_ok, if key_ok { data.faults.pop_front() } else { None })
    };
    if !key_ok {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided.",
        );
    }
    match fault {
        Some(Fault::TooMany { retry_after }) => {
            let mut r = error(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests.",
            );
            if let Ok(v) = retry_after.to_string().parse() {
                r.headers_mut().insert("retry-after", v);
            }
            r
        }
        Some(Fault::ServerError) => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", None, "The server had an error.")
        }
        Some(Fault::Slow { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            write_through(&fake, write, &format!("{method} {path}"), request, next).await
        }
        None => write_through(&fake, write, &format!("{method} {path}"), request, next).await,
    }
}

/// Runs the call, recording a write that was applied, and parking it when writes are held.
async fn write_through(fake: &Fake, write: bool, call: &str, request: Request, next: Next) -> Response {
    let hold = {
        let mut data = fake.lock();
        match data.hold.as_mut() {
            Some(h) if write && h.after > 0 => {
                h.after -= 1;
                None
            }
            Some(h) if write => Some((h.applied, data.held.clone())),
            _ => None,
        }
    };
    let Some((applied, held)) = hold else {
        let response = next.run(request).await;
        if write && response.status().is_success() {
            fake.lock().writes.push(call.to_string());
        }
        return response;
    };
    let response = if applied {
        let response = next.run(request).await;
        if response.status().is_success() {
            fake.lock().writes.push(call.to_string());
        }
        Some(response)
    } else {
        None
    };
    // Registered before the test can hear of it, so a release cannot slip past.
    let released = held.release.notified();
    tokio::pin!(released);
    released.as_mut().enable();
    {
        let mut parked = held.parked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *parked += 1;
        held.changed.notify_all();
    }
    released.await;
    response.unwrap_or_else(|| {
        error(StatusCode::SERVICE_UNAVAILABLE, "server_error", None, "The write was held and not applied.")
    })
}

/// Query pairs; `name[]` (the SDK's array encoding) counts as `name`.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Result<Query, Response> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| bad_request("Invalid query string."))?;
        Ok(Query(pairs.into_iter().map(|(k, v)| (k.trim_end_matches("[]").to_string(), v)).collect()))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    fn int(&self, name: &str) -> Result<Option<i64>, Response> {
        self.get(name)
            .map(|v| v.parse::<i64>().map_err(|_| bad_request(&format!("Invalid integer for '{name}'."))))
            .transpose()
    }

    fn limit(&self, default: i64, max: i64) -> Result<usize, Response> {
        match self.int("limit")?.unwrap_or(default) {
            n if (1..=max).contains(&n) => Ok(usize::try_from(n).unwrap_or(1)),
            _ => Err(bad_request(&format!("'limit' must be between 1 and {max}."))),
        }
    }
}

/// Exact decimal text as twelfths-of-a-decimal-place integers (10⁻¹² dollars).
fn parse_amount(text: &str) -> Option<i128> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || frac.len() > 12 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let w: i128 = whole.parse().ok()?;
    let f: i128 = format!("{frac:0<12}").parse().ok()?;
    w.checked_mul(1_000_000_000_000)?.checked_add(f)
}

/// The JSON number for an amount, its exact decimal text.
fn amount_json(units: i128) -> Value {
    let whole = units / 1_000_000_000_000;
    let frac = units % 1_000_000_000_000;
    let text = if frac == 0 {
        format!("{whole}.0")
    } else {
        format!("{whole}.{}", format!("{frac:012}").trim_end_matches('0'))
    };
    text.parse::<serde_json::Number>().map(Value::Number).unwrap_or(Value::Null)
}

/// A result's grouping: user id, project id, line item (each `None` when not grouped by).
type GroupKey = (Option<String>, Option<String>, Option<String>);

/// `GET /v1/organization/costs`.
async fn costs(State(fake): State<Fake>, RawQuery(raw): RawQuery) -> Response {
    let q = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let start = match q.int("start_time") {
        Ok(Some(s)) => s,
        Ok(None) => return bad_request("Missing required parameter: 'start_time'."),
        Err(r) => return r,
    };
    let end = match q.int("end_time") {
        Ok(e) => e.unwrap_or(start + 7 * DAY),
        Err(r) => return r,
    };
    if end <= start {
        return bad_request("'end_time' must be after 'start_time'.");
    }
    if q.get("bucket_width").is_some_and(|w| w != "1d") {
        return bad_request("Invalid value for 'bucket_width': only '1d' is supported.");
    }
    let cap = fake.lock().page_size;
    let limit = match q.limit(7, 180) {
        Ok(n) => cap.map_or(n, |c| n.min(c)),
        Err(r) => return r,
    };
    let group_by = q.all("group_by");
    if let Some(bad) = group_by
        .iter()
        .find(|g| !["project_id", "user_id", "line_item", "api_key_id", "api_source"].contains(g))
    {
        return bad_request(&format!("Invalid value for 'group_by': '{bad}'."));
    }
    let by = |name: &str| group_by.contains(&name);
    // the cursor is opaque to clients: here the start of the page's first bucket
    let first = match q.get("page") {
        None => start,
        Some(p) => match p.strip_prefix("page_").and_then(|n| n.parse::<i64>().ok()) {
            Some(b) if b > start && b < end && (b - start) % DAY == 0 => b,
            _ => return bad_request("Invalid 'page' cursor."),
        },
    };
    let mut starts = Vec::new();
    let mut b = first;
    while b < end && starts.len() < limit {
        starts.push(b);
        b += DAY;
    }
    let has_more = b < end;
    let project_ids = q.all("project_ids");
    let line_items = q.all("line_items");
    let data = fake.lock();
    let mut buckets = Vec::new();
    for s in starts {
        let mut groups: BTreeMap<GroupKey, i128> = BTreeMap::new();
        for c in data.costs.iter().filter(|c| c.time >= s && c.time < s + DAY) {
            if !project_ids.is_empty() && !c.project_id.as_deref().is_some_and(|p| project_ids.contains(&p)) {
                continue;
            }
            if !line_items.is_empty() && !line_items.contains(&c.line_item.as_str()) {
                continue;
            }
            let key = (
                c.user_id.clone().filter(|_| by("user_id")),
                c.project_id.clone().filter(|_| by("project_id")),
                Some(c.line_item.clone()).filter(|_| by("line_item")),
            );
            *groups.entry(key).or_default() += parse_amount(&c.amount).unwrap_or(0);
        }
        let results: Vec<Value> = groups
            .into_iter()
            .map(|((user_id, project_id, line_item), units)| {
                json!({
                    "object": "organization.costs.result",
                    "amount": { "value": amount_json(units), "currency": "usd" },
                    "line_item": line_item,
                    "project_id": project_id,
                    "user_id": user_id,
                })
            })
            .collect();
        buckets.push(json!({ "object": "bucket", "start_time": s, "end_time": s + DAY, "results": results }));
    }
    let next_page = has_more.then(|| format!("page_{b}"));
    Json(json!({ "object": "page", "data": buckets, "has_more": has_more, "next_page": next_page }))
        .into_response()
}

/// A `SyncConversationCursorPage` of `items` (each with an `id`), paged with `after`.
fn list_page(items: Vec<Value>, q: &Query, cap: Option<usize>) -> Response {
    let limit = match q.limit(20, 100) {
        Ok(n) => cap.map_or(n, |c| n.min(c)),
        Err(r) => return r,
    };
    let from = match q.get("after") {
        None => 0,
        Some(after) => match items.iter().position(|i| i["id"] == after) {
            Some(p) => p + 1,
            None => return bad_request("Invalid 'after' cursor."),
        },
    };
    let page: Vec<Value> = items.iter().skip(from).take(limit).cloned().collect();
    let has_more = from + page.len() < items.len();
    let id = |v: Option<&Value>| v.map_or(Value::Null, |v| v["id"].clone());
    Json(json!({
        "object": "list",
        "data": page,
        "first_id": id(page.first()),
        "last_id": id(page.last()),
        "has_more": has_more,
    }))
    .into_response()
}

/// `GET /v1/organization/users`.
async fn users(State(fake): State<Fake>, RawQuery(raw): RawQuery) -> Response {
    let q = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let emails = q.all("emails");
    let items = fake
        .lock()
        .users
        .iter()
        .filter(|u| emails.is_empty() || emails.contains(&u.email.as_str()))
        .map(|u| {
            json!({
                "object": "organization.user",
                "id": u.id,
                "email": u.email,
                "name": u.name,
                "role": "reader",
                "added_at": 1_735_689_600,
            })
        })
        .collect();
    let cap = fake.lock().page_size;
    list_page(items, &q, cap)
}

/// `GET /v1/organization/projects`.
async fn projects(State(fake): State<Fake>, RawQuery(raw): RawQuery) -> Response {
    let q = match Query::parse(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let items = fake
        .lock()
        .projects
        .iter()
        .map(|p| {
            json!({
                "object": "organization.project",
                "id": p.id,
                "name": p.name,
                "created_at": 1_735_689_600,
                "archived_at": null,
                "status": "active",
            })
        })
        .collect();
    let cap = fake.lock().page_size;
    list_page(items, &q, cap)
}

/// The body of a spend limit update (`SpendLimitUpdateParams`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    currency: String,
    interval: String,
    threshold_amount: i64,
    #[serde(default)]
    notification_channel: Option<Value>,
}

/// The body of a spend alert create or update (`SpendAlertCreateParams`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertBody {
    currency: String,
    interval: String,
    threshold_amount: i64,
    notification_channel: Value,
}

fn check_money(currency: &str, interval: &str, threshold: i64) -> Result<(), Response> {
    if currency != "USD" {
        return Err(bad_request("Invalid value for 'currency': only 'USD' is supported."));
    }
    if interval != "month" {
        return Err(bad_request("Invalid value for 'interval': only 'month' is supported."));
    }
    if threshold < 0 {
        return Err(bad_request("'threshold_amount' must not be negative."));
    }
    Ok(())
}

fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| bad_request(&format!("Invalid body: {e}")))
}

/// A spend limit object; `enforcing` once this month's costs in scope reach it.
fn limit_object(object: &str, body: &LimitBody, spent_cents: i128) -> Value {
    let status = if i128::from(body.threshold_amount) <= spent_cents { "enforcing" } else { "inactive" };
    json!({
        "object": object,
        "currency": body.currency,
        "interval": body.interval,
        "threshold_amount": body.threshold_amount,
        "enforcement": { "status": status },
        "notification_channel": body.notification_channel,
    })
}

fn has_project(data: &Data, project: &str) -> bool {
    data.projects.iter().any(|p| p.id == project)
}

/// Costs in cents of the calendar month holding the latest cost, for one scope.
fn month_cents(data: &Data, project: Option<&str>) -> i128 {
    let Some(latest) = data.costs.iter().map(|c| c.time).max() else { return 0 };
    // a month is approximated by the 31 days ending at the latest cost: the fake only
    // needs `enforcing` to flip once spend passes the limit
    data.costs
        .iter()
        .filter(|c| c.time > latest - 31 * DAY && project.is_none_or(|p| c.project_id.as_deref() == Some(p)))
        .map(|c| parse_amount(&c.amount).unwrap_or(0))
        .sum::<i128>()
        / 10_000_000_000
}

async fn org_limit_get(State(fake): State<Fake>) -> Response {
    match fake.lock().org_limit.clone() {
        Some(v) => Json(v).into_response(),
        None => not_found("No spend limit is set for this organization."),
    }
}

async fn org_limit_set(State(fake): State<Fake>, body: axum::body::Bytes) -> Response {
    let body: LimitBody = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_money(&body.currency, &body.interval, body.threshold_amount) {
        return r;
    }
    let mut data = fake.lock();
    let v = limit_object("organization.spend_limit", &body, month_cents(&data, None));
    data.org_limit = Some(v.clone());
    Json(v).into_response()
}

async fn org_limit_delete(State(fake): State<Fake>) -> Response {
    match fake.lock().org_limit.take() {
        Some(_) => {
            Json(json!({ "object": "organization.spend_limit.deleted", "deleted": true })).into_response()
        }
        None => not_found("No spend limit is set for this organization."),
    }
}

async fn project_limit_get(State(fake): State<Fake>, Path(project): Path<String>) -> Response {
    let data = fake.lock();
    if !has_project(&data, &project) {
        return not_found(&format!("No project found with id '{project}'."));
    }
    match data.project_limits.get(&project) {
        Some(v) => Json(v.clone()).into_response(),
        None => not_found("No spend limit is set for this project."),
    }
}

async fn project_limit_set(
    State(fake): State<Fake>,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: LimitBody = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_money(&body.currency, &body.interval, body.threshold_amount) {
        return r;
    }
    let mut data = fake.lock();
    if !has_project(&data, &project) {
        return not_found(&format!("No project found with id '{project}'."));
    }
    let v = limit_object("project.spend_limit", &body, month_cents(&data, Some(&project)));
    data.project_limits.insert(project, v.clone());
    Json(v).into_response()
}

async fn project_limit_delete(State(fake): State<Fake>, Path(project): Path<String>) -> Response {
    match fake.lock().project_limits.remove(&project) {
        Some(_) => Json(json!({ "object": "project.spend_limit.deleted", "deleted": true })).into_response(),
        None => not_found("No spend limit is set for this project."),
    }
}

/// The alert object name of a scope (`""`: the organization).
fn alert_object(scope: &str) -> &'static str {
    if scope.is_empty() { "organization.spend_alert" } else { "project.spend_alert" }
}

fn alerts_list(fake: &Fake, scope: &str, raw: Option<&str>) -> Response {
    let q = match Query::parse(raw) {
        Ok(q) => q,
        Err(r) => return r,
    };
    let data = fake.lock();
    if !scope.is_empty() && !has_project(&data, scope) {
        return not_found(&format!("No project found with id '{scope}'."));
    }
    let mut items = data.alerts.get(scope).cloned().unwrap_or_default();
    if q.get("order") == Some("desc") {
        items.reverse();
    }
    let cap = data.page_size;
    drop(data);
    list_page(items, &q, cap)
}

fn alert_write(fake: &Fake, scope: &str, id: Option<&str>, bytes: &[u8]) -> Response {
    let body: AlertBody = match json_body(bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    if let Err(r) = check_money(&body.currency, &body.interval, body.threshold_amount) {
        return r;
    }
    let channel_ok =
        body.notification_channel["type"] == "email" && body.notification_channel["recipients"].is_array();
    if !channel_ok {
        return bad_request("'notification_channel' must be {\"type\":\"email\",\"recipients\":[…]}.");
    }
    let mut data = fake.lock();
    if !scope.is_empty() && !has_project(&data, scope) {
        return not_found(&format!("No project found with id '{scope}'."));
    }
    let id = match id {
        Some(id) => id.to_string(),
        None => {
            data.next_id += 1;
            format!("spend_alert_{:06}", data.next_id)
        }
    };
    let channel = json!({
        "type": "email",
        "recipients": body.notification_channel["recipients"],
        "subject_prefix": body.notification_channel.get("subject_prefix").cloned().unwrap_or(Value::Null),
    });
    let v = json!({
        "object": alert_object(scope),
        "id": id,
        "currency": "USD",
        "interval": "month",
        "threshold_amount": body.threshold_amount,
        "notification_channel": channel,
    });
    let list = data.alerts.entry(scope.to_string()).or_default();
    match list.iter_mut().find(|a| a["id"] == id.as_str()) {
        Some(slot) => *slot = v.clone(),
        None => list.push(v.clone()),
    }
    Json(v).into_response()
}

fn alert_get(fake: &Fake, scope: &str, id: &str) -> Response {
    let data = fake.lock();
    match data.alerts.get(scope).and_then(|l| l.iter().find(|a| a["id"] == id)) {
        Some(v) => Json(v.clone()).into_response(),
        None => not_found(&format!("No spend alert found with id '{id}'.")),
    }
}

fn alert_exists(fake: &Fake, scope: &str, id: &str) -> bool {
    fake.lock().alerts.get(scope).is_some_and(|l| l.iter().any(|a| a["id"] == id))
}

fn alert_delete(fake: &Fake, scope: &str, id: &str) -> Response {
    let mut data = fake.lock();
    let Some(list) = data.alerts.get_mut(scope) else {
        return not_found(&format!("No spend alert found with id '{id}'."));
    };
    let before = list.len();
    list.retain(|a| a["id"] != id);
    if list.len() == before {
        return not_found(&format!("No spend alert found with id '{id}'."));
    }
    Json(json!({ "object": format!("{}.deleted", alert_object(scope)), "id": id, "deleted": true }))
        .into_response()
}

async fn org_alerts_list(State(fake): State<Fake>, RawQuery(raw): RawQuery) -> Response {
    alerts_list(&fake, "", raw.as_deref())
}

async fn org_alert_create(State(fake): State<Fake>, body: axum::body::Bytes) -> Response {
    alert_write(&fake, "", None, &body)
}

async fn org_alert_get(State(fake): State<Fake>, Path(alert): Path<String>) -> Response {
    alert_get(&fake, "", &alert)
}

async fn org_alert_update(
    State(fake): State<Fake>,
    Path(alert): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if !alert_exists(&fake, "", &alert) {
        return not_found(&format!("No spend alert found with id '{alert}'."));
    }
    alert_write(&fake, "", Some(&alert), &body)
}

async fn org_alert_delete(State(fake): State<Fake>, Path(alert): Path<String>) -> Response {
    alert_delete(&fake, "", &alert)
}

async fn project_alerts_list(
    State(fake): State<Fake>,
    Path(project): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    alerts_list(&fake, &project, raw.as_deref())
}

async fn project_alert_create(
    State(fake): State<Fake>,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    alert_write(&fake, &project, None, &body)
}

async fn project_alert_get(
    State(fake): State<Fake>,
    Path((project, alert)): Path<(String, String)>,
) -> Response {
    alert_get(&fake, &project, &alert)
}

async fn project_alert_update(
    State(fake): State<Fake>,
    Path((project, alert)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if !alert_exists(&fake, &project, &alert) {
        return not_found(&format!("No spend alert found with id '{alert}'."));
    }
    alert_write(&fake, &project, Some(&alert), &body)
}

async fn project_alert_delete(
    State(fake): State<Fake>,
    Path((project, alert)): Path<(String, String)>,
) -> Response {
    alert_delete(&fake, &project, &alert)
}

async fn seed_users(State(fake): State<Fake>, body: axum::body::Bytes) -> Response {
    match json_body::<Vec<User>>(&body) {
        Ok(users) => {
            fake.add_users(users);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

async fn seed_projects(State(fake): State<Fake>, body: axum::body::Bytes) -> Response {
    match json_body::<Vec<Project>>(&body) {
        Ok(projects) => {
            fake.add_projects(projects);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

async fn seed_costs(State(fake): State<Fake>, body: axum::body::Bytes) -> Response {
    match json_body::<Vec<Cost>>(&body) {
        Ok(costs) if costs.iter().all(|c| parse_amount(&c.amount).is_some()) => {
            fake.add_costs(costs);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => bad_request("every `amount` must be decimal text with at most 12 decimals"),
        Err(r) => r,
    }
}

async fn seed_faults(State(fake): State<Fake>, body: axum::body::Bytes) -> Response {
    match json_body::<Vec<Fault>>(&body) {
        Ok(faults) => {
            fake.push_faults(faults);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_exactly() {
        for text in ["0.1", "12.000000000001", "3.0", "0.000001"] {
            let units = parse_amount(text).unwrap_or_default();
            let back = amount_json(units).to_string();
            assert_eq!(parse_amount(&back), Some(units), "{text} → {back}");
        }
        assert_eq!(parse_amount("1e-5"), None);
        assert_eq!(parse_amount("-1"), None);
        assert_eq!(amount_json(parse_amount("0.1").unwrap_or_default() * 3).to_string(), "0.3");
    }
}
