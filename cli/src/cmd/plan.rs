//! `budgit plan`: what a policy change does to real people, for pull requests.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use budgit_engine::diag::Report;
use budgit_engine::directory::Directory;
use budgit_engine::input::{read_directory, read_usage_parallel};
use budgit_engine::load::Source;
use budgit_engine::load::git::GitRepo;
use budgit_engine::plan::side::{self, LoadedSide};
use budgit_engine::plan::{Plan, PlanInput, RefLabel, Side, incremental, render as plan_render};
use budgit_engine::resolve::resolve;
use budgit_engine::usage::UsageTable;
use budgit_engine::validate::{ValidateOptions, Validated, check_people, validate_sources};
use chrono::{DateTime, Utc};

use super::flags::UsageArgs;
use super::{Leave, Status};
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
    mut_arg("now", |a| a.help("The instant to plan at (RFC 3339); defaults to the current time"))
)]
pub struct Args {
    /// The revision the change starts from (branch, tag or commit).
    #[arg(long, value_name = "REF")]
    base: String,
    /// The revision with the change; the working tree's policy directory when absent.
    #[arg(long, value_name = "REF")]
    head: Option<String>,
    /// The policy directory (in the working tree, and its path inside the repository).
    #[arg(long, default_value = "policies", value_name = "DIR")]
    policies: PathBuf,
    // --directory, --usage, --now
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

/// How the base side is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Reuse the head's documents and resolve only the users a change can reach.
    Incremental,
    /// Validate and resolve everything again.
    FromScratch,
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
    let now = args.inputs.now();
    let options = ValidateOptions { now };
    let mut t = Timings::start();
    let git = GitRepo::discover(&args.policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
    let dir_in_repo = git.repo_path(&args.policies)?;
    // A bad base revision is reported before anything is read, as it always was.
    git.commit(&args.base)?;
    // A head read from git names the blob of each file: the base compares blob ids.
    let (head, head_blobs) = match &args.head {
        Some(rev) => {
            let (side, blobs) = side::from_git_with_blobs(&git, rev, &dir_in_repo, &options)?;
            (side, Some(blobs))
        }
        None => {
            let side = side::from_dir(&args.policies, &options).with_context(|| {
                format!(
                    "cannot read the working tree's `{}` (use `--head REF` for a revision)",
                    args.policies.display()
                )
            })?;
            (side, None)
        }
    };
    t.mark("read and validate head");
    // The base's unchanged files are the head's: read only the blobs that differ (from
    // scratch reads everything, as planning two unrelated commits would).
    let base = if args.from_scratch {
        side::sources_from_git(&git, &args.base, &dir_in_repo)?
    } else {
        side::base_sources_from_git(
            &git,
            &args.base,
            &dir_in_repo,
            &head.validated.policies.sources,
            head_blobs.as_deref(),
        )?
    };
    t.mark("read base");
    let how = if args.from_scratch { Base::FromScratch } else { Base::Incremental };
    let inputs = (args.inputs.required_directory()?, (&args.inputs.usage[..], args.inputs.threads()));
    let outcome = compute_timed(
        &base,
        &head,
        inputs,
        (now, args.all_events),
        &dir_in_repo,
        (how, Leave::ToTheOs),
        &mut t,
    )?;
    let plan = match outcome {
        Outcome::Plan(plan) => plan,
        Outcome::Unresolvable { report, why } => {
            let context = DiagContext {
                policies: &head.validated.policies,
                root: &args.policies,
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
    render::emit(&print(&plan, args.format))?;
    t.mark("render");
    let status = status(&plan, args.detailed_exitcode);
    Leave::ToTheOs.leave((plan, head, base));
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

/// What planning two loaded sides gave.
pub enum Outcome {
    /// The plan.
    Plan(Box<Plan>),
    /// The head has no usable workspace (or similar): its findings and why.
    Unresolvable {
        /// The head's findings.
        report: Report,
        /// The resolution error.
        why: String,
    },
}

/// Reads the directory and usage, resolves both sides at `now` and diffs them (listing
/// only the override events the change touches).
///
/// `root` is the policy directory inside the repository, prefixed to findings' files.
pub fn compute(
    base: &(RefLabel, Vec<Source>),
    head: &LoadedSide,
    directory: &Path,
    usage: (&[PathBuf], usize),
    now: DateTime<Utc>,
    root: &str,
    how: Base,
) -> anyhow::Result<Outcome> {
    let mut t = Timings { on: false, last: 0 };
    compute_timed(base, head, (directory, usage), (now, false), root, (how, Leave::Dropped), &mut t)
}

fn compute_timed(
    (base_label, base_sources): &(RefLabel, Vec<Source>),
    head: &LoadedSide,
    (directory, usage): (&Path, (&[PathBuf], usize)),
    (now, all_events): (DateTime<Utc>, bool),
    root: &str,
    (how, leave): (Base, Leave),
    t: &mut Timings,
) -> anyhow::Result<Outcome> {
    let head_policies = &head.validated.policies;
    let Some(workspace) = head_policies.workspace() else {
        return Ok(Outcome::Unresolvable {
            report: head.validated.report.clone(),
            why: String::from("the policies have no single `Workspace` document"),
        });
    };
    let (dir, dir_findings) = read_directory(directory, &workspace.doc.attributes)?;
    report_input_findings(&dir_findings);
    // People the head names who are not in the directory are warnings of the plan, as
    // `validate --directory` reports them: an override for a typo changes nobody's limit.
    let mut head_report = head.validated.report.clone();
    check_people(head_policies, &head.validated.rejected, &dir, false, &mut head_report);
    head_report.sort();
    t.mark("read directory");
    let head_resolution = match resolve(head_policies, &dir, now) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Outcome::Unresolvable { report: head.validated.report.clone(), why: e.to_string() });
        }
    };
    t.mark("resolve head");
    let (base_policies, base_resolution) = match how {
        Base::Incremental => {
            let (policies, _) = incremental::load_base(base_sources.clone(), head_policies);
            let resolved = incremental::resolve_base(&policies, head_policies, &head_resolution, &dir, now);
            (policies, resolved.map(|(r, _)| r))
        }
        Base::FromScratch => {
            // As a separate evaluation of the base would: nothing parsed for the head is reused.
            budgit_engine::select::cache::clear();
            let options = ValidateOptions { now };
            let policies = validate_sources(base_sources.clone(), Vec::new(), &options).policies;
            let resolved = resolve(&policies, &dir, now);
            (policies, resolved)
        }
    };
    let base_resolution =
        base_resolution.with_context(|| format!("cannot resolve the base `{}`", base_label.display()))?;
    t.mark("load and resolve base");
    let used = read_used(&dir, usage, &head_resolution)?;
    t.mark("read usage");
    let mut plan = budgit_engine::plan::plan(&PlanInput {
        base: Side { label: base_label, policies: &base_policies, resolution: &base_resolution },
        head: Side { label: &head.label, policies: head_policies, resolution: &head_resolution },
        directory: &dir,
        used: &used,
        head_report: &head_report,
        now,
        all_events,
    });
    t.mark("plan");
    // Findings name files from the repository root, as CI annotations and reviewers need.
    if !root.is_empty() {
        for d in &mut plan.diagnostics {
            if let Some(file) = d.file.as_mut() {
                *file = format!("{root}/{file}");
            }
        }
    }
    leave.leave((dir, head_resolution, base_policies, base_resolution, used));
    Ok(Outcome::Plan(Box::new(plan)))
}

fn read_used(
    dir: &Directory,
    (usage, threads): (&[PathBuf], usize),
    resolution: &budgit_engine::resolve::Resolution,
) -> anyhow::Result<Vec<budgit_engine::Credits>> {
    // Without usage nobody used anything: no table over the directory to build and free.
    if usage.is_empty() {
        return Ok(vec![budgit_engine::Credits::ZERO; dir.len()]);
    }
    let mut table = UsageTable::new(dir);
    for path in usage {
        let findings = read_usage_parallel(path, &mut table, resolution.timezone, threads)?;
        report_input_findings(&findings);
    }
    Ok(side::used_per_user(&table, dir.len(), &resolution.period))
}

/// Bad input rows are reported on stderr (they never silently disappear) without failing the plan.
fn report_input_findings(findings: &[budgit_engine::Diagnostic]) {
    for d in findings.iter().take(20) {
        let at = d.location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
        eprintln!("{at}{}[{}]: {}", d.severity, d.code, d.message);
    }
    if findings.len() > 20 {
        eprintln!("…and {} more input findings", findings.len() - 20);
    }
}

/// Validates the policy directory as committed at `rev` (for `validate --ref`).
pub fn validate_at(policies: &Path, rev: &str, options: &ValidateOptions) -> anyhow::Result<Validated> {
    let git = GitRepo::discover(policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
    let dir = git.repo_path(policies)?;
    Ok(side::from_git(&git, rev, &dir, options)?.validated)
}
