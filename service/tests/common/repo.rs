//! Policy repositories for the console's tests: a real git work tree with the policies
//! committed, and a server that reads its groups from it and writes proposals to it
//! (approved ref `HEAD`).

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use git2::{Delta, Oid, Repository, Signature};
use serde_json::Value;

use super::http::send;
use super::server::{ADMIN, Server, start_configured};

/// Ada, committing `seconds` after a fixed instant, so a run's commit ids do not
/// depend on the clock.
pub fn ada(seconds: i64) -> Signature<'static> {
    Signature::new("Ada", "ada@acme.com", &git2::Time::new(1_790_000_000 + seconds, 0)).unwrap()
}

/// Writes `files` (paths relative to the work tree) and removes `gone`, then commits
/// them on top of `HEAD` (or as the first commit) as `sig`.
pub fn commit(
    repo: &Repository,
    sig: &Signature,
    files: &[(&str, &str)],
    gone: &[&str],
    message: &str,
) -> Oid {
    let root = repo.workdir().unwrap().to_path_buf();
    let mut index = repo.index().unwrap();
    for (path, text) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, text).unwrap();
        index.add_path(Path::new(path)).unwrap();
    }
    for path in gone {
        std::fs::remove_file(root.join(path)).unwrap();
        index.remove_path(Path::new(path)).unwrap();
    }
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("HEAD"), sig, sig, message, &tree, &parents).unwrap()
}

/// A new work tree at `root` with one commit of `files` by [`ada`].
pub fn init(root: &Path, files: &[(&str, &str)]) -> Oid {
    let repo = Repository::init(root).unwrap();
    commit(&repo, &ada(0), files, &[], "acme policies")
}

/// A test server with the policy repository it reads and the commit at `HEAD` when it
/// started.
pub struct RepoServer {
    pub addr: SocketAddr,
    pub repo: PathBuf,
    pub head: Oid,
    _server: Server,
}

/// Starts a server on a policy repository that `make` writes in the server's temp dir
/// (returning its `HEAD`): the policies are its `policies/`, the approved ref `HEAD`.
pub fn start(make: impl FnOnce(&Path) -> Oid) -> RepoServer {
    let (server, (repo, head)) = start_configured(|dir, config| {
        let repo = dir.join("policy-repo");
        let head = make(&repo);
        config.policies = Some(repo.join("policies"));
        config.repo = Some(repo.clone());
        config.approved_ref = Some("HEAD".into());
        (repo, head)
    });
    RepoServer { addr: server.addr, repo, head, _server: server }
}

impl RepoServer {
    /// Imports the directory (a CSV with a header) as the admin.
    pub fn import(&self, csv: &str) {
        let r = send(self.addr, "POST", "/v1/users/import", Some(ADMIN), Some(csv));
        assert_eq!(r.status, 200, "import: {}", r.body);
    }

    /// `GET path` as the admin, which must answer 200 with JSON.
    pub fn get(&self, path: &str) -> Value {
        let r = send(self.addr, "GET", path, Some(ADMIN), None);
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }

    pub fn git(&self) -> Repository {
        Repository::open(&self.repo).unwrap()
    }

    /// The work tree, the index and `HEAD` are exactly as committed: a proposal is a
    /// branch, never a change to what is checked out.
    pub fn assert_untouched(&self) {
        let repo = self.git();
        assert!(repo.statuses(None).unwrap().is_empty(), "the work tree or index changed");
        assert_eq!(repo.head().unwrap().target(), Some(self.head));
    }
}

/// The paths a commit changes against its only parent, with the change kind, by path.
pub fn changed_paths(repo: &Repository, commit: &str) -> Vec<(String, Delta)> {
    let commit = repo.find_commit(Oid::from_str(commit).unwrap()).unwrap();
    assert_eq!(commit.parent_count(), 1);
    let parent = commit.parent(0).unwrap();
    let diff =
        repo.diff_tree_to_tree(Some(&parent.tree().unwrap()), Some(&commit.tree().unwrap()), None).unwrap();
    let mut out: Vec<_> =
        diff.deltas().map(|d| (d.new_file().path().unwrap().display().to_string(), d.status())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A file's text at a commit.
pub fn blob_at(repo: &Repository, commit: &str, path: &str) -> String {
    let commit = repo.find_commit(Oid::from_str(commit).unwrap()).unwrap();
    let entry = commit.tree().unwrap().get_path(Path::new(path)).unwrap();
    String::from_utf8(repo.find_blob(entry.id()).unwrap().content().to_vec()).unwrap()
}
