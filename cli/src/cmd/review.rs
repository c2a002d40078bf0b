//! `budgit review`: every override with its status and days left, and the drift a
//! reviewer should look at (overrides renewed back to back, or in force longer than
//! the review period), found through the repository's history.

use std::fmt::Write as _;

use budgit_engine::review::{OverrideView, Review, ReviewOutput, Status as OverrideStatus, list, review};

use super::Status;
use super::flags::{HistoryArgs, Walk};
use crate::render;

/// How to print a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReviewFormat {
    /// For a terminal.
    Text,
    /// `{"ref", "overrides": [...], "review": {...}}`.
    Json,
}

/// Review the overrides: where each stands, and which have quietly become permanent.
///
/// Lists every override at the revision with its status (active, upcoming, expired)
/// and the days left, counted in the Workspace's time zone at `--now`. Then walks the
/// repository's history: a person whose overrides follow each other (the next one
/// starting at most a day after the previous one expired), counting the ones removed
/// since, is flagged when the run holds `overrides.review_renewals` overrides or more
/// (default 3), or has lasted longer than `overrides.review_after_days` (default 90)
/// and still holds one in force or upcoming. Exit status: 0 nothing to review, 1
/// flagged overrides, 2 usage, git or I/O error.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit review --now 2026-12-07T12:00:00Z     the overrides of HEAD on Dec 7, 2026
  budgit review --ref origin/main --format json")]
#[command(
    mut_arg("git_ref", |a| a.help("The revision reviewed (its history is walked too)")),
    mut_arg("now", |a| a.help("The instant of the review (RFC 3339); defaults to the current time"))
)]
pub struct Args {
    #[command(flatten)]
    walk: HistoryArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReviewFormat::Text)]
    format: ReviewFormat,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    budgit_engine::stack::with_large_stack(move || run_here(args))
        .map_err(|e| anyhow::anyhow!("review could not run: {e}"))?
}

fn run_here(args: Args) -> anyhow::Result<Status> {
    let Walk { git, dir, rev, now } = args.walk.open()?;
    let rev = rev.as_str();
    let read = git.read_policies(rev, &dir)?;
    let (set, _) = budgit_engine::load::load_sources(read.sources);
    let overrides = list(&set, now);
    let found = review(&git, rev, &dir, now)?;
    let text = match args.format {
        ReviewFormat::Json => {
            let output = ReviewOutput { git_ref: rev, overrides: &overrides, review: &found };
            serde_json::to_string_pretty(&output)? + "\n"
        }
        ReviewFormat::Text => text(rev, &dir, &overrides, &found),
    };
    render::emit(&text)?;
    Ok(if found.findings.is_empty() { Status::Clean } else { Status::Findings })
}

fn in_repo(dir: &str, file: &str) -> String {
    if dir.is_empty() { file.to_owned() } else { format!("{dir}/{file}") }
}

fn text(rev: &str, dir: &str, overrides: &[OverrideView], review: &Review) -> String {
    let mut o = String::new();
    let count = |s: OverrideStatus| overrides.iter().filter(|v| v.status == s).count();
    let _ = writeln!(
        o,
        "overrides at `{rev}` ({}): {} active, {} upcoming, {} expired",
        review.commit.get(..12).unwrap_or(&review.commit),
        count(OverrideStatus::Active),
        count(OverrideStatus::Upcoming),
        count(OverrideStatus::Expired),
    );
    for v in overrides {
        let days = |n: i64| if n == 1 { "1 day".to_owned() } else { format!("{n} days") };
        let when = match v.status {
            OverrideStatus::Active => format!("{} left", days(v.days_left)),
            OverrideStatus::Upcoming => format!("starts in {}", days(v.starts_in.unwrap_or(0))),
            OverrideStatus::Expired => format!("expired {} ago", days(-v.days_left)),
        };
        let _ = writeln!(
            o,
            "  {:<9} {:<20} {:<30} {:<28} {}:{}",
            v.status.as_str(),
            when,
            v.name,
            v.user,
            in_repo(dir, &v.file),
            v.line
        );
    }
    let _ = writeln!(
        o,
        "\nreview (renewed {} times or more back to back, or in force more than {} days):",
        review.review_renewals, review.review_after_days
    );
    if review.findings.is_empty() {
        let _ = writeln!(o, "  nothing to review");
    }
    for f in &review.findings {
        let _ = writeln!(
            o,
            "  {}: {} ({}) {}:{}",
            f.user,
            f.name,
            f.status.as_str(),
            in_repo(dir, &f.file),
            f.line
        );
        for r in &f.reasons {
            let _ = writeln!(o, "    {}: {}", r.code, r.message);
        }
    }
    o
}
