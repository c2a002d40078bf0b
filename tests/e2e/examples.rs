//! Every example in every command's `--help` runs as written from the repository
//! root, against `policies/` and `examples/`.
//!
//! Each example runs in a fresh copy of those directories made into a git
//! repository (one commit, with `origin/main` pointing at it, as in a CI checkout),
//! so examples that write files or branches touch nothing here. `serve`,
//! `reconcile`, `users` and `health` run or talk to a long-running service: their
//! examples run against real services in `service_examples.rs`. `usage` and `import`
//! talk to a vendor's API: `cli/tests/pull.rs` and `cli/tests/pull_claude.rs` run
//! `usage pull` against the fakes, `cli/tests/import.rs` runs `import`. `requests`
//! talks to a vendor's API and a service: `cli/tests/claude_requests.rs` runs `requests
//! sync` against the Claude fake and a real `budgit serve`.

use std::path::Path;

use crate::{budgit_with_env, repo_root};

/// Commands whose examples need a running service.
const SERVICES: [&str; 7] = ["serve", "reconcile", "users", "health", "usage", "requests", "import"];

/// One example: environment assignments, the arguments after `budgit`, and the file
/// stdout is redirected to.
#[derive(Debug, Default)]
pub(crate) struct Example {
    pub(crate) line: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) args: Vec<String>,
    pub(crate) stdout_to: Option<String>,
}

/// The example lines of a help text: the lines under `Examples:` that run `budgit`,
/// with `\` continuations joined.
pub(crate) fn example_lines(help: &str) -> Vec<String> {
    let Some(section) = help.split("Examples:\n").nth(1) else { return Vec::new() };
    let mut lines: Vec<String> = Vec::new();
    let mut continued = false;
    for line in section.lines().take_while(|l| l.starts_with("  ")) {
        let text = line.trim();
        if continued {
            let last = lines.last_mut().unwrap();
            last.push(' ');
            last.push_str(text.trim_end_matches('\\').trim_end());
        } else {
            lines.push(text.trim_end_matches('\\').trim_end().to_owned());
        }
        continued = text.ends_with('\\');
    }
    lines
}

/// Splits an example like a shell would: quotes, `NAME=value` prefixes, `> file`;
/// a run of two spaces outside quotes starts the description.
pub(crate) fn parse(line: &str) -> Example {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, ' ') => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                if chars.get(i + 1) == Some(&' ') {
                    break;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
        i += 1;
    }
    if in_word {
        words.push(word);
    }
    assert!(quote.is_none(), "unbalanced quote in `{line}`");
    let mut example = Example { line: line.to_owned(), ..Example::default() };
    let mut rest = words.into_iter().peekable();
    while let Some((name, value)) = rest.peek().and_then(|w| w.split_once('=')) {
        example.env.push((name.to_owned(), value.to_owned()));
        rest.next();
    }
    assert_eq!(rest.next().as_deref(), Some("budgit"), "`{line}` does not run budgit");
    while let Some(word) = rest.next() {
        if word == ">" {
            example.stdout_to = Some(rest.next().unwrap());
        } else {
            example.args.push(word);
        }
    }
    example
}

/// A copy of the example organisation as a one-commit git repository.
pub(crate) fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["policies", "examples", "schemas"] {
        copy(&repo_root().join(sub), &dir.path().join(sub));
    }
    let date = "2026-11-20T09:00:00Z";
    crate::git::git(dir.path(), &["init", "-q", "-b", "main"], date);
    crate::git::git(dir.path(), &["add", "-A"], date);
    crate::git::git(dir.path(), &["commit", "-q", "-m", "policies"], date);
    crate::git::git(dir.path(), &["update-ref", "refs/remotes/origin/main", "HEAD"], date);
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn parsing_follows_the_shell() {
    let e = parse("BUDGIT_TOKEN=x budgit request --reason 'a  b (c)' --days 3   what it does");
    assert_eq!(e.env, [("BUDGIT_TOKEN".to_owned(), "x".to_owned())]);
    assert_eq!(e.args, ["request", "--reason", "a  b (c)", "--days", "3"]);
    let e = parse("budgit validate --format sarif > budgit.sarif     for code scanning");
    assert_eq!((e.args.len(), e.stdout_to.as_deref()), (3, Some("budgit.sarif")));
    let lines = example_lines("x\n\nExamples:\n  budgit a \\\n      --b c\n  budgit d  e\n\nmore\n");
    assert_eq!(lines, ["budgit a --b c", "budgit d  e"]);
}

#[test]
fn every_help_example_runs_as_written() {
    let empty = tempfile::tempdir().unwrap();
    let mut ran = 0;
    let mut failed = Vec::new();
    for command in crate::cli::commands() {
        if SERVICES.contains(&command.as_str()) {
            continue;
        }
        let help = budgit_with_env(empty.path(), &[&command, "--help"], &[("NO_COLOR", "1")]).stdout;
        let repo = checkout();
        for line in example_lines(&help) {
            let example = parse(&line);
            let mut env: Vec<(&str, &str)> = vec![("NO_COLOR", "1")];
            env.extend(example.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let args: Vec<&str> = example.args.iter().map(String::as_str).collect();
            let run = budgit_with_env(repo.path(), &args, &env);
            ran += 1;
            // `--detailed-exitcode` turns "the plan changes something" into 3.
            let ok = run.code == 0 || (run.code == 3 && args.contains(&"--detailed-exitcode"));
            if !ok {
                failed.push(format!("`{}` ({command} --help):\n{}", example.line, run.snapshot()));
            } else if let Some(file) = &example.stdout_to {
                std::fs::write(repo.path().join(file), &run.stdout).unwrap();
                assert!(!run.stdout.is_empty(), "`{}` printed nothing", example.line);
            }
        }
    }
    assert!(ran >= 25, "only {ran} examples found");
    assert!(failed.is_empty(), "{} of {ran} help examples fail:\n\n{}", failed.len(), failed.join("\n"));
}
