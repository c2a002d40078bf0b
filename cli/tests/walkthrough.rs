//! The self-hosted walkthrough of docs/serve.md, run exactly as written.
//!
//! The shell block between the `walkthrough` markers runs with bash in a git
//! repository holding a copy of `policies/` (committed on `main`) and
//! `examples/directory.csv`, with `budgit` on `PATH`, against a real `budgit serve`.
//! Only the port is changed, to a free one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::git_repo::git;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The commands of the walkthrough, as the reader copies them.
fn walkthrough() -> String {
    let doc = std::fs::read_to_string(root().join("docs/serve.md")).unwrap();
    let block = doc
        .split("<!-- walkthrough:start -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- walkthrough:end -->").next())
        .expect("docs/serve.md has no walkthrough block");
    let script =
        block.trim().strip_prefix("```sh").and_then(|s| s.strip_suffix("```")).expect("one sh block");
    script.to_string()
}

#[test]
fn the_self_hosted_walkthrough_runs_from_an_empty_database_to_a_first_check() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("policies"), &dir.path().join("policies"));
    std::fs::create_dir_all(dir.path().join("examples")).unwrap();
    std::fs::copy(root().join("examples/directory.csv"), dir.path().join("examples/directory.csv")).unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "policies"]);
    git(dir.path(), &["commit", "-q", "-m", "policies"]);

    let port = common::serve::free_port();
    let script = walkthrough().replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    // The server runs in the background, as in the docs: stop it however the script ends.
    let script = format!("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}\n");
    let bin = Path::new(env!("CARGO_BIN_EXE_budgit")).parent().unwrap().to_owned();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()))
        .env("HOME", dir.path())
        .env("NO_COLOR", "1");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(command.output());
    });
    let out = rx.recv_timeout(Duration::from_secs(180)).expect("the walkthrough hung").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(out.status.success(), "{stdout}\n--- stderr\n{stderr}\n--- serve.log\n{log}");

    assert!(
        stdout.contains(
            "imported 358 users from `examples/directory.csv`: 358 created, 0 updated, 0 unchanged\n"
        ),
        "{stdout}"
    );
    // The dry run plans the limits, the real run applies them, and the check passes.
    let check: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(check["allowed"], true, "{check}");
    assert!(check["reservation_id"].is_string(), "{check}");
    assert!(dir.path().join("budgit.db").is_file());
    // The token came from the environment: the service generated (and printed) none.
    assert!(!log.contains("admin token (shown once"), "{log}");
}
