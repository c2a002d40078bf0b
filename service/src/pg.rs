//! The PostgreSQL store (`budgit serve --store postgres://…`): several replicas share
//! one database, so whatever must hold across them lives there, not in a process.
//!
//! A connection pool (deadpool over tokio-postgres) with a timeout on every step:
//! the TCP connect, waiting for a pooled connection, each statement (set on the
//! session) and each request's whole database work ([`Pg::run`]), so a database that
//! stops answering turns into a 503 within seconds, never a hung request.
//! Migrations are versioned in `schema_migrations` and applied under a session-level
//! advisory lock on a connection of their own: replicas started together wait for
//! the first, which applies them once; the others find them applied.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::error::{ApiError, ApiResult};

/// Connections a replica opens at most, unless `--store-pool` says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;
/// The longest a request's database work may take, waiting for a connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a TCP connect to the database may take (unless the URL sets `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock key migrations run under (`budgit` in ASCII, as a number).
const MIGRATION_LOCK: i64 = 0x0000_6275_6467_6974;

/// The schema, one entry per version; `schema_migrations` records those applied.
///
/// Amounts are micro-credits in `BIGINT`, times unix seconds, as in the SQLite store;
/// emails compare byte by byte (`COLLATE "C"`), so pages follow SQLite's order.
/// Reservations are rows here, not a process's memory: a check on any replica counts
/// the holds made on every other.
pub const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE limits (email TEXT COLLATE \"C\" PRIMARY KEY, value TEXT NOT NULL, grp TEXT, source TEXT,
         commit_id TEXT, plan_digest TEXT, updated_at BIGINT NOT NULL);
     CREATE INDEX limits_grp ON limits(grp);
     CREATE TABLE pools (grp TEXT PRIMARY KEY, micros BIGINT NOT NULL, commit_id TEXT,
         plan_digest TEXT, updated_at BIGINT NOT NULL);
     CREATE TABLE audit (seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL,
         action TEXT NOT NULL, subject TEXT NOT NULL, old TEXT, new TEXT, commit_id TEXT, plan_digest TEXT);
     CREATE INDEX audit_subject ON audit(subject, seq);
     CREATE TABLE events (seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, ts BIGINT NOT NULL,
         email TEXT NOT NULL, product TEXT NOT NULL, model TEXT NOT NULL, micros BIGINT NOT NULL,
         project TEXT NOT NULL DEFAULT '', context TEXT, digest BYTEA);
     CREATE INDEX events_email_ts ON events(email, ts);
     CREATE INDEX events_ts ON events(ts);
     CREATE TABLE reservations (id TEXT PRIMARY KEY, email TEXT NOT NULL, product TEXT NOT NULL,
         model TEXT NOT NULL, micros BIGINT NOT NULL, grp TEXT, expires_at BIGINT NOT NULL);
     CREATE INDEX reservations_email ON reservations(email, expires_at);
     CREATE INDEX reservations_grp ON reservations(grp, expires_at);
     CREATE INDEX reservations_expires ON reservations(expires_at);
     CREATE TABLE alerts (seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, email TEXT NOT NULL,
         kind TEXT NOT NULL, message TEXT NOT NULL);",
)];

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://user@host:port/db?…` (libpq's URL form; no TLS).
    pub url: String,
    /// Connections this replica opens at most.
    pub pool_size: usize,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The URL does not read as a PostgreSQL connection URL.
    #[error("the store URL is not a PostgreSQL URL: {0}")]
    Url(String),
    /// The database could not be reached or refused a statement.
    #[error("PostgreSQL: {0}")]
    Db(String),
}

/// The pool every request takes its connection from.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
}

/// True when `store` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// The driver's configuration from the URL, with the timeouts the URL leaves unset.
fn driver_config(url: &str) -> Result<tokio_postgres::Config, PgError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| PgError::Url(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    // a peer that vanished without closing (a dead host) is noticed by keepalives
    config.keepalives(true).keepalives_idle(Duration::from_secs(30));
    if config.get_options().is_none() {
        // no statement or lock wait outlives a request's deadline on the server either
        config.options("-c statement_timeout=5000 -c lock_timeout=5000");
    }
    if config.get_application_name().is_none() {
        config.application_name("budgit");
    }
    Ok(config)
}

impl Pg {
    /// Builds the pool and applies the migrations (once across replicas, under the lock).
    pub async fn open(config: &PgConfig) -> Result<Pg, PgError> {
        let driver = driver_config(&config.url)?;
        migrate(&driver).await?;
        let manager =
            Manager::from_config(driver, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(REQUEST_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| PgError::Db(e.to_string()))?;
        Ok(Pg { pool })
    }

    /// A pooled connection (waiting at most [`REQUEST_TIMEOUT`] for one).
    pub async fn client(&self) -> ApiResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(|e| ApiError::store(&e))
    }

    /// Bounds a request's database work to [`REQUEST_TIMEOUT`] in all: a database that
    /// is down or stuck answers 503 `store/unavailable`, which clients retry.
    pub async fn timed<T>(work: impl Future<Output = ApiResult<T>>) -> ApiResult<T> {
        match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
            Ok(out) => out,
            Err(_) => Err(ApiError::store(&"the database did not answer in time")),
        }
    }

    /// True when the database answers a trivial query now.
    pub async fn healthy(&self) -> bool {
        Pg::timed(async {
            self.client().await?.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
        .is_ok()
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> ApiError {
        ApiError::store(&e)
    }
}

/// Applies the migrations not yet applied, on a connection of its own that holds the
/// advisory lock for the whole run (closing it releases the lock, whatever happened).
async fn migrate(config: &tokio_postgres::Config) -> Result<(), PgError> {
    let db = |e: tokio_postgres::Error| PgError::Db(e.to_string());
    let (mut client, connection) = config.connect(NoTls).await.map_err(db)?;
    let driver = tokio::spawn(connection);
    let out = async {
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .await?;
        for (version, sql) in MIGRATIONS {
            let tx = client.transaction().await?;
            let done: bool = tx
                .query_one("SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = $1)", &[version])
                .await?
                .get(0);
            if !done {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[version, &crate::unix_now()],
                )
                .await?;
            }
            tx.commit().await?;
        }
        client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
        Ok::<(), tokio_postgres::Error>(())
    }
    .await;
    drop(client);
    driver.abort();
    out.map_err(db)
}

/// Reads a value from the `meta` table.
pub async fn meta_get(c: &impl deadpool_postgres::GenericClient, key: &str) -> ApiResult<Option<String>> {
    let row = c.query_opt("SELECT value FROM meta WHERE key = $1", &[&key]).await?;
    Ok(row.map(|r| r.get(0)))
}

/// Writes a value to the `meta` table.
pub async fn meta_set(c: &impl deadpool_postgres::GenericClient, key: &str, value: &str) -> ApiResult<()> {
    c.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )
    .await?;
    Ok(())
}
