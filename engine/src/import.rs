//! Import: a vendor's current limits as a policy repository, so limits configured by
//! hand in a vendor's console can move to git.
//!
//! Reads through [`Fetch`] (the usage pull's client: retries, timeouts, a key) and
//! writes the YAML of a Workspace and Groups that reproduce what the vendor holds,
//! as far as budgit's model expresses it; what it cannot express is said in
//! [`Imported::notes`] and in a comment at the top of `workspace.yaml`.
//!
//! Claude Enterprise: the effective report (every member, every period) gives each
//! member's limit and where it comes from. The Workspace's period is the period
//! most limits have; its `default` is the organisation-scope limit of that period
//! (or, without one, the amount most members have, the smallest on a tie); every
//! other amount becomes one Group listing its members (`members:`), whether one
//! person or many has it: a vendor limit has no end date, and an Override must
//! have one. Reconciling the result writes nothing: members whose limit is
//! inherited and equal to the default, and members whose own limit equals their
//! group's, already hold what the policies want.
//!
//! OpenAI: what the OpenAI reconcile target writes, read back. The organisation's
//! monthly spend limit becomes `vendors.openai.reconcile.org_limit` (and the
//! Workspace `default`); each project with a monthly limit becomes a Group whose
//! `pool` is that limit and which names the project, its selector matching nobody
//! (who is in a project is not read); the spend alerts become the Workspace's alert
//! levels (the percentages every limit has) and their recipients
//! `alert_recipients`. Alerts at other amounts are listed: the first reconcile
//! deletes them. Reconciling the result writes nothing.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Credits;
use crate::load::yaml::double_quoted;
use crate::model::VendorMoney;
use crate::pull::{Fetch, PullError};
use crate::vendor::{CLAUDE_ENTERPRISE, Money};

/// What an import wrote, before it is written.
#[derive(Debug, Default)]
pub struct Imported {
    /// Files under the policy directory (relative path, YAML text), in order.
    pub files: Vec<(String, String)>,
    /// What could not be carried over, for people.
    pub notes: Vec<String>,
    /// Members (or projects) read.
    pub read: usize,
}

/// Settings of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The Workspace's name.
    pub name: String,
    /// What one credit is worth (decimal text); `None`: one minor unit of the currency.
    pub credit: Option<String>,
}

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The vendor could not be read.
    #[error(transparent)]
    Fetch(#[from] PullError),
    /// The vendor's answer is not what its API documents.
    #[error("`{path}`: {reason}")]
    Protocol {
        /// The path read.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The vendor's limits cannot be written as policies.
    #[error("{0}")]
    Inexpressible(String),
}

fn protocol(path: &str, reason: &str) -> ImportError {
    ImportError::Protocol { path: path.to_string(), reason: reason.to_string() }
}

/// One credit as one minor unit of `currency` (`0.01` for `usd`, `1` for `jpy`).
fn minor_unit(currency: &str) -> Result<String, ImportError> {
    let probe = VendorMoney { currency: currency.to_string(), credit: "1".into(), reconcile: None };
    let money = Money::new(&probe).map_err(|e| ImportError::Inexpressible(e.to_string()))?;
    Ok(match money.digits {
        0 => "1".to_string(),
        d => format!("0.{}1", "0".repeat(d as usize - 1)),
    })
}

fn money(currency: &str, credit: Option<&str>) -> Result<(VendorMoney, Money), ImportError> {
    let currency = currency.to_ascii_lowercase();
    let credit = match credit {
        Some(c) => c.to_string(),
        None => minor_unit(&currency)?,
    };
    let declared = VendorMoney { currency, credit, reconcile: None };
    let checked = Money::new(&declared).map_err(|e| ImportError::Inexpressible(e.to_string()))?;
    Ok((declared, checked))
}

/// A group name for an amount: `limit-500`, `limit-12.5`.
fn group_name(credits: Credits) -> String {
    format!("limit-{credits}")
}

fn workspace_yaml(
    name: &str,
    period: &str,
    default: Credits,
    vendor: &str,
    declared: &VendorMoney,
    notes: &[String],
) -> String {
    let mut out = String::new();
    if !notes.is_empty() {
        out.push_str("# Imported with `budgit import`. Not carried over:\n");
        for n in notes {
            out.push_str(&format!("#   - {}\n", n.replace('\n', " ")));
        }
    }
    out.push_str(&format!(
        "apiVersion: budgit/v1\nkind: Workspace\nname: {}\ntimezone: UTC\nperiod: {period}\n\
         default:\n  credits: {default}\nvendors:\n  {vendor}:\n    currency: {}\n    credit: {}\n",
        double_quoted(name),
        declared.currency,
        double_quoted(&declared.credit),
    ));
    out
}

fn group_yaml(credits: Credits, description: &str, members: &[String], pool: Option<Credits>) -> String {
    let mut out = format!(
        "apiVersion: budgit/v1\nkind: Group\nname: {}\ndescription: {}\n",
        group_name(credits),
        double_quoted(description)
    );
    if members.is_empty() {
        out.push_str("selector: \"true\"\n");
    } else {
        out.push_str("members:\n");
        for m in members {
            out.push_str(&format!("  - {}\n", double_quoted(m)));
        }
    }
    out.push_str(&format!("priority: 10\nlimit:\n  credits: {credits}\n"));
    if let Some(pool) = pool {
        out.push_str(&format!("pool:\n  credits: {pool}\n"));
    }
    out
}

/// Every member of a Claude organisation: id → canonical email.
fn claude_members(fetch: &mut dyn Fetch) -> Result<BTreeMap<String, String>, ImportError> {
    let path = "/v1/organizations/users";
    let mut members = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1000".to_string())];
        if let Some(a) = &after {
            query.push(("after_id", a.clone()));
        }
        let doc = fetch.get(path, &query)?;
        let data =
            doc.get("data").and_then(Value::as_array).ok_or_else(|| protocol(path, "no `data` array"))?;
        for u in data {
            let (Some(id), Some(email)) =
                (u.get("id").and_then(Value::as_str), u.get("email").and_then(Value::as_str))
            else {
                return Err(protocol(path, "a user without `id` or `email`"));
            };
            let email = crate::identity::canonical_email(email)
                .map_err(|e| ImportError::Inexpressible(format!("member `{id}`: {e}")))?
                .into_owned();
            members.insert(id.to_string(), email);
        }
        let more = doc.get("has_more").and_then(Value::as_bool) == Some(true);
        match doc.get("last_id").and_then(Value::as_str) {
            Some(last) if more && after.as_deref() != Some(last) => after = Some(last.to_string()),
            _ if more => return Err(protocol(path, "`has_more` without a new `last_id`")),
            _ => break,
        }
    }
    Ok(members)
}

/// One row of the effective report.
struct Effective {
    email: String,
    period: String,
    amount: Option<String>,
    source: String,
}

fn claude_effective(
    fetch: &mut dyn Fetch,
    members: &BTreeMap<String, String>,
) -> Result<(Vec<Effective>, Option<String>), ImportError> {
    let path = "/v1/organizations/spend_limits/effective";
    let mut rows = Vec::new();
    let mut currency: Option<String> = None;
    let mut page: Option<String> = None;
    loop {
        let mut query = vec![("limit", "1000".to_string())];
        if let Some(p) = &page {
            query.push(("page", p.clone()));
        }
        let doc = fetch.get(path, &query)?;
        let data =
            doc.get("data").and_then(Value::as_array).ok_or_else(|| protocol(path, "no `data` array"))?;
        for row in data {
            let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
            let user_id = text(row.get("scope").and_then(|s| s.get("user_id")))
                .ok_or_else(|| protocol(path, "a row without `scope.user_id`"))?;
            let Some(email) = members.get(&user_id) else { continue };
            let row_currency = text(row.get("currency")).unwrap_or_default();
            match &currency {
                Some(c) if *c != row_currency => {
                    return Err(ImportError::Inexpressible(format!(
                        "the report mixes currencies (`{c}` and `{row_currency}`)"
                    )));
                }
                _ => currency = Some(row_currency),
            }
            rows.push(Effective {
                email: email.clone(),
                period: text(row.get("period")).ok_or_else(|| protocol(path, "a row without `period`"))?,
                amount: text(row.get("amount")),
                source: text(row.get("source").and_then(|s| s.get("type"))).unwrap_or_default(),
            });
        }
        match doc.get("next_page").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            Some(next) if page.as_deref() != Some(next) => page = Some(next.to_string()),
            Some(_) => return Err(protocol(path, "`next_page` repeats the cursor just read")),
            None => break,
        }
    }
    Ok((rows, currency))
}

/// The budgit period of a Claude period.
fn budgit_period(period: &str) -> Option<&'static str> {
    match period {
        "daily" => Some("day"),
        "weekly" => Some("week"),
        "monthly" => Some("month"),
        _ => None,
    }
}

/// A Claude Enterprise organisation's limits as policies.
pub fn claude(fetch: &mut dyn Fetch, opts: &ImportOptions) -> Result<Imported, ImportError> {
    let members = claude_members(fetch)?;
    let (rows, currency) = claude_effective(fetch, &members)?;
    let mut notes = Vec::new();
    let Some(currency) = currency else {
        return Err(ImportError::Inexpressible(
            "the organisation has no spend limits: there is nothing to import".into(),
        ));
    };
    // The period most limits have; on a tie, the longer one.
    let mut by_period: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *by_period.entry(r.period.as_str()).or_default() += 1;
    }
    let rank = |p: &str| ["daily", "weekly", "monthly"].iter().position(|x| *x == p).unwrap_or(0);
    let period = by_period
        .iter()
        .filter(|(p, _)| budgit_period(p).is_some())
        .max_by_key(|(p, n)| (**n, rank(p)))
        .map(|(p, _)| (*p).to_string())
        .ok_or_else(|| ImportError::Inexpressible("no limit has a daily, weekly or monthly period".into()))?;
    for (p, n) in &by_period {
        if *p != period {
            notes.push(format!("{n} {p} limits: a Workspace has one period, and most limits are {period}"));
        }
    }
    let (declared, checked) = money(&currency, opts.credit.as_deref())?;
    let credits = |amount: &str| {
        checked.from_minor(amount).map_err(|e| {
            ImportError::Inexpressible(format!(
                "{e}: choose a `--credit` that divides every limit (one minor unit always does)"
            ))
        })
    };
    let rows: Vec<&Effective> = rows.iter().filter(|r| r.period == period).collect();
    // The default: the organisation's limit, else the most common amount (smallest on a tie).
    let org = rows.iter().find(|r| r.source == "organization" && r.amount.is_some());
    let default = match org.and_then(|r| r.amount.as_deref()) {
        Some(a) => credits(a)?,
        None => {
            let mut count: BTreeMap<Credits, usize> = BTreeMap::new();
            for r in &rows {
                if let Some(a) = &r.amount {
                    *count.entry(credits(a)?).or_default() += 1;
                }
            }
            let most = count.iter().max_by_key(|(c, n)| (**n, std::cmp::Reverse(**c))).map(|(c, _)| *c);
            let most = most.ok_or_else(|| {
                ImportError::Inexpressible(format!(
                    "no {period} limit has an amount: there is nothing to import"
                ))
            })?;
            notes.push(format!(
                "the organisation has no {period} limit of its own: the default is the amount most members have ({most} credits)"
            ));
            most
        }
    };
    let mut groups: BTreeMap<Credits, Vec<String>> = BTreeMap::new();
    let mut unlimited = Vec::new();
    for r in &rows {
        match &r.amount {
            None => unlimited.push(r.email.clone()),
            Some(a) => {
                let c = credits(a)?;
                if c != default {
                    groups.entry(c).or_default().push(r.email.clone());
                }
            }
        }
    }
    if !unlimited.is_empty() {
        notes.push(format!(
            "{} member(s) with an explicit \"no limit\" ({}): budgit has no unlimited limit, they get the default",
            unlimited.len(),
            unlimited.join(", ")
        ));
    }
    let limited: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.email.as_str()).collect();
    let without = members.values().filter(|e| !limited.contains(e.as_str())).count();
    if without > 0 {
        notes.push(format!(
            "{without} member(s) have no {period} limit at all: budgit gives them the default, which the first reconcile writes"
        ));
    }
    let bperiod = budgit_period(&period).unwrap_or("month");
    let mut out = Imported { read: members.len(), ..Imported::default() };
    out.files.push((
        "workspace.yaml".into(),
        workspace_yaml(&opts.name, bperiod, default, CLAUDE_ENTERPRISE, &declared, &notes),
    ));
    for (c, mut people) in groups {
        people.sort();
        let description = format!(
            "Imported from Claude Enterprise: members whose {period} limit was {} minor units of {}",
            checked.to_minor(c).unwrap_or_default(),
            checked.currency
        );
        out.files
            .push((format!("groups/{}.yaml", group_name(c)), group_yaml(c, &description, &people, None)));
    }
    out.notes = notes;
    Ok(out)
}

/// An OpenAI spend limit (`threshold_amount` in cents, `interval`), or `None` when unset.
fn openai_limit(fetch: &mut dyn Fetch, path: &str) -> Result<Option<(i64, String, String)>, ImportError> {
    let doc = match fetch.get(path, &[]) {
        Ok(doc) => doc,
        Err(PullError::Status { status: 404, .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let amount = doc
        .get("threshold_amount")
        .and_then(Value::as_i64)
        .filter(|a| *a >= 0)
        .ok_or_else(|| protocol(path, "no non-negative integer `threshold_amount`"))?;
    let currency = doc.get("currency").and_then(Value::as_str).unwrap_or("usd").to_string();
    let interval = doc.get("interval").and_then(Value::as_str).unwrap_or("month").to_string();
    Ok(Some((amount, currency, interval)))
}

/// Every page of an OpenAI list (`limit`/`after` paging); a 404 reads as empty.
fn openai_list(fetch: &mut dyn Fetch, path: &str) -> Result<Vec<Value>, ImportError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "100".to_string())];
        if let Some(a) = &after {
            query.push(("after", a.clone()));
        }
        let doc = match fetch.get(path, &query) {
            Ok(doc) => doc,
            Err(PullError::Status { status: 404, .. }) => return Ok(out),
            Err(e) => return Err(e.into()),
        };
        let data =
            doc.get("data").and_then(Value::as_array).ok_or_else(|| protocol(path, "no `data` array"))?;
        out.extend(data.iter().cloned());
        let more = doc.get("has_more").and_then(Value::as_bool) == Some(true);
        match doc.get("last_id").and_then(Value::as_str) {
            Some(last) if more && after.as_deref() != Some(last) => after = Some(last.to_string()),
            _ if more => return Err(protocol(path, "`has_more` without a new `last_id`")),
            _ => break,
        }
    }
    Ok(out)
}

/// One spend alert: its id, amount in cents and email recipients.
struct OpenAiAlert {
    id: String,
    cents: i64,
    recipients: Vec<String>,
}

fn openai_alerts(fetch: &mut dyn Fetch, path: &str) -> Result<Vec<OpenAiAlert>, ImportError> {
    let mut out = Vec::new();
    for a in openai_list(fetch, path)? {
        let id =
            a.get("id").and_then(Value::as_str).ok_or_else(|| protocol(path, "an alert without `id`"))?;
        let cents =
            a.get("threshold_amount").and_then(Value::as_i64).filter(|c| *c >= 0).ok_or_else(|| {
                protocol(path, "an alert without a non-negative integer `threshold_amount`")
            })?;
        let mut recipients = Vec::new();
        let listed = a.pointer("/notification_channel/recipients").and_then(Value::as_array);
        for r in listed.into_iter().flatten() {
            let r = r.as_str().ok_or_else(|| protocol(path, "a recipient that is not text"))?;
            let r = crate::identity::canonical_email(r)
                .map_err(|e| ImportError::Inexpressible(format!("alert `{id}`: {e}")))?
                .into_owned();
            recipients.push(r);
        }
        out.push(OpenAiAlert { id: id.to_string(), cents, recipients });
    }
    Ok(out)
}

/// The percentage of `limit` an alert is at, when it is a whole percentage from 1 to 100.
fn alert_level(cents: i64, limit: i64) -> Option<u32> {
    let scaled = cents.checked_mul(100)?;
    if limit <= 0 || scaled % limit != 0 {
        return None;
    }
    u32::try_from(scaled / limit).ok().filter(|l| (1..=100).contains(l))
}

/// One scope read from OpenAI: `organization` or a project with a spend limit.
struct OpenAiScope {
    /// For people: `the organization` or `project `proj_…` (Name)`.
    label: String,
    cents: i64,
    alerts: Vec<OpenAiAlert>,
}

/// The alert levels every scope holds exactly (as a percentage of its limit); every
/// other alert is listed, since the first reconcile deletes what the levels do not make.
fn openai_levels(scopes: &[OpenAiScope], notes: &mut Vec<String>) -> Vec<u32> {
    let levels_of = |s: &OpenAiScope| -> std::collections::BTreeSet<u32> {
        s.alerts.iter().filter_map(|a| alert_level(a.cents, s.cents)).collect()
    };
    let mut common: Option<std::collections::BTreeSet<u32>> = None;
    for s in scopes {
        let here = levels_of(s);
        common = Some(match common {
            None => here,
            Some(c) => c.intersection(&here).copied().collect(),
        });
    }
    let common = common.unwrap_or_default();
    for s in scopes {
        let mut taken = std::collections::BTreeSet::new();
        for a in &s.alerts {
            match alert_level(a.cents, s.cents) {
                // A second alert at a level already taken is one the level does not make.
                Some(l) if common.contains(&l) && taken.insert(l) => {}
                Some(l) if common.contains(&l) => notes.push(format!(
                    "{}: alert `{}` at {} cents repeats the {l}% alert; the first reconcile deletes it",
                    s.label, a.id, a.cents
                )),
                Some(l) => notes.push(format!(
                    "{}: alert `{}` at {} cents ({l}% of the limit): the Workspace's alert levels are the ones every limit has; the first reconcile deletes it",
                    s.label, a.id, a.cents
                )),
                None => notes.push(format!(
                    "{}: alert `{}` at {} cents is no whole percentage (1 to 100) of the limit ({} cents); the first reconcile deletes it",
                    s.label, a.id, a.cents, s.cents
                )),
            }
        }
    }
    common.into_iter().collect()
}

/// The Workspace an OpenAI import writes: the organization's limit as the default and
/// as `org_limit`, its alert levels and their recipients.
fn openai_workspace_yaml(
    name: &str,
    org: Credits,
    levels: &[u32],
    recipients: &[String],
    declared: &VendorMoney,
    notes: &[String],
) -> String {
    let mut out = workspace_yaml(name, "month", org, "openai", declared, notes);
    // The Workspace's own default alert levels are not OpenAI's: write exactly the ones
    // read, before `vendors:` (the last one: the notes above may contain any text).
    let levels: Vec<String> = levels.iter().map(u32::to_string).collect();
    let at = out.rfind("\nvendors:\n").map_or(0, |i| i + 1);
    out.insert_str(at, &format!("enforcement: hard\nalerts: [{}]\n", levels.join(", ")));
    out.push_str(&format!("    reconcile:\n      org_limit: {org}\n"));
    if !recipients.is_empty() {
        out.push_str("      alert_recipients:\n");
        for r in recipients {
            out.push_str(&format!("        - {}\n", double_quoted(r)));
        }
    }
    out
}

/// A project's Group: its pool is the project's limit and it names the project. The
/// Admin API lists a project's members only for projects with their own membership,
/// and a project's spend limit does not depend on who is in it, so the selector
/// matches nobody until someone says who the team is.
fn openai_group_yaml(group: &str, project: &str, name: &str, pool: Credits, org: Credits) -> String {
    format!(
        "apiVersion: budgit/v1\nkind: Group\nname: {group}\ndescription: {}\n\
         # Who is in the project is not imported: this selector matches nobody. Replace it\n\
         # (or add `members:`) to give the team its per-person limit; the pool is the\n\
         # project's spend limit either way.\n\
         selector: \"false\"\npriority: 10\nlimit:\n  credits: {org}\npool:\n  credits: {pool}\n\
         vendors:\n  openai:\n    project: {}\n",
        double_quoted(&format!("Imported from OpenAI: project {name}'s monthly spend limit as the pool")),
        double_quoted(project),
    )
}

/// An OpenAI organisation's limits and alerts, as the OpenAI reconcile target writes them.
pub fn openai(fetch: &mut dyn Fetch, opts: &ImportOptions) -> Result<Imported, ImportError> {
    let Some((cents, currency, interval)) = openai_limit(fetch, "/organization/spend_limit")? else {
        return Err(ImportError::Inexpressible(
            "the organization has no spend limit: a Workspace needs a default, and there is nothing to import".into(),
        ));
    };
    if interval != "month" {
        return Err(ImportError::Inexpressible(format!(
            "the organization's limit is per `{interval}`, not per month"
        )));
    }
    let (declared, checked) = money(&currency, opts.credit.as_deref())?;
    let credits = |cents: i64, what: &str| {
        checked.from_minor(&u64::try_from(cents).unwrap_or_default().to_string()).map_err(|e| {
            ImportError::Inexpressible(format!("{what}: {e}: choose a `--credit` that divides every limit"))
        })
    };
    let org = credits(cents, "the organization's limit")?;
    let mut notes = Vec::new();
    let mut scopes = vec![OpenAiScope {
        label: "the organization".into(),
        cents,
        alerts: openai_alerts(fetch, "/organization/spend_alerts")?,
    }];
    let path = "/organization/projects";
    let mut projects = Vec::new();
    for p in openai_list(fetch, path)? {
        let id =
            p.get("id").and_then(Value::as_str).ok_or_else(|| protocol(path, "a project without `id`"))?;
        let name = p.get("name").and_then(Value::as_str).unwrap_or(id);
        projects.push((id.to_string(), name.to_string()));
    }
    let mut groups = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for (id, name) in &projects {
        // An id goes into a path and a group name: only the characters OpenAI's ids are made of.
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(protocol(path, &format!("a project id `{id}` that is not a plain identifier")));
        }
        let base = format!("/organization/projects/{id}");
        let label = format!("project `{id}` ({name})");
        let alerts = openai_alerts(fetch, &format!("{base}/spend_alerts"))?;
        let Some((amount, cur, interval)) = openai_limit(fetch, &format!("{base}/spend_limit"))? else {
            for a in &alerts {
                notes.push(format!(
                    "{label}: alert `{}` at {} cents in a project without a spend limit (budgit's alert levels are percentages of a limit)",
                    a.id, a.cents
                ));
            }
            continue;
        };
        if interval != "month" || !cur.eq_ignore_ascii_case(&currency) {
            notes.push(format!(
                "{label}: a limit of {amount} {cur} minor units per {interval}: only monthly limits in the organization's currency are imported"
            ));
            continue;
        }
        let group = format!("openai-{}", id.to_ascii_lowercase());
        if !names.insert(group.clone()) {
            return Err(ImportError::Inexpressible(format!(
                "two projects make the group name `{group}` (project ids differing only in case)"
            )));
        }
        groups.push((group, id.clone(), name.clone(), credits(amount, &label)?));
        scopes.push(OpenAiScope { label, cents: amount, alerts });
    }
    let levels = openai_levels(&scopes, &mut notes);
    let mut recipients: Vec<String> = Vec::new();
    let mut differ = false;
    for s in &scopes {
        for a in
            s.alerts.iter().filter(|a| alert_level(a.cents, s.cents).is_some_and(|l| levels.contains(&l)))
        {
            let mut r = a.recipients.clone();
            r.sort();
            r.dedup();
            if !recipients.is_empty() && recipients != r {
                differ = true;
            }
            for x in r {
                if !recipients.contains(&x) {
                    recipients.push(x);
                }
            }
            recipients.sort();
        }
    }
    if differ {
        notes.push(format!(
            "alerts email different people: every alert now emails all of them ({}), from the first change of a threshold",
            recipients.join(", ")
        ));
    }
    if !levels.is_empty() && recipients.is_empty() {
        return Err(ImportError::Inexpressible(
            "the organization's alerts email nobody: budgit needs `alert_recipients` for alert levels".into(),
        ));
    }
    let mut out = Imported { read: projects.len(), ..Imported::default() };
    out.files.push((
        "workspace.yaml".into(),
        openai_workspace_yaml(&opts.name, org, &levels, &recipients, &declared, &notes),
    ));
    for (group, id, name, pool) in groups {
        out.files.push((format!("groups/{group}.yaml"), openai_group_yaml(&group, &id, &name, pool, org)));
    }
    out.notes = notes;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credit_defaults_to_one_minor_unit() {
        assert_eq!(minor_unit("usd").unwrap(), "0.01");
        assert_eq!(minor_unit("jpy").unwrap(), "1");
        assert_eq!(minor_unit("kwd").unwrap(), "0.001");
        assert!(minor_unit("dollars").is_err());
    }

    fn scope(label: &str, cents: i64, alerts: &[i64]) -> OpenAiScope {
        let alerts = alerts
            .iter()
            .enumerate()
            .map(|(i, c)| OpenAiAlert { id: format!("{label}-{i}"), cents: *c, recipients: vec![] })
            .collect();
        OpenAiScope { label: label.into(), cents, alerts }
    }

    #[test]
    fn an_alert_is_a_level_when_it_is_a_whole_percentage_of_its_limit() {
        assert_eq!(alert_level(250_000, 500_000), Some(50));
        assert_eq!(alert_level(500_000, 500_000), Some(100));
        assert_eq!(alert_level(1, 3), None);
        assert_eq!(alert_level(600_000, 500_000), None);
        assert_eq!(alert_level(0, 500_000), None);
        assert_eq!(alert_level(5, 0), None);
        assert_eq!(alert_level(i64::MAX, 7), None);
    }

    #[test]
    fn the_levels_are_those_every_limit_has_and_every_other_alert_is_listed() {
        let mut notes = Vec::new();
        let scopes = [
            scope("org", 1000, &[500, 800, 900]),
            scope("app", 200, &[100, 160, 333]),
            scope("web", 400, &[200, 320, 200]),
        ];
        assert_eq!(openai_levels(&scopes, &mut notes), vec![50, 80]);
        assert_eq!(
            notes,
            vec![
                "org: alert `org-2` at 900 cents (90% of the limit): the Workspace's alert levels are the ones every limit has; the first reconcile deletes it",
                "app: alert `app-2` at 333 cents is no whole percentage (1 to 100) of the limit (200 cents); the first reconcile deletes it",
                "web: alert `web-2` at 200 cents repeats the 50% alert; the first reconcile deletes it",
            ]
        );
        let mut notes = Vec::new();
        assert_eq!(openai_levels(&[scope("org", 1000, &[])], &mut notes), Vec::<u32>::new());
        assert!(notes.is_empty());
    }

    #[test]
    fn a_project_group_names_its_project_and_matches_nobody() {
        let y = openai_group_yaml(
            "openai-proj_app",
            "proj_app",
            "App: \"x\"",
            Credits::from_whole(1200),
            Credits::from_whole(5000),
        );
        assert!(y.contains("name: openai-proj_app\n"), "{y}");
        assert!(y.contains("selector: \"false\"\n"), "{y}");
        assert!(
            y.contains("pool:\n  credits: 1200\nvendors:\n  openai:\n    project: \"proj_app\"\n"),
            "{y}"
        );
        let (declared, _) = money("usd", None).unwrap();
        let w = openai_workspace_yaml(
            "acme",
            Credits::from_whole(5000),
            &[50, 80],
            &["f@acme.com".into()],
            &declared,
            &["a project named vendors:".into()],
        );
        // a note that reads like the key stays in the comment
        assert!(w.contains("#   - a project named vendors:\napiVersion: budgit/v1\n"), "{w}");
        assert!(
            w.ends_with(
                "default:\n  credits: 5000\nenforcement: hard\nalerts: [50, 80]\nvendors:\n  openai:\n    currency: usd\n    credit: \"0.01\"\n    reconcile:\n      org_limit: 5000\n      alert_recipients:\n        - \"f@acme.com\"\n"
            ),
            "{w}"
        );
    }

    #[test]
    fn names_and_text_are_quoted_for_yaml() {
        let y = group_yaml(Credits::from_whole(5), "a: b # c", &["x@acme.com".into()], None);
        assert!(y.contains("name: limit-5\n"), "{y}");
        assert!(y.contains("description: \"a: b # c\"\n"), "{y}");
        assert!(y.contains("  - \"x@acme.com\"\n"), "{y}");
    }
}
