//! Standings: where one person (or one team) stands against their limit this period.
//!
//! The one owner of the rules every view of a standing shares, so that `evaluate`,
//! `plan`'s newly blocked and unblocked users and the console's dashboard give the same
//! answer for the same person:
//!
//! - the **status** of usage against a budget (`ok`, `warning` from the workspace's
//!   warning level, `exceeded` at 100%), exact in integer micro-credits;
//! - the **warning level** from the workspace's alert levels ([`AlertLevels`]);
//! - what is **remaining**: the limit's remainder bounded by the team pool's;
//! - whether the person is **blocked**, and by what ([`BlockedBy`]: their own limit or
//!   their team's pool; a product or model cap blocks only its product or model,
//!   [`CapStanding::blocked`]);
//! - the **forecast**: the day a budget runs out at a burn rate ([`Forecast`]), and the
//!   usage at the period's end bounded by hard enforcement
//!   ([`Standing::bounded_forecast`]): a blocked person spends nothing more.
//!
//! Everything here is a pure function of credits; callers aggregate usage their own
//! way (the engine from usage files, the console from its event stream) and ask here
//! what it means.

use std::ops::Range;

use chrono::NaiveDate;
use serde::Serialize;

use crate::Credits;
use crate::load::PolicySet;
use crate::model::{Enforcement, Workspace};
use crate::resolve::{Resolution, Resolved};
use crate::usage_table::{UsageTable, day_date, day_number};

/// The warning level, in percent, when the workspace's alert levels are not known.
pub const DEFAULT_WARNING_PERCENT: u32 = 80;

/// Where a user, a cap or a team stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Below the highest alert threshold under 100%.
    Ok,
    /// At or past the highest alert threshold under 100%.
    Warning,
    /// At or past 100%.
    Exceeded,
}

impl Status {
    /// The lowercase name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Exceeded => "exceeded",
        }
    }

    /// Parses an output name.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "ok" => Status::Ok,
            "warning" => Status::Warning,
            "exceeded" => Status::Exceeded,
            _ => return None,
        })
    }
}

/// The workspace's alert thresholds, in percent of a limit, kept in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertLevels {
    /// `None` when the workspace is not known (a service without a policy repository,
    /// or one whose Workspace could not be read).
    levels: Option<Vec<u32>>,
}

impl AlertLevels {
    /// Alert levels as written (any order), or `None` when not known.
    pub fn new(levels: Option<Vec<u32>>) -> AlertLevels {
        AlertLevels {
            levels: levels.map(|mut l| {
                l.sort_unstable();
                l
            }),
        }
    }

    /// The alert levels of a Workspace document.
    pub fn of(workspace: &Workspace) -> AlertLevels {
        AlertLevels::new(Some(workspace.alerts.clone()))
    }

    /// The levels in ascending order, when known.
    pub fn levels(&self) -> Option<&[u32]> {
        self.levels.as_deref()
    }

    /// The percent at which a status becomes `warning`: the highest alert level below
    /// 100 (100 when there is none, so nothing warns before it is exceeded), or
    /// [`DEFAULT_WARNING_PERCENT`] when the levels are not known.
    pub fn warning_percent(&self) -> u32 {
        match &self.levels {
            None => DEFAULT_WARNING_PERCENT,
            Some(levels) => levels.iter().copied().filter(|l| *l < 100).max().unwrap_or(100),
        }
    }

    /// The levels crossed by `used` of `whole` (level ≤ percent), ascending; none for a
    /// zero budget, which has no percent.
    pub fn crossed(&self, used: Credits, whole: Credits) -> Vec<u32> {
        if whole.is_zero() {
            return Vec::new();
        }
        self.levels().unwrap_or_default().iter().copied().filter(|&t| at_or_past(used, whole, t)).collect()
    }

    /// The highest level at or below `percent` (the alert a percent raises).
    pub fn highest_at(&self, percent: Option<f64>) -> Option<u32> {
        let p = percent?;
        self.levels().unwrap_or_default().iter().copied().filter(|&t| f64::from(t) <= p).max()
    }
}

/// What a standing is measured with: the workspace's enforcement and warning level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// True under hard enforcement: usage stops at the limit.
    pub hard: bool,
    /// The warning level in percent ([`AlertLevels::warning_percent`]).
    pub warning: u32,
}

impl Rules {
    /// The rules of a Workspace document; without one, hard enforcement (the model's
    /// default) and [`DEFAULT_WARNING_PERCENT`].
    pub fn of(workspace: Option<&Workspace>) -> Rules {
        match workspace {
            Some(w) => Rules::new(w.enforcement, &AlertLevels::of(w)),
            None => Rules::new(Enforcement::Hard, &AlertLevels::default()),
        }
    }

    /// The rules from an enforcement and alert levels read elsewhere (the service's copy).
    pub fn new(enforcement: Enforcement, alerts: &AlertLevels) -> Rules {
        Rules { hard: enforcement == Enforcement::Hard, warning: alerts.warning_percent() }
    }

    /// The status of `used` against `whole`.
    pub fn status(&self, used: Credits, whole: Credits) -> Status {
        if used >= whole {
            Status::Exceeded
        } else if at_or_past(used, whole, self.warning) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// A user's standing: `limit` and what they `used`, and the team pool that applies.
    pub fn user(&self, limit: Credits, used: Credits, pool: Option<Pool>) -> Standing {
        let mut status = self.status(used, limit);
        let mut left = limit - used;
        if let Some(p) = pool {
            status = status.max(self.status(p.used, p.pool));
            left = left.min(p.left());
        }
        let blocked_by = if !self.hard {
            None
        } else if used >= limit {
            Some(BlockedBy::Limit)
        } else if pool.is_some_and(|p| p.used_up()) {
            Some(BlockedBy::Pool)
        } else {
            None
        };
        Standing { status, remaining: floor0(left), blocked_by }
    }

    /// One product or model cap of a user whose standing is `user`: a cap's remainder
    /// is bounded by the user's.
    pub fn cap(&self, cap: Credits, used: Credits, user: &Standing) -> CapStanding {
        let status = self.status(used, cap);
        CapStanding {
            status,
            remaining: floor0((cap - used).min(user.remaining)),
            blocked: self.cap_blocks(cap, used),
            // A cap of zero switches a product or model off: it blocks that product, but
            // it is a setting, not a budget running low, so it never raises the user's
            // status (else every such user would show `warning`).
            warns: status > Status::Ok && !cap.is_zero(),
        }
    }

    /// True when a product or model `cap` blocks its product or model at `used`: hard
    /// enforcement and the cap reached.
    pub fn cap_blocks(&self, cap: Credits, used: Credits) -> bool {
        self.hard && self.status(used, cap) == Status::Exceeded
    }

    /// A team's status: against its pool, else against the sum of its members' limits
    /// (`exposure`); a team without members or pool is `ok`.
    pub fn team(&self, members: usize, used: Credits, pool: Option<Credits>, exposure: Credits) -> Status {
        if members == 0 && pool.is_none() { Status::Ok } else { self.status(used, pool.unwrap_or(exposure)) }
    }
}

/// A team pool and what the users whose pool it is used this period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// The pool.
    pub pool: Credits,
    /// What its team used.
    pub used: Credits,
}

impl Pool {
    /// What is left of it (negative when overspent).
    pub fn left(&self) -> Credits {
        self.pool - self.used
    }

    /// True when nothing is left of it.
    pub fn used_up(&self) -> bool {
        self.used >= self.pool
    }
}

/// Every user's standing under one version of the policies, from what each used this
/// period (a `plan` side): the rules of its Workspace and each group's pool with its
/// team's usage.
#[derive(Debug, Clone)]
pub struct Standings {
    /// The Workspace's rules.
    pub rules: Rules,
    /// Per group (an index into the policies' groups): its pool and what the users whose
    /// pool it is used, `None` for a group without a pool.
    pub pools: Vec<Option<Pool>>,
}

impl Standings {
    /// A pool's usage is that of the users whose pool it is: the group that won them,
    /// even when an override decided their limit. `used` is indexed by directory user.
    pub fn of(policies: &PolicySet, resolution: &Resolution, used: &[Credits]) -> Standings {
        let rules = Rules::of(policies.workspace().map(|w| &w.doc));
        let mut pools: Vec<Option<Pool>> = policies
            .groups
            .iter()
            .map(|g| g.doc.pool.as_ref().map(|p| Pool { pool: p.credits, used: Credits::ZERO }))
            .collect();
        if pools.iter().any(Option::is_some) {
            for r in &resolution.users {
                if let Some(pool) = r.group.and_then(|g| pools.get_mut(g)).and_then(Option::as_mut) {
                    pool.used += used.get(r.user).copied().unwrap_or(Credits::ZERO);
                }
            }
        }
        Standings { rules, pools }
    }

    /// The pool that applies to a resolved user, if any.
    pub fn pool_of(&self, r: &Resolved) -> Option<Pool> {
        r.group.and_then(|g| self.pools.get(g).copied().flatten())
    }

    /// A resolved user's standing when they `used` this much.
    pub fn user(&self, r: &Resolved, used: Credits) -> Standing {
        self.rules.user(r.limit.credits, used, self.pool_of(r))
    }
}

/// What stops a user's usage under hard enforcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockedBy {
    /// Their own limit is used up.
    Limit,
    /// Their team's pool is used up (their own limit is not).
    Pool,
}

impl BlockedBy {
    /// The lowercase name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedBy::Limit => "limit",
            BlockedBy::Pool => "pool",
        }
    }
}

/// One user's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// `ok`, `warning` or `exceeded`: the user's own, raised by their team pool's
    /// (and to `warning` by a cap: [`Standing::raise_for`]).
    pub status: Status,
    /// Left this period: the limit's remainder bounded by the pool's, never below zero.
    pub remaining: Credits,
    /// What blocks them, under hard enforcement.
    pub blocked_by: Option<BlockedBy>,
}

impl Standing {
    /// True when their usage stops.
    pub fn blocked(&self) -> bool {
        self.blocked_by.is_some()
    }

    /// Raises the status to `warning` for a cap at or past the warning level.
    pub fn raise_for(&mut self, cap: &CapStanding) {
        if cap.warns {
            self.status = self.status.max(Status::Warning);
        }
    }

    /// The usage at the period's end given a `projected` one: under hard enforcement
    /// no more than `used` plus what is `remaining` (a blocked user spends nothing
    /// more, a pool running out stops its members); under soft enforcement
    /// `projected` as it is. Never below `used`.
    pub fn bounded_forecast(&self, rules: &Rules, used: Credits, projected: Credits) -> Credits {
        let projected = projected.max(used);
        if rules.hard { projected.min(used + self.remaining) } else { projected }
    }
}

/// One product or model cap's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapStanding {
    /// The cap's own status (a cap at 100% is `exceeded` but blocks only its product or model).
    pub status: Status,
    /// The cap's remainder bounded by the user's, never below zero.
    pub remaining: Credits,
    /// True when the product or model is blocked for the user (hard enforcement).
    pub blocked: bool,
    /// True when the cap raises the user's status to `warning`.
    pub warns: bool,
}

/// True when `used` is at or past `threshold` percent of `whole` (exact, in integers).
pub fn at_or_past(used: Credits, whole: Credits, threshold: u32) -> bool {
    i128::from(used.micros()) * 100 >= i128::from(whole.micros()) * i128::from(threshold)
}

/// [`Credits::percent_of`], in 64-bit arithmetic when it cannot overflow (the same
/// rounding, without a 128-bit division per user and cap).
pub fn percent_of(used: Credits, whole: Credits) -> Option<f64> {
    // Below 2^48 micro-credits (281 million credits), `used * 20_000 + whole` fits an i64.
    const SAFE: u64 = 1 << 48;
    let (u, w) = (used.micros(), whole.micros());
    if w == 0 || u.unsigned_abs() >= SAFE || w.unsigned_abs() >= SAFE {
        return used.percent_of(whole);
    }
    let q = (u * 10_000 * 2 + w.signum() * w) / (2 * w);
    Some(q as f64 / 100.0)
}

/// `c`, or zero when negative.
pub fn floor0(c: Credits) -> Credits {
    if c.is_negative() { Credits::ZERO } else { c }
}

/// The days whose usage counts at the resolution's instant, as day numbers
/// ([`day_number`]): the period's, up to today in the workspace time zone. Rows dated
/// later have not happened yet at `now` (a replay with `--now`), so they neither use up
/// a limit nor block anyone.
pub fn counted_days(resolution: &Resolution) -> Range<i32> {
    let period = &resolution.period;
    let (start, end) = (day_number(period.start_date), day_number(period.end_date));
    let today =
        day_number(resolution.now.with_timezone(&resolution.timezone).date_naive()).clamp(start, end - 1);
    start..today + 1
}

/// Each directory user's usage on the [`counted_days`], by directory position.
pub fn used_per_user(table: &UsageTable, directory_users: usize, resolution: &Resolution) -> Vec<Credits> {
    let days = counted_days(resolution);
    let mut micros = vec![0i64; directory_users];
    for (k, &user) in table.user.iter().enumerate() {
        let day = table.day.get(k).copied().unwrap_or(i32::MIN);
        if !days.contains(&day) {
            continue;
        }
        if let Some(cell) = micros.get_mut(user as usize) {
            *cell = cell.saturating_add(table.micros.get(k).copied().unwrap_or(0));
        }
    }
    micros.into_iter().map(Credits::from_micros).collect()
}

/// The products and models some limit caps, by name, sorted: what a plan needs each
/// user's usage of to say whether a cap blocks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapNames {
    /// Capped products.
    pub products: Vec<String>,
    /// Capped models.
    pub models: Vec<String>,
}

impl CapNames {
    /// Every product and model capped in some user's limit of any of `resolutions`.
    pub fn of(resolutions: &[&Resolution]) -> CapNames {
        let mut products = std::collections::BTreeSet::new();
        let mut models = std::collections::BTreeSet::new();
        for r in resolutions.iter().flat_map(|r| &r.users) {
            products.extend(r.limit.products.keys());
            models.extend(r.limit.models.keys());
        }
        CapNames {
            products: products.into_iter().cloned().collect(),
            models: models.into_iter().cloned().collect(),
        }
    }

    /// True when no limit caps anything.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty() && self.models.is_empty()
    }

    fn width(&self) -> usize {
        self.products.len() + self.models.len()
    }
}

/// What each directory user used of the capped products and models ([`CapNames`]) this
/// period, in micro-credits: one row of cells per user, products then models.
#[derive(Debug, Clone, Default)]
pub struct CapUsage {
    names: CapNames,
    cells: Vec<i64>,
}

impl CapUsage {
    /// No usage of `names` yet, for `users` directory users.
    pub fn new(names: CapNames, users: usize) -> CapUsage {
        let cells = vec![0; names.width().saturating_mul(users)];
        CapUsage { names, cells }
    }

    /// Adds `micros` of `product` and `model` to a user's cells (names not capped are ignored).
    pub fn add(&mut self, user: usize, product: &str, model: &str, micros: i64) {
        let (product, model) = (self.product_cell(product), self.model_cell(model));
        self.add_at(user, product, model, micros);
    }

    fn product_cell(&self, name: &str) -> Option<usize> {
        self.names.products.binary_search_by(|p| p.as_str().cmp(name)).ok()
    }

    fn model_cell(&self, name: &str) -> Option<usize> {
        let k = self.names.models.binary_search_by(|m| m.as_str().cmp(name)).ok()?;
        Some(self.names.products.len() + k)
    }

    fn add_at(&mut self, user: usize, product: Option<usize>, model: Option<usize>, micros: i64) {
        let row = user.saturating_mul(self.names.width());
        for k in [product, model].into_iter().flatten() {
            if let Some(cell) = self.cells.get_mut(row.saturating_add(k)) {
                *cell = cell.saturating_add(micros);
            }
        }
    }

    fn cell(&self, user: usize, k: Option<usize>) -> Credits {
        let at = k.map(|k| user.saturating_mul(self.names.width()) + k);
        Credits::from_micros(at.and_then(|at| self.cells.get(at)).copied().unwrap_or(0))
    }

    /// What a user used of a product this period (zero when it is not capped).
    pub fn product(&self, user: usize, name: &str) -> Credits {
        self.cell(user, self.product_cell(name))
    }

    /// What a user used of a model this period (zero when it is not capped).
    pub fn model(&self, user: usize, name: &str) -> Credits {
        self.cell(user, self.model_cell(name))
    }
}

/// Each directory user's usage on the [`counted_days`], by directory position, and
/// their usage of the capped products and models `caps` on the same days.
pub fn used_per_user_with_caps(
    table: &UsageTable,
    directory_users: usize,
    resolution: &Resolution,
    caps: CapNames,
) -> (Vec<Credits>, CapUsage) {
    let used = used_per_user(table, directory_users, resolution);
    let mut capped = CapUsage::new(caps, directory_users);
    if capped.names.is_empty() {
        return (used, capped);
    }
    let days = counted_days(resolution);
    // The table's product and model ids, each to its cell once (not a name search per row).
    let product_cell: Vec<Option<usize>> = table.products().iter().map(|p| capped.product_cell(p)).collect();
    let model_cell: Vec<Option<usize>> = table.models().iter().map(|m| capped.model_cell(m)).collect();
    for (k, &user) in table.user.iter().enumerate() {
        if !table.day.get(k).is_some_and(|d| days.contains(d)) {
            continue;
        }
        let micros = table.micros.get(k).copied().unwrap_or(0);
        let product = table.product.get(k).and_then(|&p| product_cell.get(usize::from(p))).copied().flatten();
        let model = table.model.get(k).and_then(|&m| model_cell.get(usize::from(m))).copied().flatten();
        capped.add_at(user as usize, product, model, micros);
    }
    (used, capped)
}

/// The day a budget runs out ahead, at the burn rate of a recent window; `None` when
/// not within the period.
#[derive(Debug, Clone, Copy)]
pub struct Forecast {
    /// Today's day number ([`crate::usage_table::day_number`]).
    pub today: i32,
    /// Days in the burn-rate window.
    pub window_days: i64,
    /// The day number after the period's last day.
    pub period_end: i32,
}

impl Forecast {
    /// `k = ceil(remaining / rate)` days after today, while inside the period.
    pub fn ahead(&self, remaining: Credits, recent: Credits) -> Option<NaiveDate> {
        if recent.micros() <= 0 || remaining.micros() <= 0 {
            return None;
        }
        // Both are positive; below 2^48 micro-credits the product fits an i64.
        const SAFE: i64 = 1 << 48;
        let (rem, den) = (remaining.micros(), recent.micros());
        let k = if rem < SAFE && den < SAFE && (0..=1 << 12).contains(&self.window_days) {
            i128::from((rem * self.window_days + den - 1) / den)
        } else {
            let (num, den) = (i128::from(rem) * i128::from(self.window_days), i128::from(den));
            (num + den - 1) / den
        };
        let day = i128::from(self.today) + k;
        if day >= i128::from(self.period_end) {
            return None;
        }
        day_date(i32::try_from(day).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Credits {
        s.parse().unwrap()
    }

    const HARD: Rules = Rules { hard: true, warning: 80 };
    const SOFT: Rules = Rules { hard: false, warning: 80 };

    #[test]
    fn thresholds_are_exact() {
        assert!(at_or_past(c("80"), c("100"), 80));
        assert!(!at_or_past(c("79.999999"), c("100"), 80));
        assert_eq!(HARD.status(c("100"), c("100")), Status::Exceeded);
        assert_eq!(HARD.status(c("80"), c("100")), Status::Warning);
        assert_eq!(Rules { warning: 100, ..HARD }.status(c("99.999999"), c("100")), Status::Ok);
    }

    #[test]
    fn the_warning_level_is_the_highest_alert_below_100() {
        let at = AlertLevels::new;
        assert_eq!(at(None).warning_percent(), 80);
        assert_eq!(at(Some(vec![100, 50, 90, 120])).warning_percent(), 90);
        assert_eq!(at(Some(vec![100])).warning_percent(), 100, "nothing warns before it is exceeded");
        assert_eq!(at(Some(vec![])).warning_percent(), 100);
        assert_eq!(at(Some(vec![120, 50, 100])).crossed(c("100"), c("100")), [50, 100]);
        assert!(at(Some(vec![50])).crossed(c("0"), c("0")).is_empty(), "a zero limit has no percent");
    }

    #[test]
    fn a_used_up_pool_blocks_members_under_their_own_limit() {
        let pool = Pool { pool: c("100"), used: c("100") };
        let s = HARD.user(c("80"), c("10"), Some(pool));
        assert_eq!((s.status, s.remaining, s.blocked_by), (Status::Exceeded, c("0"), Some(BlockedBy::Pool)));
        let s = HARD.user(c("80"), c("80"), Some(pool));
        assert_eq!(s.blocked_by, Some(BlockedBy::Limit), "their own limit is named first");
        let s = SOFT.user(c("80"), c("90"), Some(pool));
        assert_eq!((s.status, s.blocked_by), (Status::Exceeded, None), "soft enforcement never blocks");
        let s = HARD.user(c("80"), c("10"), Some(Pool { pool: c("100"), used: c("50") }));
        assert_eq!((s.status, s.remaining, s.blocked_by), (Status::Ok, c("50"), None));
    }

    #[test]
    fn a_zero_cap_blocks_its_product_without_warning() {
        let mut s = HARD.user(c("100"), c("10"), None);
        let off = HARD.cap(c("0"), c("0"), &s);
        assert!(off.blocked && !off.warns);
        let near = HARD.cap(c("10"), c("9"), &s);
        assert_eq!((near.status, near.remaining, near.warns), (Status::Warning, c("1"), true));
        s.raise_for(&off);
        assert_eq!(s.status, Status::Ok);
        s.raise_for(&near);
        assert_eq!(s.status, Status::Warning);
    }

    #[test]
    fn the_forecast_of_a_blocked_user_stops_at_what_blocks_them() {
        let s = HARD.user(c("20000"), c("20000"), None);
        assert_eq!(s.bounded_forecast(&HARD, c("20000"), c("106679")), c("20000"));
        let s = HARD.user(c("20000"), c("5000"), Some(Pool { pool: c("1000"), used: c("400") }));
        assert_eq!(s.bounded_forecast(&HARD, c("5000"), c("9000")), c("5600"), "bounded by the pool");
        let s = SOFT.user(c("20000"), c("20000"), None);
        assert_eq!(s.bounded_forecast(&SOFT, c("20000"), c("106679")), c("106679"));
    }

    #[test]
    fn forecast_rounds_up_and_stops_at_period_end() {
        let f = Forecast { today: 10, window_days: 7, period_end: 30 };
        // 70 credits in 7 days = 10/day; 25 left -> 3 days
        assert_eq!(f.ahead(Credits::from_whole(25), Credits::from_whole(70)), day_date(13));
        assert_eq!(f.ahead(Credits::from_whole(500), Credits::from_whole(70)), None);
        assert_eq!(f.ahead(Credits::from_whole(5), Credits::ZERO), None);
    }
}
