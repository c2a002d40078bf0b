//! Renderers: how findings and results look (the engine decides what they are).
//!
//! One module per output format of `validate` ([`human`], [`json`], [`github`],
//! [`sarif`]); each is a pure function from a [`Report`] to text, so the look is
//! snapshot-tested without running a command. Writing the text, and deciding
//! whether the terminal gets colour, happens here too.

pub mod github;
pub mod human;
pub mod json;
pub mod sarif;

use std::io::{IsTerminal, Write};
use std::path::{Component, Path};

use budgit_engine::load::PolicySet;
use budgit_engine::{Location, Report};

/// Parses `--now`.
pub fn parse_now(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("`{text}` is not an RFC 3339 timestamp ({e}); e.g. `2026-11-27T12:00:00Z`"))
}

/// How to print diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagFormat {
    /// For people: source snippets with carets.
    Human,
    /// `{"diagnostics": [...], "errors": N, "warnings": N}`.
    Json,
    /// GitHub Actions workflow commands (annotations).
    Github,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

/// What the renderers need besides the report.
#[derive(Debug, Clone, Copy)]
pub struct DiagContext<'a> {
    /// The policies, for source snippets and the summary counts.
    pub policies: &'a PolicySet,
    /// The policy directory as given on the command line. Locations are relative to it;
    /// renderers prefix it so every path opens from the working directory (and from the
    /// repository root in CI, where GitHub and SARIF need it).
    pub root: &'a Path,
    /// Whether to colour the human output.
    pub color: bool,
}

impl<'a> DiagContext<'a> {
    /// The path of a location as a user should see it: the root joined with the file,
    /// `/`-separated, with `commit:` in front when it was read from git.
    pub fn path(&self, location: &Location) -> String {
        let path = join_root(self.root, &location.file);
        match &location.commit {
            Some(commit) => format!("{}:{path}", &commit[..commit.len().min(12)]),
            None => path,
        }
    }

    /// The root-prefixed file path without the commit (for tools that want a file path).
    pub fn file_path(&self, location: &Location) -> String {
        join_root(self.root, &location.file)
    }
}

/// Renders a report in a format.
pub fn diagnostics(format: DiagFormat, context: &DiagContext<'_>, report: &Report) -> String {
    match format {
        DiagFormat::Human => human::render(context, report),
        DiagFormat::Json => json::render(context, report),
        DiagFormat::Github => github::render(context, report),
        DiagFormat::Sarif => sarif::render(context, report),
    }
}

/// True when stdout should get colour: a terminal, and `NO_COLOR` unset or empty
/// (<https://no-color.org>).
pub fn stdout_color() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stdout().is_terminal()
}

/// Writes text to stdout. A closed pipe (`budgit validate | head`) is not an error.
pub fn emit(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// `root/file` with `/` separators, leaving out `.` components so `./policies`
/// and `policies/` print the same.
fn join_root(root: &Path, file: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in root.components() {
        match component {
            Component::CurDir => {}
            Component::RootDir => parts.push(String::new()),
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    parts.push(file.to_owned());
    let joined = parts.join("/");
    if joined.is_empty() { file.to_owned() } else { joined }
}

/// `n thing` or `n things`.
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// A plain-text table for people: columns two spaces apart, the `numeric` ones
/// right-aligned, no trailing spaces.
pub fn columns(rows: &[Vec<String>], numeric: &[usize]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if numeric.contains(&c) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_to_the_root_without_dot_components() {
        assert_eq!(join_root(Path::new("policies"), "groups.yaml"), "policies/groups.yaml");
        assert_eq!(join_root(Path::new("./policies/"), "a/b.yaml"), "policies/a/b.yaml");
        assert_eq!(join_root(Path::new("."), "b.yaml"), "b.yaml");
        assert_eq!(join_root(Path::new("/srv/p"), "b.yaml"), "/srv/p/b.yaml");
    }

    #[test]
    fn now_must_be_rfc3339() {
        assert!(parse_now("2026-11-27T12:00:00Z").is_ok());
        assert!(parse_now("2026-11-27T12:00:00+01:00").is_ok());
        let error = parse_now("yesterday").unwrap_err();
        assert!(error.starts_with("`yesterday` is not an RFC 3339 timestamp"), "{error}");
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(0, "error"), "0 errors");
        assert_eq!(plural(1, "error"), "1 error");
        assert_eq!(plural(2, "warning"), "2 warnings");
    }
}
