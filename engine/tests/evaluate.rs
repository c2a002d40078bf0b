//! Evaluation case files: one YAML file per scenario under `evaluate_cases/`.
//!
//! Each case holds policy files, a directory file and usage files inline (read by
//! the real parsers, so bad rows and formats are exercised too), `now`, and
//! expectations: a subset of the `evaluate` JSON per user and group, totals, and
//! the input diagnostics as `file:line:column code`. The runner checks those and
//! snapshots the diagnostics and the whole JSON output so a reviewer sees every
//! answer, exact decimals included.

#![expect(clippy::expect_used, clippy::panic, reason = "test helpers fail the test on bad case files")]

use std::collections::BTreeMap;
use std::sync::Arc;

use budgit_engine::evaluate::{EvaluateOptions, evaluate};
use budgit_engine::input::{UsageFormat, parse_directory, parse_usage};
use budgit_engine::load::{PolicySet, Source, load_sources};
use budgit_engine::resolve::resolve;
use budgit_engine::usage_table::UsageTable;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

mod plain;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// What the scenario shows.
    description: String,
    /// The instant evaluated (RFC 3339).
    now: String,
    /// Policy files by path.
    policies: BTreeMap<String, String>,
    /// The directory file: its name (`.csv` or `.jsonl`) and text.
    directory: BTreeMap<String, String>,
    /// Usage files by name (`.csv`, `.jsonl`, `.json`), read in name order.
    #[serde(default)]
    usage: BTreeMap<String, String>,
    /// What must hold.
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// A subset of each named user's JSON.
    #[serde(default)]
    users: BTreeMap<String, Value>,
    /// A subset of each named group's JSON.
    #[serde(default)]
    groups: BTreeMap<String, Value>,
    /// A subset of the totals.
    #[serde(default)]
    totals: Option<Value>,
    /// A subset of the whole output (other top-level keys).
    #[serde(default)]
    output: Option<Value>,
    /// Every input diagnostic as `file:line:column code`, in order.
    #[serde(default)]
    diagnostics: Vec<String>,
}

fn load(case: &Case) -> PolicySet {
    let sources: Vec<Source> = case
        .policies
        .iter()
        .map(|(path, text)| Source { path: path.as_str().into(), text: text.as_str().into(), commit: None })
        .collect();
    let (policies, diagnostics) =
        budgit_engine::stack::with_large_stack(move || load_sources(sources)).expect("loader thread");
    assert!(diagnostics.is_empty(), "policies do not load: {diagnostics:#?}");
    policies
}

/// Checks that every key of `want` is in `got` with an equal value (recursively for
/// objects, element by element for arrays of the same length).
fn subset(path: &str, want: &Value, got: &Value) -> Result<(), String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, wv) in w {
                let gv = g.get(k).ok_or_else(|| format!("{path}.{k}: missing in {got}"))?;
                subset(&format!("{path}.{k}"), wv, gv)?;
            }
            Ok(())
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => {
            w.iter().zip(g).enumerate().try_for_each(|(i, (wv, gv))| subset(&format!("{path}[{i}]"), wv, gv))
        }
        (Value::Number(w), Value::Number(g)) if w.as_f64() == g.as_f64() => Ok(()),
        // A number expected as a string is compared by its exact text: credits are
        // exact JSON numbers, which a float comparison could not tell apart.
        (Value::String(w), Value::Number(g)) if w == g.as_str() => Ok(()),
        _ if want == got => Ok(()),
        _ => Err(format!("{path}: expected {want}, got {got}")),
    }
}

fn find<'a>(list: &'a Value, key: &str, name: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|i| i[key] == name))
        .unwrap_or_else(|| panic!("no {key} `{name}` in the output"))
}

#[test]
fn evaluate_cases() {
    insta::glob!("evaluate_cases/*.yaml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let case: Case = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let policies = load(&case);
        let ws = policies.workspace().expect("one workspace");
        let now = DateTime::parse_from_rfc3339(&case.now).unwrap().with_timezone(&Utc);
        let (dir_name, dir_text) = case.directory.iter().next().expect("a directory file");
        let jsonl = dir_name.ends_with(".jsonl");
        let (dir, mut diagnostics) =
            parse_directory(&Arc::from(dir_name.as_str()), dir_text.as_bytes(), jsonl, &ws.doc.attributes)
                .unwrap();
        let resolution = resolve(&policies, &dir, now).unwrap();
        let mut table = UsageTable::new(&dir);
        for (name, text) in &case.usage {
            let format = UsageFormat::from_path(std::path::Path::new(name));
            let found = parse_usage(
                &Arc::from(name.as_str()),
                text.as_bytes(),
                format,
                &mut table,
                resolution.timezone,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            diagnostics.extend(found);
        }
        diagnostics.extend(table.unknown_user_diagnostics());
        let evaluation = evaluate(&policies, &dir, &resolution, &table, EvaluateOptions { top: 5 }).unwrap();
        let json = serde_json::to_value(&evaluation).unwrap();

        let ctx = path.display();
        for (email, want) in &case.expect.users {
            subset(email, want, find(&json["users"], "user", email)).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        }
        for (group, want) in &case.expect.groups {
            subset(group, want, find(&json["groups"], "group", group))
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        }
        if let Some(want) = &case.expect.totals {
            subset("totals", want, &json["totals"]).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        }
        if let Some(want) = &case.expect.output {
            subset("output", want, &json).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        }
        let shown: Vec<String> = diagnostics
            .iter()
            .map(|d| {
                let l = d.location.as_ref().expect("input diagnostics have a location");
                format!("{}:{}:{} {}", l.file, l.line, l.column, d.code)
            })
            .collect();
        assert_eq!(shown, case.expect.diagnostics, "{ctx}: diagnostics");

        let rendered: Vec<String> = diagnostics
            .iter()
            .map(|d| {
                let l = d.location.as_ref().unwrap();
                let label = d.label.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
                format!(
                    "{}:{}:{}: {}[{}]: {}{label}",
                    l.file, l.line, l.column, d.severity, d.code, d.message
                )
            })
            .collect();
        insta::with_settings!({ description => case.description.trim(), omit_expression => true }, {
            let snapshot = serde_json::json!({ "diagnostics": rendered, "evaluate": json });
            insta::assert_yaml_snapshot!(plain::Plain(&snapshot));
        });
    });
}
