//! The console's drill-down views: which teams use which product and model
//! (`/v1/dashboard/mix`), one team (`/v1/dashboard/teams/{group}`) and one person
//! (`/v1/dashboard/people/{email}`).
//!
//! Everything here is read from the same view and aggregates as the other dashboard
//! views: membership and standings from the view (the engine's `standing`, never
//! computed again here), usage by product, model and day from the aggregates. A team
//! is [`Row::team`]: a group, or [`NO_GROUP`] for users with a limit and no group.

use std::collections::BTreeMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use budgit_engine::Credits;
use budgit_engine::load::git::GitRepo;
use rusqlite::OptionalExtension;
use serde_json::{Map, Value};

use super::aggregates::Aggregates;
use super::view::{NO_GROUP, Row, Slice, View};
use super::{PeriodOut, admin_view, budget_of, day_index, order_of, period_of, usage_maps};
use crate::App;
use crate::api::{QueryPairs, canonical_user, path_param, rfc3339, shorten};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};

/// The product the mix is sorted by when the query names none.
const DEFAULT_PRODUCT: &str = "codex";
/// Members a team page lists, by usage (a team of a hundred thousand stays one answer
/// of a bounded size; its figures count every member).
const MEMBERS_LISTED: usize = 1000;
/// Proposals and credit requests a team or person page lists, newest first.
const LISTED: i64 = 20;

/// Credits per product and per model of some users, by name.
#[derive(Default)]
struct Usage<'a> {
    used: i64,
    products: BTreeMap<&'a str, i64>,
    models: BTreeMap<&'a str, i64>,
}

impl<'a> Usage<'a> {
    /// Adds one row's usage: its cells from the aggregates, else its total alone.
    fn add(&mut self, agg: Option<&'a Aggregates>, row: &Row) {
        let Some((a, u)) = agg.and_then(|a| a.users.get(&*row.user).map(|u| (a, u))) else {
            self.used = self.used.saturating_add(row.used);
            return;
        };
        self.used = self.used.saturating_add(u.total);
        for c in &u.cells {
            let p = self.products.entry(a.products.name(c.product)).or_default();
            *p = p.saturating_add(c.micros);
            let m = self.models.entry(a.models.name(c.model)).or_default();
            *m = m.saturating_add(c.micros);
        }
    }

    fn credits(map: &BTreeMap<&str, i64>) -> BTreeMap<String, Credits> {
        map.iter().map(|(k, v)| ((*k).to_string(), Credits::from_micros(*v))).collect()
    }
}

/// The aggregates the view was built for, when they are still the ones loaded.
fn agg_of<'a>(live: &'a Option<super::Live>, v: &'a View) -> Option<&'a Aggregates> {
    super::agg_for(live, v)
}

/// Usage per team for the breakdown's `by=team`: every team of the view (so
/// [`NO_GROUP`] is there even before it spends), its members' usage and events, and
/// how many of them used anything.
pub(super) fn team_slices(v: &View) -> Vec<Slice> {
    let mut slices: BTreeMap<&str, Slice> = v
        .teams
        .iter()
        .map(|t| (&*t.group, Slice { key: t.group.clone(), used: 0, events: 0, users: 0 }))
        .collect();
    for r in &v.rows {
        if let Some(s) = r.team().and_then(|t| slices.get_mut(t)) {
            s.used = s.used.saturating_add(r.used);
            s.events += r.events;
            s.users += u64::from(r.events > 0);
        }
    }
    slices.into_values().collect()
}

/// The answer of `/v1/dashboard/mix`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardMix")]
pub(crate) struct MixOut {
    /// What the rows are: teams, the only grouping so far.
    #[schemars(extend("const" = "team"))]
    by: &'static str,
    /// The product the rows are sorted by.
    product: String,
    #[schemars(extend("enum" = ["asc", "desc"]))]
    order: &'static str,
    period: PeriodOut,
    /// Every product used this period (and the one sorted by).
    products: Vec<String>,
    data: Vec<MixRow>,
}

/// One team of the mix.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardMixRow")]
struct MixRow {
    team: String,
    members: usize,
    used: Credits,
    /// Credits per product, every product of `products` (zero when unused).
    products: BTreeMap<String, Credits>,
    models: BTreeMap<String, Credits>,
}

/// `GET /v1/dashboard/mix?by=team&product=codex`: credits per product and per model of
/// every team this period, sorted by one product's credits.
pub async fn mix(State(app): State<App>, who: Principal, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    let (now, v) = admin_view(&app, &who, &q).await?;
    match q.get("by").unwrap_or("team") {
        "team" => {}
        other => {
            return Err(ApiError::bad_request(
                "dashboard/bad-by",
                format!("`by` must be `team`, not `{}`", shorten(other)),
            ));
        }
    }
    let product = q.get("product").filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PRODUCT).to_string();
    let desc = order_of(&q, true)?;
    let live = app.dashboard.live()?;
    let agg = agg_of(&live, &v);
    let mut teams: BTreeMap<&str, (usize, Usage<'_>)> =
        v.teams.iter().map(|t| (&*t.group, (t.members, Usage::default()))).collect();
    for r in &v.rows {
        if let Some((_, usage)) = r.team().and_then(|t| teams.get_mut(t)) {
            usage.add(agg, r);
        }
    }
    // every product of the period, so each team has a figure for each (zero when unused)
    let mut products: Vec<&str> =
        agg.map_or_else(Vec::new, |a| a.products.iter().map(|(_, n)| &**n).collect());
    if !products.contains(&product.as_str()) {
        products.push(&product);
    }
    products.sort_unstable();
    let mut rows: Vec<(&str, usize, Usage<'_>)> = teams.into_iter().map(|(t, (m, u))| (t, m, u)).collect();
    let by = |u: &Usage<'_>| u.products.get(product.as_str()).copied().unwrap_or(0);
    rows.sort_by(|a, b| {
        let order = if desc { by(&b.2).cmp(&by(&a.2)) } else { by(&a.2).cmp(&by(&b.2)) };
        order.then_with(|| a.0.cmp(b.0))
    });
    let data: Vec<MixRow> = rows
        .iter()
        .map(|(team, members, u)| MixRow {
            team: (*team).to_string(),
            members: *members,
            used: Credits::from_micros(u.used),
            products: products
                .iter()
                .map(|p| ((*p).to_string(), Credits::from_micros(u.products.get(p).copied().unwrap_or(0))))
                .collect(),
            models: Usage::credits(&u.models),
        })
        .collect();
    let body = MixOut {
        by: "team",
        order: if desc { "desc" } else { "asc" },
        period: period_of(&v.key, now),
        products: products.iter().map(|p| (*p).to_string()).collect(),
        data,
        product,
    };
    drop(live);
    Ok(axum::Json(body).into_response())
}

/// The answer of `/v1/dashboard/teams/{group}`: the team's budget figures as the
/// summary writes them, then its usage, members, daily usage, proposals and requests.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardTeamDetail")]
pub(crate) struct TeamOut {
    group: String,
    /// Every member, counted (the list below stops at 1000).
    members: usize,
    used: Credits,
    /// The team's pool, else the sum of its members' limits.
    budget: Credits,
    #[schemars(extend("enum" = ["pool", "members"]))]
    budget_kind: &'static str,
    pool: Option<Credits>,
    /// The sum of the members' limits.
    exposure: Credits,
    remaining: Credits,
    /// Percent of the budget used, two decimals; null for a zero budget.
    percent: Option<f64>,
    #[schemars(schema_with = "crate::console::dashboard::status_schema")]
    status: &'static str,
    products: BTreeMap<String, Credits>,
    models: BTreeMap<String, Credits>,
    /// The members, by usage, largest first (at most 1000; `members` counts them all).
    member_list: Vec<MemberOut>,
    daily: DailyOut,
    period: PeriodOut,
    /// The proposals made for the group whose commit the approved ref does not contain
    /// yet, newest first (of the latest 20).
    proposals: Vec<ProposalRow>,
    /// The members' credit requests still open (pending, approved, proposed, merged or
    /// applied), newest first (at most 20).
    requests: Vec<RequestRow>,
}

/// A member of a team, with their standing.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardTeamMember")]
struct MemberOut {
    user: String,
    limit: Option<Credits>,
    used: Credits,
    /// The limit's remainder bounded by the pool's; null without a limit.
    remaining: Option<Credits>,
    /// Percent of the limit used, two decimals; null without a limit or for a zero one.
    percent: Option<f64>,
    #[schemars(schema_with = "crate::console::dashboard::status_schema")]
    status: &'static str,
    blocked: bool,
    #[schemars(with = "BTreeMap<String, Credits>")]
    products: Map<String, Value>,
    #[schemars(with = "BTreeMap<String, Credits>")]
    models: Map<String, Value>,
}

/// Daily credits over the period so far: a value per day.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardDaily")]
struct DailyOut {
    #[schemars(extend("items" = { "type": "string", "format": "date" }))]
    days: Vec<String>,
    values: Vec<Credits>,
    /// The same days per product, largest total first: the values of a day add up to its
    /// value in `values`.
    products: Vec<DailyProduct>,
}

/// Daily credits of one product.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardDailyProduct")]
struct DailyProduct {
    product: String,
    total: Credits,
    /// A value per day of `days`.
    values: Vec<Credits>,
}

/// A proposal made for a group.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardTeamProposal")]
struct ProposalRow {
    id: i64,
    branch: String,
    commit: String,
    title: String,
    reason: String,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    created_by: String,
}

/// A credit request, as a team or person page lists it.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardRequest")]
pub(super) struct RequestRow {
    id: i64,
    user: String,
    credits: Credits,
    days: i64,
    reason: String,
    /// A step of the request's lifecycle.
    status: String,
    #[schemars(extend("format" = "date-time"))]
    created_at: String,
    product: Option<String>,
    model: Option<String>,
}

/// Daily credits of some users over the period so far: their total per day, and per
/// product from each user's usage per day and product.
fn daily_totals(agg: &Aggregates, rows: &[&Row], shown: usize) -> DailyOut {
    let days: Vec<String> = (0..shown).filter_map(|d| agg.date(d)).map(|d| d.to_string()).collect();
    let mut total = vec![0i64; shown];
    let mut products: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for r in rows {
        if let Some(u) = agg.users.get(&*r.user) {
            for &(d, m) in &u.daily {
                if let Some(slot) = total.get_mut(usize::from(d)) {
                    *slot = slot.saturating_add(m);
                }
            }
            for &(d, p, m) in &u.daily_products {
                if usize::from(d) < shown {
                    let values = products.entry(p).or_insert_with(|| vec![0; shown]);
                    values[usize::from(d)] = values[usize::from(d)].saturating_add(m);
                }
            }
        }
    }
    let c = |v: &[i64]| v.iter().map(|m| Credits::from_micros(*m)).collect::<Vec<_>>();
    let mut products: Vec<DailyProduct> = products
        .into_iter()
        .map(|(p, v)| DailyProduct {
            product: agg.products.name(p).to_string(),
            total: Credits::from_micros(v.iter().fold(0, |s: i64, m| s.saturating_add(*m))),
            values: c(&v),
        })
        .collect();
    products.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.product.cmp(&b.product)));
    DailyOut { days, values: c(&total), products }
}

/// The proposals made for a group, newest first.
fn listed_proposals(conn: &rusqlite::Connection, group: &str) -> rusqlite::Result<Vec<ProposalRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, branch, commit_id, title, reason, created_at, created_by FROM proposals
         WHERE kind = 'group' AND subject = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map((group, LISTED), |r| {
            Ok(ProposalRow {
                id: r.get(0)?,
                branch: r.get(1)?,
                commit: r.get(2)?,
                title: r.get(3)?,
                reason: r.get(4)?,
                created_at: rfc3339(r.get(5)?),
                created_by: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The proposals whose commit the approved ref does not contain yet: those still waiting
/// for a review and a merge. Without a readable repository, all of them.
fn still_open(
    repo: Option<&std::path::Path>,
    approved_ref: &str,
    proposals: Vec<ProposalRow>,
) -> Vec<ProposalRow> {
    let Some(git) = repo.and_then(|r| GitRepo::discover(r).ok()) else { return proposals };
    let Some(tip) = git.commit(approved_ref).ok().map(|c| c.id()) else { return proposals };
    proposals
        .into_iter()
        .filter(|p| {
            let merged = git2::Oid::from_str(&p.commit)
                .ok()
                .is_some_and(|c| c == tip || git.raw().graph_descendant_of(tip, c).unwrap_or(false));
            !merged
        })
        .collect()
}

/// Credit requests of some users, newest first; `open` keeps those not yet done or declined.
fn listed_requests(
    conn: &rusqlite::Connection,
    users: &[String],
    open: bool,
) -> rusqlite::Result<Vec<RequestRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, email, micros, days, reason, status, created_at, product, model FROM requests
         WHERE email IN (SELECT value FROM json_each(?1))
           AND (?2 = 0 OR status IN ('pending', 'approved', 'proposed', 'merged', 'applied'))
         ORDER BY id DESC LIMIT ?3",
    )?;
    let users = serde_json::to_string(users).unwrap_or_else(|_| "[]".into());
    let rows = stmt
        .query_map((users, i64::from(open), LISTED), |r| {
            Ok(RequestRow {
                id: r.get(0)?,
                user: r.get(1)?,
                credits: Credits::from_micros(r.get(2)?),
                days: r.get(3)?,
                reason: r.get(4)?,
                status: r.get(5)?,
                created_at: rfc3339(r.get(6)?),
                product: r.get(7)?,
                model: r.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// `GET /v1/dashboard/teams/{group}`: one team this period: its budget, members with
/// their standings, usage by product and model, daily usage, the proposals for it not
/// merged yet and its members' open credit requests. `(no group)` is the users with a limit and no group.
pub async fn team(
    State(app): State<App>,
    who: Principal,
    group: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    let group = path_param(group)?;
    let (now, v) = admin_view(&app, &who, &q).await?;
    let Some(team) = v.team(&group) else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "dashboard/unknown-team",
            format!("no team `{}` this period", shorten(&group)),
        ));
    };
    let mut members: Vec<&Row> = v.rows.iter().filter(|r| r.team() == Some(group.as_str())).collect();
    members.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.user.cmp(&b.user)));
    let emails: Vec<String> = members.iter().map(|r| r.user.to_string()).collect();
    let (usage, member_list, daily) = {
        let live = app.dashboard.live()?;
        let agg = agg_of(&live, &v);
        let mut usage = Usage::default();
        for r in &members {
            usage.add(agg, r);
        }
        let listed: Vec<MemberOut> = members
            .iter()
            .take(MEMBERS_LISTED)
            .map(|r| {
                let (products, models) = match agg {
                    Some(a) => usage_maps(a, a.users.get(&*r.user)),
                    None => (Map::new(), Map::new()),
                };
                MemberOut {
                    user: r.user.to_string(),
                    limit: r.limit.map(Credits::from_micros),
                    used: Credits::from_micros(r.used),
                    remaining: r.remaining.map(Credits::from_micros),
                    percent: r.percent,
                    status: super::view::status_str(r.status),
                    blocked: r.blocked(),
                    products,
                    models,
                }
            })
            .collect();
        let daily = match agg {
            Some(a) => {
                let today = now.with_timezone(&v.key.tz).date_naive();
                daily_totals(a, &members, a.day_count().min(day_index(a, today) + 1))
            }
            None => DailyOut { days: Vec::new(), values: Vec::new(), products: Vec::new() },
        };
        // the names borrow the aggregates: owned before the lock is let go
        let usage = (usage.used, Usage::credits(&usage.products), Usage::credits(&usage.models));
        (usage, listed, daily)
    };
    let name = group.clone();
    let (proposals, requests) = app
        .store
        .read(move |c| {
            // `(no group)` is no group of the policies: nothing is proposed for it
            let proposals = if name == NO_GROUP { Vec::new() } else { listed_proposals(c, &name)? };
            Ok((proposals, listed_requests(c, &emails, true)?))
        })
        .await?;
    let (repo, approved_ref) = (app.repo.clone(), app.approved_ref.clone());
    let proposals =
        tokio::task::spawn_blocking(move || still_open(repo.as_deref(), &approved_ref, proposals))
            .await
            .map_err(|e| ApiError::store(&e))?;
    let c = Credits::from_micros;
    let (used, products, models) = usage;
    let body = TeamOut {
        group: team.group.to_string(),
        members: team.members,
        used: c(used),
        budget: c(team.budget()),
        budget_kind: if team.pool.is_some() { "pool" } else { "members" },
        pool: team.pool.map(c),
        exposure: c(team.exposure),
        remaining: c(team.budget().saturating_sub(team.used).max(0)),
        percent: c(team.used).percent_of(c(team.budget())),
        status: team.status(&v.rules).as_str(),
        products,
        models,
        member_list,
        daily,
        period: period_of(&v.key, now),
        proposals,
        requests,
    };
    Ok(axum::Json(body).into_response())
}

/// The answer of `/v1/dashboard/people/{email}`: the person's budget as `/v1/me`
/// answers them, then their team, cost center, applied limit and credit requests.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "DashboardPerson")]
pub(crate) struct PersonOut {
    #[serde(flatten)]
    budget: super::Budget,
    /// The team the person counts in: their group, `(no group)` with a limit and no
    /// group, null without a limit.
    team_name: Option<String>,
    cost_center: String,
    /// The applied limit's provenance; null without an applied limit.
    applied: Option<Applied>,
    /// Their credit requests, newest first (at most 20).
    requests: Vec<RequestRow>,
}

/// Where a person's applied limit comes from.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "LimitProvenance")]
struct Applied {
    /// The default, a group or an override, with its file and commit.
    #[schemars(extend("type" = ["object", "null"]))]
    source: Option<Value>,
    commit: Option<String>,
    #[schemars(extend("format" = "date-time"))]
    updated_at: String,
}

/// `GET /v1/dashboard/people/{email}`: one person this period, as an admin sees them:
/// their budget (what `/v1/me` answers them), cost center and team, where their applied
/// limit comes from (its source: the default, a group or an override) and their credit
/// requests.
pub async fn person(
    State(app): State<App>,
    who: Principal,
    email: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let q = QueryPairs::parse(raw.as_deref())?;
    let user = canonical_user(&path_param(email)?)?;
    let (now, v) = admin_view(&app, &who, &q).await?;
    let Some(row) = v.row(&user).cloned() else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "dashboard/unknown-user",
            format!("`{}` has no limit and no usage this period", shorten(&user)),
        ));
    };
    let budget = budget_of(&app, &v.key, now, &v, user.clone()).await?;
    let subject = user.clone();
    let (source, requests) = app
        .store
        .read(move |c| {
            let source = c
                .query_row(
                    "SELECT source, commit_id, updated_at FROM limits WHERE email = ?1",
                    [&subject],
                    |r| {
                        let source: Option<String> = r.get(0)?;
                        Ok(Applied {
                            source: source.and_then(|s| serde_json::from_str::<Value>(&s).ok()),
                            commit: r.get(1)?,
                            updated_at: rfc3339(r.get(2)?),
                        })
                    },
                )
                .optional()?;
            Ok((source, listed_requests(c, std::slice::from_ref(&subject), false)?))
        })
        .await?;
    let body = PersonOut {
        budget,
        team_name: row.team().map(str::to_string),
        cost_center: row.cost_center.to_string(),
        applied: source,
        requests,
    };
    Ok(axum::Json(body).into_response())
}
