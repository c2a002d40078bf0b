//! Reading policies from a git repository without touching the working tree.
//!
//! Everything here reads objects (commits, trees, blobs) straight from the
//! object database, so it works on bare clones and on dirty working trees, and
//! never changes the index or the files checked out. It owns: resolving a
//! revision to a commit (with a clear error on shallow clones), reading the
//! policy files under a directory of a commit's tree, listing the commits that
//! changed that directory, writing one new file onto a new branch (for
//! `request`), and making text into a valid branch name ([`ref_component`]). It
//! does not parse YAML: that is [`crate::load::load_sources`].

use std::path::{Component, Path};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};

use super::{MAX_FILE_BYTES, Source, files};
use crate::diag::{Code, Diagnostic, Location};

/// Text made into one component of a branch name that git accepts.
///
/// Lowercase ASCII letters, digits, `.`, `_` and `-`; anything else becomes `-`. Git
/// refuses `..`, a component that starts or ends with `.`, and one ending in
/// `.lock`, so those are removed too; runs of `-` are squeezed. At most `max`
/// characters; `fallback` when nothing is left. Every branch the console or
/// `budgit request` names from user input goes through here.
pub fn ref_component(text: &str, max: usize, fallback: &str) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '-' };
        // `..` is refused anywhere in a ref; runs of `.` and `-` become one character
        match (out.chars().last(), c) {
            (Some('.'), '.') | (Some('-'), '-' | '.') => continue,
            (Some('.'), '-') => {
                out.pop();
                out.push('-');
            }
            _ => out.push(c),
        }
        if out.len() >= max {
            break;
        }
    }
    let mut out = out.trim_matches(['-', '.']).to_string();
    while out.ends_with(".lock") {
        out.truncate(out.len() - ".lock".len());
        out = out.trim_end_matches(['-', '.']).to_string();
    }
    if out.is_empty() { fallback.to_string() } else { out }
}

/// Why git could not give what was asked (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// No repository at or above the path.
    #[error("cannot open a git repository at `{path}`: {message}")]
    Open {
        /// Where the search started.
        path: String,
        /// libgit2's message.
        message: String,
    },
    /// The revision names nothing in this repository.
    #[error("unknown revision `{rev}`: {message}")]
    UnknownRevision {
        /// The revision as written.
        rev: String,
        /// libgit2's message.
        message: String,
    },
    /// The revision names a commit this (shallow) clone does not have.
    #[error(
        "commit `{rev}` is not in this clone (shallow?): fetch more history, e.g. `git fetch --unshallow`"
    )]
    Shallow {
        /// The revision as written.
        rev: String,
    },
    /// The policy directory names a file, not a directory, in the commit.
    #[error("`{path}` is not a directory at commit `{commit}`")]
    NotADirectory {
        /// The path inside the repository.
        path: String,
        /// The commit.
        commit: String,
    },
    /// A branch to create exists already.
    #[error("branch `{0}` already exists: pick another name with `--branch`")]
    BranchExists(String),
    /// A file to add exists already in the base tree.
    #[error("`{0}` already exists at the base commit: pick another name")]
    FileExists(String),
    /// A file to change or delete does not exist at the base commit.
    #[error("`{0}` does not exist at the base commit")]
    NoSuchFile(String),
    /// A path cannot be written into a tree.
    #[error("invalid path `{0}` inside the repository")]
    BadPath(String),
    /// Any other libgit2 failure.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// One file edit of [`GitRepo::commit_changes`]; paths are repository-relative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange<'a> {
    /// Add a file that must not exist yet.
    Create {
        /// Where.
        path: &'a str,
        /// Its text.
        content: &'a str,
    },
    /// Add or replace a file.
    Write {
        /// Where.
        path: &'a str,
        /// Its text.
        content: &'a str,
    },
    /// Remove a file that must exist.
    Delete {
        /// Where.
        path: &'a str,
    },
}

impl FileChange<'_> {
    /// The path changed.
    pub fn path(&self) -> &str {
        match self {
            FileChange::Create { path, .. }
            | FileChange::Write { path, .. }
            | FileChange::Delete { path } => path,
        }
    }
}

/// A commit as shown to people: which, who, when, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The full hexadecimal id.
    pub sha: String,
    /// The author's name.
    pub author: String,
    /// The author's email.
    pub email: String,
    /// The author time.
    pub time: DateTime<Utc>,
    /// The first line of the message.
    pub summary: String,
}

impl CommitInfo {
    /// The first 12 hex digits, enough to be unique in any real repository.
    pub fn short(&self) -> &str {
        self.sha.get(..12).unwrap_or(&self.sha)
    }

    fn of(commit: &git2::Commit<'_>) -> CommitInfo {
        let author = commit.author();
        CommitInfo {
            sha: commit.id().to_string(),
            author: String::from_utf8_lossy(author.name_bytes()).into_owned(),
            email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
            time: Utc.timestamp_opt(author.when().seconds(), 0).single().unwrap_or_default(),
            summary: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned(),
        }
    }
}

/// Policy files read from one commit.
#[derive(Debug, Clone)]
pub struct TreeSources {
    /// The commit read.
    pub commit: CommitInfo,
    /// The policy files, paths relative to the policy directory, in path order.
    pub sources: Vec<Source>,
    /// Files that could not be used (too large, not UTF-8) and a missing directory.
    pub diagnostics: Vec<Diagnostic>,
    /// The blob each source was read from, by path, in the order of `sources`: the
    /// same bytes at another commit are the same file without reading it again.
    pub blobs: BlobIds,
}

/// The blob id each file was read from, by path, in path order.
pub type BlobIds = Vec<(Arc<str>, Oid)>;

/// A git repository holding policies.
pub struct GitRepo {
    repo: Repository,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo").field("path", &self.repo.path()).finish()
    }
}

impl GitRepo {
    /// Opens the repository containing `path` (searching upwards; bare repositories too).
    pub fn discover(path: &Path) -> Result<GitRepo, GitError> {
        Repository::discover(path)
            .map(|repo| GitRepo { repo })
            .map_err(|e| GitError::Open { path: path.display().to_string(), message: e.message().to_owned() })
    }

    /// The underlying repository.
    pub fn raw(&self) -> &Repository {
        &self.repo
    }

    /// The working tree's root, when the repository has one.
    pub fn workdir(&self) -> Option<&Path> {
        self.repo.workdir()
    }

    /// The path of a policy directory inside the repository, `/`-separated (`""` is the root).
    ///
    /// A path that exists on disk inside the working tree is made relative to its
    /// root; any other relative path (bare repositories) is taken as relative to the root.
    pub fn repo_path(&self, dir: &Path) -> Result<String, GitError> {
        if let (Some(workdir), Ok(abs)) = (self.repo.workdir(), dir.canonicalize())
            && let Ok(workdir) = workdir.canonicalize()
            && let Ok(rel) = abs.strip_prefix(&workdir)
        {
            return join_components(rel);
        }
        if dir.is_absolute() {
            return Err(GitError::BadPath(dir.display().to_string()));
        }
        join_components(dir)
    }

    /// Resolves a revision (branch, tag, commit, `HEAD~2`) to a commit.
    pub fn commit(&self, rev: &str) -> Result<git2::Commit<'_>, GitError> {
        let object = match self.repo.revparse_single(rev) {
            Ok(object) => object,
            Err(e) => {
                if self.repo.is_shallow() {
                    return Err(GitError::Shallow { rev: rev.to_owned() });
                }
                return Err(GitError::UnknownRevision {
                    rev: rev.to_owned(),
                    message: e.message().to_owned(),
                });
            }
        };
        object
            .peel_to_commit()
            .map_err(|e| GitError::UnknownRevision { rev: rev.to_owned(), message: e.message().to_owned() })
    }

    /// Information about the commit a revision names.
    pub fn commit_info(&self, rev: &str) -> Result<CommitInfo, GitError> {
        self.commit(rev).map(|c| CommitInfo::of(&c))
    }

    /// Reads every policy file under `dir` (repository-relative) in the tree of `rev`.
    ///
    /// A directory absent from that commit gives no sources and a `git/no-policy-dir`
    /// error diagnostic, so validation explains it instead of failing the command.
    pub fn read_policies(&self, rev: &str, dir: &str) -> Result<TreeSources, GitError> {
        let commit = self.commit(rev)?;
        let info = CommitInfo::of(&commit);
        let sha: Arc<str> = info.sha.as_str().into();
        let root = commit.tree()?;
        let mut diagnostics = Vec::new();
        let tree = if dir.is_empty() {
            root
        } else {
            match root.get_path(Path::new(dir)) {
                Ok(entry) => match entry.kind() {
                    Some(ObjectType::Tree) => self.repo.find_tree(entry.id())?,
                    _ => return Err(GitError::NotADirectory { path: dir.to_owned(), commit: info.sha }),
                },
                Err(e) if e.code() == git2::ErrorCode::NotFound => {
                    let mut location = Location::file_start(dir.into());
                    location.commit = Some(sha.clone());
                    diagnostics.push(
                        Diagnostic::error(
                            Code::GitNoPolicyDir,
                            format!("`{dir}` does not exist at commit `{}`", info.short()),
                        )
                        .at(location)
                        .with_help("check `--policies`: it names the policy directory inside the repository"),
                    );
                    return Ok(TreeSources {
                        commit: info,
                        sources: Vec::new(),
                        diagnostics,
                        blobs: Vec::new(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        };
        let blobs = policy_blobs(&tree)?;
        let mut sources = Vec::with_capacity(blobs.len());
        let mut ids = Vec::with_capacity(blobs.len());
        for (path, oid) in blobs {
            let blob = self.repo.find_blob(oid)?;
            let rel: Arc<str> = path.into();
            let content = blob.content();
            // Never copy more than the limit: `check_bytes` only needs to see it is over.
            let cap = usize::try_from(MAX_FILE_BYTES + 1).unwrap_or(usize::MAX);
            let bytes = content[..content.len().min(cap)].to_vec();
            match files::check_bytes(&rel, bytes) {
                Ok(text) => {
                    ids.push((rel.clone(), oid));
                    sources.push(Source { path: rel, text: text.into(), commit: Some(sha.clone()) });
                }
                Err(mut d) => {
                    if let Some(l) = d.location.as_mut() {
                        l.commit = Some(sha.clone());
                    }
                    diagnostics.push(d);
                }
            }
        }
        Ok(TreeSources { commit: info, sources, diagnostics, blobs: ids })
    }

    /// The commits reachable from `rev` that changed `dir`, newest first.
    ///
    /// A commit changed the directory when its tree for `dir` differs from every
    /// parent's (a merge that took one side unchanged did not change it, as in
    /// `git log -- dir`). Compares tree ids only: no diff, so no rename detection.
    /// In a shallow clone the walk stops at the shallow boundary.
    pub fn commits_touching(&self, rev: &str, dir: &str) -> Result<Vec<CommitInfo>, GitError> {
        let start = self.commit(rev)?;
        let mut walk = self.repo.revwalk()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
        walk.push(start.id())?;
        let mut out = Vec::new();
        for oid in walk {
            let commit = self.repo.find_commit(oid?)?;
            let here = self.dir_tree_id(&commit, dir)?;
            let mut parents = commit.parents().peekable();
            let touched = if parents.peek().is_none() {
                here.is_some()
            } else {
                let mut differs_from_all = true;
                for parent in parents {
                    if self.dir_tree_id(&parent, dir)? == here {
                        differs_from_all = false;
                        break;
                    }
                }
                differs_from_all
            };
            if touched {
                out.push(CommitInfo::of(&commit));
            }
        }
        Ok(out)
    }

    fn dir_tree_id(&self, commit: &git2::Commit<'_>, dir: &str) -> Result<Option<Oid>, GitError> {
        let tree = commit.tree()?;
        if dir.is_empty() {
            return Ok(Some(tree.id()));
        }
        match tree.get_path(Path::new(dir)) {
            Ok(entry) => Ok(Some(entry.id())),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates `branch` at `base` plus one commit adding the file `path` (repository-relative).
    ///
    /// Builds the new trees in memory from the base commit's, so neither the index
    /// nor the working tree changes. Refuses an existing branch or file. Returns the new commit.
    pub fn commit_new_file(
        &self,
        base: &str,
        branch: &str,
        path: &str,
        content: &str,
        message: &str,
    ) -> Result<CommitInfo, GitError> {
        self.commit_changes(base, branch, &[FileChange::Create { path, content }], message)
    }

    /// The first branch name not taken: `name`, then `name-2`, `name-3`…
    pub fn free_branch(&self, name: &str) -> String {
        let taken = |b: &str| self.repo.find_branch(b, git2::BranchType::Local).is_ok();
        if !taken(name) {
            return name.to_string();
        }
        (2..).map(|n| format!("{name}-{n}")).find(|b| !taken(b)).unwrap_or_else(|| name.to_string())
    }

    /// The names of the Override files (`<dir>/overrides/<name>.yaml`, lowercased) on
    /// every local branch: a new override's file must not collide with one that is
    /// waiting for review on another branch either.
    pub fn override_names_on_branches(&self, dir: &str) -> Result<Vec<String>, GitError> {
        let folder = if dir.is_empty() { "overrides".to_string() } else { format!("{dir}/overrides") };
        let mut names = Vec::new();
        for branch in self.repo.branches(Some(git2::BranchType::Local))? {
            let (branch, _) = branch?;
            let Ok(tree) = branch.get().peel_to_tree() else { continue };
            let Ok(entry) = tree.get_path(Path::new(&folder)) else { continue };
            let Ok(sub) = entry.to_object(&self.repo).and_then(|o| o.peel_to_tree()) else { continue };
            for e in sub.iter() {
                let name = e.name().ok().unwrap_or_default();
                if let Some(stem) = name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml")) {
                    names.push(stem.to_lowercase());
                }
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Creates `branch` at `base` plus one commit applying `changes`, in memory.
    ///
    /// For a proposed edit (a group's limit from the console) as much as a new file:
    /// the index and working tree never change, the branch is new, and nothing is
    /// written when any change does not apply. Returns the new commit.
    pub fn commit_changes(
        &self,
        base: &str,
        branch: &str,
        changes: &[FileChange<'_>],
        message: &str,
    ) -> Result<CommitInfo, GitError> {
        let base = self.commit(base)?;
        if self.repo.find_branch(branch, git2::BranchType::Local).is_ok() {
            return Err(GitError::BranchExists(branch.to_owned()));
        }
        let mut tree = base.tree()?.id();
        for change in changes {
            let path = change.path();
            let parts: Vec<&str> = path.split('/').collect();
            if parts.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
                return Err(GitError::BadPath(path.to_owned()));
            }
            let blob = match change {
                FileChange::Create { content, .. } | FileChange::Write { content, .. } => {
                    Some(self.repo.blob(content.as_bytes())?)
                }
                FileChange::Delete { .. } => None,
            };
            let current = self.repo.find_tree(tree)?;
            tree = self.edit(Some(&current), &parts, blob, change)?;
        }
        let tree = self.repo.find_tree(tree)?;
        let signature = self.signature()?;
        let oid = self.repo.commit(None, &signature, &signature, message, &tree, &[&base])?;
        let commit = self.repo.find_commit(oid)?;
        self.repo.branch(branch, &commit, false)?;
        Ok(CommitInfo::of(&commit))
    }

    fn edit(
        &self,
        tree: Option<&git2::Tree<'_>>,
        parts: &[&str],
        blob: Option<Oid>,
        change: &FileChange<'_>,
    ) -> Result<Oid, GitError> {
        let full = change.path();
        let mut builder = self.repo.treebuilder(tree)?;
        match parts {
            [] => Err(GitError::BadPath(full.to_owned())),
            [name] => {
                let exists = builder.get(name)?.is_some();
                match (change, blob) {
                    (FileChange::Create { .. }, _) if exists => {
                        return Err(GitError::FileExists(full.to_owned()));
                    }
                    (FileChange::Delete { .. }, _) if !exists => {
                        return Err(GitError::NoSuchFile(full.to_owned()));
                    }
                    (_, Some(blob)) => {
                        builder.insert(name, blob, 0o100644)?;
                    }
                    (_, None) => builder.remove(name)?,
                }
                Ok(builder.write()?)
            }
            [name, rest @ ..] => {
                let sub = match builder.get(name)? {
                    Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                        Some(self.repo.find_tree(entry.id())?)
                    }
                    Some(_) => return Err(GitError::BadPath(full.to_owned())),
                    None if blob.is_none() => return Err(GitError::NoSuchFile(full.to_owned())),
                    None => None,
                };
                let sub = self.edit(sub.as_ref(), rest, blob, change)?;
                // A directory emptied by a deletion disappears, as in git.
                if self.repo.find_tree(sub)?.is_empty() {
                    builder.remove(name)?;
                } else {
                    builder.insert(name, sub, 0o040000)?;
                }
                Ok(builder.write()?)
            }
        }
    }

    /// The committer from git's configuration, or a neutral one when none is set.
    fn signature(&self) -> Result<git2::Signature<'static>, GitError> {
        match self.repo.signature() {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Ok(git2::Signature::now("budgit", "budgit@localhost")?),
        }
    }
}

fn join_components(path: &Path) -> Result<String, GitError> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            _ => return Err(GitError::BadPath(path.display().to_string())),
        }
    }
    Ok(parts.join("/"))
}

/// The policy files under `tree`: their paths within it and blob ids, sorted by path.
pub(crate) fn policy_blobs(tree: &git2::Tree<'_>) -> Result<Vec<(String, Oid)>, git2::Error> {
    let mut blobs: Vec<(String, Oid)> = Vec::new();
    tree.walk(TreeWalkMode::PreOrder, |parent, entry| {
        let name = String::from_utf8_lossy(entry.name_bytes());
        // Hidden entries are skipped exactly like `files::read_dir` does.
        if name.starts_with('.') {
            return TreeWalkResult::Skip;
        }
        // Symlinks (0o120000) and submodules are not policy files.
        if entry.kind() == Some(ObjectType::Blob)
            && entry.filemode() & 0o170000 == 0o100000
            && files::is_policy_file(Path::new(name.as_ref()))
        {
            blobs.push((format!("{parent}{name}"), entry.id()));
        }
        TreeWalkResult::Ok
    })?;
    blobs.sort();
    Ok(blobs)
}

#[cfg(test)]
pub(crate) mod tests {

    #[test]
    fn text_becomes_a_branch_name_git_accepts() {
        let hostile = [
            "a..b",
            "a...b",
            ".hidden",
            "trailing.",
            "x.lock",
            "x.lock.lock",
            "a.-b",
            "a-.b",
            "@{u}",
            "~^:?*[\\",
            "Zoë Müller",
            "..",
            "",
            "/",
            "a/../b",
            "space name",
            "tab\there",
            "emoji😀x",
            "-x-",
            "a@b.com",
        ];
        for text in hostile {
            let part = ref_component(text, 60, "user");
            let name = format!("budgit/request/{part}-2026-12-07");
            assert!(git2::Reference::is_valid_name(&format!("refs/heads/{name}")), "`{text}` → `{name}`");
            assert!(!part.is_empty() && part.len() <= 60, "{part}");
        }
        assert_eq!(ref_component("a..b", 60, "user"), "a.b");
        assert_eq!(ref_component("Alice.Nguyen", 60, "user"), "alice.nguyen");
        assert_eq!(ref_component("Eng Leads/../x", 60, "group"), "eng-leads-x");
        assert_eq!(ref_component("x.lock", 60, "user"), "x");
        assert_eq!(ref_component("---", 60, "group"), "group");
        assert_eq!(ref_component(&"ab".repeat(100), 60, "user").len(), 60);
    }
    use super::*;

    /// Writes the files into the work tree, stages them and commits on HEAD (a fixed author and time).
    pub(crate) fn commit_files<T: AsRef<[u8]>>(repo: &Repository, files: &[(&str, T)], message: &str) -> Oid {
        let mut index = repo.index().unwrap();
        let workdir = repo.workdir().unwrap().to_path_buf();
        for (path, text) in files {
            let full = workdir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::new("Ada", "ada@acme.com", &git2::Time::new(1_790_000_000, 0)).unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents).unwrap()
    }

    #[test]
    fn reads_a_tree_skipping_hidden_and_non_policy_files() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        commit_files(
            &repo,
            &[
                ("policies/workspace.yaml", "a: 1\n"),
                ("policies/groups/eng.yml", "b: 2\n"),
                ("policies/.hidden/x.yaml", "c: 3\n"),
                ("policies/README.md", "d\n"),
                ("other.yaml", "e: 1\n"),
            ],
            "first",
        );
        let first = commit_files(&repo, &[("policies/workspace.yaml", "a: 2\n")], "second");
        // A dirty working tree does not matter: git reads objects.
        std::fs::write(tmp.path().join("policies/workspace.yaml"), "dirty: true\n").unwrap();
        let git = GitRepo::discover(tmp.path()).unwrap();
        let read = git.read_policies("HEAD", "policies").unwrap();
        let paths: Vec<&str> = read.sources.iter().map(|s| &*s.path).collect();
        assert_eq!(paths, ["groups/eng.yml", "workspace.yaml"]);
        assert_eq!(&*read.sources[1].text, "a: 2\n");
        assert_eq!(read.sources[1].commit.as_deref(), Some(first.to_string().as_str()));
        let old = git.read_policies("HEAD~1", "policies").unwrap();
        assert_eq!(&*old.sources[1].text, "a: 1\n");
        let missing = git.read_policies("HEAD", "nope").unwrap();
        assert!(missing.sources.is_empty());
        assert_eq!(missing.diagnostics[0].code, Code::GitNoPolicyDir);
        assert!(matches!(git.read_policies("HEAD", "other.yaml"), Err(GitError::NotADirectory { .. })));
        assert!(matches!(git.commit("no-such-branch"), Err(GitError::UnknownRevision { .. })));
    }

    #[test]
    fn lists_commits_that_changed_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        commit_files(&repo, &[("README.md", "x\n")], "readme");
        commit_files(&repo, &[("policies/a.yaml", "a: 1\n")], "add a");
        commit_files(&repo, &[("README.md", "y\n")], "readme again");
        commit_files(&repo, &[("policies/a.yaml", "a: 2\n")], "change a");
        let git = GitRepo::discover(tmp.path()).unwrap();
        let commits = git.commits_touching("HEAD", "policies").unwrap();
        let summaries: Vec<&str> = commits.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(summaries, ["change a", "add a"]);
        assert_eq!(commits[0].author, "Ada");
    }

    #[test]
    fn commits_a_new_file_on_a_branch_without_touching_index_or_worktree() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        let head = commit_files(&repo, &[("policies/a.yaml", "a: 1\n")], "add a");
        let git = GitRepo::discover(tmp.path()).unwrap();
        let info = git
            .commit_new_file("HEAD", "budgit/request/x", "policies/overrides/x.yaml", "o: 1\n", "request")
            .unwrap();
        let read = git.read_policies("budgit/request/x", "policies").unwrap();
        let paths: Vec<&str> = read.sources.iter().map(|s| &*s.path).collect();
        assert_eq!(paths, ["a.yaml", "overrides/x.yaml"]);
        assert_eq!(read.commit.sha, info.sha);
        assert!(!tmp.path().join("policies/overrides").exists());
        assert!(repo.statuses(None).unwrap().is_empty());
        assert_eq!(repo.head().unwrap().target(), Some(head));
        assert!(matches!(
            git.commit_new_file("HEAD", "budgit/request/x", "policies/y.yaml", "", "again"),
            Err(GitError::BranchExists(_))
        ));
        assert!(matches!(
            git.commit_new_file("HEAD", "other", "policies/a.yaml", "", "clash"),
            Err(GitError::FileExists(_))
        ));
    }

    #[test]
    fn commits_edits_and_deletions_in_one_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path()).unwrap();
        commit_files(&repo, &[("policies/a.yaml", "a: 1\n"), ("policies/g/b.yaml", "b: 1\n")], "one");
        let git = GitRepo::discover(tmp.path()).unwrap();
        let changes = [
            FileChange::Write { path: "policies/a.yaml", content: "a: 2\n" },
            FileChange::Delete { path: "policies/g/b.yaml" },
            FileChange::Create { path: "policies/c.yaml", content: "c: 1\n" },
        ];
        git.commit_changes("HEAD", "edit", &changes, "edit").unwrap();
        let read = git.read_policies("edit", "policies").unwrap();
        let files: Vec<(&str, &str)> = read.sources.iter().map(|s| (&*s.path, &*s.text)).collect();
        assert_eq!(files, [("a.yaml", "a: 2\n"), ("c.yaml", "c: 1\n")]);
        let tree = git.commit("edit").unwrap().tree().unwrap();
        assert!(tree.get_path(Path::new("policies/g")).is_err(), "an emptied directory disappears");
        assert!(matches!(
            git.commit_changes("HEAD", "x", &[FileChange::Delete { path: "policies/nope.yaml" }], "x"),
            Err(GitError::NoSuchFile(_))
        ));
        assert!(git.raw().find_branch("x", git2::BranchType::Local).is_err(), "nothing written on failure");
        assert_eq!(std::fs::read_to_string(tmp.path().join("policies/a.yaml")).unwrap(), "a: 1\n");
    }

    #[test]
    fn works_on_a_bare_clone_and_maps_repo_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path().join("src")).unwrap();
        commit_files(&repo, &[("policies/a.yaml", "a: 1\n")], "add a");
        let bare = tmp.path().join("bare.git");
        git2::build::RepoBuilder::new()
            .bare(true)
            .clone(&format!("file://{}", tmp.path().join("src").display()), &bare)
            .unwrap();
        let git = GitRepo::discover(&bare).unwrap();
        assert_eq!(git.repo_path(Path::new("policies")).unwrap(), "policies");
        let read = git.read_policies("HEAD", "policies").unwrap();
        assert_eq!(read.sources.len(), 1);
        let work = GitRepo::discover(&tmp.path().join("src")).unwrap();
        assert_eq!(work.repo_path(&tmp.path().join("src/policies")).unwrap(), "policies");
        assert_eq!(work.repo_path(Path::new("./policies")).unwrap(), "policies");
    }

    #[test]
    fn a_shallow_clone_names_the_missing_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init(tmp.path().join("src")).unwrap();
        commit_files(&repo, &[("policies/a.yaml", "a: 1\n")], "one");
        let old = commit_files(&repo, &[("policies/a.yaml", "a: 2\n")], "two");
        commit_files(&repo, &[("policies/a.yaml", "a: 3\n")], "three");
        let status = std::process::Command::new("git")
            .args(["clone", "--quiet", "--depth", "1"])
            .arg(format!("file://{}", tmp.path().join("src").display()))
            .arg(tmp.path().join("shallow"))
            .status()
            .unwrap();
        assert!(status.success());
        let git = GitRepo::discover(&tmp.path().join("shallow")).unwrap();
        assert_eq!(git.read_policies("HEAD", "policies").unwrap().sources.len(), 1);
        let err = git.commit(&old.to_string()).unwrap_err();
        assert!(matches!(err, GitError::Shallow { .. }), "{err}");
        assert!(err.to_string().contains("git fetch --unshallow"));
        assert!(matches!(git.commit("HEAD~1"), Err(GitError::Shallow { .. })));
        // History stops at the shallow boundary instead of failing.
        assert_eq!(git.commits_touching("HEAD", "policies").unwrap().len(), 1);
    }
}
