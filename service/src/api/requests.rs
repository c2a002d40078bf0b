//! Credit requests (a user asks for more; an admin approves into a proposal or declines) and leases.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use chrono::{Days, Utc};
use rusqlite::OptionalExtension;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ListQuery, MAX_PAGE, Page, QueryPairs, canonical_user, check_name, credits_json, json_body, path_param,
    rfc3339,
};
use crate::error::{ApiError, ApiResult};
use crate::{App, auth::Principal};

/// Pending credit requests one user may have at once; the next is refused until an
/// admin decides one (a user token cannot flood the admins' queue).
pub(crate) const MAX_PENDING_REQUESTS: i64 = 20;

/// The body of `POST /v1/requests`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CreditRequestIn")]
pub(crate) struct RequestIn {
    /// The user (a user token asks for itself).
    #[serde(default)]
    #[schemars(email, length(max = super::MAX_EMAIL))]
    user: Option<String>,
    #[schemars(with = "super::UsageAmount")]
    credits: Credits,
    /// From 1 to the service's longest override (`--max-override-days`).
    #[serde(deserialize_with = "super::whole")]
    #[schemars(range(min = 1))]
    days: u32,
    #[schemars(length(min = 1, max = super::MAX_REASON), pattern(r"\S"))]
    reason: String,
    /// At most 8 KiB of JSON; its `note` (a string) goes into the proposed Override as a
    /// comment and into the commit message.
    #[serde(default)]
    context: Option<Value>,
    /// The product the credits are for: its cap is raised with the total (give
    /// `product` or `model`, not both).
    #[serde(default)]
    #[schemars(length(min = 1, max = 128), pattern(super::CAP_NAME_PATTERN))]
    product: Option<String>,
    /// The model the credits are for: its cap is raised with the total.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128), pattern(super::CAP_NAME_PATTERN))]
    model: Option<String>,
}

/// Checks what a request is for: the total, or one product or model with a name a policy accepts.
fn need(product: Option<String>, model: Option<String>) -> ApiResult<(Option<String>, Option<String>)> {
    let bad = |m: String| ApiError::bad_request("requests/bad-need", m);
    let name_ok = |n: &str| {
        if budgit_engine::edit::cap_name_ok(n) {
            Ok(())
        } else {
            Err(bad(format!(
                "`{}` is not a product or model name: use 1 to 128 letters, digits and `.` `_` `-` `:` `/` `@` `+`",
                super::shorten(n)
            )))
        }
    };
    match (product, model) {
        (Some(_), Some(_)) => Err(bad("give `product` or `model`, not both".into())),
        (Some(p), None) => name_ok(&p).map(|()| (Some(p), None)),
        (None, Some(m)) => name_ok(&m).map(|()| (None, Some(m))),
        (None, None) => Ok((None, None)),
    }
}

fn request_json(r: &rusqlite::Row<'_>) -> rusqlite::Result<CreditRequestOut> {
    let context: Option<String> = r.get(5)?;
    let proposal: Option<String> = r.get(12)?;
    let lifecycle: Option<String> = r.get(15)?;
    Ok(CreditRequestOut {
        id: r.get(0)?,
        user: r.get(1)?,
        credits: Credits::from_micros(r.get(2)?),
        days: r.get(3)?,
        reason: r.get(4)?,
        context: context.and_then(|c| serde_json::from_str::<Value>(&c).ok()),
        status: r.get(6)?,
        created_at: rfc3339(r.get(7)?),
        created_by: r.get(8)?,
        decided_at: r.get::<_, Option<i64>>(9)?.map(rfc3339),
        decided_by: r.get(10)?,
        decision_reason: r.get(11)?,
        proposal: proposal.and_then(|p| serde_json::from_str::<Value>(&p).ok()),
        product: r.get(13)?,
        model: r.get(14)?,
        lifecycle: lifecycle
            .and_then(|l| serde_json::from_str::<Value>(&l).ok())
            .unwrap_or_else(|| json!({})),
    })
}

/// A credit request as the service answers it, with its lifecycle.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "CreditRequest")]
pub(crate) struct CreditRequestOut {
    pub(crate) id: i64,
    user: String,
    credits: Credits,
    days: i64,
    reason: String,
    /// The context the request was sent with (any JSON).
    #[schemars(schema_with = "super::any_json")]
    context: Option<Value>,
    /// `pending → proposed → merged → applied → done`, or `declined`; `approved` is the
    /// older approval without a commit.
    #[schemars(extend("enum" = STATUSES))]
    status: String,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    created_by: String,
    decided_at: Option<String>,
    /// A user's email, or `admin:` and the admin token's fingerprint.
    decided_by: Option<String>,
    decision_reason: Option<String>,
    /// The proposal's branch, commit, file and Override name (or, for an approval, the
    /// Override document).
    #[schemars(schema_with = "super::any_json")]
    proposal: Option<Value>,
    /// The product the credits are for (its cap is raised with the total).
    product: Option<String>,
    /// The model the credits are for (its cap is raised with the total).
    model: Option<String>,
    /// One entry per step reached.
    #[schemars(schema_with = "lifecycle_schema")]
    lifecycle: Value,
}

/// The steps of a request's `lifecycle`, as `advance_requests` and `decide` write them.
fn lifecycle_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let at = json!({ "type": "string", "format": "date-time" });
    let step = |props: Value| json!({ "type": "object", "properties": props });
    schemars::json_schema!({
        "type": "object",
        "properties": {
            "proposed": step(json!({ "at": at, "by": { "type": "string" }, "branch": { "type": "string" }, "commit": { "type": "string" }, "plan_summary": { "type": "object" } })),
            "merged": step(json!({ "at": at, "ref": { "type": "string" }, "commit": { "type": "string", "description": "the approved commit that first contained the proposal" } })),
            "applied": step(json!({ "at": at, "run": { "type": "integer", "description": "the reconcile run (`seq` of `GET /v1/reconciler/status`)" }, "commit": { "type": "string" } })),
            "done": step(json!({ "at": at, "override": { "type": "string", "description": "the Override the applied limit now comes from" } })),
            "declined": step(json!({ "at": at, "by": { "type": "string" }, "reason": { "type": ["string", "null"] } })),
        }
    })
}

const REQUEST_COLUMNS: &str = "id, email, micros, days, reason, context, status, created_at, created_by, \
                               decided_at, decided_by, decision_reason, proposal, product, model, lifecycle";

/// `POST /v1/requests`: asks for more credits for some days, with a reason and context.
pub async fn create(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let req: RequestIn = json_body(body)?;
    let user = match (req.user, who.scope()) {
        (Some(u), _) => u,
        (None, Some(own)) => own.to_string(),
        (None, None) => return Err(ApiError::bad_request("requests/missing-user", "`user` is required")),
    };
    let user = canonical_user(&user)?;
    who.require_user(&user)?;
    if req.credits.micros() <= 0 {
        return Err(ApiError::bad_request("requests/bad-credits", "`credits` must be positive"));
    }
    let micros = super::usage_micros("credits", req.credits)?;
    if req.days == 0 || req.days > app.max_override_days {
        return Err(ApiError::bad_request(
            "requests/bad-days",
            format!("`days` must be from 1 to {}", app.max_override_days),
        ));
    }
    let reason = req.reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > super::MAX_REASON {
        return Err(ApiError::bad_request("requests/bad-reason", "`reason` must be 1 to 2000 characters"));
    }
    let context = match req.context {
        None | Some(Value::Null) => None,
        Some(v) => {
            let t = v.to_string();
            if t.len() > 8192 {
                return Err(ApiError::bad_request(
                    "requests/context-too-large",
                    "`context` must be at most 8192 bytes",
                ));
            }
            Some(t)
        }
    };
    let (product, model) = need(req.product, req.model)?;
    let (days, actor) = (req.days, app.tokens.subject(&who));
    let now = crate::unix_now();
    let created = app
        .store
        .write(move |tx| {
            let pending: i64 = tx.query_row(
                "SELECT COUNT(*) FROM requests WHERE email = ?1 AND status = 'pending'",
                [&user],
                |r| r.get(0),
            )?;
            if pending >= MAX_PENDING_REQUESTS {
                return Err(ApiError::too_many(
                    "requests/too-many-pending",
                    format!(
                        "`{}` already has {MAX_PENDING_REQUESTS} pending requests; wait for a decision",
                        super::shorten(&user)
                    ),
                ));
            }
            tx.execute(
                "INSERT INTO requests (email, micros, days, reason, context, status, created_at, created_by,
                     product, model, lifecycle)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8, ?9, '{}')",
                (&user, micros, days, &reason, &context, now, &actor, &product, &model),
            )?;
            let id = tx.last_insert_rowid();
            let row = tx.query_row(
                &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1"),
                [id],
                request_json,
            )?;
            Ok((row, None))
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// The statuses of a credit request: `pending → proposed → merged → applied → done`, or
/// `declined`; `approved` is the older approval without a commit.
pub(crate) const STATUSES: [&str; 7] =
    ["pending", "approved", "proposed", "merged", "applied", "done", "declined"];

/// `GET /v1/requests`: the admin sees all, a user their own; `status=` filters.
pub async fn list(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let ListQuery { q, limit, after } = ListQuery::<i64>::parse(raw.as_deref(), 100, MAX_PAGE)?;
    let after = after.unwrap_or(0);
    let status = q.get("status").map(str::to_string);
    if let Some(s) = &status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(ApiError::bad_request(
            "requests/bad-status",
            format!("`status` must be one of {}, not `{}`", STATUSES.join(", "), super::shorten(s)),
        ));
    }
    let user = who.scope().map(str::to_string);
    let rows = app
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE id > ?1 AND (?2 IS NULL OR email = ?2)
                 AND (?3 IS NULL OR status = ?3) ORDER BY id LIMIT ?4"
            ))?;
            let rows = stmt
                .query_map(
                    (after, user, status, Page::<CreditRequestOut, i64>::read_limit(limit)),
                    request_json,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Page::cut(rows, limit, |r| r.id).into_response())
}

fn parse_id(id: Result<Path<String>, PathRejection>) -> ApiResult<i64> {
    path_param(id)?
        .parse::<i64>()
        .map_err(|_| ApiError::bad_request("requests/bad-id", "a request id is a whole number"))
}

/// The body of `POST /v1/requests/{id}/decline` (and, optionally, of approve).
#[derive(Debug, Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DecisionIn")]
pub(crate) struct DecideIn {
    #[serde(default)]
    reason: Option<String>,
}

/// Moves a pending request to `approved` (with its override proposal) or `declined`.
async fn decide(
    app: App,
    who: Principal,
    id: i64,
    approve: bool,
    reason: Option<String>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let now = Utc::now();
    let actor = app.tokens.subject(&who);
    let row = app
        .store
        .write(move |tx| {
            let found = tx
                .query_row("SELECT email, micros, days, reason, status FROM requests WHERE id = ?1", [id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                    ))
                })
                .optional()?;
            let Some((email, micros, days, why, status)) = found else {
                return Err(ApiError::not_found("requests/unknown", format!("no request `{id}`")));
            };
            // A proposed request can still be declined: its branch is then never merged.
            if status != "pending" && (approve || status != "proposed") {
                return Err(ApiError::conflict("requests/decided", format!("request `{id}` is already {status}")));
            }
            let (new_status, proposal) = if approve {
                let starts = now.date_naive();
                let expires = starts.checked_add_days(Days::new(u64::try_from(days).unwrap_or(1))).unwrap_or(starts);
                let local = email.split('@').next().unwrap_or("user");
                let name: String = format!("{local}-request-{id}")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
                    .collect();
                let proposal = json!({
                    "apiVersion": "budgit/v1",
                    "kind": "Override",
                    "name": name,
                    "user": email,
                    "add": { "credits": credits_json(micros) },
                    "starts": starts.to_string(),
                    "expires": expires.to_string(),
                    "reason": why,
                    "requested_by": email,
                });
                ("approved", Some(proposal.to_string()))
            } else {
                ("declined", None)
            };
            let step = json!({ "at": rfc3339(now.timestamp()), "by": actor, "reason": reason });
            // a declined proposal keeps the branch it named
            tx.execute(
                "UPDATE requests SET status = ?1, decided_at = ?2, decided_by = ?3, decision_reason = ?4,
                     proposal = COALESCE(?5, proposal), lifecycle = json_set(COALESCE(lifecycle, '{}'), '$.' || ?1, json(?7))
                 WHERE id = ?6",
                (new_status, now.timestamp(), &actor, &reason, &proposal, id, step.to_string()),
            )?;
            tx.execute(
                "INSERT INTO audit (at, actor, action, subject, old, new) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                (now.timestamp(), &actor, format!("request.{new_status}"), format!("request:{id}"), &status, new_status),
            )?;
            let row = tx.query_row(&format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1"), [id], request_json)?;
            Ok((row, None))
        })
        .await?;
    Ok(axum::Json(row).into_response())
}

/// `POST /v1/requests/{id}/approve`: approves into an override proposal (not yet a commit).
pub async fn approve(
    State(app): State<App>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let id = parse_id(id)?;
    // empty, `null`, or a [`DecideIn`] (its reason is optional)
    let req: DecideIn = super::json_body_or_default(body)?;
    decide(app, who, id, true, req.reason).await
}

/// The body of `POST /v1/requests/{id}/decline`: its reason is required (absent, `null`
/// or blank is `requests/missing-reason`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DeclineIn", extend("required" = ["reason"]))]
pub(crate) struct DeclineIn {
    /// Why, not blank.
    #[serde(default)]
    #[schemars(with = "String", pattern(r"\S"))]
    reason: Option<String>,
}

/// `POST /v1/requests/{id}/decline`: declines with a reason.
pub async fn decline(
    State(app): State<App>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let id = parse_id(id)?;
    let req: DeclineIn = json_body(body)?;
    let reason = req
        .reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("requests/missing-reason", "declining needs a `reason`"))?;
    decide(app, who, id, false, Some(reason)).await
}

/// The body of `POST /v1/leases/{name}`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LeaseIn")]
pub(crate) struct LeaseIn {
    #[schemars(length(min = 1, max = super::MAX_NAME), pattern(super::NAME_PATTERN))]
    holder: String,
    #[serde(deserialize_with = "super::whole")]
    #[schemars(range(min = 1, max = 86_400))]
    ttl_seconds: i64,
}

/// `POST /v1/leases/{name}`: acquires or renews a lease; 409 names the other holder.
pub async fn acquire(
    State(app): State<App>,
    who: Principal,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let name = path_param(name)?;
    check_name("lease", &name)?;
    let req: LeaseIn = json_body(body)?;
    check_name("holder", &req.holder)?;
    if !(1..=86_400).contains(&req.ttl_seconds) {
        return Err(ApiError::bad_request("leases/bad-ttl", "`ttl_seconds` must be from 1 to 86400"));
    }
    let now = crate::unix_now();
    let (lease, holder) = (name.clone(), req.holder.clone());
    let expires = now + req.ttl_seconds;
    app.store
        .write(move |tx| {
            let current: Option<(String, i64)> = tx
                .query_row("SELECT holder, expires_at FROM leases WHERE name = ?1", [&lease], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((other, until)) = current
                && other != holder
                && until > now
            {
                return Err(ApiError::conflict(
                    "lease/held",
                    format!("lease `{}` is held by another holder", super::shorten(&lease)),
                )
                .with_extra(json!({ "holder": other, "expires_at": rfc3339(until) })));
            }
            tx.execute(
                "INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at",
                (&lease, &holder, expires),
            )?;
            Ok(((), None))
        })
        .await?;
    Ok(axum::Json(LeaseOut { name, holder: req.holder, expires_at: rfc3339(expires) }).into_response())
}

/// A lease held.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Lease")]
pub(crate) struct LeaseOut {
    name: String,
    holder: String,
    /// When it lapses unless renewed (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    expires_at: String,
}

/// `DELETE /v1/leases/{name}?holder=`: releases a lease held by `holder`.
pub async fn release_lease(
    State(app): State<App>,
    who: Principal,
    name: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    who.require_admin()?;
    let name = path_param(name)?;
    let q = QueryPairs::parse(raw.as_deref())?;
    let holder = q
        .get("holder")
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("leases/missing-holder", "`holder` is required"))?;
    check_name("holder", &holder)?;
    let now = crate::unix_now();
    let lease = name.clone();
    app.store
        .write(move |tx| {
            let current: Option<(String, i64)> = tx
                .query_row("SELECT holder, expires_at FROM leases WHERE name = ?1", [&lease], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            match current {
                None => Err(ApiError::not_found(
                    "lease/unknown",
                    format!("no lease `{}`", super::shorten(&lease)),
                )),
                Some((other, until)) if other != holder && until > now => Err(ApiError::conflict(
                    "lease/held",
                    format!("lease `{}` is held by another holder", super::shorten(&lease)),
                )
                .with_extra(json!({ "holder": other, "expires_at": rfc3339(until) }))),
                Some(_) => {
                    tx.execute("DELETE FROM leases WHERE name = ?1", [&lease])?;
                    Ok(((), None))
                }
            }
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
