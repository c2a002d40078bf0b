//! An OpenAI organisation as a [`Target`]: spend limits and spend alerts over the OpenAI Admin API.
//!
//! OpenAI limits what an organisation and each of its projects spend in a
//! month, and emails spend alerts at amounts; it has nothing per person. So
//! the reconciler's items here are *scopes*, not people: `organization` and
//! `project proj_…`. A scope's [`Limit`] carries its spend limit as `credits`
//! and its alerts beside, one entry `alert N%` per alert level (an alert set by
//! hand appears as `alert <its id>`), so the one reconcile loop plans, guards,
//! retries and reports them like any other limit.
//!
//! Reads `GET /organization/spend_limit`, `GET /organization/spend_alerts` and
//! the same under `/organization/projects/{id}/`; writes with `POST` (a spend
//! limit is set whole; an alert is created, or updated at its id) and removes
//! with `DELETE`. Paths, parameters and shapes are those of the official
//! `openai` SDK's admin organization resources; amounts are US cents. The key
//! comes from [`KEY_ENV`], the variable the SDK reads, sent as a bearer token.
//!
//! OpenAI keeps no record of who set a limit, so budgit keeps its own in the
//! policy repository: an append-only audit under [`AUDIT_REF`] (one commit per
//! write, JSON Lines, each entry naming the commit and the exact calls) and the
//! lease under [`LEASE_REF_PREFIX`]. The audit also maps each alert budgit
//! created to its level, so an alert set by hand is told apart and reverted.
//!
//! Every scope's writes are preceded by an `intent` entry listing each planned
//! call with its amount (and alert level), and followed by the outcome. A run
//! killed between the vendor's answers and the outcome, or one whose call
//! failed without an answer, leaves the intent open; the next read of the scope
//! settles it against what OpenAI holds, call by call: a limit at the intended
//! amount, an alert updated to it, an alert deleted, or an alert created (one
//! budgit does not know yet, at the intended threshold with the intended
//! recipients, which is adopted as that level). When every call landed the
//! outcome is written then, marked `recovered`; otherwise `intent.lapsed`,
//! naming the calls that did land, and the normal diff writes the rest. So
//! each write is audited exactly once and none is made twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::claude::VendorCall;
use super::git_refs::{self, INTENT, LAPSED, lock, now_rfc3339, protocol};
use super::http::{decode, encode, read};
use super::vendor_client::VendorClient;
use super::{
    AppliedLimit, AppliedSource, Batch, BatchResult, ItemStatus, LastApplied, Lease, LimitSet, Target,
    UserRecord, WorkspaceError,
};
use crate::Credits;
use crate::diag::Code;
use crate::load::git::GitRepo;
use crate::model::{Limit, Vendor};
use crate::reconcile::{Desired, DesiredState, GitDesired, ItemReport, ReconcileError};
use crate::vendor::{Money, OPENAI, OPENAI_CURRENCY, percent_of};

/// The environment variable holding the Admin API key (the one the official SDK reads).
pub const KEY_ENV: &str = "OPENAI_ADMIN_KEY";
/// The ref holding budgit's audit of its writes to the organisation.
pub const AUDIT_REF: &str = "refs/budgit/audit/openai";
/// Leases are refs under this prefix, one per lease name.
pub const LEASE_REF_PREFIX: &str = "refs/budgit/leases/openai/";
/// The item naming the organisation's own limit and alerts.
pub const ORGANIZATION: &str = "organization";
/// Rows asked for per page (the list endpoints' largest page).
const PAGE: usize = 100;
const USERS: &str = "/organization/users";
const PROJECTS: &str = "/organization/projects";

/// The item of a project.
pub fn project_item(project: &str) -> String {
    format!("project {project}")
}

/// The key of an alert level inside a scope's [`Limit`].
fn level_key(level: u32) -> String {
    format!("alert {level}%")
}

/// Where a scope's objects live: `/organization` or `/organization/projects/{id}`.
fn scope_path(item: &str) -> Option<String> {
    if item == ORGANIZATION {
        return Some("/organization".to_string());
    }
    item.strip_prefix("project ").map(|p| format!("{PROJECTS}/{}", encode(p)))
}

/// The target as the policies at the approved ref declare it.
#[derive(Debug, Clone)]
struct Declared {
    money: Money,
    recipients: Vec<String>,
}

/// One alert as OpenAI holds it.
#[derive(Debug, Clone, PartialEq)]
struct LiveAlert {
    id: String,
    cents: u64,
    /// Who its emails go to, as OpenAI lists them.
    recipients: Vec<String>,
}

/// A scope's spend limit and alerts as OpenAI holds them.
#[derive(Debug, Clone, Default, PartialEq)]
struct Scope {
    limit_cents: Option<u64>,
    alerts: Vec<LiveAlert>,
}

#[derive(Debug, Default)]
struct Cache {
    target: Option<Declared>,
    /// Items the policies want, with their limits (set by the desired state), so a
    /// scope budgit never wrote that already holds the wanted value reads as applied.
    wanted: BTreeMap<String, LimitSet>,
    /// Every scope read this run, by item.
    live: BTreeMap<String, Scope>,
    /// Alert id → its key (`alert 80%`), for the alerts budgit created.
    alert_keys: BTreeMap<String, String>,
    /// Intents settled this run that a dry run could not write to the audit.
    unwritten: Vec<Entry>,
}

/// One write an intent plans, with what a later run needs to tell whether it landed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Write {
    /// `METHOD path`.
    call: String,
    /// The cents it sets (a spend limit, or an alert's threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount: Option<u64>,
    /// The alert level a created or updated alert holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// The alert an update or delete addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alert: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    /// `intent`, `scope.set`, `scope.remove` or `intent.lapsed`.
    action: String,
    /// `organization` or `project proj_…`.
    item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<Limit>,
    /// The alerts budgit holds in the scope after the write: key → alert id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    alerts: BTreeMap<String, String>,
    /// The vendor calls, `METHOD path`: planned on an intent, made on an outcome
    /// (on a recovered one, those the vendor shows landed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    calls: Vec<String>,
    /// On an intent: each planned write with its amount.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    writes: Vec<Write>,
    /// On an intent: the recipients the alerts it creates are sent with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    recipients: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<AppliedSource>,
    commit: String,
    #[serde(default)]
    plan_digest: String,
    actor: String,
    at: String,
    /// An outcome written by a later run, from the live state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    recovered: bool,
}

impl git_refs::AuditLine for Entry {
    fn action(&self) -> &str {
        &self.action
    }
    fn subject(&self) -> &str {
        &self.item
    }
    fn actor(&self) -> &str {
        &self.actor
    }
}

const SET: &str = "scope.set";
const REMOVE: &str = "scope.remove";

/// A client of the OpenAI Admin API, with its audit and lease in a git repository.
pub struct OpenAiWorkspace {
    client: VendorClient,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for OpenAiWorkspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiWorkspace").field("client", &self.client).finish()
    }
}

fn no_target() -> WorkspaceError {
    protocol("the target's money is not set")
}

impl OpenAiWorkspace {
    /// An OpenAI organisation through `client`, whose base is the API's
    /// (`https://api.openai.com/v1`) and whose key is an Admin API key
    /// (`VendorClient::from_env(KEY_ENV, …)` reads it from [`KEY_ENV`]).
    pub fn new(client: VendorClient) -> OpenAiWorkspace {
        OpenAiWorkspace { client, cache: Mutex::default() }
    }

    /// Vendor calls made so far.
    pub fn calls(&self) -> u64 {
        self.client.calls()
    }

    /// The exact calls the planned changes need (a dry run's `not_attempted`).
    pub fn planned_calls(&self, items: &[ItemReport]) -> Vec<VendorCall> {
        let cache = lock(&self.cache);
        let Some(target) = &cache.target else { return Vec::new() };
        let mut out = Vec::new();
        for item in items {
            let live = cache.live.get(&item.user).cloned().unwrap_or_default();
            let ops = match &item.after {
                Some(limit) => set_ops(&item.user, limit, &live, &cache.alert_keys, target),
                None => remove_ops(&item.user, &live, &cache.alert_keys),
            };
            out.extend(ops.unwrap_or_default().into_iter().map(|op| op.call));
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
        let answer =
            self.client.agent.get(&self.url(path)).header("authorization", &self.client.bearer()).call();
        decode(&read(answer)?)
    }

    fn send(&self, call: &VendorCall) -> Result<Value, WorkspaceError> {
        self.pace();
        let bearer = self.client.bearer();
        let url = self.url(&call.path);
        let answer = match &call.body {
            Some(body) => {
                let bytes = serde_json::to_vec(body).map_err(protocol)?;
                self.client
                    .agent
                    .post(&url)
                    .header("authorization", &bearer)
                    .header("content-type", "application/json")
                    .send(&bytes[..])
            }
            None => self.client.agent.delete(&url).header("authorization", &bearer).call(),
        };
        decode(&read(answer)?)
    }

    /// Every page of a cursor list (`data`, `has_more`, `last_id`, paged with `after`).
    fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, WorkspaceError> {
        #[derive(Deserialize)]
        struct Page<T> {
            data: Vec<T>,
            #[serde(default)]
            has_more: bool,
            #[serde(default)]
            last_id: Option<String>,
        }
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let url = match &after {
                Some(a) => format!("{path}?limit={PAGE}&after={}", encode(a)),
                None => format!("{path}?limit={PAGE}"),
            };
            let page: Page<T> = self.get(&url)?;
            out.extend(page.data);
            match page.last_id {
                // A cursor that does not move would loop for ever: stop there.
                Some(last) if page.has_more && after.as_deref() != Some(&last) => after = Some(last),
                _ => return Ok(out),
            }
        }
    }

    /// The organisation's projects' ids.
    fn project_ids(&self) -> Result<BTreeSet<String>, WorkspaceError> {
        #[derive(Deserialize)]
        struct Project {
            id: String,
        }
        Ok(self.list::<Project>(PROJECTS)?.into_iter().map(|p| p.id).collect())
    }

    /// One scope's spend limit and alerts; an unknown project reads as empty.
    fn read_scope(&self, item: &str, money: &Money) -> Result<Scope, WorkspaceError> {
        #[derive(Deserialize)]
        struct SpendLimit {
            currency: String,
            threshold_amount: u64,
        }
        #[derive(Deserialize, Default)]
        struct Channel {
            #[serde(default)]
            recipients: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Alert {
            id: String,
            currency: String,
            threshold_amount: u64,
            #[serde(default)]
            notification_channel: Option<Channel>,
        }
        let Some(base) = scope_path(item) else { return Ok(Scope::default()) };
        let currency = |c: &str| {
            if c.eq_ignore_ascii_case(&money.currency) {
                Ok(())
            } else {
                Err(protocol(format!(
                    "{item} has an amount in `{c}`, and the policies declare `{}`",
                    money.currency
                )))
            }
        };
        let limit_cents = match self.get::<SpendLimit>(&format!("{base}/spend_limit")) {
            Ok(l) => {
                currency(&l.currency)?;
                Some(l.threshold_amount)
            }
            Err(WorkspaceError::Rejected { status: 404, .. }) => None,
            Err(e) => return Err(e),
        };
        let alerts = match self.list::<Alert>(&format!("{base}/spend_alerts")) {
            Ok(a) => a,
            Err(WorkspaceError::Rejected { status: 404, .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for a in alerts {
            currency(&a.currency)?;
            let recipients = a.notification_channel.unwrap_or_default().recipients;
            out.push(LiveAlert { id: a.id, cents: a.threshold_amount, recipients });
        }
        Ok(Scope { limit_cents, alerts: out })
    }

    /// The audit log, oldest first.
    fn audit(&self) -> Result<Vec<Entry>, WorkspaceError> {
        git_refs::read_audit(&lock(&self.client.repo), AUDIT_REF)
    }

    /// Appends entries to the audit, as one commit on [`AUDIT_REF`].
    fn append(&self, entries: &[Entry]) -> Result<(), WorkspaceError> {
        if entries.is_empty() || self.client.dry_run {
            return Ok(());
        }
        let message =
            format!("budgit audit: {} {} at {}", entries[0].action, entries[0].item, entries[0].commit);
        git_refs::append_audit(&lock(&self.client.repo), AUDIT_REF, entries, &message)
    }

    /// The last write per item that still stands (removed items absent), by `actor` when
    /// given, and the intents no outcome followed.
    fn replay(entries: &[Entry], actor: Option<&str>) -> (BTreeMap<String, Entry>, BTreeMap<String, Entry>) {
        // A handful of scopes: owned copies keep the callers simple.
        let owned =
            |m: BTreeMap<&str, &Entry>| m.into_iter().map(|(k, e)| (k.to_owned(), e.clone())).collect();
        let (last, pending) = git_refs::replay(entries, actor, SET, REMOVE);
        (owned(last), owned(pending))
    }

    /// Settles the open intents of `items` against the scopes just read (`live`),
    /// adopting the alerts they created into `alert_keys`, and writes the outcomes.
    fn settle_open(
        &self,
        pending: &BTreeMap<String, Entry>,
        live: &BTreeMap<String, Scope>,
        alert_keys: &mut BTreeMap<String, String>,
    ) -> Result<Vec<Entry>, WorkspaceError> {
        let mut settled = Vec::new();
        for (item, intent) in pending {
            let Some(scope) = live.get(item) else { continue };
            settled.push(settle(intent, scope, alert_keys));
        }
        self.append_each(&settled)?;
        Ok(settled)
    }

    /// Appends each entry as its own commit (so each names its item), or keeps them
    /// for this run's reads when a dry run writes nothing.
    fn append_each(&self, entries: &[Entry]) -> Result<(), WorkspaceError> {
        if self.client.dry_run {
            lock(&self.cache).unwritten.extend(entries.iter().cloned());
            return Ok(());
        }
        for e in entries {
            self.append(std::slice::from_ref(e))?;
        }
        Ok(())
    }
}

/// Alert id → level key for the alerts budgit holds, from the audit: each item's last
/// outcome that says which alerts stand (a set or a lapsed intent; a removal clears them).
fn known_alerts(entries: &[Entry]) -> BTreeMap<String, String> {
    let mut per_item: BTreeMap<&str, &BTreeMap<String, String>> = BTreeMap::new();
    let none = BTreeMap::new();
    for e in entries {
        match e.action.as_str() {
            // A lapsed intent with no alert named (an older entry, or a scope with no
            // alert of budgit's left) says nothing new about the alerts.
            SET | LAPSED if e.action == SET || !e.alerts.is_empty() => {
                per_item.insert(&e.item, &e.alerts);
            }
            REMOVE => {
                per_item.insert(&e.item, &none);
            }
            _ => {}
        }
    }
    per_item.values().flat_map(|m| m.iter().map(|(key, id)| (id.clone(), key.clone()))).collect()
}

/// The outcome of an intent, from the scope as OpenAI holds it now: each planned write
/// is checked (a limit at the amount, or gone; an alert at the amount, or gone; a
/// created alert budgit does not know, at the amount with the intent's recipients,
/// adopted as its level). The calls that landed are the outcome's calls.
fn settle(intent: &Entry, scope: &Scope, alert_keys: &mut BTreeMap<String, String>) -> Entry {
    let mut landed = Vec::new();
    let mut all = true;
    for w in &intent.writes {
        let (method, path) = w.call.split_once(' ').unwrap_or((w.call.as_str(), ""));
        let ok = match (method, path.contains("/spend_alerts"), &w.alert) {
            ("POST", false, _) => scope.limit_cents.is_some() && scope.limit_cents == w.amount,
            ("DELETE", false, _) => scope.limit_cents.is_none(),
            ("DELETE", true, Some(id)) => !scope.alerts.iter().any(|a| &a.id == id),
            ("POST", true, Some(id)) => scope.alerts.iter().any(|a| &a.id == id && Some(a.cents) == w.amount),
            ("POST", true, None) => {
                let made = scope.alerts.iter().find(|a| {
                    !alert_keys.contains_key(&a.id)
                        && Some(a.cents) == w.amount
                        && same_people(&a.recipients, &intent.recipients)
                });
                match (made, &w.key) {
                    (Some(a), Some(key)) => {
                        alert_keys.insert(a.id.clone(), key.clone());
                        true
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if ok {
            landed.push(w.call.clone());
        } else {
            all = false;
        }
    }
    let action = git_refs::settled_action(all, intent.limit.is_none(), SET, REMOVE);
    Entry {
        action: action.to_string(),
        alerts: scope
            .alerts
            .iter()
            .filter_map(|a| alert_keys.get(&a.id).map(|k| (k.clone(), a.id.clone())))
            .collect(),
        calls: landed,
        writes: Vec::new(),
        recipients: Vec::new(),
        recovered: true,
        at: now_rfc3339(),
        ..intent.clone()
    }
}

/// The same addresses, in any order and case.
fn same_people(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| v.iter().map(|e| e.trim().to_ascii_lowercase()).collect::<BTreeSet<_>>();
    norm(a) == norm(b)
}

/// One planned vendor call, and what it does to the scope's alerts.
struct Op {
    call: VendorCall,
    /// The alert level key a created or updated alert holds (its id comes with the answer).
    alert_key: Option<String>,
    /// The alert an update or delete addresses.
    alert_id: Option<String>,
}

fn money_body(cents: u64) -> Value {
    json!({ "currency": OPENAI_CURRENCY, "interval": "month", "threshold_amount": cents })
}

fn cents(target: &Declared, credits: Credits, what: &str) -> Result<u64, WorkspaceError> {
    target.money.to_minor(credits).map_err(|e| WorkspaceError::Rejected {
        status: 400,
        code: Code::VendorNotRepresentable.as_str().into(),
        message: format!("{what}: {e}"),
    })
}

/// The call that deletes one alert of the scope at `base`.
fn delete_alert(base: &str, a: &LiveAlert) -> Op {
    Op {
        call: VendorCall {
            method: "DELETE",
            path: format!("{base}/spend_alerts/{}", encode(&a.id)),
            body: None,
        },
        alert_key: None,
        alert_id: Some(a.id.clone()),
    }
}

/// In a scope budgit never wrote, alerts set by hand at exactly a wanted level's
/// amount are adopted as that level (one alert per level), as its spend limit is:
/// the policies say what is already there (`budgit import` writes such policies),
/// so the first run has nothing to write, and the next write records them as budgit's.
fn adopt_alerts(scope: &Scope, want: &Limit, target: &Declared, alert_keys: &mut BTreeMap<String, String>) {
    let mut free: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (key, credits) in &want.products {
        if let Ok(cents) = cents(target, *credits, key) {
            free.entry(cents).or_default().push(key.as_str());
        }
    }
    for a in &scope.alerts {
        if alert_keys.contains_key(&a.id) {
            continue;
        }
        if let Some(key) = free.get_mut(&a.cents).and_then(|keys| (!keys.is_empty()).then(|| keys.remove(0)))
        {
            alert_keys.insert(a.id.clone(), key.to_string());
        }
    }
}

/// The calls that make a scope hold `want`: its spend limit, then its alerts.
fn set_ops(
    item: &str,
    want: &Limit,
    live: &Scope,
    alert_keys: &BTreeMap<String, String>,
    target: &Declared,
) -> Result<Vec<Op>, WorkspaceError> {
    let base = scope_path(item).ok_or_else(|| protocol(format!("`{item}` is not an OpenAI scope")))?;
    let mut ops = Vec::new();
    let limit = cents(target, want.credits, item)?;
    if live.limit_cents != Some(limit) {
        ops.push(Op {
            call: VendorCall {
                method: "POST",
                path: format!("{base}/spend_limit"),
                body: Some(money_body(limit)),
            },
            alert_key: None,
            alert_id: None,
        });
    }
    let alert_body = |cents: u64| {
        let mut body = money_body(cents);
        body["notification_channel"] = json!({ "type": "email", "recipients": target.recipients });
        body
    };
    // The alerts budgit created, by key; the rest were set by hand and are not wanted.
    let mut ours: BTreeMap<&str, &LiveAlert> = BTreeMap::new();
    let mut stray = Vec::new();
    for a in &live.alerts {
        match alert_keys.get(&a.id) {
            Some(key) if want.products.contains_key(key) && !ours.contains_key(key.as_str()) => {
                ours.insert(key.as_str(), a);
            }
            _ => stray.push(a),
        }
    }
    for (key, credits) in &want.products {
        let amount = cents(target, *credits, &format!("{item} {key}"))?;
        match ours.get(key.as_str()) {
            Some(a) if a.cents == amount => {}
            Some(a) => ops.push(Op {
                call: VendorCall {
                    method: "POST",
                    path: format!("{base}/spend_alerts/{}", encode(&a.id)),
                    body: Some(alert_body(amount)),
                },
                alert_key: Some(key.clone()),
                alert_id: Some(a.id.clone()),
            }),
            None => ops.push(Op {
                call: VendorCall {
                    method: "POST",
                    path: format!("{base}/spend_alerts"),
                    body: Some(alert_body(amount)),
                },
                alert_key: Some(key.clone()),
                alert_id: None,
            }),
        }
    }
    for a in stray {
        ops.push(delete_alert(&base, a));
    }
    Ok(ops)
}

/// The calls that remove what budgit holds in a scope policy no longer wants: its
/// spend limit and the alerts it created (alerts set by hand there are left alone).
fn remove_ops(
    item: &str,
    live: &Scope,
    alert_keys: &BTreeMap<String, String>,
) -> Result<Vec<Op>, WorkspaceError> {
    let base = scope_path(item).ok_or_else(|| protocol(format!("`{item}` is not an OpenAI scope")))?;
    let mut ops = Vec::new();
    if live.limit_cents.is_some() {
        ops.push(Op {
            call: VendorCall { method: "DELETE", path: format!("{base}/spend_limit"), body: None },
            alert_key: None,
            alert_id: None,
        });
    }
    for a in live.alerts.iter().filter(|a| alert_keys.contains_key(&a.id)) {
        ops.push(delete_alert(&base, a));
    }
    Ok(ops)
}

impl Target for OpenAiWorkspace {
    fn users(&self) -> Result<Vec<UserRecord>, WorkspaceError> {
        #[derive(Deserialize)]
        struct User {
            email: String,
        }
        let mut emails = BTreeSet::new();
        for u in self.list::<User>(USERS)? {
            // An address the policies could never name is still counted: keep it as written.
            let email = crate::identity::canonical_email(&u.email).map(|e| e.into_owned()).unwrap_or(u.email);
            emails.insert(email);
        }
        Ok(emails.into_iter().map(|email| UserRecord { email, attributes: serde_json::Map::new() }).collect())
    }

    fn limits(&self) -> Result<Vec<AppliedLimit>, WorkspaceError> {
        let mut entries = self.audit()?;
        let (managed, pending) = OpenAiWorkspace::replay(&entries, None);
        let (target, wanted) = {
            let cache = lock(&self.cache);
            (cache.target.clone().ok_or_else(no_target)?, cache.wanted.clone())
        };
        // Scopes the policies want, scopes budgit wrote that they may no longer want,
        // and scopes a killed run left an intent on.
        let items: BTreeSet<String> =
            wanted.keys().chain(managed.keys()).chain(pending.keys()).cloned().collect();
        let mut alert_keys = known_alerts(&entries);
        let mut live = BTreeMap::new();
        for item in items {
            let scope = self.read_scope(&item, &target.money)?;
            live.insert(item, scope);
        }
        // Finish what a killed run started before reading anything as drift.
        entries.extend(self.settle_open(&pending, &live, &mut alert_keys)?);
        let (managed, _) = OpenAiWorkspace::replay(&entries, None);
        let mut out = Vec::new();
        for (item, scope) in &live {
            if let (None, Some(want)) = (managed.get(item), wanted.get(item)) {
                adopt_alerts(scope, &want.limit, &target, &mut alert_keys);
            }
            if scope.limit_cents.is_none() && scope.alerts.is_empty() {
                continue;
            }
            // No spend limit, or one that is no exact number of credits, reads as the
            // largest limit: either way it differs from what policy wants, so it is drift.
            let credits = scope
                .limit_cents
                .and_then(|c| target.money.from_minor(&c.to_string()).ok())
                .unwrap_or(Credits::MAX);
            let mut limit = Limit { credits, ..Limit::default() };
            for a in &scope.alerts {
                let key = alert_keys.get(&a.id).cloned().unwrap_or_else(|| format!("alert {}", a.id));
                let value = target.money.from_minor(&a.cents.to_string()).unwrap_or(Credits::MAX);
                limit.products.insert(key, value);
            }
            let last = managed.get(item);
            let ours = last.filter(|l| l.limit.as_ref() == Some(&limit));
            // Set by hand before budgit wrote the scope, at exactly the wanted value:
            // applied as it stands, with the deciding document (nothing to write).
            let already = wanted.get(item).filter(|w| last.is_none() && w.limit == limit);
            out.push(AppliedLimit {
                user: item.clone(),
                group: ours.and_then(|l| l.group.clone()).or_else(|| already.and_then(|w| w.group.clone())),
                source: ours
                    .and_then(|l| l.source.clone())
                    .or_else(|| already.and_then(|w| w.source.clone())),
                limit,
                commit: ours.map(|l| l.commit.clone()),
            });
        }
        let mut cache = lock(&self.cache);
        cache.live = live;
        cache.alert_keys = alert_keys;
        Ok(out)
    }

    fn pools(&self) -> Result<BTreeMap<String, Credits>, WorkspaceError> {
        // Pools are project items here (see `OpenAiDesired`), not pools.
        Ok(BTreeMap::new())
    }

    fn last_applied(&self, actor: &str) -> Result<BTreeMap<String, LastApplied>, WorkspaceError> {
        let mut entries = self.audit()?;
        entries.extend(lock(&self.cache).unwritten.iter().cloned());
        Ok(OpenAiWorkspace::replay(&entries, Some(actor))
            .0
            .into_iter()
            .filter_map(|(item, e)| {
                let limit = e.limit?;
                Some((
                    item,
                    LastApplied { limit, commit: Some(e.commit), source_kind: e.source.map(|s| s.kind) },
                ))
            })
            .collect())
    }

    fn apply(&self, batch: &Batch) -> Result<BatchResult, WorkspaceError> {
        if let Some(pool) = batch.pools.first() {
            return Err(WorkspaceError::Rejected {
                status: 400,
                code: Code::VendorUnsupportedPool.as_str().into(),
                message: format!(
                    "`{OPENAI}` holds a pool as a project's limit, not as a pool (`{}`)",
                    pool.group
                ),
            });
        }
        let target = lock(&self.cache).target.clone().ok_or_else(no_target)?;
        // A call of an earlier attempt that failed without an answer may have landed:
        // settle that attempt's intent against the scope read again, then plan from it.
        let (_, pending) = OpenAiWorkspace::replay(&self.audit()?, None);
        let touched: BTreeSet<&String> = batch.limits.iter().map(|s| &s.user).chain(&batch.remove).collect();
        let pending: BTreeMap<String, Entry> =
            pending.into_iter().filter(|(item, _)| touched.contains(item)).collect();
        if !pending.is_empty() {
            let mut reread = BTreeMap::new();
            for item in pending.keys() {
                reread.insert(item.clone(), self.read_scope(item, &target.money)?);
            }
            let mut keys = lock(&self.cache).alert_keys.clone();
            self.settle_open(&pending, &reread, &mut keys)?;
            let mut cache = lock(&self.cache);
            cache.alert_keys = keys;
            cache.live.extend(reread);
        }
        let alert_keys = lock(&self.cache).alert_keys.clone();
        let base = |action: &str, item: &str| Entry {
            action: action.to_string(),
            item: item.to_string(),
            limit: None,
            alerts: BTreeMap::new(),
            calls: Vec::new(),
            group: None,
            source: None,
            writes: Vec::new(),
            recipients: Vec::new(),
            commit: batch.commit.clone(),
            plan_digest: batch.plan_digest.clone(),
            actor: batch.actor.clone(),
            at: now_rfc3339(),
            recovered: false,
        };
        let mut statuses: Vec<(String, ItemStatus)> = Vec::new();
        // Every write is planned (and refused, when it cannot be made) before the first call.
        let mut plans: Vec<(Entry, Option<&LimitSet>, Vec<Op>)> = Vec::new();
        for set in &batch.limits {
            let live = lock(&self.cache).live.get(&set.user).cloned().unwrap_or_default();
            let ops = set_ops(&set.user, &set.limit, &live, &alert_keys, &target)?;
            let status = if ops.is_empty() {
                ItemStatus::Unchanged
            } else if live == Scope::default() {
                ItemStatus::Created
            } else {
                ItemStatus::Updated
            };
            statuses.push((set.user.clone(), status));
            let mut e = base(SET, &set.user);
            e.limit = Some(set.limit.clone());
            e.group = set.group.clone();
            e.source = set.source.clone();
            plans.push((e, Some(set), ops));
        }
        for item in &batch.remove {
            let live = lock(&self.cache).live.get(item).cloned().unwrap_or_default();
            let ops = remove_ops(item, &live, &alert_keys)?;
            statuses.push((
                item.clone(),
                if ops.is_empty() { ItemStatus::Unchanged } else { ItemStatus::Removed },
            ));
            plans.push((base(REMOVE, item), None, ops));
        }
        for (mut entry, set, ops) in plans {
            if ops.is_empty() && set.is_none() {
                continue;
            }
            let calls: Vec<String> =
                ops.iter().map(|o| format!("{} {}", o.call.method, o.call.path)).collect();
            if ops.is_empty() {
                // Live already holds it: record that budgit owns it, with its alerts, once.
                let live = lock(&self.cache).live.get(&entry.item).cloned().unwrap_or_default();
                let same = OpenAiWorkspace::replay(&self.audit()?, None)
                    .0
                    .get(&entry.item)
                    .is_some_and(|l| l.limit == entry.limit);
                if same {
                    continue;
                }
                entry.alerts = live
                    .alerts
                    .iter()
                    .filter_map(|a| alert_keys.get(&a.id).map(|k| (k.clone(), a.id.clone())))
                    .collect();
                self.append(&[entry])?;
                continue;
            }
            let writes = ops
                .iter()
                .map(|o| Write {
                    call: format!("{} {}", o.call.method, o.call.path),
                    amount: o.call.body.as_ref().and_then(|b| b["threshold_amount"].as_u64()),
                    key: o.alert_key.clone(),
                    alert: o.alert_id.clone(),
                })
                .collect();
            self.append(&[Entry {
                action: INTENT.into(),
                calls: calls.clone(),
                writes,
                recipients: target.recipients.clone(),
                ..entry.clone()
            }])?;
            let mut failure = None;
            let mut done = Vec::new();
            for op in &ops {
                let answer = match self.send(&op.call) {
                    // Already gone: the removal is done.
                    Err(WorkspaceError::Rejected { status: 404, .. }) if op.call.method == "DELETE" => {
                        Ok(Value::Null)
                    }
                    other => other,
                };
                match answer {
                    Ok(value) => {
                        let mut cache = lock(&self.cache);
                        let scope = cache.live.entry(entry.item.clone()).or_default();
                        apply_to_scope(scope, op, &value);
                        if let (Some(key), Some(id)) =
                            (&op.alert_key, value.get("id").and_then(Value::as_str).map(str::to_string))
                        {
                            cache.alert_keys.insert(id, key.clone());
                        }
                        done.push(format!("{} {}", op.call.method, op.call.path));
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                // What was written stays in the vendor and the intent stays open: the
                // failed call may have landed without an answer, so the next attempt
                // (or run) reads the scope again and settles the intent from it.
                return Err(e);
            }
            let cache = lock(&self.cache);
            let live = cache.live.get(&entry.item).cloned().unwrap_or_default();
            entry.alerts = live
                .alerts
                .iter()
                .filter_map(|a| cache.alert_keys.get(&a.id).map(|k| (k.clone(), a.id.clone())))
                .collect();
            drop(cache);
            entry.calls = done;
            entry.at = now_rfc3339();
            self.append(&[entry])?;
        }
        Ok(BatchResult { users: statuses, pools: Vec::new() })
    }

    fn acquire_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<Lease, WorkspaceError> {
        git_refs::acquire_lease(&lock(&self.client.repo), LEASE_REF_PREFIX, name, holder, ttl)
    }

    fn release_lease(&self, name: &str, holder: &str) -> Result<(), WorkspaceError> {
        git_refs::release_lease(&lock(&self.client.repo), LEASE_REF_PREFIX, name, holder)
    }
}

/// The cached scope after a call succeeded, so a retried batch plans only what is left.
fn apply_to_scope(scope: &mut Scope, op: &Op, answer: &Value) {
    let amount = op.call.body.as_ref().and_then(|b| b["threshold_amount"].as_u64());
    let is_alert = op.call.path.contains("/spend_alerts");
    match (op.call.method, is_alert) {
        ("POST", false) => scope.limit_cents = amount,
        ("DELETE", false) => scope.limit_cents = None,
        ("DELETE", true) => scope.alerts.retain(|a| Some(&a.id) != op.alert_id.as_ref()),
        (_, true) => {
            let id = op
                .alert_id
                .clone()
                .or_else(|| answer.get("id").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            let recipients = op
                .call
                .body
                .as_ref()
                .and_then(|b| b["notification_channel"]["recipients"].as_array())
                .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            scope.alerts.retain(|a| a.id != id);
            scope.alerts.push(LiveAlert { id, cents: amount.unwrap_or_default(), recipients });
        }
        _ => {}
    }
}

/// The desired state for the target: one item for the organisation and one per project.
///
/// The policies at the ref are validated and resolved as for any target (the
/// people are the organisation's members, or `--directory`); then the
/// organisation's limit is `vendors.openai.reconcile.org_limit`, or every
/// person's limit added up, each group's pool becomes its project's limit, and
/// the Workspace's alert levels become alerts at those percentages of each.
/// `validate` has already refused what the target cannot express.
pub struct OpenAiDesired<'a> {
    /// The policies at the approved ref.
    pub git: GitDesired,
    /// The adapter the run writes with.
    pub workspace: &'a OpenAiWorkspace,
}

impl DesiredState for OpenAiDesired<'_> {
    fn desired(&self, workspace: &dyn Target) -> Result<Desired, ReconcileError> {
        let people = self.git.desired(workspace)?;
        let commit = people.commit.clone();
        let refuse =
            |first: String| ReconcileError::InvalidPolicy { commit: commit.clone(), errors: 1, first };
        let git = GitRepo::discover(&self.git.policies).or_else(|_| GitRepo::discover(Path::new(".")))?;
        let dir = git.repo_path(&self.git.policies)?;
        let tree = git.read_policies(&commit, &dir)?;
        let (policies, _) = crate::load::load_sources(tree.sources);
        let ws = policies.workspace().ok_or_else(|| refuse("the policies have no Workspace".into()))?;
        let declared = ws.doc.vendors.get(&Vendor::OpenAi);
        let Some((declared, settings)) = declared.and_then(|d| d.reconcile.as_ref().map(|r| (d, r))) else {
            return Err(refuse(format!(
                "the Workspace declares no `vendors.{OPENAI}.reconcile`: say how credits map to dollars and who gets the alerts [vendor/bad-money]"
            )));
        };
        let money = Money::new(declared).map_err(|e| refuse(format!("{e} [vendor/bad-money]")))?;
        let target = Declared { money, recipients: settings.alert_recipients.clone() };
        let scope_limit = |credits: Credits, what: &str| -> Result<Limit, ReconcileError> {
            target
                .money
                .to_minor(credits)
                .map_err(|e| refuse(format!("{what}: {e} [vendor/not-representable]")))?;
            let mut limit = Limit { credits, ..Limit::default() };
            for &level in &ws.doc.alerts {
                let at = percent_of(credits, level)
                    .filter(|c| target.money.to_minor(*c).is_ok())
                    .ok_or_else(|| {
                        refuse(format!(
                            "{what}: the {level}% alert of {credits} credits is no whole number of cents [vendor/not-representable]"
                        ))
                    })?;
                limit.products.insert(level_key(level), at);
            }
            Ok(limit)
        };
        let exposure = people.limits.values().fold(Credits::ZERO, |sum, l| sum + l.limit.credits);
        let org = settings.org_limit.unwrap_or(exposure);
        let at = |loc: crate::diag::Location, kind: &str, name: &str| AppliedSource {
            kind: kind.to_string(),
            name: name.to_string(),
            file: loc.file.to_string(),
            line: loc.line,
            commit: None,
        };
        let mut limits = BTreeMap::new();
        let what = if settings.org_limit.is_some() { "the organisation limit" } else { "the total exposure" };
        limits.insert(
            ORGANIZATION.to_string(),
            LimitSet {
                user: ORGANIZATION.to_string(),
                limit: scope_limit(org, what)?,
                group: None,
                source: Some(at(ws.loc(&format!("/vendors/{OPENAI}/reconcile")), "workspace", &ws.doc.name)),
            },
        );
        let mut projects = Vec::new();
        for g in &policies.groups {
            let project = g.doc.vendors.as_ref().and_then(|v| v.openai.as_ref()).map(|o| o.project.clone());
            let (Some(pool), Some(project)) = (&g.doc.pool, project) else { continue };
            let item = project_item(&project);
            let limit = scope_limit(pool.credits, &format!("group `{}`", g.doc.name))?;
            limits.insert(
                item.clone(),
                LimitSet {
                    user: item,
                    limit,
                    group: Some(g.doc.name.clone()),
                    source: Some(at(g.loc("/pool"), "group", &g.doc.name)),
                },
            );
            projects.push((project, g.doc.name.clone()));
        }
        if !projects.is_empty() {
            let known = self.workspace.project_ids()?;
            if let Some((project, group)) = projects.iter().find(|(p, _)| !known.contains(p)) {
                return Err(refuse(format!(
                    "group `{group}` names project `{project}`, which the organisation does not have [vendor/unknown-project]"
                )));
            }
        }
        let mut cache = lock(&self.workspace.cache);
        cache.wanted = limits.clone();
        cache.target = Some(target);
        Ok(Desired { commit, limits, pools: BTreeMap::new(), settings: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Declared {
        let declared =
            crate::model::VendorMoney { currency: "usd".into(), credit: "0.01".into(), reconcile: None };
        Declared { money: Money::new(&declared).unwrap(), recipients: vec!["f@x.com".into()] }
    }

    fn limit(credits: i64, alerts: &[(&str, i64)]) -> Limit {
        Limit {
            credits: Credits::from_whole(credits),
            products: alerts.iter().map(|(k, v)| (k.to_string(), Credits::from_whole(*v))).collect(),
            models: BTreeMap::new(),
            per_hour: None,
        }
    }

    fn alert(id: &str, cents: u64) -> LiveAlert {
        LiveAlert { id: id.into(), cents, recipients: vec!["f@x.com".into()] }
    }

    fn calls(ops: &[Op]) -> Vec<String> {
        ops.iter().map(|o| format!("{} {}", o.call.method, o.call.path)).collect()
    }

    #[test]
    fn a_scope_gets_exactly_the_calls_it_lacks() {
        let want = limit(5000, &[("alert 50%", 2500), ("alert 80%", 4000)]);
        let empty = set_ops("project proj_a", &want, &Scope::default(), &BTreeMap::new(), &target()).unwrap();
        assert_eq!(
            calls(&empty),
            [
                "POST /organization/projects/proj_a/spend_limit",
                "POST /organization/projects/proj_a/spend_alerts",
                "POST /organization/projects/proj_a/spend_alerts",
            ]
        );
        assert_eq!(empty[0].call.body.as_ref().unwrap()["threshold_amount"], 5000);
        let keys: BTreeMap<String, String> =
            [("al_1".to_string(), "alert 50%".to_string()), ("al_2".into(), "alert 80%".into())].into();
        let live = Scope {
            limit_cents: Some(5000),
            alerts: vec![alert("al_1", 2500), alert("al_2", 3000), alert("al_hand", 100)],
        };
        let ops = set_ops("organization", &want, &live, &keys, &target()).unwrap();
        assert_eq!(
            calls(&ops),
            ["POST /organization/spend_alerts/al_2", "DELETE /organization/spend_alerts/al_hand"]
        );
        let gone = remove_ops("organization", &live, &keys).unwrap();
        assert_eq!(
            calls(&gone),
            [
                "DELETE /organization/spend_limit",
                "DELETE /organization/spend_alerts/al_1",
                "DELETE /organization/spend_alerts/al_2",
            ]
        );
    }

    #[test]
    fn alerts_set_by_hand_at_a_levels_amount_are_adopted_once_each_and_need_no_call() {
        let want = limit(5000, &[("alert 50%", 2500), ("alert 80%", 4000)]);
        let live = Scope {
            limit_cents: Some(5000),
            alerts: vec![alert("al_a", 2500), alert("al_b", 2500), alert("al_c", 4000), alert("al_d", 100)],
        };
        let mut keys = BTreeMap::new();
        adopt_alerts(&live, &want, &target(), &mut keys);
        let expected: BTreeMap<String, String> =
            [("al_a".to_string(), "alert 50%".to_string()), ("al_c".into(), "alert 80%".into())].into();
        assert_eq!(keys, expected);
        // the second alert at 50% and the one at no level are not the policy's: deleted
        let ops = set_ops("organization", &want, &live, &keys, &target()).unwrap();
        assert_eq!(
            calls(&ops),
            ["DELETE /organization/spend_alerts/al_b", "DELETE /organization/spend_alerts/al_d"]
        );
    }

    /// A planned write: call, amount, alert level, alert id.
    type Planned<'a> = (&'a str, Option<u64>, Option<&'a str>, Option<&'a str>);

    fn intent(item: &str, writes: &[Planned<'_>]) -> Entry {
        Entry {
            action: INTENT.into(),
            item: item.into(),
            limit: Some(limit(5000, &[("alert 50%", 2500), ("alert 80%", 4000)])),
            alerts: BTreeMap::new(),
            calls: writes.iter().map(|w| w.0.to_string()).collect(),
            writes: writes
                .iter()
                .map(|(call, amount, key, alert)| Write {
                    call: call.to_string(),
                    amount: *amount,
                    key: key.map(str::to_string),
                    alert: alert.map(str::to_string),
                })
                .collect(),
            recipients: vec!["F@x.com".into()],
            group: None,
            source: None,
            commit: "c1".into(),
            plan_digest: String::new(),
            actor: "budgit".into(),
            at: String::new(),
            recovered: false,
        }
    }

    #[test]
    fn an_open_intent_is_settled_call_by_call_and_adopts_the_alert_it_created() {
        let open = intent(
            "organization",
            &[
                ("POST /organization/spend_limit", Some(5000), None, None),
                ("POST /organization/spend_alerts/al_1", Some(2500), Some("alert 50%"), Some("al_1")),
                ("POST /organization/spend_alerts", Some(4000), Some("alert 80%"), None),
                ("DELETE /organization/spend_alerts/al_hand", None, None, Some("al_hand")),
            ],
        );
        let mut keys: BTreeMap<String, String> = [("al_1".to_string(), "alert 50%".to_string())].into();
        // the limit and the update landed; an alert at 4000 for someone else is not
        // the one created; the creation and the deletion did not land
        let mut other = alert("al_x", 4000);
        other.recipients = vec!["someone@x.com".into()];
        let mut live = Scope {
            limit_cents: Some(5000),
            alerts: vec![alert("al_1", 2500), other, alert("al_hand", 100)],
        };
        let lapsed = settle(&open, &live, &mut keys);
        assert_eq!(lapsed.action, LAPSED);
        assert!(lapsed.recovered);
        assert_eq!(lapsed.calls, ["POST /organization/spend_limit", "POST /organization/spend_alerts/al_1"]);
        assert!(!keys.contains_key("al_x"));

        // now the creation and the deletion are there too: the intent is the outcome,
        // the new alert (its id never heard) adopted as its level
        live.alerts = vec![alert("al_1", 2500), alert("al_new", 4000)];
        let set = settle(&open, &live, &mut keys);
        assert_eq!(set.action, SET);
        assert_eq!(set.calls, open.calls);
        assert_eq!(keys.get("al_new").map(String::as_str), Some("alert 80%"));
        let held: BTreeMap<String, String> =
            [("alert 50%".to_string(), "al_1".to_string()), ("alert 80%".into(), "al_new".into())].into();
        assert_eq!(set.alerts, held);
        // and the audit replayed knows those alerts, and no open intent
        let entries = vec![open.clone(), set];
        assert_eq!(known_alerts(&entries).len(), 2);
        let (last, pending) = OpenAiWorkspace::replay(&entries, None);
        assert!(pending.is_empty());
        assert_eq!(last["organization"].commit, "c1");
        let (_, pending) = OpenAiWorkspace::replay(&entries[..1], None);
        assert_eq!(pending.len(), 1);
    }

    #[test]
    fn an_amount_that_is_no_whole_cent_is_refused_before_any_call() {
        let want = Limit { credits: "0.5".parse().unwrap(), ..Limit::default() };
        let e = set_ops("organization", &want, &Scope::default(), &BTreeMap::new(), &target()).err().unwrap();
        assert!(
            matches!(e, WorkspaceError::Rejected { ref code, .. } if code == Code::VendorNotRepresentable.as_str()),
            "{e}"
        );
    }
}
