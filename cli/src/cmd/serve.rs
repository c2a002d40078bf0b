//! `budgit serve`: the workspace API over an embedded SQLite database.

use std::path::PathBuf;

use super::Status;

/// Run the workspace service: applied limits, usage, spend checks, the Costs API.
///
/// State lives in one SQLite file; acknowledged writes survive a crash. The admin
/// token comes from `BUDGIT_ADMIN_TOKEN`, or is generated at first start and printed
/// once. The API is described at `/openapi.json`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit serve --db budgit.db --listen 127.0.0.1:8080
  BUDGIT_ADMIN_TOKEN=... budgit serve --policies policies")]
pub struct Args {
    /// The SQLite database file (created when missing).
    #[arg(long, default_value = "budgit.db")]
    db: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// A policy directory: its Workspace types directory attributes and sets the period.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// The admin token (prefer the environment variable: flags show in process lists).
    #[arg(long = "admin-token", env = "BUDGIT_ADMIN_TOKEN", hide_env_values = true, hide = true)]
    admin_token: Option<String>,
}

/// Runs the service until interrupted.
pub fn run(args: Args) -> anyhow::Result<Status> {
    budgit_console::run(budgit_console::Config {
        db: args.db,
        listen: args.listen,
        policies: args.policies,
        admin_token: args.admin_token,
        repo: None,
        approved_ref: None,
    })?;
    Ok(Status::Clean)
}
