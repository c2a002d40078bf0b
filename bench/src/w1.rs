//! W1: the status sweep — every user's effective limit (default, CEL groups,
//! overrides), period usage, caps and status — for 100k users, 30M usage rows, 200
//! groups and 2,000 overrides.
//!
//! Measured in memory (rows loaded, resolve + evaluate only) against DuckDB running
//! the status query over tables it has loaded, and against a hand-written Rust loop
//! (the floor); and end to end (`budgit evaluate` as a release process reading the
//! CSV) against DuckDB reading the same CSV inside its query, at each `--threads`
//! count (`budgit evaluate --threads N` against DuckDB's `SET threads = N`). DuckDB joins the
//! limits budgit resolved (written to `limits.csv`), so both classify the same
//! limits; budgit also applies pools and caps, which the SQL leaves out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use budgit_engine::evaluate::{EvaluateOptions, evaluate};
use budgit_engine::r#gen::{Spec, generate};
use budgit_engine::input::{read_directory, read_usage_files};
use budgit_engine::resolve::resolve;
use budgit_engine::standing::Status;
use budgit_engine::usage_table::day_number;
use budgit_engine::validate::{ValidateOptions, validate_dir};

use crate::measure;

/// Sizes and tools.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users in the directory.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Group documents.
    #[arg(long, default_value_t = 200)]
    groups: usize,
    /// Override documents.
    #[arg(long, default_value_t = 2000)]
    overrides: usize,
    /// Usage rows.
    #[arg(long, default_value_t = 30_000_000)]
    rows: u64,
    /// The instant evaluated (RFC 3339); the data ends on its day.
    #[arg(long, default_value = "2026-11-27T17:00:00Z")]
    now: String,
    /// The release `budgit` binary for the end-to-end run.
    #[arg(long, default_value = "target/release/budgit")]
    budgit: PathBuf,
    /// The Python with `duckdb` installed (`bench/setup.sh` creates it).
    #[arg(long, default_value = "bench/.venv/bin/python")]
    python: PathBuf,
    /// Thread counts to run both at, in the same run: `budgit evaluate --threads N`
    /// against DuckDB's `SET threads = N`, a ratio per count.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Time only budgit's in-memory sweep (resolve and evaluate apart, then both) and
    /// the hand-written loop: no DuckDB, no end-to-end run.
    #[arg(long)]
    in_memory_only: bool,
}

/// Generates the data once per spec (kept under `root`, reused while the spec is the same).
fn data(root: &Path, args: &Args, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<PathBuf> {
    let spec = Spec {
        users: args.users,
        groups: args.groups,
        overrides: args.overrides,
        days: 31,
        seed: 1,
        rows: Some(args.rows),
        now,
    };
    let out = root.join(format!("w1-{}-{}", args.users, args.rows));
    let marker = out.join("spec.txt");
    let want = format!("{spec:?}\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(want.as_str()) {
        return Ok(out);
    }
    eprintln!("W1: generating {} users and {} rows into `{}`", args.users, args.rows, out.display());
    let started = std::time::Instant::now();
    let summary = generate(&spec, &out, true, &mut |_| {})?;
    eprintln!(
        "W1: generated in {:.1} s; expected status mix {:?}",
        started.elapsed().as_secs_f64(),
        summary.expected
    );
    std::fs::write(&marker, want)?;
    Ok(out)
}

/// What the DuckDB script prints.
struct Duck {
    end_to_end: Duration,
    in_memory: Duration,
    status: serde_json::Value,
}

fn duckdb(
    args: &Args,
    usage: &Path,
    limits: &Path,
    start: &str,
    end: &str,
    threads: usize,
    runs: usize,
) -> anyhow::Result<Duck> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("duckdb/w1.py");
    let out = Command::new(&args.python)
        .arg(script)
        .args(["--usage", &usage.to_string_lossy(), "--limits", &limits.to_string_lossy()])
        .args([
            "--start",
            start,
            "--end",
            end,
            "--threads",
            &threads.to_string(),
            "--runs",
            &runs.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run `{}` (run bench/setup.sh first)", args.python.display()))?;
    if !out.status.success() {
        bail!("the DuckDB script failed");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let secs = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).map(Duration::from_secs_f64);
    Ok(Duck {
        end_to_end: secs("end_to_end").context("no end_to_end time")?,
        in_memory: secs("in_memory").context("no in_memory time")?,
        status: v.get("status").cloned().unwrap_or_default(),
    })
}

/// Runs W1.
pub fn run(root: &Path, args: &Args, runs: usize) -> anyhow::Result<()> {
    let now: chrono::DateTime<chrono::Utc> =
        chrono::DateTime::parse_from_rfc3339(&args.now).context("bad --now")?.into();
    let out = data(root, args, now)?;
    let (policies_dir, directory_path, usage_path) =
        (out.join("policies"), out.join("directory.csv"), out.join("usage.csv"));

    let validated = validate_dir(&policies_dir, &ValidateOptions { now })?;
    if validated.report.has_errors() {
        bail!("the generated policies do not validate");
    }
    let policies = &validated.policies;
    let workspace = policies.workspace().context("no workspace")?;
    let (dir, _) = read_directory(&directory_path, &workspace.doc.attributes)?;
    let first = resolve(policies, &dir, now)?;
    let max_threads = args.threads.iter().copied().max().unwrap_or(1).max(1);
    let (table, findings) =
        read_usage_files(std::slice::from_ref(&usage_path), &dir, first.timezone, max_threads, |_, _| {})?;
    eprintln!("W1: {} users, {} rows loaded, {} input findings", dir.len(), table.len(), findings.len());

    if args.in_memory_only {
        let (t, r) = measure::median(runs, || resolve(policies, &dir, now));
        r?;
        eprintln!("W1: resolve alone {}", measure::human(t));
        let (t, r) = measure::median(runs, || {
            evaluate(policies, &dir, &first, &table, EvaluateOptions::default()).map(|e| e.users.len())
        });
        r?;
        eprintln!("W1: evaluate alone {}", measure::human(t));
    }

    // In memory: resolve + evaluate on loaded rows.
    let (ours, counts) = measure::median(runs, || -> anyhow::Result<[usize; 3]> {
        let resolution = resolve(policies, &dir, now)?;
        let evaluation = evaluate(policies, &dir, &resolution, &table, EvaluateOptions::default())?;
        let mut c = [0; 3];
        for u in &evaluation.users {
            c[match u.status {
                Status::Ok => 0,
                Status::Warning => 1,
                Status::Exceeded => 2,
            }] += 1;
        }
        Ok(c)
    });
    let counts = counts?;
    eprintln!(
        "W1: budgit status ok {} / warning {} / exceeded {} (pools and caps included)",
        counts[0], counts[1], counts[2]
    );

    // The floor: one pass over the compact rows, then the same classification as the SQL.
    let limits: Vec<i64> = first.users.iter().map(|r| r.limit.credits.micros()).collect();
    let (start, end) = (day_number(first.period.start_date), day_number(first.period.end_date));
    let (floor, floor_counts) = measure::median(runs, || {
        let mut used = vec![0i64; limits.len()];
        for i in 0..table.len() {
            let (u, d) = (table.user[i] as usize, table.day[i]);
            if d >= start && d < end && u < used.len() {
                used[u] += table.micros[i];
            }
        }
        let mut c = [0usize; 3];
        for (u, l) in used.iter().zip(&limits) {
            c[if u >= l {
                2
            } else if u * 100 >= l * 80 {
                1
            } else {
                0
            }] += 1;
        }
        c
    });
    eprintln!(
        "W1: totals-only status ok {} / warning {} / exceeded {}",
        floor_counts[0], floor_counts[1], floor_counts[2]
    );

    if args.in_memory_only {
        measure::ratio("W1 in memory", ours, "rust loop", floor, runs);
        return Ok(());
    }

    // Limits for DuckDB, from budgit's resolution.
    let limits_path = out.join("limits.csv");
    let mut text = String::from("user,credits\n");
    for r in &first.users {
        let _ = writeln!(text, "{},{}", dir.users[r.user].email, r.limit.credits);
    }
    std::fs::write(&limits_path, text)?;
    let (s, e) = (first.period.start_date.to_string(), first.period.end_date.to_string());

    // End to end: the release binary as a process reading on `threads` threads, and
    // pinned to one core when that is one, as DuckDB's single thread is.
    let budgit_run = |threads: usize| -> anyhow::Result<()> {
        let mut cmd = if threads == 1 {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&args.budgit);
            c
        } else {
            Command::new(&args.budgit)
        };
        let status = cmd
            .arg("evaluate")
            .args([
                "--policies",
                &policies_dir.to_string_lossy(),
                "--directory",
                &directory_path.to_string_lossy(),
            ])
            .args(["--usage", &usage_path.to_string_lossy(), "--now", &args.now, "--format", "json"])
            .args(["--threads", &threads.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("cannot run `{}`", args.budgit.display()))?;
        if !status.success() {
            bail!("`budgit evaluate` failed: {status}");
        }
        Ok(())
    };

    for &threads in &args.threads {
        let duck = duckdb(args, &usage_path, &limits_path, &s, &e, threads, runs)?;
        eprintln!("W1: duckdb ({threads} thread) status {}", duck.status);
        let (e2e, r) = measure::median(runs, || budgit_run(threads));
        r?;
        let tag = if threads == 1 { String::new() } else { format!(" {threads} threads") };
        measure::ratio(&format!("W1 in memory{tag}"), ours, "duckdb", duck.in_memory, runs);
        measure::ratio(&format!("W1 end to end{tag}"), e2e, "duckdb", duck.end_to_end, runs);
    }
    measure::ratio("W1 in memory", ours, "rust loop", floor, runs);
    Ok(())
}
