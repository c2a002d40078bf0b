//! Validation, the CI gate: parse with spans → JSON Schema → semantics → CEL →
//! guardrails, collecting every finding (never stopping at the first).
//!
//! Loading ([`crate::load`]) does the first two stages per document; this
//! module adds the checks across documents and returns one sorted [`Report`].
//! A document that fails the schema is out of the later stages, except that one
//! whose only fault is an unknown top-level field is checked across documents
//! without it, and any other still has its selector or rule checked as CEL (and
//! its emails against a directory, when one is given). Checking the people the policies
//! name against a directory ([`check_people`]) is a separate call: the directory
//! is an input of the command, not of the policies.

mod cel;
mod guardrail;
mod openai;
mod people;
pub mod schema;
mod semantic;
mod types;
mod vendor;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::diag::{Code, Diagnostic, Report};
use crate::load::files::{self, ReadError};
use crate::load::{self as loader, Loaded, PolicySet, Rejected, Source};

pub use people::check_people;

/// What validation needs besides the policies.
#[derive(Debug, Clone)]
pub struct ValidateOptions {
    /// The instant "now" (expired overrides are warnings relative to it).
    pub now: DateTime<Utc>,
}

/// The policies as loaded and every finding about them.
#[derive(Debug, Clone)]
pub struct Validated {
    /// The documents that parsed and passed the schema.
    pub policies: PolicySet,
    /// Every finding, sorted.
    pub report: Report,
    /// The documents of a known kind that failed the schema, for the checks that
    /// can still run on the fields they have ([`check_people`]).
    pub rejected: Vec<Loaded<Rejected>>,
}

/// Reads and validates a policy directory.
///
/// Fails only when the directory or a file cannot be read (exit status 2);
/// everything wrong with the policies is in the report.
pub fn validate_dir(root: &Path, options: &ValidateOptions) -> Result<Validated, ReadError> {
    let (sources, diagnostics) = files::read_dir(root)?;
    Ok(validate_sources(sources, diagnostics, options))
}

/// Validates policy sources already read (from files or a git tree).
///
/// Runs on a thread with a large stack: YAML scanning and the CEL interpreter
/// recurse, and a CEL stack overflow would abort the process.
pub fn validate_sources(
    sources: Vec<Source>,
    read_findings: Vec<Diagnostic>,
    options: &ValidateOptions,
) -> Validated {
    let options = options.clone();
    let work = move || {
        let (policies, rejected, findings) = loader::load_sources_keeping_rejected(sources);
        let mut report = Report::default();
        report.extend(read_findings);
        report.extend(findings);
        check_loaded(&policies, &rejected, &options, &mut report);
        report.sort();
        Validated { policies, report, rejected }
    };
    match crate::stack::with_large_stack(work) {
        Ok(validated) => validated,
        Err(e) => {
            let mut report = Report::default();
            report.push(Diagnostic::error(Code::InternalWorker, format!("validation could not run: {e}")));
            Validated { policies: PolicySet::default(), report, rejected: Vec::new() }
        }
    }
}

/// The checks across documents, on what loaded: semantics, CEL, then guardrails.
/// CEL also runs on the selectors and rules of `rejected` documents (those that
/// failed the schema), so fixing one finding never reveals another that was there.
fn check_loaded(
    policies: &PolicySet,
    rejected: &[Loaded<Rejected>],
    options: &ValidateOptions,
    report: &mut Report,
) {
    if policies.sources.is_empty() && report.diagnostics.is_empty() {
        report.push(
            Diagnostic::error(Code::RepoEmpty, "no policy files found")
                .with_help("a policy repository holds `*.yaml` files, one of them with `kind: Workspace`"),
        );
    }
    // Documents whose only fault is an unknown top-level field join the checks across
    // documents (overlaps, durations, guardrails…): the typo does not hide those findings.
    // They stay out of the policies returned, which commands act on.
    let repaired: Vec<&Loaded<Rejected>> = rejected.iter().filter(|r| r.doc.repaired.is_some()).collect();
    let with_repaired;
    let checked = if repaired.is_empty() {
        policies
    } else {
        let mut set = policies.clone();
        for r in repaired {
            if let Some(doc) = &r.doc.repaired {
                loader::push_document(&mut set, doc.clone(), r.node.clone(), &r.file, r.commit.as_ref());
            }
        }
        with_repaired = set;
        &with_repaired
    };
    let unrepaired: Vec<Loaded<Rejected>> =
        rejected.iter().filter(|r| r.doc.repaired.is_none()).cloned().collect();
    semantic::check(checked, options.now, report);
    vendor::check(checked, report);
    openai::check(checked, report);
    // One environment for the run: building the standard library costs more than a parse.
    let env = Arc::new(::cel::Env::stdlib());
    let rules = cel::check(checked, &unrepaired, &env, report);
    guardrail::check(checked, &env, &rules, options.now, report);
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Validating inline policy files in unit tests.

    use std::sync::Arc;

    use super::{Report, Source, ValidateOptions, validate_sources};

    /// A workspace in New York with two declared attributes and the default override rules.
    pub(crate) const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: America/New_York
default:
  credits: 2000
attributes:
  department: string
  title: string
overrides:
  max_days: 90
  require_reason: true
";

    /// Validates `files` (path, text) at `now` (RFC 3339).
    pub(crate) fn run(files: &[(&str, &str)], now: &str) -> Report {
        let sources = files
            .iter()
            .map(|(path, text)| Source { path: Arc::from(*path), text: Arc::from(*text), commit: None })
            .collect();
        let now = chrono::DateTime::parse_from_rfc3339(now).unwrap().to_utc();
        validate_sources(sources, Vec::new(), &ValidateOptions { now }).report
    }

    /// `code line:col` of every finding, in report order.
    pub(crate) fn summary(report: &Report) -> Vec<String> {
        report
            .diagnostics
            .iter()
            .map(|d| match &d.location {
                Some(l) => format!("{} {}:{}:{}", d.code, l.file, l.line, l.column),
                None => d.code.to_string(),
            })
            .collect()
    }
}
