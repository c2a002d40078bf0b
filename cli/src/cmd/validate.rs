//! `budgit validate`: the CI gate. Flags → [`validate_dir`] → a renderer.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context;
use budgit_engine::input::read_directory;
use budgit_engine::load::files::ReadError;
use budgit_engine::validate::{ValidateOptions, Validated, check_people, validate_dir};

use super::Status;
use crate::render::{self, DiagContext};

/// Check policies: schema, semantics, CEL and guardrails.
///
/// Every finding is reported, not only the first. With `--directory`, the people the
/// policies name are looked up in it (bad directory rows are listed on stderr). Exit
/// status: 0 clean (warnings allowed), 1 errors, 2 unreadable policy directory,
/// unreadable directory file or bad flags.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit validate                                   check `policies/`
  budgit validate --policies policies --format github     annotations in a workflow
  budgit validate --format sarif > budgit.sarif     for code scanning
  budgit validate --now 2026-11-27T12:00:00Z        reproducible (expiry warnings)
  budgit validate --directory examples/directory.csv --strict   people named must exist")]
pub struct Args {
    /// The policy directory.
    #[arg(long, default_value = "policies", value_name = "DIR")]
    policies: PathBuf,
    /// The instant to validate at (RFC 3339); defaults to the current time.
    #[arg(long, value_name = "TS", value_parser = render::parse_now)]
    now: Option<chrono::DateTime<chrono::Utc>>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = render::DiagFormat::Human)]
    format: render::DiagFormat,
    /// Validate the policy directory as committed at this revision (branch, tag, commit)
    /// instead of the working tree; findings name the commit.
    #[arg(long = "ref", value_name = "REF")]
    git_ref: Option<String>,
    /// The directory of users (CSV or JSON Lines): an override `user` or a group
    /// `members`/`exclude` entry that is not in it is a finding (a warning; an error with `--strict`).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
    /// With `--directory`: people who are not in the directory are errors, not warnings.
    #[arg(long, requires = "directory")]
    strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let options = ValidateOptions { now: args.now.unwrap_or_else(chrono::Utc::now) };
    let mut validated = match &args.git_ref {
        Some(rev) => super::plan::validate_at(&args.policies, rev, &options)?,
        None => validate_working_tree(&args, &options)?,
    };
    // Without a single workspace the directory's attributes are unknown, and the
    // report already has the error that says so.
    if let (Some(path), Some(workspace)) = (&args.directory, validated.policies.workspace()) {
        let (dir, rows) = read_directory(path, &workspace.doc.attributes)?;
        super::resolve::report_input_findings(&rows);
        check_people(&validated.policies, &validated.rejected, &dir, args.strict, &mut validated.report);
        validated.report.sort();
    }
    let context =
        DiagContext { policies: &validated.policies, root: &args.policies, color: render::stdout_color() };
    render::emit(&render::diagnostics(args.format, &context, &validated.report))?;
    Ok(if validated.report.has_errors() { Status::Findings } else { Status::Clean })
}

fn validate_working_tree(args: &Args, options: &ValidateOptions) -> anyhow::Result<Validated> {
    Ok(match validate_dir(&args.policies, options) {
        Ok(validated) => validated,
        Err(error @ ReadError::Dir { .. }) if !args.policies.is_dir() => {
            anyhow::bail!("{error}\nhelp: point `--policies` at the directory that holds the policy files")
        }
        Err(error) => return Err(error.into()),
    })
}

/// Prints the findings of invalid policies on stderr, as `validate` renders them; true
/// when there were errors, so the command stops (exit 1) instead of working on a partial
/// policy set.
pub fn refuse_invalid(validated: &Validated, root: &std::path::Path) -> bool {
    if !validated.report.has_errors() {
        return false;
    }
    let context = DiagContext {
        policies: &validated.policies,
        root,
        color: render::stdout_color() && std::io::stderr().is_terminal(),
    };
    eprint!("{}", render::diagnostics(render::DiagFormat::Human, &context, &validated.report));
    true
}

/// The policies of the working tree, or as committed at `git_ref` when given: the one
/// way every command that reads policies honours `--ref`.
pub fn policies_at(
    policies: &std::path::Path,
    git_ref: Option<&str>,
    options: &ValidateOptions,
) -> anyhow::Result<Validated> {
    match git_ref {
        Some(rev) => super::plan::validate_at(policies, rev, options),
        None => validate_dir(policies, options)
            .with_context(|| format!("cannot read policies from `{}`", policies.display())),
    }
}
