//! `budgit gen`: writes a deterministic synthetic organisation.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use budgit_engine::r#gen::{Progress, Spec, generate};

use super::Status;
use crate::render;

/// Write a synthetic organisation (directory, policies, usage) for demos, tests and benchmarks.
///
/// The same seed and `--now` give byte-identical files. Writes `DIR/directory.csv`,
/// `DIR/usage.csv` and `DIR/policies/`.
///
/// Example: `budgit gen --users 100000 --groups 200 --overrides 2000 --days 31 --seed 1 --out org`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users in the directory.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    users: usize,
    /// Group documents, one file each (about one in ten with a selector that needs the CEL interpreter).
    #[arg(long, default_value_t = 20, value_name = "G")]
    groups: usize,
    /// Time-boxed overrides, one file each: some active, some future, some expired.
    #[arg(long, default_value_t = 20, value_name = "O")]
    overrides: usize,
    /// Days of usage, ending on the day of `--now`.
    #[arg(long, default_value_t = 31, value_name = "D", value_parser = clap::value_parser!(u32).range(1..=3660))]
    days: u32,
    /// The seed.
    #[arg(long, default_value_t = 1, value_name = "S")]
    seed: u64,
    /// Usage rows in total (default: ten per user and day).
    #[arg(long, value_name = "R")]
    rows: Option<u64>,
    /// The output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Replace `DIR/policies` when it already holds files.
    #[arg(long)]
    force: bool,
    /// The instant to generate for (RFC 3339); defaults to now.
    #[arg(long, value_name = "TS", value_parser = render::parse_now)]
    now: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let spec = Spec {
        users: args.users,
        groups: args.groups,
        overrides: args.overrides,
        days: args.days,
        seed: args.seed,
        rows: args.rows,
        now: args.now.unwrap_or_else(chrono::Utc::now),
    };
    let terminal = std::io::stderr().is_terminal();
    let mut report = |step: Progress| {
        if !terminal {
            return;
        }
        let line = match step {
            Progress::Directory(n) => format!("directory: {n} users"),
            Progress::Usage(done, total) => {
                format!("usage: {done}/{total} rows ({:.0}%)", 100.0 * done as f64 / total.max(1) as f64)
            }
            Progress::Policies(done, total) => format!("policies: {done}/{total} files"),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    };
    let result = generate(&spec, &args.out, args.force, &mut report);
    if terminal {
        eprintln!();
    }
    let summary = result.with_context(|| format!("cannot generate into `{}`", args.out.display()))?;
    let (active, future, expired) = summary.overrides;
    let mix = summary.expected;
    println!(
        "wrote {} users, {} groups ({} with interpreter-only selectors), {} overrides ({active} active, {future} future, {expired} expired), {} usage rows from {} to {} into `{}`",
        summary.users,
        summary.groups,
        summary.complex_selectors,
        active + future + expired,
        summary.rows,
        summary.days.0,
        summary.days.1,
        args.out.display(),
    );
    println!(
        "expected status in the period from {}: {} ok, {} warning, {} exceeded",
        summary.period_start, mix.ok, mix.warning, mix.exceeded
    );
    Ok(Status::Clean)
}
