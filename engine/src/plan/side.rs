//! Reading one side of a plan: the policies at a git revision or in the working
//! tree, validated, and the usage of the period per user.
//!
//! Shared by `plan`, `request` (which plans its branch against its base) and the
//! console; the diff itself stays pure in [`super::plan`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use git2::{ObjectType, Oid};

use crate::Credits;
use crate::load::Source;
use crate::load::files::{self, ReadError};
use crate::load::git::{GitError, GitRepo, policy_blobs};
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

/// Reads the base's policy sources under `dir` at `rev` like [`sources_from_git`], taking
/// the text of every file whose blob is the head's file at the same path from the head
/// instead of inflating it again (a pull request changes few files).
///
/// Walks the tree as [`GitRepo::read_policies`] does (hidden entries skipped, regular
/// `*.yaml`/`*.yml` blobs only); anything unusual (no such directory, a file the reader
/// would refuse) falls back to it, so the answer is always the same.
pub fn base_sources_from_git(
    git: &GitRepo,
    rev: &str,
    dir: &str,
    head: &[Source],
) -> Result<(RefLabel, Vec<Source>), SideError> {
    let commit = git.commit(rev)?;
    let sha: Arc<str> = commit.id().to_string().into();
    let label = RefLabel { name: Some(rev.to_owned()), commit: Some(sha.to_string()) };
    let repo = git.raw();
    let root = commit.tree().map_err(GitError::from)?;
    let tree = if dir.is_empty() {
        root
    } else {
        match root.get_path(Path::new(dir)) {
            Ok(entry) if entry.kind() == Some(ObjectType::Tree) => {
                repo.find_tree(entry.id()).map_err(GitError::from)?
            }
            _ => return sources_from_git(git, rev, dir),
        }
    };
    let blobs = policy_blobs(&tree).map_err(GitError::from)?;
    let head_by_path: HashMap<&str, &Source> = head.iter().map(|s| (&*s.path, s)).collect();
    let mut sources = Vec::with_capacity(blobs.len());
    for (path, oid) in blobs {
        // A text that starts with a byte order mark was stripped of it on reading: its blob differs.
        let same = head_by_path.get(path.as_str()).filter(|s| {
            !s.text.starts_with('\u{feff}')
                && Oid::hash_object(ObjectType::Blob, s.text.as_bytes()).is_ok_and(|id| id == oid)
        });
        if let Some(s) = same {
            sources.push(Source { path: s.path.clone(), text: s.text.clone(), commit: Some(sha.clone()) });
            continue;
        }
        let blob = repo.find_blob(oid).map_err(GitError::from)?;
        let rel: Arc<str> = path.into();
        match files::check_bytes(&rel, blob.content().to_vec()) {
            Ok(text) => sources.push(Source { path: rel, text: text.into(), commit: Some(sha.clone()) }),
            Err(_) => return sources_from_git(git, rev, dir),
        }
    }
    Ok((label, sources))
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
