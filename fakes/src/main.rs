//! `budgit-fake <vendor> --listen ADDR`: runs one fake vendor API and prints its address.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: budgit-fake <openai> --listen ADDR";
    let (vendor, listen) = match args.as_slice() {
        [vendor, flag, addr] if flag == "--listen" => (vendor.as_str(), addr.as_str()),
        [vendor] => (vendor.as_str(), "127.0.0.1:0"),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on `{listen}`: {e}");
                return ExitCode::from(2);
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let served = match vendor {
            "openai" => {
                println!("budgit-fake openai listening on http://{addr}");
                budgit_fakes::openai::serve(listener, budgit_fakes::openai::Fake::default()).await
            }
            other => {
                eprintln!("unknown vendor `{other}`; {usage}");
                return ExitCode::from(2);
            }
        };
        match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("the fake stopped: {e}");
                ExitCode::from(1)
            }
        }
    })
}
