//! `docs/diagnostics.md` and [`Code`] list the same codes: every variant has one
//! `` ## `code` `` section, every section is a variant, each section has its example and
//! its fix, and its `Severity:` lead agrees with the variant's default severity. Every
//! variant is also named by the code that makes findings, so none is documented for
//! nothing.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: an unreadable source or doc should stop the test loudly"
)]

use std::collections::BTreeSet;
use std::path::Path;

use budgit_engine::{Code, Severity};

fn documented() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut sections = Vec::new();
    for block in text.split("\n## ").skip(1) {
        let (heading, body) = block.split_once('\n').unwrap_or((block, ""));
        sections.push((heading.trim().trim_matches('`').to_string(), body.to_string()));
    }
    sections
}

#[test]
fn every_code_is_documented_once() {
    let sections = documented();
    let mut seen = BTreeSet::new();
    for (heading, body) in &sections {
        assert!(seen.insert(heading.clone()), "`{heading}` is documented twice");
        let Some(code) = Code::parse(heading) else {
            panic!("`{heading}` is documented but `diag::Code` has no such code");
        };
        for part in ["**Example**", "**Fix**"] {
            assert!(body.contains(part), "`{heading}` has no {part} part");
        }
        // "Severity: warning…" for warnings; errors say "error" or, for a guardrail's
        // finding, "error by default".
        let lead = body.trim_start().lines().next().unwrap_or_default();
        let documented =
            if lead.starts_with("Severity: warning") { Severity::Warning } else { Severity::Error };
        assert_eq!(code.severity(), documented, "`{heading}`: the enum and `{lead}` disagree");
    }
    let missing: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).filter(|c| !seen.contains(*c)).collect();
    assert!(missing.is_empty(), "codes without a `## code` heading in docs/diagnostics.md: {missing:#?}");
    let order: Vec<&str> = sections.iter().map(|(h, _)| h.as_str()).collect();
    let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(all, order, "`Code::ALL` is in the order of docs/diagnostics.md");
}

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// Each variant is named outside its own declaration and outside tests, by the engine or
/// the CLI (which turns the service's import findings into directory codes).
#[test]
fn every_code_is_made_somewhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    sources(&root.join("src"), &mut files);
    sources(&root.join("../cli/src"), &mut files);
    let text: String = files
        .iter()
        .filter(|(path, _)| !path.ends_with("diag/code.rs") && !path.ends_with("tests.rs"))
        // the part of each file before its unit tests
        .map(|(_, text)| text.split("#[cfg(test)]").next().unwrap_or_default())
        .collect();
    let unused: Vec<String> = Code::ALL
        .iter()
        .map(|c| format!("{c:?}"))
        .filter(|variant| {
            let named = format!("Code::{variant}");
            !text.match_indices(&named).any(|(i, _)| {
                !text[i + named.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .collect();
    assert!(unused.is_empty(), "codes no finding is made with: {unused:?}");
}
