//! The `budgit` binary: parse flags, dispatch to a command, map the outcome to an exit status.

mod cmd;
mod logging;
mod render;
#[cfg(test)]
#[path = "../build/version.rs"]
mod version;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    match cmd::run(cli) {
        Ok(status) => status.into(),
        Err(error) => {
            eprintln!("error: {}", error_text(&error));
            cmd::Status::Failure.into()
        }
    }
}

/// The error and its causes on one line, each cause once: many errors already
/// include their cause in their own message (`cannot read `x`: No such file or
/// directory (os error 2)`), and repeating it reads like two failures.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let engine = budgit_engine::input::InputError::Io { path: "directory.csv".into(), source: io };
        let error = anyhow::Error::new(engine);
        assert_eq!(error_text(&error), "cannot read `directory.csv`: No such file or directory (os error 2)");
        // A cause the message does not already say is kept.
        let error = anyhow::anyhow!("disk on fire").context("cannot write `x`");
        assert_eq!(error_text(&error), "cannot write `x`: disk on fire");
    }
}
