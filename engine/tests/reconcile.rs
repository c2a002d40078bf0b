//! The reconciler against the in-memory workspace with scripted faults, and against real git repositories.
//!
//! Time is a `ManualClock`: retries and backoff are asserted on the recorded
//! sleeps, nothing waits on the wall clock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "tests")]

#[path = "common/git_repo.rs"]
mod git_repo;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use budgit_engine::Credits;
use budgit_engine::model::Limit;
use budgit_engine::reconcile::retry::ManualClock;
use budgit_engine::reconcile::{
    Action, Backoff, Context, Desired, DesiredState, Drift, Ended, GitDesired, Guard, Options,
    ReconcileError, Run, Schedule, Summary, controller, error_policy, outcome_name, reconcile,
};
use budgit_engine::workspace::memory::{Call, Fault, MemoryWorkspace};
use budgit_engine::workspace::{AppliedSource, LimitSet, Target};
use chrono::{DateTime, Utc};
use git_repo::{git, repo};

struct Fixed(Mutex<Desired>);

impl DesiredState for Fixed {
    fn desired(&self, _: &dyn Target) -> Result<Desired, ReconcileError> {
        Ok(self.0.lock().unwrap().clone())
    }
}

fn limit(credits: i64) -> Limit {
    Limit { credits: Credits::from_whole(credits), ..Limit::default() }
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("u{i:03}@acme.com")).collect()
}

fn desired(commit: &str, credits: impl Fn(usize) -> i64, n: usize) -> Desired {
    let limits = users(n)
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let set = LimitSet {
                user: u.clone(),
                limit: limit(credits(i)),
                group: None,
                source: Some(AppliedSource {
                    kind: "default".into(),
                    name: "acme".into(),
                    file: "workspace.yaml".into(),
                    line: 3,
                    commit: None,
                }),
            };
            (u, set)
        })
        .collect();
    Desired { commit: commit.into(), limits, ..Desired::default() }
}

fn options() -> Options {
    Options {
        batch_size: 10,
        guard: Guard { max_changes: 100_000, max_lower_share: 1.0, allow_mass_change: false },
        backoff: Backoff {
            attempts: 4,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        },
        ..Options::default()
    }
}

struct Harness {
    ws: MemoryWorkspace,
    desired: Fixed,
    clock: ManualClock,
    options: Options,
    stop: AtomicBool,
}

impl Harness {
    fn new(n: usize) -> Harness {
        let names = users(n);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Harness {
            ws: MemoryWorkspace::with_users(&refs),
            desired: Fixed(Mutex::new(desired("c1", |_| 100, n))),
            clock: ManualClock::default(),
            options: options(),
            stop: AtomicBool::new(false),
        }
    }

    fn run(&self) -> Result<Run, ReconcileError> {
        let ctx = Context {
            workspace: &self.ws,
            desired: &self.desired,
            clock: &self.clock,
            options: self.options.clone(),
            shutdown: &self.stop,
        };
        reconcile(&ctx)
    }

    fn set_desired(&self, d: Desired) {
        *self.desired.0.lock().unwrap() = d;
    }

    fn limit_sets(&self) -> usize {
        self.ws.audit().iter().filter(|e| e.action == "limit.set").count()
    }
}

#[test]
fn the_loop_applies_then_applies_the_difference_then_nothing() {
    let h = Harness::new(25);
    let first = h.run().unwrap();
    assert_eq!(first.report.applied.len(), 25);
    assert!(!first.report.incomplete());
    assert_eq!(h.limit_sets(), 25);
    assert_eq!(h.ws.lease_holder("budgit-reconcile"), None, "the lease is released");

    h.set_desired(desired("c2", |i| if i < 3 { 500 } else { 100 }, 25));
    let second = h.run().unwrap();
    assert_eq!(second.report.applied.len(), 3);
    assert_eq!(second.report.unchanged, 22);
    assert!(second.report.drift.is_empty(), "a new commit is no drift");
    assert_eq!(h.limit_sets(), 28);
    assert_eq!(h.ws.limit_of("u000@acme.com"), Some(limit(500)));

    let third = h.run().unwrap();
    assert!(third.report.applied.is_empty());
    assert_eq!(third.report.unchanged, 25);
    assert_eq!(h.limit_sets(), 28, "nothing written");
    assert_eq!(h.ws.calls(Call::Lease), 2, "no lease taken when there is nothing to write");
    // The audit carries the commit and the run's plan digest.
    let last = h.ws.audit().into_iter().last().unwrap();
    assert_eq!(last.commit, "c2");
    assert_eq!(last.plan_digest, second.report.plan_digest);
}

#[test]
fn server_errors_and_timeouts_are_retried_with_growing_jittered_delays() {
    let h = Harness::new(5);
    h.ws.fail_next(Call::Apply, Fault::ServerError);
    h.ws.fail_next(Call::Apply, Fault::Timeout);
    let run = h.run().unwrap();
    assert_eq!(run.report.applied.len(), 5);
    assert_eq!(run.report.retries, 2);
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 2);
    assert!(sleeps[0] >= Duration::from_millis(500) && sleeps[0] <= Duration::from_secs(1), "{sleeps:?}");
    assert!(sleeps[1] >= Duration::from_secs(1) && sleeps[1] <= Duration::from_secs(2), "{sleeps:?}");
    assert_eq!(h.limit_sets(), 5);
}

#[test]
fn retry_after_is_honoured() {
    let h = Harness::new(3);
    h.ws.fail_next(Call::Apply, Fault::RateLimited(Some(Duration::from_secs(7))));
    let run = h.run().unwrap();
    assert_eq!(run.report.applied.len(), 3);
    assert_eq!(h.clock.sleeps(), vec![Duration::from_secs(7)]);
}

#[test]
fn a_connection_dropped_after_the_write_applies_nothing_twice() {
    let h = Harness::new(4);
    h.ws.fail_next(Call::Apply, Fault::DropAfterWrite);
    let run = h.run().unwrap();
    // The retry finds every value in place; the items count as applied, once.
    assert_eq!(run.report.applied.len(), 4);
    assert!(run.report.already_applied.is_empty());
    assert_eq!(h.limit_sets(), 4);
}

#[test]
fn the_circuit_breaker_stops_writing_and_a_later_run_converges() {
    let mut h = Harness::new(50);
    h.options.breaker_threshold = 2;
    // Two batches exhaust their attempts; the breaker opens before the third.
    for _ in 0..8 {
        h.ws.fail_next(Call::Apply, Fault::ServerError);
    }
    let run = h.run().unwrap();
    assert!(run.report.circuit_open);
    assert_eq!(run.report.failed.len(), 20);
    assert_eq!(run.report.not_attempted.len(), 30);
    assert!(run.report.applied.is_empty());
    assert_eq!(h.ws.calls(Call::Apply), 8);
    assert!(run.action.requeue_after.is_some());

    let again = h.run().unwrap();
    assert_eq!(again.report.applied.len(), 50);
    assert!(!again.report.incomplete());
    assert_eq!(h.limit_sets(), 50, "each user written exactly once across both runs");
}

#[test]
fn a_rejected_item_fails_alone() {
    let h = Harness::new(10);
    h.ws.reject_user("u004@acme.com");
    let run = h.run().unwrap();
    assert_eq!(run.report.failed.len(), 1);
    assert_eq!(run.report.failed[0].user, "u004@acme.com");
    assert_eq!(run.report.applied.len(), 9);
}

#[test]
fn a_held_lease_stops_the_run_before_any_write() {
    let h = Harness::new(5);
    h.ws.hold_lease("budgit-reconcile", "other-host");
    let err = h.run().unwrap_err();
    assert!(matches!(&err, ReconcileError::LeaseHeld { holder, .. } if holder == "other-host"), "{err}");
    assert!(h.ws.audit().is_empty());
    let action = error_policy(&err, &h.options);
    assert!(action.requeue_after.is_some() && !action.alert);
}

#[test]
fn dry_run_writes_nothing() {
    let mut h = Harness::new(5);
    h.options.dry_run = true;
    let run = h.run().unwrap();
    assert_eq!(run.report.not_attempted.len(), 5);
    assert!(run.report.dry_run);
    assert!(h.ws.audit().is_empty());
    assert_eq!(h.ws.calls(Call::Lease), 0);
}

#[test]
fn an_empty_desired_state_is_refused() {
    let h = Harness::new(0);
    let err = h.run().unwrap_err();
    assert!(matches!(err, ReconcileError::EmptyDesired { .. }));
    assert!(error_policy(&err, &h.options).alert);
}

#[test]
fn the_blast_radius_guard_refuses_mass_lowering() {
    let mut h = Harness::new(10);
    h.run().unwrap();
    h.options.guard = Guard::default();
    h.set_desired(desired("c2", |i| if i < 5 { 10 } else { 100 }, 10));
    let err = h.run().unwrap_err();
    assert!(matches!(err, ReconcileError::BlastRadius(_)), "{err}");
    assert!(err.to_string().contains("--allow-mass-change"));
    assert_eq!(h.limit_sets(), 10, "nothing written");
    h.options.dry_run = true;
    let dry = h.run().unwrap();
    assert_eq!(dry.report.not_attempted.len(), 5, "a dry run shows the change");
    assert!(dry.report.blast_radius.as_deref().unwrap().contains("--allow-mass-change"));
    h.options.dry_run = false;
    h.options.guard.allow_mass_change = true;
    assert_eq!(h.run().unwrap().report.applied.len(), 5);
}

#[test]
fn shutdown_between_batches_leaves_the_rest_for_the_next_run() {
    let h = Harness::new(30);
    h.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let run = h.run().unwrap();
    assert!(run.report.interrupted);
    assert_eq!(run.report.not_attempted.len(), 30);
    h.stop.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(h.run().unwrap().report.applied.len(), 30);
}

#[test]
fn a_hand_edit_is_unmanaged_drift_reverted_unless_told_not_to() {
    let mut h = Harness::new(5);
    h.run().unwrap();
    h.ws.set_by_hand("u002@acme.com", limit(9999));
    h.options.no_revert = true;
    let kept = h.run().unwrap();
    assert_eq!(kept.report.drift.len(), 1);
    assert_eq!(kept.report.drift[0].kind, Drift::Unmanaged);
    assert!(!kept.report.drift[0].reverted);
    assert_eq!(kept.report.skipped.len(), 1);
    assert_eq!(h.ws.limit_of("u002@acme.com"), Some(limit(9999)));

    h.options.no_revert = false;
    let reverted = h.run().unwrap();
    assert_eq!(reverted.report.drift[0].kind, Drift::Unmanaged);
    assert!(reverted.report.drift[0].reverted);
    assert_eq!(reverted.report.applied.len(), 1);
    assert_eq!(h.ws.limit_of("u002@acme.com"), Some(limit(100)));
    assert!(h.run().unwrap().report.drift.is_empty(), "reverted drift is gone");
}

#[test]
fn the_lease_is_renewed_during_a_long_apply() {
    let mut h = Harness::new(40);
    h.options.lease_ttl = Duration::from_secs(6);
    // The first batch waits 5s on a rate limit: more than a third of the TTL, so the
    // lease is renewed before the next batch.
    h.ws.fail_next(Call::Apply, Fault::RateLimited(Some(Duration::from_secs(5))));
    let run = h.run().unwrap();
    assert_eq!(run.report.applied.len(), 40);
    assert_eq!(h.ws.calls(Call::Lease), 2, "acquired once, renewed once");
}

#[test]
fn a_lease_lost_mid_apply_stops_writing_and_reports_the_rest() {
    let mut h = Harness::new(30);
    h.options.lease_ttl = Duration::from_secs(6);
    // The first batch waits 5s; meanwhile another reconciler takes the lease, so the renewal fails.
    h.ws.fail_next(Call::Apply, Fault::RateLimited(Some(Duration::from_secs(5))));
    h.ws.fail_next(Call::Lease, Fault::Pass);
    h.ws.fail_next(Call::Lease, Fault::LeaseHeld("other-host".into()));
    let run = h.run().unwrap();
    assert_eq!(run.report.applied.len(), 10);
    assert_eq!(run.report.not_attempted.len(), 20);
    assert!(run.report.not_attempted[0].reason.as_deref().unwrap().contains("other-host"));
    assert!(run.report.incomplete());
    assert_eq!(h.limit_sets(), 10, "nothing written after the lease was lost");
}

#[test]
fn transient_read_failures_are_retried() {
    let h = Harness::new(3);
    h.ws.fail_next(Call::Limits, Fault::ServerError);
    assert_eq!(h.run().unwrap().report.applied.len(), 3);
    assert_eq!(h.ws.calls(Call::Limits), 2);
}

// ---- desired state from git ----

const WORKSPACE: &str = "apiVersion: budgit/v1
kind: Workspace
name: acme
timezone: UTC
period: month
default:
  credits: 100
attributes:
  department: string
";

const ENG: &str = "apiVersion: budgit/v1
kind: Group
name: engineering
selector: 'user.department == \"Engineering\"'
priority: 10
limit:
  credits: 500
pool:
  credits: 10000
";

const OVERRIDE: &str = "apiVersion: budgit/v1
kind: Override
name: bob-migration
user: bob@acme.com
add: { credits: 50 }
starts: 2026-11-01
expires: 2026-11-20
reason: a migration
";

fn ws_with_directory() -> MemoryWorkspace {
    MemoryWorkspace::with_users(&["alice@acme.com", "bob@acme.com", "carol@acme.com"])
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn git_desired(root: &Path, now: &str) -> GitDesired {
    GitDesired {
        policies: root.join("policies"),
        rev: "main".into(),
        now: Some(at(now)),
        directory: None,
        require_signed: false,
        gpg_home: None,
    }
}

#[test]
fn desired_state_comes_from_the_committed_ref_not_the_working_tree() {
    let tmp = repo(&[("workspace.yaml", WORKSPACE), ("eng.yaml", ENG), ("bob.yaml", OVERRIDE)]);
    // An uncommitted edit must not reach the workspace.
    std::fs::write(
        tmp.path().join("policies/workspace.yaml"),
        WORKSPACE.replace("credits: 100", "credits: 7"),
    )
    .unwrap();
    let d = git_desired(tmp.path(), "2026-11-10T00:00:00Z").desired(&ws_with_directory()).unwrap();
    assert_eq!(d.commit.len(), 40);
    assert_eq!(d.limits["alice@acme.com"].limit, limit(100));
    assert_eq!(d.limits["bob@acme.com"].limit, limit(150));
    assert_eq!(d.limits["bob@acme.com"].source.as_ref().unwrap().kind, "override");
    assert_eq!(d.pools.get("engineering"), Some(&Credits::from_whole(10_000)));
    assert!(d.settings.is_some());
}

#[test]
fn an_override_expiring_between_runs_is_expected_drift() {
    let tmp = repo(&[("workspace.yaml", WORKSPACE), ("bob.yaml", OVERRIDE)]);
    let ws = ws_with_directory();
    let clock = ManualClock::default();
    let stop = AtomicBool::new(false);
    let run = |now: &str| {
        let src = git_desired(tmp.path(), now);
        let ctx =
            Context { workspace: &ws, desired: &src, clock: &clock, options: options(), shutdown: &stop };
        reconcile(&ctx).unwrap()
    };
    let first = run("2026-11-10T00:00:00Z");
    assert_eq!(first.report.applied.len(), 3);
    assert_eq!(ws.limit_of("bob@acme.com"), Some(limit(150)));
    let second = run("2026-11-21T00:00:00Z");
    assert_eq!(second.report.applied.len(), 1);
    assert_eq!(second.report.drift.len(), 1);
    assert_eq!(second.report.drift[0].user, "bob@acme.com");
    assert_eq!(second.report.drift[0].kind, Drift::Expected);
    assert_eq!(ws.limit_of("bob@acme.com"), Some(limit(100)));
}

#[test]
fn a_ref_failing_validation_is_refused() {
    let tmp = repo(&[("workspace.yaml", &WORKSPACE.replace("credits: 100", "credit: 100"))]);
    let err = git_desired(tmp.path(), "2026-11-10T00:00:00Z").desired(&ws_with_directory()).unwrap_err();
    assert!(matches!(err, ReconcileError::InvalidPolicy { .. }), "{err}");
    assert!(err.to_string().contains("nothing applied"), "{err}");
}

#[test]
fn an_unsigned_commit_is_refused_when_signatures_are_required() {
    let tmp = repo(&[("workspace.yaml", WORKSPACE)]);
    let mut src = git_desired(tmp.path(), "2026-11-10T00:00:00Z");
    src.require_signed = true;
    let err = src.desired(&ws_with_directory()).unwrap_err();
    assert!(matches!(err, ReconcileError::Unsigned { .. }), "{err}");
    assert!(error_policy(&err, &options()).alert);
}

fn have_gpg() -> bool {
    Command::new("gpg").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn a_signed_commit_is_accepted_and_a_forged_one_refused() {
    if !have_gpg() {
        // Without gpg nothing can be verified: an unsigned commit is refused (tested above).
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(home.path())
            .args(["--batch", "--yes"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    gpg(&["--passphrase", "", "--quick-gen-key", "Policy Bot <bot@acme.com>", "ed25519", "sign", "never"]);
    let tmp = repo(&[("workspace.yaml", WORKSPACE)]);
    let root = tmp.path();
    std::fs::write(root.join("policies/workspace.yaml"), WORKSPACE.replace("credits: 100", "credits: 120"))
        .unwrap();
    git(root, &["add", "."]);
    let signed = Command::new("git")
        .current_dir(root)
        .env("GNUPGHOME", home.path())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .args([
            "-c",
            "user.name=Policy Bot",
            "-c",
            "user.email=bot@acme.com",
            "-c",
            "user.signingkey=bot@acme.com",
        ])
        .args(["commit", "-q", "-S", "-m", "signed change"])
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    let mut src = git_desired(root, "2026-11-10T00:00:00Z");
    src.require_signed = true;
    src.gpg_home = Some(home.path().to_path_buf());
    let d = src.desired(&ws_with_directory()).unwrap();
    assert_eq!(d.limits["alice@acme.com"].limit, limit(120));

    // A keyring that does not know the key cannot vouch for the commit.
    let stranger = tempfile::tempdir().unwrap();
    src.gpg_home = Some(stranger.path().to_path_buf());
    let err = src.desired(&ws_with_directory()).unwrap_err();
    assert!(matches!(err, ReconcileError::BadSignature { .. }), "{err}");
}

/// Each pass of the loop as `(outcome, action, wait before the next run)`.
type Passes = Vec<(&'static str, Action, Option<Duration>)>;

/// Runs the one reconcile loop over the harness and records every pass.
fn drive(h: &Harness, schedule: &Schedule, mut between: impl FnMut(u64, &Harness)) -> (Passes, Summary) {
    let ctx = Context {
        workspace: &h.ws,
        desired: &h.desired,
        clock: &h.clock,
        options: h.options.clone(),
        shutdown: &h.stop,
    };
    let mut passes = Vec::new();
    let summary = controller::run(&ctx, schedule, |pass| {
        passes.push((outcome_name(pass.outcome), pass.action, pass.next_in));
        between(pass.number, h);
    });
    (passes, summary)
}

#[test]
fn the_loop_backs_off_honours_retry_after_waits_for_a_new_commit_and_stops_after_max_runs() {
    let mut h = Harness::new(5);
    let every = Duration::from_secs(60);
    h.options.every = Some(every);
    let secs = Duration::from_secs;
    let schedule = Schedule { max_runs: Some(5), ..Schedule::default() };
    let (passes, summary) = drive(&h, &schedule, |number, h| match number {
        // before run 2: every read of the live limits fails with a 500
        1 => (0..4).for_each(|_| h.ws.fail_next(Call::Limits, Fault::ServerError)),
        // before run 3: the workspace rate limits, asking for 20 s
        2 => (0..4).for_each(|_| h.ws.fail_next(Call::Limits, Fault::RateLimited(Some(secs(20))))),
        // before run 4: the ref now holds no user, which no retry fixes
        3 => h.set_desired(Desired { commit: "c2".into(), ..Desired::default() }),
        // before run 5: a good commit again, already applied
        _ => h.set_desired(desired("c1", |_| 100, 5)),
    });
    let requeue = |d| Action { requeue_after: Some(d), alert: false };
    assert_eq!(
        passes,
        vec![
            ("ok", requeue(every), Some(every)),
            // a retryable failure: back off, up to the backoff's cap (8 s), within the interval
            ("error", requeue(secs(8)), Some(secs(8))),
            // the workspace's Retry-After is the delay
            ("error", requeue(secs(20)), Some(secs(20))),
            // a refusal waits for the next scheduled run, and alerts
            ("refused", Action { requeue_after: Some(every), alert: true }, Some(every)),
            ("ok", requeue(every), None),
        ]
    );
    assert_eq!(summary, Summary { runs: 5, ended: Ended::MaxRuns });
    let sleeps = h.clock.sleeps();
    // run 2 retried its read 3 times with growing jittered delays, run 3 waited the
    // asked 20 s between its retries; the loop's own waits are the passes' waits
    assert_eq!(sleeps.len(), 3 + 1 + 3 + 1 + 1 + 1, "{sleeps:?}");
    assert_eq!(sleeps[0], every);
    for (i, (lo, hi)) in [(500, 1000), (1000, 2000), (2000, 4000)].into_iter().enumerate() {
        let ms = sleeps[1 + i].as_millis();
        assert!((lo..=hi).contains(&ms), "backoff {i}: {ms} ms");
    }
    assert_eq!(&sleeps[4..], &[secs(8), secs(20), secs(20), secs(20), secs(20), every]);
    assert_eq!(h.limit_sets(), 5, "the first run applied everyone, the last run nothing more");
    let runs = h.ws.runs();
    assert_eq!(runs.iter().map(|r| r.ok).collect::<Vec<_>>(), [true, false, false, false, true]);
}

#[test]
fn the_loop_stops_at_once_when_asked_and_a_one_shot_run_ends_by_itself() {
    let mut h = Harness::new(3);
    h.options.every = Some(Duration::from_secs(300));
    // stopped after the second run: no wait after it, no third run
    let (passes, summary) = drive(&h, &Schedule::default(), |number, h| {
        if number == 2 {
            h.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    assert_eq!(passes.len(), 2);
    assert_eq!(summary, Summary { runs: 2, ended: Ended::Stopped });
    assert_eq!(h.clock.sleeps(), vec![Duration::from_secs(300)], "the wait after run 2 is skipped");

    // no interval: one run, then the loop is done
    let mut h = Harness::new(3);
    h.options.every = None;
    let (passes, summary) = drive(&h, &Schedule::default(), |_, _| {});
    assert_eq!(passes, vec![("ok", Action { requeue_after: None, alert: false }, None)]);
    assert_eq!(summary, Summary { runs: 1, ended: Ended::Done });

    // jitter stays within its bound
    let mut h = Harness::new(3);
    h.options.every = Some(Duration::from_secs(10));
    let schedule = Schedule { max_runs: Some(3), max_jitter: Duration::from_secs(1), ..Schedule::default() };
    let (passes, _) = drive(&h, &schedule, |_, _| {});
    for (_, _, wait) in &passes[..2] {
        let ms = wait.unwrap().as_millis();
        assert!((10_000..=11_000).contains(&ms), "{ms} ms");
    }

    // a run that took 20 s (one retry after a Retry-After) waits at least 3 × 20 s
    let mut h = Harness::new(3);
    h.options.every = Some(Duration::from_secs(10));
    h.ws.fail_next(Call::Limits, Fault::RateLimited(Some(Duration::from_secs(20))));
    let schedule = Schedule { max_runs: Some(2), pace: 3, ..Schedule::default() };
    let (passes, _) = drive(&h, &schedule, |_, _| {});
    assert_eq!(passes[0].2, Some(Duration::from_secs(60)));
}

/// The engine is a library: it returns reports and emits `tracing` events, and the
/// binary decides what reaches stdout and stderr (text or JSON lines).
#[test]
fn the_engine_never_prints() {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    if ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("]
                        .iter()
                        .any(|m| code.contains(m))
                    {
                        found.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
    assert!(found.is_empty(), "printing in the engine:\n{}", found.join("\n"));
}
