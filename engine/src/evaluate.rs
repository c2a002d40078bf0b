//! Evaluation: where every user and team stands against their limits this period.
//!
//! Given the policies, the directory, the resolved limits ([`crate::resolve`]) and
//! usage ([`crate::usage_table`]), this computes per user the period's usage, what is
//! left (bounded by the team pool), the status (`ok` / `warning` / `exceeded`),
//! whether they are blocked, which product and model caps bind, the alert
//! thresholds crossed and the day the limit will be reached at the recent burn
//! rate; per group the pool's state; and workspace totals with breakdowns by
//! product, model and cost center. It reads no files and prints nothing: the
//! result is data, serialized as the `evaluate --format json` shape.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::diag::{Code, Diagnostic};
use crate::directory::{AttrValue, Directory};
use crate::load::PolicySet;
use crate::model::{Enforcement, Limit, Period};
use crate::resolve::{Resolution, SourceKind};
use crate::standing::{
    AlertLevels, BlockedBy, Forecast, Pool, Rules, Standing, Status, counted_days, floor0, percent_of,
};
use crate::usage_table::{Aggregate, AggregateSpec, RowsOutside, UsageTable, day_date, day_number};
use crate::{Credits, FastMap};

/// Days of the burn-rate window used for forecasts.
pub const BURN_WINDOW_DAYS: i32 = 7;

/// Why evaluation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvaluateError {
    /// The policies hold no single `Workspace` document.
    #[error("the policies need exactly one `Workspace` document")]
    NoWorkspace,
    /// The resolution was made for another directory.
    #[error("the resolution has {resolved} users but the directory has {directory}")]
    Mismatch {
        /// Users resolved.
        resolved: usize,
        /// Users in the directory.
        directory: usize,
    },
}

/// One product or model cap of a user.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CapStatus<'a> {
    /// The product or model capped.
    #[serde(skip)]
    pub name: &'a str,
    /// The cap.
    pub cap: Credits,
    /// Used on this product or model this period.
    pub used: Credits,
    /// What is left: the cap's remainder bounded by the total's, never below zero.
    pub remaining: Credits,
    /// `used / cap` in percent (two decimals); `null` for a zero cap.
    pub percent: Option<f64>,
    /// The cap's own status (a cap at 100% is `exceeded` but blocks only its product or model).
    pub status: Status,
    /// True when this product or model is blocked for the user (hard enforcement).
    pub blocked: bool,
}

/// One user's standing.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserStatus<'a> {
    /// The user's email.
    pub user: &'a str,
    /// The effective limit's total.
    pub limit: Credits,
    /// Used this period.
    pub used: Credits,
    /// Left this period: the limit's remainder bounded by the team pool's, never below zero.
    pub remaining: Credits,
    /// `used / limit` in percent (two decimals); `null` for a zero limit.
    pub percent: Option<f64>,
    /// `ok`, `warning` or `exceeded`.
    pub status: Status,
    /// True when exceeded under hard enforcement: usage stops.
    pub blocked: bool,
    /// What blocks them: `limit` (their own) or `pool` (their team's); `null` when not blocked.
    pub blocked_by: Option<BlockedBy>,
    /// The day the limit is reached at the burn rate of the last seven days; `null` when
    /// not before the period ends or without recent usage. For a limit already reached,
    /// the day it was reached.
    pub forecast_exhausted_on: Option<NaiveDate>,
    /// The group whose pool applies (the winning group), if any.
    pub group: Option<&'a str>,
    /// What decided the limit: `default`, `group` or `override`.
    pub source: SourceKind,
    /// The name of the deciding document.
    pub source_name: &'a str,
    /// Alert thresholds crossed by the total (threshold ≤ percent).
    pub alerts: Vec<u32>,
    /// Per-product caps.
    #[serde(serialize_with = "caps_as_map")]
    #[schemars(with = "std::collections::BTreeMap<String, CapStatus<'static>>")]
    pub products: Vec<CapStatus<'a>>,
    /// Per-model caps.
    #[serde(serialize_with = "caps_as_map")]
    #[schemars(with = "std::collections::BTreeMap<String, CapStatus<'static>>")]
    pub models: Vec<CapStatus<'a>>,
    /// Index into the directory.
    #[serde(skip)]
    pub index: usize,
    /// Usage in the burn-rate window.
    #[serde(skip)]
    pub recent: Credits,
}

fn caps_as_map<S: Serializer>(caps: &[CapStatus<'_>], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(caps.len()))?;
    for cap in caps {
        map.serialize_entry(cap.name, cap)?;
    }
    map.end()
}

/// One group's standing.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct GroupStatus<'a> {
    /// The group's name.
    pub group: &'a str,
    /// Users whose pool is this group's.
    pub members: usize,
    /// Their usage this period.
    pub used: Credits,
    /// The team pool, if the group has one.
    pub pool: Option<Credits>,
    /// `ok`, `warning` or `exceeded`: the pool's, or against the sum of member limits without one.
    pub status: Status,
    /// The pool's remainder, never below zero.
    pub remaining: Option<Credits>,
    /// `used / pool` (or the sum of member limits) in percent.
    pub percent: Option<f64>,
    /// Sum of member limits.
    pub exposure: Credits,
    /// The day the pool is used up at the group's recent burn rate.
    pub forecast_exhausted_on: Option<NaiveDate>,
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertScope {
    /// A user's total.
    User,
    /// A group's pool.
    Pool,
    /// A user's product cap.
    Product,
    /// A user's model cap.
    Model,
}

/// The highest alert threshold crossed by a user's total, a pool or a cap.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Alert<'a> {
    /// What crossed it.
    pub scope: AlertScope,
    /// The user (absent for a pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// The group (for a pool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<&'a str>,
    /// The product or model (for a cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// The highest threshold crossed, in percent.
    pub threshold: u32,
    /// Where it stands, in percent.
    pub percent: f64,
    /// The resulting status.
    pub status: Status,
}

/// Usage of one product, model or cost center.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Breakdown {
    /// The product, model or cost center.
    pub key: String,
    /// Used this period.
    pub used: Credits,
    /// Share of the workspace's usage, in percent.
    pub share: Option<f64>,
    /// Users counted (cost centers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users: Option<usize>,
    /// Sum of their limits (cost centers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposure: Option<Credits>,
}

/// Usage of a user the directory does not know.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UnknownUsage<'a> {
    /// The user as written in the usage.
    pub user: &'a str,
    /// Used this period.
    pub used: Credits,
}

/// One day of the period.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Day<'a> {
    /// The day, in the workspace timezone.
    pub date: NaiveDate,
    /// Used that day.
    pub used: Credits,
    /// Used that day per product.
    #[serde(serialize_with = "pairs_as_map")]
    #[schemars(with = "std::collections::BTreeMap<String, Credits>")]
    pub products: Vec<(&'a str, Credits)>,
}

fn pairs_as_map<S: Serializer>(pairs: &[(&str, Credits)], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(pairs.len()))?;
    for (k, v) in pairs {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// Workspace-wide figures.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Totals {
    /// Directory users.
    pub users: usize,
    /// Used this period by everyone, users absent from the directory included.
    pub used: Credits,
    /// Sum of every directory user's limit.
    pub exposure: Credits,
    /// `used / exposure` in percent.
    pub percent: Option<f64>,
    /// Used by users absent from the directory (included in `used`).
    pub used_by_unknown_users: Credits,
    /// Users per status.
    pub ok: usize,
    /// Users at warning.
    pub warning: usize,
    /// Users exceeded.
    pub exceeded: usize,
    /// Users blocked.
    pub blocked: usize,
    /// Usage rows inside the period.
    pub rows: u64,
}

/// The period evaluated.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PeriodInfo {
    /// `day`, `week`, `month` or `quarter`.
    pub kind: Period,
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after.
    pub end: DateTime<Utc>,
    /// First day, in the workspace timezone.
    pub start_date: NaiveDate,
    /// Last day (inclusive), in the workspace timezone.
    pub last_date: NaiveDate,
    /// Today, in the workspace timezone.
    pub today: NaiveDate,
}

/// Everything `evaluate` reports.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Evaluation<'a> {
    /// Every directory user, in directory order.
    pub users: Vec<UserStatus<'a>>,
    /// Every group, in policy order.
    pub groups: Vec<GroupStatus<'a>>,
    /// Alerts: pools first, then users by percent, then caps.
    pub alerts: Vec<Alert<'a>>,
    /// The instant evaluated.
    pub now: DateTime<Utc>,
    /// The period evaluated.
    pub period: PeriodInfo,
    /// `hard` or `soft`.
    pub enforcement: Enforcement,
    /// Workspace figures.
    pub totals: Totals,
    /// Directory users by usage, heaviest first (emails; see `users` for details).
    pub top_users: Vec<&'a str>,
    /// Usage per product, largest first.
    pub products: Vec<Breakdown>,
    /// Usage per model, largest first.
    pub models: Vec<Breakdown>,
    /// Chargeback per `cost_center`, largest first; absent when the attribute is not declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_centers: Option<Vec<Breakdown>>,
    /// Usage of users absent from the directory.
    pub unknown_users: Vec<UnknownUsage<'a>>,
    /// Usage per day of the period, up to today.
    pub daily: Vec<Day<'a>>,
    /// Usage rows not counted because they are dated outside the period or after today.
    pub outside_period: OutsidePeriod,
    /// Usage per context value and credits per outcome: present with `--by context.<key>`
    /// or `--outcomes` ([`crate::value`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<crate::value::ValueReport>,
}

/// Usage rows the evaluation leaves out, and why: a row counts only when its day,
/// in the workspace time zone, is in the period and not after today.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct OutsidePeriod {
    /// Rows left out, both reasons.
    pub rows: u64,
    /// Their credits.
    pub credits: Credits,
    /// Rows dated before the period's first day.
    pub before_period: RowsOutside,
    /// Rows dated after today (at `now`), in the period or after it: not happened yet.
    pub after_today: RowsOutside,
}

impl OutsidePeriod {
    /// One `usage/outside-period` warning per reason that left rows out, so they
    /// never vanish without a word.
    pub fn diagnostics(&self, period: &PeriodInfo, timezone: &str) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        let sides = [
            (
                &self.before_period,
                format!("before the period ({} to {})", period.start_date, period.last_date),
            ),
            (&self.after_today, format!("after today ({})", period.today)),
        ];
        for (side, why) in sides {
            if side.rows == 0 {
                continue;
            }
            let dates = match (side.first_date, side.last_date) {
                (Some(f), Some(l)) if f == l => format!("dated {f}"),
                (Some(f), Some(l)) => format!("dated {f} to {l}"),
                _ => "with dates out of range".to_string(),
            };
            out.push(
                Diagnostic::warning(
                    Code::UsageOutsidePeriod,
                    format!(
                        "{} usage row{} ({} credits) {dates} {} {why} and not counted",
                        side.rows,
                        if side.rows == 1 { "" } else { "s" },
                        side.credits,
                        if side.rows == 1 { "is" } else { "are" },
                    ),
                )
                .with_help(format!(
                    "evaluate counts the days of the period holding `--now`, in the workspace time zone \
                     (`{timezone}`), up to today; pass `--now` to evaluate another period"
                )),
            );
        }
        out
    }
}

/// Evaluation settings.
#[derive(Debug, Clone, Copy)]
pub struct EvaluateOptions {
    /// How many users `top_users` lists.
    pub top: usize,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        EvaluateOptions { top: 10 }
    }
}

/// Evaluates usage against the resolved limits at the resolution's instant.
pub fn evaluate<'a>(
    policies: &'a PolicySet,
    dir: &'a Directory,
    resolution: &'a Resolution,
    usage: &'a UsageTable,
    options: EvaluateOptions,
) -> Result<Evaluation<'a>, EvaluateError> {
    let workspace = &policies.workspace().ok_or(EvaluateError::NoWorkspace)?.doc;
    if resolution.users.len() != dir.len() || usage.directory_users() != dir.len() {
        return Err(EvaluateError::Mismatch { resolved: resolution.users.len(), directory: dir.len() });
    }
    let levels = AlertLevels::of(workspace);
    let rules = Rules::new(workspace.enforcement, &levels);

    let period = &resolution.period;
    let start = day_number(period.start_date);
    let end = day_number(period.end_date);
    // The last day whose usage counts (the standings' rule, shared with `plan`).
    let today = counted_days(resolution).end - 1;
    let recent_from = (today - (BURN_WINDOW_DAYS - 1)).max(start);
    let forecast = Forecast { today, window_days: i64::from(today - recent_from + 1), period_end: end };

    // Limits are shared between the users one rule gave them to: number the distinct
    // ones (consecutive users often share one) and visit each once.
    let mut limit_ids: FastMap<*const Limit, usize> = FastMap::default();
    let mut limits: Vec<&Limit> = Vec::new();
    let mut limit_of: Vec<usize> = Vec::with_capacity(resolution.users.len());
    let mut last: Option<(*const Limit, usize)> = None;
    for r in &resolution.users {
        let ptr = Arc::as_ptr(&r.limit);
        let id = match last {
            Some((p, id)) if p == ptr => id,
            _ => *limit_ids.entry(ptr).or_insert_with(|| {
                limits.push(&r.limit);
                limits.len() - 1
            }),
        };
        last = Some((ptr, id));
        limit_of.push(id);
    }
    // Track, per user, the products and models some limit caps.
    let mut product_names: Vec<&str> = Vec::new();
    let mut model_names: Vec<&str> = Vec::new();
    for limit in &limits {
        for name in limit.products.keys() {
            if !product_names.contains(&name.as_str()) {
                product_names.push(name);
            }
        }
        for name in limit.models.keys() {
            if !model_names.contains(&name.as_str()) {
                model_names.push(name);
            }
        }
    }
    // Only names present in the usage get a slot; the others have no usage at all.
    let tracked_products: Vec<(&str, u16)> =
        product_names.iter().filter_map(|n| usage.product_id(n).map(|id| (*n, id))).collect();
    let tracked_models: Vec<(&str, u16)> =
        model_names.iter().filter_map(|n| usage.model_id(n).map(|id| (*n, id))).collect();
    // Rows dated after today have not happened yet at `now` (a replay with `--now`).
    let spec = AggregateSpec {
        days: start..today + 1,
        recent_from,
        products: tracked_products.iter().map(|(_, id)| *id).collect(),
        models: tracked_models.iter().map(|(_, id)| *id).collect(),
    };
    // Each user's total is watched for the day it was reached (for users already past it).
    let budgets: Vec<i64> = resolution.users.iter().map(|r| r.limit.credits.micros()).collect();
    let agg = usage.aggregate_watching(&spec, &budgets);
    let product_slot: HashMap<&str, usize> =
        tracked_products.iter().enumerate().map(|(k, (n, _))| (*n, k)).collect();
    let model_slot: HashMap<&str, usize> =
        tracked_models.iter().enumerate().map(|(k, (n, _))| (*n, k)).collect();
    // The aggregate slot of each cap, per distinct limit.
    let cap_slots: Vec<CapSlots> = limits
        .iter()
        .map(|limit| {
            (
                limit.products.keys().map(|n| product_slot.get(n.as_str()).copied()).collect(),
                limit.models.keys().map(|n| model_slot.get(n.as_str()).copied()).collect(),
            )
        })
        .collect();

    // Groups first: a member's remaining is bounded by their pool's.
    let mut group_used = vec![Credits::ZERO; policies.groups.len()];
    let mut group_recent = vec![Credits::ZERO; policies.groups.len()];
    let mut group_members = vec![0usize; policies.groups.len()];
    let mut group_exposure = vec![Credits::ZERO; policies.groups.len()];
    for r in &resolution.users {
        if let Some(g) = r.group.filter(|&g| g < policies.groups.len()) {
            let u = user_id(r.user);
            group_used[g] += agg.used(u);
            group_recent[g] += agg.recent(u);
            group_members[g] += 1;
            group_exposure[g] += r.limit.credits;
        }
    }
    let pool_of = |g: usize| policies.groups[g].doc.pool.as_ref().map(|p| p.credits);

    let mut users = Vec::with_capacity(dir.len());
    for (r, &limit_id) in resolution.users.iter().zip(&limit_of) {
        let u = user_id(r.user);
        let limit = &*r.limit;
        let used = agg.used(u);
        let recent = agg.recent(u);
        let own_left = limit.credits - used;
        let pool = r
            .group
            .filter(|&g| g < policies.groups.len())
            .and_then(|g| pool_of(g).map(|pool| Pool { pool, used: group_used[g] }));
        let mut standing = rules.user(limit.credits, used, pool);
        let percent = percent_of(used, limit.credits);
        let (pslots, mslots) =
            cap_slots.get(limit_id).map_or((&[][..], &[][..]), |(p, m)| (p.as_slice(), m.as_slice()));
        let products = caps(&rules, &limit.products, pslots, |k| agg.product_used(u, k), &mut standing);
        let models = caps(&rules, &limit.models, mslots, |k| agg.model_used(u, k), &mut standing);
        let alerts = levels.crossed(used, limit.credits);
        let forecast_on = if limit.credits.is_zero() {
            None
        } else if used >= limit.credits {
            // Already reached: the first day by whose end the period's usage reached it.
            if limit.credits.is_negative() { day_date(start) } else { agg.reached_on(u).and_then(day_date) }
        } else {
            forecast.ahead(own_left, recent)
        };
        let group = r.group.and_then(|g| policies.groups.get(g)).map(|g| g.doc.name.as_str());
        users.push(UserStatus {
            user: dir.users[r.user].email.as_str(),
            limit: limit.credits,
            used,
            remaining: standing.remaining,
            percent,
            status: standing.status,
            blocked: standing.blocked(),
            blocked_by: standing.blocked_by,
            forecast_exhausted_on: forecast_on,
            group,
            source: r.source.kind,
            source_name: &r.source.name,
            alerts,
            products,
            models,
            index: r.user,
            recent,
        });
    }
    let groups: Vec<GroupStatus<'a>> = policies
        .groups
        .iter()
        .enumerate()
        .map(|(g, loaded)| {
            let pool = pool_of(g);
            let used = group_used[g];
            GroupStatus {
                group: loaded.doc.name.as_str(),
                members: group_members[g],
                used,
                pool,
                status: rules.team(group_members[g], used, pool, group_exposure[g]),
                remaining: pool.map(|p| floor0(p - used)),
                percent: used.percent_of(pool.unwrap_or(group_exposure[g])),
                exposure: group_exposure[g],
                forecast_exhausted_on: pool.and_then(|p| forecast.ahead(p - used, group_recent[g])),
            }
        })
        .collect();

    let alerts = alerts_of(&users, &groups, &levels);
    let totals = totals_of(&users, usage, &agg, dir);
    let top_users = top_by_used(&users, options.top);
    let total_used = totals.used;
    let breakdown = |names: &[String], sums: &[i64]| -> Vec<Breakdown> {
        let mut rows: Vec<Breakdown> = names
            .iter()
            .zip(sums)
            .filter(|(_, s)| **s != 0)
            .map(|(n, &s)| Breakdown {
                key: n.clone(),
                used: Credits::from_micros(s),
                share: Credits::from_micros(s).percent_of(total_used),
                users: None,
                exposure: None,
            })
            .collect();
        rows.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.key.cmp(&b.key)));
        rows
    };
    let products = breakdown(usage.products(), agg.by_product());
    let models = breakdown(usage.models(), agg.by_model());
    let cost_centers =
        dir.attribute("cost_center").map(|attr| chargeback(&users, dir, usage, &agg, attr, total_used));
    let unknown_users = usage
        .unknown_users()
        .iter()
        .enumerate()
        .map(|(k, uu)| UnknownUsage { user: &uu.email, used: agg.used(user_id(dir.len() + k)) })
        .filter(|x| !x.used.is_zero())
        .collect();
    let daily = (start..=today)
        .filter_map(|d| {
            let i = usize::try_from(d - start).ok()?;
            let np = usage.products().len();
            Some(Day {
                date: day_date(d)?,
                used: Credits::from_micros(*agg.by_day().get(i)?),
                products: (0..np)
                    .filter_map(|p| {
                        let v = *agg.by_day_product().get(i * np + p)?;
                        (v != 0).then(|| (usage.products()[p].as_str(), Credits::from_micros(v)))
                    })
                    .collect(),
            })
        })
        .collect();
    // Rows after the period's end are after today too: one reason, not two.
    let (before_period, after_today) = usage.rows_outside(start..today + 1);
    let outside_period = OutsidePeriod {
        rows: before_period.rows + after_today.rows,
        credits: before_period.credits + after_today.credits,
        before_period,
        after_today,
    };
    Ok(Evaluation {
        users,
        groups,
        alerts,
        now: resolution.now,
        period: PeriodInfo {
            kind: resolution.period_kind,
            start: period.start,
            end: period.end,
            start_date: period.start_date,
            last_date: period.end_date.pred_opt().unwrap_or(period.end_date),
            today: day_date(today).unwrap_or(period.start_date),
        },
        enforcement: workspace.enforcement,
        totals,
        top_users,
        products,
        models,
        cost_centers,
        unknown_users,
        daily,
        outside_period,
        value: None,
    })
}

/// The aggregate slot of each product cap and each model cap of one limit, in key order.
type CapSlots = (Vec<Option<usize>>, Vec<Option<usize>>);

/// The caps of one kind; a non-zero cap at or past the warning level makes the user's
/// status at least `warning` (a cap never makes the user `exceeded`).
fn caps<'a>(
    rules: &Rules,
    names: &'a std::collections::BTreeMap<String, Credits>,
    slots: &[Option<usize>],
    used_of: impl Fn(usize) -> Credits,
    user: &mut Standing,
) -> Vec<CapStatus<'a>> {
    let bound = *user;
    let mut out = Vec::with_capacity(names.len());
    for (i, (name, &cap)) in names.iter().enumerate() {
        let cap_used = slots.get(i).copied().flatten().map_or(Credits::ZERO, &used_of);
        let s = rules.cap(cap, cap_used, &bound);
        user.raise_for(&s);
        out.push(CapStatus {
            name,
            cap,
            used: cap_used,
            remaining: s.remaining,
            percent: percent_of(cap_used, cap),
            status: s.status,
            blocked: s.blocked,
        });
    }
    out
}

/// The `top` users with the most usage, heaviest first (ties: email, then directory order).
fn top_by_used<'a>(users: &[UserStatus<'a>], top: usize) -> Vec<&'a str> {
    let mut by_used: Vec<(Credits, &str, usize)> = users
        .iter()
        .enumerate()
        .filter(|(_, u)| !u.used.is_zero())
        .map(|(i, u)| (u.used, u.user, i))
        .collect();
    let order = |a: &(Credits, &str, usize), b: &(Credits, &str, usize)| {
        b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)).then(a.2.cmp(&b.2))
    };
    // Only the first `top` need sorting: select them, then sort those.
    if top < by_used.len() {
        if top == 0 {
            return Vec::new();
        }
        by_used.select_nth_unstable_by(top - 1, order);
        by_used.truncate(top);
    }
    by_used.sort_unstable_by(order);
    by_used.into_iter().map(|(_, user, _)| user).collect()
}

fn user_id(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

fn alerts_of<'a>(
    users: &[UserStatus<'a>],
    groups: &[GroupStatus<'a>],
    levels: &AlertLevels,
) -> Vec<Alert<'a>> {
    let highest = |percent: Option<f64>| levels.highest_at(percent);
    let mut out = Vec::new();
    for g in groups.iter().filter(|g| g.pool.is_some()) {
        if let Some(t) = highest(g.percent) {
            out.push(Alert {
                scope: AlertScope::Pool,
                user: None,
                group: Some(g.group),
                name: None,
                threshold: t,
                percent: g.percent.unwrap_or(0.0),
                status: g.status,
            });
        }
    }
    let mut user_alerts: Vec<Alert<'a>> = users
        .iter()
        .filter_map(|u| {
            let t = *u.alerts.last()?;
            Some(Alert {
                scope: AlertScope::User,
                user: Some(u.user),
                group: None,
                name: None,
                threshold: t,
                percent: u.percent.unwrap_or(0.0),
                status: u.status,
            })
        })
        .collect();
    user_alerts.sort_by(|a, b| b.percent.total_cmp(&a.percent).then_with(|| a.user.cmp(&b.user)));
    out.extend(user_alerts);
    for u in users {
        for (scope, caps) in [(AlertScope::Product, &u.products), (AlertScope::Model, &u.models)] {
            for cap in caps {
                if let Some(t) = highest(cap.percent) {
                    out.push(Alert {
                        scope,
                        user: Some(u.user),
                        group: None,
                        name: Some(cap.name),
                        threshold: t,
                        percent: cap.percent.unwrap_or(0.0),
                        status: cap.status,
                    });
                }
            }
        }
    }
    out
}

fn totals_of(users: &[UserStatus<'_>], usage: &UsageTable, agg: &Aggregate, dir: &Directory) -> Totals {
    let mut t = Totals {
        users: users.len(),
        used: Credits::ZERO,
        exposure: Credits::ZERO,
        percent: None,
        used_by_unknown_users: Credits::ZERO,
        ok: 0,
        warning: 0,
        exceeded: 0,
        blocked: 0,
        rows: agg.rows,
    };
    for u in users {
        t.used += u.used;
        t.exposure += u.limit;
        match u.status {
            Status::Ok => t.ok += 1,
            Status::Warning => t.warning += 1,
            Status::Exceeded => t.exceeded += 1,
        }
        t.blocked += usize::from(u.blocked);
    }
    for k in 0..usage.unknown_users().len() {
        t.used_by_unknown_users += agg.used(user_id(dir.len() + k));
    }
    t.used += t.used_by_unknown_users;
    t.percent = t.used.percent_of(t.exposure);
    t
}

/// Usage and exposure per `cost_center`; users without one are `(none)`, users absent
/// from the directory `(not in directory)`.
fn chargeback(
    users: &[UserStatus<'_>],
    dir: &Directory,
    usage: &UsageTable,
    agg: &Aggregate,
    attr: usize,
    total: Credits,
) -> Vec<Breakdown> {
    let mut by: FastMap<&str, (usize, Credits, Credits)> = FastMap::default();
    for u in users {
        let key = match dir.users[u.index].attrs.get(attr) {
            Some(AttrValue::String(s)) => s.as_str(),
            _ => "(none)",
        };
        let e = by.entry(key).or_default();
        e.0 += 1;
        e.1 += u.used;
        e.2 += u.limit;
    }
    let mut unknown = Credits::ZERO;
    for k in 0..usage.unknown_users().len() {
        unknown += agg.used(user_id(dir.len() + k));
    }
    let mut rows: Vec<Breakdown> = by
        .into_iter()
        .map(|(k, (n, used, exposure))| Breakdown {
            key: k.to_string(),
            used,
            share: used.percent_of(total),
            users: Some(n),
            exposure: Some(exposure),
        })
        .collect();
    if !unknown.is_zero() {
        rows.push(Breakdown {
            key: "(not in directory)".to_string(),
            used: unknown,
            share: unknown.percent_of(total),
            users: Some(usage.unknown_users().len()),
            exposure: Some(Credits::ZERO),
        });
    }
    rows.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.key.cmp(&b.key)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_outside_the_period_are_reported_with_why() {
        let date = |s: &str| s.parse::<NaiveDate>().unwrap();
        let period = PeriodInfo {
            kind: Period::Month,
            start: DateTime::parse_from_rfc3339("2026-11-01T04:00:00Z").unwrap().with_timezone(&Utc),
            end: DateTime::parse_from_rfc3339("2026-12-01T05:00:00Z").unwrap().with_timezone(&Utc),
            start_date: date("2026-11-01"),
            last_date: date("2026-11-30"),
            today: date("2026-11-02"),
        };
        let side = |rows, credits, first: &str, last: &str| RowsOutside {
            rows,
            credits: Credits::from_whole(credits),
            first_date: Some(date(first)),
            last_date: Some(date(last)),
        };
        let outside = OutsidePeriod {
            rows: 3,
            credits: Credits::from_whole(12),
            before_period: side(2, 5, "2026-10-30", "2026-10-31"),
            after_today: side(1, 7, "2026-11-05", "2026-11-05"),
        };
        let diags = outside.diagnostics(&period, "America/New_York");
        let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "2 usage rows (5 credits) dated 2026-10-30 to 2026-10-31 are before the period (2026-11-01 to 2026-11-30) and not counted",
                "1 usage row (7 credits) dated 2026-11-05 is after today (2026-11-02) and not counted",
            ]
        );
        assert!(diags.iter().all(|d| d.code == Code::UsageOutsidePeriod));
        assert!(diags[0].help.as_deref().unwrap().contains("`America/New_York`"));
        assert!(OutsidePeriod::default().diagnostics(&period, "UTC").is_empty());
    }
}
