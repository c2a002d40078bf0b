//! The latest usage events in memory, so the activity list is full on page load.
//!
//! The last [`KEPT`] events are read once from the store, newest first by sequence
//! (a range of the primary key, not a scan), then kept current from the live stream
//! like the aggregates: a request first applies what its receiver holds, so a read
//! made after an ingest call answered includes that event. A receiver that fell
//! behind drops the copy, and the next read loads it again.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tokio::sync::broadcast;

use super::poisoned;
use super::view::NO_GROUP;
use crate::api::QueryPairs;
use crate::api::events::stream_row;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::{App, StreamEvent};

/// Events kept in memory (the most a read returns).
pub(crate) const KEPT: usize = 500;
/// Events a read returns by default.
const PAGE: usize = 50;

/// One kept event: its stream JSON and what reads filter on.
#[derive(Debug)]
struct Kept {
    product: String,
    group: String,
    json: Value,
}

impl Kept {
    /// The team the event counts in: its group, or [`NO_GROUP`] for a user without one.
    fn team(&self) -> &str {
        if self.group.is_empty() { NO_GROUP } else { &self.group }
    }

    fn new(json: Value) -> Kept {
        let text = |k: &str| json[k].as_str().unwrap_or("").to_string();
        Kept { product: text("product"), group: text("project"), json }
    }
}

/// The latest events and the stream receiver that keeps them current.
pub(crate) struct Recent {
    /// Oldest first.
    events: VecDeque<Kept>,
    /// The highest sequence seen, kept or not.
    last_seq: i64,
    rx: broadcast::Receiver<Arc<StreamEvent>>,
}

impl Recent {
    fn push(&mut self, seq: i64, json: Value) {
        if seq <= self.last_seq {
            return;
        }
        self.last_seq = seq;
        self.events.push_back(Kept::new(json));
        while self.events.len() > KEPT {
            self.events.pop_front();
        }
    }
}

/// Applies what the stream holds; a receiver that fell behind drops the copy.
fn drain(recent: &mut Option<Recent>) {
    let Some(r) = recent.as_mut() else { return };
    loop {
        match r.rx.try_recv() {
            Ok(ev) => r.push(ev.seq, ev.value()),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => break,
            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                *recent = None;
                return;
            }
        }
    }
}

/// The newest [`KEPT`] stored events, newest first, as stream JSON.
fn newest(conn: &rusqlite::Connection) -> ApiResult<Vec<(i64, Value)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, ts, email, product, model, micros, project, context FROM events
         ORDER BY seq DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([KEPT as i64], stream_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Loads the latest events unless they are held.
async fn ensure(app: &App) -> ApiResult<()> {
    let state = &app.dashboard;
    let held = || -> ApiResult<bool> {
        let mut recent = state.recent.lock().map_err(poisoned)?;
        drain(&mut recent);
        Ok(recent.is_some())
    };
    if held()? {
        return Ok(());
    }
    let _loading = state.recent_loading.lock().await;
    if held()? {
        return Ok(());
    }
    // subscribe before reading, so nothing committed in between is missed; `push`
    // skips what the read already holds
    let rx = app.stream.subscribe();
    let rows = app.store.read(newest).await?;
    let mut r = Recent { events: VecDeque::with_capacity(KEPT), last_seq: 0, rx };
    for (seq, json) in rows.into_iter().rev() {
        r.push(seq, json);
    }
    let mut recent = state.recent.lock().map_err(poisoned)?;
    *recent = Some(r);
    drain(&mut recent);
    Ok(())
}

/// `GET /v1/usage/events/recent?limit=&product=&group=`: the latest events (`group=(no group)`: those of users without a group), newest
/// first, from the last [`KEPT`] held in memory; `last_seq` is where a stream opened
/// with `after=last_seq` continues without a gap.
pub async fn recent_events(
    State(app): State<App>,
    who: Principal,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    who.require_admin()?;
    let limit = q.page_size(PAGE, KEPT)?;
    let product = q.get("product").filter(|p| !p.is_empty());
    let group = q.get("group").filter(|g| !g.is_empty());
    ensure(&app).await?;
    let recent = app.dashboard.recent.lock().map_err(poisoned)?;
    let Some(r) = recent.as_ref() else {
        return Err(ApiError::store(&"the latest events could not be held"));
    };
    let data: Vec<&Value> = r
        .events
        .iter()
        .rev()
        .filter(|e| product.is_none_or(|p| e.product == p) && group.is_none_or(|g| e.team() == g))
        .take(limit)
        .map(|e| &e.json)
        .collect();
    let body = RecentOut { object: "list", data, last_seq: r.last_seq, kept: KEPT };
    let body = axum::Json(body).into_response();
    drop(recent);
    Ok(body)
}

/// What `/v1/usage/events/recent` answers: the latest events, newest first.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "RecentEvents")]
pub(crate) struct RecentOut<'a> {
    #[schemars(extend("const" = "list"))]
    object: &'static str,
    /// The events as the stream sent them.
    #[schemars(with = "Vec<crate::api::events::Shown<'static>>")]
    data: Vec<&'a Value>,
    /// The highest event sequence seen, shown or not.
    last_seq: i64,
    /// Events held in memory.
    kept: usize,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn keeps_the_newest_once_in_sequence_order() {
        let (_tx, rx) = broadcast::channel(4);
        let mut r = Recent { events: VecDeque::new(), last_seq: 0, rx };
        for seq in 1..=(KEPT as i64 + 2) {
            r.push(seq, json!({ "seq": seq, "product": "codex", "project": "eng" }));
        }
        r.push(3, json!({ "seq": 3 }));
        assert_eq!(r.events.len(), KEPT);
        assert_eq!((&r.events[0].json["seq"], r.last_seq), (&json!(3), KEPT as i64 + 2));
        assert_eq!((r.events[0].product.as_str(), r.events[0].group.as_str()), ("codex", "eng"));
    }
}
