//! `budgit plan`: what a policy change does to real people, for pull requests.

use std::path::{Path, PathBuf};

use budgit_engine::Credits;
use budgit_engine::directory::Directory;
use budgit_engine::input::{read_directory, read_usage_parallel};
use budgit_engine::load::git::GitRepo;
use budgit_engine::model::Workspace;
use budgit_engine::plan::compute::{self, Base, ComputeError, Head, Outcome, People};
use budgit_engine::plan::side::{self, SideError};
use budgit_engine::plan::{Plan, render as plan_render};
use budgit_engine::resolve::Resolution;
use budgit_engine::standing::{CapNames, CapUsage, used_per_user_with_caps};
use budgit_engine::usage_table::UsageTable;
use budgit_engine::validate::{ValidateOptions, Validated};

use super::flags::{PolicyArgs, UsageArgs, report_input_findings};
use super::{Status, leave_to_the_os};
use crate::render::{self, DiagContext};

/// How to print a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// For a terminal.
    Table,
    /// A GitHub or GitLab pull-request comment.
    Markdown,
    /// The stable JSON shape, for machines.
    Json,
}

/// Show the effect of a policy change: who gets more or fewer credits, which caps and team
/// pools change, exposure, who becomes blocked.
///
/// Resolves both revisions against the same directory and this period's usage.
/// Overrides starting or expiring in the next 14 days are listed when the change
/// touches them (`--all-events` lists every one), each with the limit just before and after.
/// Exit status: 0 ok, 1 the head has validation errors, 2 usage or I/O error,
/// 3 with `--detailed-exitcode` when the head is valid and changes some user's limit
/// (credits or caps) or some team pool.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit plan --base origin/main --directory examples/directory.csv --usage examples/usage.csv
  budgit plan --base origin/main --head HEAD --directory examples/directory.csv \\
      --format markdown > comment.md
  budgit plan --base origin/main --directory examples/directory.csv --format json \\
      --detailed-exitcode
  budgit plan --base HEAD --directory examples/directory.csv --usage examples/usage.csv --all-events
  budgit plan --base origin/main --directory examples/directory.csv --usage examples/usage.csv \\
      --threads 2")]
#[command(
    mut_arg("directory", |a| a.required(true).help("The directory of users (CSV or JSON Lines)")),
    mut_arg("usage", |a| a.help("Usage rows (CSV, JSON Lines or Costs API pages); repeatable")),
    // The head is the revision the policies are read at: what every other command calls `--ref`.
    mut_arg("git_ref", |a| a.long("head").help("The revision with the change; the working tree's policy directory when absent")),
)]
pub struct Args {
    /// The revision the change starts from (branch, tag or commit).
    #[arg(long, value_name = "REF")]
    base: String,
    // --policies, --head, --now
    #[command(flatten)]
    policy: PolicyArgs,
    // --directory, --usage, --threads
    #[command(flatten)]
    inputs: UsageArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PlanFormat::Table)]
    format: PlanFormat,
    /// Exit 3 when the head is valid and changes some user's limit or some team pool.
    #[arg(long)]
    detailed_exitcode: bool,
    /// List every override starting or expiring in the next 14 days, also those whose
    /// event the change does not touch.
    #[arg(long)]
    all_events: bool,
    /// Validate and resolve the base from scratch instead of deriving it from the head
    /// (the reference the incremental plan is measured and tested against).
    #[arg(long, hide = true)]
    from_scratch: bool,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    budgit_engine::stack::with_large_stack(move || run_here(args))
        .map_err(|e| anyhow::anyhow!("plan could not run: {e}"))?
}

/// Phase timings on stderr when `BUDGIT_PLAN_TIMINGS` is set: the process's CPU time
/// (user + system, from `/proc/self/stat`) spent since the previous mark.
struct Timings {
    on: bool,
    last: u64,
}

impl Timings {
    fn start() -> Timings {
        Timings { on: std::env::var_os("BUDGIT_PLAN_TIMINGS").is_some(), last: Timings::cpu_ticks() }
    }

    fn cpu_ticks() -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // Fields after the command name (which may hold spaces) start at state: utime is the 12th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<u64> = after.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        fields.get(10).copied().unwrap_or(0) + fields.get(11).copied().unwrap_or(0)
    }

    fn mark(&mut self, phase: &str) {
        if self.on {
            let now = Timings::cpu_ticks();
            eprintln!("plan timing: {phase}: {} ms CPU", now.saturating_sub(self.last) * 10);
            self.last = now;
        }
    }
}

fn run_here(args: Args) -> anyhow::Result<Status> {
    let now = args.policy.now();
    let options = ValidateOptions { now };
    let mut t = Timings::start();
    let policies = &args.policy.policies;
    let git = GitRepo::discover(policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
    let dir_in_repo = git.repo_path(policies)?;
    let head = match &args.policy.git_ref {
        Some(rev) => Head::Rev(rev),
        None => Head::WorkTree(policies),
    };
    let how = if args.from_scratch { Base::FromScratch } else { Base::Incremental };
    let sides = match compute::read_sides(&git, &dir_in_repo, &args.base, head, how, &options) {
        Ok(sides) => sides,
        Err(SideError::Read(e)) => {
            return Err(anyhow::Error::new(e).context(format!(
                "cannot read the working tree's `{}` (use `--head REF` for a revision)",
                policies.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    t.mark("read head and base");
    let mut people = FilePeople {
        directory: args.inputs.required_directory()?,
        usage: &args.inputs.usage,
        threads: args.inputs.threads(),
    };
    let options = compute::Options { now, all_events: args.all_events, root: &dir_in_repo, how };
    let planned = match plan_with(&sides, &mut people, &options, &mut |phase| t.mark(phase))? {
        Outcome::Plan(planned) => planned,
        Outcome::Unresolvable { report, why } => {
            let context = DiagContext {
                policies: &sides.head.validated.policies,
                root: policies,
                color: render::stdout_color(),
            };
            eprint!("{}", render::diagnostics(render::DiagFormat::Human, &context, &report));
            // An invalid head (no workspace, a bad time zone) is a finding about the change, not a failure to run.
            if report.has_errors() {
                eprintln!("error: cannot plan: the head cannot be resolved: {why}");
                return Ok(Status::Findings);
            }
            anyhow::bail!("cannot plan: the head cannot be resolved: {why}");
        }
    };
    render::emit(&print(&planned.plan, args.format))?;
    t.mark("render");
    let status = status(&planned.plan, args.detailed_exitcode);
    leave_to_the_os((planned, sides));
    Ok(status)
}

/// The plan in a format.
pub fn print(plan: &Plan, format: PlanFormat) -> String {
    match format {
        PlanFormat::Table => plan_render::table(plan),
        PlanFormat::Markdown => plan_render::markdown(plan),
        PlanFormat::Json => plan_render::json(plan),
    }
}

/// The exit status of a plan.
pub fn status(plan: &Plan, detailed: bool) -> Status {
    if plan.has_errors() {
        Status::Findings
    } else if detailed && !plan.is_empty() {
        Status::Changes
    } else {
        Status::Clean
    }
}

/// The people of a plan read from files: a directory and usage rows. Bad input rows
/// are reported on stderr (they never silently disappear) without failing the plan.
pub struct FilePeople<'a> {
    /// The directory of users.
    pub directory: &'a Path,
    /// Usage files.
    pub usage: &'a [PathBuf],
    /// Threads to read the usage on.
    pub threads: usize,
}

impl People for FilePeople<'_> {
    type Error = anyhow::Error;

    fn directory(&mut self, workspace: &Workspace) -> anyhow::Result<Directory> {
        let (dir, findings) = read_directory(self.directory, &workspace.attributes)?;
        report_input_findings(&findings);
        Ok(dir)
    }

    fn used(
        &mut self,
        dir: &Directory,
        resolution: &Resolution,
        caps: CapNames,
    ) -> anyhow::Result<(Vec<Credits>, CapUsage)> {
        // Without usage nobody used anything: no table over the directory to build and free.
        if self.usage.is_empty() {
            return Ok((vec![Credits::ZERO; dir.len()], CapUsage::default()));
        }
        let mut table = UsageTable::new(dir);
        for path in self.usage {
            let findings = read_usage_parallel(path, &mut table, resolution.timezone, self.threads)?;
            report_input_findings(&findings);
        }
        Ok(used_per_user_with_caps(&table, dir.len(), resolution, caps))
    }
}

/// [`compute::compute`] with the people read from files, its errors as the CLI reports them.
pub fn plan_with(
    sides: &compute::Sides,
    people: &mut FilePeople<'_>,
    options: &compute::Options<'_>,
    phase: &mut dyn FnMut(&'static str),
) -> anyhow::Result<Outcome> {
    compute::compute(sides, people, options, phase).map_err(|e| match e {
        ComputeError::People(e) => e,
        ComputeError::Base(e) => e.into(),
    })
}

/// Validates the policy directory as committed at `rev` (for `validate --ref`).
pub fn validate_at(policies: &Path, rev: &str, options: &ValidateOptions) -> anyhow::Result<Validated> {
    let git = GitRepo::discover(policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
    let dir = git.repo_path(policies)?;
    Ok(side::from_git(&git, rev, &dir, options)?.validated)
}
