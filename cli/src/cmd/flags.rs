//! Flag groups that several commands share, flattened into their `Args` with `#[command(flatten)]`,
//! and the one way a command reports what it found wrong in its input files.
//!
//! The names, value names, parsers, defaults and help texts of the flags live here once.
//! A command whose flag means something else (the revision `history` walks, the approved
//! ref `reconcile` applies, the head `plan` compares) changes that one flag on its `Args`
//! with `mut_arg`, so its `--help` says what the flag does there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use budgit_engine::load::git::GitRepo;
use budgit_engine::validate::{ValidateOptions, Validated};
use budgit_engine::{Code, Diagnostic};
use chrono::{DateTime, Utc};

use crate::render;

/// Where the policies are read from and the instant they are read at: every command
/// that reads policies (`validate`, `resolve`, `explain`, `evaluate`, `plan`, `history`,
/// `request`, `owners`, `reconcile`, `usage pull`).
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// The policy directory; with a revision, its path inside the repository.
    #[arg(long, default_value = "policies", value_name = "DIR")]
    pub policies: PathBuf,
    /// Read the policies as committed at this revision (branch, tag or commit) instead of
    /// the working tree; findings name the commit.
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// The instant to work at (RFC 3339): which overrides are active, which period counts;
    /// defaults to the current time.
    #[arg(long, value_name = "TS", value_parser = render::parse_now)]
    pub now: Option<DateTime<Utc>>,
}

impl PolicyArgs {
    /// `--now`, or the current time.
    pub fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }

    /// The policies validated at `now`: the working tree's directory, or the one committed
    /// at `--ref`.
    pub fn validate(&self, now: DateTime<Utc>) -> anyhow::Result<Validated> {
        super::validate::policies_at(&self.policies, self.git_ref.as_deref(), &ValidateOptions { now })
    }
}

/// The policies of a revision and the history behind it (`history`, `review`): the
/// flags of [`PolicyArgs`], with `--ref` at `HEAD` unless given, since there is always
/// a revision to walk. Each command says in its own words what `--ref` and `--now` are.
#[derive(Debug, clap::Args)]
#[command(mut_arg("git_ref", |a| a.default_value("HEAD")))]
pub struct HistoryArgs {
    // --policies, --ref (default HEAD), --now
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// A repository opened for a walk through its history.
pub struct Walk {
    /// The repository holding the policies (or the working directory's).
    pub git: GitRepo,
    /// The policy directory's path inside the repository.
    pub dir: String,
    /// The revision walked back from.
    pub rev: String,
    /// `--now`, or the current time.
    pub now: DateTime<Utc>,
}

impl HistoryArgs {
    /// Opens the repository that holds `--policies` (or the working directory's) at `--ref`.
    pub fn open(&self) -> anyhow::Result<Walk> {
        let policies = &self.policy.policies;
        let git = GitRepo::discover(policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
        let dir = git.repo_path(policies)?;
        let rev = self.policy.git_ref.clone().unwrap_or_else(|| "HEAD".to_owned());
        Ok(Walk { git, dir, rev, now: self.policy.now() })
    }
}

/// The directory of users, their usage and the threads to read it on (`evaluate`, `plan`,
/// `request`).
#[derive(Debug, clap::Args)]
pub struct UsageArgs {
    /// The directory of users: CSV (`email,<attributes>`) or JSON Lines (`.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub directory: Option<PathBuf>,
    /// A usage file (repeatable): CSV `date,user,product,model,credits`, `.jsonl`, or `.json` Costs API pages.
    #[arg(long, value_name = "FILE")]
    pub usage: Vec<PathBuf>,
    /// Threads to parse usage files on (a CSV file is also read ahead by one more);
    /// defaults to every core. `evaluate` also resolves limits beside the read and
    /// writes JSON on them. The result is the same on any number: `--threads 1` parses
    /// and evaluates on one thread alone.
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
}

/// Prints what was wrong in the input files (bad directory and usage rows, unknown users,
/// rows outside the period) on stderr, one line each at `file:line:col`: a bad row is left
/// out, never silently. At most [`SHOWN_PER_CODE`] lines per code, then a count, so a
/// million bad rows stay readable.
pub fn report_input_findings(findings: &[Diagnostic]) {
    let mut shown: HashMap<Code, usize> = HashMap::new();
    for d in findings {
        let n = shown.entry(d.code).or_default();
        *n += 1;
        if *n > SHOWN_PER_CODE {
            continue;
        }
        let at = d.location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
        let label = d.label.as_ref().map(|l| format!(" ({l})")).unwrap_or_default();
        eprintln!("{at}{}[{}]: {}{label}", d.severity, d.code, d.message);
    }
    let mut codes: Vec<(&Code, &usize)> = shown.iter().filter(|(_, n)| **n > SHOWN_PER_CODE).collect();
    codes.sort();
    for (code, n) in codes {
        eprintln!("… and {} more [{code}]", n - SHOWN_PER_CODE);
    }
    if let Some(help) = findings.iter().find_map(|d| d.help.as_ref().filter(|_| d.code == Code::UsageBadRow))
    {
        eprintln!("help: {help}");
    }
}

/// Lines of one code [`report_input_findings`] prints before counting the rest.
const SHOWN_PER_CODE: usize = 20;
