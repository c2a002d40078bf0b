//! The command line itself: help, version, and usage errors.

use crate::budgit;

/// The subcommands `budgit --help` lists.
pub(crate) fn commands() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let help = budgit(dir.path(), &["--help"]);
    assert_eq!(help.code, 0);
    help.stdout
        .split("Commands:\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("  "))
        // A wrapped description continues on a line indented deeper than the names.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

#[test]
fn help_lists_the_commands() {
    let commands = commands();
    assert!(commands.iter().any(|c| c == "validate"), "{commands:?}");
}

#[test]
fn every_command_has_help_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for command in commands() {
        let run = budgit(dir.path(), &[&command, "--help"]);
        assert_eq!(run.code, 0, "{}", run.snapshot());
        assert!(
            run.stdout.contains("Example"),
            "`budgit {command} --help` shows no example:\n{}",
            run.stdout
        );
    }
}

#[test]
fn validate_help() {
    let dir = tempfile::tempdir().unwrap();
    insta::assert_snapshot!(budgit(dir.path(), &["validate", "--help"]).snapshot());
}

#[test]
fn version() {
    let dir = tempfile::tempdir().unwrap();
    let run = budgit(dir.path(), &["--version"]);
    assert_eq!((run.code, run.stdout), (0, format!("budgit {}\n", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn unknown_command_and_flag_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(budgit(dir.path(), &["frobnicate"]).code, 2);
    let run = budgit(dir.path(), &["validate", "--polices", "p"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--policies"), "{}", run.stderr);
    assert_eq!(budgit(dir.path(), &[]).code, 2);
}
