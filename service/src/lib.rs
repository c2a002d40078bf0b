//! budgit's workspace service: the HTTP API behind `budgit serve`, state in embedded SQLite.
//!
//! The service holds what the reconciler applies (per-user limits with their
//! provenance, group pools), records usage, answers spend checks with
//! reservations so concurrent callers can never overspend, serves an OpenAI
//! Costs API compatible view, and keeps credit requests, leases and an audit
//! log. It depends on the engine for the model, periods and the directory
//! reader; the engine never depends on it.
//!
//! Layout: `api` (the routes and the handlers of users, limits, usage events and
//! the Costs view, checks, credit requests and leases, admin), [`store`] (SQLite,
//! one writer thread), [`ledger`] (the in-memory check ledger), [`auth`] (tokens),
//! [`sessions`] (console sign-ins), [`conn`] (the accept loop), [`metrics`],
//! [`openapi`] (the API's description), [`pull`] (usage from a vendor's Costs API),
//! [`error`], [`fuzz`] (the handlers' body parsing, for the fuzz targets), and
//! `console`: the admin console's pages and the read models, proposals and
//! overrides only its pages use. `serve --demo` is the `budgit-demo` crate, a
//! client of this one.

// the OpenAPI document is one large `json!` literal
#![recursion_limit = "512"]

mod api;
pub mod auth;
pub mod conn;
mod console;
pub mod error;
pub mod ledger;
pub mod metrics;
pub mod openapi;
pub mod pg;
pub mod pull;
pub mod runaway;
pub mod sessions;
pub mod store;

pub use api::fuzz;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use budgit_engine::model::{AttributeType, Enforcement, Period};
use budgit_engine::period::{PeriodRange, parse_timezone};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::auth::Tokens;
use crate::error::{ApiError, ApiResult};
use crate::ledger::{Ledger, Reservation, Settings, UsageRow, UserLimit};
use crate::metrics::Metrics;
use crate::store::Store;

/// How to run the service.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite database file (created when missing); unused with `postgres`.
    pub db: PathBuf,
    /// A PostgreSQL database shared by several replicas, instead of the SQLite file.
    pub postgres: Option<pg::PgConfig>,
    /// The address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: String,
    /// A policy directory whose Workspace types directory attributes and sets the period.
    pub policies: Option<PathBuf>,
    /// The admin token to accept; when absent, the stored one, or a new one printed once.
    pub admin_token: Option<String>,
    /// The policy repository (a git work tree or bare repo) the console reads groups from
    /// and writes proposals to; without it, team controls and proposals are unavailable.
    pub repo: Option<PathBuf>,
    /// The revision the reconciler applies (the approved branch), `HEAD` when absent.
    pub approved_ref: Option<String>,
    /// Console sessions: idle and absolute expiry, the cookie's `Secure` flag, the clock.
    pub sessions: sessions::SessionOptions,
    /// Connections: header-read and idle timeouts, the connection cap.
    pub http: conn::HttpOptions,
    /// When set, `/metrics` answers only `Authorization: Bearer <this token>`.
    pub metrics_token: Option<String>,
    /// When set, usage is pulled from a vendor's Costs API on an interval.
    pub pull: Option<pull::PullConfig>,
    /// Logs are JSON lines: the lines `run` prints for people (the listening
    /// address, a generated token) become log events too.
    pub json_logs: bool,
}

/// The shortest admin token accepted from the configuration (a guessable one would
/// open everything).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 32;

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The database could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The PostgreSQL store could not be opened.
    #[error(transparent)]
    Pg(#[from] pg::PgError),
    /// The listen address could not be bound.
    #[error("cannot listen on `{addr}`: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The policies could not be read or are invalid.
    #[error("policies: {0}")]
    Policies(String),
    /// Startup work on the store failed.
    #[error("store: {0}")]
    Startup(String),
    /// The configured admin token is too short.
    #[error(
        "the admin token is {0} characters long; it needs at least {MIN_ADMIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`), or leave `BUDGIT_ADMIN_TOKEN` unset to keep the stored one"
    )]
    WeakAdminToken(usize),
    /// The configured admin token was rotated out.
    #[error(
        "the admin token in the configuration was rotated out; set `BUDGIT_ADMIN_TOKEN` to the current one, or unset it to keep the stored one"
    )]
    RetiredAdminToken,
    /// The runtime or the server failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// A stored usage event as the live stream carries it.
#[derive(Debug)]
pub struct StreamEvent {
    /// The monotonic sequence number (the SSE `id`).
    pub seq: i64,
    event: api::events::NewEvent,
    project: String,
    /// The stream JSON, written by the first reader that needs it: the console's
    /// aggregates read the fields, so with no stream open no event is ever serialised.
    json: std::sync::OnceLock<String>,
}

impl StreamEvent {
    fn new(seq: i64, event: api::events::NewEvent, project: String) -> StreamEvent {
        StreamEvent { seq, event, project, json: std::sync::OnceLock::new() }
    }

    /// The event's user, to filter user-token streams.
    pub fn user(&self) -> &str {
        &self.event.user
    }

    /// The event's product.
    pub fn product(&self) -> &str {
        &self.event.product
    }

    /// The event as JSON (what `GET /v1/usage/stream` sends).
    pub fn json(&self) -> &str {
        self.json.get_or_init(|| self.value().to_string())
    }

    /// The event as a JSON value.
    fn value(&self) -> serde_json::Value {
        self.event.to_json(self.seq, &self.project)
    }
}

/// Shared state of the running service.
pub struct AppState {
    store: Store,
    tokens: Tokens,
    ledger: Mutex<Ledger>,
    metrics: Metrics,
    stream: broadcast::Sender<Arc<StreamEvent>>,
    /// Turns true when the service starts shutting down: event streams end.
    closing: tokio::sync::watch::Sender<bool>,
    attributes: Option<BTreeMap<String, AttributeType>>,
    max_override_days: u32,
    /// The policy repository, when the console may read groups and write proposals.
    repo: Option<PathBuf>,
    /// The approved revision in `repo`.
    approved_ref: String,
    /// Cached aggregates behind the console's views.
    dashboard: console::dashboard::DashboardState,
    /// Proposals and reconciler status.
    proposals: console::proposals::ProposalState,
    /// How console sessions behave.
    session_options: sessions::SessionOptions,
    /// How often an event stream sends a keep-alive comment (inside the idle timeout).
    sse_keep_alive: std::time::Duration,
    /// The hash of the token `/metrics` requires, when it requires one.
    metrics_token: Option<auth::TokenHash>,
}

type App = Arc<AppState>;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    Utc::now().timestamp()
}

/// Settings as stored in the `meta` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredSettings {
    pub(crate) period: Period,
    pub(crate) timezone: String,
    pub(crate) enforcement: Enforcement,
}

impl StoredSettings {
    pub(crate) fn to_settings(&self) -> Option<Settings> {
        Some(Settings {
            period: self.period,
            timezone: parse_timezone(&self.timezone)?,
            enforcement: self.enforcement,
        })
    }
}

/// Reads the stored settings (defaults when none).
fn read_settings(conn: &Connection) -> ApiResult<Settings> {
    let text = store::meta_get(conn, "settings")?;
    Ok(text
        .and_then(|t| serde_json::from_str::<StoredSettings>(&t).ok())
        .and_then(|s| s.to_settings())
        .unwrap_or_default())
}

/// Reads the settings and the usage of the period containing `now`.
fn usage_snapshot(
    conn: &Connection,
    now: DateTime<Utc>,
) -> ApiResult<(Settings, PeriodRange, Vec<UsageRow>)> {
    let settings = read_settings(conn)?;
    let period = Ledger::period_for(&settings, now);
    // summed in halves: a plain SUM that overflows fails the query, and with it the start
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT email, product, model, {} FROM events WHERE ts >= ?1 AND ts < ?2
         GROUP BY email, product, model",
        api::events::WIDE_SUM
    ))?;
    let rows = stmt
        .query_map((period.start.timestamp(), period.end.timestamp()), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, api::events::wide_sum(r.get(3)?, r.get(4)?)))
        })?
        .collect::<Result<Vec<UsageRow>, _>>()?;
    Ok((settings, period, rows))
}

/// The last hour's committed spend per user, model and second, for the ledger's
/// rate windows: a range of the `events_ts` index, not a scan.
fn recent_spend(conn: &Connection, now: DateTime<Utc>) -> ApiResult<Vec<(String, String, i64, i64)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT email, model, ts, {} FROM events WHERE ts > ?1 GROUP BY email, model, ts",
        api::events::WIDE_SUM
    ))?;
    let rows = stmt
        .query_map([now.timestamp() - ledger::RATE_WINDOW], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, api::events::wide_sum(r.get(3)?, r.get(4)?)))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Parses an applied limit row.
fn parse_limit(value: &str, group: Option<String>) -> Option<UserLimit> {
    let limit = serde_json::from_str(value).ok()?;
    Some(UserLimit { limit, group })
}

impl AppState {
    /// Opens the store, applies the policies' workspace settings and loads the ledger.
    fn open(config: &Config) -> Result<(App, Option<String>), ServeError> {
        let mut attributes = None;
        let mut max_override_days = 366;
        let mut policy_settings = None;
        if let Some(dir) = &config.policies {
            let (attrs, settings, max_days) = load_policies(dir)?;
            attributes = Some(attrs);
            policy_settings = Some(settings);
            max_override_days = max_days;
        }
        let startup = |e: ApiError| ServeError::Startup(e.message);
        if let Some(token) = &config.admin_token {
            let chars = token.chars().count();
            if chars < MIN_ADMIN_TOKEN_CHARS {
                return Err(ServeError::WeakAdminToken(chars));
            }
        }
        let mut printed = None;
        let mut admin_hash = config.admin_token.as_deref().map(auth::hash);
        let mut retired = false;
        let settings_json = policy_settings.and_then(|s: StoredSettings| serde_json::to_string(&s).ok());
        let store = Store::open(&config.db, |tx| {
            // a restart with the environment still holding a rotated-out token must not
            // bring that token back
            if let Some(h) = &admin_hash
                && api::admin::is_retired(tx, h)?
            {
                retired = true;
                return Ok(());
            }
            let stored = store::meta_get(tx, "admin_token_sha256")?.as_deref().and_then(auth::unhex);
            if admin_hash.is_none() {
                admin_hash = stored;
            }
            if admin_hash.is_none()
                && let Ok(token) = auth::generate("bgt_admin_")
            {
                admin_hash = Some(auth::hash(&token));
                printed = Some(token);
            }
            if let Some(h) = &admin_hash {
                store::meta_set(tx, "admin_token_sha256", &auth::hex(h))?;
            }
            if let Some(s) = &settings_json {
                store::meta_set(tx, "settings", s)?;
            }
            Ok(())
        })?;
        if retired {
            return Err(ServeError::RetiredAdminToken);
        }
        let Some(admin_hash) = admin_hash else {
            return Err(ServeError::Startup("no randomness to generate an admin token".to_string()));
        };
        let tokens = Tokens::new(&config.sessions);
        tokens.set_admin(admin_hash);
        let now = Utc::now();
        let mut ledger = Ledger::default();
        let loaded = store
            .read_blocking(|c| {
                let mut users = Vec::new();
                let mut stmt = c.prepare("SELECT hash, email FROM tokens")?;
                let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?)))?;
                for row in rows {
                    let (h, email) = row?;
                    if let Ok(h) = <[u8; 32]>::try_from(h.as_slice()) {
                        users.push((h, email));
                    }
                }
                let mut limits = Vec::new();
                let mut stmt = c.prepare("SELECT email, value, grp FROM limits")?;
                let rows = stmt.query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
                })?;
                for row in rows {
                    let (email, value, grp) = row?;
                    if let Some(l) = parse_limit(&value, grp) {
                        limits.push((email, Some(l)));
                    }
                }
                let mut stmt = c.prepare("SELECT grp, micros FROM pools")?;
                let pools = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, Some(r.get::<_, i64>(1)?))))?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut stmt = c.prepare(
                    "SELECT id, email, product, model, micros, expires_at FROM reservations WHERE expires_at > ?1",
                )?;
                let reservations = stmt
                    .query_map([now.timestamp()], |r| {
                        Ok(Reservation {
                            id: r.get(0)?,
                            user: r.get(1)?,
                            product: r.get(2)?,
                            model: r.get(3)?,
                            micros: r.get(4)?,
                            group: None,
                            expires_at: r.get(5)?,
                            committing: false,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let sessions = sessions::store_load(c)?;
                let recent = recent_spend(c, now)?;
                Ok((users, limits, pools, reservations, usage_snapshot(c, now)?, sessions, recent))
            })
            .map_err(startup)?;
        let (users, limits, pools, reservations, (settings, period, usage), live_sessions, recent) = loaded;
        for (h, email) in users {
            tokens.add_user(h, email);
        }
        for (h, principal, created, seen) in live_sessions {
            tokens.sessions.restore(h, principal, created, seen);
        }
        let touch_store = store.clone();
        tokens.sessions.persist_touches_with(Box::new(move |h, seen| {
            touch_store.write_detached(move |tx| Ok(sessions::store_touch(tx, &h, seen)?));
        }));
        ledger.apply_limits(limits, pools);
        ledger.load_usage(settings, period, usage);
        ledger.load_recent(recent);
        for r in reservations {
            ledger.restore(r);
        }
        let (stream, _) = broadcast::channel(4096);
        let app = Arc::new(AppState {
            store,
            tokens,
            ledger: Mutex::new(ledger),
            metrics: Metrics::default(),
            stream,
            closing: tokio::sync::watch::Sender::new(false),
            attributes,
            max_override_days,
            repo: config.repo.clone(),
            approved_ref: config.approved_ref.clone().unwrap_or_else(|| "HEAD".to_string()),
            dashboard: console::dashboard::DashboardState::default(),
            proposals: console::proposals::ProposalState::default(),
            session_options: config.sessions.clone(),
            sse_keep_alive: config.http.keep_alive_interval(),
            metrics_token: config.metrics_token.as_deref().map(auth::hash),
        });
        Ok((app, printed))
    }

    fn ledger(&self) -> ApiResult<std::sync::MutexGuard<'_, Ledger>> {
        self.ledger.lock().map_err(|_| ApiError::store(&"the ledger lock is poisoned"))
    }

    /// Reloads the period's usage into the ledger, in commit order with other writes.
    async fn reload_usage(self: &Arc<Self>) -> ApiResult<()> {
        let app = self.clone();
        self.store
            .write(move |tx| {
                let snapshot = usage_snapshot(tx, Utc::now())?;
                let after: store::After = Box::new(move |ok| {
                    if ok && let Ok(mut l) = app.ledger.lock() {
                        let (settings, period, rows) = snapshot;
                        l.load_usage(settings, period, rows);
                    }
                });
                Ok(((), Some(after)))
            })
            .await
    }
}

/// Reads and validates a policy directory as CI does; invalid policies are refused
/// with the count of errors and the first one.
pub fn validated_policies(
    dir: &std::path::Path,
    now: DateTime<Utc>,
) -> Result<budgit_engine::load::PolicySet, String> {
    use budgit_engine::validate::{ValidateOptions, validate_dir};
    let dir = dir.to_path_buf();
    let validated =
        budgit_engine::stack::with_large_stack(move || validate_dir(&dir, &ValidateOptions { now }))
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    if validated.report.has_errors() {
        let first = validated
            .report
            .diagnostics
            .iter()
            .find(|d| d.severity == budgit_engine::Severity::Error)
            .map(|d| d.message.clone())
            .unwrap_or_default();
        return Err(format!("{} errors (run `budgit validate`); first: {first}", validated.report.errors()));
    }
    Ok(validated.policies)
}

/// Reads the policies: attribute types, settings and the longest override.
fn load_policies(
    dir: &std::path::Path,
) -> Result<(BTreeMap<String, AttributeType>, StoredSettings, u32), ServeError> {
    let policies = validated_policies(dir, Utc::now()).map_err(ServeError::Policies)?;
    let Some(ws) = policies.workspace() else {
        return Err(ServeError::Policies("no Workspace document".to_string()));
    };
    let ws = &ws.doc;
    let settings =
        StoredSettings { period: ws.period, timezone: ws.timezone.clone(), enforcement: ws.enforcement };
    Ok((ws.attributes.clone(), settings, ws.overrides.max_days))
}

/// A service listening on a socket, started in the current runtime.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The admin token generated at first start, when one was (shown once).
    pub generated_admin_token: Option<String>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Waits for the server to stop.
    pub async fn wait(self) -> Result<(), ServeError> {
        match self.task.await {
            Ok(r) => Ok(r?),
            Err(e) => Err(ServeError::Io(std::io::Error::other(e.to_string()))),
        }
    }

    /// Stops the server.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Opens the store and starts serving in the current tokio runtime.
///
/// Connections are served by [`conn::serve`] (timeouts and a connection cap).
/// Blocking startup work (migrations, loading the ledger) runs on a blocking thread.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    if let Some(pg) = config.postgres.clone() {
        return start_pg(config, pg).await;
    }
    let cfg = config.clone();
    let (app, generated) = tokio::task::spawn_blocking(move || AppState::open(&cfg))
        .await
        .map_err(|e| ServeError::Startup(e.to_string()))??;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: config.listen.clone(), source })?;
    let addr = listener.local_addr()?;
    background(&app, config.pull.clone());
    let router = api::router(app.clone());
    let closing = app.clone();
    let served = conn::serve(listener, router, config.http.clone(), shutdown_signal(), move || {
        closing.closing.send_replace(true);
    });
    let task = tokio::spawn(async move {
        let out = served.await;
        // every acknowledged write is already committed; detached ones (session
        // touches) may still be queued: wait for them before the process exits
        if let Err(e) = app.store.flush().await {
            tracing::error!(error = e.message, "the store could not be flushed at shutdown");
        }
        tracing::info!("stopped");
        out
    });
    Ok(Running { addr, generated_admin_token: generated, task })
}

/// Starts a replica on a PostgreSQL store (see [`api::pg`] for what it serves).
async fn start_pg(config: Config, pg_config: pg::PgConfig) -> Result<Running, ServeError> {
    if let Some(token) = &config.admin_token {
        let chars = token.chars().count();
        if chars < MIN_ADMIN_TOKEN_CHARS {
            return Err(ServeError::WeakAdminToken(chars));
        }
    }
    let settings_json = match &config.policies {
        Some(dir) => {
            let dir = dir.clone();
            let (_, settings, _) = tokio::task::spawn_blocking(move || load_policies(&dir))
                .await
                .map_err(|e| ServeError::Startup(e.to_string()))??;
            serde_json::to_string(&settings).ok()
        }
        None => None,
    };
    let store = pg::Pg::open(&pg_config).await?;
    let startup = |e: ApiError| ServeError::Startup(e.detail.unwrap_or(e.message));
    let (admin_hash, generated) =
        pg_startup(&store, config.admin_token.as_deref(), settings_json).await.map_err(startup)?;
    let tokens = Tokens::new(&config.sessions);
    tokens.set_admin(admin_hash);
    let app = Arc::new(api::pg::PgState {
        pg: store,
        tokens,
        sse_keep_alive: config.http.keep_alive_interval(),
        closing: tokio::sync::watch::Sender::new(false),
    });
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|source| ServeError::Listen { addr: config.listen.clone(), source })?;
    let addr = listener.local_addr()?;
    tokio::spawn(api::pg::sweep(app.clone()));
    let router = api::pg::router(app.clone());
    // event streams never end by themselves: end them so the drain does not wait
    let served = conn::serve(listener, router, config.http.clone(), shutdown_signal(), move || {
        app.closing.send_replace(true);
    });
    let task = tokio::spawn(async move {
        let out = served.await;
        tracing::info!("stopped");
        out
    });
    Ok(Running { addr, generated_admin_token: generated, task })
}

/// The admin token's hash and the workspace settings, agreed in the database: the
/// configured token wins; without one, the stored one; without that, the first
/// replica to start generates one (the others read it, and print nothing).
async fn pg_startup(
    store: &pg::Pg,
    configured: Option<&str>,
    settings_json: Option<String>,
) -> ApiResult<(auth::TokenHash, Option<String>)> {
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    let mut generated = None;
    let hash = match configured {
        Some(token) => {
            let h = auth::hash(token);
            pg::meta_set(&tx, "admin_token_sha256", &auth::hex(&h)).await?;
            h
        }
        None => {
            let token = auth::generate("bgt_admin_")?;
            let mine = auth::hex(&auth::hash(&token));
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('admin_token_sha256', $1) ON CONFLICT (key) DO NOTHING",
                &[&mine],
            )
            .await?;
            let stored = pg::meta_get(&tx, "admin_token_sha256").await?.unwrap_or_default();
            if stored == mine {
                generated = Some(token);
            }
            auth::unhex(&stored).ok_or_else(|| ApiError::store(&"the stored admin token hash is not hex"))?
        }
    };
    if let Some(s) = &settings_json {
        pg::meta_set(&tx, "settings", s).await?;
    }
    tx.commit().await?;
    Ok((hash, generated))
}

/// Starts every task the service runs beside its requests, in one place: none is
/// started by a request or by [`api::router`] (a test may build many routers).
fn background(app: &App, pull: Option<pull::PullConfig>) {
    if let Some(pull) = pull {
        tokio::spawn(pull::run(app.clone(), pull));
    }
    // the dashboard's aggregates follow the usage stream; its view is rebuilt about
    // every second when an input changed
    tokio::spawn(console::dashboard::follow(app.clone()));
    tokio::spawn(console::dashboard::refresh(app.clone()));
    // credit requests whose proposals were merged or applied move on
    tokio::spawn(console::proposals::watch_requests(app.clone()));
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (how schedulers stop a service).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Runs the service until interrupted (the `budgit serve` command).
///
/// Prints the listening address, and a generated admin token once, to stderr.
/// On SIGTERM or Ctrl-C it stops accepting, lets requests in flight finish (up
/// to the drain deadline), ends event streams, flushes the store and returns.
pub fn run(config: Config) -> Result<(), ServeError> {
    // CEL and YAML work recurses: give workers room (a stack overflow aborts)
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()?;
    let json = config.json_logs;
    rt.block_on(async {
        let running = start(config).await?;
        if let Some(token) = &running.generated_admin_token {
            say(
                json,
                &format!(
                    "admin token (shown once, stored hashed; set BUDGIT_ADMIN_TOKEN to choose one): {token}"
                ),
            );
        }
        let addr = running.addr.to_string();
        say(json, &format!("budgit serve listening on http://{addr}"));
        running.wait().await
    })
}

/// Tells the operator something on stderr: the plain line people and scripts read
/// (`budgit serve listening on http://…`), or with JSON logs an `info` event.
pub fn say(json_logs: bool, line: &str) {
    if json_logs {
        tracing::info!("{line}");
    } else {
        eprintln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn building_the_router_starts_no_task() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let config = Config {
            db: dir.path().join("budgit.db"),
            listen: "127.0.0.1:0".into(),
            policies: None,
            admin_token: Some("router-test-admin-token-0123456789abcdef".into()),
            repo: None,
            approved_ref: None,
            sessions: sessions::SessionOptions::default(),
            http: conn::HttpOptions::default(),
            metrics_token: None,
            pull: None,
            json_logs: false,
            postgres: None,
        };
        let (app, _) = AppState::open(&config).unwrap_or_else(|e| panic!("{e}"));
        let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let before = tasks();
        let _router = api::router(app);
        assert_eq!(tasks(), before, "api::router spawned a task");
    }
}
