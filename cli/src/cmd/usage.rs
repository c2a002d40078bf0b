//! `budgit usage pull`: a workspace's Costs API into a usage file `evaluate` and `plan` read.
//!
//! Flags → the policy's Workspace (credit rate, time zone) → the file as it stands
//! ([`budgit_engine::pull::read_existing`]) → [`budgit_engine::pull::pull`] over HTTP
//! → the file rewritten through a temporary file. Progress and retries go to stderr.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use budgit_engine::model::Vendor;
use budgit_engine::pull::http::{HttpFetch, RetryPolicy};
use budgit_engine::pull::{self, PullOptions, Rate, Source};
use budgit_engine::validate::ValidateOptions;
use chrono::{DateTime, NaiveDate, Utc};

use super::Status;
use super::flags::PolicyArgs;

/// Usage recorded by a workspace.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  OPENAI_ADMIN_KEY=... budgit usage pull --source openai --workspace https://api.openai.com/v1 \\
      --since 2026-11-01 --out usage/openai.csv
  BUDGIT_ADMIN_TOKEN=... budgit usage pull --source budgit --workspace http://127.0.0.1:8080 \\
      --since 2026-11-01 --out usage/budgit.csv
  ANTHROPIC_API_KEY=... budgit usage pull --source claude-enterprise \\
      --workspace https://api.anthropic.com --since 2026-11-01 --out usage/claude.csv")]
pub struct Args {
    #[command(subcommand)]
    command: UsageCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UsageCommand {
    Pull(PullArgs),
}

/// Pull daily costs from a workspace's Costs API into a CSV usage file.
///
/// Asks for daily buckets grouped by `user_id`, `line_item` and `project_id` and
/// follows every page. The file (`date,user,product,model,credits,project,id`) is
/// what `evaluate --usage` and `plan --usage` read; each row's `id` is stable, so
/// pulling the same day twice never counts it twice.
///
/// Incremental: when FILE already holds rows, the pull starts again at its last
/// day's bucket (it may have been today, still open) and replaces that bucket's
/// rows; earlier rows are kept as they are and `--since` is not used. The file is
/// written beside FILE and renamed over it, so an interrupted pull leaves FILE as it
/// was; the next run cleans up after it.
///
/// OpenAI reports money: the policy's Workspace must declare what a credit is worth
/// (`vendors: { openai: { currency: usd, credit: "0.01" } }`); the key is read from
/// `OPENAI_ADMIN_KEY` and user ids become emails through the organization's users.
/// A `budgit serve` workspace reports credits and emails; its key is the admin token
/// (`BUDGIT_ADMIN_TOKEN`).
///
/// Claude Enterprise (`--source claude-enterprise`, `--workspace
/// https://api.anthropic.com`) is read from the Admin API's per-user cost report,
/// daily, by product and model, 31 days a call; its amounts are fractional cents of
/// the organisation's currency, converted at `vendors.claude-enterprise` (the same
/// declaration `reconcile --target claude-enterprise` uses). The key is read from
/// `ANTHROPIC_API_KEY`; people are the report's email addresses.
///
/// Exit status: 0 pulled (warnings allowed: unmapped users, rounded conversions);
/// 1 the policies are invalid; 2 the workspace or the file could not be used.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  OPENAI_ADMIN_KEY=... budgit usage pull --source openai --workspace https://api.openai.com/v1 \\
      --since 2026-11-01 --out usage/openai.csv
  ANTHROPIC_API_KEY=... budgit usage pull --source claude-enterprise \\
      --workspace https://api.anthropic.com --since 2026-11-01 --out usage/claude.csv
  budgit evaluate --directory examples/directory.csv --usage usage/openai.csv")]
#[command(mut_arg("now", |a| a.help("The instant to pull up to (RFC 3339); defaults to the current time")))]
pub struct PullArgs {
    /// Where the usage comes from.
    #[arg(long, value_enum)]
    source: SourceArg,
    /// The API's base URL: `https://api.openai.com/v1` for OpenAI, the service's URL for budgit.
    #[arg(long, value_name = "URL")]
    workspace: String,
    /// The first day to pull (UTC) when FILE has no rows yet.
    #[arg(long, value_name = "DATE")]
    since: NaiveDate,
    /// The usage file to create or bring up to date.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    // --policies (the Workspace's credit rate and time zone), --ref, --now
    #[command(flatten)]
    policy: PolicyArgs,
    /// Timeout of one call.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = super::reconcile::parse_duration)]
    timeout: Duration,
    /// Calls per request at most, retries included.
    #[arg(long, default_value_t = 6, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    attempts: u32,
    /// The first backoff after a 5xx or a timeout (doubled each time).
    #[arg(long, default_value = "500ms", value_name = "DURATION", value_parser = super::reconcile::parse_duration)]
    backoff: Duration,
    /// Daily buckets per page (1–180); for `claude-enterprise`, report rows per page (1–1000).
    #[arg(long, default_value_t = 31, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    page_size: u32,
}

/// `--source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SourceArg {
    /// The OpenAI Admin API's Costs API.
    Openai,
    /// A `budgit serve` workspace.
    Budgit,
    /// The Anthropic Admin API's per-user cost report of a Claude Enterprise organisation.
    ClaudeEnterprise,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    match args.command {
        UsageCommand::Pull(args) => pull_usage(args),
    }
}

impl SourceArg {
    /// The engine's source.
    pub fn source(self) -> Source {
        match self {
            SourceArg::Openai => Source::OpenAi,
            SourceArg::Budgit => Source::Budgit,
            SourceArg::ClaudeEnterprise => Source::ClaudeEnterprise,
        }
    }
}

/// The Workspace's time zone and the rate of `source`'s money, from valid policies (the
/// working tree's, or committed at `git_ref`); `None` when the policies have errors (printed).
pub fn money(
    policies: &std::path::Path,
    git_ref: Option<&str>,
    source: Source,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<(chrono_tz::Tz, Rate)>> {
    let validated = super::validate::policies_at(policies, git_ref, &ValidateOptions { now })?;
    if super::validate::refuse_invalid(&validated, policies) {
        return Ok(None);
    }
    let Some(workspace) = validated.policies.workspace() else {
        anyhow::bail!("the policies have no single `Workspace` document");
    };
    let tz = budgit_engine::period::parse_timezone(&workspace.doc.timezone).with_context(|| {
        format!("the Workspace's timezone `{}` is not an IANA zone", workspace.doc.timezone)
    })?;
    let rate = match source {
        Source::OpenAi => Rate::declared(&workspace.doc.vendors, Vendor::OpenAi, source.name())?,
        Source::Budgit => Rate::credits(),
        Source::ClaudeEnterprise => {
            Rate::declared_minor(&workspace.doc.vendors, Vendor::ClaudeEnterprise, source.name())?
        }
    };
    Ok(Some((tz, rate)))
}

fn pull_usage(args: PullArgs) -> anyhow::Result<Status> {
    let now = args.policy.now();
    let source = args.source.source();
    let Some((tz, rate)) = money(&args.policy.policies, args.policy.git_ref.as_deref(), source, now)? else {
        return Ok(Status::Findings);
    };
    let env = source.key_env();
    let key = std::env::var(env).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    let key = key.with_context(|| format!("no key for `{}`: set `{env}`", source.name()))?;

    if source != Source::ClaudeEnterprise && args.page_size > 180 {
        anyhow::bail!("--page-size is at most 180 daily buckets for `{}`", source.name());
    }
    let existing = pull::read_existing(&args.out)?;
    for note in &existing.repaired {
        eprintln!("note: {}: {note}", args.out.display());
    }
    let start = pull::start_of(&existing, args.since);
    let end = now.timestamp();
    if start >= end {
        eprintln!("nothing to pull: `{}` already reaches {now}", args.out.display());
        return Ok(Status::Clean);
    }
    let retry = RetryPolicy { attempts: args.attempts, backoff: args.backoff };
    let mut fetch =
        HttpFetch::new(&args.workspace, key, args.timeout, retry).for_source(source).on_retry(|r| {
            eprintln!("{}; retrying in {:.1} s (attempt {})", r.reason, r.wait.as_secs_f64(), r.attempt);
        });
    let opts = PullOptions { source, start, end, tz, rate, page_size: args.page_size };
    let pulled = pull::pull(&mut fetch, &opts, |p| {
        let through =
            DateTime::from_timestamp(p.through, 0).map(|t| t.date_naive().to_string()).unwrap_or_default();
        eprintln!("page {}: {} rows, through {through}", p.pages, p.rows);
    })?;
    for d in &pulled.findings {
        eprintln!("{}[{}]: {}", d.severity, d.code, d.message);
        if let Some(help) = &d.help {
            eprintln!("  help: {help}");
        }
    }
    pull::write_out(&args.out, &existing.kept, &pulled.rows)?;
    eprintln!(
        "wrote {} rows to `{}` ({} kept, {} pulled from {} buckets in {} pages)",
        existing.kept.len() + pulled.rows.len(),
        args.out.display(),
        existing.kept.len(),
        pulled.rows.len(),
        pulled.buckets,
        pulled.pages,
    );
    Ok(Status::Clean)
}
