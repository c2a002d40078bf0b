//! `budgit validate`: the CI gate. Flags → [`validate_dir`] → a renderer.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use budgit_engine::input::read_directory;
use budgit_engine::load::files::ReadError;
use budgit_engine::validate::{ValidateOptions, Validated, check_people, validate_dir};

use super::Status;
use super::flags::{PolicyArgs, report_input_findings};
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
    // --policies, --ref, --now
    #[command(flatten)]
    policy: PolicyArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = render::DiagFormat::Human)]
    format: render::DiagFormat,
    /// The directory of users (CSV or JSON Lines): an override `user` or a group
    /// `members`/`exclude` entry that is not in it is a finding (a warning; an error with `--strict`).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
    /// With `--directory`: people who are not in the directory are errors, not warnings.
    #[arg(long, requires = "directory")]
    strict: bool,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let options = ValidateOptions { now: args.policy.now() };
    let mut validated = match &args.policy.git_ref {
        Some(rev) => super::plan::validate_at(&args.policy.policies, rev, &options)?,
        None => validate_working_tree(&args.policy.policies, &options)?,
    };
    // Without a single workspace the directory's attributes are unknown, and the
    // report already has the error that says so.
    if let (Some(path), Some(workspace)) = (&args.directory, validated.policies.workspace()) {
        let (dir, rows) = read_directory(path, &workspace.doc.attributes)?;
        report_input_findings(&rows);
        check_people(&validated.policies, &validated.rejected, &dir, args.strict, &mut validated.report);
        validated.report.sort();
    }
    let context = DiagContext {
        policies: &validated.policies,
        root: &args.policy.policies,
        color: render::stdout_color(),
    };
    render::emit(&render::diagnostics(args.format, &context, &validated.report))?;
    Ok(if validated.report.has_errors() { Status::Findings } else { Status::Clean })
}

fn validate_working_tree(policies: &Path, options: &ValidateOptions) -> anyhow::Result<Validated> {
    Ok(match validate_dir(policies, options) {
        Ok(validated) => validated,
        Err(error @ ReadError::Dir { .. }) if !policies.is_dir() => {
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
