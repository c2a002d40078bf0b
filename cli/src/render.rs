//! Renderers: how findings and results look (the engine decides what they are).

use budgit_engine::load::PolicySet;
use budgit_engine::{Report, Severity};

/// Parses `--now`.
pub fn parse_now(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp ({e}); e.g. `2026-11-27T12:00:00Z`"))
}

/// How to print diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagFormat {
    /// For people: source snippets with carets.
    Human,
    /// `{"diagnostics": [...], "errors": N, "warnings": N}`.
    Json,
    /// GitHub Actions workflow commands (annotations).
    Github,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

/// Renders a report.
pub fn diagnostics(format: DiagFormat, _policies: &PolicySet, report: &Report) -> String {
    let _ = format;
    let mut out = String::new();
    for d in &report.diagnostics {
        let sev = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let loc = d.location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
        out.push_str(&format!("{loc}{sev}[{}]: {}\n", d.code, d.message));
    }
    out
}
