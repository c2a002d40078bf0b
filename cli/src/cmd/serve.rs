//! `budgit serve`: the workspace API over an embedded SQLite database.

use std::path::PathBuf;

use super::Status;

/// Run the workspace service: applied limits, usage, spend checks, the Costs API.
///
/// State lives in one SQLite file; acknowledged writes survive a crash. The admin
/// token comes from `BUDGIT_ADMIN_TOKEN`, or is generated at first start and printed
/// once. The API is described at `/openapi.json`. Every input is bounded (one usage
/// amount is at most 1,000,000 credits, a user has at most 1000 open reservations,
/// …); past a bound the answer is a 4xx with a stable code (see docs/serve.md).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit serve --db budgit.db --listen 127.0.0.1:8080
  BUDGIT_ADMIN_TOKEN=... budgit serve --policies policies
  budgit serve --policies policies --repo . --approved-ref origin/main
  budgit serve --demo                          a demo organisation with live activity
  budgit serve --demo --users 100000 --seed 7  a large one")]
pub struct Args {
    /// The SQLite database file (created when missing) [default: budgit.db; with
    /// `--demo`, in the demo's data directory].
    #[arg(long)]
    db: Option<PathBuf>,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// A policy directory: its Workspace types directory attributes and sets the period.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// The policy repository (git work tree or bare repository) the console reads groups
    /// from and writes proposals to, as branches; its `policies/` directory when it has one.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// The approved revision of `--repo` (what the reconciler applies); proposals branch from it.
    #[arg(long, value_name = "REF", default_value = "HEAD", requires = "repo")]
    approved_ref: String,
    /// The admin token (prefer the environment variable: flags show in process lists).
    #[arg(long = "admin-token", env = "BUDGIT_ADMIN_TOKEN", hide_env_values = true, hide = true)]
    admin_token: Option<String>,
    /// Run a demo: a policy repository, generated users, simulated ChatGPT and Codex
    /// activity and the reconciler every few seconds (`--policies`, default `./policies`
    /// when present, else the example organisation built in).
    #[arg(long)]
    demo: bool,
    /// With `--demo`: how many users to generate.
    #[arg(long, default_value_t = 3000, requires = "demo")]
    users: usize,
    /// With `--demo`: the seed of the generated users and usage.
    #[arg(long, default_value_t = 1, requires = "demo")]
    seed: u64,
}

/// Runs the service until interrupted.
pub fn run(args: Args) -> anyhow::Result<Status> {
    if args.demo {
        budgit_console::demo::run(budgit_console::demo::DemoOptions {
            policies: args.policies,
            users: args.users,
            listen: args.listen,
            db: args.db,
            seed: args.seed,
            admin_token: args.admin_token,
            ..budgit_console::demo::DemoOptions::default()
        })?;
        return Ok(Status::Clean);
    }
    budgit_console::run(budgit_console::Config {
        db: args.db.unwrap_or_else(|| PathBuf::from("budgit.db")),
        listen: args.listen,
        policies: args.policies,
        admin_token: args.admin_token,
        repo: args.repo,
        approved_ref: Some(args.approved_ref),
    })?;
    Ok(Status::Clean)
}
