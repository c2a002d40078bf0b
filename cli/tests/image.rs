//! The Dockerfile's run steps, outside a container.
//!
//! No container engine can pull the base images here, so this test runs what the
//! image runs: its `CMD` (the service, with `/data` a temporary directory and a free
//! port) through the binary under test, then its `HEALTHCHECK` command against it,
//! and checks the build stage uses the documented `cargo build --locked --release`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The JSON-array arguments of the Dockerfile line starting with `instruction`.
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        // At the start of a line: the HEALTHCHECK's own `CMD` is indented.
        .find(|l| l.starts_with(instruction))
        .unwrap_or_else(|| panic!("no `{instruction}` in the Dockerfile"));
    let array = &line[line.find('[').unwrap()..];
    serde_json::from_str(array).unwrap()
}

#[test]
fn the_image_command_serves_and_its_health_check_passes() {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile")).unwrap();
    assert!(dockerfile.contains("cargo build --locked --release -p budgit"), "the build step changed");
    assert_eq!(exec_form(&dockerfile, "ENTRYPOINT"), ["budgit"]);
    let data = tempfile::tempdir().unwrap();
    let port = common::serve::free_port();
    let rewrite = |arg: &String| {
        arg.replace("/data", &data.path().display().to_string())
            .replace("0.0.0.0:8080", &format!("127.0.0.1:{port}"))
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
    };
    let cmd: Vec<String> = exec_form(&dockerfile, "CMD [").iter().map(rewrite).collect();
    assert_eq!(cmd[0], "serve");
    let mut serve = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .args(&cmd)
        .env_clear()
        .env("BUDGIT_ADMIN_TOKEN", "image-test-admin-0123456789abcdef0123")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The HEALTHCHECK's command: `CMD ["budgit", "health", ...]` after the options.
    let health_line = dockerfile.lines().skip_while(|l| !l.starts_with("HEALTHCHECK")).nth(1).unwrap();
    let health: Vec<String> = serde_json::from_str::<Vec<String>>(&health_line.trim()["CMD ".len()..])
        .unwrap()
        .iter()
        .map(rewrite)
        .collect();
    assert_eq!(health[..2], ["budgit", "health"]);
    // Unhealthy until the service listens, healthy once it does (as the start period allows).
    let started = Instant::now();
    let healthy = loop {
        let out = Command::new(env!("CARGO_BIN_EXE_budgit")).args(&health[1..]).env_clear().output().unwrap();
        if out.status.success() {
            break true;
        }
        if started.elapsed() > Duration::from_secs(60) {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = serve.kill();
    let _ = serve.wait();
    assert!(healthy, "the health check never passed");
    assert!(data.path().join("budgit.db").is_file(), "the database is not in the data volume");
}
