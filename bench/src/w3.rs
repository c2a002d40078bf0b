//! W3: validate a generated policy repository against a bare YAML parse of the same files.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use budgit_engine::r#gen::{Spec, generate};
use budgit_engine::validate::{ValidateOptions, validate_dir};

use crate::measure;

/// Generates a repository of about `files` policy files (4 groups for each override).
pub fn repo(root: &Path, files: usize, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<PathBuf> {
    let out = root.join(format!("w3-{files}"));
    let documents = files.saturating_sub(2);
    let spec = Spec {
        users: 2000,
        groups: documents * 4 / 5,
        overrides: documents - documents * 4 / 5,
        days: 31,
        seed: 3,
        rows: Some(1000),
        now,
    };
    generate(&spec, &out, true, &mut |_| {}).context("cannot generate the W3 repository")?;
    Ok(out.join("policies"))
}

/// The bare-parse peer: the same walk and reads, then serde-saphyr into `serde_json::Value`.
fn bare_parse(dir: &Path) -> anyhow::Result<usize> {
    let mut stack = vec![dir.to_path_buf()];
    let mut docs = 0;
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                let text = fs::read_to_string(&path)?;
                let values: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&text)
                    .with_context(|| format!("cannot parse `{}`", path.display()))?;
                docs += values.len();
            }
        }
    }
    Ok(docs)
}

/// Runs W3 for each repository size.
pub fn run(root: &Path, sizes: &[usize], runs: usize) -> anyhow::Result<()> {
    let now = chrono::Utc::now();
    for &files in sizes {
        let dir = repo(root, files, now)?;
        let options = ValidateOptions { now };
        let (ours, validated) = measure::median(runs, || validate_dir(&dir, &options));
        let validated = validated.context("cannot validate the W3 repository")?;
        let (peer, docs) = measure::median(runs, || bare_parse(&dir));
        let docs = docs?;
        let errors = validated.report.errors();
        eprintln!(
            "W3 {files} files: {} documents validated ({errors} errors, {} findings), {docs} parsed bare",
            validated.policies.len(),
            validated.report.diagnostics.len(),
        );
        measure::ratio(&format!("W3 {files} files"), ours, "yaml-parse", peer, runs);
    }
    Ok(())
}
