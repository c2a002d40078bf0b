//! Users: the directory import and listing, and per-user tokens.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use budgit_engine::directory::AttrValue;
use budgit_engine::model::AttributeType;
use rusqlite::OptionalExtension;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{ListQuery, MAX_PAGE, Page, QueryPairs, canonical_user, path_param, raw_body};
use crate::App;
use crate::auth::{self, Principal};
use crate::error::{ApiError, ApiResult};

/// `POST /v1/users/import`: upserts every user of a CSV or JSON Lines directory.
pub async fn import(
    State(app): State<App>,
    who: Principal,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let q = QueryPairs::parse(raw.as_deref())?;
    let bytes = raw_body(body)?;
    // an import of nothing is a mistake (an empty file, a body left out), never a directory
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "users/empty",
            "the body holds no directory (a header row at least)",
        ));
    }
    let jsonl = super::is_json_lines(&q, &headers, &bytes, "users/bad-format")?;
    let declared = app.attributes.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        let attributes = declared.unwrap_or_else(|| infer_attributes(&bytes, jsonl));
        let file: Arc<str> = Arc::from("request body");
        budgit_engine::input::parse_directory(&file, &bytes, jsonl, &attributes)
    })
    .await
    .map_err(|e| ApiError::store(&e))?
    .map_err(|reason| ApiError::bad_request("users/bad-directory", reason))?;
    let (dir, diagnostics) = parsed;
    let findings: Vec<Finding> = diagnostics
        .iter()
        .map(|d| Finding {
            code: d.code.to_string(),
            severity: if d.severity == budgit_engine::Severity::Error { "error" } else { "warning" },
            message: d.message.clone(),
            line: d.location.as_ref().map(|l| l.line),
        })
        .collect();
    let rows: Vec<(String, String)> = dir
        .users
        .iter()
        .map(|u| {
            let mut attrs = Map::new();
            for ((name, _), value) in dir.attributes.iter().zip(&u.attrs) {
                let v = match value {
                    AttrValue::Missing => continue,
                    AttrValue::String(s) => Value::String(s.clone()),
                    AttrValue::List(l) => json!(l),
                    AttrValue::Number(n) => json!(n),
                    AttrValue::Bool(b) => json!(b),
                };
                attrs.insert(name.clone(), v);
            }
            (u.email.clone(), Value::Object(attrs).to_string())
        })
        .collect();
    let now = crate::unix_now();
    let (created, updated, unchanged) = app
        .store
        .write(move |tx| {
            let (mut created, mut updated, mut unchanged) = (0u64, 0u64, 0u64);
            let mut find = tx.prepare_cached("SELECT attrs FROM users WHERE email = ?1")?;
            let mut put = tx.prepare_cached(
                "INSERT INTO users (email, attrs, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(email) DO UPDATE SET attrs = excluded.attrs, updated_at = excluded.updated_at",
            )?;
            for (email, attrs) in &rows {
                let old: Option<String> = find.query_row([email], |r| r.get(0)).optional()?;
                match old {
                    Some(o) if &o == attrs => unchanged += 1,
                    Some(_) => {
                        put.execute((email, attrs, now))?;
                        updated += 1;
                    }
                    None => {
                        put.execute((email, attrs, now))?;
                        created += 1;
                    }
                }
            }
            Ok(((created, updated, unchanged), None))
        })
        .await?;
    Ok(axum::Json(ImportResult {
        users: created + updated + unchanged,
        created,
        updated,
        unchanged,
        diagnostics: findings,
    })
    .into_response())
}

/// `POST /v1/users/remove`: removes people who left the directory, with their tokens.
///
/// Body `{"users": ["a@acme.com", …]}`. Their usage, audit and requests stay (history is
/// not rewritten); their applied limits are the reconciler's to remove, under its
/// blast-radius guard, before it calls this.
pub async fn remove(
    State(app): State<App>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    // through the one JSON reader (duplicate keys, NUL characters), then this body's shape
    let emails: Vec<String> = Some(super::json_body::<Value>(body)?)
        .and_then(|v| v.get("users").and_then(Value::as_array).cloned())
        .and_then(|users| users.iter().map(|u| u.as_str().map(str::to_string)).collect())
        .ok_or_else(|| {
            ApiError::bad_request("users/bad-remove", "the body must be `{\"users\": [\"<email>\", …]}`")
        })?;
    // Each key as written and in canonical form: rows an older version stored keep the
    // spelling they were imported with, as the reconciler read them.
    let keys: Vec<(String, String)> = emails
        .into_iter()
        .map(|written| canonical_user(&written).map(|canonical| (written, canonical)))
        .collect::<ApiResult<_>>()?;
    let app2 = app.clone();
    let now = crate::unix_now();
    let removed = app
        .store
        .write(move |tx| {
            let mut removed = 0u64;
            for (written, email) in &keys {
                if tx.execute("DELETE FROM users WHERE email IN (?1, ?2)", [email, written])? > 0 {
                    removed += 1;
                    tx.execute(
                        "INSERT INTO audit (at, actor, action, subject) VALUES (?1, 'admin', 'user.remove', ?2)",
                        (now, email),
                    )?;
                }
                tx.execute("DELETE FROM tokens WHERE email = ?1", [email])?;
            }
            let after: crate::store::After = Box::new(move |ok| {
                if ok {
                    for (_, email) in &keys {
                        app2.tokens.revoke_user(email);
                    }
                }
            });
            Ok((removed, Some(after)))
        })
        .await?;
    Ok(axum::Json(Removed { removed }).into_response())
}

/// What a directory import answers: counts, and the rows it could not take.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImportResult {
    /// Users in the directory (created + updated + unchanged).
    users: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    diagnostics: Vec<Finding>,
}

/// A row of the directory that was refused or is suspicious.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct Finding {
    code: String,
    #[schemars(extend("enum" = ["error", "warning"]))]
    severity: &'static str,
    message: String,
    /// The line of the body, when the finding has one.
    line: Option<u32>,
}

/// What a removal answers.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "RemovedUsers")]
pub(crate) struct Removed {
    /// How many people were removed.
    removed: u64,
}

/// A row of `GET /v1/users`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "User")]
pub(crate) struct UserRow {
    email: String,
    /// The directory's attributes, by name.
    attributes: Map<String, Value>,
}

/// A user token, shown once.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "IssuedToken")]
pub(crate) struct Issued {
    user: String,
    token: String,
    note: &'static str,
}

/// What a revocation answers.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "RevokedTokens")]
pub(crate) struct Revoked {
    user: String,
    /// How many tokens were revoked.
    revoked: usize,
}

/// Attribute names and types from the body itself, when no Workspace declares them.
fn infer_attributes(bytes: &[u8], jsonl: bool) -> BTreeMap<String, AttributeType> {
    let mut out = BTreeMap::new();
    let text = String::from_utf8_lossy(bytes);
    if jsonl {
        for line in text.lines().take(100_000) {
            if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) {
                for (k, v) in obj {
                    if k == "email" || out.contains_key(&k) || !valid_attribute(&k) {
                        continue;
                    }
                    let t = match v {
                        Value::Array(_) => AttributeType::List,
                        Value::Number(_) => AttributeType::Number,
                        Value::Bool(_) => AttributeType::Bool,
                        _ => AttributeType::String,
                    };
                    out.insert(k, t);
                }
            }
        }
    } else if let Some(header) = text.lines().next() {
        for name in header.split(',') {
            let name = name.trim().trim_matches('"').trim();
            if name != "email" && valid_attribute(name) {
                out.insert(name.to_string(), AttributeType::String);
            }
        }
    }
    out
}

fn valid_attribute(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `GET /v1/users`: a page of users by email, filtered by attribute values.
pub async fn list(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let ListQuery { q, limit, after } = ListQuery::<String>::parse(raw.as_deref(), 100, MAX_PAGE)?;
    let after = after.unwrap_or_default();
    let mut filters = Vec::new();
    for (k, v) in &q.0 {
        if matches!(k.as_str(), "limit" | "after") {
            continue;
        }
        if !valid_attribute(k) {
            return Err(ApiError::bad_request(
                "users/bad-filter",
                format!("`{}` is not an attribute name", super::shorten(k)),
            ));
        }
        filters.push((format!("$.\"{k}\""), v.clone()));
    }
    let scope = who.scope().map(str::to_string);
    let rows = app
        .store
        .read(move |c| {
            let mut sql = String::from("SELECT email, attrs FROM users WHERE email > ?1");
            let mut params: Vec<String> = vec![after];
            if let Some(u) = scope {
                params.push(u);
                sql.push_str(&format!(" AND email = ?{}", params.len()));
            }
            for (path, value) in filters {
                params.push(path);
                let p = params.len();
                params.push(value);
                let v = params.len();
                sql.push_str(&format!(
                    " AND (CAST(json_extract(attrs, ?{p}) AS TEXT) = ?{v}
                       OR (json_type(attrs, ?{p}) = 'array'
                           AND EXISTS (SELECT 1 FROM json_each(attrs, ?{p}) WHERE value = ?{v})))"
                ));
            }
            sql.push_str(&format!(" ORDER BY email LIMIT {}", Page::<(), ()>::read_limit(limit)));
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await?;
    // attributes are stored by the import above, always as an object
    let page = Page::cut(rows, limit, |(email, _)| email.clone()).map(|(email, attrs)| UserRow {
        email,
        attributes: serde_json::from_str(&attrs).unwrap_or_default(),
    });
    Ok(page.into_response())
}

/// `GET /v1/users/{email}`: one user with the applied limit and this period's usage.
pub async fn get_one(
    State(app): State<App>,
    who: Principal,
    email: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    let email = canonical_user(&path_param(email)?)?;
    who.require_user(&email)?;
    let key = email.clone();
    let attrs: Option<String> = app
        .store
        .read(move |c| {
            Ok(c.query_row("SELECT attrs FROM users WHERE email = ?1", [key], |r| r.get(0)).optional()?)
        })
        .await?;
    let (limit, usage, period) = {
        let ledger = app.ledger()?;
        let limit = ledger.limit_of(&email).cloned();
        (limit, ledger.usage_of(&email), ledger.period())
    };
    if attrs.is_none() && limit.is_none() {
        return Err(ApiError::not_found("users/unknown", format!("no user `{}`", super::shorten(&email))));
    }
    let (total, products, models) = usage;
    let map = |m: BTreeMap<String, i64>| -> BTreeMap<String, Credits> {
        m.into_iter().map(|(k, v)| (k, Credits::from_micros(v))).collect()
    };
    Ok(axum::Json(UserDetail {
        email,
        attributes: attrs.and_then(|a| serde_json::from_str(&a).ok()),
        group: limit.as_ref().and_then(|l| l.group.clone()),
        limit: limit.map(|l| l.limit),
        period: period.map(|p| Period { start: p.start, end: p.end }),
        used: Used { credits: Credits::from_micros(total), products: map(products), models: map(models) },
    })
    .into_response())
}

/// One user: the directory's attributes, the applied limit and this period's usage.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "UserDetail")]
pub(crate) struct UserDetail {
    email: String,
    /// Null for a user with a limit the directory does not know.
    attributes: Option<Map<String, Value>>,
    /// The applied limit; null without one.
    limit: Option<budgit_engine::model::Limit>,
    /// The group whose pool applies.
    group: Option<String>,
    /// The period the usage is counted in; null before the workspace has one.
    period: Option<Period>,
    used: Used,
}

/// A period: from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "PeriodRange")]
pub(crate) struct Period {
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
}

/// Usage this period: the total, by product and by model.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "UserUsage")]
pub(crate) struct Used {
    credits: Credits,
    products: BTreeMap<String, Credits>,
    models: BTreeMap<String, Credits>,
}

/// `POST /v1/users/{email}/tokens`: issues a token that sees only this user (shown once).
pub async fn issue_token(
    State(app): State<App>,
    who: Principal,
    email: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let email = canonical_user(&path_param(email)?)?;
    let token = auth::generate("bgt_user_")?;
    let h = auth::hash(&token);
    let (key, app2) = (email.clone(), app.clone());
    let now = crate::unix_now();
    app.store
        .write(move |tx| {
            let known: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE email = ?1) OR EXISTS(SELECT 1 FROM limits WHERE email = ?1)",
                [&key],
                |r| r.get(0),
            )?;
            if !known {
                return Err(ApiError::not_found("users/unknown", format!("no user `{}`", super::shorten(&key))));
            }
            tx.execute("INSERT INTO tokens (hash, email, created_at) VALUES (?1, ?2, ?3)", (&h[..], &key, now))?;
            tx.execute(
                "INSERT INTO audit (at, actor, action, subject) VALUES (?1, 'admin', 'token.issue', ?2)",
                (now, &key),
            )?;
            let after: crate::store::After = Box::new(move |ok| {
                if ok {
                    app2.tokens.add_user(h, key);
                }
            });
            Ok(((), Some(after)))
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(Issued { user: email, token, note: "shown once; only its hash is stored" }),
    )
        .into_response())
}

/// `DELETE /v1/users/{email}/tokens`: revokes every token of a user, and their console sessions.
pub async fn revoke_tokens(
    State(app): State<App>,
    who: Principal,
    email: Result<Path<String>, PathRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let written = path_param(email)?;
    // Tokens are issued to canonical emails; a key that cannot be one is revoked as
    // written, so a revocation is never refused.
    let email = canonical_user(&written).unwrap_or(written);
    let (key, app2) = (email.clone(), app.clone());
    let now = crate::unix_now();
    let revoked = app
        .store
        .write(move |tx| {
            let n = tx.execute("DELETE FROM tokens WHERE email = ?1", [&key])?;
            // a console session signed in with a revoked token must not outlive it
            crate::sessions::store_revoke(tx, &Principal::User(key.clone()))?;
            tx.execute(
                "INSERT INTO audit (at, actor, action, subject) VALUES (?1, 'admin', 'token.revoke', ?2)",
                (now, &key),
            )?;
            let after: crate::store::After = Box::new(move |ok| {
                if ok {
                    app2.tokens.revoke_user(&key);
                }
            });
            Ok((n, Some(after)))
        })
        .await?;
    Ok(axum::Json(Revoked { user: email, revoked }).into_response())
}
