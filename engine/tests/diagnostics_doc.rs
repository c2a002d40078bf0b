//! Every diagnostic code the engine can emit has a heading in `docs/diagnostics.md`,
//! each heading is a code the engine emits, and no code is documented twice.
//!
//! Codes are found in the engine's sources: the literal passed to
//! `Diagnostic::error(`/`Diagnostic::warning(`, and any other literal that looks like a
//! code in one of the namespaces those calls use (codes chosen before the call).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: an unreadable source or doc should stop the test loudly"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

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

fn is_code(text: &str) -> bool {
    let Some((stage, name)) = text.split_once('/') else { return false };
    let word = |w: &str| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    stage.bytes().next().is_some_and(|b| b.is_ascii_lowercase()) && word(stage) && name.split('-').all(word)
}

/// Every string literal (roughly: text between two double quotes on one line).
fn literals(text: &str) -> impl Iterator<Item = &str> {
    text.lines().flat_map(|line| line.split('"').skip(1).step_by(2))
}

fn engine_codes() -> BTreeMap<String, String> {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut codes = BTreeMap::new();
    for (path, text) in &files {
        for call in ["Diagnostic::error(", "Diagnostic::warning("] {
            for (i, _) in text.match_indices(call) {
                let rest = text[i + call.len()..].trim_start();
                let Some(rest) = rest.strip_prefix('"') else { continue };
                let code = rest.split('"').next().unwrap();
                assert!(is_code(code), "{path}: `{code}` is not a `stage/kebab-case` code");
                codes.insert(code.to_string(), path.clone());
            }
        }
    }
    let stages: BTreeSet<String> =
        codes.keys().filter_map(|c| c.split_once('/')).map(|(s, _)| s.to_string()).collect();
    for (path, text) in &files {
        for literal in literals(text) {
            if is_code(literal) && stages.contains(literal.split('/').next().unwrap()) {
                codes.entry(literal.to_string()).or_insert_with(|| path.clone());
            }
        }
    }
    codes
}

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
    let codes = engine_codes();
    assert!(codes.len() > 30, "too few codes found: {codes:?}");
    let sections = documented();
    let mut seen = BTreeSet::new();
    for (heading, body) in &sections {
        assert!(seen.insert(heading.clone()), "`{heading}` is documented twice");
        assert!(codes.contains_key(heading), "`{heading}` is documented but the engine never emits it");
        for part in ["**Example**", "**Fix**"] {
            assert!(body.contains(part), "`{heading}` has no {part} part");
        }
    }
    let missing: Vec<String> =
        codes.iter().filter(|(c, _)| !seen.contains(*c)).map(|(c, path)| format!("{c} ({path})")).collect();
    assert!(missing.is_empty(), "codes without a `## code` heading in docs/diagnostics.md: {missing:#?}");
}

#[test]
fn the_code_finder_finds_codes() {
    assert!(is_code("override/overlap"));
    assert!(is_code("input/not-utf8"));
    assert!(!is_code("budgit/v1/x"));
    assert!(!is_code("Europe/Paris"));
    assert!(!is_code("a b/c"));
    let codes = engine_codes();
    for code in ["yaml/duplicate-key", "cel/syntax", "override/expired", "guardrail/failed", "repo/empty"] {
        assert!(codes.contains_key(code), "{code} not found");
    }
}
