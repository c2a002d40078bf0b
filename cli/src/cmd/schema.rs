//! `budgit schema`: write the JSON Schemas generated from the policy model and from
//! the types of the commands' JSON outputs.
//!
//! The schemas in `schemas/` are checked in so editors can complete and check
//! policy files (`# yaml-language-server: $schema=…`) and scripts can rely on the
//! outputs of `validate`, `resolve`, `explain`, `evaluate` and `plan`; `--check`
//! keeps them honest in CI, and a test fails when they are stale.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use budgit_engine::model::{Kind, combined_schema, schema_for};
use budgit_engine::output::Output;
use serde_json::{Map, Value};

use super::Status;

/// Where the schemas are published; `$id`s are built from it.
const ID_BASE: &str = "https://budgit.dev/schemas/v1/";

/// Write the JSON Schemas of the policy files (one per kind and a combined one) and of
/// the JSON outputs.
///
/// Policy files: `workspace.schema.json`, `group.schema.json`, `override.schema.json`,
/// `guardrail.schema.json` and `budgit.schema.json` (any document, for files that
/// hold several kinds). Point an editor at them with a first line such as
/// `# yaml-language-server: $schema=../schemas/group.schema.json`. Outputs:
/// `validate-output.schema.json`, `resolve-output.schema.json`,
/// `explain-output.schema.json`, `evaluate-output.schema.json`,
/// `plan-output.schema.json`, `history-output.schema.json`, `review-output.schema.json` and
/// `requests-sync-output.schema.json`, what `--format json` prints. Exit status: 0 written or
/// up to date, 1 stale with `--check`, 2 unwritable.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit schema                        write into `schemas/`
  budgit schema --check                exit 1 when `schemas/` is stale (CI)
  budgit schema --out build/schemas    write elsewhere")]
pub struct Args {
    /// The directory to write the schemas into.
    #[arg(long, default_value = "schemas", value_name = "DIR")]
    out: PathBuf,
    /// Write nothing; exit 1 when a file is missing or differs from the generated one.
    #[arg(long)]
    check: bool,
}

/// One generated schema file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFile {
    /// The file name, e.g. `group.schema.json`.
    pub name: String,
    /// The exact file content: pretty JSON with a trailing newline.
    pub text: String,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let files = generate()?;
    if args.check {
        return check(&args.out, &files);
    }
    fs::create_dir_all(&args.out).with_context(|| format!("cannot create `{}`", args.out.display()))?;
    for file in &files {
        let path = args.out.join(&file.name);
        let current = fs::read_to_string(&path).ok();
        if current.as_deref() == Some(file.text.as_str()) {
            println!("unchanged {}", path.display());
            continue;
        }
        fs::write(&path, &file.text).with_context(|| format!("cannot write `{}`", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(Status::Clean)
}

/// Compares the files on disk with the generated ones; reports every difference.
fn check(dir: &Path, files: &[SchemaFile]) -> anyhow::Result<Status> {
    let mut stale = 0;
    for file in files {
        let path = dir.join(&file.name);
        match fs::read_to_string(&path) {
            Ok(text) if text == file.text => {}
            Ok(_) => {
                stale += 1;
                eprintln!("stale {}", path.display());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                stale += 1;
                eprintln!("missing {}", path.display());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
        }
    }
    if stale == 0 {
        println!("{} schemas in `{}` are up to date", files.len(), dir.display());
        Ok(Status::Clean)
    } else {
        eprintln!(
            "error: {stale} schema file(s) in `{}` differ from the policy model and output types\n  \
             help: run `cargo run -p budgit -- schema --out {}` and commit the result",
            dir.display(),
            dir.display()
        );
        Ok(Status::Findings)
    }
}

/// Generates every schema file, in a fixed order.
pub fn generate() -> anyhow::Result<Vec<SchemaFile>> {
    let mut files = Vec::with_capacity(Kind::ALL.len() + 1 + Output::ALL.len());
    for kind in Kind::ALL {
        let name = format!("{}.schema.json", kind.lowercase());
        files.push(SchemaFile { text: render(&name, schema_for(kind))?, name });
    }
    let name = "budgit.schema.json".to_owned();
    files.push(SchemaFile { text: render(&name, combined_schema())?, name });
    for output in Output::ALL {
        let name = output.file_name();
        files.push(SchemaFile { text: render(&name, output.schema())?, name });
    }
    Ok(files)
}

/// Adds the `$id` (after `$schema`, so the head of the file reads naturally) and
/// prints pretty JSON with a trailing newline. Key order is the generator's, which
/// follows the model's field order, so the output is stable across runs.
fn render(name: &str, schema: Value) -> anyhow::Result<String> {
    let Value::Object(fields) = schema else {
        anyhow::bail!("the generated schema `{name}` is not a JSON object");
    };
    let mut out = Map::with_capacity(fields.len() + 1);
    if let Some(dialect) = fields.get("$schema") {
        out.insert("$schema".into(), dialect.clone());
    }
    out.insert("$id".into(), Value::String(format!("{ID_BASE}{name}")));
    for (key, value) in fields {
        if key != "$schema" && key != "$id" {
            out.insert(key, value);
        }
    }
    let mut text = serde_json::to_string_pretty(&Value::Object(out))?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_the_combined_schema_get_an_id() {
        let files = generate().unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "workspace.schema.json",
                "group.schema.json",
                "override.schema.json",
                "guardrail.schema.json",
                "budgit.schema.json",
                "validate-output.schema.json",
                "resolve-output.schema.json",
                "explain-output.schema.json",
                "evaluate-output.schema.json",
                "plan-output.schema.json",
                "history-output.schema.json",
                "review-output.schema.json",
                "requests-sync-output.schema.json"
            ]
        );
        for file in &files {
            assert!(file.text.ends_with("}\n"), "{} lacks a trailing newline", file.name);
            let value: Value = serde_json::from_str(&file.text).unwrap();
            assert_eq!(value["$id"], format!("https://budgit.dev/schemas/v1/{}", file.name));
            let keys: Vec<&String> = value.as_object().unwrap().keys().take(2).collect();
            assert_eq!(keys, ["$schema", "$id"]);
        }
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(generate().unwrap(), generate().unwrap());
    }

    #[test]
    fn check_reports_stale_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate().unwrap();
        assert_eq!(check(dir.path(), &files).unwrap(), Status::Findings);
        for f in &files {
            fs::write(dir.path().join(&f.name), &f.text).unwrap();
        }
        assert_eq!(check(dir.path(), &files).unwrap(), Status::Clean);
        fs::write(dir.path().join("group.schema.json"), "{}\n").unwrap();
        assert_eq!(check(dir.path(), &files).unwrap(), Status::Findings);
    }
}
