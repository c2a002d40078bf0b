//! `budgit gen`: a deterministic synthetic organisation — directory, policies and
//! usage — of any size, for demos, tests and benchmarks.
//!
//! The same seed and `now` give byte-identical files: the generator carries its
//! own PRNG ([`rng`]) and iterates nothing in hash order. Each kind of data draws
//! from its own stream, so changing the row count leaves the directory and the
//! group rules as they were. Output is written with buffered writers and usage is
//! streamed, so tens of millions of rows take seconds and little memory.
//!
//! The generator does not call the rest of the engine: it writes files that
//! `validate`, `resolve` and `evaluate` then read like any other input.

pub mod org;
pub mod policies;
pub mod rng;
pub mod usage;

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

pub use org::{Attr, GroupRule, Person, Predicate};
pub use policies::{GenPolicy, Mix};
use rng::Rng;
use usage::UsagePlan;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Users in the directory.
    pub users: usize,
    /// Group documents (one file each).
    pub groups: usize,
    /// Override documents (one file each).
    pub overrides: usize,
    /// Days of usage, ending on the day of `now`.
    pub days: u32,
    /// The seed.
    pub seed: u64,
    /// Usage rows; `None` for ten per user and day.
    pub rows: Option<u64>,
    /// The instant the organisation is generated for (usage ends on its day).
    pub now: DateTime<Utc>,
}

impl Spec {
    /// The number of usage rows to write.
    pub fn row_count(&self) -> u64 {
        self.rows.unwrap_or(self.users as u64 * u64::from(self.days) * 10)
    }
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// An output file could not be written.
    #[error("cannot write `{path}`: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The output already holds policies that would mix with the new ones.
    #[error("`{0}` already holds policy files")]
    NotEmpty(PathBuf),
    /// The workspace time zone is unknown (a bug in the generator).
    #[error("unknown time zone `{0}`")]
    TimeZone(String),
}

/// A step the generator reports while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The directory is written.
    Directory(usize),
    /// Usage rows written so far, and the total.
    Usage(u64, u64),
    /// Policy files written so far, and the total.
    Policies(usize, usize),
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Users written.
    pub users: usize,
    /// Group files written.
    pub groups: usize,
    /// Groups whose selector uses an operator outside the common set.
    pub complex_selectors: usize,
    /// Overrides written: active, future and expired at `now`.
    pub overrides: (usize, usize, usize),
    /// Usage rows written.
    pub rows: u64,
    /// The first and last usage day.
    pub days: (NaiveDate, NaiveDate),
    /// The first day of the period containing `now`.
    pub period_start: NaiveDate,
    /// The status mix the generated limits should give at `now`.
    pub expected: Mix,
}

/// The generated people and group rules, without writing anything (for benchmarks and tests).
pub fn organisation(spec: &Spec) -> (Vec<Person>, Vec<GroupRule>) {
    let mut rng = Rng::new(spec.seed, 1);
    let people = org::people(&mut rng, spec.users);
    let mut rng = Rng::new(spec.seed, 2);
    let rules = org::groups(&mut rng, spec.groups, &people);
    (people, rules)
}

/// Writes `directory.csv`, `usage.csv` and `policies/` under `out`.
///
/// Refuses to write into an existing non-empty `policies/` unless `replace` is
/// set, in which case that directory is removed first: stale group files from an
/// earlier run would otherwise silently join the new organisation.
pub fn generate(
    spec: &Spec,
    out: &Path,
    replace: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, GenError> {
    let tz: chrono_tz::Tz =
        policies::TIMEZONE.parse().map_err(|_| GenError::TimeZone(policies::TIMEZONE.to_string()))?;
    let today = spec.now.with_timezone(&tz).date_naive();
    let period_start = today.with_day(1).unwrap_or(today);
    let policy_dir = out.join("policies");
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| GenError::Write { path, source }
    };
    if fs::read_dir(&policy_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        if !replace {
            return Err(GenError::NotEmpty(policy_dir));
        }
        fs::remove_dir_all(&policy_dir).map_err(werr(&policy_dir))?;
    }
    for dir in [out.to_path_buf(), policy_dir.join("groups"), policy_dir.join("overrides")] {
        fs::create_dir_all(&dir).map_err(werr(&dir))?;
    }

    let (people, rules) = organisation(spec);
    let path = out.join("directory.csv");
    write_file(&path, |w| write_directory(w, &people))?;
    progress(Progress::Directory(people.len()));

    let rows = spec.row_count();
    let plan = UsagePlan { rows, days: spec.days.max(1), last_day: today, period_start };
    let path = out.join("usage.csv");
    let mut period_usage = usage::PeriodUsage::default();
    write_file(&path, |w| {
        period_usage =
            usage::write(w, spec.seed, &people, &plan, &mut |n| progress(Progress::Usage(n, rows)))?;
        Ok(())
    })?;

    let complex_selectors = rules.iter().filter(|r| !r.predicate.is_simple()).count();
    let mut rng = Rng::new(spec.seed, 4);
    let policy = policies::plan(&mut rng, &people, rules, &period_usage, spec.overrides, today);
    let total_files = policy.groups.len() + policy.overrides.len() + 2;
    let path = policy_dir.join("workspace.yaml");
    write_file(&path, |w| w.write_all(policies::workspace_yaml(&policy.default).as_bytes()))?;
    let path = policy_dir.join("guardrails.yaml");
    write_file(&path, |w| w.write_all(policies::guardrails_yaml().as_bytes()))?;
    let mut written = 2;
    for group in &policy.groups {
        let path = policy_dir.join("groups").join(format!("{}.yaml", group.rule.name));
        write_file(&path, |w| w.write_all(policies::group_yaml(group, &people).as_bytes()))?;
        written += 1;
        if written % 1000 == 0 {
            progress(Progress::Policies(written, total_files));
        }
    }
    for o in &policy.overrides {
        let path = policy_dir.join("overrides").join(format!("{}.yaml", o.name));
        write_file(&path, |w| w.write_all(policies::override_yaml(o, &people).as_bytes()))?;
        written += 1;
        if written % 1000 == 0 {
            progress(Progress::Policies(written, total_files));
        }
    }
    progress(Progress::Policies(written, total_files));

    let active = policy.overrides.iter().filter(|o| o.starts <= today && today < o.expires).count();
    let future = policy.overrides.iter().filter(|o| o.starts > today).count();
    let first_day = today - chrono::Days::new(u64::from(plan.days - 1));
    Ok(Summary {
        users: people.len(),
        groups: policy.groups.len(),
        complex_selectors,
        overrides: (active, future, policy.overrides.len() - active - future),
        rows,
        days: (first_day, today),
        period_start,
        expected: policies::expected_mix(&policy, &period_usage, today),
    })
}

/// Creates `path` and fills it through a buffered writer.
fn write_file(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>,
) -> Result<(), GenError> {
    let err = |source| GenError::Write { path: path.to_path_buf(), source };
    let file = fs::File::create(path).map_err(err)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    fill(&mut w).map_err(err)?;
    w.flush().map_err(err)
}

/// Writes the directory CSV: `email` and the declared attributes, lists `;`-separated.
fn write_directory(w: &mut impl Write, people: &[Person]) -> io::Result<()> {
    writeln!(w, "email,department,cost_center,title,location,idp_groups")?;
    for p in people {
        // Titles like `Director, Engineering` hold a comma: quote them (RFC 4180).
        let title = if p.title.contains(',') { format!("\"{}\"", p.title) } else { p.title.clone() };
        writeln!(
            w,
            "{},{},{},{},{},{}",
            p.email,
            p.department,
            p.cost_center,
            title,
            p.location,
            p.idp_groups.join(";")
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> Spec {
        Spec {
            users: 400,
            groups: 30,
            overrides: 40,
            days: 31,
            seed,
            rows: Some(20_000),
            now: "2026-11-20T15:00:00Z".parse().unwrap(),
        }
    }

    fn read_all(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                    out.push((rel, fs::read(&path).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn same_seed_gives_identical_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        generate(&spec(42), a.path(), false, &mut |_| {}).unwrap();
        generate(&spec(42), b.path(), false, &mut |_| {}).unwrap();
        generate(&spec(43), c.path(), false, &mut |_| {}).unwrap();
        let (fa, fb, fc) = (read_all(a.path()), read_all(b.path()), read_all(c.path()));
        assert_eq!(fa.len(), 30 + 40 + 4);
        assert_eq!(fa, fb);
        assert_ne!(fa, fc);
    }

    #[test]
    fn refuses_to_mix_with_existing_policies() {
        let dir = tempfile::tempdir().unwrap();
        generate(&spec(1), dir.path(), false, &mut |_| {}).unwrap();
        assert!(matches!(generate(&spec(1), dir.path(), false, &mut |_| {}), Err(GenError::NotEmpty(_))));
        let mut fewer = spec(1);
        fewer.groups = 5;
        generate(&fewer, dir.path(), true, &mut |_| {}).unwrap();
        assert_eq!(fs::read_dir(dir.path().join("policies/groups")).unwrap().count(), 5);
    }

    #[test]
    fn usage_has_the_requested_rows_and_days() {
        let dir = tempfile::tempdir().unwrap();
        let summary = generate(&spec(7), dir.path(), false, &mut |_| {}).unwrap();
        let text = fs::read_to_string(dir.path().join("usage.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "date,user,product,model,credits");
        assert_eq!(lines.len() as u64 - 1, summary.rows);
        assert_eq!(summary.days.1.to_string(), "2026-11-20");
        assert_eq!(summary.days.0.to_string(), "2026-10-21");
        assert_eq!(summary.period_start.to_string(), "2026-11-01");
        for line in &lines[1..] {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 5, "{line}");
            assert!(fields[0] >= "2026-10-21" && fields[0] <= "2026-11-20", "{line}");
            let decimals = fields[4].split('.').nth(1).unwrap().len();
            assert!((2..=4).contains(&decimals), "{line}");
        }
    }

    #[test]
    fn status_mix_is_realistic() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(11);
        s.users = 3000;
        s.rows = Some(200_000);
        let summary = generate(&s, dir.path(), false, &mut |_| {}).unwrap();
        let Mix { ok, warning, exceeded } = summary.expected;
        assert_eq!(ok + warning + exceeded, 3000);
        assert!(ok > 3000 * 6 / 10, "{:?}", summary.expected);
        assert!(warning > 30, "{:?}", summary.expected);
        assert!(exceeded > 10 && exceeded < 3000 / 5, "{:?}", summary.expected);
        let (active, future, expired) = summary.overrides;
        assert!(active > 0 && future > 0 && expired > 0, "{:?}", summary.overrides);
    }
}
