//! GitHub Actions output: one workflow command per finding
//! (`::error file=…,line=…,col=…,title=code::message`), which GitHub shows as an
//! annotation on the line in the pull request.
//!
//! Escaping follows the Actions runner: in the message `%`, `\r` and `\n`
//! become `%25`, `%0D` and `%0A`; in property values `:` and `,` are escaped too,
//! so a path or code can never end a property early.

use std::fmt::Write as _;

use budgit_engine::{Diagnostic, Report, Severity};

use super::DiagContext;

/// Renders one command line per finding.
pub fn render(context: &DiagContext<'_>, report: &Report) -> String {
    let mut out = String::new();
    for d in &report.diagnostics {
        out.push_str(&command(context, d));
        out.push('\n');
    }
    out
}

fn command(context: &DiagContext<'_>, d: &Diagnostic) -> String {
    let name = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut properties = Vec::new();
    if let Some(l) = &d.location {
        properties.push(format!("file={}", escape_property(&context.file_path(l))));
        properties.push(format!("line={}", l.line));
        properties.push(format!("col={}", l.column));
    }
    properties.push(format!("title={}", escape_property(d.code.as_str())));
    // The annotation shows only the message: put the label, the other places and the
    // help on the following lines of it, as the human output would.
    let mut message = d.message.clone();
    if let Some(label) = &d.label {
        let _ = write!(message, "\n{label}");
    }
    for label in &d.labels {
        let l = &label.location;
        let _ = write!(message, "\n{}:{}:{}: {}", context.path(l), l.line, l.column, label.message);
    }
    if let Some(help) = &d.help {
        let _ = write!(message, "\nhelp: {help}");
    }
    format!("::{name} {}::{}", properties.join(","), escape_data(&message))
}

/// Escapes a command's message. Other control characters (a terminal escape in a
/// YAML key, say) are shown as `\u{…}` so a policy file cannot colour or rewrite the log.
pub fn escape_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c if c.is_control() && c != '\t' => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a command's property value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use budgit_engine::load::PolicySet;
    use budgit_engine::{Code, Location};

    use super::*;

    #[test]
    fn escapes_per_the_runner_rules() {
        assert_eq!(escape_data("50% of\r\nx: a,b"), "50%25 of%0D%0Ax: a,b");
        assert_eq!(escape_property("a:b,c%\n"), "a%3Ab%2Cc%25%0A");
        assert_eq!(escape_data("\u{1b}[31mred"), "\\u{1b}[31mred");
    }

    #[test]
    fn one_command_per_finding() {
        let policies = PolicySet::default();
        let context = DiagContext { policies: &policies, root: Path::new("pol,icies"), color: false };
        let at = Location { file: "a.yaml".into(), line: 3, column: 5, offset: 0, len: 0, commit: None };
        let report = Report {
            diagnostics: vec![
                Diagnostic::error(Code::SchemaUnknownField, "unknown field `credit`")
                    .at(at)
                    .with_help("did you mean `credits`?"),
                Diagnostic::warning(Code::RepoEmpty, "100% empty"),
            ],
        };
        assert_eq!(
            render(&context, &report),
            "::error file=pol%2Cicies/a.yaml,line=3,col=5,title=schema/unknown-field::unknown field `credit`\
             %0Ahelp: did you mean `credits`?\n\
             ::warning title=repo/empty::100%25 empty\n"
        );
    }
}
