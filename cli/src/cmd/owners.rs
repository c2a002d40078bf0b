//! `budgit owners`: a CODEOWNERS file from the groups' `owners`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use budgit_engine::load::git::GitRepo;
use budgit_engine::owners::codeowners;

use super::Status;
use super::flags::PolicyArgs;
use crate::render;

/// Write CODEOWNERS lines so a change to a group's file needs its owners' review.
///
/// Paths are anchored at the repository root. Prints to stdout unless `--out` is given.
/// The policies (the working tree's, or committed at `--ref`) are validated first, at
/// `--now`: with errors, their findings are printed on stderr, nothing is written and the
/// exit status is 1.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit owners --default-owner @acme/platform --out .github/CODEOWNERS
  budgit owners > CODEOWNERS
  budgit owners --ref origin/main --now 2026-11-27T12:00:00Z   as merged, at a fixed instant")]
pub struct Args {
    // --policies, --ref, --now
    #[command(flatten)]
    policy: PolicyArgs,
    /// Where to write; stdout when absent.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Owners of every policy file no group names (repeatable), e.g. `@acme/platform`.
    #[arg(long = "default-owner", value_name = "OWNER")]
    default_owners: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let policies = &args.policy.policies;
    let validated = args.policy.validate(args.policy.now())?;
    // A document that failed validation is not in the set: writing CODEOWNERS without it
    // would silently drop its owners' review.
    if super::validate::refuse_invalid(&validated, policies) {
        eprintln!("error: the policies have errors: no CODEOWNERS lines were written");
        return Ok(Status::Findings);
    }
    // Paths in CODEOWNERS are relative to the repository root; outside git, to the working directory.
    let dir = match GitRepo::discover(policies).or_else(|_| GitRepo::discover(Path::new("."))) {
        Ok(git) => git.repo_path(policies)?,
        Err(_) => policies.to_string_lossy().trim_start_matches("./").trim_end_matches('/').to_owned(),
    };
    let text = codeowners(&validated.policies, &dir, &args.default_owners);
    match &args.out {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create `{}`", parent.display()))?;
            }
            std::fs::write(path, &text).with_context(|| format!("cannot write `{}`", path.display()))?;
            eprintln!("wrote `{}`", path.display());
        }
        None => render::emit(&text)?,
    }
    Ok(Status::Clean)
}
