//! W2h: the HTTP check with reservation on loopback — a release `budgit serve` with a
//! temporary database, a directory imported and limits set through the API, then
//! checks driven at a fixed rate over keep-alive connections, each allowed one
//! committed over separate keep-alive connections (p50/p99 of the check), then
//! 20-way concurrent bursts against nearly exhausted users and a nearly exhausted
//! pool, with the totals read back through the Costs API: zero overspend.
//!
//! Every loop is bounded in count and time; the server is killed at the end.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::http::Conn;

/// Sizes, rate and binary.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users in the imported directory.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Groups (each with a pool); user `i` is in group `i % groups`.
    #[arg(long, default_value_t = 50)]
    groups: usize,
    /// Target checks per second (each followed by a commit on the same connection).
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long the fixed-rate phase runs, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep-alive client connections sending checks (one thread each).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Keep-alive client connections committing the allowed checks (one thread each).
    #[arg(long, default_value_t = 16)]
    commit_connections: usize,
    /// Burst rounds (each: one nearly exhausted user and one nearly exhausted pool, 20 clients).
    #[arg(long, default_value_t = 5)]
    bursts: usize,
    /// The release `budgit` binary.
    #[arg(long, default_value = "target/release/budgit")]
    budgit: PathBuf,
}

const ADMIN: &str = "w2h-bench-admin-token";
const BURST: usize = 20;

/// How long a client waits for an answer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The bench's calls over [`Conn`]: the admin token, JSON answers.
trait Calls {
    fn call(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, Value)>;
    fn ok(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<Value>;
}

impl Calls for Conn {
    fn call(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, Value)> {
        let (status, buf) = self.request(method, path, ADMIN, body)?;
        let v = if buf.is_empty() { Value::Null } else { serde_json::from_slice(&buf)? };
        Ok((status, v))
    }

    fn ok(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        let (status, v) = self.call(method, path, body)?;
        if status != 200 {
            bail!("{method} {path}: {status} {v}");
        }
        Ok(v)
    }
}

/// The server process; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(budgit: &Path, db: &Path) -> anyhow::Result<Server> {
    let mut child = Command::new(budgit)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .env("BUDGIT_ADMIN_TOKEN", ADMIN)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("starting `{}` (build it with `cargo build --release`)", budgit.display())
        })?;
    let pipe = child.stderr.take().context("no stderr")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("budgit serve listening on http://") {
                let _ = tx.send(addr.parse::<SocketAddr>());
            }
        }
    });
    let mut server = Server { child, addr: "127.0.0.1:0".parse()? };
    server.addr = rx.recv_timeout(Duration::from_secs(60)).context("the server did not start")??;
    Ok(server)
}

fn email(i: usize) -> String {
    format!("user{i:06}@acme.com")
}

/// Imports the directory and sets every user's limit (1,000 credits, codex cap 600) and each group's pool.
fn setup(c: &mut Conn, args: &Args) -> anyhow::Result<()> {
    let mut csv = String::from("email,department\n");
    for i in 0..args.users {
        csv.push_str(&format!("{},d{}\n", email(i), i % args.groups));
    }
    c.ok("POST", "/v1/users/import?format=csv", &csv)?;
    let mut pools: Vec<Value> =
        (0..args.groups).map(|g| json!({ "group": format!("g{g}"), "credits": 1_000_000_000 })).collect();
    for chunk in (0..args.users).collect::<Vec<_>>().chunks(1000 - args.groups) {
        let limits: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                json!({ "user": email(i), "credits": 1000, "products": { "codex": 600 }, "group": format!("g{}", i % args.groups) })
            })
            .collect();
        let body = json!({ "commit": "w2h", "limits": limits, "pools": std::mem::take(&mut pools) });
        c.ok("PUT", "/v1/limits", &body.to_string())?;
    }
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// What one client thread measured.
#[derive(Default)]
struct Tally {
    checks: Vec<Duration>,
    commits: Vec<Duration>,
    late: usize,
    wall: Duration,
}

/// The fixed-rate phase: each check connection sends its share of checks on a fixed
/// schedule; every allowed check is committed by one of the commit connections, as a
/// gateway commits once the model call it guarded has finished — so the check
/// schedule never waits on a commit's fsync.
fn fixed_rate(addr: SocketAddr, args: &Args) -> anyhow::Result<()> {
    let per_conn = (args.rate as f64 / args.connections as f64).max(1.0);
    let interval = Duration::from_secs_f64(1.0 / per_conn);
    let total = (per_conn * args.seconds as f64) as usize;
    let deadline = Duration::from_secs(args.seconds + 20);
    let barrier = Arc::new(Barrier::new(args.connections));
    let (to_commit, commits_in) = mpsc::channel::<String>();
    let commits_in = Arc::new(std::sync::Mutex::new(commits_in));
    let committers: Vec<_> = (0..args.commit_connections.max(1))
        .map(|_| {
            let queue = commits_in.clone();
            std::thread::spawn(move || -> anyhow::Result<Tally> {
                let mut c = Conn::open(addr, READ_TIMEOUT)?;
                let mut tally = Tally::default();
                loop {
                    let next = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => bail!("the commit queue is poisoned"),
                    };
                    let Ok(id) = next else { return Ok(tally) };
                    let t = Instant::now();
                    c.ok("POST", &format!("/v1/reservations/{id}/commit"), "{\"credits\":1}")?;
                    tally.commits.push(t.elapsed());
                }
            })
        })
        .collect();
    let workers: Vec<_> = (0..args.connections)
        .map(|w| {
            let (barrier, users, to_commit) = (barrier.clone(), args.users, to_commit.clone());
            std::thread::spawn(move || -> anyhow::Result<Tally> {
                let mut c = Conn::open(addr, READ_TIMEOUT)?;
                let mut tally = Tally { checks: Vec::with_capacity(total), ..Tally::default() };
                barrier.wait();
                let start = Instant::now();
                for k in 0..total {
                    let due = start + interval * k as u32;
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    } else if now - due > Duration::from_millis(1) {
                        tally.late += 1;
                    }
                    if start.elapsed() > deadline {
                        break;
                    }
                    let user = email((w * 7919 + k * 104_729) % users);
                    let body = format!(
                        "{{\"user\":\"{user}\",\"product\":\"{}\",\"model\":\"gpt-5\",\"credits\":2}}",
                        if k % 2 == 0 { "codex" } else { "chatgpt" }
                    );
                    let t = Instant::now();
                    let d = c.ok("POST", "/v1/check", &body)?;
                    tally.checks.push(t.elapsed());
                    if let Some(id) = d["reservation_id"].as_str() {
                        to_commit.send(id.to_string())?;
                    }
                }
                tally.wall = start.elapsed();
                Ok(tally)
            })
        })
        .collect();
    drop(to_commit);
    let mut all = Tally::default();
    for w in workers.into_iter().chain(committers) {
        let t = w.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        all.checks.extend(t.checks);
        all.commits.extend(t.commits);
        all.late += t.late;
        all.wall = all.wall.max(t.wall);
    }
    let Tally { mut checks, mut commits, late, wall } = all;
    checks.sort_unstable();
    commits.sort_unstable();
    let achieved = checks.len() as f64 / wall.as_secs_f64().max(1e-9);
    println!(
        "W2h check p50 {} p99 {} / commit p50 {} p99 {} ({} checks in {:.1} s = {achieved:.0}/s, target {}/s, \
         {} check + {} commit connections, {} committed, {late} sent >1 ms late)",
        us(pct(&checks, 0.5)),
        us(pct(&checks, 0.99)),
        us(pct(&commits, 0.5)),
        us(pct(&commits, 0.99)),
        checks.len(),
        wall.as_secs_f64(),
        args.rate,
        args.connections,
        args.commit_connections,
        commits.len(),
    );
    Ok(())
}

/// Credits recorded for `user` (or for the users of `group`), read back through the Costs API.
fn spent(c: &mut Conn, key: &str, value: &str) -> anyhow::Result<f64> {
    let mut total = 0.0;
    let mut page: Option<String> = None;
    for _ in 0..1000 {
        let mut path =
            format!("/v1/organization/costs?start_time=0&end_time=4102444800&group_by={key}&limit=180");
        if let Some(p) = &page {
            path.push_str(&format!("&page={p}"));
        }
        let v = c.ok("GET", &path, "")?;
        for b in v["data"].as_array().into_iter().flatten() {
            for r in b["results"].as_array().into_iter().flatten() {
                if r[key].as_str() == Some(value) {
                    total += r["amount"]["value"].as_f64().unwrap_or(0.0);
                }
            }
        }
        match v["next_page"].as_str() {
            Some(p) => page = Some(p.to_string()),
            None => return Ok(total),
        }
    }
    bail!("the costs pages did not end")
}

/// Twenty clients at once, each checking and committing `credits`; returns how many were allowed.
fn burst(addr: SocketAddr, users: Vec<String>, credits: u32) -> anyhow::Result<usize> {
    let barrier = Arc::new(Barrier::new(users.len()));
    let clients: Vec<_> = users
        .into_iter()
        .map(|user| {
            let barrier = barrier.clone();
            std::thread::spawn(move || -> anyhow::Result<bool> {
                let mut c = Conn::open(addr, READ_TIMEOUT)?;
                let body =
                    json!({ "user": user, "product": "chatgpt", "model": "gpt-5", "credits": credits });
                barrier.wait();
                let d = c.ok("POST", "/v1/check", &body.to_string())?;
                match d["reservation_id"].as_str() {
                    Some(id) => {
                        c.ok(
                            "POST",
                            &format!("/v1/reservations/{id}/commit"),
                            &json!({ "credits": credits }).to_string(),
                        )?;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            })
        })
        .collect();
    let mut allowed = 0;
    for c in clients {
        allowed += usize::from(c.join().map_err(|_| anyhow::anyhow!("a burst client panicked"))??);
    }
    Ok(allowed)
}

/// Burst rounds: a user with 3 credits left, and a pool with 5 left shared by 20 users with room of their own.
fn bursts(c: &mut Conn, addr: SocketAddr, rounds: usize) -> anyhow::Result<()> {
    let (mut allowed_total, mut over) = (0usize, 0.0f64);
    for round in 0..rounds {
        let solo = format!("burst{round}-solo@acme.com");
        let pooled: Vec<String> = (0..BURST).map(|j| format!("burst{round}-p{j}@acme.com")).collect();
        let group = format!("burst{round}");
        let mut limits = vec![json!({ "user": solo, "credits": 10 })];
        limits.extend(pooled.iter().map(|u| json!({ "user": u, "credits": 100, "group": group })));
        let body =
            json!({ "commit": "w2h-burst", "limits": limits, "pools": [{ "group": group, "credits": 50 }] });
        c.ok("PUT", "/v1/limits", &body.to_string())?;
        let now = chrono::Utc::now().timestamp();
        // 7 of the user's 10 credits and 45 of the pool's 50 are already spent
        let events = json!([
            { "id": format!("b{round}-solo"), "time": now, "user": solo, "product": "chatgpt", "model": "gpt-5", "credits": 7 },
            { "id": format!("b{round}-pool"), "time": now, "user": pooled[0], "product": "chatgpt", "model": "gpt-5", "credits": 45 },
        ]);
        c.ok("POST", "/v1/usage/events", &events.to_string())?;

        let solo_allowed = burst(addr, vec![solo.clone(); BURST], 1)?;
        let pool_allowed = burst(addr, pooled.clone(), 1)?;
        let solo_spent = spent(c, "user_id", &solo)?;
        let pool_spent = spent(c, "project_id", &group)?;
        println!(
            "W2h burst {round}: user 10 credits, {solo_allowed}/{BURST} allowed, {solo_spent} spent; \
             pool 50 credits, {pool_allowed}/{BURST} allowed, {pool_spent} spent"
        );
        over += (solo_spent - 10.0).max(0.0) + (pool_spent - 50.0).max(0.0);
        if solo_allowed != 3 || pool_allowed != 5 || solo_spent != 10.0 || pool_spent != 50.0 {
            bail!(
                "W2h burst {round}: expected exactly 3 and 5 allowed and 10 and 50 spent, got {solo_allowed}, \
                 {pool_allowed}, {solo_spent}, {pool_spent}"
            );
        }
        allowed_total += solo_allowed + pool_allowed;
    }
    println!(
        "W2h burst: {rounds} rounds x 2 x {BURST}-way check+commit, {allowed_total} allowed, overspent {over} credits"
    );
    Ok(())
}

/// Runs W2h.
pub fn run(data: &Path, args: &Args) -> anyhow::Result<()> {
    let dir = data.join("w2h");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let server = serve(&args.budgit, &dir.join("budgit.db"))?;
    let mut c = Conn::open(server.addr, READ_TIMEOUT)?;
    let t = Instant::now();
    setup(&mut c, args)?;
    eprintln!("W2h: {} users and limits set in {:.1} s", args.users, t.elapsed().as_secs_f64());
    fixed_rate(server.addr, args)?;
    bursts(&mut c, server.addr, args.bursts)?;
    Ok(())
}
