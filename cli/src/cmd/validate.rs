//! `budgit validate`: the CI gate.

use std::path::PathBuf;

use anyhow::Context;
use budgit_engine::validate::{ValidateOptions, validate_dir};

use super::Status;
use crate::render;

/// Check policies: schema, semantics, CEL and guardrails. Exit 0 clean, 1 errors, 2 unreadable.
///
/// Example: `budgit validate --policies policies --format github`
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy directory.
    #[arg(long, default_value = "policies", value_name = "DIR")]
    policies: PathBuf,
    /// The instant to validate at (RFC 3339); defaults to now.
    #[arg(long, value_name = "TS", value_parser = render::parse_now)]
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = render::DiagFormat::Human)]
    format: render::DiagFormat,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let options = ValidateOptions { now: args.now.unwrap_or_else(chrono::Utc::now) };
    let validated = validate_dir(&args.policies, &options)
        .with_context(|| format!("cannot validate `{}`", args.policies.display()))?;
    print!("{}", render::diagnostics(args.format, &validated.policies, &validated.report));
    Ok(if validated.report.has_errors() { Status::Findings } else { Status::Clean })
}
