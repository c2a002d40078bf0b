//! Reading one side of a plan: the policies at a git revision or in the working
//! tree, validated (the usage each user counts is the standings': [`crate::standing::used_per_user`]).
//!
//! Shared by `plan`, `request` (which plans its branch against its base) and the
//! console; the diff itself stays pure in [`super::plan`].

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use git2::{ObjectType, Oid};

use crate::load::Source;
use crate::load::files::{self, ReadError};
use crate::load::git::{BlobIds, GitError, GitRepo, policy_blobs};
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
    from_git_with_blobs(git, rev, dir, options).map(|(side, _)| side)
}

/// Like [`from_git`], also giving the blob id each source was read from, by path (for
/// [`base_sources_from_git`]).
pub fn from_git_with_blobs(
    git: &GitRepo,
    rev: &str,
    dir: &str,
    options: &ValidateOptions,
) -> Result<(LoadedSide, BlobIds), SideError> {
    let read = git.read_policies(rev, dir)?;
    let label = RefLabel { name: Some(rev.to_owned()), commit: Some(read.commit.sha.clone()) };
    let validated = validate_sources(read.sources, read.diagnostics, options);
    Ok((LoadedSide { label, validated }, read.blobs))
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
///
/// `head_blobs` holds the blob id of each head file by path when the head was read from
/// git ([`from_git_with_blobs`]): a file is then the same when its blob id is, and no text
/// is hashed. A working-tree head (`None`) has no blob ids: its texts are hashed instead.
pub fn base_sources_from_git(
    git: &GitRepo,
    rev: &str,
    dir: &str,
    head: &[Source],
    head_blobs: Option<&[(Arc<str>, Oid)]>,
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
    let head_ids: Option<HashMap<&str, Oid>> =
        head_blobs.map(|blobs| blobs.iter().map(|(path, oid)| (&**path, *oid)).collect());
    let mut sources = Vec::with_capacity(blobs.len());
    for (path, oid) in blobs {
        let same = head_by_path.get(path.as_str()).filter(|s| match &head_ids {
            // The head's text at this path was read from a blob with this id: the same bytes.
            Some(ids) => ids.get(path.as_str()) == Some(&oid),
            // A text that starts with a byte order mark was stripped of it on reading: its blob differs.
            None => {
                !s.text.starts_with('\u{feff}')
                    && Oid::hash_object(ObjectType::Blob, s.text.as_bytes()).is_ok_and(|id| id == oid)
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &git2::Repository, files: &[(&str, &[u8])], message: &str) {
        crate::load::git::tests::commit_files(repo, files, message);
    }

    #[test]
    fn the_base_is_the_same_whether_blob_ids_or_texts_are_compared() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(tmp.path()).unwrap();
        let files: [(&str, &[u8]); 4] = [
            ("policies/a.yaml", b"a: 1\n"),
            ("policies/bom.yaml", b"\xef\xbb\xbfb: 1\n"),
            ("policies/g/c.yaml", b"c: 1\n"),
            ("policies/gone.yaml", b"d: 1\n"),
        ];
        commit(&repo, &files, "base");
        commit(&repo, &[("policies/a.yaml", b"a: 2\n"), ("policies/new.yaml", b"e: 1\n")], "head");
        std::fs::remove_file(tmp.path().join("policies/gone.yaml")).unwrap();
        let mut index = repo.index().unwrap();
        index.remove_path(Path::new("policies/gone.yaml")).unwrap();
        index.write().unwrap();
        commit(&repo, &[], "remove");
        let git = GitRepo::discover(tmp.path()).unwrap();
        let options = ValidateOptions { now: chrono::Utc::now() };
        let (head, blobs) = from_git_with_blobs(&git, "HEAD", "policies", &options).unwrap();
        let head_sources = &head.validated.policies.sources;
        let paths: Vec<&str> = blobs.iter().map(|(p, _)| &**p).collect();
        assert_eq!(paths, ["a.yaml", "bom.yaml", "g/c.yaml", "new.yaml"]);
        let (_, by_id) =
            base_sources_from_git(&git, "HEAD~2", "policies", head_sources, Some(&blobs)).unwrap();
        let (_, by_text) = base_sources_from_git(&git, "HEAD~2", "policies", head_sources, None).unwrap();
        let (_, scratch) = sources_from_git(&git, "HEAD~2", "policies").unwrap();
        let flat = |s: &[Source]| -> Vec<(String, String, Option<String>)> {
            s.iter()
                .map(|s| (s.path.to_string(), s.text.to_string(), s.commit.as_deref().map(str::to_owned)))
                .collect()
        };
        assert_eq!(flat(&by_id), flat(&scratch));
        assert_eq!(flat(&by_text), flat(&scratch));
        assert_eq!(by_id[1].text.as_ref(), "b: 1\n", "the byte order mark is stripped as on reading");
    }
}
