//! Reviewing overrides: where each one stands at `now`, and the drift a reviewer
//! should look at — temporary raises that have quietly become permanent.
//!
//! [`list`] is every override of a policy set with its status (active, upcoming,
//! expired) and the days left, counted in the workspace's time zone. [`review`]
//! walks the repository's history as well, because a renewal is usually a new file
//! after the old one was deleted: every override any commit held is a link, and a
//! person's links whose periods follow each other (the next one starting at most
//! [`RENEWAL_GAP_DAYS`] after the previous one expired) form one run. A run that
//! still holds a current override is flagged when it has lasted longer than the
//! Workspace's `overrides.review_after_days`, or holds `overrides.review_renewals`
//! overrides or more.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::identity;
use crate::load::git::{GitError, GitRepo};
use crate::load::{self, PolicySet};
use crate::model::{Limit, LimitAdd, OverridePolicy, When};

/// How many days may pass between one override's expiry and the next one's start for
/// the two to count as back to back (a renewal filed a day late is still a renewal).
pub const RENEWAL_GAP_DAYS: u64 = 1;

/// Where an override stands at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "OverrideStatus")]
pub enum Status {
    /// It applies now.
    Active,
    /// It starts later.
    Upcoming,
    /// It has expired.
    Expired,
}

impl Status {
    /// The name the API and the CLI use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Upcoming => "upcoming",
            Status::Expired => "expired",
        }
    }

    /// Parses [`Status::as_str`].
    pub fn parse(text: &str) -> Option<Status> {
        [Status::Active, Status::Upcoming, Status::Expired].into_iter().find(|s| s.as_str() == text)
    }
}

/// One override as a reviewer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct OverrideView {
    /// The override's `name`.
    pub name: String,
    /// The user, as written.
    pub user: String,
    /// Credits added to the resolved limit (`add:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub add: Option<LimitAdd>,
    /// The limit that replaces the resolved one (`limit:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// `starts` as written.
    pub starts: Option<When>,
    /// `expires` as written (exclusive).
    pub expires: When,
    /// The instant it starts applying; absent without `starts` (it applies until it expires).
    pub starts_at: Option<DateTime<Utc>>,
    /// The instant it stops applying.
    pub expires_at: DateTime<Utc>,
    /// Where it stands at `now`.
    pub status: Status,
    /// Days from today to the day it expires, in the workspace's time zone; negative:
    /// it expired that many days ago.
    pub days_left: i64,
    /// For an upcoming override, the days until it starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_in: Option<i64>,
    /// The file, relative to the policy directory.
    pub file: String,
    /// The line of its `name:`.
    pub line: u32,
    /// Why it was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who asked for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
}

/// The workspace's time zone (UTC without a workspace or with an unknown zone).
fn zone(policies: &PolicySet) -> chrono_tz::Tz {
    policies.workspace().and_then(|w| w.doc.timezone.parse::<chrono_tz::Tz>().ok()).unwrap_or(chrono_tz::UTC)
}

/// The Workspace's override rules (the defaults without a workspace).
fn settings(policies: &PolicySet) -> OverridePolicy {
    policies.workspace().map(|w| w.doc.overrides.clone()).unwrap_or_default()
}

fn local_date(t: DateTime<Utc>, tz: &chrono_tz::Tz) -> NaiveDate {
    t.with_timezone(tz).date_naive()
}

fn status_at(starts: Option<DateTime<Utc>>, expires: DateTime<Utc>, now: DateTime<Utc>) -> Status {
    if now >= expires {
        Status::Expired
    } else if starts.is_some_and(|s| now < s) {
        Status::Upcoming
    } else {
        Status::Active
    }
}

/// Every override of `policies` at `now`, soonest expiry first (then by name).
pub fn list(policies: &PolicySet, now: DateTime<Utc>) -> Vec<OverrideView> {
    let tz = zone(policies);
    let today = local_date(now, &tz);
    let mut out: Vec<OverrideView> = policies
        .overrides
        .iter()
        .map(|o| {
            let d = &o.doc;
            let starts_at = d.starts.map(|s| s.instant(&tz));
            let expires_at = d.expires.instant(&tz);
            let status = status_at(starts_at, expires_at, now);
            OverrideView {
                name: d.name.clone(),
                user: d.user.clone(),
                add: d.add.clone(),
                limit: d.limit.clone(),
                starts: d.starts,
                expires: d.expires,
                starts_at,
                expires_at,
                status,
                days_left: (local_date(expires_at, &tz) - today).num_days(),
                starts_in: starts_at
                    .filter(|_| status == Status::Upcoming)
                    .map(|s| (local_date(s, &tz) - today).num_days()),
                file: o.file.to_string(),
                line: o.key_loc("name").line,
                reason: d.reason.clone(),
                requested_by: d.requested_by.clone(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then_with(|| a.name.cmp(&b.name)));
    out
}

/// Why a review could not be made (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// Parsing could not run.
    #[error("cannot parse the policies: {0}")]
    Worker(String),
}

/// One override of a run, as some commit held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "OverrideRunLink")]
pub struct Link {
    /// The override's `name`.
    pub name: String,
    /// When it started applying (its `starts`, or the commit that added it when it has none).
    pub starts_at: DateTime<Utc>,
    /// When it stopped (or stops) applying.
    pub expires_at: DateTime<Utc>,
    /// The first commit that held it (12 hex digits).
    pub added_in: String,
    /// True when the reviewed revision still holds it; false when a later commit removed it.
    pub current: bool,
}

/// A reason a run is flagged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "OverrideReviewReason")]
pub struct Reason {
    /// `review/long-running` (longer than `review_after_days`) or `review/renewed`
    /// (`review_renewals` overrides or more back to back).
    #[schemars(extend("enum" = ["review/long-running", "review/renewed"]))]
    pub code: &'static str,
    /// For people.
    pub message: String,
}

/// A person whose overrides drifted: the run and why it is flagged.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[schemars(rename = "OverrideFinding")]
pub struct Finding {
    /// The user, canonical.
    pub user: String,
    /// The override to act on: the run's latest one still in force or upcoming.
    pub name: String,
    /// Its file: relative to the policy directory in `budgit review`, from the
    /// repository root in the service's `/v1/overrides/review`.
    pub file: String,
    /// The line of its `name:`.
    pub line: u32,
    /// Its status.
    pub status: Status,
    /// The current overrides of the run that are in force or upcoming.
    pub current: Vec<String>,
    /// The day the run started, in the workspace's time zone.
    pub since: NaiveDate,
    /// Days from `since` to today (or to the run's end when it ended before today).
    pub days: i64,
    /// Why it is flagged, at least one.
    pub reasons: Vec<Reason>,
    /// Every override of the run, oldest first.
    pub run: Vec<Link>,
}

/// What `budgit review --format json` prints: the revision, its overrides and the
/// drift review.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ReviewOutput<'a> {
    /// The revision reviewed, as given (`--ref`, default `HEAD`).
    #[serde(rename = "ref")]
    pub git_ref: &'a str,
    /// Every override at the revision, soonest expiry first.
    pub overrides: &'a [OverrideView],
    /// The drift review.
    pub review: &'a Review,
}

/// The drift review: what `budgit review` and the console's Review list show.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Review {
    /// The commit reviewed.
    pub commit: String,
    /// The instant of the review.
    pub now: DateTime<Utc>,
    /// `overrides.review_after_days` of the Workspace (or its default).
    pub review_after_days: u32,
    /// `overrides.review_renewals` of the Workspace (or its default).
    pub review_renewals: u32,
    /// Overrides the reviewed commit holds.
    pub overrides: usize,
    /// Overrides found in the history (every version's name counted once).
    pub seen: usize,
    /// The flagged runs, by user then override name.
    pub findings: Vec<Finding>,
}

/// An override some commit held, in the version of the newest such commit.
#[derive(Debug, Clone)]
struct Seen {
    user: String,
    starts: Option<When>,
    expires: When,
    /// The oldest commit holding it (walking back overwrites it): (short sha, time).
    added: (String, DateTime<Utc>),
}

fn parse(sources: Vec<load::Source>) -> Result<PolicySet, ReviewError> {
    crate::stack::with_large_stack(move || load::load_sources(sources).0)
        .map_err(|e| ReviewError::Worker(e.to_string()))
}

/// Reviews the overrides of `rev` (policy directory `dir`) at `now`, with the history
/// reachable from it.
///
/// Each commit that touched `dir` is read; a file is parsed once per blob, so a long
/// history costs one parse of each version of each override file.
pub fn review(git: &GitRepo, rev: &str, dir: &str, now: DateTime<Utc>) -> Result<Review, ReviewError> {
    let read = git.read_policies(rev, dir)?;
    let commit = read.commit.sha.clone();
    let current = parse(read.sources)?;
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut parsed: HashMap<git2::Oid, Vec<(String, Seen)>> = HashMap::new();
    // newest first: the first version met of a name is its latest; the last commit met, its first
    for c in git.commits_touching(rev, dir)? {
        let tree = git.read_policies(&c.sha, dir)?;
        for (source, (_, oid)) in tree.sources.into_iter().zip(tree.blobs) {
            if let std::collections::hash_map::Entry::Vacant(slot) = parsed.entry(oid) {
                let found = if source.text.contains("Override") {
                    parse(vec![source])?
                        .overrides
                        .into_iter()
                        .map(|o| {
                            let d = o.doc;
                            let seen = Seen {
                                user: d.user,
                                starts: d.starts,
                                expires: d.expires,
                                added: (String::new(), c.time),
                            };
                            (d.name, seen)
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                slot.insert(found);
            }
            for (name, version) in parsed.get(&oid).into_iter().flatten() {
                let entry = seen.entry(name.clone()).or_insert_with(|| version.clone());
                entry.added = (c.short().to_owned(), c.time);
            }
        }
    }
    Ok(review_of(&current, &commit, &seen, now))
}

/// The review of `current` with the overrides `history` held, at `now`.
fn review_of(
    current: &PolicySet,
    commit: &str,
    history: &BTreeMap<String, Seen>,
    now: DateTime<Utc>,
) -> Review {
    let tz = zone(current);
    let rules = settings(current);
    let today = local_date(now, &tz);
    let listed = list(current, now);
    let views: HashMap<&str, &OverrideView> = listed.iter().map(|v| (v.name.as_str(), v)).collect();
    // every link, by person: the current version of a name wins over the history's
    let mut links: BTreeMap<String, Vec<Link>> = BTreeMap::new();
    let person =
        |user: &str| identity::canonical(user).map_or_else(|_| user.to_lowercase(), |c| c.into_owned());
    let mut names: Vec<&str> = history.keys().map(String::as_str).collect();
    for o in &current.overrides {
        if !history.contains_key(&o.doc.name) {
            names.push(&o.doc.name);
        }
    }
    for name in &names {
        let (user, starts, expires, added) = match current.overrides.iter().find(|o| o.doc.name == *name) {
            Some(o) => {
                let added = history.get(*name).map_or_else(|| (String::new(), now), |h| h.added.clone());
                (o.doc.user.clone(), o.doc.starts, o.doc.expires, added)
            }
            None => match history.get(*name) {
                Some(h) => (h.user.clone(), h.starts, h.expires, h.added.clone()),
                None => continue,
            },
        };
        let expires_at = expires.instant(&tz);
        links.entry(person(&user)).or_default().push(Link {
            name: (*name).to_owned(),
            starts_at: starts.map_or(added.1, |s| s.instant(&tz)).min(expires_at),
            expires_at,
            added_in: added.0,
            current: views.contains_key(*name),
        });
    }
    // compared as days in the workspace's zone: a day is not always 24 hours
    let day = |t: DateTime<Utc>| local_date(t, &tz);
    let gap = chrono::Days::new(RENEWAL_GAP_DAYS);
    let mut findings = Vec::new();
    for (user, mut all) in links {
        all.sort_by(|a, b| a.starts_at.cmp(&b.starts_at).then_with(|| a.name.cmp(&b.name)));
        let mut runs: Vec<Vec<Link>> = Vec::new();
        for link in all {
            match runs.last_mut() {
                Some(run)
                    if run.iter().map(|l| l.expires_at).max().is_some_and(|end| {
                        day(link.starts_at) <= day(end).checked_add_days(gap).unwrap_or(NaiveDate::MAX)
                    }) =>
                {
                    run.push(link);
                }
                _ => runs.push(vec![link]),
            }
        }
        for run in runs {
            // the run's overrides still in force or upcoming: the ones a reviewer can act on
            let live: Vec<&OverrideView> = run
                .iter()
                .filter_map(|l| views.get(l.name.as_str()).copied())
                .filter(|v| v.status != Status::Expired)
                .collect();
            let Some(target) = live.iter().max_by(|a, b| {
                a.starts_at
                    .unwrap_or(a.expires_at)
                    .cmp(&b.starts_at.unwrap_or(b.expires_at))
                    .then(a.name.cmp(&b.name))
            }) else {
                continue;
            };
            let Some(first) = run.first() else { continue };
            let since = local_date(first.starts_at, &tz);
            let end = run.iter().map(|l| l.expires_at).max().unwrap_or(first.expires_at);
            let until = today.min(local_date(end, &tz));
            let days = (until - since).num_days().max(0);
            let mut reasons = Vec::new();
            if days > i64::from(rules.review_after_days) {
                reasons.push(Reason {
                    code: "review/long-running",
                    message: format!(
                        "overrides without a break for {days} days since {since}, more than the {} of `overrides.review_after_days`",
                        rules.review_after_days
                    ),
                });
            }
            let times = run.len();
            if u32::try_from(times).unwrap_or(u32::MAX) >= rules.review_renewals {
                reasons.push(Reason {
                    code: "review/renewed",
                    message: format!(
                        "{times} overrides back to back since {since} ({}), `overrides.review_renewals` is {}",
                        run.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(" → "),
                        rules.review_renewals
                    ),
                });
            }
            if reasons.is_empty() {
                continue;
            }
            findings.push(Finding {
                user: user.clone(),
                name: target.name.clone(),
                file: target.file.clone(),
                line: target.line,
                status: target.status,
                current: live.iter().map(|v| v.name.clone()).collect(),
                since,
                days,
                reasons,
                run,
            });
        }
    }
    findings.sort_by(|a, b| a.user.cmp(&b.user).then_with(|| a.name.cmp(&b.name)));
    Review {
        commit: commit.to_owned(),
        now,
        review_after_days: rules.review_after_days,
        review_renewals: rules.review_renewals,
        overrides: current.overrides.len(),
        seen: names.len(),
        findings,
    }
}

/// The file of an override in a policy set (relative to the policy directory), and
/// whether that file holds nothing else: a file of its own can be removed whole.
pub fn override_file(policies: &PolicySet, name: &str) -> Option<(Arc<str>, bool)> {
    let o = policies.overrides.iter().find(|o| o.doc.name == name)?;
    let others = policies.workspaces.iter().filter(|d| d.file == o.file).count()
        + policies.groups.iter().filter(|d| d.file == o.file).count()
        + policies.guardrails.iter().filter(|d| d.file == o.file).count()
        + policies.overrides.iter().filter(|d| d.file == o.file).count()
        - 1;
    Some((o.file.clone(), others == 0))
}

#[cfg(test)]
mod tests;
