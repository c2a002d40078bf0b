//! SARIF 2.1.0 output, for GitHub code scanning and other SARIF viewers.
//!
//! One run whose tool is `budgit`; one rule per diagnostic code that occurs, each
//! with a `helpUri` pointing at the code's heading in `docs/diagnostics.md`; one
//! result per finding, with its primary place and the secondary places as
//! `relatedLocations`. Columns count Unicode code points, like [`budgit_engine::Location`].

use std::collections::BTreeMap;

use budgit_engine::{Diagnostic, Location, Report, Severity};
use serde_json::{Value, json};

use super::DiagContext;

/// The published JSON Schema of SARIF 2.1.0.
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// The project's home, where the diagnostics reference lives.
const HOME: &str = env!("CARGO_PKG_REPOSITORY");

/// Renders the report as a SARIF log (pretty JSON, trailing newline).
pub fn render(context: &DiagContext<'_>, report: &Report) -> String {
    // BTreeMap: rules in code order, so the log never depends on finding order.
    let rules: BTreeMap<&str, usize> = report
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, code)| (code, i))
        .collect();
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "budgit",
                    "version": env!("CARGO_PKG_VERSION"),
                    "informationUri": HOME,
                    "rules": rules.keys().map(|code| rule(code)).collect::<Vec<_>>(),
                }
            },
            "columnKind": "unicodeCodePoints",
            "results": report.diagnostics.iter().map(|d| result(context, d, &rules)).collect::<Vec<_>>(),
        }]
    });
    // Serializing a `Value` cannot fail; the fallback keeps the output valid JSON regardless.
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

fn rule(code: &str) -> Value {
    json!({
        "id": code,
        "helpUri": format!("{HOME}/blob/main/docs/diagnostics.md#{}", anchor(code)),
    })
}

fn result(context: &DiagContext<'_>, d: &Diagnostic, rules: &BTreeMap<&str, usize>) -> Value {
    let mut text = d.message.clone();
    if let Some(help) = &d.help {
        text.push_str("\nhelp: ");
        text.push_str(help);
    }
    let mut value = json!({
        "ruleId": d.code,
        "level": match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        "message": { "text": text },
    });
    if let Some(index) = rules.get(d.code) {
        value["ruleIndex"] = json!(index);
    }
    if let Some(l) = &d.location {
        let mut primary = location(context, l);
        if let Some(label) = &d.label {
            primary["message"] = json!({ "text": label });
        }
        value["locations"] = json!([primary]);
    }
    if !d.labels.is_empty() {
        let related: Vec<Value> = d
            .labels
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let mut related = location(context, &label.location);
                related["id"] = json!(i);
                related["message"] = json!({ "text": label.message });
                related
            })
            .collect();
        value["relatedLocations"] = json!(related);
    }
    value
}

fn location(context: &DiagContext<'_>, l: &Location) -> Value {
    let mut value = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri(&context.file_path(l)) },
            "region": { "startLine": l.line.max(1), "startColumn": l.column.max(1) },
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

    use budgit_engine::load::PolicySet;

    use super::*;

    #[test]
    fn anchors_and_uris() {
        assert_eq!(anchor("schema/unknown-field"), "schemaunknown-field");
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
                Diagnostic::warning("override/expired", "expired").at(at.clone()),
                Diagnostic::error("cel/syntax", "bad").at(at.clone()).with_secondary(at, "there"),
                Diagnostic::error("repo/empty", "no policy files found"),
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
        assert_eq!(results[1]["relatedLocations"][0]["message"]["text"], "there");
        assert!(results[2].get("locations").is_none());
    }
}
