//! Resolution: every user's effective limit at an instant, and what decided it.
//!
//! The rules (README.md, "Policies in brief"): an active override for the user wins (`limit`
//! replaces, `add` adds); otherwise the matching group with the highest priority
//! (ties: larger credits, then the name that sorts first); otherwise the workspace
//! default. The answer never depends on file order. Every result carries the
//! provenance of the deciding document and the rules that matched but lost.
//!
//! This module does not read files or evaluate usage: it takes a loaded
//! [`PolicySet`] and a [`Directory`]. Selectors are evaluated in bulk by
//! [`crate::select`]; the per-user pass afterwards only reads bitsets and indexes,
//! and shares limits through [`Arc`] instead of copying them per user.

mod explain;
mod membership;
mod output;

use std::cmp::{Ordering, Reverse};
use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::directory::Directory;
use crate::load::{Loaded, PolicySet};
use crate::model::{Group, Limit, LimitAdd, Period, Workspace};
use crate::period::{PeriodRange, parse_timezone, period_containing};

pub use explain::{
    Explanation, GroupOutcome, GroupTrace, Membership, OverrideOutcome, OverrideTrace, RuleLimit, explain,
};
pub use output::{ResolveOutput, UserOutput};

/// Why resolution could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The policies hold no `Workspace` document.
    #[error("the policies have no `Workspace` document")]
    NoWorkspace,
    /// The policies hold several `Workspace` documents.
    #[error("the policies have {0} `Workspace` documents, exactly one is allowed")]
    ManyWorkspaces(usize),
    /// The workspace's time zone is not an IANA name.
    #[error("unknown time zone `{0}`")]
    Timezone(String),
    /// The user asked about is not in the directory.
    #[error("user `{email}` is not in the directory")]
    UnknownUser {
        /// The email asked about.
        email: String,
        /// A directory email close to it, when there is one.
        suggestion: Option<String>,
    },
    /// Memberships evaluated for other policies or another directory were passed in.
    #[error("group memberships were evaluated for other policies or another directory")]
    StaleMemberships,
}

/// What kind of document decided a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// The workspace default.
    Default,
    /// A group.
    Group,
    /// An override.
    Override,
}

impl SourceKind {
    /// The lowercase name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Default => "default",
            SourceKind::Group => "group",
            SourceKind::Override => "override",
        }
    }
}

/// The document that decided a limit, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
pub struct Provenance {
    /// Default, group or override.
    pub kind: SourceKind,
    /// The document's name (the workspace's name for the default).
    pub name: Arc<str>,
    /// The file, relative to the policy root.
    pub file: Arc<str>,
    /// The line of the deciding field (`default`, `limit` or `add`).
    pub line: u32,
    /// The commit, when read from git.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<Arc<str>>,
}

impl Provenance {
    fn of<T>(kind: SourceKind, name: &str, loaded: &Loaded<T>, field: &str) -> Provenance {
        Provenance {
            kind,
            name: name.into(),
            file: loaded.file.clone(),
            line: loaded.key_loc(field).line,
            commit: loaded.commit.clone(),
        }
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} `{}` ({}:{})", self.kind.as_str(), self.name, self.file, self.line)
    }
}

/// Every user's effective limit at one instant.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The instant resolved at.
    pub now: DateTime<Utc>,
    /// The budget period containing `now`.
    pub period: PeriodRange,
    /// The kind of period.
    pub period_kind: Period,
    /// The workspace time zone.
    pub timezone: chrono_tz::Tz,
    /// One entry per directory user, in directory order.
    pub users: Vec<Resolved>,
    /// Groups whose selector failed to compile, or failed for some users (validation
    /// reports why); such a selector matches nobody it failed for.
    pub selector_failures: Vec<SelectorFailure>,
}

/// A group selector that could not be evaluated for some or all users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorFailure {
    /// Index into [`PolicySet::groups`].
    pub group: usize,
    /// Why it did not compile, when it did not (then it selected nobody).
    pub compile_error: Option<String>,
    /// How many users it failed for, when it compiled.
    pub failed_users: usize,
}

impl Resolution {
    /// The resolved entry of a user by directory position.
    pub fn user(&self, position: usize) -> Option<&Resolved> {
        // INVARIANT: `users[i].user == i`.
        self.users.get(position)
    }
}

/// One user's effective limit and its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Index into [`Directory::users`].
    pub user: usize,
    /// The effective limit; shared with every user the same rule gave it to.
    pub limit: Arc<Limit>,
    /// What decided it.
    pub source: Provenance,
    /// Index into [`PolicySet::groups`] of the winning group (its pool applies),
    /// even when an override decided the limit.
    pub group: Option<usize>,
    /// What decided the rate cap (`per_hour`), when the limit has one: the same
    /// document as `source`, except under an override's `add` that does not add to
    /// it, where the rate cap comes from the limit added to.
    pub per_hour_source: Option<Provenance>,
    /// Rules that matched the user but lost, and why, in rank order (groups, then overrides).
    pub considered: Vec<Considered>,
}

/// A rule that matched a user but did not decide the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "rule", rename_all = "lowercase")]
pub enum Considered {
    /// A group the user is in, outranked by the winning group.
    Group {
        /// Index into [`PolicySet::groups`].
        index: usize,
        /// How the user is in it.
        via: Via,
        /// Why it lost.
        lost: Lost,
    },
    /// A group whose selector could not be evaluated for the user (no match).
    SelectorFailed {
        /// Index into [`PolicySet::groups`].
        index: usize,
    },
    /// An override for the user that does not apply now.
    Override {
        /// Index into [`PolicySet::overrides`].
        index: usize,
        /// Why it does not apply.
        status: OverrideStatus,
    },
}

/// How a user is in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Listed in `members`.
    Listed,
    /// The selector is true and the user is not excluded.
    Selector,
}

/// Why a matching group lost to the winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Lost {
    /// Its priority is lower.
    LowerPriority,
    /// Same priority, fewer credits.
    FewerCredits,
    /// Same priority and credits, its name sorts later.
    NameSortsLater,
}

/// Where an override stands at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum OverrideStatus {
    /// `starts <= now < expires`, and it is the one applied.
    Active,
    /// Active, but another active override for the same user was applied (they
    /// overlap, which validation reports); the earliest `starts`, then the name, wins.
    Overlapped {
        /// Index into [`PolicySet::overrides`] of the applied override.
        winner: usize,
    },
    /// `now < starts`.
    NotStarted,
    /// `now >= expires`.
    Expired,
}

/// Which users each group holds: selectors evaluated in bulk, `members` and `exclude` applied.
///
/// Depends only on the policies' groups and the directory, not on time, so one
/// evaluation serves resolutions at several instants ([`resolve_with`]).
#[derive(Debug, Clone)]
pub struct Memberships {
    groups: Vec<membership::Members>,
    users: usize,
}

impl Memberships {
    /// Evaluates every group's membership over the directory.
    pub fn evaluate(policies: &PolicySet, dir: &Directory) -> Memberships {
        Memberships { groups: membership::all_groups(policies, dir), users: dir.len() }
    }

    /// True when user `user` (a directory position) is in group `group` (an index into [`PolicySet::groups`]).
    pub fn contains(&self, group: usize, user: usize) -> bool {
        self.groups.get(group).is_some_and(|m| m.all.contains(user))
    }

    /// Number of users in group `group`.
    pub fn count(&self, group: usize) -> usize {
        self.groups.get(group).map_or(0, |m| m.all.count())
    }
}

/// Resolves every directory user's effective limit at `now`.
pub fn resolve(
    policies: &PolicySet,
    dir: &Directory,
    now: DateTime<Utc>,
) -> Result<Resolution, ResolveError> {
    let memberships = Memberships::evaluate(policies, dir);
    resolve_with(policies, dir, &memberships, now)
}

/// Resolves with memberships already evaluated for these policies and this directory.
///
/// Fails with [`ResolveError::StaleMemberships`] when they were evaluated for a
/// different number of groups or users.
pub fn resolve_with(
    policies: &PolicySet,
    dir: &Directory,
    memberships: &Memberships,
    now: DateTime<Utc>,
) -> Result<Resolution, ResolveError> {
    if memberships.groups.len() != policies.groups.len() || memberships.users != dir.len() {
        return Err(ResolveError::StaleMemberships);
    }
    let rules = Rules::new(policies, now)?;
    let members = &memberships.groups;
    let n = dir.len();

    // Most users have no override: find the few that do once, not by hashing every email.
    let mut has_override = vec![false; n];
    for email in rules.by_user.keys() {
        if let Some(u) = dir.position(email) {
            has_override[u] = true;
        }
    }

    // Scatter each group's members in rank order: the first group to claim a user wins.
    const NONE: u32 = u32::MAX;
    let mut winner = vec![NONE; n];
    // Size each user's list of losing groups up front: one allocation per user in
    // several groups, none for users in at most one.
    let mut matched = vec![0u32; n];
    for m in members {
        m.all.for_each(|u| matched[u] += 1);
    }
    let mut considered: Vec<Vec<Considered>> =
        matched.iter().map(|&c| Vec::with_capacity(c.saturating_sub(1) as usize)).collect();
    let mut failures = Vec::new();
    for &g in &rules.order {
        let m = &members[g];
        let g32 = u32::try_from(g).unwrap_or(NONE);
        m.all.for_each(|u| {
            if winner[u] == NONE {
                winner[u] = g32;
            } else {
                let w = winner[u] as usize;
                let via = if m.is_listed(u) { Via::Listed } else { Via::Selector };
                considered[u].push(Considered::Group { index: g, via, lost: rules.loss(w, g) });
            }
        });
        match &m.selection {
            membership::Selection::Users { errors, .. } if !errors.is_empty() => {
                for &u in errors {
                    if !m.all.contains(u) {
                        considered[u].push(Considered::SelectorFailed { index: g });
                    }
                }
                failures.push(SelectorFailure { group: g, compile_error: None, failed_users: errors.len() });
            }
            membership::Selection::Error(e) => {
                failures.push(SelectorFailure { group: g, compile_error: Some(e.clone()), failed_users: 0 });
            }
            _ => {}
        }
    }
    failures.sort_by_key(|f| f.group);

    let users = considered
        .into_iter()
        .enumerate()
        .map(|(u, c)| {
            let w = (winner[u] != NONE).then_some(winner[u] as usize);
            let email = has_override[u].then_some(dir.users[u].email.as_str());
            rules.finish(u, email, w, c)
        })
        .collect();
    Ok(Resolution {
        now,
        period: rules.period,
        period_kind: rules.period_kind,
        timezone: rules.tz,
        users,
        selector_failures: failures,
    })
}

/// An override's effect, shared by every evaluation.
#[derive(Debug)]
enum Effect<'a> {
    Replace(Arc<Limit>),
    Add(&'a LimitAdd),
}

/// An override, with its instants read in the workspace time zone.
#[derive(Debug)]
struct OverrideRule<'a> {
    starts: Option<DateTime<Utc>>,
    expires: DateTime<Utc>,
    effect: Effect<'a>,
    source: Provenance,
}

/// Everything about the policies that does not depend on the user, computed once.
#[derive(Debug)]
struct Rules<'a> {
    policies: &'a PolicySet,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
    period: PeriodRange,
    period_kind: Period,
    default_limit: Arc<Limit>,
    default_source: Provenance,
    /// Group indices, best first: priority desc, credits desc, name, then file and line.
    order: Vec<usize>,
    group_limits: Vec<Arc<Limit>>,
    group_sources: Vec<Provenance>,
    overrides: Vec<OverrideRule<'a>>,
    /// Override indices per user email, in application order (starts, name, file, line).
    by_user: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Rules<'a> {
    fn new(policies: &'a PolicySet, now: DateTime<Utc>) -> Result<Rules<'a>, ResolveError> {
        let ws: &Loaded<Workspace> = match policies.workspaces.as_slice() {
            [one] => one,
            [] => return Err(ResolveError::NoWorkspace),
            many => return Err(ResolveError::ManyWorkspaces(many.len())),
        };
        let tz = parse_timezone(&ws.doc.timezone)
            .ok_or_else(|| ResolveError::Timezone(ws.doc.timezone.clone()))?;
        let period = period_containing(ws.doc.period, &tz, now);

        let groups = &policies.groups;
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by(|&a, &b| rank_cmp(&groups[a], &groups[b]));

        let overrides: Vec<OverrideRule<'a>> = policies
            .overrides
            .iter()
            .map(|o| {
                let (effect, field) = match (&o.doc.limit, &o.doc.add) {
                    (Some(limit), _) => (Effect::Replace(Arc::new(limit.clone())), "limit"),
                    (None, Some(add)) => (Effect::Add(add), "add"),
                    // Neither (validation rejects it): adds nothing.
                    (None, None) => (Effect::Add(&NO_ADD), "name"),
                };
                OverrideRule {
                    starts: o.doc.starts.map(|s| s.instant(&tz)),
                    expires: o.doc.expires.instant(&tz),
                    effect,
                    source: Provenance::of(SourceKind::Override, &o.doc.name, o, field),
                }
            })
            .collect();
        let mut by_user: HashMap<&'a str, Vec<usize>> = HashMap::new();
        for (i, o) in policies.overrides.iter().enumerate() {
            by_user.entry(o.doc.user.as_str()).or_default().push(i);
        }
        for list in by_user.values_mut() {
            list.sort_by(|&a, &b| {
                let (ra, rb) = (&overrides[a], &overrides[b]);
                let (la, lb) = (&policies.overrides[a], &policies.overrides[b]);
                // An absent `starts` means "always started": it sorts first.
                ra.starts
                    .cmp(&rb.starts)
                    .then_with(|| la.doc.name.cmp(&lb.doc.name))
                    .then_with(|| location_cmp(la, lb))
            });
        }

        Ok(Rules {
            policies,
            now,
            tz,
            period,
            period_kind: ws.doc.period,
            default_limit: Arc::new(ws.doc.default.clone()),
            default_source: Provenance::of(SourceKind::Default, &ws.doc.name, ws, "default"),
            order,
            group_limits: groups.iter().map(|g| Arc::new(g.doc.limit.clone())).collect(),
            group_sources: groups
                .iter()
                .map(|g| Provenance::of(SourceKind::Group, &g.doc.name, g, "limit"))
                .collect(),
            overrides,
            by_user,
        })
    }

    /// Why group `loser` ranks below group `winner`.
    fn loss(&self, winner: usize, loser: usize) -> Lost {
        let (w, l) = (&self.policies.groups[winner].doc, &self.policies.groups[loser].doc);
        if l.priority != w.priority {
            Lost::LowerPriority
        } else if l.limit.credits != w.limit.credits {
            Lost::FewerCredits
        } else {
            Lost::NameSortsLater
        }
    }

    /// Where override `i` stands at `now`, ignoring other overrides.
    fn timing(&self, i: usize) -> OverrideStatus {
        let o = &self.overrides[i];
        if o.starts.is_some_and(|s| self.now < s) {
            OverrideStatus::NotStarted
        } else if self.now >= o.expires {
            OverrideStatus::Expired
        } else {
            OverrideStatus::Active
        }
    }

    /// The user's overrides with their status at `now`, in application order.
    fn override_statuses(&self, email: &str) -> Vec<(usize, OverrideStatus)> {
        let mut applied: Option<usize> = None;
        let Some(list) = self.by_user.get(email) else {
            return Vec::new();
        };
        list.iter()
            .map(|&i| {
                let status = match (self.timing(i), applied) {
                    (OverrideStatus::Active, None) => {
                        applied = Some(i);
                        OverrideStatus::Active
                    }
                    (OverrideStatus::Active, Some(winner)) => OverrideStatus::Overlapped { winner },
                    (other, _) => other,
                };
                (i, status)
            })
            .collect()
    }

    /// The limit before overrides: the winning group's, or the default.
    fn base(&self, group: Option<usize>) -> (&Arc<Limit>, &Provenance) {
        match group {
            Some(g) => (&self.group_limits[g], &self.group_sources[g]),
            None => (&self.default_limit, &self.default_source),
        }
    }

    /// Applies the user's overrides on top of the winning group (or the default);
    /// `email` is `None` for a user known to have no override (skips a hash lookup).
    fn finish(
        &self,
        user: usize,
        email: Option<&str>,
        group: Option<usize>,
        mut considered: Vec<Considered>,
    ) -> Resolved {
        let (base, base_source) = self.base(group);
        let mut applied = None;
        let statuses = email.map(|e| self.override_statuses(e)).unwrap_or_default();
        for (index, status) in statuses {
            match status {
                OverrideStatus::Active => applied = Some(index),
                status => considered.push(Considered::Override { index, status }),
            }
        }
        let (limit, source, per_hour_source) = match applied {
            Some(i) => {
                let rule = &self.overrides[i];
                let (limit, rate_from_rule) = match &rule.effect {
                    Effect::Replace(limit) => (limit.clone(), true),
                    Effect::Add(add) => (Arc::new(base.plus(add)), add.per_hour.is_some()),
                };
                let rate_source = if rate_from_rule { &rule.source } else { base_source };
                let per_hour_source = limit.per_hour.map(|_| rate_source.clone());
                (limit, rule.source.clone(), per_hour_source)
            }
            None => (base.clone(), base_source.clone(), base.per_hour.map(|_| base_source.clone())),
        };
        Resolved { user, limit, source, group, per_hour_source, considered }
    }
}

static NO_ADD: LimitAdd = LimitAdd {
    credits: None,
    products: std::collections::BTreeMap::new(),
    models: std::collections::BTreeMap::new(),
    per_hour: None,
};

/// Group rank: higher priority first, then more credits, then the name; file and
/// line only separate documents with the same name (which validation rejects).
fn rank_cmp(a: &Loaded<Group>, b: &Loaded<Group>) -> Ordering {
    (Reverse(a.doc.priority), Reverse(a.doc.limit.credits), &a.doc.name)
        .cmp(&(Reverse(b.doc.priority), Reverse(b.doc.limit.credits), &b.doc.name))
        .then_with(|| location_cmp(a, b))
}

fn location_cmp<T>(a: &Loaded<T>, b: &Loaded<T>) -> Ordering {
    (&a.file, a.node.pos.offset).cmp(&(&b.file, b.node.pos.offset))
}
