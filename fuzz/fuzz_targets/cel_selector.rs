//! Group selectors: `select::Selector::compile` on any text, then evaluation over a
//! small directory, and `validate` on a group that uses the text as its selector.
//!
//! Laws beyond "no panic":
//! - a compiled selector's bulk evaluation (`Selector::matches`: column scans,
//!   bitsets, memoised interpretation) gives exactly the reference interpreter's
//!   answers (`select::interpret_all`), matches and errors alike;
//! - a selector that does not compile never passes `validate`: its group gets an
//!   error finding.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use budgit_engine::directory::{AttrValue, Directory, User};
use budgit_engine::load::Source;
use budgit_engine::model::AttributeType;
use budgit_engine::select::{Selector, interpret_all};
use budgit_engine::validate::{ValidateOptions, validate_sources};
use budgit_engine::{Report, Severity};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: fuzz
timezone: UTC
period: month
default:
  credits: 100
attributes:
  contractor: bool
  department: string
  idp_groups: list
  level: number
  title: string
";

fuzz_target!(|data: &[u8]| {
    let Ok(expr) = std::str::from_utf8(data) else { return };
    let dir = directory();
    let compiled = Selector::compile(expr, &dir.attributes);
    match &compiled {
        Ok(selector) => {
            let bulk = selector.matches(dir);
            let reference = interpret_all(expr, dir)
                .unwrap_or_else(|e| panic!("compiled, but the interpreter refuses `{expr}`: {e}"));
            assert_eq!(bulk, reference, "bulk evaluation differs from the interpreter for `{expr}`");
        }
        Err(_) => {
            let report = validate_group(expr);
            assert!(
                report.diagnostics.iter().any(|d| d.severity == Severity::Error),
                "`{expr}` does not compile, yet validates: {report:?}"
            );
        }
    }
});

/// Users covering every kind of value: missing, empty, typical and odd.
fn directory() -> &'static Directory {
    static DIR: OnceLock<Directory> = OnceLock::new();
    DIR.get_or_init(|| {
        let attributes = BTreeMap::from([
            ("contractor".to_string(), AttributeType::Bool),
            ("department".to_string(), AttributeType::String),
            ("idp_groups".to_string(), AttributeType::List),
            ("level".to_string(), AttributeType::Number),
            ("title".to_string(), AttributeType::String),
        ]);
        let mut dir = Directory::new(&attributes);
        let s = |v: &str| AttrValue::String(v.to_string());
        let l = |v: &[&str]| AttrValue::List(v.iter().map(|x| x.to_string()).collect());
        let m = AttrValue::Missing;
        // attributes in name order: contractor, department, idp_groups, level, title
        let users = [
            (
                "ada@example.com",
                [
                    AttrValue::Bool(false),
                    s("Engineering"),
                    l(&["eng", "oncall"]),
                    AttrValue::Number(3.0),
                    s("Staff Engineer"),
                ],
            ),
            (
                "bob@example.com",
                [AttrValue::Bool(true), s("Sales"), l(&[]), AttrValue::Number(1.5), s("Intern")],
            ),
            ("cy@example.com", [m.clone(), m.clone(), m.clone(), m.clone(), m.clone()]),
            (
                "dee@example.com",
                [AttrValue::Bool(false), s("Engineering"), l(&["eng"]), AttrValue::Number(-0.0), s("")],
            ),
            (
                "eve@example.com",
                [
                    m.clone(),
                    s("Ünïcödé ✓"),
                    l(&["a", "a", ""]),
                    AttrValue::Number(1e300),
                    s("Intern, Engineering"),
                ],
            ),
            (
                "fay@example.com",
                [AttrValue::Bool(true), s("engineering"), l(&["oncall"]), AttrValue::Number(0.1), m],
            ),
        ];
        for (email, attrs) in users {
            dir.push(User { email: email.to_string(), attrs: attrs.to_vec() });
        }
        dir
    })
}

/// Validates a workspace and one group whose selector is `expr`.
fn validate_group(expr: &str) -> Report {
    // A JSON string literal is a YAML double-quoted scalar with the same value.
    let quoted = serde_json::to_string(expr).unwrap_or_default();
    let group = format!(
        "apiVersion: budgit/v1\nkind: Group\nname: fuzzed\nselector: {quoted}\npriority: 1\nlimit:\n  credits: 10\n"
    );
    let source =
        |path: &str, text: &str| Source { path: Arc::from(path), text: Arc::from(text), commit: None };
    let sources = vec![source("workspace.yaml", WORKSPACE), source("groups/fuzzed.yaml", &group)];
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).single().unwrap_or_default();
    validate_sources(sources, Vec::new(), &ValidateOptions { now }).report
}
