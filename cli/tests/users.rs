//! `budgit users import` as a real process against a real `budgit serve` on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use common::http::send;
use common::serve::Serve;

const ADMIN: &str = "users-test-admin-7d1f04-0123456789abcdef";

/// A running service; its database and the test's files in a directory of its own.
struct Server {
    _serve: Serve,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let serve = common::serve::serve(&dir.path().join("budgit.db"), ADMIN);
    Server { addr: serve.addr, _serve: serve, dir }
}

/// Runs `budgit` in `cwd` with only the admin token and `NO_COLOR` in the environment.
fn budgit(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("BUDGIT_TOKEN", ADMIN)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn users(s: &Server) -> Vec<String> {
    let answer = send(s.addr, "GET", "/v1/users?limit=1000", Some(ADMIN), None);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_csv_in_slices_reports_progress_and_bad_rows_at_their_line_of_the_file() {
    let s = serve();
    let url = format!("http://{}", s.addr);
    let mut csv = String::from("email,department,shoe_size\n");
    for i in 0..24 {
        csv.push_str(&format!("user{i:02}@acme.com,Engineering,{i}\n"));
        if i == 14 {
            // Line 17 of the file, in the second slice of ten rows.
            csv.push_str("not-an-email,Sales,1\n");
        }
    }
    std::fs::write(s.dir.path().join("people.csv"), &csv).unwrap();
    let (code, stdout, stderr) =
        budgit(s.dir.path(), &["users", "import", "--workspace", &url, "people.csv", "--batch", "10"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    // The bad row is named at its line of the file, with the line itself, as `validate` does.
    assert!(stdout.contains("error[directory/bad-row]: `not-an-email` is not an email address"), "{stdout}");
    assert!(stdout.contains("--> people.csv:17:1"), "{stdout}");
    assert!(stdout.contains("17 | not-an-email,Sales,1"), "{stdout}");
    assert!(
        stdout.ends_with(
            "imported 24 users from `people.csv`: 24 created, 0 updated, 0 unchanged; 1 bad row\n"
        ),
        "{stdout}"
    );
    assert_eq!(
        stderr,
        "imported 10 of 25 rows (1/3)\nimported 20 of 25 rows (2/3)\nimported 25 of 25 rows (3/3)\n"
    );
    let imported = users(&s);
    assert_eq!(imported.len(), 24, "{imported:?}");
    assert!(imported.contains(&"user23@acme.com".to_string()));

    // Again, with one change: nothing is created twice, and a small file shows no progress.
    let jsonl = "{\"email\":\"user00@acme.com\",\"department\":\"Sales\"}\n{\"email\":\"user01@acme.com\",\"department\":\"Engineering\",\"shoe_size\":\"1\"}\n";
    std::fs::write(s.dir.path().join("people.jsonl"), jsonl).unwrap();
    let (code, stdout, stderr) =
        budgit(s.dir.path(), &["users", "import", "--workspace", &url, "people.jsonl"]);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert_eq!(stdout, "imported 2 users from `people.jsonl`: 0 created, 1 updated, 1 unchanged\n");
    assert_eq!(users(&s).len(), 24);
}

#[test]
fn findings_in_github_format_and_a_bad_file_or_workspace_is_an_error() {
    let s = serve();
    let url = format!("http://{}", s.addr);
    std::fs::write(s.dir.path().join("people.jsonl"), "{\"email\":\"a@acme.com\"}\n{not json\n").unwrap();
    let (code, stdout, stderr) =
        budgit(s.dir.path(), &["users", "import", "--workspace", &url, "people.jsonl", "--format", "github"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.starts_with("::error file=people.jsonl,line=2,"), "{stdout}");
    assert_eq!(stderr, "imported 1 user from `people.jsonl`: 1 created, 0 updated, 0 unchanged\n");

    let (code, _, stderr) = budgit(s.dir.path(), &["users", "import", "--workspace", &url, "missing.csv"]);
    assert_eq!(code, 2);
    assert!(stderr.starts_with("error: cannot read `missing.csv`"), "{stderr}");

    std::fs::write(s.dir.path().join("empty.csv"), "").unwrap();
    let (code, _, stderr) = budgit(s.dir.path(), &["users", "import", "--workspace", &url, "empty.csv"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("`empty.csv` is empty"), "{stderr}");

    // a JSON Lines file of blank lines holds nobody: nothing is sent, nothing changes
    std::fs::write(s.dir.path().join("empty.jsonl"), "\n\n").unwrap();
    let (code, stdout, stderr) =
        budgit(s.dir.path(), &["users", "import", "--workspace", &url, "empty.jsonl"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("imported 0 users"), "{stdout}{stderr}");

    // A CSV without an `email` column is refused by the service, with its reason.
    std::fs::write(s.dir.path().join("noemail.csv"), "name\nalice\n").unwrap();
    let (code, _, stderr) = budgit(s.dir.path(), &["users", "import", "--workspace", &url, "noemail.csv"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no `email` column"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .args(["users", "import", "--workspace", &url, "people.jsonl"])
        .current_dir(s.dir.path())
        .env_clear()
        .env("BUDGIT_TOKEN", "wrong")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("error: cannot import `people.jsonl` into the workspace"), "{stderr}");
    assert!(!stderr.contains("wrong"), "the token leaked: {stderr}");
}

#[test]
fn removing_people_takes_a_list_of_emails_and_refuses_anything_else() {
    let s = serve();
    let csv = "email,department\na@acme.com,Sales\nb@acme.com,Sales\n";
    assert_eq!(send(s.addr, "POST", "/v1/users/import?format=csv", Some(ADMIN), Some(csv)).status, 200);
    for (body, code) in [
        ("{}", "users/bad-remove"),
        // not JSON at all: the body reader every endpoint shares answers
        ("not json", "request/bad-json"),
        ("{\"users\": [1]}", "users/bad-remove"),
        ("{\"users\": [\"not an email\"]}", "request/bad-user"),
    ] {
        let answer = send(s.addr, "POST", "/v1/users/remove", Some(ADMIN), Some(body));
        assert_eq!((answer.status, answer.json()["error"]["code"].as_str().unwrap()), (400, code), "{body}");
    }
    assert_eq!(users(&s).len(), 2);
    let token = send(s.addr, "POST", "/v1/users/a@acme.com/tokens", Some(ADMIN), None).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(send(s.addr, "GET", "/v1/me", Some(&token), None).status, 200);
    // Any spelling of a person removes them: emails are compared in canonical form.
    let body = "{\"users\": [\" A@Acme.com\", \"gone@acme.com\"]}";
    assert_eq!(send(s.addr, "POST", "/v1/users/remove", Some(&token), Some(body)).status, 403);
    let answer = send(s.addr, "POST", "/v1/users/remove", Some(ADMIN), Some(body));
    assert_eq!(
        (answer.status, answer.json()["removed"].clone()),
        (200, serde_json::json!(1)),
        "{}",
        answer.body
    );
    assert_eq!(users(&s), ["b@acme.com"]);
    // A person removed has no token left.
    assert_eq!(send(s.addr, "GET", "/v1/me", Some(&token), None).status, 401);
}

#[test]
fn health_probes_a_running_service_and_fails_on_anything_else() {
    let s = serve();
    let url = format!("http://{}", s.addr);
    let (code, stdout, stderr) = budgit(s.dir.path(), &["health", "--url", &url]);
    assert_eq!((code, stdout.as_str()), (0, format!("ok: `{url}` is up\n").as_str()), "{stderr}");
    // A port nothing listens on, and something that is not an http:// URL.
    let free = SocketAddr::from(([127, 0, 0, 1], common::serve::free_port()));
    let (code, _, stderr) =
        budgit(s.dir.path(), &["health", "--url", &format!("http://{free}"), "--timeout", "2s"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.starts_with(&format!("error: cannot connect to `http://{free}`")), "{stderr}");
    let (code, _, stderr) = budgit(s.dir.path(), &["health", "--url", "https://example.com/x"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not an `http://host:port` URL"), "{stderr}");
    // A server that answers, but not 200.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = conn.read(&mut buf);
        let _ = conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
    });
    let (code, _, stderr) = budgit(s.dir.path(), &["health", "--url", &format!("http://{addr}")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("answered `HTTP/1.1 503 Service Unavailable`"), "{stderr}");
}

#[test]
fn serve_demo_on_a_taken_port_fails_before_creating_anything() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .args(["serve", "--demo", "--users", "50", "--listen", &addr, "--db", "demo/budgit.db"])
        .current_dir(dir.path())
        .env_clear()
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("cannot listen on `{addr}`")), "{stderr}");
    // No data directory, repository or database was made.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "{stderr}");
}

#[test]
fn metrics_behind_a_token_answer_only_that_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = common::serve::command(&dir.path().join("budgit.db"));
    cmd.env("BUDGIT_ADMIN_TOKEN", ADMIN).env("BUDGIT_METRICS_TOKEN", "scrape-secret-91");
    let s = Serve::start(cmd);
    let open = send(s.addr, "GET", "/metrics", None, None);
    assert_eq!((open.status, open.json()["error"]["code"].as_str().unwrap()), (401, "auth/unauthorized"));
    assert_eq!(send(s.addr, "GET", "/metrics", Some("wrong"), None).status, 401);
    assert_eq!(send(s.addr, "GET", "/metrics", Some(ADMIN), None).status, 401);
    let scraped = send(s.addr, "GET", "/metrics", Some("scrape-secret-91"), None);
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    assert!(scraped.body.contains("# TYPE"), "{}", scraped.body);
    // Health stays open for probes.
    assert_eq!(send(s.addr, "GET", "/healthz", None, None).status, 200);
}

#[test]
fn metrics_without_a_token_stay_open() {
    let s = serve();
    assert_eq!(send(s.addr, "GET", "/metrics", None, None).status, 200);
}
