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
    // Built from a git checkout (this repository): the version names the commit and its date.
    let head = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "log", "-1", "--format=%h %cs", "--abbrev=12"])
        .output()
        .unwrap();
    let head = String::from_utf8(head.stdout).unwrap();
    assert_eq!(
        (run.code, run.stdout),
        (0, format!("budgit {} ({})\n", env!("CARGO_PKG_VERSION"), head.trim()))
    );
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

#[test]
fn completions_name_every_command_in_every_shell() {
    let dir = tempfile::tempdir().unwrap();
    let commands = commands();
    assert!(commands.iter().any(|c| c == "completions") && commands.iter().any(|c| c == "man"));
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let run = budgit(dir.path(), &["completions", shell]);
        assert_eq!(run.code, 0, "{}", run.snapshot());
        for command in &commands {
            assert!(run.stdout.contains(command.as_str()), "the {shell} script lacks `{command}`");
        }
        // Flags too, not just command names: one per command that only it has.
        for flag in ["--detailed-exitcode", "--out-dir", "--approved-ref"] {
            assert!(run.stdout.contains(flag.trim_start_matches('-')), "the {shell} script lacks `{flag}`");
        }
    }
}

#[test]
fn bash_completion_script_parses_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let run = budgit(dir.path(), &["completions", "bash"]);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    let script = dir.path().join("budgit.bash");
    std::fs::write(&script, &run.stdout).unwrap();
    let syntax = std::process::Command::new("bash").arg("-n").arg(&script).output().unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    // Load it and ask for the completions of `budgit va`, as the shell does on <TAB>.
    let complete = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}'; COMP_WORDS=(budgit va); COMP_CWORD=1; COMP_LINE='budgit va'; COMP_POINT=9; \
             _budgit budgit va budgit; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&complete.stdout),
        "validate\n",
        "{}",
        String::from_utf8_lossy(&complete.stderr)
    );
}

#[test]
fn unknown_shell_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = budgit(dir.path(), &["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{}", run.snapshot());
    assert!(run.stderr.contains("bash, zsh, fish, powershell"), "{}", run.stderr);
}

#[test]
fn man_page_and_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let run = budgit(dir.path(), &["man"]);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    assert!(run.stdout.starts_with(".ie \\n(.g .ds Aq"), "not roff:\n{}", run.stdout);
    assert!(run.stdout.contains(".TH budgit 1"), "{}", run.stdout);
    let commands = commands();
    for command in &commands {
        assert!(run.stdout.contains(command.as_str()), "budgit.1 lacks `{command}`");
    }

    let out = dir.path().join("man/man1");
    let run = budgit(dir.path(), &["man", "--out-dir", "man/man1"]);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    assert!(out.join("budgit.1").is_file());
    for command in &commands {
        let page = std::fs::read_to_string(out.join(format!("budgit-{command}.1"))).unwrap();
        assert!(page.contains(&format!(".TH budgit-{command} 1")), "{page}");
    }
    // A command's page carries its examples, as its `--help` does.
    let validate = std::fs::read_to_string(out.join("budgit-validate.1")).unwrap();
    assert!(validate.contains("Example"), "{validate}");
}

#[test]
fn man_into_an_unwritable_place_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let run = budgit(dir.path(), &["man", "--out-dir", "file/man1"]);
    assert_eq!(run.code, 2, "{}", run.snapshot());
    assert!(run.stderr.starts_with("error: cannot create `file/man1`"), "{}", run.stderr);
}
