//! The commit a build comes from, for `budgit --version`.
//!
//! Shared by the build script (which runs it) and the CLI's unit tests (which run it on
//! a repository and on a plain directory), so the fallback is tested, not assumed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What `git` says about the checkout at `dir`: the abbreviated commit, its date, and
/// the files whose change means a new commit (for `cargo:rerun-if-changed`).
#[derive(Debug, PartialEq, Eq)]
pub struct Commit {
    pub hash: String,
    pub date: String,
    pub watch: Vec<PathBuf>,
}

/// The commit checked out at `dir`, or `None` when `dir` is not in a git checkout (a
/// source tarball, a vendored copy) or `git` is not installed: the build goes on
/// without it rather than failing.
pub fn commit(dir: &Path) -> Option<Commit> {
    let line = git(dir, &["log", "-1", "--format=%h %cs", "--abbrev=12"])?;
    let (hash, date) = line.split_once(' ')?;
    let mut watch = Vec::new();
    // HEAD moves on checkout; the branch it names moves on commit (loose, or packed).
    for name in ["HEAD", "packed-refs"] {
        if let Some(path) = git(dir, &["rev-parse", "--path-format=absolute", "--git-path", name]) {
            watch.push(PathBuf::from(path));
        }
    }
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(dir, &["rev-parse", "--path-format=absolute", "--git-path", &branch])
    {
        watch.push(PathBuf::from(path));
    }
    Some(Commit { hash: hash.to_owned(), date: date.to_owned(), watch })
}

/// The version `budgit --version` prints: the package version, then the commit when
/// known (`BUDGIT_BUILD_COMMIT` names it for a build outside git, e.g. `abc123 2026-12-01`).
pub fn version(package: &str, commit: Option<&Commit>, from_env: Option<&str>) -> String {
    match (from_env.map(str::trim).filter(|s| !s.is_empty()), commit) {
        (Some(named), _) => format!("{package} ({named})"),
        (None, Some(commit)) => format!("{package} ({} {})", commit.hash, commit.date),
        (None, None) => package.to_owned(),
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_in(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
            .args(args)
            .env("GIT_COMMITTER_DATE", "2026-11-27T12:00:00Z")
            .env("GIT_AUTHOR_DATE", "2026-11-27T12:00:00Z")
            .status()
            .unwrap();
        assert!(status.success(), "git {args:?}");
    }

    #[test]
    fn a_checkout_names_its_commit_and_the_files_that_move_with_it() {
        let dir = tempfile::tempdir().unwrap();
        git_in(dir.path(), &["init", "-q", "-b", "main"]);
        git_in(dir.path(), &["commit", "-q", "--allow-empty", "-m", "first"]);
        let commit = commit(dir.path()).unwrap();
        assert_eq!(commit.hash.len(), 12, "{commit:?}");
        assert!(commit.hash.bytes().all(|b| b.is_ascii_hexdigit()), "{commit:?}");
        assert_eq!(commit.date, "2026-11-27");
        let git_dir = dir.path().canonicalize().unwrap().join(".git");
        for name in ["HEAD", "packed-refs", "refs/heads/main"] {
            assert!(commit.watch.contains(&git_dir.join(name)), "{name} not in {:?}", commit.watch);
        }
        assert_eq!(version("0.1.0", Some(&commit), None), format!("0.1.0 ({} 2026-11-27)", commit.hash));
    }

    #[test]
    fn a_tarball_without_git_builds_with_the_package_version() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(commit(dir.path()), None);
        assert_eq!(version("0.1.0", None, None), "0.1.0");
        // An empty repository (no commit yet) has no commit to name either.
        git_in(dir.path(), &["init", "-q"]);
        assert_eq!(commit(dir.path()), None);
    }

    #[test]
    fn the_environment_names_the_commit_of_a_build_outside_git() {
        assert_eq!(version("0.1.0", None, Some("abc123 2026-12-01")), "0.1.0 (abc123 2026-12-01)");
        assert_eq!(version("0.1.0", None, Some("  ")), "0.1.0");
    }
}
