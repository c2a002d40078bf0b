//! History: one user's effective limit across the commits that changed it — git blame for a budget.
//!
//! Walks the commits that touched the policy directory (oldest first), resolves
//! the user at each commit's time against the policies of that commit, and keeps
//! the commits where the limit or the deciding document changed, and the instants
//! between commits (up to `now`) where one of the user's overrides started or
//! expired by itself. Resolving one user needs only that user, so
//! each commit costs one parse of the policy files and one selector evaluation.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::directory::Directory;
use crate::load::git::{CommitInfo, GitError, GitRepo};
use crate::load::{self, PolicySet};
use crate::model::Limit;
use crate::resolve::{Provenance, resolve};

/// Why history could not be told (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The user is not in the directory.
    #[error("user `{0}` is not in the directory")]
    UnknownUser(String),
    /// Parsing could not run.
    #[error("cannot parse the policies: {0}")]
    Worker(String),
}

/// What `budgit history --format json` prints.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct HistoryOutput<'a> {
    /// The user, as the directory keys them.
    pub user: &'a str,
    /// The revision whose history was walked.
    #[serde(rename = "ref")]
    pub git_ref: &'a str,
    /// The steps, oldest first.
    pub steps: &'a [Step],
}

/// One step of a user's history.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Step {
    /// The commit that made the change; absent when time alone changed it.
    pub commit: Option<CommitStep>,
    /// What time alone changed (`override `x` expires`), for steps without a commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The instant the user was resolved at (the commit's time, or `now`).
    pub at: DateTime<Utc>,
    /// The effective limit then; absent when that commit's policies could not be resolved.
    pub limit: Option<Limit>,
    /// What decided it.
    pub source: Option<Provenance>,
    /// The winning group's name.
    pub group: Option<String>,
    /// Why the policies could not be resolved at that commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A commit as shown in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CommitStep {
    /// Full id.
    pub sha: String,
    /// Author name.
    pub author: String,
    /// Author email.
    pub email: String,
    /// Author time.
    pub date: DateTime<Utc>,
    /// First line of the message.
    pub message: String,
}

impl From<&CommitInfo> for CommitStep {
    fn from(c: &CommitInfo) -> Self {
        CommitStep {
            sha: c.sha.clone(),
            author: c.author.clone(),
            email: c.email.clone(),
            date: c.time,
            message: c.summary.clone(),
        }
    }
}

/// The user's limit at every commit reachable from `rev` that changed it, oldest first.
pub fn history(
    git: &GitRepo,
    rev: &str,
    dir: &str,
    directory: &Directory,
    user: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Step>, HistoryError> {
    let person = directory.get(user).ok_or_else(|| HistoryError::UnknownUser(user.to_owned()))?;
    let attributes = directory.attributes.iter().cloned().collect();
    let mut one = Directory::new(&attributes);
    one.push(person.clone());

    let mut commits = git.commits_touching(rev, dir)?;
    commits.reverse();
    let mut steps: Vec<Step> = Vec::new();
    let mut push = |step: Step| {
        if steps.last().is_none_or(|prev| differs(prev, &step)) {
            steps.push(step);
        }
    };
    // The commit each override first appeared in, to say where a timed change comes from.
    let mut introduced: HashMap<String, String> = HashMap::new();
    for (k, commit) in commits.iter().enumerate() {
        let read = git.read_policies(&commit.sha, dir)?;
        let policies = parse(read.sources)?;
        for o in &policies.overrides {
            introduced.entry(o.doc.name.clone()).or_insert_with(|| commit.short().to_owned());
        }
        push(step_at(&policies, &one, commit.time, Some(commit), None));
        // Between this commit and the next (or now), the user's overrides start and
        // expire by themselves: those are changes too, made by time rather than a commit.
        let until = commits.get(k + 1).map_or(now, |next| next.time.min(now));
        for (at, name, what) in override_events(&policies, &person.email, commit.time, until) {
            let event = match introduced.get(&name) {
                Some(sha) => format!("override `{name}` {what} (added in {sha})"),
                None => format!("override `{name}` {what}"),
            };
            push(step_at(&policies, &one, at, None, Some(event)));
        }
    }
    Ok(steps)
}

fn parse(sources: Vec<load::Source>) -> Result<PolicySet, HistoryError> {
    crate::stack::with_large_stack(move || load::load_sources(sources).0)
        .map_err(|e| HistoryError::Worker(e.to_string()))
}

fn step_at(
    policies: &PolicySet,
    one: &Directory,
    at: DateTime<Utc>,
    commit: Option<&CommitInfo>,
    event: Option<String>,
) -> Step {
    let commit = commit.map(CommitStep::from);
    match resolve(policies, one, at) {
        Ok(resolution) => match resolution.users.first() {
            Some(r) => Step {
                commit,
                event,
                at,
                limit: Some((*r.limit).clone()),
                source: Some(r.source.clone()),
                group: r.group.and_then(|g| policies.groups.get(g)).map(|g| g.doc.name.clone()),
                error: None,
            },
            None => unresolved(commit, event, at, "the user is not in the directory".into()),
        },
        Err(e) => unresolved(commit, event, at, e.to_string()),
    }
}

fn unresolved(commit: Option<CommitStep>, event: Option<String>, at: DateTime<Utc>, error: String) -> Step {
    Step { commit, event, at, limit: None, source: None, group: None, error: Some(error) }
}

/// The instants in `(from, until]` at which one of the user's overrides starts or expires.
fn override_events(
    policies: &PolicySet,
    email: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, String, &'static str)> {
    let Some(tz) = policies.workspace().and_then(|w| w.doc.timezone.parse::<chrono_tz::Tz>().ok()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for o in policies.overrides.iter().filter(|o| o.doc.user == email) {
        let starts = o.doc.starts.map(|s| (s.instant(&tz), "starts"));
        let expires = Some((o.doc.expires.instant(&tz), "expires"));
        for (at, what) in [starts, expires].into_iter().flatten() {
            if from < at && at <= until {
                out.push((at, o.doc.name.clone(), what));
            }
        }
    }
    out.sort();
    out
}

/// A change of limit or of deciding document (a file move or line shift is not one).
fn differs(prev: &Step, next: &Step) -> bool {
    let doc = |s: &Step| s.source.as_ref().map(|p| (p.kind, p.name.clone()));
    prev.limit != next.limit || doc(prev) != doc(next) || prev.error.is_some() != next.error.is_some()
}
