//! History: one user's effective limit across the commits that changed it — git blame for a budget.
//!
//! Walks the commits that touched the policy directory (oldest first), resolves
//! the user at each commit's time against the policies of that commit, and keeps
//! the commits where the limit or the deciding document changed. A last entry
//! shows the limit at `now` when time alone changed it since the newest commit
//! (an override started or expired). Resolving one user needs only that user, so
//! each commit costs one parse of the policy files and one selector evaluation.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::directory::Directory;
use crate::load::git::{CommitInfo, GitError, GitRepo};
use crate::load::{self, PolicySet};
use crate::model::Limit;
use crate::resolve::{Provenance, ResolveError, resolve};

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

/// One step of a user's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// The commit that made the change; absent for the entry at `now` (time alone changed it).
    pub commit: Option<CommitStep>,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    let person = directory
        .get(user)
        .or_else(|| directory.users.iter().find(|u| u.email.eq_ignore_ascii_case(user)))
        .ok_or_else(|| HistoryError::UnknownUser(user.to_owned()))?;
    let attributes = directory.attributes.iter().cloned().collect();
    let mut one = Directory::new(&attributes);
    one.push(person.clone());

    let mut commits = git.commits_touching(rev, dir)?;
    commits.reverse();
    let mut steps: Vec<Step> = Vec::new();
    let mut last: Option<PolicySet> = None;
    for commit in &commits {
        let read = git.read_policies(&commit.sha, dir)?;
        let policies = parse(read.sources)?;
        let step = step_at(&policies, &one, commit.time, Some(commit));
        if steps.last().is_none_or(|prev| differs(prev, &step)) {
            steps.push(step);
        }
        last = Some(policies);
    }
    if let Some(policies) = last {
        let step = step_at(&policies, &one, now, None);
        if steps.last().is_some_and(|prev| differs(prev, &step)) {
            steps.push(step);
        }
    }
    Ok(steps)
}

fn parse(sources: Vec<load::Source>) -> Result<PolicySet, HistoryError> {
    crate::stack::with_large_stack(move || load::load_sources(sources).0)
        .map_err(|e| HistoryError::Worker(e.to_string()))
}

fn step_at(policies: &PolicySet, one: &Directory, at: DateTime<Utc>, commit: Option<&CommitInfo>) -> Step {
    let commit = commit.map(CommitStep::from);
    match resolve(policies, one, at) {
        Ok(resolution) => match resolution.users.first() {
            Some(r) => Step {
                commit,
                at,
                limit: Some((*r.limit).clone()),
                source: Some(r.source.clone()),
                group: r.group.and_then(|g| policies.groups.get(g)).map(|g| g.doc.name.clone()),
                error: None,
            },
            None => unresolved(commit, at, "the user is not in the directory".into()),
        },
        Err(e) => unresolved(commit, at, message(&e)),
    }
}

fn message(e: &ResolveError) -> String {
    e.to_string()
}

fn unresolved(commit: Option<CommitStep>, at: DateTime<Utc>, error: String) -> Step {
    Step { commit, at, limit: None, source: None, group: None, error: Some(error) }
}

/// A change of limit or of deciding document (a file move or line shift is not one).
fn differs(prev: &Step, next: &Step) -> bool {
    let doc = |s: &Step| s.source.as_ref().map(|p| (p.kind, p.name.clone()));
    prev.limit != next.limit || doc(prev) != doc(next) || prev.error.is_some() != next.error.is_some()
}
