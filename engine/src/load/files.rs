//! Reading a policy directory from the file system.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{MAX_FILE_BYTES, Source};
use crate::diag::{Code, Diagnostic, Location};

/// Why a policy directory could not be read at all (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The directory is missing or unreadable.
    #[error("cannot read policy directory `{path}`: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is unreadable.
    #[error("cannot read `{path}`: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// True for the files a policy repository is made of.
pub fn is_policy_file(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Reads every `*.yaml`/`*.yml` file under `root` (recursively, hidden entries
/// skipped) in path order. Files too large or not UTF-8 become diagnostics, not failures.
pub fn read_dir(root: &Path) -> Result<(Vec<Source>, Vec<Diagnostic>), ReadError> {
    let mut paths = Vec::new();
    collect(root, &mut paths)?;
    paths.sort();
    let mut sources = Vec::with_capacity(paths.len());
    let mut diagnostics = Vec::new();
    for path in paths {
        let rel: Arc<str> = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
            .into();
        let file = fs::File::open(&path).map_err(|source| ReadError::File { path: path.clone(), source })?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ReadError::File { path: path.clone(), source })?;
        match check_bytes(&rel, bytes) {
            Ok(text) => sources.push(Source { path: rel, text: text.into(), commit: None }),
            Err(d) => diagnostics.push(d),
        }
    }
    Ok((sources, diagnostics))
}

/// Checks size and encoding of a file's bytes.
pub fn check_bytes(rel: &Arc<str>, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            Code::InputTooLarge,
            format!("file is larger than {} KiB", MAX_FILE_BYTES / 1024),
        )
        .at(Location::file_start(rel.clone()))
        .with_help("policy files are small; split large files or remove generated content"));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok(text.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..valid]);
            let line = u32::try_from(prefix.matches('\n').count() + 1).unwrap_or(u32::MAX);
            let column = u32::try_from(prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1)
                .unwrap_or(u32::MAX);
            Err(Diagnostic::error(
                Code::InputNotUtf8,
                format!("file is not UTF-8 text (invalid byte 0x{:02x})", bytes[valid]),
            )
            .at(Location { file: rel.clone(), line, column, offset: valid, len: 1, commit: None })
            .with_help("policy files must be UTF-8 YAML; is this a binary file?"))
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReadError> {
    let entries = fs::read_dir(dir).map_err(|source| ReadError::Dir { path: dir.to_path_buf(), source })?;
    for entry in entries {
        let entry = entry.map_err(|source| ReadError::Dir { path: dir.to_path_buf(), source })?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = entry.file_type().map_err(|source| ReadError::Dir { path: path.clone(), source })?;
        if ft.is_dir() {
            collect(&path, out)?;
        } else if is_policy_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}
