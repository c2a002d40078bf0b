//! `budgit completions`: a shell completion script, generated from the command line's own definition.

use clap::CommandFactory as _;
use clap_complete::Shell;

use super::{Cli, Status};
use crate::render;

/// Print a completion script for a shell.
///
/// The script is generated from the same definition as `--help`, so it completes every
/// command and flag of this build. Load it once per session or install it where the
/// shell looks for completions.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit completions bash > budgit.bash            source it, or put it in /etc/bash_completion.d/
  budgit completions zsh > _budgit                 into a directory on $fpath
  budgit completions fish > budgit.fish            into ~/.config/fish/completions/
  budgit completions powershell > budgit.ps1       dot-source it from $PROFILE")]
pub struct Args {
    /// The shell to complete in.
    #[arg(value_enum, value_name = "SHELL")]
    shell: CompletionShell,
}

/// The shells supported (clap_complete's, minus Elvish: nobody asked for it, and a
/// value listed here is a promise kept by a test).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CompletionShell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

impl From<CompletionShell> for Shell {
    fn from(shell: CompletionShell) -> Shell {
        match shell {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
            CompletionShell::Powershell => Shell::PowerShell,
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(Shell::from(args.shell), &mut command, "budgit", &mut script);
    render::emit(&String::from_utf8_lossy(&script))?;
    Ok(Status::Clean)
}
