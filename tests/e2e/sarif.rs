//! `validate --format sarif` checked against the official SARIF 2.1.0 JSON Schema.
//!
//! `sarif-schema-2.1.0.json` beside this file is the OASIS schema as published
//! (`$id` `…/sarif-spec/master/Schemata/sarif-schema-2.1.0.json`), vendored so the
//! test needs no network.

use std::path::Path;

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
    // A finding with no place (an empty repository) is still a valid result.
    let empty = tempfile::tempdir().unwrap();
    std::fs::create_dir(empty.path().join("policies")).unwrap();
    let log = assert_valid_sarif(&validator, empty.path());
    assert_eq!(log["runs"][0]["results"][0]["ruleId"], "repo/empty");
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
