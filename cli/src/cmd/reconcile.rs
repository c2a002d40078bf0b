//! `budgit reconcile`: push the policies at an approved ref to the workspace, once or on a schedule.
//!
//! Flags → a [`GitDesired`] and an [`HttpWorkspace`] → [`reconcile`] → the run
//! report, human or JSON. `--every` runs it as a daemon on the engine's loop
//! ([`controller::run`]): one run at a time, jittered intervals, `/healthz` and
//! `/metrics` on `--metrics-listen`, logs through `tracing` (`--log-format`,
//! `RUST_LOG`), and a graceful stop on SIGTERM or SIGINT between batches.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use budgit_engine::model::Limit;
use budgit_engine::reconcile::metrics::Metrics;
use budgit_engine::reconcile::{
    Context, DesiredState, Direction, Drift, Ended, GitDesired, Guard, ItemReport, Options, ReconcileError,
    Run, Schedule, SystemClock, controller, outcome_name,
};
use budgit_engine::workspace::claude::{
    ClaudeDesired, ClaudeWorkspace, KEY_ENV as CLAUDE_KEY_ENV, VendorCall,
};
use budgit_engine::workspace::http::{HttpWorkspace, TOKEN_ENV};
use budgit_engine::workspace::openai::{KEY_ENV as OPENAI_KEY_ENV, OpenAiDesired, OpenAiWorkspace};
use budgit_engine::workspace::{self, VendorClient};
use chrono::Utc;
use serde_json::json;

use super::Status;
use super::flags::PolicyArgs;
use crate::logging::{self, LevelFilter, LogFormat};
use crate::render;

/// Apply the policies at an approved ref to the workspace, safely.
///
/// Desired state: the policies committed at `--ref` (never the working tree),
/// validated, resolved at `--now` for every user the workspace knows (or
/// `--directory`). Live state: the workspace's applied limits. The difference is
/// written in idempotent batches under the workspace lease; a re-run finishes an
/// interrupted one without writing anything twice. The token is read from
/// `BUDGIT_TOKEN` and never printed.
///
/// With `--every`, each run reads the ref from the local repository: keep it
/// fetched (a git-sync sidecar, or a timer running `git fetch`).
///
/// Exit status: 0 applied (or nothing to do, or another reconciler holds the
/// lease); 1 refused (invalid ref, unsigned commit, blast radius, empty state) or
/// some changes failed; 2 the workspace or git could not be used. A daemon
/// stopped by a signal exits 0; one that made its `--max-runs` exits with the
/// status of its last run.
///
/// Logs (the daemon's runs, retries, warnings) go to stderr through `RUST_LOG`
/// (default `info` with `--every`, `warn` for one run) and `--log-format`; the run
/// report goes to stdout (with `--every --format json`, one JSON object per line).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  BUDGIT_TOKEN=... budgit reconcile --workspace http://127.0.0.1:8080 --ref origin/main --dry-run
  budgit reconcile --workspace $URL --ref main --directory examples/directory.csv   people too
  budgit reconcile --workspace $URL --ref main --max-changes 200 --format json
  budgit reconcile --workspace $URL --ref main --every 5m --metrics-listen 0.0.0.0:9464
  RUST_LOG=info budgit reconcile --workspace $URL --ref main --every 5m --max-runs 12 \\
    --metrics-listen 0.0.0.0:9464 --log-format json   JSON log lines; exits after 12 runs
(The vendor targets' examples are under --target: they need the vendor's API.)")]
#[command(
    // Never the working tree: only an approved revision is applied.
    mut_arg("git_ref", |a| a.required(true).help("The approved ref (a protected branch, tag or commit)")),
    mut_arg("now", |a| a.help("The instant to resolve at (RFC 3339); defaults to the time of each run"))
)]
pub struct Args {
    /// The workspace API's base URL.
    #[arg(long, value_name = "URL", env = "BUDGIT_WORKSPACE")]
    workspace: String,
    // --policies, --ref (required), --now
    #[command(flatten)]
    policy: PolicyArgs,
    /// A directory file instead of the workspace's users; after a complete run the
    /// workspace's people are made the file's (added, changed, removed).
    #[arg(long, value_name = "FILE")]
    directory: Option<PathBuf>,
    /// Print what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Most limit changes in one run without `--allow-mass-change`.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_changes: usize,
    /// Largest share of limits one run may lower without `--allow-mass-change`.
    #[arg(long, default_value_t = 0.2, value_name = "SHARE")]
    max_lower_share: f64,
    /// Lift the blast-radius guard for this run.
    #[arg(long)]
    allow_mass_change: bool,
    /// Report limits changed by hand in the workspace, but leave them.
    #[arg(long)]
    no_revert: bool,
    /// Refuse a commit without a signature gpg verifies.
    #[arg(long)]
    require_signed: bool,
    /// Run as a daemon, every DURATION (`30s`, `5m`, `1h`), with jitter.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    every: Option<Duration>,
    /// With `--every`: stop after N runs (default: until SIGTERM or SIGINT).
    #[arg(long, value_name = "N", requires = "every", value_parser = clap::value_parser!(u64).range(1..))]
    max_runs: Option<u64>,
    /// Serve `/healthz` and `/metrics` here in daemon mode.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Items per write.
    #[arg(long, default_value_t = 500, value_name = "N")]
    batch_size: usize,
    /// Timeout of one workspace call.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    timeout: Duration,
    /// This reconciler's name on the workspace lease (default: host and process id).
    #[arg(long, value_name = "NAME")]
    holder: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// How logs are written to stderr (`RUST_LOG` filters them).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Where limits are applied: `budgit` (a `budgit serve` workspace),
    /// `claude-enterprise` (the Anthropic Admin API at `--workspace`, key from
    /// `ANTHROPIC_API_KEY`; audit and lease kept as refs in the policy repository;
    /// see docs/vendors.md). For example: `ANTHROPIC_API_KEY=... budgit reconcile
    /// --target claude-enterprise --workspace https://api.anthropic.com --ref main
    /// --dry-run` lists the exact vendor calls. `openai`: the organisation's and its
    /// projects' monthly spend limits and spend alerts through the OpenAI Admin API
    /// at `--workspace` (key from `OPENAI_ADMIN_KEY`; needs
    /// `vendors.openai.reconcile` on the Workspace). For example:
    /// `OPENAI_ADMIN_KEY=... budgit reconcile --target openai --workspace
    /// https://api.openai.com/v1 --ref main --dry-run`.
    #[arg(long, value_enum, default_value_t = Target::Budgit)]
    target: Target,
    /// Most vendor calls per second (`claude-enterprise`, `openai`); unlimited when absent.
    #[arg(long, value_name = "N")]
    max_rps: Option<f64>,
    /// Limit writes made at once on `claude-enterprise`, each on its own connection
    /// (1 to 64). `--max-rps` stays the total over all of them, and a rate limit
    /// (429 with `Retry-After`) or a failed write pauses them all. N connections
    /// reach a rate of N calls per call time: 16 keep 500 a second up to 32 ms a
    /// call. For example:
    /// `budgit reconcile --target claude-enterprise --workspace https://api.anthropic.com
    /// --ref main --max-rps 50 --concurrency 4`.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
}

/// Where `reconcile` applies limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The workspace API of `budgit serve`.
    Budgit,
    /// Claude Enterprise, through the Anthropic Admin API.
    ClaudeEnterprise,
    /// An OpenAI organisation's spend limits and alerts, through the OpenAI Admin API.
    #[value(name = "openai")]
    OpenAi,
}

/// Output formats of `reconcile`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Human,
    /// One JSON document per run (with `--every`, one per line).
    Json,
}

/// Parses `500ms`, `30s`, `5m`, `2h`, `1d` (or bare seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{text}` is not a duration; e.g. `30s`, `5m`, `1h`"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        "d" => Duration::from_secs(n.saturating_mul(86_400)),
        _ => return Err(format!("`{text}` has an unknown unit; use `ms`, `s`, `m`, `h` or `d`")),
    };
    if d.is_zero() {
        return Err("a duration must be more than zero".to_string());
    }
    Ok(d)
}

pub fn run(args: Args) -> anyhow::Result<Status> {
    logging::init(args.log_format, if args.every.is_some() { LevelFilter::INFO } else { LevelFilter::WARN })?;
    let (options, shutdown) = setup(&args)?;
    match args.target {
        Target::ClaudeEnterprise => return claude(&args, options, &shutdown),
        Target::OpenAi => return openai(&args, options, &shutdown),
        Target::Budgit => {}
    }
    let workspace = HttpWorkspace::from_env(&args.workspace, args.timeout)
        .with_context(|| format!("set `{TOKEN_ENV}` to the workspace's admin token"))?;
    let desired = git_desired(&args);
    drive(&args, &workspace, &desired, options, &shutdown, &mut |outcome| {
        print(&args, outcome)?;
        // A failed sync is reported and tried again next run, like a failed batch.
        Ok(sync_people(&args, &workspace, outcome))
    })
}

/// The run options and the shutdown flag (set by SIGTERM or Ctrl-C).
fn setup(args: &Args) -> anyhow::Result<(Options, Arc<AtomicBool>)> {
    let holder = args.holder.clone().unwrap_or_else(default_holder);
    let options = Options {
        holder,
        batch_size: args.batch_size.max(1),
        dry_run: args.dry_run,
        no_revert: args.no_revert,
        guard: Guard {
            max_changes: args.max_changes,
            max_lower_share: args.max_lower_share,
            allow_mass_change: args.allow_mass_change,
        },
        every: args.every,
        lease_ttl: Duration::from_secs(60).max(args.timeout * 3),
        ..Options::default()
    };
    let shutdown = Arc::new(AtomicBool::new(false));
    // The first SIGTERM or Ctrl-C stops between batches; a second Ctrl-C exits at once.
    signal_hook::flag::register_conditional_shutdown(signal_hook::consts::SIGINT, 130, Arc::clone(&shutdown))
        .context("cannot handle signals")?;
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown)).context("cannot handle signals")?;
    }
    Ok((options, shutdown))
}

impl Args {
    /// `--ref`, which clap requires.
    fn rev(&self) -> &str {
        self.policy.git_ref.as_deref().unwrap_or_default()
    }
}

fn git_desired(args: &Args) -> GitDesired {
    GitDesired {
        policies: args.policy.policies.clone(),
        rev: args.rev().to_owned(),
        // without `--now`, each run resolves at its own time
        now: args.policy.now,
        directory: args.directory.clone(),
        require_signed: args.require_signed,
        gpg_home: None,
    }
}

/// Runs the engine's reconcile loop once, or on `--every`'s schedule, against any
/// target; `after` reports each run and answers the status of what it did besides.
fn drive(
    args: &Args,
    workspace: &dyn workspace::Target,
    desired: &dyn DesiredState,
    options: Options,
    shutdown: &Arc<AtomicBool>,
    after: &mut dyn FnMut(&Result<Run, ReconcileError>) -> anyhow::Result<Status>,
) -> anyhow::Result<Status> {
    let clock = SystemClock::new();
    let ctx = Context { workspace, desired, clock: &clock, options, shutdown };
    let metrics = Arc::new(Mutex::new(Metrics::default()));
    let schedule = match args.every {
        None => Schedule { max_runs: Some(1), ..Schedule::default() },
        Some(every) => {
            if let Some(addr) = &args.metrics_listen {
                let listener =
                    TcpListener::bind(addr).with_context(|| format!("cannot listen on `{addr}`"))?;
                logging::say(
                    args.log_format,
                    &format!("metrics on http://{}/metrics", listener.local_addr()?),
                );
                let m = Arc::clone(&metrics);
                std::thread::Builder::new()
                    .name("budgit-metrics".into())
                    .spawn(move || serve_metrics(&listener, &m))?;
            }
            // Jitter up to a tenth of the interval, so a fleet does not hit the workspace at once.
            Schedule { max_runs: args.max_runs, max_jitter: every / 10, ..Schedule::default() }
        }
    };
    let mut last = Status::Clean;
    let mut output = Ok(());
    let summary = controller::run(&ctx, &schedule, |pass| {
        if let Ok(mut m) = metrics.lock() {
            m.observe(pass.outcome, pass.took, Utc::now().timestamp());
        }
        match after(pass.outcome) {
            Ok(besides) => last = worst(status(pass.outcome), besides),
            Err(e) => {
                // nowhere to write the report (a closed stdout): stop rather than run blind
                output = Err(e);
                shutdown.store(true, Ordering::SeqCst);
            }
        }
    });
    output?;
    if args.every.is_none() {
        return Ok(last);
    }
    if !args.log_format.is_json() {
        eprintln!("reconcile: stopped");
    }
    Ok(if summary.ended == Ended::MaxRuns { last } else { Status::Clean })
}

/// `--target claude-enterprise`: the same reconciler over the Anthropic Admin API.
fn claude(args: &Args, options: Options, shutdown: &Arc<AtomicBool>) -> anyhow::Result<Status> {
    let client = vendor_client(CLAUDE_KEY_ENV, args)?;
    let workspace = ClaudeWorkspace::new(client).with_concurrency(usize::from(args.concurrency));
    let desired = ClaudeDesired { git: git_desired(args), workspace: &workspace };
    let mut show = |outcome: &Result<Run, ReconcileError>| -> anyhow::Result<Status> {
        let calls = dry_run_calls(outcome, |items| workspace.planned_calls(items));
        let membership = workspace.membership();
        let text = match args.format {
            Format::Json => {
                let mut v: serde_json::Value =
                    serde_json::from_str(&json_of(args, outcome)).unwrap_or_default();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("target".into(), json!("claude-enterprise"));
                    obj.insert("vendor_calls".into(), json!(calls));
                    obj.insert("membership".into(), json!(membership));
                    obj.insert("calls_made".into(), json!(workspace.calls()));
                }
                let mut t = serde_json::to_string_pretty(&v).unwrap_or_default();
                t.push('\n');
                t
            }
            Format::Human => {
                let mut t = human(args, outcome);
                vendor_calls(&mut t, &calls);
                for (what, people) in [
                    ("in the directory, not members of the organisation", &membership.not_in_org),
                    ("members of the organisation, not in the directory", &membership.not_in_directory),
                    (
                        "with a limit set by hand that policy does not cover (left alone)",
                        &membership.unmanaged_left,
                    ),
                ] {
                    if !people.is_empty() {
                        let shown: Vec<&str> = people.iter().take(20).map(String::as_str).collect();
                        let more = people.len().saturating_sub(shown.len());
                        let more = if more > 0 { format!(" …and {more} more") } else { String::new() };
                        let _ = writeln!(t, "  {} {what}: {}{more}", people.len(), shown.join(", "));
                    }
                }
                t
            }
        };
        render::emit(&text)?;
        Ok(Status::Clean)
    };
    drive(args, &workspace, &desired, options, shutdown, &mut show)
}

/// `--target openai`: the same reconciler over the OpenAI Admin API, one item per
/// scope (the organisation, each project).
fn openai(args: &Args, options: Options, shutdown: &Arc<AtomicBool>) -> anyhow::Result<Status> {
    let workspace = OpenAiWorkspace::new(vendor_client(OPENAI_KEY_ENV, args)?);
    let desired = OpenAiDesired { git: git_desired(args), workspace: &workspace };
    let mut show = |outcome: &Result<Run, ReconcileError>| -> anyhow::Result<Status> {
        let calls = dry_run_calls(outcome, |items| workspace.planned_calls(items));
        let text = match args.format {
            Format::Json => {
                let mut v: serde_json::Value =
                    serde_json::from_str(&json_of(args, outcome)).unwrap_or_default();
                if let Some(obj) = v.as_object_mut() {
                    obj.insert("target".into(), json!("openai"));
                    obj.insert("vendor_calls".into(), json!(calls));
                    obj.insert("calls_made".into(), json!(workspace.calls()));
                }
                let mut t = if args.every.is_some() {
                    serde_json::to_string(&v).unwrap_or_default()
                } else {
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                };
                t.push('\n');
                t
            }
            Format::Human => {
                let mut t = human(args, outcome);
                vendor_calls(&mut t, &calls);
                t
            }
        };
        render::emit(&text)?;
        Ok(Status::Clean)
    };
    drive(args, &workspace, &desired, options, shutdown, &mut show)
}

/// The repository whose refs hold a vendor target's audit and lease: the one that
/// holds the policies.
fn audit_repo(args: &Args) -> PathBuf {
    if args.policy.policies.exists() { args.policy.policies.clone() } else { PathBuf::from(".") }
}

/// The vendor Admin API client of a `--target` whose key is in `key_env`, keeping its
/// audit in the policy repository.
fn vendor_client(key_env: &str, args: &Args) -> anyhow::Result<VendorClient> {
    VendorClient::from_env(
        key_env,
        &args.workspace,
        &audit_repo(args),
        args.timeout,
        args.max_rps,
        args.dry_run,
    )
    .with_context(|| format!("set `{key_env}` to an Admin API key of the organisation"))
}

/// The vendor calls a dry run would have made; a run that wrote makes them itself.
fn dry_run_calls(
    outcome: &Result<Run, ReconcileError>,
    planned: impl FnOnce(&[ItemReport]) -> Vec<VendorCall>,
) -> Vec<VendorCall> {
    match outcome {
        Ok(run) if run.report.dry_run => planned(&run.report.not_attempted),
        _ => Vec::new(),
    }
}

/// The human report's list of a dry run's vendor calls, with their bodies.
fn vendor_calls(t: &mut String, calls: &[VendorCall]) {
    if !calls.is_empty() {
        let _ = writeln!(t, "vendor calls:");
        for c in calls {
            let body = c.body.as_ref().map(|b| format!(" {b}")).unwrap_or_default();
            let _ = writeln!(t, "  {} {}{body}", c.method, c.path);
        }
    }
}

pub(super) fn default_holder() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "budgit".to_string());
    format!("{host}/{}", std::process::id())
}

/// With `--directory`, after a run that applied everything: the workspace's people
/// become the file's (created, updated, and removed when absent), so the next run
/// without `--directory` resolves the same people. The limits of removed people were
/// removed by the run itself, under the blast-radius guard; a refused, partial or dry
/// run changes no one. Prints what changed on stderr.
fn sync_people(args: &Args, workspace: &HttpWorkspace, outcome: &Result<Run, ReconcileError>) -> Status {
    let Some(path) = &args.directory else { return Status::Clean };
    match outcome {
        Ok(run) if !run.report.dry_run && !run.report.incomplete() => {}
        _ => return Status::Clean,
    }
    match sync_people_from(workspace, path, args.log_format) {
        Ok(status) => status,
        Err(error) => {
            let line = format!("the workspace's people were not synced with `{}`: {error:#}", path.display());
            logging::fail(args.log_format, &line);
            Status::Failure
        }
    }
}

fn sync_people_from(
    workspace: &HttpWorkspace,
    path: &std::path::Path,
    log: LogFormat,
) -> anyhow::Result<Status> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
    let imported = super::users::import_file(workspace, path, &bytes, super::users::DEFAULT_BATCH, false)?;
    for d in &imported.report.diagnostics {
        let at = d.location.as_ref().map(|l| format!("{}:{}: ", l.file, l.line)).unwrap_or_default();
        let severity = if d.severity == budgit_engine::Severity::Error { "error" } else { "warning" };
        logging::say(log, &format!("{at}{severity}[{}]: {}", d.code, d.message));
    }
    // Who the file names, by the engine's reader (attributes do not matter here).
    let (file, _) = budgit_engine::input::read_directory(path, &std::collections::BTreeMap::new())
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    let kept: std::collections::HashSet<&str> = file.users.iter().map(|u| u.email.as_str()).collect();
    let gone: Vec<String> = workspace::Target::users(workspace)
        .context("cannot list the workspace's people")?
        .into_iter()
        .map(|u| u.email)
        .filter(|email| !kept.contains(email.as_str()))
        .collect();
    // A bad row may be a person who is still there: remove no one until the file is clean.
    let removed = if imported.report.errors() > 0 || gone.is_empty() {
        0
    } else {
        workspace.remove_users(&gone).context("cannot remove the people who left")?
    };
    let line = format!(
        "people from `{}`: {} created, {} updated, {} unchanged, {} removed{}",
        path.display(),
        imported.created,
        imported.updated,
        imported.unchanged,
        removed,
        if imported.report.errors() > 0 && !gone.is_empty() {
            format!(" ({} not removed: the file has bad rows)", gone.len())
        } else {
            String::new()
        }
    );
    logging::say(log, &line);
    Ok(if imported.report.errors() > 0 { Status::Findings } else { Status::Clean })
}

/// The more severe of two statuses (a usage or I/O failure over findings over clean).
fn worst(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        Status::Clean | Status::Changes => 0,
        Status::Findings => 1,
        Status::Failure => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn status(outcome: &Result<Run, ReconcileError>) -> Status {
    match outcome {
        Ok(run) if run.report.incomplete() && !run.report.interrupted && !run.report.dry_run => {
            Status::Findings
        }
        Ok(_) | Err(ReconcileError::LeaseHeld { .. }) => Status::Clean,
        Err(e) if e.needs_new_commit() => Status::Findings,
        Err(_) => Status::Failure,
    }
}

/// A tiny HTTP/1.1 responder: `GET /healthz` and `GET /metrics`, one request per connection.
fn serve_metrics(listener: &TcpListener, metrics: &Mutex<Metrics>) {
    for stream in listener.incoming().flatten() {
        let _ = answer(stream, metrics);
    }
}

fn answer(mut stream: TcpStream, metrics: &Mutex<Metrics>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut line = String::new();
    // Only the request line matters; at most 8 KiB of the request is read.
    let mut request = BufReader::new(std::io::Read::take(&stream, 8192));
    request.read_line(&mut line)?;
    // The rest of its head is read too: closing a socket with bytes still unread makes
    // the kernel reset the connection, and the client may lose the answer.
    let mut header = String::new();
    while request.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, kind, body) = match path {
        "/healthz" => ("200 OK", "application/json", json!({ "status": "ok" }).to_string()),
        "/metrics" => {
            let text = metrics.lock().map(|m| m.render()).unwrap_or_default();
            ("200 OK", "text/plain; version=0.0.4", text)
        }
        _ => ("404 Not Found", "text/plain", "not found\n".to_string()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn print(args: &Args, outcome: &Result<Run, ReconcileError>) -> anyhow::Result<()> {
    let text = match args.format {
        Format::Json => json_of(args, outcome),
        Format::Human => human(args, outcome),
    };
    render::emit(&text)
}

fn json_of(args: &Args, outcome: &Result<Run, ReconcileError>) -> String {
    let value = match outcome {
        Ok(run) => {
            let mut v = serde_json::to_value(&run.report).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("ref".into(), json!(args.rev()));
                obj.insert("status".into(), json!(outcome_name(outcome)));
                obj.insert("alert".into(), json!(run.action.alert));
            }
            v
        }
        Err(e) => json!({
            "ref": args.rev(),
            "status": outcome_name(outcome),
            "error": e.to_string(),
        }),
    };
    // a daemon writes JSON Lines (one run per line); a single run, one readable document
    let text = if args.every.is_some() {
        serde_json::to_string(&value)
    } else {
        serde_json::to_string_pretty(&value)
    };
    let mut text = text.unwrap_or_default();
    text.push('\n');
    text
}

fn show(limit: &Option<Limit>) -> String {
    match limit {
        None => "—".to_string(),
        Some(l) => {
            let mut s = l.credits.to_string();
            let caps: Vec<String> =
                l.products.iter().chain(l.models.iter()).map(|(k, v)| format!("{k} {v}")).collect();
            if !caps.is_empty() {
                let _ = write!(s, " ({})", caps.join(", "));
            }
            s
        }
    }
}

fn item_line(out: &mut String, mark: &str, item: &ItemReport) {
    let direction = match item.direction {
        Direction::Create => "create",
        Direction::Raise => "raise",
        Direction::Lower => "lower",
        Direction::Metadata => "provenance",
        Direction::Remove => "remove",
    };
    let drift = match item.drift {
        Drift::None => "",
        Drift::Expected => "  [expected drift]",
        Drift::Unmanaged => "  [unmanaged drift]",
    };
    let _ = write!(
        out,
        "  {mark} {}  {} → {}  ({direction}){drift}",
        item.user,
        show(&item.before),
        show(&item.after)
    );
    if let Some(reason) = &item.reason {
        let _ = write!(out, ": {reason}");
    }
    out.push('\n');
}

fn human(args: &Args, outcome: &Result<Run, ReconcileError>) -> String {
    let mut out = String::new();
    let run = match outcome {
        Ok(run) => run,
        Err(ReconcileError::LeaseHeld { holder, .. }) => {
            return format!(
                "reconcile `{}`: another reconciler (`{holder}`) holds the lease; nothing done\n",
                args.rev()
            );
        }
        Err(e) => return format!("reconcile `{}`: {e}\n", args.rev()),
    };
    let r = &run.report;
    let short = r.commit.get(..12).unwrap_or(&r.commit);
    let mode = if r.dry_run { " (dry run: nothing written)" } else { "" };
    let _ = writeln!(out, "reconcile `{}` at {short}{mode}", args.rev());
    let _ = writeln!(out, "  plan {}", r.plan_digest);
    let _ = writeln!(
        out,
        "  applied {} · unchanged {} · already applied {} · skipped {} · failed {} · not attempted {} · pools {}",
        r.applied.len(),
        r.unchanged,
        r.already_applied.len(),
        r.skipped.len(),
        r.failed.len(),
        r.not_attempted.len(),
        r.pools_applied,
    );
    let unmanaged = r.drift.iter().filter(|d| d.kind == Drift::Unmanaged).count();
    let expected = r.drift.iter().filter(|d| d.kind == Drift::Expected).count();
    let _ = writeln!(out, "  drift: {unmanaged} unmanaged, {expected} expected");
    if let Some(why) = &r.blast_radius {
        let _ = writeln!(out, "  guard: {why}");
    }
    if r.circuit_open {
        let _ = writeln!(
            out,
            "  stopped: the circuit breaker opened after repeated failures; the next run continues"
        );
    }
    if r.interrupted {
        let _ = writeln!(out, "  stopped: shutdown requested; the next run continues");
    }
    const SHOWN: usize = 50;
    let groups: [(&str, &str, &Vec<ItemReport>); 5] = [
        ("applied", "~", &r.applied),
        (if r.dry_run { "would change" } else { "not attempted" }, "?", &r.not_attempted),
        ("failed", "✗", &r.failed),
        ("skipped", "-", &r.skipped),
        ("already applied", "=", &r.already_applied),
    ];
    for (title, mark, items) in groups {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}:");
        for item in items.iter().take(SHOWN) {
            item_line(&mut out, mark, item);
        }
        if items.len() > SHOWN {
            let _ = writeln!(out, "  …and {} more (use `--format json` for all)", items.len() - SHOWN);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("m").is_err());
    }
}
