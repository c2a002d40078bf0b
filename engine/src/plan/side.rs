//! Reading one side of a plan: the policies at a git revision or in the working
//! tree, validated, and the usage of the period per user.
//!
//! Shared by `plan`, `request` (which plans its branch against its base) and the
//! console; the diff itself stays pure in [`super::plan`].

use std::path::Path;

use crate::Credits;
use crate::load::Source;
use crate::load::files::{self, ReadError};
use crate::load::git::{GitError, GitRepo};
use crate::period::PeriodRange;
use crate::usage::{UsageTable, day_number};
use crate::validate::{ValidateOptions, Validated, validate_sources};

use super::RefLabel;

/// Why a side could not be read (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    /// Git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The working tree's policy directory could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// One side, read and validated.
#[derive(Debug, Clone)]
pub struct LoadedSide {
    /// Which revision.
    pub label: RefLabel,
    /// Its documents and every finding about them.
    pub validated: Validated,
}

/// Reads and validates the policies under `dir` (repository-relative) at `rev`.
pub fn from_git(
    git: &GitRepo,
    rev: &str,
    dir: &str,
    options: &ValidateOptions,
) -> Result<LoadedSide, SideError> {
    let read = git.read_policies(rev, dir)?;
    let label = RefLabel { name: Some(rev.to_owned()), commit: Some(read.commit.sha.clone()) };
    Ok(LoadedSide { label, validated: validate_sources(read.sources, read.diagnostics, options) })
}

/// Reads the policy sources under `dir` at `rev` without validating them (a plan's base).
pub fn sources_from_git(git: &GitRepo, rev: &str, dir: &str) -> Result<(RefLabel, Vec<Source>), SideError> {
    let read = git.read_policies(rev, dir)?;
    Ok((RefLabel { name: Some(rev.to_owned()), commit: Some(read.commit.sha.clone()) }, read.sources))
}

/// Reads and validates the policy directory in the working tree.
pub fn from_dir(root: &Path, options: &ValidateOptions) -> Result<LoadedSide, SideError> {
    let (sources, findings) = files::read_dir(root)?;
    Ok(LoadedSide { label: RefLabel::default(), validated: validate_sources(sources, findings, options) })
}

/// Each directory user's usage inside the period, by directory position.
pub fn used_per_user(table: &UsageTable, directory_users: usize, period: &PeriodRange) -> Vec<Credits> {
    let (start, end) = (day_number(period.start_date), day_number(period.end_date));
    let mut micros = vec![0i64; directory_users];
    for (k, &user) in table.user.iter().enumerate() {
        let day = table.day.get(k).copied().unwrap_or(i32::MIN);
        if day < start || day >= end {
            continue;
        }
        if let Some(cell) = micros.get_mut(user as usize) {
            *cell = cell.saturating_add(table.micros.get(k).copied().unwrap_or(0));
        }
    }
    micros.into_iter().map(Credits::from_micros).collect()
}
