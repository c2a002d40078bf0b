//! W1: status sweep (wired once resolve and evaluate land).

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_root: &std::path::Path, _args: &Args, _runs: usize) -> anyhow::Result<()> {
    anyhow::bail!("W1 is not wired yet")
}
