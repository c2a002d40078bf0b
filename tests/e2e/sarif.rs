//! `validate --format sarif` checked against the official SARIF 2.1.0 JSON Schema,
//! and against GitHub code scanning's ingestion rules with the SARIF multitool.
//!
//! `sarif-schema-2.1.0.json` beside this file is the OASIS schema as published
//! (`$id` `…/sarif-spec/master/Schemata/sarif-schema-2.1.0.json`), vendored so the
//! test needs no network. The multitool is the npm package in `tests/sarif`
//! (`npm ci` there; `.ci/run` does it, and the test does it when it is missing).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::validate::validate;
use crate::{repo_root, with_fixture};

fn validator() -> jsonschema::Validator {
    let text = include_str!("sarif-schema-2.1.0.json");
    let mut schema: Value = serde_json::from_str(text).unwrap();
    // The published schema's `language` patterns, `^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`,
    // have a stray `]`, which fails the meta-schema's `regex` format check before any
    // output is looked at. Use the pattern meant; budgit never sets `language`, and
    // every other rule of the schema applies unchanged.
    assert_eq!(fix_language_patterns(&mut schema), 2);
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

fn fix_language_patterns(value: &mut Value) -> usize {
    const BROKEN: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
    match value {
        Value::Object(map) => {
            let mut fixed = 0;
            if map.get("pattern").is_some_and(|p| p == BROKEN) {
                map.insert("pattern".to_owned(), Value::from("^[a-zA-Z]{2}(-[a-zA-Z]{2})?$"));
                fixed += 1;
            }
            fixed + map.values_mut().map(fix_language_patterns).sum::<usize>()
        }
        Value::Array(items) => items.iter_mut().map(fix_language_patterns).sum(),
        _ => 0,
    }
}

fn assert_valid_sarif(validator: &jsonschema::Validator, cwd: &Path) -> Value {
    let run = validate(cwd, "sarif");
    let log: Value = serde_json::from_str(&run.stdout).unwrap();
    let errors: Vec<String> =
        validator.iter_errors(&log).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "SARIF output fails the schema:\n{}\n{}", errors.join("\n"), run.stdout);
    log
}

#[test]
fn output_validates_against_the_sarif_schema() {
    let validator = validator();
    for case in ["clean", "malformed", "unknown-field", "findings", "warnings"] {
        let dir = with_fixture(case);
        let log = assert_valid_sarif(&validator, dir.path());
        let results = log["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.is_empty(), case == "clean", "{case}");
        if case == "findings" {
            assert!(results.iter().any(|r| r.get("relatedLocations").is_some()), "{log}");
        }
    }
    assert_valid_sarif(&validator, &repo_root());
    // A finding about no file (an empty repository) is still a valid result, placed at
    // the policy directory.
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("policies")).unwrap();
    let log = assert_valid_sarif(&validator, empty.path());
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "repo/empty");
    assert_eq!(
        log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "policies/"
    );
}

#[test]
fn the_schema_check_can_fail() {
    // Guards the test above against a validator that accepts anything.
    let validator = validator();
    let dir = with_fixture("unknown-field");
    let mut log: Value = serde_json::from_str(&validate(dir.path(), "sarif").stdout).unwrap();
    assert!(validator.is_valid(&log));
    log["runs"][0]["results"][0]["level"] = Value::from("fatal");
    assert!(!validator.is_valid(&log));
    log["version"] = Value::from("2.0.0");
    assert!(!validator.is_valid(&log));
}

/// The anchors GitHub gives the headings of a Markdown file: lowercase, spaces to
/// `-`, punctuation other than `-` and `_` dropped (inline code marks included).
fn heading_anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|heading| {
            heading
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
                .map(|c| if c == ' ' { '-' } else { c.to_ascii_lowercase() })
                .collect()
        })
        .collect()
}

#[test]
fn help_links_land_on_a_heading() {
    let docs = std::fs::read_to_string(repo_root().join("docs/diagnostics.md")).unwrap();
    let anchors = heading_anchors(&docs);
    for case in ["findings", "unknown-field", "malformed", "warnings"] {
        let dir = with_fixture(case);
        let log: Value = serde_json::from_str(&validate(dir.path(), "sarif").stdout).unwrap();
        for rule in log["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap() {
            let uri = rule["helpUri"].as_str().unwrap();
            let anchor = uri.rsplit_once('#').unwrap().1;
            assert!(anchors.iter().any(|a| a == anchor), "{uri} has no heading in docs/diagnostics.md");
        }
    }
}

#[test]
fn rules_link_to_the_diagnostics_reference() {
    let dir = with_fixture("unknown-field");
    let log: Value = serde_json::from_str(&validate(dir.path(), "sarif").stdout).unwrap();
    let driver = &log["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], "budgit");
    for rule in driver["rules"].as_array().unwrap() {
        let id = rule["id"].as_str().unwrap();
        let uri = rule["helpUri"].as_str().unwrap();
        assert!(uri.contains("/docs/diagnostics.md#") && uri.ends_with(&id.replace('/', "")), "{uri}");
    }
}

/// `tests/sarif`: the npm project holding the SARIF multitool.
fn multitool_dir() -> PathBuf {
    repo_root().join("tests/sarif")
}

/// The SARIF multitool of `@microsoft/sarif-multitool` (npm), installed with `npm ci`
/// in `tests/sarif` when missing. Its Linux package ships a self-contained .NET build,
/// so it needs Node.js and npm to install and no .NET runtime to run.
fn multitool() -> PathBuf {
    let dir = multitool_dir();
    let tool = dir.join("node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool");
    if !tool.exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run `npm ci` in tests/sarif ({e}): the SARIF check needs Node.js 20+ with npm")
            });
        assert!(
            out.status.success(),
            "`npm ci` in tests/sarif failed (it needs the npm registry the first time):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(tool.exists(), "`npm ci` in tests/sarif did not install {}", tool.display());
    tool
}

/// The multitool's findings on SARIF logs with GitHub code scanning's ingestion rules
/// (`GH…`, what an upload is refused or degraded for) and the SARIF spec's own rules,
/// errors and warnings only: one line per finding, naming the log; empty when every
/// log passes. One run for all logs: the tool takes a second to start.
fn multitool_findings(tool: &Path, logs: &[(&str, String)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("multitool-findings.json");
    let mut command = Command::new(tool);
    command
        .args(["validate", "--rule-kind", "Gh;Sarif", "--level", "Error;Warning", "--output"])
        .arg(&output);
    for (name, log) in logs {
        let input = dir.path().join(format!("{name}.sarif"));
        std::fs::write(&input, log).unwrap();
        command.arg(input);
    }
    // No ICU needed: the tool compares no culture-specific text here.
    let out = command.env("DOTNET_SYSTEM_GLOBALIZATION_INVARIANT", "1").output().unwrap();
    // The tool exits 0 on a bad command line too; the output file is the sign it ran.
    assert!(
        out.status.success() && output.exists(),
        "the multitool failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let findings: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();
    findings["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let place = &r["locations"][0]["physicalLocation"];
            let file = place["artifactLocation"]["uri"].as_str().unwrap_or("?");
            let file = file.rsplit('/').next().unwrap_or(file);
            format!("{file} {}: {} {}", place["region"], r["ruleId"].as_str().unwrap_or("?"), r["message"])
        })
        .collect()
}

#[test]
fn output_passes_github_code_scanning_ingestion_rules() {
    let tool = multitool();
    let mut cases: Vec<(&str, tempfile::TempDir)> =
        ["clean", "malformed", "unknown-field", "findings", "warnings"]
            .into_iter()
            .map(|case| (case, with_fixture(case)))
            .collect();
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("policies")).unwrap();
    cases.push(("empty", empty));
    let mut logs: Vec<(&str, String)> =
        cases.iter().map(|(case, dir)| (*case, validate(dir.path(), "sarif").stdout)).collect();
    logs.push(("example", validate(&repo_root(), "sarif").stdout));
    let findings = multitool_findings(&tool, &logs);
    assert!(findings.is_empty(), "GitHub would not ingest these logs:\n{}", findings.join("\n"));
}

#[test]
fn the_ingestion_check_can_fail() {
    // Guards the test above: a rule without its descriptions is what GitHub refuses.
    let tool = multitool();
    let dir = with_fixture("findings");
    let mut log: Value = serde_json::from_str(&validate(dir.path(), "sarif").stdout).unwrap();
    let rule = log["runs"][0]["tool"]["driver"]["rules"][0].as_object_mut().unwrap();
    rule.remove("shortDescription");
    rule.remove("help");
    let findings = multitool_findings(&tool, &[("findings", serde_json::to_string_pretty(&log).unwrap())]);
    assert!(findings.iter().any(|f| f.contains(": GH2012 ")), "{findings:?}");
}

#[test]
fn regions_carry_their_end() {
    let dir = with_fixture("findings");
    let log: Value = serde_json::from_str(&validate(dir.path(), "sarif").stdout).unwrap();
    for result in log["runs"][0]["results"].as_array().unwrap() {
        let region = &result["locations"][0]["physicalLocation"]["region"];
        let start = (region["startLine"].as_u64().unwrap(), region["startColumn"].as_u64().unwrap());
        let end = (region["endLine"].as_u64().unwrap(), region["endColumn"].as_u64().unwrap());
        assert!(end > start, "{result}");
    }
}
