//! `budgit import`: a vendor's current limits as a new policy repository.
//!
//! Flags → the vendor's admin API through the usage pull's client
//! ([`budgit_engine::pull::http::HttpFetch`]) → [`budgit_engine::import`] → the
//! files under `--out`, then validated as `budgit validate` would.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use budgit_engine::import::{self, ImportOptions};
use budgit_engine::pull::http::{HttpFetch, RetryPolicy};
use budgit_engine::validate::ValidateOptions;
use chrono::Utc;

use super::Status;
use crate::render;

/// Write a policy repository that reproduces a vendor's current limits.
///
/// For a team that set limits by hand in the vendor's console and moves them to
/// git: the result validates, and `budgit reconcile --target claude-enterprise`
/// (or `--target openai`) `--dry-run` on it has nothing to do.
///
/// Claude Enterprise (`--workspace https://api.anthropic.com`, key in
/// `ANTHROPIC_API_KEY`): the Workspace's period is the period most limits have; its
/// default is the organisation's limit for it (without one, the amount most
/// members have); every other amount becomes one Group (`groups/limit-<credits>.yaml`)
/// listing the members who have it, one person or many: a vendor limit never ends,
/// and an Override must. Limits of other periods and explicit "no limit" settings
/// cannot be expressed and are listed.
///
/// OpenAI (`--workspace https://api.openai.com/v1`, key in `OPENAI_ADMIN_KEY`): what
/// `reconcile --target openai` writes. The organization's monthly spend limit becomes
/// `vendors.openai.reconcile.org_limit` and the default; each project with a monthly
/// limit a Group (`groups/openai-<project>.yaml`) whose pool is that limit and which
/// names the project, its selector matching nobody until you say who is in it; spend
/// alerts at the same percentages of every limit become the Workspace's `alerts` and
/// their recipients `alert_recipients`. Any other alert is listed (the first
/// reconcile would delete it).
///
/// A credit is one minor unit of the vendor's currency (a cent for `usd`) unless
/// `--credit` says otherwise; the `vendors:` declaration says which. What was not
/// carried over is printed and written as a comment at the top of
/// `policies/workspace.yaml`.
///
/// Exit status: 0 written and valid; 1 written with findings; 2 the vendor could
/// not be read, its limits cannot be written as policies, or `--out` already has policies.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  ANTHROPIC_API_KEY=... budgit import --source claude-enterprise \\
      --workspace https://api.anthropic.com --out acme-limits
  OPENAI_ADMIN_KEY=... budgit import --source openai --workspace https://api.openai.com/v1 \\
      --out acme-limits --name acme
  OPENAI_ADMIN_KEY=... budgit reconcile --target openai --workspace https://api.openai.com/v1 \\
      --ref main --dry-run   # after committing acme-limits/policies on main: nothing to do
  budgit validate --policies acme-limits/policies")]
pub struct Args {
    /// The vendor.
    #[arg(long, value_enum)]
    source: SourceArg,
    /// The vendor API's base URL.
    #[arg(long, value_name = "URL")]
    workspace: String,
    /// The repository to write: its `policies/` directory must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The Workspace's name.
    #[arg(long, default_value = "imported", value_name = "NAME")]
    name: String,
    /// What one credit is worth in the vendor's currency (decimal text); defaults to one minor unit.
    #[arg(long, value_name = "DECIMAL")]
    credit: Option<String>,
    /// Timeout of one call.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = super::reconcile::parse_duration)]
    timeout: Duration,
}

/// `--source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum SourceArg {
    /// Claude Enterprise, through the Anthropic Admin API.
    ClaudeEnterprise,
    /// OpenAI, through its Admin API.
    Openai,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let dir = args.out.join("policies");
    if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!("`{}` already holds files: import into a new directory", dir.display());
    }
    let env = match args.source {
        SourceArg::ClaudeEnterprise => budgit_engine::workspace::claude::KEY_ENV,
        SourceArg::Openai => "OPENAI_ADMIN_KEY",
    };
    let key = std::env::var(env).ok().map(|k| k.trim().to_string()).filter(|k| !k.is_empty());
    let key = key.with_context(|| format!("no key: set `{env}`"))?;
    let mut fetch =
        HttpFetch::new(&args.workspace, key, args.timeout, RetryPolicy::default()).on_retry(|r| {
            eprintln!("{}; retrying in {:.1} s (attempt {})", r.reason, r.wait.as_secs_f64(), r.attempt);
        });
    let opts = ImportOptions { name: args.name.clone(), credit: args.credit.clone() };
    let imported = match args.source {
        SourceArg::ClaudeEnterprise => {
            fetch = fetch.anthropic();
            import::claude(&mut fetch, &opts)?
        }
        SourceArg::Openai => import::openai(&mut fetch, &opts)?,
    };
    for (path, text) in &imported.files {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&file, text).with_context(|| format!("cannot write `{}`", file.display()))?;
    }
    for note in &imported.notes {
        eprintln!("not imported: {note}");
    }
    let validated = super::validate::policies_at(&dir, None, &ValidateOptions { now: Utc::now() })?;
    if !validated.report.diagnostics.is_empty() {
        let context = render::DiagContext { policies: &validated.policies, root: &dir, color: false };
        eprint!("{}", render::diagnostics(render::DiagFormat::Human, &context, &validated.report));
    }
    eprintln!("wrote {} files to `{}`", imported.files.len(), dir.display());
    Ok(if validated.report.has_errors() { Status::Findings } else { Status::Clean })
}
