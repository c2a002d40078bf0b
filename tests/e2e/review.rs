//! `budgit review` on a real git repository whose history holds renewals: the
//! overrides with their status, the flagged person, exit status 1, and the JSON.

use std::path::Path;

use serde_json::Value;

use crate::{NOW, budgit};

const WORKSPACE: &str = "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: UTC\n\
default:\n  credits: 100\noverrides:\n  review_after_days: 60\n";

fn over(name: &str, starts: &str, expires: &str) -> String {
    format!(
        "apiVersion: budgit/v1\nkind: Override\nname: {name}\nuser: ann@acme.com\nadd:\n  credits: 50\n\
         starts: {starts}\nexpires: {expires}\nreason: sprint\n"
    )
}

fn write(root: &Path, path: &str, text: &str) {
    let full = root.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

#[test]
fn renewals_in_history_are_flagged_with_exit_status_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let date = "2026-09-01T09:00:00Z";
    crate::git::git(root, &["init", "-q", "-b", "main"], date);
    write(root, "policies/workspace.yaml", WORKSPACE);
    write(root, "policies/overrides/ann-sep.yaml", &over("ann-sep", "2026-09-01", "2026-10-01"));
    crate::git::git(root, &["add", "-A"], date);
    crate::git::git(root, &["commit", "-q", "-m", "ann"], date);
    let date = "2026-10-01T09:00:00Z";
    crate::git::git(root, &["rm", "-q", "policies/overrides/ann-sep.yaml"], date);
    write(root, "policies/overrides/ann-oct.yaml", &over("ann-oct", "2026-10-01", "2026-11-01"));
    crate::git::git(root, &["add", "-A"], date);
    crate::git::git(root, &["commit", "-q", "-m", "renew"], date);
    let date = "2026-11-01T09:00:00Z";
    crate::git::git(root, &["rm", "-q", "policies/overrides/ann-oct.yaml"], date);
    write(root, "policies/overrides/ann-nov.yaml", &over("ann-nov", "2026-11-01", "2026-12-01"));
    crate::git::git(root, &["add", "-A"], date);
    crate::git::git(root, &["commit", "-q", "-m", "renew again"], date);

    let run = budgit(root, &["review", "--now", NOW]);
    assert_eq!(run.code, 1, "{}", run.snapshot());
    assert!(run.stdout.contains("1 active, 0 upcoming, 0 expired"), "{}", run.stdout);
    assert!(run.stdout.contains("4 days left"), "{}", run.stdout);
    assert!(
        run.stdout.contains("ann@acme.com: ann-nov (active) policies/overrides/ann-nov.yaml:3"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("review/renewed: 3 overrides back to back since 2026-09-01"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("review/long-running: overrides without a break for 87 days"),
        "{}",
        run.stdout
    );

    let run = budgit(root, &["review", "--now", NOW, "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.snapshot());
    let out: Value = serde_json::from_str(&run.stdout).unwrap();
    let schema = crate::outputs::validator("review");
    let errors: Vec<String> =
        schema.iter_errors(&out).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "review fails its schema:\n{}\n{}", errors.join("\n"), run.stdout);
    assert_eq!(out["overrides"][0]["days_left"], 4);
    let finding = &out["review"]["findings"][0];
    let run_names: Vec<&str> =
        finding["run"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(run_names, ["ann-sep", "ann-oct", "ann-nov"]);

    // before the third override there was nothing to review
    let run = budgit(root, &["review", "--ref", "HEAD~1", "--now", "2026-10-15T12:00:00Z"]);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    assert!(run.stdout.contains("nothing to review"), "{}", run.stdout);
}
