//! `budgit man`: manual pages in roff, generated from the command line's own definition.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory as _;

use super::{Cli, Status};
use crate::render;

/// Print the manual page, or write one page per command to a directory.
///
/// The pages are generated from the same definition as `--help`: `budgit.1` for the
/// command line and `budgit-<command>.1` for each command, with its flags and examples.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit man > budgit.1                             then `man -l budgit.1`
  budgit man --out-dir man1                         every page, e.g. for /usr/local/share/man/man1
  budgit man --out-dir target/man                   package them with a release")]
pub struct Args {
    /// Write `budgit.1` and one `budgit-<command>.1` per command into this directory
    /// (created when missing) instead of printing `budgit.1`.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let command = Cli::command();
    match args.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
            clap_mangen::generate_to(command, &dir)
                .with_context(|| format!("cannot write the manual pages into `{}`", dir.display()))?;
            eprintln!("wrote the manual pages into `{}`", dir.display());
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page).context("cannot render the manual page")?;
            render::emit(&String::from_utf8_lossy(&page))?;
        }
    }
    Ok(Status::Clean)
}
