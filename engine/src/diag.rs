//! Diagnostics: findings about a user's policy, as data.
//!
//! The engine decides what is wrong, where, and how bad; renderers in the CLI
//! decide how it looks. Every finding carries a stable, namespaced code
//! ([`Code`]: `schema/unknown-field`, `override/overlap`, …) documented in
//! `docs/diagnostics.md`.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

pub mod code;
pub mod output;
pub mod reference;

pub use code::Code;

/// Where something is in a policy source: file, byte span, line and column (1-based),
/// and the commit when it was read from git.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub struct Location {
    /// Path relative to the policy root, with `/` separators.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub column: u32,
    /// Byte offset of the start in the file.
    #[serde(skip)]
    pub offset: usize,
    /// Length in bytes (0 when unknown).
    #[serde(skip)]
    pub len: usize,
    /// The commit the file was read from, when read from git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<Arc<str>>,
}

impl Location {
    /// A location at the start of a file.
    pub fn file_start(file: Arc<str>) -> Self {
        Location { file, line: 1, column: 1, offset: 0, len: 0, commit: None }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(commit) = &self.commit {
            write!(f, "{}:", &commit[..commit.len().min(12)])?;
        }
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a run.
    Warning,
    /// Fails `validate` with exit status 1.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A secondary place that explains a finding (the other side of a conflict).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// Where.
    #[serde(flatten)]
    pub location: Location,
    /// What is there, lowercase.
    pub message: String,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable kebab-case code, namespaced by stage: `schema/unknown-field`.
    pub code: Code,
    /// How bad it is.
    pub severity: Severity,
    /// Lowercase, no final period, user input in backticks.
    pub message: String,
    /// The primary place, when there is one (an empty repository has none).
    pub location: Option<Location>,
    /// The label of the primary span, shown under the caret.
    pub label: Option<String>,
    /// Other places involved.
    pub labels: Vec<Label>,
    /// How to fix it, when we can guess.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new finding with the code's default severity.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic::error(code, message).with_severity(code.severity())
    }

    /// A new error.
    pub fn error(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            location: None,
            label: None,
            labels: Vec::new(),
            help: None,
        }
    }

    /// A new warning.
    pub fn warning(code: Code, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, ..Diagnostic::error(code, message) }
    }

    /// Sets the primary location.
    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Sets the primary location when there is one.
    #[must_use]
    pub fn at_opt(mut self, location: Option<Location>) -> Self {
        if location.is_some() {
            self.location = location;
        }
        self
    }

    /// Sets the label under the primary span.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds a secondary place.
    #[must_use]
    pub fn with_secondary(mut self, location: Location, message: impl Into<String>) -> Self {
        self.labels.push(Label { location, message: message.into() });
        self
    }

    /// Sets the help text.
    #[must_use]
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the severity.
    #[must_use]
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
}

/// Every finding of a run, in a stable order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The findings, sorted by file, line, column and code.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Adds a finding.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// Adds findings.
    pub fn extend(&mut self, diagnostics: impl IntoIterator<Item = Diagnostic>) {
        self.diagnostics.extend(diagnostics);
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Error).count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == Severity::Warning).count()
    }

    /// True when there is at least one error.
    pub fn has_errors(&self) -> bool {
        self.errors() > 0
    }

    /// Sorts findings so output never depends on discovery order, and drops exact duplicates.
    pub fn sort(&mut self) {
        self.diagnostics.sort_by(|a, b| {
            let key = |d: &Diagnostic| d.location.as_ref().map(|l| (l.file.clone(), l.line, l.column));
            key(a).cmp(&key(b)).then_with(|| a.code.cmp(&b.code)).then_with(|| a.message.cmp(&b.message))
        });
        self.diagnostics.dedup();
    }
}

/// Edit distance, for "did you mean" suggestions.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate to `word`, when it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = (len / 3).max(1);
    candidates
        .into_iter()
        // the distance is at least the difference in length: skipping those candidates
        // changes no answer, and keeps a megabyte of input from costing seconds per name
        .filter(|c| len.abs_diff(c.chars().count()) <= limit)
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("credit", ["credits", "products", "models"]), Some("credits"));
        assert_eq!(did_you_mean("zzz", ["credits", "products"]), None);
    }

    #[test]
    fn a_huge_word_is_answered_at_once() {
        let huge = "a".repeat(1_000_000);
        let started = std::time::Instant::now();
        let names: Vec<String> = (0..600).map(|i| format!("Region/City_{i}")).collect();
        assert_eq!(did_you_mean(&huge, names.iter().map(String::as_str)), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    }
}
