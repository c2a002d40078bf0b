//! Usage: idempotent event ingest, the live event stream, and the Costs API view.
//!
//! An event's `id` is its idempotency key: a retried event is stored once and
//! reported as a duplicate, and the key reused for a different payload is refused
//! (`idempotency/conflict`), checked against a digest of the payload stored with
//! the event. Amounts follow the engine's usage rule (zero to a million credits),
//! times lie in a documented window (2020 to a day from now), and every sum over credits is taken in two
//! halves so that no total can overflow SQLite's integers. Daily aggregates (UTC days, per user, product,
//! model and project) are maintained in the same transaction as the events, so
//! the Costs API reads them instead of the raw events when buckets are aligned.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast;

use super::{MAX_BATCH, QueryPairs, canonical_user, check_name, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use crate::{App, StreamEvent, auth::Principal};

/// Largest `context` of an event, as JSON text.
const MAX_CONTEXT: usize = 4096;
/// Seconds in a Costs API bucket (`bucket_width=1d`).
const DAY: i64 = 86_400;
/// How far after now an event's time may lie: one day (clocks drift, time zones
/// differ). Later usage would count against a period that has not begun.
pub(crate) const MAX_FUTURE: i64 = DAY;
/// The earliest time an event may have, 2020-01-01T00:00:00Z: no credits were spent
/// before, so an earlier time is a mistake (`0`, a date typo). A fixed date rather
/// than one relative to now, so a backfill of any real history is accepted.
pub(crate) const EARLIEST_EVENT: i64 = 1_577_836_800;

/// `SUM(micros)` as two sums that cannot overflow: the high and low 32 bits of each
/// row (`>>` keeps the sign). Either needs 2^31 rows at the extreme to overflow, where
/// one plain `SUM` of a few large rows did (and SQLite then fails the whole query);
/// [`wide_sum`] puts the halves back together.
pub(crate) const WIDE_SUM: &str = "SUM(micros >> 32), SUM(micros & 4294967295)";

/// A sum read as [`WIDE_SUM`], saturated at the bounds of an amount.
pub(crate) fn wide_sum(high: Option<i64>, low: Option<i64>) -> i64 {
    let total = (i128::from(high.unwrap_or(0)) << 32) + i128::from(low.unwrap_or(0));
    i64::try_from(total).unwrap_or(if total < 0 { i64::MIN } else { i64::MAX })
}

/// What an event's idempotency key stands for: a digest of its payload.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Payload {
    pub(crate) digest: [u8; 32],
    /// The time is part of the payload (ingested events; a commit takes the clock's).
    timed: bool,
}

impl Payload {
    /// The digest of an ingested event (its time included) or, with `reservation`, of
    /// a commit's event (the reservation instead of the time: a commit's time is the
    /// clock's, and one event id committed on two reservations is two payloads).
    pub(crate) fn of(e: &NewEvent, reservation: Option<&str>) -> Payload {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        // every field length-prefixed, so no two payloads write the same bytes
        let mut field = |b: &[u8]| {
            h.update((b.len() as u64).to_le_bytes());
            h.update(b);
        };
        match reservation {
            Some(r) => {
                field(b"commit");
                field(r.as_bytes());
            }
            None => {
                field(b"event");
                field(&e.ts.timestamp().to_le_bytes());
            }
        }
        field(e.user.as_bytes());
        field(e.product.as_bytes());
        field(e.model.as_bytes());
        field(&e.micros.to_le_bytes());
        field(e.context.as_deref().unwrap_or("").as_bytes());
        field(&[u8::from(e.context.is_some())]);
        Payload { digest: h.finalize().into(), timed: reservation.is_none() }
    }
}

/// The times an event may have: from [`EARLIEST_EVENT`] to [`MAX_FUTURE`] after now
/// (unix seconds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub earliest: i64,
    pub latest: i64,
}

impl Window {
    /// The window at `now`.
    pub(crate) fn at(now: i64) -> Window {
        Window { earliest: EARLIEST_EVENT, latest: now.saturating_add(MAX_FUTURE) }
    }
}

/// An event's time: RFC 3339 text or unix seconds.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum TimeIn {
    Unix(i64),
    Text(#[schemars(extend("format" = "date-time"))] String),
}

/// One usage event of `POST /v1/usage/events`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UsageEvent")]
pub(crate) struct EventIn {
    /// The idempotency key.
    #[schemars(length(min = 1, max = super::MAX_NAME), pattern(super::NAME_PATTERN))]
    id: String,
    time: TimeIn,
    #[schemars(email, length(max = super::MAX_EMAIL))]
    user: String,
    #[schemars(length(min = 1, max = super::MAX_NAME), pattern(super::NAME_PATTERN))]
    product: String,
    #[schemars(length(min = 1, max = super::MAX_NAME), pattern(super::NAME_PATTERN))]
    model: String,
    #[schemars(with = "super::UsageAmount")]
    credits: Credits,
    #[serde(default)]
    context: Option<Value>,
}

/// A validated event ready to store.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent {
    pub id: String,
    pub ts: DateTime<Utc>,
    pub user: String,
    pub product: String,
    pub model: String,
    pub micros: i64,
    pub context: Option<String>,
    /// What its id stands for (not stored for events read back).
    pub payload: Payload,
}

impl NewEvent {
    fn from_input(e: EventIn, window: Window) -> ApiResult<NewEvent> {
        check_name("id", &e.id)?;
        let user = canonical_user(&e.user)?;
        check_name("product", &e.product)?;
        check_name("model", &e.model)?;
        let ts = match e.time {
            TimeIn::Unix(s) => DateTime::from_timestamp(s, 0),
            TimeIn::Text(t) => DateTime::parse_from_rfc3339(&t).ok().map(|t| t.with_timezone(&Utc)),
        }
        .ok_or_else(|| {
            ApiError::bad_request("usage/bad-time", "`time` must be RFC 3339 text or unix seconds")
        })?;
        if !(window.earliest..=window.latest).contains(&ts.timestamp()) {
            return Err(ApiError::unprocessable(
                "usage/time-out-of-window",
                format!(
                    "`time` {} is outside the window events may have, {} to {} (2020-01-01 to a day from now)",
                    rfc3339(ts.timestamp()),
                    rfc3339(window.earliest),
                    rfc3339(window.latest)
                ),
            ));
        }
        let micros = super::usage_micros("credits", e.credits)?;
        let context = match e.context {
            None | Some(Value::Null) => None,
            Some(v) => {
                let text = v.to_string();
                if text.len() > MAX_CONTEXT {
                    return Err(ApiError::bad_request(
                        "usage/context-too-large",
                        format!("`context` must be at most {MAX_CONTEXT} bytes of JSON"),
                    ));
                }
                Some(text)
            }
        };
        let mut event = NewEvent {
            id: e.id,
            ts,
            user,
            product: e.product,
            model: e.model,
            micros,
            context,
            payload: Payload::default(),
        };
        event.payload = Payload::of(&event, None);
        Ok(event)
    }

    /// The event as the stream and the API show it ([`Shown`]), as JSON: the stream and
    /// the latest events keep it so, serialized once.
    pub fn to_json(&self, seq: i64, project: &str) -> Value {
        let shown = Shown {
            seq,
            id: &self.id,
            time: self.ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            user: &self.user,
            product: &self.product,
            model: &self.model,
            credits: Credits::from_micros(self.micros),
            project: Some(project).filter(|p| !p.is_empty()),
            context: self.context.as_deref().and_then(|c| serde_json::from_str::<Value>(c).ok()),
        };
        // plain fields and an already parsed value: serializing cannot fail
        serde_json::to_value(shown).unwrap_or(Value::Null)
    }
}

/// A usage event as the stream (`event: usage`) and `/v1/usage/events/recent` show it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "UsageStreamEvent")]
pub(crate) struct Shown<'a> {
    /// The stream's sequence (the SSE `id`).
    seq: i64,
    /// The event's idempotency key.
    id: &'a str,
    #[schemars(extend("format" = "date-time"))]
    time: String,
    user: &'a str,
    product: &'a str,
    model: &'a str,
    credits: Credits,
    /// The user's group when the event arrived; null without one.
    project: Option<&'a str>,
    #[schemars(schema_with = "super::any_json")]
    context: Option<Value>,
}

/// Stores an event unless its id is known; returns its sequence and project when new.
///
/// A known id with the same payload is a duplicate (`None`); with another payload it
/// is refused (409 `idempotency/conflict`). An event that would take its day's
/// total for the user, product and model past the largest amount is refused (422
/// `usage/total-too-large`) rather than stored as a sum SQLite cannot hold.
pub(crate) fn insert_event(
    tx: &Transaction<'_>,
    e: &NewEvent,
    projects: &mut HashMap<String, String>,
) -> ApiResult<Option<(i64, String)>> {
    let project = match projects.get(&e.user) {
        Some(p) => p.clone(),
        None => {
            let p: Option<Option<String>> = tx
                .prepare_cached("SELECT grp FROM limits WHERE email = ?1")?
                .query_row([&e.user], |r| r.get(0))
                .optional()?;
            let p = p.flatten().unwrap_or_default();
            projects.insert(e.user.clone(), p.clone());
            p
        }
    };
    let ts = e.ts.timestamp();
    let digest = &e.payload.digest[..];
    let n = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO events (id, ts, email, product, model, micros, project, context, digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute((&e.id, ts, &e.user, &e.product, &e.model, e.micros, &project, &e.context, digest))?;
    if n == 0 {
        return if same_payload(tx, e)? {
            Ok(None)
        } else {
            Err(ApiError::conflict(
                "idempotency/conflict",
                format!("the event id `{}` was already used for a different event", super::shorten(&e.id)),
            ))
        };
    }
    let seq = tx.last_insert_rowid();
    // the sum is checked before it is taken: SQLite would turn an overflowing `+` into
    // a float that no reader of the column can read back as an amount
    let n = tx
        .prepare_cached(
            "INSERT INTO daily (day, email, product, model, project, micros, events) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
             ON CONFLICT(day, email, product, model, project)
             DO UPDATE SET micros = micros + excluded.micros, events = events + 1
             WHERE micros <= 9223372036854775807 - excluded.micros",
        )?
        .execute((ts.div_euclid(DAY) * DAY, &e.user, &e.product, &e.model, &project, e.micros))?;
    if n == 0 {
        return Err(ApiError::unprocessable(
            "usage/total-too-large",
            format!(
                "event `{}` would take the day's usage of `{}` on `{}`, `{}` past the largest amount",
                super::shorten(&e.id),
                super::shorten(&e.user),
                super::shorten(&e.product),
                super::shorten(&e.model)
            ),
        ));
    }
    Ok(Some((seq, project)))
}

/// True when the stored event with `e`'s id has `e`'s payload: the same digest or,
/// for a row stored before digests were kept, the same fields.
fn same_payload(tx: &Transaction<'_>, e: &NewEvent) -> ApiResult<bool> {
    type Stored = (Option<Vec<u8>>, i64, String, String, String, i64, Option<String>);
    let row: Option<Stored> = tx
        .prepare_cached(
            "SELECT digest, ts, email, product, model, micros, context FROM events WHERE id = ?1",
        )?
        .query_row([&e.id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        })
        .optional()?;
    let Some((digest, ts, user, product, model, micros, context)) = row else { return Ok(false) };
    Ok(match digest {
        Some(d) => d == e.payload.digest,
        None => {
            (!e.payload.timed || ts == e.ts.timestamp())
                && user == e.user
                && product == e.product
                && model == e.model
                && micros == e.micros
                && (!e.payload.timed || context == e.context)
        }
    })
}

/// Publishes stored events to the ledger and the live stream (after commit, in order).
///
/// Each user with a stored event is then checked against the runaway rule; a
/// finding is an alert, at most once per person per hour (the ledger remembers).
pub(crate) fn publish(app: &App, stored: Vec<(NewEvent, i64, String)>, to_ledger: bool) {
    let now = chrono::Utc::now().timestamp();
    let mut runaways = Vec::new();
    if let Ok(mut l) = app.ledger.lock() {
        if to_ledger {
            for (e, _, _) in &stored {
                l.add_usage(&e.user, &e.product, &e.model, e.micros, e.ts);
            }
        }
        let mut users: Vec<&str> = stored.iter().map(|(e, _, _)| e.user.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        runaways.extend(users.into_iter().filter_map(|u| l.runaway_alert(u, now)));
    }
    if !runaways.is_empty() {
        app.store.write_detached(move |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO alerts (at, email, kind, message) VALUES (?1, ?2, 'runaway', ?3)",
            )?;
            for r in &runaways {
                insert.execute((now, &r.name, crate::runaway::message(r)))?;
            }
            Ok(())
        });
    }
    for (e, seq, project) in stored {
        // no subscriber is not an error
        let _ = app.stream.send(Arc::new(StreamEvent::new(seq, e, project)));
    }
}

/// The events of an ingest body already parsed as JSON: one event, an array, or
/// `{"events": [...]}`, each checked; the first bad one refuses the whole batch.
pub(crate) fn parse_events(value: Value) -> ApiResult<Vec<NewEvent>> {
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut obj) if obj.contains_key("events") && !obj.contains_key("id") => {
            match obj.remove("events") {
                Some(Value::Array(items)) => items,
                _ => return Err(ApiError::bad_request("usage/bad-batch", "`events` must be an array")),
            }
        }
        v @ Value::Object(_) => vec![v],
        _ => {
            return Err(ApiError::bad_request(
                "usage/bad-batch",
                "expected an event, an array or `{\"events\": [...]}`",
            ));
        }
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("usage/empty", "the batch has no event"));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::too_large(format!(
            "a batch holds at most {MAX_BATCH} events; this one has {}",
            items.len()
        )));
    }
    let window = Window::at(crate::unix_now());
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let e: EventIn = serde_json::from_value(item)
            .map_err(|e| ApiError::bad_request("usage/bad-event", format!("event {}: {e}", i + 1)))?;
        events.push(NewEvent::from_input(e, window).map_err(|mut err| {
            err.message = format!("event {}: {}", i + 1, err.message);
            err
        })?);
    }
    Ok(events)
}

/// `POST /v1/usage/events`: stores one event, an array, or `{"events": [...]}`.
pub async fn ingest(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let value: Value = super::json_body(body)?;
    let events = parse_events(value)?;
    let results = store_events(&app, events).await?;
    let duplicates = results.iter().filter(|r| r.status == Stored::Duplicate).count();
    let accepted = results.len() - duplicates;
    Ok(axum::Json(Ingested { accepted, duplicates, results }).into_response())
}

/// What an ingest answers: counts, and one result per event in batch order.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "IngestResult")]
pub(crate) struct Ingested {
    /// Events stored now.
    pub(crate) accepted: usize,
    /// Events already stored (their ids were seen): not stored again.
    pub(crate) duplicates: usize,
    pub(crate) results: Vec<EventResult>,
}

/// What happened to one event of a batch.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct EventResult {
    pub(crate) id: String,
    pub(crate) status: Stored,
    /// The event's sequence in the stream; null for a duplicate.
    pub(crate) seq: Option<i64>,
}

/// Whether an event was stored now or had been before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Stored {
    Created,
    Duplicate,
}

/// Stores validated events in one transaction, each once by its id, and publishes
/// the new ones; the answer has one `{id, status, seq}` per event. The one ingest
/// path: `POST /v1/usage/events` and the scheduled usage pull both go through it.
pub(crate) async fn store_events(app: &App, events: Vec<NewEvent>) -> ApiResult<Vec<EventResult>> {
    let app2 = app.clone();
    let results = app
        .store
        .write(move |tx| {
            let mut projects = HashMap::new();
            let mut stored = Vec::new();
            let mut results = Vec::with_capacity(events.len());
            for (i, e) in events.into_iter().enumerate() {
                let inserted = insert_event(tx, &e, &mut projects).map_err(|mut err| {
                    err.message = format!("event {}: {}", i + 1, err.message);
                    err
                })?;
                match inserted {
                    Some((seq, project)) => {
                        results.push(EventResult {
                            id: e.id.clone(),
                            status: Stored::Created,
                            seq: Some(seq),
                        });
                        stored.push((e, seq, project));
                    }
                    None => results.push(EventResult { id: e.id, status: Stored::Duplicate, seq: None }),
                }
            }
            let after: crate::store::After = Box::new(move |ok| {
                if ok {
                    publish(&app2, stored, true);
                }
            });
            Ok((results, Some(after)))
        })
        .await?;
    let duplicates = results.iter().filter(|r| r.status == Stored::Duplicate).count();
    Metrics::add(&app.metrics.events_ingested, (results.len() - duplicates) as u64);
    Metrics::add(&app.metrics.events_duplicate, duplicates as u64);
    Ok(results)
}

/// Where a stream reader is.
struct Cursor {
    app: App,
    rx: broadcast::Receiver<Arc<StreamEvent>>,
    last: i64,
    user: Option<String>,
    product: Option<String>,
    backlog: VecDeque<(i64, String)>,
    catch_up: bool,
}

/// A stream request's user filter (a user token sees only its own) and where it
/// resumes (`Last-Event-ID`, else `after`): the same on either store.
pub(crate) fn stream_request(
    who: &Principal,
    q: &QueryPairs,
    headers: &HeaderMap,
) -> ApiResult<(Option<String>, Option<i64>)> {
    let user = who.user_filter(q.get("user"))?;
    let resume = match headers.get("last-event-id") {
        Some(v) => Some(v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()).ok_or_else(|| {
            ApiError::bad_request(
                "usage/bad-last-event-id",
                "`Last-Event-ID` must be an event sequence number",
            )
        })?),
        None => q.int("after")?,
    };
    Ok((user, resume))
}

/// `GET /v1/usage/stream`: server-sent events of new usage; resumes after `Last-Event-ID`.
pub async fn stream(
    State(app): State<App>,
    who: Principal,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    let (user, resume) = stream_request(&who, &q, &headers)?;
    // subscribe before reading the position, so nothing committed in between is missed
    let rx = app.stream.subscribe();
    let last = match resume {
        Some(n) => n.max(0),
        None => {
            app.store
                .read(|c| Ok(c.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?))
                .await?
        }
    };
    let keep_alive = app.sse_keep_alive;
    let cursor = Cursor {
        app,
        rx,
        last,
        user,
        product: q.get("product").map(str::to_string),
        backlog: VecDeque::new(),
        catch_up: true,
    };
    let events = futures_util::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some((seq, json)) = c.backlog.pop_front() {
                c.last = seq;
                let event = Event::default().id(seq.to_string()).event("usage").data(json);
                return Some((Ok::<Event, Infallible>(event), c));
            }
            if c.catch_up {
                let (after, user) = (c.last, c.user.clone());
                let page = c.app.store.read(move |conn| backlog_page(conn, after, user.as_deref())).await;
                match page {
                    Ok(rows) if rows.is_empty() => c.catch_up = false,
                    Ok(rows) => {
                        for (seq, value) in rows {
                            if c.product.as_deref().is_none_or(|p| value["product"] == p) {
                                c.backlog.push_back((seq, value.to_string()));
                            } else {
                                c.last = seq;
                            }
                        }
                    }
                    Err(_) => return None,
                }
                continue;
            }
            match c.rx.recv().await {
                Ok(ev) => {
                    if ev.seq <= c.last
                        || c.user.as_deref().is_some_and(|u| u != ev.user())
                        || c.product.as_deref().is_some_and(|p| p != ev.product())
                    {
                        continue;
                    }
                    c.backlog.push_back((ev.seq, ev.json().to_string()));
                }
                Err(broadcast::error::RecvError::Lagged(_)) => c.catch_up = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    // a comment well inside the idle timeout keeps a quiet stream from being closed as idle
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)).into_response())
}

/// A row of `SELECT seq, id, ts, email, product, model, micros, project, context FROM
/// events` as its sequence number and stream JSON.
pub(crate) fn stream_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Value)> {
    let e = NewEvent {
        id: r.get(1)?,
        ts: DateTime::from_timestamp(r.get(2)?, 0).unwrap_or_default(),
        user: r.get(3)?,
        product: r.get(4)?,
        model: r.get(5)?,
        micros: r.get(6)?,
        context: r.get(8)?,
        payload: Payload::default(),
    };
    let seq: i64 = r.get(0)?;
    let project: String = r.get(7)?;
    Ok((seq, e.to_json(seq, &project)))
}

/// Up to 500 stored events after `after`, as stream JSON.
fn backlog_page(conn: &rusqlite::Connection, after: i64, user: Option<&str>) -> ApiResult<Vec<(i64, Value)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, ts, email, product, model, micros, project, context FROM events
         WHERE seq > ?1 AND (?2 IS NULL OR email = ?2) ORDER BY seq LIMIT 500",
    )?;
    let rows = stmt.query_map((after, user), stream_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A Costs API grouping key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupBy {
    User,
    Project,
    LineItem,
    Product,
    Model,
}

/// `GET /v1/organization/costs`: OpenAI's Costs API over recorded usage, in credits.
pub async fn costs(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    let start = q.int("start_time")?.ok_or_else(|| {
        ApiError::bad_request("costs/missing-start", "`start_time` (unix seconds) is required")
    })?;
    let end = q.int("end_time")?.unwrap_or_else(|| crate::unix_now().saturating_add(1));
    if end <= start {
        return Err(ApiError::bad_request("costs/bad-range", "`end_time` must be after `start_time`"));
    }
    if let Some(w) = q.get("bucket_width")
        && w != "1d"
    {
        return Err(ApiError::bad_request("costs/bad-bucket-width", "only `bucket_width=1d` is supported"));
    }
    let limit = i64::try_from(q.page_size(7, 180)?).unwrap_or(7);
    let mut group_by = Vec::new();
    for g in q.all("group_by") {
        let key = match g.as_str() {
            "user_id" => GroupBy::User,
            "project_id" => GroupBy::Project,
            "line_item" => GroupBy::LineItem,
            "product" => GroupBy::Product,
            "model" => GroupBy::Model,
            other => {
                return Err(ApiError::bad_request(
                    "costs/bad-group-by",
                    format!(
                        "cannot group by `{}` (expected `user_id`, `project_id`, `line_item`, `product` or `model`)",
                        super::shorten(other)
                    ),
                ));
            }
        };
        if !group_by.contains(&key) {
            group_by.push(key);
        }
    }
    let first = match q.get("page") {
        None => start,
        Some(p) => match p.parse::<i64>() {
            Ok(b) if b >= start && b < end && (b - start) % DAY == 0 => b,
            _ => {
                return Err(ApiError::bad_request(
                    "costs/bad-page",
                    "`page` is not a cursor this query returned",
                ));
            }
        },
    };
    let page_end = first.saturating_add(limit.saturating_mul(DAY)).min(end);
    let has_more = page_end < end;
    let user = who.user_filter(q.get("user_id"))?;
    let by_user = group_by.contains(&GroupBy::User);
    let by_project = group_by.contains(&GroupBy::Project);
    let by_product = group_by.contains(&GroupBy::Product) || group_by.contains(&GroupBy::LineItem);
    let by_model = group_by.contains(&GroupBy::Model) || group_by.contains(&GroupBy::LineItem);
    // daily rows cover whole UTC days: usable when the page's bounds fall on midnights
    let aligned = first.rem_euclid(DAY) == 0 && page_end.rem_euclid(DAY) == 0;
    // OpenAI's filters: exact project ids and exact line items (`product, model`)
    let project_ids = q.all("project_ids");
    let line_items = q.all_exact("line_items");
    if project_ids.len() + line_items.len() > 1000 {
        return Err(ApiError::bad_request(
            "costs/too-many-filters",
            "at most 1000 `project_ids` and `line_items`",
        ));
    }
    let rows = app
        .store
        .read(move |c| {
            let (table, time) = if aligned { ("daily", "day") } else { ("events", "ts") };
            let mut filters = String::new();
            let mut params: Vec<rusqlite::types::Value> = vec![
                start.into(),
                first.into(),
                page_end.into(),
                user.map_or(rusqlite::types::Value::Null, Into::into),
            ];
            let mut any_of = |expr: &str, values: Vec<String>| {
                if values.is_empty() {
                    return;
                }
                let mut marks = Vec::new();
                for v in values {
                    params.push(v.into());
                    marks.push(format!("?{}", params.len()));
                }
                filters.push_str(&format!(" AND {expr} IN ({})", marks.join(", ")));
            };
            any_of("project", project_ids);
            any_of("(product || ', ' || model)", line_items);
            let col = |on: bool, name: &str| if on { name.to_string() } else { "''".to_string() };
            let cols = [
                col(by_user, "email"),
                col(by_project, "project"),
                col(by_product, "product"),
                col(by_model, "model"),
            ];
            let sql = format!(
                "SELECT ({time} - ?1) / {DAY} AS b, {c0}, {c1}, {c2}, {c3}, {WIDE_SUM} FROM {table}
                 WHERE {time} >= ?2 AND {time} < ?3 AND (?4 IS NULL OR email = ?4){filters}
                 GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
                c0 = cols[0],
                c1 = cols[1],
                c2 = cols[2],
                c3 = cols[3],
            );
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        wide_sum(r.get(5)?, r.get(6)?),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    let text = |on: bool, s: &str| if on && !s.is_empty() { Some(s.to_string()) } else { None };
    let mut buckets: Vec<(i64, Vec<CostResult>)> = Vec::new();
    let mut b = first;
    while b < page_end {
        buckets.push((b, Vec::new()));
        b += DAY;
    }
    for (index, email, project, product, model, micros) in rows {
        let bucket_start = start + index * DAY;
        let Some(slot) = buckets.iter_mut().find(|(s, _)| *s == bucket_start) else { continue };
        let line_item = group_by.contains(&GroupBy::LineItem).then(|| format!("{product}, {model}"));
        slot.1.push(CostResult {
            object: "organization.costs.result",
            amount: Amount { value: Credits::from_micros(micros), currency: "credits" },
            line_item,
            project_id: text(by_project, &project),
            user_id: text(by_user, &email),
            product: text(group_by.contains(&GroupBy::Product), &product),
            model: text(group_by.contains(&GroupBy::Model), &model),
        });
    }
    let next_page = if has_more { Some(page_end.to_string()) } else { None };
    if q.wants_csv()? {
        let mut out =
            String::from("start_time,end_time,user_id,project_id,line_item,product,model,amount,currency\n");
        for (s, results) in &buckets {
            for r in results {
                let field = |v: &Option<String>| v.as_deref().map(super::csv_field).unwrap_or_default();
                out.push_str(&format!(
                    "{},{},{},{},{},{},{},{},credits\n",
                    rfc3339(*s),
                    rfc3339(s + DAY),
                    field(&r.user_id),
                    field(&r.project_id),
                    field(&r.line_item),
                    field(&r.product),
                    field(&r.model),
                    r.amount.value,
                ));
            }
        }
        let mut response = super::csv_response("costs.csv", out);
        if let Some(n) = &next_page
            && let Ok(v) = n.parse()
        {
            response.headers_mut().insert("x-next-page", v);
        }
        return Ok(response);
    }
    let data = buckets
        .into_iter()
        .map(|(s, results)| Bucket { object: "bucket", start_time: s, end_time: s + DAY, results })
        .collect();
    Ok(axum::Json(CostsPage { object: "page", data, has_more, next_page }).into_response())
}

/// A page of the Costs API, shaped as OpenAI's `GET /v1/organization/costs` answers it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "CostsPage")]
pub(crate) struct CostsPage {
    #[schemars(extend("const" = "page"))]
    object: &'static str,
    data: Vec<Bucket>,
    has_more: bool,
    /// Pass as `page` for the next page; null on the last.
    next_page: Option<String>,
}

/// One day of costs.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "CostsBucket")]
pub(crate) struct Bucket {
    #[schemars(extend("const" = "bucket"))]
    object: &'static str,
    /// Unix seconds, inclusive.
    start_time: i64,
    /// Unix seconds, exclusive.
    end_time: i64,
    results: Vec<CostResult>,
}

/// The credits of one group of a day (by the `group_by` asked for; null where not grouped).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "CostsResult")]
pub(crate) struct CostResult {
    #[schemars(extend("const" = "organization.costs.result"))]
    object: &'static str,
    amount: Amount,
    /// `product, model`.
    line_item: Option<String>,
    /// The group.
    project_id: Option<String>,
    user_id: Option<String>,
    product: Option<String>,
    model: Option<String>,
}

/// An amount in credits.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "CostsAmount")]
pub(crate) struct Amount {
    value: Credits,
    #[schemars(extend("const" = "credits"))]
    currency: &'static str,
}
