//! Where credits go and what they produce: outcomes uploaded by an admin, and usage
//! per context value (repository, ticket, workflow) with credits per outcome per team.
//!
//! Events carry an optional `context` object; its documented keys `repo`, `ticket` and
//! `workflow` (string values) are what usage is broken down by, read from the stored
//! JSON with SQLite's JSON functions, so nothing is added to the ingest path. Other
//! keys are kept with the event and not broken down by. Outcomes (merged pull
//! requests, resolved tickets) come from `POST /v1/outcomes` as CSV or JSON Lines, read
//! by the engine's outcomes reader; an upload is all or nothing: a bad row refuses it
//! with the row's line and column, an outcome id stored before with other values
//! refuses it with 409, and the same outcome sent again changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use budgit_engine::input::{OutcomesFormat, parse_outcomes};
use budgit_engine::usage_table::ContextKey;
use budgit_engine::value::credits_per_outcome;
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use crate::App;
use crate::api::events::{WIDE_SUM, Window, wide_sum};
use crate::api::{QueryPairs, raw_body, rfc3339, shorten};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};

/// Largest outcomes upload, in bytes.
pub const MAX_OUTCOMES_BODY: usize = 8 * 1024 * 1024;
/// Most bad rows an answer lists.
const MAX_FINDINGS: usize = 100;
/// Rows of `/v1/dashboard/value` by default, and at most.
const VALUE_ROWS: usize = 50;
const MAX_VALUE_ROWS: usize = 1000;

/// An outcome as stored: time, kind, repo, user, team.
type Stored = (i64, String, Option<String>, Option<String>, Option<String>);

/// An outcome as the value view reads it: kind, id, repo and team.
type OutcomeRow = (String, String, Option<String>, Option<String>);

/// A value's usage: micro-credits, events, and micro-credits per team.
type ValueSum = (i64, u64, BTreeMap<Option<String>, i64>);

/// What `POST /v1/outcomes` answers.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "OutcomesUploaded")]
pub(crate) struct Uploaded {
    /// Outcomes in the body (a row repeated with the same values counts once).
    received: u64,
    /// Outcomes stored now.
    stored: u64,
    /// Outcomes already stored with the same values.
    unchanged: u64,
}

/// A bad row of an upload.
#[derive(Debug, serde::Serialize)]
struct Finding {
    code: &'static str,
    message: String,
    file: &'static str,
    line: u32,
    column: u32,
}

/// `POST /v1/outcomes` (admin): stores outcomes from a CSV or JSON Lines body.
pub async fn upload(
    State(app): State<App>,
    who: Principal,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    who.require_admin()?;
    let q = QueryPairs::parse(raw.as_deref())?;
    let bytes = raw_body(body)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "outcomes/empty",
            "the body holds no outcomes (a header row at least)",
        ));
    }
    let format = if crate::api::is_json_lines(&q, &headers, &bytes, "outcomes/bad-format")? {
        OutcomesFormat::JsonLines
    } else {
        OutcomesFormat::Csv
    };
    let parsed = tokio::task::spawn_blocking(move || {
        let file: Arc<str> = Arc::from("request body");
        // a date without a time is midnight UTC: the service's days are UTC days
        parse_outcomes(&file, &bytes, format, chrono_tz::UTC)
    })
    .await
    .map_err(|e| ApiError::store(&e))?
    .map_err(|reason| ApiError::bad_request("outcomes/bad-file", reason))?;
    let (outcomes, findings) = parsed;
    if !findings.is_empty() {
        let listed: Vec<Finding> = findings
            .iter()
            .take(MAX_FINDINGS)
            .map(|d| Finding {
                code: d.code.as_str(),
                message: d.message.clone(),
                file: "request body",
                line: d.location.as_ref().map_or(0, |l| l.line),
                column: d.location.as_ref().map_or(0, |l| l.column),
            })
            .collect();
        let first = listed.first().map(|f| format!("line {}: {}", f.line, f.message)).unwrap_or_default();
        return Err(ApiError::unprocessable(
            "outcomes/bad-rows",
            format!(
                "{} of the body cannot be read, nothing was stored (first, {first})",
                if findings.len() == 1 { "1 row".to_string() } else { format!("{} rows", findings.len()) }
            ),
        )
        .with_extra(serde_json::json!({ "diagnostics": listed })));
    }
    let window = Window::at(Utc::now().timestamp());
    if let Some(o) =
        outcomes.iter().find(|o| !(window.earliest..=window.latest).contains(&o.time.timestamp()))
    {
        return Err(ApiError::unprocessable(
            "outcomes/time-out-of-window",
            format!(
                "outcome `{}` has the time {}, outside {} to {} (2020-01-01 to a day from now); nothing was stored",
                shorten(&o.id),
                rfc3339(o.time.timestamp()),
                rfc3339(window.earliest),
                rfc3339(window.latest)
            ),
        ));
    }
    let now = Utc::now().timestamp();
    let answer = app
        .store
        .write(move |tx| {
            let (mut stored, mut unchanged) = (0u64, 0u64);
            let mut find = tx.prepare_cached("SELECT ts, kind, repo, email, team FROM outcomes WHERE id = ?1")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO outcomes (id, ts, kind, repo, email, team, uploaded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for o in &outcomes {
                let known: Option<Stored> = find
                    .query_row([&o.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                    .optional()?;
                match known {
                    Some(k) if k == (o.time.timestamp(), o.kind.clone(), o.repo.clone(), o.user.clone(), o.team.clone()) => {
                        unchanged += 1;
                    }
                    Some(_) => {
                        return Err(ApiError::conflict(
                            "outcomes/conflict",
                            format!(
                                "outcome `{}` is stored with other values; an outcome's id names one outcome (nothing was stored)",
                                shorten(&o.id)
                            ),
                        ));
                    }
                    None => {
                        insert.execute(rusqlite::params![
                            o.id,
                            o.time.timestamp(),
                            o.kind,
                            o.repo,
                            o.user,
                            o.team,
                            now
                        ])?;
                        stored += 1;
                    }
                }
            }
            Ok((Uploaded { received: outcomes.len() as u64, stored, unchanged }, None))
        })
        .await?;
    Ok(axum::Json(answer).into_response())
}

/// The answer of `/v1/dashboard/value`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardValue")]
pub(crate) struct ValueOut {
    /// `context.repo`, `context.ticket` or `context.workflow`.
    #[schemars(extend("enum" = ["context.repo", "context.ticket", "context.workflow"]))]
    by: String,
    /// The first instant counted.
    #[schemars(extend("format" = "date-time"))]
    since: String,
    /// The first instant not counted; null: up to now.
    #[schemars(extend("format" = "date-time"))]
    until: Option<String>,
    /// Usage from `since`, with or without the key.
    used: Credits,
    /// Events counted.
    events: u64,
    /// Outcomes from `since`.
    outcomes: u64,
    /// Per value, largest first; `key: null` is the usage without the key.
    rows: Vec<ValueRowOut>,
    /// Values left out past `limit`.
    more: u64,
    /// Per team (the group of the spender when the event arrived, the outcome's team or
    /// its user's group): its usage, outcomes and credits per outcome, largest usage first.
    teams: Vec<ValueTeamOut>,
}

/// Usage of one context value.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardValueRow")]
pub(crate) struct ValueRowOut {
    /// The value; null for usage without the key.
    key: Option<String>,
    used: Credits,
    /// Percent of `used`, two decimals.
    share: Option<f64>,
    events: u64,
    /// Outcomes naming the value: `repo` for `context.repo`, a `ticket` outcome's `id`
    /// for `context.ticket`; null for `context.workflow` and the usage without the key.
    outcomes: Option<u64>,
    /// `used / outcomes`, rounded down to a micro-credit; null without outcomes.
    credits_per_outcome: Option<Credits>,
    /// Per team, largest first; `team: null` for people in no group.
    teams: Vec<ValueRowTeam>,
}

/// A team's part of a value's usage.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardValueRowTeam")]
pub(crate) struct ValueRowTeam {
    team: Option<String>,
    used: Credits,
}

/// A team's usage and outcomes.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardValueTeam")]
pub(crate) struct ValueTeamOut {
    /// The group; null for people in none.
    team: Option<String>,
    used: Credits,
    outcomes: u64,
    /// Outcomes per kind (`pull_request`, `ticket`).
    kinds: BTreeMap<String, u64>,
    /// `used / outcomes`, rounded down to a micro-credit; null without outcomes.
    credits_per_outcome: Option<Credits>,
    /// `used / pull_request outcomes`, rounded down; null without one.
    credits_per_pull_request: Option<Credits>,
}

/// An instant of the query (RFC 3339).
fn instant(q: &QueryPairs, name: &str) -> ApiResult<Option<DateTime<Utc>>> {
    q.get(name)
        .map(|t| {
            DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                ApiError::bad_request(
                    "dashboard/bad-time",
                    format!("`{name}` must be an RFC 3339 instant, not `{}`", shorten(t)),
                )
            })
        })
        .transpose()
}

/// Usage of one value and team, as read.
struct Cell {
    value: Option<String>,
    team: Option<String>,
    micros: i64,
    events: u64,
}

/// `GET /v1/dashboard/value?by=context.repo&since=…&until=…`: usage per context value and
/// per team within each, outcomes per value, and credits per outcome per team (admin).
pub async fn value(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    who.require_admin()?;
    let q = QueryPairs::parse(raw.as_deref())?;
    let by = q.get("by").unwrap_or("context.repo");
    let key = by.strip_prefix("context.").and_then(ContextKey::parse).ok_or_else(|| {
        ApiError::bad_request(
            "dashboard/bad-by",
            format!(
                "`by` must be `context.repo`, `context.ticket` or `context.workflow`, not `{}`",
                shorten(by)
            ),
        )
    })?;
    let limit = q.page_size(VALUE_ROWS, MAX_VALUE_ROWS)?;
    let now = instant(&q, "now")?.unwrap_or_else(Utc::now);
    let until = instant(&q, "until")?;
    // by default the period the dashboard shows
    let since = match instant(&q, "since")? {
        Some(t) => t,
        None => super::dashboard::period_start(&app, now)?,
    };
    if until.is_some_and(|u| u <= since) {
        return Err(ApiError::bad_request("dashboard/bad-time", "`until` must be after `since`"));
    }
    let (from, to) = (since.timestamp(), until.map_or(i64::MAX, |u| u.timestamp()));
    let path = format!("$.{}", key.as_str());
    let (cells, outcomes) = app
        .store
        .read(move |conn| {
            // a value counts when the key holds text; events without one are the null row
            let sql = format!(
                "SELECT CASE WHEN json_valid(context) AND json_type(context, ?3) = 'text'
                     THEN json_extract(context, ?3) END AS v, project, {WIDE_SUM}, COUNT(*)
                 FROM events WHERE ts >= ?1 AND ts < ?2 GROUP BY v, project"
            );
            let mut stmt = conn.prepare(&sql)?;
            let cells = stmt
                .query_map(rusqlite::params![from, to, path], |r| {
                    let project: String = r.get(1)?;
                    Ok(Cell {
                        value: r.get(0)?,
                        team: Some(project).filter(|p| !p.is_empty()),
                        micros: wide_sum(r.get(2)?, r.get(3)?),
                        events: u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
                    })
                })?
                .collect::<rusqlite::Result<Vec<Cell>>>()?;
            let mut stmt = conn.prepare(
                "SELECT o.kind, o.id, o.repo, COALESCE(o.team, l.grp) FROM outcomes o
                 LEFT JOIN limits l ON l.email = o.email WHERE o.ts >= ?1 AND o.ts < ?2",
            )?;
            let outcomes = stmt
                .query_map(rusqlite::params![from, to], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((cells, outcomes))
        })
        .await?;
    let out = answer(key, by, since, until, limit, cells, &outcomes);
    Ok(axum::Json(out).into_response())
}

/// The answer from the cells read and the outcomes (kind, id, repo, team) of the window.
fn answer(
    key: ContextKey,
    by: &str,
    since: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    limit: usize,
    cells: Vec<Cell>,
    outcomes: &[OutcomeRow],
) -> ValueOut {
    let used: i64 = cells.iter().fold(0, |s, c| s.saturating_add(c.micros));
    let events: u64 = cells.iter().map(|c| c.events).sum();
    let total = Credits::from_micros(used);
    // per value: total, events, per team
    let mut values: BTreeMap<Option<String>, ValueSum> = BTreeMap::new();
    let mut teams: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for c in cells {
        let t = teams.entry(c.team.clone()).or_default();
        *t = t.saturating_add(c.micros);
        let (m, n, per_team) = values.entry(c.value).or_default();
        *m = m.saturating_add(c.micros);
        *n += c.events;
        let t = per_team.entry(c.team).or_default();
        *t = t.saturating_add(c.micros);
    }
    // outcomes per value and per team
    let mut per_value: HashMap<&str, u64> = HashMap::new();
    let mut per_team: BTreeMap<Option<String>, BTreeMap<String, u64>> = BTreeMap::new();
    for (kind, id, repo, team) in outcomes {
        let named = match key {
            ContextKey::Repo => repo.as_deref(),
            ContextKey::Ticket => (kind == "ticket").then_some(id.as_str()),
            ContextKey::Workflow => None,
        };
        if let Some(v) = named {
            *per_value.entry(v).or_default() += 1;
        }
        *per_team.entry(team.clone()).or_default().entry(kind.clone()).or_default() += 1;
    }
    let mut rows: Vec<ValueRowOut> = values
        .into_iter()
        .map(|(value, (m, n, per))| {
            let used = Credits::from_micros(m);
            let outcomes = match (&value, key) {
                (Some(v), ContextKey::Repo | ContextKey::Ticket) => {
                    Some(per_value.get(v.as_str()).copied().unwrap_or(0))
                }
                _ => None,
            };
            let mut teams: Vec<ValueRowTeam> = per
                .into_iter()
                .map(|(team, m)| ValueRowTeam { team, used: Credits::from_micros(m) })
                .collect();
            teams.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.team.cmp(&b.team)));
            ValueRowOut {
                key: value,
                used,
                share: used.percent_of(total),
                events: n,
                outcomes,
                credits_per_outcome: outcomes.and_then(|o| credits_per_outcome(used, o)),
                teams,
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.used
            .cmp(&a.used)
            .then_with(|| a.key.is_none().cmp(&b.key.is_none()))
            .then_with(|| a.key.cmp(&b.key))
    });
    let more = rows.len().saturating_sub(limit) as u64;
    rows.truncate(limit);
    let names: BTreeSet<Option<String>> = teams.keys().chain(per_team.keys()).cloned().collect();
    let mut teams: Vec<ValueTeamOut> = names
        .into_iter()
        .map(|team| {
            let used = Credits::from_micros(teams.get(&team).copied().unwrap_or(0));
            let kinds = per_team.remove(&team).unwrap_or_default();
            let outcomes: u64 = kinds.values().sum();
            let prs = kinds.get("pull_request").copied().unwrap_or(0);
            ValueTeamOut {
                team,
                used,
                outcomes,
                credits_per_outcome: credits_per_outcome(used, outcomes),
                credits_per_pull_request: credits_per_outcome(used, prs),
                kinds,
            }
        })
        .collect();
    teams.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.team.cmp(&b.team)));
    ValueOut {
        by: by.to_string(),
        since: rfc3339(since.timestamp()),
        until: until.map(|u| rfc3339(u.timestamp())),
        used: total,
        events,
        outcomes: outcomes.len() as u64,
        rows,
        more,
        teams,
    }
}
