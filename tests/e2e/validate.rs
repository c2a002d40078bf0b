//! `budgit validate` on a clean repository and on each class of bad input, in
//! every output format.

use std::path::Path;
use std::time::Duration;

use crate::{NOW, Run, budgit, budgit_with_env, repo_root, with_fixture};

pub const FORMATS: [&str; 4] = ["human", "json", "github", "sarif"];

/// `validate --policies policies` in one format.
pub fn validate(cwd: &Path, format: &str) -> Run {
    budgit(cwd, &["validate", "--policies", "policies", "--now", NOW, "--format", format])
}

/// Every format's run, one after the other, as one snapshot.
fn all_formats(cwd: &Path) -> String {
    let mut out = String::new();
    for format in FORMATS {
        out.push_str(&format!("===== --format {format}\n{}\n", validate(cwd, format).snapshot()));
    }
    out
}

#[test]
fn clean_repository() {
    let dir = with_fixture("clean");
    assert_eq!(validate(dir.path(), "human").code, 0);
    insta::assert_snapshot!(all_formats(dir.path()));
}

#[test]
fn example_policies_are_valid() {
    // The example organisation changes as the product grows: assert what must hold
    // rather than snapshot counts.
    let root = repo_root();
    let human = validate(&root, "human");
    assert_eq!(human.code, 0, "{}", human.snapshot());
    assert!(human.stdout.starts_with("ok: ") && human.stdout.ends_with("no findings\n"), "{}", human.stdout);
    let json: serde_json::Value = serde_json::from_str(&validate(&root, "json").stdout).unwrap();
    assert_eq!((json["errors"].as_u64(), json["warnings"].as_u64()), (Some(0), Some(0)));
    assert_eq!(validate(&root, "github").stdout, "");
}

#[test]
fn malformed_yaml() {
    let dir = with_fixture("malformed");
    assert_eq!(validate(dir.path(), "human").code, 1);
    insta::assert_snapshot!(all_formats(dir.path()));
}

#[test]
fn unknown_fields_and_wrong_types() {
    let dir = with_fixture("unknown-field");
    assert_eq!(validate(dir.path(), "human").code, 1);
    insta::assert_snapshot!(all_formats(dir.path()));
}

#[test]
fn findings_across_documents_label_both_places() {
    // Duplicate names, overlapping and over-long overrides, CEL errors and a failed
    // guardrail: every stage reports, and conflicts point at both documents.
    let dir = with_fixture("findings");
    assert_eq!(validate(dir.path(), "human").code, 1);
    insta::assert_snapshot!(all_formats(dir.path()));
}

#[test]
fn warnings_alone_pass() {
    let dir = with_fixture("warnings");
    let run = validate(dir.path(), "human");
    assert_eq!(run.code, 0, "{}", run.snapshot());
    assert!(run.stdout.ends_with(", 1 warning\n"), "{}", run.stdout);
    insta::assert_snapshot!(all_formats(dir.path()));
}

#[test]
fn binary_garbage() {
    let dir = with_fixture("clean");
    let garbage: Vec<u8> = b"\x7fELF\x02\x01\x01\x00\x00\x00\xff\xfe\x00\x03\x00>\x00"
        .iter()
        .copied()
        .chain((0..=255u8).rev())
        .collect();
    std::fs::write(dir.path().join("policies/blob.yaml"), garbage).unwrap();
    assert_eq!(validate(dir.path(), "human").code, 1);
    insta::assert_snapshot!(all_formats(dir.path()));
}

#[test]
fn fifty_megabyte_file_is_refused_quickly() {
    let dir = with_fixture("clean");
    let line = "padding: 'this file is far larger than any policy file should be'\n";
    let big = line.repeat(50 * 1024 * 1024 / line.len() + 1);
    std::fs::write(dir.path().join("policies/huge.yaml"), big).unwrap();
    let run = validate(dir.path(), "human");
    assert_eq!(run.code, 1, "{}", run.snapshot());
    // Only the first MiB is ever read: a debug build answers in well under a second.
    assert!(run.elapsed < Duration::from_secs(10), "took {:?}", run.elapsed);
    insta::assert_snapshot!(all_formats(dir.path()));
}

#[test]
fn empty_repository() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/README.md"), "no policies yet\n").unwrap();
    assert_eq!(validate(dir.path(), "human").code, 1);
    insta::assert_snapshot!(all_formats(dir.path()));
}

#[test]
fn missing_policy_directory_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = budgit(dir.path(), &["validate", "--policies", "nowhere", "--now", NOW]);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    insta::assert_snapshot!(run.snapshot());
}

#[test]
fn default_policy_directory_is_policies() {
    let dir = with_fixture("clean");
    let run = budgit(dir.path(), &["validate", "--now", NOW]);
    assert_eq!(run.code, 0, "{}", run.snapshot());
    let empty = tempfile::tempdir().unwrap();
    let run = budgit(empty.path(), &["validate", "--now", NOW]);
    assert_eq!(run.code, 2, "{}", run.snapshot());
    assert!(run.stderr.contains("`policies`"), "{}", run.stderr);
}

#[test]
fn bad_now_is_a_usage_error() {
    let dir = with_fixture("clean");
    let run = budgit(dir.path(), &["validate", "--now", "2026-13-01", "--policies", "policies"]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(run.snapshot());
}

#[test]
fn bad_format_is_a_usage_error() {
    let dir = with_fixture("clean");
    let run = budgit(dir.path(), &["validate", "--format", "xml", "--now", NOW]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!(run.snapshot());
}

#[test]
fn json_has_the_documented_shape() {
    let dir = with_fixture("unknown-field");
    let value: serde_json::Value = serde_json::from_str(&validate(dir.path(), "json").stdout).unwrap();
    let diagnostics = value["diagnostics"].as_array().unwrap();
    assert_eq!(value["errors"].as_u64(), Some(diagnostics.len() as u64));
    for d in diagnostics {
        for key in ["code", "severity", "message", "file", "line", "column", "help"] {
            assert!(d.get(key).is_some(), "`{key}` missing from {d}");
        }
        assert!(d["file"].as_str().unwrap().starts_with("policies/"), "{d}");
    }
}

#[test]
fn github_lines_are_workflow_commands() {
    let dir = with_fixture("findings");
    let out = validate(dir.path(), "github").stdout;
    assert!(!out.is_empty());
    for line in out.lines() {
        assert!(line.starts_with("::error file=policies/") || line.starts_with("::warning "), "{line}");
        let (properties, message) = line[2..].split_once("::").unwrap();
        assert!(
            properties.contains(",line=") && properties.contains(",col=") && properties.contains(",title=")
        );
        assert!(!message.is_empty());
    }
}

#[test]
fn no_colour_when_not_a_terminal() {
    // Without NO_COLOR, colour still depends on stdout being a terminal; here it is a pipe.
    let dir = with_fixture("findings");
    let args = ["validate", "--now", NOW];
    let run = budgit_with_env(dir.path(), &args, &[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("error[override/overlap]"), "{}", run.stdout);
    assert!(!run.stdout.contains('\u{1b}') && !run.stderr.contains('\u{1b}'), "{}", run.stdout);
}

#[test]
fn people_not_in_the_directory_are_findings() {
    let dir = with_fixture("clean");
    // One typo in an override's user, one in a group's members; one bad directory row.
    let overrides = std::fs::read_to_string(dir.path().join("policies/overrides.yaml")).unwrap();
    std::fs::write(
        dir.path().join("policies/overrides.yaml"),
        overrides.replace("user: ana@", "user: anna@"),
    )
    .unwrap();
    let groups = std::fs::read_to_string(dir.path().join("policies/groups.yaml")).unwrap();
    std::fs::write(
        dir.path().join("policies/groups.yaml"),
        groups.replace("priority: 30\n", "priority: 30\nmembers: [bob@tiny.example, zoe@tiny.exmaple]\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("directory.csv"),
        "email,department,title\nana@tiny.example,Engineering,Staff\nbob@tiny.example,Engineering,Intern\n\
         zoe@tiny.example,Sales,AE\nnot-an-email,Sales,AE\n",
    )
    .unwrap();
    let run = |directory: &str, extra: &[&str]| {
        let mut args = vec!["validate", "--policies", "policies", "--now", NOW, "--directory", directory];
        args.extend_from_slice(extra);
        budgit(dir.path(), &args)
    };
    // Before, both typos validated clean: the override and the member applied to nobody.
    assert_eq!(budgit(dir.path(), &["validate", "--policies", "policies", "--now", NOW]).code, 0);
    let warned = run("directory.csv", &[]);
    assert_eq!(warned.code, 0, "{}", warned.snapshot());
    let strict = run("directory.csv", &["--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.snapshot());
    let missing = run("nowhere.csv", &[]);
    assert_eq!(missing.code, 2, "{}", missing.snapshot());
    assert!(missing.stderr.contains("nowhere.csv"), "{}", missing.stderr);
    insta::assert_snapshot!(format!("{}\n===== --strict\n{}", warned.snapshot(), strict.snapshot()));
}

#[test]
fn rate_caps_are_checked_at_their_place() {
    // a rate cap above the total and one of zero are errors at the `per_hour` they
    // name; the Claude target warns about each rate cap it cannot hold
    let dir = with_fixture("rate-caps");
    assert_eq!(validate(dir.path(), "human").code, 1);
    insta::assert_snapshot!(all_formats(dir.path()));
}
