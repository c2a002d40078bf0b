//! The reconcile loop: run [`reconcile`], act on its [`Action`], turn failures into
//! an `Action` with [`error_policy`], and stop when the stop flag is set.
//!
//! Every scheduled reconciler (`budgit reconcile --every`, the reconciler of
//! `budgit serve --demo`) is this one loop; callers supply only the [`Context`]
//! (whose `shutdown` flag is the stop signal), a [`Schedule`], and a callback
//! that sees each [`Pass`] (to print a report, count metrics). Waiting goes
//! through the context's [`Clock`](super::Clock), so a test drives many passes
//! (success, backoff, `Retry-After`, refusal) in no time and asserts each wait.
//!
//! Each pass is also a `tracing` event (`reconcile run finished`), with the
//! run's outcome and counts as fields; the loop never prints.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Action, Context, ReconcileError, Run, error_policy, reconcile};

/// How the loop paces its runs, beyond what each run's [`Action`] asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Schedule {
    /// The most runs before the loop ends (`None`: until stopped).
    pub max_runs: Option<u64>,
    /// The most random delay added to each wait, so a fleet of reconcilers
    /// started together does not hit the workspace at once.
    pub max_jitter: Duration,
    /// A wait before the first run (zero: run at once).
    pub first_run_after: Duration,
    /// The wait after a run is at least this many times the run's length (0: no
    /// floor), so runs over a large organisation keep to a share of the time.
    pub pace: u32,
}

/// One pass of the loop, as the callback sees it.
#[derive(Debug)]
pub struct Pass<'a> {
    /// The run's number, from 1.
    pub number: u64,
    /// What the run did, or why it stopped.
    pub outcome: &'a Result<Run, ReconcileError>,
    /// How long the run took, by the context's clock.
    pub took: Duration,
    /// What the run (or [`error_policy`]) asked for next.
    pub action: Action,
    /// The wait before the next run, jitter and pace included; `None` when the
    /// loop ends after this pass.
    pub next_in: Option<Duration>,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The stop flag was set.
    Stopped,
    /// [`Schedule::max_runs`] runs were made.
    MaxRuns,
    /// A run asked for no requeue (no interval in the options: a one-shot run).
    Done,
}

/// What the loop did in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Runs made.
    pub runs: u64,
    /// Why it ended.
    pub ended: Ended,
}

/// The short name of a run's outcome, as logs and the JSON report give it:
/// `ok`, `incomplete`, `refused` (a new commit is needed), `lease-held` or `error`.
pub fn outcome_name(outcome: &Result<Run, ReconcileError>) -> &'static str {
    match outcome {
        Ok(run) if run.report.incomplete() && !run.report.dry_run => "incomplete",
        Ok(_) => "ok",
        Err(ReconcileError::LeaseHeld { .. }) => "lease-held",
        Err(e) if e.needs_new_commit() => "refused",
        Err(_) => "error",
    }
}

/// Runs the reconciler until the context's stop flag is set, `max_runs` runs
/// were made, or a run asks for no requeue; calls `on_pass` after every run.
///
/// The wait after a run is the run's [`Action::requeue_after`] (from
/// [`error_policy`] when it failed), plus up to [`Schedule::max_jitter`], and at
/// least [`Schedule::pace`] times the run's length. A stop during a run ends it
/// between batches (the run reports itself interrupted); a stop during a wait
/// ends the wait at once.
pub fn run(ctx: &Context<'_>, schedule: &Schedule, mut on_pass: impl FnMut(&Pass<'_>)) -> Summary {
    let stopped = || ctx.shutdown.load(Ordering::SeqCst);
    let mut runs = 0u64;
    if !schedule.first_run_after.is_zero() && ctx.clock.wait(schedule.first_run_after, ctx.shutdown) {
        return end(runs, Ended::Stopped);
    }
    loop {
        if stopped() {
            return end(runs, Ended::Stopped);
        }
        let started = ctx.clock.elapsed();
        let outcome = reconcile(ctx);
        let took = ctx.clock.elapsed().saturating_sub(started);
        runs += 1;
        let action = match &outcome {
            Ok(run) => run.action,
            Err(e) => error_policy(e, &ctx.options),
        };
        let ended = if stopped() {
            Some(Ended::Stopped)
        } else if schedule.max_runs.is_some_and(|max| runs >= max) {
            Some(Ended::MaxRuns)
        } else if action.requeue_after.is_none() {
            Some(Ended::Done)
        } else {
            None
        };
        let next_in = match ended {
            Some(_) => None,
            None => action.requeue_after.map(|after| wait_after(ctx, schedule, after, took)),
        };
        let pass = Pass { number: runs, outcome: &outcome, took, action, next_in };
        log(&pass);
        on_pass(&pass);
        match (ended, next_in) {
            (Some(ended), _) => return end(runs, ended),
            (None, Some(wait)) => {
                if ctx.clock.wait(wait, ctx.shutdown) {
                    return end(runs, Ended::Stopped);
                }
            }
            (None, None) => return end(runs, Ended::Done),
        }
    }
}

/// The wait before the next run: the requeue, jittered, no shorter than the pace allows.
fn wait_after(ctx: &Context<'_>, schedule: &Schedule, after: Duration, took: Duration) -> Duration {
    let span = u64::try_from(schedule.max_jitter.as_millis()).unwrap_or(u64::MAX);
    let jitter =
        if span == 0 { Duration::ZERO } else { Duration::from_millis(ctx.clock.random() % (span + 1)) };
    (after + jitter).max(took.saturating_mul(schedule.pace))
}

fn end(runs: u64, ended: Ended) -> Summary {
    let reason = match ended {
        Ended::Stopped => "stop requested",
        Ended::MaxRuns => "max runs reached",
        Ended::Done => "no requeue asked",
    };
    tracing::info!(runs, reason, "reconcile loop stopped");
    Summary { runs, ended }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One `tracing` event per run: the outcome and its counts, at a level that says
/// whether someone should look.
fn log(pass: &Pass<'_>) {
    let outcome = outcome_name(pass.outcome);
    let (took_ms, next_run_in_ms, alert) = (millis(pass.took), pass.next_in.map(millis), pass.action.alert);
    let run = pass.number;
    match pass.outcome {
        Ok(r) => {
            let r = &r.report;
            let (applied, unchanged, failed, not_attempted) =
                (r.applied.len() + r.pools_applied, r.unchanged, r.failed.len(), r.not_attempted.len());
            let (drift, retries, commit) = (r.drift.len(), r.retries, r.commit.as_str());
            if outcome == "incomplete" {
                tracing::warn!(
                    run,
                    outcome,
                    commit,
                    applied,
                    unchanged,
                    failed,
                    not_attempted,
                    drift,
                    retries,
                    took_ms,
                    next_run_in_ms,
                    alert,
                    "reconcile run finished"
                );
            } else {
                tracing::info!(
                    run,
                    outcome,
                    commit,
                    applied,
                    unchanged,
                    failed,
                    not_attempted,
                    drift,
                    retries,
                    took_ms,
                    next_run_in_ms,
                    alert,
                    "reconcile run finished"
                );
            }
        }
        Err(e) => {
            let error = e.to_string();
            match outcome {
                "lease-held" => tracing::info!(
                    run,
                    outcome,
                    error,
                    took_ms,
                    next_run_in_ms,
                    alert,
                    "reconcile run finished"
                ),
                "refused" => tracing::warn!(
                    run,
                    outcome,
                    error,
                    took_ms,
                    next_run_in_ms,
                    alert,
                    "reconcile run finished"
                ),
                _ => tracing::error!(
                    run,
                    outcome,
                    error,
                    took_ms,
                    next_run_in_ms,
                    alert,
                    "reconcile run finished"
                ),
            }
        }
    }
}
