//! The derived view: every user's standing, team budgets and breakdowns, built from
//! the applied limits, the usage aggregates and the directory's cost centers.
//!
//! Building it is one pass over the users (tens of milliseconds at 100,000 users);
//! it is rebuilt only when one of its three inputs changed, and requests filter,
//! sort and page it in memory.

use std::collections::HashMap;
use std::sync::Arc;

use budgit_engine::Credits;
use budgit_engine::model::Enforcement;
use budgit_engine::standing::{AlertLevels, BlockedBy, Pool, Rules, Standing, Status, percent_of};

use super::aggregates::{Aggregates, PeriodKey};
use crate::ledger::UserLimit;

/// Cost center of users in the directory without one.
pub(crate) const NO_COST_CENTER: &str = "(none)";
/// Cost center of users the directory does not know.
pub(crate) const NOT_IN_DIRECTORY: &str = "(not in directory)";

/// The team of users with an applied limit and no group: they count in the team
/// views like any group, so no one's spend vanishes from them.
pub(crate) const NO_GROUP: &str = "(no group)";

/// A row's status as the API writes it: the standing's, or `unlimited` without an
/// applied limit.
pub(crate) fn status_str(status: Option<Status>) -> &'static str {
    status.map_or("unlimited", Status::as_str)
}

/// Parses a status filter: `Some(None)` is `unlimited`.
pub(crate) fn parse_status(s: &str) -> Option<Option<Status>> {
    if s == "unlimited" { Some(None) } else { Status::parse(s).map(Some) }
}

/// The applied limits, copied from the ledger.
#[derive(Debug)]
pub(crate) struct LimitsSnap {
    /// Changes with every copy.
    pub generation: u64,
    /// The count of writes to `/v1/limits` seen before the copy.
    pub writes: u64,
    /// When it was copied.
    pub at: std::time::Instant,
    /// Per user.
    pub users: HashMap<Arc<str>, UserLimit>,
    /// Group pools, in micro-credits.
    pub pools: HashMap<Arc<str>, i64>,
    /// Hard or soft.
    pub enforcement: Enforcement,
    /// The workspace's alert levels when known: they set the `warning` status.
    pub alerts: Arc<AlertLevels>,
}

impl LimitsSnap {
    /// What the standings are measured with.
    pub fn rules(&self) -> Rules {
        Rules::new(self.enforcement, &self.alerts)
    }
}

/// The directory's cost centers.
#[derive(Debug, Default)]
pub(crate) struct DirectorySnap {
    /// Changes with every read.
    pub generation: u64,
    /// Per user in the directory: the `cost_center` attribute, if set.
    pub cost_centers: HashMap<Arc<str>, Option<Arc<str>>>,
}

/// One user's standing.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub user: Arc<str>,
    pub group: Option<Arc<str>>,
    pub cost_center: Arc<str>,
    /// The applied limit's total, micro-credits.
    pub limit: Option<i64>,
    pub used: i64,
    pub events: u64,
    /// Left: the limit's remainder bounded by the pool's, never below zero.
    pub remaining: Option<i64>,
    pub percent: Option<f64>,
    /// The standing's status; `None` without an applied limit (`unlimited`).
    pub status: Option<Status>,
    /// What blocks the user, under hard enforcement.
    pub blocked_by: Option<BlockedBy>,
}

impl Row {
    /// True when the user's usage stops.
    pub fn blocked(&self) -> bool {
        self.blocked_by.is_some()
    }

    /// The standing, for a user with an applied limit.
    pub fn standing(&self) -> Option<Standing> {
        Some(Standing {
            status: self.status?,
            remaining: Credits::from_micros(self.remaining?),
            blocked_by: self.blocked_by,
        })
    }

    /// The team the row counts in: its group, [`NO_GROUP`] for a user with an applied
    /// limit and no group, none without an applied limit.
    pub fn team(&self) -> Option<&str> {
        match (&self.group, self.limit) {
            (Some(g), _) => Some(g),
            (None, Some(_)) => Some(NO_GROUP),
            (None, None) => None,
        }
    }

    /// `used / limit` scaled by 10^6, exact, for sorting (no percent sorts lowest).
    pub fn percent_key(&self) -> i128 {
        match self.limit {
            Some(l) if l > 0 => i128::from(self.used) * 1_000_000 / i128::from(l),
            _ => i128::MIN,
        }
    }
}

/// A team: the members of a group (by applied limit) and its budget; the users with an
/// applied limit and no group form the team [`NO_GROUP`].
#[derive(Debug, Clone)]
pub(crate) struct Team {
    pub group: Arc<str>,
    pub members: usize,
    pub used: i64,
    /// Sum of the members' limits.
    pub exposure: i64,
    pub pool: Option<i64>,
}

impl Team {
    /// The pool, else the sum of member limits.
    pub fn budget(&self) -> i64 {
        self.pool.unwrap_or(self.exposure)
    }

    /// The team's status against its budget.
    pub fn status(&self, rules: &Rules) -> Status {
        let c = Credits::from_micros;
        rules.team(self.members, c(self.used), self.pool.map(c), c(self.exposure))
    }
}

/// Usage of one product, model, user or cost center.
#[derive(Debug, Clone)]
pub(crate) struct Slice {
    pub key: Arc<str>,
    pub used: i64,
    pub events: u64,
    pub users: u64,
}

/// Workspace totals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Totals {
    /// Used by everyone, limited or not.
    pub used: i64,
    /// Sum of applied limits.
    pub exposure: i64,
    /// Users with an applied limit.
    pub limited: usize,
    pub ok: usize,
    pub warning: usize,
    pub exceeded: usize,
    pub unlimited: usize,
    pub blocked: usize,
}

/// Everything the console's list views read, for one period.
#[derive(Debug)]
pub(crate) struct View {
    pub key: PeriodKey,
    /// The load of the aggregates it was built from, and their last event.
    pub agg_origin: u64,
    pub agg_seq: i64,
    pub limits_generation: u64,
    pub directory_generation: u64,
    /// Every user with a limit or usage, by email.
    pub rows: Vec<Row>,
    pub index: HashMap<Arc<str>, usize>,
    /// By group name.
    pub teams: Vec<Team>,
    pub totals: Totals,
    pub products: Vec<Slice>,
    pub models: Vec<Slice>,
    pub cost_centers: Vec<Slice>,
    /// The alert levels the statuses were computed with.
    pub alerts: Arc<AlertLevels>,
    /// The rules the standings were measured with.
    pub rules: Rules,
    /// The aggregates of a range's view (`from`/`to`), held with it; none for the
    /// current period's view, whose aggregates are the live ones.
    pub range_agg: Option<Arc<Aggregates>>,
}

impl View {
    /// One user's row.
    pub fn row(&self, user: &str) -> Option<&Row> {
        self.index.get(user).map(|&i| &self.rows[i])
    }

    /// One group's team.
    pub fn team(&self, group: &str) -> Option<&Team> {
        self.teams.binary_search_by(|t| (*t.group).cmp(group)).ok().map(|i| &self.teams[i])
    }
}

/// Builds the view.
pub(crate) fn build(agg: &Aggregates, limits: &LimitsSnap, dir: &DirectorySnap) -> View {
    let rules = limits.rules();
    let used_of = |user: &str| agg.users.get(user).map_or(0, |u| u.total);
    let c = Credits::from_micros;

    let mut teams: HashMap<Arc<str>, Team> = HashMap::new();
    let team = |teams: &mut HashMap<Arc<str>, Team>, g: &str| -> Arc<str> {
        if let Some((k, _)) = teams.get_key_value(g) {
            return k.clone();
        }
        let k: Arc<str> = Arc::from(g);
        teams.insert(k.clone(), Team { group: k.clone(), members: 0, used: 0, exposure: 0, pool: None });
        k
    };
    for (g, pool) in &limits.pools {
        let k = team(&mut teams, g);
        if let Some(t) = teams.get_mut(&k) {
            t.pool = Some(*pool);
        }
    }
    let mut group_of: HashMap<&str, Arc<str>> = HashMap::with_capacity(limits.users.len());
    for (user, ul) in &limits.users {
        // the ungrouped count as a team of their own, without a pool
        let k = team(&mut teams, ul.group.as_deref().unwrap_or(NO_GROUP));
        if let Some(t) = teams.get_mut(&k) {
            t.members += 1;
            t.used = t.used.saturating_add(used_of(user));
            t.exposure = t.exposure.saturating_add(ul.limit.credits.micros());
        }
        if ul.group.is_some() {
            group_of.insert(user, k);
        }
    }

    let none: Arc<str> = Arc::from(NO_COST_CENTER);
    let unknown: Arc<str> = Arc::from(NOT_IN_DIRECTORY);
    let cost_center = |user: &str| match dir.cost_centers.get(user) {
        Some(Some(cc)) => cc.clone(),
        Some(None) => none.clone(),
        None => unknown.clone(),
    };

    let mut rows = Vec::with_capacity(limits.users.len().max(agg.users.len()));
    for (user, ul) in &limits.users {
        let u = agg.users.get(user);
        let (used, events) = u.map_or((0, 0), |u| (u.total, u.events));
        let limit = ul.limit.credits;
        let group = group_of.get(&**user).cloned();
        let pool = group
            .as_ref()
            .and_then(|g| teams.get(g))
            .and_then(|t| t.pool.map(|pool| Pool { pool: c(pool), used: c(t.used) }));
        let mut standing = rules.user(limit, c(used), pool);
        let bound = standing;
        let caps = ul.limit.products.iter().map(|(n, cap)| (agg.products.get(n), cap, false));
        let models = ul.limit.models.iter().map(|(n, cap)| (agg.models.get(n), cap, true));
        for (id, &cap, is_model) in caps.chain(models) {
            let cap_used = match (u, id) {
                (Some(u), Some(id)) if is_model => u.model_used(id),
                (Some(u), Some(id)) => u.product_used(id),
                _ => 0,
            };
            standing.raise_for(&rules.cap(cap, c(cap_used), &bound));
        }
        rows.push(Row {
            user: user.clone(),
            group,
            cost_center: cost_center(user),
            limit: Some(limit.micros()),
            used,
            events,
            remaining: Some(standing.remaining.micros()),
            percent: percent_of(c(used), limit),
            status: Some(standing.status),
            blocked_by: standing.blocked_by,
        });
    }
    for (user, u) in &agg.users {
        if limits.users.contains_key(user) {
            continue;
        }
        rows.push(Row {
            user: user.clone(),
            group: None,
            cost_center: cost_center(user),
            limit: None,
            used: u.total,
            events: u.events,
            remaining: None,
            percent: None,
            status: None,
            blocked_by: None,
        });
    }
    rows.sort_unstable_by(|a, b| a.user.cmp(&b.user));
    let index = rows.iter().enumerate().map(|(i, r)| (r.user.clone(), i)).collect();

    let mut totals = Totals::default();
    let mut by_cc: HashMap<Arc<str>, Slice> = HashMap::new();
    for r in &rows {
        totals.used = totals.used.saturating_add(r.used);
        if let Some(l) = r.limit {
            totals.exposure = totals.exposure.saturating_add(l);
            totals.limited += 1;
        }
        match r.status {
            Some(Status::Ok) => totals.ok += 1,
            Some(Status::Warning) => totals.warning += 1,
            Some(Status::Exceeded) => totals.exceeded += 1,
            None => totals.unlimited += 1,
        }
        totals.blocked += usize::from(r.blocked());
        if r.events > 0 {
            let s = by_cc.entry(r.cost_center.clone()).or_insert_with(|| Slice {
                key: r.cost_center.clone(),
                used: 0,
                events: 0,
                users: 0,
            });
            s.used = s.used.saturating_add(r.used);
            s.events += r.events;
            s.users += 1;
        }
    }

    // per product and per model: credits, events and distinct users
    let mut products: Vec<(i64, u64, u64)> = Vec::new();
    let mut models: Vec<(i64, u64, u64)> = Vec::new();
    let mut seen_p: Vec<u32> = Vec::new();
    let mut seen_m: Vec<u32> = Vec::new();
    for u in agg.users.values() {
        seen_p.clear();
        seen_m.clear();
        for c in &u.cells {
            for (sums, seen, id) in
                [(&mut products, &mut seen_p, c.product), (&mut models, &mut seen_m, c.model)]
            {
                let i = id as usize;
                if sums.len() <= i {
                    sums.resize(i + 1, (0, 0, 0));
                }
                sums[i].0 = sums[i].0.saturating_add(c.micros);
                sums[i].1 += c.events;
                if !seen.contains(&id) {
                    seen.push(id);
                    sums[i].2 += 1;
                }
            }
        }
    }
    let slices = |names: &super::aggregates::Interner, sums: Vec<(i64, u64, u64)>| -> Vec<Slice> {
        let mut out: Vec<Slice> = names
            .iter()
            .filter_map(|(id, name)| {
                let (used, events, users) = sums.get(id as usize).copied()?;
                (events > 0).then(|| Slice { key: name.clone(), used, events, users })
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    };
    let mut cost_centers: Vec<Slice> = by_cc.into_values().collect();
    cost_centers.sort_by(|a, b| a.key.cmp(&b.key));
    let mut teams: Vec<Team> = teams.into_values().collect();
    teams.sort_by(|a, b| a.group.cmp(&b.group));

    View {
        key: agg.key,
        agg_origin: agg.origin,
        agg_seq: agg.last_seq,
        limits_generation: limits.generation,
        directory_generation: dir.generation,
        rows,
        index,
        teams,
        totals,
        products: slices(&agg.products, products),
        models: slices(&agg.models, models),
        cost_centers,
        alerts: limits.alerts.clone(),
        rules,
        range_agg: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use budgit_engine::Credits;
    use budgit_engine::model::{Limit, Period};
    use budgit_engine::period::period_containing;
    use chrono::{DateTime, Utc};

    fn limit(credits: i64, group: Option<&str>) -> UserLimit {
        UserLimit {
            limit: Limit { credits: Credits::from_whole(credits), ..Default::default() },
            group: group.map(str::to_string),
        }
    }

    #[test]
    fn statuses_count_pools_caps_and_users_without_a_limit() {
        let now = DateTime::parse_from_rfc3339("2026-11-15T12:00:00Z").unwrap().with_timezone(&Utc);
        let key =
            PeriodKey { period: period_containing(Period::Month, &chrono_tz::UTC, now), tz: chrono_tz::UTC };
        let mut agg = Aggregates::new(key, 7);
        let t = now.timestamp();
        agg.add(t, "a@x.com", "codex", "m", 50_000_000, 1);
        agg.add(t, "b@x.com", "codex", "m", 40_000_000, 2);
        agg.add(t, "c@x.com", "codex", "m", 8_000_000, 1);
        agg.add(t, "d@x.com", "chatgpt", "m", 1_000_000, 1);
        let mut capped = limit(100, None);
        capped.limit.products.insert("codex".into(), Credits::from_whole(10));
        let users: HashMap<Arc<str>, UserLimit> = [
            (Arc::from("a@x.com"), limit(100, Some("eng"))),
            (Arc::from("b@x.com"), limit(100, Some("eng"))),
            (Arc::from("c@x.com"), capped),
            (Arc::from("e@x.com"), limit(5, None)),
        ]
        .into_iter()
        .collect();
        let limits = LimitsSnap {
            generation: 1,
            writes: 0,
            at: std::time::Instant::now(),
            users,
            pools: [(Arc::from("eng"), 100_000_000)].into_iter().collect(),
            enforcement: Enforcement::Hard,
            alerts: Arc::default(),
        };
        let mut dir = DirectorySnap::default();
        dir.cost_centers.insert(Arc::from("a@x.com"), Some(Arc::from("CC-1")));
        dir.cost_centers.insert(Arc::from("b@x.com"), None);
        let v = build(&agg, &limits, &dir);
        let st = |u: &str| v.row(u).unwrap().status;
        // the pool (90 of 100) warns both members; the codex cap (8 of 10) warns c
        assert_eq!(
            (st("a@x.com"), st("b@x.com"), st("c@x.com"), st("d@x.com"), st("e@x.com")),
            (Some(Status::Warning), Some(Status::Warning), Some(Status::Warning), None, Some(Status::Ok))
        );
        assert_eq!(v.row("a@x.com").unwrap().remaining, Some(10_000_000));
        let t = &v.totals;
        assert_eq!(
            (t.used, t.exposure, t.limited, t.warning, t.unlimited),
            (99_000_000, 305_000_000, 4, 3, 1)
        );
        let team = v.team("eng").unwrap();
        assert_eq!(
            (team.members, team.used, team.budget(), team.status(&limits.rules())),
            (2, 90_000_000, 100_000_000, Status::Warning)
        );
        let cc: Vec<(&str, u64)> = v.cost_centers.iter().map(|s| (&*s.key, s.users)).collect();
        assert_eq!(cc, [("(none)", 1), ("(not in directory)", 2), ("CC-1", 1)]);
        let p: Vec<(&str, i64, u64, u64)> =
            v.products.iter().map(|s| (&*s.key, s.used, s.events, s.users)).collect();
        assert_eq!(p, [("chatgpt", 1_000_000, 1, 1), ("codex", 98_000_000, 4, 3)]);

        // the workspace's own levels: warning from 95%, so a pool at 90% and a cap at 80% are fine
        let limits = LimitsSnap { alerts: Arc::new(AlertLevels::new(Some(vec![50, 95, 100]))), ..limits };
        let v = build(&agg, &limits, &dir);
        let st = |u: &str| v.row(u).unwrap().status;
        assert_eq!((st("a@x.com"), st("c@x.com"), v.totals.warning), (Some(Status::Ok), Some(Status::Ok), 0));
        assert_eq!(v.team("eng").unwrap().status(&limits.rules()), Status::Ok);
    }

    #[test]
    fn no_group_is_a_team_with_the_ungrouped_spend() {
        let now = DateTime::parse_from_rfc3339("2026-11-15T12:00:00Z").unwrap().with_timezone(&Utc);
        let key =
            PeriodKey { period: period_containing(Period::Month, &chrono_tz::UTC, now), tz: chrono_tz::UTC };
        let mut agg = Aggregates::new(key, 7);
        let t = now.timestamp();
        agg.add(t, "a@x.com", "codex", "m", 50_000_000, 1);
        agg.add(t, "c@x.com", "codex", "m", 8_000_000, 1);
        agg.add(t, "e@x.com", "chatgpt", "m", 2_000_000, 2);
        agg.add(t, "d@x.com", "chatgpt", "m", 1_000_000, 1);
        let users: HashMap<Arc<str>, UserLimit> = [
            (Arc::from("a@x.com"), limit(100, Some("eng"))),
            (Arc::from("c@x.com"), limit(40, None)),
            (Arc::from("e@x.com"), limit(10, None)),
        ]
        .into_iter()
        .collect();
        let limits = LimitsSnap {
            generation: 1,
            writes: 0,
            at: std::time::Instant::now(),
            users,
            pools: HashMap::new(),
            enforcement: Enforcement::Hard,
            alerts: Arc::default(),
        };
        let v = build(&agg, &limits, &DirectorySnap::default());
        let teams: Vec<(&str, usize, i64, i64)> =
            v.teams.iter().map(|t| (&*t.group, t.members, t.used, t.exposure)).collect();
        // d has no limit and so no team; c and e have a limit and no group
        assert_eq!(teams, [(NO_GROUP, 2, 10_000_000, 50_000_000), ("eng", 1, 50_000_000, 100_000_000)]);
        assert_eq!(v.team(NO_GROUP).unwrap().status(&limits.rules()), Status::Ok);
        let team_of = |u: &str| v.row(u).unwrap().team();
        assert_eq!(
            (team_of("a@x.com"), team_of("c@x.com"), team_of("d@x.com")),
            (Some("eng"), Some(NO_GROUP), None)
        );
    }

    /// The engine's evaluate case files, through the view: every directory user stands
    /// as `evaluate` says, and every team as its group.
    #[test]
    fn the_evaluate_cases_stand_the_same_in_the_view() {
        use budgit_engine::evaluate::{EvaluateOptions, evaluate};
        use budgit_engine::input::{UsageFormat, parse_directory, parse_usage};
        use budgit_engine::load::{Source, load_sources};
        use budgit_engine::resolve::resolve;
        use budgit_engine::standing::counted_days;
        use budgit_engine::usage_table::{UsageTable, day_date};
        use chrono::TimeZone;
        use std::collections::BTreeMap;

        #[derive(serde::Deserialize)]
        struct Case {
            now: String,
            policies: BTreeMap<String, String>,
            directory: BTreeMap<String, String>,
            #[serde(default)]
            usage: BTreeMap<String, String>,
        }

        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/evaluate_cases");
        let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        let mut checked = 0;
        for path in paths.iter().filter(|p| p.extension().is_some_and(|e| e == "yaml")) {
            let ctx = path.display().to_string();
            let case: Case = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let sources = case
                .policies
                .iter()
                .map(|(p, t)| Source { path: p.as_str().into(), text: t.as_str().into(), commit: None })
                .collect();
            let (policies, _) =
                budgit_engine::stack::with_large_stack(move || load_sources(sources)).unwrap();
            let ws = &policies.workspace().unwrap().doc;
            let now = DateTime::parse_from_rfc3339(&case.now).unwrap().with_timezone(&Utc);
            let (name, text) = case.directory.iter().next().unwrap();
            let (people, _) = parse_directory(
                &Arc::from(name.as_str()),
                text.as_bytes(),
                name.ends_with(".jsonl"),
                &ws.attributes,
            )
            .unwrap();
            let resolution = resolve(&policies, &people, now).unwrap();
            let mut table = UsageTable::new(&people);
            for (name, text) in &case.usage {
                let format = UsageFormat::from_path(std::path::Path::new(name));
                parse_usage(
                    &Arc::from(name.as_str()),
                    text.as_bytes(),
                    format,
                    &mut table,
                    resolution.timezone,
                )
                .unwrap();
            }
            let evaluation =
                evaluate(&policies, &people, &resolution, &table, EvaluateOptions::default()).unwrap();

            // The service's inputs: the events the evaluation counts (at noon of their
            // local day), the applied limits and pools, the workspace's settings.
            let tz = resolution.timezone;
            let mut agg = Aggregates::new(PeriodKey { period: resolution.period, tz }, 1);
            let days = counted_days(&resolution);
            for k in 0..table.len() {
                let Some(date) = day_date(table.day[k]).filter(|_| days.contains(&table.day[k])) else {
                    continue;
                };
                let ts = tz.from_local_datetime(&date.and_hms_opt(12, 0, 0).unwrap()).unwrap().timestamp();
                let user = table.user_email(&people, table.user[k]);
                let (p, m) = (
                    &table.products()[usize::from(table.product[k])],
                    &table.models()[usize::from(table.model[k])],
                );
                agg.add(ts, user, p, m, table.micros[k], 1);
            }
            let group_name = |g: usize| policies.groups[g].doc.name.clone();
            let users = resolution
                .users
                .iter()
                .map(|r| {
                    let limit = UserLimit { limit: (*r.limit).clone(), group: r.group.map(group_name) };
                    (Arc::from(people.users[r.user].email.as_str()), limit)
                })
                .collect();
            let pools = policies
                .groups
                .iter()
                .filter_map(|g| Some((Arc::from(g.doc.name.as_str()), g.doc.pool.as_ref()?.credits.micros())))
                .collect();
            let limits = LimitsSnap {
                generation: 1,
                writes: 0,
                at: std::time::Instant::now(),
                users,
                pools,
                enforcement: ws.enforcement,
                alerts: Arc::new(AlertLevels::of(ws)),
            };
            let v = build(&agg, &limits, &DirectorySnap::default());

            for u in &evaluation.users {
                let row = v.row(u.user).unwrap_or_else(|| panic!("{ctx}: no row for {}", u.user));
                assert_eq!(
                    (row.limit, row.used, row.remaining, row.percent, row.status, row.blocked_by),
                    (
                        Some(u.limit.micros()),
                        u.used.micros(),
                        Some(u.remaining.micros()),
                        u.percent,
                        Some(u.status),
                        u.blocked_by
                    ),
                    "{ctx}: {}",
                    u.user
                );
                assert_eq!(row.blocked(), u.blocked, "{ctx}: {}", u.user);
                checked += 1;
            }
            for g in evaluation.groups.iter().filter(|g| g.members > 0 || g.pool.is_some()) {
                let team = v.team(g.group).unwrap_or_else(|| panic!("{ctx}: no team {}", g.group));
                assert_eq!(
                    (team.members, team.used, team.pool, team.exposure, team.status(&v.rules)),
                    (g.members, g.used.micros(), g.pool.map(|p| p.micros()), g.exposure.micros(), g.status),
                    "{ctx}: {}",
                    g.group
                );
            }
        }
        assert!(checked >= 30, "the case files hold users ({checked} checked)");
    }
}
