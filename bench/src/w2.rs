//! W2: the in-process check — "may user X spend N credits on product P now?" —
//! for 100k users under 1, 50 and 1,000 rules, against `cedar-policy` and `regorus`.
//!
//! Each rule is a group with its own limit, product cap and pool; user `i` belongs to
//! group `i % rules`. budgit resolves limits once, before any check, so a check is a
//! lookup plus compares against the room left of the user's total, the product cap
//! and the group's pool. Two budgit paths are timed: the workspace service's ledger
//! (`budgit_service::ledger::Ledger::check`, which also makes a reservation — released
//! right after, so the state stays the same) and the bare decision over resolved
//! columns. The peers decide the same thing: Cedar with one `permit` per rule
//! (`principal in Group::"gK"`, the group's pool as a literal) and the user's usage
//! and limits in the request context; Rego with one `allow` body per rule, group
//! membership in `data` and usage and limits in `input`. All four must agree on a
//! sample of requests before anything is timed.
//!
//! Latency is the p50 over batches of calls (a batch amortises the clock read), and
//! the reported figure is the median of that p50 over the runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use budgit_engine::Credits;
use budgit_engine::model::Limit;
use budgit_service::ledger::{CheckRequest, Ledger, Settings, UserLimit};
use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityUid, PolicySet, Request, RestrictedExpression,
};

/// Sizes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users in the directory.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Rule counts to run.
    #[arg(long, value_delimiter = ',', default_value = "1,50,1000")]
    rules: Vec<usize>,
    /// Time budget per engine and run, in milliseconds (bounds the slow peers).
    #[arg(long, default_value_t = 400)]
    budget_ms: u64,
}

const PRODUCTS: [&str; 4] = ["chatgpt", "codex", "api", "sora"];
/// The product with a cap in every rule.
const CAPPED: usize = 1;
const MICRO: i64 = 1_000_000;

/// A small deterministic generator (xorshift), so every run checks the same requests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The resolved state every engine decides from: limits, usage, caps and pools.
struct World {
    emails: Vec<String>,
    group: Vec<u32>,
    limit: Vec<i64>,
    used: Vec<i64>,
    cap: Vec<i64>,
    cap_used: Vec<i64>,
    pool: Vec<i64>,
    pool_used: Vec<i64>,
}

/// One request: user index, the user's name as the request carries it, product index, micro-credits.
///
/// The name is the request's own copy (as in a request to the service, where it was
/// just parsed), not a reference into the 100k-user table: reading it from there
/// charged every engine two cache misses of the harness's own per call (the table's
/// `String`, then its bytes), as much as budgit's whole lookup.
#[derive(Clone, Copy)]
struct Req<'a> {
    user: usize,
    name: &'a str,
    product: usize,
    micros: i64,
}

fn world(users: usize, rules: usize) -> World {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut w = World {
        emails: (0..users).map(|i| format!("user{i:06}@acme.com")).collect(),
        group: (0..users).map(|i| (i % rules) as u32).collect(),
        limit: Vec::with_capacity(users),
        used: Vec::with_capacity(users),
        cap: Vec::with_capacity(users),
        cap_used: Vec::with_capacity(users),
        pool: vec![0; rules],
        pool_used: vec![0; rules],
    };
    for i in 0..users {
        let g = i % rules;
        let limit = (1000 + 10 * g as i64) * MICRO;
        // 0..110% of the limit: most users have room, some are past it
        let used = limit / 100 * (rng.next() % 111) as i64;
        let cap = limit / 10 * 6;
        w.limit.push(limit);
        w.used.push(used);
        w.cap.push(cap);
        w.cap_used.push(used / 2);
        w.pool[g] += limit / 10 * 6;
        w.pool_used[g] += used;
    }
    w
}

/// The users, products and amounts of `n` requests (random over all users).
fn draws(w: &World, n: usize) -> Vec<(usize, usize, i64)> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    (0..n)
        .map(|_| {
            let user = (rng.next() % w.emails.len() as u64) as usize;
            let product = (rng.next() % PRODUCTS.len() as u64) as usize;
            (user, product, (1 + (rng.next() % 400) as i64) * MICRO)
        })
        .collect()
}

/// The requests, their names copied into `names` (one buffer, in request order).
fn requests<'a>(draws: &[(usize, usize, i64)], names: &'a str, w: &World) -> Vec<Req<'a>> {
    let mut at = 0;
    draws
        .iter()
        .map(|&(user, product, micros)| {
            let len = w.emails[user].len();
            let name = names.get(at..at + len).unwrap_or_default();
            at += len;
            Req { user, name, product, micros }
        })
        .collect()
}

/// budgit's bare decision over resolved columns: lookup, then three compares.
struct Columns<'a> {
    w: &'a World,
    index: HashMap<&'a str, u32>,
}

impl<'a> Columns<'a> {
    fn new(w: &'a World) -> Self {
        let index = w.emails.iter().enumerate().map(|(i, e)| (e.as_str(), i as u32)).collect();
        Columns { w, index }
    }

    fn allowed(&self, user: &str, product: usize, micros: i64) -> bool {
        let Some(&i) = self.index.get(user) else { return false };
        let (w, i) = (self.w, i as usize);
        let g = w.group[i] as usize;
        let mut room = w.limit[i] - w.used[i];
        if product == CAPPED {
            room = room.min(w.cap[i] - w.cap_used[i]);
        }
        room = room.min(w.pool[g] - w.pool_used[g]);
        micros <= room
    }
}

/// The service's ledger loaded with the same limits, usage and pools.
fn ledger(w: &World) -> Ledger {
    let now = at();
    let settings = Settings::default();
    let period = Ledger::period_for(&settings, now);
    let mut l = Ledger::default();
    let rows = (0..w.emails.len())
        .flat_map(|i| {
            let on_cap = w.cap_used[i];
            [
                (w.emails[i].clone(), PRODUCTS[CAPPED].to_string(), "gpt-5".to_string(), on_cap),
                (w.emails[i].clone(), PRODUCTS[0].to_string(), "gpt-5".to_string(), w.used[i] - on_cap),
            ]
        })
        .collect();
    l.load_usage(settings, period, rows);
    let limits = (0..w.emails.len()).map(|i| {
        let mut limit = Limit { credits: Credits::from_micros(w.limit[i]), ..Default::default() };
        limit.products = BTreeMap::from([(PRODUCTS[CAPPED].to_string(), Credits::from_micros(w.cap[i]))]);
        let group = Some(format!("g{}", w.group[i]));
        (w.emails[i].clone(), Some(UserLimit { limit, group }))
    });
    let pools = w.pool.iter().enumerate().map(|(g, p)| (format!("g{g}"), Some(*p)));
    l.apply_limits(limits, pools);
    l
}

fn at() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap_or_default()
}

/// One check through the ledger, as the service makes it: reserve when allowed, then
/// release, so the state is unchanged; the outbox the store's writer would drain is
/// drained too.
fn ledger_check(l: &mut Ledger, r: Req) -> bool {
    let t = 1_795_000_000;
    let req = CheckRequest { user: r.name, product: PRODUCTS[r.product], model: "gpt-5", micros: r.micros };
    let d = l.check(&req, t, t + 60);
    if let Some(id) = d.reservation {
        let _ = l.release_id(id, None);
    }
    if l.claim_flush() {
        std::hint::black_box(l.take_outbox(t));
    }
    d.allowed
}

/// Cedar: one `permit` per rule, the user's usage and limits in the context.
struct Cedar {
    policies: PolicySet,
    entities: Entities,
    users: Vec<EntityUid>,
    action: EntityUid,
    resources: Vec<EntityUid>,
    authorizer: Authorizer,
}

fn uid(ty: &str, id: &str) -> anyhow::Result<EntityUid> {
    format!("{ty}::\"{id}\"").parse().with_context(|| format!("cedar uid `{ty}::{id}`"))
}

impl Cedar {
    fn new(w: &World, rules: usize) -> anyhow::Result<Self> {
        let mut src = String::new();
        for g in 0..rules {
            let _ = writeln!(
                src,
                "permit(principal in Group::\"g{g}\", action == Action::\"spend\", resource) when {{ \
                 context.amount <= context.limit - context.used && \
                 (resource != Product::\"{capped}\" || context.amount <= context.cap - context.cap_used) && \
                 context.amount <= {pool} - context.pool_used }};",
                capped = PRODUCTS[CAPPED],
                pool = w.pool[g],
            );
        }
        let policies: PolicySet = src.parse().map_err(|e| anyhow::anyhow!("cedar policies: {e}"))?;
        let groups: Vec<EntityUid> =
            (0..rules).map(|g| uid("Group", &format!("g{g}"))).collect::<Result<_, _>>()?;
        let users: Vec<EntityUid> = w.emails.iter().map(|e| uid("User", e)).collect::<Result<_, _>>()?;
        let mut all = Vec::with_capacity(users.len() + groups.len());
        for (i, u) in users.iter().enumerate() {
            let parents = HashSet::from([groups[w.group[i] as usize].clone()]);
            all.push(Entity::new_no_attrs(u.clone(), parents));
        }
        for g in &groups {
            all.push(Entity::new_no_attrs(g.clone(), HashSet::new()));
        }
        let entities = Entities::from_entities(all, None)?;
        let resources = PRODUCTS.iter().map(|p| uid("Product", p)).collect::<Result<_, _>>()?;
        Ok(Cedar {
            policies,
            entities,
            users,
            action: uid("Action", "spend")?,
            resources,
            authorizer: Authorizer::new(),
        })
    }

    fn allowed(&self, w: &World, r: Req) -> anyhow::Result<bool> {
        let i = r.user;
        let g = w.group[i] as usize;
        let context = Context::from_pairs([
            ("amount".to_string(), RestrictedExpression::new_long(r.micros)),
            ("limit".to_string(), RestrictedExpression::new_long(w.limit[i])),
            ("used".to_string(), RestrictedExpression::new_long(w.used[i])),
            ("cap".to_string(), RestrictedExpression::new_long(w.cap[i])),
            ("cap_used".to_string(), RestrictedExpression::new_long(w.cap_used[i])),
            ("pool_used".to_string(), RestrictedExpression::new_long(w.pool_used[g])),
        ])?;
        let req = Request::new(
            self.users[i].clone(),
            self.action.clone(),
            self.resources[r.product].clone(),
            context,
            None,
        )?;
        let resp = self.authorizer.is_authorized(&req, &self.policies, &self.entities);
        Ok(resp.decision() == Decision::Allow)
    }
}

/// Rego: one `allow` body per rule, membership in `data`, usage and limits in `input`.
fn rego(w: &World, rules: usize) -> anyhow::Result<regorus::Engine> {
    let mut src = String::from("package budgit\n\nimport rego.v1\n\ndefault allow := false\n\n");
    for g in 0..rules {
        let _ = writeln!(
            src,
            "allow if {{\n  data.groups[input.user] == \"g{g}\"\n  input.amount <= input.limit - input.used\n  \
             not over_cap\n  input.amount <= {pool} - input.pool_used\n}}\n",
            pool = w.pool[g],
        );
    }
    let _ = writeln!(
        src,
        "over_cap if {{\n  input.product == \"{}\"\n  input.amount > input.cap - input.cap_used\n}}",
        PRODUCTS[CAPPED]
    );
    let mut engine = regorus::Engine::new();
    engine.add_policy("budgit.rego".to_string(), src)?;
    let mut data = String::from("{\"groups\":{");
    for (i, e) in w.emails.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(data, "{sep}\"{e}\":\"g{}\"", w.group[i]);
    }
    data.push_str("}}");
    engine.add_data_json(&data)?;
    Ok(engine)
}

fn rego_allowed(engine: &mut regorus::Engine, w: &World, r: Req) -> anyhow::Result<bool> {
    let i = r.user;
    let g = w.group[i] as usize;
    let mut input = regorus::Value::new_object();
    let obj = input.as_object_mut()?;
    obj.insert("user".into(), r.name.into());
    obj.insert("product".into(), PRODUCTS[r.product].into());
    obj.insert("amount".into(), r.micros.into());
    obj.insert("limit".into(), w.limit[i].into());
    obj.insert("used".into(), w.used[i].into());
    obj.insert("cap".into(), w.cap[i].into());
    obj.insert("cap_used".into(), w.cap_used[i].into());
    obj.insert("pool_used".into(), w.pool_used[g].into());
    engine.set_input(input);
    Ok(engine.eval_rule("data.budgit.allow".to_string())? == regorus::Value::from(true))
}

/// p50 per call over batches of `batch` calls, within `budget` (at least 9 batches).
fn p50(reqs: &[Req], batch: usize, budget: Duration, mut f: impl FnMut(usize, Req) -> bool) -> Duration {
    let mut per_call = Vec::new();
    let start = Instant::now();
    let mut k = 0usize;
    while per_call.len() < 9 || (start.elapsed() < budget && per_call.len() < 100_000) {
        let t = Instant::now();
        for _ in 0..batch {
            std::hint::black_box(f(k, reqs[k % reqs.len()]));
            k += 1;
        }
        per_call.push(t.elapsed() / batch as u32);
    }
    per_call.sort_unstable();
    per_call[per_call.len() / 2]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ns(d: Duration) -> String {
    let n = d.as_secs_f64() * 1e9;
    if n < 1000.0 { format!("{n:.0} ns") } else { format!("{:.2} µs", n / 1e3) }
}

/// Runs W2 for each rule count.
pub fn run(args: &Args, runs: usize) -> anyhow::Result<()> {
    let budget = Duration::from_millis(args.budget_ms);
    for &rules in &args.rules {
        let w = world(args.users, rules.max(1));
        let draws = draws(&w, 10_000);
        let names: String = draws.iter().map(|d| w.emails[d.0].as_str()).collect();
        let reqs = requests(&draws, &names, &w);
        let cols = Columns::new(&w);
        let mut led = ledger(&w);
        let cedar = Cedar::new(&w, rules.max(1))?;
        let mut engine = rego(&w, rules.max(1))?;

        // every engine must reach the same decisions before any is timed
        let mut allowed = 0;
        for (k, r) in reqs.iter().take(500).enumerate() {
            let a = cols.allowed(r.name, r.product, r.micros);
            let b = ledger_check(&mut led, *r);
            let c = cedar.allowed(&w, *r)?;
            let d = rego_allowed(&mut engine, &w, *r)?;
            if (a, a, a) != (b, c, d) {
                bail!("W2: engines disagree on request {k}: columns {a}, ledger {b}, cedar {c}, rego {d}");
            }
            allowed += usize::from(a);
        }
        eprintln!("W2: rules={rules}: 500 sample requests agree ({allowed} allowed)");

        let (mut t_cols, mut t_led, mut t_cedar, mut t_rego) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs.max(1) + 1 {
            t_cols.push(p50(&reqs, 1000, budget, |_, r| cols.allowed(r.name, r.product, r.micros)));
            t_led.push(p50(&reqs, 200, budget, |_, r| ledger_check(&mut led, r)));
            t_cedar.push(p50(&reqs, 20, budget, |_, r| cedar.allowed(&w, r).unwrap_or(false)));
            t_rego.push(p50(&reqs, 20, budget, |_, r| rego_allowed(&mut engine, &w, r).unwrap_or(false)));
        }
        // the first round is the warm-up
        let pick = |v: &mut Vec<Duration>| median(v.split_off(1));
        let (c, l, ce, re) = (pick(&mut t_cols), pick(&mut t_led), pick(&mut t_cedar), pick(&mut t_rego));
        let n = runs.max(1);
        for (name, ours) in [("budgit", l), ("budgit-decide", c)] {
            for (peer, theirs) in [("cedar", ce), ("regorus", re)] {
                let x = theirs.as_secs_f64() / ours.as_secs_f64().max(1e-12);
                println!(
                    "W2 {name} {} / {peer} {} = {x:.0}x faster (rules={rules}, p50, median of {n})",
                    ns(ours),
                    ns(theirs)
                );
            }
        }
    }
    Ok(())
}
