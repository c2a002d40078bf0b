//! The reconciler: make the workspace's applied limits match the policies at the approved ref.
//!
//! Shaped like a kube-rs controller: [`reconcile`] reads desired and live
//! state, plans the difference ([`changes::plan_changes`], pure), checks the
//! blast radius, then applies it in idempotent batches while holding the
//! workspace lease, and returns an [`Action`] saying when to run again.
//! [`error_policy`] turns a failure into an `Action`. The reconciler never
//! learns why it runs, so every run is level-triggered and idempotent: a run
//! killed at any point is finished by the next one, and nothing is applied
//! twice (a value already in place is reported unchanged).
//!
//! Time is injected ([`Clock`]) so retries, backoff and lease renewal are
//! tested without waiting. [`controller::run`] is the one loop that runs it on
//! a schedule. Rendering the run report belongs to the CLI; the engine only
//! emits `tracing` events.

pub mod changes;
pub mod controller;
pub mod desired;
pub mod metrics;
pub mod retry;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

pub use changes::{
    Breach, Change, Changes, Desired, Direction, Drift, DriftItem, Guard, Live, PlanOptions, plan_changes,
};
pub use controller::{Ended, Pass, Schedule, Summary, outcome_name};
pub use desired::{DesiredState, GitDesired};
pub use retry::{Backoff, Clock, SystemClock};

use crate::load::git::GitError;
use crate::model::Limit;
use crate::resolve::ResolveError;
use crate::workspace::{Batch, ItemStatus, LimitSet, RunSummary, Target, WorkspaceError};

/// Why a run stopped before or while applying.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The ref or the repository could not be read.
    #[error(transparent)]
    Git(#[from] GitError),
    /// `--require-signed` and the commit carries no signature.
    #[error("commit `{commit}` is not signed, and `--require-signed` is set")]
    Unsigned {
        /// The commit.
        commit: String,
    },
    /// `--require-signed` and the signature does not verify.
    #[error("the signature of commit `{commit}` does not verify: {detail}")]
    BadSignature {
        /// The commit.
        commit: String,
        /// What gpg said.
        detail: String,
    },
    /// The policies at the ref fail validation.
    #[error("the policies at `{commit}` fail validation ({errors} errors; first: {first}); nothing applied")]
    InvalidPolicy {
        /// The commit.
        commit: String,
        /// Number of errors.
        errors: usize,
        /// The first error, located.
        first: String,
    },
    /// The desired state holds no user.
    #[error("the desired state at `{commit}` holds no user: refusing to apply an empty state")]
    EmptyDesired {
        /// The commit.
        commit: String,
    },
    /// The policies could not be resolved.
    #[error("cannot resolve the policies: {0}")]
    Resolve(#[from] ResolveError),
    /// The directory could not be read.
    #[error("cannot read the directory: {0}")]
    Directory(String),
    /// The run changes more than the guard allows.
    #[error("refusing to apply: {0}; review the change, then re-run with `--allow-mass-change`")]
    BlastRadius(Breach),
    /// Another reconciler holds the lease.
    #[error("another reconciler is applying: lease `{name}` is held by `{holder}`")]
    LeaseHeld {
        /// The lease.
        name: String,
        /// Its holder.
        holder: String,
    },
    /// A workspace call failed (after retries, when retryable).
    #[error(transparent)]
    Workspace(WorkspaceError),
}

impl From<WorkspaceError> for ReconcileError {
    fn from(e: WorkspaceError) -> Self {
        match e {
            WorkspaceError::LeaseHeld { name, holder, .. } => ReconcileError::LeaseHeld { name, holder },
            other => ReconcileError::Workspace(other),
        }
    }
}

impl ReconcileError {
    /// True when waiting for a new commit (not retrying) is the fix.
    pub fn needs_new_commit(&self) -> bool {
        matches!(
            self,
            ReconcileError::Unsigned { .. }
                | ReconcileError::BadSignature { .. }
                | ReconcileError::InvalidPolicy { .. }
                | ReconcileError::EmptyDesired { .. }
                | ReconcileError::BlastRadius(_)
        )
    }
}

/// What to do after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// Run again after this long; `None`: only when asked (a one-shot run).
    pub requeue_after: Option<Duration>,
    /// The run needs a person: a refused ref or a blast-radius breach.
    pub alert: bool,
}

impl Action {
    /// Run again after `after`.
    pub fn requeue(after: Duration) -> Action {
        Action { requeue_after: Some(after), alert: false }
    }

    /// Wait for the next scheduled run (a new commit may fix it) and alert meanwhile.
    pub fn await_change(every: Option<Duration>) -> Action {
        Action { requeue_after: every, alert: true }
    }
}

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Who writes, as the audit log names it; also how last-applied values are found.
    pub actor: String,
    /// The lease's name.
    pub lease_name: String,
    /// This reconciler's identity on the lease.
    pub holder: String,
    /// How long the lease lasts without renewal.
    pub lease_ttl: Duration,
    /// Items per write.
    pub batch_size: usize,
    /// Plan and report only.
    pub dry_run: bool,
    /// Leave unmanaged changes in place.
    pub no_revert: bool,
    /// The blast-radius guard.
    pub guard: Guard,
    /// Retries of one write.
    pub backoff: Backoff,
    /// Consecutive failed writes that stop the run (the circuit breaker).
    pub breaker_threshold: u32,
    /// The schedule, in daemon mode.
    pub every: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            actor: "budgit-reconcile".to_string(),
            lease_name: "budgit-reconcile".to_string(),
            holder: "budgit-reconcile".to_string(),
            lease_ttl: Duration::from_secs(60),
            batch_size: 500,
            dry_run: false,
            no_revert: false,
            guard: Guard::default(),
            backoff: Backoff::default(),
            breaker_threshold: 3,
            every: None,
        }
    }
}

/// Everything a run needs; built once, used for every run.
pub struct Context<'a> {
    /// The workspace.
    pub workspace: &'a dyn Target,
    /// The desired state's source.
    pub desired: &'a dyn DesiredState,
    /// Time.
    pub clock: &'a dyn Clock,
    /// Behaviour.
    pub options: Options,
    /// Set to stop between batches (SIGTERM).
    pub shutdown: &'a AtomicBool,
}

/// What happened to one user in a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemReport {
    /// The email (or `pool:<group>`).
    pub user: String,
    /// The live value before.
    pub before: Option<Limit>,
    /// The value asked for.
    pub after: Option<Limit>,
    /// Which way it moves.
    pub direction: Direction,
    /// Drift, when the user drifted.
    pub drift: Drift,
    /// Why it failed or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ItemReport {
    fn of(c: &Change, reason: Option<String>) -> ItemReport {
        ItemReport {
            user: c.user.clone(),
            before: c.before.clone(),
            after: c.after.clone(),
            direction: c.direction,
            drift: c.drift,
            reason,
        }
    }
}

/// The run report: applied / unchanged / skipped / failed / not attempted, with drift.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct RunReport {
    /// The commit applied.
    pub commit: String,
    /// The plan digest written with every change.
    pub plan_digest: String,
    /// Nothing was written.
    pub dry_run: bool,
    /// Changes the workspace made.
    pub applied: Vec<ItemReport>,
    /// Users already at their desired limit.
    pub unchanged: usize,
    /// Changes planned but found in place when written (another writer, or a retry after a lost answer).
    pub already_applied: Vec<ItemReport>,
    /// Unmanaged changes left in place.
    pub skipped: Vec<ItemReport>,
    /// Changes that failed.
    pub failed: Vec<ItemReport>,
    /// Changes not tried (circuit open, shutdown, lease lost).
    pub not_attempted: Vec<ItemReport>,
    /// Pool writes made.
    pub pools_applied: usize,
    /// Every drifted user.
    pub drift: Vec<DriftItem>,
    /// Write attempts that failed and were retried.
    pub retries: u32,
    /// The circuit breaker stopped the run.
    pub circuit_open: bool,
    /// A shutdown request stopped the run between batches.
    pub interrupted: bool,
    /// The changes the run would make (dry run) or planned.
    pub planned: usize,
    /// A dry run past the blast-radius guard: why a real run would refuse.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blast_radius: Option<String>,
}

impl RunReport {
    /// True when some planned change failed or was not attempted.
    pub fn incomplete(&self) -> bool {
        !self.failed.is_empty() || !self.not_attempted.is_empty()
    }
}

/// The outcome of a run: what to do next, and what happened.
#[derive(Debug, Clone)]
pub struct Run {
    /// When to run again.
    pub action: Action,
    /// The report.
    pub report: RunReport,
}

/// Makes the workspace's applied limits match the policies at the approved ref.
///
/// Idempotent: a second run changes nothing. Refusals (invalid ref, empty
/// state, blast radius, held lease) are errors; write failures of single
/// batches are in the report. Every run that is not a dry run ends by
/// reporting a [`RunSummary`] to the workspace; a failure to report is a
/// `tracing` warning and otherwise ignored, so status reporting never fails a run.
pub fn reconcile(ctx: &Context<'_>) -> Result<Run, ReconcileError> {
    let started = ctx.clock.elapsed();
    let outcome = run(ctx);
    if !ctx.options.dry_run {
        let took = ctx.clock.elapsed().saturating_sub(started);
        let summary = summarize(&outcome, took);
        if let Err(e) = ctx.workspace.report_run(&summary) {
            let error = e.to_string();
            tracing::warn!(error, "the run's status was not reported to the workspace");
        }
    }
    outcome
}

/// Most failure lines a summary carries; the full list is in the run report.
const MAX_SUMMARY_FAILURES: usize = 50;

/// The summary of a run's outcome, as [`Target::report_run`] sends it.
pub fn summarize(outcome: &Result<Run, ReconcileError>, took: Duration) -> RunSummary {
    let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(run) => {
            let r = &run.report;
            let line = |i: &ItemReport| match &i.reason {
                Some(why) => format!("{}: {why}", i.user),
                None => i.user.clone(),
            };
            let failures: Vec<String> = r.failed.iter().chain(&r.not_attempted).map(line).collect();
            let extra = failures.len().saturating_sub(MAX_SUMMARY_FAILURES);
            let mut failures: Vec<String> = failures.into_iter().take(MAX_SUMMARY_FAILURES).collect();
            if extra > 0 {
                failures.push(format!("…and {extra} more"));
            }
            RunSummary {
                at: None,
                ok: !r.incomplete(),
                commit: Some(r.commit.clone()).filter(|c| !c.is_empty()),
                plan_digest: Some(r.plan_digest.clone()).filter(|d| !d.is_empty()),
                applied: r.applied.len() + r.pools_applied,
                unchanged: r.unchanged + r.already_applied.len(),
                drift: r.drift.len(),
                drift_unmanaged: r.drift.iter().filter(|d| d.kind == Drift::Unmanaged).count(),
                failures,
                duration_ms,
            }
        }
        Err(e) => RunSummary {
            ok: false,
            commit: error_commit(e),
            failures: vec![e.to_string()],
            duration_ms,
            ..RunSummary::default()
        },
    }
}

/// The commit a refusal names, when it names one.
fn error_commit(e: &ReconcileError) -> Option<String> {
    match e {
        ReconcileError::Unsigned { commit }
        | ReconcileError::BadSignature { commit, .. }
        | ReconcileError::InvalidPolicy { commit, .. }
        | ReconcileError::EmptyDesired { commit } => Some(commit.clone()),
        _ => None,
    }
}

/// One run, without the status report.
fn run(ctx: &Context<'_>) -> Result<Run, ReconcileError> {
    let o = &ctx.options;
    let desired = ctx.desired.desired(ctx.workspace)?;
    if desired.limits.is_empty() {
        return Err(ReconcileError::EmptyDesired { commit: desired.commit });
    }
    let live = Live::new(read(ctx, |w| w.limits())?, read(ctx, |w| w.pools())?);
    let last = read(ctx, |w| w.last_applied(&o.actor))?;
    let changes = plan_changes(&desired, &live, &last, PlanOptions { no_revert: o.no_revert });
    // A dry run shows the change even past the guard, and says so; a real run refuses.
    let breach = changes.check_blast_radius(&o.guard).err();
    if let Some(b) = &breach
        && !o.dry_run
    {
        return Err(ReconcileError::BlastRadius(b.clone()));
    }

    let mut report = RunReport {
        commit: changes.commit.clone(),
        plan_digest: changes.digest.clone(),
        dry_run: o.dry_run,
        unchanged: changes.unchanged,
        skipped: changes
            .skipped
            .iter()
            .map(|c| ItemReport::of(c, Some("unmanaged; --no-revert".into())))
            .collect(),
        drift: changes.drift.clone(),
        planned: changes.changes.len(),
        blast_radius: breach.map(|b| format!("{b}; a real run needs `--allow-mass-change`")),
        ..RunReport::default()
    };
    let action = Action { requeue_after: o.every, alert: false };
    if o.dry_run {
        report.not_attempted = changes.changes.iter().map(|c| ItemReport::of(c, None)).collect();
        return Ok(Run { action, report });
    }
    if changes.is_empty() {
        return Ok(Run { action, report });
    }

    ctx.workspace.acquire_lease(&o.lease_name, &o.holder, o.lease_ttl)?;
    let mut renewed_at = ctx.clock.elapsed();
    apply_all(ctx, &desired, &changes, &mut report, &mut renewed_at);
    // A failed release is harmless: the lease lapses after its TTL, and the
    // report of what was applied matters more than this error.
    let _ = ctx.workspace.release_lease(&o.lease_name, &o.holder);
    let action = if report.incomplete() {
        Action::requeue(o.every.map_or(o.backoff.cap, |e| e.min(o.backoff.cap)))
    } else {
        action
    };
    Ok(Run { action, report })
}

/// A read, retried with backoff when the failure is transient.
fn read<T>(
    ctx: &Context<'_>,
    call: impl Fn(&dyn Target) -> Result<T, WorkspaceError>,
) -> Result<T, ReconcileError> {
    let mut attempt = 0;
    loop {
        match call(ctx.workspace) {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt + 1 < ctx.options.backoff.attempts => {
                ctx.clock.sleep(ctx.options.backoff.delay(attempt, e.retry_after(), ctx.clock.random()));
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// One planned write: limit items by position in `changes.changes`, and pools.
struct Chunk {
    items: Vec<usize>,
    pools: bool,
}

/// Writes every chunk; stops early (the rest reported not attempted) on shutdown,
/// an open circuit, or a lease that could not be renewed.
fn apply_all(
    ctx: &Context<'_>,
    desired: &Desired,
    changes: &Changes,
    report: &mut RunReport,
    renewed_at: &mut Duration,
) {
    let o = &ctx.options;
    let size = o.batch_size.max(1);
    let mut chunks: Vec<Chunk> = (0..changes.changes.len())
        .collect::<Vec<_>>()
        .chunks(size)
        .map(|c| Chunk { items: c.to_vec(), pools: false })
        .collect();
    // Pools and settings go last: members' limits first, so a new pool never blocks people early.
    chunks.push(Chunk { items: Vec::new(), pools: true });
    let mut consecutive_failures = 0u32;
    for (i, chunk) in chunks.iter().enumerate() {
        let mut stop = if ctx.shutdown.load(Ordering::SeqCst) {
            report.interrupted = true;
            Some("shutdown requested".to_string())
        } else if consecutive_failures >= o.breaker_threshold {
            report.circuit_open = true;
            Some("circuit open after repeated failures".to_string())
        } else {
            None
        };
        if stop.is_none() && ctx.clock.elapsed().saturating_sub(*renewed_at) >= o.lease_ttl / 3 {
            match read(ctx, |w| w.acquire_lease(&o.lease_name, &o.holder, o.lease_ttl)) {
                Ok(_) => *renewed_at = ctx.clock.elapsed(),
                Err(e) => stop = Some(format!("lease not renewed: {e}")),
            }
        }
        if let Some(why) = stop {
            for later in &chunks[i..] {
                for &k in &later.items {
                    report.not_attempted.push(ItemReport::of(&changes.changes[k], Some(why.clone())));
                }
            }
            return;
        }
        let batch = batch_of(o, desired, changes, chunk);
        if batch.is_empty() {
            continue;
        }
        if write(ctx, &batch, changes, chunk, report) {
            consecutive_failures = 0;
        } else {
            consecutive_failures += 1;
        }
    }
}

fn batch_of(o: &Options, desired: &Desired, changes: &Changes, chunk: &Chunk) -> Batch {
    let mut batch = Batch {
        commit: desired.commit.clone(),
        plan_digest: changes.digest.clone(),
        actor: o.actor.clone(),
        ..Batch::default()
    };
    for &k in &chunk.items {
        let c = &changes.changes[k];
        match &c.set {
            Some(set) => batch.limits.push(set.clone()),
            None => batch.remove.push(c.user.clone()),
        }
    }
    if chunk.pools {
        batch.pools = changes.pools.clone();
        batch.settings = desired.settings.clone();
    }
    batch
}

/// Writes one batch with retries; a rejected batch is split to find the bad items. True on success.
fn write(ctx: &Context<'_>, batch: &Batch, changes: &Changes, chunk: &Chunk, report: &mut RunReport) -> bool {
    let o = &ctx.options;
    let mut attempt = 0;
    let mut retried = false;
    loop {
        match ctx.workspace.apply(batch) {
            Ok(result) => {
                record(&result.users, changes, chunk, retried, report);
                report.pools_applied +=
                    result.pools.iter().filter(|(_, s)| *s != ItemStatus::Unchanged).count();
                return true;
            }
            Err(e) if e.is_retryable() && attempt + 1 < o.backoff.attempts => {
                report.retries += 1;
                retried = true;
                ctx.clock.sleep(o.backoff.delay(attempt, e.retry_after(), ctx.clock.random()));
                attempt += 1;
            }
            Err(WorkspaceError::Rejected { .. }) if chunk.items.len() > 1 => {
                // One bad item must not fail its neighbours: write them one by one.
                let mut all = true;
                for &k in &chunk.items {
                    let one = Chunk { items: vec![k], pools: false };
                    let mut single = batch.clone();
                    single.pools.clear();
                    single.settings = None;
                    let c = &changes.changes[k];
                    (single.limits, single.remove) = match &c.set {
                        Some(set) => (vec![set.clone()], Vec::new()),
                        None => (Vec::<LimitSet>::new(), vec![c.user.clone()]),
                    };
                    all &= write(ctx, &single, changes, &one, report);
                }
                if chunk.pools {
                    let mut rest = batch.clone();
                    rest.limits.clear();
                    rest.remove.clear();
                    all &= write(ctx, &rest, changes, &Chunk { items: Vec::new(), pools: true }, report);
                }
                return all;
            }
            Err(e) => {
                let why = e.to_string();
                for &k in &chunk.items {
                    report.failed.push(ItemReport::of(&changes.changes[k], Some(why.clone())));
                }
                if chunk.pools {
                    report.failed.push(ItemReport {
                        user: "pools and settings".to_string(),
                        before: None,
                        after: None,
                        direction: Direction::Metadata,
                        drift: Drift::None,
                        reason: Some(why),
                    });
                }
                return false;
            }
        }
    }
}

fn record(
    results: &[(String, ItemStatus)],
    changes: &Changes,
    chunk: &Chunk,
    retried: bool,
    report: &mut RunReport,
) {
    let status: BTreeMap<&str, ItemStatus> = results.iter().map(|(u, s)| (u.as_str(), *s)).collect();
    for &k in &chunk.items {
        let c = &changes.changes[k];
        match status.get(c.user.as_str()) {
            Some(ItemStatus::Unchanged) if !retried => report.already_applied.push(ItemReport::of(c, None)),
            // After a lost answer, "unchanged" means our earlier attempt landed.
            Some(_) => report.applied.push(ItemReport::of(c, None)),
            None => report
                .failed
                .push(ItemReport::of(c, Some("the workspace did not report this item".to_string()))),
        }
    }
}

/// Decides what happens after a failed run: back off on transient failures,
/// wait for a new commit (and alert) on refusals, never spin.
pub fn error_policy(error: &ReconcileError, options: &Options) -> Action {
    let every = options.every;
    if error.needs_new_commit() {
        return Action::await_change(every);
    }
    let soon = |d: Duration| Action::requeue(every.map_or(d, |e| e.min(d)));
    match error {
        ReconcileError::LeaseHeld { .. } => soon(options.lease_ttl),
        ReconcileError::Workspace(e) if e.is_retryable() => {
            soon(e.retry_after().unwrap_or(options.backoff.cap).min(Duration::from_secs(300)))
        }
        _ => Action { requeue_after: every, alert: true },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::Credits;
    use crate::reconcile::retry::ManualClock;
    use crate::workspace::memory::MemoryWorkspace;

    struct Fixed(Desired);

    impl DesiredState for Fixed {
        fn desired(&self, _: &dyn Target) -> Result<Desired, ReconcileError> {
            Ok(self.0.clone())
        }
    }

    fn desired(users: &[&str]) -> Desired {
        let limits = users
            .iter()
            .map(|u| {
                let limit = Limit { credits: Credits::from_whole(100), ..Limit::default() };
                (u.to_string(), LimitSet { user: u.to_string(), limit, group: None, source: None })
            })
            .collect();
        Desired { commit: "c1".into(), limits, ..Desired::default() }
    }

    fn run_once(ws: &MemoryWorkspace, d: &Desired, dry_run: bool) -> Result<Run, ReconcileError> {
        let (clock, stop) = (ManualClock::default(), AtomicBool::new(false));
        let fixed = Fixed(d.clone());
        let options = Options { dry_run, ..Options::default() };
        reconcile(&Context { workspace: ws, desired: &fixed, clock: &clock, options, shutdown: &stop })
    }

    #[test]
    fn every_real_run_reports_a_summary_and_a_dry_run_does_not() {
        let ws = MemoryWorkspace::with_users(&["a@x.com", "b@x.com"]);
        let d = desired(&["a@x.com", "b@x.com"]);
        run_once(&ws, &d, true).unwrap();
        assert!(ws.runs().is_empty());
        run_once(&ws, &d, false).unwrap();
        run_once(&ws, &d, false).unwrap();
        let runs = ws.runs();
        assert_eq!(runs.len(), 2);
        assert_eq!((runs[0].ok, runs[0].applied, runs[0].unchanged), (true, 2, 0));
        assert_eq!((runs[1].applied, runs[1].unchanged), (0, 2));
        assert_eq!(runs[1].commit.as_deref(), Some("c1"));
        assert!(runs[1].at.is_none(), "the engine reads no wall clock");
    }

    #[test]
    fn a_refused_run_is_reported_and_a_failed_report_never_fails_a_run() {
        let ws = MemoryWorkspace::with_users(&["a@x.com"]);
        let empty = Desired { commit: "c2".into(), ..Desired::default() };
        assert!(matches!(run_once(&ws, &empty, false), Err(ReconcileError::EmptyDesired { .. })));
        let runs = ws.runs();
        assert_eq!((runs[0].ok, runs[0].commit.as_deref()), (false, Some("c2")));
        assert!(runs[0].failures[0].contains("holds no user"), "{:?}", runs[0].failures);
        ws.fail_reports();
        let run = run_once(&ws, &desired(&["a@x.com"]), false).unwrap();
        assert_eq!(run.report.applied.len(), 1);
        assert_eq!(ws.runs().len(), 1);
    }
}
