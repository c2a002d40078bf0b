//! The synthetic policy repository: a workspace, group rules with limits scaled
//! to their members' usage, time-boxed overrides, and two guardrails.
//!
//! Limits are set from the usage percentiles of the people each rule ends up
//! deciding for, so that evaluating the generated organisation gives a realistic
//! mix: most users ok, some at a warning, a few exceeded.

use std::fmt::Write as _;

use chrono::{Days, NaiveDate};

use super::org::{DEPARTMENTS, GroupRule, Person, Profile};
use super::rng::Rng;
use super::usage::{MODELS, PRODUCTS, PeriodUsage};
use crate::Credits;

/// The workspace's name.
pub const WORKSPACE: &str = "acme";
/// The workspace's time zone.
pub const TIMEZONE: &str = "America/New_York";
/// The longest override allowed.
pub const MAX_DAYS: u64 = 90;

const CODEX: usize = 1;
const CHATGPT: usize = 0;
const GPT_5_PRO: usize = 2;

/// A limit as generated: a total, optional caps, and an optional pool (groups only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenLimit {
    /// Total credits.
    pub credits: Credits,
    /// Product caps as (index into [`PRODUCTS`], credits).
    pub products: Vec<(usize, Credits)>,
    /// Model caps as (index into [`MODELS`], credits).
    pub models: Vec<(usize, Credits)>,
}

/// A group with its limit and pool.
#[derive(Debug, Clone)]
pub struct GenGroup {
    /// The rule.
    pub rule: GroupRule,
    /// Each member's limit.
    pub limit: GenLimit,
    /// The team pool.
    pub pool: Option<Credits>,
}

/// What an override does.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `add: { credits, products? }`.
    Add(Credits, Option<(usize, Credits)>),
    /// `limit: { credits }`.
    Replace(Credits),
}

/// A generated override.
#[derive(Debug, Clone)]
pub struct GenOverride {
    /// Unique name.
    pub name: String,
    /// Index of the user.
    pub user: usize,
    /// The change.
    pub change: Change,
    /// First day (inclusive).
    pub starts: NaiveDate,
    /// Day it stops applying (exclusive).
    pub expires: NaiveDate,
    /// Why.
    pub reason: String,
}

/// The whole generated policy.
#[derive(Debug, Clone)]
pub struct GenPolicy {
    /// The workspace default.
    pub default: GenLimit,
    /// The groups, in file order.
    pub groups: Vec<GenGroup>,
    /// The overrides.
    pub overrides: Vec<GenOverride>,
    /// Each user's winning group (index into `groups`), if any.
    pub winner: Vec<Option<usize>>,
}

/// Finds each user's winning group: the highest priority among the groups they are in.
pub fn winners(people: &[Person], rules: &[GroupRule]) -> Vec<Option<usize>> {
    people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut best: Option<(i64, usize)> = None;
            for (g, rule) in rules.iter().enumerate() {
                if best.is_some_and(|(prio, _)| prio >= rule.priority) {
                    continue;
                }
                if rule.contains(i, p) {
                    best = Some((rule.priority, g));
                }
            }
            best.map(|(_, g)| g)
        })
        .collect()
}

/// Sets limits, pools and overrides from the period usage.
pub fn plan(
    rng: &mut Rng,
    people: &[Person],
    rules: Vec<GroupRule>,
    usage: &PeriodUsage,
    overrides: usize,
    today: NaiveDate,
) -> GenPolicy {
    let winner = winners(people, &rules);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); rules.len()];
    let mut defaulted = Vec::new();
    for (i, w) in winner.iter().enumerate() {
        match w {
            Some(g) => members[*g].push(i),
            None => defaulted.push(i),
        }
    }
    let everyone: Vec<usize> = (0..people.len()).collect();
    let default = {
        let base = if defaulted.len() >= 20 { &defaulted } else { &everyone };
        let mut limit = limit_for(rng, base, usage, 0.92);
        limit.products = vec![(CODEX, cap_for(base, |u| usage.products[u][CODEX], limit.credits))];
        limit.models = vec![(GPT_5_PRO, cap_for(base, |u| usage.models[u][GPT_5_PRO], limit.credits))];
        limit
    };
    let groups: Vec<GenGroup> = rules
        .into_iter()
        .zip(&members)
        .map(|(rule, who)| {
            let base = if who.is_empty() { &everyone } else { who };
            let q = 0.91 + rng.unit() * 0.07;
            let mut limit = limit_for(rng, base, usage, q);
            if rng.chance(0.4) {
                let product = match DEPARTMENTS[people.get(base[0]).map_or(0, |p| p.dept)].3 {
                    Profile::Builder => CODEX,
                    _ => CHATGPT,
                };
                limit.products.push((product, cap_for(base, |u| usage.products[u][product], limit.credits)));
            }
            if rng.chance(0.2) {
                limit.models.push((GPT_5_PRO, cap_for(base, |u| usage.models[u][GPT_5_PRO], limit.credits)));
            }
            let pool = (rng.chance(0.2) && !who.is_empty()).then(|| {
                let used: i64 = who.iter().map(|&u| usage.total[u]).sum();
                let factor = 1.15 + rng.unit() * 1.35;
                nice(used as f64 * factor).max(limit.credits)
            });
            GenGroup { rule, limit, pool }
        })
        .collect();
    let overrides = make_overrides(rng, people, &groups, &default, &winner, usage, overrides, today);
    GenPolicy { default, groups, overrides, winner }
}

/// A limit at quantile `q` of the usage of `who`.
fn limit_for(rng: &mut Rng, who: &[usize], usage: &PeriodUsage, q: f64) -> GenLimit {
    let mut totals: Vec<i64> = who.iter().map(|&u| usage.total[u]).collect();
    let jitter = 0.95 + rng.unit() * 0.1;
    GenLimit { credits: nice(quantile(&mut totals, q) * jitter), products: Vec::new(), models: Vec::new() }
}

/// A cap at the 97th percentile of one product's or model's usage, never above the total.
fn cap_for(who: &[usize], used: impl Fn(usize) -> i64, total: Credits) -> Credits {
    let mut values: Vec<i64> = who.iter().map(|&u| used(u)).collect();
    nice(quantile(&mut values, 0.97)).min(total)
}

/// The `q` quantile of micro-credit values, in micro-credits.
fn quantile(values: &mut [i64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let at = ((values.len() - 1) as f64 * q).round() as usize;
    values[at.min(values.len() - 1)] as f64
}

/// Rounds micro-credits to a limit a person would write: two significant digits, at least 5 credits.
fn nice(micros: f64) -> Credits {
    let credits = (micros / 1e6).max(5.0);
    let magnitude = 10f64.powi(credits.log10().floor() as i32 - 1);
    Credits::from_whole(((credits / magnitude).round() * magnitude) as i64)
}

#[expect(clippy::too_many_arguments, reason = "one call site; the inputs are what an override depends on")]
fn make_overrides(
    rng: &mut Rng,
    people: &[Person],
    groups: &[GenGroup],
    default: &GenLimit,
    winner: &[Option<usize>],
    usage: &PeriodUsage,
    count: usize,
    today: NaiveDate,
) -> Vec<GenOverride> {
    const REASONS: [(&str, &str); 8] = [
        ("migration", "Codex migration of a legacy service"),
        ("launch", "launch week support"),
        ("research", "evaluation runs for a research project"),
        ("onboarding", "onboarding a new team"),
        ("incident", "incident follow-up and postmortem analysis"),
        ("audit", "quarter-end audit preparation"),
        ("hackathon", "internal hackathon"),
        ("pilot", "pilot of a new agent workflow"),
    ];
    if people.is_empty() {
        return Vec::new();
    }
    // Heavy users ask for more: half of the overrides go to the top tenth by usage.
    let mut by_usage: Vec<usize> = (0..people.len()).collect();
    by_usage.sort_by_key(|&u| std::cmp::Reverse(usage.total[u]));
    let heavy = &by_usage[..people.len().div_ceil(10)];
    let max_add = default.credits.micros().saturating_mul(4);
    let mut last_expiry: Vec<Option<NaiveDate>> = vec![None; people.len()];
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let user = if rng.chance(0.5) { heavy[rng.index(heavy.len())] } else { rng.index(people.len()) };
        let days = |n: i64| Days::new(n.unsigned_abs());
        let (starts, expires) = match last_expiry[user] {
            // INVARIANT: a user's overrides follow each other, so they never overlap.
            Some(previous) => {
                let starts = previous + days(rng.range(0, 10));
                (starts, starts + days(rng.range(1, 30)))
            }
            None => match rng.below(4) {
                0 | 1 => {
                    let starts = today - days(rng.range(0, 30));
                    (starts, today + days(rng.range(1, 30)))
                }
                2 => {
                    let starts = today + days(rng.range(1, 45));
                    (starts, starts + days(rng.range(3, 60)))
                }
                _ => {
                    let expires = today - days(rng.range(1, 40));
                    (expires - days(rng.range(3, 60)), expires)
                }
            },
        };
        last_expiry[user] = Some(expires);
        let base = winner[user].and_then(|g| groups.get(g)).map_or(default, |g| &g.limit);
        let change = if rng.chance(0.8) {
            let add = nice(base.credits.micros() as f64 * (0.25 + rng.unit() * 1.25));
            let add = Credits::from_micros(add.micros().min(max_add).max(1_000_000));
            let product = (rng.chance(0.2))
                .then(|| base.products.first().map(|&(p, cap)| (p, nice(cap.micros() as f64 * 0.5))))
                .flatten();
            Change::Add(add, product)
        } else {
            Change::Replace(nice(usage.total[user] as f64 * (1.2 + rng.unit() * 0.8)).max(base.credits))
        };
        let (tag, reason) = REASONS[rng.index(REASONS.len())];
        let local = people[user].email.split('@').next().unwrap_or("user").replace('_', "-");
        out.push(GenOverride {
            name: format!("{local}-{tag}-{:05}", k + 1),
            user,
            change,
            starts,
            expires,
            reason: format!("{reason} (FIN-{})", 1000 + rng.below(9000)),
        });
    }
    out
}

/// The status mix the generated policy should produce, from totals, pools and caps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mix {
    /// Under every threshold.
    pub ok: usize,
    /// At or past 80% of the total, a pool or a cap.
    pub warning: usize,
    /// At or past 100% of the total or the pool.
    pub exceeded: usize,
}

/// Computes the expected status of every user at `today` (overrides active on that day apply).
pub fn expected_mix(policy: &GenPolicy, usage: &PeriodUsage, today: NaiveDate) -> Mix {
    let users = policy.winner.len();
    let mut limits: Vec<GenLimit> = policy
        .winner
        .iter()
        .map(|w| w.and_then(|g| policy.groups.get(g)).map_or(&policy.default, |g| &g.limit).clone())
        .collect();
    for o in &policy.overrides {
        if o.starts <= today && today < o.expires {
            let limit = &mut limits[o.user];
            match &o.change {
                Change::Add(c, product) => {
                    limit.credits += *c;
                    if let Some((p, extra)) = product {
                        for cap in limit.products.iter_mut().filter(|cap| cap.0 == *p) {
                            cap.1 += *extra;
                        }
                    }
                }
                Change::Replace(c) => {
                    *limit = GenLimit { credits: *c, products: Vec::new(), models: Vec::new() }
                }
            }
        }
    }
    let mut pool_used = vec![0i64; policy.groups.len()];
    for (u, w) in policy.winner.iter().enumerate() {
        if let Some(g) = w {
            pool_used[*g] += usage.total[u];
        }
    }
    let mut mix = Mix::default();
    for (u, limit) in limits.iter().enumerate().take(users) {
        let share =
            |used: i64, of: Credits| if of.micros() <= 0 { 1.0 } else { used as f64 / of.micros() as f64 };
        let mut worst = share(usage.total[u], limit.credits);
        let mut cap_worst: f64 = 0.0;
        for (p, cap) in &limit.products {
            cap_worst = cap_worst.max(share(usage.products[u][*p], *cap));
        }
        for (m, cap) in &limit.models {
            cap_worst = cap_worst.max(share(usage.models[u][*m], *cap));
        }
        if let Some(pool) = policy.winner[u].and_then(|g| policy.groups[g].pool.map(|p| (g, p))) {
            worst = worst.max(share(pool_used[pool.0], pool.1));
        }
        if worst >= 1.0 {
            mix.exceeded += 1;
        } else if worst >= 0.8 || cap_worst >= 0.8 {
            mix.warning += 1;
        } else {
            mix.ok += 1;
        }
    }
    mix
}

/// The workspace document.
pub fn workspace_yaml(default: &GenLimit) -> String {
    let mut y = String::new();
    y.push_str("apiVersion: budgit/v1\nkind: Workspace\n");
    let _ = writeln!(y, "name: {WORKSPACE}\ntimezone: {TIMEZONE}\nperiod: month");
    y.push_str("default:\n");
    write_limit(&mut y, default, "  ");
    y.push_str("enforcement: hard\nalerts: [50, 80, 100]\n");
    y.push_str("attributes:\n  cost_center: string\n  department: string\n  idp_groups: list\n");
    y.push_str("  location: string\n  title: string\n");
    let _ = writeln!(y, "overrides:\n  max_days: {MAX_DAYS}\n  require_reason: true");
    y
}

/// The guardrails document.
pub fn guardrails_yaml() -> String {
    "apiVersion: budgit/v1
kind: Guardrail
name: overrides-stay-modest
applies_to: override
rule: '!has(override.add) || !has(override.add.credits) || override.add.credits <= 4.0 * workspace.default.credits'
message: an override may add at most four times the default
severity: error
---
apiVersion: budgit/v1
kind: Guardrail
name: groups-have-owners
applies_to: group
rule: 'has(group.owners) && size(group.owners) > 0'
message: every group names who reviews it
severity: warning
"
    .to_string()
}

/// One group's document.
pub fn group_yaml(group: &GenGroup, people: &[Person]) -> String {
    let rule = &group.rule;
    let mut y = String::with_capacity(512);
    y.push_str("apiVersion: budgit/v1\nkind: Group\n");
    let _ = writeln!(y, "name: {}", rule.name);
    let _ = writeln!(y, "description: {}", double_quoted(&rule.description));
    let _ = writeln!(y, "selector: {}", single_quoted(&rule.predicate.to_cel()));
    write_emails(&mut y, "members", &rule.members, people);
    write_emails(&mut y, "exclude", &rule.exclude, people);
    let _ = writeln!(y, "priority: {}", rule.priority);
    y.push_str("limit:\n");
    write_limit(&mut y, &group.limit, "  ");
    if let Some(pool) = group.pool {
        let _ = writeln!(y, "pool:\n  credits: {pool}");
    }
    let _ = writeln!(y, "owners: ['@{WORKSPACE}/{}-leads']", rule.owner);
    y
}

/// One override's document.
pub fn override_yaml(o: &GenOverride, people: &[Person]) -> String {
    let email = people.get(o.user).map_or("", |p| p.email.as_str());
    let mut y = String::with_capacity(320);
    y.push_str("apiVersion: budgit/v1\nkind: Override\n");
    let _ = writeln!(y, "name: {}\nuser: {email}", o.name);
    match &o.change {
        Change::Add(credits, product) => {
            let _ = write!(y, "add: {{ credits: {credits}");
            if let Some((p, extra)) = product {
                let _ = write!(y, ", products: {{ {}: {extra} }}", PRODUCTS[*p]);
            }
            y.push_str(" }\n");
        }
        Change::Replace(credits) => {
            let _ = writeln!(y, "limit: {{ credits: {credits} }}");
        }
    }
    let _ = writeln!(y, "starts: {}\nexpires: {}", o.starts.format("%Y-%m-%d"), o.expires.format("%Y-%m-%d"));
    let _ = writeln!(y, "reason: {}\nrequested_by: {email}", double_quoted(&o.reason));
    y
}

fn write_limit(y: &mut String, limit: &GenLimit, indent: &str) {
    let _ = writeln!(y, "{indent}credits: {}", limit.credits);
    if !limit.products.is_empty() {
        let caps: Vec<String> =
            limit.products.iter().map(|(p, c)| format!("{}: {c}", PRODUCTS[*p])).collect();
        let _ = writeln!(y, "{indent}products: {{ {} }}", caps.join(", "));
    }
    if !limit.models.is_empty() {
        let caps: Vec<String> = limit.models.iter().map(|(m, c)| format!("{}: {c}", MODELS[*m])).collect();
        let _ = writeln!(y, "{indent}models: {{ {} }}", caps.join(", "));
    }
}

fn write_emails(y: &mut String, key: &str, who: &[usize], people: &[Person]) {
    if who.is_empty() {
        return;
    }
    let emails: Vec<&str> = who.iter().filter_map(|&i| people.get(i)).map(|p| p.email.as_str()).collect();
    let _ = writeln!(y, "{key}: [{}]", emails.join(", "));
}

/// A YAML single-quoted scalar (CEL text holds double quotes, rarely single ones).
fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A YAML double-quoted scalar.
fn double_quoted(text: &str) -> String {
    crate::load::yaml::double_quoted(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers_have_two_significant_digits() {
        assert_eq!(nice(1_234_000_000.0), Credits::from_whole(1200));
        assert_eq!(nice(87_600_000.0), Credits::from_whole(88));
        assert_eq!(nice(1.0), Credits::from_whole(5));
    }

    #[test]
    fn quantiles_pick_from_the_sorted_values() {
        let mut v = vec![5, 1, 4, 2, 3];
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut v, 1.0), 5.0);
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
    }
}
