//! A policy repository in a temporary directory, made and committed to with the `git`
//! command (no user or system configuration, a fixed author, no signing), as a user's
//! repository would be. The engine's tests and the `budgit` binary's tests both use it.

#![allow(dead_code, reason = "each test crate uses part of the helpers")]

use std::path::Path;
use std::process::Command;

/// Runs `git` in `dir`; its trimmed stdout. A failing command fails the test.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .args(["-c", "user.name=Policy Bot", "-c", "user.email=bot@acme.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes `files` under `policies/` and commits everything; the new commit's id.
pub fn commit(root: &Path, files: &[(&str, &str)]) -> String {
    std::fs::create_dir_all(root.join("policies")).unwrap();
    for (name, text) in files {
        std::fs::write(root.join("policies").join(name), text).unwrap();
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "policies"]);
    git(root, &["rev-parse", "HEAD"])
}

/// A new repository on `main` whose first commit holds `files` under `policies/`.
pub fn repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    git(tmp.path(), &["init", "-q", "-b", "main"]);
    commit(tmp.path(), files);
    tmp
}
