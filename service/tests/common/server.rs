//! Starts the console in-process on `127.0.0.1:0` for the service tests: a temp dir holds
//! the database, the server runs on its own runtime and lives as long as the [`Server`].
//! The requests themselves go through [`super::http`].

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

/// The admin token every test server accepts.
pub const ADMIN: &str = "test-admin-token-5d1e-0123456789abcdef";

/// A running server; dropping it stops the runtime and removes the temp dir.
pub struct Server {
    pub addr: SocketAddr,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// The config of a test server whose database lives in `dir`: the admin token, a free port,
/// no policies and no policy repository.
pub fn config(dir: &Path) -> budgit_service::Config {
    budgit_service::Config {
        db: dir.join("budgit.db"),
        listen: "127.0.0.1:0".into(),
        policies: None,
        admin_token: Some(ADMIN.into()),
        repo: None,
        approved_ref: None,
        sessions: budgit_service::sessions::SessionOptions::default(),
        http: budgit_service::conn::HttpOptions::default(),
        metrics_token: None,
        pull: None,
        json_logs: false,
        postgres: None,
    }
}

/// Starts a server with an empty database, no policies and no policy repository.
pub fn start() -> Server {
    start_configured(|_, _| ()).0
}

/// Starts a server after `configure` has seen the temp dir (to write policies or a
/// repository into it) and adjusted the config; returns what `configure` returned too.
pub fn start_configured<T>(configure: impl FnOnce(&Path, &mut budgit_service::Config) -> T) -> (Server, T) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let extra = configure(dir.path(), &mut config);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let running = rt.block_on(budgit_service::start(config)).unwrap();
    (Server { addr: running.addr, _rt: rt, _dir: dir }, extra)
}
