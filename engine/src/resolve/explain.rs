//! Explanation: why one user has their limit, with every rule considered.
//!
//! Where [`super::resolve`] keeps only the rules that matched but lost, an
//! explanation lists every group (in rank order, matched or not, and why) and
//! every override naming the user. It decides the limit with the same code as
//! resolution, so the two never disagree.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::membership::{self, UserSelection};
use super::output::PeriodOutput;
use super::{Considered, Lost, OverrideStatus, Provenance, ResolveError, Resolved, Rules, Via};
use crate::Credits;
use crate::directory::Directory;
use crate::load::PolicySet;
use crate::model::{Limit, LimitAdd};

/// Why one user has their limit.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Explanation {
    /// The user's email.
    pub user: String,
    /// The instant explained.
    pub now: DateTime<Utc>,
    /// The budget period containing `now`.
    pub period: PeriodOutput,
    /// Overrides naming the user, in application order.
    pub overrides: Vec<OverrideTrace>,
    /// Every group, best rank first.
    pub groups: Vec<GroupTrace>,
    /// The workspace default.
    pub default: RuleLimit,
    /// The limit before overrides: the winning group's, or the default.
    pub base: RuleLimit,
    /// The effective limit and what decided it.
    pub result: RuleLimit,
    /// The winning group (its pool applies), even when an override decided the limit.
    pub group: Option<String>,
    /// What decided the rate cap, when the effective limit has one (an override's
    /// `add` that does not add to it keeps the rate cap of the limit it adds to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_hour_source: Option<Provenance>,
    /// Remarks worth a reader's attention (overlapping overrides, listed and excluded).
    pub notes: Vec<String>,
    /// The same answer as [`super::resolve`] gives for this user.
    #[serde(skip)]
    pub resolved: Resolved,
}

/// A limit and the document it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RuleLimit {
    /// The document.
    pub source: Provenance,
    /// The limit.
    pub limit: Limit,
}

/// One override naming the user.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct OverrideTrace {
    /// The override's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// The line of its `kind`.
    pub line: u32,
    /// The user as written in the override.
    pub user: String,
    /// When it starts (absent: always started).
    pub starts: Option<DateTime<Utc>>,
    /// When it expires.
    pub expires: DateTime<Utc>,
    /// What it adds, when it adds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<LimitAdd>,
    /// What it replaces the limit with, when it replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// Where it stands at `now`.
    #[serde(flatten)]
    pub outcome: OverrideOutcome,
}

/// Where an override stands for the user at `now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum OverrideOutcome {
    /// Active and applied.
    Applied,
    /// Active, but an overlapping override was applied instead.
    Overlapped {
        /// The override applied.
        winner: String,
    },
    /// Starts after `now`.
    NotStarted,
    /// Expired at or before `now`.
    Expired,
}

/// One group, and how it relates to the user.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GroupTrace {
    /// The group's name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// The line of its `kind`.
    pub line: u32,
    /// Its priority.
    pub priority: i64,
    /// Its limit's total.
    pub credits: Credits,
    /// Whether and how the user is in it.
    pub membership: Membership,
    /// The selector's error for this user, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What came of it.
    pub outcome: GroupOutcome,
}

/// Whether and how a user is in a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Membership {
    /// Listed in `members`.
    Listed,
    /// Listed in both `members` and `exclude`: `members` wins (`exclude` only removes selector matches).
    ListedAndExcluded,
    /// The selector is true.
    Selected,
    /// The selector is true but the user is listed in `exclude`.
    Excluded,
    /// The selector is false.
    SelectorFalse,
    /// The selector could not be evaluated for the user (no match).
    SelectorError,
    /// Not listed, and the group has no selector.
    NotListed,
}

impl Membership {
    /// True when the user is in the group.
    pub fn is_member(self) -> bool {
        matches!(self, Membership::Listed | Membership::ListedAndExcluded | Membership::Selected)
    }
}

/// What came of a group for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GroupOutcome {
    /// The best-ranked group the user is in: it gives the limit (unless an override applies).
    Won,
    /// A member, but the winner has a higher priority.
    LowerPriority,
    /// A member with the winner's priority, but fewer credits.
    FewerCredits,
    /// A member with the winner's priority and credits, but a name that sorts later.
    NameSortsLater,
    /// Not a member.
    NotMember,
}

impl From<Lost> for GroupOutcome {
    fn from(lost: Lost) -> Self {
        match lost {
            Lost::LowerPriority => GroupOutcome::LowerPriority,
            Lost::FewerCredits => GroupOutcome::FewerCredits,
            Lost::NameSortsLater => GroupOutcome::NameSortsLater,
        }
    }
}

/// Explains `email`'s limit at `now`: every group and override considered, and why.
pub fn explain(
    policies: &PolicySet,
    dir: &Directory,
    email: &str,
    now: DateTime<Utc>,
) -> Result<Explanation, ResolveError> {
    let rules = Rules::new(policies, now)?;
    let Some(user) = dir.position(email) else {
        return Err(unknown_user(dir, email));
    };
    // From here on the user is their canonical email, the form policies are loaded in.
    let email = dir.users[user].email.as_str();
    let selections = membership::one_user(policies, dir, user);
    let mut notes = Vec::new();

    // Groups, best rank first; the first member wins, exactly as in `resolve`.
    let mut winner: Option<usize> = None;
    let mut considered = Vec::new();
    let mut groups = Vec::with_capacity(rules.order.len());
    for &g in &rules.order {
        let loaded = &policies.groups[g];
        let doc = &loaded.doc;
        let listed = doc.members.iter().any(|m| m == email);
        let excluded = doc.exclude.iter().any(|m| m == email);
        let selection = selections.get(g).cloned().unwrap_or(UserSelection::None);
        let mut error = None;
        let membership = match (listed, excluded, selection) {
            (true, true, _) => Membership::ListedAndExcluded,
            (true, false, _) => Membership::Listed,
            (false, _, UserSelection::None) => Membership::NotListed,
            (false, true, UserSelection::Value(true)) => Membership::Excluded,
            (false, false, UserSelection::Value(true)) => Membership::Selected,
            (false, _, UserSelection::Value(false)) => Membership::SelectorFalse,
            (false, _, UserSelection::Error(e)) => {
                error = Some(e);
                Membership::SelectorError
            }
        };
        if membership == Membership::ListedAndExcluded {
            notes.push(format!(
                "`{email}` is listed in both `members` and `exclude` of group `{}`: `members` wins, `exclude` only removes selector matches",
                doc.name
            ));
        }
        let outcome = if !membership.is_member() {
            if membership == Membership::SelectorError {
                considered.push(Considered::SelectorFailed { index: g });
            }
            GroupOutcome::NotMember
        } else if let Some(w) = winner {
            let lost = rules.loss(w, g);
            let via = if listed { Via::Listed } else { Via::Selector };
            considered.push(Considered::Group { index: g, via, lost });
            lost.into()
        } else {
            winner = Some(g);
            GroupOutcome::Won
        };
        groups.push(GroupTrace {
            name: doc.name.clone(),
            file: loaded.file.to_string(),
            line: loaded.doc_loc().line,
            priority: doc.priority,
            credits: doc.limit.credits,
            membership,
            error,
            outcome,
        });
    }

    let resolved = rules.finish(user, Some(email), winner, considered);

    let name_of = |i: usize| policies.overrides.get(i).map(|o| o.doc.name.clone()).unwrap_or_default();
    let overrides: Vec<OverrideTrace> = rules
        .override_statuses(email)
        .into_iter()
        .map(|(i, status)| {
            let outcome = match status {
                OverrideStatus::Active => OverrideOutcome::Applied,
                OverrideStatus::Overlapped { winner } => {
                    notes.push(format!(
                        "overrides `{}` and `{}` overlap in time (validation reports this): `{}` applies because it starts first or its name sorts first",
                        name_of(winner),
                        name_of(i),
                        name_of(winner)
                    ));
                    OverrideOutcome::Overlapped { winner: name_of(winner) }
                }
                OverrideStatus::NotStarted => OverrideOutcome::NotStarted,
                OverrideStatus::Expired => OverrideOutcome::Expired,
            };
            trace(&rules, i, outcome)
        })
        .collect();

    let (base_limit, base_source) = rules.base(winner);
    // A `limit` replaces the whole limit, caps included: the caps of what it replaces do
    // not carry over, which surprises readers who expect a group to raise only the total.
    if let Some(g) = winner.and_then(|g| policies.groups.get(g)) {
        let dropped = dropped_caps(&rules.default_limit, &g.doc.limit);
        if !dropped.is_empty() {
            notes.push(format!(
                "the `limit` of group `{}` replaces the default's whole limit, caps included: {} of the default {} not apply (a group's `limit` must repeat the caps it keeps)",
                g.doc.name,
                dropped.join(", "),
                if dropped.len() == 1 { "does" } else { "do" }
            ));
        }
    }
    if let Some(o) = overrides.iter().find(|o| o.outcome == OverrideOutcome::Applied)
        && let Some(limit) = &o.limit
    {
        let dropped = dropped_caps(base_limit, limit);
        if !dropped.is_empty() {
            notes.push(format!(
                "the `limit` of override `{}` replaces the whole limit, caps included: {} of the limit it replaces {} not apply",
                o.name,
                dropped.join(", "),
                if dropped.len() == 1 { "does" } else { "do" }
            ));
        }
    }
    if resolved.source.kind == super::SourceKind::Override
        && let Some(add) =
            overrides.iter().find(|o| o.outcome == OverrideOutcome::Applied).and_then(|o| o.add.as_ref())
    {
        let missing: Vec<String> = add
            .products
            .keys()
            .filter(|k| !base_limit.products.contains_key(*k))
            .map(|k| format!("product `{k}`"))
            .chain(
                add.models
                    .keys()
                    .filter(|k| !base_limit.models.contains_key(*k))
                    .map(|k| format!("model `{k}`")),
            )
            .collect();
        if !missing.is_empty() {
            notes.push(format!(
                "the applied override adds to {}, which the limit it adds to has no cap for: nothing to raise, so it changes nothing there",
                missing.join(", ")
            ));
        }
    }
    Ok(Explanation {
        user: email.to_owned(),
        now,
        period: PeriodOutput::new(&rules.period, rules.period_kind, rules.tz),
        overrides,
        groups,
        default: RuleLimit { source: rules.default_source.clone(), limit: (*rules.default_limit).clone() },
        base: RuleLimit { source: base_source.clone(), limit: (**base_limit).clone() },
        result: RuleLimit { source: resolved.source.clone(), limit: (*resolved.limit).clone() },
        group: winner.and_then(|g| policies.groups.get(g)).map(|g| g.doc.name.clone()),
        per_hour_source: resolved.per_hour_source.clone(),
        notes,
        resolved,
    })
}

/// The caps of `replaced` that `by` does not have, as `product `codex` (1500)`.
fn dropped_caps(replaced: &Limit, by: &Limit) -> Vec<String> {
    let products = replaced
        .products
        .iter()
        .filter(|(k, _)| !by.products.contains_key(*k))
        .map(|(k, v)| format!("product `{k}` ({v})"));
    let models = replaced
        .models
        .iter()
        .filter(|(k, _)| !by.models.contains_key(*k))
        .map(|(k, v)| format!("model `{k}` ({v})"));
    products.chain(models).collect()
}

fn trace(rules: &Rules<'_>, i: usize, outcome: OverrideOutcome) -> OverrideTrace {
    let loaded = &rules.policies.overrides[i];
    let rule = &rules.overrides[i];
    OverrideTrace {
        name: loaded.doc.name.clone(),
        file: loaded.file.to_string(),
        line: loaded.doc_loc().line,
        user: loaded.doc.user.clone(),
        starts: rule.starts,
        expires: rule.expires,
        add: loaded.doc.add.clone(),
        limit: loaded.doc.limit.clone(),
        outcome,
    }
}

fn unknown_user(dir: &Directory, email: &str) -> ResolveError {
    let suggestion =
        crate::diag::did_you_mean(email, dir.users.iter().map(|u| u.email.as_str())).map(str::to_owned);
    ResolveError::UnknownUser { email: email.to_owned(), suggestion }
}
