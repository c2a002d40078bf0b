//! W1r: group resolution — 100k users × 200 CEL selectors — three ways on the same
//! directory: budgit's bulk selectors, `cel` interpreting each selector user by user
//! (the naive baseline), and a hand-written column scan of the common predicates
//! (the floor, for the selectors it can express).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, bail};
use budgit_engine::directory::{AttrValue, Directory, User};
use budgit_engine::r#gen::{Attr, Person, Predicate, Spec, organisation};
use budgit_engine::model::AttributeType;
use budgit_engine::select::{self, Selector};

use crate::measure;

/// Sizes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users in the directory.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Group selectors.
    #[arg(long, default_value_t = 200)]
    groups: usize,
    /// Interpret every Nth user for the per-user `cel` baseline and scale its time by N
    /// (per-user interpretation is linear in users; a full run takes over a minute).
    #[arg(long, default_value_t = 10)]
    cel_sample: usize,
}

/// The generated people as a directory with the workspace's declared attributes.
pub fn directory(people: &[Person]) -> Directory {
    let attributes: BTreeMap<String, AttributeType> = [
        ("cost_center", AttributeType::String),
        ("department", AttributeType::String),
        ("idp_groups", AttributeType::List),
        ("location", AttributeType::String),
        ("title", AttributeType::String),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut dir = Directory::new(&attributes);
    for p in people {
        // In the order of `dir.attributes` (sorted by name).
        let attrs = vec![
            AttrValue::String(p.cost_center.clone()),
            AttrValue::String(p.department.to_string()),
            AttrValue::List(p.idp_groups.clone()),
            AttrValue::String(p.location.to_string()),
            AttrValue::String(p.title.clone()),
        ];
        dir.push(User { email: p.email.clone(), attrs });
    }
    dir
}

/// A directory as interned columns, the way a hand-written scan would hold it.
struct Columns<'d> {
    len: usize,
    strings: [(Vec<u32>, Vec<&'d str>); 4],
    groups: Vec<u128>,
    group_ids: HashMap<&'d str, u32>,
}

fn attr_slot(a: Attr) -> usize {
    match a {
        Attr::CostCenter => 0,
        Attr::Department => 1,
        Attr::Location => 2,
        Attr::Title => 3,
    }
}

impl<'d> Columns<'d> {
    fn build(dir: &'d Directory) -> anyhow::Result<Columns<'d>> {
        let positions = [0usize, 1, 3, 4];
        let mut strings: [(Vec<u32>, Vec<&str>); 4] = Default::default();
        for (slot, &pos) in positions.iter().enumerate() {
            let mut ids: HashMap<&str, u32> = HashMap::new();
            let (col, vocab) = &mut strings[slot];
            col.reserve(dir.users.len());
            for u in &dir.users {
                let v = match &u.attrs[pos] {
                    AttrValue::String(s) => s.as_str(),
                    _ => "",
                };
                let next = vocab.len() as u32;
                let id = *ids.entry(v).or_insert_with(|| {
                    vocab.push(v);
                    next
                });
                col.push(id);
            }
        }
        let mut group_ids: HashMap<&str, u32> = HashMap::new();
        let mut groups = Vec::with_capacity(dir.users.len());
        for u in &dir.users {
            let mut mask = 0u128;
            if let AttrValue::List(list) = &u.attrs[2] {
                for g in list {
                    let next = group_ids.len() as u32;
                    let id = *group_ids.entry(g.as_str()).or_insert(next);
                    if id >= 128 {
                        bail!("more than 128 distinct IdP groups");
                    }
                    mask |= 1 << id;
                }
            }
            groups.push(mask);
        }
        Ok(Columns { len: dir.users.len(), strings, groups, group_ids })
    }

    /// Evaluates a predicate of the common operators into a bitset.
    fn eval(&self, p: &Predicate) -> Vec<u64> {
        let words = self.len.div_ceil(64);
        let scan = |test: &dyn Fn(usize) -> bool| {
            let mut bits = vec![0u64; words];
            for (i, w) in bits.iter_mut().enumerate() {
                let end = ((i + 1) * 64).min(self.len);
                let mut word = 0u64;
                for j in i * 64..end {
                    word |= u64::from(test(j)) << (j - i * 64);
                }
                *w = word;
            }
            bits
        };
        let by_value = |a: Attr, accept: &dyn Fn(&str) -> bool| {
            let (col, vocab) = &self.strings[attr_slot(a)];
            let table: Vec<bool> = vocab.iter().map(|v| accept(v)).collect();
            scan(&|j| table[col[j] as usize])
        };
        match p {
            Predicate::Eq(a, v) => by_value(*a, &|x| x == v),
            Predicate::In(a, vs) => by_value(*a, &|x| vs.iter().any(|v| v == x)),
            Predicate::StartsWith(a, v) => by_value(*a, &|x| x.starts_with(v.as_str())),
            Predicate::InGroups(g) => match self.group_ids.get(g.as_str()) {
                Some(&id) => {
                    let mask = 1u128 << id;
                    scan(&|j| self.groups[j] & mask != 0)
                }
                None => vec![0; words],
            },
            Predicate::And(a, b) => {
                let (x, y) = (self.eval(a), self.eval(b));
                x.iter().zip(&y).map(|(x, y)| x & y).collect()
            }
            Predicate::Or(a, b) => {
                let (x, y) = (self.eval(a), self.eval(b));
                x.iter().zip(&y).map(|(x, y)| x | y).collect()
            }
            Predicate::Not(a) => {
                let mut x: Vec<u64> = self.eval(a).iter().map(|w| !w).collect();
                // Clear the bits past the last user so `count_ones` stays exact.
                if !self.len.is_multiple_of(64)
                    && let Some(last) = x.last_mut()
                {
                    *last &= (1u64 << (self.len % 64)) - 1;
                }
                x
            }
            // Only the common operators are scanned by hand; the caller filters the rest out.
            _ => vec![0; words],
        }
    }
}

fn count(bits: &[u64]) -> usize {
    bits.iter().map(|w| w.count_ones() as usize).sum()
}

/// Runs W1r.
pub fn run(_root: &Path, args: &Args, runs: usize) -> anyhow::Result<()> {
    let spec = Spec {
        users: args.users,
        groups: args.groups,
        overrides: 0,
        days: 31,
        seed: 1,
        rows: Some(0),
        now: chrono::Utc::now(),
    };
    let (people, rules) = organisation(&spec);
    let dir = directory(&people);
    let exprs: Vec<String> = rules.iter().map(|r| r.predicate.to_cel()).collect();
    let simple: Vec<usize> = (0..rules.len()).filter(|&g| rules[g].predicate.is_simple()).collect();
    eprintln!(
        "W1r: {} users, {} selectors ({} of the common operators only)",
        dir.len(),
        exprs.len(),
        simple.len()
    );

    let compile = |which: &[usize]| -> anyhow::Result<Vec<Selector>> {
        which
            .iter()
            .map(|&g| Selector::compile(&exprs[g], &dir.attributes).with_context(|| exprs[g].clone()))
            .collect()
    };
    let all: Vec<usize> = (0..exprs.len()).collect();
    let (ours, matches) = measure::median(runs, || compile(&all).map(|s| select::matches_all(&s, &dir)));
    let matches = matches?;

    // The generator's own evaluation is the independent check of both paths.
    let expected: Vec<usize> =
        rules.iter().map(|r| people.iter().filter(|p| r.predicate.eval(p)).count()).collect();
    let got: Vec<usize> = matches.iter().map(|m| m.count()).collect();
    if got != expected {
        for (g, m) in matches.iter().enumerate().filter(|(g, m)| m.count() != expected[*g]) {
            eprintln!(
                "  `{}`: {} matched, {} expected, {} errors",
                exprs[g],
                m.count(),
                expected[g],
                m.errors().len()
            );
        }
        bail!("bulk selectors disagree with the generator's evaluation");
    }

    let step = args.cel_sample.max(1);
    let sampled: Vec<Person> = people.iter().step_by(step).cloned().collect();
    let sample_dir = directory(&sampled);
    let (cel, interpreted) = measure::median(runs, || {
        exprs
            .iter()
            .map(|e| select::interpret_all(e, &sample_dir).map(|m| m.count()))
            .collect::<Result<Vec<_>, _>>()
    });
    let want: Vec<usize> =
        rules.iter().map(|r| sampled.iter().filter(|p| r.predicate.eval(p)).count()).collect();
    if interpreted? != want {
        bail!("per-user interpretation disagrees with the generator's evaluation");
    }
    // Scaled to the whole directory: the sample is every `step`th user.
    let cel = cel.mul_f64(people.len() as f64 / sample_dir.len().max(1) as f64);
    let name = if step == 1 {
        "cel per-user".to_string()
    } else {
        format!("cel per-user (1/{step} sample, scaled)")
    };
    measure::ratio("W1r", ours, &name, cel, runs);
    println!("W1r speed-up over per-user cel: {:.0}x", cel.as_secs_f64() / ours.as_secs_f64());

    let (ours_simple, _) = measure::median(runs, || compile(&simple).map(|s| select::matches_all(&s, &dir)));
    let (scan, scanned) = measure::median(runs, || {
        Columns::build(&dir)
            .map(|c| simple.iter().map(|&g| count(&c.eval(&rules[g].predicate))).collect::<Vec<_>>())
    });
    let scanned = scanned?;
    if scanned != simple.iter().map(|&g| expected[g]).collect::<Vec<_>>() {
        bail!("the hand-written scan disagrees with the generator's evaluation");
    }
    measure::ratio("W1r common operators", ours_simple, "column scan", scan, runs);
    Ok(())
}
