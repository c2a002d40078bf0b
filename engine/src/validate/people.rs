//! The people the policies name, checked against a directory of users
//! (`validate --directory`).
//!
//! An override for an email nobody has, or a group member who does not exist,
//! applies to nobody: a typo that would otherwise validate clean and silently do
//! nothing. Each is a finding at the email, with the nearest email of the
//! directory as a suggestion. They are warnings unless the caller asks for
//! errors (`--strict`): a directory export can lag behind a new hire. Reading the
//! directory is [`crate::input`]; matching an email is [`Directory::lookup`].

use crate::diag::{Code, Diagnostic, Location, Report, Severity};
use crate::directory::{Directory, Lookup};
use crate::load::{Loaded, PolicySet, Rejected};
use crate::model::Kind;

/// Reports every override `user` and group `members`/`exclude` entry that is not in
/// `dir`, as warnings, or as errors when `strict`. `rejected` documents (those that
/// failed the schema) are checked too, on the fields the schema did not refuse.
pub fn check_people(
    policies: &PolicySet,
    rejected: &[Loaded<Rejected>],
    dir: &Directory,
    strict: bool,
    report: &mut Report,
) {
    let severity = if strict { Severity::Error } else { Severity::Warning };
    let mut check = |email: &str, at: Location, code: Code, label: String| {
        let Lookup::Missing { suggestion } = dir.lookup(email) else { return };
        let help = match suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => "check the spelling, or add the person to the directory first".to_owned(),
        };
        report.push(
            Diagnostic::error(code, format!("`{email}` is not in the directory"))
                .with_severity(severity)
                .at(at)
                .with_label(label)
                .with_help(help),
        );
    };
    let override_label = |name: &str| format!("override `{name}` applies to nobody");
    let group_label = |field: &str, name: &str| match field {
        "members" => format!("a member of group `{name}` who does not exist"),
        _ => format!("excluded from group `{name}`, but nobody has this email"),
    };
    for o in &policies.overrides {
        check(&o.doc.user, o.loc("/user"), Code::OverrideUnknownUser, override_label(&o.doc.name));
    }
    for g in &policies.groups {
        for (field, emails) in [("members", &g.doc.members), ("exclude", &g.doc.exclude)] {
            for (i, email) in emails.iter().enumerate() {
                let at = g.loc(&format!("/{field}/{i}"));
                check(email, at, Code::GroupUnknownMember, group_label(field, &g.doc.name));
            }
        }
    }
    for doc in rejected {
        let name = doc.clean_str("name").unwrap_or("?");
        match doc.doc.kind {
            Kind::Override => {
                if let Some(user) = doc.clean_str("user") {
                    check(user, doc.loc("/user"), Code::OverrideUnknownUser, override_label(name));
                }
            }
            Kind::Group => {
                for field in ["members", "exclude"] {
                    for (i, email) in doc.clean_strs(field) {
                        let at = doc.loc(&format!("/{field}/{i}"));
                        check(email, at, Code::GroupUnknownMember, group_label(field, name));
                    }
                }
            }
            Kind::Workspace | Kind::Guardrail => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::load::{Source, load_sources_keeping_rejected};
    use crate::validate::test_support::WORKSPACE;

    const DIRECTORY: &str = "email,department,title\nalice@acme.com,Eng,Staff\nbob.smith@acme.com,Sales,VP\n";

    fn check(files: &[(&str, &str)], strict: bool) -> Report {
        let sources = files
            .iter()
            .map(|(path, text)| Source { path: Arc::from(*path), text: Arc::from(*text), commit: None })
            .collect();
        let (policies, rejected, _) = load_sources_keeping_rejected(sources);
        let attributes = &policies.workspace().unwrap().doc.attributes;
        let file: Arc<str> = Arc::from("d.csv");
        let (dir, rows) =
            crate::input::parse_directory(&file, DIRECTORY.as_bytes(), false, attributes).unwrap();
        assert!(rows.is_empty(), "{rows:?}");
        let mut report = Report::default();
        check_people(&policies, &rejected, &dir, strict, &mut report);
        report.sort();
        report
    }

    const OVERRIDE: &str = "apiVersion: budgit/v1\nkind: Override\nname: boost\nuser: alice@acme.co\n\
                            add: { credits: 100 }\nexpires: 2026-12-01\nreason: r\n";
    const GROUP: &str = "apiVersion: budgit/v1\nkind: Group\nname: eng\n\
                         members: [alice@acme.com, bob.smiht@acme.com]\nexclude: [nobody@example.org]\n\
                         limit: { credits: 10 }\n";

    #[test]
    fn a_typo_in_an_email_is_a_finding_with_a_suggestion() {
        let report = check(&[("ws.yaml", WORKSPACE), ("o.yaml", OVERRIDE), ("g.yaml", GROUP)], false);
        let found: Vec<_> = report
            .diagnostics
            .iter()
            .map(|d| {
                let l = d.location.as_ref().unwrap();
                (d.code, d.severity, format!("{}:{}:{}", l.file, l.line, l.column), d.help.clone().unwrap())
            })
            .collect();
        assert_eq!(
            found,
            [
                (
                    Code::GroupUnknownMember,
                    Severity::Warning,
                    "g.yaml:4:27".to_owned(),
                    "did you mean `bob.smith@acme.com`?".to_owned()
                ),
                (
                    Code::GroupUnknownMember,
                    Severity::Warning,
                    "g.yaml:5:11".to_owned(),
                    "check the spelling, or add the person to the directory first".to_owned()
                ),
                (
                    Code::OverrideUnknownUser,
                    Severity::Warning,
                    "o.yaml:4:7".to_owned(),
                    "did you mean `alice@acme.com`?".to_owned()
                ),
            ]
        );
        assert_eq!(report.diagnostics[2].message, "`alice@acme.co` is not in the directory");
        assert!(!report.has_errors());
    }

    #[test]
    fn strict_makes_them_errors_and_known_people_pass() {
        let report = check(&[("ws.yaml", WORKSPACE), ("o.yaml", OVERRIDE)], true);
        assert_eq!(report.errors(), 1);
        let fixed = OVERRIDE.replace("alice@acme.co\n", "alice@acme.com\n");
        let report = check(&[("ws.yaml", WORKSPACE), ("o.yaml", &fixed)], true);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    }

    #[test]
    fn documents_that_failed_the_schema_are_checked_too() {
        // `reasn` fails the schema; the typo in `user` is found in the same run.
        let broken = OVERRIDE.replace("reason: r", "reasn: r");
        let group = GROUP.replace("limit:", "limt:");
        let report = check(&[("ws.yaml", WORKSPACE), ("o.yaml", &broken), ("g.yaml", &group)], false);
        let codes: Vec<_> = report.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::GroupUnknownMember, Code::GroupUnknownMember, Code::OverrideUnknownUser]);
        // An email the schema refuses is reported by the schema only.
        let refused = OVERRIDE.replace("user: alice@acme.co", "user: alice-at-acme.co");
        let report = check(&[("ws.yaml", WORKSPACE), ("o.yaml", &refused)], false);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
    }

    #[test]
    fn another_spelling_of_a_directory_email_is_that_person() {
        let other = OVERRIDE.replace("alice@acme.co\n", "Alice@ACME.com\n");
        let report = check(&[("ws.yaml", WORKSPACE), ("o.yaml", &other)], true);
        assert!(report.diagnostics.is_empty(), "{:?}", report.diagnostics);
        let typo = OVERRIDE.replace("alice@acme.co\n", "Alicia@ACME.com\n");
        let report = check(&[("ws.yaml", WORKSPACE), ("o.yaml", &typo)], true);
        assert_eq!(report.diagnostics[0].help.as_deref(), Some("did you mean `alice@acme.com`?"));
    }
}
