//! The API as `budgit serve --store postgres://…` answers it: several replicas on one
//! database, so nothing a check depends on lives in a process.
//!
//! A check takes row locks in the database — the user's `limits` row, then the pool's
//! `pools` row, always in that order — and then sums the period's usage and the open
//! holds in one statement (one snapshot) before inserting its hold, all in one
//! transaction. Two checks that share a user or a pool therefore run one after the
//! other whichever replica they reach, and each sees the holds and usage the other
//! committed: replicas together can never pass a limit, a cap or a pool. A commit
//! turns a hold into a usage event in one transaction (the sum it leaves is the same
//! or larger, never smaller, while it runs), a release deletes the hold.
//!
//! Routes not ported to this store yet answer 501 `store/not-supported` naming the
//! store (`docs/serve.md` lists what works here), never an answer from the wrong data.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequestParts, MatchedPath, Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use budgit_engine::Credits;
use budgit_engine::model::{Enforcement, Limit};
use budgit_engine::workspace::ItemStatus;
use budgit_engine::workspace::wire::{ItemResult, PoolRow, SetLimitsAnswer};
use chrono::Utc;
use deadpool_postgres::GenericClient;
use serde_json::{Value, json};

use super::check::{
    AlertRow, Asked, CheckIn, CheckOut, CommitIn, Committing, ReleaseOut, committed, deciding_name,
};
use super::events::{EventResult, Ingested, NewEvent, Payload, Stored as StoredEvent, parse_events};
use super::limits::{LimitOut, SetBatch, Stored, prepare_set};
use super::{ListQuery, Page, json_body, path_param};
use crate::StoredSettings;
use crate::auth::{Principal, Tokens};
use crate::error::{ApiError, ApiResult};
use crate::ledger::{
    Deciding, LATE_COMMIT_GRACE, Ledger, MAX_OPEN_HOLDS, POOL_SHARE_PERCENT, POOL_SHARE_TTL, RATE_WINDOW,
    Settings,
};
use crate::pg::Pg;

/// The transaction-level advisory lock every transaction that stores usage events takes
/// just before its first insert: it is held until the commit, so sequence numbers become
/// visible in order and a stream reading `seq > last` never skips one that commits late.
const EVENTS_LOCK: i64 = 0x0000_6275_6467_6975;

/// How often an event stream with nothing new asks the database again.
const STREAM_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// What every request of a PostgreSQL-backed replica shares.
pub(crate) struct PgState {
    pub(crate) pg: Pg,
    pub(crate) tokens: Tokens,
    /// How often an event stream sends a keep-alive comment (inside the idle timeout).
    pub(crate) sse_keep_alive: std::time::Duration,
    /// Turns true when the replica starts shutting down: event streams end.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
}

pub(crate) type PgApp = Arc<PgState>;

impl FromRequestParts<PgApp> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &PgApp) -> Result<Self, Self::Rejection> {
        app.tokens.authenticate_request(&parts.method, &parts.headers)
    }
}

/// The routes of the SQLite store that this one does not serve yet: each answers 501.
const NOT_PORTED: &[&str] = &[
    "/metrics",
    "/openapi.json",
    "/v1/users/import",
    "/v1/users/remove",
    "/v1/users",
    "/v1/users/{email}",
    "/v1/users/{email}/tokens",
    "/v1/admin/token",
    "/v1/audit",
    "/v1/usage/events/recent",
    "/v1/organization/costs",
    "/v1/requests",
    "/v1/requests/{id}/approve",
    "/v1/requests/{id}/decline",
    "/v1/leases/{name}",
    "/v1/groups",
    "/v1/proposals",
    "/v1/requests/{id}/propose",
    "/v1/reconciler/status",
    "/v1/reconciler/runs",
    "/v1/overrides",
    "/v1/overrides/review",
    "/v1/overrides/{name}/lapse",
    "/v1/overrides/{name}/move",
    "/v1/workspace/default",
    "/v1/workspace/default/propose",
    "/v1/dashboard/summary",
    "/v1/dashboard/users",
    "/v1/dashboard/trends",
    "/v1/dashboard/breakdown",
    "/v1/dashboard/mix",
    "/v1/dashboard/runaway",
    "/v1/dashboard/teams/{group}",
    "/v1/dashboard/people/{email}",
    "/v1/dashboard/value",
    "/v1/outcomes",
    "/v1/me",
    "/",
    "/console",
    "/console/",
    "/console/login",
    "/console/me",
    "/console/session",
    "/assets/{*file}",
];

/// The router of a replica on PostgreSQL.
pub(crate) fn router(app: PgApp) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/limits", get(list_limits).put(set_limits))
        .route("/v1/pools", get(list_pools))
        .route("/v1/alerts", get(list_alerts))
        .route("/v1/usage/events", post(ingest))
        .route("/v1/usage/stream", get(stream))
        .route("/v1/check", post(check))
        .route("/v1/reservations/{id}/commit", post(commit))
        .route("/v1/reservations/{id}/release", post(release));
    for path in NOT_PORTED {
        router = router.route(path, any(not_ported));
    }
    router
        .fallback(super::not_found)
        .method_not_allowed_fallback(super::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(super::MAX_BODY))
        .layer(middleware::from_fn(track))
        .with_state(app)
}

/// `Cache-Control: no-store` on every answer, and the request log, as on SQLite.
async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    super::finish(&method, route, &mut response, started.elapsed());
    response
}

async fn not_ported(request: Request) -> ApiError {
    let route = request.extensions().get::<MatchedPath>().map_or("this endpoint", MatchedPath::as_str);
    ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "store/not-supported",
        format!("`{route}` is not served with a PostgreSQL store yet (it is with the SQLite store)"),
    )
}

/// `/healthz`: 200 while the database answers, else 503 (a load balancer then sends
/// the traffic to a replica that can reach it).
async fn healthz(State(app): State<PgApp>) -> Response {
    if app.pg.healthy().await {
        axum::Json(json!({ "status": "ok" })).into_response()
    } else {
        ApiError::store(&"the database does not answer").into_response()
    }
}

/// Reads the stored settings (defaults when none or unreadable, as the SQLite store does).
fn settings_of(text: Option<&str>) -> Settings {
    text.and_then(|t| serde_json::from_str::<StoredSettings>(t).ok())
        .and_then(|s| s.to_settings())
        .unwrap_or_default()
}

/// A reservation id: `rsv_` and 40 random hex digits (the SQLite store's shape).
fn reservation_id() -> ApiResult<String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::store(&e))?;
    Ok(format!("rsv_{}", crate::auth::hex(&bytes)))
}

/// What one check decided (the database's part).
struct Decided {
    allowed: bool,
    reservation: Option<(String, i64)>,
    remaining: i64,
    deciding: Deciding,
    over_limit: bool,
    no_limit: bool,
    too_many_holds: bool,
    enforcement: Enforcement,
}

// Every statement is prepared once per pooled connection (`prepare_cached`): a check is a
// few round trips, and a statement sent as text would cost a parse and a plan on each.

/// The sums a check compares with the limits, read in one statement (one snapshot).
///
/// Each is a range of an index (`events_email_ts`, the pool's members through
/// `limits_grp`), so a check reads the period's events of its user and of its pool's
/// members: it grows with their usage, not with the whole table's.
const SUMS_SQL: &str = "SELECT
    (SELECT COALESCE(SUM(micros), 0)::BIGINT FROM events WHERE email = $1 AND ts >= $2 AND ts < $3),
    (SELECT COALESCE(SUM(micros), 0)::BIGINT FROM reservations WHERE email = $1 AND expires_at > $4),
    (SELECT COALESCE(SUM(micros), 0)::BIGINT FROM events WHERE email = $1 AND product = $5 AND ts >= $2 AND ts < $3),
    (SELECT COALESCE(SUM(micros), 0)::BIGINT FROM reservations WHERE email = $1 AND product = $5 AND expires_at > $4),
    (SELECT COALESCE(SUM(micros), 0)::BIGINT FROM events WHERE email = $1 AND model = $6 AND ts >= $2 AND ts < $3),
    (SELECT COALESCE(SUM(micros), 0)::BIGINT FROM reservations WHERE email = $1 AND model = $6 AND expires_at > $4),
    (SELECT COALESCE(SUM((SELECT SUM(e.micros) FROM events e WHERE e.email = l.email AND e.ts >= $2 AND e.ts < $3)), 0)::BIGINT
        FROM limits l WHERE $7::TEXT IS NOT NULL AND l.grp = $7),
    (SELECT COALESCE(SUM(micros), 0)::BIGINT FROM reservations WHERE $7::TEXT IS NOT NULL AND grp = $7 AND expires_at > $4),
    (SELECT COALESCE(SUM(micros), 0)::BIGINT FROM events WHERE email = $1 AND ts > $8),
    (SELECT COUNT(*) FROM reservations WHERE email = $1 AND expires_at > $4)";

/// `POST /v1/check` on PostgreSQL: the decision and the hold in one transaction.
async fn check(
    State(app): State<PgApp>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let Asked { user, product, model, micros, ttl, .. } = json_body::<CheckIn>(body)?.read(&who)?;
    let d = Pg::timed(async {
        let mut client = app.pg.client().await?;
        let tx = client.transaction().await?;
        let now = Utc::now();
        let ts = now.timestamp();
        // the user's row first, then the pool's: every check locks in this order
        let row = tx
            .query_opt(
                "SELECT l.value, l.grp, (SELECT value FROM meta WHERE key = 'settings')
                 FROM limits l WHERE l.email = $1 FOR UPDATE OF l",
                &[&user],
            )
            .await?;
        let Some(row) = row else {
            let settings: Option<String> = tx
                .query_opt(&tx.prepare_cached("SELECT value FROM meta WHERE key = 'settings'").await?, &[])
                .await?
                .map(|r| r.get(0));
            return Ok(Decided::unlimited(settings_of(settings.as_deref()).enforcement));
        };
        let (value, group, settings): (String, Option<String>, Option<String>) =
            (row.get(0), row.get(1), row.get(2));
        let settings = settings_of(settings.as_deref());
        let limit: Limit =
            serde_json::from_str(&value).map_err(|e| ApiError::store(&format!("a stored limit: {e}")))?;
        let pool: Option<i64> = match &group {
            Some(g) => tx
                .query_opt("SELECT micros FROM pools WHERE grp = $1 FOR UPDATE", &[g])
                .await?
                .map(|r| r.get(0)),
            None => None,
        };
        let period = Ledger::period_for(&settings, now);
        let sums = tx
            .query_one(
                SUMS_SQL,
                &[
                    &user,
                    &period.start.timestamp(),
                    &period.end.timestamp(),
                    &ts,
                    &product,
                    &model,
                    &pool.and(group.as_deref()),
                    &(ts - RATE_WINDOW),
                ],
            )
            .await?;
        let s = |i: usize| -> i64 { sums.get(i) };
        let mut best = (limit.credits.micros().saturating_sub(s(0).saturating_add(s(1))), Deciding::User);
        let mut consider = |room: i64, which: Deciding| {
            if room < best.0 {
                best = (room, which);
            }
        };
        if let Some(cap) = limit.products.get(&product) {
            consider(cap.micros().saturating_sub(s(2).saturating_add(s(3))), Deciding::ProductCap);
        }
        if let Some(cap) = limit.models.get(&model) {
            consider(cap.micros().saturating_sub(s(4).saturating_add(s(5))), Deciding::ModelCap);
        }
        if let Some(pool) = pool {
            consider(pool.saturating_sub(s(6).saturating_add(s(7))), Deciding::Pool);
        }
        if let Some(rate) = limit.per_hour {
            // every open hold counts: it may be committed within the hour
            consider(rate.micros().saturating_sub(s(8).saturating_add(s(1))), Deciding::RateCap);
        }
        let (room, deciding) = best;
        let fits = micros <= room;
        let too_many_holds = s(9) >= i64::from(MAX_OPEN_HOLDS);
        if too_many_holds || (!fits && settings.enforcement != Enforcement::Soft) {
            tx.commit().await?;
            return Ok(Decided {
                allowed: false,
                reservation: None,
                remaining: room.max(0),
                deciding,
                over_limit: false,
                no_limit: false,
                too_many_holds,
                enforcement: settings.enforcement,
            });
        }
        let mut expires_at = ts.saturating_add(ttl);
        if let Some(pool) = pool
            && i128::from(micros) * 100 > i128::from(pool) * i128::from(POOL_SHARE_PERCENT)
        {
            // a large share of a pool is held briefly, as the SQLite store's ledger does
            expires_at = expires_at.min(ts.saturating_add(POOL_SHARE_TTL));
        }
        let id = reservation_id()?;
        let held_group = pool.and(group.clone());
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO reservations (id, email, product, model, micros, grp, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await?,
            &[&id, &user, &product, &model, &micros, &held_group, &expires_at],
        )
        .await?;
        if !fits {
            let message = format!(
                "soft enforcement allowed {} credits past the {} limit",
                Credits::from_micros(micros),
                deciding_name(deciding)
            );
            tx.execute(
                &tx.prepare_cached(
                    "INSERT INTO alerts (at, email, kind, message) VALUES ($1, $2, 'over_limit', $3)",
                )
                .await?,
                &[&ts, &user, &message],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Decided {
            allowed: true,
            reservation: Some((id, expires_at)),
            remaining: room.saturating_sub(micros),
            deciding,
            over_limit: !fits,
            no_limit: false,
            too_many_holds: false,
            enforcement: settings.enforcement,
        })
    })
    .await?;
    if d.too_many_holds {
        return Err(ApiError::too_many(
            "check/too-many-holds",
            format!(
                "`{}` already has {MAX_OPEN_HOLDS} open reservations; commit or release some first",
                super::shorten(&user)
            ),
        ));
    }
    let out = CheckOut {
        allowed: d.allowed,
        expires_at: d.reservation.as_ref().map(|(_, at)| super::rfc3339(*at)),
        reservation_id: d.reservation.map(|(id, _)| id),
        remaining: Credits::from_micros(d.remaining),
        deciding: deciding_name(d.deciding),
        enforcement: if d.enforcement == Enforcement::Soft { "soft" } else { "hard" },
        alert: d.over_limit.then_some("over_limit"),
        reason: d.no_limit.then_some("no limit is applied to this user"),
        // the rate window is not kept per second here: no estimate of when room frees up
        retry_after: None,
    };
    Ok(axum::Json(out).into_response())
}

impl Decided {
    fn unlimited(enforcement: Enforcement) -> Decided {
        Decided {
            allowed: false,
            reservation: None,
            remaining: 0,
            deciding: Deciding::User,
            over_limit: false,
            no_limit: true,
            too_many_holds: false,
            enforcement,
        }
    }
}

fn unknown_reservation() -> ApiError {
    ApiError::not_found(
        "reservation/unknown",
        "no open reservation has this id (it expired, or was committed or released)",
    )
}

/// `POST /v1/reservations/{id}/commit` on PostgreSQL: the hold becomes a usage event
/// in one transaction; a commit after the hold lapsed (within a day) is recorded as late.
async fn commit(
    State(app): State<PgApp>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let id = path_param(id)?;
    let Committing { actual, event_id, context } = json_body::<CommitIn>(body)?.read(&id)?;
    let owner = who.scope().map(str::to_string);
    let actor = who.actor();
    let (seq, reserved, late) = Pg::timed(async {
        let mut client = app.pg.client().await?;
        let tx = client.transaction().await?;
        let now = Utc::now();
        let ts = now.timestamp();
        let row = tx
            .query_opt(
                "SELECT email, product, model, micros, grp, expires_at FROM reservations WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await?;
        let Some(row) = row else { return Err(unknown_reservation()) };
        let (user, product, model, held, group, expires_at): (String, String, String, i64, Option<String>, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
        if expires_at <= ts.saturating_sub(LATE_COMMIT_GRACE) {
            return Err(unknown_reservation());
        }
        if owner.as_deref().is_some_and(|o| o != user) {
            return Err(ApiError::forbidden("a user token sees only its own user's data"));
        }
        let late = expires_at <= ts;
        let mut event = NewEvent {
            id: event_id.clone(),
            ts: now,
            user: user.clone(),
            product,
            model,
            micros: actual,
            context: context.clone(),
            payload: Payload::default(),
        };
        event.payload = Payload::of(&event, Some(&id));
        tx.execute(&tx.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?, &[&EVENTS_LOCK]).await?;
        let seq = insert_event(&tx, &event, group.as_deref().unwrap_or("")).await?;
        tx.execute(&tx.prepare_cached("DELETE FROM reservations WHERE id = $1").await?, &[&id]).await?;
        if seq.is_some() && (late || actual > held) {
            let (spent, hold) = (Credits::from_micros(actual), Credits::from_micros(held));
            let message = if late {
                format!("committed {spent} credits after the hold of {hold} (`{id}`) lapsed")
            } else {
                format!("committed {spent} credits on a hold of {hold} (`{id}`)")
            };
            tx.execute(
                &tx.prepare_cached("INSERT INTO alerts (at, email, kind, message) VALUES ($1, $2, 'over_reservation', $3)").await?,
                &[&ts, &user, &message],
            )
            .await?;
            let old = json!({ "reservation_id": id, "credits": super::credits_json(held) }).to_string();
            let new = json!({ "event_id": event.id, "credits": super::credits_json(actual), "late": late })
                .to_string();
            tx.execute(
                &tx.prepare_cached("INSERT INTO audit (at, actor, action, subject, old, new) VALUES ($1, $2, 'usage.over_reservation', $3, $4, $5)").await?,
                &[&ts, &actor, &user, &old, &new],
            )
            .await?;
        }
        tx.commit().await?;
        Ok((seq, held, late))
    })
    .await?;
    Ok(committed(&id, actual, reserved, seq, late))
}

/// Stores a usage event unless its id is known: `None` for a known id with the same
/// payload, 409 `idempotency/conflict` for a known id with another one.
async fn insert_event(tx: &impl GenericClient, e: &NewEvent, project: &str) -> ApiResult<Option<i64>> {
    let digest = &e.payload.digest[..];
    let row = tx
        .query_opt(
            "INSERT INTO events (id, ts, email, product, model, micros, project, context, digest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING RETURNING seq",
            &[
                &e.id,
                &e.ts.timestamp(),
                &e.user,
                &e.product,
                &e.model,
                &e.micros,
                &project,
                &e.context,
                &digest,
            ],
        )
        .await?;
    if let Some(row) = row {
        return Ok(Some(row.get(0)));
    }
    let stored: Option<Vec<u8>> = tx
        .query_opt(&tx.prepare_cached("SELECT digest FROM events WHERE id = $1").await?, &[&e.id])
        .await?
        .and_then(|r| r.get(0));
    if stored.as_deref() == Some(digest) {
        Ok(None)
    } else {
        Err(ApiError::conflict(
            "idempotency/conflict",
            format!("the event id `{}` was already used for a different event", super::shorten(&e.id)),
        ))
    }
}

/// `POST /v1/usage/events` on PostgreSQL: a batch in one transaction, each event
/// stored once by its id (a retried batch, on any replica, reports duplicates; an id
/// reused for another payload is a 409 and stores nothing of the batch).
async fn ingest(
    State(app): State<PgApp>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let value: Value = json_body(body)?;
    let events = parse_events(value)?;
    let results = Pg::timed(async {
        let mut client = app.pg.client().await?;
        let tx = client.transaction().await?;
        let mut projects: HashMap<String, String> = HashMap::new();
        let mut results = Vec::with_capacity(events.len());
        tx.execute(&tx.prepare_cached("SELECT pg_advisory_xact_lock($1)").await?, &[&EVENTS_LOCK]).await?;
        for (i, e) in events.into_iter().enumerate() {
            // an event's project is its user's group when it is stored, as in the SQLite store
            let project = match projects.get(&e.user) {
                Some(p) => p.clone(),
                None => {
                    let row = tx
                        .query_opt(
                            &tx.prepare_cached("SELECT grp FROM limits WHERE email = $1").await?,
                            &[&e.user],
                        )
                        .await?;
                    let p: String = row.and_then(|r| r.get::<_, Option<String>>(0)).unwrap_or_default();
                    projects.insert(e.user.clone(), p.clone());
                    p
                }
            };
            let seq = insert_event(&tx, &e, &project).await.map_err(|mut err| {
                err.message = format!("event {}: {}", i + 1, err.message);
                err
            })?;
            let status = if seq.is_some() { StoredEvent::Created } else { StoredEvent::Duplicate };
            results.push(EventResult { id: e.id, status, seq });
        }
        tx.commit().await?;
        Ok(results)
    })
    .await?;
    let duplicates = results.iter().filter(|r| r.status == StoredEvent::Duplicate).count();
    let accepted = results.len() - duplicates;
    Ok(axum::Json(Ingested { accepted, duplicates, results }).into_response())
}

/// `POST /v1/reservations/{id}/release` on PostgreSQL.
async fn release(
    State(app): State<PgApp>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let id = path_param(id)?;
    let owner = who.scope().map(str::to_string);
    let micros = Pg::timed(async {
        let client = app.pg.client().await?;
        let delete = client
            .prepare_cached(
                "DELETE FROM reservations WHERE id = $1 AND expires_at > $2 AND ($3::TEXT IS NULL OR email = $3)
                 RETURNING micros",
            )
            .await?;
        let row = client.query_opt(&delete, &[&id, &crate::unix_now(), &owner]).await?;
        row.map(|r| r.get::<_, i64>(0)).ok_or_else(unknown_reservation)
    })
    .await?;
    Ok(axum::Json(ReleaseOut { reservation_id: id, released: Credits::from_micros(micros) }).into_response())
}

/// `PUT /v1/limits` on PostgreSQL: the SQLite store's batch, in one transaction.
async fn set_limits(
    State(app): State<PgApp>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let SetBatch { limits, remove, pools, settings, actor, commit, digest } = prepare_set(&who, body)?;
    let now = crate::unix_now();
    let answer = Pg::timed(async {
        let mut client = app.pg.client().await?;
        let tx = client.transaction().await?;
        let mut results = Vec::new();
        let mut pool_results = Vec::new();
        let mut changed = 0u64;
        let audit = async |tx: &deadpool_postgres::Transaction<'_>,
                           action: &str,
                           subject: &str,
                           old: Option<String>,
                           new: Option<String>|
               -> ApiResult<()> {
            tx.execute(
                &tx.prepare_cached("INSERT INTO audit (at, actor, action, subject, old, new, commit_id, plan_digest)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)").await?,
                &[&now, &actor, &action, &subject, &old, &new, &commit, &digest],
            )
            .await?;
            Ok(())
        };
        let find = async |tx: &deadpool_postgres::Transaction<'_>, key: &str| -> ApiResult<Option<Stored>> {
            let row = tx.query_opt(&tx.prepare_cached("SELECT value, grp, source FROM limits WHERE email = $1 FOR UPDATE").await?, &[&key]).await?;
            Ok(row.map(|r| Stored { value: r.get(0), group: r.get(1), source: r.get(2) }))
        };
        for (user, _limit, _group, stored) in limits {
            let old = find(&tx, &user).await?;
            let status = match &old {
                Some(o) if *o == stored => ItemStatus::Unchanged,
                Some(_) => ItemStatus::Updated,
                None => ItemStatus::Created,
            };
            if status != ItemStatus::Unchanged {
                tx.execute(
                    &tx.prepare_cached("INSERT INTO limits (email, value, grp, source, commit_id, plan_digest, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (email) DO UPDATE SET value = excluded.value, grp = excluded.grp,
                       source = excluded.source, commit_id = excluded.commit_id,
                       plan_digest = excluded.plan_digest, updated_at = excluded.updated_at").await?,
                    &[&user, &stored.value, &stored.group, &stored.source, &commit, &digest, &now],
                )
                .await?;
                audit(&tx, "limit.set", &user, old.as_ref().map(Stored::audit_json), Some(stored.audit_json())).await?;
                changed += 1;
            }
            results.push(ItemResult { user: Some(user), group: None, status });
        }
        for (written, canonical) in remove {
            let mut user = written;
            let mut old = find(&tx, &user).await?;
            if old.is_none()
                && let Some(c) = canonical
            {
                old = find(&tx, &c).await?;
                user = c;
            }
            let status = match old {
                Some(o) => {
                    tx.execute(&tx.prepare_cached("DELETE FROM limits WHERE email = $1").await?, &[&user]).await?;
                    audit(&tx, "limit.remove", &user, Some(o.audit_json()), None).await?;
                    changed += 1;
                    ItemStatus::Removed
                }
                None => ItemStatus::Unchanged,
            };
            results.push(ItemResult { user: Some(user), group: None, status });
        }
        for p in pools {
            let old: Option<i64> = tx
                .query_opt("SELECT micros FROM pools WHERE grp = $1 FOR UPDATE", &[&p.group])
                .await?
                .map(|r| r.get(0));
            let new = p.credits.map(Credits::micros);
            let status = match (old, new) {
                (o, n) if o == n => ItemStatus::Unchanged,
                (_, Some(n)) => {
                    tx.execute(
                        &tx.prepare_cached("INSERT INTO pools (grp, micros, commit_id, plan_digest, updated_at) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (grp) DO UPDATE SET micros = excluded.micros, commit_id = excluded.commit_id,
                           plan_digest = excluded.plan_digest, updated_at = excluded.updated_at").await?,
                        &[&p.group, &n, &commit, &digest, &now],
                    )
                    .await?;
                    if old.is_some() { ItemStatus::Updated } else { ItemStatus::Created }
                }
                (_, None) => {
                    tx.execute(&tx.prepare_cached("DELETE FROM pools WHERE grp = $1").await?, &[&p.group]).await?;
                    ItemStatus::Removed
                }
            };
            if status != ItemStatus::Unchanged {
                let text = |m: Option<i64>| m.map(|m| json!({ "pool": super::credits_json(m) }).to_string());
                let action = if new.is_some() { "pool.set" } else { "pool.remove" };
                audit(&tx, action, &p.group, text(old), text(new)).await?;
                changed += 1;
            }
            pool_results.push(ItemResult { user: None, group: Some(p.group), status });
        }
        if let Some(s) = settings {
            let new = serde_json::to_string(&s).map_err(|e| ApiError::store(&e))?;
            let old = crate::pg::meta_get(&tx, "settings").await?;
            if old.as_deref() != Some(new.as_str()) {
                crate::pg::meta_set(&tx, "settings", &new).await?;
                audit(&tx, "settings.set", "workspace", old, Some(new)).await?;
                changed += 1;
            }
        }
        tx.commit().await?;
        let unchanged =
            results.iter().chain(pool_results.iter()).filter(|r| r.status == ItemStatus::Unchanged).count();
        Ok(SetLimitsAnswer {
            changed,
            unchanged: u64::try_from(unchanged).unwrap_or(u64::MAX),
            results,
            pools: pool_results,
        })
    })
    .await?;
    Ok(axum::Json(answer).into_response())
}

/// `GET /v1/limits` on PostgreSQL: applied limits by user; a user token sees its own.
async fn list_limits(
    State(app): State<PgApp>,
    who: Principal,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let ListQuery { q, limit, after } = ListQuery::<String>::parse(raw.as_deref(), 1000, 10_000)?;
    let after = after.unwrap_or_default();
    let user = who.user_filter(q.get("user"))?;
    let group = q.get("group").map(str::to_string);
    let rows = Pg::timed(async {
        let client = app.pg.client().await?;
        let rows = client
            .query(
                "SELECT email, value, grp, source, commit_id, plan_digest, updated_at FROM limits
                 WHERE email > $1 AND ($2::TEXT IS NULL OR email = $2) AND ($3::TEXT IS NULL OR grp = $3)
                 ORDER BY email LIMIT $4",
                &[&after, &user, &group, &Page::<LimitOut, String>::read_limit(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                LimitOut::from_row(
                    r.get(0),
                    r.get::<_, &str>(1),
                    r.get(2),
                    r.get::<_, Option<&str>>(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                )
            })
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    Ok(Page::cut(rows, limit, |r| r.user().to_string()).into_response())
}

/// Deletes holds that lapsed more than [`LATE_COMMIT_GRACE`] ago, every minute (a
/// lapsed hold counts for nothing already; its row is kept that long for a late commit).
/// Every replica runs it; the deletes are idempotent.
pub(crate) async fn sweep(app: PgApp) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let before = crate::unix_now().saturating_sub(LATE_COMMIT_GRACE);
        let swept = Pg::timed(async {
            let client = app.pg.client().await?;
            client.execute("DELETE FROM reservations WHERE expires_at <= $1", &[&before]).await?;
            Ok(())
        })
        .await;
        if let Err(e) = swept {
            tracing::warn!(error = e.detail.unwrap_or(e.message), "lapsed reservations were not swept");
        }
    }
}

/// `GET /v1/pools` on PostgreSQL: every group pool (admin), one page.
async fn list_pools(State(app): State<PgApp>, who: Principal) -> ApiResult<Response> {
    who.require_admin()?;
    let rows = Pg::timed(async {
        let client = app.pg.client().await?;
        let rows = client
            .query("SELECT grp, micros, commit_id, plan_digest, updated_at FROM pools ORDER BY grp COLLATE \"C\"", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| PoolRow {
                group: r.get(0),
                credits: Credits::from_micros(r.get(1)),
                commit: r.get(2),
                plan_digest: r.get(3),
                updated_at: Some(super::rfc3339(r.get(4))),
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Page::<PoolRow, ()>::whole(rows).into_response())
}

/// `GET /v1/alerts` on PostgreSQL: alerts raised by checks and commits, oldest first.
async fn list_alerts(
    State(app): State<PgApp>,
    who: Principal,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let ListQuery { limit, after, .. } = ListQuery::<i64>::parse(raw.as_deref(), 100, super::MAX_PAGE)?;
    let after = after.unwrap_or(0);
    let user = who.scope().map(str::to_string);
    let rows = Pg::timed(async {
        let client = app.pg.client().await?;
        let rows = client
            .query(
                "SELECT seq, at, email, kind, message FROM alerts WHERE seq > $1 AND ($2::TEXT IS NULL OR email = $2)
                 ORDER BY seq LIMIT $3",
                &[&after, &user, &Page::<AlertRow, i64>::read_limit(limit)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AlertRow {
                seq: r.get(0),
                at: super::rfc3339(r.get(1)),
                user: r.get(2),
                kind: r.get(3),
                message: r.get(4),
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Page::cut(rows, limit, |r| r.seq).into_response())
}

/// Where a stream reader is.
struct StreamCursor {
    app: PgApp,
    last: i64,
    user: Option<String>,
    product: Option<String>,
    backlog: std::collections::VecDeque<(i64, String)>,
}

/// `GET /v1/usage/stream` on PostgreSQL: server-sent events of usage stored by any
/// replica, read by sequence (the SSE `id` is the event's `seq`, the same on every
/// replica); resumes after `Last-Event-ID` or `after`, else starts at the newest.
async fn stream(
    State(app): State<PgApp>,
    who: Principal,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let q = super::QueryPairs::parse(raw.as_deref())?;
    let (user, resume) = super::events::stream_request(&who, &q, &headers)?;
    let last = match resume {
        Some(n) => n.max(0),
        None => {
            Pg::timed(async {
                let client = app.pg.client().await?;
                Ok(client.query_one("SELECT COALESCE(MAX(seq), 0) FROM events", &[]).await?.get::<_, i64>(0))
            })
            .await?
        }
    };
    let keep_alive = app.sse_keep_alive;
    let mut closing = app.closing.subscribe();
    let cursor = StreamCursor {
        app,
        last,
        user,
        product: q.get("product").map(str::to_string),
        backlog: std::collections::VecDeque::new(),
    };
    let events = futures_util::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some((seq, json)) = c.backlog.pop_front() {
                c.last = seq;
                let event = Event::default().id(seq.to_string()).event("usage").data(json);
                return Some((Ok::<Event, std::convert::Infallible>(event), c));
            }
            let (after, user) = (c.last, c.user.clone());
            let page = Pg::timed(async {
                let client = c.app.pg.client().await?;
                let read = client
                    .prepare_cached(
                        "SELECT seq, id, ts, email, product, model, micros, project, context FROM events
                         WHERE seq > $1 AND ($2::TEXT IS NULL OR email = $2) ORDER BY seq LIMIT 500",
                    )
                    .await?;
                Ok(client.query(&read, &[&after, &user]).await?)
            })
            .await;
            match page {
                Ok(rows) if rows.is_empty() => tokio::time::sleep(STREAM_POLL).await,
                Ok(rows) => {
                    for r in rows {
                        let seq: i64 = r.get(0);
                        let product: String = r.get(4);
                        if c.product.as_deref().is_some_and(|p| p != product) {
                            c.last = seq;
                            continue;
                        }
                        let e = NewEvent {
                            id: r.get(1),
                            ts: chrono::DateTime::from_timestamp(r.get(2), 0).unwrap_or_default(),
                            user: r.get(3),
                            product,
                            model: r.get(5),
                            micros: r.get(6),
                            context: r.get(8),
                            payload: Payload::default(),
                        };
                        let project: String = r.get(7);
                        c.backlog.push_back((seq, e.to_json(seq, &project).to_string()));
                    }
                }
                // the database is unreachable: the stream ends, and the client reconnects
                // (to this replica or another) with `Last-Event-ID`
                Err(_) => return None,
            }
        }
    });
    let closed = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let events = futures_util::StreamExt::take_until(events, closed);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(keep_alive)).into_response())
}

#[cfg(test)]
mod tests {
    use super::NOT_PORTED;

    /// The routes this router serves itself.
    const PORTED: &[&str] = &[
        "/healthz",
        "/v1/limits",
        "/v1/pools",
        "/v1/alerts",
        "/v1/usage/events",
        "/v1/usage/stream",
        "/v1/check",
        "/v1/reservations/{id}/commit",
        "/v1/reservations/{id}/release",
    ];

    /// A route added to the API must be either served here or refused with 501: a
    /// missing one would answer 404, as if the API had no such route.
    #[test]
    fn every_documented_route_is_served_or_refused_by_name() {
        let document = crate::openapi::document();
        let Some(paths) = document["paths"].as_object() else { panic!("the document has no paths") };
        assert!(paths.len() > 40, "only {} paths documented", paths.len());
        let missing: Vec<&String> = paths
            .keys()
            .filter(|p| !PORTED.contains(&p.as_str()) && !NOT_PORTED.contains(&p.as_str()))
            .collect();
        assert!(missing.is_empty(), "routes neither served nor refused on PostgreSQL: {missing:?}");
    }
}
