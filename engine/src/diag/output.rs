//! The one JSON shape of findings: `validate --format json` is
//! `{"diagnostics": [{"code", "severity", "message", "file", "line", "column", "help",
//! "label", "labels"}], "errors": N, "warnings": N}`, extended (never renamed) with the
//! `commit` a file was read from; `plan --format json` lists the head's findings as the
//! same [`DiagnosticOutput`]s, and the console answers an invalid proposal with a
//! [`ReportOutput`].
//!
//! Paths come from the caller, who knows the policy root as the user gave it.
//! `schemas/validate-output.schema.json` (and the findings of
//! `schemas/plan-output.schema.json`) are generated from these types.

use serde::Serialize;

use super::{Diagnostic, Location, Report, Severity};

/// The whole output.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(title = "budgit validate --format json")]
pub struct ReportOutput {
    /// Every finding, sorted by file, line, column and code.
    pub diagnostics: Vec<DiagnosticOutput>,
    /// How many findings are errors (any fails the run).
    pub errors: usize,
    /// How many findings are warnings.
    pub warnings: usize,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DiagnosticOutput {
    /// The stable code, `stage/kebab-case`, documented in `docs/diagnostics.md`.
    pub code: &'static str,
    /// `error` or `warning`.
    pub severity: Severity,
    /// What is wrong: lowercase, user input in backticks, no final period.
    pub message: String,
    /// The file, from the working directory; `null` for a finding about no file.
    pub file: Option<String>,
    /// The 1-based line; `null` without a file.
    pub line: Option<u32>,
    /// The 1-based column, in characters; `null` without a file.
    pub column: Option<u32>,
    /// How to fix it, when known.
    pub help: Option<String>,
    /// What the primary place is, when said.
    pub label: Option<String>,
    /// Other places involved (the other side of a conflict).
    pub labels: Vec<LabelOutput>,
    /// The commit the file was read from, when read from git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// A secondary place of a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LabelOutput {
    /// The file, from the working directory.
    pub file: String,
    /// The 1-based line.
    pub line: u32,
    /// The 1-based column, in characters.
    pub column: u32,
    /// The commit the file was read from, when read from git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// What is there.
    pub message: String,
}

impl ReportOutput {
    /// The output of a report; `path` gives a location's file as the user should see it.
    pub fn new(report: &Report, path: impl Fn(&Location) -> String) -> Self {
        ReportOutput {
            diagnostics: report.diagnostics.iter().map(|d| DiagnosticOutput::new(d, &path)).collect(),
            errors: report.errors(),
            warnings: report.warnings(),
        }
    }
}

impl DiagnosticOutput {
    /// The output of one finding; `path` gives a location's file as the user should see it.
    pub fn new(d: &Diagnostic, path: &impl Fn(&Location) -> String) -> Self {
        let location = d.location.as_ref();
        DiagnosticOutput {
            code: d.code.as_str(),
            severity: d.severity,
            message: d.message.clone(),
            file: location.map(path),
            line: location.map(|l| l.line),
            column: location.map(|l| l.column),
            help: d.help.clone(),
            label: d.label.clone(),
            labels: d
                .labels
                .iter()
                .map(|l| LabelOutput {
                    file: path(&l.location),
                    line: l.location.line,
                    column: l.location.column,
                    commit: l.location.commit.as_deref().map(str::to_owned),
                    message: l.message.clone(),
                })
                .collect(),
            commit: location.and_then(|l| l.commit.as_deref()).map(str::to_owned),
        }
    }

    /// Names every file of the finding from `root` (a policy directory inside the
    /// repository): `groups/eng.yaml` becomes `policies/groups/eng.yaml`.
    pub fn under(&mut self, root: &str) {
        if root.is_empty() {
            return;
        }
        for file in self.file.iter_mut().chain(self.labels.iter_mut().map(|l| &mut l.file)) {
            *file = format!("{root}/{file}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Code;

    #[test]
    fn a_finding_moved_under_a_root_names_every_file_from_it() {
        let at =
            |file: &str| Location { file: file.into(), line: 2, column: 3, offset: 0, len: 0, commit: None };
        let d = Diagnostic::error(Code::NameDuplicate, "duplicate name `eng`")
            .at(at("groups/a.yaml"))
            .with_secondary(at("groups/b.yaml"), "first here");
        let mut out = DiagnosticOutput::new(&d, &|l| l.file.to_string());
        out.under("org/policies");
        assert_eq!(out.file.as_deref(), Some("org/policies/groups/a.yaml"));
        assert_eq!(out.labels[0].file, "org/policies/groups/b.yaml");
        // The same finding through a report, with the root in the path function, is identical.
        let report = Report { diagnostics: vec![d] };
        let whole = ReportOutput::new(&report, |l| format!("org/policies/{}", l.file));
        assert_eq!(whole.diagnostics, [out]);
        let mut bare = whole.diagnostics[0].clone();
        bare.under("");
        assert_eq!(bare, whole.diagnostics[0]);
    }
}
