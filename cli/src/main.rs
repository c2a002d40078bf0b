//! The `budgit` binary: parse flags, dispatch to a command, map the outcome to an exit status.

mod cmd;
mod render;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(status) => status.into(),
        Err(error) => {
            eprintln!("error: {error:#}");
            cmd::Status::Failure.into()
        }
    }
}
