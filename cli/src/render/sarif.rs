//! SARIF 2.1.0 output, for GitHub code scanning and other SARIF viewers.
//!
//! One run whose tool is `budgit`; one rule per diagnostic code that occurs, each
//! described from its section of `docs/diagnostics.md` (`shortDescription`,
//! `fullDescription`, `help` as text and Markdown, as GitHub code scanning requires)
//! with a `helpUri` pointing at that heading; one result per finding, with its
//! primary place (the policy directory for a finding about no file) and the
//! secondary places as `relatedLocations`, each region with its start and end. Columns count Unicode code points, like [`budgit_engine::Location`].

use std::collections::BTreeMap;

use budgit_engine::diag::reference::reference;
use budgit_engine::{Code, Diagnostic, Location, Report, Severity};
use serde_json::{Value, json};

use super::DiagContext;
use super::human::Files;

/// The published JSON Schema of SARIF 2.1.0.
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The project's home, where the diagnostics reference lives.
const HOME: &str = env!("CARGO_PKG_REPOSITORY");

/// Renders the report as a SARIF log (pretty JSON, trailing newline).
pub fn render(context: &DiagContext<'_>, report: &Report) -> String {
    // BTreeMap: rules in code order, so the log never depends on finding order.
    let rules: BTreeMap<Code, usize> = report
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, code)| (code, i))
        .collect();
    let mut files = Files::new(context.policies);
    let results: Vec<Value> =
        report.diagnostics.iter().map(|d| result(context, &mut files, d, &rules)).collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "budgit",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": HOME,
                    "rules": rules.keys().map(|&code| rule(code)).collect::<Vec<_>>(),
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    });
    // Serializing a `Value` cannot fail; the fallback keeps the output valid JSON regardless.
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// A rule described by the code's section of the diagnostics reference. Every code has
/// a section (a test holds `Code` and the reference to one list); should one be missing,
/// the code itself stands in, since GitHub rejects rules without descriptions.
fn rule(code: Code) -> Value {
    let (summary, description, text, markdown) = match reference(code.as_str()) {
        Some(r) => (r.summary, r.description, r.text, r.markdown),
        None => (code.to_string(), code.to_string(), code.to_string(), format!("`{code}`")),
    };
    json!({
        "id": code,
        "shortDescription": { "text": summary },
        "fullDescription": { "text": description },
        "help": { "text": text, "markdown": markdown },
        "helpUri": format!("{HOME}/blob/main/docs/diagnostics.md#{}", anchor(code.as_str())),
    })
}

/// A severity as a SARIF level.
fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn result(
    context: &DiagContext<'_>,
    files: &mut Files<'_>,
    d: &Diagnostic,
    rules: &BTreeMap<Code, usize>,
) -> Value {
    let mut text = d.message.clone();
    if let Some(help) = &d.help {
        text.push_str("\nhelp: ");
        text.push_str(help);
    }
    let mut value = json!({
        "ruleId": d.code,
        "level": level(d.severity),
        "message": { "text": text },
    });
    if let Some(index) = rules.get(&d.code) {
        value["ruleIndex"] = json!(index);
    }
    let mut primary = match &d.location {
        Some(l) => location(context, files, l),
        // GitHub refuses a result without a location. A finding about no file in
        // particular (an empty policy directory) is about the directory: point there,
        // at an empty region, since a directory has no lines.
        None => json!({
            "physicalLocation": {
                "artifactLocation": { "uri": uri(&context.file_path(&Location::file_start("".into()))) },
                "region": { "startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 1 },
            }
        }),
    };
    if let Some(label) = &d.label {
        primary["message"] = json!({ "text": label });
    }
    value["locations"] = json!([primary]);
    if !d.labels.is_empty() {
        let related: Vec<Value> = d
            .labels
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let mut related = location(context, files, &label.location);
                related["id"] = json!(i);
                related["message"] = json!({ "text": label.message });
                related
            })
            .collect();
        value["relatedLocations"] = json!(related);
    }
    value
}

fn location(context: &DiagContext<'_>, files: &mut Files<'_>, l: &Location) -> Value {
    let (start_line, start_column) = (l.line.max(1), l.column.max(1));
    // The end comes from the file's text; a finding in a file that was not read (a
    // git tree gone since) covers one character.
    let (end_line, end_column) = files
        .get(l)
        .map(|text| text.end(l))
        .filter(|&end| end > (start_line, start_column))
        .unwrap_or((start_line, start_column + 1));
    let mut value = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(&context.file_path(l)) },
            "region": {
                "startLine": start_line,
                "startColumn": start_column,
                "endLine": end_line,
                "endColumn": end_column,
            },
        }
    });
    if let Some(commit) = l.commit.as_deref() {
        value["properties"] = json!({ "commit": commit });
    }
    value
}

/// A relative path as a URI reference: everything but unreserved characters and `/`
/// percent-encoded, so a file named `a b#c.yaml` stays one path.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The anchor GitHub gives the heading of a code in `docs/diagnostics.md`
/// (`schema/unknown-field` → `schemaunknown-field`): lowercase, punctuation other
/// than `-` and `_` dropped.
pub fn anchor(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c.to_ascii_lowercase() })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use budgit_engine::load::{PolicySet, Source};

    use super::*;

    #[test]
    fn anchors_and_uris() {
        assert_eq!(anchor(Code::SchemaUnknownField.as_str()), "schemaunknown-field");
        assert_eq!(uri("policies/a b#c.yaml"), "policies/a%20b%23c.yaml");
        assert_eq!(uri("policies/é.yaml"), "policies/%C3%A9.yaml");
    }

    #[test]
    fn results_point_at_rules() {
        let policies = PolicySet::default();
        let context = DiagContext { policies: &policies, root: Path::new("policies"), color: false };
        let at = Location { file: "a.yaml".into(), line: 3, column: 5, offset: 0, len: 0, commit: None };
        let report = Report {
            diagnostics: vec![
                Diagnostic::warning(Code::OverrideExpired, "expired").at(at.clone()),
                Diagnostic::error(Code::CelSyntax, "bad").at(at.clone()).with_secondary(at, "there"),
                Diagnostic::error(Code::RepoEmpty, "no policy files found"),
            ],
        };
        let log: Value = serde_json::from_str(&render(&context, &report)).unwrap();
        let run = &log["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["cel/syntax", "override/expired", "repo/empty"]);
        let results = run["results"].as_array().unwrap();
        for r in results {
            let index = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], r["ruleId"]);
        }
        assert_eq!(results[0]["level"], "warning");
        let region = &results[1]["locations"][0]["physicalLocation"]["region"];
        assert_eq!((region["startLine"].as_u64(), region["startColumn"].as_u64()), (Some(3), Some(5)));
        // No text to measure the span in: the region covers one character.
        assert_eq!((region["endLine"].as_u64(), region["endColumn"].as_u64()), (Some(3), Some(6)));
        assert_eq!(results[1]["relatedLocations"][0]["message"]["text"], "there");
        // A finding about no file points at the policy directory.
        let place = &results[2]["locations"][0]["physicalLocation"];
        assert_eq!(place["artifactLocation"]["uri"], "policies/");
        assert_eq!(place["region"]["endColumn"], 1);
    }

    #[test]
    fn rules_are_described_from_the_reference() {
        let policies = PolicySet::default();
        let context = DiagContext { policies: &policies, root: Path::new("policies"), color: false };
        let report =
            Report { diagnostics: vec![Diagnostic::error(Code::RepoEmpty, "no policy files found")] };
        let log: Value = serde_json::from_str(&render(&context, &report)).unwrap();
        let rule = &log["runs"][0]["tool"]["driver"]["rules"][0];
        assert_eq!(rule["shortDescription"]["text"], "The policy directory has no `*.yaml` or `*.yml` file.");
        assert_eq!(rule["fullDescription"]["text"], rule["shortDescription"]["text"]);
        let markdown = rule["help"]["markdown"].as_str().unwrap();
        assert!(markdown.starts_with("Severity: error.") && markdown.contains("**Fix**"), "{markdown}");
        let text = rule["help"]["text"].as_str().unwrap();
        assert!(text.contains("Fix: point --policies at the directory"), "{text}");
    }

    #[test]
    fn regions_end_where_the_span_ends() {
        let text = "name: a\nselector: é == 'x\n  y'\n";
        let policies = PolicySet {
            sources: vec![Source { path: "g.yaml".into(), commit: None, text: text.into() }],
            ..PolicySet::default()
        };
        let context = DiagContext { policies: &policies, root: Path::new("policies"), color: false };
        let offset = text.find('é').unwrap();
        let at = |len| Location { file: "g.yaml".into(), line: 2, column: 11, offset, len, commit: None };
        let whole = text.len() - offset;
        let report = Report {
            diagnostics: vec![
                Diagnostic::error(Code::CelSyntax, "bad").at(at(whole)),
                Diagnostic::error(Code::CelSyntax, "bad").at(at("é ==".len())),
                Diagnostic::error(Code::CelSyntax, "bad").at(at(0)),
            ],
        };
        let log: Value = serde_json::from_str(&render(&context, &report)).unwrap();
        let ends: Vec<(u64, u64)> = log["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let region = &r["locations"][0]["physicalLocation"]["region"];
                (region["endLine"].as_u64().unwrap(), region["endColumn"].as_u64().unwrap())
            })
            .collect();
        // Across the line break to the end of `y'` (its own newline left out); four
        // characters on line 2 (`é` is one column); one character when the span is empty.
        assert_eq!(ends, [(3, 5), (2, 15), (2, 12)]);
    }
}
