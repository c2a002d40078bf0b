//! `budgit serve --demo`: a demo organisation, simulated activity and a reconciler loop.
//!
//! One call ([`start_demo`]) makes the whole GitOps loop visible on one machine:
//! a policy repository with real commits (from `./policies`, a given directory,
//! or the copy embedded in the binary), a service started in-process with that
//! repository, generated users imported through the API, the reconciler applied
//! once against the service, the period so far backfilled with usage, then live
//! ChatGPT and Codex spends through check + commit and the reconciler every
//! [`RECONCILE_EVERY`]. Everything goes through the public API, as a real
//! deployment would; the scheduled reconciler is the engine's loop
//! (`reconcile::controller::run`), as in `budgit reconcile --every`. [`run`] is the command: it prints where to look and stops
//! on Ctrl-C or SIGTERM.
//!
//! Layout: [`repo`] (embedded policies, the git repository), [`people`] (the
//! directory), [`activity`] (who spends what, when), `client` (HTTP to the service).

pub mod activity;
mod client;
pub mod people;
pub mod repo;
pub mod value;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use budgit_engine::load::PolicySet;
use budgit_engine::reconcile::{
    Context, GitDesired, Guard, Options, Schedule, SystemClock, controller, reconcile,
};
use budgit_engine::resolve::resolve;
use budgit_engine::workspace::http::HttpWorkspace;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use activity::{Live, Org};
use budgit_service::{Config, Running, ServeError};
use client::Client;

/// How often the reconciler runs in the demo.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(12);

/// Events per ingest call (the API's batch limit).
const BATCH: usize = 1000;

/// How the user at the limit keeps trying, so denials show up live.
const DENIED_EVERY: Duration = Duration::from_secs(20);

/// A simulated day of live activity lasts this long.
const LIVE_DAY: Duration = Duration::from_secs(600);

/// What to run.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// A policy directory; `None`: `./policies` when present, else the embedded copy.
    pub policies: Option<PathBuf>,
    /// Users to generate.
    pub users: usize,
    /// The address to listen on.
    pub listen: String,
    /// The database; `None`: `budgit.db` in the data directory.
    pub db: Option<PathBuf>,
    /// Where the repository (and database) go; `None`: next to `db`, else a new temp directory.
    pub data_dir: Option<PathBuf>,
    /// The seed of every random draw.
    pub seed: u64,
    /// The admin token; `None`: a new one.
    pub admin_token: Option<String>,
    /// The instant the backfill ends (`None`: now); the service itself runs on the real clock.
    pub now: Option<DateTime<Utc>>,
    /// Simulate live activity and run the reconciler on a schedule after seeding.
    pub live: bool,
    /// Print progress to stderr.
    pub verbose: bool,
    /// Progress and logs as JSON lines (log events) rather than plain lines.
    pub json_logs: bool,
    /// Console sessions (expiry, the cookie's `Secure` flag).
    pub sessions: budgit_service::sessions::SessionOptions,
    /// Connection timeouts and cap.
    pub http: budgit_service::conn::HttpOptions,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            policies: None,
            users: 3000,
            listen: "127.0.0.1:8080".to_string(),
            db: None,
            data_dir: None,
            seed: 1,
            admin_token: None,
            now: None,
            live: true,
            verbose: false,
            json_logs: false,
            sessions: budgit_service::sessions::SessionOptions::default(),
            http: budgit_service::conn::HttpOptions::default(),
        }
    }
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The policies could not be read or are invalid.
    #[error("policies: {0}")]
    Policies(String),
    /// The policy repository could not be created.
    #[error("policy repository: {0}")]
    Repo(String),
    /// The address to listen on is taken or invalid (checked before anything is created).
    #[error("cannot listen on `{addr}`: {source}; pass `--listen` with a free address")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create `{path}`: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The service did not start.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A call to the service failed.
    #[error("`{call}`: {detail}")]
    Api {
        /// The endpoint.
        call: String,
        /// What went wrong.
        detail: String,
    },
    /// The first reconciler run failed.
    #[error("reconcile: {0}")]
    Reconcile(String),
    /// A worker thread failed.
    #[error("demo worker: {0}")]
    Worker(String),
}

/// How long each seeding step took.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    /// Writing the repository and generating the people.
    pub prepare: Duration,
    /// Importing the users.
    pub import: Duration,
    /// The first reconciler run.
    pub reconcile: Duration,
    /// Planning and ingesting the backfill.
    pub backfill: Duration,
    /// Everything, from the call to the demo being ready.
    pub total: Duration,
}

/// A running demo.
pub struct Demo {
    /// The service's address.
    pub addr: SocketAddr,
    /// The admin token.
    pub admin_token: String,
    /// A token of [`Demo::user`].
    pub user_token: String,
    /// The user at their limit.
    pub user: String,
    /// The team near its pool, when one could be.
    pub near_team: Option<String>,
    /// The policy repository's work tree.
    pub repo: PathBuf,
    /// The commit `main` pointed at when the demo started.
    pub head: String,
    /// Where the database and the repository live.
    pub data_dir: PathBuf,
    /// Users imported.
    pub users: usize,
    /// Backfill events ingested.
    pub events: usize,
    /// How long seeding took.
    pub timings: Timings,
    running: Running,
    stop: Arc<Stop>,
    shutdown: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Demo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Demo").field("addr", &self.addr).field("repo", &self.repo).finish_non_exhaustive()
    }
}

impl Demo {
    /// The console's URL.
    pub fn url(&self) -> String {
        format!("http://{}/console/", self.addr)
    }

    /// A link that signs in with `token`.
    pub fn login_link(&self, token: &str) -> String {
        format!("http://{}/console/login#token={token}", self.addr)
    }

    /// Stops the simulation, the reconciler loop and the service.
    pub fn stop(mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.stop.set();
        for w in self.workers.drain(..) {
            // a worker that panicked has nothing left to clean up
            let _ = w.join();
        }
        self.running.abort();
    }
}

/// A stop signal the worker threads wait on between steps.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl Stop {
    fn set(&self) {
        if let Ok(mut s) = self.stopped.lock() {
            *s = true;
        }
        self.cv.notify_all();
    }

    /// Waits up to `d`; true when stopped.
    fn wait(&self, d: Duration) -> bool {
        let Ok(guard) = self.stopped.lock() else { return true };
        match self.cv.wait_timeout_while(guard, d, |s| !*s) {
            Ok((s, _)) => *s,
            Err(_) => true,
        }
    }
}

fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DemoError> + Send + 'static,
) -> impl Future<Output = Result<T, DemoError>> {
    let task = tokio::task::spawn_blocking(f);
    async move { task.await.map_err(|e| DemoError::Worker(e.to_string()))? }
}

/// The data directory: given, next to the database, or a new one under the temp dir.
fn data_dir(opts: &DemoOptions) -> Result<PathBuf, DemoError> {
    let given = opts.data_dir.clone().or_else(|| opts.db.as_ref().map(|db| db.with_extension("demo")));
    if let Some(dir) = given {
        std::fs::create_dir_all(&dir).map_err(|source| DemoError::DataDir { path: dir.clone(), source })?;
        return Ok(dir);
    }
    new_temp_dir()
}

/// A directory under the temp dir that did not exist before: a process id is reused
/// once its process ends, and the demo keeps its data after Ctrl-C, so a name made of
/// the id alone could pick up another run's database (its events then conflict with
/// this run's, and its limits look already applied).
fn new_temp_dir() -> Result<PathBuf, DemoError> {
    let base = std::env::temp_dir();
    let pid = std::process::id();
    for n in 0..1000u32 {
        let path = match n {
            0 => base.join(format!("budgit-demo-{pid}")),
            n => base.join(format!("budgit-demo-{pid}-{n}")),
        };
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => return Err(DemoError::DataDir { path, source }),
        }
    }
    Err(DemoError::DataDir {
        path: base,
        source: std::io::Error::other(
            "a thousand `budgit-demo-*` directories of this process id already exist",
        ),
    })
}

/// Loads and validates the policies in the repository's work tree.
fn load(dir: &Path, now: DateTime<Utc>) -> Result<PolicySet, DemoError> {
    budgit_service::validated_policies(dir, now).map_err(DemoError::Policies)
}

/// Plans the organisation's usage: resolves the policies over the people.
fn plan_org(
    people: &[people::Person],
    policies: &PolicySet,
    seed: u64,
    now: DateTime<Utc>,
) -> Result<Org, DemoError> {
    let attributes = policies.workspace().map(|w| w.doc.attributes.clone()).unwrap_or_default();
    let file: Arc<str> = Arc::from("demo directory");
    let (dir, _) = budgit_engine::input::parse_directory(&file, &people::jsonl(people), true, &attributes)
        .map_err(DemoError::Policies)?;
    let policies2 = policies.clone();
    let resolution = budgit_engine::stack::with_large_stack(move || resolve(&policies2, &dir, now))
        .map_err(|e| DemoError::Policies(e.to_string()))?
        .map_err(|e| DemoError::Policies(e.to_string()))?;
    Ok(activity::plan(people, policies, &resolution, seed, now))
}

/// The reconciler's context for the demo's service, as `budgit reconcile` builds it:
/// the HTTP workspace, the policies at `main` resolved at each run's time.
struct DemoReconciler {
    workspace: HttpWorkspace,
    desired: GitDesired,
    clock: SystemClock,
    options: Options,
}

impl DemoReconciler {
    fn new(base: &str, token: String, policies: PathBuf, mass_change: bool) -> DemoReconciler {
        DemoReconciler {
            workspace: HttpWorkspace::new(base, token, Duration::from_secs(120)),
            desired: GitDesired {
                policies,
                rev: repo::BRANCH.to_string(),
                now: None,
                directory: None,
                require_signed: false,
                gpg_home: None,
            },
            clock: SystemClock::new(),
            options: Options {
                holder: format!("budgit-demo-{}", std::process::id()),
                batch_size: 1000,
                // the first run applies every user at once; later runs keep the usual guard
                guard: Guard { allow_mass_change: mass_change, ..Guard::default() },
                every: (!mass_change).then_some(RECONCILE_EVERY),
                ..Options::default()
            },
        }
    }

    fn context<'a>(&'a self, shutdown: &'a AtomicBool) -> Context<'a> {
        Context {
            workspace: &self.workspace,
            desired: &self.desired,
            clock: &self.clock,
            options: self.options.clone(),
            shutdown,
        }
    }
}

/// The seeding run of the reconciler: every user at once, past the blast-radius guard.
fn reconcile_once(
    base: String,
    token: String,
    policies: PathBuf,
) -> Result<budgit_engine::reconcile::Run, DemoError> {
    // YAML and CEL recurse: the run gets a thread with a large stack
    let run = budgit_engine::stack::with_large_stack(move || {
        let reconciler = DemoReconciler::new(&base, token, policies, true);
        // Status reporting: the engine's `reconcile` reports each run through
        // `Workspace::report_run` (the HTTP workspace PUTs it to `/v1/reconciler/status`).
        reconcile(&reconciler.context(&AtomicBool::new(false)))
            .map_err(|e| DemoError::Reconcile(e.to_string()))
    });
    run.map_err(|e| DemoError::Reconcile(e.to_string()))?
}

/// Ingests the backfill in batches, from a few threads so parsing overlaps the writes.
fn ingest_backfill(client: &Client, org: &Arc<Org>, seed: u64) -> Result<(usize, value::Tally), DemoError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    let rx = Arc::new(Mutex::new(rx));
    let senders: Vec<JoinHandle<Result<(), DemoError>>> = (0..3)
        .map(|_| {
            let (rx, client) = (rx.clone(), client.clone());
            std::thread::spawn(move || {
                loop {
                    let body = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return Err(DemoError::Worker("the batch queue is poisoned".into())),
                    };
                    let Ok(body) = body else { return Ok(()) };
                    client.post("/v1/usage/events", "application/json", &body)?;
                }
            })
        })
        .collect();
    let mut count = 0;
    let mut batch: Vec<Value> = Vec::with_capacity(BATCH);
    let mut failed = None;
    let mut tally = value::Tally::default();
    for i in 0..org.subjects.len() {
        for e in activity::backfill(org, i, seed) {
            tally.add(org, i, &e);
            batch.push(e);
            if batch.len() == BATCH {
                count += batch.len();
                let body = Value::Array(std::mem::take(&mut batch)).to_string().into_bytes();
                if tx.send(body).is_err() {
                    failed = Some(());
                    break;
                }
            }
        }
        if failed.is_some() {
            break;
        }
    }
    if !batch.is_empty() && failed.is_none() {
        count += batch.len();
        // a failed send means a sender stopped; its error is reported below
        let _ = tx.send(Value::Array(batch).to_string().into_bytes());
    }
    drop(tx);
    for s in senders {
        s.join().map_err(|_| DemoError::Worker("an ingest thread panicked".into()))??;
    }
    Ok((count, tally))
}

/// Starts the demo: repository, service, users, first reconcile, backfill, then live activity.
pub async fn start_demo(opts: DemoOptions) -> Result<Demo, DemoError> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let now = opts.now.unwrap_or_else(Utc::now);
    let say = |what: &str| {
        if opts.verbose {
            budgit_service::say(opts.json_logs, &format!("demo: {what}"));
        }
    };
    // A port already taken must fail before a data directory, a repository and thousands
    // of people are created for nothing. The probe is released at once and the service
    // binds again below: another process could take the port in between, and then the
    // service's own bind reports it.
    drop(
        std::net::TcpListener::bind(&opts.listen)
            .map_err(|source| DemoError::Listen { addr: opts.listen.clone(), source })?,
    );
    let data_dir = data_dir(&opts)?;
    let source = opts.policies.clone().or_else(|| {
        let local = PathBuf::from("policies");
        local.join("workspace.yaml").is_file().then_some(local)
    });
    match &source {
        Some(dir) => say(&format!("policies from `{}`", dir.display())),
        None => say("policies: the example organisation built into budgit"),
    }
    let (root, seed, n) = (data_dir.join("repo"), opts.seed, opts.users);
    let (demo_repo, policies, people) = blocking(move || {
        let files = repo::policy_files(source.as_deref())?;
        let demo_repo = repo::create(&root, &files)?;
        let policies = load(&demo_repo.policies, now)?;
        Ok((demo_repo, policies, people::people(n, seed)))
    })
    .await?;
    say(&format!("policy repository at {} (main at {})", demo_repo.root.display(), &demo_repo.head[..12]));
    let admin_token = match &opts.admin_token {
        Some(t) => t.clone(),
        None => budgit_service::auth::generate("bgt_admin_").map_err(|e| DemoError::Worker(e.message))?,
    };
    let running = budgit_service::start(Config {
        db: opts.db.clone().unwrap_or_else(|| data_dir.join("budgit.db")),
        listen: opts.listen.clone(),
        policies: Some(demo_repo.policies.clone()),
        admin_token: Some(admin_token.clone()),
        repo: Some(demo_repo.root.clone()),
        approved_ref: Some(repo::BRANCH.to_string()),
        sessions: opts.sessions.clone(),
        http: opts.http.clone(),
        metrics_token: None,
        pull: None,
        json_logs: opts.json_logs,
        postgres: None,
    })
    .await?;
    let addr = running.addr;
    let base = format!("http://{addr}");
    let client = Client::new(&base, &admin_token);
    timings.prepare = started.elapsed();

    // from here on, a failure stops the service it started
    let seeded =
        seed_service(&opts, &client, &base, &admin_token, &demo_repo, people, policies, now, &mut timings);
    let (org, events) = match seeded.await {
        Ok(v) => v,
        Err(e) => {
            running.abort();
            return Err(e);
        }
    };
    let Some(user) = org.at_limit.and_then(|i| org.subjects.get(i)).map(|s| s.email.clone()) else {
        running.abort();
        return Err(DemoError::Policies("no group leaves room for a user at their limit".into()));
    };
    let (c, u) = (client.clone(), user.clone());
    let answer = blocking(move || c.post_json(&format!("/v1/users/{u}/tokens"), &json!({}))).await;
    let user_token = match answer.map(|a| a.get("token").and_then(Value::as_str).map(str::to_string)) {
        Ok(Some(t)) => t,
        Ok(None) => {
            running.abort();
            return Err(DemoError::Api {
                call: "/v1/users/{email}/tokens".into(),
                detail: "no token".into(),
            });
        }
        Err(e) => {
            running.abort();
            return Err(e);
        }
    };
    timings.total = started.elapsed();
    say(&format!("ready in {:.1} s", timings.total.as_secs_f64()));

    let stop = Arc::new(Stop::default());
    let shutdown = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    if opts.live {
        let org = Arc::new(org.clone());
        workers.push(spawn_simulator(client.clone(), org, opts.seed, stop.clone()));
        workers.push(spawn_reconciler(
            base.clone(),
            admin_token.clone(),
            demo_repo.policies.clone(),
            shutdown.clone(),
        ));
    }
    Ok(Demo {
        addr,
        admin_token,
        user_token,
        user,
        near_team: org.near_team.clone(),
        repo: demo_repo.root,
        head: demo_repo.head,
        data_dir,
        users: org.subjects.len(),
        events,
        timings,
        running,
        stop,
        shutdown,
        workers,
    })
}

/// Imports the users, runs the reconciler once and ingests the backfill.
#[allow(clippy::too_many_arguments)]
async fn seed_service(
    opts: &DemoOptions,
    client: &Client,
    base: &str,
    token: &str,
    demo_repo: &repo::DemoRepo,
    people: Vec<people::Person>,
    policies: PolicySet,
    now: DateTime<Utc>,
    timings: &mut Timings,
) -> Result<(Org, usize), DemoError> {
    let say = |what: String| {
        if opts.verbose {
            budgit_service::say(opts.json_logs, &format!("demo: {what}"));
        }
    };
    let people = Arc::new(people);
    let step = Instant::now();
    let (c, p) = (client.clone(), people.clone());
    let imported =
        blocking(move || c.post("/v1/users/import?format=jsonl", "application/x-ndjson", &people::jsonl(&p)))
            .await?;
    timings.import = step.elapsed();
    say(format!(
        "imported {} users in {:.1} s",
        imported.get("users").and_then(Value::as_u64).unwrap_or(0),
        timings.import.as_secs_f64()
    ));

    let step = Instant::now();
    let (b, t, dir) = (base.to_string(), token.to_string(), demo_repo.policies.clone());
    let run = blocking(move || reconcile_once(b, t, dir)).await?;
    timings.reconcile = step.elapsed();
    say(format!(
        "reconciler applied {} limits from {} in {:.1} s",
        run.report.applied.len(),
        &run.report.commit[..run.report.commit.len().min(12)],
        timings.reconcile.as_secs_f64()
    ));

    let step = Instant::now();
    let (seed, c) = (opts.seed, client.clone());
    let (org, events) = blocking(move || {
        let org = Arc::new(plan_org(&people, &policies, seed, now)?);
        let (events, tally) = ingest_backfill(&c, &org, seed)?;
        // what the spend produced: merged pull requests and resolved tickets
        c.post("/v1/outcomes?format=jsonl", "application/x-ndjson", &tally.outcomes(&org, seed))?;
        Ok((org, events))
    })
    .await?;
    timings.backfill = step.elapsed();
    say(format!("backfilled {events} usage events in {:.1} s", timings.backfill.as_secs_f64()));
    Ok((Arc::unwrap_or_clone(org), events))
}

/// Live activity: spends through check + commit, following a compressed office day.
fn spawn_simulator(client: Client, org: Arc<Org>, seed: u64, stop: Arc<Stop>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut live = Live::new(&org, seed ^ u64::from(std::process::id()));
        let start = Instant::now();
        let mut last_denied = Instant::now();
        let mut n: u64 = 0;
        loop {
            let phase = start.elapsed().as_secs_f64() / LIVE_DAY.as_secs_f64() + 9.0 / 24.0;
            if stop.wait(Duration::from_secs_f64(live.gap(Live::rate(phase)))) {
                return;
            }
            let who = (last_denied.elapsed() >= DENIED_EVERY).then_some(org.at_limit).flatten();
            if who.is_some() {
                last_denied = Instant::now();
            }
            let Some(spend) = live.next(&org, who) else { continue };
            let Some(subject) = org.subjects.get(spend.user) else { continue };
            n += 1;
            let check = client.post_json(
                "/v1/check",
                &json!({
                    "user": subject.email,
                    "product": spend.product,
                    "model": spend.model,
                    "credits": spend.reserve.to_string(),
                    "ttl_seconds": 60,
                }),
            );
            // a failed call (the service stopping) skips this spend; the loop goes on
            let Ok(answer) = check else { continue };
            let Some(id) = answer.get("reservation_id").and_then(Value::as_str) else { continue };
            if answer.get("allowed") != Some(&Value::Bool(true)) {
                continue;
            }
            let _ = client.post_json(
                &format!("/v1/reservations/{id}/commit"),
                &json!({
                    "credits": spend.actual.to_string(),
                    "event_id": format!("live-{}-{n}-{}", std::process::id(), Utc::now().timestamp_millis()),
                    "context": spend.context,
                }),
            );
        }
    })
}

/// The reconciler on a schedule: the engine's loop, each run's status sent to the
/// service and logged as an event; it stops when `shutdown` is set.
fn spawn_reconciler(
    base: String,
    token: String,
    policies: PathBuf,
    shutdown: Arc<AtomicBool>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        // YAML and CEL recurse: the loop gets a thread with a large stack
        let ran = budgit_engine::stack::with_large_stack(move || {
            let reconciler = DemoReconciler::new(&base, token, policies, false);
            let schedule = Schedule {
                first_run_after: RECONCILE_EVERY,
                // a large organisation takes seconds per run: keep the reconciler to a quarter of the time
                pace: 3,
                ..Schedule::default()
            };
            controller::run(&reconciler.context(&shutdown), &schedule, |_| {});
        });
        if let Err(e) = ran {
            let error = e.to_string();
            tracing::error!(error, "the demo's reconciler stopped");
        }
    })
}

/// Runs the demo until Ctrl-C or SIGTERM (the `budgit serve --demo` command).
pub fn run(opts: DemoOptions) -> Result<(), DemoError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
        .map_err(ServeError::Io)?;
    let json_logs = opts.json_logs;
    rt.block_on(async {
        let demo = start_demo(DemoOptions { verbose: true, ..opts }).await?;
        let t = &demo.timings;
        println!();
        println!("budgit demo: {} users, {} usage events this period", demo.users, demo.events);
        println!(
            "  seeded in {:.1} s (import {:.1} s, reconcile {:.1} s, backfill {:.1} s)",
            t.total.as_secs_f64(),
            t.import.as_secs_f64(),
            t.reconcile.as_secs_f64(),
            t.backfill.as_secs_f64()
        );
        println!();
        println!("  console      {}", demo.url());
        println!("  admin token  {}", demo.admin_token);
        println!("               {}", demo.login_link(&demo.admin_token));
        println!("  user token   {} ({}, at their limit)", demo.user_token, demo.user);
        println!("               {}", demo.login_link(&demo.user_token));
        println!("  repository   {} (branch `main`; proposals become branches here)", demo.repo.display());
        println!(
            "  data         {} (the database and the repository; kept after Ctrl-C)",
            demo.data_dir.display()
        );
        if let Some(team) = &demo.near_team {
            println!("  near its pool: the `{team}` team");
        }
        println!();
        println!(
            "Live ChatGPT and Codex activity is running; the reconciler applies `main` every {} s.",
            RECONCILE_EVERY.as_secs()
        );
        println!("Press Ctrl-C to stop.");
        budgit_service::shutdown_signal().await;
        budgit_service::say(json_logs, "demo: stopping");
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            demo.stop();
            let _ = tx.send(());
        });
        // workers finish their current call; never hang on a stuck one
        let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::new_temp_dir;

    #[test]
    fn a_data_directory_left_by_another_run_of_the_same_process_id_is_never_reused() {
        // what an earlier demo whose process id this one now has left behind
        let stale = std::env::temp_dir().join(format!("budgit-demo-{}", std::process::id()));
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("budgit.db"), b"another run's database").unwrap();
        let first = new_temp_dir().unwrap();
        let second = new_temp_dir().unwrap();
        assert_ne!(first, stale);
        assert_ne!(second, stale);
        assert_ne!(first, second);
        assert_eq!(std::fs::read_dir(&first).unwrap().count(), 0, "a new directory is empty");
        for dir in [&stale, &first, &second] {
            std::fs::remove_dir_all(dir).unwrap();
        }
    }
}
