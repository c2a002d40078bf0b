//! Console: the admin console's read API at scale — a service started in-process on
//! loopback with a temporary database, a 100,000-user directory imported, limits and
//! pools set and a month of usage ingested through the API, then every dashboard
//! endpoint timed over a keep-alive connection (first call, then the median of runs),
//! and the admin page's requests timed together with every cache cold.
//!
//! The month is the one before the current one, read with `now` fixed on its last
//! day, so the figures do not depend on the day of the month the bench runs.

use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use serde_json::{Value, json};

use crate::http::Conn;
use crate::measure::human;

/// Sizes.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Users in the imported directory, each with a limit.
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Usage events per user over the month.
    #[arg(long, default_value_t = 20)]
    events_per_user: usize,
    /// Groups, each with a pool; user `i` is in group `i % groups`.
    #[arg(long, default_value_t = 50)]
    groups: usize,
}

const ADMIN: &str = "console-bench-admin-token-0123456789abcdef";
const PRODUCTS: [&str; 2] = ["codex", "chatgpt"];
const MODELS: [&str; 5] = ["gpt-5", "gpt-5-codex", "gpt-5-mini", "o3", "gpt-5-pro"];

/// The console bench's calls over [`Conn`].
trait Calls {
    fn ok(&mut self, method: &str, path: &str, token: &str, body: &str) -> anyhow::Result<Vec<u8>>;
    fn json(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<Value>;
}

impl Calls for Conn {
    fn ok(&mut self, method: &str, path: &str, token: &str, body: &str) -> anyhow::Result<Vec<u8>> {
        let (status, buf) = self.request(method, path, token, body)?;
        if status != 200 && status != 201 {
            bail!("{method} {path}: {status} {}", String::from_utf8_lossy(&buf));
        }
        Ok(buf)
    }

    fn json(&mut self, method: &str, path: &str, body: &str) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice(&self.ok(method, path, ADMIN, body)?)?)
    }
}

fn email(i: usize) -> String {
    format!("user{i:06}@acme.com")
}

/// The month before the current one: its first day, number of days, and `now` on its last day.
fn last_month() -> anyhow::Result<(NaiveDate, u32, String)> {
    let today = Utc::now().date_naive();
    let this = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).context("a date")?;
    let first = this.checked_sub_months(chrono::Months::new(1)).context("a date")?;
    let days = u32::try_from((this - first).num_days())?;
    let now = Utc
        .from_utc_datetime(&first.and_hms_opt(18, 0, 0).context("a time")?)
        .checked_add_days(chrono::Days::new(u64::from(days - 1)))
        .context("a date")?;
    Ok((first, days, now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

/// Imports the directory, sets every limit and pool.
fn setup(c: &mut Conn, args: &Args) -> anyhow::Result<()> {
    let mut csv = String::from("email,department,cost_center\n");
    for i in 0..args.users {
        csv.push_str(&format!("{},d{},CC-{}\n", email(i), i % 12, i % 40));
    }
    c.ok("POST", "/v1/users/import?format=csv", ADMIN, &csv)?;
    let mut pools: Vec<Value> =
        (0..args.groups).map(|g| json!({ "group": format!("g{g}"), "credits": 20_000 * (g + 1) })).collect();
    let chunk = 1000 - args.groups.min(999);
    for (n, users) in (0..args.users).collect::<Vec<_>>().chunks(chunk).enumerate() {
        let limits: Vec<Value> = users
            .iter()
            .map(|&i| {
                let mut l =
                    json!({ "user": email(i), "credits": 1000, "group": format!("g{}", i % args.groups) });
                if i % 2 == 1 {
                    l["products"] = json!({ "codex": 600 });
                }
                l
            })
            .collect();
        let pools = if n == 0 { std::mem::take(&mut pools) } else { Vec::new() };
        let body = json!({ "commit": "bench", "limits": limits, "pools": pools });
        c.ok("PUT", "/v1/limits", ADMIN, &body.to_string())?;
    }
    Ok(())
}

/// Ingests `events_per_user` events per user over the month, in batches of 1,000.
fn ingest(c: &mut Conn, args: &Args, first: NaiveDate, days: u32) -> anyhow::Result<usize> {
    let start = Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).context("a time")?).timestamp();
    let total = args.users * args.events_per_user;
    let mut batch = String::with_capacity(200_000);
    let mut n = 0;
    for k in 0..args.events_per_user {
        for i in 0..args.users {
            let day = ((i * 7 + k * 3) % days as usize) as i64;
            let hour = (8 + (i + k) % 10) as i64;
            let ts = start + day * 86_400 + hour * 3600 + (i % 3600) as i64;
            // one user in 97 spends heavily and passes the limit
            let credits = if i % 97 == 0 { 80.0 } else { ((i * 13 + k * 7) % 40) as f64 * 0.25 + 0.5 };
            let product = PRODUCTS[(i + k) % 3 / 2];
            let model = MODELS[(i + 2 * k) % MODELS.len()];
            batch.push(if batch.is_empty() { '[' } else { ',' });
            batch.push_str(&format!(
                r#"{{"id":"b{i}-{k}","time":{ts},"user":"{}","product":"{product}","model":"{model}","credits":{credits}}}"#,
                email(i)
            ));
            n += 1;
            if n % 1000 == 0 || n == total {
                batch.push(']');
                c.ok("POST", "/v1/usage/events", ADMIN, &batch)?;
                batch.clear();
            }
        }
    }
    Ok(n)
}

/// Times one call: the first, then the median of `runs`; returns them and the response size.
fn time(c: &mut Conn, path: &str, token: &str, runs: usize) -> anyhow::Result<(Duration, Duration, usize)> {
    let t = Instant::now();
    let body = c.ok("GET", path, token, "")?;
    let first = t.elapsed();
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        c.ok("GET", path, token, "")?;
        times.push(t.elapsed());
    }
    times.sort_unstable();
    Ok((first, times[times.len() / 2], body.len()))
}

/// Runs the console workload.
pub fn run(data: &Path, args: &Args, runs: usize) -> anyhow::Result<()> {
    let dir = tempfile_dir(data)?;
    // a free port, then the service on it in a thread of its own (it runs its own runtime)
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let config = budgit_service::Config {
        db: dir.join("console.db"),
        listen: addr.to_string(),
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
    };
    std::thread::spawn(move || budgit_service::run(config));
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the service did not start on {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = Conn::open(addr, Duration::from_secs(300))?;
    let (first, days, now) = last_month()?;

    let t = Instant::now();
    setup(&mut c, args)?;
    println!(
        "console setup: {} users imported, limits and {} pools set in {}",
        args.users,
        args.groups,
        human(t.elapsed())
    );
    let t = Instant::now();
    let events = ingest(&mut c, args, first, days)?;
    let took = t.elapsed();
    println!(
        "console ingest: {events} events over {days} days in {} ({:.0} events/s)",
        human(took),
        events as f64 / took.as_secs_f64()
    );
    let token = c.json("POST", &format!("/v1/users/{}/tokens", email(1).replace('@', "%40")), "")?["token"]
        .as_str()
        .context("a token")?
        .to_string();

    let q = |path: &str| format!("{path}{}now={now}", if path.contains('?') { '&' } else { '?' });
    let summary = q("/v1/dashboard/summary");
    // the first read of another period loads its aggregates: one pass over its events
    let t = Instant::now();
    let s: Value = serde_json::from_slice(&c.ok("GET", &summary, ADMIN, "")?)?;
    println!("console first summary (loads the month's aggregates): {}", human(t.elapsed()));
    println!(
        "console check: used {} of {} across {} users; status {}; forecast {}",
        s["workspace"]["used"],
        s["workspace"]["exposure"],
        s["workspace"]["users"],
        s["workspace"]["status_counts"],
        s["workspace"]["forecast"]
    );

    let endpoints = [
        ("summary", q("/v1/dashboard/summary"), ADMIN),
        ("users (top 50 by used)", q("/v1/dashboard/users?limit=50"), ADMIN),
        ("users (sort=percent, status=warning)", q("/v1/dashboard/users?sort=percent&status=warning"), ADMIN),
        ("users (q=user0999, sort=email)", q("/v1/dashboard/users?q=user0999&sort=email"), ADMIN),
        ("users csv (all 100k)", q("/v1/dashboard/users?format=csv"), ADMIN),
        ("trends by product", q("/v1/dashboard/trends?by=product"), ADMIN),
        ("trends by model", q("/v1/dashboard/trends?by=model"), ADMIN),
        ("breakdown by cost_center", q("/v1/dashboard/breakdown?by=cost_center"), ADMIN),
        ("breakdown by user (top 50)", q("/v1/dashboard/breakdown?by=user"), ADMIN),
        ("breakdown by model csv", q("/v1/dashboard/breakdown?by=model&format=csv"), ADMIN),
        ("me (user token)", q("/v1/me"), token.as_str()),
    ];
    println!("console endpoint                              first      median of {runs}   bytes");
    for (name, path, tok) in &endpoints {
        let (first, median, bytes) = time(&mut c, path, tok, runs)?;
        println!("console {name:<38} {:>9} {:>12} {bytes:>9}", human(first), human(median));
    }

    // the admin page's reads with every cache cold: a new event (the view is rebuilt)
    // and a standings copy older than its one-second life (copied again)
    let page = [
        q("/v1/dashboard/summary"),
        q("/v1/dashboard/users?limit=50"),
        q("/v1/dashboard/trends?by=product"),
        q("/v1/dashboard/trends?by=model"),
        q("/v1/dashboard/breakdown?by=cost_center"),
        q("/v1/dashboard/breakdown?by=model"),
    ];
    let ts = Utc.from_utc_datetime(&first.and_hms_opt(12, 0, 0).context("a time")?).timestamp();
    let mut loads = Vec::new();
    for round in 0..runs.max(1) {
        std::thread::sleep(Duration::from_millis(1100));
        let event = format!(
            r#"{{"id":"page-{round}","time":{ts},"user":"{}","product":"codex","model":"gpt-5","credits":1}}"#,
            email(round)
        );
        c.ok("POST", "/v1/usage/events", ADMIN, &event)?;
        let t = Instant::now();
        for path in &page {
            c.ok("GET", path, ADMIN, "")?;
        }
        loads.push(t.elapsed());
    }
    loads.sort_unstable();
    println!(
        "console admin page load (6 reads, sequential, caches cold): median {} of {}, max {}",
        human(loads[loads.len() / 2]),
        loads.len(),
        human(loads[loads.len() - 1])
    );
    // the service thread ends with the process
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// A fresh directory for the database under the bench data directory.
fn tempfile_dir(data: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = data.join(format!("console-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
