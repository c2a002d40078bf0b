//! Plan: the *effect* of a policy change on real people, for pull requests.
//!
//! Takes two resolutions of the same directory at the same instant (base and
//! head), the period's usage per user and the head's validation report, and
//! computes what changed: counts and exposure first, then per user, per group,
//! per team pool, per product or model cap and per override, users newly blocked
//! or unblocked at today's usage, overrides starting or expiring soon (and what the
//! limit is just before and from then on), and a digest of the per-user and per-pool
//! changes that does not depend on file or directory order.
//! Blocked means what `evaluate` means by it: under hard enforcement, nothing left —
//! the limit used up, or the team pool of the user's group used up by the team.
//! Pure: no I/O, no clock. Reading the two sides (files or git) and resolving
//! them is the caller's job; how a plan looks is [`render`].

pub mod compute;
pub mod incremental;
pub mod render;
pub mod side;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Credits;
use crate::diag::output::DiagnosticOutput;
use crate::diag::{Code, Report, Severity};
use crate::directory::Directory;
use crate::load::{Loaded, PolicySet};
use crate::model::{Limit, Override};
use crate::resolve::{Provenance, Resolution, Resolved};
use crate::standing::{BlockedBy, CapUsage, Rules, Standings};

/// How far ahead starting and expiring overrides are reported.
pub const SOON_DAYS: i64 = 14;

/// Which revision a side is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RefLabel {
    /// The revision as given (`origin/main`), or null for the working tree.
    #[serde(rename = "ref")]
    pub name: Option<String>,
    /// The full commit id, or null for the working tree.
    pub commit: Option<String>,
}

impl RefLabel {
    /// A short human name: `origin/main (1a2b3c4d5e6f)` or `working tree`.
    pub fn display(&self) -> String {
        match (&self.name, &self.commit) {
            // A revision given as a commit prefix needs no repetition.
            (Some(name), Some(commit)) if commit.starts_with(name.as_str()) => {
                commit.get(..12).unwrap_or(commit).to_owned()
            }
            (Some(name), Some(commit)) => format!("{name} ({})", commit.get(..12).unwrap_or(commit)),
            (Some(name), None) => name.clone(),
            (None, Some(commit)) => commit.get(..12).unwrap_or(commit).to_owned(),
            (None, None) => String::from("working tree"),
        }
    }
}

/// One side of a plan: which revision, its documents and their resolution.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// Which revision.
    pub label: &'a RefLabel,
    /// Its documents.
    pub policies: &'a PolicySet,
    /// Every directory user's limit at `now`.
    pub resolution: &'a Resolution,
}

/// Everything a plan is computed from.
#[derive(Debug, Clone, Copy)]
pub struct PlanInput<'a> {
    /// The revision the change starts from.
    pub base: Side<'a>,
    /// The revision with the change.
    pub head: Side<'a>,
    /// The directory both sides were resolved against.
    pub directory: &'a Directory,
    /// Each directory user's usage this period, by directory position (missing = none).
    pub used: &'a [Credits],
    /// Each directory user's usage this period of the products and models a limit on
    /// either side caps.
    pub cap_used: &'a CapUsage,
    /// The head's validation findings (guardrails included).
    pub head_report: &'a Report,
    /// The instant of the plan (both resolutions are at it).
    pub now: DateTime<Utc>,
    /// List every override starting or expiring within [`SOON_DAYS`], not only those
    /// whose events the change touches.
    pub all_events: bool,
}

/// The effect of a change.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Plan {
    /// The revision the change starts from.
    pub base: RefLabel,
    /// The revision with the change.
    pub head: RefLabel,
    /// `sha256:` over the canonical per-user changes.
    pub digest: String,
    /// The counts.
    pub summary: Summary,
    /// Users whose effective limit changes or who become blocked or unblocked, by email.
    pub users: Vec<UserChange>,
    /// The workspace default, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<WorkspaceChange>,
    /// Groups added, removed, changed, moved, or whose members changed, by name.
    pub groups: Vec<GroupChange>,
    /// Team pools added, removed, raised or lowered, by group name.
    pub pools: Vec<PoolChange>,
    /// Product and model caps that change, each with how many users it changes for.
    pub caps: Vec<CapSummary>,
    /// Override documents that changed and those about to start or expire.
    pub overrides: Overrides,
    /// The head's validation findings, in `validate --format json`'s shape.
    pub diagnostics: Vec<DiagnosticOutput>,
}

impl Plan {
    /// True when no user's effective limit and no team pool changes, and nobody becomes
    /// blocked or unblocked.
    pub fn is_empty(&self) -> bool {
        // A pool bounds a whole team: changing it is an effective change even when every
        // member keeps their limit and has room.
        self.users.is_empty() && self.pools.is_empty()
    }

    /// True when the head has validation errors.
    pub fn has_errors(&self) -> bool {
        self.summary.errors > 0
    }
}

/// The counts of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Summary {
    /// Users in the directory.
    pub users: usize,
    /// Users whose effective limit changes (credits or caps), or who become blocked or
    /// unblocked with the same limit (their team pool): the length of [`Plan::users`].
    pub users_affected: usize,
    /// Users whose credits go up.
    pub raised: usize,
    /// Users whose credits go down.
    pub lowered: usize,
    /// Users whose credits stay but a product or model cap changes.
    pub caps_changed: usize,
    /// Users who get a product or model cap they did not have (whatever their credits do).
    pub caps_added: usize,
    /// Users who lose a product or model cap: that product or model is then bounded by
    /// their total only.
    pub caps_removed: usize,
    /// Users with a cap that goes up.
    pub caps_raised: usize,
    /// Users with a cap that goes down.
    pub caps_lowered: usize,
    /// Users whose limit does not change (some of them may still become blocked or
    /// unblocked as their team pool runs out or gets room).
    pub unchanged: usize,
    /// Users whose limit stays but now comes from another document.
    pub source_changed: usize,
    /// Sum of every user's credits at base.
    pub exposure_before: Credits,
    /// Sum of every user's credits at head.
    pub exposure_after: Credits,
    /// Team pools that only the head has.
    pub pools_added: usize,
    /// Team pools that only the base has.
    pub pools_removed: usize,
    /// Team pools that go up.
    pub pools_raised: usize,
    /// Team pools that go down.
    pub pools_lowered: usize,
    /// What the workspace can spend per period at base: every user's credits, with each
    /// team's total bounded by its pool.
    pub team_exposure_before: Credits,
    /// The same at head.
    pub team_exposure_after: Credits,
    /// Users with room at base and none at head: their limit, or their team's pool, is
    /// at or below what was used this period (hard enforcement only).
    pub newly_blocked: usize,
    /// Users blocked at base and no longer at head.
    pub newly_unblocked: usize,
    /// Users not blocked at head whose product or model cap blocks at head and did not
    /// at base: that product or model stops for them (hard enforcement only).
    pub newly_blocked_on_caps: usize,
    /// Users not blocked at head whose product or model cap blocked at base and does not
    /// at head: that product or model works for them again.
    pub newly_unblocked_on_caps: usize,
    /// Guardrail documents at head.
    pub guardrails: usize,
    /// Guardrail findings at head that are errors.
    pub guardrails_failed: usize,
    /// Validation errors at head.
    pub errors: usize,
    /// Validation warnings at head.
    pub warnings: usize,
}

/// One user's change: their limit changes, or they become blocked or unblocked.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct UserChange {
    /// The email.
    pub user: String,
    /// Credits at base.
    pub before: Credits,
    /// Credits at head.
    pub after: Credits,
    /// `after - before`.
    pub delta: Credits,
    /// The whole limit at base (caps included).
    pub limit_before: Limit,
    /// The whole limit at head.
    pub limit_after: Limit,
    /// What decided it at base.
    pub source_before: Provenance,
    /// What decided it at head.
    pub source_after: Provenance,
    /// Used this period.
    pub used: Credits,
    /// Not blocked at base, blocked at head.
    pub newly_blocked: bool,
    /// Blocked at base, not at head.
    pub newly_unblocked: bool,
    /// What blocks the user at base (the standings' answer; the JSON says it through
    /// `newly_blocked`, `newly_unblocked` and the pools).
    #[serde(skip)]
    pub blocked_by_before: Option<BlockedBy>,
    /// What blocks the user at head.
    #[serde(skip)]
    pub blocked_by_after: Option<BlockedBy>,
    /// The team pool bounding the user at base, when their group has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_before: Option<PoolStanding>,
    /// The team pool bounding the user at head, when their group has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_after: Option<PoolStanding>,
    /// The product and model caps that differ between `limit_before` and `limit_after`.
    pub caps: Vec<CapChange>,
    /// The product and model caps that block the user on one side and not the other,
    /// at what they used of each this period.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_blocks: Vec<CapBlock>,
}

/// A product or model cap that blocks a user on one side of a plan and not the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CapBlock {
    /// `product` or `model`.
    pub kind: CapKind,
    /// The product or model.
    pub name: String,
    /// What the user used of it this period.
    pub used: Credits,
    /// True when the cap blocks it at base.
    pub blocked_before: bool,
    /// True when the cap blocks it at head.
    pub blocked_after: bool,
}

/// The caps whose blocking differs between a user's two limits, at what `user` used of
/// each product and model: products first, each by name.
fn cap_blocks(rules: [&Rules; 2], limits: [&Limit; 2], used: &CapUsage, user: usize) -> Vec<CapBlock> {
    let [before, after] = limits;
    let mut out = Vec::new();
    for kind in [CapKind::Product, CapKind::Model] {
        let (b, a) = match kind {
            CapKind::Product => (&before.products, &after.products),
            CapKind::Model => (&before.models, &after.models),
            // a rate cap bounds an hour's spend, not the period's usage a plan reads
            CapKind::Rate => continue,
        };
        if b.is_empty() && a.is_empty() {
            continue;
        }
        let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
        for name in names {
            let spent = match kind {
                CapKind::Product => used.product(user, name),
                CapKind::Model | CapKind::Rate => used.model(user, name),
            };
            let blocks =
                |rules: &Rules, cap: Option<&Credits>| cap.is_some_and(|&c| rules.cap_blocks(c, spent));
            let (blocked_before, blocked_after) =
                (blocks(rules[0], b.get(name)), blocks(rules[1], a.get(name)));
            if blocked_before != blocked_after {
                out.push(CapBlock { kind, name: name.clone(), used: spent, blocked_before, blocked_after });
            }
        }
    }
    out
}

impl UserChange {
    /// True when the user's limit (credits or caps) differs between the sides.
    pub fn limit_changed(&self) -> bool {
        self.limit_before != self.limit_after
    }
}

/// Whether a cap limits a product or a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CapKind {
    /// A `products` entry.
    Product,
    /// A `models` entry.
    Model,
    /// The rate cap (`per_hour`); its name is `per_hour`.
    Rate,
}

impl CapKind {
    /// `product` or `model`.
    pub fn as_str(self) -> &'static str {
        match self {
            CapKind::Product => "product",
            CapKind::Model => "model",
            CapKind::Rate => "rate cap",
        }
    }
}

/// How a cap or a pool changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// Only at head.
    Added,
    /// Only at base.
    Removed,
    /// Higher at head.
    Raised,
    /// Lower at head.
    Lowered,
}

impl Change {
    /// The change from `before` to `after`, or `None` when they are equal.
    pub fn of(before: Option<Credits>, after: Option<Credits>) -> Option<Change> {
        match (before, after) {
            (None, Some(_)) => Some(Change::Added),
            (Some(_), None) => Some(Change::Removed),
            (Some(b), Some(a)) if a > b => Some(Change::Raised),
            (Some(b), Some(a)) if a < b => Some(Change::Lowered),
            _ => None,
        }
    }

    /// `added`, `removed`, `raised` or `lowered`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Raised => "raised",
            Change::Lowered => "lowered",
        }
    }
}

/// One user's product or model cap that differs between the sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CapChange {
    /// `product` or `model`.
    pub kind: CapKind,
    /// The product or model.
    pub name: String,
    /// The cap at base (null: none, the total alone bounds it).
    pub before: Option<Credits>,
    /// The cap at head.
    pub after: Option<Credits>,
    /// Added, removed, raised or lowered.
    pub change: Change,
}

/// The caps that differ between a user's two limits, products first, each by name,
/// then the rate cap.
pub fn cap_changes(before: &Limit, after: &Limit) -> Vec<CapChange> {
    let mut out = Vec::new();
    for (kind, b, a) in [
        (CapKind::Product, &before.products, &after.products),
        (CapKind::Model, &before.models, &after.models),
    ] {
        let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
        for name in names {
            let (cb, ca) = (b.get(name).copied(), a.get(name).copied());
            if let Some(change) = Change::of(cb, ca) {
                out.push(CapChange { kind, name: name.clone(), before: cb, after: ca, change });
            }
        }
    }
    if let Some(change) = Change::of(before.per_hour, after.per_hour) {
        out.push(CapChange {
            kind: CapKind::Rate,
            name: RATE_CAP.to_owned(),
            before: before.per_hour,
            after: after.per_hour,
            change,
        });
    }
    out
}

/// The name of the rate cap in cap changes: its field.
pub const RATE_CAP: &str = "per_hour";

/// One cap change shared by some users: the same cap going from the same value to the same value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CapSummary {
    /// `product` or `model`.
    pub kind: CapKind,
    /// The product or model.
    pub name: String,
    /// The cap at base (null: none).
    pub before: Option<Credits>,
    /// The cap at head (null: none).
    pub after: Option<Credits>,
    /// Added, removed, raised or lowered.
    pub change: Change,
    /// How many users it changes for.
    pub users: usize,
}

/// A team pool that is added, removed, raised or lowered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PoolChange {
    /// The group whose pool it is.
    pub group: String,
    /// Added, removed, raised or lowered.
    pub change: Change,
    /// The pool at base (null: none, or no such group).
    pub before: Option<Credits>,
    /// The pool at head.
    pub after: Option<Credits>,
    /// Users the group wins at base.
    pub members_before: usize,
    /// Users the group wins at head.
    pub members_after: usize,
    /// What those users used this period, at base (null when the base has no pool).
    pub used_before: Option<Credits>,
    /// The same at head.
    pub used_after: Option<Credits>,
    /// What the team can spend per period at base: its members' credits, bounded by the pool.
    pub team_exposure_before: Credits,
    /// The same at head.
    pub team_exposure_after: Credits,
}

/// A team pool as one side sees it: the group, its pool and what its members used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PoolStanding {
    /// The group whose pool it is.
    pub group: String,
    /// The pool.
    pub pool: Credits,
    /// What the users whose pool it is used this period.
    pub used: Credits,
}

impl PoolStanding {
    /// True when nothing is left of the pool.
    pub fn used_up(&self) -> bool {
        self.used >= self.pool
    }
}

/// The workspace document's change.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct WorkspaceChange {
    /// Top-level fields that differ.
    pub changes: Vec<String>,
    /// The default limit at base.
    pub default_before: Option<Limit>,
    /// The default limit at head.
    pub default_after: Option<Limit>,
    /// Changed users whose limit comes from the default on either side.
    pub users_affected: usize,
    /// Their credits' total change.
    pub delta: Credits,
}

/// What happened to a group document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocStatus {
    /// Only at head.
    Added,
    /// Only at base.
    Removed,
    /// Content differs.
    Changed,
    /// Same content in another file.
    Moved,
    /// Same content, same file.
    Unchanged,
}

/// One group's change.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GroupChange {
    /// The group's name.
    pub group: String,
    /// What happened to its document.
    pub status: DocStatus,
    /// Top-level fields that differ (`limit`, `selector`, …).
    pub changes: Vec<String>,
    /// Its file at base.
    pub file_before: Option<String>,
    /// Its file at head.
    pub file_after: Option<String>,
    /// Its limit at base.
    pub limit_before: Option<Limit>,
    /// Its limit at head.
    pub limit_after: Option<Limit>,
    /// Users it wins at base.
    pub members_before: usize,
    /// Users it wins at head.
    pub members_after: usize,
    /// Users that join it (win it at head, not at base).
    pub joined: usize,
    /// Users that leave it.
    pub left: usize,
    /// Changed users it wins on either side.
    pub users_affected: usize,
    /// Their credits' total change.
    pub delta: Credits,
}

/// Override documents in the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Overrides {
    /// Only at head.
    pub added: Vec<OverrideChange>,
    /// Only at base.
    pub removed: Vec<OverrideChange>,
    /// At both, different.
    pub changed: Vec<OverrideChange>,
    /// At head, starting within [`SOON_DAYS`].
    pub starting_soon: Vec<Upcoming>,
    /// At head, expiring within [`SOON_DAYS`].
    pub expiring_soon: Vec<Upcoming>,
    /// Events within [`SOON_DAYS`] the change does not touch, left out of the two lists
    /// above (0 when [`PlanInput::all_events`] asked for every one).
    pub untouched_events: usize,
}

/// An override document's change.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct OverrideChange {
    /// Its name.
    pub name: String,
    /// Its user.
    pub user: String,
    /// Its file (head's when it exists there).
    pub file: String,
    /// Fields that differ (for `changed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// `add` or `limit` credits, as written (`+5000`, `=8000`).
    pub amount: String,
    /// First instant it applies.
    pub starts: Option<String>,
    /// First instant it no longer applies.
    pub expires: String,
    /// Whether it applies now (at head; at base for removed ones).
    pub active: bool,
}

/// An override starting or expiring soon, and the user's limit just before and from then on.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Upcoming {
    /// Its name.
    pub name: String,
    /// Its user.
    pub user: String,
    /// When (`starts` or `expires`).
    pub at: DateTime<Utc>,
    /// The user's credits now (null when the user is not in the directory).
    pub credits_now: Option<Credits>,
    /// The user's credits from `at` on.
    pub credits_then: Option<Credits>,
    /// The user's whole limit just before `at` (null when the user is not in the directory).
    pub limit_before: Option<Limit>,
    /// The user's whole limit from `at` on.
    pub limit_after: Option<Limit>,
    /// Whether the change touches the event: the override is added or changed, or the
    /// limit before or after it differs from what the base gives at the same instants.
    pub touched: bool,
}

/// A user whose lot changes: their directory position, what blocks them before and
/// after, and the caps whose blocking moves.
type Changed = (usize, Option<BlockedBy>, Option<BlockedBy>, Vec<CapBlock>);

/// Computes the effect of going from `base` to `head`.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let PlanInput { base, head, directory, used, cap_used, head_report, now: _, all_events: _ } = *input;
    let n = directory.len();
    let mut summary = Summary { users: n, ..Summary::default() };
    // The users whose lot changes: position, and what blocks them before and after.
    let mut changed: Vec<Changed> = Vec::new();
    // Groups by a dense id over both sides' names: the per-user loop then counts in
    // arrays instead of hashing names (it runs once per directory user).
    let mut names: Vec<&str> =
        base.policies.groups.iter().chain(&head.policies.groups).map(|g| g.doc.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let ids = |set: &PolicySet| -> Vec<usize> {
        set.groups.iter().map(|g| names.binary_search(&g.doc.name.as_str()).unwrap_or(usize::MAX)).collect()
    };
    let (base_ids, head_ids) = (ids(base.policies), ids(head.policies));
    let group_id = |r: &crate::resolve::Resolved, ids: &[usize]| r.group.and_then(|g| ids.get(g).copied());
    let mut counts = vec![[0usize; 4]; names.len()]; // before, after, joined, left
    // The credits of the users each group wins, before and after: a team's exposure.
    let mut team_credits = vec![[Credits::ZERO; 2]; names.len()];
    let mut moved = vec![(0usize, Credits::ZERO); names.len()];
    let mut default_affected = (0usize, Credits::ZERO);
    let (base_standings, head_standings) = (
        Standings::of(base.policies, base.resolution, used),
        Standings::of(head.policies, head.resolution, used),
    );
    for i in 0..n {
        let (Some(b), Some(h)) = (base.resolution.user(i), head.resolution.user(i)) else {
            continue;
        };
        summary.exposure_before += b.limit.credits;
        summary.exposure_after += h.limit.credits;
        let (gb, ga) = (group_id(b, &base_ids), group_id(h, &head_ids));
        if let Some(c) = gb.and_then(|g| counts.get_mut(g)) {
            c[0] += 1;
        }
        if let Some(c) = ga.and_then(|g| counts.get_mut(g)) {
            c[1] += 1;
        }
        if let Some(t) = gb.and_then(|g| team_credits.get_mut(g)) {
            t[0] += b.limit.credits;
        }
        if let Some(t) = ga.and_then(|g| team_credits.get_mut(g)) {
            t[1] += h.limit.credits;
        }
        if gb != ga {
            if let Some(c) = ga.and_then(|g| counts.get_mut(g)) {
                c[2] += 1;
            }
            if let Some(c) = gb.and_then(|g| counts.get_mut(g)) {
                c[3] += 1;
            }
        }
        let spent = used.get(i).copied().unwrap_or(Credits::ZERO);
        let (by_before, by_after) =
            (base_standings.user(b, spent).blocked_by, head_standings.user(h, spent).blocked_by);
        let (blocked_before, blocked_after) = (by_before.is_some(), by_after.is_some());
        // The incremental base shares the head's limit with every user it did not resolve again.
        let same_limit = Arc::ptr_eq(&b.limit, &h.limit) || *b.limit == *h.limit;
        let rules = [&base_standings.rules, &head_standings.rules];
        // The same caps at the same usage block alike unless the enforcement changes.
        let cap_moves = if same_limit && rules[0].hard == rules[1].hard {
            Vec::new()
        } else {
            cap_blocks(rules, [&b.limit, &h.limit], cap_used, i)
        };
        if same_limit {
            summary.unchanged += 1;
            if !same_document(&b.source, &h.source) {
                summary.source_changed += 1;
            }
            // The same limit still changes the user's lot when their team pool runs out or gets room.
            if blocked_before == blocked_after && cap_moves.is_empty() {
                continue;
            }
        }
        // A cap's blocking matters to a user whom neither their total nor their pool stops.
        if !blocked_after {
            summary.newly_blocked_on_caps += usize::from(cap_moves.iter().any(|c| c.blocked_after));
            summary.newly_unblocked_on_caps += usize::from(cap_moves.iter().any(|c| c.blocked_before));
        }
        let delta = h.limit.credits - b.limit.credits;
        if !same_limit {
            match delta.cmp(&Credits::ZERO) {
                std::cmp::Ordering::Greater => summary.raised += 1,
                std::cmp::Ordering::Less => summary.lowered += 1,
                std::cmp::Ordering::Equal => summary.caps_changed += 1,
            }
        }
        let newly_blocked = !blocked_before && blocked_after;
        let newly_unblocked = blocked_before && !blocked_after;
        summary.newly_blocked += usize::from(newly_blocked);
        summary.newly_unblocked += usize::from(newly_unblocked);
        for g in [gb, if ga == gb { None } else { ga }].into_iter().flatten() {
            if let Some(e) = moved.get_mut(g) {
                e.0 += 1;
                e.1 += delta;
            }
        }
        if b.source.kind == crate::resolve::SourceKind::Default
            || h.source.kind == crate::resolve::SourceKind::Default
        {
            default_affected.0 += 1;
            default_affected.1 += delta;
        }
        changed.push((i, by_before, by_after, cap_moves));
    }
    // Sorted by email (stably, in directory order among equals) before the changes are
    // built: sorting moves a position instead of a change of hundreds of bytes.
    let email = |i: usize| directory.users.get(i).map_or("", |u| u.email.as_str());
    changed.sort_by(|a, b| email(a.0).cmp(email(b.0)));
    let users: Vec<UserChange> = changed
        .into_iter()
        .filter_map(|(i, blocked_by_before, blocked_by_after, cap_blocks)| {
            let (b, h) = (base.resolution.user(i)?, head.resolution.user(i)?);
            let spent = used.get(i).copied().unwrap_or(Credits::ZERO);
            Some(UserChange {
                user: email(i).to_owned(),
                before: b.limit.credits,
                after: h.limit.credits,
                delta: h.limit.credits - b.limit.credits,
                limit_before: (*b.limit).clone(),
                limit_after: (*h.limit).clone(),
                source_before: b.source.clone(),
                source_after: h.source.clone(),
                used: spent,
                newly_blocked: blocked_by_before.is_none() && blocked_by_after.is_some(),
                newly_unblocked: blocked_by_before.is_some() && blocked_by_after.is_none(),
                blocked_by_before,
                blocked_by_after,
                pool_before: pool_standing(base, &base_standings, b),
                pool_after: pool_standing(head, &head_standings, h),
                caps: cap_changes(&b.limit, &h.limit),
                cap_blocks,
            })
        })
        .collect();
    summary.users_affected = users.len();
    let caps = cap_summaries(&users, &mut summary);

    // Team pools by group name on each side, with what their teams used.
    let pools_of = |standings: &Standings, ids: &[usize]| -> Vec<Option<(Credits, Credits)>> {
        let mut out = vec![None; names.len()];
        for (g, pool) in standings.pools.iter().enumerate() {
            if let (Some(pool), Some(slot)) = (pool, ids.get(g).and_then(|&id| out.get_mut(id))) {
                slot.get_or_insert((pool.pool, pool.used));
            }
        }
        out
    };
    let (base_pools, head_pools) =
        (pools_of(&base_standings, &base_ids), pools_of(&head_standings, &head_ids));
    // A team's members can spend no more than its pool: the workspace's exposure with
    // every team bounded so.
    let bounded = |pools: &[Option<(Credits, Credits)>], side: usize| -> Credits {
        pools
            .iter()
            .zip(&team_credits)
            .filter_map(|(pool, credits)| pool.map(|(pool, _)| credits[side] - credits[side].min(pool)))
            .sum()
    };
    summary.team_exposure_before = summary.exposure_before - bounded(&base_pools, 0);
    summary.team_exposure_after = summary.exposure_after - bounded(&head_pools, 1);
    let mut pools = Vec::new();
    for (id, name) in names.iter().enumerate() {
        let (bp, hp) = (base_pools.get(id).copied().flatten(), head_pools.get(id).copied().flatten());
        let Some(change) = Change::of(bp.map(|p| p.0), hp.map(|p| p.0)) else {
            continue;
        };
        match change {
            Change::Added => summary.pools_added += 1,
            Change::Removed => summary.pools_removed += 1,
            Change::Raised => summary.pools_raised += 1,
            Change::Lowered => summary.pools_lowered += 1,
        }
        let [members_before, members_after, _, _] = counts.get(id).copied().unwrap_or_default();
        let [credits_before, credits_after] = team_credits.get(id).copied().unwrap_or_default();
        let exposure = |credits: Credits, pool: Option<(Credits, Credits)>| match pool {
            Some((pool, _)) => credits.min(pool),
            None => credits,
        };
        pools.push(PoolChange {
            group: (*name).to_owned(),
            change,
            before: bp.map(|p| p.0),
            after: hp.map(|p| p.0),
            members_before,
            members_after,
            used_before: bp.map(|p| p.1),
            used_after: hp.map(|p| p.1),
            team_exposure_before: exposure(credits_before, bp),
            team_exposure_after: exposure(credits_after, hp),
        });
    }

    let members: BTreeMap<String, [usize; 4]> =
        names.iter().zip(&counts).map(|(n, c)| ((*n).to_owned(), *c)).collect();
    let affected: BTreeMap<String, (usize, Credits)> =
        names.iter().zip(&moved).map(|(n, m)| ((*n).to_owned(), *m)).collect();
    let groups = group_changes(base.policies, head.policies, &members, &affected);
    let workspace = workspace_change(base.policies, head.policies, default_affected);
    let overrides = override_changes(input);

    summary.guardrails = head.policies.guardrails.len();
    for d in &head_report.diagnostics {
        match d.severity {
            Severity::Error => summary.errors += 1,
            Severity::Warning => summary.warnings += 1,
        }
        if matches!(d.code, Code::GuardrailFailed | Code::GuardrailError) && d.severity == Severity::Error {
            summary.guardrails_failed += 1;
        }
    }
    let diagnostics =
        head_report.diagnostics.iter().map(|d| DiagnosticOutput::new(d, &|l| l.file.to_string())).collect();
    Plan {
        base: base.label.clone(),
        head: head.label.clone(),
        digest: digest(&users, &pools),
        summary,
        users,
        workspace,
        groups,
        pools,
        caps,
        overrides,
        diagnostics,
    }
}

/// The cap changes of every changed user, grouped by cap and values (products first,
/// then by name, before and after), and each user counted once per kind of change.
fn cap_summaries(users: &[UserChange], summary: &mut Summary) -> Vec<CapSummary> {
    // Keyed by the cap and its two values: users sharing all three share a row.
    type Key<'u> = (CapKind, &'u str, Option<Credits>, Option<Credits>);
    let mut shared: BTreeMap<Key<'_>, (Change, usize)> = BTreeMap::new();
    for u in users {
        let mut seen = [false; 4];
        for c in &u.caps {
            shared.entry((c.kind, c.name.as_str(), c.before, c.after)).or_insert((c.change, 0)).1 += 1;
            seen[c.change as usize] = true;
        }
        summary.caps_added += usize::from(seen[Change::Added as usize]);
        summary.caps_removed += usize::from(seen[Change::Removed as usize]);
        summary.caps_raised += usize::from(seen[Change::Raised as usize]);
        summary.caps_lowered += usize::from(seen[Change::Lowered as usize]);
    }
    shared
        .into_iter()
        .map(|((kind, name, before, after), (change, users))| CapSummary {
            kind,
            name: name.to_owned(),
            before,
            after,
            change,
            users,
        })
        .collect()
}

/// The team pool a resolved user's standing on one side is bounded by, by group name.
fn pool_standing(side: Side<'_>, standings: &Standings, r: &Resolved) -> Option<PoolStanding> {
    let pool = standings.pool_of(r)?;
    let group = side.policies.groups.get(r.group?)?.doc.name.clone();
    Some(PoolStanding { group, pool: pool.pool, used: pool.used })
}

/// Whether two provenances name the same document (file moves and line shifts do not count).
fn same_document(a: &Provenance, b: &Provenance) -> bool {
    a.kind == b.kind && a.name == b.name
}

/// `sha256:<hex>` over the per-user limit changes in a canonical form: sorted by email,
/// exact decimals, sorted caps, then the team pool changes sorted by group. Neither file
/// order, directory order nor the machine matter, and neither does usage: users listed only
/// because they become (un)blocked do not count.
///
/// A plan without pool changes hashes exactly what it did before pools were part of the
/// digest: digests already recorded for such plans stay valid.
pub fn digest(users: &[UserChange], pools: &[PoolChange]) -> String {
    // One allocation per line: thousands of users change in a large plan.
    let mut lines: Vec<String> = users
        .iter()
        .filter(|u| u.limit_changed())
        .map(|u| {
            let mut line = String::with_capacity(u.user.len() + 96);
            line.push_str(&u.user);
            line.push('\t');
            canonical(&mut line, &u.limit_before);
            line.push('\t');
            canonical(&mut line, &u.limit_after);
            line.push('\n');
            line
        })
        .collect();
    lines.sort();
    let mut hasher = Sha256::new();
    hasher.update(b"budgit-plan-v1\n");
    for line in &lines {
        hasher.update(line.as_bytes());
    }
    if !pools.is_empty() {
        let mut lines: Vec<String> = pools
            .iter()
            .map(|p| {
                let side = |c: Option<Credits>| c.map_or_else(|| String::from("none"), |c| c.to_string());
                format!("{}\t{}\t{}\n", p.group, side(p.before), side(p.after))
            })
            .collect();
        lines.sort();
        // Every user line holds two tabs: the marker line cannot be mistaken for one.
        hasher.update(b"pools\n");
        for line in &lines {
            hasher.update(line.as_bytes());
        }
    }
    let hash = hasher.finalize();
    let mut out = String::from("sha256:");
    for byte in hash {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Appends `credits=…;products=k=v,…;models=k=v,…` (caps in key order) to `out`, then
/// `;per_hour=…` when there is a rate cap: a limit without one hashes as it did
/// before rate caps existed, so digests already recorded stay valid.
fn canonical(out: &mut String, limit: &Limit) {
    let caps = |out: &mut String, m: &BTreeMap<String, Credits>| {
        for (i, (k, v)) in m.iter().enumerate() {
            let _ = write!(out, "{}{k}={v}", if i == 0 { "" } else { "," });
        }
    };
    let _ = write!(out, "credits={};products=", limit.credits);
    caps(out, &limit.products);
    out.push_str(";models=");
    caps(out, &limit.models);
    if let Some(rate) = limit.per_hour {
        let _ = write!(out, ";per_hour={rate}");
    }
}

/// Top-level fields whose values differ between two documents.
fn field_changes<T: Serialize>(a: &T, b: &T) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

fn group_changes(
    base: &PolicySet,
    head: &PolicySet,
    members: &BTreeMap<String, [usize; 4]>,
    affected: &BTreeMap<String, (usize, Credits)>,
) -> Vec<GroupChange> {
    let by_name = |set: &PolicySet| -> BTreeMap<String, usize> {
        set.groups.iter().enumerate().map(|(i, g)| (g.doc.name.clone(), i)).collect()
    };
    let (bn, hn) = (by_name(base), by_name(head));
    let names: BTreeSet<&String> = bn.keys().chain(hn.keys()).collect();
    let mut out = Vec::new();
    for name in names {
        let b = bn.get(name).and_then(|&i| base.groups.get(i));
        let h = hn.get(name).and_then(|&i| head.groups.get(i));
        let (status, changes) = match (b, h) {
            (None, Some(_)) => (DocStatus::Added, Vec::new()),
            (Some(_), None) => (DocStatus::Removed, Vec::new()),
            (Some(b), Some(h)) => {
                let changes = field_changes(&b.doc, &h.doc);
                if !changes.is_empty() {
                    (DocStatus::Changed, changes)
                } else if b.file != h.file {
                    (DocStatus::Moved, Vec::new())
                } else {
                    (DocStatus::Unchanged, Vec::new())
                }
            }
            (None, None) => continue,
        };
        let [members_before, members_after, joined, left] = members.get(name).copied().unwrap_or_default();
        let (users_affected, delta) = affected.get(name).copied().unwrap_or((0, Credits::ZERO));
        if status == DocStatus::Unchanged && joined == 0 && left == 0 && users_affected == 0 {
            continue;
        }
        out.push(GroupChange {
            group: name.clone(),
            status,
            changes,
            file_before: b.map(|g| g.file.to_string()),
            file_after: h.map(|g| g.file.to_string()),
            limit_before: b.map(|g| g.doc.limit.clone()),
            limit_after: h.map(|g| g.doc.limit.clone()),
            members_before,
            members_after,
            joined,
            left,
            users_affected,
            delta,
        });
    }
    out
}

fn workspace_change(
    base: &PolicySet,
    head: &PolicySet,
    (users_affected, delta): (usize, Credits),
) -> Option<WorkspaceChange> {
    let (b, h) = (base.workspace(), head.workspace());
    let changes = match (b, h) {
        (Some(b), Some(h)) => field_changes(&b.doc, &h.doc),
        (None, None) => return None,
        _ => vec![String::from("workspace")],
    };
    if changes.is_empty() {
        return None;
    }
    Some(WorkspaceChange {
        changes,
        default_before: b.map(|w| w.doc.default.clone()),
        default_after: h.map(|w| w.doc.default.clone()),
        users_affected,
        delta,
    })
}

fn amount(o: &Override) -> String {
    match (&o.add, &o.limit) {
        (Some(add), _) => format!("+{}", add.credits.unwrap_or(Credits::ZERO)),
        (None, Some(limit)) => format!("={}", limit.credits),
        (None, None) => String::new(),
    }
}

fn override_change(o: &Loaded<Override>, tz: &chrono_tz::Tz, now: DateTime<Utc>) -> OverrideChange {
    OverrideChange {
        name: o.doc.name.clone(),
        user: o.doc.user.clone(),
        file: o.file.to_string(),
        changes: Vec::new(),
        amount: amount(&o.doc),
        starts: o.doc.starts.map(|s| s.to_string()),
        expires: o.doc.expires.to_string(),
        active: is_active(&o.doc, tz, now),
    }
}

fn is_active(o: &Override, tz: &chrono_tz::Tz, t: DateTime<Utc>) -> bool {
    o.starts.is_none_or(|s| s.instant(tz) <= t) && t < o.expires.instant(tz)
}

fn override_changes<'a>(input: &PlanInput<'a>) -> Overrides {
    let (base, head, now) = (input.base, input.head, input.now);
    let (btz, htz) = (base.resolution.timezone, head.resolution.timezone);
    // Borrowed names: thousands of overrides, so no copy of each name for the maps.
    let by_name = |set: &'a PolicySet| -> BTreeMap<&'a str, usize> {
        set.overrides.iter().enumerate().map(|(i, o)| (o.doc.name.as_str(), i)).collect()
    };
    let (bn, hn) = (by_name(base.policies), by_name(head.policies));
    let mut out = Overrides::default();
    let names: BTreeSet<&str> = bn.keys().chain(hn.keys()).copied().collect();
    for name in names {
        let b = bn.get(name).and_then(|&i| base.policies.overrides.get(i));
        let h = hn.get(name).and_then(|&i| head.policies.overrides.get(i));
        match (b, h) {
            (None, Some(h)) => out.added.push(override_change(h, &htz, now)),
            (Some(b), None) => out.removed.push(override_change(b, &btz, now)),
            // Most overrides are untouched by a change: compare before serializing both.
            (Some(b), Some(h)) if b.doc == h.doc && b.file == h.file => {}
            (Some(b), Some(h)) => {
                let mut changes = field_changes(&b.doc, &h.doc);
                if b.file != h.file {
                    changes.push(String::from("file"));
                }
                if !changes.is_empty() {
                    out.changed.push(OverrideChange { changes, ..override_change(h, &htz, now) });
                }
            }
            (None, None) => {}
        }
    }
    let horizon = now + Duration::days(SOON_DAYS);
    // Each upcoming override asks for its user's other overrides: index them once by
    // user instead of scanning every override per question.
    let index = |set: &'a PolicySet| {
        let mut by_user: HashMap<String, Vec<&'a Loaded<Override>>> = HashMap::new();
        for o in &set.overrides {
            by_user.entry(o.doc.user.to_ascii_lowercase()).or_default().push(o);
        }
        by_user
    };
    let (by_user, base_by_user) = (index(head.policies), index(base.policies));
    // Overrides this change adds or edits: their events are the change's own.
    let edited: BTreeSet<&str> = out.added.iter().chain(&out.changed).map(|c| c.name.as_str()).collect();
    for o in &head.policies.overrides {
        let mut events = Vec::new();
        if let Some(s) = o.doc.starts.map(|s| s.instant(&htz))
            && now < s
            && s <= horizon
        {
            events.push((true, s));
        }
        let e = o.doc.expires.instant(&htz);
        if now < e && e <= horizon {
            events.push((false, e));
        }
        for (starting, at) in events {
            let position = input.directory.position(&o.doc.user);
            let credits_now = position.and_then(|i| head.resolution.user(i)).map(|r| r.limit.credits);
            let key = o.doc.user.to_ascii_lowercase();
            let theirs = by_user.get(&key).map_or(&[][..], Vec::as_slice);
            // The event's own before → after: the instant just before it, and it. Measured
            // from now instead, an earlier event of the same user would blur it.
            let just_before = at - Duration::nanoseconds(1);
            let around = |side: Side<'_>, theirs: &[&Loaded<Override>]| {
                let at_side = |t| position.and_then(|i| limit_at(side, theirs, i, t));
                (at_side(just_before), at_side(at))
            };
            let (limit_before, limit_after) = around(head, theirs);
            let touched = edited.contains(o.doc.name.as_str())
                || around(base, base_by_user.get(&key).map_or(&[][..], Vec::as_slice))
                    != (limit_before.clone(), limit_after.clone());
            if !(touched || input.all_events) {
                out.untouched_events += 1;
                continue;
            }
            let item = Upcoming {
                name: o.doc.name.clone(),
                user: o.doc.user.clone(),
                at,
                credits_now,
                credits_then: limit_after.as_ref().map(|l| l.credits),
                limit_before,
                limit_after,
                touched,
            };
            if starting {
                out.starting_soon.push(item);
            } else {
                out.expiring_soon.push(item);
            }
        }
    }
    let key = |u: &Upcoming| (u.at, u.name.clone());
    out.starting_soon.sort_by_key(key);
    out.expiring_soon.sort_by_key(key);
    out
}

/// A user's limit at another instant of the same side: the winning group's limit
/// (membership does not depend on time) or the default, with the override active then.
/// `theirs` holds every override of the user (emails compare without case).
fn limit_at(side: Side<'_>, theirs: &[&Loaded<Override>], i: usize, at: DateTime<Utc>) -> Option<Limit> {
    let resolved = side.resolution.user(i)?;
    let tz = side.resolution.timezone;
    let base = match resolved.group.and_then(|g| side.policies.groups.get(g)) {
        Some(g) => g.doc.limit.clone(),
        None => side.policies.workspace()?.doc.default.clone(),
    };
    // The same order resolution applies: earliest `starts` (absent first), then name.
    let active = theirs
        .iter()
        .filter(|o| is_active(&o.doc, &tz, at))
        .min_by_key(|o| (o.doc.starts.map(|s| s.instant(&tz)), o.doc.name.clone()));
    Some(match active {
        Some(o) => match (&o.doc.limit, &o.doc.add) {
            (Some(limit), _) => limit.clone(),
            (None, Some(add)) => base.plus(add),
            (None, None) => base,
        },
        None => base,
    })
}

#[cfg(test)]
mod tests;
