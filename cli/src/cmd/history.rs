//! `budgit history USER`: the user's effective limit across the commits that changed it.

use std::fmt::Write as _;
use std::path::PathBuf;

use budgit_engine::history::{HistoryOutput, Step, history};
use budgit_engine::input::read_directory;
use budgit_engine::plan::side;
use budgit_engine::validate::ValidateOptions;

use super::Status;
use super::flags::{HistoryArgs, Walk, report_input_findings};
use crate::render;

/// How to print a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HistoryFormat {
    /// For a terminal.
    Table,
    /// `{"user", "ref", "steps": [...]}`, described by `schemas/history-output.schema.json`.
    Json,
}

/// Show a user's effective limit at each commit that changed it — git blame for a budget.
///
/// Each commit that touched the policy directory is resolved at its own time; the
/// ones where the user's limit or deciding document changed are shown, with the
/// commit, author, date and message, and so are the overrides that started or
/// expired by themselves between commits.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit history alice.nguyen@acme.com --directory examples/directory.csv
  budgit history alice.nguyen@acme.com --directory examples/directory.csv --ref origin/main \\
      --format json")]
#[command(
    mut_arg("git_ref", |a| a.help("The revision whose history is walked")),
    mut_arg("now", |a| a.help("The instant of the last line (RFC 3339); defaults to the current time"))
)]
pub struct Args {
    /// The user's email, in any spelling (compared trimmed, in Unicode NFC and lowercase).
    user: String,
    #[command(flatten)]
    walk: HistoryArgs,
    /// The directory of users (CSV or JSON Lines), for the user's attributes.
    #[arg(long, value_name = "FILE")]
    directory: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
    format: HistoryFormat,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    budgit_engine::stack::with_large_stack(move || run_here(args))
        .map_err(|e| anyhow::anyhow!("history could not run: {e}"))?
}

fn run_here(args: Args) -> anyhow::Result<Status> {
    let Walk { git, dir, rev, now } = args.walk.open()?;
    let rev = rev.as_str();
    // The directory's attributes are the ones the policies at the walked revision declare.
    let tip = side::from_git(&git, rev, &dir, &ValidateOptions { now })?;
    let Some(workspace) = tip.validated.policies.workspace() else {
        anyhow::bail!("the policies at `{}` have no single `Workspace` document", rev);
    };
    let (directory, findings) = read_directory(&args.directory, &workspace.doc.attributes)?;
    report_input_findings(&findings);
    let steps = history(&git, rev, &dir, &directory, &args.user, now)?;
    // Named as the directory keys them, whatever spelling was asked for.
    let user = directory.get(&args.user).map_or(args.user.as_str(), |u| u.email.as_str());
    let text = match args.format {
        HistoryFormat::Json => {
            let output = HistoryOutput { user, git_ref: rev, steps: &steps };
            serde_json::to_string_pretty(&output)? + "\n"
        }
        HistoryFormat::Table => table(user, rev, &steps),
    };
    render::emit(&text)?;
    Ok(Status::Clean)
}

fn table(user: &str, rev: &str, steps: &[Step]) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "limit history of {user} (policies at `{rev}`, oldest first)");
    if steps.is_empty() {
        let _ = writeln!(o, "no commit touched the policy directory");
    }
    for step in steps {
        let when = step.at.format("%Y-%m-%d %H:%M");
        let (id, who, message) = match &step.commit {
            Some(c) => (c.sha.get(..12).unwrap_or(&c.sha).to_owned(), c.author.clone(), c.message.clone()),
            None => (
                String::from("(no commit)"),
                String::new(),
                step.event.clone().unwrap_or_else(|| String::from("time passed")),
            ),
        };
        let what = match (&step.limit, &step.source) {
            (Some(limit), Some(source)) => {
                let mut caps: Vec<String> = limit
                    .products
                    .iter()
                    .chain(limit.models.iter())
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect();
                let caps = if caps.is_empty() {
                    String::new()
                } else {
                    caps.sort();
                    format!(" ({})", caps.join(", "))
                };
                format!("{}{caps}  {source}", limit.credits)
            }
            _ => format!("unresolvable: {}", step.error.as_deref().unwrap_or("unknown")),
        };
        let _ = writeln!(o, "{when}  {id:<12}  {who:<12}  {what}\n{:18}{message}", "");
    }
    o
}
