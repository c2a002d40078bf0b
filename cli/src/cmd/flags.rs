//! Flag groups that several commands share, flattened into their `Args` with `#[command(flatten)]`.
//!
//! The names, value names, parsers and defaults of the flags live here once. A command
//! whose words differ (what `--now` is the instant of, what the usage is for) sets its
//! own help text on its `Args` with `mut_arg`, so each command's `--help` reads as its own.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, Utc};

use crate::render;

/// The directory of users, their usage and the instant a command works at
/// (`evaluate`, `plan`, `request`).
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// The directory of users: CSV (`email,<attributes>`) or JSON Lines (`.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
    /// A usage file (repeatable): CSV `date,user,product,model,credits`, `.jsonl`, or `.json` Costs API pages.
    #[arg(long, value_name = "FILE")]
    pub usage: Vec<PathBuf>,
    /// The instant to evaluate at (RFC 3339); defaults to the current time.
    #[arg(long, value_name = "TS", value_parser = render::parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// Threads to read usage files on; defaults to every core. The result is the same
    /// on any number: `--threads 1` reads on one thread alone.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

impl UsageArgs {
    /// The `--directory` file of a command that marks it required (clap refuses a run without it).
    pub fn required_directory(&self) -> anyhow::Result<&Path> {
        self.directory.as_deref().context("`--directory FILE` is required")
    }

    /// `--threads`, or the cores this process may run on.
    pub fn threads(&self) -> usize {
        match self.threads {
            Some(n) => usize::from(n),
            None => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        }
    }

    /// `--now`, or the current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }
}
