//! The HTTP API: routes, authentication, body and query parsing, and metrics.
//!
//! Handlers parse their own bodies and queries so that every malformed request
//! gets the JSON error shape of [`crate::error`], never a framework's plain text.

pub(crate) mod admin;
pub(crate) mod check;
pub(crate) mod events;
pub mod fuzz;
pub(crate) mod limits;
pub(crate) mod pg;
pub(crate) mod requests;
pub(crate) mod users;

use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::App;
use crate::auth::Principal;
use crate::console::{dashboard, overrides, proposals, value};
use crate::error::{ApiError, ApiResult};

/// Largest request body, except directory imports.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Largest directory import body.
pub const MAX_IMPORT_BODY: usize = 64 * 1024 * 1024;
/// Most items in one batch (limits, pools, events).
pub const MAX_BATCH: usize = 1000;
/// Most rows in one page.
pub const MAX_PAGE: usize = 1000;

/// Builds the router: routes and middleware only. The tasks the service runs beside
/// it (the dashboard's refresh) are started by [`crate::start`], so building a router,
/// as a test may do many times, starts nothing.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/users/import", post(users::import).layer(DefaultBodyLimit::max(MAX_IMPORT_BODY)))
        .route("/v1/users/remove", post(users::remove))
        .route("/v1/users", get(users::list))
        .route("/v1/users/{email}", get(users::get_one))
        .route("/v1/users/{email}/tokens", post(users::issue_token).delete(users::revoke_tokens))
        .route("/v1/admin/token", post(admin::rotate))
        .route("/v1/limits", get(limits::list).put(limits::set))
        .route("/v1/pools", get(limits::pools))
        .route("/v1/audit", get(limits::audit))
        .route("/v1/usage/events", post(events::ingest))
        .route("/v1/usage/stream", get(events::stream))
        .route("/v1/usage/events/recent", get(dashboard::recent_events))
        .route("/v1/organization/costs", get(events::costs))
        .route("/v1/check", post(check::check))
        .route("/v1/alerts", get(check::alerts))
        .route("/v1/reservations/{id}/commit", post(check::commit))
        .route("/v1/reservations/{id}/release", post(check::release))
        .route("/v1/requests", post(requests::create).get(requests::list))
        .route("/v1/requests/{id}/approve", post(requests::approve))
        .route("/v1/requests/{id}/decline", post(requests::decline))
        .route("/v1/leases/{name}", post(requests::acquire).delete(requests::release_lease))
        .route("/v1/groups", get(proposals::groups))
        .route("/v1/proposals", post(proposals::create).get(proposals::list))
        .route("/v1/requests/{id}/propose", post(proposals::propose_request))
        .route("/v1/reconciler/status", get(proposals::get_status).put(proposals::put_status))
        .route("/v1/reconciler/runs", get(overrides::runs))
        .route("/v1/overrides", get(overrides::list))
        .route("/v1/overrides/review", get(overrides::review))
        .route("/v1/overrides/{name}/lapse", post(overrides::lapse))
        .route("/v1/overrides/{name}/move", post(overrides::move_to_group))
        .route("/v1/workspace/default", get(overrides::default_limit))
        .route("/v1/workspace/default/propose", post(overrides::propose_default_limit))
        .route("/v1/dashboard/summary", get(dashboard::summary))
        .route("/v1/dashboard/users", get(dashboard::users))
        .route("/v1/dashboard/trends", get(dashboard::trends))
        .route("/v1/dashboard/breakdown", get(dashboard::breakdown))
        .route("/v1/dashboard/mix", get(dashboard::mix))
        .route("/v1/dashboard/runaway", get(dashboard::runaway))
        .route("/v1/dashboard/teams/{group}", get(dashboard::team))
        .route("/v1/dashboard/people/{email}", get(dashboard::person))
        .route("/v1/me", get(dashboard::me))
        .route("/v1/outcomes", post(value::upload).layer(DefaultBodyLimit::max(value::MAX_OUTCOMES_BODY)))
        .route("/v1/dashboard/value", get(value::value))
        .merge(crate::console::ui::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), dashboard::watch_imports))
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}

async fn track(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    // both clones are cheap (a standard method is inline, a matched path is shared)
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let took = started.elapsed();
    app.metrics.observe(method.as_str(), route, response.status().as_u16(), took.as_secs_f64());
    finish(&method, route, &mut response, took);
    end_streams_on_shutdown(&app, response)
}

/// What every answer gets on either store: `Cache-Control: no-store` unless the
/// handler said otherwise, a failure's server-side detail logged, and the request log.
pub(crate) fn finish(
    method: &axum::http::Method,
    route: &str,
    response: &mut Response,
    took: std::time::Duration,
) {
    // answers carry tokens' data (limits, usage, costs): no cache or proxy keeps them,
    // unless the handler said otherwise (the console's static assets)
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(axum::http::HeaderValue::from_static("no-store"));
    let status = response.status().as_u16();
    // the one place a server-side failure is logged: the detail the client was not shown
    if let Some(failure) = response.extensions().get::<crate::error::Failure>() {
        tracing::error!(
            method = method.as_str(),
            route,
            status,
            code = failure.code,
            detail = failure.detail.as_str(),
            "request failed"
        );
    }
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    tracing::info!(method = method.as_str(), route, status, duration_ms, "request");
}

/// An event stream never ends by itself, so a draining server would wait for it
/// until its deadline: every `text/event-stream` body ends when the service starts
/// shutting down (clients reconnect elsewhere with `Last-Event-ID`).
fn end_streams_on_shutdown(app: &App, response: Response) -> Response {
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_stream {
        return response;
    }
    let mut closing = app.closing.subscribe();
    let (parts, body) = response.into_parts();
    let closed = async move {
        // a dropped sender means the service is gone: end as well
        let _ = closing.wait_for(|c| *c).await;
    };
    let body = futures_util::StreamExt::take_until(body.into_data_stream(), closed);
    Response::from_parts(parts, axum::body::Body::from_stream(body))
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("request/no-route", "no such endpoint")
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "request/method", "method not allowed on this endpoint")
}

/// What `/healthz` answers while the service runs.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Health")]
pub(crate) struct Health {
    #[schemars(extend("const" = "ok"))]
    status: &'static str,
}

async fn healthz() -> impl IntoResponse {
    axum::Json(Health { status: "ok" })
}

async fn metrics(State(app): State<App>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &app.metrics_token {
        // Compared by hash, as every token is: the token itself is never kept.
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| crate::auth::hash(t.trim()));
        if given.as_ref() != Some(expected) {
            return ApiError::unauthorized().into_response();
        }
    }
    let open = app.ledger().map(|l| l.open_reservations()).unwrap_or(0);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render(open)).into_response()
}

async fn openapi() -> impl IntoResponse {
    axum::Json(crate::openapi::document())
}

impl FromRequestParts<App> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        app.tokens.authenticate_request(&parts.method, &parts.headers)
    }
}

/// Parses a JSON body, mapping every failure to a JSON error: the one JSON
/// extractor of every endpoint.
///
/// The body is first walked once ([`Checked`]) to refuse what deserializing would
/// let through: a key given twice in one object (serde keeps the last, so two
/// readers of one body could disagree about it) and a NUL character in any
/// string (it would otherwise fail much later, in a git commit or a file name).
pub(crate) fn json_body<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let bytes = raw_body(body)?;
    let found = std::cell::Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let walked = serde::de::DeserializeSeed::deserialize(Checked(&found), &mut de).and_then(|_| de.end());
    if let Err(e) = walked {
        return Err(match found.take() {
            Some(Refused::Duplicate(key)) => ApiError::bad_request(
                "request/duplicate-key",
                format!("the key `{}` appears twice in one object", shorten(&key)),
            ),
            Some(Refused::Nul) => {
                ApiError::bad_request("request/nul", "a string in the body holds a NUL character")
            }
            None => ApiError::bad_request("request/bad-json", format!("the body is not valid JSON: {e}")),
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("request/bad-json", format!("the body is not the expected JSON: {e}"))
    })
}

/// Like [`json_body`], for a body that may be left out: an empty body (or only
/// whitespace, or `null`) is `T::default()`.
pub(crate) fn json_body_or_default<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<T> {
    let bytes = raw_body(body)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    Ok(json_body::<Option<T>>(Ok(bytes))?.unwrap_or_default())
}

/// What [`Checked`] refused.
enum Refused {
    Duplicate(String),
    Nul,
}

/// A JSON value walked without being kept, refusing duplicate keys and NUL characters;
/// the reason is left in the cell (serde's error type carries only text).
#[derive(Clone, Copy)]
struct Checked<'a>(&'a std::cell::Cell<Option<Refused>>);

impl<'de> serde::de::DeserializeSeed<'de> for Checked<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Checked<'_> {
    fn text<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        if v.contains('\0') {
            self.0.set(Some(Refused::Nul));
            return Err(E::custom("NUL character"));
        }
        Ok(())
    }
}

impl<'de> serde::de::Visitor<'de> for Checked<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.text(v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // keys borrowed from the body when they have no escapes (the usual case); a set,
        // not a list, so an object of a million keys is not a million squared comparisons
        let mut seen: std::collections::HashSet<std::borrow::Cow<'de, str>> =
            std::collections::HashSet::new();
        while let Some(key) = map.next_key_seed(Key)? {
            self.text(&key)?;
            if seen.contains(&key) {
                self.0.set(Some(Refused::Duplicate(key.into_owned())));
                return Err(serde::de::Error::custom("duplicate key"));
            }
            seen.insert(key);
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}

/// An object key, borrowed from the body when it can be.
struct Key;

impl<'de> serde::de::DeserializeSeed<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Key {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
}

/// A usage amount in micro-credits (an event, a check, a commit, a credit request),
/// or a 422: the engine's rule ([`Credits::usage_amount`]), so the CLI's usage reader
/// and the service refuse the same amounts.
pub(crate) fn usage_micros(what: &str, credits: budgit_engine::Credits) -> ApiResult<i64> {
    use budgit_engine::credits::{MAX_USAGE_AMOUNT, UsageAmountError};
    match credits.usage_amount() {
        Ok(c) => Ok(c.micros()),
        Err(UsageAmountError::Negative(_)) => Err(ApiError::unprocessable(
            "credits/negative",
            format!("`{what}` must not be negative (usage is spend, never a credit back)"),
        )),
        Err(UsageAmountError::TooLarge(c)) => Err(ApiError::unprocessable(
            "credits/too-large",
            format!("`{what}` is {c}, more than the largest amount of one request ({MAX_USAGE_AMOUNT})"),
        )),
    }
}

/// The body bytes, or the JSON error for an unreadable or oversized body.
pub(crate) fn raw_body(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("the body is larger than this endpoint accepts")
        } else {
            ApiError::new(e.status(), "request/bad-body", "the body could not be read")
        }
    })
}

/// A path parameter, or a JSON error.
pub(crate) fn path_param(p: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    p.map(|Path(s)| s).map_err(|_| ApiError::bad_request("request/bad-path", "the path is not valid"))
}

/// Query pairs in order (repeated keys kept), or a JSON error.
pub(crate) struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> ApiResult<QueryPairs> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|_| ApiError::bad_request("request/bad-query", "the query string is not valid"))?;
        Ok(QueryPairs(pairs))
    }

    /// The last value of a key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of a key, also as `key[]` and comma-separated.
    pub fn all(&self, key: &str) -> Vec<String> {
        let bracket = format!("{key}[]");
        self.0
            .iter()
            .filter(|(k, _)| k == key || *k == bracket)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Every value of a key, also as `key[]`, not split on commas (values that may hold one).
    pub fn all_exact(&self, key: &str) -> Vec<String> {
        let bracket = format!("{key}[]");
        self.0.iter().filter(|(k, _)| k == key || *k == bracket).map(|(_, v)| v.clone()).collect()
    }

    /// A bounded page size (`limit`), defaulting to `default`.
    pub fn page_size(&self, default: usize, max: usize) -> ApiResult<usize> {
        match self.get("limit") {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(
                    "request/bad-limit",
                    format!("`limit` must be a whole number from 1 to {max}"),
                )),
            },
        }
    }

    /// An integer parameter.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request("request/bad-query", format!("`{key}` must be a whole number"))
                })
            })
            .transpose()
    }

    /// True when `format=csv` was asked for, false for `json` or no `format`; any other
    /// format is refused (the document lists the two).
    pub fn wants_csv(&self) -> ApiResult<bool> {
        match self.get("format") {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(other) => Err(ApiError::bad_request(
                "request/bad-format",
                format!("`format` must be `json` or `csv`, not `{}`", shorten(other)),
            )),
        }
    }
}

/// A list endpoint's query: every key (its filters), the page size (`limit`) and the
/// cursor (`after`, the `next` of the previous page). The one place a list reads them,
/// so every list refuses a bad page size or cursor with the same codes.
pub(crate) struct ListQuery<C> {
    /// The whole query, for the endpoint's own filters.
    pub q: QueryPairs,
    /// The page size: `limit`, from 1 to the endpoint's largest, else its default.
    pub limit: usize,
    /// Where the page starts (exclusive), when `after` was given.
    pub after: Option<C>,
}

/// A cursor as `after` holds it: a sequence or id, or a key (a user, an override's name).
pub(crate) trait Cursor: Sized {
    /// Reads the cursor, or says why it is not one.
    fn parse(value: &str) -> ApiResult<Self>;
}

impl Cursor for i64 {
    fn parse(value: &str) -> ApiResult<i64> {
        value
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request("request/bad-query", "`after` must be a whole number"))
    }
}

impl Cursor for String {
    fn parse(value: &str) -> ApiResult<String> {
        Ok(value.to_string())
    }
}

impl<C: Cursor> ListQuery<C> {
    /// Reads a raw query string: pages of `default` rows unless `limit` asks for 1 to `max`.
    pub fn parse(raw: Option<&str>, default: usize, max: usize) -> ApiResult<ListQuery<C>> {
        let q = QueryPairs::parse(raw)?;
        ListQuery::of(q, default, max)
    }

    /// The page of an already parsed query (an endpoint whose page size depends on a
    /// key of it, as a CSV export's does).
    pub fn of(q: QueryPairs, default: usize, max: usize) -> ApiResult<ListQuery<C>> {
        let limit = q.page_size(default, max)?;
        let after = q.get("after").map(C::parse).transpose()?;
        Ok(ListQuery { q, limit, after })
    }
}

/// A page of a list: `data`, whether more follow (`has_more`) and the cursor to pass as
/// `after` for the next page (`next`, null on the last). Every list answers this one shape.
//
// The one place a page is cut: endpoints read one row more than the page size
// (`Page::read_limit`) and `Page::cut` turns that extra row into `has_more`. The schema
// is generic too: one component per row type, `PageOf<row>`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "PageOf{T}")]
pub(crate) struct Page<T, C> {
    #[schemars(extend("const" = "list"))]
    object: &'static str,
    data: Vec<T>,
    has_more: bool,
    /// Pass as `after` for the next page; null on the last page.
    next: Option<C>,
    /// Every row the query matches, over all pages: answered by the lists held in
    /// memory (the dashboard's), where counting costs nothing; absent elsewhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<usize>,
}

impl<T, C> Page<T, C> {
    /// How many rows to read for a page of `limit`: one more, to know whether another follows.
    pub fn read_limit(limit: usize) -> i64 {
        i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX)
    }

    /// A page of at most `limit` of `rows` (read with [`Page::read_limit`]); the cursor
    /// is `cursor` of the last row kept, when more follow.
    pub fn cut(mut rows: Vec<T>, limit: usize, cursor: impl Fn(&T) -> C) -> Page<T, C> {
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let next = if has_more { rows.last().map(cursor) } else { None };
        Page { object: "list", data: rows, has_more, next, total: None }
    }

    /// The same page, stating how many rows match over all pages.
    pub fn with_total(mut self, total: usize) -> Page<T, C> {
        self.total = Some(total);
        self
    }

    /// Every row in one page: nothing follows.
    pub fn whole(rows: Vec<T>) -> Page<T, C> {
        Page { object: "list", data: rows, has_more: false, next: None, total: None }
    }

    /// The rows of the page, to turn into what is answered.
    pub fn rows(&self) -> &[T] {
        &self.data
    }

    /// The same page with each row turned into what is answered.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U, C> {
        Page {
            object: self.object,
            data: self.data.into_iter().map(f).collect(),
            has_more: self.has_more,
            next: self.next,
            total: self.total,
        }
    }
}

impl<T: serde::Serialize, C: serde::Serialize> IntoResponse for Page<T, C> {
    fn into_response(self) -> Response {
        axum::Json(self).into_response()
    }
}

/// Quotes a CSV field when needed (and defuses spreadsheet formulas).
pub(crate) fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

/// A CSV response.
pub(crate) fn csv_response(name: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

/// A user key as the service stores and compares it: the canonical email
/// (`budgit_engine::identity`), so `Zoe@acme.com` and `zoe@acme.com` share one limit,
/// one usage total and one token scope. A key with a character that cannot be seen is
/// refused with its own code; anything else that is not an address is `request/bad-user`.
pub(crate) fn canonical_user(email: &str) -> ApiResult<String> {
    use budgit_engine::identity::{IdentityError, canonical_email};
    match canonical_email(email) {
        Ok(c) => Ok(c.into_owned()),
        Err(e @ IdentityError::Hidden { .. }) => Err(ApiError::bad_request(
            budgit_engine::diag::Code::IdentityHiddenCharacter.as_str(),
            e.to_string(),
        )),
        Err(_) => Err(ApiError::bad_request(
            "request/bad-user",
            format!("`{}` is not an email address", budgit_engine::identity::show(email)),
        )),
    }
}

/// Whether an uploaded body of rows is JSON Lines rather than CSV: `format=jsonl|csv`
/// when given (another value is refused with `bad_format`), else the content type,
/// else JSON Lines when the first non-blank byte opens an object.
pub(crate) fn is_json_lines(
    q: &QueryPairs,
    headers: &axum::http::HeaderMap,
    bytes: &[u8],
    bad_format: &'static str,
) -> ApiResult<bool> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    match q.get("format") {
        Some("jsonl" | "ndjson") => Ok(true),
        Some("csv") => Ok(false),
        Some(other) => Err(ApiError::bad_request(
            bad_format,
            format!("unknown format `{}` (expected `csv` or `jsonl`)", shorten(other)),
        )),
        None if content_type.contains("ndjson") || content_type.contains("jsonl") => Ok(true),
        None if content_type.contains("csv") => Ok(false),
        None => Ok(bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')),
    }
}

/// A user filter from a query string, canonical like every stored key.
pub(crate) fn canonical_filter(user: Option<&str>) -> ApiResult<Option<String>> {
    user.map(canonical_user).transpose()
}

/// What [`check_name`] accepts, as the document states it: no control character
/// (`char::is_control`: U+0000 to U+001F and U+007F to U+009F), 1 to [`MAX_NAME`]
/// characters; the engine's wire types state the same of theirs.
pub(crate) use budgit_engine::workspace::wire::{MAX_NAME, NAME_PATTERN};
/// A cap's name as policies write it (`budgit_engine::edit::cap_name_ok`): 1 to 128
/// letters, digits and `.` `_` `-` `:` `/` `@` `+`, starting with a letter or digit.
pub(crate) const CAP_NAME_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$";
/// The longest email, in bytes (`budgit_engine::identity::MAX_EMAIL_BYTES`).
pub(crate) const MAX_EMAIL: usize = budgit_engine::identity::MAX_EMAIL_BYTES;
/// The longest reason, in characters.
pub(crate) const MAX_REASON: usize = 2000;

/// A usage amount in a body (an event, a check, a commit, a credit request), for the
/// document: the engine's [`Credits`](budgit_engine::Credits) with the bounds
/// [`usage_micros`] enforces.
pub(crate) struct UsageAmount;

impl schemars::JsonSchema for UsageAmount {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "UsageAmount".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let max = budgit_engine::credits::MAX_USAGE_AMOUNT.to_string();
        let max: serde_json::Value = serde_json::from_str(&max).unwrap_or(serde_json::Value::Null);
        schemars::json_schema!({
            "description": "credits, an exact decimal JSON number (up to 6 places, never in exponent notation), from 0 to the largest amount of one request",
            "type": "number",
            "minimum": 0,
            "maximum": max,
            "multipleOf": 0.000001
        })
    }
}

/// Checks a short name (product, model, group, lease, holder).
pub(crate) fn check_name(what: &str, value: &str) -> ApiResult<()> {
    // counted in characters, as the document's `maxLength` counts them
    if value.is_empty() || value.chars().count() > MAX_NAME || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "request/bad-name",
            format!("`{what}` must be 1 to 200 characters without control characters"),
        ));
    }
    Ok(())
}

/// User input shortened for a message.
pub(crate) fn shorten(s: &str) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// The schema of a field that holds any JSON (a context, a stored value): `{}` with a
/// description, rather than schemars' `true`, which readers of the document handle worse.
pub(crate) fn any_json(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "description": "any JSON value, as it was given" })
}

/// A whole number from JSON, also when written with a zero fraction (`86400.0`): JSON
/// does not tell the two apart, and neither does the document's `integer`.
pub(crate) fn whole<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::de::Error;
    let n = <serde_json::Number as serde::Deserialize>::deserialize(d)?;
    let text = n.to_string();
    let digits = match text.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => return Err(D::Error::custom(format!("`{text}` is not a whole number"))),
        None => text.as_str(),
    };
    let i: i64 =
        digits.parse().map_err(|_| D::Error::custom(format!("`{text}` is not a whole number in range")))?;
    T::try_from(i).map_err(|_| D::Error::custom(format!("`{text}` is out of range")))
}

/// [`whole`], for a field that may be left out or `null`.
pub(crate) fn whole_opt<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    #[derive(serde::Deserialize)]
    struct Whole<T: TryFrom<i64>>(#[serde(deserialize_with = "whole")] T);
    Ok(<Option<Whole<T>> as serde::Deserialize>::deserialize(d)?.map(|Whole(t)| t))
}

/// Credits as JSON (exact decimal) from micro-credits.
pub(crate) fn credits_json(micros: i64) -> serde_json::Value {
    serde_json::to_value(budgit_engine::Credits::from_micros(micros)).unwrap_or(serde_json::Value::Null)
}

/// An RFC 3339 timestamp from unix seconds.
pub(crate) fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}
