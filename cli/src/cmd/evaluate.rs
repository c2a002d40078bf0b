//! `budgit evaluate`: usage against limits per user and group, for people and machines.
//!
//! Flags → validate the policies → read the directory and usage → resolve →
//! [`budgit_engine::evaluate::evaluate`] → a table, JSON or CSV on stdout. Bad
//! input rows go to stderr (or fail the run with `--strict`).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Instant;

use budgit_engine::evaluate::{Breakdown, EvaluateOptions, Evaluation, evaluate};
use budgit_engine::input::{read_directory, read_usage_files};
use budgit_engine::model::{Enforcement, Period};
use budgit_engine::period::parse_timezone;
use budgit_engine::resolve::resolve;
use budgit_engine::stack::LARGE_STACK;
use budgit_engine::standing::BlockedBy;
use budgit_engine::usage_table::{ContextKey, day_number};
use budgit_engine::value::{Credited, PerOutcome, ValueReport, value_report};
use budgit_engine::{Credits, Severity};

use super::flags::{PolicyArgs, UsageArgs, report_input_findings};
use super::{Status, leave_to_the_os};
use crate::render;

/// Evaluate usage against limits: per user and group status, alerts, forecast, breakdowns.
///
/// Reads the directory (CSV or `.jsonl`) and usage files (CSV, `.jsonl`, or `.json`
/// Costs API pages), evaluates the budget period containing `--now` in the
/// workspace timezone, and prints where everyone stands. Exit status: 0 done,
/// 1 invalid policies (or bad input rows with `--strict`), 2 unreadable input.
///
/// Rows dated before the period or after today are not counted: a warning on
/// stderr (and `outside_period` in `--format json`) says how many and why. Costs
/// API pages give each amount's product and model through `product`/`model` or
/// `line_item` (`"codex, gpt-5-codex"`: fetch them grouped by `user_id` and
/// `line_item`); a daily bucket counts on the workspace day holding most of it.
/// Credits in JSON are exact decimal numbers (`1234.5`, never `1234.499999`).
///
/// Under hard enforcement a user is blocked when their own limit or their team's
/// pool is used up: the table says `exceeded (blocked)` or, when the pool decides,
/// `exceeded (blocked by pool)`; JSON gives `blocked_by` (`limit`, `pool` or null).
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  budgit evaluate --directory examples/directory.csv --usage examples/usage.csv
  budgit evaluate --directory examples/directory.csv --usage examples/usage.csv \\
      --now 2026-11-27T12:00:00Z --format json > status.json
  budgit evaluate --directory examples/directory.csv --usage examples/usage.csv \\
      --by cost_center --format csv > chargeback.csv
  budgit evaluate --directory examples/directory.csv --usage examples/usage.csv --threads 1
  budgit evaluate --directory examples/directory.csv --usage examples/usage-context.csv \\
      --now 2026-11-27T12:00:00Z --by context.repo --outcomes examples/outcomes.csv")]
#[command(mut_arg("directory", |a| a.required(true)))]
pub struct Args {
    // --policies, --ref, --now
    #[command(flatten)]
    policy: PolicyArgs,
    // --directory, --usage, --threads
    #[command(flatten)]
    inputs: UsageArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// How many top users to show.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
    /// A breakdown to show (table) or to write instead of users (csv). `context.repo`,
    /// `context.ticket` and `context.workflow` break usage down by its context (CSV
    /// columns `context.repo`…, a JSON Lines `context` object): credits per value, and per
    /// group within it, "(none)" for usage without the key.
    #[arg(long, value_enum, value_name = "DIMENSION")]
    by: Option<By>,
    /// An outcomes file (CSV `time,kind,id,repo,user,team` or `.jsonl`): merged pull
    /// requests, resolved tickets. Adds credits per outcome per group and per repository.
    #[arg(long, value_name = "FILE")]
    outcomes: Option<std::path::PathBuf>,
    /// Fail (exit 1) when an input row is bad, instead of reporting and skipping it.
    #[arg(long)]
    strict: bool,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// For people: top users, groups, workspace totals.
    Table,
    /// The stable `evaluate` JSON shape.
    Json,
    /// One row per user (or per `--by` key), for spreadsheets.
    Csv,
}

/// Breakdown dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum By {
    /// Usage per product.
    Product,
    /// Usage per model.
    Model,
    /// Chargeback per `cost_center` attribute.
    #[value(name = "cost_center")]
    CostCenter,
    /// Usage per group.
    Group,
    /// Usage per repository (`context.repo`), per group within each.
    #[value(name = "context.repo")]
    ContextRepo,
    /// Usage per ticket (`context.ticket`), per group within each.
    #[value(name = "context.ticket")]
    ContextTicket,
    /// Usage per workflow (`context.workflow`), per group within each.
    #[value(name = "context.workflow")]
    ContextWorkflow,
}

impl By {
    /// The context key a dimension breaks usage down by.
    fn context(self) -> Option<ContextKey> {
        match self {
            By::ContextRepo => Some(ContextKey::Repo),
            By::ContextTicket => Some(ContextKey::Ticket),
            By::ContextWorkflow => Some(ContextKey::Workflow),
            By::Product | By::Model | By::CostCenter | By::Group => None,
        }
    }
}

/// Input files larger than this get a progress note on a terminal.
const PROGRESS_BYTES: u64 = 32 << 20;

pub fn run(args: Args) -> anyhow::Result<Status> {
    // `RUST_LOG=budgit=debug` prints how long each phase took.
    crate::logging::init(crate::logging::LogFormat::Text, crate::logging::LevelFilter::WARN)?;
    let mut phase = Phases::new();
    let now = args.policy.now();
    let validated = args.policy.validate(now)?;
    phase.done("validate");
    if super::validate::refuse_invalid(&validated, &args.policy.policies) {
        return Ok(Status::Findings);
    }
    let policies = &validated.policies;
    let Some(workspace) = policies.workspace() else {
        anyhow::bail!("the policies have no single `Workspace` document");
    };
    let (dir, mut findings) = read_directory(args.inputs.required_directory()?, &workspace.doc.attributes)?;
    phase.done("directory");
    let terminal = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut big = false;
    let threads = args.inputs.threads();
    let mut read_usage = |tz| {
        read_usage_files(&args.inputs.usage, &dir, tz, threads, |path, size| {
            if terminal && size >= PROGRESS_BYTES {
                big = true;
                eprint!("\rreading {} ({} MB)…\x1b[K", path.display(), size >> 20);
            }
        })
    };
    // Resolving needs the policies and the directory, reading the usage the directory
    // and the workspace's time zone: on more than one thread, resolve beside the read.
    let (resolution, usage) = match parse_timezone(&workspace.doc.timezone) {
        Some(tz) if threads > 1 => std::thread::scope(|scope| {
            let resolving = std::thread::Builder::new()
                .name("budgit-resolve".into())
                .stack_size(LARGE_STACK)
                .spawn_scoped(scope, || resolve(policies, &dir, now));
            let usage = read_usage(tz);
            let resolution = match resolving {
                Ok(handle) => {
                    handle.join().map_err(|_| anyhow::anyhow!("the thread resolving limits panicked"))?
                }
                Err(_) => resolve(policies, &dir, now),
            };
            anyhow::Ok((resolution, usage))
        })?,
        _ => {
            let resolution = resolve(policies, &dir, now)?;
            let usage = read_usage(resolution.timezone);
            (Ok(resolution), usage)
        }
    };
    // The resolution's error first, as when one ran after the other.
    let resolution = resolution?;
    let (table, usage_findings) = usage?;
    if big {
        eprintln!("\rread {} usage rows in {:.1} s\x1b[K", table.len(), started.elapsed().as_secs_f64());
    }
    phase.done("resolve and usage");
    findings.extend(usage_findings);
    let outcomes = match &args.outcomes {
        Some(path) => {
            let (outcomes, bad) = budgit_engine::input::read_outcomes(path, resolution.timezone)?;
            findings.extend(bad);
            Some(outcomes)
        }
        None => None,
    };
    report_input_findings(&findings);
    let bad = findings.iter().filter(|d| d.severity == Severity::Error).count();
    if args.strict && bad > 0 {
        eprintln!("error: {} in the input; failing because of `--strict`", render::plural(bad, "bad row"));
        return Ok(Status::Findings);
    }
    let mut evaluation = evaluate(policies, &dir, &resolution, &table, EvaluateOptions { top: args.top })?;
    let key = args.by.and_then(By::context).or(outcomes.as_ref().map(|_| ContextKey::Repo));
    if let Some(key) = key {
        evaluation.value = Some(value_of(&evaluation, &table, key, outcomes.as_deref()));
    }
    phase.done("evaluate");
    // Rows outside the period are data in the JSON output and a warning here, whatever the format.
    report_input_findings(
        &evaluation.outside_period.diagnostics(&evaluation.period, resolution.timezone.name()),
    );
    let text = match args.format {
        Format::Json => pretty_json(&mut evaluation, threads)?,
        Format::Csv => csv(&evaluation, args.by),
        Format::Table => table_text(&evaluation, &workspace.doc.name, args.top, args.by),
    };
    phase.done("render");
    render::emit(&text)?;
    phase.done("write");
    leave_to_the_os(evaluation);
    leave_to_the_os((text, table, resolution, dir, validated));
    Ok(Status::Clean)
}

/// The value report of the evaluated period: usage per `key` value and per group,
/// credits per outcome for the outcomes dated in the period.
fn value_of(
    e: &Evaluation<'_>,
    table: &budgit_engine::usage_table::UsageTable,
    key: ContextKey,
    outcomes: Option<&[budgit_engine::input::Outcome]>,
) -> ValueReport {
    // directory positions are table user ids; `users` is in directory order
    let team_of: Vec<Option<&str>> = e.users.iter().map(|u| u.group).collect();
    let group_of: std::collections::HashMap<&str, Option<&str>> =
        e.users.iter().map(|u| (u.user, u.group)).collect();
    let days = day_number(e.period.start_date)..day_number(e.period.today) + 1;
    let credited: Option<Vec<Credited<'_>>> = outcomes.map(|list| {
        list.iter()
            .filter(|o| o.time >= e.period.start && o.time < e.period.end)
            .map(|o| Credited {
                outcome: o,
                team: o
                    .team
                    .as_deref()
                    .or_else(|| o.user.as_deref().and_then(|u| group_of.get(u).copied().flatten())),
            })
            .collect()
    });
    value_report(table, key, days, &team_of, credited.as_deref())
}

/// A value as shown: "(none)" for usage without the key.
fn none(key: Option<&str>) -> &str {
    key.unwrap_or("(none)")
}

/// A group as shown: "(no group)" for people in none, as the console names them.
fn group_name(group: Option<&str>) -> &str {
    group.unwrap_or("(no group)")
}

fn per_outcome_rows(title: &str, rows: &[PerOutcome]) -> Vec<Vec<String>> {
    let mut out = vec![header(&[title, "used", "outcomes", "credits per outcome"])];
    for r in rows {
        let key = if title == "group" { group_name(r.key.as_deref()) } else { none(r.key.as_deref()) };
        out.push(vec![
            key.to_string(),
            r.used.to_string(),
            r.outcomes.to_string(),
            r.credits_per_outcome.map_or_else(|| "-".to_string(), |c| c.to_string()),
        ]);
    }
    out
}

/// The value sections of the table: usage per value with its largest groups, and
/// credits per outcome.
fn value_text(out: &mut String, v: &ValueReport, top: usize) {
    let _ = writeln!(
        out,
        "
by {}",
        v.by
    );
    let mut rows = vec![header(&[&v.by, "used", "share", "groups"])];
    for r in v.rows.iter().take(top.max(1)) {
        let groups: Vec<String> =
            r.teams.iter().take(3).map(|t| format!("{} {}", group_name(t.team.as_deref()), t.used)).collect();
        let more = r.teams.len().saturating_sub(3);
        let mut groups = groups.join(", ");
        if more > 0 {
            groups.push_str(&format!(", {more} more"));
        }
        rows.push(vec![none(r.key.as_deref()).to_string(), r.used.to_string(), percent(r.share), groups]);
    }
    out.push_str(&render::columns(&rows, &[1, 2]));
    if v.rows.len() > top.max(1) {
        let _ =
            writeln!(out, "… {} more (`--top` shows more, `--format csv` all)", v.rows.len() - top.max(1));
    }
    if let Some(o) = &v.outcomes {
        let kinds: Vec<String> = o.kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(
            out,
            "
credits per outcome ({}: {})",
            render::plural(o.outcomes as usize, "outcome"),
            if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") }
        );
        out.push_str(&render::columns(&per_outcome_rows("group", &o.teams), &[1, 2, 3]));
        if !o.repos.is_empty() {
            out.push('\n');
            out.push_str(&render::columns(&per_outcome_rows("repo", &o.repos), &[1, 2, 3]));
        }
    }
}

/// The evaluation as `serde_json::to_string_pretty` writes it, byte for byte, with
/// its users (most of the text: one object each) written on up to `threads`
/// threads and spliced in where the one-thread writer puts them.
fn pretty_json(e: &mut Evaluation<'_>, threads: usize) -> anyhow::Result<String> {
    const USERS: &str = "{\n  \"users\": [],";
    let users = std::mem::take(&mut e.users);
    let rest = serde_json::to_string_pretty(&*e);
    e.users = users;
    let mut rest = rest?;
    rest.push('\n');
    let (Some(after), false) = (rest.strip_prefix(USERS), e.users.is_empty()) else {
        // No users, or a layout this splice does not know: the plain writer.
        let mut s = serde_json::to_string_pretty(&*e)?;
        s.push('\n');
        return Ok(s);
    };
    let per = e.users.len().div_ceil(threads.max(1));
    let parts: Vec<anyhow::Result<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = e
            .users
            .chunks(per)
            .map(|chunk| {
                scope.spawn(move || -> anyhow::Result<String> {
                    let mut out = String::with_capacity(chunk.len() * 1024);
                    for user in chunk {
                        // Each element of the array sits two levels in: four spaces
                        // before every line (a JSON string never holds a raw newline).
                        let one = serde_json::to_string_pretty(user)?;
                        out.push_str(",\n    ");
                        for (k, line) in one.split('\n').enumerate() {
                            if k > 0 {
                                out.push_str("\n    ");
                            }
                            out.push_str(line);
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a JSON writer thread failed"))))
            .collect()
    });
    let mut text =
        String::with_capacity(rest.len() + parts.iter().flatten().map(String::len).sum::<usize>() + 16);
    text.push_str("{\n  \"users\": [");
    for (k, part) in parts.into_iter().enumerate() {
        let part = part?;
        // The first element follows the bracket on a line of its own, without a comma.
        text.push_str(if k == 0 { part.strip_prefix(',').unwrap_or(&part) } else { &part });
    }
    text.push_str("\n  ],");
    text.push_str(after);
    Ok(text)
}

/// Times the phases of a run, one debug event each.
struct Phases(Instant);

impl Phases {
    fn new() -> Phases {
        Phases(Instant::now())
    }

    fn done(&mut self, phase: &'static str) {
        let now = Instant::now();
        tracing::debug!(phase, ms = (now - self.0).as_millis(), "evaluate phase done");
        self.0 = now;
    }
}

fn percent(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_string(), |p| format!("{p:.2}%"))
}

fn table_text(e: &Evaluation<'_>, workspace: &str, top: usize, by: Option<By>) -> String {
    let mut out = String::new();
    let t = &e.totals;
    let _ = writeln!(
        out,
        "{workspace}: {} {} to {} (today {}), {} enforcement",
        period_name(e.period.kind),
        e.period.start_date,
        e.period.last_date,
        e.period.today,
        match e.enforcement {
            Enforcement::Hard => "hard",
            Enforcement::Soft => "soft",
        }
    );
    let _ = writeln!(
        out,
        "used {} of {} exposure ({}); {}: {} ok, {} warning, {} exceeded, {} blocked",
        t.used,
        t.exposure,
        percent(t.percent),
        render::plural(t.users, "user"),
        t.ok,
        t.warning,
        t.exceeded,
        t.blocked
    );
    if !e.unknown_users.is_empty() {
        let _ = writeln!(
            out,
            "not in the directory: {} used {} (counted in the total)",
            render::plural(e.unknown_users.len(), "user"),
            t.used_by_unknown_users
        );
    }
    let mut order: Vec<usize> = (0..e.users.len()).filter(|&i| !e.users[i].used.is_zero()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&e.users[a], &e.users[b]);
        y.status
            .cmp(&x.status)
            .then_with(|| y.percent.unwrap_or(f64::MAX).total_cmp(&x.percent.unwrap_or(f64::MAX)))
            .then_with(|| y.used.cmp(&x.used))
            .then_with(|| x.user.cmp(y.user))
    });
    if !order.is_empty() && top > 0 {
        let _ = writeln!(out, "\ntop users by percent of limit");
        let mut rows = vec![header(&[
            "user",
            "group",
            "limit",
            "used",
            "remaining",
            "percent",
            "status",
            "exhausted on",
        ])];
        for &i in order.iter().take(top) {
            let u = &e.users[i];
            let mut status = u.status.as_str().to_string();
            match u.blocked_by {
                Some(BlockedBy::Limit) => status.push_str(" (blocked)"),
                // their own limit has room: say that the team pool stops them
                Some(BlockedBy::Pool) => status.push_str(" (blocked by pool)"),
                None => {}
            }
            let capped: Vec<&str> =
                u.products.iter().chain(&u.models).filter(|c| c.blocked).map(|c| c.name).collect();
            if !capped.is_empty() && !u.blocked {
                status.push_str(&format!(" ({} blocked)", capped.join(", ")));
            }
            rows.push(vec![
                u.user.to_string(),
                u.group.unwrap_or("-").to_string(),
                u.limit.to_string(),
                u.used.to_string(),
                u.remaining.to_string(),
                percent(u.percent),
                status,
                u.forecast_exhausted_on.map_or_else(|| "-".to_string(), |d| d.to_string()),
            ]);
        }
        out.push_str(&render::columns(&rows, &[2, 3, 4, 5]));
    }
    if !e.groups.is_empty() {
        let _ = writeln!(out, "\ngroups");
        let mut rows = vec![header(&["group", "members", "used", "pool", "percent", "status"])];
        for g in &e.groups {
            rows.push(vec![
                g.group.to_string(),
                g.members.to_string(),
                g.used.to_string(),
                g.pool.map_or_else(|| "-".to_string(), |p| p.to_string()),
                percent(g.percent),
                g.status.as_str().to_string(),
            ]);
        }
        out.push_str(&render::columns(&rows, &[1, 2, 3, 4]));
    }
    if let Some(v) = &e.value {
        value_text(&mut out, v, top);
        if by.is_some_and(|b| b.context().is_some()) {
            return out;
        }
    }
    let group_rows;
    let (title, rows) = match by {
        None | Some(By::Product) | Some(By::ContextRepo | By::ContextTicket | By::ContextWorkflow) => {
            ("product", &e.products)
        }
        Some(By::Group) => {
            group_rows = groups_breakdown(e);
            ("group", &group_rows)
        }
        Some(By::Model) => ("model", &e.models),
        Some(By::CostCenter) => match &e.cost_centers {
            Some(rows) => ("cost_center", rows),
            None => {
                let _ = writeln!(out, "\nno chargeback: the workspace declares no `cost_center` attribute");
                return out;
            }
        },
    };
    if !rows.is_empty() {
        let _ = writeln!(out, "\nby {title}");
        out.push_str(&render::columns(&breakdown_rows(title, rows), &[1, 2, 3, 4]));
    }
    out
}

fn period_name(kind: Period) -> &'static str {
    match kind {
        Period::Day => "day",
        Period::Week => "week",
        Period::Month => "month",
        Period::Quarter => "quarter",
    }
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_uppercase()).collect()
}

fn breakdown_rows(title: &str, rows: &[Breakdown]) -> Vec<Vec<String>> {
    let chargeback = rows.iter().any(|r| r.users.is_some());
    let mut out = vec![if chargeback {
        header(&[title, "users", "used", "exposure", "share"])
    } else {
        header(&[title, "used", "share"])
    }];
    for r in rows {
        let key = if r.key.is_empty() { "(none)".to_string() } else { r.key.clone() };
        out.push(if chargeback {
            vec![
                key,
                r.users.unwrap_or(0).to_string(),
                r.used.to_string(),
                r.exposure.unwrap_or(Credits::ZERO).to_string(),
                percent(r.share),
            ]
        } else {
            vec![key, r.used.to_string(), percent(r.share)]
        });
    }
    out
}

/// A CSV field, quoted when it needs to be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Usage per group as breakdown rows, largest first.
fn groups_breakdown(e: &Evaluation<'_>) -> Vec<Breakdown> {
    let mut rows: Vec<Breakdown> = e
        .groups
        .iter()
        .map(|g| Breakdown {
            key: g.group.to_string(),
            used: g.used,
            share: g.used.percent_of(e.totals.used),
            users: None,
            exposure: None,
        })
        .collect();
    rows.sort_by(|a, b| b.used.cmp(&a.used).then_with(|| a.key.cmp(&b.key)));
    rows
}

fn csv(e: &Evaluation<'_>, by: Option<By>) -> String {
    let mut out = String::new();
    let group_rows;
    if let Some(v) = &e.value {
        if by.is_some_and(|b| b.context().is_some()) {
            let _ = writeln!(out, "{},group,used,share", v.by);
            for r in &v.rows {
                let key = field(none(r.key.as_deref()));
                let share = r.share.map(|p| p.to_string()).unwrap_or_default();
                let _ = writeln!(out, "{key},,{},{share}", r.used);
                for t in &r.teams {
                    let share = t.used.percent_of(v.used).map(|p| p.to_string()).unwrap_or_default();
                    let _ =
                        writeln!(out, "{key},{},{},{share}", field(group_name(t.team.as_deref())), t.used);
                }
            }
            return out;
        }
        if by.is_none()
            && let Some(o) = &v.outcomes
        {
            out.push_str("group,used,outcomes,credits_per_outcome\n");
            for r in &o.teams {
                let per = r.credits_per_outcome.map(|c| c.to_string()).unwrap_or_default();
                let _ =
                    writeln!(out, "{},{},{},{per}", field(group_name(r.key.as_deref())), r.used, r.outcomes);
            }
            return out;
        }
    }
    let rows = match by {
        Some(By::Group) => {
            out.push_str("group,used,share\n");
            group_rows = groups_breakdown(e);
            &group_rows
        }
        Some(By::ContextRepo | By::ContextTicket | By::ContextWorkflow) => return out,
        None => {
            out.push_str(
                "user,group,source,limit,used,remaining,percent,status,blocked,forecast_exhausted_on\n",
            );
            for u in &e.users {
                let _ = writeln!(
                    out,
                    "{},{},{},{},{},{},{},{},{},{}",
                    field(u.user),
                    field(u.group.unwrap_or("")),
                    u.source.as_str(),
                    u.limit,
                    u.used,
                    u.remaining,
                    u.percent.map(|p| p.to_string()).unwrap_or_default(),
                    u.status.as_str(),
                    u.blocked,
                    u.forecast_exhausted_on.map(|d| d.to_string()).unwrap_or_default()
                );
            }
            return out;
        }
        Some(By::Product) => {
            out.push_str("product,used,share\n");
            &e.products
        }
        Some(By::Model) => {
            out.push_str("model,used,share\n");
            &e.models
        }
        Some(By::CostCenter) => {
            out.push_str("cost_center,users,used,exposure,share\n");
            match &e.cost_centers {
                Some(rows) => rows,
                None => return out,
            }
        }
    };
    for r in rows {
        let share = r.share.map(|p| p.to_string()).unwrap_or_default();
        match (r.users, r.exposure) {
            (Some(n), Some(x)) => {
                let _ = writeln!(out, "{},{n},{},{x},{share}", field(&r.key), r.used);
            }
            _ => {
                let _ = writeln!(out, "{},{},{share}", field(&r.key), r.used);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use budgit_engine::input::{read_directory, read_usage_files};
    use budgit_engine::validate::{ValidateOptions, validate_dir};

    use super::*;

    #[test]
    fn json_written_on_many_threads_is_the_one_thread_writer_s_byte_for_byte() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T17:00:00Z").unwrap().into();
        let validated = validate_dir(&root.join("policies"), &ValidateOptions { now }).unwrap();
        let policies = &validated.policies;
        let workspace = policies.workspace().unwrap();
        let (dir, _) =
            read_directory(&root.join("examples/directory.csv"), &workspace.doc.attributes).unwrap();
        let resolution = resolve(policies, &dir, now).unwrap();
        let (table, _) =
            read_usage_files(&[root.join("examples/usage.csv")], &dir, resolution.timezone, 1, |_, _| {})
                .unwrap();
        let mut evaluation =
            evaluate(policies, &dir, &resolution, &table, EvaluateOptions { top: 10 }).unwrap();
        assert!(evaluation.users.len() > 7, "{}", evaluation.users.len());
        let want = format!("{}\n", serde_json::to_string_pretty(&evaluation).unwrap());
        // More threads than users too: some get none.
        for threads in [1, 2, 3, 7, evaluation.users.len() + 5] {
            assert_eq!(pretty_json(&mut evaluation, threads).unwrap(), want, "{threads} threads");
        }
        evaluation.users.clear();
        let want = format!("{}\n", serde_json::to_string_pretty(&evaluation).unwrap());
        assert_eq!(pretty_json(&mut evaluation, 3).unwrap(), want, "no users");
    }
}
