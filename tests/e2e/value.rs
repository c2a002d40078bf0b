//! `evaluate --by context.<key>` and `--outcomes`: usage per repository, ticket and
//! workflow with the groups that spent it, and credits per outcome, in every format, on
//! the example policies and directory with a small usage file that carries a context.

use std::path::Path;

use serde_json::Value;

use crate::{NOW, Run, budgit, repo_root};

const USAGE: &str = "\
date,user,product,model,credits,context.repo,context.ticket,context.workflow,context.note
2026-11-03,alice.nguyen@acme.com,codex,gpt-5-codex,120.5,acme/payments,ENG-1,agent-loop,\"retry, again\"
2026-11-04,alice.nguyen@acme.com,codex,gpt-5-codex,80,acme/payments,ENG-1,,
2026-11-05,luis.ramirez@acme.com,codex,gpt-5-codex,30.25,acme/infra,PLAT-7,ci-review,
2026-11-05,nora.kim@acme.com,codex,gpt-5-codex,12,acme/infra,,,
2026-11-06,ext.kpatel@acme.com,chatgpt,gpt-5,7.5,,,,
2026-10-30,alice.nguyen@acme.com,codex,gpt-5-codex,1000,acme/payments,,,
";

const OUTCOMES: &str = "\
time,kind,id,repo,user,team
2026-11-10T15:00:00Z,pull_request,acme/payments#1,acme/payments,Alice.Nguyen@acme.com,
2026-11-11T15:00:00Z,pull_request,acme/infra#1,acme/infra,luis.ramirez@acme.com,
2026-11-12T15:00:00Z,pull_request,acme/infra#2,acme/infra,,platform-infra
2026-11-12,ticket,PLAT-7,,luis.ramirez@acme.com,
2026-11-13,Ticket,ENG-1,,,
2026-10-01,pull_request,acme/payments#0,acme/payments,alice.nguyen@acme.com,
";

/// A directory holding the usage and outcomes files.
fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("usage.csv"), USAGE).unwrap();
    std::fs::write(dir.path().join("outcomes.csv"), OUTCOMES).unwrap();
    // the same usage as JSON Lines, context as an object
    let mut jsonl = String::new();
    for line in USAGE.lines().skip(1) {
        let f: Vec<&str> = line.splitn(9, ',').collect();
        let mut context = serde_json::Map::new();
        for (k, v) in ["repo", "ticket", "workflow"].iter().zip(&f[5..8]) {
            if !v.is_empty() {
                context.insert((*k).to_string(), Value::String((*v).to_string()));
            }
        }
        let mut row = serde_json::json!({ "date": f[0], "user": f[1], "product": f[2], "model": f[3], "credits": f[4] });
        if !context.is_empty() {
            row["context"] = Value::Object(context);
        }
        jsonl.push_str(&format!("{row}\n"));
    }
    std::fs::write(dir.path().join("usage.jsonl"), jsonl).unwrap();
    dir
}

fn evaluate(cwd: &Path, usage: &str, extra: &[&str]) -> Run {
    let root = repo_root();
    let (policies, directory) = (root.join("policies"), root.join("examples/directory.csv"));
    let mut args = vec![
        "evaluate",
        "--policies",
        policies.to_str().unwrap(),
        "--directory",
        directory.to_str().unwrap(),
        "--usage",
        usage,
        "--now",
        NOW,
    ];
    args.extend(extra);
    budgit(cwd, &args)
}

#[test]
fn evaluate_by_repository_with_outcomes_as_a_table() {
    let dir = files();
    let run = evaluate(
        dir.path(),
        "usage.csv",
        &["--by", "context.repo", "--outcomes", "outcomes.csv", "--top", "3"],
    );
    insta::assert_snapshot!(run.snapshot());
}

#[test]
fn evaluate_by_ticket_and_workflow_as_csv() {
    let dir = files();
    let ticket = evaluate(dir.path(), "usage.csv", &["--by", "context.ticket", "--format", "csv"]);
    let workflow = evaluate(dir.path(), "usage.csv", &["--by", "context.workflow", "--format", "csv"]);
    insta::assert_snapshot!(format!("{}\n---\n{}", ticket.snapshot(), workflow.snapshot()));
}

#[test]
fn evaluate_with_outcomes_as_csv_and_by_group() {
    let dir = files();
    let outcomes = evaluate(dir.path(), "usage.csv", &["--outcomes", "outcomes.csv", "--format", "csv"]);
    let groups = evaluate(dir.path(), "usage.csv", &["--by", "group", "--format", "csv"]);
    insta::assert_snapshot!(format!("{}\n---\n{}", outcomes.snapshot(), groups.snapshot()));
}

#[test]
fn evaluate_by_repository_as_json_matches_its_schema_and_reads_json_lines_alike() {
    let dir = files();
    let args = ["--by", "context.repo", "--outcomes", "outcomes.csv", "--format", "json"];
    let run = evaluate(dir.path(), "usage.csv", &args);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let schema = crate::outputs::validator("evaluate");
    let errors: Vec<String> =
        schema.iter_errors(&v).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}");
    insta::assert_snapshot!(serde_json::to_string_pretty(&v["value"]).unwrap());
    let jsonl = evaluate(dir.path(), "usage.jsonl", &args);
    assert_eq!(jsonl.code, 0, "{}", jsonl.snapshot());
    let w: Value = serde_json::from_str(&jsonl.stdout).unwrap();
    assert_eq!(w["value"], v["value"]);
    // without --by or --outcomes there is no value report
    let plain = evaluate(dir.path(), "usage.csv", &["--format", "json"]);
    let p: Value = serde_json::from_str(&plain.stdout).unwrap();
    assert!(p.get("value").is_none());
}

#[test]
fn a_bad_outcome_row_fails_the_run_with_strict() {
    let dir = files();
    let run = evaluate(dir.path(), "usage.csv", &["--outcomes", "outcomes.csv", "--strict"]);
    assert_eq!(run.code, 1, "{}", run.snapshot());
    assert!(run.stderr.contains("outcomes.csv:6:12"), "{}", run.stderr);
    let missing = evaluate(dir.path(), "usage.csv", &["--outcomes", "nope.csv"]);
    assert_eq!(missing.code, 2, "{}", missing.snapshot());
}
