//! `budgit health`: ask a running service whether it is up, for container health checks.
//!
//! The image holds only the binary and CA certificates (no shell, no curl), so the
//! binary itself is the health probe: a plain HTTP/1.1 `GET /healthz` over loopback.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::time::Duration;

use anyhow::Context as _;

use super::Status;

/// Check that a `budgit serve` answers `/healthz` (exit 0), for a container's health check.
///
/// Exit status: 0 the service answered 200; 1 it answered something else; 2 it could
/// not be reached in time.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit health                                   the service on 127.0.0.1:8080
  budgit health --url http://budgit:8080 --timeout 2s")]
pub struct Args {
    /// The service's base URL (`http://host:port`).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// How long to wait for the answer.
    #[arg(long, default_value = "5s", value_name = "DURATION", value_parser = super::reconcile::parse_duration)]
    timeout: Duration,
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    let host = args
        .url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|host| !host.is_empty() && !host.contains('/'))
        .with_context(|| format!("`{}` is not an `http://host:port` URL", args.url))?;
    let with_port = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .with_context(|| format!("cannot resolve `{host}`"))?;
    let mut stream = TcpStream::connect_timeout(&addr, args.timeout)
        .with_context(|| format!("cannot connect to `{}`", args.url))?;
    stream.set_read_timeout(Some(args.timeout))?;
    stream.set_write_timeout(Some(args.timeout))?;
    // One write: a server may answer and close after the first bytes of a request.
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).with_context(|| format!("cannot ask `{}`", args.url))?;
    // The status line is all that matters; read at most a little.
    let mut answer = Vec::new();
    stream.take(4096).read_to_end(&mut answer).with_context(|| format!("no answer from `{}`", args.url))?;
    let status_line = String::from_utf8_lossy(&answer).lines().next().unwrap_or("").to_owned();
    if status_line.split_whitespace().nth(1) == Some("200") {
        println!("ok: `{}` is up", args.url);
        Ok(Status::Clean)
    } else {
        eprintln!("error: `{}` answered `{}`", args.url, status_line.trim());
        Ok(Status::Findings)
    }
}
