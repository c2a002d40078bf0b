//! W2h: the HTTP check with reservation on loopback — a release `budgit serve` with a
//! temporary database, a directory imported and limits set through the API, then
//! checks driven at a fixed rate over keep-alive connections, each allowed one
//! committed over separate keep-alive connections (p50/p99 of the check), then
//! 20-way concurrent bursts against nearly exhausted users and a nearly exhausted
//! pool, with the totals read back through the Costs API: zero overspend.
//!
//! Every loop is bounded in count and time; the server is killed at the end.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};

use crate::http::{Conn, parse_response, request_bytes};

/// Sizes, rate and binary.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users in the imported directory.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Groups (each with a pool); user `i` is in group `i % groups`.
    #[arg(long, default_value_t = 50)]
    groups: usize,
    /// Target checks per second (each allowed one followed by a commit: twice as many HTTP requests).
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long the fixed-rate phase runs, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep-alive client connections sending checks.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Keep-alive client connections committing the allowed checks.
    #[arg(long, default_value_t = 16)]
    commit_connections: usize,
    /// How the client drives its connections: `loop` (one sender thread on the schedule and
    /// one epoll thread reading every answer) or `threads` (a blocking thread per connection).
    #[arg(long, value_enum, default_value_t = Client::Loop)]
    client: Client,
    /// Burst rounds (each: one nearly exhausted user and one nearly exhausted pool, 20 clients).
    #[arg(long, default_value_t = 5)]
    bursts: usize,
    /// The release `budgit` binary.
    #[arg(long, default_value = "target/release/budgit")]
    budgit: PathBuf,
}

/// How the fixed-rate phase drives its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Client {
    /// One sender thread on the schedule, one epoll thread reading every answer and committing.
    Loop,
    /// A blocking std thread per connection (the first client; 32 threads on 2 cores).
    Threads,
}

const ADMIN: &str = "w2h-bench-admin-token-0123456789abcdef";
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
    serve_with(budgit, &[std::ffi::OsStr::new("--db"), db.as_os_str()])
}

/// A release `budgit serve` on the store the arguments name (`--db FILE`, `--store URL`).
fn serve_with(budgit: &Path, store: &[&std::ffi::OsStr]) -> anyhow::Result<Server> {
    let mut child = Command::new(budgit)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(store)
        .env("BUDGIT_ADMIN_TOKEN", ADMIN)
        .env("NO_COLOR", "1")
        // The request log (`info`) writes a line per request; at warn the figures stay
        // comparable with the ones recorded before the service logged requests.
        .env("RUST_LOG", "warn")
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
            } else {
                // warnings, errors and panics (the server logs at `warn`): a failed run says why
                eprintln!("server: {line}");
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

/// The fixed-rate phase with a blocking thread per connection: each check connection
/// sends its share of checks on a fixed schedule; every allowed check is committed by one of the commit connections, as a
/// gateway commits once the model call it guarded has finished — so the check
/// schedule never waits on a commit's fsync.
fn fixed_rate(addr: SocketAddr, args: &Args) -> anyhow::Result<usize> {
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
    Ok(checks.len() + commits.len())
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
///
/// Linux reports it in clock ticks of 1/100 s on every common platform; `None`
/// elsewhere, and the CPU line is left out.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name in parentheses may hold spaces: count fields after its `)`
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after `)`
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// A request in flight on a connection.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// When the schedule meant it to go out (a commit: when its check's answer arrived).
    due: Instant,
    /// When it was written to the socket.
    sent: Instant,
}

/// State the sender and the reader threads share (one lock, taken once per send or answer).
struct Shared {
    /// Per check connection, the check it is waiting on.
    in_flight: Vec<Option<InFlight>>,
    /// Check connections with nothing in flight.
    idle: Vec<usize>,
    /// Checks that came due while every check connection was busy: (due, sequence number).
    backlog: VecDeque<(Instant, usize)>,
    /// The sender has sent (or queued) its last check.
    done: bool,
}

/// Writes one whole request to a non-blocking socket that has nothing else in flight.
fn send(stream: &TcpStream, bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = stream;
    let n = out.write(bytes)?;
    if n != bytes.len() {
        // one small request on an otherwise idle connection always fits the socket buffer
        bail!("a request was cut short ({n} of {} bytes written)", bytes.len());
    }
    Ok(())
}

/// The check request number `k` (users visited in a fixed scattered order).
fn check_request(addr: SocketAddr, k: usize, users: usize) -> Vec<u8> {
    let user = email(k.wrapping_mul(104_729) % users.max(1));
    let product = if k.is_multiple_of(2) { "codex" } else { "chatgpt" };
    let body = format!("{{\"user\":\"{user}\",\"product\":\"{product}\",\"model\":\"gpt-5\",\"credits\":2}}");
    request_bytes("POST", "/v1/check", addr, ADMIN, &body)
}

/// The reservation id in a check answer, when the check was allowed.
fn reservation_id(body: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"reservation_id\":\"";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let len = body[at..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&body[at..at + len]).ok()
}

fn lock(shared: &Mutex<Shared>) -> anyhow::Result<std::sync::MutexGuard<'_, Shared>> {
    shared.lock().map_err(|_| anyhow::anyhow!("the client state lock is poisoned"))
}

/// Asks Linux to wake this thread's sleeps on time: by default a sleep may end up to
/// 50 µs late (the timer slack, for batching wake-ups), which the latency "from the
/// scheduled send" would charge to the server. Best effort: elsewhere nothing changes.
fn exact_timers() {
    // `/proc/thread-self` links to `PID/task/TID`; `/proc/TID/timerslack_ns` is that thread's
    let tid = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|t| t.to_string_lossy().into_owned()));
    if let Some(tid) = tid
        && std::fs::write(format!("/proc/{tid}/timerslack_ns"), "1").is_err()
    {
        eprintln!("W2h: could not lower the sender's timer slack; scheduled sends may start late");
    }
}

/// The fixed-rate phase, open loop: one thread sends each check at its scheduled time on
/// an idle check connection (or queues it when all are busy), one thread waits on every
/// connection with epoll, records each answer and commits every allowed check on an idle
/// commit connection right away, as a gateway commits once the model call it guarded has
/// finished. Check latency is reported twice: from the scheduled send time (what a caller
/// on that schedule waits, including any wait for the client or a free connection) and
/// from the moment the request was written. Returns the HTTP requests answered.
fn open_loop(addr: SocketAddr, args: &Args) -> anyhow::Result<usize> {
    open_loop_on(&[addr], "W2h", args)
}

/// [`open_loop`] over several replicas: connection `i` goes to `addrs[i % len]` (check and
/// commit connections alike, so a hold is often committed on another replica than the
/// one that made it); `label` starts the printed lines.
fn open_loop_on(addrs: &[SocketAddr], label: &str, args: &Args) -> anyhow::Result<usize> {
    let addr = *addrs.first().context("no server to drive")?;
    let (nc, nm) = (args.connections.max(1), args.commit_connections.max(1));
    let interval = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
    let total = usize::try_from(args.rate.saturating_mul(args.seconds)).unwrap_or(usize::MAX);
    let deadline = Duration::from_secs(args.seconds + 20);
    let mut poll = Poll::new()?;
    let mut streams = Vec::with_capacity(nc + nm);
    for i in 0..nc + nm {
        let s = std::net::TcpStream::connect(addrs[i % addrs.len()])?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        let mut s = TcpStream::from_std(s);
        poll.registry().register(&mut s, Token(i), Interest::READABLE)?;
        streams.push(s);
    }
    let streams = Arc::new(streams);
    let shared = Arc::new(Mutex::new(Shared {
        in_flight: vec![None; nc],
        idle: (0..nc).rev().collect(),
        backlog: VecDeque::new(),
        done: false,
    }));
    let start = Instant::now() + Duration::from_millis(20);
    let users = args.users;

    let sender = {
        let (streams, shared) = (streams.clone(), shared.clone());
        std::thread::spawn(move || -> anyhow::Result<(usize, Duration)> {
            exact_timers();
            let mut late = 0;
            let mut k = 0;
            while k < total && start.elapsed() < deadline {
                let due = start + interval * u32::try_from(k).unwrap_or(u32::MAX);
                // written before the wait, so the request is ready when it is due
                let bytes = check_request(addr, k, users);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                } else if now - due > Duration::from_millis(1) {
                    late += 1;
                }
                let conn = {
                    let mut s = lock(&shared)?;
                    match s.idle.pop() {
                        Some(c) => {
                            s.in_flight[c] = Some(InFlight { due, sent: Instant::now() });
                            Some(c)
                        }
                        None => {
                            s.backlog.push_back((due, k));
                            None
                        }
                    }
                };
                if let Some(c) = conn {
                    send(&streams[c], &bytes)?;
                }
                k += 1;
            }
            lock(&shared)?.done = true;
            Ok((late, start.elapsed()))
        })
    };

    let mut checks_due = Vec::with_capacity(total);
    let mut checks_sent = Vec::with_capacity(total);
    let mut commits = Vec::with_capacity(total);
    let (mut denied, mut queued_checks) = (0usize, 0usize);
    let mut commit_in_flight: Vec<Option<InFlight>> = vec![None; nm];
    let mut commit_idle: Vec<usize> = (0..nm).rev().collect();
    let mut commit_queue: VecDeque<(Instant, String)> = VecDeque::new();
    let mut bufs: Vec<Vec<u8>> = vec![Vec::with_capacity(1024); nc + nm];
    let mut chunk = [0u8; 16 * 1024];
    let mut events = Events::with_capacity(256);
    let commit_bytes = |id: &str| {
        request_bytes("POST", &format!("/v1/reservations/{id}/commit"), addr, ADMIN, "{\"credits\":1}")
    };
    loop {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let mut stream = &streams[i];
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) => bail!("the server closed a connection"),
                    Ok(n) => bufs[i].extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            while let Some(p) = parse_response(&bufs[i])? {
                let now = Instant::now();
                let body = &bufs[i][p.body.clone()];
                if p.status != 200 {
                    bail!("answer {}: {}", p.status, String::from_utf8_lossy(body));
                }
                if i < nc {
                    let next = {
                        let mut s = lock(&shared)?;
                        let f = s.in_flight[i].take().context("an answer with no check in flight")?;
                        checks_due.push(now - f.due);
                        checks_sent.push(now - f.sent);
                        match s.backlog.pop_front() {
                            Some((due, k)) => {
                                s.in_flight[i] = Some(InFlight { due, sent: Instant::now() });
                                Some(k)
                            }
                            None => {
                                s.idle.push(i);
                                None
                            }
                        }
                    };
                    if let Some(k) = next {
                        queued_checks += 1;
                        send(&streams[i], &check_request(addr, k, users))?;
                    }
                    match reservation_id(body) {
                        Some(id) => match commit_idle.pop() {
                            Some(j) => {
                                commit_in_flight[j] = Some(InFlight { due: now, sent: Instant::now() });
                                send(&streams[nc + j], &commit_bytes(id))?;
                            }
                            None => commit_queue.push_back((now, id.to_string())),
                        },
                        None => denied += 1,
                    }
                } else {
                    let j = i - nc;
                    let f = commit_in_flight[j].take().context("an answer with no commit in flight")?;
                    commits.push(now - f.due);
                    match commit_queue.pop_front() {
                        Some((due, id)) => {
                            commit_in_flight[j] = Some(InFlight { due, sent: Instant::now() });
                            send(&streams[i], &commit_bytes(&id))?;
                        }
                        None => commit_idle.push(j),
                    }
                }
                let end = p.body.end;
                bufs[i].drain(..end);
            }
        }
        let finished = {
            let s = lock(&shared)?;
            s.done && s.backlog.is_empty() && s.in_flight.iter().all(Option::is_none)
        };
        if finished && commit_queue.is_empty() && commit_in_flight.iter().all(Option::is_none) {
            break;
        }
        if start.elapsed() > deadline + Duration::from_secs(10) {
            bail!("the fixed-rate phase did not finish");
        }
    }
    let (late, wall) = sender.join().map_err(|_| anyhow::anyhow!("the sender thread panicked"))??;
    for v in [&mut checks_due, &mut checks_sent, &mut commits] {
        v.sort_unstable();
    }
    let wall_s = wall.as_secs_f64().max(1e-9);
    println!(
        "{label} check p50 {} p99 {} from the scheduled send, p50 {} p99 {} from the actual send / \
         commit p50 {} p99 {} (from the check's answer)",
        us(pct(&checks_due, 0.5)),
        us(pct(&checks_due, 0.99)),
        us(pct(&checks_sent, 0.5)),
        us(pct(&checks_sent, 0.99)),
        us(pct(&commits, 0.5)),
        us(pct(&commits, 0.99)),
    );
    println!(
        "{label} {} checks in {wall_s:.1} s = {:.0} checks/s (target {}/s) + {} commits = {:.0} HTTP requests/s; \
         {nc} check + {nm} commit connections, 2 client threads; {denied} denied, {queued_checks} waited \
         for a free connection, {late} sent >1 ms late",
        checks_due.len(),
        checks_due.len() as f64 / wall_s,
        args.rate,
        commits.len(),
        (checks_due.len() + commits.len()) as f64 / wall_s,
    );
    Ok(checks_due.len() + commits.len())
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
    let cpu = (cpu_seconds("self"), cpu_seconds(&server.child.id().to_string()));
    let t = Instant::now();
    let requests = match args.client {
        Client::Loop => open_loop(server.addr, args)?,
        Client::Threads => fixed_rate(server.addr, args)?,
    };
    let wall = t.elapsed().as_secs_f64();
    if let ((Some(c0), Some(s0)), Some(c1), Some(s1)) =
        (cpu, cpu_seconds("self"), cpu_seconds(&server.child.id().to_string()))
    {
        let per = |s: f64| s / requests.max(1) as f64 * 1e6;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        println!(
            "W2h CPU over {wall:.1} s and {requests} HTTP requests: client {:.1} s ({:.0} µs/request), \
             server {:.1} s ({:.0} µs/request), of {:.1} core-seconds ({cores} cores)",
            c1 - c0,
            per(c1 - c0),
            s1 - s0,
            per(s1 - s0),
            cores as f64 * wall
        );
    }
    // A new connection: the setup's one sat idle through the fixed-rate phase, longer
    // than the server waits for a keep-alive connection's next request head (10 s).
    let mut c = Conn::open(server.addr, READ_TIMEOUT)?;
    bursts(&mut c, server.addr, args.bursts)?;
    Ok(())
}

/// W2h-pg: two replicas on one PostgreSQL against a single SQLite node, in one run.
#[derive(Debug, clap::Args)]
pub struct PgArgs {
    /// Users with a limit (1,000 credits, codex cap 600, in one of the groups' pools).
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Groups (each with a pool); user `i` is in group `i % groups`.
    #[arg(long, default_value_t = 50)]
    groups: usize,
    /// Target checks per second (each allowed one followed by a commit).
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// How long the fixed-rate phase runs on each store, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Keep-alive client connections sending checks (spread over the replicas).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Keep-alive client connections committing the allowed checks (spread likewise).
    #[arg(long, default_value_t = 16)]
    commit_connections: usize,
    /// Each replica's PostgreSQL connections (`--store-pool`).
    #[arg(long, default_value_t = 16)]
    store_pool: usize,
    /// A PostgreSQL server to use (a fresh database is made on it); without it, a
    /// throwaway cluster is started with `--pg-cluster`.
    #[arg(long, value_name = "URL")]
    store: Option<String>,
    /// The cluster script (run from the repository root).
    #[arg(long, default_value = ".ci/pg-cluster")]
    pg_cluster: PathBuf,
    /// The release `budgit` binary.
    #[arg(long, default_value = "target/release/budgit")]
    budgit: PathBuf,
}

impl PgArgs {
    /// The same sizes as W2h's arguments (open-loop client, no bursts of its own).
    fn w2h(&self) -> Args {
        Args {
            users: self.users,
            groups: self.groups,
            rate: self.rate,
            seconds: self.seconds,
            connections: self.connections,
            commit_connections: self.commit_connections,
            client: Client::Loop,
            bursts: 0,
            budgit: self.budgit.clone(),
        }
    }
}

/// A throwaway PostgreSQL cluster, stopped and removed when dropped.
struct Cluster {
    script: PathBuf,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(&self.script).arg("stop").arg(self.dir.join("pg")).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a cluster under a fresh temporary directory the `postgres` user can reach.
fn start_cluster(script: &Path) -> anyhow::Result<(Cluster, String)> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("budgit-w2h-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    let cluster = Cluster { script: script.to_path_buf(), dir: dir.clone() };
    let out = Command::new(script).arg("start").arg(dir.join("pg")).output()?;
    if !out.status.success() {
        bail!("{} start: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok((cluster, String::from_utf8(out.stdout)?.trim().to_string()))
}

/// The PostgreSQL server's processes (the postmaster and its children): their CPU seconds.
fn postgres_cpu(postmaster: Option<u32>) -> Option<f64> {
    let pm = postmaster?;
    let mut total = cpu_seconds(&pm.to_string())?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else { continue };
        let ppid = stat.get(stat.rfind(')').unwrap_or(0) + 1..).and_then(|r| r.split_whitespace().nth(1));
        if ppid == Some(pm.to_string().as_str()) {
            total += cpu_seconds(&name).unwrap_or(0.0);
        }
    }
    Some(total)
}

/// The 60-way check+commit of the issue against 10 credits left on a user and on a pool,
/// split over `addrs`: how many checks of 1 credit were allowed and committed.
fn sixty_way(addrs: &[SocketAddr], round: &str) -> anyhow::Result<(usize, usize)> {
    let mut c = Conn::open(addrs[0], READ_TIMEOUT)?;
    let (solo, group) = (format!("solo-{round}@acme.com"), format!("pool-{round}"));
    let mut limits = vec![json!({ "user": solo, "credits": 10 })];
    limits.extend(
        (0..6)
            .map(|i| json!({ "user": format!("pool{i}-{round}@acme.com"), "credits": 100, "group": group })),
    );
    let body = json!({ "commit": "w2h-pg", "limits": limits, "pools": [{ "group": group, "credits": 10 }] });
    c.ok("PUT", "/v1/limits", &body.to_string())?;
    let mut out = [0usize; 2];
    for (slot, users) in [vec![solo.clone()], (0..6).map(|i| format!("pool{i}-{round}@acme.com")).collect()]
        .into_iter()
        .enumerate()
    {
        let barrier = Arc::new(Barrier::new(60));
        let workers: Vec<_> = (0..60)
            .map(|i| {
                let (barrier, addr, commit_on) =
                    (barrier.clone(), addrs[i % addrs.len()], addrs[(i + 1) % addrs.len()]);
                let user = users[i % users.len()].clone();
                std::thread::spawn(move || -> anyhow::Result<usize> {
                    let mut c = Conn::open(addr, READ_TIMEOUT)?;
                    let mut m = Conn::open(commit_on, READ_TIMEOUT)?;
                    let body = json!({ "user": user, "product": "chatgpt", "model": "gpt-5", "credits": 1 })
                        .to_string();
                    barrier.wait();
                    let d = c.ok("POST", "/v1/check", &body)?;
                    let Some(id) = d["reservation_id"].as_str() else { return Ok(0) };
                    m.ok("POST", &format!("/v1/reservations/{id}/commit"), "{\"credits\":1}")?;
                    Ok(1)
                })
            })
            .collect();
        for w in workers {
            out[slot] += w.join().map_err(|_| anyhow::anyhow!("a burst thread panicked"))??;
        }
    }
    Ok((out[0], out[1]))
}

/// One store's run: limits set, the open-loop phase with the CPU of every server
/// process (and PostgreSQL's), then the 60-way bursts.
fn measure_store(
    label: &str,
    addrs: &[SocketAddr],
    server_pids: &[u32],
    postmaster: Option<u32>,
    args: &Args,
) -> anyhow::Result<usize> {
    let servers_cpu =
        || -> Option<f64> { server_pids.iter().map(|p| cpu_seconds(&p.to_string())).sum::<Option<f64>>() };
    let cpu = (cpu_seconds("self"), servers_cpu(), postgres_cpu(postmaster));
    let t = Instant::now();
    let requests = open_loop_on(addrs, label, args)?;
    let wall = t.elapsed().as_secs_f64();
    if let ((Some(c0), Some(s0), p0), Some(c1), Some(s1)) = (cpu, cpu_seconds("self"), servers_cpu()) {
        let per = |s: f64| s / requests.max(1) as f64 * 1e6;
        let db = match (p0, postgres_cpu(postmaster)) {
            (Some(p0), Some(p1)) => format!(", PostgreSQL {:.1} s ({:.0} µs/request)", p1 - p0, per(p1 - p0)),
            _ => String::new(),
        };
        println!(
            "{label} CPU over {wall:.1} s and {requests} HTTP requests: client {:.1} s ({:.0} µs/request), \
             {} server process{} {:.1} s ({:.0} µs/request){db}",
            c1 - c0,
            per(c1 - c0),
            server_pids.len(),
            if server_pids.len() == 1 { "" } else { "es" },
            s1 - s0,
            per(s1 - s0),
        );
    }
    let mut over = 0;
    for round in 0..3 {
        let (solo, pool) = sixty_way(addrs, &format!("{label}-{round}"))?;
        println!(
            "{label} 60-way check+commit over {} server(s): user with 10 credits {solo} allowed, pool of 10 {pool} allowed",
            addrs.len()
        );
        over += solo.saturating_sub(10) + pool.saturating_sub(10);
        if solo != 10 || pool != 10 {
            bail!("{label}: expected exactly 10 and 10 allowed, got {solo} and {pool}");
        }
    }
    println!("{label} overspent {over} credits");
    Ok(requests)
}

/// Sets each user's limit and each group's pool (no directory import: limits are what a check reads).
fn set_limits(c: &mut Conn, args: &Args) -> anyhow::Result<()> {
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

/// Runs W2h-pg: the SQLite single node, then two replicas on one PostgreSQL, same load.
pub fn run_pg(data: &Path, pg: &PgArgs) -> anyhow::Result<()> {
    let args = pg.w2h();
    let dir = data.join("w2h-pg");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    {
        let server = serve(&args.budgit, &dir.join("budgit.db"))?;
        let mut c = Conn::open(server.addr, READ_TIMEOUT)?;
        let t = Instant::now();
        set_limits(&mut c, &args)?;
        eprintln!("W2h-sqlite: {} limits set in {:.1} s", args.users, t.elapsed().as_secs_f64());
        measure_store("W2h-sqlite", &[server.addr], &[server.child.id()], None, &args)?;
    }
    let (_cluster, url) = match &pg.store {
        Some(url) => (None, url.clone()),
        None => {
            let (c, url) = start_cluster(&pg.pg_cluster)?;
            (Some(c), url)
        }
    };
    let postmaster = _cluster.as_ref().and_then(|c| {
        let pid = std::fs::read_to_string(c.dir.join("pg/data/postmaster.pid")).ok()?;
        pid.lines().next()?.trim().parse::<u32>().ok()
    });
    let name = format!("w2h_pg_{}", std::process::id());
    let psql = |sql: &str| -> anyhow::Result<()> {
        let out =
            Command::new("psql").args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &url, "-c", sql]).output()?;
        if !out.status.success() {
            bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    psql(&format!("CREATE DATABASE {name}"))?;
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    let db_url = format!("{base}/{name}");
    let pool = pg.store_pool.to_string();
    let store = [
        std::ffi::OsStr::new("--store"),
        std::ffi::OsStr::new(&db_url),
        std::ffi::OsStr::new("--store-pool"),
        std::ffi::OsStr::new(&pool),
    ];
    let a = serve_with(&args.budgit, &store)?;
    let b = serve_with(&args.budgit, &store)?;
    let mut c = Conn::open(a.addr, READ_TIMEOUT)?;
    let t = Instant::now();
    set_limits(&mut c, &args)?;
    eprintln!("W2h-pg: {} limits set in {:.1} s", args.users, t.elapsed().as_secs_f64());
    measure_store("W2h-pg", &[a.addr, b.addr], &[a.child.id(), b.child.id()], postmaster, &args)?;
    drop((a, b));
    if pg.store.is_some() {
        psql(&format!("DROP DATABASE {name}"))?;
    }
    Ok(())
}
