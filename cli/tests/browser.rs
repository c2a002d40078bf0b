//! The admin console in a real headless Chromium: starts `budgit serve --demo` as a
//! process (a temporary database and policy repository, a free port) and runs
//! `tests/browser/console.mjs` (with the checks of `teams.mjs`, `overrides.mjs`,
//! `runaway.mjs`, `value.mjs`, `time.mjs` and `polish.mjs`; Playwright driving Debian's
//! `chromium`) against it.
//!
//! Needs Node.js 20+ with npm and Chromium (`apt-get install nodejs npm chromium`;
//! `BUDGIT_CHROMIUM` names another binary). The test installs `playwright-core` with
//! `npm ci` into `tests/browser/node_modules` when it is missing or does not match
//! `package-lock.json`. Without node, npm or chromium it fails and says what to
//! install: it never passes without running the browser. `BUDGIT_SCREENSHOTS=1`
//! rewrites `docs/screenshots/*.png` (the value view: `console-value.png`).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions should fail loudly too"
)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the demo may take to seed its users and print its links.
const DEMO_START: Duration = Duration::from_secs(180);
/// How long the whole browser script may run.
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

const INSTALL: &str = "the browser tests need Node.js 20+ with npm and Debian's chromium: \
    `apt-get update && apt-get install -y nodejs npm chromium` (or set BUDGIT_CHROMIUM to a \
    Chromium binary); `bash .ci/run` installs them";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/browser")
}

/// Fails with what to install unless node (20 or later), npm and chromium are present.
fn require_tools() -> PathBuf {
    let out = Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): {INSTALL}"));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let major: u32 =
        version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    assert!(major >= 20, "node `{version}` is too old (playwright-core needs 20+): {INSTALL}");
    let npm = Command::new("npm").arg("--version").output();
    assert!(npm.is_ok_and(|o| o.status.success()), "cannot run `npm`: {INSTALL}");
    let chromium =
        std::env::var_os("BUDGIT_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(chromium.is_file(), "no chromium at `{}`: {INSTALL}", chromium.display());
    chromium
}

/// True when every package of `package-lock.json` is installed at its locked version.
fn node_modules_fresh(dir: &Path) -> bool {
    let Ok(lock) = std::fs::read_to_string(dir.join("package-lock.json")) else {
        return false;
    };
    let lock: Value = serde_json::from_str(&lock).expect("tests/browser/package-lock.json is not JSON");
    let packages = lock["packages"].as_object().expect("package-lock.json has no `packages`");
    packages.iter().filter(|(path, _)| path.starts_with("node_modules/")).all(|(path, entry)| {
        let installed = std::fs::read_to_string(dir.join(path).join("package.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok());
        installed.is_some_and(|p| p["version"] == entry["version"])
    })
}

/// Installs the locked packages with `npm ci` unless they already are.
fn npm_ci(dir: &Path) {
    if node_modules_fresh(dir) {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `npm ci` ({e}): {INSTALL}"));
    assert!(
        out.status.success(),
        "`npm ci` in tests/browser failed (it needs the npm registry the first time):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(node_modules_fresh(dir), "`npm ci` left tests/browser/node_modules unlike package-lock.json");
}

/// The demo server process; killed when the test ends, however it ends.
struct Demo {
    child: Child,
    base: String,
    admin_token: String,
    user_token: String,
    repo: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the demo printed so far, parsed into its links and repository.
#[derive(Default)]
struct Printed {
    base: Option<String>,
    admin: Option<String>,
    user: Option<String>,
    repo: Option<PathBuf>,
    lines: Vec<String>,
}

impl Printed {
    fn read(&mut self, line: String) {
        let lower = line.to_lowercase();
        for word in line.split_whitespace() {
            let word =
                word.trim_matches(|c: char| matches!(c, '`' | '\'' | '"' | '(' | ')' | '<' | '>' | ','));
            if let Some((base, token)) = word.split_once("/console/login#token=") {
                let token = token.to_string();
                self.base.get_or_insert_with(|| base.to_string());
                // The contract prints the admin link first; a line that names its role decides.
                if lower.contains("admin") || (self.admin.is_none() && !lower.contains("user")) {
                    self.admin.get_or_insert(token);
                } else {
                    self.user.get_or_insert(token);
                }
            } else if lower.contains("repo") && word.starts_with('/') && self.repo.is_none() {
                let path = PathBuf::from(word.trim_end_matches(['.', ':', ';']));
                let is_repo = Command::new("git")
                    .arg("-C")
                    .arg(&path)
                    .args(["rev-parse", "--git-dir"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if is_repo {
                    self.repo = Some(path);
                }
            }
        }
        self.lines.push(line);
    }

    fn done(&self) -> bool {
        self.base.is_some() && self.admin.is_some() && self.user.is_some() && self.repo.is_some()
    }
}

/// Starts `budgit serve --demo` in `dir` and waits for its links and policy repository.
fn start_demo(dir: &Path) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .args(["serve", "--demo", "--users", "500", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.join("budgit.db"))
        .arg("--policies")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies"))
        .current_dir(dir)
        // the demo's repository and any other scratch files stay inside the test's directory
        .env("TMPDIR", dir)
        .env("NO_COLOR", "1")
        .env_remove("BUDGIT_ADMIN_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    for pipe in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut printed = Printed::default();
    let deadline = Instant::now() + DEMO_START;
    while !printed.done() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => printed.read(line),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                panic!(
                    "`budgit serve --demo` did not print an admin and a user login link \
                     (`/console/login#token=...`) and its policy repository (a line naming the \
                     repo's path) within {DEMO_START:?} ({status}); it printed:\n{}",
                    printed.lines.join("\n")
                );
            }
        }
    }
    // Keep draining the demo's output so a full pipe never stalls it.
    std::thread::spawn(move || for _ in rx {});
    Demo {
        child,
        base: printed.base.unwrap(),
        admin_token: printed.admin.unwrap(),
        user_token: printed.user.unwrap(),
        repo: printed.repo.unwrap(),
    }
}

/// Runs `node script` in tests/browser with the demo's address and tokens; its output on failure.
fn run_script(dir: &Path, chromium: &Path, demo: &Demo, script: &str) {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(dir)
        .env("BUDGIT_URL", &demo.base)
        .env("BUDGIT_ADMIN_TOKEN", &demo.admin_token)
        .env("BUDGIT_USER_TOKEN", &demo.user_token)
        .env("BUDGIT_REPO", &demo.repo)
        .env("BUDGIT_CHROMIUM", chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `node` ({e}): {INSTALL}"));
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + SCRIPT_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        // the checks passed; shown with --no-capture or nextest's --success-output
        Some(s) if s.success() => println!("{out}{err}"),
        Some(s) => panic!("`node {script}` failed ({s}):\n{out}\n{err}"),
        None => panic!("`node {script}` ran longer than {SCRIPT_LIMIT:?} and was stopped:\n{out}\n{err}"),
    }
}

#[test]
fn the_console_works_in_a_real_browser_against_the_demo() {
    let chromium = require_tools();
    let dir = browser_dir();
    npm_ci(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let demo = start_demo(tmp.path());
    run_script(&dir, &chromium, &demo, "console.mjs");
}
