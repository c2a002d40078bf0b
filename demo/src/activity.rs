//! The demo's usage: who spends how much, the backfill of the period so far, and
//! the live events that follow it.
//!
//! Spend is planned per team against what the team may spend (its pool, or the
//! sum of its members' limits), so the console shows sensible gauges at any
//! size: most teams at 30–60%, one team at ~89% of its pool, and one user at
//! exactly their limit. Inside a team, a Pareto draw and a minority of heavy
//! Codex users make the spread realistic; nobody else passes 93% of a limit or
//! a cap. Time follows office hours in the workspace time zone (weekdays 9–18,
//! light evenings and weekends). Everything is drawn from the seed.

use std::collections::BTreeMap;

use budgit_engine::Credits;
use budgit_engine::r#gen::rng::Rng;
use budgit_engine::load::PolicySet;
use budgit_engine::model::Limit;
use budgit_engine::period::PeriodRange;
use budgit_engine::resolve::Resolution;
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::people::Person;

/// Micro-credits per cent: planned amounts are whole cents.
const CENT: i64 = 10_000;

/// Share of a limit (or cap) nobody but the user at the limit passes.
const CEILING: f64 = 0.93;

/// How busy each local hour of a weekday is (relative).
const WEEKDAY_HOURS: [f64; 24] = [
    0.08, 0.04, 0.02, 0.02, 0.02, 0.04, 0.1, 0.3, 0.8, 1.6, 2.0, 2.0, 1.3, 1.8, 2.0, 1.9, 1.6, 1.2, 0.7, 0.5,
    0.45, 0.4, 0.25, 0.15,
];

/// How busy each local hour of a weekend day is (relative).
const WEEKEND_HOURS: [f64; 24] = [
    0.05, 0.03, 0.02, 0.02, 0.02, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.35, 0.35, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3,
    0.35, 0.35, 0.3, 0.2, 0.1,
];

/// ChatGPT models with their share of conversations.
pub const CHATGPT_MODELS: [(&str, f64); 5] =
    [("gpt-5", 0.45), ("gpt-5-thinking", 0.2), ("gpt-4o", 0.15), ("o3", 0.12), ("gpt-5-pro", 0.08)];

/// Codex models with their share of tasks.
pub const CODEX_MODELS: [(&str, f64); 3] =
    [("gpt-5-codex", 0.5), ("gpt-5.1-codex", 0.3), ("codex-mini-latest", 0.2)];

const REPOS: [&str; 10] = [
    "acme/checkout-web",
    "acme/payments-service",
    "acme/mobile-app",
    "acme/platform-infra",
    "acme/design-system",
    "acme/data-warehouse",
    "acme/ml-eval",
    "acme/identity",
    "acme/search",
    "acme/notifications",
];

const TASKS: [&str; 10] = [
    "Fix flaky integration test",
    "Add pagination to the orders endpoint",
    "Migrate config loading to the new schema",
    "Write unit tests for the retry policy",
    "Refactor the billing webhook handler",
    "Bump dependencies and fix deprecations",
    "Investigate p99 latency regression",
    "Add metrics to the job scheduler",
    "Port the CSV export to streaming",
    "Review pull request for race conditions",
];

const TOPICS: [&str; 10] = [
    "Draft a customer follow-up email",
    "Summarise the quarterly planning notes",
    "Explain a SQL query plan",
    "Outline a product brief",
    "Rewrite release notes for customers",
    "Compare vendor contract terms",
    "Brainstorm campaign names",
    "Translate a support answer",
    "Prepare interview questions",
    "Analyse a spreadsheet of churn data",
];

/// One user as the simulation sees them.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The email.
    pub email: String,
    /// The winning group, when one applies.
    pub group: Option<String>,
    /// The department (for the kind of work).
    pub department: &'static str,
    /// The effective limit.
    pub limit: Limit,
    /// How active the user is, relative to others (0: never uses it).
    pub weight: f64,
    /// The share of their spend that goes to Codex.
    pub codex_share: f64,
    /// A heavy Codex user.
    pub heavy: bool,
    /// In the team near its pool: live spend stays small so the pool lasts.
    pub quiet: bool,
    /// Planned backfill, micro-credits, per product.
    pub chatgpt: i64,
    /// Planned backfill of Codex.
    pub codex: i64,
}

impl Subject {
    /// The cap on `product` (the total when the limit has none).
    fn product_max(&self, product: &str) -> i64 {
        let total = self.limit.credits.micros();
        self.limit.products.get(product).map_or(total, |c| c.micros().min(total))
    }

    /// The cap on `model`, when the limit has one.
    fn model_cap(&self, model: &str) -> Option<i64> {
        self.limit.models.get(model).map(|c| c.micros())
    }
}

/// The simulated organisation.
#[derive(Debug, Clone)]
pub struct Org {
    /// Every user, in directory order.
    pub subjects: Vec<Subject>,
    /// The group whose usage is near its pool.
    pub near_team: Option<String>,
    /// The user whose usage is exactly their limit.
    pub at_limit: Option<usize>,
    /// The user whose backfill ends in a burst: an unattended agent loop in the last
    /// hour, so the console's runaway list has a story to tell.
    pub runaway: Option<usize>,
    /// The workspace time zone.
    pub tz: Tz,
    /// The period the backfill covers.
    pub period: PeriodRange,
    /// When the backfill ends.
    pub now: DateTime<Utc>,
}

fn product_share(department: &str) -> f64 {
    match department {
        "Engineering" => 0.65,
        "Security" => 0.5,
        "Data Science" => 0.45,
        "IT" => 0.3,
        "Product" | "Design" => 0.15,
        _ => 0.03,
    }
}

fn activity(department: &str) -> f64 {
    match department {
        "Engineering" | "Data Science" => 1.3,
        "Customer Support" | "Sales" | "Marketing" => 0.8,
        _ => 1.0,
    }
}

/// Allocates `target` in proportion to `weights`, none above its cap (water filling).
fn water_fill(target: f64, weights: &[f64], caps: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; weights.len()];
    let mut active: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0.0 && caps[i] > 0.0).collect();
    let mut remaining = target.max(0.0);
    for _ in 0..64 {
        let total: f64 = active.iter().map(|&i| weights[i]).sum();
        if total <= 0.0 || remaining <= 0.0 {
            break;
        }
        let (full, open): (Vec<usize>, Vec<usize>) =
            active.iter().partition(|&&i| remaining * weights[i] / total >= caps[i]);
        if full.is_empty() {
            for &i in &open {
                out[i] = remaining * weights[i] / total;
            }
            break;
        }
        for &i in &full {
            out[i] = caps[i];
            remaining -= caps[i];
        }
        active = open;
    }
    out
}

fn cents(micros: f64) -> i64 {
    (micros.max(0.0) as i64) / CENT * CENT
}

/// Plans who spends what, from the resolution of the policies over the people.
pub fn plan(
    people: &[Person],
    policies: &PolicySet,
    resolution: &Resolution,
    seed: u64,
    now: DateTime<Utc>,
) -> Org {
    let mut rng = Rng::new(seed, 0xde30_0002);
    let group_name = |g: Option<usize>| g.and_then(|g| policies.groups.get(g)).map(|g| g.doc.name.clone());
    let mut subjects: Vec<Subject> = resolution
        .users
        .iter()
        .filter_map(|r| {
            let person = people.get(r.user)?;
            let limit = (*r.limit).clone();
            let codex_allowed = limit.products.get("codex").is_none_or(|c| !c.is_zero());
            let base = product_share(person.department);
            let builder = base >= 0.3;
            let beta = person.idp_groups.iter().any(|g| g == "codex-beta");
            let heavy = codex_allowed && builder && rng.chance(if beta { 0.3 } else { 0.06 });
            let weight = if rng.chance(0.08) {
                0.0
            } else {
                rng.pareto(1.8).min(20.0) * activity(person.department) * if heavy { 4.0 } else { 1.0 }
            };
            let codex_share = match (codex_allowed, heavy) {
                (false, _) => 0.0,
                (true, true) => 0.85,
                (true, false) => base,
            };
            Some(Subject {
                email: person.email.clone(),
                group: group_name(r.group),
                department: person.department,
                limit,
                weight,
                codex_share,
                heavy,
                quiet: false,
                chatgpt: 0,
                codex: 0,
            })
        })
        .collect();

    let pools: BTreeMap<String, i64> = policies
        .groups
        .iter()
        .filter_map(|g| g.doc.pool.as_ref().map(|p| (g.doc.name.clone(), p.credits.micros())))
        .collect();
    let mut teams: BTreeMap<Option<String>, Vec<usize>> = BTreeMap::new();
    for (i, s) in subjects.iter().enumerate() {
        teams.entry(s.group.clone()).or_default().push(i);
    }
    let usable = |s: &Subject| {
        let total = s.limit.credits.micros();
        total.min(s.product_max("chatgpt").saturating_add(s.product_max("codex"))) as f64
    };
    // the team near its pool: one whose members can reach 89% of the pool
    let feasible = |name: &str, members: &[usize]| {
        let room: f64 = members.iter().map(|&i| usable(&subjects[i]) * CEILING).sum();
        pools.get(name).is_some_and(|&p| p > 0 && room >= 0.95 * p as f64)
    };
    let near_team = teams
        .iter()
        .filter_map(|(g, m)| g.as_deref().filter(|g| feasible(g, m)).map(|g| (g, m.len())))
        .max_by_key(|(g, n)| (*g == "product-design", *n))
        .map(|(g, _)| g.to_string());
    // the user at their limit: a generated heavy Codex user in a roomy team
    let at_limit = subjects
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            !people.get(*i).is_some_and(|p| p.named)
                && s.group.is_some()
                && s.group != near_team
                && s.codex_share > 0.0
                && s.group
                    .as_ref()
                    .and_then(|g| pools.get(g))
                    .is_none_or(|&p| p > 4 * s.limit.credits.micros())
        })
        .max_by(|(ia, a), (ib, b)| {
            (a.heavy, a.limit.credits, std::cmp::Reverse(*ia)).cmp(&(
                b.heavy,
                b.limit.credits,
                std::cmp::Reverse(*ib),
            ))
        })
        .map(|(i, _)| i);

    for (group, members) in &teams {
        let limits: f64 = members.iter().map(|&i| subjects[i].limit.credits.micros() as f64).sum();
        let budget = match group.as_ref().and_then(|g| pools.get(g)) {
            Some(&p) => limits.min(p as f64),
            None => limits,
        };
        let share = if group.is_some() && *group == near_team {
            0.89
        } else if group.is_some() {
            0.3 + 0.3 * rng.unit()
        } else {
            0.25 + 0.15 * rng.unit()
        };
        let mut target = budget * share;
        let mut weights = Vec::with_capacity(members.len());
        let mut caps = Vec::with_capacity(members.len());
        for &i in members {
            if Some(i) == at_limit {
                target -= subjects[i].limit.credits.micros() as f64;
                weights.push(0.0);
                caps.push(0.0);
            } else {
                weights.push(subjects[i].weight);
                caps.push(usable(&subjects[i]) * CEILING);
            }
        }
        let amounts = water_fill(target, &weights, &caps);
        for (&i, amount) in members.iter().zip(amounts) {
            let s = &mut subjects[i];
            s.quiet = group.is_some() && *group == near_team;
            if Some(i) == at_limit {
                let total = s.limit.credits.micros();
                let codex = ((total as f64 * 0.8) as i64 / CENT * CENT).min(s.product_max("codex"));
                let chatgpt = (total - codex).min(s.product_max("chatgpt"));
                s.chatgpt = chatgpt;
                s.codex = total - chatgpt;
                continue;
            }
            let codex_max = s.product_max("codex") as f64 * CEILING;
            let chatgpt_max = s.product_max("chatgpt") as f64 * CEILING;
            let mut codex = (amount * s.codex_share).min(codex_max);
            let mut chatgpt = amount - codex;
            if chatgpt > chatgpt_max {
                codex = (codex + chatgpt - chatgpt_max).min(codex_max);
                chatgpt = chatgpt_max;
            }
            s.chatgpt = cents(chatgpt);
            s.codex = cents(codex);
        }
    }
    // the runaway: the largest Codex plan (of at least twice the floor) of another team
    // than the near one; half of it moves into the last hour, so their total is unchanged
    let runaway = subjects
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            Some(*i) != at_limit && !s.quiet && s.codex >= 2 * budgit_service::runaway::FLOOR_MICROS
        })
        .max_by_key(|(i, s)| (s.codex, std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    let tz = resolution.timezone;
    Org { subjects, near_team, at_limit, runaway, tz, period: resolution.period, now }
}

/// The local days of the period up to `now`, with how much of each day's rhythm has passed.
fn days(org: &Org) -> Vec<(NaiveDate, bool, f64)> {
    let today = org.now.with_timezone(&org.tz).date_naive();
    let now_local = org.now.with_timezone(&org.tz);
    let mut out = Vec::new();
    let mut day = org.period.start_date;
    while day <= today && org.period.contains_date(day) {
        let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
        let hours = if weekend { &WEEKEND_HOURS } else { &WEEKDAY_HOURS };
        let elapsed = if day == today {
            let whole: f64 = hours[..now_local.hour() as usize].iter().sum();
            let part = hours[now_local.hour() as usize] * f64::from(now_local.minute()) / 60.0;
            (whole + part) / hours.iter().sum::<f64>()
        } else {
            1.0
        };
        out.push((day, weekend, elapsed));
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    out
}

/// A time on `day` drawn from its rhythm, over an hour before `now` and inside the period.
///
/// A backfill event is a whole day's spend: one landing in the last hour would read as
/// a burst to the runaway rule, which only the demo's planned runaway should be.
fn time_on(org: &Org, rng: &mut Rng, day: NaiveDate, weekend: bool) -> i64 {
    let hours = if weekend { &WEEKEND_HOURS } else { &WEEKDAY_HOURS };
    let start = org
        .tz
        .from_local_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .earliest()
        .map_or(org.period.start, |t| t.with_timezone(&Utc))
        .max(org.period.start);
    let latest = (org.now - Duration::minutes(65)).max(org.period.start).min(org.now - Duration::seconds(30));
    let total: f64 = hours.iter().sum();
    for _ in 0..8 {
        let mut x = rng.unit() * total;
        let mut hour = 23;
        for (h, w) in hours.iter().enumerate() {
            if x < *w {
                hour = h;
                break;
            }
            x -= w;
        }
        let t = start + Duration::seconds(hour as i64 * 3600 + rng.below(3600) as i64);
        if t <= latest {
            return t.timestamp();
        }
    }
    // today, before the office opened: anywhere between midnight and now
    let span = (latest - start).num_seconds().max(1);
    (start + Duration::seconds(rng.below(span as u64) as i64)).timestamp().min(latest.timestamp())
}

/// Picks a model of `product` for `subject`, avoiding a model whose cap would be passed.
fn model_for(
    subject: &Subject,
    rng: &mut Rng,
    product: &str,
    amount: i64,
    spent: &mut BTreeMap<&'static str, i64>,
    exact: bool,
) -> &'static str {
    let models: &[(&'static str, f64)] = if product == "codex" { &CODEX_MODELS } else { &CHATGPT_MODELS };
    let mut x = rng.unit();
    let mut chosen = models[0].0;
    for (m, w) in models {
        if x < *w {
            chosen = m;
            break;
        }
        x -= w;
    }
    let fits = |m: &str, spent: &BTreeMap<&'static str, i64>| {
        subject.model_cap(m).is_none_or(|cap| {
            let room = if exact { cap } else { (cap as f64 * 0.9) as i64 };
            spent.get(m).copied().unwrap_or(0) + amount <= room
        })
    };
    if !fits(chosen, spent)
        && let Some((m, _)) = models.iter().find(|(m, _)| fits(m, spent))
    {
        chosen = m;
    }
    *spent.entry(chosen).or_insert(0) += amount;
    chosen
}

/// The backfill events of subject `i`: one per active day and product, in time order.
pub fn backfill(org: &Org, i: usize, seed: u64) -> Vec<Value> {
    let Some(s) = org.subjects.get(i) else { return Vec::new() };
    if s.chatgpt + s.codex <= 0 {
        return Vec::new();
    }
    let mut rng = Rng::new(seed ^ 0xde30_0003, i as u64);
    let calendar = days(org);
    let (weekday_p, weekend_p) = if s.heavy { (0.95, 0.3) } else { (0.8, 0.12) };
    let mut weights: Vec<f64> = calendar
        .iter()
        .map(|(_, weekend, elapsed)| {
            let p = if *weekend { weekend_p } else { weekday_p };
            if rng.chance(p) { (0.4 + rng.unit()) * elapsed } else { 0.0 }
        })
        .collect();
    if weights.iter().sum::<f64>() <= 0.0 {
        // at least one day of use: the latest day with time behind it
        if let Some(k) = calendar.iter().rposition(|d| d.2 > 0.0) {
            weights[k] = 1.0;
        } else {
            return Vec::new();
        }
    }
    let total_w: f64 = weights.iter().sum();
    let exact = org.at_limit == Some(i);
    let mut spent = BTreeMap::new();
    let mut out = Vec::new();
    // the context's draws have a stream of their own: the amounts, models and times
    // stay those of the seed
    let mut context_rng = Rng::new(seed ^ 0xde30_0008, i as u64);
    // the runaway's burst: half their Codex, in the last hour (at least 5× any baseline
    // of the other half over the 24 hours the rule averages at least)
    let burst = if org.runaway == Some(i) { s.codex / 2 / CENT * CENT } else { 0 };
    if burst > 0 {
        const STEPS: i64 = 10;
        for k in 0..STEPS {
            let amount = if k == STEPS - 1 { burst - burst / STEPS * (STEPS - 1) } else { burst / STEPS };
            let time = (org.now - Duration::minutes(50 - 5 * k)).max(org.period.start).timestamp();
            let model = model_for(s, &mut rng, "codex", amount, &mut spent, false);
            out.push(json!({
                "id": format!("demo-{seed}-{i}-loop-{k}"),
                "time": time,
                "user": s.email,
                "product": "codex",
                "model": model,
                "credits": Credits::from_micros(amount).to_string(),
                "context": {
                    "kind": "task",
                    "task": "Retry the failing migration until it passes",
                    "repo": crate::value::repos(s.group.as_deref())[0],
                    "workflow": "agent-loop",
                },
            }));
        }
    }
    for (product, total) in [("chatgpt", s.chatgpt), ("codex", s.codex - burst)] {
        if total <= 0 {
            continue;
        }
        let mut amounts: Vec<i64> = weights.iter().map(|w| cents(total as f64 * w / total_w)).collect();
        // rounding leftovers go to the busiest day, so the total is exact
        let rest = total - amounts.iter().sum::<i64>();
        if let Some(k) = weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k) {
            amounts[k] += rest;
        }
        for (k, amount) in amounts.into_iter().enumerate() {
            if amount <= 0 {
                continue;
            }
            let (day, weekend, _) = calendar[k];
            let model = model_for(s, &mut rng, product, amount, &mut spent, exact);
            let time = time_on(org, &mut rng, day, weekend);
            let credits = amount as f64 / 1e6;
            let context = if product == "codex" {
                // drawn as before, so the rest of the stream is unchanged
                let _ = rng.index(REPOS.len());
                let mut extra = serde_json::Map::new();
                extra.insert("kind".into(), json!("task"));
                extra.insert("tasks".into(), json!(1 + (credits / 12.0) as u64));
                crate::value::codex_context(s.group.as_deref(), &mut context_rng, extra)
            } else {
                json!({ "kind": "conversation", "conversations": 1 + (credits / 4.0) as u64 })
            };
            out.push(json!({
                "id": format!("demo-{seed}-{i}-{day}-{product}"),
                "time": time,
                "user": s.email,
                "product": product,
                "model": model,
                "credits": Credits::from_micros(amount).to_string(),
                "context": context,
            }));
        }
    }
    out
}

/// One live spend: who, on what, the worst case to reserve and the actual amount.
#[derive(Debug, Clone)]
pub struct Spend {
    /// The subject's index.
    pub user: usize,
    /// `chatgpt` or `codex`.
    pub product: &'static str,
    /// The model.
    pub model: &'static str,
    /// The worst case reserved by the check.
    pub reserve: Credits,
    /// The amount committed.
    pub actual: Credits,
    /// The event's context.
    pub context: Value,
}

/// Draws live spends: users in proportion to their activity, amounts by product.
#[derive(Debug)]
pub struct Live {
    cumulative: Vec<f64>,
    rng: Rng,
}

impl Live {
    /// A source of live spends for `org`.
    pub fn new(org: &Org, seed: u64) -> Live {
        let mut acc = 0.0;
        let cumulative = org
            .subjects
            .iter()
            .map(|s| {
                acc += s.weight;
                acc
            })
            .collect();
        Live { cumulative, rng: Rng::new(seed, 0xde30_0004) }
    }

    /// Events per second at `phase` (0..1) of a simulated day: office hours, never idle.
    pub fn rate(phase: f64) -> f64 {
        let hour = ((phase.rem_euclid(1.0)) * 24.0) as usize % 24;
        1.5 + 3.5 * WEEKDAY_HOURS[hour] / 2.0
    }

    /// Seconds to wait before the next spend at `rate` events per second.
    pub fn gap(&mut self, rate: f64) -> f64 {
        (-(1.0 - self.rng.unit()).ln() / rate.max(0.1)).clamp(0.02, 3.0)
    }

    /// The next spend, by `user` when given (the user at the limit tries now and then).
    pub fn next(&mut self, org: &Org, user: Option<usize>) -> Option<Spend> {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let i = match user {
            Some(u) => u,
            None if total > 0.0 => {
                let x = self.rng.unit() * total;
                self.cumulative.partition_point(|&c| c <= x).min(self.cumulative.len().saturating_sub(1))
            }
            None => return None,
        };
        let s = org.subjects.get(i)?;
        let codex = self.rng.chance(s.codex_share);
        let product = if codex { "codex" } else { "chatgpt" };
        let mut spent = BTreeMap::new();
        // log-normal amounts: short chats are cheap, long agentic tasks are not
        let (median, sigma) = if codex { (6.0, 0.9) } else { (1.2, 0.8) };
        let normal =
            (-2.0 * (1.0 - self.rng.unit()).ln()).sqrt() * (std::f64::consts::TAU * self.rng.unit()).cos();
        let mut credits = median * (sigma * normal).exp() * if s.heavy { 2.0 } else { 1.0 };
        if s.quiet {
            credits *= 0.25;
        }
        let actual = Credits::from_micros(cents((credits.clamp(0.05, 120.0)) * 1e6).max(CENT));
        let model = model_for(s, &mut self.rng, product, actual.micros(), &mut spent, false);
        let reserve = Credits::from_micros(cents(actual.micros() as f64 * 1.25).max(actual.micros()));
        let context = if codex {
            let task = TASKS[self.rng.index(TASKS.len())];
            let mut extra = serde_json::Map::new();
            extra.insert("kind".into(), json!("task"));
            extra.insert("task".into(), json!(task));
            extra.insert("status".into(), json!("completed"));
            crate::value::codex_context(s.group.as_deref(), &mut self.rng, extra)
        } else {
            json!({
                "kind": "conversation",
                "title": TOPICS[self.rng.index(TOPICS.len())],
                "messages": 2 + self.rng.below(30),
            })
        };
        Some(Spend { user: i, product, model, reserve, actual, context })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_filling_respects_caps_and_spends_the_target() {
        let out = water_fill(100.0, &[1.0, 1.0, 8.0], &[50.0, 50.0, 30.0]);
        assert_eq!(out[2], 30.0);
        assert!((out[0] - 35.0).abs() < 1e-9 && (out[1] - 35.0).abs() < 1e-9);
        let all_capped = water_fill(1000.0, &[1.0, 2.0], &[10.0, 20.0]);
        assert_eq!(all_capped, vec![10.0, 20.0]);
        assert_eq!(water_fill(10.0, &[0.0, 1.0], &[5.0, 5.0]), vec![0.0, 5.0]);
    }

    #[test]
    fn the_live_rate_follows_office_hours_and_never_stops() {
        let night = Live::rate(3.0 / 24.0);
        let day = Live::rate(10.5 / 24.0);
        assert!(night >= 1.5 && day > 2.0 * night, "night {night}, day {day}");
    }
}
