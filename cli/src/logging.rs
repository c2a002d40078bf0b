//! Log output of the long-running commands (`serve`, `reconcile --every`): `tracing`
//! events on stderr, filtered by `RUST_LOG`, as text or as one JSON object per line.
//!
//! Results stay on stdout, where they always were; logs never mix with them.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;
pub use tracing_subscriber::filter::LevelFilter;

/// How log events are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people (colours on a terminal).
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `message` and the
    /// event's fields), for a log pipeline.
    Json,
}

impl LogFormat {
    /// True for JSON lines: the command's own stderr lines become events too.
    pub fn is_json(self) -> bool {
        self == LogFormat::Json
    }
}

/// Installs the process's log subscriber: `RUST_LOG` selects events, `default`
/// when it is unset (`info` for a service, `warn` for a one-shot command whose
/// result is its output).
///
/// A `RUST_LOG` that does not parse is an error: a filter silently ignored would
/// hide the very events someone asked for.
pub fn init(format: LogFormat, default: LevelFilter) -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .with_default_directive(default.into())
        .from_env()
        .context("`RUST_LOG` is not a valid filter (e.g. `info`, `budgit_service=debug`)")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    // a second install (a test calling twice in one process) keeps the first one
    let _ = installed;
    Ok(())
}

/// Tells the operator something on stderr: the plain line people and scripts read
/// in text mode (`metrics on http://…`), an `info` event in JSON mode.
pub fn say(format: LogFormat, line: &str) {
    if format.is_json() {
        tracing::info!("{line}");
    } else {
        eprintln!("{line}");
    }
}

/// Like [`say`], for a failure: `error: …` in text mode, an `error` event in JSON mode.
pub fn fail(format: LogFormat, line: &str) {
    if format.is_json() {
        tracing::error!("{line}");
    } else {
        eprintln!("error: {line}");
    }
}
