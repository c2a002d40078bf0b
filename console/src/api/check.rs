//! Spend checks with reservations: reserve the worst case, then commit the actual or release.
//!
//! The decision and the hold happen together under the ledger's mutex, so no
//! interleaving of concurrent checks can pass a user total, a cap or a pool.
//! A commit records the actual amount as a usage event (durably, before the
//! answer) and turns the hold into usage.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use budgit_engine::model::Enforcement;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::usage::{NewEvent, insert_event, publish};
use super::{canonical_user, check_name, credits_json, json_body, path_param, rfc3339};
use crate::error::{ApiError, ApiResult};
use crate::ledger::{CheckRequest, Deciding, Outbox, ReservationError};
use crate::metrics::Metrics;
use crate::{App, auth::Principal};

/// Default life of a reservation.
const DEFAULT_TTL: i64 = 300;
/// Longest life of a reservation.
const MAX_TTL: i64 = 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckIn {
    #[serde(default)]
    user: Option<String>,
    product: String,
    model: String,
    credits: Credits,
    #[serde(default)]
    ttl_seconds: Option<i64>,
}

fn deciding_name(d: Deciding) -> &'static str {
    match d {
        Deciding::User => "user",
        Deciding::ProductCap => "product_cap",
        Deciding::ModelCap => "model_cap",
        Deciding::Pool => "pool",
    }
}

/// What a check answers.
#[derive(Debug, Serialize)]
struct CheckOut<'a> {
    allowed: bool,
    reservation_id: Option<String>,
    remaining: Value,
    deciding: &'static str,
    expires_at: Option<String>,
    enforcement: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// `POST /v1/check`: may this user spend this much on this product and model now?
pub async fn check(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: CheckIn = json_body(body)?;
    let user = match (req.user, who.scope()) {
        (Some(u), _) => u,
        (None, Some(own)) => own.to_string(),
        (None, None) => return Err(ApiError::bad_request("check/missing-user", "`user` is required")),
    };
    let user = canonical_user(&user)?;
    who.require_user(&user)?;
    check_name("product", &req.product)?;
    check_name("model", &req.model)?;
    if req.credits.micros() <= 0 {
        return Err(ApiError::bad_request("check/bad-credits", "`credits` must be positive"));
    }
    let ttl = req.ttl_seconds.unwrap_or(DEFAULT_TTL);
    if !(1..=MAX_TTL).contains(&ttl) {
        return Err(ApiError::bad_request(
            "check/bad-ttl",
            format!("`ttl_seconds` must be from 1 to {MAX_TTL}"),
        ));
    }
    let now = Utc::now();
    if !app.ledger()?.is_current(now) {
        app.reload_usage().await?;
    }
    let ts = now.timestamp();
    let ask =
        CheckRequest { user: &user, product: &req.product, model: &req.model, micros: req.credits.micros() };
    let (decision, enforcement, flush) = {
        let mut ledger = app.ledger()?;
        let d = ledger.check(&ask, ts, ts + ttl);
        (d, ledger.settings().enforcement, ledger.claim_flush())
    };
    if flush {
        flush_reservations(&app);
    }
    let deciding = deciding_name(decision.deciding);
    if decision.over_limit {
        let (u, what) = (user.clone(), deciding);
        let message = format!("soft enforcement allowed {} credits past the {what} limit", req.credits);
        app.store.write_detached(move |tx| {
            tx.execute(
                "INSERT INTO alerts (at, email, kind, message) VALUES (?1, ?2, 'over_limit', ?3)",
                (ts, &u, &message),
            )?;
            Ok(())
        });
        Metrics::add(&app.metrics.checks_soft_over, 1);
    } else if decision.allowed {
        Metrics::add(&app.metrics.checks_allowed, 1);
    } else {
        Metrics::add(&app.metrics.checks_denied, 1);
    }
    let out = CheckOut {
        allowed: decision.allowed,
        reservation_id: decision.reservation.map(|r| r.to_string()),
        remaining: credits_json(decision.remaining),
        deciding,
        expires_at: decision.reservation.map(|_| rfc3339(ts + ttl)),
        enforcement: if enforcement == Enforcement::Soft { "soft" } else { "hard" },
        alert: decision.over_limit.then_some("over_limit"),
        reason: decision.no_limit.then_some("no limit is applied to this user"),
    };
    Ok(axum::Json(out).into_response())
}

/// Queues the writer job that stores the ledger's reservation changes (see [`Ledger::take_outbox`]).
///
/// The answer does not wait for it: a hold made just before a crash can be lost,
/// which releases it (never an overspend). Holds that end before the job runs are
/// never written, and one job takes every change made while it waited.
///
/// [`Ledger::take_outbox`]: crate::ledger::Ledger::take_outbox
fn flush_reservations(app: &App) {
    let app2 = app.clone();
    app.store.write_detached(move |tx| {
        let out = match app2.ledger.lock() {
            Ok(mut l) => l.take_outbox(crate::unix_now()),
            Err(_) => return Err(ApiError::store(&"the ledger lock is poisoned")),
        };
        save_reservations(tx, &out)
    });
}

/// Writes reservation rows: new holds, ended holds, and rows that lapsed while the service was down.
fn save_reservations(tx: &rusqlite::Transaction<'_>, out: &Outbox) -> ApiResult<()> {
    if !out.put.is_empty() {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO reservations (id, email, product, model, micros, grp, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for r in &out.put {
            put.execute((&r.id, &r.user, &r.product, &r.model, r.micros, &r.group, r.expires_at))?;
        }
    }
    if !out.delete.is_empty() {
        let mut delete = tx.prepare_cached("DELETE FROM reservations WHERE id = ?1")?;
        for id in &out.delete {
            delete.execute([id])?;
        }
    }
    if let Some(before) = out.sweep_before {
        tx.prepare_cached("DELETE FROM reservations WHERE expires_at <= ?1")?.execute([before])?;
    }
    Ok(())
}

fn reservation_error(e: ReservationError) -> ApiError {
    match e {
        ReservationError::Unknown => ApiError::not_found(
            "reservation/unknown",
            "no open reservation has this id (it expired, or was committed or released)",
        ),
        ReservationError::NotYours => ApiError::forbidden("a user token sees only its own user's data"),
        ReservationError::Busy => {
            ApiError::conflict("reservation/busy", "the reservation is being committed")
        }
        ReservationError::Exceeds { remaining, deciding } => ApiError::conflict(
            "reservation/exceeds",
            "the actual amount exceeds the reservation and the difference does not fit",
        )
        .with_extra(json!({ "remaining": credits_json(remaining), "deciding": deciding_name(deciding) })),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitIn {
    credits: Credits,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    context: Option<Value>,
}

/// `POST /v1/reservations/{id}/commit`: records the actual spend and closes the reservation.
pub async fn commit(
    State(app): State<App>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let id = path_param(id)?;
    let req: CommitIn = json_body(body)?;
    let actual = req.credits.micros();
    if actual < 0 {
        return Err(ApiError::bad_request("reservation/bad-credits", "`credits` must not be negative"));
    }
    let event_id = req.event_id.unwrap_or_else(|| format!("reservation:{id}"));
    check_name("event_id", &event_id)?;
    let context = match req.context {
        None | Some(Value::Null) => None,
        Some(v) => {
            let t = v.to_string();
            if t.len() > 4096 {
                return Err(ApiError::bad_request(
                    "usage/context-too-large",
                    "`context` must be at most 4096 bytes",
                ));
            }
            Some(t)
        }
    };
    let now = Utc::now();
    let original =
        app.ledger()?.begin_commit(&id, who.scope(), actual, now.timestamp()).map_err(reservation_error)?;
    let event = NewEvent {
        id: event_id,
        ts: now,
        user: original.user.clone(),
        product: original.product.clone(),
        model: original.model.clone(),
        micros: actual,
        context,
    };
    let (app2, r2, rid) = (app.clone(), original.clone(), id.clone());
    let seq = app
        .store
        .write(move |tx| {
            // the event's project is the group the hold counted against: the ledger
            // mirrors the limits table, so no lookup of the user's group is needed
            let mut projects = HashMap::from([(event.user.clone(), r2.group.clone().unwrap_or_default())]);
            let stored = insert_event(tx, &event, &mut projects)?;
            tx.prepare_cached("DELETE FROM reservations WHERE id = ?1")?.execute([&rid])?;
            let seq = stored.as_ref().map(|(s, _)| *s);
            let after: crate::store::After = Box::new(move |ok| {
                let counted = if stored.is_some() { actual } else { 0 };
                let reopened = match app2.ledger.lock() {
                    Ok(mut l) => {
                        l.finish_commit(&r2, counted, event.ts, ok);
                        l.claim_flush()
                    }
                    Err(_) => false,
                };
                if reopened {
                    flush_reservations(&app2);
                }
                if ok && let Some((seq, project)) = stored {
                    publish(&app2, vec![(event, seq, project)], false);
                }
            });
            Ok((seq, Some(after)))
        })
        .await;
    let seq = match seq {
        Ok(s) => s,
        Err(e) => {
            // the job failed before commit: its after-callback never ran, so reopen here
            let reopened = match app.ledger.lock() {
                Ok(mut l) => {
                    l.finish_commit(&original, 0, now, false);
                    l.claim_flush()
                }
                Err(_) => false,
            };
            if reopened {
                flush_reservations(&app);
            }
            return Err(e);
        }
    };
    Metrics::add(&app.metrics.reservations_committed, 1);
    if seq.is_some() {
        Metrics::add(&app.metrics.events_ingested, 1);
    }
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "reservation_id": id,
            "committed": credits_json(actual),
            "reserved": credits_json(original.micros),
            "event_seq": seq,
            "duplicate_event": seq.is_none(),
        })),
    )
        .into_response())
}

/// `POST /v1/reservations/{id}/release`: gives the held credits back.
pub async fn release(
    State(app): State<App>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let id = path_param(id)?;
    let (r, flush) = {
        let mut ledger = app.ledger()?;
        let r = ledger.release(&id, who.scope()).map_err(reservation_error)?;
        (r, ledger.claim_flush())
    };
    if flush {
        flush_reservations(&app);
    }
    Metrics::add(&app.metrics.reservations_released, 1);
    Ok(axum::Json(json!({ "reservation_id": id, "released": credits_json(r.micros) })).into_response())
}

/// `GET /v1/alerts`: alerts raised by checks (soft enforcement past a limit), newest last.
pub async fn alerts(
    State(app): State<App>,
    who: Principal,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> ApiResult<Response> {
    let q = super::QueryPairs::parse(raw.as_deref())?;
    let limit = q.page_size(100, super::MAX_PAGE)?;
    let after = q.int("after")?.unwrap_or(0);
    let user = who.scope().map(str::to_string);
    let (rows, has_more) = app
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, email, kind, message FROM alerts WHERE seq > ?1 AND (?2 IS NULL OR email = ?2)
                 ORDER BY seq LIMIT ?3",
            )?;
            let mut rows = stmt
                .query_map((after, user, i64::try_from(limit + 1).unwrap_or(i64::MAX)), |r| {
                    Ok(json!({
                        "seq": r.get::<_, i64>(0)?,
                        "at": rfc3339(r.get(1)?),
                        "user": r.get::<_, String>(2)?,
                        "kind": r.get::<_, String>(3)?,
                        "message": r.get::<_, String>(4)?,
                    }))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let has_more = rows.len() > limit;
            rows.truncate(limit);
            Ok((rows, has_more))
        })
        .await?;
    let next = if has_more { rows.last().and_then(|r| r.get("seq").cloned()) } else { None };
    Ok(super::list_response(rows, has_more, next))
}
