//! `budgit request`: ask for more credits as a reviewable change (a branch with one commit).

use std::path::Path;

use budgit_engine::directory::Lookup;
use budgit_engine::input::read_directory;
use budgit_engine::load::git::GitRepo;
use budgit_engine::plan::compute::{self, Base, Head, Outcome};
use budgit_engine::request::{self, Amount, Need, RequestSpec};
use budgit_engine::validate::{ValidateOptions, validate_sources};
use budgit_engine::{Credits, Severity};
use chrono::NaiveDate;

use super::Status;
use super::flags::{PolicyArgs, UsageArgs, report_input_findings};
use super::plan::{FilePeople, PlanFormat};
use crate::render::{self, DiagContext};

/// Request credits for a user: writes an Override on a new branch and commits it, ready for review.
///
/// The would-be policies (the base plus the new file) are validated exactly as CI
/// does (schema, `max_days`, overlaps, guardrails); an invalid request is never
/// committed. The working tree and the index are not touched: push the branch and
/// open a pull request. With `--directory`, prints the plan of the branch against its base.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit request --user luis.ramirez@acme.com --add 5000 --days 14 \\
      --reason 'payments migration (PAY-1234)'
  budgit request --user nora.kim@acme.com --limit 8000 --days 30 --reason 'Q4 close' \\
      --directory examples/directory.csv
  budgit request --user luis.ramirez@acme.com --add 1500 --product codex --days 7 \\
      --reason 'Codex refactor of the billing service (PAY-1240)'

Then push the branch it names (`git push origin budgit/request/...`) and open a pull request.")]
#[command(
    mut_arg("directory", |a| a.help("The directory of users: when given, the plan of the branch is printed")),
    mut_arg("usage", |a| a.help("Usage rows for that plan; repeatable")),
    mut_arg("now", |a| a.help("The instant of the request (RFC 3339); defaults to the current time")),
    // The branch starts from the revision the policies are read at: what other commands call `--ref`.
    mut_arg("git_ref", |a| a.long("base").default_value("HEAD").help("The revision the branch starts from"))
)]
// Exactly one of `--add` and `--limit`: a usage error names both.
#[command(group(clap::ArgGroup::new("amount").required(true).multiple(false)))]
pub struct Args {
    /// The user's email; the override names it in canonical form (trimmed, Unicode NFC, lowercase).
    #[arg(long, value_name = "EMAIL")]
    user: String,
    /// Credits added to the user's current limit.
    #[arg(long, value_name = "N", value_parser = parse_credits, group = "amount")]
    add: Option<Credits>,
    /// A total limit replacing the user's current one (product and model caps included).
    #[arg(long, value_name = "N", value_parser = parse_credits, group = "amount")]
    limit: Option<Credits>,
    /// The product the credits are for: with `--add`, its cap is raised by the same amount
    /// (a person blocked on that cap stays blocked when only the total rises).
    #[arg(long, value_name = "NAME", conflicts_with = "model")]
    product: Option<String>,
    /// The model the credits are for: with `--add`, its cap is raised by the same amount.
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// For how many days.
    #[arg(long, value_name = "D")]
    days: u32,
    /// What the credits are for (a ticket helps reviewers).
    #[arg(long, value_name = "TEXT")]
    reason: String,
    /// The first day (YYYY-MM-DD, in the workspace time zone); today when absent.
    #[arg(long, value_name = "DATE")]
    starts: Option<NaiveDate>,
    /// Who asks, when not the user.
    #[arg(long, value_name = "EMAIL")]
    requested_by: Option<String>,
    /// The branch to create; `budgit/request/<user>-<date>` when absent.
    #[arg(long, value_name = "NAME")]
    branch: Option<String>,
    // --policies, --base (default HEAD), --now
    #[command(flatten)]
    policy: PolicyArgs,
    // --directory, --usage, --threads
    #[command(flatten)]
    inputs: UsageArgs,
}

fn parse_credits(text: &str) -> Result<Credits, String> {
    let credits: Credits = text.parse().map_err(|e| format!("`{text}` is not a number of credits ({e})"))?;
    if credits <= Credits::ZERO {
        return Err(format!("`{text}` must be more than 0 credits"));
    }
    Ok(credits)
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    budgit_engine::stack::with_large_stack(move || run_here(args))
        .map_err(|e| anyhow::anyhow!("request could not run: {e}"))?
}

fn run_here(args: Args) -> anyhow::Result<Status> {
    let now = args.policy.now();
    let options = ValidateOptions { now };
    // `--base` defaults to HEAD: a branch always starts from a revision.
    let base_rev = args.policy.git_ref.as_deref().unwrap_or("HEAD");
    let policies = &args.policy.policies;
    let git = GitRepo::discover(policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
    let dir = git.repo_path(policies)?;
    let read = git.read_policies(base_rev, &dir)?;
    let base = validate_sources(read.sources.clone(), read.diagnostics.clone(), &options);
    let amount = match (args.add, args.limit) {
        (Some(add), _) => Amount::Add(add),
        (None, Some(limit)) => Amount::Limit(limit),
        (None, None) => anyhow::bail!("give `--add N` or `--limit N`"),
    };
    let spec = RequestSpec {
        user: args.user.clone(),
        amount,
        days: args.days,
        reason: args.reason.clone(),
        starts: args.starts,
        requested_by: args.requested_by.clone(),
        need: match (&args.product, &args.model) {
            (Some(p), _) => Need::Product(p.clone()),
            (None, Some(m)) => Need::Model(m.clone()),
            (None, None) => Need::Total,
        },
        note: None,
    };
    // requests still waiting on their branches have taken their file names too
    let pending = git.override_names_on_branches(&dir)?;
    let drafted = request::draft(&spec, &base.policies, &pending, &dir, now)?;
    // With a directory at hand, an override for someone who is not in it would never apply.
    if let (Some(directory), Some(workspace)) = (&args.inputs.directory, base.policies.workspace()) {
        let (users, findings) = read_directory(directory, &workspace.doc.attributes)?;
        let user = spec.user.trim();
        if let Lookup::Missing { suggestion } = users.lookup(user) {
            // A bad row may be the user's own: say which rows were left out. (When the
            // request goes on, the plan below reports them.)
            report_input_findings(&findings);
            let hint = suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            eprintln!(
                "error: user `{user}` is not in the directory `{}`{hint}: nothing was committed",
                directory.display()
            );
            return Ok(Status::Findings);
        }
    }
    let checked = request::check(&read.sources, &read.diagnostics, &drafted, None, &options);
    if checked.report.has_errors() {
        // Only what stops the request: warnings about other documents (an override
        // that has expired) are not the requester's to fix and would bury the reason.
        let mut errors = checked.report.clone();
        errors.diagnostics.retain(|d| d.severity == Severity::Error);
        let context =
            DiagContext { policies: &checked.policies, root: policies, color: render::stdout_color() };
        render::emit(&render::diagnostics(render::DiagFormat::Human, &context, &errors))?;
        eprintln!("error: the request does not pass validation at `{base_rev}`: nothing was committed");
        return Ok(Status::Findings);
    }
    let branch = match &args.branch {
        Some(b) => b.clone(),
        None => git.free_branch(&request::default_branch(&spec.user, drafted.starts)),
    };
    let path = if dir.is_empty() { drafted.path.clone() } else { format!("{dir}/{}", drafted.path) };
    let message = request::commit_message(&spec, &drafted);
    let commit = git.commit_new_file(base_rev, &branch, &path, &drafted.text, &message)?;
    let mut out = format!(
        "created branch `{branch}` at {} (from `{}`), adding `{path}`:\n\n{}\nnext: git push origin {branch}  (then open a pull request)\n",
        commit.short(),
        base_rev,
        drafted.text
    );
    if let Some(directory) = &args.inputs.directory {
        let how = Base::Incremental;
        let sides = compute::read_sides(&git, &dir, base_rev, Head::Rev(&branch), how, &options)?;
        let mut people = FilePeople { directory, usage: &args.inputs.usage, threads: args.inputs.threads() };
        let plan_options = compute::Options { now, all_events: false, root: &dir, how };
        match super::plan::plan_with(&sides, &mut people, &plan_options, &mut |_| {})? {
            Outcome::Plan(planned) => {
                out.push('\n');
                out.push_str(&super::plan::print(&planned.plan, PlanFormat::Table));
            }
            Outcome::Unresolvable { why, .. } => out.push_str(&format!("\n(no plan: {why})\n")),
        }
    }
    render::emit(&out)?;
    Ok(Status::Clean)
}
