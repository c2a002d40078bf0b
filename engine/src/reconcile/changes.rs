//! Pure planning: desired vs live vs last applied → the changes to make, with drift.
//!
//! No I/O and no clock: everything it needs is passed in, so every rule here is
//! unit-tested on plain values. It owns drift classification, the blast-radius
//! guard and the run's plan digest; applying is [`super::reconcile`]'s job.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Credits;
use crate::model::Limit;
use crate::workspace::{AppliedLimit, LastApplied, LimitSet, PoolSet, Settings};

/// The state the policies at the approved ref ask for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Desired {
    /// The commit the policies were read at.
    pub commit: String,
    /// Every user's limit, by email.
    pub limits: BTreeMap<String, LimitSet>,
    /// Group pools, by group (groups without a pool are absent).
    pub pools: BTreeMap<String, Credits>,
    /// Period, time zone and enforcement.
    pub settings: Option<Settings>,
}

/// The state the workspace holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Live {
    /// Applied limits, by email.
    pub limits: BTreeMap<String, AppliedLimit>,
    /// Pools, by group.
    pub pools: BTreeMap<String, Credits>,
}

impl Live {
    /// Live state from the workspace's rows.
    pub fn new(limits: Vec<AppliedLimit>, pools: BTreeMap<String, Credits>) -> Live {
        Live { limits: limits.into_iter().map(|l| (l.user.clone(), l)).collect(), pools }
    }
}

/// How a user's live limit came to differ from the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Drift {
    /// No drift: a policy change, a new user, or nothing at all.
    None,
    /// Time moved the desired limit (an override started or expired) while the live one stayed as applied.
    Expected,
    /// The live limit is not what we last applied: someone changed it outside git.
    Unmanaged,
}

/// Which way a change moves a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A user without a limit gets one.
    Create,
    /// More credits, or a cap raised or dropped.
    Raise,
    /// Fewer credits, or a cap lowered or added.
    Lower,
    /// Same limit; only the group or the deciding document changed.
    Metadata,
    /// The user's limit goes away (the user left the directory).
    Remove,
}

/// One user's change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The email.
    pub user: String,
    /// The live limit, if any.
    pub before: Option<Limit>,
    /// What to set, or `None` to remove.
    #[serde(skip)]
    pub set: Option<LimitSet>,
    /// The limit to set (for reports).
    pub after: Option<Limit>,
    /// Which way it moves.
    pub direction: Direction,
    /// Why live differs.
    pub drift: Drift,
}

/// A drifted user, reported whether or not it is reverted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftItem {
    /// The email.
    pub user: String,
    /// Expected or unmanaged.
    pub kind: Drift,
    /// What the workspace holds.
    pub live: Option<Limit>,
    /// What we last applied.
    pub last_applied: Option<Limit>,
    /// What the policies ask for.
    pub desired: Option<Limit>,
    /// Whether this run changes it to the desired value.
    pub reverted: bool,
}

/// What planning decided: the writes, the drift, and what it left alone.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Changes {
    /// The commit the desired state came from.
    pub commit: String,
    /// Limit writes (sets and removals), in email order.
    pub changes: Vec<Change>,
    /// Pool writes, in group order.
    #[serde(skip)]
    pub pools: Vec<PoolSet>,
    /// Every drifted user.
    pub drift: Vec<DriftItem>,
    /// Unmanaged changes left in place (`--no-revert`).
    pub skipped: Vec<Change>,
    /// Users already at their desired limit.
    pub unchanged: usize,
    /// Users in the desired state.
    pub desired_users: usize,
    /// Users with a live limit.
    pub live_users: usize,
    /// Digest of the changes (see [`digest`]).
    pub digest: String,
}

/// What planning may do.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PlanOptions {
    /// Leave unmanaged changes in place (report them only).
    pub no_revert: bool,
}

/// The blast-radius limits of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// Most limit changes one run may make.
    pub max_changes: usize,
    /// Largest share of limits one run may lower (0.2 = 20%).
    pub max_lower_share: f64,
    /// Lift both limits.
    pub allow_mass_change: bool,
}

impl Default for Guard {
    fn default() -> Self {
        Guard { max_changes: 1000, max_lower_share: 0.2, allow_mass_change: false }
    }
}

/// A run that would change more than the guard allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Breach {
    /// More changes than `--max-changes`.
    #[error("{changes} limit changes exceed `--max-changes {max}`")]
    TooMany {
        /// Changes planned.
        changes: usize,
        /// The maximum.
        max: usize,
    },
    /// Lowers more than `--max-lower-share` of limits.
    #[error("lowering {lowered} of {total} limits exceeds `--max-lower-share {share}`")]
    TooManyLowered {
        /// Limits lowered or removed.
        lowered: usize,
        /// Limits in play.
        total: usize,
        /// The maximum share.
        share: f64,
    },
}

impl Changes {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.pools.is_empty()
    }

    /// Changes that move a limit (metadata-only updates excluded).
    pub fn limit_changes(&self) -> usize {
        self.changes.iter().filter(|c| c.direction != Direction::Metadata).count()
    }

    /// Changes that lower or remove a limit.
    pub fn lowered(&self) -> usize {
        self.changes.iter().filter(|c| matches!(c.direction, Direction::Lower | Direction::Remove)).count()
    }

    /// Fails when the run would change more than the guard allows.
    pub fn check_blast_radius(&self, guard: &Guard) -> Result<(), Breach> {
        if guard.allow_mass_change {
            return Ok(());
        }
        let changes = self.limit_changes();
        if changes > guard.max_changes {
            return Err(Breach::TooMany { changes, max: guard.max_changes });
        }
        let lowered = self.lowered();
        let total = self.live_users.max(self.desired_users).max(1);
        // Compare in integers: lowered / total > share, with share in millionths.
        let share_millionths = (guard.max_lower_share.clamp(0.0, 1.0) * 1_000_000.0).round() as u128;
        if lowered > 0 && (lowered as u128) * 1_000_000 > share_millionths * (total as u128) {
            return Err(Breach::TooManyLowered { lowered, total, share: guard.max_lower_share });
        }
        Ok(())
    }
}

/// Plans the writes that make `live` match `desired`, classifying drift against `last_applied`.
///
/// A user is unchanged when the limit, the group and the deciding document
/// (kind and name) agree; a moved file or line alone is no reason to write.
pub fn plan_changes(
    desired: &Desired,
    live: &Live,
    last_applied: &BTreeMap<String, LastApplied>,
    options: PlanOptions,
) -> Changes {
    let mut out = Changes {
        commit: desired.commit.clone(),
        desired_users: desired.limits.len(),
        live_users: live.limits.len(),
        ..Changes::default()
    };
    let users: BTreeSet<&String> = desired.limits.keys().chain(live.limits.keys()).collect();
    for user in users {
        let want = desired.limits.get(user);
        let have = live.limits.get(user);
        let last = last_applied.get(user);
        if let (Some(w), Some(h)) = (want, have)
            && same(w, h)
        {
            out.unchanged += 1;
            continue;
        }
        if want.is_none() && have.is_none() {
            continue;
        }
        let drift = classify(want, have, last, &desired.commit);
        let direction = direction(have.map(|h| &h.limit), want.map(|w| &w.limit));
        let change = Change {
            user: user.clone(),
            before: have.map(|h| h.limit.clone()),
            set: want.cloned(),
            after: want.map(|w| w.limit.clone()),
            direction,
            drift,
        };
        let revert = !(drift == Drift::Unmanaged && options.no_revert);
        if drift != Drift::None {
            out.drift.push(DriftItem {
                user: user.clone(),
                kind: drift,
                live: change.before.clone(),
                last_applied: last.map(|l| l.limit.clone()),
                desired: change.after.clone(),
                reverted: revert,
            });
        }
        if revert {
            out.changes.push(change);
        } else {
            out.skipped.push(change);
        }
    }
    let groups: BTreeSet<&String> = desired.pools.keys().chain(live.pools.keys()).collect();
    for group in groups {
        let want = desired.pools.get(group).copied();
        if want != live.pools.get(group).copied() {
            out.pools.push(PoolSet { group: group.clone(), credits: want });
        }
    }
    out.digest = digest(&out);
    out
}

fn same(want: &LimitSet, have: &AppliedLimit) -> bool {
    let doc = |kind: &str, name: &str| (kind.to_string(), name.to_string());
    want.limit == have.limit
        && want.group == have.group
        && want.source.as_ref().map(|s| doc(&s.kind, &s.name))
            == have.source.as_ref().map(|s| doc(&s.kind, &s.name))
}

fn classify(
    want: Option<&LimitSet>,
    have: Option<&AppliedLimit>,
    last: Option<&LastApplied>,
    commit: &str,
) -> Drift {
    let Some(last) = last else {
        // Never written by us: nothing to have drifted from (a new user, or adoption).
        return Drift::None;
    };
    match have {
        None => Drift::Unmanaged,
        Some(h) if h.limit != last.limit => Drift::Unmanaged,
        Some(h) => {
            let value_moves = want.is_some_and(|w| w.limit != h.limit);
            let override_involved = last.source_kind.as_deref() == Some("override")
                || want.and_then(|w| w.source.as_ref()).is_some_and(|s| s.kind == "override");
            let same_commit = last.commit.as_deref() == Some(commit);
            if value_moves && (same_commit || override_involved) { Drift::Expected } else { Drift::None }
        }
    }
}

fn direction(before: Option<&Limit>, after: Option<&Limit>) -> Direction {
    let (before, after) = match (before, after) {
        (None, _) => return Direction::Create,
        (Some(_), None) => return Direction::Remove,
        (Some(b), Some(a)) => (b, a),
    };
    if after.credits != before.credits {
        return if after.credits > before.credits { Direction::Raise } else { Direction::Lower };
    }
    let tighter = |b: &BTreeMap<String, Credits>, a: &BTreeMap<String, Credits>| {
        a.iter().any(|(k, v)| b.get(k).is_none_or(|old| v < old))
    };
    if tighter(&before.products, &after.products) || tighter(&before.models, &after.models) {
        Direction::Lower
    } else if before != after {
        Direction::Raise
    } else {
        Direction::Metadata
    }
}

/// `sha256:<hex>` over the run's writes in canonical form (sorted users and pools, exact decimals).
pub fn digest(changes: &Changes) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"budgit-reconcile-v1\n");
    let text = |l: &Option<Limit>| l.as_ref().and_then(|l| serde_json::to_string(l).ok()).unwrap_or_default();
    for c in &changes.changes {
        hasher.update(format!("{}\t{}\t{}\n", c.user, text(&c.before), text(&c.after)).as_bytes());
    }
    for p in &changes.pools {
        hasher.update(format!(
            "pool\t{}\t{}\n",
            p.group,
            p.credits.map(|c| c.to_string()).unwrap_or_default()
        ));
    }
    let mut out = String::from("sha256:");
    for byte in hasher.finalize() {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::AppliedSource;

    fn limit(credits: i64) -> Limit {
        Limit { credits: Credits::from_whole(credits), ..Limit::default() }
    }

    fn source(kind: &str, name: &str) -> Option<AppliedSource> {
        Some(AppliedSource {
            kind: kind.into(),
            name: name.into(),
            file: "f.yaml".into(),
            line: 1,
            commit: None,
        })
    }

    fn want(user: &str, credits: i64, kind: &str) -> (String, LimitSet) {
        (
            user.into(),
            LimitSet { user: user.into(), limit: limit(credits), group: None, source: source(kind, "x") },
        )
    }

    fn have(user: &str, credits: i64, kind: &str) -> AppliedLimit {
        AppliedLimit {
            user: user.into(),
            limit: limit(credits),
            group: None,
            source: source(kind, "x"),
            commit: None,
        }
    }

    fn last(user: &str, credits: i64, commit: &str, kind: &str) -> (String, LastApplied) {
        (
            user.into(),
            LastApplied {
                limit: limit(credits),
                commit: Some(commit.into()),
                source_kind: Some(kind.into()),
            },
        )
    }

    fn desired(commit: &str, users: Vec<(String, LimitSet)>) -> Desired {
        Desired { commit: commit.into(), limits: users.into_iter().collect(), ..Desired::default() }
    }

    #[test]
    fn equal_states_plan_nothing() {
        let d = desired("c1", vec![want("a@x", 10, "default"), want("b@x", 20, "group")]);
        let live = Live::new(vec![have("a@x", 10, "default"), have("b@x", 20, "group")], BTreeMap::new());
        let c = plan_changes(&d, &live, &BTreeMap::new(), PlanOptions::default());
        assert!(c.is_empty());
        assert_eq!(c.unchanged, 2);
        assert!(c.drift.is_empty());
    }

    #[test]
    fn first_run_creates_every_limit_without_drift() {
        let d = desired("c1", vec![want("a@x", 10, "default"), want("b@x", 20, "group")]);
        let c = plan_changes(&d, &Live::default(), &BTreeMap::new(), PlanOptions::default());
        assert_eq!(c.changes.len(), 2);
        assert!(c.changes.iter().all(|c| c.direction == Direction::Create && c.drift == Drift::None));
    }

    #[test]
    fn a_hand_edit_is_unmanaged_drift_and_reverted() {
        let d = desired("c1", vec![want("a@x", 10, "default")]);
        let live = Live::new(vec![have("a@x", 99, "default")], BTreeMap::new());
        let lasts = [last("a@x", 10, "c1", "default")].into_iter().collect();
        let c = plan_changes(&d, &live, &lasts, PlanOptions::default());
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].drift, Drift::Unmanaged);
        assert_eq!(c.changes[0].direction, Direction::Lower);
        assert_eq!(c.drift.len(), 1);
        assert!(c.drift[0].reverted);
    }

    #[test]
    fn no_revert_reports_unmanaged_drift_and_skips_it() {
        let d = desired("c1", vec![want("a@x", 10, "default")]);
        let live = Live::new(vec![have("a@x", 99, "default")], BTreeMap::new());
        let lasts = [last("a@x", 10, "c1", "default")].into_iter().collect();
        let c = plan_changes(&d, &live, &lasts, PlanOptions { no_revert: true });
        assert!(c.changes.is_empty());
        assert_eq!(c.skipped.len(), 1);
        assert_eq!(c.drift.len(), 1);
        assert!(!c.drift[0].reverted);
    }

    #[test]
    fn a_limit_deleted_by_hand_is_unmanaged_drift() {
        let d = desired("c1", vec![want("a@x", 10, "default")]);
        let lasts = [last("a@x", 10, "c1", "default")].into_iter().collect();
        let c = plan_changes(&d, &Live::default(), &lasts, PlanOptions::default());
        assert_eq!(c.changes[0].drift, Drift::Unmanaged);
        assert_eq!(c.changes[0].direction, Direction::Create);
    }

    #[test]
    fn an_expiring_override_is_expected_drift() {
        // Same commit, live as we applied it, but the override no longer applies at `now`.
        let d = desired("c1", vec![want("a@x", 10, "default")]);
        let live = Live::new(vec![have("a@x", 50, "override")], BTreeMap::new());
        let lasts = [last("a@x", 50, "c1", "override")].into_iter().collect();
        let c = plan_changes(&d, &live, &lasts, PlanOptions::default());
        assert_eq!(c.changes[0].drift, Drift::Expected);
        assert_eq!(c.drift[0].kind, Drift::Expected);
    }

    #[test]
    fn an_override_starting_after_a_new_commit_is_expected_drift() {
        let d = desired("c2", vec![want("a@x", 50, "override")]);
        let live = Live::new(vec![have("a@x", 10, "default")], BTreeMap::new());
        let lasts = [last("a@x", 10, "c1", "default")].into_iter().collect();
        let c = plan_changes(&d, &live, &lasts, PlanOptions::default());
        assert_eq!(c.changes[0].drift, Drift::Expected);
    }

    #[test]
    fn a_policy_change_in_a_new_commit_is_no_drift() {
        let d = desired("c2", vec![want("a@x", 20, "group")]);
        let live = Live::new(vec![have("a@x", 10, "group")], BTreeMap::new());
        let lasts = [last("a@x", 10, "c1", "group")].into_iter().collect();
        let c = plan_changes(&d, &live, &lasts, PlanOptions::default());
        assert_eq!(c.changes[0].drift, Drift::None);
        assert_eq!(c.changes[0].direction, Direction::Raise);
        assert!(c.drift.is_empty());
    }

    #[test]
    fn a_user_gone_from_the_directory_is_removed() {
        let d = desired("c1", vec![want("a@x", 10, "default")]);
        let live =
            Live::new(vec![have("a@x", 10, "default"), have("gone@x", 10, "default")], BTreeMap::new());
        let c = plan_changes(&d, &live, &BTreeMap::new(), PlanOptions::default());
        assert_eq!(c.changes.len(), 1);
        assert_eq!(c.changes[0].direction, Direction::Remove);
        assert!(c.changes[0].set.is_none());
    }

    #[test]
    fn a_moved_line_alone_is_no_change_but_a_new_deciding_document_is() {
        let d = desired("c1", vec![want("a@x", 10, "default")]);
        let mut h = have("a@x", 10, "default");
        if let Some(s) = h.source.as_mut() {
            s.line = 40;
        }
        let c = plan_changes(
            &d,
            &Live::new(vec![h.clone()], BTreeMap::new()),
            &BTreeMap::new(),
            PlanOptions::default(),
        );
        assert!(c.is_empty());
        h.source = source("group", "eng");
        let c =
            plan_changes(&d, &Live::new(vec![h], BTreeMap::new()), &BTreeMap::new(), PlanOptions::default());
        assert_eq!(c.changes[0].direction, Direction::Metadata);
        assert_eq!(c.limit_changes(), 0);
    }

    #[test]
    fn caps_decide_direction_when_totals_agree() {
        let mut a = limit(10);
        let mut b = limit(10);
        b.products.insert("codex".into(), Credits::from_whole(5));
        assert_eq!(direction(Some(&a), Some(&b)), Direction::Lower, "adding a cap restricts");
        assert_eq!(direction(Some(&b), Some(&a)), Direction::Raise, "dropping a cap frees");
        a.products.insert("codex".into(), Credits::from_whole(7));
        assert_eq!(direction(Some(&a), Some(&b)), Direction::Lower);
    }

    #[test]
    fn pools_are_set_and_removed() {
        let mut d = desired("c1", vec![want("a@x", 10, "default")]);
        d.pools.insert("eng".into(), Credits::from_whole(100));
        let live = Live::new(
            vec![have("a@x", 10, "default")],
            [("eng".to_string(), Credits::from_whole(50)), ("old".to_string(), Credits::from_whole(5))]
                .into_iter()
                .collect(),
        );
        let c = plan_changes(&d, &live, &BTreeMap::new(), PlanOptions::default());
        assert_eq!(
            c.pools,
            vec![
                PoolSet { group: "eng".into(), credits: Some(Credits::from_whole(100)) },
                PoolSet { group: "old".into(), credits: None },
            ]
        );
    }

    fn lowering(n_live: usize, n_lower: usize) -> Changes {
        let d = desired(
            "c1",
            (0..n_live)
                .map(|i| want(&format!("u{i}@x"), if i < n_lower { 5 } else { 10 }, "default"))
                .collect(),
        );
        let live = Live::new(
            (0..n_live).map(|i| have(&format!("u{i}@x"), 10, "default")).collect(),
            BTreeMap::new(),
        );
        plan_changes(&d, &live, &BTreeMap::new(), PlanOptions::default())
    }

    #[test]
    fn blast_radius_counts_changes() {
        let c = lowering(10, 3);
        let guard = Guard { max_changes: 2, max_lower_share: 1.0, allow_mass_change: false };
        assert_eq!(c.check_blast_radius(&guard), Err(Breach::TooMany { changes: 3, max: 2 }));
        assert_eq!(c.check_blast_radius(&Guard { allow_mass_change: true, ..guard }), Ok(()));
        assert_eq!(c.check_blast_radius(&Guard { max_changes: 3, ..guard }), Ok(()));
    }

    #[test]
    fn blast_radius_limits_the_lowered_share() {
        let guard = Guard::default();
        assert_eq!(lowering(10, 2).check_blast_radius(&guard), Ok(()), "20% is allowed");
        assert!(matches!(
            lowering(10, 3).check_blast_radius(&guard),
            Err(Breach::TooManyLowered { lowered: 3, total: 10, .. })
        ));
        assert_eq!(lowering(10, 3).check_blast_radius(&Guard { allow_mass_change: true, ..guard }), Ok(()));
    }

    #[test]
    fn the_digest_depends_on_the_writes_only() {
        let a = lowering(10, 3);
        let b = lowering(10, 3);
        assert_eq!(a.digest, b.digest);
        assert!(a.digest.starts_with("sha256:"));
        assert_ne!(a.digest, lowering(10, 2).digest);
    }
}
