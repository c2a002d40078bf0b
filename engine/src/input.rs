//! Reading inputs: the directory and usage, from files.
//!
//! Directories come from CSV or JSON Lines, usage from CSV, JSON Lines or pages of
//! an OpenAI-style Costs API response; the format is chosen by the file's
//! extension (and, for `.json`, its content). Bad rows never disappear silently:
//! each becomes a diagnostic at `file:line`, and the caller decides whether they
//! fail the run. Only an unreadable file is a failure ([`InputError`]). This
//! module reads and checks; the compact in-memory usage is [`crate::usage_table`].

mod csv;
pub mod directory;
pub mod outcomes;
pub mod usage;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::Location;

pub use directory::{parse_directory, read_directory};
pub use outcomes::{Outcome, OutcomesFormat, parse_outcomes, read_outcomes};
pub use usage::{UsageFormat, parse_usage, parse_usage_parallel, read_usage, read_usage_parallel};

/// Why an input file could not be read at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file is missing or unreadable.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file's overall shape is not one we read (no header, wrong columns, not JSON).
    #[error("cannot read `{path}`: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong, lowercase.
        reason: String,
    },
}

/// Reads a whole file.
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|source| InputError::Io { path: path.to_path_buf(), source })
}

/// The name diagnostics use for a file: the path as given.
pub(crate) fn file_name(path: &Path) -> Arc<str> {
    path.to_string_lossy().into_owned().into()
}

/// The lowercase extension of a path.
pub(crate) fn extension(path: &Path) -> String {
    path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase()
}

/// A location at a line and column of an input file.
pub(crate) fn at(file: &Arc<str>, line: u32, column: u32) -> Location {
    Location { file: file.clone(), line, column: column.max(1), offset: 0, len: 0, commit: None }
}

/// Text for a message: valid UTF-8 as is, anything else lossily.
pub(crate) fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text.into_owned()
    }
}

/// Reads every usage file into one table interned against `dir`, dates from
/// timestamps taken in `tz`, each file on up to `threads` threads (the result is
/// the same on any number). Returns the bad rows of every file, then one
/// `usage/unknown-user` warning per user absent from the directory (their usage
/// is kept: it counts in workspace totals).
pub fn read_usage_files(
    paths: &[PathBuf],
    dir: &crate::directory::Directory,
    tz: chrono_tz::Tz,
    threads: usize,
    mut progress: impl FnMut(&Path, u64),
) -> Result<(crate::usage_table::UsageTable, Vec<crate::diag::Diagnostic>), InputError> {
    let mut table = crate::usage_table::UsageTable::new(dir);
    let mut findings = Vec::new();
    for path in paths {
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        progress(path, size);
        findings.extend(read_usage_parallel(path, &mut table, tz, threads)?);
    }
    findings.extend(table.unknown_user_diagnostics());
    Ok((table, findings))
}
