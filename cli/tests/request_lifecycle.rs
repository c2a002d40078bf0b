//! A credit request from the ask to done, with the real binaries: a `budgit serve`
//! reading a real policy repository, the person asking with their own token for
//! Codex credits, the admin proposing, the branch merged with git, `budgit
//! reconcile` applying it, and `POST /v1/check` for Codex allowing afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

#[path = "../../engine/tests/common/git_repo.rs"]
mod git_repo;
#[path = "../../service/tests/common/http.rs"]
mod http;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use git_repo::git;
use http::send;
use serde_json::{Value, json};

const ADMIN: &str = "lifecycle-test-admin-7f3a91-0123456789abcdef";

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default:
  credits: 100
enforcement: hard
attributes:
  department: string
overrides:
  max_days: 30
";

// Codex is capped below the total: a person can be blocked on Codex with credits left.
const ENG: &str = "apiVersion: budgit/v1
kind: Group
name: engineering
selector: 'user.department == \"Engineering\"'
priority: 10
limit:
  credits: 3000
  products:
    codex: 1500
";

struct Server {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> tempfile::TempDir {
    git_repo::repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG)])
}

fn serve(repo: &Path) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budgit"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--db"]).arg(dir.path().join("budgit.db"));
    cmd.arg("--repo").arg(repo).args(["--approved-ref", "main"]);
    cmd.env_clear().env("NO_COLOR", "1").env("BUDGIT_ADMIN_TOKEN", ADMIN);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("budgit serve listening on http://") {
                let _ = tx.send(addr.parse::<SocketAddr>().unwrap());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("the server did not start");
    let s = Server { child, addr, _dir: dir };
    let csv = "email,department\nalice@acme.com,Engineering\nbob@acme.com,Engineering\n";
    assert_eq!(send(s.addr, "POST", "/v1/users/import?format=csv", Some(ADMIN), Some(csv)).status, 200);
    s
}

fn reconcile(repo: &Path, addr: SocketAddr) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_budgit"))
        .current_dir(repo)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("BUDGIT_TOKEN", ADMIN)
        .args([
            "reconcile",
            "--workspace",
            &format!("http://{addr}"),
            "--ref",
            "main",
            "--policies",
            "policies",
        ])
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap()
}

fn call(s: &Server, method: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = send(s.addr, method, path, Some(token), Some(&body.to_string()));
    let status = r.status;
    (status, r.json())
}

fn request(s: &Server, id: &Value, token: &str) -> Value {
    let list = send(s.addr, "GET", "/v1/requests?limit=100", Some(token), None).json();
    list["data"].as_array().unwrap().iter().find(|r| &r["id"] == id).cloned().unwrap_or(Value::Null)
}

fn codex_check(s: &Server, user: &str) -> Value {
    let body = json!({ "user": user, "product": "codex", "model": "gpt-5-codex", "credits": 10 });
    let (_, r) = call(s, "POST", "/v1/check", ADMIN, body);
    if let Some(id) = r["reservation_id"].as_str() {
        send(s.addr, "POST", &format!("/v1/reservations/{id}/release"), Some(ADMIN), Some("{}"));
    }
    r
}

#[test]
fn a_codex_request_is_proposed_merged_applied_and_done_and_codex_is_allowed() {
    let r = repo();
    let s = serve(r.path());
    let first = reconcile(r.path(), s.addr);
    assert_eq!(first["applied"].as_array().unwrap().len(), 2, "{first}");

    // Alice spends her whole Codex cap: Codex is refused, with credits left in the total.
    let now = chrono::Utc::now().timestamp();
    let event = json!({ "id": "e1", "time": now, "user": "alice@acme.com", "product": "codex", "model": "gpt-5-codex", "credits": 1500 });
    let (status, out) = call(&s, "POST", "/v1/usage/events", ADMIN, event);
    assert!(status < 300, "{out}");
    let refused = codex_check(&s, "alice@acme.com");
    assert_eq!(
        (&refused["allowed"], &refused["deciding"]),
        (&json!(false), &json!("product_cap")),
        "{refused}"
    );

    // She asks, with her own token, for 1,500 credits for Codex.
    let (_, t) = call(&s, "POST", "/v1/users/alice@acme.com/tokens", ADMIN, json!({}));
    let alice = t["token"].as_str().unwrap().to_string();
    let ask = json!({ "credits": 1500, "days": 7, "reason": "Codex refactor of billing (PAY-1240)",
        "product": "codex", "context": { "note": "blocked on the codex cap since Monday" } });
    let (status, asked) = call(&s, "POST", "/v1/requests", &alice, ask);
    assert_eq!(status, 201, "{asked}");
    let id = asked["id"].clone();
    assert_eq!(
        (&asked["status"], &asked["product"], &asked["model"]),
        (&json!("pending"), &json!("codex"), &Value::Null)
    );

    // The admin proposes: an Override raising the total and the Codex cap, on a branch.
    let (status, proposal) = call(&s, "POST", &format!("/v1/requests/{id}/propose"), ADMIN, json!({}));
    assert_eq!(status, 201, "{proposal}");
    let branch = proposal["branch"].as_str().unwrap().to_string();
    let commit = proposal["commit"].as_str().unwrap().to_string();
    let text = git(r.path(), &["show", &format!("{commit}:{}", proposal["file"].as_str().unwrap())]);
    assert!(text.contains("add:\n  credits: 1500\n  products:\n    codex: 1500\n"), "{text}");
    assert!(text.contains("# Context: blocked on the codex cap since Monday\n"), "{text}");
    let message = git(r.path(), &["log", "-1", "--format=%B", &commit]);
    assert!(message.contains("Context: blocked on the codex cap since Monday"), "{message}");
    let mine = request(&s, &id, &alice);
    assert_eq!(mine["status"], "proposed", "{mine}");
    assert_eq!(mine["lifecycle"]["proposed"]["branch"], json!(branch));
    assert_eq!(mine["lifecycle"]["proposed"]["plan_summary"]["raised"], json!(1), "{mine}");
    // The plan says what the check will: her total never blocked her, her Codex cap did,
    // and the proposal lifts it.
    let plan = &mine["lifecycle"]["proposed"]["plan_summary"];
    assert_eq!(
        (&plan["newly_unblocked"], &plan["newly_unblocked_on_caps"], &plan["newly_blocked_on_caps"]),
        (&json!(0), &json!(1), &json!(0)),
        "{mine}"
    );

    // A reconcile of main before the merge applies nothing of it: still proposed.
    reconcile(r.path(), s.addr);
    assert_eq!(request(&s, &id, ADMIN)["status"], "proposed");

    // Merged in git: the server notices by itself.
    git(r.path(), &["merge", "-q", "--no-ff", "-m", "Merge the codex request", &branch]);
    let merge = git(r.path(), &["rev-parse", "main"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let merged = loop {
        let row = request(&s, &id, &alice);
        if row["status"] != "proposed" || Instant::now() > deadline {
            break row;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(merged["status"], "merged", "{merged}");
    assert_eq!(merged["lifecycle"]["merged"]["commit"], json!(merge));

    // The reconciler applies it; its run record moves the request to applied, then done.
    let run = reconcile(r.path(), s.addr);
    assert_eq!(run["commit"], json!(merge), "{run}");
    let done = request(&s, &id, &alice);
    assert_eq!(done["status"], "done", "{done}");
    let runs = send(s.addr, "GET", "/v1/reconciler/status", Some(ADMIN), None).json();
    assert_eq!(done["lifecycle"]["applied"]["run"], runs["last"]["seq"], "{done}");
    assert_eq!(done["lifecycle"]["applied"]["commit"], json!(merge));
    assert!(done["lifecycle"]["done"]["at"].is_string(), "{done}");
    // ...and what she asked for is what she got: Codex is allowed.
    let allowed = codex_check(&s, "alice@acme.com");
    assert_eq!(allowed["allowed"], json!(true), "{allowed}");

    // The admin's view shows the same steps.
    assert_eq!(request(&s, &id, ADMIN)["lifecycle"], done["lifecycle"]);
}

#[test]
fn a_declined_request_says_why_on_both_sides_and_never_moves_again() {
    let r = repo();
    let s = serve(r.path());
    let (_, t) = call(&s, "POST", "/v1/users/bob@acme.com/tokens", ADMIN, json!({}));
    let bob = t["token"].as_str().unwrap().to_string();
    let (_, asked) = call(
        &s,
        "POST",
        "/v1/requests",
        &bob,
        json!({ "credits": 900, "days": 3, "reason": "hackathon", "model": "gpt-5-pro" }),
    );
    let id = asked["id"].clone();
    let (status, _) = call(&s, "POST", &format!("/v1/requests/{id}/decline"), ADMIN, json!({}));
    assert_eq!(status, 400, "declining needs a reason");
    let (status, declined) = call(
        &s,
        "POST",
        &format!("/v1/requests/{id}/decline"),
        ADMIN,
        json!({ "reason": "use the shared pool" }),
    );
    assert_eq!(status, 200, "{declined}");
    let mine = request(&s, &id, &bob);
    assert_eq!(
        (&mine["status"], &mine["decision_reason"]),
        (&json!("declined"), &json!("use the shared pool"))
    );
    assert_eq!(mine["lifecycle"]["declined"]["reason"], "use the shared pool", "{mine}");
    assert_eq!(mine["model"], "gpt-5-pro");
    let (status, again) = call(&s, "POST", &format!("/v1/requests/{id}/propose"), ADMIN, json!({}));
    assert_eq!((status, &again["error"]["code"]), (409, &json!("requests/decided")));
    reconcile(r.path(), s.addr);
    assert_eq!(request(&s, &id, &bob)["status"], "declined");
}

#[test]
fn budgit_request_with_a_product_raises_that_cap_and_refuses_two_needs() {
    let r = repo();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_budgit"))
            .current_dir(r.path())
            .env_clear()
            .env("NO_COLOR", "1")
            .args([
                "request",
                "--user",
                "alice@acme.com",
                "--add",
                "1500",
                "--days",
                "7",
                "--reason",
                "codex work",
            ])
            .args(["--now", "2026-11-10T12:00:00Z"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--product", "codex", "--branch", "codex-request"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let text = git(r.path(), &["show", "codex-request:policies/overrides/alice-2026-11-10.yaml"]);
    assert!(text.contains("add:\n  credits: 1500\n  products:\n    codex: 1500\n"), "{text}");
    let subject = git(r.path(), &["log", "-1", "--format=%s", "codex-request"]);
    assert_eq!(subject, "Request +1500 credits for codex for alice@acme.com until 2026-11-17");
    let both = run(&["--product", "codex", "--model", "gpt-5"]);
    assert_eq!(both.status.code(), Some(2), "{}", String::from_utf8_lossy(&both.stderr));
    assert!(String::from_utf8_lossy(&both.stderr).contains("--model"), "clap names the conflict");
    let bad = run(&["--product", "co dex"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not a product or model name"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
