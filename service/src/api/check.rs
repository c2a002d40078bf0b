//! Spend checks with reservations: reserve the worst case, then commit the actual or release.
//!
//! The decision and the hold happen together under the ledger's mutex, so no
//! interleaving of concurrent checks can pass a user total, a cap or a pool.
//! A commit records the actual amount as a usage event (durably, before the
//! answer) and turns the hold into usage. Usage is a fact: a commit of more than
//! the hold is recorded even when the difference does not fit (marked
//! `over_reservation`, with an alert and an audit row), and so is a commit up to
//! a day after the hold lapsed; the limit it passes stops the *next* check.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use budgit_engine::model::Enforcement;
use chrono::Utc;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::events::{NewEvent, Payload, insert_event, publish};
use super::{canonical_user, check_name, credits_json, json_body, path_param, rfc3339, usage_micros};
use crate::error::{ApiError, ApiResult};
use crate::ledger::{
    CheckRequest, Deciding, LATE_COMMIT_GRACE, MAX_OPEN_HOLDS, Outbox, Reservation, ReservationError,
};
use crate::metrics::Metrics;
use crate::{App, auth::Principal};

/// Default life of a reservation.
pub(crate) const DEFAULT_TTL: i64 = 300;
/// Longest life of a reservation.
pub(crate) const MAX_TTL: i64 = 3600;

/// The body of `POST /v1/check`, with the bounds the handler enforces.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CheckRequest")]
pub(crate) struct CheckIn {
    /// The user (required with the admin token; a user token checks for itself).
    #[serde(default)]
    #[schemars(email, length(max = super::MAX_EMAIL))]
    pub(crate) user: Option<String>,
    #[schemars(length(min = 1, max = super::MAX_NAME), pattern(super::NAME_PATTERN))]
    pub(crate) product: String,
    #[schemars(length(min = 1, max = super::MAX_NAME), pattern(super::NAME_PATTERN))]
    pub(crate) model: String,
    #[schemars(with = "super::UsageAmount")]
    pub(crate) credits: Credits,
    /// Reservation life (default 300).
    #[serde(default, deserialize_with = "super::whole_opt")]
    #[schemars(range(min = 1, max = MAX_TTL))]
    pub(crate) ttl_seconds: Option<i64>,
}

/// A check's request, read and bounded: the same on either store.
pub(crate) struct Asked {
    /// The canonical user, whom the token may check for.
    pub(crate) user: String,
    pub(crate) product: String,
    pub(crate) model: String,
    pub(crate) credits: Credits,
    /// `credits` in micro-credits, positive and within a usage amount's bound.
    pub(crate) micros: i64,
    /// The reservation's life in seconds, from 1 to [`MAX_TTL`].
    pub(crate) ttl: i64,
}

impl CheckIn {
    /// The request as `who` may ask it, or the error that refuses it.
    pub(crate) fn read(self, who: &Principal) -> ApiResult<Asked> {
        let user = match (self.user, who.scope()) {
            (Some(u), _) => u,
            (None, Some(own)) => own.to_string(),
            (None, None) => return Err(ApiError::bad_request("check/missing-user", "`user` is required")),
        };
        let user = canonical_user(&user)?;
        who.require_user(&user)?;
        check_name("product", &self.product)?;
        check_name("model", &self.model)?;
        if self.credits.micros() <= 0 {
            return Err(ApiError::bad_request("check/bad-credits", "`credits` must be positive"));
        }
        let micros = usage_micros("credits", self.credits)?;
        let ttl = self.ttl_seconds.unwrap_or(DEFAULT_TTL);
        if !(1..=MAX_TTL).contains(&ttl) {
            return Err(ApiError::bad_request(
                "check/bad-ttl",
                format!("`ttl_seconds` must be from 1 to {MAX_TTL}"),
            ));
        }
        Ok(Asked { user, product: self.product, model: self.model, credits: self.credits, micros, ttl })
    }
}

pub(crate) fn deciding_name(d: Deciding) -> &'static str {
    match d {
        Deciding::User => "user",
        Deciding::ProductCap => "product_cap",
        Deciding::ModelCap => "model_cap",
        Deciding::Pool => "pool",
        Deciding::RateCap => "rate_cap",
    }
}

/// What a check answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "CheckResponse")]
pub(crate) struct CheckOut<'a> {
    pub(crate) allowed: bool,
    /// The hold to commit or release; null when nothing was reserved.
    pub(crate) reservation_id: Option<String>,
    /// What the user may still spend after this check.
    pub(crate) remaining: Credits,
    /// What decided: the user's total, a product or model cap, the group's pool, or the
    /// rate cap (credits per sliding hour).
    #[schemars(extend("enum" = ["user", "product_cap", "model_cap", "pool", "rate_cap"]))]
    pub(crate) deciding: &'static str,
    /// When the hold lapses (RFC 3339); null when nothing was reserved.
    pub(crate) expires_at: Option<String>,
    #[schemars(extend("enum" = ["hard", "soft"]))]
    pub(crate) enforcement: &'static str,
    /// `over_limit` when soft enforcement let a spend past a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("const" = "over_limit"))]
    pub(crate) alert: Option<&'static str>,
    /// Why a check was refused, or let past a limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
    /// Refused by the rate cap: seconds until enough of the last hour's spend leaves
    /// the window for this amount (absent when waiting alone cannot make room).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub(crate) retry_after: Option<i64>,
}

/// What a commit answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "CommitResponse")]
pub(crate) struct CommitOut<'a> {
    pub(crate) reservation_id: &'a str,
    /// The credits recorded as usage.
    pub(crate) committed: Credits,
    /// The credits the hold reserved.
    pub(crate) reserved: Credits,
    /// The usage event's sequence; null when the event was already recorded.
    pub(crate) event_seq: Option<i64>,
    /// The event id was already recorded (a retried commit): nothing was recorded again.
    pub(crate) duplicate_event: bool,
    /// More than reserved, or after the hold lapsed: an alert and an audit row were written.
    pub(crate) over_reservation: bool,
    /// Committed after the hold lapsed.
    pub(crate) late: bool,
}

/// What a release answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "ReleaseResponse")]
pub(crate) struct ReleaseOut {
    pub(crate) reservation_id: String,
    /// The credits given back.
    pub(crate) released: Credits,
}

/// A row of `GET /v1/alerts`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Alert")]
pub(crate) struct AlertRow {
    pub(crate) seq: i64,
    /// When it was raised (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub(crate) at: String,
    pub(crate) user: String,
    #[schemars(extend("enum" = ["over_limit", "over_reservation"]))]
    pub(crate) kind: String,
    pub(crate) message: String,
}

/// `POST /v1/check`: may this user spend this much on this product and model now?
pub async fn check(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let Asked { user, product, model, credits, micros, ttl } = json_body::<CheckIn>(body)?.read(&who)?;
    let now = Utc::now();
    if !app.ledger()?.is_current(now) {
        app.reload_usage().await?;
    }
    let ts = now.timestamp();
    let ask = CheckRequest { user: &user, product: &product, model: &model, micros };
    let (decision, enforcement, flush) = {
        let mut ledger = app.ledger()?;
        let d = ledger.check(&ask, ts, ts + ttl);
        (d, ledger.settings().enforcement, ledger.claim_flush())
    };
    if flush {
        flush_reservations(&app);
    }
    if decision.too_many_holds {
        Metrics::add(&app.metrics.checks_denied, 1);
        return Err(ApiError::too_many(
            "check/too-many-holds",
            format!(
                "`{}` already has {MAX_OPEN_HOLDS} open reservations; commit or release some first",
                super::shorten(&user)
            ),
        ));
    }
    let deciding = deciding_name(decision.deciding);
    if decision.over_limit {
        let (u, what) = (user.clone(), deciding);
        let message = format!("soft enforcement allowed {credits} credits past the {what} limit");
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
        remaining: Credits::from_micros(decision.remaining),
        deciding,
        expires_at: decision.reservation.map(|_| rfc3339(decision.expires_at)),
        enforcement: if enforcement == Enforcement::Soft { "soft" } else { "hard" },
        alert: decision.over_limit.then_some("over_limit"),
        reason: decision.no_limit.then_some("no limit is applied to this user"),
        retry_after: decision.retry_after,
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
    }
}

/// The body of `POST /v1/reservations/{id}/commit`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CommitRequest")]
pub(crate) struct CommitIn {
    #[schemars(with = "super::UsageAmount")]
    pub(crate) credits: Credits,
    /// The usage event's idempotency key (default `reservation:<id>`).
    #[serde(default)]
    #[schemars(length(min = 1, max = super::MAX_NAME), pattern(super::NAME_PATTERN))]
    pub(crate) event_id: Option<String>,
    /// At most 4 KiB of JSON.
    #[serde(default)]
    pub(crate) context: Option<Value>,
}

/// A commit's request, read and bounded: the same on either store.
pub(crate) struct Committing {
    /// The actual spend in micro-credits, within a usage amount's bound.
    pub(crate) actual: i64,
    /// The usage event's id (`reservation:<id>` unless the client named one).
    pub(crate) event_id: String,
    /// The event's context as JSON text, at most 4 KiB.
    pub(crate) context: Option<String>,
}

impl CommitIn {
    /// The request for reservation `id`, or the error that refuses it.
    pub(crate) fn read(self, id: &str) -> ApiResult<Committing> {
        let actual = usage_micros("credits", self.credits)?;
        let event_id = self.event_id.unwrap_or_else(|| format!("reservation:{id}"));
        check_name("event_id", &event_id)?;
        let context = match self.context {
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
        Ok(Committing { actual, event_id, context })
    }
}

/// `POST /v1/reservations/{id}/commit`: records the actual spend and closes the reservation.
pub async fn commit(
    State(app): State<App>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let id = path_param(id)?;
    let Committing { actual, event_id, context } = json_body::<CommitIn>(body)?.read(&id)?;
    let now = Utc::now();
    let begun = app.ledger()?.begin_commit(&id, who.scope(), actual, now.timestamp());
    let original = match begun {
        Ok(r) => r,
        Err(ReservationError::Unknown) => {
            return late_commit(app, who, id, Late { event_id, actual, context, now }).await;
        }
        Err(e) => return Err(reservation_error(e)),
    };
    let mut event = NewEvent {
        id: event_id,
        ts: now,
        user: original.user.clone(),
        product: original.product.clone(),
        model: original.model.clone(),
        micros: actual,
        context,
        payload: Payload::default(),
    };
    event.payload = Payload::of(&event, Some(&id));
    let over = actual > original.micros;
    let actor = who.actor();
    let (app2, r2, rid) = (app.clone(), original.clone(), id.clone());
    let seq = app
        .store
        .write(move |tx| {
            // the event's project is the group the hold counted against: the ledger
            // mirrors the limits table, so no lookup of the user's group is needed
            let mut projects = HashMap::from([(event.user.clone(), r2.group.clone().unwrap_or_default())]);
            let stored = insert_event(tx, &event, &mut projects)?;
            tx.prepare_cached("DELETE FROM reservations WHERE id = ?1")?.execute([&rid])?;
            if over && stored.is_some() {
                record_overage(tx, &actor, &r2, &event, false)?;
            }
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
    Ok(committed(&id, actual, original.micros, seq, false))
}

/// The answer to a commit.
pub(crate) fn committed(id: &str, actual: i64, reserved: i64, seq: Option<i64>, late: bool) -> Response {
    (
        StatusCode::OK,
        axum::Json(CommitOut {
            reservation_id: id,
            committed: Credits::from_micros(actual),
            reserved: Credits::from_micros(reserved),
            event_seq: seq,
            duplicate_event: seq.is_none(),
            over_reservation: seq.is_some() && (late || actual > reserved),
            late,
        }),
    )
        .into_response()
}

/// Marks a commit of more than its hold, or after the hold lapsed: an alert and an audit row.
fn record_overage(
    tx: &rusqlite::Transaction<'_>,
    actor: &str,
    hold: &Reservation,
    event: &NewEvent,
    late: bool,
) -> ApiResult<()> {
    let (spent, held) = (Credits::from_micros(event.micros), Credits::from_micros(hold.micros));
    let message = if late {
        format!("committed {spent} credits after the hold of {held} (`{}`) lapsed", hold.id)
    } else {
        format!("committed {spent} credits on a hold of {held} (`{}`)", hold.id)
    };
    let at = event.ts.timestamp();
    tx.prepare_cached(
        "INSERT INTO alerts (at, email, kind, message) VALUES (?1, ?2, 'over_reservation', ?3)",
    )?
    .execute((at, &hold.user, &message))?;
    let old = json!({ "reservation_id": hold.id, "credits": credits_json(hold.micros) }).to_string();
    let new =
        json!({ "event_id": event.id, "credits": credits_json(event.micros), "late": late }).to_string();
    tx.prepare_cached(
        "INSERT INTO audit (at, actor, action, subject, old, new) VALUES (?1, ?2, 'usage.over_reservation', ?3, ?4, ?5)",
    )?
    .execute((at, actor, &hold.user, &old, &new))?;
    Ok(())
}

/// A commit whose hold is no longer open in the ledger.
struct Late {
    event_id: String,
    actual: i64,
    context: Option<String>,
    now: chrono::DateTime<Utc>,
}

/// Records a commit on a hold that lapsed (at most [`LATE_COMMIT_GRACE`] ago): its
/// stored row still names the user, product, model and pool, so the spend is counted
/// as usage, marked `over_reservation` and `late`, alerted and audited. With no such
/// row (never made, released, committed, or lapsed too long ago) it is unknown.
async fn late_commit(app: App, who: Principal, id: String, late: Late) -> ApiResult<Response> {
    let Late { event_id, actual, context, now } = late;
    let (owner, actor, app2, rid) = (who.scope().map(str::to_string), who.actor(), app.clone(), id.clone());
    let ts = now.timestamp();
    let (seq, reserved) = app
        .store
        .write(move |tx| {
            let row = tx
                .prepare_cached(
                    "SELECT email, product, model, micros, grp, expires_at FROM reservations
                     WHERE id = ?1 AND expires_at <= ?2 AND expires_at > ?3",
                )?
                .query_row((&rid, ts, ts.saturating_sub(LATE_COMMIT_GRACE)), |r| {
                    Ok(Reservation {
                        id: rid.clone(),
                        user: r.get(0)?,
                        product: r.get(1)?,
                        model: r.get(2)?,
                        micros: r.get(3)?,
                        group: r.get(4)?,
                        expires_at: r.get(5)?,
                        committing: false,
                    })
                })
                .optional()?;
            let Some(hold) = row else { return Err(reservation_error(ReservationError::Unknown)) };
            if owner.as_deref().is_some_and(|o| o != hold.user) {
                return Err(reservation_error(ReservationError::NotYours));
            }
            let mut event = NewEvent {
                id: event_id,
                ts: now,
                user: hold.user.clone(),
                product: hold.product.clone(),
                model: hold.model.clone(),
                micros: actual,
                context,
                payload: Payload::default(),
            };
            event.payload = Payload::of(&event, Some(&rid));
            let mut projects = HashMap::from([(event.user.clone(), hold.group.clone().unwrap_or_default())]);
            let stored = insert_event(tx, &event, &mut projects)?;
            tx.prepare_cached("DELETE FROM reservations WHERE id = ?1")?.execute([&rid])?;
            if stored.is_some() {
                record_overage(tx, &actor, &hold, &event, true)?;
            }
            let seq = stored.as_ref().map(|(s, _)| *s);
            let after: crate::store::After = Box::new(move |ok| {
                if ok && let Some((seq, project)) = stored {
                    // the hold already gave its credits back when it lapsed: the spend is new usage
                    publish(&app2, vec![(event, seq, project)], true);
                }
            });
            Ok(((seq, hold.micros), Some(after)))
        })
        .await?;
    Metrics::add(&app.metrics.reservations_committed, 1);
    if seq.is_some() {
        Metrics::add(&app.metrics.events_ingested, 1);
    }
    Ok(committed(&id, actual, reserved, seq, true))
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
    Ok(axum::Json(ReleaseOut { reservation_id: id, released: Credits::from_micros(r.micros) })
        .into_response())
}

/// `GET /v1/alerts`: alerts raised by checks (soft enforcement past a limit), newest last.
pub async fn alerts(
    State(app): State<App>,
    who: Principal,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> ApiResult<Response> {
    let super::ListQuery { limit, after, .. } =
        super::ListQuery::<i64>::parse(raw.as_deref(), 100, super::MAX_PAGE)?;
    let after = after.unwrap_or(0);
    let user = who.scope().map(str::to_string);
    let rows = app
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, email, kind, message FROM alerts WHERE seq > ?1 AND (?2 IS NULL OR email = ?2)
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt
                .query_map((after, user, super::Page::<AlertRow, i64>::read_limit(limit)), |r| {
                    Ok(AlertRow {
                        seq: r.get(0)?,
                        at: rfc3339(r.get(1)?),
                        user: r.get(2)?,
                        kind: r.get(3)?,
                        message: r.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(super::Page::cut(rows, limit, |r| r.seq).into_response())
}
