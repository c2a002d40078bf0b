//! Claude Enterprise as a [`Target`]: per-member spend limits over the Anthropic Admin API.
//!
//! Reads members (`GET /v1/organizations/users`) and the effective report
//! (`GET /v1/organizations/spend_limits/effective`, every page), writes
//! user-scope limits (`POST /v1/organizations/spend_limits`) and deletes the
//! ones policy no longer wants (`DELETE /v1/organizations/spend_limits/{id}`).
//! Paths, parameters, headers and shapes are those of the official `anthropic`
//! SDK's beta organization resources. The key comes from [`KEY_ENV`], the
//! variable the SDK reads, and is sent the way the SDK sends it.
//!
//! The vendor keeps no record of who set a limit, so budgit keeps its own, in
//! the policy repository: an append-only audit log under [`AUDIT_REF`] (one
//! commit per write, JSON Lines) and the lease under [`LEASE_REF_PREFIX`]. A
//! user-scope limit is *managed* when the audit's last entry for that member
//! is budgit's write; any other user-scope limit was set by hand. Every write
//! is preceded by an `intent` entry, so a run killed between the vendor's
//! answer and the audit is finished by the next run: an intent whose value is
//! live is audited then, once, marked `recovered`.
//!
//! Credits become minor units of the declared currency with
//! [`crate::vendor::Money`]; the target's period and money are set from the
//! policies at the approved ref by [`ClaudeDesired`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::git_refs::{self, lock, now_rfc3339, protocol};
use super::http::{self, decode, encode, read};
use super::vendor_client::VendorClient;
use super::{
    AppliedLimit, AppliedSource, Batch, BatchResult, ItemStatus, LastApplied, Lease, Target, UserRecord,
    WorkspaceError,
};
use crate::Credits;
use crate::diag::Code;
use crate::load::git::GitRepo;
use crate::model::{Limit, Vendor};
use crate::reconcile::{Desired, DesiredState, GitDesired, ItemReport, ReconcileError};
use crate::vendor::{CLAUDE_ENTERPRISE, Money, claude_period};

/// The environment variable holding the Admin API key (the one the official SDK reads).
pub const KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// The `anthropic-version` the SDK the shapes were taken from sends.
pub const API_VERSION: &str = "2026-10-21";
/// The ref holding budgit's audit of its writes to the organisation.
pub const AUDIT_REF: &str = "refs/budgit/audit/claude-enterprise";
/// Leases are refs under this prefix, one per lease name.
pub const LEASE_REF_PREFIX: &str = "refs/budgit/leases/";
/// Rows asked for per page (the API's largest page).
const PAGE: usize = 1000;
const EFFECTIVE: &str = "/v1/organizations/spend_limits/effective";
const LIMITS: &str = "/v1/organizations/spend_limits";
const USERS: &str = "/v1/organizations/users";
const INCREASES: &str = "/v1/organizations/spend_limit_increase_requests";
/// Increase requests asked for per page.
const INCREASE_PAGE: usize = 100;

/// One call budgit would make, for `--dry-run`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VendorCall {
    /// `POST` or `DELETE`.
    pub method: &'static str,
    /// The path.
    pub path: String,
    /// The JSON body, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// Who is on which side: directory people the organisation lacks, and the reverse.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// In the directory (resolved by the policies), not members of the organisation.
    pub not_in_org: Vec<String>,
    /// Members of the organisation the directory does not list.
    pub not_in_directory: Vec<String>,
    /// Members with a user-scope limit budgit never wrote and policy does not cover: left alone.
    pub unmanaged_left: Vec<String>,
}

/// The target as the policies at the approved ref declare it.
#[derive(Debug, Clone)]
struct Declared {
    money: Money,
    period: &'static str,
}

/// A member's limit for the target's period, as the effective report says.
#[derive(Debug, Clone)]
struct LiveRow {
    spend_limit_id: String,
    amount: Option<String>,
    /// Inherited from another scope (the organisation, a seat tier, a group): it is
    /// the member's effective limit, so a policy asking for the same amount needs no
    /// write, but it is not the member's own and is never deleted or changed.
    inherited: bool,
}

#[derive(Debug, Default)]
struct Cache {
    /// Canonical email → member id.
    members: BTreeMap<String, String>,
    members_read: bool,
    /// Email → the member's own limit (source `user`) for the target's period.
    live: BTreeMap<String, LiveRow>,
    target: Option<Declared>,
    /// The people the policies resolved, members only.
    wanted: BTreeSet<String>,
    /// What the policies want for each of them, so a limit budgit never wrote that
    /// already has the wanted value reads as applied (nothing to write).
    wanted_limits: BTreeMap<String, super::LimitSet>,
    membership: Membership,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// `intent`, `limit.set`, `limit.remove` or `intent.lapsed`.
    action: String,
    user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member: Option<String>,
    /// Minor units; `None` on a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<AppliedSource>,
    commit: String,
    #[serde(default)]
    plan_digest: String,
    actor: String,
    at: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    recovered: bool,
    /// The vendor's increase request a `request.*` entry decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vendor_request: Option<String>,
    /// The budgit credit request that decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<i64>,
    /// `approve` or `deny`, on a `request.intent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    decision: Option<String>,
    /// Why (a declined credit request's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// A client of the Claude Enterprise Admin API, with its audit and lease in a git repository.
pub struct ClaudeWorkspace {
    client: VendorClient,
    cache: Mutex<Cache>,
    /// Limit writes of a batch made at once (`--concurrency`), under the one pacer.
    concurrency: usize,
    /// The audit as last read, with the tip it was read at (see [`ClaudeWorkspace::audit`]).
    audit_read: Mutex<Option<(git2::Oid, Arc<Vec<Entry>>)>>,
}

impl std::fmt::Debug for ClaudeWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaudeWorkspace").field("client", &self.client).finish()
    }
}

impl ClaudeWorkspace {
    /// Claude Enterprise through `client`, whose key is an Anthropic Admin API key
    /// (`VendorClient::from_env(KEY_ENV, …)` reads it from [`KEY_ENV`]).
    pub fn new(client: VendorClient) -> ClaudeWorkspace {
        ClaudeWorkspace { client, cache: Mutex::default(), concurrency: 1, audit_read: Mutex::new(None) }
    }

    /// Makes up to `n` limit writes at once (at least 1, at most
    /// [`http::MAX_CONCURRENCY`]); `--max-rps` stays the total over all of them.
    #[must_use]
    pub fn with_concurrency(mut self, n: usize) -> ClaudeWorkspace {
        self.concurrency = n.clamp(1, http::MAX_CONCURRENCY);
        self
    }

    /// Vendor calls made so far.
    pub fn calls(&self) -> u64 {
        self.client.calls()
    }

    /// Who is in the directory but not the organisation, and the reverse, as of the last run.
    pub fn membership(&self) -> Membership {
        lock(&self.cache).membership.clone()
    }

    /// The exact calls the planned changes need (a dry run's `not_attempted`).
    pub fn planned_calls(&self, items: &[ItemReport]) -> Vec<VendorCall> {
        let cache = lock(&self.cache);
        let Some(target) = &cache.target else { return Vec::new() };
        let mut out = Vec::new();
        for item in items {
            match &item.after {
                Some(limit) => {
                    let (Some(member), Ok(minor)) =
                        (cache.members.get(&item.user), target.money.to_minor(limit.credits))
                    else {
                        continue;
                    };
                    out.push(VendorCall {
                        method: "POST",
                        path: LIMITS.to_string(),
                        body: Some(set_body(minor, member, target.period)),
                    });
                }
                None => {
                    if let Some(row) = cache.live.get(&item.user).filter(|r| !r.inherited) {
                        out.push(VendorCall {
                            method: "DELETE",
                            path: format!("{LIMITS}/{}", row.spend_limit_id),
                            body: None,
                        });
                    }
                }
            }
        }
        out
    }

    fn url(&self, path: &str) -> String {
        self.client.url(path)
    }

    fn pace(&self) {
        self.client.pace();
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, WorkspaceError> {
        self.pace();
        decode(&self.call("GET", path, None)?)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, WorkspaceError> {
        self.pace();
        decode(&self.call("POST", path, Some(body))?)
    }

    /// One call, already paced; a rate limit holds every later call of this client
    /// (on every connection) for the vendor's `Retry-After`.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<String, WorkspaceError> {
        let url = self.url(path);
        let key = self.client.bearer();
        let answer = match (method, body) {
            ("POST", Some(body)) => {
                let bytes = serde_json::to_vec(body).map_err(protocol)?;
                self.client
                    .agent
                    .post(&url)
                    .header("authorization", &key)
                    .header("anthropic-version", API_VERSION)
                    .header("content-type", "application/json")
                    .send(&bytes[..])
            }
            ("DELETE", _) => self
                .client
                .agent
                .delete(&url)
                .header("authorization", &key)
                .header("anthropic-version", API_VERSION)
                .call(),
            _ => self
                .client
                .agent
                .get(&url)
                .header("authorization", &key)
                .header("anthropic-version", API_VERSION)
                .call(),
        };
        let answer = read(answer);
        if let Err(WorkspaceError::RateLimited { retry_after: Some(wait) }) = &answer {
            self.client.pacer.hold(*wait);
        }
        answer
    }

    /// One limit write of a batch: a set (`minor`) or a removal of limit `id`, already paced.
    fn write_one(&self, minor: Option<u64>, id: &str, period: &str) -> Result<Value, WorkspaceError> {
        match minor {
            Some(minor) => decode(&self.call("POST", LIMITS, Some(&set_body(minor, id, period)))?),
            None => match self.call("DELETE", &format!("{LIMITS}/{}", encode(id)), None) {
                Ok(text) => decode(&text),
                // Already gone: the removal is done.
                Err(WorkspaceError::Rejected { status: 404, .. }) => Ok(Value::Null),
                Err(e) => Err(e),
            },
        }
    }

    /// Makes the writes of one batch on up to `concurrency` connections at once, all
    /// paced together; answers each write's outcome by position. The first failure
    /// stops the workers taking more writes (those in flight finish), so a rate limit
    /// or an outage pauses the whole batch, and the reconciler's backoff decides what next.
    fn write_all(
        &self,
        writes: &[(Entry, Option<u64>, String)],
        period: &str,
    ) -> Vec<Option<Result<Value, WorkspaceError>>> {
        let workers = self.concurrency.clamp(1, http::MAX_CONCURRENCY).min(writes.len());
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let outcomes: Mutex<Vec<Option<Result<Value, WorkspaceError>>>> =
            Mutex::new(writes.iter().map(|_| None).collect());
        let work = || {
            loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some((_, minor, id)) = writes.get(i) else { return };
                if !self.client.pacer.pace_unless(Some(&stop)) {
                    return;
                }
                let answer = self.write_one(*minor, id, period);
                if answer.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                if let Some(slot) = lock(&outcomes).get_mut(i) {
                    *slot = Some(answer);
                }
            }
        };
        if workers <= 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..workers {
                    s.spawn(work);
                }
            });
        }
        outcomes.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every member, by canonical email.
    fn load_members(&self) -> Result<(), WorkspaceError> {
        #[derive(Deserialize)]
        struct User {
            id: String,
            email: String,
        }
        #[derive(Deserialize)]
        struct Page {
            data: Vec<User>,
            #[serde(default)]
            has_more: Option<bool>,
            #[serde(default)]
            last_id: Option<String>,
        }
        let mut members = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("{USERS}?limit={PAGE}&after_id={}", encode(a)),
                None => format!("{USERS}?limit={PAGE}"),
            };
            let page: Page = self.get(&path)?;
            for u in page.data {
                // An address the directory could never match is still a member: keep it as written.
                let email = crate::identity::canonical_email(&u.email)
                    .map(|e| e.into_owned())
                    .unwrap_or_else(|_| u.email.clone());
                members.insert(email, u.id);
            }
            match page.last_id {
                Some(last) if page.has_more == Some(true) && after.as_deref() != Some(&last) => {
                    after = Some(last)
                }
                _ => break,
            }
        }
        let mut cache = lock(&self.cache);
        cache.members = members;
        cache.members_read = true;
        Ok(())
    }

    /// Reads the effective report into the cache: each member's own limit for the target's period.
    fn load_live(&self) -> Result<(), WorkspaceError> {
        #[derive(Deserialize)]
        struct Scope {
            #[serde(rename = "type")]
            kind: String,
            #[serde(default)]
            user_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct Row {
            amount: Option<String>,
            currency: String,
            period: String,
            scope: Scope,
            source: Scope,
            spend_limit_id: String,
        }
        #[derive(Deserialize)]
        struct Page {
            data: Vec<Row>,
            #[serde(default)]
            next_page: Option<String>,
        }
        let (target, by_id) = {
            let cache = lock(&self.cache);
            let target =
                cache.target.clone().ok_or_else(|| protocol("the target's money and period are not set"))?;
            let by_id: BTreeMap<String, String> =
                cache.members.iter().map(|(e, id)| (id.clone(), e.clone())).collect();
            (target, by_id)
        };
        let mut live = BTreeMap::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut path = format!("{EFFECTIVE}?limit={PAGE}&period[]={}", target.period);
            if let Some(p) = &page_token {
                path.push_str(&format!("&page={}", encode(p)));
            }
            let page: Page = self.get(&path)?;
            for row in page.data {
                if row.period != target.period {
                    continue;
                }
                let inherited = row.source.kind != "user";
                if row.currency != target.money.currency {
                    return Err(protocol(format!(
                        "the organisation bills in `{}`, and the policies declare `{}`",
                        row.currency, target.money.currency
                    )));
                }
                let Some(email) = row.scope.user_id.as_ref().and_then(|id| by_id.get(id)) else { continue };
                live.insert(
                    email.clone(),
                    LiveRow { spend_limit_id: row.spend_limit_id, amount: row.amount, inherited },
                );
            }
            match page.next_page {
                Some(next) if !next.is_empty() && page_token.as_deref() != Some(&next) => {
                    page_token = Some(next)
                }
                _ => break,
            }
        }
        lock(&self.cache).live = live;
        Ok(())
    }

    /// The audit log, oldest first. Read from git once per tip of [`AUDIT_REF`]: a run
    /// reads it for the live limits and again for what budgit last applied, and at
    /// 100,000 members each read parses 200,000 lines. Another writer (a sync, or this
    /// run's own appends) moves the tip, and the next read reads it again.
    fn audit(&self) -> Result<Arc<Vec<Entry>>, WorkspaceError> {
        let repo = lock(&self.client.repo);
        let tip = repo.find_reference(AUDIT_REF).ok().and_then(|r| r.target());
        let mut read = lock(&self.audit_read);
        if let (Some(tip), Some((at, entries))) = (tip, read.as_ref())
            && *at == tip
        {
            return Ok(Arc::clone(entries));
        }
        let entries = Arc::new(git_refs::read_audit(&repo, AUDIT_REF)?);
        *read = tip.map(|tip| (tip, Arc::clone(&entries)));
        Ok(entries)
    }

    /// Appends entries to the audit, as one commit on [`AUDIT_REF`].
    fn append(&self, entries: &[Entry]) -> Result<(), WorkspaceError> {
        if entries.is_empty() || self.client.dry_run {
            return Ok(());
        }
        let message = format!(
            "budgit audit: {} {} at {}",
            entries.len(),
            if entries.len() == 1 { "entry" } else { "entries" },
            entries[0].commit
        );
        git_refs::append_audit(&lock(&self.client.repo), AUDIT_REF, entries, &message)
    }

    /// The last set per user (removed users absent), and intents no outcome followed;
    /// borrowed from the entries, which are many.
    fn replay<'a>(
        entries: impl IntoIterator<Item = &'a Entry>,
        actor: Option<&str>,
    ) -> (BTreeMap<&'a str, &'a Entry>, BTreeMap<&'a str, &'a Entry>) {
        git_refs::replay(entries, actor, "limit.set", "limit.remove")
    }
}

impl git_refs::AuditLine for Entry {
    fn action(&self) -> &str {
        &self.action
    }
    fn subject(&self) -> &str {
        &self.user
    }
    fn actor(&self) -> &str {
        &self.actor
    }
}

/// A member's request for a higher spend limit, as the vendor lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IncreaseRequest {
    /// The vendor's id (`slir_…`).
    pub id: String,
    /// The member who asked (`user_…`); `None` when an API key asked.
    pub user_id: Option<String>,
    /// The member's email in canonical form, from the organisation's members (else as the vendor wrote it).
    pub email: Option<String>,
    /// The period the member was blocked on (`daily`, `weekly`, `monthly`).
    pub period: String,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    /// When the member asked (RFC 3339, as the vendor wrote it).
    pub created_at: String,
    /// The member's live row of the effective report (pending requests only).
    pub summary: Option<SpendSummary>,
}

/// The member's effective limit and spend when they asked, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpendSummary {
    /// The effective limit; `None` when no limit applies for the period.
    pub amount: Option<String>,
    /// The organisation's billing currency (uppercase).
    pub currency: String,
    /// Spend so far in the period (may carry fractional minor units).
    pub period_to_date_spend: String,
    /// The scope the limit comes from (`user`, `organization`, …).
    pub source: String,
}

/// What budgit decided about a vendor's increase request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncreaseDecision {
    /// Approve at `amount` minor units for `period` (the limit budgit applied).
    Approve {
        /// Minor units.
        amount: String,
        /// The vendor's period.
        period: String,
    },
    /// Deny.
    Deny,
}

/// A decision to write to the vendor, with what budgit's audit keeps about it.
#[derive(Debug, Clone)]
pub struct IncreaseWrite {
    /// The vendor's request.
    pub request: IncreaseRequest,
    /// The budgit credit request that decided it.
    pub budgit_request: i64,
    /// Approve or deny.
    pub decision: IncreaseDecision,
    /// Why (a declined credit request's reason).
    pub reason: Option<String>,
    /// The policy commit the decision was read at.
    pub commit: String,
    /// Who decides (the audit's actor).
    pub actor: String,
    /// Ask the vendor not to email the member.
    pub suppress_notification: bool,
}

/// The limit budgit last wrote for a member, and what the vendor shows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedByBudgit {
    /// Minor units budgit wrote.
    pub amount: String,
    /// The policy commit it came from.
    pub commit: String,
    /// The member's own limit for the target's period now, in minor units.
    pub live: Option<String>,
}

#[derive(Deserialize)]
struct RawActor {
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    email_address: Option<String>,
}

#[derive(Deserialize)]
struct RawScope {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct RawSummary {
    amount: Option<String>,
    currency: String,
    period_to_date_spend: String,
    source: RawScope,
}

#[derive(Deserialize)]
struct RawIncrease {
    id: String,
    actor: RawActor,
    period: String,
    status: String,
    created_at: String,
    #[serde(default)]
    spend_summary: Option<RawSummary>,
}

impl ClaudeWorkspace {
    fn increase(&self, raw: RawIncrease) -> IncreaseRequest {
        let email = {
            let cache = lock(&self.cache);
            raw.actor
                .user_id
                .as_ref()
                .and_then(|id| cache.members.iter().find(|(_, m)| *m == id).map(|(e, _)| e.clone()))
        }
        .or_else(|| {
            raw.actor.email_address.as_ref().map(|e| {
                crate::identity::canonical_email(e).map(|c| c.into_owned()).unwrap_or_else(|_| e.clone())
            })
        });
        IncreaseRequest {
            id: raw.id,
            user_id: raw.actor.user_id,
            email,
            period: raw.period,
            status: raw.status,
            created_at: raw.created_at,
            summary: raw.spend_summary.map(|s| SpendSummary {
                amount: s.amount,
                currency: s.currency,
                period_to_date_spend: s.period_to_date_spend,
                source: s.source.kind,
            }),
        }
    }

    /// Every increase request with `status` (all when `None`), most recent first, every page.
    pub fn increase_requests(&self, status: Option<&str>) -> Result<Vec<IncreaseRequest>, WorkspaceError> {
        #[derive(Deserialize)]
        struct Page {
            data: Vec<RawIncrease>,
            #[serde(default)]
            next_page: Option<String>,
        }
        if !lock(&self.cache).members_read {
            self.load_members()?;
        }
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut path = format!("{INCREASES}?limit={INCREASE_PAGE}");
            if let Some(s) = status {
                path.push_str(&format!("&status[]={}", encode(s)));
            }
            if let Some(p) = &page_token {
                path.push_str(&format!("&page={}", encode(p)));
            }
            let page: Page = self.get(&path)?;
            out.extend(page.data.into_iter().map(|r| self.increase(r)));
            match page.next_page {
                Some(next) if !next.is_empty() && page_token.as_deref() != Some(&next) => {
                    page_token = Some(next)
                }
                _ => return Ok(out),
            }
        }
    }

    /// One increase request.
    pub fn increase_request(&self, id: &str) -> Result<IncreaseRequest, WorkspaceError> {
        let raw: RawIncrease = self.get(&format!("{INCREASES}/{}", encode(id)))?;
        Ok(self.increase(raw))
    }

    /// Approves at `amount` minor units: the vendor writes the member's user-scope limit at it.
    pub fn approve_increase(
        &self,
        id: &str,
        amount: &str,
        period: &str,
        suppress_notification: bool,
    ) -> Result<IncreaseRequest, WorkspaceError> {
        let body =
            json!({ "amount": amount, "period": period, "suppress_notification": suppress_notification });
        let answer = self.post(&format!("{INCREASES}/{}/approve", encode(id)), &body)?;
        let raw: RawIncrease = serde_json::from_value(answer).map_err(protocol)?;
        Ok(self.increase(raw))
    }

    /// Denies (idempotent at the vendor on a denied request).
    pub fn deny_increase(
        &self,
        id: &str,
        suppress_notification: bool,
    ) -> Result<IncreaseRequest, WorkspaceError> {
        let body = json!({ "suppress_notification": suppress_notification });
        let answer = self.post(&format!("{INCREASES}/{}/deny", encode(id)), &body)?;
        let raw: RawIncrease = serde_json::from_value(answer).map_err(protocol)?;
        Ok(self.increase(raw))
    }

    /// Writes a decision to the vendor, audited once: a `request.intent` line before the
    /// call, `request.approved` or `request.denied` after the vendor answered. When the
    /// call fails the intent stays open and [`ClaudeWorkspace::recover_increases`] settles it.
    pub fn decide_increase(&self, write: &IncreaseWrite) -> Result<IncreaseRequest, WorkspaceError> {
        let (amount, period, decision) = match &write.decision {
            IncreaseDecision::Approve { amount, period } => {
                (Some(amount.clone()), Some(period.clone()), "approve")
            }
            IncreaseDecision::Deny => (None, None, "deny"),
        };
        let currency = lock(&self.cache).target.as_ref().map(|t| t.money.currency.clone());
        let intent = Entry {
            action: "request.intent".into(),
            user: write.request.email.clone().unwrap_or_default(),
            member: write.request.user_id.clone(),
            amount: amount.clone(),
            currency: amount.as_ref().and(currency),
            period,
            limit: None,
            group: None,
            source: None,
            commit: write.commit.clone(),
            plan_digest: String::new(),
            actor: write.actor.clone(),
            at: now_rfc3339(),
            recovered: false,
            vendor_request: Some(write.request.id.clone()),
            request: Some(write.budgit_request),
            decision: Some(decision.into()),
            reason: write.reason.clone(),
        };
        if self.client.dry_run {
            return Ok(write.request.clone());
        }
        self.append(std::slice::from_ref(&intent))?;
        let answer = match &write.decision {
            IncreaseDecision::Approve { amount, period } => {
                self.approve_increase(&write.request.id, amount, period, write.suppress_notification)
            }
            IncreaseDecision::Deny => self.deny_increase(&write.request.id, write.suppress_notification),
        }?;
        let action = if decision == "approve" { "request.approved" } else { "request.denied" };
        self.append(&[Entry { action: action.into(), at: now_rfc3339(), ..intent }])?;
        Ok(answer)
    }

    /// Settles the decisions a killed or failed run left open: an intent the vendor
    /// shows done gets its outcome (marked `recovered`), any other lapses, so the
    /// next decision is made afresh. Answers the vendor request ids settled and how.
    pub fn recover_increases(&self) -> Result<Vec<(String, String)>, WorkspaceError> {
        let mut open: BTreeMap<String, Entry> = BTreeMap::new();
        for e in self.audit()?.iter() {
            let Some(id) = e.vendor_request.clone() else { continue };
            if e.action == "request.intent" {
                open.insert(id, e.clone());
            } else {
                open.remove(&id);
            }
        }
        let mut settled = Vec::new();
        let mut lines = Vec::new();
        for (id, intent) in open {
            let now = match self.increase_request(&id) {
                Ok(r) => Some(r.status),
                Err(WorkspaceError::Rejected { status: 404, .. }) => None,
                Err(e) => return Err(e),
            };
            let action = match (intent.decision.as_deref(), now.as_deref()) {
                (Some("approve"), Some("approved")) => "request.approved",
                (Some("deny"), Some("denied")) => "request.denied",
                _ => "request.lapsed",
            };
            settled.push((id, action.to_string()));
            lines.push(Entry { action: action.into(), at: now_rfc3339(), recovered: true, ..intent });
        }
        self.append(&lines)?;
        Ok(settled)
    }

    /// The vendor requests budgit's audit shows decided (approved or denied), by id.
    pub fn decided_increases(&self) -> Result<BTreeMap<String, String>, WorkspaceError> {
        Ok(self
            .audit()?
            .iter()
            .filter(|e| e.action == "request.approved" || e.action == "request.denied")
            .filter_map(|e| Some((e.vendor_request.clone()?, e.action.clone())))
            .collect())
    }

    /// Reads the Workspace at `rev` of the repository holding `policies` (the target's
    /// money and period), the members and the effective report; answers the commit.
    pub fn load_target(&self, policies: &Path, rev: &str) -> Result<String, ReconcileError> {
        let git = GitRepo::discover(policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
        let dir = git.repo_path(policies)?;
        let tree = git.read_policies(rev, &dir)?;
        let commit = tree.commit.sha.clone();
        let refuse =
            |first: String| ReconcileError::InvalidPolicy { commit: commit.clone(), errors: 1, first };
        let (policies, _) = crate::load::load_sources(tree.sources);
        let ws = policies.workspace().ok_or_else(|| refuse("the policies have no Workspace".into()))?;
        let declared = ws.doc.vendors.get(&Vendor::ClaudeEnterprise).ok_or_else(|| {
            refuse(format!("the Workspace declares no `vendors.{CLAUDE_ENTERPRISE}` [vendor/bad-money]"))
        })?;
        let money = Money::new(declared).map_err(|e| refuse(format!("{e} [vendor/bad-money]")))?;
        let period = claude_period(ws.doc.period).ok_or_else(|| {
            refuse(format!("`{CLAUDE_ENTERPRISE}` has no quarterly limits [vendor/unsupported-period]"))
        })?;
        lock(&self.cache).target = Some(Declared { money, period });
        self.load_members()?;
        self.load_live()?;
        Ok(commit)
    }

    /// The money and period [`ClaudeWorkspace::load_target`] read.
    pub fn target(&self) -> Option<(Money, &'static str)> {
        lock(&self.cache).target.as_ref().map(|t| (t.money.clone(), t.period))
    }

    /// The limit budgit last wrote for `email` (from the audit) and the member's live one.
    pub fn applied_by_budgit(&self, email: &str) -> Result<Option<AppliedByBudgit>, WorkspaceError> {
        let entries = self.audit()?;
        let (last, _) = ClaudeWorkspace::replay(entries.iter(), None);
        let Some(entry) = last.get(email).copied() else { return Ok(None) };
        let live = lock(&self.cache).live.get(email).and_then(|r| r.amount.clone());
        Ok(Some(AppliedByBudgit {
            amount: entry.amount.clone().unwrap_or_default(),
            commit: entry.commit.clone(),
            live,
        }))
    }

    /// Whether the tree at `rev` of the audit's repository holds `path` (repository-relative).
    pub fn has_file_at(&self, rev: &str, path: &str) -> Result<bool, WorkspaceError> {
        let repo = lock(&self.client.repo);
        let fail = |e: git2::Error| protocol(format!("cannot read `{rev}`: {}", e.message()));
        let commit = repo.revparse_single(rev).and_then(|o| o.peel_to_commit()).map_err(fail)?;
        let tree = commit.tree().map_err(fail)?;
        Ok(tree.get_path(Path::new(path)).is_ok())
    }
}

fn set_body(minor: u64, member: &str, period: &str) -> Value {
    json!({ "amount": minor.to_string(), "scope": { "type": "user", "user_id": member }, "period": period })
}

impl Target for ClaudeWorkspace {
    fn users(&self) -> Result<Vec<UserRecord>, WorkspaceError> {
        self.load_members()?;
        let cache = lock(&self.cache);
        Ok(cache
            .members
            .keys()
            .map(|email| UserRecord { email: email.clone(), attributes: serde_json::Map::new() })
            .collect())
    }

    fn limits(&self) -> Result<Vec<AppliedLimit>, WorkspaceError> {
        if !lock(&self.cache).members_read {
            self.load_members()?;
        }
        self.load_live()?;
        let entries = self.audit()?;
        let (managed, _) = ClaudeWorkspace::replay(entries.iter(), None);
        let mut cache = lock(&self.cache);
        let target =
            cache.target.clone().ok_or_else(|| protocol("the target's money and period are not set"))?;
        let mut out = Vec::new();
        let mut left = Vec::new();
        for (email, row) in &cache.live {
            let last = managed.get(email.as_str()).copied();
            if row.inherited && !cache.wanted.contains(email) {
                // Not the member's own limit, and not for budgit to change.
                continue;
            }
            if !cache.wanted.contains(email) && last.is_none() {
                // Set by hand for someone policy does not cover: not ours to change.
                left.push(email.clone());
                continue;
            }
            // An explicit "no limit" set by hand reads as the largest limit, so it is drift.
            let credits = match &row.amount {
                Some(a) => target.money.from_minor(a).unwrap_or(Credits::MAX),
                None => Credits::MAX,
            };
            let ours = last.filter(|l| l.amount == row.amount);
            let limit = Limit { credits, ..Limit::default() };
            // Never written by budgit (set by hand, or inherited) and already what the
            // policies want: applied as it stands, with the deciding document.
            let already = cache.wanted_limits.get(email).filter(|w| last.is_none() && w.limit == limit);
            out.push(AppliedLimit {
                user: email.clone(),
                limit,
                group: ours.and_then(|l| l.group.clone()).or_else(|| already.and_then(|w| w.group.clone())),
                source: ours
                    .and_then(|l| l.source.clone())
                    .or_else(|| already.and_then(|w| w.source.clone())),
                commit: ours.map(|l| l.commit.clone()),
            });
        }
        cache.membership.unmanaged_left = left;
        Ok(out)
    }

    fn pools(&self) -> Result<BTreeMap<String, Credits>, WorkspaceError> {
        // The vendor has no pools; `validate` refuses one when this target is declared.
        Ok(BTreeMap::new())
    }

    fn last_applied(&self, actor: &str) -> Result<BTreeMap<String, LastApplied>, WorkspaceError> {
        let entries = self.audit()?;
        let (_, pending) = ClaudeWorkspace::replay(entries.iter(), None);
        // Finish what a killed run started: an intent whose value is live was written.
        let mut finished = Vec::new();
        {
            let cache = lock(&self.cache);
            for (user, intent) in pending {
                let intent = intent.clone();
                let live = cache.live.get(user);
                let landed = match &intent.amount {
                    Some(amount) => {
                        live.is_some_and(|r| !r.inherited && r.amount.as_deref() == Some(amount.as_str()))
                    }
                    None => live.is_none_or(|r| r.inherited),
                };
                let action =
                    git_refs::settled_action(landed, intent.amount.is_none(), "limit.set", "limit.remove");
                finished.push(Entry {
                    action: action.to_string(),
                    recovered: true,
                    at: now_rfc3339(),
                    ..intent
                });
            }
        }
        self.append(&finished)?;
        let (last, _) = ClaudeWorkspace::replay(entries.iter().chain(&finished), Some(actor));
        Ok(last
            .into_iter()
            .filter_map(|(user, e)| {
                let limit = e.limit.clone()?;
                Some((
                    user.to_string(),
                    LastApplied {
                        limit,
                        commit: Some(e.commit.clone()),
                        source_kind: e.source.as_ref().map(|s| s.kind.clone()),
                    },
                ))
            })
            .collect())
    }

    fn apply(&self, batch: &Batch) -> Result<BatchResult, WorkspaceError> {
        if let Some(pool) = batch.pools.iter().find(|p| p.credits.is_some()) {
            return Err(WorkspaceError::Rejected {
                status: 400,
                code: Code::VendorUnsupportedPool.as_str().into(),
                message: format!("`{CLAUDE_ENTERPRISE}` has no pools (group `{}`)", pool.group),
            });
        }
        let (target, members, live) = {
            let cache = lock(&self.cache);
            let target =
                cache.target.clone().ok_or_else(|| protocol("the target's money and period are not set"))?;
            // Only this batch's members and live rows: copying the organisation's whole
            // maps for every batch of 500 cost seconds a run at 100,000 members.
            let mut members = BTreeMap::new();
            let mut live = BTreeMap::new();
            for user in batch.limits.iter().map(|s| &s.user).chain(&batch.remove) {
                if let Some(m) = cache.members.get(user) {
                    members.insert(user.clone(), m.clone());
                }
                if let Some(r) = cache.live.get(user) {
                    live.insert(user.clone(), r.clone());
                }
            }
            (target, members, live)
        };
        let base = |action: &str, user: &str| Entry {
            action: action.to_string(),
            user: user.to_string(),
            member: members.get(user).cloned(),
            amount: None,
            currency: Some(target.money.currency.clone()),
            period: Some(target.period.to_string()),
            limit: None,
            group: None,
            source: None,
            commit: batch.commit.clone(),
            plan_digest: batch.plan_digest.clone(),
            actor: batch.actor.clone(),
            at: now_rfc3339(),
            recovered: false,
            vendor_request: None,
            request: None,
            decision: None,
            reason: None,
        };
        let reject = |code: Code, message: String| WorkspaceError::Rejected {
            status: 400,
            code: code.as_str().into(),
            message,
        };
        // (user, entry, call) for each write; unchanged items answered without a call.
        let mut statuses: BTreeMap<String, ItemStatus> = BTreeMap::new();
        let mut writes: Vec<(Entry, Option<u64>, String)> = Vec::new();
        for set in &batch.limits {
            let Some(member) = members.get(&set.user) else {
                return Err(reject(
                    Code::VendorNotAMember,
                    format!("`{}` is not a member of the organisation", set.user),
                ));
            };
            let minor = target
                .money
                .to_minor(set.limit.credits)
                .map_err(|e| reject(Code::VendorNotRepresentable, format!("`{}`: {e}", set.user)))?;
            if !set.limit.products.is_empty() || !set.limit.models.is_empty() {
                return Err(reject(
                    Code::VendorUnsupportedCap,
                    format!("`{}`: `{CLAUDE_ENTERPRISE}` limits only a member's total spend", set.user),
                ));
            }
            let amount = minor.to_string();
            let current = live.get(&set.user);
            if current.is_some_and(|r| r.amount.as_deref() == Some(amount.as_str())) {
                statuses.insert(set.user.clone(), ItemStatus::Unchanged);
                continue;
            }
            let mut e = base(git_refs::INTENT, &set.user);
            e.amount = Some(amount);
            e.limit = Some(set.limit.clone());
            e.group = set.group.clone();
            e.source = set.source.clone();
            let own = current.filter(|r| !r.inherited);
            let status = if own.is_some() { ItemStatus::Updated } else { ItemStatus::Created };
            statuses.insert(set.user.clone(), status);
            writes.push((e, Some(minor), member.clone()));
        }
        for user in &batch.remove {
            match live.get(user).filter(|r| !r.inherited) {
                None => {
                    statuses.insert(user.clone(), ItemStatus::Unchanged);
                }
                Some(row) => {
                    statuses.insert(user.clone(), ItemStatus::Removed);
                    writes.push((base(git_refs::INTENT, user), None, row.spend_limit_id.clone()));
                }
            }
        }
        self.append(&writes.iter().map(|(e, _, _)| e.clone()).collect::<Vec<_>>())?;
        let outcomes = self.write_all(&writes, target.period);
        let mut done = Vec::new();
        let mut failure: Option<WorkspaceError> = None;
        for ((intent, minor, _), outcome) in writes.into_iter().zip(outcomes) {
            match outcome {
                Some(Ok(value)) => {
                    let mut cache = lock(&self.cache);
                    if minor.is_some() {
                        let spend_limit_id =
                            value.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                        cache.live.insert(
                            intent.user.clone(),
                            LiveRow { spend_limit_id, amount: intent.amount.clone(), inherited: false },
                        );
                    } else {
                        cache.live.remove(&intent.user);
                    }
                    let action = if minor.is_some() { "limit.set" } else { "limit.remove" };
                    done.push(Entry { action: action.to_string(), at: now_rfc3339(), ..intent });
                }
                // A rate limit is the failure to answer with: its `Retry-After` then
                // paces the reconciler's retry of the batch.
                Some(Err(e)) => {
                    let rate_limited = matches!(e, WorkspaceError::RateLimited { .. });
                    if failure.is_none()
                        || (rate_limited && !matches!(failure, Some(WorkspaceError::RateLimited { .. })))
                    {
                        failure = Some(e);
                    }
                }
                // Not tried: another write failed first. Its intent lapses or is retried.
                None => {}
            }
        }
        // What was written is audited even when a later call failed.
        self.append(&done)?;
        if let Some(e) = failure {
            return Err(e);
        }
        let users = batch
            .limits
            .iter()
            .map(|s| s.user.clone())
            .chain(batch.remove.iter().cloned())
            .filter_map(|u| statuses.get(&u).map(|s| (u, *s)))
            .collect();
        Ok(BatchResult { users, pools: Vec::new() })
    }

    fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, WorkspaceError> {
        git_refs::acquire_lease(&lock(&self.client.repo), LEASE_REF_PREFIX, name, holder, ttl)
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), WorkspaceError> {
        git_refs::release_lease(&lock(&self.client.repo), LEASE_REF_PREFIX, name, holder)
    }
}

/// The desired state for the target: the policies at the ref, members of the organisation only.
///
/// Sets the adapter's money and period from the Workspace document at the same
/// commit, and records who is in the directory but not the organisation (and
/// the reverse). Pools and settings are dropped here because the target has no
/// object for them, and `validate` has already refused policies that use them.
pub struct ClaudeDesired<'a> {
    /// The policies at the approved ref.
    pub git: GitDesired,
    /// The adapter the run writes with.
    pub workspace: &'a ClaudeWorkspace,
}

impl DesiredState for ClaudeDesired<'_> {
    fn desired(&self, workspace: &dyn Target) -> Result<Desired, ReconcileError> {
        let mut desired = self.git.desired(workspace)?;
        let refuse = |first: String| ReconcileError::InvalidPolicy {
            commit: desired.commit.clone(),
            errors: 1,
            first,
        };
        let git = GitRepo::discover(&self.git.policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
        let dir = git.repo_path(&self.git.policies)?;
        let tree = git.read_policies(&desired.commit, &dir)?;
        let (policies, _) = crate::load::load_sources(tree.sources);
        let ws = policies.workspace().ok_or_else(|| refuse("the policies have no Workspace".into()))?;
        let declared = ws.doc.vendors.get(&Vendor::ClaudeEnterprise).ok_or_else(|| {
            refuse(format!("the Workspace declares no `vendors.{CLAUDE_ENTERPRISE}`: say how credits map to the organisation's currency [vendor/bad-money]"))
        })?;
        let money = Money::new(declared).map_err(|e| refuse(format!("{e} [vendor/bad-money]")))?;
        let period = claude_period(ws.doc.period).ok_or_else(|| {
            refuse(format!("`{CLAUDE_ENTERPRISE}` has no quarterly limits [vendor/unsupported-period]"))
        })?;
        if !lock(&self.workspace.cache).members_read {
            self.workspace.load_members()?;
        }
        let mut cache = lock(&self.workspace.cache);
        let (kept, gone): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut desired.limits)
            .into_iter()
            .partition(|(email, _)| cache.members.contains_key(email));
        desired.limits = kept;
        desired.pools.clear();
        desired.settings = None;
        cache.wanted = desired.limits.keys().cloned().collect();
        cache.wanted_limits = desired.limits.clone();
        cache.membership = Membership {
            not_in_org: gone.into_keys().collect(),
            not_in_directory: cache
                .members
                .keys()
                .filter(|e| !desired.limits.contains_key(*e))
                .cloned()
                .collect(),
            unmanaged_left: Vec::new(),
        };
        cache.target = Some(Declared { money, period });
        Ok(desired)
    }
}
