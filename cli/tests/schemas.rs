//! The checked-in JSON Schemas in `schemas/` match the policy model.
//!
//! Editors read these files to complete and check policy YAML, so a model change
//! that is not regenerated would silently mislead them.

use std::path::Path;
use std::process::Command;

#[test]
fn checked_in_schemas_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let output = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .args(["schema", "--check", "--out"])
        .arg(&dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "`schemas/` is stale; run `cargo run -p budgit -- schema` and commit the result\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_fails_on_a_stale_file_and_writing_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_budgit"))
            .args(args)
            .arg("--out")
            .arg(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let missing = run(&["schema", "--check"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing"));

    let wrote = run(&["schema"]);
    assert!(wrote.status.success());
    let stdout = String::from_utf8_lossy(&wrote.stdout);
    // One file per schema checked in to the repository, no more, no less.
    let checked_in = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".schema.json"))
        .count();
    assert!(checked_in >= 11, "{checked_in} schemas checked in");
    assert_eq!(stdout.matches("wrote ").count(), checked_in, "{stdout}");

    std::fs::write(dir.path().join("override.schema.json"), "{}\n").unwrap();
    let stale = run(&["schema", "--check"]);
    assert_eq!(stale.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(stderr.contains("stale") && stderr.contains("override.schema.json"), "{stderr}");

    assert!(run(&["schema"]).status.success());
    assert!(run(&["schema", "--check"]).status.success());
}

/// Every policy file's first line names the schema an editor should check it
/// against, that schema exists in `schemas/`, and every document in the file
/// passes it — so what the editor underlines agrees with `budgit validate`.
#[test]
fn example_policies_point_editors_at_a_schema_they_pass() {
    use std::sync::Arc;

    use budgit_engine::load::yaml::parse_documents;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let schemas = root.join("schemas").canonicalize().unwrap();
    let mut files = Vec::new();
    let mut dirs = vec![root.join("policies")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 20, "the example organisation is missing: {files:?}");

    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        let first = text.lines().next().unwrap_or_default();
        let rel = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{name}: first line is not a `$schema` modeline: {first:?}"));
        let schema_path = path.parent().unwrap().join(rel).canonicalize().unwrap_or_else(|e| {
            panic!("{name}: `{rel}` does not resolve to a schema file: {e}");
        });
        assert!(schema_path.starts_with(&schemas), "{name}: `{rel}` is outside `schemas/`");
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();

        let file: Arc<str> = name.clone().into();
        let documents = parse_documents(&file, &text).unwrap();
        let kinds: std::collections::BTreeSet<String> = documents
            .iter()
            .filter_map(|d| d.get("kind").and_then(|k| k.as_str()).map(str::to_lowercase))
            .collect();
        let expected = match kinds.len() {
            1 => format!("{}.schema.json", kinds.first().unwrap()),
            _ => "budgit.schema.json".to_owned(),
        };
        assert!(rel.ends_with(&expected), "{name}: holds {kinds:?}, so it should point at `{expected}`");
        for document in &documents {
            let errors: Vec<String> =
                validator.iter_errors(&document.to_json()).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{name}: fails `{rel}`: {errors:?}");
        }
    }
}
