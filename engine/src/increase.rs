//! Vendor spend-limit increase requests round-tripped through budgit's credit requests.
//!
//! A member blocked by their Claude Enterprise limit asks for more in the vendor's
//! console. budgit owns the limit, so the answer has to come from policy:
//!
//! 1. each pending vendor request becomes a credit request in `budgit serve`, its
//!    vendor id in `context` (a rerun finds it there and creates nothing twice) with
//!    the member's spend summary as text for the reviewer;
//! 2. the reviewer proposes it (an Override on a branch) or declines it there;
//! 3. once the Override is merged into the approved ref and the reconciler has
//!    applied it (budgit's audit shows a limit written from a commit holding the
//!    Override file, and the vendor shows that amount live), the vendor request is
//!    approved at the applied amount; a declined credit request is denied at the
//!    vendor, the reason kept in budgit's audit.
//!
//! Vendor writes go through [`ClaudeWorkspace::decide_increase`] (an intent before,
//! the outcome after); [`ClaudeWorkspace::recover_increases`] first settles what a
//! killed run left open, so a rerun never writes twice.
//!
//! A sync holds the lease [`LEASE`] for its whole run: the git ref lease the vendor
//! targets' reconciler uses (`refs/budgit/leases/…` in the policy repository), so two
//! syncs started together cannot both read "no credit request yet" for the same vendor
//! request and each create one. The second fails at once, naming the holder.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::Credits;
use crate::reconcile::ReconcileError;
use crate::vendor::Money;
use crate::workspace::claude::{
    ClaudeWorkspace, IncreaseDecision, IncreaseRequest, IncreaseWrite, SpendSummary,
};
use crate::workspace::http::{CreditRequest, HttpWorkspace};
use crate::workspace::{Target, WorkspaceError};

/// The `context.source` of credit requests made from vendor requests.
pub const SOURCE: &str = "claude-enterprise";

/// The lease a sync holds while it runs (a ref under `refs/budgit/leases/`).
pub const LEASE: &str = "budgit-requests-sync";

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Credits each new credit request asks for (the vendor's requests carry no amount).
    pub add: Credits,
    /// Days each new credit request asks for.
    pub days: u32,
    /// The approved revision: an Override counts as merged when its file is in this tree.
    pub rev: String,
    /// Who decides, in the audit.
    pub actor: String,
    /// Ask the vendor not to email the member.
    pub suppress_notification: bool,
    /// Write nothing; report what would be done.
    pub dry_run: bool,
    /// This sync's name on the lease; a sync restarted under the same name takes it back at once.
    pub holder: String,
    /// How long the lease lasts without renewal (renewed as the sync goes).
    pub lease_ttl: Duration,
}

/// A credit request made from a vendor request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Created {
    /// The vendor's request.
    pub vendor_request: String,
    /// The member.
    pub user: String,
    /// The credit request's id (`None` in a dry run).
    pub request: Option<i64>,
    /// The context text the reviewer reads.
    pub text: String,
}

/// A vendor request approved or denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Decided {
    /// The vendor's request.
    pub vendor_request: String,
    /// The member.
    pub user: String,
    /// The credit request that decided it.
    pub request: i64,
    /// Approved amount in minor units (approvals only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// The approved limit in credits (approvals only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credits: Option<Credits>,
    /// The decline reason (denials only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A vendor request still waiting on budgit, and on what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Waiting {
    /// The vendor's request.
    pub vendor_request: String,
    /// The member.
    pub user: String,
    /// The credit request.
    pub request: i64,
    /// What it waits for.
    pub on: String,
}

/// A vendor write that failed; retried on the next run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Failed {
    /// The vendor's request.
    pub vendor_request: String,
    /// The error.
    pub error: String,
}

/// What a sync did.
///
/// `budgit requests sync --format json` prints this (`schemas/requests-sync-output.schema.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SyncReport {
    /// The policy commit read.
    pub commit: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Decisions a killed run left open, settled first: (vendor request, outcome).
    pub recovered: Vec<(String, String)>,
    /// Credit requests made.
    pub created: Vec<Created>,
    /// Vendor requests approved.
    pub approved: Vec<Decided>,
    /// Vendor requests denied.
    pub denied: Vec<Decided>,
    /// Vendor requests waiting on review, a merge or the reconciler.
    pub waiting: Vec<Waiting>,
    /// Pending vendor requests from no member budgit can name (an API key asked, or no email).
    pub skipped: Vec<String>,
    /// Vendor writes that failed.
    pub failed: Vec<Failed>,
}

/// Why a sync could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The policies at the ref could not be read or do not declare the target.
    #[error(transparent)]
    Policy(#[from] ReconcileError),
    /// Another sync holds the lease: nothing was done.
    #[error("another sync is running: lease `{name}` is held by `{holder}`{until}; nothing done")]
    LeaseHeld {
        /// The lease.
        name: String,
        /// Who holds it.
        holder: String,
        /// ` until …` when the holder said.
        until: String,
    },
    /// The vendor or the workspace failed.
    #[error(transparent)]
    Workspace(WorkspaceError),
}

impl From<WorkspaceError> for SyncError {
    fn from(e: WorkspaceError) -> Self {
        match e {
            WorkspaceError::LeaseHeld { name, holder, expires_at } => SyncError::LeaseHeld {
                name,
                holder,
                until: expires_at.map(|t| format!(" until {t}")).unwrap_or_default(),
            },
            other => SyncError::Workspace(other),
        }
    }
}

/// The sync's hold on [`LEASE`]: renewed when a third of its time has passed.
struct Held<'a> {
    vendor: &'a ClaudeWorkspace,
    options: &'a SyncOptions,
    renewed: Instant,
}

impl Held<'_> {
    /// Renews the lease before a write if it is due; an error means another sync took it.
    fn renew(&mut self) -> Result<(), SyncError> {
        if self.options.dry_run || self.renewed.elapsed() < self.options.lease_ttl / 3 {
            return Ok(());
        }
        self.vendor.acquire_lease(LEASE, &self.options.holder, self.options.lease_ttl)?;
        self.renewed = Instant::now();
        Ok(())
    }
}

/// `amount` minor units as major units of a currency with `digits` decimals (`450` → `4.50`).
fn major(amount: &str, digits: u32) -> String {
    let Ok(minor) = amount.parse::<Credits>() else { return amount.to_string() };
    let scaled = i128::from(minor.micros());
    let unit = 10i128.pow(digits);
    if scaled % unit != 0 {
        return amount.to_string();
    }
    let major = Credits::from_micros(i64::try_from(scaled / unit).unwrap_or(i64::MAX));
    // whole cents keep their two places, as money is read
    let text = major.to_string();
    match (digits, text.split_once('.')) {
        (0, _) => text,
        (d, None) => format!("{text}.{}", "0".repeat(d as usize)),
        (d, Some((_, frac))) if frac.len() < d as usize => {
            format!("{text}{}", "0".repeat(d as usize - frac.len()))
        }
        _ => text,
    }
}

/// The reviewer's text for a vendor request: who, the period, spend against the limit.
pub fn context_text(email: &str, request: &IncreaseRequest, money: &Money) -> String {
    let Some(s) = &request.summary else {
        return format!("{email} asked Claude Enterprise for a higher {} spend limit", request.period);
    };
    let spent = major(&s.period_to_date_spend, money.digits);
    let limit = match &s.amount {
        Some(a) => {
            let credits = money.from_minor(a).map(|c| format!(" ({c} credits)")).unwrap_or_default();
            format!("{} {}{credits}, from the {} scope", major(a, money.digits), s.currency, s.source)
        }
        None => "no limit".to_string(),
    };
    format!(
        "{email} asked Claude Enterprise for a higher {} spend limit: {spent} {} spent this period of {limit}",
        request.period, s.currency
    )
}

fn summary_json(s: &Option<SpendSummary>) -> Value {
    s.as_ref().map_or(Value::Null, |s| {
        json!({
            "amount": s.amount,
            "currency": s.currency,
            "period_to_date_spend": s.period_to_date_spend,
            "source": s.source,
        })
    })
}

/// The vendor request id a credit request was made from, when it was.
fn vendor_id(r: &CreditRequest) -> Option<&str> {
    let c = r.context.as_ref()?;
    (c.get("source")?.as_str()? == SOURCE).then_some(())?;
    c.get("vendor_request")?.as_str()
}

/// One sync under [`LEASE`]: settle, create, decide. `policies` is the policy
/// directory in the repository the reconciler audits to (and the lease is kept in).
/// A dry run writes nothing, so it takes no lease.
pub fn sync(
    vendor: &ClaudeWorkspace,
    budgit: &HttpWorkspace,
    policies: &Path,
    options: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    if !options.dry_run {
        vendor.acquire_lease(LEASE, &options.holder, options.lease_ttl)?;
    }
    let mut held = Held { vendor, options, renewed: Instant::now() };
    let outcome = sync_held(vendor, budgit, policies, options, &mut held);
    if !options.dry_run {
        // A failed release is harmless: the lease lapses after its TTL.
        let _ = vendor.release_lease(LEASE, &options.holder);
    }
    outcome
}

fn sync_held(
    vendor: &ClaudeWorkspace,
    budgit: &HttpWorkspace,
    policies: &Path,
    options: &SyncOptions,
    held: &mut Held<'_>,
) -> Result<SyncReport, SyncError> {
    let commit = vendor.load_target(policies, &options.rev)?;
    let (money, period) = vendor
        .target()
        .ok_or_else(|| WorkspaceError::Protocol("the target's money and period are not set".into()))?;
    let mut report = SyncReport { commit: commit.clone(), dry_run: options.dry_run, ..SyncReport::default() };
    if !options.dry_run {
        report.recovered = vendor.recover_increases()?;
    }
    let decided = vendor.decided_increases()?;
    let pending = vendor.increase_requests(Some("pending"))?;
    let mut by_vendor: BTreeMap<String, CreditRequest> = BTreeMap::new();
    for r in budgit.credit_requests()? {
        if let Some(id) = vendor_id(&r) {
            // the first one made wins, should two ever exist
            by_vendor.entry(id.to_string()).or_insert(r);
        }
    }
    // oldest first, as reviewers read a queue
    for request in pending.iter().rev() {
        let Some(email) = request.email.clone() else {
            report.skipped.push(request.id.clone());
            continue;
        };
        if decided.contains_key(&request.id) {
            // decided by budgit, and the vendor's list has not caught up
            continue;
        }
        let Some(credit) = by_vendor.get(&request.id) else {
            let text = context_text(&email, request, &money);
            let context = json!({
                "source": SOURCE,
                "vendor_request": request.id,
                "member": request.user_id,
                "period": request.period,
                "requested_at": request.created_at,
                "spend_summary": summary_json(&request.summary),
                "text": text,
            });
            let reason = format!("Claude Enterprise spend-limit increase request {}", request.id);
            let made = if options.dry_run {
                None
            } else {
                held.renew()?;
                Some(budgit.create_credit_request(&email, options.add, options.days, &reason, &context)?.id)
            };
            report.created.push(Created {
                vendor_request: request.id.clone(),
                user: email,
                request: made,
                text,
            });
            continue;
        };
        let wait = |on: String| Waiting {
            vendor_request: request.id.clone(),
            user: email.clone(),
            request: credit.id,
            on,
        };
        let decision = match credit.status.as_str() {
            "declined" => IncreaseDecision::Deny,
            // The service moves a proposed request on by itself (merged, applied, done);
            // the vendor is approved from what the repository and the audit show.
            "proposed" | "merged" | "applied" | "done" => {
                let file = credit.proposal.as_ref().and_then(|p| p.get("file")).and_then(Value::as_str);
                let branch = credit.proposal.as_ref().and_then(|p| p.get("branch")).and_then(Value::as_str);
                let Some(file) = file else {
                    report.waiting.push(wait("a proposal without a file".into()));
                    continue;
                };
                if !vendor.has_file_at(&commit, file)? {
                    let on = format!("`{}` to be merged into `{}`", branch.unwrap_or(file), options.rev);
                    report.waiting.push(wait(on));
                    continue;
                }
                let applied = vendor.applied_by_budgit(&email)?;
                let reconciled = match &applied {
                    Some(a) => {
                        vendor.has_file_at(&a.commit, file)? && a.live.as_deref() == Some(a.amount.as_str())
                    }
                    None => false,
                };
                match applied {
                    Some(a) if reconciled => {
                        IncreaseDecision::Approve { amount: a.amount, period: period.to_string() }
                    }
                    _ => {
                        report.waiting.push(wait("the reconciler to apply the merged override".into()));
                        continue;
                    }
                }
            }
            "pending" => {
                report.waiting.push(wait("review in budgit".into()));
                continue;
            }
            other => {
                report.waiting.push(wait(format!("an override committed for the {other} request")));
                continue;
            }
        };
        let write = IncreaseWrite {
            request: request.clone(),
            budgit_request: credit.id,
            decision: decision.clone(),
            reason: credit.decision_reason.clone(),
            commit: commit.clone(),
            actor: options.actor.clone(),
            suppress_notification: options.suppress_notification,
        };
        held.renew()?;
        let done = if options.dry_run { Ok(request.clone()) } else { vendor.decide_increase(&write) };
        match (done, decision) {
            (Err(e), _) => {
                report.failed.push(Failed { vendor_request: request.id.clone(), error: e.to_string() })
            }
            (Ok(_), IncreaseDecision::Approve { amount, .. }) => report.approved.push(Decided {
                vendor_request: request.id.clone(),
                user: email,
                request: credit.id,
                credits: money.from_minor(&amount).ok(),
                amount: Some(amount),
                reason: None,
            }),
            (Ok(_), IncreaseDecision::Deny) => report.denied.push(Decided {
                vendor_request: request.id.clone(),
                user: email,
                request: credit.id,
                amount: None,
                credits: None,
                reason: credit.decision_reason.clone(),
            }),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_read_as_money() {
        assert_eq!(major("450", 2), "4.50");
        assert_eq!(major("500", 2), "5.00");
        assert_eq!(major("12050.5", 2), "120.505");
        assert_eq!(major("7", 0), "7");
        assert_eq!(major("1234", 3), "1.234");
        assert_eq!(major("not a number", 2), "not a number");
    }
}
