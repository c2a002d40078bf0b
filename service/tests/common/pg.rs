//! PostgreSQL for the tests of the PostgreSQL store: a fresh database on the server
//! `BUDGIT_TEST_PG` names (`.ci/run` starts one and sets it), or on a throwaway cluster
//! the test starts itself with `.ci/pg-cluster` (Debian's `postgresql` package). A
//! missing server is a test failure, never a skipped test.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// The cluster script, at the repository root.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/pg-cluster")
}

/// A throwaway cluster of this test's own; stopped and removed when dropped.
pub struct Cluster {
    /// The server's URL (database `postgres`).
    pub url: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// initdb and start a cluster on a free port.
    pub fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        // the server runs as the `postgres` user when the tests run as root: it must reach the dir
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = Command::new(script()).arg("start").arg(dir.path().join("pg")).output().unwrap();
        assert!(
            out.status.success(),
            "cannot start a PostgreSQL cluster (install Debian's `postgresql`, or set BUDGIT_TEST_PG): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout).unwrap().trim().to_string();
        Cluster { url, dir }
    }

    fn run(&self, what: &str) {
        let out = Command::new(script()).arg(what).arg(self.dir.path().join("pg")).output().unwrap();
        assert!(out.status.success(), "pg-cluster {what}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the server (a database outage); the data stays.
    pub fn halt(&self) {
        self.run("halt");
    }

    /// Starts the halted server again on the same port.
    pub fn resume(&self) {
        self.run("resume");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(self.dir.path().join("pg")).output();
    }
}

/// A database of this test's own: its URL, and the cluster when the test started one.
pub struct Database {
    pub url: String,
    _cluster: Option<Cluster>,
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// Runs SQL on `url` (a blocking helper for the tests' own checks).
pub fn execute(url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = driver.await;
    });
}

/// The rows `sql` answers, every column read as text (`::TEXT` in the query).
pub fn query(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(conn);
        let rows = client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let out =
            rows.iter().map(|r| (0..r.len()).map(|i| r.get::<_, Option<String>>(i)).collect()).collect();
        drop(client);
        let _ = driver.await;
        out
    })
}

/// A fresh, empty database.
pub fn database() -> Database {
    let (server, cluster) = match std::env::var("BUDGIT_TEST_PG") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let c = Cluster::start();
            (c.url.clone(), Some(c))
        }
    };
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    let name = format!("t_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    execute(&server, &format!("CREATE DATABASE {name}"));
    Database { url: with_database(&server, &name), _cluster: cluster }
}
