//! `budgit users import`: load people into a self-hosted workspace from a directory file.
//!
//! The file goes to `POST /v1/users/import` in slices of `--batch` rows (a CSV slice
//! repeats the header), so a 100k-person file shows progress and no request nears the
//! service's body limit. The service parses each slice with the engine's directory
//! reader; its findings come back by line of the slice, are mapped to lines of the file
//! and rendered the way `validate` renders policy findings.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use budgit_engine::load::{PolicySet, Source};
use budgit_engine::workspace::http::{HttpWorkspace, ImportFinding, TOKEN_ENV};
use budgit_engine::{Code, Diagnostic, Location, Report};

use super::Status;
use crate::render::{self, DiagFormat};

/// Manage the people of a workspace.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  BUDGIT_TOKEN=... budgit users import --workspace http://127.0.0.1:8080 examples/directory.csv")]
pub struct Args {
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UsersCommand {
    Import(ImportArgs),
}

/// Create or update the workspace's people from a directory file (CSV or JSON Lines).
///
/// Every row's user is created, or updated when their attributes changed; bad rows are
/// reported and left out. People missing from the file are kept (`reconcile
/// --directory FILE` removes them). The admin token is read from `BUDGIT_TOKEN`.
///
/// Exit status: 0 imported (warnings allowed); 1 some rows were bad (the others are
/// imported); 2 the file or the workspace could not be used.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  BUDGIT_TOKEN=... budgit users import --workspace http://127.0.0.1:8080 examples/directory.csv
  budgit users import --workspace $URL people.jsonl --format github")]
pub struct ImportArgs {
    /// The workspace API's base URL.
    #[arg(long, value_name = "URL", env = "BUDGIT_WORKSPACE")]
    workspace: String,
    /// The directory file: CSV (`email,<attributes>`) or JSON Lines (`.jsonl`, `.ndjson`).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Rows per request.
    #[arg(long, default_value_t = DEFAULT_BATCH, value_name = "N")]
    batch: usize,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = DiagFormat::Human)]
    format: DiagFormat,
    /// Timeout of one workspace call.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = super::reconcile::parse_duration)]
    timeout: Duration,
}

/// Rows per import request: a 100k-person file shows ten steps of progress.
pub const DEFAULT_BATCH: usize = 10_000;

pub fn run(args: Args) -> anyhow::Result<Status> {
    match args.command {
        UsersCommand::Import(args) => import(args),
    }
}

/// What an import did, summed over its slices.
#[derive(Debug, Default)]
pub struct Imported {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Findings on lines of the file.
    pub report: Report,
}

fn import(args: ImportArgs) -> anyhow::Result<Status> {
    let workspace = HttpWorkspace::from_env(&args.workspace, args.timeout)
        .with_context(|| format!("set `{TOKEN_ENV}` to the workspace's admin token"))?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("cannot read `{}`", args.file.display()))?;
    let imported = import_file(&workspace, &args.file, &bytes, args.batch, true)?;
    let file = display_path(&args.file);
    let text: Arc<str> = Arc::from(String::from_utf8_lossy(&bytes).as_ref());
    let policies = PolicySet {
        sources: vec![Source { path: Arc::from(file.as_str()), text, commit: None }],
        ..PolicySet::default()
    };
    let context =
        render::DiagContext { policies: &policies, root: Path::new(""), color: render::stdout_color() };
    let summary = format!(
        "imported {} from `{file}`: {} created, {} updated, {} unchanged",
        render::plural(usize_of(imported.created + imported.updated + imported.unchanged), "user"),
        imported.created,
        imported.updated,
        imported.unchanged
    );
    match args.format {
        DiagFormat::Human => {
            let rendered = render::diagnostics(DiagFormat::Human, &context, &imported.report);
            // The renderer's last line counts policy files and documents; an import
            // counts people instead.
            let findings = rendered.trim_end().rsplit_once('\n').map_or("", |(before, _)| before);
            let counts = match (imported.report.errors(), imported.report.warnings()) {
                (0, 0) => String::new(),
                (e, 0) => format!("; {}", render::plural(e, "bad row")),
                (0, w) => format!("; {}", render::plural(w, "warning")),
                (e, w) => format!("; {}, {}", render::plural(e, "bad row"), render::plural(w, "warning")),
            };
            let findings = if findings.is_empty() { String::new() } else { format!("{findings}\n") };
            render::emit(&format!("{findings}{summary}{counts}\n"))?;
        }
        other => {
            render::emit(&render::diagnostics(other, &context, &imported.report))?;
            eprintln!("{summary}");
        }
    }
    Ok(if imported.report.errors() > 0 { Status::Findings } else { Status::Clean })
}

/// Imports `bytes` (the contents of `path`) in slices of `batch` rows; with `progress`,
/// says how far it got on stderr after each slice of a file of more than one.
pub fn import_file(
    workspace: &HttpWorkspace,
    path: &Path,
    bytes: &[u8],
    batch: usize,
    progress: bool,
) -> anyhow::Result<Imported> {
    let jsonl = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson"));
    let file: Arc<str> = Arc::from(display_path(path).as_str());
    let lines = line_spans(bytes);
    // A CSV file's first line is its header: every slice carries it, and its findings
    // (a missing or unknown column) are kept from the first slice only.
    let (header, rows) = if jsonl {
        (None, &lines[..])
    } else {
        lines.split_first().map_or((None, &lines[..0]), |(h, r)| (Some(*h), r))
    };
    if !jsonl && header.is_none() {
        anyhow::bail!("`{file}` is empty: a CSV directory starts with its header `email,<attributes>`");
    }
    // a JSON Lines file without a line of JSON holds nobody: there is nothing to send
    // (the service refuses an empty body as a body left out)
    if jsonl && rows.iter().all(|s| bytes[s.start..s.end].trim_ascii().is_empty()) {
        return Ok(Imported::default());
    }
    let batch = batch.max(1);
    let slices: Vec<&[Span]> = if rows.is_empty() { vec![rows] } else { rows.chunks(batch).collect() };
    let total = rows.len();
    let mut out = Imported::default();
    let mut done = 0usize;
    for (i, slice) in slices.iter().enumerate() {
        let mut body = Vec::new();
        if let Some(h) = header {
            body.extend_from_slice(&bytes[h.start..h.end]);
            body.push(b'\n');
        }
        for span in *slice {
            body.extend_from_slice(&bytes[span.start..span.end]);
            body.push(b'\n');
        }
        let answer = workspace
            .import_users(&body, jsonl)
            .with_context(|| format!("cannot import `{file}` into the workspace"))?;
        out.created += answer.created;
        out.updated += answer.updated;
        out.unchanged += answer.unchanged;
        for finding in &answer.diagnostics {
            // Body line 1 of a CSV slice is the header; its rows follow from line 2.
            let line = match (finding.line, header) {
                (Some(1), Some(h)) if i == 0 => Some(h),
                (Some(1), Some(_)) => continue,
                (Some(n), Some(_)) => slice.get(usize_of(u64::from(n)).saturating_sub(2)).copied(),
                (Some(n), None) => slice.get(usize_of(u64::from(n)).saturating_sub(1)).copied(),
                (None, _) if i > 0 => continue,
                (None, _) => None,
            };
            out.report.push(diagnostic(finding, &file, line));
        }
        done += slice.len();
        if progress && slices.len() > 1 {
            eprintln!("imported {done} of {total} rows ({}/{})", i + 1, slices.len());
        }
    }
    Ok(out)
}

/// A line of the file: byte range without the line break, and its 1-based number.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    line: u32,
}

/// The non-blank lines of `bytes`.
fn line_spans(bytes: &[u8]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut start = 0;
    for (n, piece) in bytes.split(|b| *b == b'\n').enumerate() {
        let end = start + piece.len();
        let trimmed = piece.strip_suffix(b"\r").unwrap_or(piece);
        if !trimmed.iter().all(u8::is_ascii_whitespace) {
            out.push(Span {
                start,
                end: start + trimmed.len(),
                line: u32::try_from(n + 1).unwrap_or(u32::MAX),
            });
        }
        start = end + 1;
    }
    out
}

/// A finding of the service as an engine diagnostic on a line of the file.
fn diagnostic(finding: &ImportFinding, file: &Arc<str>, line: Option<Span>) -> Diagnostic {
    // The service's import findings share the directory codes; anything else it says
    // about a row is a bad row.
    let code = match Code::parse(&finding.code) {
        Some(
            code @ (Code::DirectoryDuplicateUser
            | Code::DirectoryMissingColumn
            | Code::DirectoryUnknownColumn),
        ) => code,
        _ => Code::DirectoryBadRow,
    };
    let d = if finding.severity == "warning" {
        Diagnostic::warning(code, finding.message.clone())
    } else {
        Diagnostic::error(code, finding.message.clone())
    };
    let Some(span) = line else { return d.at(Location::file_start(file.clone())) };
    d.at(Location {
        file: file.clone(),
        line: span.line,
        column: 1,
        offset: span.start,
        len: span.end - span.start,
        commit: None,
    })
}

fn display_path(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
