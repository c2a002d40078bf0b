//! `budgit requests sync`: a vendor's spend-limit increase requests round-tripped
//! through the credit requests of `budgit serve` ([`budgit_engine::increase`]).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use budgit_engine::Credits;
use budgit_engine::increase::{self, SyncOptions, SyncReport};
use budgit_engine::workspace::VendorClient;
use budgit_engine::workspace::claude::{ClaudeWorkspace, KEY_ENV as CLAUDE_KEY_ENV};
use budgit_engine::workspace::http::{HttpWorkspace, TOKEN_ENV};

use super::Status;
use super::reconcile::parse_duration;
use crate::render;

/// How long a sync's lease lasts without renewal; a sync renews it as it goes.
const LEASE_TTL: Duration = Duration::from_secs(60);

/// Credit requests that come from elsewhere.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  ANTHROPIC_API_KEY=... BUDGIT_TOKEN=... budgit requests sync --source claude-enterprise \\
      --vendor https://api.anthropic.com --workspace http://127.0.0.1:8080 --ref main --add 200")]
pub struct Args {
    #[command(subcommand)]
    command: RequestsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RequestsCommand {
    Sync(SyncArgs),
}

/// Round-trip a vendor's spend-limit increase requests through budgit's credit requests.
///
/// Each pending increase request at the vendor becomes a credit request in the
/// `budgit serve` workspace (`--workspace`, token from `BUDGIT_TOKEN`) asking for
/// `--add` credits over `--days`, with the vendor request's id and the member's
/// spend summary in its `context`; a rerun finds it there and creates nothing twice.
/// Review it there: propose it (an Override on a branch) or decline it.
///
/// Once the Override is merged into `--ref` and `budgit reconcile --target
/// claude-enterprise` has applied it (budgit's audit shows the limit written from a
/// commit holding the Override, and the vendor shows that amount live), the vendor
/// request is approved at the applied amount. A declined credit request is denied
/// at the vendor. Every vendor write is audited once in the policy repository
/// (`refs/budgit/audit/claude-enterprise`, with the decline reason); a run killed
/// mid-write is settled by the next one before it decides anything.
///
/// One sync at a time: a sync holds the lease `budgit-requests-sync`, a git ref
/// (`refs/budgit/leases/budgit-requests-sync`) in the policy repository, as the
/// vendor reconciler holds its own, so two syncs cannot both create a credit request
/// for the same vendor request. A second sync started meanwhile fails at once with
/// "lease … is held by …" and does nothing; a sync restarted under the same
/// `--holder` takes its lease back at once, and a lease left by a killed sync lapses
/// after 60 seconds. A dry run writes nothing and takes no lease.
///
/// Exit status: 0 synced (requests may still wait on review, a merge or the
/// reconciler); 1 some vendor writes failed (the next run retries them); 2 the
/// vendor, the workspace or git could not be used.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  ANTHROPIC_API_KEY=... BUDGIT_TOKEN=... budgit requests sync --source claude-enterprise \\
      --vendor https://api.anthropic.com --workspace http://127.0.0.1:8080 --ref main --add 200
  budgit requests sync --source claude-enterprise --vendor $VENDOR --workspace $URL --ref main \\
      --add 200 --dry-run --format json      what would be created, approved and denied")]
pub struct SyncArgs {
    /// Where the increase requests come from.
    #[arg(long, value_enum)]
    source: SourceArg,
    /// The vendor's API base URL (the Anthropic API: `https://api.anthropic.com`); key from `ANTHROPIC_API_KEY`.
    #[arg(long, value_name = "URL")]
    vendor: String,
    /// The `budgit serve` workspace holding the credit requests; token from `BUDGIT_TOKEN`.
    #[arg(long, value_name = "URL", env = "BUDGIT_WORKSPACE")]
    workspace: String,
    /// The approved ref the reconciler applies: an Override is merged when its file is there.
    #[arg(long = "ref", value_name = "REF")]
    git_ref: String,
    /// The policy directory inside the repository (the Workspace's money and period; the audit's repository).
    #[arg(long, default_value = "policies", value_name = "DIR")]
    policies: PathBuf,
    /// Credits each new credit request asks for (the vendor's requests carry no amount).
    #[arg(long, value_name = "N", value_parser = parse_credits)]
    add: Credits,
    /// Days each new credit request asks for.
    #[arg(long, default_value_t = 30, value_name = "D", value_parser = clap::value_parser!(u32).range(1..))]
    days: u32,
    /// Who decides, in the audit.
    #[arg(long, default_value = "budgit-requests-sync", value_name = "NAME")]
    actor: String,
    /// This sync's name on the lease (default: host and process id).
    #[arg(long, value_name = "NAME")]
    holder: Option<String>,
    /// Ask the vendor not to email the member about the decision.
    #[arg(long)]
    suppress_notification: bool,
    /// Write nothing: report what would be created, approved and denied.
    #[arg(long)]
    dry_run: bool,
    /// Timeout of one call (vendor or workspace).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    timeout: Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SourceArg {
    /// Claude Enterprise, through the Anthropic Admin API.
    ClaudeEnterprise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

fn parse_credits(text: &str) -> Result<Credits, String> {
    let credits: Credits = text.parse().map_err(|e| format!("`{text}` is not a number of credits ({e})"))?;
    if credits <= Credits::ZERO {
        return Err(format!("`{text}` must be more than 0 credits"));
    }
    Ok(credits)
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    match args.command {
        RequestsCommand::Sync(args) => sync(args),
    }
}

fn sync(args: SyncArgs) -> anyhow::Result<Status> {
    let SourceArg::ClaudeEnterprise = args.source;
    // The audit lives as refs in the repository that holds the policies.
    let repo = if args.policies.exists() { args.policies.clone() } else { PathBuf::from(".") };
    let client =
        VendorClient::from_env(CLAUDE_KEY_ENV, &args.vendor, &repo, args.timeout, None, args.dry_run)
            .with_context(|| format!("set `{CLAUDE_KEY_ENV}` to an Admin API key of the organisation"))?;
    let vendor = ClaudeWorkspace::new(client);
    let budgit = HttpWorkspace::from_env(&args.workspace, args.timeout)
        .with_context(|| format!("set `{TOKEN_ENV}` to the workspace's admin token"))?;
    let options = SyncOptions {
        add: args.add,
        days: args.days,
        rev: args.git_ref.clone(),
        actor: args.actor.clone(),
        suppress_notification: args.suppress_notification,
        dry_run: args.dry_run,
        holder: args.holder.clone().unwrap_or_else(super::reconcile::default_holder),
        lease_ttl: LEASE_TTL,
    };
    let report = increase::sync(&vendor, &budgit, &args.policies, &options)?;
    let text = match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
        Format::Human => human(&report, &args.git_ref),
    };
    render::emit(&text)?;
    Ok(if report.failed.is_empty() { Status::Clean } else { Status::Findings })
}

fn human(r: &SyncReport, rev: &str) -> String {
    let mut out = String::new();
    let short = r.commit.get(..12).unwrap_or(&r.commit);
    let dry = if r.dry_run { " (dry run: nothing written)" } else { "" };
    let _ = writeln!(out, "requests sync `{rev}` at {short}{dry}");
    let _ = writeln!(
        out,
        "  created {} · approved {} · denied {} · waiting {} · failed {}",
        r.created.len(),
        r.approved.len(),
        r.denied.len(),
        r.waiting.len(),
        r.failed.len()
    );
    for (id, outcome) in &r.recovered {
        let _ = writeln!(out, "  recovered {id}: {outcome} (left open by an earlier run)");
    }
    for c in &r.created {
        let made =
            c.request.map_or_else(|| "would create".to_string(), |id| format!("created request #{id}"));
        let _ = writeln!(out, "+ {}  {made} from {}\n    {}", c.user, c.vendor_request, c.text);
    }
    for d in &r.approved {
        let credits = d.credits.map(|c| format!(" ({c} credits)")).unwrap_or_default();
        let amount = d.amount.as_deref().unwrap_or("");
        let _ = writeln!(
            out,
            "✓ {}  approved {} at {amount}{credits} (request #{})",
            d.user, d.vendor_request, d.request
        );
    }
    for d in &r.denied {
        let why = d.reason.as_deref().unwrap_or("");
        let _ = writeln!(out, "✗ {}  denied {} (request #{}: {why})", d.user, d.vendor_request, d.request);
    }
    for w in &r.waiting {
        let _ =
            writeln!(out, "… {}  {} waits on {} (request #{})", w.user, w.vendor_request, w.on, w.request);
    }
    for id in &r.skipped {
        let _ = writeln!(out, "  skipped {id}: not asked by a member budgit can name");
    }
    for f in &r.failed {
        let _ = writeln!(out, "! {}  {}", f.vendor_request, f.error);
    }
    out
}
