//! An in-memory workspace with scripted faults, for testing the reconciler without a server.
//!
//! It keeps what the real workspace keeps (users, limits with provenance,
//! pools, settings, an audit log, one lease per name) and applies batches with
//! the same idempotency by value. Faults are queued per kind of call and used
//! up in order: a 500, a 429 with `Retry-After`, a timeout, a connection dropped
//! before or after the write landed, a rejected user. It does no I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{
    AppliedLimit, Batch, BatchResult, ItemStatus, LastApplied, Lease, RunSummary, Settings, Target,
    UserRecord, WorkspaceError,
};
use crate::Credits;
use crate::model::Limit;

/// The kinds of call a fault can be scripted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    /// [`Target::users`].
    Users,
    /// [`Target::limits`].
    Limits,
    /// [`Target::apply`].
    Apply,
    /// [`Target::acquire_lease`] (acquire and renew).
    Lease,
}

/// A scripted failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// No fault: lets one call through, to script a fault for a later one.
    Pass,
    /// Answer 409: the lease is held by this holder.
    LeaseHeld(String),
    /// Answer 500.
    ServerError,
    /// Answer 429 with this `Retry-After`.
    RateLimited(Option<Duration>),
    /// No answer in time; nothing written.
    Timeout,
    /// The write lands, then the connection drops before the answer.
    DropAfterWrite,
}

/// One audit row.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Who wrote, `admin (<actor>)` as the real workspace records it.
    pub actor: String,
    /// `limit.set`, `limit.remove`, `pool.set`, `pool.remove`, `settings.set`.
    pub action: String,
    /// The user or group.
    pub subject: String,
    /// The value before.
    pub old: Option<Limit>,
    /// The value after.
    pub new: Option<Limit>,
    /// The commit the write came with.
    pub commit: String,
    /// The plan digest the write came with.
    pub plan_digest: String,
    /// The deciding document's kind, for limit writes.
    pub source_kind: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    users: Vec<UserRecord>,
    limits: BTreeMap<String, AppliedLimit>,
    pools: BTreeMap<String, Credits>,
    settings: Option<Settings>,
    audit: Vec<AuditEntry>,
    leases: HashMap<String, String>,
    faults: HashMap<Call, VecDeque<Fault>>,
    rejected_users: Vec<String>,
    calls: HashMap<Call, usize>,
    runs: Vec<RunSummary>,
    fail_reports: bool,
}

/// The in-memory workspace.
#[derive(Debug, Default)]
pub struct MemoryWorkspace {
    state: Mutex<State>,
}

impl MemoryWorkspace {
    /// An empty workspace knowing these users.
    pub fn with_users(emails: &[&str]) -> MemoryWorkspace {
        let ws = MemoryWorkspace::default();
        ws.lock().users = emails
            .iter()
            .map(|e| UserRecord { email: (*e).to_string(), attributes: serde_json::Map::new() })
            .collect();
        ws
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a fault for the next call of a kind.
    pub fn fail_next(&self, call: Call, fault: Fault) {
        self.lock().faults.entry(call).or_default().push_back(fault);
    }

    /// Makes every batch holding this user fail with a 400, as a bad item would.
    pub fn reject_user(&self, user: &str) {
        self.lock().rejected_users.push(user.to_string());
    }

    /// Lets another holder take the lease `name`.
    pub fn hold_lease(&self, name: &str, holder: &str) {
        self.lock().leases.insert(name.to_string(), holder.to_string());
    }

    /// Who holds the lease `name`.
    pub fn lease_holder(&self, name: &str) -> Option<String> {
        self.lock().leases.get(name).cloned()
    }

    /// Sets a limit the way an admin would by hand (audited as `admin`).
    pub fn set_by_hand(&self, user: &str, limit: Limit) {
        let mut s = self.lock();
        let old = s.limits.get(user).map(|l| l.limit.clone());
        let group = s.limits.get(user).and_then(|l| l.group.clone());
        s.limits.insert(
            user.to_string(),
            AppliedLimit { user: user.to_string(), limit: limit.clone(), group, source: None, commit: None },
        );
        s.audit.push(AuditEntry {
            actor: "admin".to_string(),
            action: "limit.set".to_string(),
            subject: user.to_string(),
            old,
            new: Some(limit),
            commit: "manual".to_string(),
            plan_digest: String::new(),
            source_kind: None,
        });
    }

    /// The applied limit of a user.
    pub fn limit_of(&self, user: &str) -> Option<Limit> {
        self.lock().limits.get(user).map(|l| l.limit.clone())
    }

    /// Every applied limit.
    pub fn all_limits(&self) -> BTreeMap<String, Limit> {
        self.lock().limits.iter().map(|(k, v)| (k.clone(), v.limit.clone())).collect()
    }

    /// The pools.
    pub fn all_pools(&self) -> BTreeMap<String, Credits> {
        self.lock().pools.clone()
    }

    /// The settings last written.
    pub fn settings(&self) -> Option<Settings> {
        self.lock().settings.clone()
    }

    /// The audit log, oldest first.
    pub fn audit(&self) -> Vec<AuditEntry> {
        self.lock().audit.clone()
    }

    /// The run summaries reported, oldest first.
    pub fn runs(&self) -> Vec<RunSummary> {
        self.lock().runs.clone()
    }

    /// Makes every [`Target::report_run`] fail with a 500 (reporting must never fail a run).
    pub fn fail_reports(&self) {
        self.lock().fail_reports = true;
    }

    /// How many calls of a kind were made (failed ones included).
    pub fn calls(&self, call: Call) -> usize {
        self.lock().calls.get(&call).copied().unwrap_or(0)
    }

    /// Counts the call and pops its next fault.
    fn enter(&self, call: Call) -> Option<Fault> {
        let mut s = self.lock();
        *s.calls.entry(call).or_default() += 1;
        s.faults.get_mut(&call).and_then(VecDeque::pop_front).filter(|f| *f != Fault::Pass)
    }
}

fn fault_error(fault: &Fault) -> Option<WorkspaceError> {
    Some(match fault {
        Fault::Pass => return None,
        Fault::LeaseHeld(holder) => {
            WorkspaceError::LeaseHeld { name: String::new(), holder: holder.clone(), expires_at: None }
        }
        Fault::ServerError => WorkspaceError::Server {
            status: 500,
            code: "internal".to_string(),
            message: "scripted failure".to_string(),
            retry_after: None,
        },
        Fault::RateLimited(retry_after) => WorkspaceError::RateLimited { retry_after: *retry_after },
        Fault::Timeout => WorkspaceError::Timeout,
        Fault::DropAfterWrite => WorkspaceError::Connection("connection reset".to_string()),
    })
}

impl Target for MemoryWorkspace {
    fn users(&self) -> Result<Vec<UserRecord>, WorkspaceError> {
        if let Some(f) = self.enter(Call::Users) {
            return Err(fault_error(&f).unwrap_or(WorkspaceError::Timeout));
        }
        let mut users = self.lock().users.clone();
        users.sort_by(|a, b| a.email.cmp(&b.email));
        Ok(users)
    }

    fn limits(&self) -> Result<Vec<AppliedLimit>, WorkspaceError> {
        if let Some(f) = self.enter(Call::Limits) {
            return Err(fault_error(&f).unwrap_or(WorkspaceError::Timeout));
        }
        Ok(self.lock().limits.values().cloned().collect())
    }

    fn pools(&self) -> Result<BTreeMap<String, Credits>, WorkspaceError> {
        Ok(self.lock().pools.clone())
    }

    fn last_applied(&self, actor: &str) -> Result<BTreeMap<String, LastApplied>, WorkspaceError> {
        let who = format!("admin ({actor})");
        let mut out = BTreeMap::new();
        for e in self.lock().audit.iter().filter(|e| e.actor == who) {
            match (e.action.as_str(), &e.new) {
                ("limit.set", Some(limit)) => {
                    out.insert(
                        e.subject.clone(),
                        LastApplied {
                            limit: limit.clone(),
                            commit: Some(e.commit.clone()),
                            source_kind: e.source_kind.clone(),
                        },
                    );
                }
                ("limit.remove", _) => {
                    out.remove(&e.subject);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn apply(&self, batch: &Batch) -> Result<BatchResult, WorkspaceError> {
        let fault = self.enter(Call::Apply);
        match &fault {
            Some(Fault::DropAfterWrite) | None => {}
            Some(f) => return Err(fault_error(f).unwrap_or(WorkspaceError::Timeout)),
        }
        let mut s = self.lock();
        if let Some(bad) = batch.limits.iter().find(|l| s.rejected_users.contains(&l.user)) {
            return Err(WorkspaceError::Rejected {
                status: 400,
                code: "request/bad-user".to_string(),
                message: format!("`{}` is not acceptable", bad.user),
            });
        }
        let actor = format!("admin ({})", batch.actor);
        let mut result = BatchResult::default();
        let mut audit = Vec::new();
        for l in &batch.limits {
            let old = s.limits.get(&l.user);
            let status = match old {
                Some(o) if o.limit == l.limit && o.group == l.group && o.source == l.source => {
                    ItemStatus::Unchanged
                }
                Some(_) => ItemStatus::Updated,
                None => ItemStatus::Created,
            };
            if status != ItemStatus::Unchanged {
                audit.push(AuditEntry {
                    actor: actor.clone(),
                    action: "limit.set".to_string(),
                    subject: l.user.clone(),
                    old: old.map(|o| o.limit.clone()),
                    new: Some(l.limit.clone()),
                    commit: batch.commit.clone(),
                    plan_digest: batch.plan_digest.clone(),
                    source_kind: l.source.as_ref().map(|s| s.kind.clone()),
                });
                s.limits.insert(
                    l.user.clone(),
                    AppliedLimit {
                        user: l.user.clone(),
                        limit: l.limit.clone(),
                        group: l.group.clone(),
                        source: l.source.clone(),
                        commit: Some(batch.commit.clone()),
                    },
                );
            }
            result.users.push((l.user.clone(), status));
        }
        for user in &batch.remove {
            let status = match s.limits.remove(user) {
                Some(old) => {
                    audit.push(AuditEntry {
                        actor: actor.clone(),
                        action: "limit.remove".to_string(),
                        subject: user.clone(),
                        old: Some(old.limit),
                        new: None,
                        commit: batch.commit.clone(),
                        plan_digest: batch.plan_digest.clone(),
                        source_kind: None,
                    });
                    ItemStatus::Removed
                }
                None => ItemStatus::Unchanged,
            };
            result.users.push((user.clone(), status));
        }
        for p in &batch.pools {
            let old = s.pools.get(&p.group).copied();
            let status = match (old, p.credits) {
                (o, n) if o == n => ItemStatus::Unchanged,
                (_, Some(n)) => {
                    s.pools.insert(p.group.clone(), n);
                    if old.is_some() { ItemStatus::Updated } else { ItemStatus::Created }
                }
                (_, None) => {
                    s.pools.remove(&p.group);
                    ItemStatus::Removed
                }
            };
            if status != ItemStatus::Unchanged {
                audit.push(AuditEntry {
                    actor: actor.clone(),
                    action: if p.credits.is_some() { "pool.set" } else { "pool.remove" }.to_string(),
                    subject: p.group.clone(),
                    old: old.map(|c| Limit { credits: c, ..Limit::default() }),
                    new: p.credits.map(|c| Limit { credits: c, ..Limit::default() }),
                    commit: batch.commit.clone(),
                    plan_digest: batch.plan_digest.clone(),
                    source_kind: None,
                });
            }
            result.pools.push((p.group.clone(), status));
        }
        if let Some(settings) = &batch.settings
            && s.settings.as_ref() != Some(settings)
        {
            s.settings = Some(settings.clone());
        }
        s.audit.extend(audit);
        match fault {
            Some(f) => Err(fault_error(&f).unwrap_or(WorkspaceError::Timeout)),
            None => Ok(result),
        }
    }

    fn acquire_lease(&self, name: &str, holder: &str, _ttl: Duration) -> Result<Lease, WorkspaceError> {
        if let Some(f) = self.enter(Call::Lease) {
            return Err(fault_error(&f).unwrap_or(WorkspaceError::Timeout));
        }
        let mut s = self.lock();
        match s.leases.get(name) {
            Some(other) if other != holder => Err(WorkspaceError::LeaseHeld {
                name: name.to_string(),
                holder: other.clone(),
                expires_at: None,
            }),
            _ => {
                s.leases.insert(name.to_string(), holder.to_string());
                Ok(Lease { name: name.to_string(), holder: holder.to_string(), expires_at: String::new() })
            }
        }
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), WorkspaceError> {
        let mut s = self.lock();
        if s.leases.get(name).is_some_and(|h| h == holder) {
            s.leases.remove(name);
        }
        Ok(())
    }

    fn report_run(&self, report: &RunSummary) -> Result<(), WorkspaceError> {
        let mut s = self.lock();
        if s.fail_reports {
            return Err(fault_error(&Fault::ServerError).unwrap_or(WorkspaceError::Timeout));
        }
        s.runs.push(report.clone());
        Ok(())
    }
}
