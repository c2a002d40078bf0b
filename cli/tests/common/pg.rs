//! A PostgreSQL database for the tests that start `budgit serve --store postgres://…`:
//! on the server `BUDGIT_TEST_PG` names (`.ci/run` starts one), or on a throwaway
//! cluster started here with `.ci/pg-cluster` (Debian's `postgresql` package). A
//! missing server fails the test and says what to install: it never passes without one.

use std::path::PathBuf;
use std::process::Command;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/pg-cluster")
}

/// A cluster a test started (stopped and removed when dropped).
pub struct Cluster(tempfile::TempDir);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(self.0.path().join("pg")).output();
    }
}

/// Runs one statement with `psql` and returns its unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        .output()
        .unwrap();
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A fresh, empty database named `name` (plus this process's id), its URL, and the
/// cluster when this test started one.
pub fn database(name: &str) -> (String, Option<Cluster>) {
    let (server, cluster) = match std::env::var("BUDGIT_TEST_PG") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            let dir = tempfile::tempdir().unwrap();
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
            (String::from_utf8(out.stdout).unwrap().trim().to_string(), Some(Cluster(dir)))
        }
    };
    let name = format!("{name}_{}", std::process::id());
    psql(&server, &format!("DROP DATABASE IF EXISTS {name}"));
    psql(&server, &format!("CREATE DATABASE {name}"));
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    (format!("{base}/{name}"), cluster)
}
