//! `budgit serve`: the workspace API over an embedded SQLite database.

use std::path::PathBuf;
use std::time::Duration;

use budgit_service::conn::{
    DEFAULT_DRAIN_TIMEOUT, DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, HttpOptions,
};
use budgit_service::sessions::{DEFAULT_ABSOLUTE, DEFAULT_IDLE, SessionOptions};

use super::Status;
use super::reconcile::parse_duration;
use crate::logging::{self, LevelFilter, LogFormat};

/// Run the workspace service: applied limits, usage, spend checks, the Costs API.
///
/// State lives in one SQLite file; acknowledged writes survive a crash. The admin
/// token comes from `BUDGIT_ADMIN_TOKEN` (at least 32 characters), or is generated at
/// first start and printed once; rotate it without a restart with `POST
/// /v1/admin/token`. The API is described at `/openapi.json`. Every input is bounded
/// (one usage amount is at most 1,000,000 credits, a user has at most 1000 open
/// reservations, …); past a bound the answer is a 4xx with a stable code (see
/// docs/serve.md).
///
/// Logs go to stderr: one event per request (method, route, status, duration),
/// filtered by `RUST_LOG` (default `info`), as text or JSON lines (`--log-format`).
/// On SIGTERM or Ctrl-C the service stops accepting connections, lets requests in
/// flight finish (at most `--drain-timeout`), ends event streams, waits for queued
/// writes and exits 0.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit serve --db budgit.db --listen 127.0.0.1:8080
  budgit serve --store postgres://budgit@db:5432/budgit --store-pool 16   one of several replicas
  BUDGIT_ADMIN_TOKEN=... budgit serve --policies policies
  budgit serve --policies policies --repo . --approved-ref origin/main
  budgit serve --cookie-secure --session-idle 30m --session-lifetime 8h   behind a TLS proxy
  budgit serve --header-timeout 5s --idle-timeout 2m --max-connections 4096
  curl -X POST -H \"Authorization: Bearer $OLD\" http://127.0.0.1:8080/v1/admin/token
                                               rotate the admin token (the new one is printed once)
  BUDGIT_METRICS_TOKEN=... budgit serve        /metrics only with that bearer token
  RUST_LOG=info,budgit_service=debug budgit serve --log-format json --drain-timeout 30s
  budgit serve --demo                          a demo organisation with live activity
  budgit serve --demo --users 100000 --seed 7  a large one")]
pub struct Args {
    /// The SQLite database file (created when missing) [default: budgit.db; with
    /// `--demo`, in the demo's data directory].
    #[arg(long, conflicts_with = "store")]
    db: Option<PathBuf>,
    /// Where state lives: a SQLite file (as `--db`), or `postgres://user@host:port/db`
    /// for a PostgreSQL database that several replicas share (docs/serve.md, "Running
    /// more than one replica", lists the routes served on it).
    #[arg(long, value_name = "PATH|URL", conflicts_with = "demo")]
    store: Option<String>,
    /// With a PostgreSQL store: connections this replica opens at most.
    #[arg(long, value_name = "N", default_value_t = budgit_service::pg::DEFAULT_POOL_SIZE,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    store_pool: usize,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// A policy directory: its Workspace types directory attributes and sets the period.
    #[arg(long)]
    policies: Option<PathBuf>,
    /// The policy repository (git work tree or bare repository) the console reads groups
    /// from and writes proposals to, as branches; its `policies/` directory when it has one.
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// The approved revision of `--repo` (what the reconciler applies); proposals branch from it.
    #[arg(long, value_name = "REF", default_value = "HEAD", requires = "repo")]
    approved_ref: String,
    /// Mark the console's session cookie `Secure` (the service is reached over TLS, e.g.
    /// through a proxy; it is also set when the proxy sends `X-Forwarded-Proto: https`).
    #[arg(long)]
    cookie_secure: bool,
    /// A console session unused for this long ends (`30m`, `1h`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = humanize(DEFAULT_IDLE))]
    session_idle: Duration,
    /// A console session ends this long after sign-in, used or not.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = humanize(DEFAULT_ABSOLUTE))]
    session_lifetime: Duration,
    /// A request's head must arrive in full within this, or the connection is closed.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = humanize(DEFAULT_HEADER_TIMEOUT))]
    header_timeout: Duration,
    /// A connection with no traffic either way for this long is closed (event streams
    /// send a keep-alive comment well within it).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = humanize(DEFAULT_IDLE_TIMEOUT))]
    idle_timeout: Duration,
    /// The most connections open at once (lowered to fit the open-file limit); when
    /// full, a new connection replaces the quietest one outside a request.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    max_connections: usize,
    /// After SIGTERM or Ctrl-C, how long requests in flight get to finish.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = humanize(DEFAULT_DRAIN_TIMEOUT))]
    drain_timeout: Duration,
    /// How logs are written to stderr (`RUST_LOG` filters them).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The admin token (prefer the environment variable: flags show in process lists).
    #[arg(long = "admin-token", env = "BUDGIT_ADMIN_TOKEN", hide_env_values = true, hide = true)]
    admin_token: Option<String>,
    /// Require `Authorization: Bearer <token>` on `/metrics` (set it in your Prometheus
    /// scrape config); without it `/metrics` is open, like `/healthz`.
    #[arg(
        long = "metrics-token",
        env = "BUDGIT_METRICS_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    metrics_token: Option<String>,
    /// Pull usage from a vendor's Costs API on a schedule (see `usage pull --help`); the
    /// closed days are stored as usage events, each once, so the console shows them.
    #[arg(long, value_enum, value_name = "SOURCE", requires_all = ["pull_url", "pull_since"])]
    pull_source: Option<super::usage::SourceArg>,
    /// The API's base URL to pull from (`https://api.openai.com/v1`,
    /// `https://api.anthropic.com`).
    #[arg(long, value_name = "URL", requires = "pull_source")]
    pull_url: Option<String>,
    /// The environment variable holding the pull's key (default: `OPENAI_ADMIN_KEY` for
    /// `openai`, `ANTHROPIC_API_KEY` for `claude-enterprise`, `BUDGIT_ADMIN_TOKEN` for
    /// `budgit`).
    #[arg(long, value_name = "NAME", requires = "pull_source")]
    pull_key_env: Option<String>,
    /// Time between pulls.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1h", requires = "pull_source")]
    pull_every: Duration,
    /// The first day pulled (UTC); every start pulls again from it, and stored events are never counted twice.
    #[arg(long, value_name = "DATE", requires = "pull_source")]
    pull_since: Option<chrono::NaiveDate>,
    /// Run a demo: a policy repository, generated users, simulated ChatGPT and Codex
    /// activity and the reconciler every few seconds (`--policies`, default `./policies`
    /// when present, else the example organisation built in).
    #[arg(long)]
    demo: bool,
    /// With `--demo`: how many users to generate.
    #[arg(long, default_value_t = 3000, requires = "demo")]
    users: usize,
    /// With `--demo`: the seed of the generated users and usage.
    #[arg(long, default_value_t = 1, requires = "demo")]
    seed: u64,
}

/// A default duration as a flag value (`1h`, `60s`).
fn humanize(d: Duration) -> &'static str {
    let s = d.as_secs();
    let text = if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    };
    // clap keeps default values for the life of the process; this runs once per flag
    Box::leak(text.into_boxed_str())
}

/// Runs the service until interrupted.
pub fn run(args: Args) -> anyhow::Result<Status> {
    let sessions = SessionOptions {
        idle: args.session_idle,
        absolute: args.session_lifetime,
        cookie_secure: args.cookie_secure,
        ..SessionOptions::default()
    };
    logging::init(args.log_format, LevelFilter::INFO)?;
    let http = HttpOptions {
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
        drain_timeout: args.drain_timeout,
    };
    if args.demo {
        budgit_demo::run(budgit_demo::DemoOptions {
            policies: args.policies,
            users: args.users,
            listen: args.listen,
            db: args.db,
            seed: args.seed,
            admin_token: args.admin_token,
            sessions,
            http,
            json_logs: args.log_format.is_json(),
            ..budgit_demo::DemoOptions::default()
        })?;
        return Ok(Status::Clean);
    }
    let pull = match (args.pull_source, args.pull_url, args.pull_since) {
        (Some(source), Some(url), Some(since)) => {
            let source = source.source();
            let Some(policies) = args.policies.as_deref() else {
                anyhow::bail!(
                    "`--pull-source` needs `--policies DIR` (the Workspace's credit rate and time zone)"
                );
            };
            let Some((tz, rate)) = super::usage::money(policies, None, source, chrono::Utc::now())? else {
                return Ok(Status::Findings);
            };
            let key_env = args.pull_key_env.unwrap_or_else(|| source.key_env().to_string());
            Some(budgit_service::pull::PullConfig {
                source,
                url,
                key_env,
                interval: args.pull_every,
                since,
                rate,
                tz,
            })
        }
        _ => None,
    };
    let (sqlite, postgres) = match args.store {
        Some(url) if budgit_service::pg::is_url(&url) => {
            (None, Some(budgit_service::pg::PgConfig { url, pool_size: args.store_pool }))
        }
        other => (other, None),
    };
    budgit_service::run(budgit_service::Config {
        db: args.db.or_else(|| sqlite.map(PathBuf::from)).unwrap_or_else(|| PathBuf::from("budgit.db")),
        postgres,
        listen: args.listen,
        policies: args.policies,
        admin_token: args.admin_token,
        repo: args.repo,
        approved_ref: Some(args.approved_ref),
        sessions,
        http,
        metrics_token: args.metrics_token,
        pull,
        json_logs: args.log_format.is_json(),
    })?;
    Ok(Status::Clean)
}
