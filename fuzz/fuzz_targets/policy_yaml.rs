//! The policy loader: a file's bytes through the size and encoding check
//! (`load::files::check_bytes`) and `validate::validate_sources`, the entry point of
//! `budgit validate` (YAML with spans, JSON Schema, semantics, CEL, guardrails).
//! An odd first byte puts a fixed Workspace next to the file, so that groups,
//! overrides and guardrails reach the checks across documents.
//!
//! Laws beyond "no panic":
//! - no `internal/*` finding (validation always runs to the end);
//! - every finding in the fuzzed file points inside it: line and column from 1,
//!   the line within the file, the byte span on character boundaries within the
//!   text, and a known offset on the line it names;
//! - findings come out sorted, so output does not depend on file order.
#![no_main]

use std::sync::Arc;

use budgit_engine::Diagnostic;
use budgit_engine::load::Source;
use budgit_engine::load::files::check_bytes;
use budgit_engine::validate::{ValidateOptions, validate_sources};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: fuzz
timezone: UTC
period: month
default:
  credits: 100
  products: { codex: 50 }
attributes:
  department: string
  idp_groups: list
  level: number
  contractor: bool
overrides:
  max_days: 90
  require_reason: true
";

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let path: Arc<str> = Arc::from("fuzzed.yaml");
    let mut sources = Vec::new();
    let mut read_findings = Vec::new();
    let text = match check_bytes(&path, bytes.to_vec()) {
        Ok(text) => {
            sources.push(Source { path: path.clone(), text: Arc::from(text.as_str()), commit: None });
            text
        }
        Err(d) => {
            read_findings.push(d);
            String::new()
        }
    };
    if selector % 2 == 1 {
        sources.push(Source { path: Arc::from("workspace.yaml"), text: Arc::from(WORKSPACE), commit: None });
    }
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).single().unwrap_or_default();
    let report = validate_sources(sources, read_findings, &ValidateOptions { now }).report;

    for d in &report.diagnostics {
        assert!(!d.code.as_str().starts_with("internal/"), "validation did not run to the end: {d:?}");
        if let Some(at) = &d.location
            && &*at.file == "fuzzed.yaml"
            && !text.is_empty()
        {
            check_location(&text, at.line, at.column, at.offset, at.len, d);
        }
    }
    let mut sorted = report.clone();
    sorted.sort();
    let codes = |r: &budgit_engine::Report| {
        r.diagnostics.iter().map(|d| (d.code, d.message.clone())).collect::<Vec<_>>()
    };
    assert_eq!(codes(&report), codes(&sorted), "findings are not sorted");
});

fn check_location(text: &str, line: u32, column: u32, offset: usize, len: usize, d: &Diagnostic) {
    assert!(line >= 1 && column >= 1, "line and column count from 1: {d:?}");
    let lines = text.split('\n').count();
    assert!(line as usize <= lines, "line {line} of a {lines}-line file: {d:?}");
    let end = offset.checked_add(len).unwrap_or(usize::MAX);
    assert!(end <= text.len(), "span {offset}+{len} past the end of a {}-byte file: {d:?}", text.len());
    assert!(
        text.is_char_boundary(offset) && text.is_char_boundary(end),
        "span {offset}+{len} splits a character: {d:?}"
    );
    if offset > 0 {
        let on_line = text[..offset].matches('\n').count() + 1;
        assert_eq!(
            on_line, line as usize,
            "offset {offset} is on line {on_line}, the finding says {line}: {d:?}"
        );
    }
}
