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
  source <(budgit completions bash)                 bash, this session
  budgit completions bash > /etc/bash_completion.d/budgit
  budgit completions zsh > \"${fpath[1]}/_budgit\"
  budgit completions fish > ~/.config/fish/completions/budgit.fish
  budgit completions powershell >> $PROFILE")]
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
