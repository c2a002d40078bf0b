use std::path::Path;

use chrono::{DateTime, Utc};

use super::*;
use crate::load::git::tests::commit_files;

const WORKSPACE: &str = "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ntimezone: America/New_York\n\
default:\n  credits: 100\noverrides:\n  review_after_days: 60\n  review_renewals: 3\n";

fn over(name: &str, user: &str, starts: &str, expires: &str) -> String {
    format!(
        "apiVersion: budgit/v1\nkind: Override\nname: {name}\nuser: {user}\nadd:\n  credits: 50\n\
         starts: {starts}\nexpires: {expires}\nreason: test\n"
    )
}

fn remove(repo: &git2::Repository, path: &str) {
    std::fs::remove_file(repo.workdir().unwrap().join(path)).unwrap();
    let mut index = repo.index().unwrap();
    index.remove_path(Path::new(path)).unwrap();
    index.write().unwrap();
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// Ann's raise renewed twice (each time the old file removed, as people do), Bob's
/// one-off from long ago and his next one: only Ann's run is drift.
fn repository() -> (tempfile::TempDir, GitRepo) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(tmp.path()).unwrap();
    commit_files(
        &repo,
        &[
            ("policies/workspace.yaml", WORKSPACE.to_string()),
            ("policies/overrides/ann-q3.yaml", over("ann-q3", "ann@acme.com", "2026-09-01", "2026-10-01")),
            ("policies/overrides/bob-jan.yaml", over("bob-jan", "bob@acme.com", "2026-01-01", "2026-01-10")),
        ],
        "first",
    );
    remove(&repo, "policies/overrides/ann-q3.yaml");
    commit_files(
        &repo,
        &[("policies/overrides/ann-oct.yaml", over("ann-oct", "Ann@acme.com", "2026-10-01", "2026-11-01"))],
        "renew",
    );
    remove(&repo, "policies/overrides/ann-oct.yaml");
    // a day between expiry and the next start is still back to back
    commit_files(
        &repo,
        &[
            ("policies/overrides/ann-nov.yaml", over("ann-nov", "ann@acme.com", "2026-11-02", "2026-12-01")),
            ("policies/overrides/bob-dec.yaml", over("bob-dec", "bob@acme.com", "2026-11-20", "2026-12-20")),
        ],
        "renew again",
    );
    let git = GitRepo::discover(tmp.path()).unwrap();
    (tmp, git)
}

#[test]
fn statuses_and_days_left_are_counted_in_the_workspace_zone() {
    let (_tmp, git) = repository();
    let read = git.read_policies("HEAD", "policies").unwrap();
    let policies = parse(read.sources).unwrap();
    // 02:00 UTC on the 15th is still the 14th in New York
    let rows = list(&policies, at("2026-11-15T02:00:00Z"));
    let got: Vec<(&str, Status, i64, Option<i64>, u32)> =
        rows.iter().map(|r| (r.name.as_str(), r.status, r.days_left, r.starts_in, r.line)).collect();
    assert_eq!(
        got,
        [
            ("bob-jan", Status::Expired, -308, None, 3),
            ("ann-nov", Status::Active, 17, None, 3),
            ("bob-dec", Status::Upcoming, 36, Some(6), 3),
        ]
    );
    assert_eq!(rows[1].file, "overrides/ann-nov.yaml");
    assert_eq!(rows[1].expires_at, at("2026-12-01T05:00:00Z"));
}

#[test]
fn renewals_found_through_history_are_flagged_with_their_reasons() {
    let (_tmp, git) = repository();
    let head = git.commit_info("HEAD").unwrap().sha;
    let review = review(&git, "HEAD", "policies", at("2026-11-15T12:00:00Z")).unwrap();
    assert_eq!(review.commit, head);
    assert_eq!((review.overrides, review.seen), (3, 5));
    assert_eq!((review.review_after_days, review.review_renewals), (60, 3));
    assert_eq!(review.findings.len(), 1, "{:#?}", review.findings);
    let f = &review.findings[0];
    assert_eq!((f.user.as_str(), f.name.as_str(), f.status), ("ann@acme.com", "ann-nov", Status::Active));
    assert_eq!(f.since.to_string(), "2026-09-01");
    assert_eq!(f.days, 75);
    let codes: Vec<&str> = f.reasons.iter().map(|r| r.code).collect();
    assert_eq!(codes, ["review/long-running", "review/renewed"]);
    assert!(f.reasons[1].message.contains("ann-q3 → ann-oct → ann-nov"), "{}", f.reasons[1].message);
    let run: Vec<(&str, bool)> = f.run.iter().map(|l| (l.name.as_str(), l.current)).collect();
    assert_eq!(run, [("ann-q3", false), ("ann-oct", false), ("ann-nov", true)]);
    assert_eq!(f.run[0].added_in.len(), 12);
}

#[test]
fn a_break_longer_than_a_day_ends_a_run_and_the_defaults_apply_without_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(tmp.path()).unwrap();
    let workspace = "apiVersion: budgit/v1\nkind: Workspace\nname: acme\ndefault:\n  credits: 100\n";
    commit_files(
        &repo,
        &[
            ("policies/workspace.yaml", workspace.to_string()),
            ("policies/overrides/a1.yaml", over("a1", "ann@acme.com", "2026-06-01", "2026-07-01")),
            ("policies/overrides/a2.yaml", over("a2", "ann@acme.com", "2026-07-01", "2026-08-01")),
            // two days after a2 expired: a new run
            ("policies/overrides/a3.yaml", over("a3", "ann@acme.com", "2026-08-03", "2026-09-01")),
        ],
        "first",
    );
    let git = GitRepo::discover(tmp.path()).unwrap();
    let now = at("2026-08-10T12:00:00Z");
    let review = review(&git, "HEAD", "policies", now).unwrap();
    assert_eq!((review.review_after_days, review.review_renewals), (90, 3));
    assert!(review.findings.is_empty(), "{:#?}", review.findings);
    // with the gap closed, the three are one run of three
    commit_files(
        &repo,
        &[("policies/overrides/a3.yaml", over("a3", "ann@acme.com", "2026-08-02", "2026-09-01"))],
        "close the gap",
    );
    let review = super::review(&git, "HEAD", "policies", now).unwrap();
    assert_eq!(review.findings.len(), 1);
    assert_eq!(review.findings[0].reasons[0].code, "review/renewed");
    // once every override of the run has expired there is nothing left to act on
    let later = super::review(&git, "HEAD", "policies", at("2026-09-02T12:00:00Z")).unwrap();
    assert!(later.findings.is_empty());
}
