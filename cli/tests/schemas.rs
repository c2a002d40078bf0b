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
    assert_eq!(stdout.matches("wrote ").count(), 5, "{stdout}");

    std::fs::write(dir.path().join("override.schema.json"), "{}\n").unwrap();
    let stale = run(&["schema", "--check"]);
    assert_eq!(stale.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(stderr.contains("stale") && stderr.contains("override.schema.json"), "{stderr}");

    assert!(run(&["schema"]).status.success());
    assert!(run(&["schema", "--check"]).status.success());
}
