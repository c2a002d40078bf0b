//! `budgit-fake`: runs one fake vendor admin API on loopback for tests and benchmarks.
//!
//! Usage: `budgit-fake claude|openai --listen 127.0.0.1:0`; the address it bound is
//! the last word of its first stderr line.

use std::process::ExitCode;

const USAGE: &str =
    "usage: budgit-fake <claude|openai> [--listen ADDR]\n\nexample: budgit-fake claude --listen 127.0.0.1:0";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut listen = "127.0.0.1:0".to_string();
    let mut vendor = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--listen" if i + 1 < args.len() => {
                listen = args[i + 1].clone();
                i += 1;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            v if vendor.is_none() && !v.starts_with('-') => vendor = Some(v.to_string()),
            other => {
                eprintln!("error: unexpected argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
        i += 1;
    }
    let app = match vendor.as_deref() {
        Some("claude") => budgit_fakes::claude::router(),
        Some("openai") => budgit_fakes::openai::router(budgit_fakes::openai::Fake::default()),
        Some(other) => {
            eprintln!("error: unknown vendor `{other}`\n{USAGE}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("error: name a vendor\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = vendor.unwrap_or_default();
    match runtime.block_on(budgit_fakes::serve(&name, &listen, app)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot listen on `{listen}`: {e}");
            ExitCode::FAILURE
        }
    }
}
