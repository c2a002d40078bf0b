//! The `--help` examples of the commands that run or talk to a service — `serve`,
//! `users`, `reconcile`, `health` — run as written against real `budgit serve`
//! processes, from a copy of the repository's `policies/` and `examples/`.
//!
//! Two liberties, both about the machine rather than the command: the fixed ports of
//! the examples (8080, 9464, the `budgit` host of a compose file) become free ports
//! on 127.0.0.1, so parallel runs never collide; and `...`, `$URL` and `$OLD` are
//! filled in the way a reader would (a token, the service's URL, the admin token).
//! Only the port is ever added: `--listen` to `serve` examples and `--url` to `health`
//! examples that use the default address, 127.0.0.1:8080.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::examples::{Example, checkout, example_lines, parse};
use crate::{budgit_with_env, repo_root};

/// The admin token the examples' `...` stands for (long enough for the service).
const TOKEN: &str = "examples-admin-token-0123456789abcdef";

/// The example demo of 100,000 people takes one to two minutes to start in a debug
/// build on two cores, five on a machine busy with other builds; slower is a hang.
const START: Duration = Duration::from_secs(600);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The line with the examples' fixed addresses moved to the test's free ports.
fn localize(line: &str, port: u16, metrics: u16) -> String {
    line.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace("http://budgit:8080", &format!("http://127.0.0.1:{port}"))
        .replace("0.0.0.0:9464", &format!("127.0.0.1:{metrics}"))
        .replace("$URL", &format!("http://127.0.0.1:{port}"))
}

/// Whether a help line is a command (rather than the wrapped description of the line
/// above it).
fn is_command(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or("");
    first == "budgit" || first == "curl" || first.contains('=')
}

/// The example's environment with `...` filled in, plus what the test always sets.
fn environment(example: &Example) -> Vec<(String, String)> {
    let mut env =
        vec![("NO_COLOR".to_owned(), "1".to_owned()), ("BUDGIT_TOKEN".to_owned(), TOKEN.to_owned())];
    for (name, value) in &example.env {
        let value = if value == "..." { TOKEN.to_owned() } else { value.clone() };
        env.push((name.clone(), value));
    }
    env
}

/// A running `budgit` process, killed when dropped.
struct Running {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(cwd: &Path, args: &[String], env: &[(String, String)]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pipe = child.stderr.take().unwrap();
    let (tx, stderr) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Running { child, stderr }
}

/// Waits for the service's "listening" line (a demo's "ready" line); the stderr seen
/// so far on failure.
fn wait_listening(running: &mut Running) -> Result<(), String> {
    let deadline = Instant::now() + START;
    let mut seen = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match running.stderr.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(line) => {
                let listening = line.contains("listening on http://") || line.starts_with("demo: ready in");
                seen.push_str(&line);
                seen.push('\n');
                if listening {
                    return Ok(());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {
                if let Ok(Some(status)) = running.child.try_wait() {
                    return Err(format!("exited with {status} before listening:\n{seen}"));
                }
            }
            Err(_) => return Err(format!("not listening within {START:?}:\n{seen}")),
        }
    }
}

/// A plain HTTP/1.1 GET; the status and body.
fn get(port: u16, path: &str, bearer: Option<&str>) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// The examples of `command --help`, each with its environment and arguments, moved to
/// the given ports.
fn examples_of(command: &str, port: u16, metrics: u16) -> Vec<(String, Example)> {
    let empty = tempfile::tempdir().unwrap();
    let help = budgit_with_env(empty.path(), &[command, "--help"], &[("NO_COLOR", "1")]).stdout;
    example_lines(&help)
        .into_iter()
        .filter(|line| is_command(line))
        .map(|line| {
            let local = localize(&line, port, metrics);
            (line, parse_or_curl(&local))
        })
        .collect()
}

/// `curl` lines are kept whole in `line` with no arguments; the rest parse as usual.
fn parse_or_curl(line: &str) -> Example {
    if line.starts_with("curl ") {
        Example { line: line.to_owned(), ..Example::default() }
    } else {
        parse(line)
    }
}

#[test]
fn every_serve_example_starts_a_service_that_answers() {
    let mut ran = 0;
    let mut failed = Vec::new();
    // An example's PostgreSQL store runs on a real database of the test's own.
    let mut postgres = None;
    for (written, example) in examples_of("serve", 0, 0) {
        if example.args.is_empty() {
            continue; // the token rotation runs against the service of the next test
        }
        let repo = checkout();
        let port = free_port();
        let mut args: Vec<String> =
            localize(&example.args.join("\u{1f}"), port, 0).split('\u{1f}').map(str::to_owned).collect();
        if let Some(store) = args.iter_mut().find(|a| a.starts_with("postgres://")) {
            let (url, _) = postgres.get_or_insert_with(|| crate::pg::database("t_serve_example"));
            store.clone_from(url);
        }
        if let Some(i) = args.iter().position(|a| a == "--listen") {
            args[i + 1] = format!("127.0.0.1:{port}");
        } else {
            args.extend(["--listen".to_owned(), format!("127.0.0.1:{port}")]);
        }
        let env = environment(&example);
        let mut running = spawn(repo.path(), &args, &env);
        ran += 1;
        if let Err(why) = wait_listening(&mut running) {
            failed.push(format!("`{written}`: {why}"));
            continue;
        }
        let health = budgit_with_env(
            repo.path(),
            &["health", "--url", &format!("http://127.0.0.1:{port}")],
            &[("NO_COLOR", "1")],
        );
        if health.code != 0 {
            failed.push(format!("`{written}`: health check failed:\n{}", health.snapshot()));
        }
        // A metrics token in the example's environment guards /metrics: without it the
        // answer is 401, with it the metrics.
        if let Some((_, token)) = env.iter().find(|(k, _)| k == "BUDGIT_METRICS_TOKEN") {
            let (without, _) = get(port, "/metrics", None);
            let (with, body) = get(port, "/metrics", Some(token));
            if without != 401 || with != 200 || !body.contains("budgit_") {
                failed.push(format!(
                    "`{written}`: /metrics answered {without} without and {with} with the token"
                ));
            }
        }
    }
    assert!(ran >= 6, "only {ran} serve examples found");
    assert!(failed.is_empty(), "{} of {ran} serve examples fail:\n\n{}", failed.len(), failed.join("\n\n"));
}

#[test]
fn every_client_example_runs_against_a_real_service() {
    let repo = checkout();
    let port = free_port();
    let metrics = free_port();
    let db = repo.path().join("service.db");
    let args: Vec<String> =
        ["serve", "--listen", &format!("127.0.0.1:{port}"), "--policies", "policies", "--db"]
            .iter()
            .map(|s| (*s).to_owned())
            .chain([db.to_string_lossy().into_owned()])
            .collect();
    let env = [("NO_COLOR".to_owned(), "1".to_owned()), ("BUDGIT_ADMIN_TOKEN".to_owned(), TOKEN.to_owned())];
    let mut service = spawn(repo.path(), &args, &env);
    wait_listening(&mut service).unwrap();

    let mut ran = 0;
    let mut failed = Vec::new();
    // People first, then the reconciler (its first run applies every limit), then the
    // health checks; the token rotation last, since it changes the admin token.
    let mut rotations = Vec::new();
    for command in ["users", "reconcile", "health", "serve"] {
        for (written, example) in examples_of(command, port, metrics) {
            if example.args.is_empty() {
                rotations.push(written);
                continue;
            }
            if command == "serve" {
                continue; // the service examples of the test above
            }
            let outcome = if example.args.iter().any(|a| a == "--every") {
                run_every(repo.path(), &example, metrics)
            } else {
                let url = format!("http://127.0.0.1:{port}");
                let mut args: Vec<&str> = example.args.iter().map(String::as_str).collect();
                if command == "health" && !args.contains(&"--url") {
                    args.extend(["--url", &url]);
                }
                let env = environment(&example);
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let run = budgit_with_env(repo.path(), &args, &env);
                if run.code == 0 { Ok(()) } else { Err(run.snapshot()) }
            };
            ran += 1;
            if let Err(why) = outcome {
                failed.push(format!("`{written}` ({command} --help):\n{why}"));
            }
        }
    }
    // The examples did what they say: every person of the directory is in the service
    // and holds the limit the reconciler applied.
    let (status, body) = get(port, "/v1/limits?limit=1", Some(TOKEN));
    assert_eq!(status, 200, "{body}");
    let limits: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(limits["data"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(limits["has_more"], true, "{body}");
    for written in &rotations {
        let local = localize(written, port, metrics);
        ran += 1;
        if let Err(why) = run_curl(repo.path(), &local) {
            failed.push(format!("`{written}` (serve --help):\n{why}"));
        }
    }
    assert!(!rotations.is_empty(), "the token rotation example is gone");
    assert!(ran >= 8, "only {ran} client examples found");
    assert!(failed.is_empty(), "{} of {ran} client examples fail:\n\n{}", failed.len(), failed.join("\n\n"));
    // The rotation retired the old token.
    assert_eq!(get(port, "/v1/limits?limit=1", Some(TOKEN)).0, 401);
}

/// `reconcile --every`: a run completes (seen in its metrics) while it keeps running.
fn run_every(cwd: &Path, example: &Example, metrics: u16) -> Result<(), String> {
    let mut running = spawn(cwd, &example.args, &environment(example));
    let deadline = Instant::now() + START;
    loop {
        if let Ok(Some(status)) = running.child.try_wait() {
            let stderr: Vec<String> = running.stderr.try_iter().collect();
            return Err(format!("exited with {status}:\n{}", stderr.join("\n")));
        }
        if TcpStream::connect(("127.0.0.1", metrics)).is_ok() {
            let (status, body) = get(metrics, "/metrics", None);
            let done =
                body.lines().any(|l| l.starts_with("budgit_reconcile_runs_total{") && !l.ends_with(" 0"));
            if status == 200 && done {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no completed run in its metrics within {START:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The token rotation, with curl as the reader would run it; the new token is printed.
fn run_curl(cwd: &Path, line: &str) -> Result<(), String> {
    let command = line.split("  ").next().unwrap_or(line);
    let out = Command::new("sh")
        .args(["-c", command])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OLD", TOKEN)
        .output()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("\"token\"") && !stdout.contains(TOKEN) {
        Ok(())
    } else {
        Err(format!("exit {:?}\n{stdout}{}", out.status.code(), String::from_utf8_lossy(&out.stderr)))
    }
}

#[test]
fn the_examples_name_files_that_exist() {
    // `--directory people.csv` and the like: a file an example reads is in the repository.
    for command in ["users", "reconcile"] {
        for (written, example) in examples_of(command, 0, 0) {
            for arg in example.args.iter().filter(|a| a.ends_with(".csv") || a.ends_with(".jsonl")) {
                assert!(
                    repo_root().join(arg).is_file(),
                    "`{written}` reads `{arg}`, which is not in the repository"
                );
            }
        }
    }
}
