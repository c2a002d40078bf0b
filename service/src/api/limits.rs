//! Applied limits and pools (set in batches, idempotently) and the audit log.
//!
//! Setting a limit to the value it already has writes nothing and reports
//! `unchanged`; every real change writes an audit row with who, when, the old
//! and new value, and the commit and plan digest it came with.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use budgit_engine::model::Limit;
use budgit_engine::workspace::wire::{ItemResult, PoolRow, SetLimits, SetLimitsAnswer};
use budgit_engine::workspace::{AppliedSource, ItemStatus};
use rusqlite::OptionalExtension;
use serde_json::{Value, json};

use super::{
    ListQuery, MAX_BATCH, MAX_PAGE, Page, QueryPairs, canonical_user, check_name, csv_field, json_body,
    rfc3339,
};
use crate::error::{ApiError, ApiResult};
use crate::ledger::UserLimit;
use crate::{App, StoredSettings, auth::Principal};

/// A limit row as stored: canonical JSON texts, compared for idempotency.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stored {
    pub(crate) value: String,
    pub(crate) group: Option<String>,
    pub(crate) source: Option<String>,
}

impl Stored {
    pub(crate) fn audit_json(&self) -> String {
        json!({
            "limit": serde_json::from_str::<Value>(&self.value).unwrap_or(Value::Null),
            "group": self.group,
            "source": self.source.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
        })
        .to_string()
    }
}

/// The stored text of a source: it always names `commit` (null when the writer sent none),
/// as rows written before did, so an unchanged source keeps comparing equal.
fn stored_source(source: &AppliedSource) -> Option<String> {
    let mut value = serde_json::to_value(source).ok()?;
    if let Some(fields) = value.as_object_mut() {
        fields.entry("commit").or_insert(Value::Null);
    }
    serde_json::to_string(&value).ok()
}

fn check_credits(what: &str, c: Credits) -> ApiResult<()> {
    if c.is_negative() {
        return Err(ApiError::bad_request("limits/negative", format!("{what} must not be negative")));
    }
    Ok(())
}

/// A `PUT /v1/limits` batch, checked: what either store writes.
pub(crate) struct SetBatch {
    /// (user, limit, group, the row as stored)
    pub(crate) limits: Vec<(String, Limit, Option<String>, Stored)>,
    /// (the key as written, its canonical form when it differs and is not set in the batch)
    pub(crate) remove: Vec<(String, Option<String>)>,
    pub(crate) pools: Vec<budgit_engine::workspace::wire::PoolItem>,
    pub(crate) settings: Option<StoredSettings>,
    pub(crate) actor: String,
    pub(crate) commit: String,
    pub(crate) digest: Option<String>,
}

/// Reads and checks a `PUT /v1/limits` body (admin only).
pub(crate) fn prepare_set(who: &Principal, body: Result<Bytes, BytesRejection>) -> ApiResult<SetBatch> {
    who.require_admin()?;
    let req: SetLimits = json_body(body)?;
    let items = req.limits.len() + req.pools.len() + req.remove.len();
    if items > MAX_BATCH {
        return Err(ApiError::too_large(format!(
            "a batch holds at most {MAX_BATCH} limits, pools and removals; this one has {items}"
        )));
    }
    check_name("commit", &req.commit)?;
    if let Some(d) = &req.plan_digest {
        check_name("plan_digest", d)?;
    }
    let mut seen = HashSet::new();
    let mut limits = Vec::with_capacity(req.limits.len());
    for mut l in req.limits {
        // Two spellings of one person in a batch are one user, so a duplicate.
        l.user = canonical_user(&l.user)?;
        if !seen.insert(l.user.clone()) {
            return Err(ApiError::bad_request(
                "limits/duplicate-user",
                format!("user `{}` appears twice in the batch", super::shorten(&l.user)),
            ));
        }
        check_credits("`credits`", l.credits)?;
        for (name, c) in l.products.iter().chain(l.models.iter()) {
            check_name("cap name", name)?;
            check_credits("a cap", *c)?;
        }
        if let Some(rate) = l.per_hour
            && rate.micros() <= 0
        {
            return Err(ApiError::bad_request(
                "limits/bad-rate-cap",
                "`per_hour` must be positive (leave it out for no rate cap)",
            ));
        }
        if let Some(g) = &l.group {
            check_name("group", g)?;
        }
        if let Some(s) = &l.source
            && !matches!(s.kind.as_str(), "default" | "group" | "override")
        {
            return Err(ApiError::bad_request(
                "limits/bad-source",
                format!("source kind `{}` is not `default`, `group` or `override`", super::shorten(&s.kind)),
            ));
        }
        let limit =
            Limit { credits: l.credits, products: l.products, models: l.models, per_hour: l.per_hour };
        let stored = Stored {
            value: serde_json::to_string(&limit).map_err(|e| ApiError::store(&e))?,
            group: l.group.clone(),
            source: l.source.as_ref().and_then(stored_source),
        };
        limits.push((l.user, limit, l.group, stored));
    }
    for p in &req.pools {
        check_name("group", &p.group)?;
        if let Some(c) = p.credits {
            check_credits("a pool", c)?;
        }
    }
    // A key to remove is matched as written first (rows stored before emails were
    // canonical keep their spelling, and the reconciler removes keys as it read them),
    // then in canonical form, unless this batch sets that person's limit.
    let remove: Vec<(String, Option<String>)> = req
        .remove
        .iter()
        .map(|u| {
            let canonical = canonical_user(u)?;
            Ok((u.clone(), (canonical != *u && !seen.contains(&canonical)).then_some(canonical)))
        })
        .collect::<ApiResult<_>>()?;
    let settings = match req.workspace {
        None => None,
        Some(w) => {
            if budgit_engine::period::parse_timezone(&w.timezone).is_none() {
                return Err(ApiError::bad_request(
                    "limits/bad-timezone",
                    format!("`{}` is not an IANA time zone", super::shorten(&w.timezone)),
                ));
            }
            Some(StoredSettings { period: w.period, timezone: w.timezone, enforcement: w.enforcement })
        }
    };
    let actor = match &req.actor {
        Some(a) => {
            check_name("actor", a)?;
            format!("{} ({a})", who.actor())
        }
        None => who.actor(),
    };
    Ok(SetBatch {
        limits,
        remove,
        pools: req.pools,
        settings,
        actor,
        commit: req.commit,
        digest: req.plan_digest,
    })
}

/// `PUT /v1/limits`: sets, removes and reports limits and pools in one batch.
pub async fn set(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let SetBatch { limits, remove, pools, settings, actor, commit, digest } = prepare_set(&who, body)?;
    let now = crate::unix_now();
    let app2 = app.clone();
    let (results, pool_results, changed, settings_changed) = app
        .store
        .write(move |tx| {
            let mut results = Vec::new();
            let mut pool_results = Vec::new();
            let mut ledger_limits = Vec::new();
            let mut ledger_pools = Vec::new();
            let mut changed = 0u64;
            let audit = |action: &str, subject: &str, old: Option<String>, new: Option<String>| {
                tx.execute(
                    "INSERT INTO audit (at, actor, action, subject, old, new, commit_id, plan_digest)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    (now, &actor, action, subject, old, new, &commit, &digest),
                )
            };
            for (user, limit, group, stored) in limits {
                let old = tx
                    .query_row("SELECT value, grp, source FROM limits WHERE email = ?1", [&user], |r| {
                        Ok(Stored { value: r.get(0)?, group: r.get(1)?, source: r.get(2)? })
                    })
                    .optional()?;
                let status = match &old {
                    Some(o) if *o == stored => ItemStatus::Unchanged,
                    Some(_) => ItemStatus::Updated,
                    None => ItemStatus::Created,
                };
                if status != ItemStatus::Unchanged {
                    tx.execute(
                        "INSERT INTO limits (email, value, grp, source, commit_id, plan_digest, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT(email) DO UPDATE SET value = excluded.value, grp = excluded.grp,
                           source = excluded.source, commit_id = excluded.commit_id,
                           plan_digest = excluded.plan_digest, updated_at = excluded.updated_at",
                        (&user, &stored.value, &stored.group, &stored.source, &commit, &digest, now),
                    )?;
                    audit(
                        "limit.set",
                        &user,
                        old.as_ref().map(Stored::audit_json),
                        Some(stored.audit_json()),
                    )?;
                    ledger_limits.push((user.clone(), Some(UserLimit { limit, group })));
                    changed += 1;
                }
                results.push(ItemResult { user: Some(user), group: None, status });
            }
            for (written, canonical) in remove {
                let find = |key: &str| {
                    tx.query_row("SELECT value, grp, source FROM limits WHERE email = ?1", [key], |r| {
                        Ok(Stored { value: r.get(0)?, group: r.get(1)?, source: r.get(2)? })
                    })
                    .optional()
                };
                let mut user = written;
                let mut old = find(&user)?;
                if old.is_none()
                    && let Some(c) = canonical
                {
                    old = find(&c)?;
                    user = c;
                }
                let status = match old {
                    Some(o) => {
                        tx.execute("DELETE FROM limits WHERE email = ?1", [&user])?;
                        audit("limit.remove", &user, Some(o.audit_json()), None)?;
                        ledger_limits.push((user.clone(), None));
                        changed += 1;
                        ItemStatus::Removed
                    }
                    None => ItemStatus::Unchanged,
                };
                results.push(ItemResult { user: Some(user), group: None, status });
            }
            for p in pools {
                let old: Option<i64> = tx
                    .query_row("SELECT micros FROM pools WHERE grp = ?1", [&p.group], |r| r.get(0))
                    .optional()?;
                let new = p.credits.map(Credits::micros);
                let status = match (old, new) {
                    (o, n) if o == n => ItemStatus::Unchanged,
                    (_, Some(n)) => {
                        tx.execute(
                            "INSERT INTO pools (grp, micros, commit_id, plan_digest, updated_at)
                             VALUES (?1, ?2, ?3, ?4, ?5)
                             ON CONFLICT(grp) DO UPDATE SET micros = excluded.micros,
                               commit_id = excluded.commit_id, plan_digest = excluded.plan_digest,
                               updated_at = excluded.updated_at",
                            (&p.group, n, &commit, &digest, now),
                        )?;
                        if old.is_some() { ItemStatus::Updated } else { ItemStatus::Created }
                    }
                    (_, None) => {
                        tx.execute("DELETE FROM pools WHERE grp = ?1", [&p.group])?;
                        ItemStatus::Removed
                    }
                };
                if status != ItemStatus::Unchanged {
                    let text =
                        |m: Option<i64>| m.map(|m| json!({ "pool": super::credits_json(m) }).to_string());
                    let action = if new.is_some() { "pool.set" } else { "pool.remove" };
                    audit(action, &p.group, text(old), text(new))?;
                    ledger_pools.push((p.group.clone(), new));
                    changed += 1;
                }
                pool_results.push(ItemResult { user: None, group: Some(p.group), status });
            }
            let mut settings_changed = false;
            if let Some(s) = settings {
                let new = serde_json::to_string(&s).map_err(|e| ApiError::store(&e))?;
                let old = crate::store::meta_get(tx, "settings")?;
                if old.as_deref() != Some(new.as_str()) {
                    crate::store::meta_set(tx, "settings", &new)?;
                    audit("settings.set", "workspace", old, Some(new))?;
                    settings_changed = true;
                    changed += 1;
                }
            }
            let after: crate::store::After = Box::new(move |ok| {
                if ok && let Ok(mut l) = app2.ledger.lock() {
                    l.apply_limits(ledger_limits, ledger_pools);
                }
            });
            Ok(((results, pool_results, changed, settings_changed), Some(after)))
        })
        .await?;
    if settings_changed {
        app.reload_usage().await?;
    }
    crate::metrics::Metrics::add(&app.metrics.limits_changed, changed);
    let unchanged =
        results.iter().chain(pool_results.iter()).filter(|r| r.status == ItemStatus::Unchanged).count();
    Ok(axum::Json(SetLimitsAnswer {
        changed,
        unchanged: u64::try_from(unchanged).unwrap_or(u64::MAX),
        results,
        pools: pool_results,
    })
    .into_response())
}

/// `GET /v1/limits`: applied limits with provenance, by user; a user token sees its own.
pub async fn list(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let ListQuery { q, limit, after } = ListQuery::<String>::parse(raw.as_deref(), 1000, 10_000)?;
    let after = after.unwrap_or_default();
    let user = who.user_filter(q.get("user"))?;
    let group = q.get("group").map(str::to_string);
    let rows = app
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT email, value, grp, source, commit_id, plan_digest, updated_at FROM limits
                 WHERE email > ?1 AND (?2 IS NULL OR email = ?2) AND (?3 IS NULL OR grp = ?3)
                 ORDER BY email LIMIT ?4",
            )?;
            let rows = stmt
                .query_map((after, user, group, Page::<LimitOut, String>::read_limit(limit)), |r| {
                    // both columns are written by this service as JSON; a row that does not
                    // read back is a damaged store, not something to answer around
                    let json = |i: usize, text: &str| {
                        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, text.into())
                    };
                    let value: String = r.get(1)?;
                    let stored: StoredLimit =
                        serde_json::from_str(&value).map_err(|e| json(1, &format!("a stored limit: {e}")))?;
                    let source: Option<String> = r.get(3)?;
                    let source = source
                        .map(|s| serde_json::from_str::<Value>(&s))
                        .transpose()
                        .map_err(|e| json(3, &format!("a stored source: {e}")))?;
                    Ok(LimitOut {
                        user: r.get(0)?,
                        credits: stored.credits,
                        products: stored.products,
                        models: stored.models,
                        per_hour: stored.per_hour,
                        group: r.get(2)?,
                        source,
                        commit: r.get(4)?,
                        plan_digest: r.get(5)?,
                        updated_at: rfc3339(r.get(6)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Page::cut(rows, limit, |r| r.user.clone()).into_response())
}

/// A row of `GET /v1/limits`: what the engine's client reads as
/// [`LimitRow`](budgit_engine::workspace::wire::LimitRow), with the source exactly as
/// stored (it always names `commit`, null when the writer sent none).
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "AppliedLimit")]
pub(crate) struct LimitOut {
    user: String,
    /// Total credits per period.
    credits: Credits,
    /// Caps per product.
    products: std::collections::BTreeMap<String, Credits>,
    /// Caps per model.
    models: std::collections::BTreeMap<String, Credits>,
    /// The group whose pool applies.
    group: Option<String>,
    /// The document that decided the limit, as the last writer sent it.
    #[schemars(with = "Option<AppliedSource>")]
    source: Option<Value>,
    /// The commit of the last write.
    commit: Option<String>,
    /// The plan digest of the last write.
    plan_digest: Option<String>,
    /// When the limit was last written (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    updated_at: String,
    /// The rate cap, credits per sliding hour; absent when the limit has none. Last, so
    /// a row without one reads exactly as before rate caps existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    per_hour: Option<Credits>,
}

impl LimitOut {
    /// A stored row as `GET /v1/limits` answers it (the PostgreSQL store's rows; both
    /// JSON columns are written by this service, so one that does not read back is a
    /// damaged store, not something to answer around).
    pub(crate) fn from_row(
        user: String,
        value: &str,
        group: Option<String>,
        source: Option<&str>,
        commit: Option<String>,
        plan_digest: Option<String>,
        updated_at: i64,
    ) -> ApiResult<LimitOut> {
        let stored: StoredLimit =
            serde_json::from_str(value).map_err(|e| ApiError::store(&format!("a stored limit: {e}")))?;
        let source = source
            .map(serde_json::from_str::<Value>)
            .transpose()
            .map_err(|e| ApiError::store(&format!("a stored source: {e}")))?;
        Ok(LimitOut {
            user,
            credits: stored.credits,
            products: stored.products,
            models: stored.models,
            per_hour: stored.per_hour,
            group,
            source,
            commit,
            plan_digest,
            updated_at: rfc3339(updated_at),
        })
    }

    /// The row's user (the page cursor).
    pub(crate) fn user(&self) -> &str {
        &self.user
    }
}

/// A limit as the `limits` table stores it (`value`).
#[derive(serde::Deserialize)]
struct StoredLimit {
    credits: Credits,
    #[serde(default)]
    products: std::collections::BTreeMap<String, Credits>,
    #[serde(default)]
    models: std::collections::BTreeMap<String, Credits>,
    #[serde(default)]
    per_hour: Option<Credits>,
}

/// `GET /v1/pools`: every group pool (admin).
pub async fn pools(State(app): State<App>, who: Principal) -> ApiResult<Response> {
    who.require_admin()?;
    let rows = app
        .store
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT grp, micros, commit_id, plan_digest, updated_at FROM pools ORDER BY grp",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(PoolRow {
                        group: r.get(0)?,
                        credits: Credits::from_micros(r.get(1)?),
                        commit: r.get(2)?,
                        plan_digest: r.get(3)?,
                        updated_at: Some(rfc3339(r.get(4)?)),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    Ok(Page::<PoolRow, ()>::whole(rows).into_response())
}

/// `GET /v1/audit`: the audit log, oldest first, paged by sequence; `format=csv` exports it.
pub async fn audit(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    who.require_admin()?;
    let q = QueryPairs::parse(raw.as_deref())?;
    let csv = q.wants_csv()?;
    // an export is one page of everything kept
    let (default, max) = if csv { (100_000, 100_000) } else { (100, MAX_PAGE) };
    let ListQuery { q, limit, after } = ListQuery::<i64>::of(q, default, max)?;
    let after = after.unwrap_or(0);
    let subject = q.get("subject").map(str::to_string);
    let action = q.get("action").map(str::to_string);
    // `actor` matches the whole actor or the label a writer gave (`admin (reconciler)`)
    let actor = q.get("actor").map(str::to_string);
    let actor_label = actor.as_ref().map(|a| format!("({a})"));
    let rows = app
        .store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, actor, action, subject, old, new, commit_id, plan_digest FROM audit
                 WHERE seq > ?1 AND (?2 IS NULL OR subject = ?2) AND (?4 IS NULL OR action = ?4)
                   AND (?5 IS NULL OR actor = ?5 OR substr(actor, -length(?6)) = ?6)
                 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(
                    (after, subject, Page::<AuditRow, i64>::read_limit(limit), action, actor, actor_label),
                    |r| {
                        Ok(AuditRow {
                            seq: r.get(0)?,
                            at: r.get(1)?,
                            actor: r.get(2)?,
                            action: r.get(3)?,
                            subject: r.get(4)?,
                            old: r.get(5)?,
                            new: r.get(6)?,
                            commit: r.get(7)?,
                            plan_digest: r.get(8)?,
                        })
                    },
                )?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    let page = Page::cut(rows, limit, |r| r.seq);
    if csv {
        let mut out = String::from("seq,at,actor,action,subject,old,new,commit,plan_digest\n");
        for r in page.rows() {
            let fields = [
                r.seq.to_string(),
                rfc3339(r.at),
                r.actor.clone(),
                r.action.clone(),
                r.subject.clone(),
                r.old.clone().unwrap_or_default(),
                r.new.clone().unwrap_or_default(),
                r.commit.clone().unwrap_or_default(),
                r.plan_digest.clone().unwrap_or_default(),
            ];
            out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
            out.push('\n');
        }
        return Ok(super::csv_response("audit.csv", out));
    }
    let parse =
        |s: &Option<String>| s.as_deref().map(|t| serde_json::from_str::<Value>(t).unwrap_or(json!(t)));
    let page = page.map(|r| AuditOut {
        seq: r.seq,
        at: rfc3339(r.at),
        old: parse(&r.old),
        new: parse(&r.new),
        actor: r.actor,
        action: r.action,
        subject: r.subject,
        commit: r.commit,
        plan_digest: r.plan_digest,
    });
    Ok(page.into_response())
}

/// A row of `GET /v1/audit`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "AuditRow")]
pub(crate) struct AuditOut {
    seq: i64,
    /// When (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    at: String,
    /// The writer: `admin`, `admin (<label>)`, a user, or `admin:` and a token's fingerprint.
    actor: String,
    /// `limit.set`, `limit.remove`, `pool.set`, `token.issue`, …
    action: String,
    /// A user, a group or `request:<id>`.
    subject: String,
    /// The value before (JSON, or the text as stored); null when there was none.
    #[schemars(schema_with = "super::any_json")]
    old: Option<Value>,
    /// The value after; null when removed.
    #[schemars(schema_with = "super::any_json")]
    new: Option<Value>,
    commit: Option<String>,
    plan_digest: Option<String>,
}

struct AuditRow {
    seq: i64,
    at: i64,
    actor: String,
    action: String,
    subject: String,
    old: Option<String>,
    new: Option<String>,
    commit: Option<String>,
    plan_digest: Option<String>,
}
