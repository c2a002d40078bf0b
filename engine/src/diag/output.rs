//! The stable JSON shape of `validate --format json`:
//! `{"diagnostics": [{"code", "severity", "message", "file", "line", "column", "help",
//! "label", "labels"}], "errors": N, "warnings": N}`, extended (never renamed) with the
//! `commit` a file was read from.
//!
//! Borrowed views over a [`Report`]; paths come from the caller, who knows the policy
//! root as the user gave it. `schemas/validate-output.schema.json` is generated from
//! these types.

use serde::Serialize;

use super::{Diagnostic, Location, Report, Severity};

/// The whole output.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(title = "budgit validate --format json")]
pub struct ReportOutput<'a> {
    /// Every finding, sorted by file, line, column and code.
    pub diagnostics: Vec<DiagnosticOutput<'a>>,
    /// How many findings are errors (any fails the run).
    pub errors: usize,
    /// How many findings are warnings.
    pub warnings: usize,
}

/// One finding.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DiagnosticOutput<'a> {
    /// The stable code, `stage/kebab-case`, documented in `docs/diagnostics.md`.
    pub code: &'a str,
    /// `error` or `warning`.
    pub severity: Severity,
    /// What is wrong: lowercase, user input in backticks, no final period.
    pub message: &'a str,
    /// The file, from the working directory; `null` for a finding about no file.
    pub file: Option<String>,
    /// The 1-based line; `null` without a file.
    pub line: Option<u32>,
    /// The 1-based column, in characters; `null` without a file.
    pub column: Option<u32>,
    /// How to fix it, when known.
    pub help: Option<&'a str>,
    /// What the primary place is, when said.
    pub label: Option<&'a str>,
    /// Other places involved (the other side of a conflict).
    pub labels: Vec<LabelOutput<'a>>,
    /// The commit the file was read from, when read from git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<&'a str>,
}

/// A secondary place of a finding.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LabelOutput<'a> {
    /// The file, from the working directory.
    pub file: String,
    /// The 1-based line.
    pub line: u32,
    /// The 1-based column, in characters.
    pub column: u32,
    /// The commit the file was read from, when read from git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<&'a str>,
    /// What is there.
    pub message: &'a str,
}

impl<'a> ReportOutput<'a> {
    /// The output of a report; `path` gives a location's file as the user should see it.
    pub fn new(report: &'a Report, path: impl Fn(&Location) -> String) -> Self {
        ReportOutput {
            diagnostics: report.diagnostics.iter().map(|d| DiagnosticOutput::new(d, &path)).collect(),
            errors: report.errors(),
            warnings: report.warnings(),
        }
    }
}

impl<'a> DiagnosticOutput<'a> {
    fn new(d: &'a Diagnostic, path: &impl Fn(&Location) -> String) -> Self {
        let location = d.location.as_ref();
        DiagnosticOutput {
            code: d.code,
            severity: d.severity,
            message: &d.message,
            file: location.map(path),
            line: location.map(|l| l.line),
            column: location.map(|l| l.column),
            help: d.help.as_deref(),
            label: d.label.as_deref(),
            labels: d
                .labels
                .iter()
                .map(|l| LabelOutput {
                    file: path(&l.location),
                    line: l.location.line,
                    column: l.location.column,
                    commit: l.location.commit.as_deref(),
                    message: &l.message,
                })
                .collect(),
            commit: location.and_then(|l| l.commit.as_deref()),
        }
    }
}
