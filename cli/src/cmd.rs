//! Commands: one module each, holding its `Args` (clap) and `run`.

pub mod completions;
pub mod evaluate;
pub mod explain;
mod flags;
pub mod r#gen;
pub mod health;
pub mod history;
pub mod import;
pub mod man;
pub mod owners;
pub mod plan;
pub mod reconcile;
pub mod request;
pub mod requests;
pub mod resolve;
pub mod review;
pub mod schema;
pub mod serve;
pub mod usage;
pub mod users;
pub mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// What a command's run means for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 0: clean (warnings allowed).
    Clean,
    /// 1: findings (invalid policy, plan with errors, failed changes).
    Findings,
    /// 2: usage or I/O error.
    Failure,
    /// 3: `plan --detailed-exitcode` with effective changes.
    Changes,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> ExitCode {
        ExitCode::from(match status {
            Status::Clean => 0,
            Status::Findings => 1,
            Status::Failure => 2,
            Status::Changes => 3,
        })
    }
}

/// Leaves a command's large values to the process exit once its answer is written:
/// freeing a 100k-user directory, its resolutions and every parsed document one
/// allocation at a time costs about a sixth of a plan's CPU (W4) for memory the OS
/// takes back at exit anyway.
pub fn leave_to_the_os<T>(value: T) {
    std::mem::forget(value);
}

/// Govern enterprise AI spend — ChatGPT and Codex credits — as code.
///
/// Budget limits live as YAML in git; budgit validates them, shows what a change
/// does to real people, evaluates them against usage and pushes them to the workspace.
#[derive(Debug, Parser)]
#[command(name = "budgit", bin_name = "budgit", version = env!("BUDGIT_VERSION"), propagate_version = true)]
#[command(after_help = "\
Examples:
  budgit validate --policies policies     check the policy repository (the CI gate)
  budgit <COMMAND> --help                 a command's flags, with examples

Exit status: 0 clean, 1 findings, 2 usage or I/O error (3: `plan --detailed-exitcode` with changes).")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::Args),
    Schema(schema::Args),
    Gen(r#gen::Args),
    Evaluate(evaluate::Args),
    Plan(plan::Args),
    History(history::Args),
    Review(review::Args),
    Request(request::Args),
    Requests(requests::Args),
    Owners(owners::Args),
    Resolve(resolve::Args),
    Explain(explain::Args),
    Serve(serve::Args),
    Reconcile(reconcile::Args),
    Users(users::Args),
    Usage(usage::Args),
    Import(import::Args),
    Health(health::Args),
    Completions(completions::Args),
    Man(man::Args),
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<Status> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Gen(args) => r#gen::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::History(args) => history::run(args),
        Command::Review(args) => review::run(args),
        Command::Request(args) => request::run(args),
        Command::Requests(args) => requests::run(args),
        Command::Owners(args) => owners::run(args),
        Command::Resolve(args) => resolve::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Users(args) => users::run(args),
        Command::Usage(args) => usage::run(args),
        Command::Import(args) => import::run(args),
        Command::Health(args) => health::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}
