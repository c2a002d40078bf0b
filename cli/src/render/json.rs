//! JSON output of `validate`: [`ReportOutput`], the engine's one shape of findings (its schema is
//! `schemas/validate-output.schema.json`), with paths joined to the policy root.

use budgit_engine::Report;
use budgit_engine::diag::output::ReportOutput;

use super::DiagContext;

/// Renders the report as pretty JSON with a trailing newline.
pub fn render(context: &DiagContext<'_>, report: &Report) -> String {
    let output = ReportOutput::new(report, |l| context.file_path(l));
    // The output holds strings and numbers only, so serializing cannot fail; the
    // fallback keeps the output valid JSON regardless.
    let mut text = serde_json::to_string_pretty(&output).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use budgit_engine::load::PolicySet;
    use budgit_engine::{Code, Diagnostic, Location};
    use serde_json::Value;

    use super::*;

    #[test]
    fn has_the_documented_shape() {
        let policies = PolicySet::default();
        let context = DiagContext { policies: &policies, root: Path::new("./policies"), color: false };
        let at = Location { file: "a.yaml".into(), line: 3, column: 5, offset: 0, len: 0, commit: None };
        let report = Report {
            diagnostics: vec![
                Diagnostic::error(Code::SchemaUnknownField, "unknown field `credit`")
                    .at(at.clone())
                    .with_help("did you mean `credits`?")
                    .with_secondary(at, "here"),
                Diagnostic::warning(Code::RepoEmpty, "no policy files found"),
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
