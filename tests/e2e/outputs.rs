//! Every machine-readable output validates against its checked-in schema in
//! `schemas/` (`<command>-output.schema.json`): `validate`, `resolve`, `explain`,
//! `evaluate`, `plan` and `history` with `--format json` (`review`'s is checked in
//! `review.rs`), run on the fixtures, the
//! example policies, directory and usage, and a real git repository for `plan` and
//! `history`.

use std::path::Path;

use serde_json::Value;

use crate::{NOW, budgit, repo_root, with_fixture};

/// The checked-in schema of a command's output.
pub(crate) fn validator(command: &str) -> jsonschema::Validator {
    let path = repo_root().join(format!("schemas/{command}-output.schema.json"));
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

/// Runs a command with `--format json` and checks its output; returns the output.
fn check(validator: &jsonschema::Validator, cwd: &Path, args: &[&str], expected: &[i32]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let run = budgit(cwd, &all);
    assert!(expected.contains(&run.code), "`budgit {}`:\n{}", all.join(" "), run.snapshot());
    let value: Value = serde_json::from_str(&run.stdout).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "`budgit {}` fails its schema:\n{}\n{}",
        all.join(" "),
        errors.join("\n"),
        run.stdout
    );
    value
}

const DIRECTORY: &str = "examples/directory.csv";
const USAGE: &str = "examples/usage.csv";

#[test]
fn validate_output_matches_its_schema() {
    let schema = validator("validate");
    for case in ["clean", "malformed", "unknown-field", "findings", "warnings"] {
        let dir = with_fixture(case);
        let v = check(&schema, dir.path(), &["validate", "--now", NOW], &[0, 1]);
        assert_eq!(v["diagnostics"].as_array().unwrap().is_empty(), case == "clean", "{case}");
    }
    check(&schema, &repo_root(), &["validate", "--now", NOW], &[0]);
}

#[test]
fn resolve_and_explain_outputs_match_their_schemas() {
    let root = repo_root();
    let resolve = validator("resolve");
    let all = check(&resolve, &root, &["resolve", "--directory", DIRECTORY, "--now", NOW], &[0]);
    let users: Vec<String> =
        all["users"].as_array().unwrap().iter().map(|u| u["user"].as_str().unwrap().to_owned()).collect();
    assert!(users.len() > 20, "{users:?}");
    let explain = validator("explain");
    // A user decided by each kind of rule: an override, a group, the default.
    let mut picked: Vec<&str> = Vec::new();
    for kind in ["override", "group", "default"] {
        let user = all["users"].as_array().unwrap().iter().find(|u| u["source"]["kind"] == kind);
        picked.push(user.unwrap_or_else(|| panic!("no user decided by a {kind}"))["user"].as_str().unwrap());
    }
    for user in picked {
        check(&explain, &root, &["explain", user, "--directory", DIRECTORY, "--now", NOW], &[0]);
    }
    check(&resolve, &root, &["resolve", "--directory", DIRECTORY, "--user", &users[0], "--now", NOW], &[0]);
}

#[test]
fn evaluate_output_matches_its_schema() {
    let root = repo_root();
    let schema = validator("evaluate");
    for now in [NOW, "2026-11-03T08:00:00Z", "2026-12-15T12:00:00Z"] {
        let v = check(
            &schema,
            &root,
            &["evaluate", "--directory", DIRECTORY, "--usage", USAGE, "--now", now],
            &[0],
        );
        assert!(!v["users"].as_array().unwrap().is_empty());
    }
}

#[test]
fn history_output_matches_its_schema() {
    let schema = validator("history");
    let repo = crate::git::scenario();
    // Bob's limit changes at four commits; Eve's and Ann's histories have other shapes
    // (the history test in git.rs shows them).
    for user in ["bob@acme.com", "eve@acme.com", "ann@acme.com"] {
        let v = check(
            &schema,
            repo.path(),
            &["history", user, "--directory", "directory.csv", "--now", NOW],
            &[0],
        );
        assert_eq!(v["ref"], "HEAD");
    }
}

#[test]
fn plan_output_matches_its_schema() {
    let schema = validator("plan");
    let check_plans = |repo: &Path, pairs: &[(&str, &str)]| {
        for (base, head) in pairs {
            let run = crate::git::plan(repo, base, Some(head), "json", &[]);
            assert!(run.code == 0 || run.code == 3, "{}", run.snapshot());
            let value: Value = serde_json::from_str(&run.stdout).unwrap();
            let errors: Vec<String> =
                schema.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
            assert!(
                errors.is_empty(),
                "plan {base}..{head} fails its schema:\n{}\n{}",
                errors.join("\n"),
                run.stdout
            );
        }
    };
    // c1 → c2 raises a group, c2 → c3 adds an override, c3 → c4 one that has expired,
    // c4 → c5 is a refactor, c5 → c6 moves users between groups; backwards, each lowers
    // limits and removes what was added (negative deltas).
    let repo = crate::git::scenario();
    check_plans(
        repo.path(),
        &[("c1", "c2"), ("c2", "c3"), ("c3", "c4"), ("c4", "c5"), ("c5", "c6"), ("c6", "c1")],
    );
    // Pools and caps: p1 → p2 cuts a pool, p2 → p3 adds a group whose limit drops the
    // default's caps, and back.
    let repo = crate::git::pools_and_caps_scenario();
    check_plans(repo.path(), &[("p1", "p2"), ("p2", "p3"), ("p3", "p1")]);
}

#[test]
fn the_output_schemas_reject_other_shapes() {
    // Guards the tests above against schemas that accept anything.
    let dir = with_fixture("findings");
    let mut v = check(&validator("validate"), dir.path(), &["validate", "--now", NOW], &[1]);
    v["diagnostics"][0]["severity"] = Value::from("fatal");
    assert!(!validator("validate").is_valid(&v));
    let root = repo_root();
    let mut v =
        check(&validator("resolve"), &root, &["resolve", "--directory", DIRECTORY, "--now", NOW], &[0]);
    v["users"][0].as_object_mut().unwrap().remove("credits");
    assert!(!validator("resolve").is_valid(&v));
    let mut v = check(
        &validator("evaluate"),
        &root,
        &["evaluate", "--directory", DIRECTORY, "--usage", USAGE, "--now", NOW],
        &[0],
    );
    v["users"][0]["status"] = Value::from("fine");
    assert!(!validator("evaluate").is_valid(&v));
}

#[test]
fn evaluate_reads_the_same_on_any_number_of_threads() {
    // A few megabytes, so each thread gets a chunk of its own; a quoted model holding
    // newlines, a bad row and an unknown user sit past the first cut.
    let root = repo_root();
    let example = std::fs::read_to_string(root.join(USAGE)).unwrap();
    let (header, rows) = example.split_once('\n').unwrap();
    let mut text = format!("{header}\n");
    for _ in 0..24 {
        text.push_str(rows);
    }
    let long_model = (0..2000).map(|k| format!("part {k}")).collect::<Vec<_>>().join("\n");
    text.push_str(&format!("2026-11-20,jordan.ellis@acme.com,codex,\"{long_model}\",3\n"));
    text.push_str("2026-11-31,jordan.ellis@acme.com,codex,gpt-5,1\n");
    text.push_str("2026-11-21,newcomer@acme.com,codex,gpt-5,2\n");
    text.push_str(rows);
    let dir = tempfile::tempdir().unwrap();
    let usage = dir.path().join("big.csv");
    std::fs::write(&usage, &text).unwrap();
    let usage = usage.to_string_lossy();
    let run = |threads: &str| {
        let args =
            ["evaluate", "--directory", DIRECTORY, "--usage", &usage, "--now", NOW, "--format", "json"];
        budgit(&root, &[&args[..], &["--threads", threads]].concat())
    };
    let one = run("1");
    assert_eq!(one.code, 0, "{}", one.snapshot());
    let bad_line = 1 + 24 * rows.lines().count() + 2000 + 1;
    assert!(one.stderr.contains(&format!("big.csv:{bad_line}:1")), "{}", one.stderr);
    assert!(one.stderr.contains("newcomer@acme.com"), "{}", one.stderr);
    for threads in ["2", "3", "8"] {
        let many = run(threads);
        assert_eq!(
            (many.code, &many.stdout, &many.stderr),
            (one.code, &one.stdout, &one.stderr),
            "{threads}"
        );
    }
    let zero = run("0");
    assert_eq!(zero.code, 2, "{}", zero.snapshot());
    assert!(zero.stderr.contains("--threads"), "{}", zero.stderr);
}
