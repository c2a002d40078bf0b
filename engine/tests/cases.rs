//! Diagnostics case files: one YAML file per scenario under `tests/cases/`.
//!
//! Each case holds the policy files inline (`files`), files the test makes because
//! they are large or binary (`generate`), and the instant to validate at (`now`).
//! The case runs `validate_dir` on a temporary directory, must finish within
//! `max_ms` (1 s by default: every input class is bounded), and its findings are
//! compared with the snapshot `snapshots/cases__<name>.yaml.snap`, one line per
//! finding as `severity[code] file:line:col: message`, then its labels and help.
//! Adding a file adds a test.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a broken case file should stop the run loudly"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use budgit_engine::Report;
use budgit_engine::validate::{ValidateOptions, validate_dir};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// The instant to validate at (RFC 3339).
    now: String,
    /// Policy files by path relative to the policy root.
    #[serde(default)]
    files: BTreeMap<String, String>,
    /// Files made by the test.
    #[serde(default)]
    generate: Vec<Generated>,
    /// Time budget for validation, in milliseconds.
    #[serde(default = "one_second")]
    max_ms: u64,
}

fn one_second() -> u64 {
    1000
}

/// A file made of parts, each repeated `times` times.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Generated {
    path: String,
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Part {
    /// Text to write.
    #[serde(default)]
    text: Option<String>,
    /// Bytes to write, in hex (for files that are not text).
    #[serde(default)]
    hex: Option<String>,
    #[serde(default = "once")]
    times: usize,
}

fn once() -> usize {
    1
}

fn write_case(case: &Case, root: &Path) {
    for (path, text) in &case.files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    for generated in &case.generate {
        let path = root.join(&generated.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        for part in &generated.parts {
            let bytes = match (&part.text, &part.hex) {
                (Some(text), None) => text.as_bytes().to_vec(),
                (None, Some(hex)) => (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect(),
                _ => panic!("a part has `text` or `hex`"),
            };
            for _ in 0..part.times {
                out.write_all(&bytes).unwrap();
            }
        }
        out.flush().unwrap();
    }
}

/// One line per finding, then its label, other places and help, indented.
fn render(report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        let at = d.location.as_ref().map_or_else(|| "(repository)".to_string(), ToString::to_string);
        writeln!(out, "{}[{}] {at}: {}", d.severity, d.code, d.message).unwrap();
        if let Some(label) = &d.label {
            writeln!(out, "    label: {label}").unwrap();
        }
        for l in &d.labels {
            writeln!(out, "    note: {}: {}", l.location, l.message).unwrap();
        }
        if let Some(help) = &d.help {
            writeln!(out, "    help: {help}").unwrap();
        }
    }
    writeln!(out, "{} errors, {} warnings", report.errors(), report.warnings()).unwrap();
    out
}

#[test]
fn cases() {
    insta::glob!("cases/*.yaml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let case: Case = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let dir = tempfile::tempdir().unwrap();
        write_case(&case, dir.path());
        let now = chrono::DateTime::parse_from_rfc3339(&case.now).unwrap().to_utc();
        let started = Instant::now();
        let validated = validate_dir(dir.path(), &ValidateOptions { now }).unwrap();
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_millis(case.max_ms),
            "{} took {elapsed:?}, more than {} ms",
            path.display(),
            case.max_ms
        );
        insta::assert_snapshot!(render(&validated.report));
    });
}
