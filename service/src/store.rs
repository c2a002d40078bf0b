//! The SQLite store: schema migrations, one writer thread with group commit, and readers.
//!
//! Every write goes through [`Store::write`]: the job runs on the single writer
//! thread inside a transaction shared with the other jobs waiting at that moment
//! (group commit), each job under its own savepoint when it has company, so one
//! failing job never takes the others down. The reply is sent only after the
//! transaction is durably committed (WAL, `synchronous=FULL`), so an acknowledged
//! write survives `kill -9`. Reads run on a small pool of connections inside `spawn_blocking`:
//! no SQLite call ever blocks an async worker.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::{Connection, OpenFlags, Transaction};
use tokio::sync::oneshot;

use crate::error::{ApiError, ApiResult};

/// The schema, one entry per version; a database records the versions it has applied.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE users (email TEXT PRIMARY KEY, attrs TEXT NOT NULL, updated_at INTEGER NOT NULL);
     CREATE TABLE tokens (hash BLOB PRIMARY KEY, email TEXT NOT NULL, created_at INTEGER NOT NULL);
     CREATE INDEX tokens_email ON tokens(email);
     CREATE TABLE limits (email TEXT PRIMARY KEY, value TEXT NOT NULL, grp TEXT, source TEXT,
         commit_id TEXT, plan_digest TEXT, updated_at INTEGER NOT NULL);
     CREATE TABLE pools (grp TEXT PRIMARY KEY, micros INTEGER NOT NULL, commit_id TEXT,
         plan_digest TEXT, updated_at INTEGER NOT NULL);
     CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL,
         action TEXT NOT NULL, subject TEXT NOT NULL, old TEXT, new TEXT, commit_id TEXT, plan_digest TEXT);
     CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, ts INTEGER NOT NULL,
         email TEXT NOT NULL, product TEXT NOT NULL, model TEXT NOT NULL, micros INTEGER NOT NULL,
         project TEXT NOT NULL DEFAULT '', context TEXT);
     CREATE INDEX events_ts ON events(ts);
     CREATE INDEX events_email ON events(email, seq);
     CREATE TABLE daily (day INTEGER NOT NULL, email TEXT NOT NULL, product TEXT NOT NULL, model TEXT NOT NULL,
         project TEXT NOT NULL, micros INTEGER NOT NULL, events INTEGER NOT NULL,
         PRIMARY KEY (day, email, product, model, project)) WITHOUT ROWID;
     CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL, micros INTEGER NOT NULL,
         days INTEGER NOT NULL, reason TEXT NOT NULL, context TEXT, status TEXT NOT NULL,
         created_at INTEGER NOT NULL, created_by TEXT NOT NULL, decided_at INTEGER, decided_by TEXT,
         decision_reason TEXT, proposal TEXT);
     CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL);
     CREATE TABLE reservations (id TEXT PRIMARY KEY, email TEXT NOT NULL, product TEXT NOT NULL,
         model TEXT NOT NULL, micros INTEGER NOT NULL, grp TEXT, expires_at INTEGER NOT NULL);
     CREATE TABLE alerts (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, email TEXT NOT NULL,
         kind TEXT NOT NULL, message TEXT NOT NULL);",
    ),
    // console: proposals committed to the policy repository, and the reconciler's run reports
    (
        2,
        "CREATE TABLE proposals (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, subject TEXT NOT NULL,
             request_id INTEGER, branch TEXT NOT NULL, base_ref TEXT NOT NULL, base_commit TEXT NOT NULL,
             commit_id TEXT NOT NULL, file TEXT NOT NULL, title TEXT NOT NULL, reason TEXT NOT NULL,
             changes TEXT NOT NULL, plan_markdown TEXT NOT NULL, plan_summary TEXT NOT NULL,
             plan_digest TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
         CREATE TABLE reconciler_runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
             ok INTEGER NOT NULL, commit_id TEXT, applied INTEGER NOT NULL, unchanged INTEGER NOT NULL,
             drift INTEGER NOT NULL, failures TEXT NOT NULL, duration_ms INTEGER NOT NULL, report TEXT NOT NULL,
             received_at INTEGER NOT NULL);",
    ),
    // a user's limit history (`GET /v1/me`) reads the audit rows of one subject, newest first
    (3, "CREATE INDEX audit_subject ON audit(subject, seq);"),
    // an event's idempotency key is checked against a digest of its payload: a key
    // reused for another payload is refused. Rows written before keep NULL and are
    // compared by their fields instead.
    (4, "ALTER TABLE events ADD COLUMN digest BLOB;"),
    // console sessions (the cookie holds a random id; only its SHA-256 is stored; `email` is
    // NULL for the admin) and the admin tokens rotated out, refused if configured again
    (
        5,
        "CREATE TABLE sessions (hash BLOB PRIMARY KEY, email TEXT, created_at INTEGER NOT NULL,
             last_seen INTEGER NOT NULL);
         CREATE INDEX sessions_email ON sessions(email);
         CREATE TABLE admin_tokens_retired (hash BLOB PRIMARY KEY, retired_at INTEGER NOT NULL);",
    ),
    // a credit request names what it is for (the total when both are NULL, else one product or
    // model whose cap is raised too), and records its way to done: `lifecycle` is a JSON object
    // with one entry per step reached (proposed, merged, applied, done, declined). The index
    // serves the check that moves open requests along.
    (
        6,
        "ALTER TABLE requests ADD COLUMN product TEXT;
         ALTER TABLE requests ADD COLUMN model TEXT;
         ALTER TABLE requests ADD COLUMN lifecycle TEXT;
         CREATE INDEX requests_status ON requests(status, id);",
    ),
    // outcomes (merged pull requests, resolved tickets) uploaded by an admin, one row per
    // outcome id; read by time for the value view
    (
        7,
        "CREATE TABLE outcomes (id TEXT PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, repo TEXT,
             email TEXT, team TEXT, uploaded_at INTEGER NOT NULL);
         CREATE INDEX outcomes_ts ON outcomes(ts);",
    ),
];

/// The last 100 audit rows of one user's limit, newest first (`GET /v1/me`): served by
/// the `audit_subject` index, never a scan of the whole audit log.
pub(crate) const LIMIT_HISTORY_SQL: &str = "SELECT at, action, old, new, commit_id FROM audit
     WHERE subject = ?1 AND action IN ('limit.set', 'limit.remove') ORDER BY seq DESC LIMIT 100";

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused.
    #[error("cannot open the database `{path}`: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The writer thread could not start.
    #[error("cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

/// What a write job leaves to do after its transaction commits (on the writer thread).
pub type After = Box<dyn FnOnce(bool) + Send>;

/// One unit of work for the writer thread.
trait Job: Send {
    /// Runs inside the shared transaction; false when the job failed (its savepoint is rolled back).
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Called once the transaction committed (`true`) or failed (`false`).
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct WriteJob<T, F> {
    f: Option<F>,
    out: Option<ApiResult<(T, Option<After>)>>,
    reply: oneshot::Sender<ApiResult<T>>,
}

impl<T, F> Job for WriteJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Transaction<'_>) -> ApiResult<(T, Option<After>)> + Send + 'static,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(f) = self.f.take() else { return false };
        let out = f(tx);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let result = match (self.out, committed) {
            (Some(Ok((value, after))), Ok(())) => {
                if let Some(after) = after {
                    after(true);
                }
                Ok(value)
            }
            (Some(Ok((_, after))), Err(e)) => {
                if let Some(after) = after {
                    after(false);
                }
                Err(ApiError::store(&e))
            }
            (Some(Err(e)), _) => Err(e),
            (None, _) => Err(ApiError::store(&"write job did not run")),
        };
        // the client may have gone away; the write stands either way
        let _ = self.reply.send(result);
    }
}

/// The store: a writer channel and a pool of read connections.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Box<dyn Job>>,
    readers: Arc<Readers>,
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Jobs committed together at most, so one commit never waits on an unbounded queue.
const GROUP_COMMIT_MAX: usize = 256;

impl Store {
    /// Opens (creating if needed) and migrates the database, and starts the writer thread.
    ///
    /// `init` runs in a transaction after the migrations, before any other write.
    pub fn open(
        path: &Path,
        init: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open { path: path.to_path_buf(), source };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn).map_err(open_err)?;
        migrate(&mut conn).map_err(open_err)?;
        let tx = conn.transaction().map_err(open_err)?;
        init(&tx).map_err(open_err)?;
        tx.commit().map_err(open_err)?;
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("budgit-store-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(StoreError::Thread)?;
        Ok(Store {
            writer: tx,
            readers: Arc::new(Readers { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) }),
        })
    }

    /// Runs `f` on the writer thread in a transaction; answers once it is durably committed.
    ///
    /// `f` may return an [`After`] closure, run on the writer thread after the
    /// commit (with `true`) or after a failed commit (with `false`) and before the
    /// reply: in-memory state that mirrors the database is updated there, in
    /// commit order.
    pub async fn write<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> ApiResult<(T, Option<After>)> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Box::new(WriteJob { f: Some(f), out: None, reply });
        self.writer.send(job).map_err(|_| ApiError::store(&"the writer thread stopped"))?;
        rx.await.map_err(|_| ApiError::store(&"the writer thread dropped a job"))?
    }

    /// Queues a write without waiting for it (state whose loss on a crash is harmless).
    pub fn write_detached<F>(&self, f: F)
    where
        F: FnOnce(&Transaction<'_>) -> ApiResult<()> + Send + 'static,
    {
        let (reply, _rx) = oneshot::channel();
        let job = Box::new(WriteJob {
            f: Some(move |tx: &Transaction<'_>| f(tx).map(|()| ((), None))),
            out: None,
            reply,
        });
        if self.writer.send(job).is_err() {
            tracing::error!("store error: the writer thread stopped");
        }
    }

    /// Waits until every write queued before it is committed (detached ones
    /// included): the writer takes jobs in order, so an empty job's answer means
    /// everything ahead of it is on disk.
    pub async fn flush(&self) -> ApiResult<()> {
        self.write(|_| Ok(((), None))).await
    }

    /// Runs a read on a pooled connection, off the async workers.
    pub async fn read<T, F>(&self, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f)).await.map_err(|e| ApiError::store(&e))?
    }

    /// Runs a read on the calling thread (startup, before the server runs).
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> ApiResult<T>) -> ApiResult<T> {
        self.readers.with(f)
    }
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> ApiResult<T>) -> ApiResult<T> {
        let pooled = self.idle.lock().map_err(|_| ApiError::store(&"reader pool poisoned"))?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(std::time::Duration::from_secs(5))?;
                c
            }
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 8
        {
            idle.push(conn);
        }
        out
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL lets readers run beside the writer; FULL syncs the WAL at every commit,
    // which is what makes an acknowledged write survive a crash
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // SQLite's default page cache is 2 MiB: a commit's insert into the event-id index
    // (random keys) then misses it and reads the page back from the file on most writes;
    // 64 MiB keeps the hot index pages of a large database in memory (negative = KiB)
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction()?;
        let done: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !done {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                (version, crate::unix_now()),
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_MAX {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = run_batch(&mut conn, &mut batch);
        for job in batch {
            job.finish(committed.clone());
        }
    }
}

fn run_batch(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> Result<(), String> {
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    if let [job] = batch {
        // alone in its transaction, a job needs no savepoint (each one journals every
        // page it changes a second time): a failure rolls the whole transaction back
        if job.run(&tx) {
            return tx.commit().map_err(|e| e.to_string());
        }
        return tx.rollback().map_err(|e| e.to_string());
    }
    let step = |sql: &str| tx.prepare_cached(sql).and_then(|mut s| s.execute([])).map_err(|e| e.to_string());
    for job in batch.iter_mut() {
        step("SAVEPOINT job")?;
        if !job.run(&tx) {
            step("ROLLBACK TO job")?;
        }
        step("RELEASE job")?;
    }
    tx.commit().map_err(|e| e.to_string())
}

/// Reads a value from the `meta` table.
pub fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()
}

/// Writes a value to the `meta` table.
pub fn meta_set(tx: &Transaction<'_>, key: &str, value: &str) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn migrated() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn
    }

    /// A queued job and where its answer arrives.
    type Queued = (Box<dyn Job>, oneshot::Receiver<ApiResult<()>>);

    /// A job that writes `key` to the meta table, then fails when asked to.
    fn job(key: &'static str, fail: bool) -> Queued {
        let (reply, rx) = oneshot::channel();
        let f = move |tx: &Transaction<'_>| {
            meta_set(tx, key, "written")?;
            if fail {
                return Err(ApiError::store(&"refused"));
            }
            Ok(((), None))
        };
        (Box::new(WriteJob { f: Some(f), out: None, reply }), rx)
    }

    fn run(conn: &mut Connection, jobs: Vec<Queued>) -> Vec<bool> {
        let (mut batch, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let committed = run_batch(conn, &mut batch);
        for job in batch {
            job.finish(committed.clone());
        }
        replies.into_iter().map(|mut rx| rx.try_recv().unwrap().is_ok()).collect()
    }

    #[test]
    fn a_failing_job_loses_only_its_own_writes() {
        let mut conn = migrated();
        // alone in its transaction: rolled back, and the error reaches its caller
        assert_eq!(run(&mut conn, vec![job("alone", true)]), [false]);
        assert_eq!(meta_get(&conn, "alone").unwrap(), None);
        assert_eq!(run(&mut conn, vec![job("single", false)]), [true]);
        assert_eq!(meta_get(&conn, "single").unwrap().as_deref(), Some("written"));
        // sharing a transaction: the jobs before and after it are committed
        let answers = run(&mut conn, vec![job("before", false), job("failing", true), job("after", false)]);
        assert_eq!(answers, [true, false, true]);
        assert_eq!(meta_get(&conn, "before").unwrap().as_deref(), Some("written"));
        assert_eq!(meta_get(&conn, "failing").unwrap(), None);
        assert_eq!(meta_get(&conn, "after").unwrap().as_deref(), Some("written"));
    }

    /// The plan's detail lines (`SEARCH audit USING INDEX …`).
    fn plan(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(["a@x.com"], |r| r.get::<_, String>(3)).unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn a_users_limit_history_is_read_through_the_subject_index() {
        let conn = migrated();
        let detail = plan(&conn, LIMIT_HISTORY_SQL);
        assert!(detail.iter().any(|d| d.contains("USING INDEX audit_subject (subject=?)")), "{detail:?}");
        // neither a scan of the audit log nor a sort of its rows
        assert!(!detail.iter().any(|d| d.starts_with("SCAN") || d.contains("TEMP B-TREE")), "{detail:?}");
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, [1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn a_users_limit_history_is_theirs_newest_first_among_many_others() {
        let mut conn = migrated();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO audit (at, actor, action, subject, old, new, commit_id)
                     VALUES (?1, 'reconciler', ?2, ?3, ?4, ?5, ?6)",
                )
                .unwrap();
            // 20,000 rows of 2,000 other users, with the user's own rows in between:
            // limit changes every 1,000 rows, and rows of other kinds about the same subject
            for i in 0..20_000i64 {
                let other = format!("u{}@x.com", i % 2000);
                insert.execute((i, "limit.set", &other, None::<String>, "{}", format!("c{i}"))).unwrap();
                if i % 1000 == 0 {
                    let action = if i == 19_000 { "limit.remove" } else { "limit.set" };
                    insert.execute((i, action, "a@x.com", "{}", "{}", format!("mine{i}"))).unwrap();
                    insert.execute((i, "request.proposed", "a@x.com", "pending", "proposed", "x")).unwrap();
                }
            }
            // a subject that only starts like the user's is someone else
            insert.execute((1, "limit.set", "a@x.com.evil", "{}", "{}", "not-mine")).unwrap();
        }
        tx.commit().unwrap();
        let mut stmt = conn.prepare(LIMIT_HISTORY_SQL).unwrap();
        let rows: Vec<(i64, String, String)> = stmt
            .query_map(["a@x.com"], |r| Ok((r.get(0)?, r.get(1)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<(i64, String, String)> = (0..20)
            .rev()
            .map(|k| {
                let at = k * 1000;
                let action = if at == 19_000 { "limit.remove" } else { "limit.set" };
                (at, action.to_string(), format!("mine{at}"))
            })
            .collect();
        assert_eq!(rows, expected);
        drop(stmt);
        // a long history: the newest 100 rows
        let tx = conn.transaction().unwrap();
        for i in 0..150i64 {
            tx.execute(
                "INSERT INTO audit (at, actor, action, subject, new) VALUES (?1, 'r', 'limit.set', 'b@x.com', '{}')",
                [100_000 + i],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let mut stmt = conn.prepare(LIMIT_HISTORY_SQL).unwrap();
        let ats: Vec<i64> =
            stmt.query_map(["b@x.com"], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap();
        assert_eq!(ats, (100_050..100_150).rev().collect::<Vec<i64>>());
    }
}
