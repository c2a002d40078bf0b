//! JSON output of `validate`, in its stable shape
//! `{"diagnostics": [{"code", "severity", "message", "file", "line", "column", "help"}],
//! "errors": N, "warnings": N}`, extended (never renamed) with the primary `label`,
//! the secondary `labels` and the `commit` a file was read from.

use budgit_engine::{Diagnostic, Location, Report};
use serde_json::{Value, json};

use super::DiagContext;

/// Renders the report as pretty JSON with a trailing newline.
pub fn render(context: &DiagContext<'_>, report: &Report) -> String {
    let value = json!({
        "diagnostics": report.diagnostics.iter().map(|d| diagnostic(context, d)).collect::<Vec<_>>(),
        "errors": report.errors(),
        "warnings": report.warnings(),
    });
    // Serializing a `Value` cannot fail; the fallback keeps the output valid JSON regardless.
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

fn diagnostic(context: &DiagContext<'_>, d: &Diagnostic) -> Value {
    let location = d.location.as_ref();
    let mut value = json!({
        "code": d.code,
        "severity": d.severity,
        "message": d.message,
        "file": location.map(|l| context.file_path(l)),
        "line": location.map(|l| l.line),
        "column": location.map(|l| l.column),
        "help": d.help,
        "label": d.label,
        "labels": d.labels.iter().map(|l| {
            let mut label = place(context, &l.location);
            label["message"] = json!(l.message);
            label
        }).collect::<Vec<_>>(),
    });
    if let Some(commit) = location.and_then(|l| l.commit.as_deref()) {
        value["commit"] = json!(commit);
    }
    value
}

fn place(context: &DiagContext<'_>, location: &Location) -> Value {
    let mut value = json!({
        "file": context.file_path(location),
        "line": location.line,
        "column": location.column,
    });
    if let Some(commit) = location.commit.as_deref() {
        value["commit"] = json!(commit);
    }
    value
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use budgit_engine::load::PolicySet;

    use super::*;

    #[test]
    fn has_the_documented_shape() {
        let policies = PolicySet::default();
        let context = DiagContext { policies: &policies, root: Path::new("./policies"), color: false };
        let at = Location { file: "a.yaml".into(), line: 3, column: 5, offset: 0, len: 0, commit: None };
        let report = Report {
            diagnostics: vec![
                Diagnostic::error("schema/unknown-field", "unknown field `credit`")
                    .at(at.clone())
                    .with_help("did you mean `credits`?")
                    .with_secondary(at, "here"),
                Diagnostic::warning("repo/empty", "no policy files found"),
            ],
        };
        let value: Value = serde_json::from_str(&render(&context, &report)).unwrap();
        assert_eq!(value["errors"], 1);
        assert_eq!(value["warnings"], 1);
        let first = &value["diagnostics"][0];
        assert_eq!(first["code"], "schema/unknown-field");
        assert_eq!(first["severity"], "error");
        assert_eq!(first["file"], "policies/a.yaml");
        assert_eq!(first["line"], 3);
        assert_eq!(first["column"], 5);
        assert_eq!(first["help"], "did you mean `credits`?");
        assert_eq!(first["labels"][0]["message"], "here");
        let second = &value["diagnostics"][1];
        assert_eq!(second["severity"], "warning");
        assert!(second["file"].is_null() && second["line"].is_null() && second["help"].is_null());
    }
}
