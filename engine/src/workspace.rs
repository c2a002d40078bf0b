//! The [`Target`] trait: the only way the engine talks to the system that holds applied
//! limits (the live workspace the reconciler reads and writes; not the policy document
//! [`crate::model::Workspace`], which declares what should be there).
//!
//! It owns the data shapes the reconciler reads and writes (users, applied
//! limits with provenance, pools, batches, leases) and the typed error that
//! says whether a failure is worth retrying. Implementations: [`http`] (the
//! workspace API served by `budgit serve`), [`claude`] and [`openai`] (vendor
//! admin APIs) and [`memory`] (in memory, with
//! scripted faults, for tests). It does not decide what to change: that is
//! [`crate::reconcile`].

pub mod claude;
mod git_refs;
pub mod http;
pub mod memory;
pub mod openai;
pub mod vendor_client;
pub mod wire;

pub use vendor_client::VendorClient;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Credits;
use crate::model::{Enforcement, Limit, Period};

/// A user the workspace knows: the email and the directory attributes as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The email, the key everywhere.
    pub email: String,
    /// Attribute values by name (strings, lists of strings, numbers, booleans).
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// Where an applied limit came from in the policy repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Source")]
#[serde(deny_unknown_fields)]
pub struct AppliedSource {
    /// `default`, `group` or `override`.
    #[schemars(extend("enum" = ["default", "group", "override"]))]
    pub kind: String,
    /// The deciding document's name.
    pub name: String,
    /// The file, relative to the policy root.
    pub file: String,
    /// The line of the deciding field.
    pub line: u32,
    /// The commit the file was read at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// A limit as the workspace holds it, with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedLimit {
    /// The user.
    pub user: String,
    /// The limit applied.
    pub limit: Limit,
    /// The group whose pool applies.
    pub group: Option<String>,
    /// The document that decided it, as written by the last writer.
    pub source: Option<AppliedSource>,
    /// The commit of the last write.
    pub commit: Option<String>,
}

/// A limit to set for a user.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitSet {
    /// The user.
    pub user: String,
    /// The limit.
    pub limit: Limit,
    /// The group whose pool applies.
    pub group: Option<String>,
    /// The deciding document.
    pub source: Option<AppliedSource>,
}

/// A group pool to set (`credits: None` removes it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSet {
    /// The group.
    pub group: String,
    /// The pool, or `None` to remove it.
    pub credits: Option<Credits>,
}

/// Workspace-wide settings the workspace needs to enforce limits (period and zone).
///
/// On the wire ([`wire::SetLimits`]) the zone defaults to `UTC` and enforcement to hard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The budget period.
    pub period: Period,
    /// The IANA time zone periods are read in.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Hard or soft enforcement.
    #[serde(default)]
    pub enforcement: Enforcement,
}

fn utc() -> String {
    "UTC".to_string()
}

/// One write: limits, removals and pools, tagged with where they came from.
///
/// Applying a batch is idempotent by value: an item already at its value is
/// reported unchanged and writes nothing, so a retried or repeated batch is safe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batch {
    /// The commit the values come from.
    pub commit: String,
    /// The digest of the run's plan.
    pub plan_digest: String,
    /// Who writes, as the audit log names it.
    pub actor: String,
    /// Limits to set.
    pub limits: Vec<LimitSet>,
    /// Users whose limit to remove.
    pub remove: Vec<String>,
    /// Pools to set or remove.
    pub pools: Vec<PoolSet>,
    /// Settings to set.
    pub settings: Option<Settings>,
}

impl Batch {
    /// Number of items (limits, removals, pools).
    pub fn len(&self) -> usize {
        self.limits.len() + self.remove.len() + self.pools.len()
    }

    /// True when the batch holds no item and no settings.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.settings.is_none()
    }
}

/// What the workspace did with one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    /// A new limit or pool.
    Created,
    /// A changed limit or pool.
    Updated,
    /// A removed limit or pool.
    Removed,
    /// Already at this value: nothing written.
    Unchanged,
}

/// The workspace's answer to a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchResult {
    /// Per user (limits and removals), in batch order.
    pub users: Vec<(String, ItemStatus)>,
    /// Per pool, in batch order.
    pub pools: Vec<(String, ItemStatus)>,
}

/// What the reconciler last wrote for a user, read back from the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct LastApplied {
    /// The limit written.
    pub limit: Limit,
    /// The commit it came from.
    pub commit: Option<String>,
    /// The kind of the deciding document (`default`, `group`, `override`).
    pub source_kind: Option<String>,
}

/// A lease held on the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease's name.
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// When it lapses unless renewed (RFC 3339, as the workspace said).
    pub expires_at: String,
}

/// A reconciler run in a few numbers, as the workspace's status page shows it.
///
/// Sent by [`Target::report_run`] at the end of every run that was not a dry run,
/// refusals and failures included, so an admin sees whether the approved state is live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub struct RunSummary {
    /// When the run ended; `None` lets the receiver stamp it (the engine reads no clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// True when the run applied everything it planned (or had nothing to do).
    pub ok: bool,
    /// The commit the run applied, when it got as far as reading it.
    pub commit: Option<String>,
    /// The digest of the run's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_digest: Option<String>,
    /// Changes the workspace made (limits and pools).
    pub applied: usize,
    /// Users already at their desired limit.
    pub unchanged: usize,
    /// Users whose live limit drifted (expected or unmanaged).
    pub drift: usize,
    /// Of those, changed outside git.
    #[serde(default)]
    pub drift_unmanaged: usize,
    /// What failed, one line each: failed or unattempted items, or why the run stopped
    /// (the service keeps at most 200).
    #[schemars(length(max = 200))]
    pub failures: Vec<String>,
    /// How long the run took.
    pub duration_ms: u64,
}

/// Why a workspace call failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    /// 429: too many requests; `retry_after` when the workspace said how long to wait.
    #[error("the workspace is rate limiting (429){}", retry_note(*.retry_after))]
    RateLimited {
        /// The `Retry-After` the workspace sent.
        retry_after: Option<Duration>,
    },
    /// A 5xx answer.
    #[error("the workspace failed ({status} `{code}`): {message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The error code in the body, when there was one.
        code: String,
        /// The message in the body.
        message: String,
        /// The `Retry-After` the workspace sent.
        retry_after: Option<Duration>,
    },
    /// No answer in time.
    #[error("the workspace did not answer in time")]
    Timeout,
    /// The connection failed or dropped before an answer.
    #[error("connection to the workspace failed: {0}")]
    Connection(String),
    /// Someone else holds the lease.
    #[error("lease `{name}` is held by `{holder}`{}", until_note(.expires_at))]
    LeaseHeld {
        /// The lease.
        name: String,
        /// Its holder.
        holder: String,
        /// When it lapses.
        expires_at: Option<String>,
    },
    /// 401/403: the token is missing, unknown or not an admin's.
    #[error("the workspace refused the token ({status}): {message}")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
        /// The message in the body.
        message: String,
    },
    /// Another 4xx: the request itself is wrong; sending it again will not help.
    #[error("the workspace rejected the request ({status} `{code}`): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The error code in the body.
        code: String,
        /// The message in the body.
        message: String,
    },
    /// The answer could not be understood, or the client is misconfigured.
    #[error("unexpected answer from the workspace: {0}")]
    Protocol(String),
}

fn retry_note(d: Option<Duration>) -> String {
    d.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default()
}

fn until_note(until: &Option<String>) -> String {
    until.as_ref().map(|u| format!(" until {u}")).unwrap_or_default()
}

impl WorkspaceError {
    /// True when the same call may succeed later (rate limits, 5xx, timeouts, dropped connections).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            WorkspaceError::RateLimited { .. }
                | WorkspaceError::Server { .. }
                | WorkspaceError::Timeout
                | WorkspaceError::Connection(_)
        )
    }

    /// How long the workspace asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WorkspaceError::RateLimited { retry_after } | WorkspaceError::Server { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// The system that holds applied limits, the reconciler's target: read users and limits,
/// write batches, hold a lease.
///
/// Blocking by design: the reconciler is a loop of a few calls per run, and a
/// blocking client keeps the engine free of an async runtime.
pub trait Target {
    /// Every user the workspace knows (its directory), in email order.
    fn users(&self) -> Result<Vec<UserRecord>, WorkspaceError>;

    /// Every applied limit, in email order.
    fn limits(&self) -> Result<Vec<AppliedLimit>, WorkspaceError>;

    /// Every group pool.
    fn pools(&self) -> Result<BTreeMap<String, Credits>, WorkspaceError>;

    /// What `actor` last wrote per user (removed users absent), from the audit log.
    fn last_applied(&self, actor: &str) -> Result<BTreeMap<String, LastApplied>, WorkspaceError>;

    /// Applies one batch; idempotent by value.
    fn apply(&self, batch: &Batch) -> Result<BatchResult, WorkspaceError>;

    /// Acquires the lease `name` for `holder`, or renews it when `holder` holds it already.
    fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, WorkspaceError>;

    /// Releases the lease if `holder` holds it.
    fn release_lease(&self, name: &str, holder: &str) -> Result<(), WorkspaceError>;

    /// Records how a run went, for the workspace's status page; does nothing by default.
    ///
    /// The reconciler ignores its failure (after a log line): reporting never fails a run.
    fn report_run(&self, report: &RunSummary) -> Result<(), WorkspaceError> {
        let _ = report;
        Ok(())
    }
}
